#!/usr/bin/env bash
# A real Apache Kafka broker for tests: one KRaft node (broker and
# controller in one JVM) on 127.0.0.1, run from the jars that
# scripts/setup.sh copies into tools/kafka/lib/ (release pinned in
# tools/kafka/pom.xml). Needs Java 17+, python3 and kcat; no network
# beyond loopback.
#
#   scripts/kafka.sh start [DIR]     fresh storage in DIR, start, wait until the
#                                    broker answers metadata requests, print
#                                    its bootstrap address (the only stdout line)
#   scripts/kafka.sh restart [DIR]   start again on DIR's data and ports (after
#                                    stop or kill; stops a running one first)
#   scripts/kafka.sh stop [DIR]      SIGTERM, then SIGKILL after
#                                    KAFKA_STOP_TIMEOUT seconds (default 30)
#   scripts/kafka.sh kill [DIR]      SIGKILL
#   scripts/kafka.sh topics ARGS...  Kafka's topic command (kafka-topics.sh)
#   scripts/kafka.sh groups ARGS...  Kafka's consumer group command
#                                    (kafka-consumer-groups.sh)
#
# DIR defaults to ${TMPDIR:-/tmp}/sbomd-kafka. Everything the broker writes
# stays in DIR: server.properties, data/ (partitions and the metadata log),
# logs/server.log (warnings and errors), kafka.out (the JVM's own output),
# tmp/ (its temporary files), kafka.pid and bootstrap (the address).
# KAFKA_START_TIMEOUT (seconds, default 120) bounds the wait for the broker.
# The time a start took goes to stderr. KAFKA_SH_LOG4J=FILE runs the broker
# with another log4j2 configuration (e.g. to see its INFO lines).
#
# Ports are picked free below the kernel's ephemeral range, so that no
# client connection can take them while the broker is down between a kill
# and a restart; a start whose port was taken all the same tries again
# with other ports.
#
# Start-up time is mostly class loading. scripts/setup.sh has one broker
# write the classes it loaded to a class-data archive,
# tools/kafka/lib/kafka.jsa (KAFKA_SH_CDS_DUMP=FILE makes a broker do that
# when it exits); every JVM started here maps that archive when it exists,
# which roughly halves the time to a ready broker or a finished command. A
# missing or stale archive only costs that time.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOL_DIR="$ROOT/tools/kafka"
LIB="$TOOL_DIR/lib"

# Class names of the pinned release (see the jars in tools/kafka/lib).
BROKER_CLASS=kafka.Kafka
STORAGE_CLASS=kafka.tools.StorageTool
TOPICS_CLASS=org.apache.kafka.tools.TopicCommand
GROUPS_CLASS=org.apache.kafka.tools.consumer.group.ConsumerGroupCommand

CDS_ARCHIVE="$LIB/kafka.jsa"

# The broker: a small heap, the serial collector (one small JVM on a
# 2-core machine starts faster with it than with G1), no hsperfdata file
# outside DIR. JVM warnings go to stderr, never to stdout.
BROKER_JVM_OPTS=(-Xms128m -Xmx512m -XX:+UseSerialGC -XX:-UsePerfData
  -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
  -Xlog:disable -Xlog:all=warning:stderr)
# Short-lived commands: client compiler only, which starts fastest.
TOOL_JVM_OPTS=(-Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1
  -XX:-UsePerfData -Djava.awt.headless=true
  -Xlog:disable -Xlog:all=warning:stderr)
if [ -f "$CDS_ARCHIVE" ]; then
  TOOL_JVM_OPTS+=(-XX:SharedArchiveFile="$CDS_ARCHIVE")
  [ -n "${KAFKA_SH_CDS_DUMP:-}" ] ||
    BROKER_JVM_OPTS+=(-XX:SharedArchiveFile="$CDS_ARCHIVE")
fi
if [ -n "${KAFKA_SH_CDS_DUMP:-}" ]; then
  case "$KAFKA_SH_CDS_DUMP" in
    /*) ;;
    *) KAFKA_SH_CDS_DUMP="$PWD/$KAFKA_SH_CDS_DUMP" ;; # the broker runs in DIR
  esac
  BROKER_JVM_OPTS+=(-XX:ArchiveClassesAtExit="$KAFKA_SH_CDS_DUMP")
fi

die() {
  echo "kafka.sh: $*" >&2
  exit 1
}

usage() {
  cat >&2 <<'EOF'
usage: scripts/kafka.sh start [DIR] | restart [DIR] | stop [DIR] | kill [DIR]
       scripts/kafka.sh topics ARGS... | groups ARGS...
DIR defaults to ${TMPDIR:-/tmp}/sbomd-kafka
EOF
  exit 2
}

# Java 17 or newer and the jars, or a message saying how to get them.
need_runtime() {
  command -v java >/dev/null 2>&1 ||
    die "java not found (Kafka 4 needs Java 17+): run scripts/setup.sh"
  local line major
  # The line that names the version: without perf data (a JVM may warn
  # first about another's /tmp/hsperfdata file when pids are reused).
  line=$(java -XX:-UsePerfData -version 2>&1 | grep -m 1 ' version "' || true)
  major=$(sed -E 's/^[^"]*"(1\.)?([0-9]+).*/\2/' <<<"$line")
  if ! [[ "$major" =~ ^[0-9]+$ ]] || [ "$major" -lt 17 ]; then
    die "Kafka 4 needs Java 17 or newer, found: $line: run scripts/setup.sh"
  fi
  if ! compgen -G "$LIB/kafka_2.13-*.jar" >/dev/null ||
     ! compgen -G "$LIB/kafka-tools-[0-9]*.jar" >/dev/null; then
    die "the Kafka jars are missing from tools/kafka/lib: run scripts/setup.sh"
  fi
}

# The release of the jars in tools/kafka/lib (kafka_2.13-VERSION.jar).
kafka_version() {
  local jar
  jar=$(compgen -G "$LIB/kafka_2.13-*.jar" | grep -Ev -- '-(test|sources|javadoc)' | head -n 1)
  jar=${jar##*/kafka_2.13-}
  echo "${jar%.jar}"
}

need_cmd() {
  command -v "$1" >/dev/null 2>&1 || die "$1 not found: run scripts/setup.sh"
}

default_dir() { echo "${TMPDIR:-/tmp}/sbomd-kafka"; }

# The directory argument, created and made absolute.
new_broker_dir() {
  local d="${1:-$(default_dir)}"
  mkdir -p "$d" || die "cannot create $d"
  (cd "$d" && pwd -P)
}

# The directory argument made absolute; fails when it does not exist.
broker_dir() {
  local d="${1:-$(default_dir)}"
  [ -d "$d" ] && (cd "$d" && pwd -P)
}

now_ms() {
  local ns
  ns=$(date +%s%N)
  echo $((ns / 1000000))
}

elapsed() { # since a now_ms value, as seconds with two decimals
  local ms=$(($(now_ms) - $1))
  printf '%d.%02d' $((ms / 1000)) $(((ms % 1000) / 10))
}

# Alive and not a zombie.
alive() {
  local pid="$1" state
  kill -0 "$pid" 2>/dev/null || return 1
  state=$(sed -E 's/^[0-9]+ \(.*\) ([A-Za-z]).*/\1/' "/proc/$pid/stat" 2>/dev/null) || return 1
  [ "$state" != Z ]
}

# Prints the pid of the broker running from DIR; fails when there is none.
# A pid file whose process is gone, or is no longer that broker (the pid
# was reused), does not count.
running_pid() {
  local dir="$1" pid cmd
  [ -f "$dir/kafka.pid" ] || return 1
  pid=$(cat "$dir/kafka.pid" 2>/dev/null) || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  alive "$pid" || return 1
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  case "$cmd" in
    *" $BROKER_CLASS $dir/server.properties"*) echo "$pid" ;;
    *) return 1 ;;
  esac
}

# Two free loopback ports (client, controller), below the ephemeral range
# when it leaves room, and a cluster id: 16 random bytes in unpadded
# URL-safe base64, not starting with '-' (as Kafka's own ids never do, so
# that they cannot be taken for an option).
fresh_ports_and_id() {
  python3 - <<'EOF'
import base64, os, random, socket
try:
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        low = int(f.read().split()[0])
except (OSError, ValueError, IndexError):
    low = 0
socks = []
for _ in range(200):
    if len(socks) == 2:
        break
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", random.randrange(10000, low) if low > 11000 else 0))
        socks.append(s)
    except OSError:
        s.close()
ports = [s.getsockname()[1] for s in socks]
for s in socks:
    s.close()
if len(ports) < 2:
    raise SystemExit("no free ports")
while True:
    cid = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
    if not cid.startswith("-"):
        break
print(ports[0], ports[1], cid)
EOF
}

write_config() {
  local dir="$1" port="$2" cport="$3"
  cat >"$dir/server.properties" <<EOF
# Written by scripts/kafka.sh start: one KRaft node for tests.
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
controller.quorum.bootstrap.servers=127.0.0.1:$cport
log.dirs=$dir/data

# a single replica of everything
auto.create.topics.enable=true
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0

# sized for a 2-core test machine
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
background.threads=4

# After a kill -9 the controller refuses the broker's new registration
# until the old session times out (9 s by default): a shorter session,
# with heartbeats well inside it, brings a killed broker back sooner.
broker.heartbeat.interval.ms=500
broker.session.timeout.ms=3000

# small segments; compaction on, with a small dedupe buffer (the default
# 128 MiB would take a quarter of the heap) and a short pause between runs
log.segment.bytes=16777216
log.retention.hours=24
log.retention.check.interval.ms=60000
log.cleaner.enable=true
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=16777216
log.cleaner.backoff.ms=1000
EOF
}

# Starts the JVM in the background on DIR's configuration and records its pid.
launch() {
  local dir="$1"
  mkdir -p "$dir/logs" "$dir/tmp"
  (
    cd "$dir"
    exec java "${BROKER_JVM_OPTS[@]}" \
      -Djava.io.tmpdir="$dir/tmp" \
      -Dkafka.logs.dir="$dir/logs" \
      -Dlog4j2.configurationFile="${KAFKA_SH_LOG4J:-$TOOL_DIR/log4j2.properties}" \
      -cp "$LIB/*" "$BROKER_CLASS" "$dir/server.properties"
  ) </dev/null >>"$dir/kafka.out" 2>&1 &
  echo $! >"$dir/kafka.pid"
}

show_logs() {
  local dir="$1" f
  for f in "$dir/kafka.out" "$dir/logs/server.log"; do
    if [ -s "$f" ]; then
      echo "--- last lines of $f" >&2
      tail -n 30 "$f" >&2
    fi
  done
}

# Waits until the broker answers a metadata request naming itself; fails
# when it exits first, dies when it does not answer in time.
wait_ready() {
  local dir="$1" addr="$2" pid timeout deadline
  pid=$(cat "$dir/kafka.pid")
  timeout="${KAFKA_START_TIMEOUT:-120}"
  deadline=$((SECONDS + timeout))
  while :; do
    if ! alive "$pid"; then
      rm -f "$dir/kafka.pid"
      return 1
    fi
    # kcat only once the port accepts connections: while it is closed, each
    # kcat call would sit out its whole metadata timeout.
    if (exec 3<>"/dev/tcp/${addr%:*}/${addr##*:}") 2>/dev/null &&
       kcat -L -b "$addr" -m 5 2>/dev/null | grep -q "broker 1 at $addr"; then
      return 0
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      kill -KILL "$pid" 2>/dev/null || true
      rm -f "$dir/kafka.pid"
      show_logs "$dir"
      die "the broker did not answer on $addr within ${timeout}s (killed it)"
    fi
    sleep 0.2
  done
}

# Sends SIG to the broker of DIR and waits up to LIMIT seconds for it to go.
signal_and_wait() {
  local pid="$1" sig="$2" limit="$3" deadline
  kill -"$sig" "$pid" 2>/dev/null || true
  deadline=$((SECONDS + limit))
  while alive "$pid"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}

exited_on_bind() {
  grep -qsE 'BindException|Address already in use' "$1/kafka.out" "$1/logs/server.log"
}

cmd_start() {
  need_runtime
  need_cmd python3
  need_cmd kcat
  local dir pid t0 port cport cid addr attempt
  dir=$(new_broker_dir "${1:-}")
  if pid=$(running_pid "$dir"); then
    die "a broker is already running from $dir (pid $pid): stop it first"
  fi
  t0=$(now_ms)
  for attempt in 1 2 3; do
    rm -rf "$dir/data" "$dir/logs" "$dir/tmp" "$dir/server.properties" \
      "$dir/kafka.out" "$dir/kafka.pid" "$dir/bootstrap" "$dir/format.out"
    read -r port cport cid < <(fresh_ports_and_id) && [ -n "$cid" ] ||
      die "could not pick free ports"
    write_config "$dir" "$port" "$cport"
    mkdir -p "$dir/tmp"
    if ! java "${TOOL_JVM_OPTS[@]}" -Djava.io.tmpdir="$dir/tmp" \
        -Dlog4j2.configurationFile="$TOOL_DIR/tools-log4j2.properties" \
        -cp "$LIB/*" "$STORAGE_CLASS" format --standalone \
        --cluster-id "$cid" --config "$dir/server.properties" \
        >"$dir/format.out" 2>&1; then
      cat "$dir/format.out" >&2
      die "formatting the storage in $dir/data failed"
    fi
    addr="127.0.0.1:$port"
    echo "$addr" >"$dir/bootstrap"
    launch "$dir"
    if wait_ready "$dir" "$addr"; then
      echo "kafka.sh: Apache Kafka $(kafka_version) broker $addr up in $(elapsed "$t0") s" \
        "(format and start; pid $(cat "$dir/kafka.pid"), $dir)" >&2
      echo "$addr"
      return 0
    fi
    if [ "$attempt" -lt 3 ] && exited_on_bind "$dir"; then
      echo "kafka.sh: port $port or $cport was taken meanwhile; other ports" >&2
      continue
    fi
    break
  done
  show_logs "$dir"
  die "the broker exited during start-up; see $dir/kafka.out and $dir/logs/server.log"
}

cmd_restart() {
  need_runtime
  need_cmd kcat
  local dir pid t0 addr
  dir=$(broker_dir "${1:-}") && [ -f "$dir/server.properties" ] &&
    [ -f "$dir/bootstrap" ] ||
    die "no broker was started in ${1:-$(default_dir)}: use start"
  if pid=$(running_pid "$dir"); then
    stop_broker "$dir" "$pid"
  fi
  t0=$(now_ms)
  addr=$(cat "$dir/bootstrap")
  launch "$dir"
  if ! wait_ready "$dir" "$addr"; then
    show_logs "$dir"
    exited_on_bind "$dir" && echo "kafka.sh: port ${addr##*:} (or the controller's) is taken" >&2
    die "the broker exited during start-up; see $dir/kafka.out and $dir/logs/server.log"
  fi
  echo "kafka.sh: broker $addr up again in $(elapsed "$t0") s" \
    "(pid $(cat "$dir/kafka.pid"), $dir)" >&2
  echo "$addr"
}

stop_broker() {
  local dir="$1" pid="$2" t0
  t0=$(now_ms)
  if ! signal_and_wait "$pid" TERM "${KAFKA_STOP_TIMEOUT:-30}"; then
    echo "kafka.sh: pid $pid still running after ${KAFKA_STOP_TIMEOUT:-30}s; SIGKILL" >&2
    signal_and_wait "$pid" KILL 30 || die "pid $pid survives SIGKILL"
  fi
  rm -f "$dir/kafka.pid"
  echo "kafka.sh: broker stopped in $(elapsed "$t0") s (pid $pid, $dir)" >&2
}

# Prints "DIR PID" of the broker running from DIR (argument or default);
# says so and returns 1 when none is (stop and kill are then no-ops).
running_broker() {
  local dir pid
  if ! dir=$(broker_dir "${1:-}"); then
    echo "kafka.sh: no broker running from ${1:-$(default_dir)}" >&2
    return 1
  fi
  if ! pid=$(running_pid "$dir"); then
    rm -f "$dir/kafka.pid"
    echo "kafka.sh: no broker running from $dir" >&2
    return 1
  fi
  echo "$dir $pid"
}

cmd_stop() {
  local found dir pid
  found=$(running_broker "${1:-}") || return 0
  read -r dir pid <<<"$found"
  stop_broker "$dir" "$pid"
}

cmd_kill() {
  local found dir pid
  found=$(running_broker "${1:-}") || return 0
  read -r dir pid <<<"$found"
  signal_and_wait "$pid" KILL 30 || die "pid $pid survives SIGKILL"
  rm -f "$dir/kafka.pid"
  echo "kafka.sh: broker killed (pid $pid, $dir)" >&2
}

run_tool() {
  local class="$1"
  shift
  need_runtime
  exec java "${TOOL_JVM_OPTS[@]}" \
    -Dlog4j2.configurationFile="$TOOL_DIR/tools-log4j2.properties" \
    -cp "$LIB/*" "$class" "$@"
}

[ $# -ge 1 ] || usage
cmd="$1"
shift
case "$cmd" in
  start | restart | stop | kill)
    [ $# -le 1 ] || usage
    "cmd_$cmd" "$@"
    ;;
  topics) run_tool "$TOPICS_CLASS" "$@" ;;
  groups) run_tool "$GROUPS_CLASS" "$@" ;;
  -h | --help | help) usage ;;
  *)
    echo "kafka.sh: unknown command: $cmd" >&2
    usage
    ;;
esac
