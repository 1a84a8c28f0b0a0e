#!/usr/bin/env python3
"""deploy/'s DaemonSets as the static pods a standalone kubelet runs.

A kubelet without an API server takes pods from a manifest dir only, and cannot read ConfigMaps.
This turns each DaemonSet of a rendered kustomization (`kubectl kustomize deploy/`) into the pod
its controller would create on a node, with three changes a standalone node needs, nothing else:
  - a configMap volume becomes a hostPath dir holding the ConfigMap's keys as files, written from
    the ConfigMap in the same rendering (a ConfigMap that is not there is an error);
  - every hostPath is moved by one of the --host-path OLD=NEW maps (a hostPath no map covers is an
    error, so that a test never writes where it did not say);
  - serviceAccountName is dropped (a static pod cannot reference API objects).

  static_pods.py RENDERED_YAML OUT_DIR CONFIGMAP_DIR --host-path OLD=NEW...

Writes OUT_DIR/<daemonset>.yaml for each DaemonSet and prints their names. Exit 1 naming the
object and field on anything it cannot carry over.
"""
import argparse
import os
import sys

import yaml


def fail(msg):
    print(f"static_pods.py: {msg}", file=sys.stderr)
    sys.exit(1)


def move(path, maps, where):
    for old, new in maps:
        if path == old or path.startswith(old.rstrip("/") + "/"):
            return new + path[len(old):]
    fail(f"{where}: hostPath {path} is not covered by any --host-path map")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("rendered")
    ap.add_argument("out_dir")
    ap.add_argument("configmap_dir")
    ap.add_argument("--host-path", action="append", default=[], metavar="OLD=NEW")
    args = ap.parse_args()
    maps = []
    for m in args.host_path:
        old, sep, new = m.partition("=")
        if not sep or not old.startswith("/") or not new.startswith("/"):
            fail(f"--host-path {m}: want /OLD=/NEW")
        maps.append((old, new))
    maps.sort(key=lambda m: -len(m[0]))  # the longest prefix wins

    with open(args.rendered) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    configmaps = {(d["metadata"].get("namespace", "default"), d["metadata"]["name"]): d
                  for d in docs if d.get("kind") == "ConfigMap"}
    daemonsets = [d for d in docs if d.get("kind") == "DaemonSet"]
    if not daemonsets:
        fail(f"{args.rendered}: no DaemonSet")

    for ds in daemonsets:
        name = ds["metadata"]["name"]
        ns = ds["metadata"].get("namespace", "default")
        where = f"DaemonSet {ns}/{name}"
        template = ds["spec"]["template"]
        spec = dict(template["spec"])
        spec.pop("serviceAccountName", None)
        spec.pop("serviceAccount", None)
        volumes = []
        for v in spec.get("volumes", []):
            vwhere = f"{where}: volume {v['name']}"
            if "hostPath" in v:
                hp = dict(v["hostPath"])
                hp["path"] = move(hp["path"], maps, vwhere)
                volumes.append({"name": v["name"], "hostPath": hp})
            elif "configMap" in v:
                cm_name = v["configMap"]["name"]
                cm = configmaps.get((ns, cm_name))
                if cm is None:
                    fail(f"{vwhere}: ConfigMap {ns}/{cm_name} is not in {args.rendered}")
                if v["configMap"].get("items"):
                    fail(f"{vwhere}: configMap.items is not carried over")
                d = os.path.join(args.configmap_dir, ns, cm_name)
                os.makedirs(d, exist_ok=True)
                for key, value in (cm.get("data") or {}).items():
                    with open(os.path.join(d, key), "w") as f:
                        f.write(value)
                volumes.append({"name": v["name"], "hostPath": {"path": d, "type": "Directory"}})
            else:
                fail(f"{vwhere}: only hostPath and configMap volumes are carried over")
        if volumes:
            spec["volumes"] = volumes
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": ns,
                         "labels": template.get("metadata", {}).get("labels", {}),
                         "annotations": template.get("metadata", {}).get("annotations", {})},
            "spec": spec,
        }
        out = os.path.join(args.out_dir, f"{name}.yaml")
        tmp = os.path.join(args.out_dir, f".{name}.yaml.tmp")
        with open(tmp, "w") as f:
            yaml.safe_dump(pod, f, sort_keys=False)
        # The kubelet polls the dir: it must never see half a manifest (a dotfile it ignores).
        os.rename(tmp, out)
        print(name)


if __name__ == "__main__":
    main()
