#!/usr/bin/env bash
# The per-layer catalog cache end to end (`sbomd scan --layer-cache`), on
# every local store kind: the same three-layer dpkg image as a
# docker-archive, OCI layouts with gzip, plain and zstd layers, and a
# containerd content store. For each, the SBOM without the cache, with a
# cold cache and with a warm one are the same but for serialNumber and
# timestamp, and the warm scan reads no layer. Also: a cache filled from
# plain tars (whose diffIDs are verified) serves every other store kind
# (the key is the diffID); one filled from gzip blobs (entries tied to
# their blob) serves the same blobs, and a plain tar of the same layer is
# read again, hashed and stored verified; an image whose layer blobs are
# all garbage is still catalogued from a warm cache; nothing is cached
# from a blob that fails its digest; an image whose config claims another
# image's diffID cannot change that image's SBOM; torn entries are
# ignored and the layer read again.
#
# Usage: tests/layer_cache_test.sh PATH/TO/sbomd
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SBOMD="${1:-${SBOMD_BIN:-$ROOT/build/sbomd}}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/sbomd-layer-cache.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok   $*"; }

# ---- three layers: OS and dpkg database; an upgrade that rewrites the
# status and whites out a copyright file; an opaque usr/share/doc/libbar
# with a new copyright.
L1="$WORK/l1" L2="$WORK/l2" L3="$WORK/l3"
mkdir -p "$L1/etc" "$L1/var/lib/dpkg" "$L1/usr/share/doc/libfoo1" \
         "$L1/usr/share/doc/libbar" "$L2/var/lib/dpkg" \
         "$L2/usr/share/doc/libfoo1" "$L3/usr/share/doc/libbar"
printf 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n' \
  > "$L1/etc/os-release"
pkg() { printf 'Package: %s\nStatus: install ok installed\nArchitecture: amd64\nVersion: %s\n\n' "$1" "$2"; }
{ pkg base-files 12.4; pkg libfoo1 2.0-3; pkg libbar 1.0; } > "$L1/var/lib/dpkg/status"
printf 'Files: *\nLicense: MIT\n' > "$L1/usr/share/doc/libfoo1/copyright"
printf 'Files: *\nLicense: BSD-3-Clause\n' > "$L1/usr/share/doc/libbar/copyright"
{ pkg base-files 12.4; pkg libbar 1.0; pkg newpkg 3.1-2; } > "$L2/var/lib/dpkg/status"
touch "$L2/usr/share/doc/libfoo1/.wh.copyright"
touch "$L3/usr/share/doc/libbar/.wh..wh..opq"
printf 'Files: *\nLicense: Apache-2.0\n' > "$L3/usr/share/doc/libbar/copyright"
TAR="tar --owner=0 --group=0 --numeric-owner --sort=name"
for l in 1 2 3; do $TAR -C "$WORK/l$l" -cf "$WORK/layer$l.tar" .; done
LAYERS=("$WORK/layer1.tar" "$WORK/layer2.tar" "$WORK/layer3.tar")

MK="$ROOT/tests/tools/mkimages.py"
id=$(python3 "$MK" --archive "$WORK/img.tar" --oci "$WORK/oci-gzip" "${LAYERS[@]}")
python3 "$MK" --oci "$WORK/oci-plain" --compress none "${LAYERS[@]}" >/dev/null
python3 "$MK" --oci "$WORK/oci-zstd" --compress zstd "${LAYERS[@]}" >/dev/null
CTD="$WORK/containerd/io.containerd.content.v1.content"
mkdir -p "$CTD"
cp -r "$WORK/oci-gzip/blobs" "$CTD/"

norm() { # SBOM.json -> the document without serialNumber and timestamp
  python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
d.pop("serialNumber")
d["metadata"].pop("timestamp")
print(json.dumps(d, sort_keys=True, indent=1))
' "$1"
}

# scan LABEL TARGET [CACHE]: the normalised SBOM in LABEL.n, stderr in
# LABEL.err; fails on a non-zero exit.
scan() {
  local args=()
  [ -n "${3:-}" ] && args=(--layer-cache "$3")
  "$SBOMD" scan "${args[@]}" "$2" > "$WORK/$1.json" 2> "$WORK/$1.err" ||
    fail "$1: sbomd scan $2 exited $?: $(cat "$WORK/$1.err")"
  norm "$WORK/$1.json" > "$WORK/$1.n"
}
same() { cmp -s "$WORK/$1.n" "$WORK/$2.n" || { diff "$WORK/$1.n" "$WORK/$2.n" | head -20; fail "$1 and $2 differ"; }; }
counts() { grep -o 'layer cache .*' "$WORK/$1.err" | sed 's/^layer cache [^:]*: //'; }
expect_counts() { # LABEL "H layers from the cache, M not in it, S stored"
  [ "$(counts "$1")" = "$2" ] || fail "$1: cache says \"$(counts "$1")\", want \"$2\""
}

# ---- every store kind: without, cold, warm.
for kind in archive oci-gzip oci-plain oci-zstd containerd; do
  case $kind in
    archive) t="docker-archive:$WORK/img.tar" ;;
    containerd) t="containerd:$WORK/containerd@$id" ;;
    *) t="oci:$WORK/$kind" ;;
  esac
  C="$WORK/cache-$kind"
  scan "$kind-none" "$t"
  scan "$kind-cold" "$t" "$C"
  scan "$kind-warm" "$t" "$C"
  same "$kind-none" "$kind-cold"
  same "$kind-none" "$kind-warm"
  expect_counts "$kind-cold" "0 layers from the cache, 3 not in it, 3 stored"
  expect_counts "$kind-warm" "3 layers from the cache, 0 not in it, 0 stored"
  ok "$kind: the same SBOM without the cache, cold and warm"
done
grep -q '"name": "newpkg"' "$WORK/archive-none.n" || fail "newpkg is missing"
grep -q '"name": "libfoo1"' "$WORK/archive-none.n" && fail "libfoo1 was removed by layer 2"
grep -q 'Apache-2.0' "$WORK/archive-none.n" || fail "layer 3's copyright is not reported"
grep -q 'BSD-3-Clause' "$WORK/archive-none.n" && fail "layer 3's opaque directory did not hide libbar's copyright"
ok "the image's whiteout and opaque directory are honoured"

# ---- one cache across store kinds: keyed by diffID.
scan cross-zstd "oci:$WORK/oci-zstd" "$WORK/cache-archive"
same archive-none cross-zstd
expect_counts cross-zstd "3 layers from the cache, 0 not in it, 0 stored"
ok "a cache filled from a docker-archive serves a zstd OCI layout"
# Entries read from gzip blobs are tied to them: the same blobs in a
# containerd store hit; the plain tars of a docker-archive are read again
# and replace them with verified entries, which then serve the zstd
# layout too.
cp -r "$WORK/cache-oci-gzip" "$WORK/cache-cross"
scan cross-ctd "containerd:$WORK/containerd@$id" "$WORK/cache-cross"
expect_counts cross-ctd "3 layers from the cache, 0 not in it, 0 stored"
scan cross-zstd-tied "oci:$WORK/oci-zstd" "$WORK/cache-cross"
expect_counts cross-zstd-tied "0 layers from the cache, 3 not in it, 0 stored"
scan cross-archive "docker-archive:$WORK/img.tar" "$WORK/cache-cross"
same archive-none cross-archive
expect_counts cross-archive "0 layers from the cache, 3 not in it, 3 stored"
scan cross-zstd-verified "oci:$WORK/oci-zstd" "$WORK/cache-cross"
same archive-none cross-zstd-verified
expect_counts cross-zstd-verified "3 layers from the cache, 0 not in it, 0 stored"
ok "gzip-read entries serve their own blobs; a plain tar replaces them verified"

# ---- known layers are not read: every layer blob garbage.
cp -r "$WORK/oci-gzip" "$WORK/oci-garbage"
for b in $(python3 -c '
import json, sys
idx = json.load(open(sys.argv[1] + "/index.json"))
m = idx["manifests"][0]["digest"].split(":")[1]
man = json.load(open(sys.argv[1] + "/blobs/sha256/" + m))
print(" ".join(l["digest"].split(":")[1] for l in man["layers"]))
' "$WORK/oci-garbage"); do
  f="$WORK/oci-garbage/blobs/sha256/$b"
  n=$(stat -c %s "$f"); rm -f "$f"
  head -c "$n" /dev/urandom > "$f"
done
scan garbage-warm "oci:$WORK/oci-garbage" "$WORK/cache-oci-gzip"
same oci-gzip-none garbage-warm
expect_counts garbage-warm "3 layers from the cache, 0 not in it, 0 stored"
ok "an image whose layers are all known is catalogued without reading one"

# ---- a blob that fails its digest is not cached.
set +e
"$SBOMD" scan --layer-cache "$WORK/cache-bad" "oci:$WORK/oci-garbage" \
  > /dev/null 2> "$WORK/bad.err"
rc=$?
set -e
[ $rc = 4 ] || fail "a corrupt blob: exit $rc, want 4: $(cat "$WORK/bad.err")"
grep -q "digest mismatch\|gzip" "$WORK/bad.err" || fail "corrupt blob: $(cat "$WORK/bad.err")"
[ -z "$(ls -A "$WORK/cache-bad")" ] || fail "a corrupt blob left $(ls "$WORK/cache-bad")"
ok "nothing is cached from a blob that fails its digest"

# ---- a config whose diff_ids are not the layers' streams: the scan
# works as before (diff_ids are not otherwise checked), and what it
# stores cannot change another image's SBOM. The lying image claims, for
# its layer 1, the diffID of the victim's only layer.
L4="$WORK/l4"
mkdir -p "$L4/etc" "$L4/var/lib/dpkg"
printf 'ID=alpine\nVERSION_ID=3.19.0\n' > "$L4/etc/os-release"
pkg victimpkg 9.9 > "$L4/var/lib/dpkg/status"
$TAR -C "$L4" -cf "$WORK/layer4.tar" .
vid=$(python3 "$MK" --oci "$WORK/oci-victim" "$WORK/layer4.tar")
python3 "$MK" --archive "$WORK/victim.tar" "$WORK/layer4.tar" >/dev/null
D4=$(sha256sum "$WORK/layer4.tar" | cut -d' ' -f1)
cp -r "$WORK/oci-gzip" "$WORK/oci-lying"
python3 - "$WORK/oci-lying" "$D4" <<'PY'
import hashlib, json, os, sys
d = sys.argv[1]
def blob(b):
    h = hashlib.sha256(b).hexdigest()
    open(f"{d}/blobs/sha256/{h}", "wb").write(b)
    return "sha256:" + h, len(b)
idx = json.load(open(f"{d}/index.json"))
md = idx["manifests"][0]
man = json.load(open(f"{d}/blobs/sha256/" + md["digest"].split(":")[1]))
cfg = json.load(open(f"{d}/blobs/sha256/" + man["config"]["digest"].split(":")[1]))
# Layer 1 claims the victim layer's diffID (a poisoning attempt).
cfg["rootfs"]["diff_ids"][0] = "sha256:" + sys.argv[2]
man["config"]["digest"], man["config"]["size"] = blob(json.dumps(cfg).encode())
md["digest"], md["size"] = blob(json.dumps(man).encode())
json.dump(idx, open(f"{d}/index.json", "w"))
PY
scan lying "oci:$WORK/oci-lying" "$WORK/cache-lying"
grep -q '"name": "newpkg"' "$WORK/lying.n" || fail "the lying image's packages are missing"
expect_counts lying "0 layers from the cache, 3 not in it, 3 stored"
[ -e "$WORK/cache-lying/$D4" ] || fail "the lying layer's entry is not where the test expects it"
for v in oci:oci-victim docker-archive:victim.tar; do
  scan victim-none "${v%%:*}:$WORK/${v#*:}"
  grep -q '"name": "victimpkg"' "$WORK/victim-none.n" || fail "$v: victimpkg is missing"
  grep -q '"name": "newpkg"' "$WORK/victim-none.n" && fail "$v: newpkg is there"
  scan victim "${v%%:*}:$WORK/${v#*:}" "$WORK/cache-lying"
  same victim-none victim
done
# The OCI layout (gzip) missed the tied entry and stored a verified one,
# which the docker-archive found.
expect_counts victim "1 layers from the cache, 0 not in it, 0 stored"
ok "an image claiming another image's diffID cannot change that image's SBOM"

# ---- torn entries: ignored, the layers read again and stored whole.
for f in "$WORK/cache-oci-gzip"/*; do
  truncate -s $(( $(stat -c %s "$f") / 2 )) "$f"
done
scan torn "oci:$WORK/oci-gzip" "$WORK/cache-oci-gzip"
same oci-gzip-none torn
expect_counts torn "0 layers from the cache, 3 not in it, 3 stored"
scan torn-again "oci:$WORK/oci-gzip" "$WORK/cache-oci-gzip"
expect_counts torn-again "3 layers from the cache, 0 not in it, 0 stored"
ok "torn entries are ignored and the layers read again"
echo "all layer cache checks passed"
