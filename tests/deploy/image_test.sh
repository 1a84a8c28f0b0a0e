#!/usr/bin/env bash
# scripts/image as a test: the image builds from this build dir in a throwaway buildah store, and
# holds what deploy/ runs (the three binaries, the four CNI plugins) and no shell. Skips (77)
# without buildah; exit 1 naming what is wrong.
set -euo pipefail
root=$1
if [ "$(id -u)" != 0 ]; then
  echo "SKIP: scripts/image needs root (buildah's store, chroot to check the libraries)"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
set +e
"$root/scripts/image" --no-build --storage "$tmp/store" --output "$tmp/image.tar"
rc=$?
set -e
[ "$rc" = 0 ] || exit "$rc"
mkdir "$tmp/oci"
tar -xf "$tmp/image.tar" -C "$tmp/oci"
layer=$(ls -S "$tmp/oci/blobs/sha256/" | head -1)
tar -tzf "$tmp/oci/blobs/sha256/$layer" > "$tmp/files"
bad=0
for f in usr/bin/vfplane usr/bin/vfplane-device-plugin usr/bin/vfplane-router \
         usr/lib/vfplane/cni/vfplane-sriov usr/lib/vfplane/cni/vfplane-host-device \
         usr/lib/vfplane/cni/vfplane-macvlan usr/lib/vfplane/cni/vfplane-ipam \
         usr/lib/x86_64-linux-gnu/dpdk/pmds-23.0/librte_net_iavf.so; do
  grep -qx "$f" "$tmp/files" || { echo "image_test: $f is not in the image"; bad=1; }
done
if grep -qE '^(usr/)?bin/(ba)?sh$' "$tmp/files"; then
  echo "image_test: the image has a shell"
  bad=1
fi
exit "$bad"
