#!/usr/bin/env bash
# No global symbol of libsbomd may also be defined by a shared library
# that sbomd links: the static definition would silently replace the
# library's own (libconfig's internal strbuf_append was one such clash).
# Usage: tests/symbols_test.sh LIBSBOMD.a SBOMD
set -euo pipefail
lib=$1 bin=$2
ours=$(nm -g --defined-only "$lib" 2>/dev/null | awk 'NF==3 {print $3}' | sort -u)
[ -n "$ours" ] || { echo "no symbols read from $lib"; exit 1; }
theirs=$(ldd "$bin" | awk '$3 ~ /^\// {print $3}' | while read -r so; do
  nm -D --defined-only "$so" 2>/dev/null | awk '{print $NF}'
done | sort -u)
clash=$(comm -12 <(echo "$ours") <(echo "$theirs") || true)
if [ -n "$clash" ]; then
  echo "symbols defined both by libsbomd and by a linked library:"
  echo "$clash"
  exit 1
fi
echo "symbols: $(echo "$ours" | wc -l) globals, no clash with $(ldd "$bin" | grep -c '=> /') libraries"
