#!/usr/bin/env bash
# Installs every Debian package sbomd needs to build, test and run.
# Idempotent: packages already present are left alone. Works as root or
# through sudo.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config clang
  liblmdb-dev lmdb-utils libcmocka-dev libssl-dev
  librdkafka-dev libavro-dev libconfig-dev libarchive-dev
  libjansson-dev libmicrohttpd-dev libzstd-dev zlib1g-dev
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

echo "setup: installing ${missing[*]}"
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
