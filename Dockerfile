# sbomd container image: a build stage and a slim runtime stage, both on
# Debian 12 (the platform scripts/setup.sh targets).
#
#   docker build -t sbomd:local .
#   docker run --rm sbomd:local --help
#   docker run -d -p 8080:8080 -v sbomd-state:/var/lib/sbomd \
#     -v /srv/images:/images:ro -e SBOMD_KAFKA_BROKERS=broker:9092 sbomd:local
#
# Configuration: /etc/sbomd/sbomd.cfg (deploy/sbomd.cfg; mount another file
# over it or pass `run -c FILE`), and every key from the environment as
# SBOMD_<GROUP>_<KEY>, upper case, lists comma-separated, e.g.
#   SBOMD_KAFKA_BROKERS=kafka:9092
#   SBOMD_KAFKA_DEAD_LETTER_TOPIC=sbomd-dead-letter
#   SBOMD_SCAN_STORES=/images,/var/lib/containerd
#   SBOMD_SCAN_WORKERS=4
#   SBOMD_LOG_LEVEL=debug
# An SBOMD_ variable that names no key is an error (exit 2 at start-up).
# If you move the HTTP port with SBOMD_HTTP_LISTEN, the HEALTHCHECK below
# still probes 8080: override it too (docker run --health-cmd ...).
#
# tests/compose_test.sh keeps this file, deploy/sbomd.cfg and
# docker-compose.yml consistent with the binary (keys, flags, packages).

# ---- build ------------------------------------------------------------------
FROM debian:12-slim AS build

# The -dev packages of scripts/setup.sh that building the sbomd binary needs
# (no test, fuzz or tool packages: cmocka, clang, rpm, kcat, nodejs...).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config \
      liblmdb-dev libssl-dev librdkafka-dev libavro-dev libconfig-dev \
      libarchive-dev libjansson-dev libmicrohttpd-dev libzstd-dev zlib1g-dev \
      libsqlite3-dev libisal-dev libcurl4-openssl-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY . .
# CMakeLists.txt has no install() rule: the binary is copied by hand.
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DSBOMD_BUILD_TESTS=OFF -DSBOMD_BUILD_BENCH=OFF -DSBOMD_BUILD_FUZZ=OFF \
 && cmake --build /build -j"$(nproc)" --target sbomd \
 && install -D -m 0755 /build/sbomd /out/usr/local/bin/sbomd

# ---- runtime ----------------------------------------------------------------
FROM debian:12-slim

LABEL org.opencontainers.image.title="sbomd" \
      org.opencontainers.image.description="Kafka consumer service that turns workload events into SBOM scans" \
      org.opencontainers.image.base.name="debian:12-slim"

# The shared libraries the binary links (ldd build/sbomd | dpkg -S) plus
# libavro23 and libmicrohttpd12 (the build's pkg-config dependencies),
# ca-certificates (TLS to brokers and registries) and curl (the HEALTHCHECK probe only).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      liblmdb0 libssl3 librdkafka1 libavro23 libconfig9 libarchive13 \
      libjansson4 libmicrohttpd12 libzstd1 zlib1g libsqlite3-0 libisal2 \
      libcurl4 ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*

# A fixed non-root uid/gid, so volumes and bind mounts can be chowned ahead.
RUN groupadd --system --gid 10001 sbomd \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/sbomd \
      --no-create-home --shell /usr/sbin/nologin sbomd \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/sbomd \
 && install -d -m 0755 /etc/sbomd

COPY --from=build /out/usr/local/bin/sbomd /usr/local/bin/sbomd
COPY deploy/sbomd.cfg /etc/sbomd/sbomd.cfg

# Fails the build when a library is missing or the default config is bad.
RUN ! ldd /usr/local/bin/sbomd | grep -q 'not found' \
 && sbomd run -c /etc/sbomd/sbomd.cfg --print-config >/dev/null

USER 10001:10001
WORKDIR /var/lib/sbomd
# The LMDB state (entries, outbox): keep it across container restarts.
VOLUME ["/var/lib/sbomd"]
# http.listen of deploy/sbomd.cfg: /metrics and /healthz.
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["curl", "-fsS", "-o", "/dev/null", "--max-time", "3", "http://127.0.0.1:8080/healthz"]
# sbomd drains its outbox on SIGTERM for up to engine.shutdown_timeout
# (10s): give `docker stop` more than that (docker stop -t 30).
STOPSIGNAL SIGTERM
ENTRYPOINT ["sbomd"]
CMD ["run", "-c", "/etc/sbomd/sbomd.cfg"]
