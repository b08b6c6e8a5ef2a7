/*
 * outbox: see outbox.h.
 *
 * The queue holds the committed records in sequence order as v[head..n);
 * delivered ones are marked and dropped from the front (so a delivery
 * report finds its record by binary search on the sequence). Staged
 * records wait in `staged` until the commit gives them sequences;
 * delivered sequences wait in `dels` until the commit deletes them from
 * the store. Expected size: a few thousand outcomes in steady state, up
 * to engine.max_outbox while Kafka is unreachable (input pauses there);
 * with a changelog, up to engine.max_changelog_bytes of changelog
 * records besides (a poll batch makes up to engine.batch_max of them).
 *
 * Refused for good: a record that Kafka will refuse however often it is
 * sent (permanent_error: too large for the producer's message.max.bytes
 * or the topic's max.message.bytes, or an invalid record) never holds up
 * the others and is not retried as it is: an outcome is replaced, in
 * place, by the same outcome without its SBOM and with the reason in its
 * error field; a dead letter by the same dead letter without the refused
 * message's bytes. When even that is refused (or there was nothing to
 * take out) the record is dropped. Each is counted and logged. The
 * replacement is not written back to the store: after a restart the
 * stored record meets the same refusal and is replaced again.
 * Authorisation errors and unknown topics are not permanent here (an
 * operator can fix them; nothing in the record would help), nor is any
 * error of a changelog record (the changelog must hold every change).
 *
 * Exactly-once: a record refused in a delivery report aborts the
 * transaction, and the rewind makes the outcome again. `hints` remembers
 * the keys (and sizes) of outcomes refused for good, so their remade
 * copies go without the SBOM from the start.
 */
#include "service/outbox.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/log.h"
#include "util/xmalloc.h"
#include "wire/wire.h"

#define U16_MAX 65535u
#define NHINTS 64 /* refused outcomes remembered (exactly-once) */

struct ob_item {
	uint64_t seq;
	uint8_t *rec;  /* owned; NULL once delivered */
	size_t len;
	int32_t cpart; /* changelog records: their partition; else -1 */
	bool in_kafka; /* delivered (or dropped); deleted from the store
			* with the next commit */
	bool produced; /* handed to librdkafka, report pending */
	bool stored;   /* in the store (deleted from it once delivered);
			* exactly-once records never are */
};

struct ckpt {
	int32_t partition;
	int64_t next;
};

/* An outcome or dead letter refused for good: its key's hash and size. */
struct hint {
	uint64_t key;
	size_t len; /* 0: unused */
};

struct staged {
	uint8_t *rec;
	size_t len;
	bool is_ref; /* the store keeps ref, not rec */
	uint8_t ref[STORE_ENTRY_REF_LEN];
};

struct outbox {
	struct outbox_topics topics;
	struct snapshot *counters;
	rd_kafka_t *cprod; /* changelog records' producer; NULL: the one
			    * outbox_produce is given */
	bool transactional; /* exactly-once: records go to Kafka only
			     * inside a transaction, never to the store */
	bool txn_open;

	struct ob_item *v;
	size_t head, n, cap; /* queued records are v[head..n), by seq */
	size_t live;	     /* queued and not yet delivered */
	size_t live_changelog; /* of those, changelog records */
	size_t live_changelog_bytes; /* and their bytes */

	struct staged *staged;
	size_t nstaged, staged_cap;
	size_t staged_changelog, staged_changelog_bytes; /* of staged */
	uint64_t *dels;	     /* delivered, to delete with the next commit */
	size_t ndels, dels_cap;

	uint64_t last_seq;   /* the newest committed record's */
	uint8_t *cl_failed;  /* by changelog partition: its topic or
			      * partition was gone at the last try */
	size_t cl_failed_cap, ncl_failed;
	struct ckpt *ckpts;  /* acknowledged since outbox_checkpoints */
	size_t nckpts, ckpts_cap;
	struct hint hints[NHINTS]; /* a ring; next is the next slot */
	size_t next_hint;
	bool resend;	     /* a record was reduced after its delivery
			      * report, or held ones may go: produce
			      * without waiting for a commit */
	/* outbox_batch's view, valid until outbox_committed: the staged
	 * records and deletions it holds are the first nbatch_staged and
	 * nbatch_dels (later ones wait for the next batch: the commit may
	 * run in the background), its deletions a copy */
	struct store_blob *blobs;
	uint64_t *seqs;
	size_t batch_cap;
	uint64_t *batch_dels;
	size_t batch_dels_cap;
	size_t nbatch_staged, nbatch_dels;
};

/* ---- records ---------------------------------------------------------- */

static uint8_t *
put_be(uint8_t *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--)
		*p++ = (uint8_t)(v >> (8 * i));
	return p;
}

static uint64_t
get_be(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static uint8_t *
put_str(uint8_t *p, const void *s, size_t n)
{
	p = put_be(p, n, 2);
	if (n > 0)
		memcpy(p, s, n);
	return p + n;
}

static size_t
cut16(size_t n)
{
	return n > U16_MAX ? U16_MAX : n;
}

uint8_t *
outbox_record(const struct outbox_msg *m, size_t *len)
{
	size_t klen = cut16(m->klen);
	size_t n = 1 + 2 + klen + m->vlen;
	if (m->kind == OUTBOX_CHANGELOG)
		n += 4;
	size_t elen = 0, tlen = 0;
	if (m->kind == OUTBOX_DEAD_LETTER) {
		elen = cut16(m->elen);
		tlen = cut16(m->tlen);
		n += 2 + elen + 2 + tlen + 4 + 8;
	}
	uint8_t *rec = xmalloc(n), *p = rec;
	*p++ = (uint8_t)m->kind;
	if (m->kind == OUTBOX_CHANGELOG)
		p = put_be(p, (uint32_t)m->partition, 4);
	p = put_str(p, m->key, klen);
	if (m->kind == OUTBOX_DEAD_LETTER) {
		p = put_str(p, m->error, elen);
		p = put_str(p, m->topic, tlen);
		p = put_be(p, (uint32_t)m->partition, 4);
		p = put_be(p, (uint64_t)m->offset, 8);
	}
	if (m->vlen > 0)
		memcpy(p, m->value, m->vlen);
	*len = n;
	return rec;
}

/* Reads a u16-length string at *p within end. */
static int
get_str(const uint8_t **p, const uint8_t *end, const uint8_t **s, size_t *n)
{
	if (end - *p < 2)
		return -EINVAL;
	*n = (size_t)get_be(*p, 2);
	if ((size_t)(end - *p - 2) < *n)
		return -EINVAL;
	*s = *p + 2;
	*p += 2 + *n;
	return 0;
}

int
outbox_record_parse(const uint8_t *rec, size_t len, struct outbox_msg *m)
{
	const uint8_t *p = rec, *end = rec + len, *s;
	memset(m, 0, sizeof(*m));
	if (len < 1 || (rec[0] != OUTBOX_OUTCOME &&
			   rec[0] != OUTBOX_DEAD_LETTER &&
			   rec[0] != OUTBOX_CHANGELOG))
		return -EINVAL;
	m->kind = (enum outbox_kind)*p++;
	if (m->kind == OUTBOX_CHANGELOG) {
		if (end - p < 4)
			return -EINVAL;
		m->partition = (int32_t)(uint32_t)get_be(p, 4);
		if (m->partition < 0)
			return -EINVAL;
		p += 4;
	}
	if (get_str(&p, end, &m->key, &m->klen) != 0)
		return -EINVAL;
	if (m->kind == OUTBOX_DEAD_LETTER) {
		if (get_str(&p, end, &s, &m->elen) != 0)
			return -EINVAL;
		m->error = (const char *)s;
		if (get_str(&p, end, &s, &m->tlen) != 0)
			return -EINVAL;
		m->topic = (const char *)s;
		if (end - p < 12)
			return -EINVAL;
		m->partition = (int32_t)(uint32_t)get_be(p, 4);
		m->offset = (int64_t)get_be(p + 4, 8);
		p += 12;
	}
	m->value = p;
	m->vlen = (size_t)(end - p);
	return 0;
}

/* ---- the queue -------------------------------------------------------- */

outbox *
outbox_new(const struct outbox_topics *topics, struct snapshot *counters)
{
	outbox *ob = xcalloc(1, sizeof(*ob));
	ob->topics = *topics;
	ob->counters = counters;
	return ob;
}

void
outbox_free(outbox *ob)
{
	if (ob == NULL)
		return;
	for (size_t i = ob->head; i < ob->n; i++)
		free(ob->v[i].rec);
	for (size_t i = 0; i < ob->nstaged; i++)
		free(ob->staged[i].rec);
	free(ob->v);
	free(ob->staged);
	free(ob->dels);
	free(ob->blobs);
	free(ob->seqs);
	free(ob->batch_dels);
	free(ob->ckpts);
	free(ob->cl_failed);
	free(ob);
}

static void
push(outbox *ob, uint64_t seq, uint8_t *rec, size_t len, bool stored)
{
	if (ob->n == ob->cap) {
		if (ob->head > 0) {
			memmove(ob->v, ob->v + ob->head,
			    (ob->n - ob->head) * sizeof(*ob->v));
			ob->n -= ob->head;
			ob->head = 0;
		}
		if (ob->n == ob->cap) {
			ob->cap = ob->cap ? ob->cap * 2 : 1024;
			ob->v = xreallocarray(ob->v, ob->cap, sizeof(*ob->v));
		}
	}
	struct outbox_msg m;
	int32_t cpart = -1;
	if (len > 0 && rec[0] == OUTBOX_CHANGELOG &&
	    outbox_record_parse(rec, len, &m) == 0)
		cpart = m.partition;
	ob->v[ob->n++] = (struct ob_item){ seq, rec, len, cpart, false,
		false, stored };
	ob->live++;
	if (cpart >= 0) {
		ob->live_changelog++;
		ob->live_changelog_bytes += len;
	}
	if (seq > ob->last_seq)
		ob->last_seq = seq;
}

static struct ob_item *
find(outbox *ob, uint64_t seq)
{
	size_t lo = ob->head, hi = ob->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ob->v[mid].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < ob->n && ob->v[lo].seq == seq ? &ob->v[lo] : NULL;
}

static void
trim(outbox *ob)
{
	while (ob->head < ob->n && ob->v[ob->head].in_kafka)
		ob->head++;
	if (ob->head == ob->n)
		ob->head = ob->n = 0;
}

void
outbox_load(outbox *ob, uint64_t seq, const void *rec, size_t len)
{
	struct outbox_msg m;
	if (outbox_record_parse(rec, len, &m) != 0) {
		char s[24];
		snprintf(s, sizeof(s), "%" PRIu64, seq);
		log_kv(LOG_WARN, "outbox record not understood, left in the "
		    "store", "seq", s, (char *)NULL);
		return;
	}
	uint8_t *copy = xmalloc(len ? len : 1);
	memcpy(copy, rec, len);
	push(ob, seq, copy, len, true);
}

void
outbox_stage(outbox *ob, uint8_t *rec, size_t len)
{
	if (ob->nstaged == ob->staged_cap) {
		ob->staged_cap = ob->staged_cap ? ob->staged_cap * 2 : 64;
		ob->staged = xreallocarray(ob->staged, ob->staged_cap,
		    sizeof(*ob->staged));
	}
	struct staged *st = &ob->staged[ob->nstaged++];
	st->rec = rec;
	st->len = len;
	st->is_ref = false;
	if (len > 0 && rec[0] == OUTBOX_CHANGELOG) {
		ob->staged_changelog++;
		ob->staged_changelog_bytes += len;
	}
}

void
outbox_stage_entry(outbox *ob, uint8_t *rec, size_t len, int32_t partition,
    const struct tracker_key *key)
{
	outbox_stage(ob, rec, len);
	struct staged *st = &ob->staged[ob->nstaged - 1];
	st->is_ref = true;
	store_entry_ref(partition, key, st->ref);
}

/* The staged records were queued or dropped. */
static void
staged_clear(outbox *ob)
{
	ob->nstaged = 0;
	ob->staged_changelog = ob->staged_changelog_bytes = 0;
}

void
outbox_unstage(outbox *ob, size_t n)
{
	ob->nbatch_staged = ob->nbatch_dels = 0;
	while (n-- > 0 && ob->nstaged > 0) {
		struct staged *st = &ob->staged[--ob->nstaged];
		if (st->len > 0 && st->rec[0] == OUTBOX_CHANGELOG) {
			ob->staged_changelog--;
			ob->staged_changelog_bytes -= st->len;
		}
		free(st->rec);
	}
}

bool
outbox_changes(const outbox *ob)
{
	return ob->nstaged > ob->nbatch_staged || ob->ndels > ob->nbatch_dels;
}

void
outbox_batch(outbox *ob, struct store_batch *b)
{
	if (ob->nstaged > ob->batch_cap) {
		ob->batch_cap = ob->nstaged;
		ob->blobs = xreallocarray(ob->blobs, ob->batch_cap,
		    sizeof(*ob->blobs));
		ob->seqs = xreallocarray(ob->seqs, ob->batch_cap,
		    sizeof(*ob->seqs));
	}
	if (ob->ndels > ob->batch_dels_cap) {
		ob->batch_dels_cap = ob->ndels;
		ob->batch_dels = xreallocarray(ob->batch_dels,
		    ob->batch_dels_cap, sizeof(*ob->batch_dels));
	}
	for (size_t i = 0; i < ob->nstaged; i++) {
		const struct staged *st = &ob->staged[i];
		ob->blobs[i] = st->is_ref ?
		    (struct store_blob){ st->ref, STORE_ENTRY_REF_LEN } :
		    (struct store_blob){ st->rec, st->len };
	}
	if (ob->ndels > 0)
		memcpy(ob->batch_dels, ob->dels, ob->ndels * sizeof(*ob->dels));
	ob->nbatch_staged = ob->nstaged;
	ob->nbatch_dels = ob->ndels;
	b->outbox_add = ob->blobs;
	b->noutbox_add = ob->nstaged;
	b->outbox_seqs = ob->seqs;
	b->outbox_del = ob->batch_dels;
	b->noutbox_del = ob->ndels;
}

void
outbox_committed(outbox *ob)
{
	size_t n = ob->nbatch_staged, d = ob->nbatch_dels;
	for (size_t i = 0; i < n; i++) {
		struct staged *st = &ob->staged[i];
		if (st->len > 0 && st->rec[0] == OUTBOX_CHANGELOG) {
			ob->staged_changelog--;
			ob->staged_changelog_bytes -= st->len;
		}
		push(ob, ob->seqs[i], st->rec, st->len, true);
	}
	/* What was staged or delivered while the batch committed waits
	 * for the next one. */
	ob->nstaged -= n;
	if (ob->nstaged > 0)
		memmove(ob->staged, ob->staged + n,
		    ob->nstaged * sizeof(*ob->staged));
	ob->ndels -= d;
	if (ob->ndels > 0)
		memmove(ob->dels, ob->dels + d, ob->ndels * sizeof(*ob->dels));
	ob->nbatch_staged = ob->nbatch_dels = 0;
	trim(ob);
}

bool
outbox_resend_due(const outbox *ob)
{
	return ob->resend;
}

void
outbox_produce_soon(outbox *ob)
{
	ob->resend = true;
}

size_t
outbox_live(const outbox *ob)
{
	return ob->live + ob->nstaged;
}

size_t
outbox_sendable(const outbox *ob)
{
	size_t n = ob->nstaged;
	for (size_t i = ob->head; i < ob->n; i++) {
		const struct ob_item *it = &ob->v[i];
		if (!it->in_kafka && (it->cpart < 0 ||
		    ob->topics.may_produce == NULL ||
		    ob->topics.may_produce(ob->topics.ctx, it->cpart)))
			n++;
	}
	return n;
}

/* ---- producing ---------------------------------------------------------- */

static rd_kafka_headers_t *
dead_letter_headers(const struct outbox_msg *m)
{
	char part[16], off[24];
	snprintf(part, sizeof(part), "%" PRId32, m->partition);
	snprintf(off, sizeof(off), "%" PRId64, m->offset);
	rd_kafka_headers_t *h = rd_kafka_headers_new(4);
	rd_kafka_header_add(h, "sbomd.error", -1, m->error, (ssize_t)m->elen);
	rd_kafka_header_add(h, "sbomd.topic", -1, m->topic, (ssize_t)m->tlen);
	rd_kafka_header_add(h, "sbomd.partition", -1, part, -1);
	rd_kafka_header_add(h, "sbomd.offset", -1, off, -1);
	return h;
}

/* A changelog record was refused for a reason that will not pass by
 * itself: the topic or the partition is gone (deleted, or recreated with
 * another partition count, while running). Said once, loudly; /readyz
 * shows it until a changelog record is delivered again. */
static void
changelog_failed(outbox *ob, int32_t p, rd_kafka_resp_err_t err)
{
	if (err != RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION &&
	    err != RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC &&
	    err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
		return;
	if ((size_t)p >= ob->cl_failed_cap) {
		size_t cap = ob->cl_failed_cap ? ob->cl_failed_cap : 64;
		while (cap <= (size_t)p)
			cap *= 2;
		ob->cl_failed = xreallocarray(ob->cl_failed, cap, 1);
		memset(ob->cl_failed + ob->cl_failed_cap, 0,
		    cap - ob->cl_failed_cap);
		ob->cl_failed_cap = cap;
	}
	if (!ob->cl_failed[p]) {
		ob->cl_failed[p] = 1;
		ob->ncl_failed++;
	}
	char *why = ob->counters->changelog_error;
	if (why[0] != '\0')
		return;
	snprintf(why, sizeof(ob->counters->changelog_error), "%s: %s",
	    ob->topics.changelog, rd_kafka_err2str(err));
	log_kv(LOG_ERROR, "the changelog topic cannot be written (deleted or "
	    "recreated while running?): its records wait in the local "
	    "outbox, nothing local is lost, outcomes go on, input offsets "
	    "wait; recreate it (cleanup.policy=compact, as many partitions "
	    "as the input topic), or delete it and restart sbomd, which "
	    "creates it", "topic", ob->topics.changelog, "error",
	    rd_kafka_err2str(err), (char *)NULL);
}

/* A changelog record of partition p was delivered: p works (again). */
static void
changelog_ok(outbox *ob, int32_t p)
{
	if ((size_t)p >= ob->cl_failed_cap || !ob->cl_failed[p])
		return;
	ob->cl_failed[p] = 0;
	if (--ob->ncl_failed == 0) {
		ob->counters->changelog_error[0] = '\0';
		log_kv(LOG_INFO, "the changelog topic can be written again",
		    "topic", ob->topics.changelog, (char *)NULL);
	}
}

/* Hands one record to librdkafka (a copy), to the topic handle rkt or,
 * when it is NULL, to the topic by name; the headers are librdkafka's
 * once it took the record. */
static rd_kafka_resp_err_t
produce_one(rd_kafka_t *prod, rd_kafka_topic_t *rkt, const char *topic,
    int32_t part, const struct outbox_msg *m, uint64_t seq,
    rd_kafka_headers_t *hdrs)
{
	rd_kafka_vu_t vu[7];
	memset(vu, 0, sizeof(vu));
	if (rkt != NULL) {
		vu[0].vtype = RD_KAFKA_VTYPE_RKT;
		vu[0].u.rkt = rkt;
	} else {
		vu[0].vtype = RD_KAFKA_VTYPE_TOPIC;
		vu[0].u.cstr = topic;
	}
	vu[1].vtype = RD_KAFKA_VTYPE_PARTITION;
	vu[1].u.i32 = part;
	vu[2].vtype = RD_KAFKA_VTYPE_KEY;
	vu[2].u.mem.ptr = m->klen ? (void *)m->key : NULL;
	vu[2].u.mem.size = m->klen;
	vu[3].vtype = RD_KAFKA_VTYPE_VALUE;
	vu[3].u.mem.ptr = m->vlen ? (void *)m->value : NULL;
	vu[3].u.mem.size = m->vlen;
	vu[4].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
	vu[4].u.i = RD_KAFKA_MSG_F_COPY;
	vu[5].vtype = RD_KAFKA_VTYPE_OPAQUE;
	vu[5].u.ptr = (void *)(uintptr_t)seq;
	size_t n = 6;
	if (hdrs != NULL) {
		vu[6].vtype = RD_KAFKA_VTYPE_HEADERS;
		vu[6].u.headers = hdrs;
		n = 7;
	}
	rd_kafka_error_t *e = rd_kafka_produceva(prod, vu, n);
	if (e == NULL)
		return RD_KAFKA_RESP_ERR_NO_ERROR;
	rd_kafka_resp_err_t rc = rd_kafka_error_code(e);
	rd_kafka_error_destroy(e);
	return rc;
}

/* ---- refused for good ---------------------------------------------------- */

static void retire(outbox *ob, struct ob_item *it);

/* Refusals that the same record meets again however often it is sent.
 * Authorisation and unknown topics are left out on purpose: they refuse
 * every record alike and pass once an operator fixes them. */
static bool
permanent_error(rd_kafka_resp_err_t err)
{
	switch (err) {
	case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:	/* producer or broker */
	case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
	case RD_KAFKA_RESP_ERR_INVALID_RECORD:
		return true;
	default:
		return false;
	}
}

static uint64_t
key_hash(const uint8_t *k, size_t n)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (size_t i = 0; i < n; i++)
		h = (h ^ k[i]) * 1099511628211ull;
	return h;
}

static void
hint_add(outbox *ob, const struct outbox_msg *m, size_t len)
{
	ob->hints[ob->next_hint] = (struct hint){ key_hash(m->key, m->klen),
		len };
	ob->next_hint = (ob->next_hint + 1) % NHINTS;
}

/* Whether an outcome with this key, at least as large, was refused. */
static bool
hinted(const outbox *ob, const struct outbox_msg *m, size_t len)
{
	uint64_t h = 0;
	bool have = false;
	for (size_t i = 0; i < NHINTS; i++) {
		if (ob->hints[i].len == 0 || len < ob->hints[i].len)
			continue;
		if (!have) {
			h = key_hash(m->key, m->klen);
			have = true;
		}
		if (ob->hints[i].key == h)
			return true;
	}
	return false;
}

/* The outcome m without its SBOM, why appended to its error: a new
 * record, or NULL when m has no SBOM (or does not decode). */
static uint8_t *
outcome_without_sbom(const struct outbox_msg *m, const char *why,
    size_t *len)
{
	struct wire_outcome *w = xmalloc(sizeof(*w));
	struct wire_config cfg = { .max_payload = m->vlen,
		.any_schema_id = true };
	struct wire_frame fr;
	struct wire_buf buf = { 0 };
	uint8_t *rec = NULL;
	char err[256], etext[1024];
	if (m->vlen == 0 || wire_outcome_decode(m->value, m->vlen, &cfg, w,
				&fr, err, sizeof(err)) != 0 || !w->has_sbom)
		goto out;
	if (w->has_error)
		snprintf(etext, sizeof(etext), "%.*s; %s",
		    (int)(w->error.len > 512 ? 512 : w->error.len),
		    w->error.ptr, why);
	else
		snprintf(etext, sizeof(etext), "%s", why);
	w->has_sbom = 0;
	w->has_error = 1;
	w->error = wire_str_c(etext);
	if (wire_outcome_encode(w, &fr, &buf, err, sizeof(err)) != 0)
		goto out;
	struct outbox_msg n = *m;
	n.value = buf.data;
	n.vlen = buf.len;
	rec = outbox_record(&n, len);
out:
	wire_buf_free(&buf);
	free(w);
	return rec;
}

/* The dead letter m without the refused message's bytes, why appended to
 * its error; NULL when it has none left. */
static uint8_t *
dead_letter_without_value(const struct outbox_msg *m, const char *why,
    size_t *len)
{
	if (m->vlen == 0)
		return NULL;
	char etext[1024];
	snprintf(etext, sizeof(etext), "%.*s; %s",
	    (int)(m->elen > 512 ? 512 : m->elen), m->error, why);
	struct outbox_msg n = *m;
	n.value = NULL;
	n.vlen = 0;
	n.error = etext;
	n.elen = strlen(etext);
	return outbox_record(&n, len);
}

/* Kafka refused the outcome or dead letter `it` for good (err): replaced
 * in place by its smaller form (true: send it again), or dropped when
 * there is none (false). Counted and logged either way. */
static bool
refused_for_good(outbox *ob, struct ob_item *it, rd_kafka_resp_err_t err)
{
	struct outbox_msg m;
	(void)outbox_record_parse(it->rec, it->len, &m);
	const char *topic = m.kind == OUTBOX_DEAD_LETTER ?
	    ob->topics.dead_letters : ob->topics.outcomes;
	char why[512], bytes[24], key[128];
	snprintf(bytes, sizeof(bytes), "%zu", m.vlen);
	snprintf(key, sizeof(key), "%.*s", (int)(m.klen > 127 ? 127 : m.klen),
	    (const char *)m.key);
	size_t len = 0;
	uint8_t *rec = NULL;
	if (m.kind == OUTBOX_OUTCOME) {
		snprintf(why, sizeof(why), "SBOM not published: topic %s "
		    "refused the outcome (%s bytes): %s", topic, bytes,
		    rd_kafka_err2str(err));
		rec = outcome_without_sbom(&m, why, &len);
	} else if (m.kind == OUTBOX_DEAD_LETTER) {
		snprintf(why, sizeof(why), "message not published: topic %s "
		    "refused the dead letter (%s bytes): %s", topic, bytes,
		    rd_kafka_err2str(err));
		rec = dead_letter_without_value(&m, why, &len);
	}
	if (rec == NULL) {
		ob->counters->outbox_dropped++;
		log_kv(LOG_ERROR, "record refused by Kafka for good, dropped",
		    "topic", topic, "key", key, "bytes", bytes, "error",
		    rd_kafka_err2str(err), (char *)NULL);
		it->produced = false;
		retire(ob, it);
		return false;
	}
	ob->counters->outbox_reduced++;
	log_kv(LOG_ERROR, m.kind == OUTBOX_OUTCOME ?
	    "outcome refused by Kafka for good, sent again without its SBOM" :
	    "dead letter refused by Kafka for good, sent again without the "
	    "message", "topic", topic, "key", key, "bytes", bytes, "error",
	    rd_kafka_err2str(err), (char *)NULL);
	free(it->rec);
	it->rec = rec;
	it->len = len;
	ob->resend = true;
	return true;
}

void
outbox_set_changelog_producer(outbox *ob, rd_kafka_t *cprod)
{
	ob->cprod = cprod;
}

int
outbox_produce(outbox *ob, rd_kafka_t *prod, rd_kafka_topic_t *changelog)
{
	int refused = 0;
	if (ob->transactional && !ob->txn_open)
		return -EAGAIN;
	ob->resend = false;
	for (size_t i = ob->head; i < ob->n; i++) {
		struct ob_item *it = &ob->v[i];
		struct outbox_msg m;
		if (it->in_kafka || it->produced)
			continue;
		/* Every queued record parses: staged ones are ours, loaded
		 * ones were checked by outbox_load. */
		(void)outbox_record_parse(it->rec, it->len, &m);
		const char *topic = ob->topics.outcomes;
		rd_kafka_topic_t *rkt = NULL;
		int32_t part = RD_KAFKA_PARTITION_UA;
		rd_kafka_headers_t *hdrs = NULL;
		if (m.kind == OUTBOX_DEAD_LETTER) {
			topic = ob->topics.dead_letters;
			hdrs = dead_letter_headers(&m);
		} else if (m.kind == OUTBOX_CHANGELOG) {
			/* Held while the partition is not ours (yet). */
			if (ob->topics.may_produce != NULL &&
			    !ob->topics.may_produce(ob->topics.ctx,
				m.partition))
				continue;
			topic = ob->topics.changelog;
			rkt = changelog;
			part = m.partition;
			hdrs = rd_kafka_headers_new(1);
			rd_kafka_header_add(hdrs, "sbomd-instance", -1,
			    ob->topics.instance, -1);
		}
		if (it->cpart < 0 && hinted(ob, &m, it->len) &&
		    refused_for_good(ob, it, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE)) {
			if (hdrs)
				rd_kafka_headers_destroy(hdrs);
			i--; /* its smaller form, now */
			continue;
		}
		rd_kafka_resp_err_t rc = produce_one(
		    it->cpart >= 0 && ob->cprod != NULL ? ob->cprod : prod,
		    rkt, topic, part, &m, it->seq, hdrs);
		if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
			if (hdrs)
				rd_kafka_headers_destroy(hdrs);
			if (rc == RD_KAFKA_RESP_ERR__QUEUE_FULL)
				return -EAGAIN; /* go on next iteration */
			if (it->cpart < 0 && permanent_error(rc)) {
				ob->counters->produce_errors++;
				if (refused_for_good(ob, it, rc))
					i--; /* its smaller form, now */
				continue;
			}
			/* This one is refused (e.g. its topic is gone):
			 * tried again next time; the others go on. */
			ob->counters->produce_errors++;
			log_kv(LOG_ERROR, "produce failed", "topic", topic,
			    "error", rd_kafka_err2str(rc), (char *)NULL);
			if (it->cpart >= 0)
				changelog_failed(ob, it->cpart, rc);
			refused = -EIO;
			continue;
		}
		it->produced = true;
	}
	return refused;
}

/* A record is in Kafka (or dropped): its deletion waits for the next
 * commit. */
static void
retire(outbox *ob, struct ob_item *it)
{
	it->in_kafka = true;
	free(it->rec);
	it->rec = NULL;
	ob->live--;
	if (it->cpart >= 0) {
		ob->live_changelog--;
		ob->live_changelog_bytes -= it->len;
	}
	if (!it->stored)
		return;
	if (ob->ndels == ob->dels_cap) {
		ob->dels_cap = ob->dels_cap ? ob->dels_cap * 2 : 256;
		ob->dels = xreallocarray(ob->dels, ob->dels_cap,
		    sizeof(*ob->dels));
	}
	ob->dels[ob->ndels++] = it->seq;
}

static void
note_checkpoint(outbox *ob, int32_t p, int64_t next)
{
	for (size_t i = 0; i < ob->nckpts; i++)
		if (ob->ckpts[i].partition == p) {
			if (next > ob->ckpts[i].next)
				ob->ckpts[i].next = next;
			return;
		}
	if (ob->nckpts == ob->ckpts_cap) {
		ob->ckpts_cap = ob->ckpts_cap ? ob->ckpts_cap * 2 : 16;
		ob->ckpts = xreallocarray(ob->ckpts, ob->ckpts_cap,
		    sizeof(*ob->ckpts));
	}
	ob->ckpts[ob->nckpts++] = (struct ckpt){ p, next };
}

void
outbox_delivered(outbox *ob, const rd_kafka_message_t *m)
{
	uint64_t seq = (uint64_t)(uintptr_t)m->_private;
	struct ob_item *it = find(ob, seq);
	if (it == NULL)
		return;
	it->produced = false;
	if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
		if (it->in_kafka)
			return; /* dropped meanwhile */
		if (it->cpart >= 0) {
			ob->counters->changelog_delivered++;
			changelog_ok(ob, it->cpart);
			note_checkpoint(ob, it->cpart, m->offset + 1);
		} else {
			ob->counters->delivered++;
		}
		retire(ob, it);
		/* The oldest unacknowledged record is looked for after
		 * every iteration (outbox_unacked_min): keep it at head
		 * rather than behind a commit's worth of delivered ones. */
		trim(ob);
		return;
	}
	if (m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
	    m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)
		return; /* shutting down: the store keeps it */
	ob->counters->produce_errors++;
	if (it->cpart < 0 && !it->in_kafka && permanent_error(m->err)) {
		struct outbox_msg om;
		(void)outbox_record_parse(it->rec, it->len, &om);
		if (om.kind == OUTBOX_OUTCOME)
			hint_add(ob, &om, it->len);
		(void)refused_for_good(ob, it, m->err);
		return;
	}
	log_kv(LOG_WARN, "delivery failed, will retry", "error",
	    rd_kafka_err2str(m->err), (char *)NULL);
	if (it->cpart >= 0)
		changelog_failed(ob, it->cpart, m->err);
}

/* ---- changelog bookkeeping ---------------------------------------------- */

size_t
outbox_live_changelog(const outbox *ob)
{
	return ob->live_changelog + ob->staged_changelog;
}

size_t
outbox_live_changelog_bytes(const outbox *ob)
{
	return ob->live_changelog_bytes + ob->staged_changelog_bytes;
}

uint64_t
outbox_last_seq(const outbox *ob)
{
	return ob->last_seq;
}

uint64_t
outbox_unacked_min(const outbox *ob)
{
	for (size_t i = ob->head; i < ob->n; i++)
		if (!ob->v[i].in_kafka)
			return ob->v[i].seq;
	return UINT64_MAX;
}

bool
outbox_changelog_pending(const outbox *ob, int32_t p)
{
	for (size_t i = ob->head; i < ob->n; i++)
		if (!ob->v[i].in_kafka && ob->v[i].cpart == p)
			return true;
	return false;
}

size_t
outbox_drop_changelog(outbox *ob, int32_t p)
{
	size_t n = 0;
	for (size_t i = ob->head; i < ob->n; i++) {
		struct ob_item *it = &ob->v[i];
		if (it->in_kafka || it->cpart != p)
			continue;
		it->produced = false;
		retire(ob, it);
		n++;
	}
	return n;
}

void
outbox_checkpoints(outbox *ob, void (*fn)(void *ctx, int32_t p, int64_t next),
    void *ctx)
{
	for (size_t i = 0; i < ob->nckpts; i++)
		fn(ctx, ob->ckpts[i].partition, ob->ckpts[i].next);
	ob->nckpts = 0;
}

/* ---- exactly-once ------------------------------------------------------- */

void
outbox_set_transactional(outbox *ob)
{
	ob->transactional = true;
}

void
outbox_txn(outbox *ob, bool open)
{
	ob->txn_open = open;
}

void
outbox_take_staged(outbox *ob)
{
	for (size_t i = 0; i < ob->nstaged; i++)
		push(ob, ob->last_seq + 1, ob->staged[i].rec,
		    ob->staged[i].len, false);
	staged_clear(ob);
}

static bool
producible(const outbox *ob, const struct ob_item *it)
{
	if (it->in_kafka || it->produced)
		return false;
	return it->cpart < 0 || ob->topics.may_produce == NULL ||
	    ob->topics.may_produce(ob->topics.ctx, it->cpart);
}

size_t
outbox_unsent(const outbox *ob)
{
	size_t n = 0;
	for (size_t i = ob->head; i < ob->n; i++)
		n += producible(ob, &ob->v[i]);
	return n;
}

bool
outbox_awaiting_reports(const outbox *ob)
{
	for (size_t i = ob->head; i < ob->n; i++)
		if (ob->v[i].produced)
			return true;
	return false;
}

void
outbox_reset(outbox *ob)
{
	for (size_t i = ob->head; i < ob->n; i++)
		free(ob->v[i].rec);
	for (size_t i = 0; i < ob->nstaged; i++)
		free(ob->staged[i].rec);
	ob->head = ob->n = 0;
	ob->live = ob->live_changelog = ob->live_changelog_bytes = 0;
	staged_clear(ob);
	ob->ndels = ob->nckpts = 0;
	ob->nbatch_staged = ob->nbatch_dels = 0;
	ob->last_seq = 0;
}
