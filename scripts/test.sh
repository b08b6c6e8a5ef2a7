#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds twice (optimised,
# and with AddressSanitizer + UndefinedBehaviorSanitizer), runs every test
# in both builds (ctest -j$(nproc); the tests labelled `once` - Trivy
# agreement, container files, the status page in a browser, the real
# Apache Kafka broker's - only in the first), and runs each libFuzzer
# target for a short fixed budget (FUZZ_TIME seconds, default 2). Exits non-zero if anything fails.
#
# The tests labelled `kafka` run the service suite again on a real Apache
# Kafka broker (scripts/kafka.sh, SBOMD_TEST_BROKER=kafka) in a phase of
# their own, so that its time shows. A broker that cannot start fails them.
#
# At the end it prints the time of each phase, the whole suite's time and
# the skipped tests with their reasons. Tests skip only when a tool is
# missing; in CI (CI=true) a missing tool fails the suite instead.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

jobs=$(nproc)
case "${CI:-}" in
  1 | true | True | TRUE) in_ci=1 ;;
  *) in_ci=0 ;;
esac

suite_t0=$SECONDS
times=()   # "phase<TAB>seconds<TAB>status"
skipped=() # "name (reason)"

duration() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

summary() {
  local rc=$? line
  echo
  echo "== summary"
  for line in "${times[@]}"; do
    IFS=$'\t' read -r name secs status <<<"$line"
    printf '%-44s %8s  %s\n' "$name" "$(duration "$secs")" "$status"
  done
  for line in "${skipped[@]}"; do
    echo "skipped: $line"
  done
  if [ "$rc" -eq 0 ] && [ "${#skipped[@]}" -gt 0 ] && [ "$in_ci" -eq 1 ]; then
    echo "FAILED: CI=true and ${#skipped[@]} test(s) skipped (every tool must be installed)"
    rc=1
  fi
  echo "suite time: $(duration $((SECONDS - suite_t0)))$([ "$rc" -eq 0 ] || echo " (FAILED, exit $rc)")"
  exit "$rc"
}
trap summary EXIT

# phase NAME COMMAND...: runs and times one step of the suite.
phase() {
  local name="$1" t0=$SECONDS rc=0
  shift
  echo "== $name"
  "$@" || rc=$?
  times+=("$name"$'\t'$((SECONDS - t0))$'\t'"$([ "$rc" -eq 0 ] && echo ok || echo "FAILED (exit $rc)")")
  return "$rc"
}

# The skipped tests of a ctest JUnit file, "name (reason)" a line, the
# reason being the test's SKIP lines.
junit_skips() {
  python3 - "$1" <<'EOF'
import re, sys, xml.etree.ElementTree as ET
for case in ET.parse(sys.argv[1]).getroot().iter("testcase"):
    if case.find("skipped") is None:
        continue
    out = case.findtext("system-out") or ""
    why = [l.strip() for l in out.splitlines() if re.match(r"\s*(SKIP\b|skipped:)", l)]
    print(f"{case.get('name')} ({'; '.join(why) or case.find('skipped').get('message')})")
EOF
}

# ctest_pass BUILD_DIR [CTEST ARGS...]: every test of the build, in
# parallel: PASS_JOBS at a time (default: the number of CPUs).
ctest_pass() {
  local dir="$1" rc=0 line
  shift
  rm -f "$dir/ctest-junit.xml"
  ctest --test-dir "$dir" --output-on-failure -j"${PASS_JOBS:-$jobs}" \
    --output-junit "$ROOT/$dir/ctest-junit.xml" "$@" || rc=$?
  if [ -f "$dir/ctest-junit.xml" ]; then
    while IFS= read -r line; do
      skipped+=("$line [$dir]")
    done < <(junit_skips "$dir/ctest-junit.xml")
  fi
  return "$rc"
}

# Whether clang can link a libFuzzer target (clang, and its runtime
# libraries: libclang-rt-*-dev on Debian).
fuzzer_available() {
  local d rc=0
  command -v clang >/dev/null 2>&1 || return 1
  d=$(mktemp -d)
  echo 'int LLVMFuzzerTestOneInput(const char *p, long n) { (void)p; (void)n; return 0; }' >"$d/f.c"
  clang -fsanitize=fuzzer,address,undefined "$d/f.c" -o "$d/f" >"$d/log" 2>&1 || rc=$?
  rm -rf "$d"
  return "$rc"
}

fuzz() {
  if ! fuzzer_available; then
    if [ "$in_ci" -eq 1 ]; then
      echo "FAILED: clang cannot link libFuzzer targets (clang and its runtime, libclang-rt-*-dev, are needed)"
      return 1
    fi
    skipped+=("fuzz targets (clang cannot link libFuzzer targets: clang or libclang-rt-*-dev missing)")
    echo "SKIP: clang cannot link libFuzzer targets"
    return 0
  fi
  FUZZ_BUILD="$ROOT/build-fuzz" ./scripts/fuzz.sh "${FUZZ_TIME:-2}"
}

build() {
  local dir="$1"
  shift
  cmake -S . -B "$dir" "$@" >/dev/null || return
  cmake --build "$dir" -j"$jobs"
}

asan_tests() {
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest_pass build-asan -LE once
}

phase "setup" bash scripts/setup.sh
phase "build (RelWithDebInfo)" build build -DCMAKE_BUILD_TYPE=RelWithDebInfo
# The service tests on dev-kafka mostly wait (retries, rebalances, kills:
# the phase keeps the CPUs about a quarter busy), so one more than the
# CPUs run at once; the sanitizer pass is busier and keeps to the CPUs.
PASS_JOBS=$((jobs + 1)) phase "tests (sbomd dev-kafka)" ctest_pass build -LE kafka
phase "tests on a real Apache Kafka broker (ctest -L kafka)" ctest_pass build -L kafka
phase "fuzz targets (libFuzzer, clang), ${FUZZ_TIME:-2}s each" fuzz
phase "build (address,undefined sanitizers)" build build-asan -DCMAKE_BUILD_TYPE=Debug \
  -DSANITIZE=address,undefined -DSBOMD_BUILD_BENCH=OFF
phase "tests under ASan+UBSan (ctest -LE once)" asan_tests
