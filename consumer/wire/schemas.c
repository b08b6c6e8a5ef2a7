/*
 * schemas: see schemas.h. tests/test_wire.c checks that the files in the
 * source tree have the same fingerprints as these texts and as
 * WIRE_EVENT_FP / WIRE_OUTCOME_FP. Used by the interop tests; the codec in
 * wire.c does not read them, it implements them.
 */
#include "wire/schemas.h"

const char wire_event_schema[] =
    "{\"type\": \"record\", \"name\": \"WorkloadEvent\", \"namespace\": \"io.sbomd.v1\",\n"
    " \"fields\": [\n"
    "  {\"name\": \"event_id\", \"type\": \"string\"},\n"
    "  {\"name\": \"type\", \"type\": {\"type\": \"enum\", \"name\": \"EventType\", \"symbols\": [\"SET\", \"UNSET\"]}},\n"
    "  {\"name\": \"kind\", \"type\": {\"type\": \"enum\", \"name\": \"EntityKind\", \"symbols\": [\"CONTAINER_IMAGE\", \"HOST\"]}},\n"
    "  {\"name\": \"id\", \"type\": \"string\"},\n"
    "  {\"name\": \"source\", \"type\": \"string\"},\n"
    "  {\"name\": \"repo_tags\", \"type\": {\"type\": \"array\", \"items\": \"string\"}, \"default\": []},\n"
    "  {\"name\": \"repo_digests\", \"type\": {\"type\": \"array\", \"items\": \"string\"}, \"default\": []},\n"
    "  {\"name\": \"observed_at\", \"type\": {\"type\": \"long\", \"logicalType\": \"timestamp-millis\"}}\n"
    " ]}\n";

const char wire_outcome_schema[] =
    "{\"type\": \"record\", \"name\": \"ScanOutcome\", \"namespace\": \"io.sbomd.v1\",\n"
    " \"fields\": [\n"
    "  {\"name\": \"id\", \"type\": \"string\"},\n"
    "  {\"name\": \"kind\", \"type\": {\"type\": \"enum\", \"name\": \"EntityKind\", \"symbols\": [\"CONTAINER_IMAGE\", \"HOST\"]}},\n"
    "  {\"name\": \"status\", \"type\": {\"type\": \"enum\", \"name\": \"ScanStatus\", \"symbols\": [\"SUCCEEDED\", \"RETRY_SCHEDULED\", \"FAILED\", \"CANCELLED\"]}},\n"
    "  {\"name\": \"attempt\", \"type\": \"int\"},\n"
    "  {\"name\": \"next_attempt_at\", \"type\": [\"null\", {\"type\": \"long\", \"logicalType\": \"timestamp-millis\"}], \"default\": null},\n"
    "  {\"name\": \"error\", \"type\": [\"null\", \"string\"], \"default\": null},\n"
    "  {\"name\": \"error_class\", \"type\": [\"null\", {\"type\": \"enum\", \"name\": \"ErrorClass\", \"symbols\": [\"RETRYABLE\", \"PERMANENT\"]}], \"default\": null},\n"
    "  {\"name\": \"scanner\", \"type\": \"string\"},\n"
    "  {\"name\": \"started_at\", \"type\": [\"null\", {\"type\": \"long\", \"logicalType\": \"timestamp-millis\"}], \"default\": null},\n"
    "  {\"name\": \"duration_ms\", \"type\": [\"null\", \"long\"], \"default\": null},\n"
    "  {\"name\": \"repo_tags\", \"type\": {\"type\": \"array\", \"items\": \"string\"}, \"default\": []},\n"
    "  {\"name\": \"repo_digests\", \"type\": {\"type\": \"array\", \"items\": \"string\"}, \"default\": []},\n"
    "  {\"name\": \"sbom\", \"type\": [\"null\", {\"type\": \"record\", \"name\": \"Sbom\", \"fields\": [\n"
    "     {\"name\": \"format\", \"type\": \"string\"},\n"
    "     {\"name\": \"spec_version\", \"type\": \"string\"},\n"
    "     {\"name\": \"component_count\", \"type\": \"int\"},\n"
    "     {\"name\": \"content\", \"type\": \"bytes\"}]}], \"default\": null},\n"
    "  {\"name\": \"emitted_at\", \"type\": {\"type\": \"long\", \"logicalType\": \"timestamp-millis\"}},\n"
    "  {\"name\": \"generation\", \"type\": \"long\", \"default\": 0,\n"
    "   \"doc\": \"The entity's scan generation: 1 for a new entity, +1 each time the entity starts a new scan cycle (a rescan of DONE or FAILED, a SET after CANCELLED). Every outcome is identified by (id, generation, attempt, status) and consumers deduplicate by that. 0: written before generations existed.\"}\n"
    " ]}\n";
