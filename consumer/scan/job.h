/*
 * job: one scan job, a self-contained copy of what a scan needs (the
 * engine's tracker never crosses to a worker): the subject, its refs and
 * the attempt, and the timing the pool gives it. A job is made by the
 * engine, owned by the pool while it runs (scan/pool.h) and handed back
 * with its result (struct scan_result, scan/scanner.h).
 */
#ifndef SBOMD_SCAN_JOB_H
#define SBOMD_SCAN_JOB_H

#include <stddef.h>
#include <stdint.h>

#include "util/vocab.h"

/* Values of a job's cancel flag (an atomic_int the pool sets and
 * backends read). */
enum scan_cancel {
	SCAN_CANCEL_NONE = 0,
	SCAN_CANCEL_ABORT = 1,	 /* the engine aborted the job */
	SCAN_CANCEL_TIMEOUT = 2, /* the job passed its deadline */
};

struct scan_job {
	uint64_t id;	       /* the engine's job id, unique in a pool */
	enum entity_kind kind; /* ENTITY_IMAGE or ENTITY_HOST */
	char *image_id;	       /* images: "sha256:…"; hosts: the name */
	char **repo_tags;      /* ntags copies */
	size_t ntags;
	char **repo_digests;   /* ndigests copies */
	size_t ndigests;
	uint32_t attempt;      /* 1-based */
	/*
	 * The per-scan limit: 0 takes the pool's default, < 0 means none.
	 * When a worker starts the job the pool replaces it with the
	 * effective limit (0 = none) and sets deadline_ms, on the
	 * CLOCK_MONOTONIC clock in ms (0 = none). Backends only read them.
	 */
	int64_t timeout_ms;
	int64_t deadline_ms;
};

/* A job holding copies of everything given (arrays may be NULL when the
 * count is 0). Free with scan_job_free. */
struct scan_job *scan_job_new(uint64_t id, enum entity_kind kind,
    const char *image_id, const char *const *tags, size_t ntags,
    const char *const *digests, size_t ndigests, uint32_t attempt);
void scan_job_free(struct scan_job *job);

/* The reference a tool is best given: the first repo digest, else the
 * first repo tag, else the id ({ref}). */
const char *scan_job_ref(const struct scan_job *job);

#endif
