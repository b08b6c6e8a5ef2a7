#!/usr/bin/env bash
# The whole test suite: installs what it needs, builds twice (optimised,
# and with AddressSanitizer + UndefinedBehaviorSanitizer), runs every test
# in both builds. Exits non-zero if anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

jobs=$(nproc)

echo "== build (RelWithDebInfo)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"
echo "== tests"
ctest --test-dir build --output-on-failure -j"$jobs"

echo "== build (address,undefined sanitizers)"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug \
  -DSANITIZE=address,undefined -DSBOMD_BUILD_BENCH=OFF >/dev/null
cmake --build build-asan -j"$jobs"
echo "== tests under ASan+UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs"
