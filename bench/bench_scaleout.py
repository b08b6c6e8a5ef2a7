#!/usr/bin/env python3
"""sbomd scale-out on a real Apache Kafka broker: changelog restore
throughput on assignment, and the time until input flows again after an
instance is killed (taken over by the survivor, or restarted in place).

bench/bench_scaleout.py [--sbomd build/sbomd] [--work /var/tmp/sbomd-bench-scaleout]
                        [--keep] [--skip-restore] [--skip-takeover] [--skip-restart]
                        [--partitions 12]
                        [--entities 1000000] [--runs 5] [--profile] [--baseline SBOMD]
                        [--takeover-runs 3] [--restart-runs 5]
                        [--takeover-entities 100000] [--rate 100]

Needs: scripts/kafka.sh with its jars (Java 17, tools/kafka/lib),
librdkafka.so.1 (through ctypes: watermarks, committed offsets; the
helpers are bench_service.py's); for --profile, perf. Only 127.0.0.1;
nothing is downloaded. All files live under --work (wiped at start): the
broker's directory, every instance's state dir, config and log, and
results.json. Every process started here is stopped on exit (by its pid;
the broker by `kafka.sh stop` on its directory). Every `sbomd run` is
configured as shipped except: its own state.dir and http.listen port,
scan.backend "none" (events are tracked and made durable, nothing is
scanned: scale-out alone is measured) and, where said below, a consumer
property or an engine bound. The broker is the one the tests use
(scripts/kafka.sh: one KRaft node, 512 MiB heap, on the same 2 CPUs);
the mock cluster of `sbomd dev-kafka` keeps only ~5 MiB per partition,
too little for a changelog of 1 M entities.

1. Restore ("broker to LMDB and memory"; target >= 500k entries/s).
   Fill: ENTITIES SET events of distinct images (one source, one tag
   each; the ids of bench_service.py) are produced by `sbomd emit` to
   workload-events (PARTITIONS partitions), checked by the watermarks.
   One `sbomd run` (group bench-fill, state.changelog_topic the default
   sbomd-state, created by sbomd through the admin API with PARTITIONS
   partitions) applies them; it ends when the group's committed offsets
   reach the end (they are committed only after the changelog records
   are acknowledged), then SIGTERM (must exit 0). It runs with
   engine.max_pending = 4000000: with scan.backend "none" the heap only
   grows, and an input paused (for the outbox) with the heap above 90% of
   max_pending is never resumed (see the README). The changelog must then
   hold exactly ENTITIES records (the sum of its high watermarks, every
   low watermark 0): one real entry record per entity.
   Runs, RUNS times: a fresh `sbomd run` with an empty state dir and a
   new group (bench-restore-N: a new member gets every partition at once;
   in bench-fill it would wait for the stopped static member's session
   to expire) and auto.offset.reset=latest (the group has no offsets: it
   starts at the input's end, as a takeover of a caught-up partition
   does, so no input competes with the restore; the changelog reader
   forces earliest for itself). The instance restores every partition
   inside the rebalance callback (consumer/service/ownership.c): a stager
   thread reads, checks and sorts the next partition's changelog while
   the engine commits one partition's records with its checkpoint into
   LMDB and loads them into the tracker.
     restore time: from the "partitions assigned" log line to the last
       "partition restored" line (log timestamps, ms); rate = records
       replayed / that time; the median is the figure.
     spawn -> ready: process start to the first 200 of /readyz (polled
       every 20 ms from outside; 503 "restoring partitions" before).
     per partition: the "seconds" of its "partition restored" line.
   Checked every run: sbomd_changelog_restored_total = ENTITIES,
   sbomd_partitions_owned = PARTITIONS, the entities gauge sums to
   ENTITIES, no bad records, exit 0 after SIGTERM, and `sbomd state
   stats` counts ENTITIES entities. Recorded at readiness: sbomd's CPU
   seconds (all its threads, those that ended too), CPU seconds by
   thread name (/proc/PID/task/*/stat: "sbomd" is the engine thread that
   restores, "rdk:*" librdkafka's), the broker JVM's CPU seconds during
   the restore, and /proc/PID/io (wchar: bytes handed to write(2);
   write_bytes: bytes the kernel sent to the disk for it) against the
   size of the state dir's data.mdb.
   --profile adds two runs, not counted in the medians: one under
   `perf record --call-graph dwarf` (on-CPU samples, classified by the
   frames on their stack: LMDB commit, decode, hand-over from librdkafka,
   load into the tracker, librdkafka's fetch threads...) and one under
   `perf trace -s -e fdatasync,futex` (the engine thread's time blocked
   in fdatasync and in futex waits, i.e. off CPU).

2. Takeover after a kill, default settings (session.timeout.ms 45 s,
   heartbeat 3 s, static membership with the id kept in the state dir,
   cooperative-sticky), TAKEOVER_RUNS times, each with its own input
   topic, changelog topic and group. TAKEOVER_ENTITIES SET events of new
   images are produced first; instance A starts and applies them, then B
   starts (own state dir, same group); the bench waits until both are
   ready and own PARTITIONS/2 each. Then events flow: RATE SETs of new
   images per second through `sbomd emit -X linger.ms=0`. After 3 s the
   partitions A owns are read from its /metrics
   (sbomd_changelog_checkpoint{owned="1"}) and A is sent SIGKILL and
   never restarted. At once one probe event (a new image whose id hashes
   to that partition: librdkafka's consistent partitioner, CRC-32 of the
   key, checked afterwards against the entity's partition) is produced
   to each of A's partitions. B's /api/v1/entities/ID is polled for each
   probe every 50 ms.
     owner: the kill to B's "partitions assigned" line;
     restored: the kill to B's last "partition restored" line after it;
     flowing: the kill to the moment the last probe is visible on B
       (input of every dead partition applied again).
   Expected: about session.timeout.ms (45 s), the time the broker waits
   before it drops a silent member. At the end B must hold every entity
   produced (the entities gauge).

3. Restart after a kill: one pair A, B as in 2, events flowing; RESTART_
   RUNS times: SIGKILL A, wait for it to die, start it again at once with
   the same config and state dir (so the same group.instance.id), produce
   the probes to A's partitions, poll A's entity API.
     flowing: the kill to the moment the last probe is visible on A;
     assigned / restored: the kill to the new process's "partitions
       assigned" / last "partition restored" line;
     B's log lines about rebalances during the run are counted (static
       membership: none expected).
   At the end A and B together must hold every entity produced.

Results: a summary table on stdout, the details in WORK/results.json.
No figure here is asserted; the benchmark fails only when a check of
correctness fails (a count, an exit status, a probe never applied).
"""
import argparse, atexit, hashlib, json, os, re, shutil, signal, statistics
import subprocess, sys, threading, time, urllib.error, urllib.request, zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_service as bs  # noqa: E402
from bench_service import CHILDREN, Kafka, die, image_id, parse_ts, spawn, stop  # noqa: E402

ROOT = bs.ROOT
KAFKA_SH = os.path.join(ROOT, "scripts", "kafka.sh")
HZ = os.sysconf("SC_CLK_TCK")


# ---- the broker ------------------------------------------------------------

class Broker:
    """scripts/kafka.sh in DIR; stopped at exit."""

    def __init__(self, d):
        self.dir = d
        t0 = time.time()
        r = subprocess.run(["bash", KAFKA_SH, "start", d], capture_output=True, text=True)
        if r.returncode != 0:
            die(f"scripts/kafka.sh start exited {r.returncode}: {r.stderr[-2000:]}")
        self.bootstrap = r.stdout.strip().splitlines()[-1]
        atexit.register(self.stop)
        with open(os.path.join(d, "kafka.pid")) as f:
            self.pid = int(f.read().strip())
        self.start_s = time.time() - t0
        line = r.stderr.strip().splitlines()[-1]
        m = re.search(r"Apache Kafka \S+", line)
        self.version = m.group(0) if m else line

    def topics(self, *args):
        r = subprocess.run(["bash", KAFKA_SH, "topics", "--bootstrap-server", self.bootstrap,
                            *args], capture_output=True, text=True)
        if r.returncode != 0:
            die(f"kafka.sh topics {' '.join(args)}: {r.stderr[-2000:]}")
        return r.stdout

    def create_topic(self, name, partitions):
        self.topics("--create", "--topic", name, "--partitions", str(partitions))

    def cpu_s(self):
        return proc_cpu(self.pid)

    def stop(self):
        if self.pid:
            subprocess.run(["bash", KAFKA_SH, "stop", self.dir], capture_output=True)
            self.pid = None


def proc_cpu(pid, tid=None):
    """utime + stime of a process (or one thread) in seconds."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    try:
        with open(path) as f:
            s = f.read()
    except OSError:
        return float("nan")
    fields = s[s.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def threads_cpu(pid):
    """CPU seconds by thread name; the main thread (sbomd's engine
    thread, the one that restores) as "engine"."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                s = f.read()
        except OSError:
            continue
        name = "engine" if int(tid) == pid else s[s.index("(") + 1:s.rindex(")")]
        out[name] = out.get(name, 0.0) + proc_cpu(pid, tid)
    return out


def proc_io(pid):
    out = {}
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            k, v = line.split(":")
            out[k] = int(v)
    return out


# ---- sbomd instances -------------------------------------------------------

def http_get(port, path, timeout=2.0):
    """(status, body) or (None, None) when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return None, None


class Instance:
    """One `sbomd run`: its directory, config, state dir, HTTP port and
    one log file per start."""

    def __init__(self, a, d, brokers, group, input_topic, changelog, consumer=(), env=None):
        self.a, self.dir = a, d
        os.makedirs(d, exist_ok=True)
        self.state = os.path.join(d, "state")
        self.port = bs.free_port()
        self.cfg = os.path.join(d, "sbomd.cfg")
        self.env = env
        self.starts = 0
        self.p = None
        bs.write_config(self.cfg, brokers, group, self.state, "/nonexistent", list(consumer),
                        backend="none", changelog_topic=changelog,
                        http=f"127.0.0.1:{self.port}", input_topic=input_topic)

    def start(self, prefix=()):
        """prefix: a command that runs sbomd as its child (a profiler);
        self.pid is sbomd's pid then, self.p the profiler."""
        self.starts += 1
        self.logp = os.path.join(self.dir, f"sbomd-{self.starts}.log")
        with open(self.logp, "wb") as log:
            self.t_spawn = time.time()
            self.p = spawn([*prefix, self.a.sbomd, "run", "-c", self.cfg],
                           stdout=subprocess.DEVNULL, stderr=log, env=self.env)
        self.pid = self.p.pid
        t_end = time.time() + 10
        while prefix and time.time() < t_end:
            try:
                with open(f"/proc/{self.p.pid}/task/{self.p.pid}/children") as f:
                    kids = f.read().split()
            except OSError:
                kids = []
            if kids:
                self.pid = int(kids[0])
                break
            time.sleep(0.001)
        if prefix and self.pid == self.p.pid:
            die(f"{prefix[0]} started no sbomd (see {self.logp})")
        return self

    def alive(self):
        if self.p.poll() is not None:
            die(f"sbomd run exited {self.p.returncode} (see {self.logp})")

    def kill9(self):
        os.kill(self.p.pid, signal.SIGKILL)
        self.p.wait()
        CHILDREN.remove(self.p)

    def term(self):
        if self.pid != self.p.pid:  # under a profiler: stop sbomd, the profiler follows
            os.kill(self.pid, signal.SIGTERM)
            self.p.wait(120)
            CHILDREN.remove(self.p)
            return
        rc = stop(self.p, 60)
        if rc != 0:
            die(f"sbomd run exited {rc} after SIGTERM (see {self.logp})")

    def metrics(self):
        return bs.scrape(self.port, timeout=2)

    def owned(self):
        m = self.metrics()
        return sorted(int(re.search(r'partition="(\d+)"', k).group(1)) for k, v in m.items()
                      if k.startswith("sbomd_changelog_checkpoint{") and 'owned="1"' in k)

    def ready(self):
        return http_get(self.port, "/readyz", timeout=1)[0] == 200

    def entity(self, iid):
        st, body = http_get(self.port, f"/api/v1/entities/{iid}", timeout=2)
        return json.loads(body) if st == 200 else None

    def log(self):
        out = []
        with open(self.logp, errors="replace") as f:
            for line in f:
                try:
                    o = json.loads(line)
                except ValueError:
                    continue
                o["t"] = parse_ts(o["ts"])
                out.append(o)
        return out


def entities_total(m):
    return sum(v for k, v in m.items() if k.startswith("sbomd_entities{"))


def wait_until(cond, timeout, what, insts=()):
    t_end = time.time() + timeout
    while time.time() < t_end:
        for i in insts:
            i.alive()
        if cond():
            return
        time.sleep(0.05)
    die(f"timed out after {timeout} s waiting for {what}")


def set_line(iid, source="node-0", tag=None):
    tag = tag or f"registry.example.com/bench:{iid[7:19]}"
    return ('{"type":"SET","kind":"CONTAINER_IMAGE","id":"%s","source":"%s","repo_tags":["%s"]}\n'
            % (iid, source, tag))


def emit_file(a, brokers, topic, lines_iter, path):
    """Writes the lines to path, produces them with `sbomd emit`; returns
    (count, seconds of emit)."""
    n = 0
    with open(path, "w") as f:
        buf = []
        for line in lines_iter:
            buf.append(line)
            n += 1
            if len(buf) == 10000:
                f.write("".join(buf))
                buf = []
        f.write("".join(buf))
    t0 = time.perf_counter()
    with open(path, "rb") as f:
        p = spawn([a.sbomd, "emit", "-b", brokers, "-t", topic, "--wait", "120s"], stdin=f,
                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, err = p.communicate()
    CHILDREN.remove(p)
    if p.returncode != 0:
        die(f"sbomd emit exited {p.returncode}: {err.decode()[-2000:]}")
    os.unlink(path)
    return n, time.perf_counter() - t0


def check_topic(kafka, topic, partitions, want):
    wm = kafka.watermarks(topic, partitions)
    total = sum(hi - lo for lo, hi in wm)
    if total != want or any(lo != 0 for lo, _ in wm):
        die(f"{topic} holds {total} records (want {want}); watermarks {wm}")
    return [hi for _, hi in wm]


def wait_committed(kafka, group, topic, partitions, want, timeout, insts):
    t_end = time.time() + timeout
    last = 0
    while time.time() < t_end:
        for i in insts:
            i.alive()
        offs = kafka.committed(group, topic, partitions)
        if offs is not None:
            last = sum(max(0, o) for o in offs)
            if last >= want:
                return time.time()
        time.sleep(0.05)
    die(f"group {group}: committed offsets reached {last} of {want} after {timeout} s")


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def mmm(xs, fmt="{:.2f}"):
    """"median (min-max, n=N)"."""
    return (fmt.format(med(xs)) + " (" + fmt.format(min(xs)) + "-" + fmt.format(max(xs)) +
            f", n={len(xs)})") if xs else "-"


# ---- 1. restore ------------------------------------------------------------

RESTORE_TOPIC = "workload-events"
CHANGELOG = "sbomd-state"


def fill(a, broker, kafka, work, res):
    P, N = a.partitions, a.entities
    broker.create_topic(RESTORE_TOPIC, P)
    t0 = time.perf_counter()
    n, emit_s = emit_file(a, broker.bootstrap, RESTORE_TOPIC,
                          (set_line(image_id(i), tag=f"registry.example.com/team-{i % 100}/app-{i}:v1")
                           for i in range(N)), os.path.join(work, "events.jsonl"))
    check_topic(kafka, RESTORE_TOPIC, P, N)
    print(f"[restore] {N:,} events produced (emit {emit_s:.1f} s, {time.perf_counter() - t0:.1f} s "
          f"with generation), topic verified", flush=True)
    env = dict(os.environ, SBOMD_ENGINE_MAX_PENDING="4000000")
    f = Instance(a, os.path.join(work, "fill"), broker.bootstrap, "bench-fill", RESTORE_TOPIC,
                 CHANGELOG, env=env).start()
    t_end = wait_committed(kafka, "bench-fill", RESTORE_TOPIC, P, N, a.timeout, [f])
    m = f.metrics()
    f.term()
    log = f.log()
    t_as = next(o["t"] for o in log if o["msg"] == "partitions assigned")
    pauses = sum(1 + int(o.get("repeated", 0)) for o in log
                 if o["msg"] == "input paused" and o.get("reason") == "backpressure")
    sizes = check_topic(kafka, CHANGELOG, P, N)
    r = {"events": N, "emit_s": emit_s, "ingest_s": t_end - t_as, "ingest_rate": N / (t_end - t_as),
         "backpressure_pauses": pauses,
         "changelog_delivered": m.get("sbomd_changelog_records_delivered_total"),
         "changelog_per_partition": sizes,
         "data_mdb_bytes": os.path.getsize(os.path.join(f.state, "data.mdb"))}
    print(f"[restore] fill: sbomd run applied {N:,} events in {r['ingest_s']:.1f} s from assignment "
          f"({r['ingest_rate']:,.0f} ev/s, {pauses} backpressure pauses); changelog {CHANGELOG} "
          f"holds {N:,} records ({min(sizes):,}-{max(sizes):,} per partition)", flush=True)
    if not a.keep:
        shutil.rmtree(f.state)
    return r


def restore_run(a, broker, kafka, work, name, wrap=()):
    """One fresh instance restoring everything; wrap: a profiler command
    that runs sbomd (perf record ... --)."""
    P, N = a.partitions, a.entities
    d = os.path.join(work, name)
    inst = Instance(a, d, broker.bootstrap, f"bench-{name}", RESTORE_TOPIC, CHANGELOG,
                    consumer=["auto.offset.reset=latest"])
    cpu_b0 = broker.cpu_s()
    inst.start(wrap)
    t_ready = None
    t_end = time.time() + a.timeout
    while time.time() < t_end:
        inst.alive()
        if inst.ready():
            t_ready = time.time()
            break
        time.sleep(0.02)
    if t_ready is None:
        die(f"{name}: not ready after {a.timeout} s (see {inst.logp})")
    threads = threads_cpu(inst.pid)
    cpu_proc = proc_cpu(inst.pid)  # with threads that ended (the stager)
    io = proc_io(inst.pid)
    cpu_b = broker.cpu_s() - cpu_b0
    # The snapshot behind /metrics is published every 250 ms.
    m = {}
    for _ in range(40):
        m = inst.metrics()
        if m.get("sbomd_changelog_restored_total") == N and \
                m.get("sbomd_partitions_owned") == P and entities_total(m) == N:
            break
        time.sleep(0.1)
    inst.term()
    log = inst.log()
    t_as = next(o["t"] for o in log if o["msg"] == "partitions assigned")
    parts = [o for o in log if o["msg"] == "partition restored"]
    replayed = sum(int(o["replayed"]) for o in parts)
    bad = sum(int(o["bad"]) for o in parts)
    ents = sum(int(o["entities"]) for o in parts)
    errors = [o for o in log if o["level"] == "error"]
    problems = []
    if len(parts) != P or replayed != N or ents != N or bad or errors:
        problems.append(f"log: {len(parts)} partitions restored, {replayed} replayed, {ents} "
                        f"entities, {bad} bad, {len(errors)} errors")
    if m.get("sbomd_changelog_restored_total") != N or m.get("sbomd_partitions_owned") != P \
            or entities_total(m) != N:
        problems.append(f"metrics: restored_total {m.get('sbomd_changelog_restored_total')}, "
                        f"partitions_owned {m.get('sbomd_partitions_owned')}, "
                        f"entities {entities_total(m)}")
    st = subprocess.run([a.sbomd, "state", "--dir", inst.state, "stats"], capture_output=True,
                        text=True)
    mm = re.search(r"^entities\s+(\d+)", st.stdout, re.M)
    if not mm or int(mm.group(1)) != N:
        problems.append(f"sbomd state stats: {st.stdout[:300]}{st.stderr[:300]}")
    if problems:
        die(f"{name}: " + "; ".join(problems) + f" (see {inst.logp})")
    t_last = parts[-1]["t"]
    r = {"restore_s": t_last - t_as, "rate": N / (t_last - t_as), "spawn_to_ready_s": t_ready - inst.t_spawn,
         "join_s": t_as - inst.t_spawn,
         "partition_seconds": [float(o["seconds"]) for o in parts],
         "partition_records": [int(o["replayed"]) for o in parts],
         "cpu_by_thread": threads, "cpu_process_s": cpu_proc, "broker_cpu_s": cpu_b, "io": io,
         "data_mdb_bytes": os.path.getsize(os.path.join(inst.state, "data.mdb")),
         "loadavg_after": os.getloadavg()[0], "log": inst.logp, "pid": inst.pid}
    if not a.keep:
        shutil.rmtree(inst.state)
    return r


# perf profile: each on-CPU sample put in the first class whose test its
# stack (leaf first) passes.
def classify(comm, frames):
    syms = [s for s, _ in frames]
    dsos = [d for _, d in frames]
    has = lambda *names: any(s in names for s in syms)  # noqa: E731
    if has("restore", "own_assigned"):
        if has("replay_flush"):
            if has("__x64_sys_fdatasync", "fdatasync", "__GI_fdatasync"):
                return "restore: LMDB commit, fdatasync (CPU part)"
            if has("mdb_txn_commit"):
                return "restore: LMDB commit, writing dirty pages (mdb_txn_commit)"
            if has("mdb_put", "mdb_cursor_put"):
                return "restore: LMDB commit, B-tree inserts (mdb_put)"
            if has("engine_publish"):
                return "restore: snapshot publish after a commit"
            return "restore: LMDB commit, other"
        if has("store_load_partition"):
            if has("tracker_record_load"):
                return "restore: load, record decode + tracker insert"
            return "restore: load, LMDB cursor read"
        if has("replay_one"):
            return "restore: decode + validate + copy (replay_one)"
        if has("changelog_read"):
            return "restore: hand-over from librdkafka (rd_kafka_consume, headers)"
        return "restore: other (offset queries, ...)"
    if comm.startswith("rdk:broker"):
        if any("zstd" in d for d in dsos[:1]):
            return "librdkafka broker threads: zstd decompress"
        return "librdkafka broker threads: fetch, parse"
    if comm.startswith("rdk:"):
        return "librdkafka other threads"
    if comm == "sbomd":
        return "engine thread outside restore (start-up, ingest)"
    return "other threads"


def perf_classes(data):
    out = subprocess.run(["perf", "script", "-i", data, "-F", "comm,tid,ip,sym,dso"],
                         capture_output=True, text=True).stdout
    counts = {}
    total = 0
    for block in out.split("\n\n"):
        lines = [x for x in block.splitlines() if x.strip()]
        if not lines:
            continue
        head = lines[0].split()
        comm = " ".join(head[:-1]) if len(head) > 1 else head[0]
        frames = []
        for x in lines[1:]:
            parts = x.split(None, 1)
            if len(parts) < 2:
                continue
            rest = parts[1]
            dso = rest[rest.rfind("(") + 1:rest.rfind(")")] if "(" in rest else ""
            sym = rest[:rest.rfind("(")].strip() if "(" in rest else rest.strip()
            sym = sym.split("+")[0].replace(" (inlined)", "").strip()
            frames.append((sym, dso))
        c = classify(comm, frames)
        counts[c] = counts.get(c, 0) + 1
        total += 1
    return counts, total


def profile(a, broker, kafka, work, res):
    if shutil.which("perf") is None:
        print("[restore] --profile: perf not found, skipped", flush=True)
        return
    freq = 499
    data = os.path.join(work, "restore.perf")

    # Samples until SIGTERM (a second or so of shutdown after the
    # restore); only those whose stack holds restore() count as restore.
    rec = ["perf", "record", "-q", "-F", str(freq), "--call-graph", "dwarf,16384", "-o", data, "--"]
    r1 = restore_run(a, broker, kafka, work, "restore-perf-record", wrap=rec)
    counts, total = perf_classes(data)
    trace = os.path.join(work, "restore.trace")

    # The engine thread's waits in fdatasync and on librdkafka's queue
    # (futex), from start to SIGTERM.
    tr = ["perf", "trace", "-s", "-e", "fdatasync,futex", "-o", trace, "--"]
    r2 = restore_run(a, broker, kafka, work, "restore-perf-trace", wrap=tr)
    sysc, section = {}, None
    with open(trace, errors="replace") as f:
        for line in f:
            mm = re.match(r"\s*(\S+) \((\d+)\), \d+ events", line)
            if mm:
                section = (mm.group(1), int(mm.group(2)))
                continue
            mm = re.match(r"\s+(\w+)\s+(\d+)\s+(\d+)\s+([\d.]+)\s", line)
            if mm and section and section[1] == r2["pid"]:
                sysc[mm.group(1)] = {"calls": int(mm.group(2)), "total_ms": float(mm.group(4))}
    res["profile"] = {"record_run": r1, "trace_run": r2, "freq_hz": freq, "samples": total,
                      "classes": counts, "syscalls_engine_thread": sysc}
    print(f"[restore] profile (perf record, {total} samples at {freq} Hz; that run took "
          f"{r1['restore_s']:.2f} s):", flush=True)
    for c, n in sorted(counts.items(), key=lambda x: -x[1]):
        print(f"    {100 * n / total:5.1f}%  {n / freq:6.2f} s CPU  {c}", flush=True)
    print(f"[restore] profile (perf trace of the engine thread; that run took {r2['restore_s']:.2f} s): "
          + ", ".join(f"{k} {v['calls']} calls {v['total_ms'] / 1000:.2f} s" for k, v in sysc.items()),
          flush=True)


def baseline_run(a, broker, kafka, work, r):
    mine = a.sbomd
    a.sbomd = a.baseline
    try:
        x = restore_run(a, broker, kafka, work, f"restore-baseline-{r}")
    finally:
        a.sbomd = mine
    print(f"[restore {r}] baseline {a.baseline}: {x['restore_s']:.2f} s ({x['rate']:,.0f} entries/s)",
          flush=True)
    return x


def restore(a, broker, work, res):
    kafka = Kafka(broker.bootstrap, group="bench-scaleout-observer")
    res["restore"] = {"fill": fill(a, broker, kafka, work, res), "runs": []}
    if a.baseline:
        res["restore"]["baseline_runs"] = []
    for r in range(1, a.runs + 1):
        # With --baseline, each run restores with both binaries, in turns.
        if a.baseline and r % 2 == 0:
            res["restore"]["baseline_runs"].append(baseline_run(a, broker, kafka, work, r))
        x = restore_run(a, broker, kafka, work, f"restore-{r}")
        res["restore"]["runs"].append(x)
        if a.baseline and r % 2 == 1:
            res["restore"]["baseline_runs"].append(baseline_run(a, broker, kafka, work, r))
        th = x["cpu_by_thread"]
        print(f"[restore {r}] {a.entities:,} records in {x['restore_s']:.2f} s "
              f"({x['rate']:,.0f} entries/s); spawn -> ready {x['spawn_to_ready_s']:.2f} s; "
              f"per partition {min(x['partition_seconds']):.2f}-{max(x['partition_seconds']):.2f} s; "
              f"CPU sbomd {x['cpu_process_s']:.2f} s (engine thread {th.get('engine', 0):.2f} s, librdkafka "
              f"{sum(v for k, v in th.items() if k.startswith('rdk:')):.2f} s), broker JVM "
              f"{x['broker_cpu_s']:.2f} s; wrote {x['io']['wchar'] / 2**20:,.0f} MiB "
              f"(disk {x['io']['write_bytes'] / 2**20:,.0f} MiB) for a "
              f"{x['data_mdb_bytes'] / 2**20:,.0f} MiB data.mdb; load {x['loadavg_after']:.2f}",
              flush=True)
    if a.profile:
        profile(a, broker, kafka, work, res["restore"])
    kafka.close()


# ---- 2./3. takeover and restart -------------------------------------------

def partition_of(key, n):
    """librdkafka's default partitioner for a keyed message
    (consistent_random): CRC-32 of the key modulo the partition count."""
    return zlib.crc32(key.encode()) % n


class Load:
    """RATE SETs of new images per second through one `sbomd emit`, and
    probes on demand; remembers every id produced."""

    def __init__(self, a, brokers, topic, prefix):
        self.a, self.prefix = a, prefix
        self.p = spawn([a.sbomd, "emit", "-b", brokers, "-t", topic, "-X", "linger.ms=0"],
                       stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.lock = threading.Lock()
        self.n = 0
        self.ids = []
        self.halt = threading.Event()
        self.th = threading.Thread(target=self._run, daemon=True)
        self.th.start()

    def _new_id(self):
        self.n += 1
        return "sha256:" + hashlib.sha256(f"{self.prefix}-{self.n}".encode()).hexdigest()

    def _send(self, lines):
        self.p.stdin.write("".join(lines).encode())
        self.p.stdin.flush()

    def _run(self):
        start, k = time.perf_counter(), 0
        while not self.halt.is_set():
            due = int((time.perf_counter() - start) * self.a.rate)
            if due > k:
                with self.lock:
                    lines = []
                    for _ in range(due - k):
                        iid = self._new_id()
                        self.ids.append(iid)
                        lines.append(set_line(iid))
                    self._send(lines)
                k = due
            time.sleep(0.005)

    def probe(self, parts, nparts):
        """One new image per partition in parts, produced at once:
        {partition: (id, time produced)}."""
        want, out = set(parts), {}
        with self.lock:
            lines = []
            while want:
                iid = self._new_id()
                p = partition_of(iid, nparts)
                if p in want:
                    want.discard(p)
                    out[p] = iid
                    self.ids.append(iid)
                    lines.append(set_line(iid))
            self._send(lines)
            t = time.time()
        return {p: (iid, t) for p, iid in out.items()}

    def close(self):
        self.halt.set()
        self.th.join()
        self.p.stdin.close()
        err = self.p.stderr.read().decode()
        self.p.wait()
        CHILDREN.remove(self.p)
        if self.p.returncode != 0:
            die(f"load: sbomd emit exited {self.p.returncode}: {err[-1000:]}")
        return len(self.ids)


def start_pair(a, broker, kafka, d, tag):
    """Topics, TAKEOVER_ENTITIES events, A alone until caught up, then B;
    returns (A, B, topic, group) once both are ready with half each."""
    P = a.partitions
    topic, changelog, group = f"{tag}-events", f"{tag}-state", f"bench-{tag}"
    broker.create_topic(topic, P)
    n, _ = emit_file(a, broker.bootstrap, topic,
                     (set_line("sha256:" + hashlib.sha256(f"{tag}-pre-{i}".encode()).hexdigest())
                      for i in range(a.takeover_entities)), os.path.join(d, "pre.jsonl"))
    check_topic(kafka, topic, P, n)
    A = Instance(a, os.path.join(d, "A"), broker.bootstrap, group, topic, changelog).start()
    wait_committed(kafka, group, topic, P, n, a.timeout, [A])
    B = Instance(a, os.path.join(d, "B"), broker.bootstrap, group, topic, changelog).start()

    def balanced():
        oa, ob = A.owned(), B.owned()
        return (len(oa) + len(ob) == P and oa and ob and not set(oa) & set(ob)
                and A.ready() and B.ready())
    t0 = time.time()
    wait_until(balanced, 180, "A and B to share the partitions", [A, B])
    print(f"[{tag}] A owns {A.owned()}, B owns {B.owned()} ({time.time() - t0:.1f} s after B "
          f"started); {n:,} entities", flush=True)
    return A, B, topic, group, n


def poll_probes(inst, probes, timeout):
    """Polls inst's entity API until every probe is there: {partition:
    time seen}; checks each probe's partition."""
    seen = {}
    t_end = time.time() + timeout
    while len(seen) < len(probes) and time.time() < t_end:
        for p, (iid, _) in probes.items():
            if p in seen:
                continue
            e = inst.entity(iid)
            if e is not None:
                seen[p] = time.time()
                if e.get("partition") != p:
                    die(f"probe {iid} is on partition {e.get('partition')}, expected {p}: "
                        f"the partitioner is not CRC-32 of the key")
        if len(seen) < len(probes):
            time.sleep(0.05)
    return seen


def wait_all_entities(insts, want, timeout=60):
    def ok():
        return sum(entities_total(i.metrics()) for i in insts) == want
    wait_until(ok, timeout, f"{want} entities held in total", insts)


def takeover(a, broker, work, res):
    kafka = Kafka(broker.bootstrap, group="bench-scaleout-observer-t")
    res["takeover"] = []
    for r in range(1, a.takeover_runs + 1):
        tag = f"takeover-{r}"
        d = os.path.join(work, tag)
        os.makedirs(d)
        A, B, topic, group, n0 = start_pair(a, broker, kafka, d, tag)
        load = Load(a, broker.bootstrap, topic, tag)
        time.sleep(3)
        dead = A.owned()
        t_kill = time.time()
        A.kill9()
        probes = load.probe(dead, a.partitions)
        owned_all = None

        def check():
            nonlocal owned_all
            if owned_all is None and B.metrics().get("sbomd_partitions_owned") == a.partitions:
                owned_all = time.time()
        seen = {}
        t_end = time.time() + a.takeover_timeout
        while len(seen) < len(probes) and time.time() < t_end:
            B.alive()
            check()
            seen.update(poll_probes(B, {p: v for p, v in probes.items() if p not in seen}, 0.01))
            time.sleep(0.05)
        if len(seen) < len(probes):
            die(f"{tag}: probes of partitions {sorted(set(probes) - set(seen))} not applied by B "
                f"{a.takeover_timeout} s after the kill (see {B.logp})")
        produced = n0 + load.close()
        wait_all_entities([B], produced)
        B.term()
        log = [o for o in B.log() if o["t"] >= t_kill - 0.001]
        t_as = next((o["t"] for o in log if o["msg"] == "partitions assigned"), float("nan"))
        rest = [o for o in log if o["msg"] == "partition restored" and o["t"] >= t_as]
        x = {"dead_partitions": dead, "owner_s": t_as - t_kill,
             "restored_s": (rest[-1]["t"] if rest else float("nan")) - t_kill,
             "restored_records": sum(int(o["replayed"]) for o in rest),
             "owned_all_metric_s": (owned_all or float("nan")) - t_kill,
             "flowing_s": max(seen.values()) - t_kill, "first_flowing_s": min(seen.values()) - t_kill,
             "probe_produced_after_kill_s": max(t for _, t in probes.values()) - t_kill,
             "entities_end": produced, "loadavg_after": os.getloadavg()[0]}
        res["takeover"].append(x)
        print(f"[{tag}] kill -9 A (never restarted): B assigned {x['owner_s']:.2f} s, restored "
              f"{x['restored_records']:,} records by {x['restored_s']:.2f} s, input of all "
              f"{len(dead)} dead partitions flowing at {x['flowing_s']:.2f} s (first "
              f"{x['first_flowing_s']:.2f} s); B holds all {produced:,} entities", flush=True)
        if not a.keep:
            shutil.rmtree(d)
    kafka.close()


def restart(a, broker, work, res):
    kafka = Kafka(broker.bootstrap, group="bench-scaleout-observer-r")
    tag = "restart"
    d = os.path.join(work, tag)
    os.makedirs(d)
    A, B, topic, group, n0 = start_pair(a, broker, kafka, d, tag)
    load = Load(a, broker.bootstrap, topic, tag)
    res["restart"] = []
    for r in range(1, a.restart_runs + 1):
        time.sleep(3)
        dead = A.owned()
        t_kill = time.time()
        A.kill9()
        A.start()
        t_started = time.time()
        probes = load.probe(dead, a.partitions)
        seen = poll_probes(A, probes, a.takeover_timeout)
        if len(seen) < len(probes):
            die(f"restart {r}: probes of partitions {sorted(set(probes) - set(seen))} not applied "
                f"by the restarted A (see {A.logp})")
        wait_until(lambda: A.ready() and A.owned() == dead, 60,
                   "the restarted A to own its partitions again", [A, B])
        log = A.log()
        t_as = next((o["t"] for o in log if o["msg"] == "partitions assigned"), float("nan"))
        rest = [o for o in log if o["msg"] == "partition restored"]
        blog = [o for o in B.log() if o["t"] >= t_kill - 0.001 and o["msg"] in (
            "partitions assigned", "partitions revoked", "partitions lost (group session expired)",
            "partitions released")]
        x = {"dead_partitions": dead, "respawn_s": t_started - t_kill,
             "assigned_s": t_as - t_kill,
             "restored_s": (rest[-1]["t"] if rest else float("nan")) - t_kill,
             "replayed": sum(int(o["replayed"]) for o in rest),
             "flowing_s": max(seen.values()) - t_kill, "first_flowing_s": min(seen.values()) - t_kill,
             "b_rebalance_lines": [o["msg"] for o in blog], "loadavg_after": os.getloadavg()[0]}
        res["restart"].append(x)
        print(f"[restart {r}] kill -9 A + restart: assigned {x['assigned_s']:.2f} s, restored "
              f"{x['restored_s']:.2f} s ({x['replayed']} records replayed), input of its "
              f"{len(dead)} partitions flowing at {x['flowing_s']:.2f} s (first "
              f"{x['first_flowing_s']:.2f} s); B saw: {', '.join(x['b_rebalance_lines']) or 'nothing'}",
              flush=True)
    produced = n0 + load.close()
    wait_all_entities([A, B], produced)
    A.term()
    B.term()
    print(f"[restart] A and B hold all {produced:,} entities", flush=True)
    if not a.keep:
        shutil.rmtree(d)
    kafka.close()


# ---- main ------------------------------------------------------------------

def summary(a, res):
    print()
    print(f"sbomd scale-out benchmark  ({os.cpu_count()} CPUs, {a.sbomd}, {res.get('broker')})")
    rows = []
    R = res.get("restore")
    if R:
        f = R["fill"]
        runs = R["runs"]
        rows += [
            ("fill: sbomd run, changelog on, real Kafka",
             f"{f['ingest_rate']:,.0f} ev/s",
             f"{f['events']:,} new entities in {f['ingest_s']:.1f} s, "
             f"{f['backpressure_pauses']} backpressure pauses (one run)"),
            (f"restore {a.entities:,} entries, {a.partitions} partitions: entries/s",
             f"{med([x['rate'] for x in runs]):,.0f}",
             "min-max " + f"{min(x['rate'] for x in runs):,.0f}-{max(x['rate'] for x in runs):,.0f}"
             f", n={len(runs)}; target 500,000: "
             + ("PASS" if med([x['rate'] for x in runs]) >= 500000 else "FAIL")),
        ] + ([
            ("    baseline (--baseline), entries/s",
             f"{med([x['rate'] for x in R['baseline_runs']]):,.0f}",
             "min-max " + f"{min(x['rate'] for x in R['baseline_runs']):,.0f}-"
             f"{max(x['rate'] for x in R['baseline_runs']):,.0f}; ratio of medians "
             f"{med([x['rate'] for x in runs]) / med([x['rate'] for x in R['baseline_runs']]):.2f}"),
        ] if R.get("baseline_runs") else []) + [
            ("    restore time, s (assigned -> last restored)",
             mmm([x["restore_s"] for x in runs]), ""),
            ("    spawn -> /readyz 200, s", mmm([x["spawn_to_ready_s"] for x in runs]), ""),
            ("    CPU s: sbomd / engine thread / librdkafka / broker JVM",
             f"{med([x['cpu_process_s'] for x in runs]):.2f} / "
             f"{med([x['cpu_by_thread'].get('engine', 0) for x in runs]):.2f} / "
             f"{med([sum(v for k, v in x['cpu_by_thread'].items() if k.startswith('rdk:')) for x in runs]):.2f} / "
             f"{med([x['broker_cpu_s'] for x in runs]):.2f}", "medians"),
            ("    written: write(2) / disk / data.mdb, MiB",
             f"{med([x['io']['wchar'] for x in runs]) / 2**20:,.0f} / "
             f"{med([x['io']['write_bytes'] for x in runs]) / 2**20:,.0f} / "
             f"{med([x['data_mdb_bytes'] for x in runs]) / 2**20:,.0f}", "medians"),
        ]
    T = res.get("takeover")
    if T:
        rows += [
            ("takeover after kill -9, defaults: B assigned, s", mmm([x["owner_s"] for x in T]),
             "from the kill"),
            ("    B restored the dead partitions, s", mmm([x["restored_s"] for x in T]), ""),
            ("    input of every dead partition flowing, s", mmm([x["flowing_s"] for x in T]),
             "target: about session.timeout.ms (45 s)"),
        ]
    S = res.get("restart")
    if S:
        rows += [
            ("kill -9 + restart (static member): assigned, s", mmm([x["assigned_s"] for x in S]),
             "from the kill"),
            ("    restored, s", mmm([x["restored_s"] for x in S]), ""),
            ("    input of its partitions flowing, s", mmm([x["flowing_s"] for x in S]), ""),
            ("    rebalance lines in B's log", str(sum(len(x["b_rebalance_lines"]) for x in S)),
             "over all runs"),
        ]
    if not rows:
        return
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    for r in rows:
        print(f"  {r[0]:<{w0}}  {r[1]:>{w1}}  {r[2]}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sbomd", default=os.path.join(ROOT, "build", "sbomd"))
    ap.add_argument("--work", default="/var/tmp/sbomd-bench-scaleout")
    ap.add_argument("--keep", action="store_true", help="keep the state dirs")
    ap.add_argument("--partitions", type=int, default=12)
    ap.add_argument("--entities", type=int, default=1_000_000, help="restore: changelog size")
    ap.add_argument("--runs", type=int, default=5, help="restore runs")
    ap.add_argument("--baseline", help="restore: another sbomd binary, run in turns with --sbomd")
    ap.add_argument("--profile", action="store_true",
                    help="restore: two more runs under perf record / perf trace")
    ap.add_argument("--takeover-runs", type=int, default=3)
    ap.add_argument("--restart-runs", type=int, default=5)
    ap.add_argument("--takeover-entities", type=int, default=100_000)
    ap.add_argument("--rate", type=float, default=100, help="takeover/restart: events/s")
    ap.add_argument("--takeover-timeout", type=float, default=120)
    ap.add_argument("--timeout", type=float, default=600, help="per fill or restore, s")
    ap.add_argument("--skip-restore", action="store_true")
    ap.add_argument("--skip-takeover", action="store_true")
    ap.add_argument("--skip-restart", action="store_true")
    a = ap.parse_args()
    a.sbomd = os.path.abspath(a.sbomd)
    if a.baseline:
        a.baseline = os.path.abspath(a.baseline)
    if a.partitions < 2:
        sys.exit("bench_scaleout: --partitions must be at least 2 (two instances share them)")
    signal.signal(signal.SIGTERM, bs.on_signal)
    signal.signal(signal.SIGINT, bs.on_signal)
    if os.path.isdir(a.work):
        shutil.rmtree(a.work)
    os.makedirs(a.work)
    res = {"argv": sys.argv, "cpus": os.cpu_count()}
    try:
        broker = Broker(os.path.join(a.work, "kafka"))
        res["broker"] = broker.version
        print(f"[broker] {broker.version}", flush=True)
        if not a.skip_restore:
            restore(a, broker, a.work, res)
        if not a.skip_takeover:
            takeover(a, broker, a.work, res)
        if not a.skip_restart:
            restart(a, broker, a.work, res)
    finally:
        bs.stop_all()
        with open(os.path.join(a.work, "results.json"), "w") as f:
            json.dump(res, f, indent=1)
    summary(a, res)


if __name__ == "__main__":
    main()
