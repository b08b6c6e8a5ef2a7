/*
 * log: see log.h. Rate limit: warnings and errors with the same message
 * and the same "error" field (other fields, such as offsets, may differ)
 * count as repeats. Lines are built in a stack buffer (32 KiB; longer values
 * values are cut after LOG_VALUE bytes with "...") and written with one write(2), so lines of several
 * threads never interleave. The rate limit keeps a hash of the last few
 * warning/error lines (message and fields, timestamp excluded) with the
 * second they were printed: a repeat within the same second only bumps a
 * counter, reported with the next line of that kind.
 *
 * Secrets: a field whose name is secret (util/redact.h: "password",
 * "token", ...) is written as "[redacted]", and in every value and
 * message a secret "NAME=VALUE" (a librdkafka property echoed in an error)
 * has its value redacted. No line shows a password, whoever logs it.
 */
#include "service/log.h"

#include "util/clock.h"
#include "util/redact.h"

#include <pthread.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE 32768
#define LOG_SLOTS 64
#define LOG_VALUE 1500 /* bytes of one value shown; longer ones end "..." */

static enum log_level log_min = LOG_INFO;
static enum log_format log_fmt = LOG_JSON;
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t log_dropped;

struct log_slot {
	uint64_t hash;
	int64_t second;
	uint64_t repeats; /* suppressed since printed */
};
static struct log_slot log_slots[LOG_SLOTS];

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void
log_setup(enum log_level level, enum log_format format)
{
	log_min = level;
	log_fmt = format;
}

int
log_enabled(enum log_level level)
{
	return level >= log_min;
}

uint64_t
log_suppressed(void)
{
	pthread_mutex_lock(&log_mu);
	uint64_t n = log_dropped;
	pthread_mutex_unlock(&log_mu);
	return n;
}

struct line {
	char buf[LOG_LINE];
	size_t len;
	bool cut;
};

static void
put(struct line *l, const char *s, size_t n)
{
	if (l->len + n > LOG_LINE - 8) {
		n = LOG_LINE - 8 > l->len ? LOG_LINE - 8 - l->len : 0;
		l->cut = true;
	}
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

static void
puts_(struct line *l, const char *s)
{
	put(l, s, strlen(s));
}

/* A JSON string body (without quotes), or a text value (quoted when it
 * has spaces or quotes). */
static void
put_value(struct line *l, const char *v, bool json)
{
	char *red = v != NULL ? redact_text(v) : NULL;

	if (v == NULL)
		v = "";
	if (red != NULL)
		v = red;
	bool quote = !json && (v[0] == '\0' || strpbrk(v, " \"=\t\n") != NULL);
	if (quote)
		put(l, "\"", 1);
	size_t shown = 0;
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		char esc[8];
		if (++shown > LOG_VALUE) {
			put(l, "...", 3);
			break;
		}
		if (*p == '"' || *p == '\\') {
			esc[0] = '\\';
			esc[1] = (char)*p;
			put(l, esc, 2);
		} else if (*p < 0x20) {
			if (*p == '\n')
				put(l, "\\n", 2);
			else {
				snprintf(esc, sizeof(esc), "\\u%04x", *p);
				put(l, esc, 6);
			}
		} else {
			put(l, (const char *)p, 1);
		}
		if (l->cut)
			break;
	}
	if (quote)
		put(l, "\"", 1);
	free(red);
}

static uint64_t
fnv(uint64_t h, const char *s)
{
	for (; s && *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return (h ^ 0xff) * 0x100000001b3ULL;
}

void
log_kv(enum log_level level, const char *msg, ...)
{
	if (level < log_min)
		return;
	bool json = log_fmt == LOG_JSON;
	int64_t now = clock_wall_ms();
	uint64_t repeats = 0;

	if (level >= LOG_WARN) {
		va_list ap;
		uint64_t h = fnv(0xcbf29ce484222325ULL, msg);
		va_start(ap, msg);
		for (const char *k; (k = va_arg(ap, const char *)) != NULL;) {
			const char *v = va_arg(ap, const char *);
			if (strcmp(k, "error") == 0)
				h = fnv(h, v);
		}
		va_end(ap);
		pthread_mutex_lock(&log_mu);
		struct log_slot *s = &log_slots[h % LOG_SLOTS];
		if (s->hash == h && s->second == now / 1000) {
			s->repeats++;
			log_dropped++;
			pthread_mutex_unlock(&log_mu);
			return;
		}
		if (s->hash == h)
			repeats = s->repeats;
		s->hash = h;
		s->second = now / 1000;
		s->repeats = 0;
		pthread_mutex_unlock(&log_mu);
	}

	struct line l = { .len = 0, .cut = false };
	char tbuf[64];
	clock_format(now, tbuf, sizeof(tbuf));
	if (json) {
		puts_(&l, "{\"ts\":\"");
		puts_(&l, tbuf);
		puts_(&l, "\",\"level\":\"");
		puts_(&l, level_names[level]);
		puts_(&l, "\",\"msg\":\"");
		put_value(&l, msg, true);
		puts_(&l, "\"");
	} else {
		puts_(&l, tbuf);
		puts_(&l, " ");
		puts_(&l, level_names[level]);
		puts_(&l, " ");
		put_value(&l, msg, false);
	}
	va_list ap;
	va_start(ap, msg);
	for (const char *k; (k = va_arg(ap, const char *)) != NULL;) {
		const char *v = va_arg(ap, const char *);
		if (redact_is_secret(k))
			v = REDACTED;
		if (json) {
			puts_(&l, ",\"");
			put_value(&l, k, true);
			puts_(&l, "\":\"");
			put_value(&l, v, true);
			puts_(&l, "\"");
		} else {
			puts_(&l, " ");
			puts_(&l, k);
			puts_(&l, "=");
			put_value(&l, v, false);
		}
	}
	va_end(ap);
	if (repeats > 0) {
		char r[48];
		snprintf(r, sizeof(r), json ? ",\"repeated\":%llu" :
					      " repeated=%llu",
		    (unsigned long long)repeats);
		puts_(&l, r);
	}
	if (l.cut)
		memcpy(l.buf + l.len, "...", 3), l.len += 3;
	if (json)
		l.buf[l.len++] = '}';
	l.buf[l.len++] = '\n';
	size_t off = 0;
	while (off < l.len) {
		ssize_t w = write(2, l.buf + off, l.len - off);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
}
