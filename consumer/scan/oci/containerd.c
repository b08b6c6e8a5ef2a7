/*
 * containerd: containerd content stores (a directory with blobs/sha256/
 * and no index: containerd's io.containerd.content.v1.content), and the
 * process-wide cache that finds images in them by image ID.
 *
 * Finding. The query's repo digests are looked up as blobs directly
 * (manifests or indexes, walked like a layout's). Then, with an image ID,
 * the cache answers which manifests name that config. A store's cache
 * entry holds an index built by reading blobs/sha256: every blob name
 * listed (sorted) and the manifests among them, as (config, manifest)
 * pairs sorted by config. Blobs are immutable under their digest, so a
 * rebuild examines only the blobs the previous index had not seen (a new
 * pull costs its new blobs); only regular files under
 * IMAGESTORE_MAX_JSON that parse as a manifest count. Pairs whose
 * manifest is gone from the listing are dropped. Manifests are verified
 * when they are used, not when they are indexed.
 *
 * Freshness. The index records the directory's device, inode and mtime
 * as they were just before it was read. A lookup that finds them
 * unchanged uses the index without reading the directory. An mtime that
 * was less than CD_MTIME_SLACK old when the read started is not trusted
 * (another blob may have arrived within the same timestamp tick), and the
 * next lookup reads the directory again: a store being pulled into is
 * re-read on every lookup, an idle one never.
 *
 * Sizes: up to CD_MAX_BLOBS entries per store (more is -EFBIG, with the
 * part read kept); an index costs 32 bytes a blob plus 64 a manifest, so
 * a store of 100,000 blobs costs about 3 MiB. Stores are few (the
 * configured scan.stores) and entries live until containerd_cache_clear.
 *
 * Concurrency. Workers call containerd_search concurrently. cd_lock
 * guards the list of stores and every field of a cd_store; it is held
 * only to look at or swap those fields, never during a directory read or
 * a file read. A lookup that needs a rebuild marks the store `loading`,
 * takes the current index (which nobody else may replace or free while
 * loading is set), drops the lock, reads the directory and builds a new
 * index, then retakes the lock to publish it (the old one is freed),
 * clear loading and broadcast cd_cv. Lookups of the same store that find
 * it loading wait on cd_cv (not holding the lock) and use the index of
 * the load they waited for, so concurrent scans read a directory once.
 * Lookups of other stores, and of this store while it is fresh, never
 * wait for a read. containerd_cache_clear waits until no store is
 * loading, so it may run at any time.
 */
#include "scan/oci/imagestore_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/errbuf.h"
#include "util/xmalloc.h"

/* Directory entries examined in one content store. */
#define CD_MAX_BLOBS (1u << 20)
/* How old a directory's mtime must be, when the read starts, to be
 * trusted to change with the next blob (coarse-grained timestamps). */
#define CD_MTIME_SLACK_NS (2000000000LL)

struct cd_pair {
	uint8_t config[DIGEST_LEN];
	uint8_t manifest[DIGEST_LEN];
};

/* One read of a store's blobs/sha256. Immutable once published. */
struct cd_index {
	uint8_t (*seen)[DIGEST_LEN]; /* every blob listed, sorted */
	size_t nseen;
	struct cd_pair *pairs; /* the manifests, sorted by config */
	size_t npairs;
};

/* One content store, by path. Every field is guarded by cd_lock. */
struct cd_store {
	char *path;
	struct cd_index *idx; /* NULL until the first read is published */
	bool loading;	      /* a thread is reading the directory */
	uint64_t generation;  /* reads published so far */
	bool trusted;	      /* dev, ino, mtime say when idx is current */
	dev_t dev;
	ino_t ino;
	struct timespec mtime;
	struct cd_store *next;
};

static pthread_mutex_t cd_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cd_cv = PTHREAD_COND_INITIALIZER;
static struct cd_store *cd_stores; /* cd_lock */

void (*containerd_read_hook)(const char *store);

static int
cd_digest_cmp(const void *a, const void *b)
{
	return memcmp(a, b, DIGEST_LEN);
}

/* Pairs by config, then manifest. */
static int
cd_pair_cmp(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct cd_pair));
}

static void
cd_index_free(struct cd_index *x)
{
	if (x == NULL)
		return;
	free(x->seen);
	free(x->pairs);
	free(x);
}

static bool
cd_index_has(const struct cd_index *x, const uint8_t d[DIGEST_LEN])
{
	return x != NULL && x->nseen > 0 &&
	    bsearch(d, x->seen, x->nseen, DIGEST_LEN, cd_digest_cmp) != NULL;
}

static void
cd_index_add_pair(struct cd_index *x, size_t *cap,
    const uint8_t config[DIGEST_LEN], const uint8_t manifest[DIGEST_LEN])
{
	if (x->npairs == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		x->pairs = xreallocarray(x->pairs, *cap, sizeof(*x->pairs));
	}
	memcpy(x->pairs[x->npairs].config, config, DIGEST_LEN);
	memcpy(x->pairs[x->npairs].manifest, manifest, DIGEST_LEN);
	x->npairs++;
}

/* The config a blob names, when it is a manifest. */
static bool
cd_examine(int algfd, const char *name, uint8_t config[DIGEST_LEN])
{
	struct stat st;
	struct image_desc cfg;
	char *buf = NULL, c0;
	json_t *j = NULL;
	bool manifest = false;
	size_t len;
	int fd;

	if (fstatat(algfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
	    !S_ISREG(st.st_mode) || st.st_size < 2 ||
	    (uint64_t)st.st_size > IMAGESTORE_MAX_JSON)
		return false;
	fd = openat(algfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
	    O_CLOEXEC);
	if (fd < 0)
		return false;
	/* Cheap test first: JSON manifests start with '{'. */
	if (pread(fd, &c0, 1, 0) == 1 && c0 == '{' &&
	    blob_read_all(fd, IMAGESTORE_MAX_JSON, &buf, &len, name, NULL,
		0) == 0 &&
	    blob_parse_object(buf, len, &j, name, NULL, 0) == 0 &&
	    image_blob_classify(NULL, j) == IMAGE_BLOB_MANIFEST &&
	    image_desc_parse(json_object_get(j, "config"), &cfg, "config",
		NULL, 0) == 0) {
		memcpy(config, cfg.digest, DIGEST_LEN);
		manifest = true;
	}
	json_decref(j);
	free(buf);
	close(fd);
	return manifest;
}

/*
 * Reads the directory algfd and builds *out from it and old (whose blobs
 * are not examined again). Called without cd_lock. *out is set even on
 * failure (-EIO, -EFBIG, err filled), holding what was read.
 */
static int
cd_index_build(int algfd, const struct cd_index *old, struct cd_index **out,
    char *err, size_t errlen)
{
	struct cd_index *x = xcalloc(1, sizeof(*x));
	size_t seencap = 0, paircap = 0, entries = 0;
	struct dirent *de;
	int dfd, rc = 0;
	DIR *dir;

	*out = x;
	dfd = dup(algfd);
	dir = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (dir == NULL) {
		errbuf_set(err, errlen, "blobs/sha256: %s", strerror(errno));
		if (dfd >= 0)
			close(dfd);
		return -EIO;
	}
	rewinddir(dir); /* dup shares the offset of earlier reads */
	while ((de = readdir(dir)) != NULL) {
		uint8_t d[DIGEST_LEN], config[DIGEST_LEN];
		if (++entries > CD_MAX_BLOBS) {
			errbuf_set(err, errlen,
			    "blobs/sha256: more than %u entries", CD_MAX_BLOBS);
			rc = -EFBIG;
			break;
		}
		if (!blob_hex_digest(de->d_name, d))
			continue;
		if (x->nseen == seencap) {
			seencap = seencap ? seencap * 2 : 256;
			x->seen = xreallocarray(x->seen, seencap, DIGEST_LEN);
		}
		memcpy(x->seen[x->nseen++], d, DIGEST_LEN);
		if (!cd_index_has(old, d) && cd_examine(algfd, de->d_name,
						 config))
			cd_index_add_pair(x, &paircap, config, d);
	}
	closedir(dir);
	if (x->nseen > 1)
		qsort(x->seen, x->nseen, DIGEST_LEN, cd_digest_cmp);
	/* The manifests known before that are still there. */
	for (size_t i = 0; old != NULL && i < old->npairs; i++)
		if (cd_index_has(x, old->pairs[i].manifest))
			cd_index_add_pair(x, &paircap, old->pairs[i].config,
			    old->pairs[i].manifest);
	if (x->npairs > 1)
		qsort(x->pairs, x->npairs, sizeof(*x->pairs), cd_pair_cmp);
	return rc;
}

/* Copies out the manifests whose config is id. cd_lock held. */
static void
cd_index_find(const struct cd_index *x, const uint8_t id[DIGEST_LEN],
    uint8_t (**out)[DIGEST_LEN], size_t *nout)
{
	size_t lo = 0, hi = x->npairs, n = 0;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (memcmp(x->pairs[mid].config, id, DIGEST_LEN) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	while (lo + n < x->npairs &&
	    memcmp(x->pairs[lo + n].config, id, DIGEST_LEN) == 0)
		n++;
	*out = n > 0 ? xcalloc(n, DIGEST_LEN) : NULL;
	for (size_t i = 0; i < n; i++)
		memcpy((*out)[i], x->pairs[lo + i].manifest, DIGEST_LEN);
	*nout = n;
}

/* The entry of path, made when there is none. cd_lock held. */
static struct cd_store *
cd_store_get(const char *path)
{
	struct cd_store *c;

	for (c = cd_stores; c != NULL; c = c->next)
		if (strcmp(c->path, path) == 0)
			return c;
	c = xcalloc(1, sizeof(*c));
	c->path = xstrdup(path);
	c->next = cd_stores;
	cd_stores = c;
	return c;
}

/* Whether c's index is current for a directory that stats as st. */
static bool
cd_store_fresh(const struct cd_store *c, const struct stat *st)
{
	return c->idx != NULL && c->trusted && c->dev == st->st_dev &&
	    c->ino == st->st_ino && c->mtime.tv_sec == st->st_mtim.tv_sec &&
	    c->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

static int64_t
cd_ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000LL + t->tv_nsec;
}

/*
 * Reads the directory of s into a new index for c and publishes it (the
 * module comment's load). Called with cd_lock and c->loading set; drops
 * the lock for the read and holds it again on return.
 */
static int
cd_store_load(struct cd_store *c, const struct image_store *s, char *err,
    size_t errlen)
{
	struct cd_index *old = c->idx, *x = NULL;
	struct timespec t0;
	struct stat st;
	bool have_st;
	int rc;

	pthread_mutex_unlock(&cd_lock);
	if (containerd_read_hook != NULL)
		containerd_read_hook(s->path);
	clock_gettime(CLOCK_REALTIME, &t0);
	have_st = fstat(s->algfd, &st) == 0;
	rc = cd_index_build(s->algfd, old, &x, err, errlen);
	pthread_mutex_lock(&cd_lock);

	c->idx = x;
	cd_index_free(old);
	c->generation++;
	c->trusted = rc == 0 && have_st &&
	    cd_ns(&t0) - cd_ns(&st.st_mtim) > CD_MTIME_SLACK_NS;
	if (have_st) {
		c->dev = st.st_dev;
		c->ino = st.st_ino;
		c->mtime = st.st_mtim;
	}
	c->loading = false;
	pthread_cond_broadcast(&cd_cv);
	return rc;
}

/*
 * The manifests of store s whose config is id, from an index that is
 * current, reading the directory when it is not. A failed read is
 * reported (err filled) along with what it found.
 */
static int
cd_lookup(const struct image_store *s, const uint8_t id[DIGEST_LEN],
    uint8_t (**out)[DIGEST_LEN], size_t *nout, char *err, size_t errlen)
{
	struct stat st;
	bool have_st = fstat(s->algfd, &st) == 0, waited = false;
	uint64_t gen = 0;
	struct cd_store *c;
	int rc = 0;

	*out = NULL;
	*nout = 0;
	pthread_mutex_lock(&cd_lock);
	for (;;) {
		/* Looked up again after a wait: a clear may have freed it. */
		c = cd_store_get(s->path);
		if ((have_st && cd_store_fresh(c, &st)) ||
		    (waited && c->idx != NULL && c->generation > gen))
			break;
		if (!c->loading) {
			c->loading = true;
			rc = cd_store_load(c, s, err, errlen);
			break;
		}
		if (!waited) {
			waited = true;
			gen = c->generation;
		}
		pthread_cond_wait(&cd_cv, &cd_lock);
	}
	cd_index_find(c->idx, id, out, nout);
	pthread_mutex_unlock(&cd_lock);
	return rc;
}

void
containerd_cache_clear(void)
{
	pthread_mutex_lock(&cd_lock);
	for (;;) {
		struct cd_store *c = cd_stores;
		while (c != NULL && !c->loading)
			c = c->next;
		if (c == NULL)
			break;
		pthread_cond_wait(&cd_cv, &cd_lock);
	}
	while (cd_stores != NULL) {
		struct cd_store *c = cd_stores;
		cd_stores = c->next;
		cd_index_free(c->idx);
		free(c->path);
		free(c);
	}
	pthread_mutex_unlock(&cd_lock);
}

/* Searches from one manifest or index digest, as hinted. */
static bool
containerd_try(struct image_store *s, struct image_lookup *L,
    const uint8_t d[DIGEST_LEN], struct image_hit *h)
{
	struct image_desc desc = { .size = -1 };

	memcpy(desc.digest, d, DIGEST_LEN);
	digest_format(desc.digest, desc.dstr);
	return image_search_desc(s, L, &desc, true, true, 0, h);
}

bool
containerd_search(struct image_store *s, struct image_lookup *L,
    struct image_hit *h)
{
	uint8_t (*ms)[DIGEST_LEN] = NULL;
	size_t nms = 0;
	char why[512];
	bool found = false;
	int rc;

	for (size_t i = 0; i < L->nhints; i++) {
		struct stat st;
		int fd;
		/* A hint for another store: not an error here. */
		if (blob_open(s, L->hints[i], &fd, &st, NULL, 0) != 0)
			continue;
		close(fd);
		if (containerd_try(s, L, L->hints[i], h))
			return true;
	}
	if (!L->have_id)
		return false;
	if ((rc = cd_lookup(s, L->id, &ms, &nms, why, sizeof(why))) != 0)
		image_lookup_record(L, rc, s->path, why);
	for (size_t i = 0; i < nms && !found; i++)
		found = containerd_try(s, L, ms[i], h);
	free(ms);
	return found;
}
