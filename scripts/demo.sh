#!/usr/bin/env bash
# Installs what sbomd needs, builds it, and plays the scenario it exists
# for through the scheduling engine and durable state (see README).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target sbomd >/dev/null
exec ./build/sbomd demo "$@"
