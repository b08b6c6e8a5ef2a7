#!/usr/bin/env python3
"""sbomd run end to end: ingestion throughput against the raw Kafka read
floor, and event-to-outcome latency. Everything in one run.

bench/bench_service.py [--sbomd build/sbomd] [--baseline OTHER_SBOMD] [--runs 3]
                       [--work /var/tmp/sbomd-bench-service] [--keep]
                       [--events 1000000] [--images 100000] [--sources 10]
                       [--partitions 64] [--compression zstd]
                       [--rate 1000] [--duration 20] [--latency-images 200]
                       [--skip-throughput] [--skip-latency]
                       [--changelog on|off|on,off]
                       [--delivery at-least-once|exactly-once|at-least-once,exactly-once]
                       [--broker dev-kafka|kafka] [--set GROUP.KEY=VALUE]...
                       [--consumer-property NAME=VALUE]...
                       [--warmup N] [--changelog-config KEY=VALUE|none]...

Needs: kcat on PATH, librdkafka.so.1 (read through ctypes, for offsets),
gzip (tests/tools/mkimages.py); for --broker kafka, scripts/kafka.sh and
its jars. Only 127.0.0.1; nothing is downloaded.
All files live under --work (wiped at start); every process started here
is stopped on exit (by its pid).

0. Variants. The sbomd configurations measured are --changelog x
   --delivery (default: the shipped defaults, changelog on, at-least-
   once). "changelog on" sets state.changelog_topic to a topic of its own
   per run and variant (sbomd-state-R-V, as many partitions as the input;
   R 0 is the warm-up), so that a fresh instance never restores an
   earlier run's entities;
   "off" sets it to "" (a lone instance). "exactly-once" writes
   kafka.delivery = "exactly-once"; "at-least-once" leaves the key out
   (it is the default). --set adds a configuration value to every sbomd
   run through its environment variable (engine.max_outbox=100000 ->
   SBOMD_ENGINE_MAX_OUTBOX=100000); --set kafka.consumer_properties is
   refused, as it would replace the list the runs write (see the END
   MARKER below): --consumer-property NAME=VALUE adds a librdkafka
   property to it instead. Before anything is produced, every
   variant's configuration goes through `sbomd run --print-config`: a key
   this sbomd does not know stops the benchmark with sbomd's message.
   --baseline OTHER_SBOMD measures every variant a second time with that
   binary (named "baseline: ..."), in the same runs and rotation: an A/B
   of two builds on the same topic, broker and load.
   Exactly-once throughput needs --broker kafka: the mock cluster does
   not return offsets committed in a transaction, so the end marker below
   would never be seen (refused at start).

1. Produce. A fresh `sbomd dev-kafka` with workload-events:PARTITIONS,
   scan-outcomes:8, sbomd-dead-letter:1 and the changelog topics (the
   mock cannot create topics through the admin API; it keeps only ~5 MiB
   per partition and drops the oldest silently), or with --broker kafka
   a real Apache Kafka (scripts/kafka.sh: one KRaft node on the same
   CPUs) with workload-events:PARTITIONS and each run's changelog,
   created before the runs with cleanup.policy=compact and
   segment.index.bytes=65536 (--changelog-config; "none" leaves the
   broker's default of 10 MiB). The broker preallocates a new segment's
   two index files at that size, sparse, and its first writes to them
   fault in zeroed pages ahead of what they write: a changelog that has
   lived for long pays that once per 1 GiB segment, but each run here
   writes a new topic of 64 partitions with about 1 MB each, and in
   later runs of an invocation those faults took 1.5-2 s of the broker's
   system CPU per run (its request handler threads, sampled from
   /proc/PID/task), against about 1 s in all without them. The two brokers serve very different fetch sizes:
   against Kafka a poll batch holds long runs of one partition, so more
   of an image's ten SETs fall in one batch and are coalesced into one
   state change and one changelog record (about 230k changelog records
   per run instead of about 1 M against the mock). EVENTS WorkloadEvent SET
   lines (IMAGES distinct "sha256:<64 hex>" IDs, each SET once by each of
   SOURCES sources "node-0".., source-major order, so the first IMAGES
   events create the entities and the rest are dedup SETs; one repo tag
   each) are written as JSON lines and produced by `sbomd emit` with its
   defaults (idempotent, zstd, linger 20 ms; --compression overrides the
   codec). emit fills event_id (a UUID) and observed_at. JSON emit
   does 1 M lines in ~5 s on a 2-core box, so no hand-made Avro is needed.
   The count is verified from the partitions' watermarks: the high
   watermarks sum to EVENTS and every low watermark is 0 (nothing
   dropped); one untimed kcat read also counts the messages.

2. Throughput, RUNS alternating pairs (a, b, a, b, ...), medians.
   Before them, --warmup runs of every variant (default 1 on Apache
   Kafka, 0 on the mock) that are not measured: the broker's JVM
   compiles the code of what sbomd asks of it (producing to a compacted
   topic, committing offsets) as it runs, and in a first run after its
   start its compiler threads took a third of its CPU; kcat's fetches
   are warmed by the untimed count read above.
   (a) `kcat -C -b B -t workload-events -e -q -o beginning > /dev/null`:
       the raw read floor (fetch + decompress, every partition to its
       end). Wall time of the process.
   (b) `sbomd run` with a fresh state dir and a fresh consumer group:
       every event decoded, applied to the tracker and made durable in
       LMDB, then its offset stored and committed.
       Scanning is disabled: scan.backend "none" (events are tracked and
       made durable, due entities wait in the heap, nothing is scanned),
       so the figure is ingestion alone. --scan-backend oci instead scans
       an empty containerd content store: every new image fails at once
       as not found and publishes one RETRY_SCHEDULED outcome, which puts
       100,000 directory lookups and outcomes on the same 2 CPUs.
       END MARKER: the consumer group's COMMITTED offsets equal the high
       watermark of every partition. The engine stores an offset only
       after the batch's LMDB transaction is durable, so this is the
       moment all EVENTS are durably applied and acknowledged to Kafka:
       the number an operator sees as "lag 0". The offsets are read from
       outside with OffsetFetch (rd_kafka_committed through ctypes) every
       50 ms; the run sets kafka.consumer_properties =
       ["auto.commit.interval.ms=100"] (default 1 s) so the marker lags
       the real end by at most ~0.15 s instead of ~1 s. No engine hook is
       needed for this.
       START: two figures. "from assignment": the "partitions assigned"
       log line's ts (the group join of a fresh group costs ~3 s against
       the mock, a one-off that is not ingestion); "from spawn": process
       start (state open, group join included). The ratio b/a uses the
       "from assignment" rate; kcat's figure includes its own start-up.
       After the marker: /metrics is kept as the run's metrics.json
       (commit count and time, changelog records), SIGTERM (must exit 0; its
       rusage gives the CPU and the peak RSS of the whole life), then `sbomd state stats`
       must show IMAGES entities, and with the changelog on
       /metrics must count at least IMAGES changelog records delivered
       (sbomd_changelog_records_delivered_total; http.listen is a free
       port). With the changelog on, the ordering rule holds the offsets
       until the batch's changelog records are acknowledged, and those
       records are bounded by engine.max_changelog_bytes (by
       engine.max_outbox, with the outcomes, before that key): backpressure
       pauses are counted from the log (each "input paused" line with its
       "repeated" count), with the number of outcomes logged. The ratio
       is given both as ratio of medians and per run (b over the kcat run
       just before it). Each run's variants go in a rotating order, so
       that none always follows kcat.
       log.level stays "info" (the default): one log line per outcome.
   Target: b >= a / 2.

3. Latency, with the first variant (dev-kafka has sbomd-state:8 for
   it). A fresh dev-kafka (workload-events:8), a fresh state, and a
   containerd content store holding LATENCY_IMAGES small images built with
   tests/tools/mkimages.py (one gzip layer: etc/os-release, whose comment
   makes each config digest distinct, and a 3-package var/lib/dpkg/
   status). `sbomd tail --no-sbom` reads the outcomes. After the group is
   assigned, RATE events/s for DURATION s go to `sbomd emit` through a
   pipe, paced by the clock; observed_at is set to the wall time (ms) the
   line is handed to emit (-X linger.ms=0, so the producer does not hold
   it back). Every (RATE*DURATION/LATENCY_IMAGES)-th event is the first
   SET of a new image (the event that causes a scan and a SUCCEEDED
   outcome); the others are SETs of already introduced images from
   rotating sources (dedup: no outcome). Per new image: outcome
   emitted_at - observed_at ("to outcome", the service's latency) and
   the time tail printed it - observed_at ("end to end", through the
   output topic). p50 / p99 / max.

Results: a summary table on stdout, the details in WORK/results.json.
"""
import argparse, math, hashlib, io, json, os, random, re, shutil, signal
import statistics, subprocess, sys, tarfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOPIC = "workload-events"

# ---- processes: every child is stopped on exit -----------------------------

CHILDREN = []


def spawn(argv, **kw):
    p = subprocess.Popen(argv, **kw)
    CHILDREN.append(p)
    return p


def stop(p, timeout=30):
    """SIGTERM, wait; SIGKILL if it does not go. Returns the exit status."""
    if p.poll() is None:
        try:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if p in CHILDREN:
        CHILDREN.remove(p)
    return p.returncode


def stop_all():
    for p in list(CHILDREN):
        stop(p, 10)


def on_signal(sig, _frame):
    stop_all()
    sys.exit(128 + sig)


PROG = os.path.splitext(os.path.basename(sys.argv[0]))[0] or "bench_service"


def die(msg):
    stop_all()
    sys.exit(f"{PROG}: " + msg)


# ---- librdkafka through ctypes: watermarks and committed offsets -----------

sys.path.insert(0, os.path.join(ROOT, "tests", "tools"))
import koffsets  # noqa: E402


class Kafka(koffsets.Offsets):
    """tests/tools/koffsets.py's observer; an error ends the benchmark."""

    def __init__(self, brokers, group="bench-service-observer"):
        try:
            super().__init__(brokers, group)
        except koffsets.KafkaError as e:
            die(str(e))

    def watermarks(self, topic, nparts):
        try:
            return super().watermarks(topic, nparts)
        except koffsets.KafkaError as e:
            die(str(e))


# ---- helpers ---------------------------------------------------------------

def start_devkafka(sbomd, work, topics):
    argv = [sbomd, "dev-kafka"]
    for t in topics:
        argv += ["--topic", t]
    log = open(os.path.join(work, "dev-kafka.log"), "wb")
    p = spawn(argv, stdout=subprocess.PIPE, stderr=log)
    line = p.stdout.readline().decode().strip()
    if not line:
        die("dev-kafka printed no address (see dev-kafka.log)")
    return p, line


KAFKA_SH = os.path.join(ROOT, "scripts", "kafka.sh")


def start_kafka(d, topics):
    """A real Apache Kafka (scripts/kafka.sh start D), stopped at exit,
    with topics {name: partitions}; returns its bootstrap address."""
    import atexit
    r = subprocess.run(["bash", KAFKA_SH, "start", d], capture_output=True, text=True)
    if r.returncode != 0:
        die(f"scripts/kafka.sh start exited {r.returncode}: {r.stderr[-2000:]}")
    atexit.register(lambda: subprocess.run(["bash", KAFKA_SH, "stop", d], capture_output=True))
    brokers = r.stdout.strip().splitlines()[-1]
    with open(os.path.join(d, "kafka.pid")) as f:
        BROKER_PID[0] = int(f.read().strip())
    for name, n in topics.items():
        t = subprocess.run(["bash", KAFKA_SH, "topics", "--bootstrap-server", brokers, "--create",
                            "--topic", name, "--partitions", str(n)], capture_output=True, text=True)
        if t.returncode != 0:
            die(f"creating topic {name}: {t.stderr[-2000:]}")
    return brokers


def wall_ms():
    return int(time.time() * 1000)


def parse_ts(ts):
    """The log's "2026-11-28T07:21:27.549Z" -> seconds since the epoch."""
    import calendar
    base, frac = ts.rstrip("Z").split(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + int(frac) / 1000


def write_config(path, brokers, group, state_dir, store, extra_consumer=(), backend="oci",
                 changelog_topic="", delivery=None, http="", input_topic=TOPIC):
    """An sbomd.cfg. changelog_topic "" runs a lone instance without a
    changelog; delivery None leaves kafka.delivery out (the default,
    at-least-once), else it is written as given."""
    props = ", ".join(json.dumps(x) for x in extra_consumer)
    dl = f'\n  delivery = "{delivery}";' if delivery else ""
    with open(path, "w") as f:
        f.write(f"""kafka = {{
  brokers = "{brokers}";
  group_id = "{group}";
  input_topic = "{input_topic}";
  consumer_properties = [ {props} ];{dl}
}};
state = {{ dir = "{state_dir}"; max_map_size = "16GiB"; changelog_topic = "{changelog_topic}"; }};
scan = {{ backend = "{backend}"; workers = 2; stores = [ "{store}" ]; }};
http = {{ listen = "{http}"; }};
log = {{ level = "info"; format = "json"; }};
""")


def set_env(pairs):
    """--set KEY=VALUE pairs (group.key=value) as the environment sbomd
    reads them: SBOMD_<GROUP>_<KEY>."""
    env = dict(os.environ)
    for kv in pairs:
        k, _, v = kv.partition("=")
        if "." not in k or not _:
            die(f"--set {kv}: want group.key=value")
        if k == "kafka.consumer_properties":
            die(f"--set {kv}: it would replace the runs' own consumer properties "
                "(auto.commit.interval.ms, the end marker's); use --consumer-property NAME=VALUE")
        env["SBOMD_" + k.replace(".", "_").upper()] = v
    return env


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port, timeout=5):
    """/metrics as {"name{labels}": value}; {} when it cannot be had."""
    import urllib.request
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as r:
            text = r.read().decode()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            try:
                out[k] = float(v)
            except ValueError:
                pass
    return out


def wait_for_log(path, needle, timeout, proc):
    t_end = time.time() + timeout
    while time.time() < t_end:
        if proc.poll() is not None:
            die(f"sbomd run exited {proc.returncode} (see {path})")
        with open(path, errors="replace") as f:
            for line in f:
                if needle in line:
                    return line
        time.sleep(0.05)
    die(f"no '{needle}' in {path} after {timeout} s")


def pct(v, q):
    s = sorted(v)
    if not s:
        return float("nan")
    i = min(len(s) - 1, max(0, math.ceil(q / 100 * len(s)) - 1))  # nearest rank
    return s[i]


def image_id(i):
    return "sha256:" + hashlib.sha256(b"sbomd-bench-image-%d" % i).hexdigest()


# ---- 1. produce ------------------------------------------------------------

def produce(a, work, brokers, kafka):
    path = os.path.join(work, "events.jsonl")
    t0 = time.perf_counter()
    ids = [image_id(i) for i in range(a.images)]
    with open(path, "w") as f:
        buf = []
        for k in range(a.events):
            i, s = k % a.images, (k // a.images) % a.sources
            buf.append('{"type":"SET","kind":"CONTAINER_IMAGE","id":"%s","source":"node-%d",'
                       '"repo_tags":["registry.example.com/team-%d/app-%d:v1"]}\n'
                       % (ids[i], s, i % 100, i))
            if len(buf) == 10000:
                f.write("".join(buf))
                buf = []
        f.write("".join(buf))
    gen_s = time.perf_counter() - t0
    argv = [a.sbomd, "emit", "-b", brokers, "-t", TOPIC, "--wait", "120s"]
    if a.compression:
        argv += ["-X", f"compression.codec={a.compression}"]
    t0 = time.perf_counter()
    with open(path, "rb") as f:
        p = spawn(argv, stdin=f, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, err = p.communicate()
    emit_s = time.perf_counter() - t0
    CHILDREN.remove(p)
    if p.returncode != 0:
        die(f"sbomd emit exited {p.returncode}: {err.decode()[-2000:]}")
    os.unlink(path)
    wm = kafka.watermarks(TOPIC, a.partitions)
    total = sum(hi for _, hi in wm)
    dropped = [p for p, (lo, _) in enumerate(wm) if lo != 0]
    if total != a.events or dropped:
        die(f"topic holds {total} events (want {a.events}); partitions with "
            f"dropped messages (low watermark > 0): {dropped}. Use more --partitions.")
    # One untimed full read that counts messages (the value may hold \n:
    # print only partition and offset).
    out = subprocess.run(["kcat", "-C", "-b", brokers, "-t", TOPIC, "-e", "-q", "-o",
                          "beginning", "-f", "%p %o\n"], capture_output=True, check=True)
    counted = out.stdout.count(b"\n")
    if counted != a.events:
        die(f"kcat read {counted} messages, want {a.events}")
    sizes = [hi for _, hi in wm]
    return {"generate_s": gen_s, "emit_s": emit_s, "emit_rate": a.events / emit_s,
            "kcat_counted": counted, "per_partition_min": min(sizes),
            "per_partition_max": max(sizes)}


# ---- 2. throughput ---------------------------------------------------------

BROKER_PID = [None]  # Apache Kafka's JVM (--broker kafka), for its CPU time


def broker_cpu():
    """CPU seconds of the Apache Kafka broker so far (None on the mock,
    which runs inside sbomd dev-kafka)."""
    if BROKER_PID[0] is None:
        return None
    try:
        with open(f"/proc/{BROKER_PID[0]}/stat") as f:
            s = f.read()
    except OSError:
        return None
    fields = s[s.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_delta(before):
    after = broker_cpu()
    return None if before is None or after is None else after - before


def run_kcat(brokers):
    b0 = broker_cpu()
    t0 = time.perf_counter()
    p = spawn(["kcat", "-C", "-b", brokers, "-t", TOPIC, "-e", "-q", "-o", "beginning"],
              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    CHILDREN.remove(p)
    if p.returncode != 0:
        die(f"kcat exited {p.returncode}: {p.stderr.read().decode()[-1000:]}")
    return {"wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime, "broker_cpu_s": cpu_delta(b0),
            "loadavg_after": os.getloadavg()[0]}


def changelog_topic(a, r, vi):
    """The changelog of run r (0: the warm-up), variant vi: one per sbomd
    run, so that a fresh instance does not first restore an earlier run's
    entities."""
    return f"sbomd-state-{r}-{vi}"


def run_sbomd(a, work, brokers, kafka, r, store, vi, v, warmup=0):
    """Run r (0: a warm-up, the warmup-th) of variant vi."""
    name = f"warmup-{warmup}-{vi}" if r == 0 else f"run-{r}-{vi}"
    d = os.path.join(work, name)
    os.makedirs(d)
    state = os.path.join(d, "state")
    group = f"bench-tput-{name}"
    cfg = os.path.join(d, "sbomd.cfg")
    port = free_port()
    write_config(cfg, brokers, group, state, store,
                 [f"auto.commit.interval.ms={a.auto_commit_ms}"] + a.consumer_property,
                 backend=a.scan_backend,
                 changelog_topic=changelog_topic(a, r, vi) if v["changelog"] else "",
                 delivery=v["delivery_key"], http=f"127.0.0.1:{port}")
    logp = os.path.join(d, "sbomd.log")
    b0 = broker_cpu()
    with open(logp, "wb") as log:
        t_spawn = time.time()
        p = spawn([v["sbomd"], "run", "-c", cfg], stdout=subprocess.DEVNULL, stderr=log,
                  env=a.env)
    t_end, polls, last = None, 0, 0
    deadline = time.time() + a.timeout
    while time.time() < deadline:
        if p.poll() is not None:
            die(f"sbomd run exited {p.returncode} during the run (see {logp})")
        offs = kafka.committed(group, TOPIC, a.partitions)
        now = time.time()
        polls += 1
        if offs is not None:
            last = sum(max(0, o) for o in offs)
            if last >= a.events:
                t_end = now
                break
        time.sleep(a.poll_ms / 1000)
    if t_end is None:
        die(f"run {r} ({v['name']}): committed offsets reached only {last} of {a.events} "
            f"after {a.timeout} s (see {logp})")
    # The metrics are a snapshot the engine publishes every 250 ms.
    m, t_m = {}, time.time() + 3
    while time.time() < t_m:
        m = scrape(port)
        if not v["changelog"] or m.get("sbomd_changelog_records_delivered_total", 0) >= a.images:
            break
        time.sleep(0.1)
    with open(os.path.join(d, "metrics.json"), "w") as f:
        json.dump({"variant": v["name"], "sbomd": v["sbomd"], "metrics": m}, f, indent=1,
                  sort_keys=True)  # for a look afterwards
    broker_cpu_s = cpu_delta(b0)  # spawn to the end of the run
    p.send_signal(signal.SIGTERM)
    _, wst, ru = os.wait4(p.pid, 0)  # rusage: the whole process life
    p.returncode = status = os.waitstatus_to_exitcode(wst)
    CHILDREN.remove(p)
    if status != 0:
        die(f"sbomd run exited {status} after SIGTERM (see {logp})")
    st = subprocess.run([v["sbomd"], "state", "--dir", state, "stats"],
                        capture_output=True, text=True)
    mm = re.search(r"^entities\s+(\d+)", st.stdout, re.M)
    entities = int(mm.group(1)) if mm else -1
    if entities != a.images:
        die(f"run {r}: state holds {entities} entities, want {a.images}:\n{st.stdout}{st.stderr}")
    t_assigned, assigned_n, paused, outcomes, warns = None, 0, 0, 0, 0
    with open(logp, errors="replace") as f:
        for line in f:
            if '"partitions assigned"' in line:
                assigned_n += 1
                if t_assigned is None:
                    t_assigned = parse_ts(json.loads(line)["ts"])
            elif '"outcome"' in line:
                outcomes += 1
            elif '"input paused"' in line and "backpressure" in line:
                paused += 1 + int(json.loads(line).get("repeated", 0))
            if '"level":"warn"' in line or '"level":"error"' in line:
                warns += 1
    if t_assigned is None:
        die(f"run {r}: no 'partitions assigned' in {logp}")
    changelog_delivered = int(m.get("sbomd_changelog_records_delivered_total", -1))
    if v["changelog"] and changelog_delivered < a.images:
        die(f"run {r} ({v['name']}): only {changelog_delivered} changelog records delivered, "
            f"want at least one per entity ({a.images}); see {logp}")
    if not a.keep:
        shutil.rmtree(state)
    return {"from_spawn_s": t_end - t_spawn, "from_assign_s": t_end - t_assigned,
            "join_s": t_assigned - t_spawn, "cpu_s": ru.ru_utime + ru.ru_stime,
            "max_rss_mb": ru.ru_maxrss / 1024,  # KiB on Linux; peak, whole life
            "broker_cpu_s": broker_cpu_s,
            "loadavg_after": os.getloadavg()[0], "rate_assign": a.events / (t_end - t_assigned),
            "rate_spawn": a.events / (t_end - t_spawn), "entities": entities,
            "assignments": assigned_n, "backpressure_pauses": paused,
            "outcomes_logged": outcomes, "warn_lines": warns, "offset_polls": polls,
            "changelog_records_delivered": changelog_delivered}


def variants(a):
    """The sbomd configurations measured against kcat: --changelog x
    --delivery, in that order, each with --sbomd and then, with
    --baseline, each again with the baseline binary."""
    out = []
    for label, exe in [("", a.sbomd)] + ([("baseline: ", a.baseline)] if a.baseline else []):
        for cl in a.changelog:
            for dl in a.delivery:
                out.append({"name": f"{label}changelog {cl}, {dl}", "changelog": cl == "on",
                            "delivery": dl, "sbomd": exe,
                            # at-least-once is the default: the key is left out, so
                            # that the variant runs on an sbomd without the key.
                            "delivery_key": None if dl == "at-least-once" else dl})
    return out


def preflight(a, work, vs):
    """Each variant's configuration through `sbomd run --print-config`
    (no Kafka, no state): a rejected key fails here, before anything is
    produced, with sbomd's own message."""
    for vi, v in enumerate(vs):
        cfg = os.path.join(work, f"preflight-{vi}.cfg")
        write_config(cfg, "127.0.0.1:9", "bench-preflight", os.path.join(work, "preflight-state"),
                     "/nonexistent", backend=a.scan_backend,
                     changelog_topic="sbomd-state" if v["changelog"] else "",
                     delivery=v["delivery_key"])
        r = subprocess.run([v["sbomd"], "run", "-c", cfg, "--print-config"], capture_output=True,
                           text=True, env=a.env)
        if r.returncode != 0:
            die(f"variant '{v['name']}': sbomd rejects its configuration (exit {r.returncode}): "
                f"{r.stderr.strip()}")


def throughput(a, work, res):
    tw = os.path.join(work, "throughput")
    os.makedirs(tw)
    store = os.path.join(tw, "empty-store")
    os.makedirs(os.path.join(store, "blobs", "sha256"))
    vs = variants(a)
    if a.broker == "kafka":
        # The outcome and dead-letter topics are not used (scan.backend
        # "none"). Each run's changelog exists before it starts, compacted,
        # as a deployed instance's does: creating 64 partitions costs the
        # broker seconds of CPU, which sbomd, which can create it (admin
        # API), pays once per cluster, not per start.
        dk, brokers = None, start_kafka(os.path.join(tw, "kafka"), {TOPIC: a.partitions})
        for r in range(0 if a.warmup else 1, a.runs + 1):
            for vi, v in enumerate(vs):
                if v["changelog"]:
                    t = subprocess.run(["bash", KAFKA_SH, "topics", "--bootstrap-server", brokers,
                                        "--create", "--topic", changelog_topic(a, r, vi),
                                        "--partitions", str(a.partitions),
                                        "--config", "cleanup.policy=compact"]
                                       + [x for c in a.changelog_config for x in ("--config", c)],
                                       capture_output=True, text=True)
                    if t.returncode != 0:
                        die(f"creating topic {changelog_topic(a, r, vi)}: {t.stderr[-2000:]}")
    else:
        topics = [f"{TOPIC}:{a.partitions}", "scan-outcomes:8", "sbomd-dead-letter:1"]
        # The mock cluster cannot create topics through the admin API: one
        # changelog per (run, variant), as many partitions as the input.
        topics += [f"{changelog_topic(a, r, vi)}:{a.partitions}"
                   for r in range(0 if a.warmup else 1, a.runs + 1)
                   for vi, v in enumerate(vs) if v["changelog"]]
        dk, brokers = start_devkafka(a.sbomd, tw, topics)
    kafka = Kafka(brokers)
    print(f"[produce] {a.events} events to {brokers} ({a.partitions} partitions)", flush=True)
    res["produce"] = produce(a, tw, brokers, kafka)
    pr = res["produce"]
    print(f"[produce] emit {pr['emit_s']:.2f} s ({pr['emit_rate']:,.0f} ev/s), "
          f"verified {pr['kcat_counted']} on the topic", flush=True)
    res["kcat"] = []
    res["variants"] = [dict(v, runs=[]) for v in vs]
    # Warm-up: each variant once, not measured. The broker's JVM compiles
    # the code of what sbomd asks of it (producing to a compacted topic,
    # committing offsets) while it runs: in a first run after the broker
    # started, a third of the broker's CPU was its JIT compilers. kcat's
    # fetches were warmed by the untimed count above.
    for w in range(a.warmup):
        for vi, v in enumerate(vs):
            s = run_sbomd(a, tw, brokers, kafka, 0, store, vi, v, warmup=w)
            print(f"[warm-up] sbomd [{v['name']}] {s['from_assign_s']:.2f} s from assignment, "
                  f"not counted", flush=True)
    for r in range(1, a.runs + 1):
        k = run_kcat(brokers)
        res["kcat"].append(k)
        bk = "" if k["broker_cpu_s"] is None else f", broker cpu {k['broker_cpu_s']:.2f} s"
        print(f"[run {r}] kcat  {k['wall_s']:.2f} s  {a.events / k['wall_s']:,.0f} ev/s, "
              f"cpu {k['cpu_s']:.2f} s{bk}, load {k['loadavg_after']:.2f}", flush=True)
        # Variants in a rotating order, so none always follows kcat.
        order = list(range(len(vs)))
        order = order[(r - 1) % len(order):] + order[:(r - 1) % len(order)]
        for vi in order:
            v = vs[vi]
            s = run_sbomd(a, tw, brokers, kafka, r, store, vi, v)
            s["ratio_to_kcat"] = s["rate_assign"] / (a.events / k["wall_s"])
            res["variants"][vi]["runs"].append(s)
            print(f"[run {r}] sbomd [{v['name']}] {s['from_assign_s']:.2f} s from assignment "
                  f"({s['rate_assign']:,.0f} ev/s, {s['ratio_to_kcat']:.2f} of this run's kcat), "
                  f"{s['from_spawn_s']:.2f} s from spawn (join {s['join_s']:.2f} s), "
                  f"pauses {s['backpressure_pauses']}, outcomes {s['outcomes_logged']}, "
                  f"changelog records {s['changelog_records_delivered']}, "
                  f"cpu {s['cpu_s']:.2f} s (whole life), peak rss {s['max_rss_mb']:.0f} MB"
                  + ("" if s["broker_cpu_s"] is None else f", broker cpu {s['broker_cpu_s']:.2f} s")
                  + f", load {s['loadavg_after']:.2f}", flush=True)
    kafka.close()
    if dk is not None:
        stop(dk)


# ---- 3. latency ------------------------------------------------------------

DPKG_STATUS = """Package: base-files
Status: install ok installed
Priority: required
Section: admin
Installed-Size: 340
Maintainer: Bench <bench@example.com>
Architecture: amd64
Version: 12.4+deb12u5
Description: Debian base system miscellaneous files

Package: libc6
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 12988
Maintainer: Bench <bench@example.com>
Architecture: amd64
Source: glibc
Version: 2.36-9+deb12u4
Description: GNU C Library: Shared libraries

Package: zlib1g
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 168
Maintainer: Bench <bench@example.com>
Architecture: amd64
Source: zlib
Version: 1:1.2.13.dfsg-1
Description: compression library - runtime

"""


def build_store(a, work):
    """A containerd content store (blobs/sha256, no index) with
    a.latency_images one-layer images; returns their image IDs."""
    store = os.path.join(work, "store")
    tmp = os.path.join(work, "layers")
    os.makedirs(tmp)
    ids = []
    for i in range(a.latency_images + 1):  # + the warm-up image
        layer = os.path.join(tmp, f"layer-{i}.tar")
        with tarfile.open(layer, "w", format=tarfile.PAX_FORMAT) as t:
            def add(name, data, mode=0o644):
                ti = tarfile.TarInfo(name)
                ti.size, ti.mtime, ti.mode = len(data), 0, mode
                t.addfile(ti, io.BytesIO(data))

            def adddir(name):
                ti = tarfile.TarInfo(name)
                ti.type, ti.mtime, ti.mode = tarfile.DIRTYPE, 0, 0o755
                t.addfile(ti)
            for dname in ("etc", "var", "var/lib", "var/lib/dpkg"):
                adddir(dname)
            add("etc/os-release", (
                f'# sbomd bench image {i}\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n'
                'NAME="Debian GNU/Linux"\nVERSION_ID="12"\nVERSION="12 (bookworm)"\n'
                'VERSION_CODENAME=bookworm\nID=debian\n').encode())
            add("var/lib/dpkg/status", DPKG_STATUS.encode())
        out = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "tools", "mkimages.py"),
                              "--oci", store, "--tag", f"bench-{i}", layer],
                             capture_output=True, text=True, check=True)
        ids.append(out.stdout.strip().splitlines()[-1])
    # No index: a containerd content store, where images are found by ID.
    os.unlink(os.path.join(store, "index.json"))
    os.unlink(os.path.join(store, "oci-layout"))
    shutil.rmtree(tmp)
    if len(set(ids)) != len(ids):
        die("image IDs are not distinct")
    chk = subprocess.run([a.sbomd, "scan", f"containerd:{store}@{ids[0]}"],
                         capture_output=True, text=True)
    if chk.returncode != 0:
        die(f"sbomd scan of a store image failed ({chk.returncode}): {chk.stderr[-1000:]}")
    ncomp = len(json.loads(chk.stdout).get("components", []))
    return store, ids, ncomp


def latency(a, work, res):
    lw0 = os.path.join(work, "latency")
    os.makedirs(lw0)
    t0 = time.perf_counter()
    store, ids, ncomp = build_store(a, lw0)
    print(f"[latency] store of {len(ids)} images built in {time.perf_counter() - t0:.1f} s "
          f"({ncomp} components each)", flush=True)
    res["latency"] = {}
    for fw in a.fetch_wait_ms:
        lw = os.path.join(lw0, f"fetch-wait-{fw}")
        os.makedirs(lw)
        res["latency"][str(fw)] = latency_run(a, lw, store, ids, ncomp, fw)


def latency_run(a, lw, store, ids, ncomp, fw):
    fwp = f"fetch.wait.max.ms={fw}"
    v = variants(a)[0]  # the latency runs use the first variant
    dk, brokers = start_devkafka(a.sbomd, lw, [f"{TOPIC}:8", "scan-outcomes:8",
                                                "sbomd-dead-letter:1", "sbomd-state:8"])
    cfg = os.path.join(lw, "sbomd.cfg")
    write_config(cfg, brokers, "bench-latency", os.path.join(lw, "state"), store,
                 [fwp] + a.consumer_property,
                 changelog_topic="sbomd-state" if v["changelog"] else "",
                 delivery=v["delivery_key"])
    logp = os.path.join(lw, "sbomd.log")
    with open(logp, "wb") as log:
        run = spawn([a.sbomd, "run", "-c", cfg], stdout=subprocess.DEVNULL, stderr=log,
                    env=a.env)
    wait_for_log(logp, '"partitions assigned"', 60, run)

    # The outcomes, timestamped as tail prints them.
    seen = {}
    others = []
    lock = threading.Lock()
    tail = spawn([a.sbomd, "tail", "-b", brokers, "--no-sbom", "-X", fwp], stdout=subprocess.PIPE,
                 stderr=subprocess.DEVNULL)

    def reader():
        for line in tail.stdout:
            now = wall_ms()
            o = json.loads(line)
            with lock:
                if o["status"] == "SUCCEEDED" and o["id"] not in seen:
                    seen[o["id"]] = (o["emitted_at"], now)
                else:
                    others.append(o)
    th = threading.Thread(target=reader, daemon=True)
    th.start()

    emit = spawn([a.sbomd, "emit", "-b", brokers, "-t", TOPIC, "-X", "linger.ms=0"],
                 stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # Warm-up: one extra image through the whole path (emit, sbomd's
    # consumer and producer, tail), so that connections and metadata are
    # in place before the clock starts; it is not counted.
    warm, ids = ids[0], ids[1:]
    tw = time.time()
    emit.stdin.write(('{"type":"SET","kind":"CONTAINER_IMAGE","id":"%s","source":"node-0",'
                      '"observed_at":%d}\n' % (warm, wall_ms())).encode())
    emit.stdin.flush()
    while warm not in seen:
        if time.time() - tw > 60:
            die("the warm-up image's outcome did not arrive in 60 s")
        time.sleep(0.01)
    warmup_s = time.time() - tw
    total = int(a.rate * a.duration)
    every = max(1, total // len(ids))
    rnd = random.Random(1)
    produced = {}
    introduced = 0
    start = time.perf_counter()
    k = 0
    late = 0.0
    while k < total:
        now = time.perf_counter()
        due = min(total, int((now - start) * a.rate) + 1)
        if due <= k:
            time.sleep(min(0.002, (k / a.rate) - (now - start) + 1e-4))
            continue
        late = max(late, now - start - (due - 1) / a.rate)
        lines = []
        ms = wall_ms()
        for j in range(k, due):
            src = "node-%d" % (j % 10)
            if j % every == 0 and introduced < len(ids):
                iid = ids[introduced]
                introduced += 1
                produced[iid] = ms
            else:
                iid = ids[rnd.randrange(max(1, introduced))]
            lines.append('{"type":"SET","kind":"CONTAINER_IMAGE","id":"%s","source":"%s",'
                         '"repo_tags":["registry.example.com/bench:%s"],"observed_at":%d}\n'
                         % (iid, src, iid[7:19], ms))
        emit.stdin.write("".join(lines).encode())
        emit.stdin.flush()
        k = due
    send_s = time.perf_counter() - start
    emit.stdin.close()
    err = emit.stderr.read().decode()
    emit.wait()
    CHILDREN.remove(emit)
    if emit.returncode != 0:
        die(f"emit exited {emit.returncode}: {err[-1000:]}")
    deadline = time.time() + 60
    while time.time() < deadline:
        with lock:
            if len(seen) >= len(produced):
                break
        time.sleep(0.1)
    time.sleep(1.0)  # anything unexpected after the last one
    stop(tail)
    status = stop(run, 60)
    stop(dk)
    with lock:
        seen.pop(warm, None)
        missing = [i for i in produced if i not in seen]
        to_outcome = [seen[i][0] - produced[i] for i in produced if i in seen]
        end_to_end = [seen[i][1] - produced[i] for i in produced if i in seen]
        unexpected = [(o["id"], o["status"], o.get("error")) for o in others]
    if missing:
        die(f"{len(missing)} images got no SUCCEEDED outcome (see {logp})")
    L = {
        "variant": v["name"], "fetch_wait_ms": fw, "warmup_s": warmup_s, "events": total, "rate": a.rate,
        "send_s": send_s, "max_pacing_lag_s": late,
        "new_images": len(produced), "components_per_image": ncomp,
        "unexpected_outcomes": unexpected[:10], "n_unexpected": len(unexpected),
        "sbomd_exit": status,
        "samples_in_produce_order": [[seen[i][0] - produced[i], seen[i][1] - produced[i]]
                                     for i in sorted(produced, key=produced.get) if i in seen],
        "to_outcome_ms": {"p50": pct(to_outcome, 50), "p99": pct(to_outcome, 99),
                          "max": max(to_outcome), "min": min(to_outcome)},
        "end_to_end_ms": {"p50": pct(end_to_end, 50), "p99": pct(end_to_end, 99),
                          "max": max(end_to_end), "min": min(end_to_end)},
    }
    print(f"[latency fetch.wait.max.ms={fw}, {v['name']}] {total} events in {send_s:.1f} s, "
          f"{len(produced)} new images: "
          f"to outcome p50 {L['to_outcome_ms']['p50']} ms p99 {L['to_outcome_ms']['p99']} ms; "
          f"end to end p50 {L['end_to_end_ms']['p50']} ms p99 {L['end_to_end_ms']['p99']} ms",
          flush=True)
    return L


# ---- main ------------------------------------------------------------------

def summary(a, res):
    print()
    print(f"sbomd service benchmark  ({os.cpu_count()} CPUs, {a.sbomd}"
          + (f", baseline {a.baseline}" if a.baseline else "") + ")")
    rows = []
    if res.get("variants"):
        N = a.events
        ka = [N / k["wall_s"] for k in res["kcat"]]
        med_a = statistics.median(ka)
        pr = res["produce"]
        loads = [x["loadavg_after"] for x in res["kcat"]] + \
            [s["loadavg_after"] for v in res["variants"] for s in v["runs"]]
        rows += [
            ("produce: sbomd emit, JSON lines", f"{pr['emit_rate']:,.0f} ev/s",
             f"{N:,} events in {pr['emit_s']:.2f} s; topic verified"),
            ("(a) kcat read floor", f"{med_a:,.0f} ev/s",
             "runs: " + ", ".join(f"{k['wall_s']:.2f} s" for k in res["kcat"])),
        ]
        for v in res["variants"]:
            runs = v["runs"]
            sa = [s["rate_assign"] for s in runs]
            ss = [s["rate_spawn"] for s in runs]
            med_b = statistics.median(sa)
            ratios = [s["ratio_to_kcat"] for s in runs]
            rows += [
                (f"(b) sbomd run [{v['name']}], from assignment", f"{med_b:,.0f} ev/s",
                 "runs: " + ", ".join(f"{s['from_assign_s']:.2f} s" for s in runs) +
                 "; backpressure pauses: " + ", ".join(str(s["backpressure_pauses"]) for s in runs)),
                ("    from spawn", f"{statistics.median(ss):,.0f} ev/s",
                 "runs: " + ", ".join(f"{s['from_spawn_s']:.2f} s" for s in runs)),
                ("    ratio b/a (target >= 0.50)", f"{med_b / med_a:.2f}",
                 ("PASS" if med_b >= med_a / 2 else "FAIL") +
                 "; per run (b over that run's kcat): " +
                 ", ".join(f"{x:.2f}" for x in ratios) +
                 f", median {statistics.median(ratios):.2f}"),
                ("    cpu s, kcat / sbomd (median)",
                 f"{statistics.median(k['cpu_s'] for k in res['kcat']):.2f} / "
                 f"{statistics.median(s['cpu_s'] for s in runs):.2f}",
                 "sbomd: whole process life, scans included"),
                ("    peak rss of sbomd run, MB", ", ".join(f"{s['max_rss_mb']:.0f}" for s in runs),
                 "getrusage ru_maxrss: resident pages, the LMDB map's included"),
            ]
            if runs[0].get("broker_cpu_s") is not None:
                rows.append(("    broker JVM cpu s, kcat / sbomd (median)",
                             f"{statistics.median(k['broker_cpu_s'] for k in res['kcat']):.2f} / "
                             f"{statistics.median(s['broker_cpu_s'] for s in runs):.2f}",
                             "Apache Kafka's CPU during the read (sbomd: spawn to the end)"))
            v["median_rate"], v["ratio"] = med_b, med_b / med_a
        rows.append(("1-min load average after runs", f"{min(loads):.2f}-{max(loads):.2f}",
                     f"on {os.cpu_count()} CPUs: other work on the box skews these figures"))
        res["median_a"] = med_a
    for fw, L in res.get("latency", {}).items():
        rows += [
            (f"latency [{L['variant']}], fetch.wait.max.ms={fw}: event -> outcome emitted_at",
             f"p50 {L['to_outcome_ms']['p50']} ms",
             f"p99 {L['to_outcome_ms']['p99']} ms, max {L['to_outcome_ms']['max']} ms, "
             f"n={L['new_images']}, unexpected outcomes {L['n_unexpected']}"),
            (f"latency, fetch.wait.max.ms={fw}: event -> tail prints it",
             f"p50 {L['end_to_end_ms']['p50']} ms",
             f"p99 {L['end_to_end_ms']['p99']} ms, max {L['end_to_end_ms']['max']} ms"),
        ]
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    for r in rows:
        print(f"  {r[0]:<{w0}}  {r[1]:>{w1}}  {r[2]}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sbomd", default=os.path.join(ROOT, "build", "sbomd"))
    ap.add_argument("--baseline", default="",
                    help="another sbomd binary (e.g. a build of an earlier commit): every "
                         "variant is measured with it too, in the same runs (A/B)")
    ap.add_argument("--work", default="/var/tmp/sbomd-bench-service")
    ap.add_argument("--keep", action="store_true", help="keep the state dirs")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--images", type=int, default=100_000)
    ap.add_argument("--sources", type=int, default=10)
    ap.add_argument("--partitions", type=int, default=64)
    ap.add_argument("--compression", default="",
                    help="emit's compression.codec (default: emit's, zstd)")
    ap.add_argument("--auto-commit-ms", type=int, default=100)
    ap.add_argument("--poll-ms", type=int, default=50)
    ap.add_argument("--timeout", type=float, default=600, help="per sbomd run, s")
    ap.add_argument("--rate", type=float, default=1000)
    ap.add_argument("--duration", type=float, default=20)
    ap.add_argument("--latency-images", type=int, default=200)
    ap.add_argument("--fetch-wait-ms", default="500,10",
                    help="latency runs, one per fetch.wait.max.ms value (sbomd and tail)")
    ap.add_argument("--skip-throughput", action="store_true")
    ap.add_argument("--changelog-config", action="append", default=None, metavar="KEY=VALUE",
                    help="Apache Kafka: a topic config of the changelogs the bench creates "
                         "(default: segment.index.bytes=65536, see 2. above; 'none' for none)")
    ap.add_argument("--warmup", type=int, default=None,
                    help="unmeasured runs of each variant before the runs "
                         "(default: 1 on Apache Kafka, whose JVM compiles as it goes; 0 on the mock)")
    ap.add_argument("--scan-backend", default="none", choices=["none", "oci"],
                    help="throughput runs: none (ingestion alone) or oci (an empty store)")
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--changelog", default="on",
                    help="on, off or a list (on,off): state.changelog_topic set to a fresh "
                         "topic per run, or \"\" (a lone instance); each is a variant")
    ap.add_argument("--delivery", default="at-least-once",
                    help="at-least-once, exactly-once or a list; exactly-once writes "
                         "kafka.delivery = \"exactly-once\" (at-least-once leaves the key out)")
    ap.add_argument("--broker", default="dev-kafka", choices=["dev-kafka", "kafka"],
                    help="throughput runs: sbomd dev-kafka (the mock cluster) or a real Apache "
                         "Kafka started by scripts/kafka.sh (latency runs always use dev-kafka)")
    ap.add_argument("--consumer-property", action="append", default=[], metavar="NAME=VALUE",
                    help="a librdkafka property added to every run's kafka.consumer_properties "
                         "(e.g. queued.max.messages.kbytes=65536)")
    ap.add_argument("--set", action="append", default=[], metavar="GROUP.KEY=VALUE",
                    help="an extra configuration value for every sbomd run, passed as "
                         "SBOMD_GROUP_KEY (e.g. engine.max_outbox=100000)")
    a = ap.parse_args()
    a.changelog = [x for x in a.changelog.split(",") if x]
    a.delivery = [x for x in a.delivery.split(",") if x]
    if not a.changelog or any(x not in ("on", "off") for x in a.changelog):
        sys.exit("bench_service: --changelog: on, off or on,off")
    if not a.delivery or any(x not in ("at-least-once", "exactly-once") for x in a.delivery):
        sys.exit("bench_service: --delivery: at-least-once, exactly-once or a list of both")
    a.env = set_env(a.set)
    if a.changelog_config is None:
        a.changelog_config = ["segment.index.bytes=65536"]
    a.changelog_config = [c for c in a.changelog_config if c != "none"]
    if a.warmup is None:
        a.warmup = 1 if a.broker == "kafka" else 0
    if "exactly-once" in a.delivery and a.broker == "dev-kafka" and not a.skip_throughput:
        # Offsets committed in a transaction (TxnOffsetCommit) are not
        # returned by the mock cluster's OffsetFetch: the end marker
        # (committed offsets at the end) would never be seen.
        sys.exit("bench_service: --delivery exactly-once needs --broker kafka for the throughput "
                 "runs: librdkafka's mock cluster does not return offsets committed in a "
                 "transaction, so the end of a run cannot be seen")
    a.sbomd = os.path.abspath(a.sbomd)
    a.baseline = os.path.abspath(a.baseline) if a.baseline else ""
    a.fetch_wait_ms = [int(x) for x in a.fetch_wait_ms.split(",") if x]
    if a.events != a.images * a.sources:
        print(f"note: --events {a.events} != images x sources", file=sys.stderr)
    if shutil.which("kcat") is None:
        sys.exit("bench_service: kcat not found")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if os.path.isdir(a.work):
        shutil.rmtree(a.work)
    os.makedirs(a.work)
    res = {"argv": sys.argv, "cpus": os.cpu_count()}
    preflight(a, a.work, variants(a))
    try:
        if not a.skip_throughput:
            throughput(a, a.work, res)
        if not a.skip_latency:
            latency(a, a.work, res)
    finally:
        stop_all()
        with open(os.path.join(a.work, "results.json"), "w") as f:
            json.dump(res, f, indent=1)
    summary(a, res)


if __name__ == "__main__":
    main()
