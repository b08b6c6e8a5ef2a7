/*
 * layercache: one file per layer, DIR/<64 hex of the diffID>, and an
 * in-memory index of them (key, size, last use) sorted by key.
 *
 * An entry, little-endian:
 *
 *   0   "SBOMDLC\0"
 *   8   u32 format (LAYER_CACHE_FORMAT), u32 flags (LC_VERIFIED: the
 *       delta was read from a stream that hashed to the diffID)
 *   16  the diffID (32 bytes)
 *   48  without LC_VERIFIED: the digest of the blob the delta was read
 *       from, verified against its bytes (32 bytes; zeros with it)
 *   80  u64 payload length
 *   88  payload: u64 compressed, u64 uncompressed, u64 entries (the
 *       layer's struct layer_stats); u32 count, then per removal u8
 *       below, u32 length, path; u32 count, then per file u32 length,
 *       path, u64 length, data
 *   end u64 CRC-64 (ECMA-182, reflected; ISA-L) of every byte before it
 *
 * Writing: the whole entry is built in memory, written to
 * DIR/.tmp.<pid>.<n> (O_EXCL), then renamed over DIR/<hex>. A reader
 * sees the old entry, the new one or none, never a mix. There is no
 * fsync: after a crash an entry may be lost (a miss) or torn (a file
 * system that writes the rename before the data: zeros or a short
 * file), and a torn entry fails its checksum, so a crash costs re-reads,
 * never a wrong SBOM; a temporary file is removed by the next open once
 * its process is gone. The checksum guards against tearing and bit rot,
 * not an attacker: the directory is trusted like state.dir. Reading:
 * the file (at most an entry's bound) is mapped and checked (magic,
 * format, key, length, checksum), then its payload is walked once to
 * check every length against the bytes left and every file's path
 * (fileset_wanted), and only then applied, so applying cannot stop
 * halfway on a bad entry. Anything wrong is a miss, and the file is
 * removed (unless a writer replaced it meanwhile).
 *
 * Bound. bytes (the sum of the indexed files' sizes) stays at or under
 * max_bytes after every put: the least recently used entries (smallest
 * tick) are removed first. A delta whose entry would be over a quarter
 * of the bound is not stored. Recency survives restarts through the
 * files' modification times: a hit touches its file, and open orders the
 * entries it finds by them. Another process sharing the directory (an
 * `sbomd scan` next to the service) is tolerated: renames are atomic and
 * a file not in the index is read all the same (and indexed); each
 * process keeps the bound for what it knows.
 *
 * Cost: a hit maps one file (a few KiB to a few tens of MiB: the
 * layer's package databases and copyright files), checksums it (CRC-64,
 * several GB/s) and copies its files into the image's fileset once; the
 * index is a binary search, an
 * eviction a linear scan (a cache holds thousands of layers, not
 * millions).
 *
 * Concurrency: mu guards the index, the counters and every rename and
 * unlink in the directory; files are read and temporary files written
 * without it. Any thread may call any function but close.
 */
#include "scan/oci/layercache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <isa-l/crc64.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/errbuf.h"
#include "util/fsutil.h"
#include "util/xmalloc.h"

static const char lc_magic[8] = "SBOMDLC";
#define LC_HEADER 88
#define LC_LENGTH_AT 80
#define LC_BLOB_AT 48
#define LC_VERIFIED 1u
#define LC_TRAILER 8 /* CRC-64 */
static const char lc_tmp_prefix[] = ".tmp.";

struct lc_entry {
	uint8_t key[DIGEST_LEN];
	uint64_t size;	/* bytes of its file */
	uint64_t tick;	/* last use: larger is more recent */
};

struct layer_cache {
	char *dir;
	int dfd;
	uint64_t max_bytes;
	uint64_t max_entry; /* max_bytes / 4 */
	uint32_t format;
	atomic_uint_fast64_t tmpseq; /* temporary file names */
	atomic_uint_fast64_t stamp;  /* the last mtime given (ns): lc_stamp */
	pthread_mutex_t mu;
	struct lc_entry *e; /* sorted by key, unique */
	size_t n, cap;
	uint64_t tick;	    /* the last tick given */
	struct layer_cache_counters ct; /* entries, bytes: of e[] */
};

/* ---- encoding -------------------------------------------------------- */

struct lc_buf {
	unsigned char *p;
	size_t len, cap;
	bool over; /* passed max_entry: stop */
	size_t max;
};

static void
lc_put_bytes(struct lc_buf *b, const void *data, size_t len)
{
	if (b->over || len > b->max - b->len) {
		b->over = true;
		return;
	}
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + len)
			cap *= 2;
		b->p = xrealloc(b->p, cap);
		b->cap = cap;
	}
	if (len > 0)
		memcpy(b->p + b->len, data, len);
	b->len += len;
}

static void
lc_put_u64(struct lc_buf *b, uint64_t v)
{
	unsigned char x[8];
	for (int i = 0; i < 8; i++)
		x[i] = (unsigned char)(v >> (8 * i));
	lc_put_bytes(b, x, 8);
}

static void
lc_put_u32(struct lc_buf *b, uint32_t v)
{
	unsigned char x[4];
	for (int i = 0; i < 4; i++)
		x[i] = (unsigned char)(v >> (8 * i));
	lc_put_bytes(b, x, 4);
}

static uint64_t
lc_get_u64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint32_t
lc_get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static void
lc_put_file(void *ctx, const struct fileset_file *f)
{
	struct lc_buf *b = ctx;
	size_t pl = strlen(f->path);
	lc_put_u32(b, (uint32_t)pl);
	lc_put_bytes(b, f->path, pl);
	lc_put_u64(b, f->len);
	lc_put_bytes(b, f->data, f->len);
}

/* The entry for d under key, in b (b->over when past max). */
static void
lc_encode(const layer_cache *c, const uint8_t key[DIGEST_LEN],
    const uint8_t *blob, const layer_delta *d, struct lc_buf *b)
{
	static const uint8_t none[DIGEST_LEN];
	const struct layer_stats *st = layer_delta_stats_const(d);
	lc_put_bytes(b, lc_magic, sizeof(lc_magic));
	lc_put_u32(b, c->format);
	lc_put_u32(b, blob == NULL ? LC_VERIFIED : 0);
	lc_put_bytes(b, key, DIGEST_LEN);
	lc_put_bytes(b, blob != NULL ? blob : none, DIGEST_LEN);
	lc_put_u64(b, 0); /* the payload length, set below */
	lc_put_u64(b, st->compressed);
	lc_put_u64(b, st->uncompressed);
	lc_put_u64(b, st->entries);
	size_t nrm = layer_delta_nremovals(d);
	lc_put_u32(b, (uint32_t)nrm);
	for (size_t i = 0; i < nrm; i++) {
		bool below;
		const char *p = layer_delta_removal(d, i, &below);
		size_t pl = strlen(p);
		unsigned char k = below ? 1 : 0;
		lc_put_bytes(b, &k, 1);
		lc_put_u32(b, (uint32_t)pl);
		lc_put_bytes(b, p, pl);
	}
	const fileset *fs = layer_delta_files_const(d);
	lc_put_u32(b, (uint32_t)fileset_count(fs));
	fileset_foreach(fs, "", lc_put_file, b);
	if (b->over)
		return;
	uint64_t plen = b->len - LC_HEADER;
	for (int i = 0; i < 8; i++)
		b->p[LC_LENGTH_AT + i] = (unsigned char)(plen >> (8 * i));
	lc_put_u64(b, crc64_ecma_refl(0, b->p, b->len));
}

/* A reader of a payload: every read bounded by what is left. */
struct lc_rd {
	const unsigned char *p;
	size_t left;
};

static bool
lc_take(struct lc_rd *r, size_t n, const unsigned char **out)
{
	if (n > r->left)
		return false;
	*out = r->p;
	r->p += n;
	r->left -= n;
	return true;
}

static bool
lc_take_u32(struct lc_rd *r, uint32_t *v)
{
	const unsigned char *p;
	if (!lc_take(r, 4, &p))
		return false;
	*v = lc_get_u32(p);
	return true;
}

static bool
lc_take_u64(struct lc_rd *r, uint64_t *v)
{
	const unsigned char *p;
	if (!lc_take(r, 8, &p))
		return false;
	*v = lc_get_u64(p);
	return true;
}

/* Where a decoded entry goes: nothing (a check), a delta, or straight
 * into an image's fileset. */
struct lc_sink {
	layer_delta *d;
	fileset *fs;
	char *path; /* a NUL-terminated copy of the current path */
	size_t pathcap;
};

static const char *
lc_sink_path(struct lc_sink *k, const unsigned char *p, uint32_t len)
{
	if (k->pathcap < (size_t)len + 1) {
		free(k->path);
		k->pathcap = (size_t)len + 1 > 256 ? (size_t)len + 1 : 256;
		k->path = xmalloc(k->pathcap);
	}
	memcpy(k->path, p, len);
	k->path[len] = '\0';
	return k->path;
}

/* Whether the entry's header and checksum are those of an intact entry
 * of this format for key. */
static bool
lc_intact(const layer_cache *c, const uint8_t key[DIGEST_LEN],
    const unsigned char *buf, size_t len)
{
	return len >= LC_HEADER + LC_TRAILER &&
	    memcmp(buf, lc_magic, sizeof(lc_magic)) == 0 &&
	    lc_get_u32(buf + 8) == c->format &&
	    memcmp(buf + 16, key, DIGEST_LEN) == 0 &&
	    lc_get_u64(buf + LC_LENGTH_AT) == len - LC_HEADER - LC_TRAILER &&
	    crc64_ecma_refl(0, buf, len - LC_TRAILER) ==
	    lc_get_u64(buf + len - LC_TRAILER);
}

/* Whether an intact entry may stand for a layer whose blob is blob (NULL:
 * not known): one read from a stream verified against its diffID stands
 * for any layer with that diffID; one read from a blob only for that
 * blob, since its diffID is the image's word. */
static bool
lc_serves(const unsigned char *buf, const uint8_t *blob)
{
	return (lc_get_u32(buf + 12) & LC_VERIFIED) != 0 ||
	    (blob != NULL && memcmp(buf + LC_BLOB_AT, blob, DIGEST_LEN) == 0);
}

/*
 * Walks the payload of an intact entry into k (nothing when k has
 * neither d nor fs): 0, -EINVAL when it does not decode (a check first,
 * so that applying to a fileset cannot stop halfway for that), or
 * fileset_put_kept's error (-EFBIG: the image's files pass the fileset bound).
 * st: the layer's stats.
 */
static int
lc_walk(const unsigned char *buf, size_t len, struct layer_stats *st,
    struct lc_sink *k)
{
	struct lc_rd r = { buf + LC_HEADER, len - LC_HEADER - LC_TRAILER };
	const unsigned char *p;
	uint32_t n, pl;
	int rc;

	if (!lc_take_u64(&r, &st->compressed) ||
	    !lc_take_u64(&r, &st->uncompressed) ||
	    !lc_take_u64(&r, &st->entries) || !lc_take_u32(&r, &n))
		return -EINVAL;
	for (uint32_t i = 0; i < n; i++) {
		const unsigned char *kind;
		if (!lc_take(&r, 1, &kind) || *kind > 1 ||
		    !lc_take_u32(&r, &pl) || pl > 65536 ||
		    !lc_take(&r, pl, &p) || memchr(p, '\0', pl) != NULL)
			return -EINVAL;
		if (k->d != NULL &&
		    layer_delta_remove(k->d, lc_sink_path(k, p, pl),
			*kind == 1) != 0)
			return -EINVAL;
		if (k->fs != NULL) {
			const char *path = lc_sink_path(k, p, pl);
			if (*kind == 1)
				fileset_remove_below(k->fs, path);
			else
				fileset_remove(k->fs, path);
		}
	}
	if (!lc_take_u32(&r, &n))
		return -EINVAL;
	for (uint32_t i = 0; i < n; i++) {
		const unsigned char *data;
		uint64_t dl;
		if (!lc_take_u32(&r, &pl) || pl > 4096 ||
		    !lc_take(&r, pl, &p) || memchr(p, '\0', pl) != NULL ||
		    !lc_take_u64(&r, &dl) || dl > r.left ||
		    !lc_take(&r, (size_t)dl, &data))
			return -EINVAL;
		const char *path = lc_sink_path(k, p, pl);
		if (k->d == NULL && k->fs == NULL) {
			if (!fileset_wanted(path) || dl > FILESET_MAX_FILE)
				return -EINVAL;
			continue;
		}
		rc = fileset_put_kept(k->d != NULL ? layer_delta_files(k->d) :
		    k->fs, path, data, (size_t)dl);
		if (rc != 0)
			return k->d != NULL ? -EINVAL : rc;
	}
	return r.left == 0 ? 0 : -EINVAL;
}

/* ---- the index (mu held) --------------------------------------------- */

static size_t
lc_lower(const layer_cache *c, const uint8_t key[DIGEST_LEN])
{
	size_t lo = 0, hi = c->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (memcmp(c->e[mid].key, key, DIGEST_LEN) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct lc_entry *
lc_find(layer_cache *c, const uint8_t key[DIGEST_LEN])
{
	size_t i = lc_lower(c, key);
	if (i < c->n && memcmp(c->e[i].key, key, DIGEST_LEN) == 0)
		return &c->e[i];
	return NULL;
}

/* Sets fd's mtime, the order of last use that the next open reads back,
 * to a stamp larger than any this cache gave before: the kernel's own
 * file times are coarse (a clock tick), so entries used within one tick
 * would tie, and a reopen could evict the most recently used first. */
static void
lc_stamp(layer_cache *c, int fd)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	uint_fast64_t t = (uint_fast64_t)now.tv_sec * 1000000000u +
	    (uint_fast64_t)now.tv_nsec;
	uint_fast64_t last = atomic_load(&c->stamp), next;
	do
		next = t > last ? t : last + 1;
	while (!atomic_compare_exchange_weak(&c->stamp, &last, next));
	struct timespec ts[2] = {
		{ 0, UTIME_OMIT },
		{ (time_t)(next / 1000000000u), (long)(next % 1000000000u) },
	};
	(void)futimens(fd, ts);
}

/* Indexes key with size (replacing an entry there), as used now. */
static void
lc_index(layer_cache *c, const uint8_t key[DIGEST_LEN], uint64_t size,
    uint64_t tick)
{
	size_t i = lc_lower(c, key);
	if (i < c->n && memcmp(c->e[i].key, key, DIGEST_LEN) == 0) {
		c->ct.bytes -= c->e[i].size;
	} else {
		if (c->n == c->cap) {
			c->cap = c->cap ? c->cap * 2 : 64;
			c->e = xreallocarray(c->e, c->cap, sizeof(c->e[0]));
		}
		memmove(&c->e[i + 1], &c->e[i], (c->n - i) * sizeof(c->e[0]));
		memcpy(c->e[i].key, key, DIGEST_LEN);
		c->n++;
	}
	c->e[i].size = size;
	c->e[i].tick = tick;
	c->ct.bytes += size;
	c->ct.entries = c->n;
}

static void
lc_unindex(layer_cache *c, struct lc_entry *e)
{
	size_t i = (size_t)(e - c->e);
	c->ct.bytes -= e->size;
	memmove(&c->e[i], &c->e[i + 1], (c->n - i - 1) * sizeof(c->e[0]));
	c->n--;
	c->ct.entries = c->n;
}

static void
lc_name(const uint8_t key[DIGEST_LEN], char name[DIGEST_STR_LEN])
{
	char ds[DIGEST_STR_LEN];
	digest_format(key, ds);
	memcpy(name, ds + 7, 65); /* after "sha256:" */
}

/* Evicts least recently used entries, but keep, until bytes <= max. */
static void
lc_evict(layer_cache *c, const uint8_t *keep)
{
	while (c->ct.bytes > c->max_bytes) {
		struct lc_entry *victim = NULL;
		for (size_t i = 0; i < c->n; i++) {
			if (keep != NULL &&
			    memcmp(c->e[i].key, keep, DIGEST_LEN) == 0)
				continue;
			if (victim == NULL || c->e[i].tick < victim->tick)
				victim = &c->e[i];
		}
		if (victim == NULL)
			return;
		char name[DIGEST_STR_LEN];
		lc_name(victim->key, name);
		(void)unlinkat(c->dfd, name, 0);
		lc_unindex(c, victim);
		c->ct.evictions++;
	}
}

/* ---- open and close --------------------------------------------------- */

/* Whether a temporary file's writer is gone (".tmp.<pid>.<n>"). */
static bool
lc_tmp_stale(const char *name)
{
	char *end;
	long pid = strtol(name + sizeof(lc_tmp_prefix) - 1, &end, 10);
	if (end == name + sizeof(lc_tmp_prefix) - 1 || *end != '.' || pid <= 0)
		return true;
	if ((pid_t)pid == getpid())
		return true; /* ours from an earlier life (pid 1 in a box) */
	return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

static int
lc_cmp_tick(const void *a, const void *b)
{
	const struct lc_entry *x = a, *y = b;
	return x->tick < y->tick ? -1 : x->tick > y->tick;
}

static int
lc_cmp_key(const void *a, const void *b)
{
	const struct lc_entry *x = a, *y = b;
	return memcmp(x->key, y->key, DIGEST_LEN);
}

/* Indexes the directory's entries, oldest use first. */
static int
lc_scan(layer_cache *c, char *err, size_t errlen)
{
	int fd = dup(c->dfd);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (dir == NULL) {
		errbuf_set(err, errlen, "layer cache %s: %s", c->dir,
		    strerror(errno));
		if (fd >= 0)
			close(fd);
		return -EIO;
	}
	while ((de = readdir(dir)) != NULL) {
		struct stat st;
		uint8_t key[DIGEST_LEN];
		char full[DIGEST_STR_LEN + 8];
		if (strncmp(de->d_name, lc_tmp_prefix,
			sizeof(lc_tmp_prefix) - 1) == 0) {
			if (lc_tmp_stale(de->d_name))
				(void)unlinkat(c->dfd, de->d_name, 0);
			continue;
		}
		if (strlen(de->d_name) != 64)
			continue;
		memcpy(full, "sha256:", 7);
		memcpy(full + 7, de->d_name, 65);
		if (digest_parse(full, key, NULL, 0) != 0 ||
		    fstatat(c->dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if (c->n == c->cap) {
			c->cap = c->cap ? c->cap * 2 : 64;
			c->e = xreallocarray(c->e, c->cap, sizeof(c->e[0]));
		}
		memcpy(c->e[c->n].key, key, DIGEST_LEN);
		c->e[c->n].size = (uint64_t)st.st_size;
		/* Nanoseconds since the epoch: the order of last use. */
		c->e[c->n].tick = (uint64_t)st.st_mtim.tv_sec * 1000000000u +
		    (uint64_t)st.st_mtim.tv_nsec;
		if (c->e[c->n].tick > atomic_load(&c->stamp))
			atomic_store(&c->stamp, c->e[c->n].tick);
		c->n++;
	}
	closedir(dir);
	/* Renumber by recency, then sort by key. */
	if (c->n > 1)
		qsort(c->e, c->n, sizeof(c->e[0]), lc_cmp_tick);
	for (size_t i = 0; i < c->n; i++) {
		c->e[i].tick = ++c->tick;
		c->ct.bytes += c->e[i].size;
	}
	if (c->n > 1)
		qsort(c->e, c->n, sizeof(c->e[0]), lc_cmp_key);
	c->ct.entries = c->n;
	return 0;
}

int
layer_cache_open(const struct layer_cache_options *o, layer_cache **out,
    char *err, size_t errlen)
{
	layer_cache *c;
	int rc;

	*out = NULL;
	uint64_t max = o->max_bytes ? o->max_bytes : LAYER_CACHE_DEFAULT_MAX;
	if (o->dir == NULL || o->dir[0] == '\0') {
		errbuf_set(err, errlen, "layer cache: no directory");
		return -EINVAL;
	}
	if (max < LAYER_CACHE_MIN_MAX) {
		errbuf_set(err, errlen, "layer cache %s: a bound of %llu "
		    "bytes, less than %llu", o->dir, (unsigned long long)max,
		    (unsigned long long)LAYER_CACHE_MIN_MAX);
		return -EINVAL;
	}
	if ((rc = fs_mkdir_p(o->dir)) != 0) {
		errbuf_set(err, errlen, "layer cache %s: mkdir: %s", o->dir,
		    strerror(-rc));
		return -EIO;
	}
	c = xcalloc(1, sizeof(*c));
	c->dir = xstrdup(o->dir);
	c->max_bytes = max;
	c->max_entry = max / 4;
	c->format = o->format ? o->format : LAYER_CACHE_FORMAT;
	pthread_mutex_init(&c->mu, NULL);
	c->dfd = open(o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->dfd < 0) {
		errbuf_set(err, errlen, "layer cache %s: open: %s", o->dir,
		    strerror(errno));
		layer_cache_close(c);
		return -EIO;
	}
	if ((rc = lc_scan(c, err, errlen)) != 0) {
		layer_cache_close(c);
		return rc;
	}
	lc_evict(c, NULL);
	c->ct.evictions = 0; /* the bound lowered since: not this run's */
	*out = c;
	return 0;
}

void
layer_cache_close(layer_cache *c)
{
	if (c == NULL)
		return;
	if (c->dfd >= 0)
		close(c->dfd);
	pthread_mutex_destroy(&c->mu);
	free(c->e);
	free(c->dir);
	free(c);
}

/* ---- get and put ----------------------------------------------------- */

/* Maps the file name (at most max_entry bytes): 0, -ENOENT, -EFBIG,
 * -EIO. *ino: the file's inode, for a removal that must not hit a newer
 * file. Unmap with munmap(*out, *len) when *len > 0. */
static int
lc_map(layer_cache *c, const char *name, unsigned char **out, size_t *len,
    ino_t *ino)
{
	struct stat st;
	*out = NULL;
	*len = 0;
	int fd = openat(c->dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW |
	    O_NONBLOCK);
	if (fd < 0)
		return errno == ENOENT ? -ENOENT : -EIO;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -EIO;
	}
	*ino = st.st_ino;
	if ((uint64_t)st.st_size > c->max_entry) {
		close(fd);
		return -EFBIG;
	}
	if (st.st_size == 0) {
		close(fd);
		return 0; /* empty: torn, not intact */
	}
	void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd,
	    0);
	/* Its use is its recency, for the next open. */
	lc_stamp(c, fd);
	close(fd);
	if (m == MAP_FAILED)
		return -EIO;
	*out = m;
	*len = (size_t)st.st_size;
	return 0;
}

/* Accounts for a lookup of diff: a hit (size: its file's), or a miss
 * whose file, when rc says one was there, was not intact. */
static void
lc_account(layer_cache *c, const uint8_t diff[DIGEST_LEN], const char *name,
    bool hit, int rc, size_t size, ino_t ino)
{
	pthread_mutex_lock(&c->mu);
	struct lc_entry *e = lc_find(c, diff);
	if (hit) {
		struct stat st;
		if (e != NULL) {
			e->tick = ++c->tick;
		} else if (fstatat(c->dfd, name, &st, AT_SYMLINK_NOFOLLOW) ==
		    0 && st.st_ino == ino) {
			/* Written by another process since the open. */
			lc_index(c, diff, size, ++c->tick);
			lc_evict(c, diff);
		}
		/* else evicted by another thread since it was read: its
		 * file is gone, it stays out of the index */
		c->ct.hits++;
	} else {
		c->ct.misses++;
		if (rc != -ENOENT) {
			/* Not intact: gone, unless a writer just replaced
			 * it with another file. */
			struct stat st;
			if (fstatat(c->dfd, name, &st, AT_SYMLINK_NOFOLLOW) ==
				0 && st.st_ino == ino) {
				(void)unlinkat(c->dfd, name, 0);
				c->ct.rejected++;
				if (e != NULL)
					lc_unindex(c, e);
			}
		} else if (e != NULL) {
			lc_unindex(c, e); /* removed behind our back */
		}
	}
	pthread_mutex_unlock(&c->mu);
}

/* Counts a miss whose entry is intact and stays. */
static void
lc_count_miss(layer_cache *c)
{
	pthread_mutex_lock(&c->mu);
	c->ct.misses++;
	pthread_mutex_unlock(&c->mu);
}

int
layer_cache_get(layer_cache *c, const uint8_t diff[DIGEST_LEN],
    const uint8_t *blob, layer_delta **out)
{
	char name[DIGEST_STR_LEN];
	unsigned char *buf = NULL;
	size_t len = 0;
	ino_t ino = 0;
	layer_delta *d = NULL;
	bool intact = false;

	*out = NULL;
	lc_name(diff, name);
	int rc = lc_map(c, name, &buf, &len, &ino);
	if (rc == 0 && lc_intact(c, diff, buf, len)) {
		d = layer_delta_new();
		struct lc_sink k = { .d = d };
		if (lc_walk(buf, len, layer_delta_stats(d), &k) != 0) {
			layer_delta_free(d);
			d = NULL;
		} else if (!lc_serves(buf, blob)) {
			layer_delta_free(d);
			d = NULL;
			intact = true;
		}
		free(k.path);
	}
	if (len > 0)
		munmap(buf, len);
	if (intact)
		lc_count_miss(c);
	else
		lc_account(c, diff, name, d != NULL, rc, len, ino);
	*out = d;
	return d != NULL ? 0 : -ENOENT;
}

int
layer_cache_apply(layer_cache *c, const uint8_t diff[DIGEST_LEN],
    const uint8_t *blob, const struct layer_limits *lim, fileset *fs,
    const char *layer, bool *other, char *err, size_t errlen)
{
	char name[DIGEST_STR_LEN];
	unsigned char *buf = NULL;
	size_t len = 0;
	ino_t ino = 0;
	struct layer_stats st;
	struct lc_sink check = { 0 }, k = { .fs = fs };
	bool hit = false;

	if (other != NULL)
		*other = false;
	lc_name(diff, name);
	int rc = lc_map(c, name, &buf, &len, &ino);
	if (rc == 0 && lc_intact(c, diff, buf, len) &&
	    lc_walk(buf, len, &st, &check) == 0) {
		/* Intact, but read from another blob (not verified against
		 * the diffID), or read under larger bounds than lim's (read
		 * again, so that the layer fails as it should): a miss, and
		 * not a corrupt entry. */
		bool serves = lc_serves(buf, blob);
		if (!serves || !layer_stats_fit(&st, lim)) {
			if (other != NULL)
				*other = !serves;
			munmap(buf, len);
			lc_count_miss(c);
			free(check.path);
			return -ENOENT;
		}
		hit = true;
		rc = lc_walk(buf, len, &st, &k);
		if (rc != 0)
			errbuf_set(err, errlen, "layer %s: the image's wanted "
			    "files pass the fileset bound (%u files, %u bytes)",
			    layer, FILESET_MAX_FILES, FILESET_MAX_BYTES);
	}
	if (len > 0)
		munmap(buf, len);
	lc_account(c, diff, name, hit, rc, len, ino);
	free(check.path);
	free(k.path);
	if (!hit)
		return -ENOENT;
	return rc;
}

/* Writes all of buf to fd. */
static int
lc_write_all(int fd, const unsigned char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -EIO;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int
layer_cache_put(layer_cache *c, const uint8_t diff[DIGEST_LEN],
    const uint8_t *blob, const layer_delta *d)
{
	struct lc_buf b = { .max = c->max_entry };
	char name[DIGEST_STR_LEN], tmp[64] = "";
	int fd = -1, rc;

	lc_encode(c, diff, blob, d, &b);
	if (b.over) {
		pthread_mutex_lock(&c->mu);
		c->ct.too_large++;
		pthread_mutex_unlock(&c->mu);
		rc = -EFBIG;
		goto out;
	}
	lc_name(diff, name);
	snprintf(tmp, sizeof(tmp), "%s%ld.%llu", lc_tmp_prefix, (long)getpid(),
	    (unsigned long long)atomic_fetch_add(&c->tmpseq, 1));
	fd = openat(c->dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
	    0600);
	if (fd < 0) {
		rc = -EIO;
		goto out;
	}
	if (lc_write_all(fd, b.p, b.len) != 0) {
		rc = -EIO;
		goto out;
	}
	lc_stamp(c, fd);
	close(fd);
	fd = -1;
	pthread_mutex_lock(&c->mu);
	if (renameat(c->dfd, tmp, c->dfd, name) != 0) {
		pthread_mutex_unlock(&c->mu);
		rc = -EIO;
		goto out;
	}
	tmp[0] = '\0'; /* renamed: nothing to remove */
	lc_index(c, diff, b.len, ++c->tick);
	c->ct.stores++;
	lc_evict(c, diff);
	pthread_mutex_unlock(&c->mu);
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (rc == -EIO && tmp[0] != '\0')
		(void)unlinkat(c->dfd, tmp, 0);
	free(b.p);
	return rc;
}

void
layer_cache_counters(layer_cache *c, struct layer_cache_counters *out)
{
	pthread_mutex_lock(&c->mu);
	*out = c->ct;
	pthread_mutex_unlock(&c->mu);
}
