/*
 * wirejson: JSON forms of the wire messages, for `sbomd emit` (JSON lines
 * in, events out), `sbomd tail` (outcomes in, JSON lines out) and tests.
 * Field names and enum symbols are the schemas' own; timestamps are
 * integers (ms since the epoch); a null union is JSON null.
 */
#ifndef SBOMD_WIRE_WIREJSON_H
#define SBOMD_WIRE_WIREJSON_H

#include <stddef.h>

#include <jansson.h>

#include "wire/wire.h"

/* Set in *present by wire_event_from_json for the optional members. */
#define WIRE_JSON_HAS_EVENT_ID 0x1u
#define WIRE_JSON_HAS_OBSERVED_AT 0x2u

/*
 * Fills *ev from a JSON object {"event_id":..., "type":"SET",
 * "kind":"CONTAINER_IMAGE", "id":..., "source":..., "repo_tags":[...],
 * "repo_digests":[...], "observed_at":<ms>}. event_id and observed_at may
 * be absent (their bits stay clear in *present and the fields are zeroed:
 * the caller fills them); repo_tags/repo_digests default to []. Unknown
 * members, wrong types, unknown symbols, more than WIRE_MAX_REFS refs
 * are -EINVAL with a message naming the member. The strings of *ev point
 * into obj: valid while obj is referenced and not modified.
 */
int wire_event_from_json(const json_t *obj, struct wire_event *ev,
    unsigned *present, char *err, size_t errlen);

/* A new JSON object for *ev (every member); NULL only when out of memory. */
json_t *wire_event_to_json(const struct wire_event *ev);

#define WIRE_JSON_OMIT_CONTENT 0x1u /* no sbom content member at all */

/*
 * A new JSON object for *o, every member of the schema. sbom.content is
 * the embedded JSON document when the bytes parse as JSON (an object or
 * an array), else "content_base64": "<base64>" takes its place; with
 * WIRE_JSON_OMIT_CONTENT neither is present ("content_length" always
 * is). NULL only when out of memory.
 */
json_t *wire_outcome_to_json(const struct wire_outcome *o, unsigned flags);

#endif
