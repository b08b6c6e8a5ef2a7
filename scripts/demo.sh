#!/usr/bin/env bash
# Installs what sbomd needs, builds it, and plays the scenario it exists for
# against the real service: a local Kafka-protocol broker (sbomd dev-kafka),
# `sbomd run` with a throw-away state directory and an OCI image store made
# here, events produced with `sbomd emit`, outcomes read with `sbomd tail`.
#
#   1. an image reported by three nodes (and again later) is scanned once;
#   2. an image not pulled yet is retried with growing delays, then pulled:
#      the next retry succeeds, and nothing more comes for it;
#   3. an image deleted from every node while it is being retried is
#      cancelled, and nothing more comes for it;
#   4. a host that cannot be scanned fails at once and is not retried.
#
# With --kafka the broker is a real Apache Kafka (one KRaft node, started by
# scripts/kafka.sh from the jars scripts/setup.sh fetched) instead.
#
# Doubles as a smoke test: exits non-zero when any expectation is not met.
# Everything it starts and writes goes away on exit (Ctrl-C included).
# Environment: DEMO_BUILD_DIR (default build), DEMO_KEEP=1 keeps the
# temporary directory (config, logs, outcomes) for a look afterwards,
# DEMO_SBOMD=PATH runs that binary and skips the set-up and the build (the
# test suite does).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${DEMO_BUILD_DIR:-build}
BROKER=dev-kafka
case "${1:-}" in
  "") ;;
  --kafka) BROKER=kafka ;;
  *) echo "usage: scripts/demo.sh [--kafka]" >&2; exit 2 ;;
esac

# The service reads SBOMD_* overrides from the environment: none of the
# caller's may leak into the demo.
for v in $(compgen -e); do
  if [[ $v == SBOMD_* ]]; then unset "$v"; fi
done

# ---- install and build ------------------------------------------------------
if [ -n "${DEMO_SBOMD:-}" ]; then
  SBOMD=$DEMO_SBOMD
else
bash scripts/setup.sh
command -v python3 >/dev/null ||  # the image builder and demo/helper.py
  { echo "demo: python3 is missing (scripts/setup.sh installs it)" >&2; exit 1; }
echo "== build ($BUILD, RelWithDebInfo)"
BUILD_LOG=$(mktemp)
if ! { cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
       cmake --build "$BUILD" -j"$(nproc)" --target sbomd; } >"$BUILD_LOG" 2>&1; then
  tail -n 40 "$BUILD_LOG"; rm -f "$BUILD_LOG"
  echo "demo: the build failed (above)" >&2
  exit 1
fi
rm -f "$BUILD_LOG"
SBOMD=$ROOT/$BUILD/sbomd
fi
# The interpreter itself, not a wrapper (a pyenv shim takes a second a call).
PY=$(python3 -c 'import sys; print(sys.executable)')
HELPER="$PY $ROOT/scripts/demo/helper.py"

# ---- processes, clean-up, helpers -------------------------------------------
TMP=$(mktemp -d "${TMPDIR:-/tmp}/sbomd-demo.XXXXXX")
export DEMO_TMP=$TMP
KAFKA_PID="" RUN_PID="" TAIL_PID=""
OUT=$TMP/outcomes.jsonl   # what `sbomd tail` reads, one JSON line each
RUN_LOG=$TMP/sbomd-run.log
T0=$SECONDS

stop() {  # stop PID: SIGTERM, up to 10 s, then SIGKILL
  local pid=$1 i
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
KAFKA_DIR=""
stop_broker() {  # dev-kafka or the Kafka broker, whichever runs
  stop "$KAFKA_PID"; KAFKA_PID=""
  if [ -n "$KAFKA_DIR" ]; then
    bash scripts/kafka.sh stop "$KAFKA_DIR" 2>/dev/null || true
    KAFKA_DIR=""
  fi
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop "$TAIL_PID"; stop "$RUN_PID"; stop_broker
  if [ "${DEMO_KEEP:-0}" = 1 ]; then
    echo "demo: kept $TMP"
  else
    rm -rf "$TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'echo; echo "demo: interrupted" >&2; exit 130' INT TERM

die() {
  [ ! -f "$OUT" ] || show_outcomes || true
  echo >&2
  echo "demo: FAILED: $*" >&2
  if [ -s "$RUN_LOG" ]; then
    echo "---- last lines of the sbomd run log ----" >&2
    tail -n 25 "$RUN_LOG" >&2
  fi
  exit 1
}

SHOWN=0
show_outcomes() {  # prints the outcomes that arrived since the last call
  local n
  n=$(wc -l <"$OUT")
  if [ "$n" -gt "$SHOWN" ]; then
    sed -n "$((SHOWN + 1)),${n}p" "$OUT" | $HELPER show
    SHOWN=$n
  fi
}
count() { $HELPER count "$OUT" "$@"; }  # count --id ID [--status S] [--attempt N]

now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo $((t / 1000)); }

wait_for() {  # wait_for SECONDS WHAT COUNT-ARGS...: until one such outcome
  local limit=$1 what=$2 deadline=$(($(now_ms) + $1 * 1000)) n
  shift 2
  while :; do
    n=$(count "$@") || n=0
    if [ "$n" -gt 0 ]; then show_outcomes; return 0; fi
    show_outcomes
    kill -0 "$RUN_PID" 2>/dev/null || die "sbomd run exited while waiting for $what"
    kill -0 "$TAIL_PID" 2>/dev/null || die "sbomd tail exited: $(cat "$TMP/tail.log")"
    [ "$(now_ms)" -lt "$deadline" ] || die "no $what within ${limit}s"
    sleep 0.2
  done
}

quiet() {  # quiet SECONDS ID NAME: shows outcomes for SECONDS, none may be ID's
  local before deadline=$(($(now_ms) + $1 * 1000))
  before=$(count --id "$2")
  while [ "$(now_ms)" -lt "$deadline" ]; do
    show_outcomes
    sleep 0.2
  done
  show_outcomes
  [ "$(count --id "$2")" -eq "$before" ] || die "more outcomes for $3 after it was settled"
  echo "  ... no outcome for $3 in $1 s"
}

expect() {  # expect ACTUAL EXPECTED WHAT
  [ "$1" = "$2" ] || die "$3: expected $2, got $1"
  echo "  ok: $3: $1"
}

emit() {  # emit JSON-LINE...: produces the events, waits for their delivery
  printf '%s\n' "$@" | "$SBOMD" emit -b "$BROKERS" --wait 15s \
    >>"$TMP/emit.log" 2>&1 || { cat "$TMP/emit.log" >&2; die "sbomd emit failed"; }
}
set_ev() {  # set_ev ID SOURCE TAG
  echo "{\"type\":\"SET\",\"kind\":\"CONTAINER_IMAGE\",\"id\":\"$1\",\"source\":\"$2\",\"repo_tags\":[\"$3\"]}"
}
unset_ev() {  # unset_ev ID SOURCE
  echo "{\"type\":\"UNSET\",\"kind\":\"CONTAINER_IMAGE\",\"id\":\"$1\",\"source\":\"$2\"}"
}
say() { echo; echo "$*"; }

# ---- the sample image store -------------------------------------------------
# Layers from scripts/demo/layer-*: a Debian 12 base (os-release, a dpkg
# status with 8 installed packages) and an nginx layer on top (11). Image A
# (base) is in the store; image B (base + nginx) is built in a staging
# layout and "pulled" into the store in act 2; image C is never pulled.
echo "== sample images in $TMP"
layer() {  # layer DIR TAR: a reproducible tarball of scripts/demo/DIR
  (cd "scripts/demo/$1" && tar --sort=name --owner=0 --group=0 --numeric-owner \
     --mtime=@0 --mode=a+rX,go-w -cf "$2" -- *)
}
layer layer-base "$TMP/base.tar"
layer layer-nginx "$TMP/nginx.tar"
IMAGE_A=$($PY tests/tools/mkimages.py --oci "$TMP/store" --tag shop/base:12 "$TMP/base.tar")
IMAGE_B=$($PY tests/tools/mkimages.py --oci "$TMP/pull-b" --tag shop/web:1.22 \
  "$TMP/base.tar" "$TMP/nginx.tar")
IMAGE_C=sha256:$(printf 'demo image C: never pulled' | sha256sum | cut -d' ' -f1)
export DEMO_LABELS="A=$IMAGE_A,B=$IMAGE_B,C=$IMAGE_C"
echo "  image A $IMAGE_A  in the store"
echo "  image B $IMAGE_B  not pulled yet"
echo "  image C $IMAGE_C  never pulled"
# A host root that is a regular file: a host scan of it fails (permanently).
echo "not a directory" >"$TMP/host-root"

# ---- the broker and the service ---------------------------------------------
# The background processes run in sessions of their own (setsid), so that a
# Ctrl-C reaches only this script, whose clean-up stops them in order.
TOPICS=(workload-events:4 scan-outcomes:4 sbomd-dead-letter:1)
if [ "$BROKER" = kafka ]; then
  echo "== Apache Kafka (scripts/kafka.sh start $TMP/kafka)"
  KAFKA_DIR=$TMP/kafka
  BROKERS=$(bash scripts/kafka.sh start "$KAFKA_DIR") ||
    die "the Kafka broker did not start (above)"
  for t in "${TOPICS[@]}"; do
    bash scripts/kafka.sh topics --bootstrap-server "$BROKERS" --create \
      --topic "${t%:*}" --partitions "${t#*:}" >/dev/null ||
      die "creating topic ${t%:*} failed"
  done
else
  echo "== sbomd dev-kafka"
  # The state changelog (state.changelog_topic): a real broker gets it
  # from sbomd through the admin API; the mock cluster cannot create
  # topics that way, so it is made here.
  topic_args=(--topic sbomd-state:4)
  for t in "${TOPICS[@]}"; do topic_args+=(--topic "$t"); done
  setsid "$SBOMD" dev-kafka "${topic_args[@]}" --bootstrap-file "$TMP/kafka.addr" \
    >"$TMP/kafka.log" 2>&1 &
  KAFKA_PID=$!
  for _ in $(seq 100); do
    [ -s "$TMP/kafka.addr" ] && break
    kill -0 "$KAFKA_PID" 2>/dev/null || { cat "$TMP/kafka.log" >&2; die "sbomd dev-kafka exited"; }
    sleep 0.1
  done
  [ -s "$TMP/kafka.addr" ] || { cat "$TMP/kafka.log" >&2; die "no bootstrap file from dev-kafka within 10s"; }
  BROKERS=$(cat "$TMP/kafka.addr")
fi
echo "  brokers $BROKERS"

CFG=$TMP/sbomd.cfg
cat >"$CFG" <<EOF
# Written by scripts/demo.sh: config/sbomd.cfg with short backoffs.
kafka = {
  brokers = "$BROKERS";
  group_id = "sbomd-demo";
  dead_letter_topic = "sbomd-dead-letter";
  consumer_properties = [ "fetch.wait.max.ms=50" ];  # snappier on an idle topic
};
state = { dir = "$TMP/state"; max_map_size = "64MiB"; };
retry = { base_backoff = "2s"; max_backoff = "8s"; multiplier = 2.0; jitter = 0.1; };
scan = {
  workers = 2;
  timeout = "30s";
  stores = [ "$TMP/store" ];
  host_root = "$TMP/host-root";
};
http = { listen = ""; };
log = { level = "info"; format = "text"; };
EOF

echo "== sbomd run -c $CFG  (log: \$TMP/sbomd-run.log)"
setsid "$SBOMD" run -c "$CFG" >"$RUN_LOG" 2>&1 &
RUN_PID=$!
: >"$OUT"
setsid "$SBOMD" tail -b "$BROKERS" --no-sbom -X fetch.wait.max.ms=50 >"$OUT" 2>"$TMP/tail.log" &
TAIL_PID=$!
deadline=$((SECONDS + 30))
until grep -q "partitions assigned" "$RUN_LOG"; do
  kill -0 "$RUN_PID" 2>/dev/null || die "sbomd run exited during start-up"
  [ "$SECONDS" -lt "$deadline" ] || die "sbomd run did not join its consumer group within 30s"
  sleep 0.2
done
echo "  joined the consumer group after $((SECONDS - T0)) s; outcomes as they arrive:"
echo "  (time, entity, status, attempt, next attempt, error)"

# ---- act 1: one image on three nodes is scanned once --------------------------
say "-- 1. image A is reported by node-1, node-2 and node-3"
emit "$(set_ev "$IMAGE_A" node-1 shop/base:12)" \
     "$(set_ev "$IMAGE_A" node-2 shop/base:12)" \
     "$(set_ev "$IMAGE_A" node-3 shop/base:12)"
wait_for 15 "SUCCEEDED outcome for image A" --id "$IMAGE_A" --status SUCCEEDED
echo "   node-1 reports image A again (an agent restart): already scanned"
emit "$(set_ev "$IMAGE_A" node-1 shop/base:12)"
quiet 2 "$IMAGE_A" "image A"
expect "$(count --id "$IMAGE_A" --status SUCCEEDED)" 1 "image A scans (4 reports)"
expect "$(count --id "$IMAGE_A")" 1 "image A outcomes"
expect "$($HELPER components "$OUT" --id "$IMAGE_A")" 8 "image A SBOM components"

# ---- act 2: an image not pulled yet is retried, then pulled -------------------
say "-- 2. image B is reported by node-1 before the node has pulled it"
emit "$(set_ev "$IMAGE_B" node-1 shop/web:1.22)"
wait_for 20 "3rd RETRY_SCHEDULED for image B" --id "$IMAGE_B" --status RETRY_SCHEDULED --attempt 3
echo "   node-1 finishes pulling image B (blobs, then index.json, into the store)"
$HELPER pull "$TMP/pull-b" "$TMP/store"
wait_for 20 "SUCCEEDED outcome for image B" --id "$IMAGE_B" --status SUCCEEDED
quiet 5 "$IMAGE_B" "image B"
read -r -a delays <<<"$($HELPER delays "$OUT" --id "$IMAGE_B")"
expect "${#delays[@]}" 3 "image B retries before the pull"
"$PY" -c 'import sys; d=[float(x) for x in sys.argv[1:]]; sys.exit(any(b <= a for a, b in zip(d, d[1:])))' \
  "${delays[@]}" || die "image B's retry delays do not grow: ${delays[*]}"
echo "  ok: image B retry delays grow: ${delays[*]} s"
expect "$(count --id "$IMAGE_B" --status SUCCEEDED --attempt 4)" 1 "image B scans succeeded (at attempt 4)"
expect "$($HELPER components "$OUT" --id "$IMAGE_B")" 11 "image B SBOM components"

# ---- act 3: an image removed from every node while retried is cancelled -------
say "-- 3. image C is reported by node-1 and node-2, and never pulled"
emit "$(set_ev "$IMAGE_C" node-1 shop/cron:2)" "$(set_ev "$IMAGE_C" node-2 shop/cron:2)"
wait_for 15 "2nd RETRY_SCHEDULED for image C" --id "$IMAGE_C" --status RETRY_SCHEDULED --attempt 2
echo "   node-1 deletes image C (node-2 still has it: the retries go on)"
emit "$(unset_ev "$IMAGE_C" node-1)"
sleep 1; show_outcomes
expect "$(count --id "$IMAGE_C" --status CANCELLED)" 0 "image C cancellations while node-2 has it"
echo "   node-2 deletes image C"
emit "$(unset_ev "$IMAGE_C" node-2)"
wait_for 15 "CANCELLED outcome for image C" --id "$IMAGE_C" --status CANCELLED
quiet 6 "$IMAGE_C" "image C"
expect "$(count --id "$IMAGE_C" --status CANCELLED)" 1 "image C cancellations"

# ---- act 4: a host scan that fails is not retried ----------------------------
say "-- 4. host node-1 is to be scanned, but its root is not a directory"
emit '{"type":"SET","kind":"HOST","id":"node-1","source":"node-1"}'
wait_for 15 "FAILED outcome for host node-1" --id node-1 --status FAILED
quiet 3 node-1 "host node-1"
expect "$(count --id node-1)" 1 "host node-1 outcomes (FAILED, no retry)"

# ---- summary, durable state, shutdown ----------------------------------------
say "== summary"
$HELPER summary "$OUT"
say "== sbomd state list --all"
"$SBOMD" state list --all -c "$CFG" | sed -e "s|$TMP|\$TMP|g" -e 's/^/  /'
say "== stopping sbomd run (SIGTERM)"
kill -TERM "$RUN_PID"
rc=0
wait "$RUN_PID" || rc=$?
RUN_PID=""
grep -E '"outbox drained"|stopped' "$RUN_LOG" | sed 's/^/  /'
expect "$rc" 0 "sbomd run exit status"
stop "$TAIL_PID"; TAIL_PID=""
stop_broker
say "demo: all expectations met in $((SECONDS - T0)) s"
