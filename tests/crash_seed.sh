#!/usr/bin/env bash
# The crash test's seed reproduces its run: two runs of test_crash with
# the same SBOMD_CRASH_SEED print the same schedule digest (the events and
# the planned kill moments), and a run with another seed another one.
# Usage: tests/crash_seed.sh PATH/TO/test_crash
set -euo pipefail
bin="$1"
digest() {
  SBOMD_CRASH_ROUNDS=6 SBOMD_CRASH_SEED="$1" "$bin" 2>&1 |
    sed -n 's/.*schedule digest \([0-9a-f]*\).*/\1/p'
}
a=$(digest 0x5eed) b=$(digest 0x5eed) c=$(digest 0x5eee)
echo "seed 0x5eed: $a, again: $b; seed 0x5eee: $c"
[ -n "$a" ] || { echo "FAIL: no schedule digest printed"; exit 1; }
[ "$a" = "$b" ] || { echo "FAIL: one seed, two schedules"; exit 1; }
[ "$a" != "$c" ] || { echo "FAIL: two seeds, one schedule"; exit 1; }
echo ok
