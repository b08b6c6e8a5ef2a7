#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds twice (optimised,
# and with AddressSanitizer + UndefinedBehaviorSanitizer), runs every test
# in both builds, and runs each libFuzzer target for a short fixed budget
# (FUZZ_TIME seconds, default 10). Exits non-zero if anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

jobs=$(nproc)

echo "== build (RelWithDebInfo)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"
echo "== tests"
ctest --test-dir build --output-on-failure -j"$jobs"

echo "== fuzz targets (libFuzzer, clang), a short fixed budget each"
FUZZ_BUILD="$PWD/build-fuzz" ./scripts/fuzz.sh "${FUZZ_TIME:-10}"

echo "== build (address,undefined sanitizers)"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug \
  -DSANITIZE=address,undefined -DSBOMD_BUILD_BENCH=OFF >/dev/null
cmake --build build-asan -j"$jobs"
echo "== tests under ASan+UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs"
