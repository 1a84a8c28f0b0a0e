#!/usr/bin/env python3
"""deploy/ as a cluster would take it, without a cluster.

Every YAML file parses; `kubectl kustomize` (Debian's kubernetes-client) renders deploy/ and each
overlay; the rendered objects pass a schema check of the fields vfplane's manifests use (what
`kubectl apply --dry-run=client` cannot do here: it needs an API server); images and ConfigMaps
referenced exist in deploy/ and scripts/image; the device plugin accepts the ConfigMap's
config.json (--check-config); every example NAD's config is accepted by the plugin it names
(`vfplane cni check-config`); and the example pods request the pools their networks need.

Usage: check_deploy.py SOURCE_ROOT VFPLANE_BIN DEVICE_PLUGIN_BIN
Exit 0 when all hold, 1 naming each problem, 77 (skip) without kubectl or PyYAML.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

try:
    import yaml
except ImportError:
    print("SKIP: PyYAML (python3-yaml) is missing; scripts/setup installs it")
    sys.exit(77)

root, vfplane, device_plugin = sys.argv[1:4]
deploy = os.path.join(root, "deploy")
problems = []


def problem(where, what):
    problems.append(f"{where}: {what}")


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


# 1. Every file parses and every object has the fields every Kubernetes object has.
files = []
for dirpath, _, names in os.walk(deploy):
    for n in sorted(names):
        if n.endswith(".yaml"):
            files.append(os.path.join(dirpath, n))
for path in files:
    rel = os.path.relpath(path, root)
    try:
        docs = load_all(path)
    except yaml.YAMLError as e:
        problem(rel, f"does not parse: {e}")
        continue
    for d in docs:
        if isinstance(d, list):
            continue  # a JSON 6902 patch an overlay applies
        if not isinstance(d, dict) or "apiVersion" not in d or "kind" not in d:
            problem(rel, "an object without apiVersion or kind")
        elif d["kind"] != "Kustomization" and not d.get("metadata", {}).get("name"):
            problem(rel, f"a {d['kind']} without metadata.name")

# 2. kustomize renders deploy/ and each overlay.
kubectl = shutil.which("kubectl")
if kubectl is None:
    print("SKIP: kubectl (kubernetes-client) is missing; scripts/setup installs it")
    sys.exit(77)
renders = {}
for target in ["."] + [os.path.join("overlays", o) for o in sorted(os.listdir(os.path.join(deploy, "overlays")))]:
    out = subprocess.run([kubectl, "kustomize", os.path.join(deploy, target)], capture_output=True, text=True)
    if out.returncode != 0:
        problem(f"deploy/{target}", f"kubectl kustomize failed ({out.returncode}): {out.stderr.strip()}")
        continue
    renders[target] = list(yaml.safe_load_all(out.stdout))

with open(os.path.join(root, "meson.build")) as f:
    version = re.search(r"version:\s*'([^']+)'", f.read()).group(1)
with open(os.path.join(root, "scripts", "image")) as f:
    image_script = f.read()
image = f"localhost/vfplane:{version}"
if "localhost/vfplane" not in image_script:
    problem("scripts/image", "does not build localhost/vfplane, which deploy/ runs")

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def check_pod_spec(where, spec, configmaps, accounts, expected_image=True):
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    for v in volumes.values():
        if "hostPath" in v and not v["hostPath"]["path"].startswith("/"):
            problem(where, f"volume {v['name']}: hostPath must be absolute")
        if "configMap" in v and v["configMap"]["name"] not in configmaps:
            problem(where, f"volume {v['name']}: ConfigMap {v['configMap']['name']} is not in deploy/")
    if spec.get("serviceAccountName") and spec["serviceAccountName"] not in accounts:
        problem(where, f"serviceAccountName {spec['serviceAccountName']} is not in deploy/")
    names = set()
    for c in spec.get("initContainers", []) + spec.get("containers", []):
        w = f"{where} container {c.get('name')}"
        if not c.get("name") or not DNS_LABEL.match(c["name"]) or c["name"] in names:
            problem(w, "needs a unique DNS-label name")
        names.add(c.get("name"))
        if expected_image and c.get("image") != image:
            problem(w, f"image {c.get('image')}, not {image} (what scripts/image builds)")
        res = c.get("resources", {})
        if "memory" not in res.get("limits", {}) or "memory" not in res.get("requests", {}):
            problem(w, "needs memory requests and limits")
        ports = {p["name"] for p in c.get("ports", []) if "name" in p}
        for p in c.get("ports", []):
            if "name" in p and (len(p["name"]) > 15 or not DNS_LABEL.match(p["name"])):
                problem(w, f"port name {p['name']} must be a DNS label of at most 15 characters")
        for probe in ("livenessProbe", "readinessProbe"):
            port = c.get(probe, {}).get("httpGet", {}).get("port")
            if isinstance(port, str) and port not in ports:
                problem(w, f"{probe} names port {port}, which the container does not have")
        for m in c.get("volumeMounts", []):
            if m["name"] not in volumes:
                problem(w, f"mounts {m['name']}, which is not a volume")
        sc = c.get("securityContext", {})
        if sc.get("privileged"):
            problem(w, "runs privileged")
        if expected_image and sc.get("capabilities", {}).get("drop") != ["ALL"]:
            problem(w, "does not drop every capability")


for target, objs in renders.items():
    kinds = [o["kind"] for o in objs]
    for k in ("Namespace", "ServiceAccount", "ConfigMap", "DaemonSet"):
        if k not in kinds:
            problem(f"deploy/{target}", f"renders no {k}")
    configmaps = {o["metadata"]["name"]: o for o in objs if o["kind"] == "ConfigMap"}
    accounts = {o["metadata"]["name"] for o in objs if o["kind"] == "ServiceAccount"}
    for o in objs:
        where = f"deploy/{target} {o['kind']} {o['metadata']['name']}"
        if o["kind"] != "Namespace" and o["metadata"].get("namespace") != "vfplane":
            problem(where, "is not in the vfplane namespace")
        if o["kind"] == "DaemonSet":
            sel = o["spec"]["selector"]["matchLabels"]
            labels = o["spec"]["template"]["metadata"].get("labels", {})
            if any(labels.get(k) != v for k, v in sel.items()):
                problem(where, "selector does not match the template's labels")
            check_pod_spec(where, o["spec"]["template"]["spec"], configmaps, accounts)
    names = [o["metadata"]["name"] for o in objs if o["kind"] == "DaemonSet"]
    if sorted(names) != ["vfplane-cni", "vfplane-device-plugin"]:
        problem(f"deploy/{target}", f"DaemonSets {names}, not vfplane-cni and vfplane-device-plugin")

# The overlay changes the CNI bin dir and nothing else of the DaemonSet's volumes.
if "overlays/openshift" in renders:
    cni = [o for o in renders["overlays/openshift"] if o["metadata"]["name"] == "vfplane-cni"][0]
    paths = [v["hostPath"]["path"] for v in cni["spec"]["template"]["spec"]["volumes"]]
    if paths != ["/var/lib/cni/bin"]:
        problem("deploy/overlays/openshift", f"CNI bin dir {paths}, not /var/lib/cni/bin")

# 3. The device plugin takes the ConfigMap's config.json.
pools = set()
if "." in renders:
    cm = [o for o in renders["."] if o["kind"] == "ConfigMap"][0]
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        f.write(cm["data"]["config.json"])
    out = subprocess.run([device_plugin, "--check-config", "--config", f.name], capture_output=True, text=True)
    os.unlink(f.name)
    if out.returncode != 0 or out.stderr.strip():
        problem("deploy/base/configmap.yaml", f"config.json: exit {out.returncode}: {out.stderr.strip()}")
    pools = set(out.stdout.split())

# 4. Examples: each NAD's config as its plugin reads it; pools that exist; pods that request them.
examples = os.path.join(deploy, "examples")
nads = {}
pods = []
for n in sorted(os.listdir(examples)):
    if not n.endswith(".yaml"):
        continue
    for o in load_all(os.path.join(examples, n)):
        where = f"deploy/examples/{n}"
        if o["kind"] == "NetworkAttachmentDefinition":
            nads[o["metadata"]["name"]] = o
            try:
                conf = json.loads(o["spec"]["config"])
            except json.JSONDecodeError as e:
                problem(where, f"spec.config is not JSON: {e}")
                continue
            out = subprocess.run([vfplane, "cni", "check-config", "--config", "-"],
                                 input=o["spec"]["config"], capture_output=True, text=True)
            if out.returncode != 0:
                problem(where, f"vfplane cni check-config: {out.stderr.strip()}")
            resource = o["metadata"].get("annotations", {}).get("k8s.v1.cni.cncf.io/resourceName")
            if resource and resource not in pools:
                problem(where, f"resourceName {resource} is not a pool of the ConfigMap ({sorted(pools)})")
            if resource and conf.get("resourceName", resource) != resource:
                problem(where, "the config's resourceName differs from the annotation's")
        elif o["kind"] == "Pod":
            pods.append((where, o))
for where, pod in pods:
    nets = [x.strip() for x in pod["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"].split(",")]
    need = {}
    for net in nets:
        if net not in nads:
            problem(where, f"network {net} is not an example NAD")
            continue
        r = nads[net]["metadata"].get("annotations", {}).get("k8s.v1.cni.cncf.io/resourceName")
        if r:
            need[r] = need.get(r, 0) + 1
    limits = {}
    for c in pod["spec"]["containers"]:
        limits.update(c.get("resources", {}).get("limits", {}))
    for r, n in need.items():
        if int(limits.get(r, 0)) < n:
            problem(where, f"{len(nets)} networks need {n} of {r} in resources.limits, it has {limits.get(r, 0)}")
    check_pod_spec(where, pod["spec"], {}, set(), expected_image=False)

if problems:
    print("\n".join(problems))
    sys.exit(1)
print(f"deploy/: {len(files)} files, {sum(len(v) for v in renders.values())} rendered objects, "
      f"{len(nads)} networks and {len(pods)} pods checked")
