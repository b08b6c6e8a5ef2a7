#!/usr/bin/env python3
"""`sbomd scan registry:` and the service's registry pulls, against a real
registry: Debian's `docker-registry` (distribution 2.8) on 127.0.0.1 with
TLS (a test CA made here by openssl) and htpasswd auth, one more set up
for Bearer tokens (the registry's `token` auth, with a token issuer here
that signs JWTs with a key whose certificate the registry trusts), images
pushed with `skopeo copy` from OCI layouts built by tests/tools/mkimages.py.
A small registry-like HTTP server here serves what a real registry will
not: a redirect of blobs to another host (which must not get the
credentials) and a manifest larger than its bound.

Usage: tests/registry_test.py PATH/TO/sbomd [TestClass[.test_name] ...]
Exit status: 0 passed, 1 failed, 77 skipped (a tool is missing).
"""
import base64, hashlib, http.server, json, os, shutil, socket, ssl, subprocess, sys, tempfile, threading, time, unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MKIMAGES = os.path.join(ROOT, "tests/tools/mkimages.py")
SBOMD = None
IN_CI = os.environ.get("CI", "").lower() in ("1", "true")
USER, PASSWORD = "scanner", "s3cret-pass"

STATUS = """Package: base-files
Status: install ok installed
Architecture: {arch}
Version: 12.4+deb12u7

Package: libc6
Status: install ok installed
Architecture: {arch}
Source: glibc
Version: 2.36-9+deb12u9

"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(*args, check=True, **kw):
    return subprocess.run(list(args), check=check, capture_output=True, text=True, **kw)


def wait_port(port, proc, timeout=20):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process on port {port} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on port {port} after {timeout}s")


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class Pki:
    """A test CA, a server certificate for 127.0.0.1/localhost signed by
    it, and a self-signed token-signing certificate."""

    def __init__(self, d):
        self.d = d
        os.makedirs(d, exist_ok=True)
        self.ca = os.path.join(d, "ca.pem")
        cakey = os.path.join(d, "ca.key")
        run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", cakey,
            "-out", self.ca, "-days", "2", "-subj", "/CN=sbomd test CA")
        self.key = os.path.join(d, "server.key")
        self.cert = os.path.join(d, "server.pem")
        csr = os.path.join(d, "server.csr")
        ext = os.path.join(d, "ext.cnf")
        with open(ext, "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
        run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", self.key, "-out", csr,
            "-subj", "/CN=127.0.0.1")
        run("openssl", "x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", cakey,
            "-CAcreateserial", "-out", self.cert, "-days", "2", "-extfile", ext)
        self.tok_key = os.path.join(d, "token.key")
        self.tok_cert = os.path.join(d, "token.pem")
        run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.tok_key,
            "-out", self.tok_cert, "-days", "2", "-subj", "/CN=sbomd test token issuer")
        der = subprocess.run(
            ["openssl", "x509", "-in", self.tok_cert, "-outform", "DER"],
            check=True, capture_output=True).stdout
        self.tok_der_b64 = base64.b64encode(der).decode()

    def sign_jwt(self, claims):
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.tok_der_b64]}
        signing = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.tok_key],
                             input=signing.encode(), check=True, capture_output=True).stdout
        return signing + "." + b64url(sig)


class TokenIssuer:
    """HTTPS token endpoint: Basic credentials in, a signed JWT out for
    the scopes asked for. Counts the tokens it gave."""

    def __init__(self, pki, service, issuer):
        self.pki, self.service, self.issuer = pki, service, issuer
        self.port = free_port()
        self.issued = 0
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                from urllib.parse import urlparse, parse_qs
                q = parse_qs(urlparse(self.path).query)
                want = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
                if self.headers.get("Authorization") != want:
                    self.send_response(401)
                    self.end_headers()
                    return
                access = []
                for sc in q.get("scope", []):
                    parts = sc.split(":")
                    if len(parts) >= 3 and parts[0] == "repository":
                        access.append({"type": "repository", "name": ":".join(parts[1:-1]),
                                       "actions": parts[-1].split(",")})
                now = int(time.time())
                tok = outer.pki.sign_jwt({"iss": outer.issuer, "sub": USER, "aud": outer.service,
                                          "exp": now + 300, "nbf": now - 10, "iat": now,
                                          "jti": str(time.monotonic_ns()), "access": access})
                outer.issued += 1
                body = json.dumps({"token": tok, "access_token": tok, "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pki.cert, pki.key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Registry:
    """`docker-registry serve` on a free port of 127.0.0.1 with TLS;
    htpasswd auth, or token auth with a TokenIssuer."""

    def __init__(self, work, pki, name, token=False):
        self.work = os.path.join(work, name)
        os.makedirs(self.work, exist_ok=True)
        self.pki = pki
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.storage = os.path.join(self.work, "storage")
        self.issuer = None
        if token:
            self.issuer = TokenIssuer(pki, "sbomd-test-registry", "sbomd-test-issuer")
            auth = (f"  token:\n    realm: https://127.0.0.1:{self.issuer.port}/token\n"
                    f"    service: sbomd-test-registry\n    issuer: sbomd-test-issuer\n"
                    f"    rootcertbundle: {pki.tok_cert}\n")
        else:
            htp = os.path.join(self.work, "htpasswd")
            with open(htp, "w") as f:
                f.write(run("htpasswd", "-Bbn", USER, PASSWORD).stdout)
            auth = f"  htpasswd:\n    realm: sbomd-test\n    path: {htp}\n"
        self.config = os.path.join(self.work, "config.yml")
        with open(self.config, "w") as f:
            f.write(f"""version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {self.storage}
http:
  addr: 127.0.0.1:{self.port}
  tls:
    certificate: {pki.cert}
    key: {pki.key}
auth:
{auth}""")
        self.log = os.path.join(self.work, "registry.log")
        self.proc = None
        self.start()

    def start(self):
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(["docker-registry", "serve", self.config],
                                         stdout=log, stderr=subprocess.STDOUT)
        wait_port(self.port, self.proc)

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def close(self):
        self.stop()
        if self.issuer:
            self.issuer.stop()

    def push(self, src, dest, fmt=None, all_images=False):
        """skopeo copy oci:SRC docker://HOST/DEST; returns the digest of
        what was pushed (the manifest or index)."""
        dg = os.path.join(self.work, "pushed.digest")
        args = ["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
                "--dest-creds", f"{USER}:{PASSWORD}", "--digestfile", dg]
        if fmt:
            args += ["--format", fmt]
        if all_images:
            args += ["--all"]
        args += [f"oci:{src}", f"docker://{self.host}/{dest}"]
        r = subprocess.run(args, capture_output=True, text=True)
        if r.returncode != 0:
            raise AssertionError(f"skopeo copy failed: {r.stderr}")
        with open(dg) as f:
            return f.read().strip()

    def blob_path(self, digest):
        hexd = digest.split(":", 1)[1]
        return os.path.join(self.storage, "docker/registry/v2/blobs/sha256", hexd[:2], hexd, "data")


def build_layout(work, name, compress="gzip", arch="amd64", tag="latest"):
    """An OCI layout with a two-layer Debian-like image; returns (dir,
    image ID)."""
    root1 = os.path.join(work, f"{name}-l1")
    root2 = os.path.join(work, f"{name}-l2")
    for r in (root1, root2):
        os.makedirs(os.path.join(r, "var/lib/dpkg"), exist_ok=True)
    os.makedirs(os.path.join(root1, "etc"), exist_ok=True)
    with open(os.path.join(root1, "etc/os-release"), "w") as f:
        f.write('ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n')
    with open(os.path.join(root1, "var/lib/dpkg/status"), "w") as f:
        f.write(STATUS.format(arch=arch))
    with open(os.path.join(root2, "var/lib/dpkg/status"), "w") as f:
        f.write(STATUS.format(arch=arch) + f"Package: {name}-app\nStatus: install ok installed\n"
                f"Architecture: {arch}\nVersion: 1.0-1\n\n")
    layers = []
    for i, r in enumerate((root1, root2)):
        t = os.path.join(work, f"{name}-layer{i}.tar")
        subprocess.run(["tar", "-C", r, "--owner=0", "--group=0", "--numeric-owner",
                        "--sort=name", "-cf", t, "."], check=True)
        layers.append(t)
    d = os.path.join(work, f"{name}-oci")
    out = run(sys.executable, MKIMAGES, "--oci", d, "--compress", compress, "--tag", tag, *layers).stdout
    return d, out.strip()


def layout_manifest(d):
    with open(os.path.join(d, "index.json")) as f:
        idx = json.load(f)
    desc = idx["manifests"][0]
    with open(os.path.join(d, "blobs/sha256", desc["digest"][7:])) as f:
        return desc, json.load(f)


def put_blob(d, data):
    h = hashlib.sha256(data).hexdigest()
    with open(os.path.join(d, "blobs/sha256", h), "wb") as f:
        f.write(data)
    return "sha256:" + h


def build_multiplatform(work):
    """An OCI layout whose index holds an amd64 and an arm64 image (of
    different packages); returns (dir, amd64 ID, arm64 ID)."""
    amd, amd_id = build_layout(work, "mp-amd64", arch="amd64")
    arm, arm_id = build_layout(work, "mp-arm64", arch="arm64")
    # The arm64 image's config says so.
    desc, man = layout_manifest(arm)
    with open(os.path.join(arm, "blobs/sha256", man["config"]["digest"][7:])) as f:
        cfg = json.load(f)
    cfg["architecture"] = "arm64"
    cfgb = json.dumps(cfg, separators=(",", ":")).encode()
    arm_id = put_blob(amd, cfgb)
    man["config"] = {"mediaType": man["config"]["mediaType"], "digest": arm_id, "size": len(cfgb)}
    for l in man["layers"]:
        shutil.copy(os.path.join(arm, "blobs/sha256", l["digest"][7:]),
                    os.path.join(amd, "blobs/sha256", l["digest"][7:]))
    manb = json.dumps(man, separators=(",", ":")).encode()
    arm_man = put_blob(amd, manb)
    adesc, _ = layout_manifest(amd)
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [
                 {"mediaType": adesc["mediaType"], "digest": adesc["digest"], "size": adesc["size"],
                  "platform": {"os": "linux", "architecture": "amd64"}},
                 {"mediaType": adesc["mediaType"], "digest": arm_man, "size": len(manb),
                  "platform": {"os": "linux", "architecture": "arm64"}}]}
    indexb = json.dumps(index, separators=(",", ":")).encode()
    idx_digest = put_blob(amd, indexb)
    with open(os.path.join(amd, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [
            {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": idx_digest,
             "size": len(indexb), "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}, f)
    return amd, amd_id, arm_id


def write_auth(path, host, user=USER, password=PASSWORD):
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    with open(path, "w") as f:
        json.dump({"auths": {host: {"auth": auth}}}, f)
    return path


def strip_volatile(doc):
    d = json.loads(doc)
    d.pop("serialNumber", None)
    d.get("metadata", {}).pop("timestamp", None)
    return json.dumps(d, sort_keys=True)


def sbomd_scan(*args, env=None):
    """`sbomd scan ARGS` with no Docker config of the user's."""
    e = dict(os.environ)
    e["DOCKER_CONFIG"] = "/nonexistent-sbomd-test"
    if env:
        e.update(env)
    return subprocess.run([SBOMD, "scan", *args], capture_output=True, text=True, env=e, timeout=120)


def pkg_names(doc):
    return sorted((c["name"], c.get("version", "")) for c in json.loads(doc).get("components", [])
                  if c.get("type") == "library")


class FakeRegistry:
    """A registry-like plain-HTTP server on 127.0.0.1 over an OCI layout:
    Basic auth required; blobs redirected to a second server on
    `localhost` (another host), which records the Authorization headers
    it receives; tag "huge" is a manifest of 5 MiB."""

    def __init__(self, layout):
        self.layout = layout
        self.port = free_port()
        self.blob_port = free_port()
        self.blob_auth = []  # Authorization headers the blob host saw
        outer = self

        def blob(h, digest):
            p = os.path.join(outer.layout, "blobs/sha256", digest.split(":", 1)[1])
            if not os.path.exists(p):
                h.send_response(404)
                h.end_headers()
                return
            data = read_bytes(p)
            h.send_response(200)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)

        class Main(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                want = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
                if self.headers.get("Authorization") != want:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="fake"')
                    self.end_headers()
                    return
                parts = self.path.split("/")
                # /v2/<repo>/manifests/<ref>, /v2/<repo>/blobs/<digest>
                kind, ref = parts[-2], parts[-1]
                if kind == "manifests" and ref == "huge":
                    body = b'{"schemaVersion":2,"pad":"' + b"x" * (5 << 20) + b'"}'
                    self.send_response(200)
                    self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    try:
                        self.wfile.write(body)
                    except OSError:
                        pass
                    return
                if kind == "manifests":
                    desc, _ = layout_manifest(outer.layout)
                    digest = desc["digest"] if not ref.startswith("sha256:") else ref
                    p = os.path.join(outer.layout, "blobs/sha256", digest[7:])
                    data = read_bytes(p)
                    self.send_response(200)
                    self.send_header("Content-Type", desc["mediaType"])
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                self.send_response(307)
                self.send_header("Location", f"http://localhost:{outer.blob_port}/store/{ref}")
                self.send_header("Content-Length", "0")
                self.end_headers()

        class Blobs(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                outer.blob_auth.append(self.headers.get("Authorization"))
                blob(self, self.path.split("/")[-1])

        self.main = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Main)
        self.blobs = http.server.ThreadingHTTPServer(("127.0.0.1", self.blob_port), Blobs)
        for s in (self.main, self.blobs):
            threading.Thread(target=s.serve_forever, daemon=True).start()

    def stop(self):
        for s in (self.main, self.blobs):
            s.shutdown()
            s.server_close()


def need_tools():
    missing = [t for t in ("docker-registry", "skopeo", "openssl", "htpasswd") if shutil.which(t) is None]
    if missing:
        if IN_CI:
            raise AssertionError(f"missing tools: {missing}")
        raise unittest.SkipTest(f"missing tools: {missing} (scripts/setup.sh installs them)")


class RegistryCase(unittest.TestCase):
    """One htpasswd registry and one token registry for the class."""

    @classmethod
    def setUpClass(cls):
        need_tools()
        cls.work = tempfile.mkdtemp(prefix="sbomd-registry-")
        cls.pki = Pki(os.path.join(cls.work, "pki"))
        cls.reg = Registry(cls.work, cls.pki, "basic")
        cls.auth = write_auth(os.path.join(cls.work, "auth.json"), cls.reg.host)

    @classmethod
    def tearDownClass(cls):
        cls.reg.close()
        for r in ("treg", "mreg"):
            if getattr(cls, r, None):
                getattr(cls, r).close()
        shutil.rmtree(cls.work, ignore_errors=True)

    def scan(self, ref, *more, auth=None, ca=True):
        args = ["--registry-auth", auth or self.auth]
        if ca:
            args += ["--registry-ca", self.pki.ca]
        return sbomd_scan(*args, *more, "registry:" + ref)

    def assertSameAsOci(self, layout, ref, *more, **kw):
        want = sbomd_scan(*more, f"oci:{layout}")
        self.assertEqual(want.returncode, 0, want.stderr)
        got = self.scan(ref, *more, **kw)
        self.assertEqual(got.returncode, 0, got.stderr)
        self.assertEqual(pkg_names(got.stdout), pkg_names(want.stdout))
        self.assertGreater(len(pkg_names(got.stdout)), 0)
        self.assertEqual(strip_volatile(got.stdout), strip_volatile(want.stdout))
        return got


class TestScanRegistry(RegistryCase):
    def test_oci_manifest_gzip_by_tag_and_digest(self):
        d, image_id = build_layout(self.work, "gz", compress="gzip")
        digest = self.reg.push(d, "team/gz:1.0")
        got = self.assertSameAsOci(d, f"{self.reg.host}/team/gz:1.0")
        self.assertIn(image_id, got.stderr)
        self.assertSameAsOci(d, f"{self.reg.host}/team/gz@{digest}")

    def test_docker_v2_manifest(self):
        d, _ = build_layout(self.work, "v2s2", compress="gzip")
        digest = self.reg.push(d, "team/v2s2:1", fmt="v2s2")
        # The registry serves a Docker v2 manifest.
        blob = read_bytes(self.reg.blob_path(digest))
        self.assertIn(b"application/vnd.docker.distribution.manifest.v2+json", blob)
        self.assertSameAsOci(d, f"{self.reg.host}/team/v2s2@{digest}")

    def test_zstd_and_uncompressed_layers(self):
        for comp in ("zstd", "none"):
            d, _ = build_layout(self.work, f"c-{comp}", compress=comp)
            self.reg.push(d, f"team/c-{comp}:1")
            self.assertSameAsOci(d, f"{self.reg.host}/team/c-{comp}:1")

    def test_multi_platform_index(self):
        d, amd_id, arm_id = build_multiplatform(self.work)
        digest = self.reg.push(d, "team/multi:1", all_images=True)
        for plat, iid in (("linux/amd64", amd_id), ("linux/arm64", arm_id)):
            got = self.assertSameAsOci(d, f"{self.reg.host}/team/multi@{digest}", "--platform", plat)
            self.assertIn(iid, got.stderr)
        bad = self.scan(f"{self.reg.host}/team/multi:1", "--platform", "linux/s390x")
        self.assertEqual(bad.returncode, 4, bad.stderr)
        self.assertIn("no manifest for the platform linux/s390x", bad.stderr)

    def test_unknown_manifest_is_exit_3(self):
        got = self.scan(f"{self.reg.host}/team/never:1")
        self.assertEqual(got.returncode, 3, got.stderr)
        self.assertIn(f"{self.reg.host}/team/never:1", got.stderr)
        self.assertIn("manifest unknown", got.stderr)
        self.assertIn("RETRYABLE", got.stderr)

    def test_wrong_credentials(self):
        d, _ = build_layout(self.work, "cred")
        self.reg.push(d, "team/cred:1")
        bad = write_auth(os.path.join(self.work, "bad-auth.json"), self.reg.host, password="wrong")
        got = self.scan(f"{self.reg.host}/team/cred:1", auth=bad)
        self.assertEqual(got.returncode, 4, got.stderr)
        self.assertIn("authentication", got.stderr)
        self.assertIn("RETRYABLE", got.stderr)
        self.assertIn(f"{self.reg.host}/team/cred:1", got.stderr)
        none = os.path.join(self.work, "none-auth.json")
        with open(none, "w") as f:
            f.write('{"auths": {}}')
        got = self.scan(f"{self.reg.host}/team/cred:1", auth=none)
        self.assertEqual(got.returncode, 4, got.stderr)
        self.assertIn("authentication", got.stderr)

    def test_untrusted_certificate(self):
        d, _ = build_layout(self.work, "tls")
        self.reg.push(d, "team/tls:1")
        got = self.scan(f"{self.reg.host}/team/tls:1", ca=False)
        self.assertEqual(got.returncode, 4, got.stderr)
        self.assertIn("TLS", got.stderr)
        self.assertIn("RETRYABLE", got.stderr)

    def test_registry_down_then_up(self):
        d, _ = build_layout(self.work, "down")
        self.reg.push(d, "team/down:1")
        self.reg.stop()
        try:
            got = self.scan(f"{self.reg.host}/team/down:1")
            self.assertEqual(got.returncode, 4, got.stderr)
            self.assertIn("cannot connect", got.stderr)
            self.assertIn("RETRYABLE", got.stderr)
        finally:
            self.reg.start()
        self.assertSameAsOci(d, f"{self.reg.host}/team/down:1")

    def test_corrupt_blob_on_disk_names_the_blob(self):
        d, _ = build_layout(self.work, "corrupt")
        self.reg.push(d, "team/corrupt:1")
        _, man = layout_manifest(d)
        layer = man["layers"][1]["digest"]
        p = self.reg.blob_path(layer)
        data = bytearray(read_bytes(p))
        data[len(data) // 2] ^= 0xFF
        with open(p, "wb") as f:
            f.write(bytes(data))
        got = self.scan(f"{self.reg.host}/team/corrupt:1")
        self.assertEqual(got.returncode, 4, got.stderr)
        self.assertIn(layer, got.stderr)
        self.assertIn("PERMANENT", got.stderr)
        self.assertTrue("digest mismatch" in got.stderr or "corrupt" in got.stderr, got.stderr)

    def test_mirror_serves_when_the_upstream_is_down(self):
        d, _ = build_layout(self.work, "mir")
        digest = self.reg.push(d, "team/mir:1")
        down = f"127.0.0.1:{free_port()}"  # nothing listens there
        ref = f"{down}/team/mir@{digest}"
        got = self.scan(ref)
        self.assertEqual(got.returncode, 4, got.stderr)
        self.assertIn("cannot connect", got.stderr)
        # Its mirror has the image (credentials and CA of the mirror's host).
        self.assertSameAsOci(d, ref, "--registry-mirror", f"{down}=https://{self.reg.host}")
        # A mirror of another registry is not used.
        got = self.scan(ref, "--registry-mirror", f"docker.io=https://{self.reg.host}")
        self.assertEqual(got.returncode, 4, got.stderr)
        self.assertIn("cannot connect", got.stderr)

    def test_failing_mirrors_hand_over_to_the_upstream(self):
        d, _ = build_layout(self.work, "mirfail")
        digest = self.reg.push(d, "team/mirfail:1")
        # One mirror that does not answer, one that has not got the image.
        empty = type(self).mreg = Registry(self.work, self.pki, "mirror-empty")
        auth = os.path.join(self.work, "mirror-auth.json")
        b = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        with open(auth, "w") as f:
            json.dump({"auths": {self.reg.host: {"auth": b}, empty.host: {"auth": b}}}, f)
        ref = f"{self.reg.host}/team/mirfail@{digest}"
        mirrors = ["--registry-mirror", f"{self.reg.host}=https://127.0.0.1:{free_port()}",
                   "--registry-mirror", f"{self.reg.host}=https://{empty.host}"]
        self.assertSameAsOci(d, ref, *mirrors, auth=auth)
        # With the upstream down too, the last endpoint's reason is told.
        self.reg.stop()
        try:
            got = self.scan(ref, *mirrors, auth=auth)
            self.assertEqual(got.returncode, 4, got.stderr)
            self.assertIn("cannot connect", got.stderr)
            self.assertIn(ref, got.stderr)
        finally:
            self.reg.start()

    def test_layer_cache_same_sbom_and_known_layers_not_fetched(self):
        d, _ = build_layout(self.work, "lcache", compress="gzip")
        self.reg.push(d, "team/lcache:1")
        ref = f"{self.reg.host}/team/lcache:1"
        cache = os.path.join(self.work, "layer-cache")
        none = self.scan(ref)
        cold = self.scan(ref, "--layer-cache", cache)
        warm = self.scan(ref, "--layer-cache", cache)
        for got in (none, cold, warm):
            self.assertEqual(got.returncode, 0, got.stderr)
            self.assertEqual(strip_volatile(got.stdout), strip_volatile(none.stdout))
        _, man = layout_manifest(d)
        n = len(man["layers"])
        self.assertIn(f"0 layers from the cache, {n} not in it, {n} stored", cold.stderr)
        self.assertIn(f"{n} layers from the cache, 0 not in it, 0 stored", warm.stderr)
        # Every layer blob on the registry's disk corrupted: a warm scan
        # does not fetch them, a scan without the cache fails.
        # (Put back afterwards: the class's other images may share these
        # blobs, and the class's tests run at once.)
        for l in man["layers"]:
            p = self.reg.blob_path(l["digest"])
            orig = read_bytes(p)
            self.addCleanup(lambda p=p, orig=orig: open(p, "wb").write(orig))
            data = bytearray(orig)
            data[len(data) // 2] ^= 0xFF
            with open(p, "wb") as f:
                f.write(bytes(data))
        again = self.scan(ref, "--layer-cache", cache)
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertEqual(strip_volatile(again.stdout), strip_volatile(none.stdout))
        self.assertEqual(self.scan(ref).returncode, 4)

    def test_bearer_token_registry(self):
        treg = type(self).treg = Registry(self.work, self.pki, "token", token=True)
        d, _ = build_layout(self.work, "tok")
        digest = treg.push(d, "team/tok:1")
        auth = write_auth(os.path.join(self.work, "tok-auth.json"), treg.host)
        before = treg.issuer.issued
        self.assertSameAsOci(d, f"{treg.host}/team/tok@{digest}", auth=auth)
        # One token served the manifest, the config and both layers.
        self.assertEqual(treg.issuer.issued - before, 1)
        bad = write_auth(os.path.join(self.work, "tok-bad.json"), treg.host, password="nope")
        got = self.scan(f"{treg.host}/team/tok:1", auth=bad)
        self.assertEqual(got.returncode, 4, got.stderr)
        self.assertIn("authentication", got.stderr)


class TestFakeRegistry(unittest.TestCase):
    """What a real registry will not serve."""

    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="sbomd-fakereg-")
        cls.layout, cls.image_id = build_layout(cls.work, "fake")
        cls.fake = FakeRegistry(cls.layout)
        cls.host = f"127.0.0.1:{cls.fake.port}"
        cls.auth = write_auth(os.path.join(cls.work, "auth.json"), cls.host)

    @classmethod
    def tearDownClass(cls):
        cls.fake.stop()
        shutil.rmtree(cls.work, ignore_errors=True)

    def scan(self, ref):
        return sbomd_scan("--registry-auth", self.auth, "--registry-insecure", self.host,
                          "--registry-insecure", f"localhost:{self.fake.blob_port}",
                          "registry:" + ref)

    def test_redirect_to_another_host_drops_credentials(self):
        self.fake.blob_auth.clear()
        got = self.scan(f"{self.host}/team/app:latest")
        self.assertEqual(got.returncode, 0, got.stderr)
        want = sbomd_scan(f"oci:{self.layout}")
        self.assertEqual(strip_volatile(got.stdout), strip_volatile(want.stdout))
        # The config and both layers came from the other host, with no
        # Authorization header.
        self.assertEqual(len(self.fake.blob_auth), 3)
        self.assertEqual(self.fake.blob_auth, [None, None, None])

    def test_redirect_to_plain_http_host_not_listed_is_refused(self):
        got = sbomd_scan("--registry-auth", self.auth, "--registry-insecure", self.host,
                         f"registry:{self.host}/team/app:latest")
        self.assertEqual(got.returncode, 4, got.stderr)
        self.assertIn("scan.registry_insecure_hosts", got.stderr)

    def test_manifest_larger_than_its_bound(self):
        got = self.scan(f"{self.host}/team/app:huge")
        self.assertEqual(got.returncode, 4, got.stderr)
        self.assertIn("more than the bound", got.stderr)
        self.assertIn("PERMANENT", got.stderr)
        self.assertIn(f"{self.host}/team/app:huge", got.stderr)


# ---- the service --------------------------------------------------------------

sys.path.insert(0, os.path.join(ROOT, "tests"))
import service_test  # noqa: E402  (the broker, instance and outcome helpers)


class TestServiceRegistry(service_test.Service):
    """`sbomd run` with scan.registry: images in no store are pulled by
    their repo digests from a real registry."""

    @classmethod
    def setUpClass(cls):
        need_tools()
        super().setUpClass()
        try:
            cls.pki = Pki(os.path.join(cls.class_work, "pki"))
            cls.reg = Registry(cls.class_work, cls.pki, "svc")
            cls.auth = write_auth(os.path.join(cls.class_work, "auth.json"), cls.reg.host)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "reg", None):
            cls.reg.close()
        super().tearDownClass()

    def registry_config(self, auth=None, insecure=()):
        empty = os.path.join(self.work, "empty-store")
        os.makedirs(empty, exist_ok=True)
        return self.config(scan=dict(stores=[empty], registry=True,
                                     registry_auth_file=auth or self.auth,
                                     registry_ca_file=self.pki.ca, registry_timeout="5s",
                                     registry_insecure_hosts=list(insecure),
                                     host_root=f"{self.work}/no-such-host-root", workers=2))

    def image(self, name):
        d, image_id = build_layout(self.work, name)
        desc, _ = layout_manifest(d)
        return d, image_id, f"{self.reg.host}/team/{name}@{desc['digest']}"

    def test_pushed_late_retries_then_succeeds_and_no_more(self):
        d, image_id, ref = self.image("late")
        out = self.tail()
        self.start(self.registry_config())
        self.emit([self.set_(image_id, "node-1", repo_digests=[ref])])
        r = out.wait(self.of(image_id, "RETRY_SCHEDULED"), count=2, timeout=30, what="2 retries")
        for o in r[:2]:
            self.assertEqual(o["error_class"], "RETRYABLE")
            self.assertIn(ref, o["error"])
            self.assertIn("manifest unknown", o["error"])
        delays = [o["next_attempt_at"] - o["emitted_at"] for o in r[:2]]
        self.assertTrue(800 <= delays[0] <= 1200 and 1700 <= delays[1] <= 2300, delays)
        self.assertEqual(self.reg.push(d, "team/late:1"), ref.split("@")[1])
        ok = out.wait(self.of(image_id, "SUCCEEDED"), timeout=30)[0]
        self.assertEqual(ok["sbom"]["component_count"], 3)
        self.settle(out)
        got = self.statuses(out, image_id)
        n = len(got)
        self.assertEqual(got, [("RETRY_SCHEDULED", i) for i in range(1, n)] + [("SUCCEEDED", n)])

    def test_corrupt_blob_is_permanent_naming_it(self):
        d, image_id, ref = self.image("rot")
        self.reg.push(d, "team/rot:1")
        _, man = layout_manifest(d)
        layer = man["layers"][0]["digest"]
        p = self.reg.blob_path(layer)
        data = bytearray(read_bytes(p))
        data[len(data) // 2] ^= 0xFF
        with open(p, "wb") as f:
            f.write(bytes(data))
        out = self.tail()
        self.start(self.registry_config())
        self.emit([self.set_(image_id, "node-1", repo_digests=[ref])])
        o = out.wait(self.of(image_id, "FAILED"), timeout=30)[0]
        self.assertEqual((o["error_class"], o["attempt"]), ("PERMANENT", 1))
        self.assertIn(layer, o["error"])
        self.assertIn("digest mismatch", o["error"])
        self.assertIn(ref, o["error"])

    def test_config_digest_not_the_entity_id_is_permanent(self):
        d, image_id, ref = self.image("other")
        self.reg.push(d, "team/other:1")
        wrong = service_test.missing_id(0x77)
        out = self.tail()
        self.start(self.registry_config())
        self.emit([self.set_(wrong, "node-1", repo_digests=[ref])])
        o = out.wait(self.of(wrong, "FAILED"), timeout=30)[0]
        self.assertEqual(o["error_class"], "PERMANENT")
        self.assertIn(f"config digest {image_id} is not the image ID {wrong}", o["error"])
        self.assertIn(ref, o["error"])

    def test_rate_limited_next_attempt_not_before_retry_after(self):
        # A registry answering every request 429 with Retry-After: 5,
        # while the first backoff is 1 s.
        hits = []

        class Busy(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                hits.append(self.path)
                self.send_response(429)
                self.send_header("Retry-After", "5")
                self.send_header("Content-Length", "0")
                self.end_headers()

        busy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Busy)
        threading.Thread(target=busy.serve_forever, daemon=True).start()
        self.addCleanup(busy.server_close)
        self.addCleanup(busy.shutdown)
        host = f"127.0.0.1:{busy.server_address[1]}"
        image_id = service_test.missing_id(0x42)
        ref = f"{host}/team/busy@sha256:{'ab' * 32}"
        out = self.tail()
        self.start(self.registry_config(insecure=[host]))
        self.emit([self.set_(image_id, "node-1", repo_digests=[ref])])
        o = out.wait(self.of(image_id, "RETRY_SCHEDULED"), timeout=30)[0]
        self.assertEqual(o["error_class"], "RETRYABLE")
        self.assertIn(ref, o["error"])
        self.assertIn("429", o["error"])
        self.assertGreaterEqual(o["next_attempt_at"] - o["emitted_at"], 4900, o)
        self.assertLessEqual(o["next_attempt_at"] - o["emitted_at"], 6000, o)
        self.assertTrue(hits)

    def test_registry_down_then_restarted(self):
        d, image_id, ref = self.image("down")
        self.reg.push(d, "team/down:1")
        out = self.tail()
        self.start(self.registry_config())
        self.reg.stop()
        try:
            self.emit([self.set_(image_id, "node-1", repo_digests=[ref])])
            o = out.wait(self.of(image_id, "RETRY_SCHEDULED"), timeout=30)[0]
            self.assertEqual(o["error_class"], "RETRYABLE")
            self.assertIn("cannot connect", o["error"])
            self.assertIn(ref, o["error"])
        finally:
            self.reg.start()
        out.wait(self.of(image_id, "SUCCEEDED"), timeout=30)

    def test_wrong_credentials_retry_until_fixed(self):
        d, image_id, ref = self.image("creds")
        self.reg.push(d, "team/creds:1")
        auth = write_auth(os.path.join(self.work, "auth.json"), self.reg.host, password="wrong")
        out = self.tail()
        self.start(self.registry_config(auth=auth))
        self.emit([self.set_(image_id, "node-1", repo_digests=[ref])])
        o = out.wait(self.of(image_id, "RETRY_SCHEDULED"), timeout=30)[0]
        self.assertEqual(o["error_class"], "RETRYABLE")
        self.assertIn("authentication", o["error"])
        self.assertIn(ref, o["error"])
        write_auth(auth, self.reg.host)  # the operator fixes them
        out.wait(self.of(image_id, "SUCCEEDED"), timeout=30)


def main():
    global SBOMD
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    SBOMD = service_test.SBOMD = os.path.abspath(sys.argv[1])
    prog = unittest.main(argv=[sys.argv[0]] + sys.argv[2:], exit=False, verbosity=2)
    r = prog.result
    if not r.wasSuccessful():
        return 1
    return 77 if r.skipped and not r.testsRun - len(r.skipped) else 0


if __name__ == "__main__":
    sys.exit(main())
