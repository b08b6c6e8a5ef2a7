#!/bin/sh
# The demo-producer service of docker-compose.yml: replays
# deploy/demo-events.jsonl into the input topic with `sbomd emit`, in two
# steps so every act of the scenario shows in the outcomes:
#   1. the SET events: image A on node-1, node-2 and node-3 (in the
#      /images store: one scan, one SUCCEEDED), image C on node-1 and
#      node-2 (not in any store: RETRY_SCHEDULED), host node-1 (HOST scans
#      are never retried: no host root is mounted, so FAILED);
#   2. after DEMO_UNSET_AFTER seconds (default 20), the UNSET events: node-3
#      drops image A (nothing to publish), node-1 and node-2 drop image C
#      (no reference left: its retries stop, CANCELLED).
# Runs in the sbomd image (POSIX sh, no bash). Brokers and topic come
# from SBOMD_KAFKA_BROKERS and SBOMD_KAFKA_INPUT_TOPIC.
set -eu
EVENTS=${DEMO_EVENTS:-/deploy/demo-events.jsonl}
PAUSE=${DEMO_UNSET_AFTER:-20}
BROKERS=${SBOMD_KAFKA_BROKERS:-kafka:9092}
TOPIC=${SBOMD_KAFKA_INPUT_TOPIC:-workload-events}

echo "demo-producer: SET events of $EVENTS -> $TOPIC on $BROKERS"
grep -v '"type":"UNSET"' "$EVENTS" | sbomd emit -b "$BROKERS" -t "$TOPIC" --wait 60s
echo "demo-producer: UNSET events in ${PAUSE}s"
sleep "$PAUSE"
grep '"type":"UNSET"' "$EVENTS" | sbomd emit -b "$BROKERS" -t "$TOPIC" --wait 60s
echo "demo-producer: done; outcomes: docker-compose exec sbomd sbomd tail --no-sbom --idle 5s"
