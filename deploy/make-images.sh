#!/usr/bin/env bash
# Builds the sample image store that docker-compose.yml bind-mounts at
# /images (scan.stores of deploy/sbomd.cfg): an OCI image layout holding
# the demo's "image A" (a Debian 12 base layer with 8 dpkg packages, made
# from scripts/demo/layer-base by tests/tools/mkimages.py, like
# scripts/demo.sh does). The image ID is reproducible; it is the one
# deploy/demo-events.jsonl reports on three nodes.
#
#   deploy/make-images.sh [DIR]    (default deploy/images; prints the ID)
#
# Needs bash, GNU tar, gzip and python3 (or $PYTHON) on the host.
# Replaces DIR.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:-$ROOT/deploy/images}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/sbomd-images.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# A reproducible tarball: same bytes, same diff_id, same image ID.
(cd "$ROOT/scripts/demo/layer-base" &&
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 \
      --mode=a+rX,go-w -cf "$TMP/base.tar" -- *)
"${PYTHON:-python3}" "$ROOT/tests/tools/mkimages.py" --oci "$TMP/store" --tag shop/base:12 \
  "$TMP/base.tar"
rm -rf "$OUT"
mkdir -p "$(dirname "$OUT")"
mv "$TMP/store" "$OUT"
chmod -R a+rX "$OUT"   # the container reads it as uid 10001
