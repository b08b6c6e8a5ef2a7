#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/) with clang in their own build
# directory and runs them. Three modes:
#
#   scripts/fuzz.sh [seconds-per-target]
#       (check; what scripts/test.sh runs) each target for a fixed budget
#       on a temporary copy of its seed corpus (tests/fuzz_corpus/<target>/,
#       so runs do not grow the repository).
#   scripts/fuzz.sh grow [seconds-per-target]
#       each target for the budget with tests/fuzz_corpus/<target>/ itself
#       as its corpus: new inputs that reach new coverage are added there.
#   scripts/fuzz.sh minimize
#       each corpus merged (-merge=1) into a fresh directory that keeps
#       only inputs adding coverage, which then replaces the corpus.
#       Run it after grow, before committing the corpus.
#
# Exits non-zero when a target crashes, leaks, hits UB or runs out of
# time/memory; the reproducer is kept in the artifact dir printed at the
# end. Every corpus is also replayed once by ctest in every build
# (fuzz_corpus_<target>, fuzz/replay.c).
#
#   env: FUZZ_TIME (default 20), FUZZ_BUILD (default build-fuzz),
#        FUZZ_TARGETS, FUZZ_JOBS
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODE=check
case "${1:-}" in
  grow | minimize) MODE="$1"; shift ;;
esac
TIME="${1:-${FUZZ_TIME:-20}}"
BUILD="${FUZZ_BUILD:-$ROOT/build-fuzz}"
TARGETS="${FUZZ_TARGETS:-dpkg apk rpmheader layers wire imagestore config}"
JOBS="${FUZZ_JOBS:-2}"

if ! command -v clang >/dev/null 2>&1; then
  echo "fuzz: SKIP: clang not installed (scripts/setup.sh installs it)"
  exit 0
fi

CC=clang cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSBOMD_BUILD_FUZZ=ON -DSBOMD_BUILD_BENCH=OFF -DSBOMD_BUILD_TESTS=OFF \
  >/dev/null
targets=()
for t in $TARGETS; do targets+=("fuzz_$t"); done
cmake --build "$BUILD" -j"$JOBS" --target "${targets[@]}" >/dev/null

WORK="$(mktemp -d "${TMPDIR:-/tmp}/sbomd-fuzz.XXXXXX")"
ARTIFACTS="$WORK/artifacts"
mkdir -p "$ARTIFACTS"
cleanup() {
  # keep the work dir only when it holds a reproducer
  if [ -z "$(ls -A "$ARTIFACTS")" ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
# libconfig's own leak on some parse errors (see the file)
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$ROOT/fuzz/lsan.supp:print_suppressions=0}"

if [ "$MODE" = minimize ]; then
  for t in $TARGETS; do
    seeds="$ROOT/tests/fuzz_corpus/$t"
    fresh="$WORK/min-$t"
    mkdir -p "$fresh" "$seeds"
    before=$(find "$seeds" -type f | wc -l)
    if ! "$BUILD/fuzz/fuzz_$t" -merge=1 -rss_limit_mb=2048 -timeout=10 \
        -max_len=1048576 -artifact_prefix="$ARTIFACTS/$t-" "$fresh" "$seeds" \
        >"$WORK/$t.log" 2>&1; then
      echo "fuzz: $t: merge FAILED, log follows"
      tail -n 60 "$WORK/$t.log"
      exit 1
    fi
    rm -rf "$seeds"
    mkdir -p "$seeds"
    cp -r "$fresh/." "$seeds/"
    echo "fuzz: $t: corpus minimised, $before -> $(find "$seeds" -type f | wc -l) inputs"
  done
  exit 0
fi

failed=()
for t in $TARGETS; do
  if [ "$MODE" = grow ]; then
    corpus="$ROOT/tests/fuzz_corpus/$t"
    mkdir -p "$corpus"
  else
    corpus="$WORK/corpus-$t"
    mkdir -p "$corpus"
    if [ -d "$ROOT/tests/fuzz_corpus/$t" ]; then
      cp -r "$ROOT/tests/fuzz_corpus/$t/." "$corpus/"
    fi
  fi
  log="$WORK/$t.log"
  echo "fuzz: $t for ${TIME}s"
  if "$BUILD/fuzz/fuzz_$t" -max_total_time="$TIME" -rss_limit_mb=2048 \
      -timeout=10 -max_len=1048576 -print_final_stats=1 \
      -artifact_prefix="$ARTIFACTS/$t-" "$corpus" >"$log" 2>&1; then
    grep -E '^#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb' \
      "$log" | sed "s/^/fuzz: $t: /"
  else
    echo "fuzz: $t: FAILED, log follows"
    tail -n 60 "$log"
    failed+=("$t")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]}; reproducers in $ARTIFACTS:"
  ls -l "$ARTIFACTS"
  exit 1
fi
echo "fuzz: all targets ran ${TIME}s without a finding"
if [ "$MODE" = grow ]; then
  echo "fuzz: corpora grown in tests/fuzz_corpus; run scripts/fuzz.sh minimize before committing them"
fi
