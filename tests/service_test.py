#!/usr/bin/env python3
"""Integration tests of `sbomd run`: a real `sbomd dev-kafka` broker
process, a real `sbomd run` process with a real LMDB state directory, real
OCI image stores built here, events produced with `sbomd emit` and
outcomes read back with `sbomd tail`. Every assertion is on what reaches
the output (or dead-letter) topic, or on the process's exit status.

Usage: tests/service_test.py PATH/TO/sbomd [TestName ...]
"""
import json, os, random, re, shutil, signal, socket, subprocess, sys, tempfile, threading, time, unittest, warnings
import urllib.error, urllib.request

SBOMD = None
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MKIMAGES = os.path.join(ROOT, "tests/tools/mkimages.py")

STATUS = """Package: base-files
Status: install ok installed
Architecture: amd64
Version: 12.4+deb12u7

Package: libc6
Status: install ok installed
Architecture: amd64
Source: glibc
Version: 2.36-9+deb12u9

"""


def build_image(work, name, store, tag="latest", extra=""):
    """An OCI layout at store with one small Debian image; returns its ID."""
    root = os.path.join(work, f"{name}-root")
    os.makedirs(os.path.join(root, "etc"), exist_ok=True)
    os.makedirs(os.path.join(root, "var/lib/dpkg"), exist_ok=True)
    with open(os.path.join(root, "etc/os-release"), "w") as f:
        f.write(f'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian 12 {name}{extra}"\n')
    with open(os.path.join(root, "var/lib/dpkg/status"), "w") as f:
        f.write(STATUS)
    layer = os.path.join(work, f"{name}.tar")
    subprocess.run(["tar", "-C", root, "--owner=0", "--group=0", "--numeric-owner",
                    "--sort=name", "-cf", layer, "."], check=True)
    out = subprocess.run([sys.executable, MKIMAGES, "--oci", store, "--tag", tag, layer],
                         check=True, capture_output=True, text=True).stdout
    return out.strip()


class Tail:
    """`sbomd tail` in the background; outcomes collected as dicts."""

    def __init__(self, brokers, topic="scan-outcomes", raw=False):
        args = [SBOMD, "tail", "-b", brokers, "-t", topic, "--no-sbom" if not raw else "--raw"]
        self.p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.items = []
        self.lock = threading.Lock()
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for line in self.p.stdout:
            try:
                o = json.loads(line)
            except ValueError:
                continue
            with self.lock:
                self.items.append(o)

    def snapshot(self, pred=lambda o: True):
        with self.lock:
            return [o for o in self.items if pred(o)]

    def wait(self, pred, count=1, timeout=30.0, what="outcome"):
        end = time.time() + timeout
        while time.time() < end:
            got = self.snapshot(pred)
            if len(got) >= count:
                return got
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout}s waiting for {count} x {what}; "
                             f"have: {json.dumps(self.snapshot(), indent=None)[:3000]}")

    def close(self):
        self.p.terminate()
        try:
            self.p.wait(5)
        except subprocess.TimeoutExpired:
            self.p.kill()


class Service(unittest.TestCase):
    """One dev-kafka and one state dir per test; `sbomd run` started by
    start() with the test's configuration."""

    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="sbomd-svc.")
        self.procs = []
        self.tails = []
        boot = os.path.join(self.work, "bootstrap")
        self.control = os.path.join(self.work, "control")
        self.dk = subprocess.Popen(
            [SBOMD, "dev-kafka", "--bootstrap-file", boot, "--control", self.control,
             "--topic", "workload-events:4", "--topic", "scan-outcomes:4",
             "--topic", "sbomd-dead-letter:1"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.work, "dk.log"), "w"))
        end = time.time() + 20
        while not os.path.exists(boot):
            self.assertIsNone(self.dk.poll(), "dev-kafka exited")
            self.assertLess(time.time(), end, "dev-kafka did not start")
            time.sleep(0.05)
        self.brokers = open(boot).read().strip()
        self.stores = os.path.join(self.work, "stores")
        os.makedirs(self.stores)
        self.store_a = os.path.join(self.stores, "a")
        self.image_a = build_image(self.work, "a", self.store_a)
        self.state = os.path.join(self.work, "state")
        self.run = None

    def tearDown(self):
        for t in self.tails:
            t.close()
        if self.run and self.run.poll() is None:
            self.run.kill()
            self.run.wait()
        self.dk.terminate()
        try:
            self.dk.wait(10)
        except subprocess.TimeoutExpired:
            self.dk.kill()
        shutil.rmtree(self.work, ignore_errors=True)

    def config(self, extra="", retry='base_backoff = "1s"; max_backoff = "4s";',
               stores=None, name="sbomd.cfg", listen=""):
        stores = stores if stores is not None else [self.store_a]
        path = os.path.join(self.work, name)
        with open(path, "w") as f:
            # A killed member is replaced after session.timeout.ms: keep it short.
            f.write(f"""kafka = {{ brokers = "{self.brokers}"; dead_letter_topic = "sbomd-dead-letter";
  consumer_properties = [ "session.timeout.ms=6000", "heartbeat.interval.ms=500" ]; }};
state = {{ dir = "{self.state}"; }};
retry = {{ {retry} }};
scan = {{ stores = {json.dumps(stores).replace('[', '[ ').replace(']', ' ]')}; host_root = "{self.work}/no-such-host-root"; workers = 2; }};
http = {{ listen = "{listen}"; }};
log = {{ format = "text"; level = "debug"; }};
{extra}
""")
        return path

    def start(self, cfg, wait_assigned=True):
        self.log_path = os.path.join(self.work, f"run-{len(self.procs)}.log")
        self.stdout_path = os.path.join(self.work, f"run-{len(self.procs)}.stdout")
        self.run = subprocess.Popen([SBOMD, "run", "-c", cfg], stdout=open(self.stdout_path, "w"),
                                    stderr=open(self.log_path, "w"))
        self.procs.append(self.run)
        if wait_assigned:
            self.wait_log("partitions assigned", 30)
        return self.run

    def log(self):
        try:
            return open(self.log_path).read()
        except OSError:
            return ""

    def wait_log(self, needle, timeout):
        end = time.time() + timeout
        while needle not in self.log():
            if self.run.poll() is not None:
                self.fail(f"sbomd run exited {self.run.returncode}:\n{self.log()[-3000:]}")
            if time.time() > end:
                self.fail(f"no \"{needle}\" in the log within {timeout}s:\n{self.log()[-3000:]}")
            time.sleep(0.05)

    def tail(self, topic="scan-outcomes", raw=False):
        t = Tail(self.brokers, topic, raw)
        self.tails.append(t)
        return t

    def emit(self, events, raw=False, extra_args=()):
        if raw:
            data = "".join(events)
        else:
            data = "".join(json.dumps(e) + "\n" for e in events)
        r = subprocess.run([SBOMD, "emit", "-b", self.brokers, *(["--raw"] if raw else []), *extra_args],
                           input=data, text=True, capture_output=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)

    @staticmethod
    def set_(id_, source, kind="CONTAINER_IMAGE", **kw):
        return dict(type="SET", kind=kind, id=id_, source=source, **kw)

    @staticmethod
    def unset(id_, source, kind="CONTAINER_IMAGE"):
        return dict(type="UNSET", kind=kind, id=id_, source=source)

    def of(self, id_, status=None):
        return lambda o: o.get("id") == id_ and (status is None or o.get("status") == status)

    def stop_run(self):
        self.run.send_signal(signal.SIGTERM)
        rc = self.run.wait(30)
        self.assertEqual(rc, 0, self.log()[-3000:])
        self.assertEqual(os.path.getsize(self.stdout_path), 0, "sbomd run wrote to stdout")


def missing_id(n):
    return "sha256:" + ("%064x" % (0xabc000 + n))


class TestScanning(Service):
    def test_one_scan_for_1000_sets_from_50_sources(self):
        out = self.tail()
        self.start(self.config())
        events = [self.set_(self.image_a, f"node-{i % 50}", repo_tags=[f"app:{i % 3}"])
                  for i in range(1000)]
        self.emit(events)
        ok = out.wait(self.of(self.image_a, "SUCCEEDED"), what="SUCCEEDED of image A")
        time.sleep(3)
        mine = out.snapshot(self.of(self.image_a))
        self.assertEqual([o["status"] for o in mine], ["SUCCEEDED"], mine)
        self.assertEqual(ok[0]["attempt"], 1)
        self.assertEqual(ok[0]["sbom"]["component_count"], 2)
        self.assertEqual(ok[0]["kafka"]["key"], self.image_a)
        self.assertEqual(self.log().count("scan started"), 1, self.log()[-2000:])

    def test_retry_until_pulled_then_success_and_no_more(self):
        out = self.tail()
        store_b = os.path.join(self.stores, "b")
        staging = os.path.join(self.work, "staging-b")
        image_b = build_image(self.work, "b", staging)
        self.start(self.config(stores=[self.store_a, store_b]))
        self.emit([self.set_(image_b, "node-1")])
        r = out.wait(self.of(image_b, "RETRY_SCHEDULED"), count=3, timeout=30, what="3 retries")
        attempts = [o["attempt"] for o in r[:3]]
        self.assertEqual(attempts, [1, 2, 3])
        for o in r[:3]:
            self.assertEqual(o["error_class"], "RETRYABLE")
            self.assertIn("not found", o["error"])
        delays = [o["next_attempt_at"] - o["emitted_at"] for o in r[:3]]
        # base 1s, x2, jitter 10%: ~1s, ~2s, ~4s
        self.assertTrue(800 <= delays[0] <= 1200 and 1700 <= delays[1] <= 2300 and 3500 <= delays[2] <= 4500,
                        delays)
        shutil.copytree(staging, store_b)  # "pulled"
        ok = out.wait(self.of(image_b, "SUCCEEDED"), timeout=30)
        n = len(out.snapshot(self.of(image_b)))
        time.sleep(6)
        after = out.snapshot(self.of(image_b))
        self.assertEqual(len(after), n, "outcomes after SUCCEEDED: %s" % after[n:])
        self.assertEqual(ok[0]["attempt"], after[-2]["attempt"] + 1)

    def test_unset_one_source_keeps_retrying_both_cancels(self):
        out = self.tail()
        c = missing_id(1)
        self.start(self.config())
        self.emit([self.set_(c, "node-1"), self.set_(c, "node-2")])
        out.wait(self.of(c, "RETRY_SCHEDULED"), count=1)
        self.emit([self.unset(c, "node-1")])
        before = len(out.snapshot(self.of(c)))
        out.wait(self.of(c, "RETRY_SCHEDULED"), count=before + 1, timeout=15,
                 what="a retry after one UNSET")
        self.emit([self.unset(c, "node-2")])
        cancelled = out.wait(self.of(c, "CANCELLED"), timeout=15)
        self.assertEqual(len(cancelled), 1)
        n = len(out.snapshot(self.of(c)))
        time.sleep(6)
        after = out.snapshot(self.of(c))
        self.assertEqual(len(after), n, "outcomes after CANCELLED: %s" % after[n:])
        self.assertEqual(after[-1]["status"], "CANCELLED")

    def test_permanent_error_fails_at_once(self):
        out = self.tail()
        bad = os.path.join(self.stores, "bad")
        image_bad = build_image(self.work, "bad", bad)
        blobs = os.path.join(bad, "blobs/sha256")
        idx = json.load(open(os.path.join(bad, "index.json")))
        man = json.load(open(os.path.join(blobs, idx["manifests"][0]["digest"][7:])))
        big = man["layers"][0]["digest"][7:]
        p = os.path.join(blobs, big)
        data = bytearray(open(p, "rb").read())
        data[len(data) // 2] ^= 0xFF
        open(p, "wb").write(data)
        self.start(self.config(stores=[self.store_a, bad]))
        self.emit([self.set_(image_bad, "node-1")])
        f = out.wait(self.of(image_bad, "FAILED"))
        self.assertEqual(f[0]["error_class"], "PERMANENT")
        self.assertEqual(f[0]["attempt"], 1)
        self.assertIn(big, f[0]["error"])
        time.sleep(4)
        self.assertEqual(len(out.snapshot(self.of(image_bad))), 1)

    def test_max_attempts(self):
        out = self.tail()
        d = missing_id(2)
        self.start(self.config(retry='base_backoff = "500ms"; max_backoff = "1s"; max_attempts = 3;'))
        self.emit([self.set_(d, "node-1")])
        f = out.wait(self.of(d, "FAILED"), timeout=30)
        mine = out.snapshot(self.of(d))
        self.assertEqual([(o["status"], o["attempt"]) for o in mine],
                         [("RETRY_SCHEDULED", 1), ("RETRY_SCHEDULED", 2), ("FAILED", 3)])
        self.assertIsNone(f[0]["next_attempt_at"])

    def test_backend_none_tracks_without_scanning(self):
        out = self.tail()
        cfg = self.config()
        txt = open(cfg).read().replace("workers = 2;", 'workers = 2; backend = "none";')
        open(cfg, "w").write(txt)
        self.start(cfg)
        self.emit([self.set_(self.image_a, "node-1"), self.set_(self.image_a, "node-2")])
        time.sleep(3)
        self.assertEqual(out.snapshot(), [], "no scans, no outcomes")
        # `sbomd state` reads the state while the service runs.
        r = subprocess.run([SBOMD, "state", "-c", cfg, "show", self.image_a],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"state\s+QUEUED")
        self.assertRegex(r.stdout, r"attempts\s+0")
        self.assertIn("source node-2: holding", r.stdout)
        self.stop_run()

    def test_host_scanned_not_retried(self):
        out = self.tail()
        self.start(self.config())
        self.emit([self.set_("node-7", "node-7", kind="HOST")])
        f = out.wait(self.of("node-7", "FAILED"))
        self.assertEqual(f[0]["kind"], "HOST")
        time.sleep(4)
        self.assertEqual([o["status"] for o in out.snapshot(self.of("node-7"))], ["FAILED"])


class TestExec(Service):
    def exec_config(self, script, extra_scan=""):
        cfg = self.config()
        txt = open(cfg).read().replace(
            "workers = 2;",
            'workers = 2; backend = "exec"; exec_argv = [ "/bin/sh", "-c", %s, "sh", "{id}", "{ref}" ]; '
            'exec_retryable_exit_codes = [ 75 ]; %s' % (json.dumps(script), extra_scan))
        open(cfg, "w").write(txt)
        return cfg

    def test_exec_success_and_classes(self):
        out = self.tail()
        script = ('case "$1" in *1) printf \'{"bomFormat":"CycloneDX","components":[{"name":"%s"},{}]}\' "$2";; '
                  '*2) echo "registry down" >&2; exit 75;; *) echo "bad image" >&2; exit 3;; esac')
        self.start(self.exec_config(script))
        a, b, c = missing_id(0x11), missing_id(0x12), missing_id(0x13)
        self.emit([self.set_(a, "n1", repo_tags=["app:1"]), self.set_(b, "n1"), self.set_(c, "n1")])
        ok = out.wait(self.of(a, "SUCCEEDED"))[0]
        self.assertEqual(ok["scanner"], "exec")
        self.assertEqual(ok["sbom"]["component_count"], 2)
        self.assertEqual(ok["repo_tags"], ["app:1"])
        r = out.wait(self.of(b, "RETRY_SCHEDULED"))[0]
        self.assertEqual(r["error_class"], "RETRYABLE")
        self.assertIn("registry down", r["error"])
        f = out.wait(self.of(c, "FAILED"))[0]
        self.assertEqual(f["error_class"], "PERMANENT")
        self.assertIn("bad image", f["error"])

    def test_backpressure_pauses_and_resumes(self):
        out = self.tail()
        script = 'sleep 0.05; printf \'{"bomFormat":"CycloneDX","components":[]}\''
        cfg = self.exec_config(script)
        txt = open(cfg).read() + 'engine = { max_pending = 20; batch_max = 5; };\n'
        txt = txt.replace('dead_letter_topic = "sbomd-dead-letter";',
                          'dead_letter_topic = "sbomd-dead-letter"; output_framing = "confluent"; '
                          'output_schema_id = 42;')
        open(cfg, "w").write(txt)
        self.start(cfg)
        ids = [missing_id(0x1000 + i) for i in range(120)]
        self.emit([self.set_(i, "node-1") for i in ids])
        done = out.wait(lambda o: o.get("status") == "SUCCEEDED", count=120, timeout=120,
                        what="120 scans")
        self.assertEqual(sorted({o["id"] for o in done}), sorted(ids))
        log = self.log()
        self.assertIn('"input paused" reason=backpressure', log)
        self.assertIn('"input resumed"', log)
        # The heap never held more than the bound plus one poll batch.
        heaps = [int(h) for h in re.findall(r'"input paused" reason=backpressure outbox=\d+ heap=(\d+)', log)]
        self.assertTrue(heaps and max(heaps) <= 20 + 5, heaps)
        self.stop_run()

    def test_sigterm_requeues_running_scan(self):
        out = self.tail()
        marks = os.path.join(self.work, "marks")
        script = 'echo "start $1" >> %s; sleep 40.5' % marks
        cfg = self.exec_config(script)
        self.start(cfg)
        x = missing_id(0x15)
        self.emit([self.set_(x, "n1")])
        end = time.time() + 20
        while not (os.path.exists(marks) and "start" in open(marks).read()):
            self.assertLess(time.time(), end, "the scan did not start")
            time.sleep(0.05)
        t0 = time.time()
        self.stop_run()  # aborts the scan, requeues it, exits 0
        self.assertLess(time.time() - t0, 15)
        r = subprocess.run([SBOMD, "state", "-c", cfg, "show", x], capture_output=True, text=True)
        self.assertRegex(r.stdout, r"state\s+QUEUED")
        self.assertRegex(r.stdout, r"attempts\s+0")
        self.assertEqual(out.snapshot(self.of(x)), [], "an aborted scan publishes nothing")
        # After a restart the scan runs again, as attempt 1.
        txt = open(cfg).read().replace(json.dumps(script), json.dumps("exit 3"))
        open(cfg, "w").write(txt)
        self.start(cfg)
        f = out.wait(self.of(x, "FAILED"))[0]
        self.assertEqual(f["attempt"], 1)

    def test_running_scan_aborted_when_last_reference_goes(self):
        out = self.tail()
        marks = os.path.join(self.work, "marks")
        script = 'echo "start $1 $$" >> %s; sleep 41.5; echo "end $1" >> %s' % (marks, marks)
        self.start(self.exec_config(script))
        x = missing_id(14)
        self.emit([self.set_(x, "n1")])
        end = time.time() + 20
        while not (os.path.exists(marks) and "start" in open(marks).read()):
            self.assertLess(time.time(), end, "the scan did not start")
            time.sleep(0.05)
        pid = int(open(marks).read().split()[2])
        self.emit([self.unset(x, "n1")])
        c = out.wait(self.of(x, "CANCELLED"))[0]
        self.assertEqual(c["attempt"], 1)
        end = time.time() + 15
        while os.path.exists(f"/proc/{pid}") and open(f"/proc/{pid}/stat").read().split()[2] != "Z":
            self.assertLess(time.time(), end, "the aborted scan's process is still running")
            time.sleep(0.1)
        # SET again: a new scan starts (after the aborted one came back).
        self.emit([self.set_(x, "n2")])
        end = time.time() + 20
        while open(marks).read().count("start") < 2:
            self.assertLess(time.time(), end, "no new scan after the re-SET")
            time.sleep(0.05)
        self.assertNotIn("end", open(marks).read(), "the aborted scan ran to its end")
        self.assertEqual([o["status"] for o in out.snapshot(self.of(x))], ["CANCELLED"])


def free_port():
    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        return so.getsockname()[1]


def get(url, timeout=10):
    """(status, body) of a GET; HTTP errors are answers too."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def metric(text, name, labels=None):
    """The value of one series in Prometheus text (None if absent)."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        m = re.match(r'^([a-z_]+)(\{[^}]*\})? (\S+)$', line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'([a-z_]+)="([^"]*)"', m.group(2) or ""))
        if labels is None or all(got.get(k) == v for k, v in labels.items()):
            return float(m.group(3))
    return None


class TestHttp(Service):
    def start_http(self, retry='base_backoff = "3s"; max_backoff = "3s"; jitter = 0.0;'):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.start(self.config(listen=f"127.0.0.1:{self.port}", retry=retry), wait_assigned=False)
        end = time.time() + 20
        while True:
            try:
                return get(self.base + "/readyz")
            except (urllib.error.URLError, ConnectionError):
                self.assertLess(time.time(), end, "http did not come up:\n" + self.log()[-2000:])
                time.sleep(0.05)

    def wait_ready(self):
        end = time.time() + 30
        while get(self.base + "/readyz")[0] != 200:
            self.assertLess(time.time(), end, "never ready")
            time.sleep(0.1)

    def test_endpoints_follow_the_work(self):
        out = self.tail()
        first = self.start_http()
        # Not ready before the group join (about 3 s against dev-kafka).
        self.assertEqual(first[0], 503)
        self.assertIn(first[1], ("recovering state\n", "no partitions assigned\n"))
        self.wait_ready()
        self.assertEqual(get(self.base + "/healthz"), (200, "ok\n"))
        _, m0 = get(self.base + "/metrics")
        self.assertEqual(metric(m0, "sbomd_scans_started_total"), 0)
        self.assertEqual(metric(m0, "sbomd_ready"), 1)
        self.assertEqual(metric(m0, "sbomd_entities", {"state": "QUEUED"}), 0)
        g = missing_id(0x21)
        self.emit([self.set_(self.image_a, f"node-{i}") for i in range(5)] +
                  [self.set_(g, "node-1", repo_tags=["web:2"]),
                   self.set_(g, "node-1", repo_tags=["web:2"]),
                   self.unset(missing_id(0x99), "node-1")])
        out.wait(self.of(self.image_a, "SUCCEEDED"))
        out.wait(self.of(g, "RETRY_SCHEDULED"))
        time.sleep(0.6)  # snapshots are published every 250 ms
        _, m = get(self.base + "/metrics")
        ev = lambda t, r: metric(m, "sbomd_events_consumed_total", {"type": t, "result": r})
        self.assertEqual(ev("SET", "applied"), 6)
        self.assertEqual(ev("SET", "deduplicated"), 1)
        self.assertEqual(ev("UNSET", "unknown_entity"), 1)
        self.assertEqual(metric(m, "sbomd_scans_started_total"), 2)
        self.assertEqual(metric(m, "sbomd_scans_finished_total", {"result": "success"}), 1)
        self.assertEqual(metric(m, "sbomd_scans_finished_total", {"error_class": "RETRYABLE"}), 1)
        self.assertEqual(metric(m, "sbomd_retries_scheduled_total"), 1)
        self.assertEqual(metric(m, "sbomd_entities", {"state": "DONE"}), 1)
        self.assertEqual(metric(m, "sbomd_entities", {"state": "QUEUED"}), 1)
        self.assertEqual(metric(m, "sbomd_scan_duration_seconds_count"), 2)
        self.assertGreater(metric(m, "sbomd_state_commit_duration_seconds_count"), 0)
        self.assertGreater(metric(m, "sbomd_next_due_seconds"), 0)
        self.assertEqual(metric(m, "sbomd_outbox_messages"), 0)
        # The JSON endpoint shows the retry.
        st, body = get(self.base + "/api/v1/entities/" + g)
        self.assertEqual(st, 200)
        j = json.loads(body)
        self.assertEqual((j["state"], j["attempts"]), ("QUEUED", 1))
        self.assertIn("not found", j["last_error"])
        self.assertEqual(j["sources"][0]["repo_tags"], ["web:2"])
        self.assertGreater(j["next_attempt_at_ms"], int(time.time() * 1000) - 1000)
        out.wait(self.of(g, "RETRY_SCHEDULED"), count=2, timeout=15)
        time.sleep(0.3)
        j2 = json.loads(get(self.base + "/api/v1/entities/" + g)[1])
        self.assertEqual(j2["attempts"], 2)
        self.assertEqual(get(self.base + "/api/v1/entities/" + missing_id(0x77))[0], 404)
        # Readiness flips when the partitions go (shutdown revokes them).
        self.run.send_signal(signal.SIGTERM)
        self.assertEqual(self.run.wait(30), 0)

    def test_status_page_in_a_browser(self):
        chromium = shutil.which("chromium")
        if chromium is None:
            self.skipTest("chromium not installed (scripts/setup.sh installs it)")
        out = self.tail()
        self.start_http(retry='base_backoff = "1m"; max_backoff = "1m";')
        self.wait_ready()
        g = missing_id(0x31)
        self.emit([self.set_(g, "node-4", repo_tags=["shop/cart:7"]), self.set_(self.image_a, "node-4")])
        out.wait(self.of(g, "RETRY_SCHEDULED"))
        out.wait(self.of(self.image_a, "SUCCEEDED"))
        art = os.environ.get("SBOMD_TEST_ARTIFACTS", os.path.join(self.work, "artifacts"))
        os.makedirs(art, exist_ok=True)
        shot = os.path.join(art, "status.png")
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 f"--user-data-dir={self.work}/chromium", "--window-size=1280,1000"]
        r = subprocess.run([chromium, *flags, "--dump-dom", self.base + "/status"],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        dom = r.stdout
        retries = re.search(r'<table id="retries">(.*?)</table>', dom, re.S)
        self.assertIsNotNone(retries, dom[:2000])
        self.assertIn(g, retries.group(1))
        self.assertIn("shop/cart:7", retries.group(1))
        self.assertIn("not found", retries.group(1))
        self.assertNotIn(self.image_a, retries.group(1))
        outcomes = re.search(r'<table id="outcomes">(.*?)</table>', dom, re.S).group(1)
        self.assertIn("SUCCEEDED", outcomes)
        self.assertIn("RETRY_SCHEDULED", outcomes)
        states = re.search(r'<table id="states">(.*?)</table>', dom, re.S).group(1)
        cells = re.findall(r'<td class="num">(\d+)</td>', states)
        self.assertEqual(cells[:5], ["1", "0", "1", "0", "0"])  # QUEUED, SCANNING, DONE, ...
        r = subprocess.run([chromium, *flags, f"--screenshot={shot}", self.base + "/status"],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        self.assertTrue(os.path.getsize(shot) > 10000, "screenshot too small")
        print(f"screenshot: {shot}", file=sys.stderr)


class TestDurability(Service):
    def test_kill9_keeps_schedule_and_loses_nothing(self):
        out = self.tail()
        e = missing_id(3)
        cfg = self.config(retry='base_backoff = "3s"; max_backoff = "3s"; jitter = 0.0;')
        self.start(cfg)
        self.emit([self.set_(e, "node-1")])
        r = out.wait(self.of(e, "RETRY_SCHEDULED"), count=2, timeout=30)
        due = r[1]["next_attempt_at"]
        self.run.send_signal(signal.SIGKILL)
        self.run.wait()
        # Events produced while the service is down are applied after.
        self.emit([self.set_(self.image_a, "node-9")])
        self.start(cfg)
        r3 = out.wait(self.of(e, "RETRY_SCHEDULED"), count=3, timeout=30)
        third = r3[2]
        self.assertEqual(third["attempt"], 3, "attempt numbers continue")
        # The schedule was kept: attempt 3 did not start before its due time.
        self.assertGreaterEqual(third["started_at"], due - 50)
        out.wait(self.of(self.image_a, "SUCCEEDED"), timeout=30)
        mine = out.snapshot(self.of(e))
        attempts = sorted({o["attempt"] for o in mine})
        self.assertEqual(attempts, list(range(1, attempts[-1] + 1)), "no outcome lost")

    def test_broker_down_20s(self):
        out = self.tail()
        f = missing_id(4)
        self.start(self.config(retry='base_backoff = "1s"; max_backoff = "2s";'))
        self.emit([self.set_(f, "node-1")])
        out.wait(self.of(f, "RETRY_SCHEDULED"), count=1)
        with open(self.control, "w") as c:
            c.write("down all\n")
        time.sleep(20)
        self.assertIsNone(self.run.poll(), "sbomd run died while the broker was down")
        with open(self.control, "w") as c:
            c.write("up all\n")
        # Retries ran meanwhile (about one per 2 s): all their outcomes arrive.
        r = out.wait(self.of(f, "RETRY_SCHEDULED"), count=8, timeout=60)
        attempts = sorted({o["attempt"] for o in r})
        self.assertEqual(attempts, list(range(1, attempts[-1] + 1)), "no gap in attempts")
        self.stop_run()


class TestInput(Service):
    def test_malformed_input_dead_lettered(self):
        dlq = self.tail("sbomd-dead-letter", raw=True)
        out = self.tail()
        cfg = self.config(extra="")
        with open(cfg, "a") as fh:
            fh.write("")
        # kafka.accepted_schema_ids and max_payload_bytes: a second kafka group is not allowed,
        # so rewrite the line.
        txt = open(cfg).read().replace('dead_letter_topic = "sbomd-dead-letter";',
                                       'dead_letter_topic = "sbomd-dead-letter"; '
                                       'accepted_schema_ids = [ 7 ]; max_payload_bytes = "1KiB";')
        open(cfg, "w").write(txt)
        self.start(cfg)
        # A valid event, encoded by emit, captured raw from the topic.
        good_hex = self.encode_hex(self.set_(self.image_a, "node-x"))
        fp_hex = good_hex[4:20]
        body = good_hex[20:]
        rnd = random.Random(5)
        bad = [
            "k1\t" + "".join("%02x" % rnd.randrange(256) for _ in range(40)),  # random bytes
            "k2\t" + good_hex[:len(good_hex) // 4 * 2],                              # truncated Avro
            "k3\t" + "c301" + "00" * 8 + body,                                    # wrong fingerprint
            "k4\t" + "0000000009" + body,                                         # unknown Confluent id
            "k5\t" + "c301" + fp_hex + "00" * 2048,                               # oversized payload
        ]
        self.emit([b + "\n" for b in bad], raw=True)
        got = dlq.wait(lambda o: True, count=5, timeout=30, what="5 dead letters")
        by_key = {o["kafka"]["key"]: o for o in got}
        self.assertEqual(sorted(by_key), ["k1", "k2", "k3", "k4", "k5"])
        for k, o in by_key.items():
            h = o["headers"]
            self.assertEqual(h["sbomd.topic"], "workload-events")
            self.assertIn("sbomd.offset", h)
            self.assertIn("sbomd.partition", h)
            self.assertTrue(h["sbomd.error"])
        self.assertEqual(by_key["k1"]["value_hex"], bad[0].split("\t")[1])
        self.assertIn("fingerprint", by_key["k3"]["headers"]["sbomd.error"])
        self.assertIn("9", by_key["k4"]["headers"]["sbomd.error"])
        # Confluent framing with an accepted id, and later valid events, work.
        self.emit([self.set_(self.image_a, "node-1")], extra_args=("--framing", "confluent", "--schema-id", "7"))
        out.wait(self.of(self.image_a, "SUCCEEDED"), timeout=30)
        self.assertIsNone(self.run.poll())

    def test_json_logs_and_rate_limit(self):
        out = self.tail()
        cfg = self.config()
        txt = open(cfg).read().replace('log = { format = "text"; level = "debug"; };',
                                       'log = { format = "json"; level = "info"; };')
        open(cfg, "w").write(txt)
        self.start(cfg)
        # 200 identical malformed messages: one error, at 200 offsets.
        self.emit(["k\tdeadbeef\n"] * 200, raw=True)
        self.emit([self.set_(missing_id(0x41), "node-1")])
        out.wait(self.of(missing_id(0x41), "RETRY_SCHEDULED"))
        time.sleep(1.5)
        self.emit(["k\tdeadbeef\n"], raw=True)  # a later repeat carries the count
        end = time.time() + 15
        while True:
            lines = [json.loads(l) for l in self.log().splitlines() if l.strip()]
            dl = [l for l in lines if l["msg"] == "dead letter"]
            if any("repeated" in l for l in dl) or time.time() > end:
                break
            time.sleep(0.2)
        for l in lines:
            self.assertIn(l["level"], ("info", "warn", "error"))
            self.assertTrue(l["ts"].endswith("Z"))
        self.assertLess(len(dl), 50, "identical dead-letter warnings were not rate-limited")
        repeated = sum(int(l.get("repeated", 0)) for l in dl)
        self.assertEqual(len(dl) + repeated, 201, [l.get("repeated") for l in dl])
        o = [l for l in lines if l["msg"] == "outcome" and l["id"] == missing_id(0x41)][0]
        self.assertEqual((o["status"], o["attempt"], o["error_class"]), ("RETRY_SCHEDULED", "1", "RETRYABLE"))
        self.assertIn("not found", o["error"])
        self.assertTrue(o["next_attempt_at"].endswith("Z"))
        self.stop_run()

    def encode_hex(self, event):
        """The Avro bytes `sbomd emit` produces for event, read back raw."""
        probe = self.tail("sbomd-probe", raw=True)
        with open(self.control, "w") as c:
            c.write("create-topic sbomd-probe 1\n")
        time.sleep(0.5)
        r = subprocess.run([SBOMD, "emit", "-b", self.brokers, "-t", "sbomd-probe"],
                           input=json.dumps(event) + "\n", text=True, capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        got = probe.wait(lambda o: True, timeout=30, what="the probe message")
        return got[0]["value_hex"]

    def test_bad_config_names_key_and_line(self):
        path = os.path.join(self.work, "bad.cfg")
        with open(path, "w") as f:
            f.write('kafka = {\n  brokers = "127.0.0.1:1";\n  grup_id = "x";\n};\n')
        r = subprocess.run([SBOMD, "run", "-c", path], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertIn(f"{path}:3", r.stderr)
        self.assertIn("kafka.grup_id", r.stderr)
        self.assertFalse(os.path.exists(self.state), "state touched before the config was valid")
        with open(path, "w") as f:
            f.write('retry = {\n  jitter = 1.5;\n};\n')
        r = subprocess.run([SBOMD, "run", "-c", path], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertIn(f"{path}:2", r.stderr)
        self.assertIn("retry.jitter", r.stderr)

    def test_sigterm_drains_and_exits_0(self):
        out = self.tail()
        self.start(self.config())
        self.emit([self.set_(self.image_a, "node-1")])
        out.wait(self.of(self.image_a, "SUCCEEDED"))
        t0 = time.time()
        self.stop_run()
        self.assertLess(time.time() - t0, 20)
        self.assertIn("outbox drained", self.log())


if __name__ == "__main__":
    warnings.simplefilter("ignore", ResourceWarning)
    SBOMD = os.path.abspath(sys.argv[1])
    unittest.main(argv=[sys.argv[0], "-v"] + sys.argv[2:], warnings="ignore")
