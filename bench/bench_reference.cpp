/*
 * bench_reference: the tracker's three per-event operations written the
 * straightforward way with the C++ standard containers, driven by the
 * same workload as bench_tracker, so that the two can be compared side by
 * side (bench/bench_engine_ratio.py runs them alternately).
 *
 *   bench_reference [N] [RUNS]      (defaults: 1000000 entries, 5 runs)
 *
 * The reference keeps what the tracker keeps and checks what it checks:
 *  - std::unordered_map<Key, Entry> from the 32-byte image key (parsed and
 *    validated from "sha256:<64 hex>"; hashed by its first 8 bytes, a
 *    SHA-256 needs no stronger hash) to the entry: state, times,
 *    generation, attempts, partition, last error (std::string) and its
 *    sources (std::vector of {name, observed, holding, tags, digests},
 *    names and refs as std::string);
 *  - std::set<std::pair<due, Key>> as the schedule, the entry remembering
 *    its due time so that it can be taken out;
 *  - a dirty list (entry pointers, a flag per entry), emptied every 1,000
 *    events as the store's commit does to the tracker's;
 *  - the same validation of the source name and refs (length, control
 *    characters), refs sorted and de-duplicated, in reused scratch so that
 *    a deduplicated event allocates nothing;
 *  - the same retry policy (policy_should_retry, policy_backoff with the
 *    tracker's seed), so that the schedule has the same shape.
 *
 * Figures (medians of RUNS runs, a fresh map per run), printed in
 * bench_tracker's format:
 *   set_new      SET of N new image ids (one source, one tag each)
 *   set_dedup    SET of the same N events again, in shuffled order
 *   pop_retry    with N queued: pop a due entry, fail it (retryable),
 *                which reschedules it with backoff
 *   bytes/entry  RSS growth after set_new, divided by N
 */
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <malloc.h>
#include <unistd.h>

extern "C" {
#include "core/tracker.h"
#include "benchutil.h"
}

namespace {

struct Key {
	uint8_t kind;
	std::array<uint8_t, DIGEST_LEN> bytes;
	bool operator==(const Key &o) const
	{
		return kind == o.kind && bytes == o.bytes;
	}
	bool operator<(const Key &o) const
	{
		return kind != o.kind ? kind < o.kind : bytes < o.bytes;
	}
};

struct KeyHash {
	size_t operator()(const Key &k) const
	{
		uint64_t h;
		std::memcpy(&h, k.bytes.data(), sizeof(h));
		return (size_t)(h ^ k.kind);
	}
};

struct Source {
	std::string name;
	int64_t observed;
	bool holding;
	std::vector<std::string> tags, digests;
};

struct Entry {
	int64_t first_seen = 0;
	int64_t last_scan = -1;
	int64_t due = -1; /* in the schedule at (due, key) when >= 0 */
	int32_t partition = 0;
	uint32_t generation = 1;
	uint16_t attempts = 0;
	uint8_t kind = 0;
	uint8_t state = ENTRY_QUEUED;
	bool dirty = false;
	std::string error;
	std::vector<Source> sources;
};

struct Job {
	Key key;
	Entry *entry;
	uint32_t generation, attempt;
	int64_t due;
};

struct Event {
	const char *id;
	const char *source;
	const char *const *tags;
	size_t ntags;
	const char *const *digests;
	size_t ndigests;
	int32_t partition;
	int64_t observed_at;
};

int
hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

bool
parse_id(const char *s, Key &k)
{
	if (std::strncmp(s, "sha256:", 7) != 0 ||
	    std::strlen(s + 7) != 2 * DIGEST_LEN)
		return false;
	k.kind = ENTITY_IMAGE;
	for (size_t i = 0; i < DIGEST_LEN; i++) {
		int hi = hexval((unsigned char)s[7 + 2 * i]);
		int lo = hexval((unsigned char)s[8 + 2 * i]);
		if (hi < 0 || lo < 0)
			return false;
		k.bytes[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

bool
valid_text(std::string_view s, size_t max)
{
	if (s.empty() || s.size() > max)
		return false;
	for (unsigned char c : s)
		if (c < 0x20 || c == 0x7f)
			return false;
	return true;
}

bool
canon_refs(const char *const *in, size_t n, std::vector<std::string_view> &out)
{
	out.clear();
	if (n > TRACKER_MAX_REFS)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (in[i] == nullptr)
			return false;
		std::string_view s(in[i], strnlen(in[i], TRACKER_MAX_REF_LEN + 1));
		if (!valid_text(s, TRACKER_MAX_REF_LEN))
			return false;
		out.push_back(s);
	}
	std::sort(out.begin(), out.end());
	out.erase(std::unique(out.begin(), out.end()), out.end());
	return true;
}

bool
refs_equal(const std::vector<std::string> &a,
    const std::vector<std::string_view> &b)
{
	if (a.size() != b.size())
		return false;
	for (size_t i = 0; i < a.size(); i++)
		if (std::string_view(a[i]) != b[i])
			return false;
	return true;
}

std::vector<std::string>
to_strings(const std::vector<std::string_view> &v)
{
	return std::vector<std::string>(v.begin(), v.end());
}

class Reference {
public:
	explicit Reference(const tracker_config &cfg) : cfg_(cfg) {}

	enum apply_result
	set(const Event &ev, int64_t now)
	{
		Key key;
		if (!parse_id(ev.id, key) || ev.source == nullptr)
			return APPLY_INVALID;
		std::string_view src(ev.source,
		    strnlen(ev.source, TRACKER_MAX_NAME + 1));
		if (!valid_text(src, TRACKER_MAX_NAME) ||
		    !canon_refs(ev.tags, ev.ntags, tags_) ||
		    !canon_refs(ev.digests, ev.ndigests, digests_))
			return APPLY_INVALID;

		auto it = map_.find(key);
		if (it == map_.end()) {
			Entry &e = map_[key];
			e.kind = key.kind;
			e.partition = ev.partition;
			e.first_seen = now;
			e.sources.push_back(Source{std::string(src),
			    ev.observed_at, true, to_strings(tags_),
			    to_strings(digests_)});
			schedule(e, key, now);
			mark_dirty(e);
			return APPLY_NEW;
		}
		Entry &e = it->second;
		Source *s = nullptr;
		for (Source &c : e.sources)
			if (c.name == src) {
				s = &c;
				break;
			}
		if (s != nullptr && ev.observed_at < s->observed)
			return APPLY_STALE;
		bool was_referenced = referenced(e);
		enum apply_result res;
		if (s != nullptr && s->holding && refs_equal(s->tags, tags_) &&
		    refs_equal(s->digests, digests_)) {
			if (ev.observed_at > s->observed) {
				s->observed = ev.observed_at;
				mark_dirty(e);
			}
			res = APPLY_DEDUP;
		} else {
			if (s == nullptr) {
				e.sources.push_back(Source{std::string(src),
				    ev.observed_at, true, to_strings(tags_),
				    to_strings(digests_)});
			} else {
				s->observed = ev.observed_at;
				s->holding = true;
				s->tags = to_strings(tags_);
				s->digests = to_strings(digests_);
			}
			mark_dirty(e);
			res = APPLY_UPDATED;
		}
		if (e.partition != ev.partition) {
			e.partition = ev.partition;
			mark_dirty(e);
		}
		if (!was_referenced)
			unschedule(e, key); /* the forget timer */
		bool again = false;
		if (e.state == ENTRY_DONE)
			again = cfg_.rescan_after_ms > 0 &&
			    now - e.last_scan >= cfg_.rescan_after_ms;
		else if (e.state == ENTRY_FAILED)
			again = cfg_.retry.failed_rescan_after_ms > 0 &&
			    now - e.last_scan >=
			    cfg_.retry.failed_rescan_after_ms;
		else if (e.state == ENTRY_CANCELLED)
			again = true;
		if (again) {
			if (e.state != ENTRY_DONE)
				e.attempts = 0;
			e.generation++;
			e.state = ENTRY_QUEUED;
			schedule(e, key, now);
			mark_dirty(e);
			res = APPLY_UPDATED;
		}
		return res;
	}

	bool
	pop_due(int64_t now, Job &job)
	{
		while (!sched_.empty() && sched_.begin()->first <= now) {
			auto [due, key] = *sched_.begin();
			sched_.erase(sched_.begin());
			auto it = map_.find(key);
			Entry &e = it->second;
			e.due = -1;
			if (e.state != ENTRY_QUEUED) {
				map_.erase(it); /* a forget timer */
				continue;
			}
			e.state = ENTRY_SCANNING;
			mark_dirty(e);
			job = Job{key, &e, e.generation, attempt_of(e), due};
			return true;
		}
		return false;
	}

	/* A failed scan (retryable error): rescheduled with backoff. */
	void
	fail(const Job &job, const char *error, enum error_class cls,
	    int64_t now)
	{
		Entry &e = *job.entry;
		if (e.state != ENTRY_SCANNING || attempt_of(e) != job.attempt)
			return;
		mark_dirty(e);
		e.attempts = (uint16_t)job.attempt;
		if (e.error != error)
			e.error = error;
		if (policy_should_retry(&cfg_.retry, (enum entity_kind)e.kind,
			cls, job.attempt)) {
			uint64_t k64;
			std::memcpy(&k64, job.key.bytes.data(), sizeof(k64));
			uint64_t seed = cfg_.jitter_seed ^ k64 ^
			    ((uint64_t)job.attempt << 32);
			e.state = ENTRY_QUEUED;
			schedule(e, job.key,
			    now + policy_backoff(&cfg_.retry, job.attempt, seed));
			return;
		}
		e.last_scan = now;
		e.state = ENTRY_FAILED;
	}

	void
	clear_dirty()
	{
		for (Entry *e : dirty_)
			e->dirty = false;
		dirty_.clear();
	}

	size_t scheduled() const { return sched_.size(); }

private:
	static uint32_t
	attempt_of(const Entry &e)
	{
		return e.attempts < POLICY_MAX_ATTEMPTS ? e.attempts + 1u :
		    POLICY_MAX_ATTEMPTS;
	}

	static bool
	referenced(const Entry &e)
	{
		for (const Source &s : e.sources)
			if (s.holding)
				return true;
		return false;
	}

	void
	schedule(Entry &e, const Key &key, int64_t due)
	{
		sched_.emplace(due, key);
		e.due = due;
	}

	void
	unschedule(Entry &e, const Key &key)
	{
		if (e.due < 0)
			return;
		sched_.erase({e.due, key});
		e.due = -1;
	}

	void
	mark_dirty(Entry &e)
	{
		if (e.dirty)
			return;
		e.dirty = true;
		dirty_.push_back(&e);
	}

	tracker_config cfg_;
	std::unordered_map<Key, Entry, KeyHash> map_;
	std::set<std::pair<int64_t, Key>> sched_;
	std::vector<Entry *> dirty_;
	std::vector<std::string_view> tags_, digests_;
};

uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

/* bench_tracker's generator, so that both visit the same order. */
uint64_t
rng()
{
	uint64_t x = rng_state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545f4914f6cdd1dULL;
}

long
rss_bytes()
{
	long pages = 0, resident = 0;
	FILE *f = std::fopen("/proc/self/statm", "r");
	if (f == nullptr)
		return 0;
	if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2)
		resident = 0;
	std::fclose(f);
	return resident * sysconf(_SC_PAGESIZE);
}

const int BATCH = 1000;

void
apply_set(Reference &ref, size_t i, int64_t now)
{
	char id[DIGEST_STR_LEN], tagbuf[48];
	make_event(i, id, tagbuf);
	const char *tag = tagbuf;
	Event ev = {id, "node-0001.cluster.local", &tag, 1, nullptr, 0, 0, T0};
	if (ref.set(ev, now) > APPLY_DEDUP) {
		std::fprintf(stderr, "unexpected apply result\n");
		std::exit(1);
	}
}

} // namespace

int
main(int argc, char **argv)
{
	size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 1000000;
	int runs = argc > 2 ? std::atoi(argv[2]) : 5;
	if (n == 0 || runs < 1 || runs > 50) {
		std::fprintf(stderr, "usage: bench_reference [N] [RUNS]\n");
		return 2;
	}
	std::vector<size_t> order(n);
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	for (size_t i = n - 1; i > 0; i--)
		std::swap(order[i], order[rng() % (i + 1)]);

	tracker_config cfg;
	tracker_config_defaults(&cfg);
	std::vector<double> set_new(runs), set_dedup(runs), pop_retry(runs),
	    bytes(runs);
	for (int r = 0; r < runs; r++) {
		malloc_trim(0);
		long rss0 = rss_bytes();
		auto *ref = new Reference(cfg);
		double t0 = now_s();
		for (size_t i = 0; i < n; i++) {
			apply_set(*ref, i, T0);
			if (i % BATCH == BATCH - 1)
				ref->clear_dirty();
		}
		double t1 = now_s();
		set_new[r] = (double)n / (t1 - t0);
		malloc_trim(0);
		bytes[r] = (double)(rss_bytes() - rss0) / (double)n;

		t0 = now_s();
		for (size_t i = 0; i < n; i++) {
			apply_set(*ref, order[i], T0 + 1);
			if (i % BATCH == BATCH - 1)
				ref->clear_dirty();
		}
		t1 = now_s();
		set_dedup[r] = (double)n / (t1 - t0);

		Job job;
		int64_t now = T0 + 2;
		while (ref->pop_due(now, job))
			ref->fail(job, "image not found in any store",
			    ERROR_RETRYABLE, now);
		now = T0 + 24LL * 3600 * 1000;
		t0 = now_s();
		for (size_t i = 0; i < n; i++) {
			if (!ref->pop_due(now, job)) {
				std::fprintf(stderr, "schedule ran dry at %zu\n",
				    i);
				return 1;
			}
			ref->fail(job, "image not found in any store",
			    ERROR_RETRYABLE, now);
			if (i % BATCH == BATCH - 1)
				ref->clear_dirty();
		}
		t1 = now_s();
		pop_retry[r] = (double)n / (t1 - t0);
		if (ref->scheduled() != n) {
			std::fprintf(stderr, "schedule size %zu\n",
			    ref->scheduled());
			return 1;
		}
		delete ref;
	}
	std::printf("reference benchmark: N=%zu, runs=%d (medians)\n", n,
	    runs);
	std::printf("  set_new      %8.2f M ops/s\n",
	    median(set_new.data(), runs) / 1e6);
	std::printf("  set_dedup    %8.2f M ops/s\n",
	    median(set_dedup.data(), runs) / 1e6);
	std::printf("  pop_retry    %8.2f M ops/s\n",
	    median(pop_retry.data(), runs) / 1e6);
	std::printf("  bytes/entry  %8.1f\n", median(bytes.data(), runs));
	return 0;
}
