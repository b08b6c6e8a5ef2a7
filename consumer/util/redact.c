/*
 * redact: see redact.h. The secret names are a substring list, not a
 * table of librdkafka's properties, so that properties of newer
 * librdkafka releases (and Kafka's own names for them) are covered too;
 * a few harmless names match as well ("enable.ssl.certificate.verification"
 * does not; "sasl.oauthbearer.token.endpoint.url" does, and is shown as
 * REDACTED, which is the safe side).
 *
 * redact_text runs on every log value: it looks for '=' first and
 * allocates only when it redacts, so a line without "NAME=" costs one
 * strchr. Any thread may call it.
 */
#include "util/redact.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "util/xmalloc.h"

static const char *const secret_words[] = { "password", "secret",
	"sasl.jaas.config", "ssl.key", "token" };

static bool
has_word_n(const char *name, size_t len, const char *w)
{
	size_t wl = strlen(w);

	for (size_t i = 0; i + wl <= len; i++)
		if (strncasecmp(name + i, w, wl) == 0)
			return true;
	return false;
}

bool
redact_is_secret_n(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(secret_words) / sizeof(secret_words[0]);
	    i++)
		if (has_word_n(name, len, secret_words[i]))
			return true;
	return false;
}

bool
redact_is_secret(const char *name)
{
	return name != NULL && redact_is_secret_n(name, strlen(name));
}

static bool
name_char(char c)
{
	return isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-';
}

/* The end of the value that starts at v. */
static const char *
value_end(const char *v)
{
	if (*v == '"' || *v == '\'') {
		const char *q = strchr(v + 1, *v);
		return q != NULL ? q + 1 : v + strlen(v);
	}
	while (*v != '\0' && *v != ',' && *v != ';' &&
	    !isspace((unsigned char)*v))
		v++;
	return v;
}

char *
redact_text(const char *text)
{
	const char *eq = text != NULL ? strchr(text, '=') : NULL;
	char *out = NULL;
	size_t len = 0, cap = 0;
	const char *copied = text; /* text before this is in out */

	for (; eq != NULL; eq = strchr(eq + 1, '=')) {
		const char *n = eq;
		while (n > copied && name_char(n[-1]))
			n--;
		if (n == eq || !redact_is_secret_n(n, (size_t)(eq - n)))
			continue;
		const char *end = value_end(eq + 1);
		size_t keep = (size_t)(eq + 1 - copied);
		size_t need = len + keep + sizeof(REDACTED) + strlen(end) + 1;
		if (need > cap) {
			cap = need;
			out = xrealloc(out, cap);
		}
		memcpy(out + len, copied, keep);
		len += keep;
		memcpy(out + len, REDACTED, sizeof(REDACTED) - 1);
		len += sizeof(REDACTED) - 1;
		copied = end;
		if (*end == '\0')
			break;
		eq = end - 1;
	}
	if (out == NULL)
		return NULL;
	size_t rest = strlen(copied);
	out = xrealloc(out, len + rest + 1);
	memcpy(out + len, copied, rest + 1);
	return out;
}

void
redact_value(const char *s, const char *value, char *buf, size_t buflen)
{
	size_t vl = value != NULL ? strlen(value) : 0;
	size_t o = 0;

	if (buflen == 0)
		return;
	while (*s != '\0' && o + 1 < buflen) {
		if (vl > 0 && strncmp(s, value, vl) == 0) {
			size_t n = sizeof(REDACTED) - 1;
			if (n > buflen - 1 - o)
				n = buflen - 1 - o;
			memcpy(buf + o, REDACTED, n);
			o += n;
			s += vl;
		} else {
			buf[o++] = *s++;
		}
	}
	buf[o] = '\0';
}
