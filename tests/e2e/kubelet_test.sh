#!/usr/bin/env bash
# vfplane under a real kubelet: Kubernetes v1.20.2's kubelet (built once from Debian bookworm's
# kubernetes source package and cached), Debian's containerd and runc, on a simulated --veth
# SR-IOV node, all inside a network namespace of this test's own. Standalone kubelet: static pods
# from a manifest dir, no API server, which is all the device plugin, PodResources and the CNI
# need. vfplane runs as a cluster runs it: deploy/ rendered by `kubectl kustomize`, its DaemonSets
# as static pods (tests/e2e/static_pods.py: ConfigMaps as files, hostPaths moved into this test's
# dirs), on the image scripts/image builds from this build dir. Covered:
#   - the vfplane-cni pod installs the plugins into the CNI bin dir the runtime uses;
#   - the vfplane-device-plugin pod registers (plugin watcher), answers /healthz, and registers
#     again after a kubelet restart;
#   - a pod requesting intel.com/sriov_net_a runs with its PCIDEVICE_* env;
#   - its network is vfplane-sriov with resourceName and no deviceID: it gets exactly the VF the
#     kubelet allocated (asked through PodResources List), as eth0, with an address;
#   - deleting the pod sends the VF home under its name and releases the address;
#   - a pod on vfplane-macvlan gets its link and address, and loses them with the pod.
#
#   tests/e2e/kubelet_test.sh SOURCE_ROOT BUILD_DIR
#
# Exit 0, 1 naming what failed, or 77 (skip) saying why this machine cannot run it. The kubelet
# build is cached in $VFPLANE_KUBELET_CACHE (default /var/cache/vfplane/kubelet): about five
# minutes on 2 cores the first time, with progress lines.
set -euo pipefail
root=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
cache=${VFPLANE_KUBELET_CACHE:-/var/cache/vfplane/kubelet}
kversion=1.20.5+really1.20.2-1.1+deb12u1
say() { echo "e2e: $*"; }
skip() { echo "SKIP: $*"; exit 77; }

[ "$(id -u)" = 0 ] || skip "needs root (containerd, runc, the kubelet)"
for t in containerd runc ctr buildah gcc busybox unshare kubectl; do
  command -v "$t" >/dev/null || skip "$t is missing (scripts/setup installs it)"
done
[ -x /usr/lib/go-1.19/bin/go ] || skip "Go 1.19 is missing (golang-1.19-go; scripts/setup installs it)"
# The kubelet's root dir is the real /var/lib/kubelet, where deploy/ mounts it from (kubelet 1.20
# keeps the device-plugin socket there whatever its --root-dir anyway): a node with a kubelet of
# its own cannot run this.
[ -e /var/lib/kubelet ] && skip "/var/lib/kubelet exists: this machine runs a kubelet of its own"

# ---- the kubelet, built once ------------------------------------------------------------------
kubelet=$cache/kubelet-v1.20.2
if [ ! -x "$kubelet" ]; then
  say "building kubelet v1.20.2 from Debian's kubernetes $kversion source (once; ~5 minutes)"
  mkdir -p "$cache/apt/lists/partial" "$cache/apt/cache/archives/partial" "$cache/apt/sources"
  cat > "$cache/apt/sources/bookworm-src.sources" <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  # A private source list and state: the system's apt configuration is left alone.
  apt=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$cache/apt/sources"
       -o "Dir::State::Lists=$cache/apt/lists" -o "Dir::Cache=$cache/apt/cache")
  ( cd "$cache" && apt-get "${apt[@]}" -qq update && apt-get "${apt[@]}" -qq source --download-only "kubernetes=$kversion" ) \
    > "$cache/fetch.log" 2>&1 || skip "cannot fetch the kubernetes source package (see $cache/fetch.log)"
  src=$cache/gopath/src/k8s.io
  rm -rf "$cache/gopath" && mkdir -p "$src"
  tar -xzf "$cache"/kubernetes_*.orig.tar.gz -C "$src"
  mv "$src"/kubernetes-* "$src/kubernetes" 2>/dev/null || mv "$(ls -d "$src"/*/ | head -1)" "$src/kubernetes"
  # The vendored reflect2 v1.0.1 breaks on Go >= 1.18; Debian's 1.0.2 does not.
  rm -rf "$src/kubernetes/vendor/github.com/modern-go/reflect2"
  cp -r /usr/share/gocode/src/github.com/modern-go/reflect2 "$src/kubernetes/vendor/github.com/modern-go/reflect2"
  cp "$src/kubernetes/build/pause/linux/pause.c" "$cache/pause.c"
  say "  go build ./cmd/kubelet"
  ( cd "$src/kubernetes" && GOPATH=$cache/gopath GO111MODULE=off GOFLAGS= GOCACHE=$cache/gocache \
      /usr/lib/go-1.19/bin/go build -o "$kubelet.tmp" ./cmd/kubelet ) > "$cache/build.log" 2>&1 || {
    echo "e2e: the kubelet build failed:"; tail -20 "$cache/build.log"; exit 1; }
  mv "$kubelet.tmp" "$kubelet"
  rm -rf "$cache/gopath" "$cache/gocache"  # the tree and Go's cache (GBs); the binary and pause.c stay
  say "  built $kubelet"
fi

# ---- a node of our own ------------------------------------------------------------------------
# The rest runs in a network namespace of its own (the node's "host" network), so nothing of it
# touches this machine's links; /var/lib/kubelet and the kubelet's pod logs are the only paths
# outside $T, removed at the end.
if [ -z "${VFPLANE_E2E_IN_NETNS:-}" ]; then
  exec unshare --net env VFPLANE_E2E_IN_NETNS=1 "$0" "$@"
fi
ip link set lo up
T=$(mktemp -d /tmp/vfplane-e2e.XXXXXX)
pids=()
failures=0
passes=0
cleanup() {
  set +e
  # The kubelet first (it would restart what is killed), then every container, then containerd.
  [ -n "${kubelet_pid:-}" ] && kill "$kubelet_pid" 2>/dev/null && wait "$kubelet_pid" 2>/dev/null
  for task in $(ctr --address "$T/containerd.sock" -n k8s.io tasks ls -q 2>/dev/null); do
    ctr --address "$T/containerd.sock" -n k8s.io tasks kill -a -s SIGKILL "$task" >/dev/null 2>&1
  done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  sleep 1
  pkill -f "containerd-shim-runc-v2 -namespace k8s.io -address $T/" 2>/dev/null
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  mount | awk '{print $3}' | grep -E "^($T|/var/lib/kubelet|/run/containerd-e2e)" | sort -r | xargs -r umount -l
  for n in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^cni-'); do ip netns del "$n"; done
  "$build/tools/vfplane/vfplane" sim destroy --root "$T/sim" >/dev/null 2>&1
  # The kubelet's fixed paths: its pods' logs and their links.
  rm -rf /var/log/pods/default_vfpod-vfplane-e2e_* /var/log/pods/default_mvpod-vfplane-e2e_* \
    /var/log/pods/vfplane_vfplane-*-vfplane-e2e_*
  find /var/log/containers -name '*vfplane-e2e*' -delete 2>/dev/null
  rm -rf /var/lib/kubelet "$T"
}
trap cleanup EXIT
check() {  # check WHAT CONDITION...
  local what=$1; shift
  if "$@"; then passes=$((passes + 1)); say "ok: $what"; else failures=$((failures + 1)); say "FAILED: $what"; fi
}
until_true() {  # until_true SECONDS COMMAND...: polls every 0.5 s, true once COMMAND is
  local end=$((SECONDS + $1)); shift
  until "$@"; do [ $SECONDS -ge $end ] && return 1; sleep 0.5; done
}

say "simulated node: 1 PF, 4 VFs (veth)"
"$build/tools/vfplane/vfplane" sim create --root "$T/sim" --pfs 1 --vfs 4 --veth >/dev/null
mkdir -p "$T/cni-bin" "$T/cni-conf" "$T/manifests" "$T/images"
# vfplane's plugins come from the vfplane-cni pod; containerd sets up every sandbox's lo with the
# reference loopback plugin (Debian's containernetworking-plugins).
[ -x /usr/lib/cni/loopback ] || skip "/usr/lib/cni/loopback is missing (containernetworking-plugins)"
cp /usr/lib/cni/loopback "$T/cni-bin/"
# The node's uplink: the macvlan pod's master, and the default route the kubelet wants for the
# node's address.
ip link add mv-master type veth peer name mv-peer
ip link set mv-master up && ip link set mv-peer up
ip addr add 192.0.2.10/24 dev mv-peer
ip route add default via 192.0.2.1 dev mv-peer onlink

say "containerd (cgroupfs, native snapshotter, its own root and socket)"
cat > "$T/containerd.toml" <<EOF
version = 2
root = "$T/containerd/root"
state = "$T/containerd/state"
[grpc]
  address = "$T/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/pause:3.2"
  # root here lacks CAP_SYS_RESOURCE: runc could not set the sandbox's oom_score_adj
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$T/cni-bin"
    conf_dir = "$T/cni-conf"
EOF
# The plugins inherit containerd's environment: the simulated node's sysfs and our state dir.
VFPLANE_SYSFS_ROOT=$T/sim VFPLANE_STATE_DIR=$T/cni-state containerd --config "$T/containerd.toml" \
  > "$T/containerd.log" 2>&1 &
pids+=($!)
until_true 30 ctr --address "$T/containerd.sock" version >/dev/null 2>&1 || { say "containerd did not start:"; tail "$T/containerd.log"; exit 1; }

say "images: pause (from the kubelet's source) and busybox (busybox-static), built, not pulled"
mkdir -p "$T/pause/rootfs" "$T/busybox/rootfs/bin"
gcc -static -O2 -o "$T/pause/rootfs/pause" "$cache/pause.c"
cp "$(command -v busybox)" "$T/busybox/rootfs/bin/busybox"
for c in sh sleep cat env ip; do ln -s busybox "$T/busybox/rootfs/bin/$c"; done
bah=(buildah --storage-driver vfs --root "$T/bstore" --runroot "$T/brun")
for img in pause busybox; do
  c=$("${bah[@]}" from scratch)
  "${bah[@]}" copy "$c" "$T/$img/rootfs" / >/dev/null
  [ "$img" = pause ] && "${bah[@]}" config --entrypoint '["/pause"]' "$c"
  tag=localhost/$img:$([ "$img" = pause ] && echo 3.2 || echo 1)
  "${bah[@]}" commit --quiet --rm "$c" "$tag" >/dev/null
  "${bah[@]}" push --quiet "$tag" "oci-archive:$T/images/$img.tar:$tag"
  ctr --address "$T/containerd.sock" -n k8s.io images import "$T/images/$img.tar" >/dev/null
done
say "image: scripts/image from this build"
VFPLANE_BUILD_DIR=$build "$root/scripts/image" --no-build --storage "$T/vstore" \
  --output "$T/images/vfplane.tar" | sed 's/^/e2e:   /'
ctr --address "$T/containerd.sock" -n k8s.io images import "$T/images/vfplane.tar" >/dev/null

say "deploy/: kubectl kustomize, its DaemonSets as static pods"
# The node's paths the manifests mount, moved into $T: the simulated node's sysfs for /sys, our
# own device-info, CDI and CNI bin dirs. The kubelet's own dirs stay where deploy/ expects them.
kubectl kustomize "$root/deploy" > "$T/deploy.yaml" 2> "$T/kustomize.err" || {
  say "kubectl kustomize deploy/ failed:"; cat "$T/kustomize.err"; exit 1; }
python3 "$root/tests/e2e/static_pods.py" "$T/deploy.yaml" "$T/manifests" "$T/configmaps" \
  --host-path /var/lib/kubelet=/var/lib/kubelet --host-path "/sys=$T/sim/sys" \
  --host-path "/var/run=$T/run" --host-path "/opt/cni/bin=$T/cni-bin" | sed 's/^/e2e:   static pod /'

start_kubelet() {
  "$kubelet" --pod-manifest-path="$T/manifests" --root-dir=/var/lib/kubelet \
    --container-runtime=remote --container-runtime-endpoint="unix://$T/containerd.sock" \
    --cgroup-driver=cgroupfs --cgroups-per-qos=false --enforce-node-allocatable= \
    --fail-swap-on=false --hostname-override=vfplane-e2e --file-check-frequency=1s \
    --volume-plugin-dir="$T/volume-plugins" \
    --v=1 >> "$T/kubelet.log" 2>&1 &
  kubelet_pid=$!
  pids+=("$kubelet_pid")
}
dplog() { cat /var/log/pods/vfplane_vfplane-device-plugin-vfplane-e2e_*/device-plugin/*.log 2>/dev/null; }
registered_at_least() {
  local n
  n=$(dplog | grep -c "intel.com/sriov_net_a: registered with the kubelet")
  [ "${n:-0}" -ge "$1" ]
}
installed() {
  [ -f "$T/cni-bin/vfplane-cni.version" ] && for p in vfplane-sriov vfplane-host-device vfplane-macvlan vfplane-ipam; do
    [ -x "$T/cni-bin/$p" ] || return 1; done
}
healthy() {
  python3 -c 'import sys, urllib.request; sys.exit(urllib.request.urlopen("http://127.0.0.1:9105/healthz", timeout=2).status != 200)' 2>/dev/null
}
say "kubelet v1.20.2, standalone"
start_kubelet
check "the vfplane-cni pod installs the plugins into the runtime's CNI bin dir" until_true 120 installed
check "the vfplane-device-plugin pod registers with the kubelet" until_true 90 registered_at_least 1
check "and answers /healthz on its metrics port" until_true 30 healthy
kill "$kubelet_pid"; wait "$kubelet_pid" 2>/dev/null || true
start_kubelet
check "the device plugin registers again after a kubelet restart" until_true 60 registered_at_least 2

# ---- a pod on vfplane-sriov by resourceName ---------------------------------------------------
# From here on every outcome is a check, counted, and the run goes on to the end.
set +e +o pipefail
cat > "$T/cni-conf/10-sriov.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "sriov-net-a", "plugins": [
  {"type": "vfplane-sriov", "resourceName": "intel.com/sriov_net_a",
   "ipam": {"type": "vfplane-ipam", "subnet": "10.78.0.0/24", "dataDir": "$T/ipam"}}]}
EOF
cat > "$T/manifests/vfpod.yaml" <<'EOF'
apiVersion: v1
kind: Pod
metadata: {name: vfpod, namespace: default}
spec:
  containers:
  - name: app
    image: localhost/busybox:1
    imagePullPolicy: Never
    command: ["/bin/sh", "-c", "env; exec sleep 3600"]
    resources:
      limits: {intel.com/sriov_net_a: "1"}
EOF
journal() { ls "$T"/cni-state/attachments/*.json 2>/dev/null | head -1; }
have_journal() { [ -n "$(journal)" ]; }
no_journal() { [ -z "$(journal)" ]; }
podlog() { cat /var/log/pods/default_vfpod-vfplane-e2e_*/app/*.log 2>/dev/null; }
check "the VF pod's network is attached (a journal appears)" until_true 90 have_journal
check "the pod runs with PCIDEVICE_INTEL_COM_SRIOV_NET_A" until_true 60 sh -c "cat /var/log/pods/default_vfpod-vfplane-e2e_*/app/*.log 2>/dev/null | grep -q PCIDEVICE_INTEL_COM_SRIOV_NET_A="
allocated=$(podlog | sed -n 's/.*PCIDEVICE_INTEL_COM_SRIOV_NET_A=\([0-9a-f:.]*\).*/\1/p' | head -1)
attached=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["deviceID"])' "$(journal)" 2>/dev/null || true)
home=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["hostName"])' "$(journal)" 2>/dev/null || true)
say "  the kubelet allocated ${allocated:-nothing}; the CNI attached ${attached:-nothing} (resourceName, no deviceID)"
check "the CNI attached exactly the VF the kubelet allocated" test -n "$allocated" -a "$allocated" = "$attached"
check "the device plugin wrote that VF's device-info file" sh -c "grep -qs '\"$allocated\"' '$T'/run/k8s.cni.cncf.io/devinfo/dp/*.json"
sandbox_ns() { for n in $(ip netns list | awk '{print $1}' | grep '^cni-'); do ip -n "$n" -br addr show eth0 2>/dev/null | grep -q "$1" && echo "$n"; done; }
has_sandbox() { [ -n "$(sandbox_ns "$1")" ]; }
check "eth0 in the pod has an address of the network" until_true 10 has_sandbox 10.78.0.
link_exists() { ip link show "$1" >/dev/null 2>&1; }
check "the VF's netdev left the host" sh -c "! ip link show '$home' >/dev/null 2>&1"
rm "$T/manifests/vfpod.yaml"
check "deleting the pod sends the VF home under its name" until_true 90 link_exists "$home"
check "and removes the journal" until_true 30 no_journal
check "and releases the address" until_true 30 sh -c "! ls '$T/ipam/sriov-net-a' | grep -q '^10\\.'"

# ---- a pod on vfplane-macvlan -----------------------------------------------------------------
rm "$T/cni-conf/10-sriov.conflist"
cat > "$T/cni-conf/10-macvlan.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "lan", "plugins": [
  {"type": "vfplane-macvlan", "master": "mv-master", "mode": "bridge",
   "ipam": {"type": "vfplane-ipam", "subnet": "10.79.0.0/24", "dataDir": "$T/ipam"}}]}
EOF
sleep 2  # containerd's conf watcher
cat > "$T/manifests/mvpod.yaml" <<'EOF'
apiVersion: v1
kind: Pod
metadata: {name: mvpod, namespace: default}
spec:
  containers:
  - name: app
    image: localhost/busybox:1
    imagePullPolicy: Never
    command: ["/bin/sleep", "3600"]
EOF
check "the macvlan pod has eth0 with an address of its network" until_true 90 has_sandbox 10.79.0.
mv_ns=$(sandbox_ns 10.79.0.)
check "eth0 is a macvlan on mv-master" sh -c "ip -n '$mv_ns' -d link show eth0 | grep -q 'macvlan mode bridge'"
rm "$T/manifests/mvpod.yaml"
check "deleting it releases the address" until_true 90 sh -c "! ls '$T/ipam/lan' | grep -q '^10\\.'"

echo "e2e: $passes passed, $failures failed"
if [ "$failures" -gt 0 ]; then
  echo "--- device plugin log (tail)"; dplog | tail -5
  echo "--- kubelet errors (tail)"; grep -E '^E' "$T/kubelet.log" | tail -5 | cut -c1-400
  echo "--- pod logs"; ls -R /var/log/pods 2>&1 | head -20
  exit 1
fi
