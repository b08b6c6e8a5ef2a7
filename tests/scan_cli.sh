#!/usr/bin/env bash
# `sbomd scan` end to end on image stores built here: the same two-layer
# dpkg image as a docker-archive, as OCI layouts with gzip, zstd and plain
# layers, and as a containerd content store (blobs only, no index). Every
# target must give the same components; the documented exit codes for a
# missing image (3), a pull in progress (3), a corrupt blob (4) and a usage
# error (2) are checked with their messages.
#
# Usage: tests/scan_cli.sh PATH/TO/sbomd
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SBOMD="${1:-${SBOMD_BIN:-$ROOT/build/sbomd}}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/sbomd-scan-cli.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }
pass=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }

# ---- layers: OS identity and a dpkg database; the upper layer removes a
# package (rewrites status) and whites out its copyright file.
L1="$WORK/l1" L2="$WORK/l2"
mkdir -p "$L1/etc" "$L1/var/lib/dpkg" "$L1/usr/share/doc/libfoo1" \
         "$L2/var/lib/dpkg" "$L2/usr/share/doc/libfoo1"
printf 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n' \
  > "$L1/etc/os-release"
echo "12.7" > "$L1/etc/debian_version"
pkg() { # name version arch [source]
  printf 'Package: %s\nStatus: install ok installed\nArchitecture: %s\nVersion: %s\n' \
    "$1" "$3" "$2"
  [ -n "${4:-}" ] && printf 'Source: %s\n' "$4"
  printf 'Description: test package %s\n\n' "$1"
}
{ pkg base-files 12.4+deb12u7 amd64; pkg libfoo1 1:2.0-3 amd64 foo
  pkg tool 0.5-1 all; } > "$L1/var/lib/dpkg/status"
printf 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nLicense: MIT\n' \
  > "$L1/usr/share/doc/libfoo1/copyright"
{ pkg base-files 12.4+deb12u7 amd64; pkg tool 0.5-1 all
  pkg newpkg 3.1-2 amd64; } > "$L2/var/lib/dpkg/status"
touch "$L2/usr/share/doc/libfoo1/.wh.copyright"
TAR="tar --owner=0 --group=0 --numeric-owner --sort=name"
$TAR -C "$L1" -cf "$WORK/layer1.tar" .
$TAR -C "$L2" -cf "$WORK/layer2.tar" .

MK="$ROOT/tests/tools/mkimages.py"
id=$(python3 "$MK" --archive "$WORK/img.tar" --oci "$WORK/oci-gzip" \
       "$WORK/layer1.tar" "$WORK/layer2.tar")
python3 "$MK" --oci "$WORK/oci-zstd" --compress zstd \
  "$WORK/layer1.tar" "$WORK/layer2.tar" >/dev/null
python3 "$MK" --oci "$WORK/oci-plain" --compress none --tag v1 \
  "$WORK/layer1.tar" "$WORK/layer2.tar" >/dev/null
# containerd: only content-addressed blobs, under the content directory.
CTD="$WORK/containerd/io.containerd.content.v1.content"
mkdir -p "$CTD"
cp -r "$WORK/oci-gzip/blobs" "$CTD/"

components() { # SBOM.json -> sorted "name version purl" lines
  python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["bomFormat"] == "CycloneDX" and d["specVersion"] == "1.5", "not CycloneDX 1.5"
for c in sorted(d["components"], key=lambda c: c["name"]):
    print(c["type"], c["name"], c.get("version", ""), c.get("purl", ""))
' "$1"
}

scan_ok() { # LABEL TARGET
  local out="$WORK/$1.json"
  "$SBOMD" scan "$2" > "$out" 2> "$WORK/$1.err" ||
    fail "$1: sbomd scan $2 exited $?: $(cat "$WORK/$1.err")"
  components "$out" > "$WORK/$1.txt" || fail "$1: bad document"
  grep -q "$id" "$out" || fail "$1: the document does not name image $id"
}

scan_ok archive "docker-archive:$WORK/img.tar"
scan_ok oci-gzip "oci:$WORK/oci-gzip:latest"
scan_ok oci-zstd "oci:$WORK/oci-zstd"
scan_ok oci-plain "oci:$WORK/oci-plain:v1"
scan_ok oci-byid "oci:$WORK/oci-gzip@$id"
scan_ok containerd "containerd:$WORK/containerd@$id"

want="$WORK/want.txt"
cat > "$want" <<'EOF'
library base-files 12.4+deb12u7 pkg:deb/debian/base-files@12.4%2Bdeb12u7?arch=amd64&distro=debian-12.7
library newpkg 3.1-2 pkg:deb/debian/newpkg@3.1-2?arch=amd64&distro=debian-12.7
operating-system debian 12.7 
library tool 0.5-1 pkg:deb/debian/tool@0.5-1?arch=all&distro=debian-12.7
EOF
sort -o "$want" "$want"
for l in archive oci-gzip oci-zstd oci-plain oci-byid containerd; do
  sort "$WORK/$l.txt" | diff -u "$want" - ||
    fail "$l: components differ from the expected set (libfoo1 removed by layer 2)"
done
ok "six targets, one component set (upper layer's dpkg status wins)"

expect_exit() { # LABEL CODE NEEDLE ARGS...
  local label="$1" code="$2" needle="$3"; shift 3
  set +e
  "$SBOMD" scan "$@" > "$WORK/x.out" 2> "$WORK/x.err"
  local rc=$?
  set -e
  [ "$rc" -eq "$code" ] ||
    fail "$label: exit $rc, want $code ($(cat "$WORK/x.err"))"
  [ ! -s "$WORK/x.out" ] || fail "$label: wrote to stdout on failure"
  grep -q -- "$needle" "$WORK/x.err" ||
    fail "$label: stderr lacks \"$needle\": $(cat "$WORK/x.err")"
  ok "$label: exit $code"
}

other="sha256:$(printf '%064d' 7)"
expect_exit "missing image" 3 "not found" "oci:$WORK/oci-gzip@$other"
expect_exit "missing tag" 3 "nope" "oci:$WORK/oci-gzip:nope"
expect_exit "usage" 2 "usage" "bogus:/x"

# A layer blob cut short: a pull in progress (retryable, 3).
cp -r "$WORK/oci-gzip" "$WORK/oci-short"
big=$(ls -S "$WORK/oci-short/blobs/sha256" | head -n 1)
truncate -s 100 "$WORK/oci-short/blobs/sha256/$big"
expect_exit "short blob" 3 "$big" "oci:$WORK/oci-short:latest"

# A layer blob with a flipped byte: digest mismatch (permanent, 4).
cp -r "$WORK/oci-gzip" "$WORK/oci-bad"
f="$WORK/oci-bad/blobs/sha256/$big"
python3 -c '
import sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read())
b[len(b) // 2] ^= 0xff
open(p, "wb").write(b)' "$f"
expect_exit "corrupt blob" 4 "$big" "oci:$WORK/oci-bad:latest"

echo "$pass passed"
