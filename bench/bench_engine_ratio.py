#!/usr/bin/env python3
"""The engine against its reference, side by side.

Runs bench_tracker (the tracker) and bench_reference (the same operations
on std::unordered_map + std::set, bench/bench_reference.cpp) alternately,
one run each per round, the order swapped every round, and prints per
operation the median of each, the ratio of the medians and the range of
the per-round ratios:

  python3 bench/bench_engine_ratio.py [--rounds 5] [--entries 1000000]
                                      [--build build] [--tracker BIN]

Operations (both print them in this format, each one run of N entries):
  set_new    SET of N new image ids (one source, one tag each)
  set_dedup  the same N events again, shuffled: deduplicated one by one
  pop_retry  pop a due entry and fail it (retryable): rescheduled
and bytes/entry, the RSS growth after set_new divided by N (smaller is
better: the ratio printed is reference / tracker).

The machine may be shared: only ratios measured in one invocation are
comparable; the load average is printed before and after.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

OPS = ["set_new", "set_dedup", "pop_retry"]
LINE = re.compile(r"^\s+(set_new|set_dedup|pop_retry|bytes/entry)\s+([0-9.]+)")


def run(binary, entries):
    out = subprocess.run([binary, str(entries), "1"], check=True,
                         capture_output=True, text=True).stdout
    figures = {}
    for line in out.splitlines():
        m = LINE.match(line)
        if m:
            figures[m.group(1)] = float(m.group(2))
    missing = [k for k in OPS + ["bytes/entry"] if k not in figures]
    if missing:
        sys.exit(f"{binary}: no figure for {', '.join(missing)}:\n{out}")
    return figures


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--entries", type=int, default=1000000)
    ap.add_argument("--build", default="build")
    ap.add_argument("--tracker", help="bench_tracker binary to use "
                    "(default: BUILD/bench/bench_tracker; e.g. an older "
                    "commit's)")
    a = ap.parse_args()
    ours_bin = a.tracker or os.path.join(a.build, "bench", "bench_tracker")
    ref_bin = os.path.join(a.build, "bench", "bench_reference")
    for b in (ours_bin, ref_bin):
        if not os.access(b, os.X_OK):
            sys.exit(f"{b} not found: build the project first")

    print(f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
    ours, ref = [], []
    for r in range(a.rounds):
        pair = [("tracker", ours_bin, ours), ("reference", ref_bin, ref)]
        if r % 2:
            pair.reverse()
        for name, binary, acc in pair:
            f = run(binary, a.entries)
            acc.append(f)
            print(f"round {r + 1} {name:9s} " + "  ".join(
                f"{k} {f[k]:.2f}" for k in OPS + ["bytes/entry"]),
                flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print()
    print(f"N={a.entries}, {a.rounds} alternating rounds (medians)")
    print(f"{'operation':12s} {'tracker':>12s} {'reference':>12s} "
          f"{'ratio':>7s}  per-round ratios")
    for k in OPS:
        mo = statistics.median(f[k] for f in ours)
        mr = statistics.median(f[k] for f in ref)
        rr = sorted(o[k] / x[k] for o, x in zip(ours, ref))
        print(f"{k:12s} {mo:8.2f} M/s {mr:8.2f} M/s {mo / mr:6.2f}x  "
              f"{rr[0]:.2f}-{rr[-1]:.2f}")
    mo = statistics.median(f["bytes/entry"] for f in ours)
    mr = statistics.median(f["bytes/entry"] for f in ref)
    print(f"{'bytes/entry':12s} {mo:10.1f} {mr:12.1f} {mr / mo:6.2f}x  "
          f"(reference / tracker)")


if __name__ == "__main__":
    main()
