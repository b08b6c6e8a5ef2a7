/*
 * layers: streams one image layer (a tar, plain, gzip or zstd) through
 * libarchive and applies it to a fileset. Nothing touches the disk.
 *
 * One pass over the tar headers. Per entry, with P its normalised path:
 *  - ".wh..wh..opq" in dir D: everything below D from lower layers goes;
 *  - ".wh.NAME" in dir D: D/NAME and everything below it from lower
 *    layers goes (other ".wh..wh.*" names are aufs bookkeeping: ignored);
 *  - any other entry replaces the lower file at P exactly, and a
 *    non-directory also hides whatever a lower layer had below P;
 *  - a regular file at a wanted path (fileset_wanted) is read, a hard link
 *    at a wanted path copies its target if this layer stored it earlier,
 *    symlinks and other types store nothing; all other data is skipped.
 *
 * Whiteouts and opaque markers hide lower layers only, whatever the order
 * of entries in the tar. So removals go straight to fs (which, during the
 * walk, holds only the lower layers), while this layer's own files wait
 * in a private "pending" fileset (same bounds as fs, last entry for a path
 * wins) and are merged into fs after the last entry.
 *
 * Bounds, all checked before the work they bound: compressed bytes in the
 * read callback; decompressed bytes as libarchive's position in the tar
 * stream (archive_filter_bytes(a, 0): headers, data and padding), checked
 * against an entry's declared size before its data is read or skipped, so
 * a bomb fails at its first oversized header without inflating it;
 * entries; paths (LAYER_MAX_PATH); each wanted file (FILESET_MAX_FILE) and
 * the set (FILESET_MAX_FILES / _BYTES, via fileset_put).
 *
 * Cost: one inflate of the layer; per entry, a few binary searches in
 * filesets of at most a few thousand files. Memory: the read buffer
 * (1 MiB), libarchive's buffers and the wanted files.
 *
 * On failure fs may hold a partly applied layer: the caller discards the
 * scan. Single-threaded per fileset; separate calls on separate filesets
 * may run in parallel (libarchive objects are per call).
 */
#include "scan/oci/layers.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <isa-l/igzip_lib.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/errbuf.h"
#include "util/xmalloc.h"

#define LAYER_READ_BUF (1u << 20)
/* Longer paths are refused (libarchive itself stops pax headers at 1 MiB;
 * no path the fileset stores is longer than 4 KiB). */
#define LAYER_MAX_PATH (64u << 10)
/* How much of an entry name a message quotes. */
#define LAYER_SHOWN 200

static const char opaque_name[] = ".wh..wh..opq";
static const char wh_prefix[] = ".wh.";
static const char wh_meta_prefix[] = ".wh..wh.";

/* Output buffers of the gzip stage: the inflate thread fills one while
 * libarchive reads another. */
#define GZ_NBUF 4
#define GZ_BUF (1u << 20)
/* Input buffers of the read stage, LAYER_READ_BUF bytes each. */
#define RD_NBUF 4

/*
 * The gzip stage: three threads in a pipeline, so that inflating (ISA-L,
 * several times zlib's speed) overlaps both the reading (with the
 * caller's hashing: fn) and the tar walk.
 *
 *   read thread      fn -> rin[rhead % RD_NBUF]
 *   inflate thread   rin[rtail] -> in -> isal_inflate -> out[head % GZ_NBUF]
 *   caller's thread  libarchive's read callback hands out out[tail]
 *
 * Concurrency: mu guards every ring index, done/stop flag and error
 * field. The read thread alone calls fn and updates the source's total,
 * over and io_errno (read by others only after it is joined); the inflate
 * thread alone owns st and in. A filled buffer is not touched by its
 * producer until the consumer's index passes it; libarchive is done with
 * a buffer when it calls the read callback again.
 */
struct layer_gunzip {
	pthread_t rthread;
	unsigned char *rin[RD_NBUF];
	size_t rlen[RD_NBUF];
	uint64_t rhead, rtail;	 /* input buffers read / taken by inflate */
	bool rdone;		 /* no more input: EOF or fn failed */
	bool rfailed;		 /* fn failed (the source says why) */
	uint64_t consumed;	 /* compressed bytes given to inflate */
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned char *out[GZ_NBUF];
	size_t outlen[GZ_NBUF];
	uint64_t head;	 /* buffers filled */
	uint64_t tail;	 /* buffers handed to libarchive and released */
	bool holding;	 /* libarchive holds out[tail % GZ_NBUF] */
	bool done;	 /* no more buffers: the end, or an error */
	bool stop;	 /* the walk ended: the thread quits */
	int err;	 /* 0, or -EINVAL (corrupt gzip) */
	char why[160];	 /* the corruption */
	struct inflate_state st;
	unsigned char *in; /* LAYER_READ_BUF + 2 bytes of compressed input */
	bool eof;	   /* the input has ended */
};

/* The client side of libarchive's read callback. */
struct layer_source {
	layer_read_fn fn;
	void *ctx;
	unsigned char *buf; /* LAYER_READ_BUF bytes */
	uint64_t total;	    /* bytes fn returned so far */
	uint64_t max;	    /* lim->max_compressed */
	bool over;	    /* total passed max: the walk fails with -EFBIG */
	int io_errno;	    /* 0, or errno of fn's failure (-EIO) */
	bool started;	    /* the first read decided gzip or not */
	struct layer_gunzip *gz; /* NULL: libarchive reads fn directly */
	/* NULL, or the hash of the inflated stream: every buffer the gzip
	 * stage hands out is added once, by the caller's thread. */
	EVP_MD_CTX *diff_md;
	char gz_why[160];	 /* the gzip stage's corruption, or "" */
};

/* One layer_apply call. */
struct layer_walk {
	struct archive *a;
	layer_delta *delta; /* what the layer does, filled by the walk */
	const char *name; /* the layer, for messages */
	const struct layer_limits *lim;
	struct layer_source src;
	char shown[LAYER_SHOWN + 8]; /* current entry, printable, or "" */
	char *path;		     /* normalised path of the current entry */
	size_t pathcap;
	char *link; /* normalised hard link target */
	size_t linkcap;
	char *err;
	size_t errlen;
};

void
layer_limits_default(struct layer_limits *l)
{
	l->max_compressed = (uint64_t)8 << 30;
	l->max_uncompressed = (uint64_t)32 << 30;
	l->max_entries = 2000000;
	l->cancel = NULL;
}

static void layer_fail(struct layer_walk *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Fills err with "layer NAME: [entry "X": ]message". */
static void
layer_fail(struct layer_walk *w, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (w->shown[0] != '\0')
		errbuf_set(w->err, w->errlen, "layer %s: entry \"%s\": %s",
		    w->name, w->shown, msg);
	else
		errbuf_set(w->err, w->errlen, "layer %s: %s", w->name, msg);
}

/* Remembers an entry name for messages: printable ASCII, others as '?',
 * cut at LAYER_SHOWN bytes. */
static void
layer_show(struct layer_walk *w, const char *raw)
{
	size_t i = 0;
	for (; raw[i] != '\0' && i < LAYER_SHOWN; i++) {
		unsigned char c = (unsigned char)raw[i];
		w->shown[i] = (c >= 0x20 && c < 0x7f && c != '"') ? (char)c :
								      '?';
	}
	if (raw[i] != '\0') {
		memcpy(w->shown + i, "...", 4);
		return;
	}
	w->shown[i] = '\0';
}

/* Reads from fn into buf, counting against the compressed bound; on
 * failure a negative errno: -EFBIG past the bound (s->over), else fn's
 * error (s->io_errno). */
static ssize_t
layer_source_fill(struct layer_source *s, unsigned char *buf, size_t cap)
{
	ssize_t n = s->fn(s->ctx, buf, cap);
	if (n < 0 || (size_t)n > cap) {
		s->io_errno = n < 0 ? (int)-n : EIO;
		return -s->io_errno;
	}
	s->total += (uint64_t)n;
	if (s->total > s->max) {
		s->over = true;
		return -EFBIG;
	}
	return n;
}

static void
layer_source_error(struct archive *a, const struct layer_source *s)
{
	if (s->over)
		archive_set_error(a, EFBIG, "more than %llu compressed bytes",
		    (unsigned long long)s->max);
	else
		archive_set_error(a, s->io_errno, "read: %s",
		    strerror(s->io_errno));
}

/* Waits until a ring of n buffers (filled up to *head, released up to
 * *tail) has a free one; false when the stage is stopping. */
static bool
gz_wait_room(struct layer_gunzip *gz, const uint64_t *head,
    const uint64_t *tail, unsigned n)
{
	pthread_mutex_lock(&gz->mu);
	while (!gz->stop && *head - *tail >= n)
		pthread_cond_wait(&gz->cv, &gz->mu);
	bool go = !gz->stop;
	pthread_mutex_unlock(&gz->mu);
	return go;
}

/* Read thread: fn into the input ring until the end, a failure or stop. */
static void *
gz_read_thread(void *arg)
{
	struct layer_source *s = arg;
	struct layer_gunzip *gz = s->gz;
	for (;;) {
		if (!gz_wait_room(gz, &gz->rhead, &gz->rtail, RD_NBUF))
			return NULL;
		unsigned slot = (unsigned)(gz->rhead % RD_NBUF);
		ssize_t n = layer_source_fill(s, gz->rin[slot], LAYER_READ_BUF);
		pthread_mutex_lock(&gz->mu);
		if (n > 0) {
			gz->rlen[slot] = (size_t)n;
			gz->rhead++;
		} else {
			gz->rfailed = n < 0;
			gz->rdone = true;
		}
		pthread_cond_broadcast(&gz->cv);
		pthread_mutex_unlock(&gz->mu);
		if (n <= 0)
			return NULL;
	}
}

/* Inflate thread: refills gz->in (after the unread bytes) from the input
 * ring. 0, -EIO when reading failed (s says why), -ECANCELED when the
 * stage is stopping. */
static int
gz_refill(struct layer_source *s)
{
	struct layer_gunzip *gz = s->gz;
	size_t keep = gz->st.avail_in; /* < 2: a member boundary */
	if (keep > 0 && gz->st.next_in != gz->in)
		memmove(gz->in, gz->st.next_in, keep);
	size_t n = 0;
	int rc = 0;
	pthread_mutex_lock(&gz->mu);
	while (gz->rhead == gz->rtail && !gz->rdone && !gz->stop)
		pthread_cond_wait(&gz->cv, &gz->mu);
	if (gz->rhead != gz->rtail) {
		unsigned slot = (unsigned)(gz->rtail % RD_NBUF);
		n = gz->rlen[slot];
		memcpy(gz->in + keep, gz->rin[slot], n);
		gz->rtail++;
		pthread_cond_broadcast(&gz->cv);
	} else if (gz->rfailed) {
		rc = -EIO;
	} else if (gz->stop) {
		rc = -ECANCELED;
	} else {
		gz->eof = true;
	}
	pthread_mutex_unlock(&gz->mu);
	gz->consumed += n;
	gz->st.next_in = gz->in;
	gz->st.avail_in = (uint32_t)(keep + n);
	return rc;
}

static const char *
gz_strerror(int r)
{
	switch (r) {
	case ISAL_INVALID_BLOCK: return "invalid deflate block";
	case ISAL_INVALID_SYMBOL: return "invalid deflate symbol";
	case ISAL_INVALID_LOOKBACK: return "invalid back-reference distance";
	case ISAL_INVALID_WRAPPER: return "bad gzip header";
	case ISAL_UNSUPPORTED_METHOD: return "unsupported compression method";
	case ISAL_INCORRECT_CHECKSUM: return "CRC-32 or length mismatch";
	case ISAL_NEED_DICT: return "needs a preset dictionary";
	default: return "inflate error";
	}
}

/*
 * Inflate thread: fills buf (GZ_BUF bytes) with the next decompressed
 * bytes. Returns the count (< GZ_BUF only at the end), or a negative
 * errno with the error in s (fn failed: -EIO), or in gz->err/why
 * (corrupt stream: -EINVAL). Concatenated
 * gzip members are one stream (RFC 1952); bytes after the last member
 * that do not start another are ignored, as gzip does.
 */
static ssize_t
gz_fill(struct layer_source *s, unsigned char *buf, bool *end)
{
	struct layer_gunzip *gz = s->gz;
	struct inflate_state *st = &gz->st;
	int rc;
	st->next_out = buf;
	st->avail_out = GZ_BUF;
	while (st->avail_out > 0) {
		if (st->block_state == ISAL_BLOCK_FINISH) {
			if (st->avail_in < 2 && !gz->eof &&
			    (rc = gz_refill(s)) != 0)
				return rc;
			if (st->avail_in < 2 || st->next_in[0] != 0x1f ||
			    st->next_in[1] != 0x8b) {
				*end = true;
				break;
			}
			isal_inflate_reset(st);
			st->crc_flag = ISAL_GZIP;
		}
		if (st->avail_in == 0) {
			if (gz->eof) {
				gz->err = -EINVAL;
				snprintf(gz->why, sizeof(gz->why),
				    "gzip: truncated stream (%llu compressed "
				    "bytes)", (unsigned long long)gz->consumed);
				return -EINVAL;
			}
			if ((rc = gz_refill(s)) != 0)
				return rc;
			continue;
		}
		int r = isal_inflate(st);
		if (r < 0 || r == ISAL_NEED_DICT) {
			gz->err = -EINVAL;
			snprintf(gz->why, sizeof(gz->why),
			    "gzip: %s near compressed byte %llu", gz_strerror(r),
			    (unsigned long long)(gz->consumed - st->avail_in));
			return -EINVAL;
		}
	}
	return (ssize_t)(GZ_BUF - st->avail_out);
}

static void *
gz_thread(void *arg)
{
	struct layer_source *s = arg;
	struct layer_gunzip *gz = s->gz;
	bool end = false;

	while (!end) {
		if (!gz_wait_room(gz, &gz->head, &gz->tail, GZ_NBUF))
			break;

		/* out[head] is free: the reader released it (tail passed). */
		unsigned slot = (unsigned)(gz->head % GZ_NBUF);
		ssize_t n = gz_fill(s, gz->out[slot], &end);

		pthread_mutex_lock(&gz->mu);
		if (n < 0) {
			if (gz->err == 0)
				gz->err = -EIO; /* fn failed: see s */
			end = true;
		} else if (n > 0) {
			gz->outlen[slot] = (size_t)n;
			gz->head++;
		}
		if (end)
			gz->done = true;
		pthread_cond_broadcast(&gz->cv);
		pthread_mutex_unlock(&gz->mu);
	}
	return NULL;
}

static void
gz_free(struct layer_source *s)
{
	struct layer_gunzip *gz = s->gz;
	pthread_mutex_destroy(&gz->mu);
	pthread_cond_destroy(&gz->cv);
	for (int i = 0; i < GZ_NBUF; i++)
		free(gz->out[i]);
	for (int i = 0; i < RD_NBUF; i++)
		free(gz->rin[i]);
	free(gz->in);
	free(gz);
	s->gz = NULL;
}

/* Starts the gzip stage; the first read's bytes (already counted) are
 * its first input. 0, or the negative errno of pthread_create. */
static int
gz_start(struct layer_source *s, size_t first)
{
	struct layer_gunzip *gz = xcalloc(1, sizeof(*gz));
	gz->in = xmalloc(LAYER_READ_BUF + 2);
	memcpy(gz->in, s->buf, first);
	gz->consumed = first;
	for (int i = 0; i < GZ_NBUF; i++)
		gz->out[i] = xmalloc(GZ_BUF);
	for (int i = 0; i < RD_NBUF; i++)
		gz->rin[i] = xmalloc(LAYER_READ_BUF);
	isal_inflate_init(&gz->st);
	gz->st.crc_flag = ISAL_GZIP;
	gz->st.next_in = gz->in;
	gz->st.avail_in = (uint32_t)first;
	pthread_mutex_init(&gz->mu, NULL);
	pthread_cond_init(&gz->cv, NULL);
	s->gz = gz;
	int rc = pthread_create(&gz->rthread, NULL, gz_read_thread, s);
	if (rc != 0) {
		gz_free(s);
		return -rc;
	}
	if ((rc = pthread_create(&gz->thread, NULL, gz_thread, s)) != 0) {
		pthread_mutex_lock(&gz->mu);
		gz->stop = true;
		pthread_cond_broadcast(&gz->cv);
		pthread_mutex_unlock(&gz->mu);
		pthread_join(gz->rthread, NULL);
		gz_free(s);
		return -rc;
	}
	return 0;
}

/* Stops and frees the gzip stage (after the walk, whatever its end). */
static void
gz_stop(struct layer_source *s)
{
	struct layer_gunzip *gz = s->gz;
	if (gz == NULL)
		return;
	pthread_mutex_lock(&gz->mu);
	gz->stop = true;
	pthread_cond_broadcast(&gz->cv);
	pthread_mutex_unlock(&gz->mu);
	pthread_join(gz->thread, NULL);
	pthread_join(gz->rthread, NULL);
	gz_free(s);
}

/* libarchive's read callback in gzip mode: the next inflated buffer, 0
 * at the end, or ARCHIVE_FATAL with the archive's error set. */
static ssize_t
gz_read(struct archive *a, struct layer_source *s, const void **buff)
{
	struct layer_gunzip *gz = s->gz;
	ssize_t n;

	pthread_mutex_lock(&gz->mu);
	if (gz->holding) {
		gz->holding = false;
		gz->tail++;
		pthread_cond_broadcast(&gz->cv);
	}
	while (gz->head == gz->tail && !gz->done)
		pthread_cond_wait(&gz->cv, &gz->mu);
	if (gz->head != gz->tail) {
		unsigned slot = (unsigned)(gz->tail % GZ_NBUF);
		*buff = gz->out[slot];
		n = (ssize_t)gz->outlen[slot];
		gz->holding = true;
		if (s->diff_md != NULL) {
			/* Ours until the next call: hashed unlocked. */
			pthread_mutex_unlock(&gz->mu);
			EVP_DigestUpdate(s->diff_md, *buff, (size_t)n);
			return n;
		}
	} else if (gz->err == -EINVAL) {
		/* libarchive may word it as a truncation: keep ours. */
		memcpy(s->gz_why, gz->why, sizeof(s->gz_why));
		archive_set_error(a, EINVAL, "%s", gz->why);
		n = ARCHIVE_FATAL;
	} else if (gz->err != 0) {
		layer_source_error(a, s);
		n = ARCHIVE_FATAL;
	} else {
		n = 0;
	}
	pthread_mutex_unlock(&gz->mu);
	return n;
}

/*
 * libarchive's read callback. The first read decides: a gzip stream
 * (magic 1f 8b) goes through the gzip stage, anything else (plain tar,
 * zstd) straight to libarchive, which detects its filter.
 */
static ssize_t
layer_source_read(struct archive *a, void *client, const void **buff)
{
	struct layer_source *s = client;
	ssize_t n;

	if (!s->started) {
		s->started = true;
		n = layer_source_fill(s, s->buf, LAYER_READ_BUF);
		if (n < 0) {
			layer_source_error(a, s);
			return ARCHIVE_FATAL;
		}
		if (n >= 2 && s->buf[0] == 0x1f && s->buf[1] == 0x8b &&
		    gz_start(s, (size_t)n) == 0)
			return gz_read(a, s, buff);
		*buff = s->buf;
		return n;
	}
	if (s->gz != NULL)
		return gz_read(a, s, buff);
	n = layer_source_fill(s, s->buf, LAYER_READ_BUF);
	if (n < 0) {
		layer_source_error(a, s);
		return ARCHIVE_FATAL;
	}
	*buff = s->buf;
	return n;
}

/* The error of a failed libarchive call: ours if the read callback
 * failed, else libarchive's own (corrupt or truncated input). */
static int
layer_archive_error(struct layer_walk *w, const char *what)
{
	gz_stop(&w->src); /* the inflate thread no longer touches src */
	if (w->src.over) {
		layer_fail(w, "more than %llu compressed bytes",
		    (unsigned long long)w->src.max);
		return -EFBIG;
	}
	if (w->src.io_errno != 0) {
		layer_fail(w, "read: %s", strerror(w->src.io_errno));
		return -EIO;
	}
	if (w->src.gz_why[0] != '\0') {
		layer_fail(w, "%s", w->src.gz_why);
		return -EINVAL;
	}
	const char *why = archive_error_string(w->a);
	layer_fail(w, "%s: %s", what, why ? why : "unknown libarchive error");
	return -EINVAL;
}

/* Whether the tar stream read so far plus more bytes stays in bounds. */
static int
layer_check_uncompressed(struct layer_walk *w, uint64_t more)
{
	la_int64_t pos = archive_filter_bytes(w->a, 0);
	uint64_t done = pos > 0 ? (uint64_t)pos : 0;
	uint64_t max = w->lim->max_uncompressed;
	if (done > max || more > max - done) {
		layer_fail(w,
		    "more than %llu bytes after decompression (%llu read, "
		    "%llu more declared): refused as a decompression bomb",
		    (unsigned long long)max, (unsigned long long)done,
		    (unsigned long long)more);
		return -EFBIG;
	}
	return 0;
}

/*
 * Normalises raw into *buf: drops leading "/", "./", empty and "."
 * components and a trailing '/'. "" is the root. -EINVAL for a ".."
 * component or a path longer than LAYER_MAX_PATH.
 */
static int
layer_normalise(struct layer_walk *w, const char *raw, char **buf,
    size_t *cap, const char *what)
{
	size_t len = strnlen(raw, LAYER_MAX_PATH + 1);
	if (len > LAYER_MAX_PATH) {
		layer_fail(w, "%s longer than %u bytes", what, LAYER_MAX_PATH);
		return -EINVAL;
	}
	if (*cap < len + 1) {
		*cap = len + 1 > 256 ? len + 1 : 256;
		free(*buf);
		*buf = xmalloc(*cap);
	}
	char *out = *buf;
	size_t o = 0;
	const char *p = raw;
	while (*p != '\0') {
		const char *slash = strchr(p, '/');
		size_t clen = slash ? (size_t)(slash - p) : strlen(p);
		if (clen == 2 && p[0] == '.' && p[1] == '.') {
			layer_fail(w, "%s has a \"..\" component", what);
			return -EINVAL;
		}
		if (clen > 0 && !(clen == 1 && p[0] == '.')) {
			if (o > 0)
				out[o++] = '/';
			memcpy(out + o, p, clen);
			o += clen;
		}
		p += clen;
		if (*p == '/')
			p++;
	}
	out[o] = '\0';
	return 0;
}

/* Skips the current entry's data, within the decompressed bound. */
static int
layer_skip(struct layer_walk *w, struct archive_entry *e)
{
	la_int64_t size = archive_entry_size_is_set(e) ?
	    archive_entry_size(e) : 0;
	int rc = layer_check_uncompressed(w, size > 0 ? (uint64_t)size : 0);
	if (rc != 0)
		return rc;
	if (archive_read_data_skip(w->a) != ARCHIVE_OK)
		return layer_archive_error(w, "skipping data");
	return layer_check_uncompressed(w, 0);
}

/* Reads the current entry, a wanted regular file, into pending. */
static int
layer_read_file(struct layer_walk *w, struct archive_entry *e,
    fileset *pending)
{
	unsigned char *data = NULL;
	int rc;

	if (!archive_entry_size_is_set(e) || archive_entry_size(e) < 0) {
		layer_fail(w, "regular file without a size");
		return -EINVAL;
	}
	uint64_t size = (uint64_t)archive_entry_size(e);
	if (size > FILESET_MAX_FILE) {
		layer_fail(w, "%llu bytes, more than the %u a cataloger reads",
		    (unsigned long long)size, FILESET_MAX_FILE);
		return -EFBIG;
	}
	if ((rc = layer_check_uncompressed(w, size)) != 0)
		return rc;
	data = xmalloc(size ? (size_t)size : 1);
	size_t got = 0;
	while (got < size) {
		la_ssize_t n = archive_read_data(w->a, data + got,
		    (size_t)size - got);
		if (n < 0) {
			rc = layer_archive_error(w, "reading data");
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got != size) {
		layer_fail(w, "data ends after %zu of %llu bytes", got,
		    (unsigned long long)size);
		rc = -EINVAL;
		goto out;
	}
	rc = fileset_put(pending, w->path, data, got);
	if (rc == -EFBIG)
		layer_fail(w, "the wanted files pass the fileset bound "
			      "(%u files, %u bytes)",
		    FILESET_MAX_FILES, FILESET_MAX_BYTES);
	else if (rc != 0)
		layer_fail(w, "cannot store: %s", strerror(-rc));
	if (rc == 0)
		rc = layer_check_uncompressed(w, 0);
out:
	free(data);
	return rc;
}

/* A hard link at a wanted path: a copy of its target if this layer
 * stored the target earlier, else nothing. */
static int
layer_link(struct layer_walk *w, const char *target, fileset *pending)
{
	int rc = layer_normalise(w, target, &w->link, &w->linkcap,
	    "hard link target");
	if (rc != 0)
		return rc;
	const struct fileset_file *t = fileset_get(pending, w->link);
	if (t == NULL)
		return 0;
	/* A private copy: fileset_put_kept may move what t points into. */
	unsigned char *copy = xmalloc(t->len ? t->len : 1);
	size_t len = t->len;
	memcpy(copy, t->data, len);
	rc = fileset_put_kept(pending, w->path, copy, len);
	free(copy);
	if (rc == -EFBIG)
		layer_fail(w, "the wanted files pass the fileset bound");
	else if (rc != 0)
		layer_fail(w, "cannot store: %s", strerror(-rc));
	return rc;
}

/*
 * Records that the layer removes w->path from the lower layers: exactly
 * (below false) or everything below it. Only a removal that can touch a
 * wanted file is kept: a fileset holds nothing else.
 */
static int
layer_walk_remove(struct layer_walk *w, bool below, bool wanted)
{
	if (below ? !fileset_wanted_below(w->path) : !wanted)
		return 0;
	if (layer_delta_remove(w->delta, w->path, below) == 0)
		return 0;
	layer_fail(w, "more than %d whiteouts and replaced paths of wanted "
		      "files",
	    LAYER_MAX_REMOVALS);
	return -EFBIG;
}

/* A whiteout or opaque marker; base points into w->path. */
static int
layer_whiteout(struct layer_walk *w, char *base)
{
	if (strcmp(base, opaque_name) == 0) {
		/* "D/.wh..wh..opq" -> D ("" for the root). */
		base[base > w->path ? -1 : 0] = '\0';
		return layer_walk_remove(w, true, false);
	}
	if (strncmp(base, wh_meta_prefix, sizeof(wh_meta_prefix) - 1) == 0)
		return 0; /* aufs metadata (.wh..wh.plnk, .wh..wh.aufs) */
	const char *victim = base + sizeof(wh_prefix) - 1;
	if (victim[0] == '\0' || strcmp(victim, ".") == 0 ||
	    strcmp(victim, "..") == 0) {
		layer_fail(w, "whiteout of \"%s\"", victim);
		return -EINVAL;
	}
	/* "D/.wh.NAME" -> "D/NAME", in place. */
	memmove(base, victim, strlen(victim) + 1);
	int rc = layer_walk_remove(w, false, fileset_wanted(w->path));
	if (rc == 0)
		rc = layer_walk_remove(w, true, false);
	return rc;
}

/* One entry whose header was just read. */
static int
layer_entry(struct layer_walk *w, struct archive_entry *e, fileset *pending)
{
	const char *raw = archive_entry_pathname(e);
	if (raw == NULL)
		raw = archive_entry_pathname_utf8(e);
	if (raw == NULL) {
		layer_fail(w, "entry without a name");
		return -EINVAL;
	}
	layer_show(w, raw);
	int rc = layer_normalise(w, raw, &w->path, &w->pathcap, "path");
	if (rc != 0)
		return rc;
	if (w->path[0] == '\0')
		return layer_skip(w, e); /* the root directory itself */

	char *slash = strrchr(w->path, '/');
	char *base = slash ? slash + 1 : w->path;
	if (strncmp(base, wh_prefix, sizeof(wh_prefix) - 1) == 0) {
		/* Skip first: the whiteout rewrites w->path. */
		if ((rc = layer_skip(w, e)) != 0)
			return rc;
		return layer_whiteout(w, base);
	}

	/* This entry replaces whatever lower layers and earlier entries of
	 * this layer had at its path; a non-directory also hides what they
	 * had below it. */
	const char *hardlink = archive_entry_hardlink(e);
	bool dir = hardlink == NULL && archive_entry_filetype(e) == AE_IFDIR;
	bool wanted = fileset_wanted(w->path);
	if ((rc = layer_walk_remove(w, false, wanted)) != 0)
		return rc;
	fileset_remove(pending, w->path);
	if (!dir) {
		if ((rc = layer_walk_remove(w, true, false)) != 0)
			return rc;
		fileset_remove_below(pending, w->path);
	}
	if (!wanted)
		return layer_skip(w, e);
	if (hardlink != NULL) {
		if ((rc = layer_link(w, hardlink, pending)) != 0)
			return rc;
		return layer_skip(w, e);
	}
	if (archive_entry_filetype(e) == AE_IFREG)
		return layer_read_file(w, e, pending);
	/* A symlink (never followed), directory or device: nothing kept. */
	return layer_skip(w, e);
}

/* ---- deltas ------------------------------------------------------- */

struct layer_removal {
	char *path;
	bool below; /* everything strictly below path, not path itself */
};

struct layer_delta {
	struct layer_removal *rm; /* in the order the walk met them */
	size_t nrm, caprm;	  /* nrm <= LAYER_MAX_REMOVALS */
	fileset *files;		  /* the layer's own wanted files */
	struct layer_stats st;
};

layer_delta *
layer_delta_new(void)
{
	layer_delta *d = xcalloc(1, sizeof(*d));
	d->files = fileset_new();
	return d;
}

void
layer_delta_free(layer_delta *d)
{
	if (d == NULL)
		return;
	for (size_t i = 0; i < d->nrm; i++)
		free(d->rm[i].path);
	free(d->rm);
	fileset_free(d->files);
	free(d);
}

int
layer_delta_remove(layer_delta *d, const char *path, bool below)
{
	/* A layer repeats itself (a whiteout then the new file): one is
	 * enough when the last one is the same. */
	if (d->nrm > 0 && d->rm[d->nrm - 1].below == below &&
	    strcmp(d->rm[d->nrm - 1].path, path) == 0)
		return 0;
	if (d->nrm >= LAYER_MAX_REMOVALS)
		return -EFBIG;
	if (d->nrm == d->caprm) {
		d->caprm = d->caprm ? d->caprm * 2 : 16;
		d->rm = xreallocarray(d->rm, d->caprm, sizeof(d->rm[0]));
	}
	d->rm[d->nrm].path = xstrdup(path);
	d->rm[d->nrm].below = below;
	d->nrm++;
	return 0;
}

size_t
layer_delta_nremovals(const layer_delta *d)
{
	return d->nrm;
}

const char *
layer_delta_removal(const layer_delta *d, size_t i, bool *below)
{
	*below = d->rm[i].below;
	return d->rm[i].path;
}

fileset *
layer_delta_files(layer_delta *d)
{
	return d->files;
}

const fileset *
layer_delta_files_const(const layer_delta *d)
{
	return d->files;
}

struct layer_stats *
layer_delta_stats(layer_delta *d)
{
	return &d->st;
}

const struct layer_stats *
layer_delta_stats_const(const layer_delta *d)
{
	return &d->st;
}

bool
layer_stats_fit(const struct layer_stats *st, const struct layer_limits *lim)
{
	return st->compressed <= lim->max_compressed &&
	    st->uncompressed <= lim->max_uncompressed &&
	    st->entries <= lim->max_entries;
}

struct layer_merge {
	const char *name;
	fileset *fs;
	int rc;
	char *err;
	size_t errlen;
};

static void
layer_merge_one(void *ctx, const struct fileset_file *f)
{
	struct layer_merge *m = ctx;
	char shown[LAYER_SHOWN + 8];
	if (m->rc != 0)
		return;
	m->rc = fileset_put_kept(m->fs, f->path, f->data, f->len);
	if (m->rc != 0) {
		struct layer_walk w = { .name = m->name };
		layer_show(&w, f->path);
		memcpy(shown, w.shown, sizeof(shown));
		errbuf_set(m->err, m->errlen, "layer %s: entry \"%s\": the "
		    "image's wanted files pass the fileset bound (%u files, "
		    "%u bytes)", m->name, shown, FILESET_MAX_FILES,
		    FILESET_MAX_BYTES);
	}
}

int
layer_delta_apply(fileset *fs, const layer_delta *d, const char *name,
    char *err, size_t errlen)
{
	for (size_t i = 0; i < d->nrm; i++) {
		if (d->rm[i].below)
			fileset_remove_below(fs, d->rm[i].path);
		else
			fileset_remove(fs, d->rm[i].path);
	}
	struct layer_merge m = { name ? name : "(unnamed)", fs, 0, err,
		errlen };
	fileset_foreach(d->files, "", layer_merge_one, &m);
	return m.rc;
}

/* ---- the walk ------------------------------------------------------- */

/* After the walk of a gzip layer: the rest of the inflated stream
 * through the hash (libarchive stops at the tar's end marker). false
 * when it cannot be read to its end. */
static bool
layer_drain_diff(struct layer_walk *w)
{
	const void *buf;
	for (;;) {
		ssize_t n = gz_read(w->a, &w->src, &buf);
		if (n == 0)
			return true;
		if (n < 0)
			return false;
	}
}

int
layer_read(layer_delta *d, layer_read_fn fn, void *ctx, const char *name,
    const struct layer_limits *lim, struct layer_read_info *info, char *err,
    size_t errlen)
{
	struct layer_limits deflim;
	struct layer_walk w;
	int rc = 0;

	if (lim == NULL) {
		layer_limits_default(&deflim);
		lim = &deflim;
	}
	memset(&w, 0, sizeof(w));
	w.delta = d;
	w.name = name ? name : "(unnamed)";
	w.lim = lim;
	w.err = err;
	w.errlen = errlen;
	w.src.fn = fn;
	w.src.ctx = ctx;
	w.src.max = lim->max_compressed;
	errbuf_set(err, errlen, "%s", "");
	if (info != NULL) {
		info->comp = LAYER_COMP_OTHER;
		info->diff_known = false;
	}

	w.a = archive_read_new();
	if (w.a == NULL) {
		layer_fail(&w, "archive_read_new failed");
		return -ENOMEM;
	}
	w.src.buf = xmalloc(LAYER_READ_BUF);
	if (info != NULL && info->want_diff) {
		w.src.diff_md = EVP_MD_CTX_new();
		if (w.src.diff_md == NULL ||
		    EVP_DigestInit_ex(w.src.diff_md, EVP_sha256(), NULL) != 1) {
			EVP_MD_CTX_free(w.src.diff_md);
			w.src.diff_md = NULL; /* no diffID: not cached */
		}
	}

	/* ARCHIVE_WARN from a filter means libarchive would run an external
	 * program (zstd built without libzstd): refused. */
	if (archive_read_support_filter_none(w.a) != ARCHIVE_OK ||
	    archive_read_support_filter_gzip(w.a) != ARCHIVE_OK ||
	    archive_read_support_filter_zstd(w.a) != ARCHIVE_OK ||
	    archive_read_support_format_tar(w.a) != ARCHIVE_OK ||
	    archive_read_support_format_empty(w.a) != ARCHIVE_OK) {
		const char *why = archive_error_string(w.a);
		layer_fail(&w, "libarchive lacks gzip, zstd or tar support: %s",
		    why ? why : "?");
		rc = -ENOTSUP;
		goto out;
	}
	if (archive_read_open(w.a, &w.src, NULL, layer_source_read, NULL) !=
	    ARCHIVE_OK) {
		rc = layer_archive_error(&w, "opening the tar stream");
		goto out;
	}

	fileset *pending = layer_delta_files(d);
	uint64_t entries = 0;
	for (;;) {
		struct archive_entry *e;
		int r = archive_read_next_header(w.a, &e);
		if (r == ARCHIVE_EOF)
			break;
		/* WARN: a name in another charset, a bad pax attribute; the
		 * entry itself is usable. RETRY (skipped garbage) and FATAL
		 * are corruption. */
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
			rc = layer_archive_error(&w, entries == 0 ?
				"reading the first header" :
				"reading the header after it");
			goto out;
		}
		if (lim->cancel != NULL && atomic_load(lim->cancel) != 0) {
			w.shown[0] = '\0';
			layer_fail(&w, "cancelled after %llu entries",
			    (unsigned long long)entries);
			rc = -ECANCELED;
			goto out;
		}
		if (++entries > lim->max_entries) {
			w.shown[0] = '\0';
			layer_fail(&w, "more than %llu entries",
			    (unsigned long long)lim->max_entries);
			rc = -EFBIG;
			goto out;
		}
		if ((rc = layer_entry(&w, e, pending)) != 0)
			goto out;
	}
	struct layer_stats *st = layer_delta_stats(d);
	la_int64_t pos = archive_filter_bytes(w.a, 0);
	st->uncompressed = pos > 0 ? (uint64_t)pos : 0;
	st->entries = entries;
	if (info != NULL) {
		if (w.src.gz != NULL)
			info->comp = LAYER_COMP_GZIP;
		else if (archive_filter_code(w.a, 0) == ARCHIVE_FILTER_NONE)
			info->comp = LAYER_COMP_PLAIN;
		if (info->comp == LAYER_COMP_GZIP && w.src.diff_md != NULL &&
		    layer_drain_diff(&w)) {
			unsigned int dl = 0;
			info->diff_known = EVP_DigestFinal_ex(w.src.diff_md,
			    info->diff, &dl) == 1 && dl == DIGEST_LEN;
		}
	}
	/* Read by the read thread: stable only after gz_stop. */
	gz_stop(&w.src);
	st->compressed = w.src.total;
out:
	archive_read_free(w.a);
	gz_stop(&w.src);
	EVP_MD_CTX_free(w.src.diff_md);
	free(w.src.buf);
	free(w.path);
	free(w.link);
	return rc;
}

int
layer_apply(fileset *fs, layer_read_fn fn, void *ctx, const char *name,
    const struct layer_limits *lim, char *err, size_t errlen)
{
	layer_delta *d = layer_delta_new();
	int rc = layer_read(d, fn, ctx, name, lim, NULL, err, errlen);
	if (rc == 0)
		rc = layer_delta_apply(fs, d, name, err, errlen);
	layer_delta_free(d);
	return rc;
}

static ssize_t
layer_fd_read(void *ctx, void *buf, size_t len)
{
	int fd = *(int *)ctx;
	for (;;) {
		ssize_t n = read(fd, buf, len);
		if (n >= 0)
			return n;
		if (errno != EINTR)
			return -errno;
	}
}

int
layer_apply_file(fileset *fs, const char *path,
    const struct layer_limits *lim, char *err, size_t errlen)
{
	struct layer_limits deflim;
	struct stat st;
	int fd = -1, rc;

	if (lim == NULL) {
		layer_limits_default(&deflim);
		lim = &deflim;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		errbuf_set(err, errlen, "layer %s: open: %s", path,
		    strerror(errno));
		return -EIO;
	}
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    (uint64_t)st.st_size > lim->max_compressed) {
		errbuf_set(err, errlen,
		    "layer %s: %lld bytes, more than %llu compressed", path,
		    (long long)st.st_size,
		    (unsigned long long)lim->max_compressed);
		rc = -EFBIG;
		goto out;
	}
	rc = layer_apply(fs, layer_fd_read, &fd, path, lim, err, errlen);
out:
	close(fd);
	return rc;
}
