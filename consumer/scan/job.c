/*
 * job: making, freeing and naming scan jobs (see job.h). A job is a few
 * small allocations: the id and one copy per repo tag and digest (a
 * handful each). A job belongs to one thread at a time (the engine, then
 * one worker, then the engine again), so nothing here locks.
 */
#include "scan/job.h"

#include <stdlib.h>

#include "scan/strv.h"
#include "util/xmalloc.h"

struct scan_job *
scan_job_new(uint64_t id, enum entity_kind kind, const char *image_id,
    const char *const *tags, size_t ntags, const char *const *digests,
    size_t ndigests, uint32_t attempt)
{
	struct scan_job *j = xcalloc(1, sizeof(*j));
	j->id = id;
	j->kind = kind;
	j->image_id = xstrdup(image_id != NULL ? image_id : "");
	j->repo_tags = strv_copy(tags, ntags);
	j->ntags = ntags;
	j->repo_digests = strv_copy(digests, ndigests);
	j->ndigests = ndigests;
	j->attempt = attempt;
	return j;
}

void
scan_job_free(struct scan_job *job)
{
	if (job == NULL)
		return;
	free(job->image_id);
	strv_free(job->repo_tags, job->ntags);
	strv_free(job->repo_digests, job->ndigests);
	free(job);
}

const char *
scan_job_ref(const struct scan_job *job)
{
	if (job->ndigests > 0 && job->repo_digests[0][0] != '\0')
		return job->repo_digests[0];
	if (job->ntags > 0 && job->repo_tags[0][0] != '\0')
		return job->repo_tags[0];
	return job->image_id;
}
