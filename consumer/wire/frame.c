/*
 * frame: see frame.h. Headers are read byte by byte, so a message of any
 * length and alignment is safe; nothing is allocated.
 */
#include "wire/frame.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "util/errbuf.h"
#include "wire/schemas.h"

static const char *
schema_name(uint64_t fp)
{
	if (fp == WIRE_EVENT_FP)
		return "WorkloadEvent";
	if (fp == WIRE_OUTCOME_FP)
		return "ScanOutcome";
	return "the expected schema";
}

/* "1, 2, 3, ..." of the accepted ids, for messages. */
static void
id_list(const struct wire_config *cfg, char *buf, size_t buflen)
{
	size_t i, n = 0;

	buf[0] = '\0';
	for (i = 0; i < cfg->nschema_ids && n < buflen - 28; i++)
		n += (size_t)snprintf(buf + n, buflen - n, "%s%u",
		    i ? ", " : "", cfg->schema_ids[i]);
	if (i < cfg->nschema_ids)
		snprintf(buf + n, buflen - n, ", ...");
}

static int
parse_confluent(const uint8_t *p, size_t len, const struct wire_config *cfg,
    struct wire_frame *fr, char *err, size_t errlen)
{
	if (len < WIRE_CONFLUENT_HEADER) {
		errbuf_set(err, errlen, "truncated: confluent header needs %d "
		    "bytes, message has %zu", WIRE_CONFLUENT_HEADER, len);
		return -EPROTO;
	}
	uint32_t id = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 8 | (uint32_t)p[4];
	bool known = cfg->any_schema_id;
	for (size_t i = 0; !known && i < cfg->nschema_ids; i++)
		known = cfg->schema_ids[i] == id;
	if (!known) {
		char list[128];
		id_list(cfg, list, sizeof(list));
		errbuf_set(err, errlen, "unknown confluent schema id %u "
		    "(accepted: %s)", id,
		    cfg->nschema_ids ? list : "none configured");
		return -EPROTO;
	}
	fr->framing = WIRE_FRAMING_CONFLUENT;
	fr->schema_id = id;
	return 0;
}

static int
parse_single_object(const uint8_t *p, size_t len, const uint64_t *fps,
    size_t nfps, int *which, char *err, size_t errlen)
{
	if (len >= 2 && p[1] != 0x01) {
		errbuf_set(err, errlen, "unknown framing (first bytes 0xc3 "
		    "0x%02x, single-object needs 0xc3 0x01)", p[1]);
		return -EPROTO;
	}
	if (len < WIRE_SINGLE_OBJECT_HEADER) {
		errbuf_set(err, errlen, "truncated: single-object header needs "
		    "%d bytes, message has %zu", WIRE_SINGLE_OBJECT_HEADER,
		    len);
		return -EPROTO;
	}
	uint64_t got = 0;
	for (int i = 7; i >= 0; i--)
		got = got << 8 | p[2 + i];
	for (size_t i = 0; i < nfps; i++) {
		if (got == fps[i]) {
			*which = (int)i;
			return 0;
		}
	}
	errbuf_set(err, errlen, "single-object fingerprint 0x%016llx is not "
	    "%s's 0x%016llx", (unsigned long long)got, schema_name(fps[0]),
	    (unsigned long long)fps[0]);
	return -EPROTO;
}

int
wire_frame_parse(const void *msg, size_t len, const struct wire_config *cfg,
    const uint64_t *fps, size_t nfps, struct wire_frame *frame,
    size_t *payload_off, int *fp_index, char *err, size_t errlen)
{
	static const struct wire_config defcfg;
	const uint8_t *p = msg;
	struct wire_frame fr = { WIRE_FRAMING_SINGLE_OBJECT, 0 };
	int rc, which = -1;

	if (cfg == NULL)
		cfg = &defcfg;
	size_t max = cfg->max_payload ? cfg->max_payload :
	    WIRE_DEFAULT_MAX_PAYLOAD;
	if (len == 0) {
		errbuf_set(err, errlen, "empty message");
		return -EPROTO;
	}
	if (p[0] == 0x00)
		rc = parse_confluent(p, len, cfg, &fr, err, errlen);
	else if (p[0] == 0xc3)
		rc = parse_single_object(p, len, fps, nfps, &which, err,
		    errlen);
	else {
		errbuf_set(err, errlen, "unknown framing (first byte 0x%02x)",
		    p[0]);
		rc = -EPROTO;
	}
	if (rc != 0)
		return rc;
	size_t off = wire_frame_header_len(&fr);
	if (len - off > max) {
		errbuf_set(err, errlen, "payload of %zu bytes exceeds the "
		    "limit of %zu", len - off, max);
		return -EMSGSIZE;
	}
	if (frame != NULL)
		*frame = fr;
	if (fp_index != NULL)
		*fp_index = which;
	*payload_off = off;
	return 0;
}

int
wire_frame_check(const struct wire_frame *fr, char *err, size_t errlen)
{
	if (fr->framing != WIRE_FRAMING_SINGLE_OBJECT &&
	    fr->framing != WIRE_FRAMING_CONFLUENT) {
		errbuf_set(err, errlen, "unknown output framing %d",
		    (int)fr->framing);
		return -EINVAL;
	}
	return 0;
}

size_t
wire_frame_header_len(const struct wire_frame *fr)
{
	return fr->framing == WIRE_FRAMING_CONFLUENT ? WIRE_CONFLUENT_HEADER :
	    WIRE_SINGLE_OBJECT_HEADER;
}

uint8_t *
wire_frame_write(uint8_t *p, const struct wire_frame *fr, uint64_t fp)
{
	if (fr->framing == WIRE_FRAMING_CONFLUENT) {
		*p++ = 0x00;
		*p++ = (uint8_t)(fr->schema_id >> 24);
		*p++ = (uint8_t)(fr->schema_id >> 16);
		*p++ = (uint8_t)(fr->schema_id >> 8);
		*p++ = (uint8_t)fr->schema_id;
		return p;
	}
	*p++ = 0xc3;
	*p++ = 0x01;
	for (int i = 0; i < 8; i++)
		*p++ = (uint8_t)(fp >> (8 * i));
	return p;
}

int
wire_framing_parse(const char *s, enum wire_framing *out)
{
	if (s != NULL && strcmp(s, "single-object") == 0)
		*out = WIRE_FRAMING_SINGLE_OBJECT;
	else if (s != NULL && strcmp(s, "confluent") == 0)
		*out = WIRE_FRAMING_CONFLUENT;
	else
		return -EINVAL;
	return 0;
}
