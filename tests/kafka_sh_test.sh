#!/usr/bin/env bash
# scripts/kafka.sh against the real broker it runs: start in a fresh
# directory, create topics (one compacted) with its `topics` command,
# produce and consume in a group with kcat, read the group's offsets and lag
# with its `groups` command, check that compaction runs, kill -9 the broker,
# restart it on the same directory and port, check that the messages, the
# committed offsets and the topic configuration survived, stop it and check
# the process is gone. Also: the clear failures when java or the jars are
# missing. Needs what scripts/setup.sh installs (Java 17, tools/kafka/lib,
# kcat, python3). Prints each check; exits non-zero on the first failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KAFKA_SH="$ROOT/scripts/kafka.sh"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/kafka_sh_test.XXXXXX")"
DIR="$WORK/broker"
checks=0

cleanup() {
  local rc=$?
  if [ -f "$DIR/kafka.pid" ]; then
    "$KAFKA_SH" kill "$DIR" 2>/dev/null || true
  fi
  if [ "$rc" -ne 0 ]; then
    for f in "$DIR/kafka.out" "$DIR/logs/server.log"; do
      if [ -s "$f" ]; then
        echo "--- last lines of $f" >&2
        tail -n 40 "$f" >&2
      fi
    done
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

ok() {
  checks=$((checks + 1))
  echo "ok $checks - $*"
}

# expect_eq WHAT EXPECTED ACTUAL
expect_eq() {
  if [ "$2" != "$3" ]; then
    fail "$1: expected [$2], got [$3]"
  fi
  ok "$1: $3"
}

# Bounded kcat calls: nothing here may hang the suite.
kc() { timeout 60 kcat "$@"; }

# Every message of TOPIC from the beginning, as sorted "partition key=value".
dump_topic() {
  kc -C -b "$ADDR" -t "$1" -o beginning -e -q -f '%p %k=%s\n' | sort
}

# The group's rows from `groups --describe`, as sorted
# "topic partition current-offset log-end-offset lag", the columns found by
# their header names.
describe_group() {
  local out
  out=$("$KAFKA_SH" groups --bootstrap-server "$ADDR" --describe --group "$1" 2>"$WORK/groups.err") ||
    fail "groups --describe --group $1 failed: $(cat "$WORK/groups.err")"
  awk '
    $1 == "GROUP" {
      for (i = 1; i <= NF; i++) col[$i] = i
      need = "TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID"
      n = split(need, names, " ")
      for (i = 1; i <= n; i++)
        if (!(names[i] in col)) { print "missing column " names[i] > "/dev/stderr"; exit 1 }
      header = 1
      next
    }
    header && NF > 0 {
      print $col["TOPIC"], $col["PARTITION"], $col["CURRENT-OFFSET"], $col["LOG-END-OFFSET"], $col["LAG"]
    }
    END { if (!header) { print "no header line" > "/dev/stderr"; exit 1 } }
  ' <<<"$out" | sort || fail "unexpected groups --describe output:
$out"
}

# ---------------------------------------------------------------- failures
# Without the jars (a copy of the script in a tree with no tools/kafka/lib)
# and without java on PATH, every command fails with a message naming
# scripts/setup.sh.
mkdir -p "$WORK/bare/scripts" "$WORK/nojava"
cp "$KAFKA_SH" "$WORK/bare/scripts/kafka.sh"
for cmd in start topics; do
  if out=$(bash "$WORK/bare/scripts/kafka.sh" "$cmd" "$WORK/unused" 2>&1); then
    fail "kafka.sh $cmd without the jars succeeded: $out"
  fi
  case "$out" in
    *"jars are missing"*"run scripts/setup.sh"*) ok "kafka.sh $cmd without the jars fails: $out" ;;
    *) fail "kafka.sh $cmd without the jars: unclear message: $out" ;;
  esac
done
ln -s "$(command -v dirname)" "$WORK/nojava/dirname"
if out=$(PATH="$WORK/nojava" "$BASH" "$KAFKA_SH" groups --list 2>&1); then
  fail "kafka.sh groups without java succeeded: $out"
fi
case "$out" in
  *"java not found"*"run scripts/setup.sh"*) ok "kafka.sh groups without java fails: $out" ;;
  *) fail "kafka.sh groups without java: unclear message: $out" ;;
esac

# ------------------------------------------------------------------ start
"$KAFKA_SH" start "$DIR" >"$WORK/start.out" 2>"$WORK/start.err" ||
  fail "kafka.sh start failed: $(cat "$WORK/start.err")"
cat "$WORK/start.err"
expect_eq "start prints one line on stdout" 1 "$(wc -l <"$WORK/start.out")"
ADDR=$(cat "$WORK/start.out")
[[ "$ADDR" =~ ^127\.0\.0\.1:[0-9]+$ ]] || fail "start printed [$ADDR], not 127.0.0.1:PORT"
ok "bootstrap address $ADDR"
grep -q "up in [0-9.]* s" "$WORK/start.err" || fail "start did not report its time on stderr"
ok "start time on stderr"
VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$ROOT/tools/kafka/pom.xml")
grep -q "Apache Kafka $VERSION broker" "$WORK/start.err" ||
  fail "start did not name the pinned release $VERSION: $(cat "$WORK/start.err")"
ok "start names the release: Apache Kafka $VERSION"
PID=$(cat "$DIR/kafka.pid")
kill -0 "$PID" 2>/dev/null || fail "no process $PID from $DIR/kafka.pid"
grep -q kafka.Kafka "/proc/$PID/cmdline" || fail "pid $PID is not the broker"
ok "broker pid $PID in $DIR/kafka.pid"
grep -q -- '-Xmx512m' "/proc/$PID/cmdline" || fail "the broker runs without -Xmx512m"
ok "broker heap capped at 512 MiB"
[ -d "$DIR/data" ] && [ -f "$DIR/data/meta.properties" ] || fail "no formatted storage in $DIR/data"
ok "KRaft storage formatted in $DIR/data"
if out=$("$KAFKA_SH" start "$DIR" 2>&1); then
  fail "a second start on a running directory succeeded: $out"
fi
ok "a second start on the same directory is refused"

# ----------------------------------------------------------------- topics
"$KAFKA_SH" topics --bootstrap-server "$ADDR" --create --topic events \
  --partitions 3 --replication-factor 1 >/dev/null || fail "topics --create events"
"$KAFKA_SH" topics --bootstrap-server "$ADDR" --create --topic compacted \
  --partitions 1 --replication-factor 1 --config cleanup.policy=compact \
  --config segment.ms=100 --config min.cleanable.dirty.ratio=0.01 \
  --config min.compaction.lag.ms=0 >/dev/null || fail "topics --create compacted"
expect_eq "topics --list" "compacted events" \
  "$("$KAFKA_SH" topics --bootstrap-server "$ADDR" --list | grep -v '^__' | sort | xargs)"
desc=$("$KAFKA_SH" topics --bootstrap-server "$ADDR" --describe --topic events)
grep -q "PartitionCount: 3" <<<"$desc" || fail "events has not 3 partitions: $desc"
ok "events has 3 partitions"
desc=$("$KAFKA_SH" topics --bootstrap-server "$ADDR" --describe --topic compacted)
grep -q "cleanup.policy=compact" <<<"$desc" || fail "compacted is not compacted: $desc"
ok "compacted has cleanup.policy=compact"

# ------------------------------------------------ produce, consume, commit
for p in 0 1 2; do
  printf 'a%s:1\nb%s:2\n' "$p" "$p" | kc -P -b "$ADDR" -t events -p "$p" -K: ||
    fail "kcat produce to events/$p"
done
expect_eq "6 messages in events" \
  "0 a0=1|0 b0=2|1 a1=1|1 b1=2|2 a2=1|2 b2=2" "$(dump_topic events | paste -sd'|')"

# Consumed in group g1 to the end; kcat commits the offsets when it closes.
got=$(kc -b "$ADDR" -G g1 -X auto.offset.reset=earliest -e -q -f '%p %k=%s\n' events 2>"$WORK/kcat.err" | sort | paste -sd'|') ||
  fail "kcat -G g1: $(cat "$WORK/kcat.err")"
expect_eq "group g1 consumed every message" \
  "0 a0=1|0 b0=2|1 a1=1|1 b1=2|2 a2=1|2 b2=2" "$got"
expect_eq "groups --describe after the commit (topic partition current end lag)" \
  "events 0 2 2 0|events 1 2 2 0|events 2 2 2 0" "$(describe_group g1 | paste -sd'|')"

printf 'c1:3\nd1:4\ne1:5\n' | kc -P -b "$ADDR" -t events -p 1 -K: || fail "kcat produce to events/1"
expect_eq "groups --describe shows the lag of 3 new messages" \
  "events 0 2 2 0|events 1 2 5 3|events 2 2 2 0" "$(describe_group g1 | paste -sd'|')"
expect_eq "groups --list" "g1" \
  "$("$KAFKA_SH" groups --bootstrap-server "$ADDR" --list 2>/dev/null | xargs)"

# ------------------------------------------------------------- compaction
# Three values of k1 and one of k2, then, past segment.ms, k3, which rolls
# the segment: the cleaner must leave k1=v3, k2=v1 and k3=v1.
printf 'k1:v1\nk2:v1\nk1:v2\nk1:v3\n' | kc -P -b "$ADDR" -t compacted -K: || fail "kcat produce to compacted"
sleep 1
printf 'k3:v1\n' | kc -P -b "$ADDR" -t compacted -K: || fail "kcat produce to compacted"
want="0 k1=v3|0 k2=v1|0 k3=v1"
for _ in $(seq 1 60); do
  got=$(dump_topic compacted | paste -sd'|')
  [ "$got" = "$want" ] && break
  sleep 1
done
expect_eq "the cleaner compacted 'compacted'" "$want" "$got"

# ------------------------------------------------------ kill -9, restart
"$KAFKA_SH" kill "$DIR" 2>/dev/null || fail "kafka.sh kill"
sleep 0.2
if kill -0 "$PID" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$PID/status" 2>/dev/null; then
  fail "pid $PID still running after kafka.sh kill"
fi
ok "kill: pid $PID is gone"
"$KAFKA_SH" restart "$DIR" >"$WORK/restart.out" 2>"$WORK/restart.err" ||
  fail "kafka.sh restart failed: $(cat "$WORK/restart.err")"
cat "$WORK/restart.err"
expect_eq "restart prints the same address" "$ADDR" "$(cat "$WORK/restart.out")"
PID2=$(cat "$DIR/kafka.pid")
[ "$PID2" != "$PID" ] && kill -0 "$PID2" 2>/dev/null || fail "no new broker process after restart"
ok "restarted as pid $PID2"

expect_eq "the 9 messages of events survived" \
  "0 a0=1|0 b0=2|1 a1=1|1 b1=2|1 c1=3|1 d1=4|1 e1=5|2 a2=1|2 b2=2" \
  "$(dump_topic events | paste -sd'|')"
expect_eq "the compacted topic survived" "$want" "$(dump_topic compacted | paste -sd'|')"
desc=$("$KAFKA_SH" topics --bootstrap-server "$ADDR" --describe --topic compacted)
grep -q "cleanup.policy=compact" <<<"$desc" || fail "compacted lost its cleanup.policy: $desc"
ok "compacted still has cleanup.policy=compact"
expect_eq "g1's committed offsets survived" \
  "events 0 2 2 0|events 1 2 5 3|events 2 2 2 0" "$(describe_group g1 | paste -sd'|')"

# g1 resumes from its committed offsets: only the three new messages.
got=$(kc -b "$ADDR" -G g1 -X auto.offset.reset=earliest -e -q -f '%p %k=%s\n' events 2>"$WORK/kcat.err" | sort | paste -sd'|') ||
  fail "kcat -G g1 after restart: $(cat "$WORK/kcat.err")"
expect_eq "g1 resumes where it committed" "1 c1=3|1 d1=4|1 e1=5" "$got"
expect_eq "no lag left" \
  "events 0 2 2 0|events 1 5 5 0|events 2 2 2 0" "$(describe_group g1 | paste -sd'|')"

# ------------------------------------------------------------------- stop
"$KAFKA_SH" stop "$DIR" 2>"$WORK/stop.err" || fail "kafka.sh stop: $(cat "$WORK/stop.err")"
cat "$WORK/stop.err"
[ ! -e "$DIR/kafka.pid" ] || fail "$DIR/kafka.pid left after stop"
if kill -0 "$PID2" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$PID2/status" 2>/dev/null; then
  fail "pid $PID2 still running after kafka.sh stop"
fi
ok "stop: pid $PID2 is gone and kafka.pid removed"
"$KAFKA_SH" stop "$DIR" 2>/dev/null || fail "a second stop failed"
ok "a second stop is harmless"

# ------------------------------------------ a broker that cannot start
# Each fails with a message saying why, and leaves no broker running.
expect_start_failure() { # WHAT NEEDLE COMMAND...
  local what="$1" needle="$2" out
  shift 2
  if out=$("$@" 2>&1); then
    fail "$what: the broker started: $out"
  fi
  grep -q -- "$needle" <<<"$out" || fail "$what: the message does not say \"$needle\": $out"
  [ ! -f "$DIR/kafka.pid" ] || ! kill -0 "$(cat "$DIR/kafka.pid")" 2>/dev/null ||
    fail "$what: a broker is left running"
  ok "$what fails clearly: $(grep -- "$needle" <<<"$out" | head -n 1)"
}

# Its port taken by another process.
python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); print("ok", flush=True); time.sleep(600)' \
  "${ADDR##*:}" >"$WORK/holder.out" 2>&1 &
HOLDER=$!
for _ in $(seq 100); do grep -q ok "$WORK/holder.out" && break; sleep 0.1; done
grep -q ok "$WORK/holder.out" || fail "could not hold port ${ADDR##*:}: $(cat "$WORK/holder.out")"
expect_start_failure "restart with port ${ADDR##*:} taken" "is taken" "$KAFKA_SH" restart "$DIR"
kill "$HOLDER"
wait "$HOLDER" 2>/dev/null || true

# A corrupt log dir: its meta.properties overwritten.
cp "$DIR/data/meta.properties" "$WORK/meta.properties"
printf 'garbage\n' >"$DIR/data/meta.properties"
expect_start_failure "restart on a corrupt log dir" "exited during start-up" "$KAFKA_SH" restart "$DIR"
cp "$WORK/meta.properties" "$DIR/data/meta.properties"

# No Java on the PATH.
expect_start_failure "start without java" "java not found" env PATH=/nonexistent /bin/bash "$KAFKA_SH" start "$WORK/nojava"

echo "kafka_sh: $checks checks passed"
