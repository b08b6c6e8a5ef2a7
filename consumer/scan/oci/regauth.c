/*
 * regauth: registry credentials, challenges and the token cache.
 *
 * Credentials. A Docker config.json ("auths": {"KEY": {"auth":
 * base64("user:pass")} or {"username", "password"} or
 * {"identitytoken"}}) is read whole (at most REGAUTH_MAX_FILE) at every
 * lookup: it is small, and an operator who fixes it sees the next retry
 * use it. KEY may be a host, host:port, or a URL
 * ("https://index.docker.io/v1/"); it is reduced to host[:port] and
 * Docker Hub's aliases (index.docker.io, registry-1.docker.io) to
 * docker.io before it is compared. Credential helpers (credsStore) are
 * not run: sbomd starts no program to get a secret.
 *
 * Tokens. A Bearer token is cached under "registry scope" until its
 * expires_in (less 10 s of margin) passes, at most REGAUTH_MAX_TOKENS of
 * them; the oldest goes when full. A token the registry refuses is
 * dropped. Concurrency: the cache is shared by every worker and locked
 * by its mutex; lookups hold it only to copy a string.
 */
#include "scan/oci/regauth.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/clock.h"
#include "util/errbuf.h"
#include "util/xmalloc.h"

void
regauth_normalise_host(const char *name, char *out, size_t outlen)
{
	if (strcmp(name, "index.docker.io") == 0 ||
	    strcmp(name, "registry-1.docker.io") == 0 ||
	    strcmp(name, "registry.hub.docker.com") == 0)
		name = "docker.io";
	snprintf(out, outlen, "%s", name);
}

/* An auths key reduced to host[:port], normalised. */
static void
key_host(const char *key, char *out, size_t outlen)
{
	char buf[512];
	const char *p = strstr(key, "://");
	p = p ? p + 3 : key;
	snprintf(buf, sizeof(buf), "%s", p);
	char *slash = strchr(buf, '/');
	if (slash != NULL)
		*slash = '\0';
	regauth_normalise_host(buf, out, outlen);
}

static int
read_file(const char *path, char **out, size_t *len, char *err,
    size_t errlen)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	if (f == NULL) {
		if (errno == ENOENT || errno == ENOTDIR)
			return -ENOENT;
		errbuf_set(err, errlen, "registry auth file %s: %s", path,
		    strerror(errno));
		return -EINVAL;
	}
	buf = xmalloc(REGAUTH_MAX_FILE + 1);
	n = fread(buf, 1, REGAUTH_MAX_FILE + 1, f);
	fclose(f);
	if (n > REGAUTH_MAX_FILE) {
		free(buf);
		errbuf_set(err, errlen, "registry auth file %s: larger than "
		    "%u bytes", path, REGAUTH_MAX_FILE);
		return -EFBIG;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

/* Decodes base64 "user:pass" into c. */
static int
decode_auth(const char *b64, struct regauth_cred *c)
{
	size_t n = strlen(b64);
	if (n == 0 || n > 4096)
		return -EINVAL;
	unsigned char *buf = xmalloc(n + 4);
	int m = EVP_DecodeBlock(buf, (const unsigned char *)b64, (int)n);
	if (m < 0) {
		free(buf);
		return -EINVAL;
	}
	/* EVP_DecodeBlock counts the padding's zero bytes. */
	while (m > 0 && n > 0 && b64[n - 1] == '=') {
		m--;
		n--;
	}
	buf[m] = '\0';
	char *colon = strchr((char *)buf, ':');
	int rc = -EINVAL;
	if (colon != NULL && (size_t)(colon - (char *)buf) < sizeof(c->user) &&
	    strlen(colon + 1) < sizeof(c->pass)) {
		*colon = '\0';
		snprintf(c->user, sizeof(c->user), "%s", (char *)buf);
		snprintf(c->pass, sizeof(c->pass), "%s", colon + 1);
		rc = 0;
	}
	OPENSSL_cleanse(buf, n + 4);
	free(buf);
	return rc;
}

int
regauth_lookup(const char *path, const char *name, struct regauth_cred *c,
    char *err, size_t errlen)
{
	char def[4096], host[512], want[512];
	char *buf = NULL;
	size_t len = 0;
	json_t *root = NULL;
	json_error_t je;
	int rc;

	memset(c, 0, sizeof(*c));
	if (path == NULL) {
		const char *dc = getenv("DOCKER_CONFIG");
		const char *home = getenv("HOME");
		if (dc != NULL && dc[0] != '\0')
			snprintf(def, sizeof(def), "%s/config.json", dc);
		else if (home != NULL && home[0] != '\0')
			snprintf(def, sizeof(def), "%s/.docker/config.json",
			    home);
		else
			return -ENOENT;
		path = def;
	}
	if (path[0] == '\0')
		return -ENOENT;
	if ((rc = read_file(path, &buf, &len, err, errlen)) != 0)
		return rc;
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	if (!json_is_object(root)) {
		errbuf_set(err, errlen, "registry auth file %s: not a JSON "
		    "object (%s)", path, root ? "" : je.text);
		rc = -EINVAL;
		goto out;
	}
	const json_t *auths = json_object_get(root, "auths");
	if (auths != NULL && !json_is_object(auths)) {
		errbuf_set(err, errlen, "registry auth file %s: auths is not "
		    "an object", path);
		rc = -EINVAL;
		goto out;
	}
	regauth_normalise_host(name, want, sizeof(want));
	rc = -ENOENT;
	const char *key;
	const json_t *v;
	json_object_foreach((json_t *)auths, key, v) {
		key_host(key, host, sizeof(host));
		if (strcmp(host, want) != 0 || !json_is_object(v))
			continue;
		const char *a = json_string_value(json_object_get(v, "auth"));
		const char *u = json_string_value(json_object_get(v,
		    "username"));
		const char *p = json_string_value(json_object_get(v,
		    "password"));
		const char *it = json_string_value(json_object_get(v,
		    "identitytoken"));
		if (it != NULL && it[0] != '\0' &&
		    strlen(it) < sizeof(c->identity_token))
			snprintf(c->identity_token, sizeof(c->identity_token),
			    "%s", it);
		if (a != NULL && a[0] != '\0') {
			if (decode_auth(a, c) != 0) {
				errbuf_set(err, errlen, "registry auth file "
				    "%s: auths.\"%.200s\".auth is not base64 "
				    "of user:password", path, key);
				rc = -EINVAL;
				goto out;
			}
		} else if (u != NULL && p != NULL) {
			snprintf(c->user, sizeof(c->user), "%s", u);
			snprintf(c->pass, sizeof(c->pass), "%s", p);
		} else if (c->identity_token[0] == '\0') {
			continue;
		}
		rc = 0;
		break;
	}
out:
	json_decref(root);
	if (buf != NULL) {
		OPENSSL_cleanse(buf, len);
		free(buf);
	}
	return rc;
}

/* Copies the value of param (quoted or not) after p into out. */
static const char *
param_value(const char *p, char *out, size_t outlen)
{
	size_t n = 0;
	if (*p == '"') {
		p++;
		while (*p != '\0' && *p != '"') {
			if (*p == '\\' && p[1] != '\0')
				p++;
			if (n + 1 < outlen)
				out[n++] = *p;
			p++;
		}
		if (*p == '"')
			p++;
	} else {
		while (*p != '\0' && *p != ',' && *p != ' ') {
			if (n + 1 < outlen)
				out[n++] = *p;
			p++;
		}
	}
	if (outlen > 0)
		out[n] = '\0';
	return p;
}

void
regauth_challenge_parse(const char *v, struct regauth_challenge *ch)
{
	memset(ch, 0, sizeof(*ch));
	while (*v == ' ')
		v++;
	if (strncasecmp(v, "Basic", 5) == 0 && (v[5] == '\0' || v[5] == ' '))
		ch->scheme = REGAUTH_BASIC;
	else if (strncasecmp(v, "Bearer", 6) == 0 &&
	    (v[6] == '\0' || v[6] == ' '))
		ch->scheme = REGAUTH_BEARER;
	else
		return;
	const char *p = strchr(v, ' ');
	while (p != NULL && *p != '\0') {
		while (*p == ' ' || *p == ',')
			p++;
		const char *eq = strchr(p, '=');
		if (eq == NULL)
			break;
		size_t kl = (size_t)(eq - p);
		char tmp[512];
		char *dst = tmp;
		size_t dl = sizeof(tmp);
		if (kl == 5 && strncasecmp(p, "realm", 5) == 0)
			dst = ch->realm, dl = sizeof(ch->realm);
		else if (kl == 7 && strncasecmp(p, "service", 7) == 0)
			dst = ch->service, dl = sizeof(ch->service);
		else if (kl == 5 && strncasecmp(p, "scope", 5) == 0)
			dst = ch->scope, dl = sizeof(ch->scope);
		p = param_value(eq + 1, dst, dl);
	}
}

void
regauth_tokens_init(struct regauth_tokens *t)
{
	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->mu, NULL);
}

static void
slot_free(struct regauth_token *s)
{
	free(s->key);
	if (s->token != NULL) {
		OPENSSL_cleanse(s->token, strlen(s->token));
		free(s->token);
	}
	memset(s, 0, sizeof(*s));
}

void
regauth_tokens_clear(struct regauth_tokens *t)
{
	pthread_mutex_lock(&t->mu);
	for (size_t i = 0; i < REGAUTH_MAX_TOKENS; i++)
		slot_free(&t->slot[i]);
	pthread_mutex_unlock(&t->mu);
}

void
regauth_tokens_fini(struct regauth_tokens *t)
{
	regauth_tokens_clear(t);
	pthread_mutex_destroy(&t->mu);
}

int
regauth_tokens_get(struct regauth_tokens *t, const char *key, char *buf,
    size_t buflen)
{
	int64_t now = clock_mono_ms();
	int rc = -ENOENT;

	pthread_mutex_lock(&t->mu);
	for (size_t i = 0; i < REGAUTH_MAX_TOKENS; i++) {
		struct regauth_token *s = &t->slot[i];
		if (s->key == NULL || strcmp(s->key, key) != 0)
			continue;
		if (s->expires_ms <= now) {
			slot_free(s);
			break;
		}
		if (strlen(s->token) < buflen) {
			snprintf(buf, buflen, "%s", s->token);
			rc = 0;
		}
		break;
	}
	pthread_mutex_unlock(&t->mu);
	return rc;
}

void
regauth_tokens_put(struct regauth_tokens *t, const char *key,
    const char *token, int64_t ttl_ms)
{
	int64_t now = clock_mono_ms();
	struct regauth_token *victim = NULL;

	if (ttl_ms <= 0 || strlen(token) >= REGAUTH_MAX_TOKEN)
		return;
	pthread_mutex_lock(&t->mu);
	for (size_t i = 0; i < REGAUTH_MAX_TOKENS; i++) {
		struct regauth_token *s = &t->slot[i];
		if (s->key != NULL && strcmp(s->key, key) == 0) {
			victim = s;
			break;
		}
		if (victim == NULL || s->key == NULL ||
		    (victim->key != NULL && s->added < victim->added))
			if (victim == NULL || victim->key != NULL)
				victim = s;
	}
	slot_free(victim);
	victim->key = xstrdup(key);
	victim->token = xstrdup(token);
	victim->expires_ms = now + ttl_ms;
	victim->added = ++t->seq;
	pthread_mutex_unlock(&t->mu);
}

void
regauth_tokens_drop(struct regauth_tokens *t, const char *key)
{
	pthread_mutex_lock(&t->mu);
	for (size_t i = 0; i < REGAUTH_MAX_TOKENS; i++)
		if (t->slot[i].key != NULL && strcmp(t->slot[i].key, key) == 0)
			slot_free(&t->slot[i]);
	pthread_mutex_unlock(&t->mu);
}
