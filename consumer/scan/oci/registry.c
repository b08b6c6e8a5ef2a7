/*
 * registry: the OCI distribution client (libcurl). A pull is: the
 * manifest by tag or digest (an index is resolved to the manifest of the
 * query's platform, or the one whose config is the image ID), the config
 * blob, then every layer blob streamed through blob_apply_layer into the
 * fileset. docs/architecture.md, "The registry client", has the picture.
 *
 * Streaming, a pull model. layer_apply (libarchive) pulls bytes through a
 * read callback; libcurl pushes them through a write callback. They meet
 * in one buffer per transfer, with no thread and no pipe: each transfer
 * has its own curl multi handle, driven from inside the read callback
 * (xfer_read: curl_multi_perform, then curl_multi_poll while the buffer
 * is empty). When the buffer cannot take a chunk, the write callback
 * pauses the transfer (CURL_WRITEFUNC_PAUSE) and xfer_read resumes it
 * once the buffer is drained. So a layer occupies XFER_BUF (256 KiB)
 * here plus layer_apply's own buffers, whatever its size; the bytes are
 * hashed as they pass (blob.c) and a mismatch fails the layer, naming
 * the blob, before the image is used.
 *
 * Bounds. Manifests, indexes and configs are read whole, at most
 * IMAGESTORE_MAX_JSON bytes (a Content-Length over it fails before a
 * byte is read); a layer is at most its descriptor's size (more is
 * corruption) and layer_limits.max_compressed; at most
 * IMAGESTORE_MAX_LAYERS layers, REGISTRY_MAX_VISITS manifests read per
 * index, indexes IMAGESTORE_MAX_DEPTH deep, REGISTRY_MAX_REDIRECTS
 * redirects per request. scan.registry_timeout bounds connecting and any
 * stretch with no byte received (curl's low-speed check, which skips
 * paused transfers), and whole JSON and token requests; scan.timeout
 * bounds the scan as a whole (its cancel flag is looked at between
 * every read of the network).
 *
 * Redirects are followed here, not by curl: the Authorization header
 * goes only to the scheme, host and port of the registry endpoint (blob
 * storage elsewhere gets none), and plain http only to hosts listed in
 * scan.registry_insecure_hosts.
 *
 * Authentication: a cached Bearer token for the repository's pull scope
 * is sent up front; otherwise the first 401's challenge says what to do:
 * Basic (credentials from the auth file) or Bearer (a token from the
 * realm, asked with the credentials, an identity token, or none). One
 * new challenge per request; a second 401 is -EACCES.
 *
 * Endpoints: the mirrors of the reference's registry
 * (scan.registry_mirrors) in order, then the registry itself. A mirror
 * that fails before a layer was applied hands over to the next endpoint.
 *
 * Concurrency: the registry object is read-only after registry_new but
 * for its token cache (locked, regauth.c). Each pull is on one thread.
 */
#include "scan/oci/registry.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "scan/oci/imagestore_int.h"
#include "scan/oci/regauth.h"
#include "util/clock.h"
#include "util/errbuf.h"
#include "util/xmalloc.h"

#define XFER_BUF (256u << 10)
/* Manifests read while resolving one index. */
#define REGISTRY_MAX_VISITS 64
/* Largest token response. */
#define REGISTRY_MAX_TOKEN_RESPONSE (64u << 10)

static const char manifest_accept[] =
    "Accept: application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json";

struct mirror {
	char *name; /* the registry mirrored ("docker.io") */
	char *url;  /* "https://mirror.local[:port]" */
};

struct registry {
	char *auth_file; /* NULL: the default */
	char **insecure;
	size_t ninsecure;
	struct mirror *mirrors;
	size_t nmirrors;
	int64_t timeout_ms;
	char *ca_blob; /* the system bundle and scan.registry_ca_file */
	size_t ca_len;
	struct regauth_tokens tokens;
};

/* ---- one HTTP transfer --------------------------------------------- */

struct xfer {
	CURLM *m;
	CURL *e;
	struct curl_slist *hdrs;
	char curl_err[CURL_ERROR_SIZE];
	const atomic_int *cancel;
	long status;	/* of the last status line */
	bool hdr_done;	/* the final response's headers are in */
	bool done;
	CURLcode result;
	unsigned char *buf; /* [off, len) unread */
	size_t cap, off, len;
	bool paused;
	uint64_t got, max; /* body bytes received, and the bound */
	bool over;	   /* the body passed max */
	char www_auth[1024];
	int64_t retry_after_ms;
	int64_t clen; /* Content-Length, -1 */
	/* a transport failure while streaming, for the caller */
	int rc;
	char why[512];
};

static bool
is_2xx(long s)
{
	return s >= 200 && s < 300;
}

static size_t
xfer_header(char *b, size_t size, size_t nitems, void *u)
{
	struct xfer *x = u;
	size_t n = size * nitems;
	char line[2048];
	size_t l = n < sizeof(line) - 1 ? n : sizeof(line) - 1;

	memcpy(line, b, l);
	line[l] = '\0';
	while (l > 0 && (line[l - 1] == '\r' || line[l - 1] == '\n'))
		line[--l] = '\0';
	if (strncmp(line, "HTTP/", 5) == 0) {
		const char *sp = strchr(line, ' ');
		x->status = sp ? strtol(sp + 1, NULL, 10) : 0;
		x->www_auth[0] = '\0';
		x->retry_after_ms = 0;
		x->clen = -1;
		return n;
	}
	if (l == 0) {
		if (x->status >= 200)
			x->hdr_done = true;
		return n;
	}
	char *colon = strchr(line, ':');
	if (colon == NULL)
		return n;
	*colon = '\0';
	const char *v = colon + 1;
	while (*v == ' ' || *v == '\t')
		v++;
	if (strcasecmp(line, "WWW-Authenticate") == 0) {
		snprintf(x->www_auth, sizeof(x->www_auth), "%s", v);
	} else if (strcasecmp(line, "Content-Length") == 0) {
		x->clen = strtoll(v, NULL, 10);
	} else if (strcasecmp(line, "Retry-After") == 0) {
		char *end;
		long long s = strtoll(v, &end, 10);
		if (end != v && *end == '\0' && s >= 0) {
			x->retry_after_ms = (s > 86400 ? 86400 : s) * 1000;
		} else {
			time_t t = curl_getdate(v, NULL);
			int64_t d = t > 0 ? ((int64_t)t * 1000 -
			    clock_wall_ms()) : 0;
			x->retry_after_ms = d > 0 ? (d > 86400000 ? 86400000 :
			    d) : 0;
		}
	}
	return n;
}

static size_t
xfer_write(char *ptr, size_t size, size_t nmemb, void *u)
{
	struct xfer *x = u;
	size_t n = size * nmemb;

	if (!is_2xx(x->status))
		return n; /* error and redirect bodies are not read */
	if (x->got + n > x->max) {
		x->over = true;
		return 0; /* fails the transfer: CURLE_WRITE_ERROR */
	}
	if (x->off == x->len)
		x->off = x->len = 0;
	if (x->cap - x->len < n && x->off > 0) {
		memmove(x->buf, x->buf + x->off, x->len - x->off);
		x->len -= x->off;
		x->off = 0;
	}
	if (x->cap - x->len < n) {
		if (x->len > 0) {
			x->paused = true;
			return CURL_WRITEFUNC_PAUSE;
		}
		/* A chunk larger than the buffer, which is empty. */
		x->cap = n;
		x->buf = xrealloc(x->buf, x->cap);
	}
	memcpy(x->buf + x->len, ptr, n);
	x->len += n;
	x->got += n;
	return n;
}

/* The transport failure of a finished transfer as an errno and message. */
static int
xfer_curl_error(struct xfer *x, const char *what, char *err, size_t errlen)
{
	const char *msg = x->curl_err[0] ? x->curl_err :
	    curl_easy_strerror(x->result);
	switch (x->result) {
	case CURLE_WRITE_ERROR:
		if (x->over) {
			errbuf_set(err, errlen, "%s: more than %llu bytes",
			    what, (unsigned long long)x->max);
			return -EFBIG;
		}
		break;
	case CURLE_OPERATION_TIMEDOUT:
		errbuf_set(err, errlen, "%s: timed out (scan.registry_timeout):"
		    " %s", what, msg);
		return -ETIMEDOUT;
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
		errbuf_set(err, errlen, "%s: cannot connect: %s", what, msg);
		return -ECONNREFUSED;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
		errbuf_set(err, errlen, "%s: TLS: %s (scan.registry_ca_file "
		    "adds trusted certificates)", what, msg);
		return -ECONNABORTED;
	default:
		break;
	}
	errbuf_set(err, errlen, "%s: %s", what, msg);
	return -ECONNABORTED;
}

/* One round of the transfer: 0, or -ECANCELED. */
static int
xfer_step(struct xfer *x)
{
	int running = 0, q;
	CURLMsg *msg;

	if (x->cancel != NULL && atomic_load(x->cancel) != 0)
		return -ECANCELED;
	curl_multi_perform(x->m, &running);
	while ((msg = curl_multi_info_read(x->m, &q)) != NULL)
		if (msg->msg == CURLMSG_DONE) {
			x->done = true;
			x->result = msg->data.result;
		}
	if (!x->done && x->off == x->len)
		curl_multi_poll(x->m, NULL, 0, 100, NULL);
	return 0;
}

static void
xfer_free(struct xfer *x)
{
	if (x->m != NULL && x->e != NULL)
		curl_multi_remove_handle(x->m, x->e);
	if (x->e != NULL)
		curl_easy_cleanup(x->e);
	if (x->m != NULL)
		curl_multi_cleanup(x->m);
	curl_slist_free_all(x->hdrs);
	free(x->buf);
	memset(x, 0, sizeof(*x));
}

/* layer_read_fn over a transfer's body (see the top). */
static ssize_t
xfer_read(void *ctx, void *buf, size_t len)
{
	struct xfer *x = ctx;
	int rc;

	while (x->off == x->len) {
		if (x->done) {
			if (x->result == CURLE_OK)
				return 0;
			x->rc = xfer_curl_error(x, "reading", x->why,
			    sizeof(x->why));
			return x->rc;
		}
		if (x->paused) {
			x->paused = false;
			curl_easy_pause(x->e, CURLPAUSE_CONT);
			continue;
		}
		if ((rc = xfer_step(x)) != 0) {
			x->rc = rc;
			snprintf(x->why, sizeof(x->why), "cancelled");
			return rc;
		}
	}
	size_t n = x->len - x->off;
	if (n > len)
		n = len;
	memcpy(buf, x->buf + x->off, n);
	x->off += n;
	return (ssize_t)n;
}

/* scheme, host and port of url: 0, or -EINVAL. */
static int
url_origin(const char *url, char *scheme, size_t sl, char *hostport,
    size_t hl)
{
	CURLU *u = curl_url();
	char *sc = NULL, *h = NULL, *p = NULL;
	int rc = -EINVAL;

	if (u == NULL)
		return -ENOMEM;
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, &sc, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &h, 0) == CURLUE_OK) {
		(void)curl_url_get(u, CURLUPART_PORT, &p, 0);
		snprintf(scheme, sl, "%s", sc);
		snprintf(hostport, hl, "%s%s%s", h, p ? ":" : "", p ? p : "");
		rc = 0;
	}
	curl_free(sc);
	curl_free(h);
	curl_free(p);
	curl_url_cleanup(u);
	return rc;
}

static bool
host_insecure(const registry *r, const char *hostport)
{
	for (size_t i = 0; i < r->ninsecure; i++)
		if (strcmp(r->insecure[i], hostport) == 0)
			return true;
	return false;
}

/* Whether url may be fetched: https, or http to an insecure host. */
static int
url_allowed(const registry *r, const char *url, char *err, size_t errlen)
{
	char sc[16], hp[300];
	if (url_origin(url, sc, sizeof(sc), hp, sizeof(hp)) != 0) {
		errbuf_set(err, errlen, "bad URL \"%.300s\"", url);
		return -EINVAL;
	}
	if (strcmp(sc, "https") == 0 ||
	    (strcmp(sc, "http") == 0 && host_insecure(r, hp)))
		return 0;
	errbuf_set(err, errlen, "URL \"%.300s\": plain %s to a host not in "
	    "scan.registry_insecure_hosts", url, sc);
	return -EPROTO;
}

/* Whether a and b have the same scheme, host and port. */
static bool
same_origin(const char *a, const char *b)
{
	char s1[16], h1[300], s2[16], h2[300];
	return url_origin(a, s1, sizeof(s1), h1, sizeof(h1)) == 0 &&
	    url_origin(b, s2, sizeof(s2), h2, sizeof(h2)) == 0 &&
	    strcmp(s1, s2) == 0 && strcasecmp(h1, h2) == 0;
}

/*
 * Starts a GET of url (headers: each non-NULL of h[0..nh)) and waits for
 * the final response's headers. whole: a JSON or token request, bounded
 * by scan.registry_timeout as a whole. post: a form body (POST). 0 with
 * x->status, or a negative errno with err (transport).
 */
static int
xfer_open(const registry *r, struct xfer *x, const char *url,
    const char *const *h, size_t nh, uint64_t max, bool whole,
    const char *post, const atomic_int *cancel, const char *what,
    char *err, size_t errlen)
{
	int rc;

	memset(x, 0, sizeof(*x));
	x->clen = -1;
	x->max = max;
	x->cancel = cancel;
	x->cap = XFER_BUF;
	x->buf = xmalloc(x->cap);
	x->m = curl_multi_init();
	x->e = curl_easy_init();
	if (x->m == NULL || x->e == NULL) {
		errbuf_set(err, errlen, "%s: curl init failed", what);
		return -ENOMEM;
	}
	for (size_t i = 0; i < nh; i++)
		if (h[i] != NULL)
			x->hdrs = curl_slist_append(x->hdrs, h[i]);
	CURL *e = x->e;
	long secs = (long)((r->timeout_ms + 999) / 1000);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_USERAGENT, "sbomd/" SBOMD_VERSION);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, xfer_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, xfer_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->curl_err);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)r->timeout_ms);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, secs > 0 ? secs : 1L);
	if (whole)
		curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)r->timeout_ms);
	if (r->ca_blob != NULL) {
		struct curl_blob b = { r->ca_blob, r->ca_len,
			CURL_BLOB_NOCOPY };
		curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &b);
	}
	if (post != NULL)
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, post);
	curl_multi_add_handle(x->m, e);
	while (!x->hdr_done && !x->done)
		if ((rc = xfer_step(x)) != 0) {
			errbuf_set(err, errlen, "%s: cancelled", what);
			return rc;
		}
	if (!x->hdr_done)
		return xfer_curl_error(x, what, err, errlen);
	return 0;
}

/* Reads the rest of x's body (at most x->max) into a NUL-terminated
 * buffer. */
static int
xfer_slurp(struct xfer *x, char **out, size_t *outlen, const char *what,
    char *err, size_t errlen)
{
	size_t cap = 4096, n = 0;
	char *b = xmalloc(cap);
	ssize_t k;

	for (;;) {
		if (cap - n < 4096) {
			cap *= 2;
			b = xrealloc(b, cap);
		}
		k = xfer_read(x, b + n, cap - n - 1);
		if (k <= 0)
			break;
		n += (size_t)k;
	}
	if (k < 0) {
		free(b);
		if (x->over) {
			errbuf_set(err, errlen, "%s: more than %llu bytes",
			    what, (unsigned long long)x->max);
			return -EFBIG;
		}
		errbuf_set(err, errlen, "%s: %s", what, x->why);
		return x->rc ? x->rc : -ECONNABORTED;
	}
	b[n] = '\0';
	*out = b;
	*outlen = n;
	return 0;
}

/* ---- one endpoint ---------------------------------------------------- */

struct pull {
	registry *r;
	const struct registry_ref *ref;
	const atomic_int *cancel;
	char base[600];	    /* "https://host:port", no slash at the end */
	char cred_name[300]; /* what credentials are looked up under */
	char scope[400];    /* "repository:REPO:pull" */
	char token_key[800]; /* cred_name + scope */
	char *authz;	    /* "Authorization: …", or NULL */
	bool challenged;    /* a 401's challenge was answered already */
	int64_t retry_after_ms;
};

static void
pull_set_authz(struct pull *p, const char *fmt, const char *v)
{
	size_t n = strlen(fmt) + strlen(v) + 1;
	if (p->authz != NULL) {
		OPENSSL_cleanse(p->authz, strlen(p->authz));
		free(p->authz);
	}
	p->authz = xmalloc(n);
	snprintf(p->authz, n, fmt, v);
}

static char *
b64(const char *s)
{
	size_t n = strlen(s);
	char *out = xmalloc(4 * ((n + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s,
	    (int)n);
	return out;
}

static char *
url_escape(const char *s)
{
	char *e = curl_easy_escape(NULL, s, 0);
	char *out = xstrdup(e ? e : "");
	curl_free(e);
	return out;
}

/* Asks the realm of a Bearer challenge for a token. */
static int
pull_token(struct pull *p, const struct regauth_challenge *ch,
    const struct regauth_cred *cred, bool have_cred, char *err,
    size_t errlen)
{
	const char *scope = ch->scope[0] ? ch->scope : p->scope;
	char *svc = url_escape(ch->service), *sc = url_escape(scope);
	char *url = NULL, *post = NULL, *basic = NULL, *body = NULL;
	const char *hdr[2] = { NULL, NULL };
	struct xfer x;
	json_t *j = NULL;
	size_t len = 0, n;
	int rc;

	memset(&x, 0, sizeof(x));
	if ((rc = url_allowed(p->r, ch->realm, err, errlen)) != 0)
		goto out;
	n = strlen(ch->realm) + strlen(svc) + strlen(sc) + 32;
	url = xmalloc(n);
	if (have_cred && cred->identity_token[0] != '\0') {
		char *rt = url_escape(cred->identity_token);
		size_t pn = strlen(svc) + strlen(sc) + strlen(rt) + 96;
		post = xmalloc(pn);
		snprintf(post, pn, "grant_type=refresh_token&client_id=sbomd&"
		    "service=%s&scope=%s&refresh_token=%s", svc, sc, rt);
		free(rt);
		snprintf(url, n, "%s", ch->realm);
	} else {
		snprintf(url, n, "%s%sservice=%s&scope=%s", ch->realm,
		    strchr(ch->realm, '?') ? "&" : "?", svc, sc);
		if (have_cred && cred->user[0] != '\0') {
			char up[1400];
			snprintf(up, sizeof(up), "%s:%s", cred->user,
			    cred->pass);
			char *e = b64(up);
			OPENSSL_cleanse(up, sizeof(up));
			size_t bn = strlen(e) + 32;
			basic = xmalloc(bn);
			snprintf(basic, bn, "Authorization: Basic %s", e);
			OPENSSL_cleanse(e, strlen(e));
			free(e);
			hdr[0] = basic;
		}
	}
	if ((rc = xfer_open(p->r, &x, url, hdr, 1,
		 REGISTRY_MAX_TOKEN_RESPONSE, true, post, p->cancel,
		 "token request", err, errlen)) != 0)
		goto out;
	if (x.status == 401 || x.status == 403) {
		errbuf_set(err, errlen, "authentication: the token service %s "
		    "refused the credentials for %s (HTTP %ld; see "
		    "scan.registry_auth_file)", ch->realm, p->cred_name,
		    x.status);
		rc = -EACCES;
		goto out;
	}
	if (!is_2xx(x.status)) {
		errbuf_set(err, errlen, "token service %s: HTTP %ld",
		    ch->realm, x.status);
		p->retry_after_ms = x.retry_after_ms;
		rc = -EAGAIN;
		goto out;
	}
	if ((rc = xfer_slurp(&x, &body, &len, "token response", err,
		 errlen)) != 0)
		goto out;
	j = json_loadb(body, len, 0, NULL);
	const char *tok = json_string_value(json_object_get(j, "token"));
	if (tok == NULL)
		tok = json_string_value(json_object_get(j, "access_token"));
	if (tok == NULL || tok[0] == '\0' || strlen(tok) >= REGAUTH_MAX_TOKEN) {
		errbuf_set(err, errlen, "token service %s: no token in its "
		    "answer", ch->realm);
		rc = -EAGAIN;
		goto out;
	}
	json_int_t ttl = json_integer_value(json_object_get(j, "expires_in"));
	if (ttl <= 0)
		ttl = 60; /* the distribution spec's default */
	if (ttl > 10)
		regauth_tokens_put(&p->r->tokens, p->token_key, tok,
		    (int64_t)(ttl - 10) * 1000);
	pull_set_authz(p, "Authorization: Bearer %s", tok);
	rc = 0;
out:
	json_decref(j);
	if (body != NULL) {
		OPENSSL_cleanse(body, len);
		free(body);
	}
	if (basic != NULL) {
		OPENSSL_cleanse(basic, strlen(basic));
		free(basic);
	}
	if (post != NULL) {
		OPENSSL_cleanse(post, strlen(post));
		free(post);
	}
	xfer_free(&x);
	free(url);
	free(svc);
	free(sc);
	return rc;
}

/* Answers a 401's challenge: sets p->authz. */
static int
pull_authenticate(struct pull *p, const char *www, char *err, size_t errlen)
{
	struct regauth_challenge ch;
	struct regauth_cred cred;
	char why[512];
	int rc;

	regauth_challenge_parse(www, &ch);
	rc = regauth_lookup(p->r->auth_file, p->cred_name, &cred, why,
	    sizeof(why));
	if (rc != 0 && rc != -ENOENT) {
		errbuf_set(err, errlen, "authentication: %s", why);
		rc = -EACCES;
		goto out;
	}
	bool have = rc == 0;
	switch (ch.scheme) {
	case REGAUTH_BASIC:
		if (!have || cred.user[0] == '\0') {
			errbuf_set(err, errlen, "authentication: the registry "
			    "asks for credentials and the registry auth file "
			    "has none for %s", p->cred_name);
			rc = -EACCES;
			goto out;
		}
		char up[1400];
		snprintf(up, sizeof(up), "%s:%s", cred.user, cred.pass);
		char *e = b64(up);
		OPENSSL_cleanse(up, sizeof(up));
		pull_set_authz(p, "Authorization: Basic %s", e);
		OPENSSL_cleanse(e, strlen(e));
		free(e);
		rc = 0;
		break;
	case REGAUTH_BEARER:
		if (ch.realm[0] == '\0') {
			errbuf_set(err, errlen, "authentication: a Bearer "
			    "challenge without a realm");
			rc = -EACCES;
			goto out;
		}
		rc = pull_token(p, &ch, &cred, have, err, errlen);
		break;
	default:
		errbuf_set(err, errlen, "authentication: unsupported challenge "
		    "\"%.100s\"", www);
		rc = -EACCES;
		break;
	}
out:
	OPENSSL_cleanse(&cred, sizeof(cred));
	return rc;
}

enum req_kind { REQ_MANIFEST, REQ_BLOB };

/*
 * GET path (under /v2/REPO/) of p's endpoint, answering one
 * authentication challenge and following redirects. 0 with x open on a
 * 2xx response, or a negative errno with err (see registry_load).
 */
static int
pull_get(struct pull *p, const char *path, enum req_kind kind,
    uint64_t max, bool whole, struct xfer *x, const char *what, char *err,
    size_t errlen)
{
	size_t n = strlen(p->base) + strlen(p->ref->repo) + strlen(path) + 8;
	char *url = xmalloc(n);
	char why[1024];
	int rc, hops = 0;

	snprintf(url, n, "%s/v2/%s/%s", p->base, p->ref->repo, path);
	for (;;) {
		const char *h[2] = { kind == REQ_MANIFEST ? manifest_accept :
			NULL, NULL };
		bool mine = same_origin(url, p->base);
		if (mine)
			h[1] = p->authz;
		rc = xfer_open(p->r, x, url, h, 2, max, whole, NULL,
		    p->cancel, what, err, errlen);
		if (rc != 0)
			goto out;
		long s = x->status;
		if (s == 401 && mine && !p->challenged) {
			char www[sizeof(x->www_auth)];
			memcpy(www, x->www_auth, sizeof(www));
			xfer_free(x);
			p->challenged = true;
			regauth_tokens_drop(&p->r->tokens, p->token_key);
			if ((rc = pull_authenticate(p, www, why,
				 sizeof(why))) != 0) {
				errbuf_set(err, errlen, "%s: %s", what, why);
				goto out;
			}
			continue;
		}
		if (s == 301 || s == 302 || s == 303 || s == 307 || s == 308) {
			char *loc = NULL;
			curl_easy_getinfo(x->e, CURLINFO_REDIRECT_URL, &loc);
			if (loc == NULL || ++hops > REGISTRY_MAX_REDIRECTS) {
				errbuf_set(err, errlen, "%s: %s", what,
				    loc ? "too many redirects" :
					  "a redirect without a Location");
				rc = -EPROTO;
				goto out;
			}
			char *next = xstrdup(loc);
			xfer_free(x);
			free(url);
			url = next;
			if ((rc = url_allowed(p->r, url, why, sizeof(why))) !=
			    0) {
				errbuf_set(err, errlen, "%s: redirect: %s",
				    what, why);
				goto out;
			}
			continue;
		}
		if (is_2xx(s)) {
			if (x->clen >= 0 && (uint64_t)x->clen > max) {
				errbuf_set(err, errlen, "%s: %lld bytes, more "
				    "than the bound of %llu", what,
				    (long long)x->clen,
				    (unsigned long long)max);
				rc = -EFBIG;
				goto out;
			}
			rc = 0;
			goto out;
		}
		p->retry_after_ms = x->retry_after_ms;
		if (s == 401 || s == 403) {
			errbuf_set(err, errlen, "%s: authentication: HTTP %ld "
			    "(the credentials for %s in the registry auth "
			    "file, or their absence)", what, s, p->cred_name);
			rc = -EACCES;
		} else if (s == 404) {
			errbuf_set(err, errlen, "%s: %s unknown (HTTP 404)",
			    what, kind == REQ_MANIFEST ? "manifest" : "blob");
			rc = kind == REQ_MANIFEST ? -ENOENT : -EAGAIN;
		} else if (s == 429 || s >= 500) {
			errbuf_set(err, errlen, "%s: HTTP %ld%s", what, s,
			    s == 429 ? " (rate limited)" : "");
			rc = -EAGAIN;
		} else {
			errbuf_set(err, errlen, "%s: unexpected HTTP %ld",
			    what, s);
			rc = -EPROTO;
		}
		goto out;
	}
out:
	if (rc != 0)
		xfer_free(x);
	free(url);
	return rc;
}

/*
 * A JSON document of the repository (a manifest by tag or digest, or a
 * config blob by digest), read whole and verified against want (NULL: by
 * tag; *dgot gets the digest of the bytes).
 */
static int
pull_json(struct pull *p, enum req_kind kind, const char *refpart,
    const uint8_t *want, uint8_t dgot[DIGEST_LEN], json_t **out, char *err,
    size_t errlen)
{
	char path[400], what[400];
	struct xfer x;
	char *body = NULL;
	size_t len = 0;
	int rc;

	snprintf(path, sizeof(path), "%s/%s",
	    kind == REQ_MANIFEST ? "manifests" : "blobs", refpart);
	snprintf(what, sizeof(what), "%s %s",
	    kind == REQ_MANIFEST ? "manifest" : "blob", refpart);
	if ((rc = pull_get(p, path, kind, IMAGESTORE_MAX_JSON, true, &x, what,
		 err, errlen)) != 0)
		return rc;
	rc = xfer_slurp(&x, &body, &len, what, err, errlen);
	xfer_free(&x);
	if (rc != 0)
		return rc;
	digest_sha256(body, len, dgot);
	if (want != NULL && memcmp(dgot, want, DIGEST_LEN) != 0) {
		char gs[DIGEST_STR_LEN];
		digest_format(dgot, gs);
		errbuf_set(err, errlen, "%s: digest mismatch: its %zu bytes "
		    "hash to %s", what, len, gs);
		rc = -EINVAL;
	} else {
		rc = blob_parse_object(body, len, out, what, err, errlen);
	}
	free(body);
	return rc;
}

/* The manifest found, with its digest. */
struct reg_hit {
	json_t *manifest;
	char dstr[DIGEST_STR_LEN];
	struct image_desc cfg;
};

/* Whether manifest j (digest dstr) is the one sought: 0 with h filled,
 * 1 when its config is not the image ID, or -EINVAL. */
static int
take_manifest(struct image_lookup *L, json_t **j, const char *dstr,
    struct reg_hit *h, char *err, size_t errlen)
{
	int rc = image_desc_parse(json_object_get(*j, "config"), &h->cfg,
	    "config", err, errlen);
	if (rc != 0)
		return rc;
	if (L->have_id && memcmp(h->cfg.digest, L->id, DIGEST_LEN) != 0) {
		errbuf_set(err, errlen, "manifest %s: the image's config "
		    "digest %s is not the image ID %s", dstr, h->cfg.dstr,
		    L->idstr);
		return 1;
	}
	h->manifest = *j;
	*j = NULL;
	snprintf(h->dstr, sizeof(h->dstr), "%s", dstr);
	return 0;
}

/*
 * Resolves refpart (a tag or digest; want: the digest to verify, or
 * NULL) to the manifest sought: 0 with *h; 1 (err filled) when this
 * manifest or index does not hold it; or a negative errno.
 */
static int
pull_resolve(struct pull *p, struct image_lookup *L, const char *refpart,
    const uint8_t *want, int depth, unsigned *visits, struct reg_hit *h,
    char *err, size_t errlen)
{
	uint8_t got[DIGEST_LEN];
	char dstr[DIGEST_STR_LEN];
	json_t *j = NULL;
	int rc;

	if (++*visits > REGISTRY_MAX_VISITS) {
		errbuf_set(err, errlen, "more than %d manifests to read",
		    REGISTRY_MAX_VISITS);
		return -EFBIG;
	}
	if ((rc = pull_json(p, REQ_MANIFEST, refpart, want, got, &j, err,
		 errlen)) != 0)
		return rc;
	digest_format(got, dstr);
	switch (image_blob_classify(NULL, j)) {
	case IMAGE_BLOB_MANIFEST:
		rc = take_manifest(L, &j, dstr, h, err, errlen);
		break;
	case IMAGE_BLOB_INDEX: {
		const json_t *ms = json_object_get(j, "manifests");
		if (depth >= IMAGESTORE_MAX_DEPTH) {
			errbuf_set(err, errlen, "index %s: indexes nested more "
			    "than %d deep", dstr, IMAGESTORE_MAX_DEPTH);
			rc = -EFBIG;
			break;
		}
		if (!json_is_array(ms)) {
			errbuf_set(err, errlen, "index %s: no manifests array",
			    dstr);
			rc = -EINVAL;
			break;
		}
		/* Rounds: the platform's entries, then (with an image ID)
		 * the others. */
		rc = 1;
		for (int round = 0; round < (L->have_id ? 2 : 1) && rc == 1;
		     round++)
			for (size_t i = 0; i < json_array_size(ms) && rc == 1;
			     i++) {
				const json_t *dj = json_array_get(ms, i);
				struct image_desc d;
				if (image_platform_ok(L, dj) != (round == 0))
					continue;
				if ((rc = image_desc_parse(dj, &d,
					 "index entry", err, errlen)) != 0)
					break;
				rc = pull_resolve(p, L, d.dstr, d.digest,
				    depth + 1, visits, h, err, errlen);
			}
		if (rc == 1) {
			if (L->have_id)
				errbuf_set(err, errlen, "index %s: no manifest "
				    "whose config is the image ID %s", dstr,
				    L->idstr);
			else
				errbuf_set(err, errlen, "index %s: no manifest "
				    "for the platform %s/%s%s%s", dstr, L->os,
				    L->arch, L->variant[0] ? "/" : "",
				    L->variant);
		}
		break;
	}
	default:
		errbuf_set(err, errlen, "%s: not a manifest or an index",
		    dstr);
		rc = -EINVAL;
		break;
	}
	json_decref(j);
	return rc;
}

/* Streams layer d through blob_apply_layer; a layer whose diffID (diff,
 * or NULL) is in the per-layer cache is not fetched at all. */
static int
pull_layer(struct pull *p, struct image_lookup *L, const struct image_desc *d,
    const uint8_t *diff, char *err, size_t errlen)
{
	uint64_t max = L->lim->max_compressed;
	char path[200], what[200];
	struct xfer x;
	int rc;

	if (d->size >= 0 && (uint64_t)d->size > max) {
		errbuf_set(err, errlen, "layer %s: %lld bytes, more than the "
		    "bound of %llu", d->dstr, (long long)d->size,
		    (unsigned long long)max);
		return -EFBIG;
	}
	bool verify;
	if ((rc = blob_cached_layer(L, diff, d->digest, d->dstr, &verify, err,
		 errlen)) != -ENOENT)
		return rc;
	if (d->size >= 0)
		max = (uint64_t)d->size;
	snprintf(path, sizeof(path), "blobs/%s", d->dstr);
	snprintf(what, sizeof(what), "blob %s", d->dstr);
	if ((rc = pull_get(p, path, REQ_BLOB, max, false, &x, what, err,
		 errlen)) != 0)
		return rc;
	struct blob_stream src = { .fd = -1, .fn = xfer_read, .fnctx = &x };
	rc = blob_apply_layer(L, &src, d->dstr, d->digest, NULL, diff, verify,
	    err, errlen);
	if (rc != 0 && x.over)
		errbuf_set(err, errlen, "layer %s: digest mismatch: longer "
		    "than the %lld bytes its descriptor says", d->dstr,
		    (long long)d->size), rc = -EINVAL;
	else if (rc != 0 && x.rc != 0) {
		errbuf_set(err, errlen, "blob %s: %s", d->dstr, x.why);
		rc = x.rc;
	}
	xfer_free(&x);
	return rc;
}

/* Pulls the image from p's endpoint. applied: set once a layer was. */
static int
pull_image(struct pull *p, struct image_lookup *L, struct image_found *f,
    bool *applied, char *err, size_t errlen)
{
	const struct registry_ref *ref = p->ref;
	struct reg_hit h = { 0 };
	struct image_desc *layers = NULL;
	uint8_t want[DIGEST_LEN], got[DIGEST_LEN];
	json_t *cfg = NULL;
	uint8_t (*ids)[DIGEST_LEN] = NULL;
	unsigned visits = 0;
	size_t n = 0;
	int rc;

	if (ref->digest[0] != '\0' &&
	    digest_parse(ref->digest, want, err, errlen) != 0)
		return -EINVAL;
	if ((rc = pull_resolve(p, L, ref->digest[0] ? ref->digest : ref->tag,
		 ref->digest[0] ? want : NULL, 0, &visits, &h, err,
		 errlen)) != 0) {
		if (rc == 1)
			rc = -EINVAL; /* the reference is another image */
		goto out;
	}
	if ((rc = image_manifest_layers(h.manifest, &layers, &n, err,
		 errlen)) != 0)
		goto out;
	if ((rc = pull_json(p, REQ_BLOB, h.cfg.dstr, h.cfg.digest, got, &cfg,
		 err, errlen)) != 0)
		goto out;
	ids = image_diff_ids(L, cfg, n);
	for (size_t i = 0; i < n; i++) {
		*applied = true;
		if ((rc = pull_layer(p, L, &layers[i], ids ? ids[i] : NULL,
			 err, errlen)) != 0)
			goto out;
	}
	f->store = 0;
	f->kind = IMAGESTORE_REGISTRY;
	snprintf(f->image_id, sizeof(f->image_id), "%s", h.cfg.dstr);
	snprintf(f->manifest, sizeof(f->manifest), "%s", h.dstr);
	image_found_platform(f, cfg);
	f->nlayers = n;
out:
	json_decref(cfg);
	json_decref(h.manifest);
	free(layers);
	free(ids);
	return rc;
}

/* ---- references ------------------------------------------------------ */

int
registry_ref_parse(const char *s, struct registry_ref *r, char *err,
    size_t errlen)
{
	char buf[700];
	memset(r, 0, sizeof(*r));
	if (strlen(s) >= sizeof(buf) || s[0] == '\0') {
		errbuf_set(err, errlen, "reference \"%.100s\": empty or too "
		    "long", s);
		return -EINVAL;
	}
	snprintf(buf, sizeof(buf), "%s", s);
	char *at = strchr(buf, '@');
	if (at != NULL) {
		*at = '\0';
		if (strncmp(at + 1, "sha256:", 7) != 0 ||
		    digest_parse(at + 1, (uint8_t[DIGEST_LEN]){ 0 }, NULL,
			0) != 0) {
			errbuf_set(err, errlen, "reference \"%.200s\": bad "
			    "digest", s);
			return -EINVAL;
		}
		snprintf(r->digest, sizeof(r->digest), "%s", at + 1);
	}
	char *slash = strchr(buf, '/');
	char *rest = buf;
	if (slash != NULL) {
		size_t hl = (size_t)(slash - buf);
		bool host = memchr(buf, '.', hl) || memchr(buf, ':', hl) ||
		    (hl == 9 && strncmp(buf, "localhost", 9) == 0);
		if (host) {
			*slash = '\0';
			regauth_normalise_host(buf, r->name, sizeof(r->name));
			rest = slash + 1;
		}
	}
	if (r->name[0] == '\0')
		snprintf(r->name, sizeof(r->name), "docker.io");
	char *lslash = strrchr(rest, '/');
	char *colon = strrchr(lslash ? lslash : rest, ':');
	if (colon != NULL) {
		*colon = '\0';
		if (colon[1] == '\0' || strlen(colon + 1) >= sizeof(r->tag)) {
			errbuf_set(err, errlen, "reference \"%.200s\": bad "
			    "tag", s);
			return -EINVAL;
		}
		snprintf(r->tag, sizeof(r->tag), "%s", colon + 1);
	}
	if (rest[0] == '\0' || strstr(rest, "..") || rest[0] == '/' ||
	    rest[strlen(rest) - 1] == '/' || strlen(rest) + 10 >=
	    sizeof(r->repo)) {
		errbuf_set(err, errlen, "reference \"%.200s\": bad repository",
		    s);
		return -EINVAL;
	}
	for (const char *c = rest; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
			*c == '.' || *c == '_' || *c == '-' || *c == '/')) {
			errbuf_set(err, errlen, "reference \"%.200s\": bad "
			    "repository name", s);
			return -EINVAL;
		}
	/* rest fits with room for "library/" (checked above) */
	size_t off = 0, n = strlen(rest);
	if (strcmp(r->name, "docker.io") == 0 && strchr(rest, '/') == NULL) {
		memcpy(r->repo, "library/", 8);
		off = 8;
	}
	memcpy(r->repo + off, rest, n + 1);
	if (r->tag[0] == '\0' && r->digest[0] == '\0')
		snprintf(r->tag, sizeof(r->tag), "latest");
	snprintf(r->text, sizeof(r->text), "%s/%s%s%s%s%s", r->name, r->repo,
	    r->tag[0] ? ":" : "", r->tag, r->digest[0] ? "@" : "", r->digest);
	return 0;
}

/* ---- the registry ------------------------------------------------------ */

static int
read_whole(const char *path, char **buf, size_t *len, size_t max)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return -errno;
	*buf = xmalloc(max + 1);
	*len = fread(*buf, 1, max + 1, f);
	fclose(f);
	if (*len > max) {
		free(*buf);
		*buf = NULL;
		return -EFBIG;
	}
	return 0;
}

static void
curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

int
registry_new(const struct registry_config *c, registry **out, char *err,
    size_t errlen)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	registry *r;

	*out = NULL;
	pthread_once(&once, curl_init_once);
	r = xcalloc(1, sizeof(*r));
	regauth_tokens_init(&r->tokens);
	r->timeout_ms = c->timeout_ms > 0 ? c->timeout_ms :
	    REGISTRY_DEFAULT_TIMEOUT_MS;
	r->auth_file = c->auth_file ? xstrdup(c->auth_file) : NULL;
	r->insecure = xcalloc(c->ninsecure + 1, sizeof(char *));
	for (size_t i = 0; i < c->ninsecure; i++)
		r->insecure[r->ninsecure++] = xstrdup(c->insecure_hosts[i]);
	r->mirrors = xcalloc(c->nmirrors + 1, sizeof(*r->mirrors));
	for (size_t i = 0; i < c->nmirrors; i++) {
		const char *m = c->mirrors[i], *eq = strchr(m, '=');
		char why[256];
		if (eq == NULL || eq == m || (strncmp(eq + 1, "https://", 8) !=
			0 && strncmp(eq + 1, "http://", 7) != 0)) {
			errbuf_set(err, errlen, "scan.registry_mirrors: \"%.200s"
			    "\": want REGISTRY=https://HOST[:PORT]", m);
			registry_free(r);
			return -EINVAL;
		}
		struct mirror *mm = &r->mirrors[r->nmirrors++];
		char name[256];
		snprintf(name, sizeof(name), "%.*s", (int)(eq - m), m);
		regauth_normalise_host(name, why, sizeof(why));
		mm->name = xstrdup(why);
		mm->url = xstrdup(eq + 1);
		size_t ul = strlen(mm->url);
		while (ul > 0 && mm->url[ul - 1] == '/')
			mm->url[--ul] = '\0';
	}
	if (c->ca_file != NULL && c->ca_file[0] != '\0') {
		char *sys = NULL, *extra = NULL;
		size_t slen = 0, elen = 0;
		int rc;
		if ((rc = read_whole(c->ca_file, &extra, &elen, 16u << 20)) !=
		    0) {
			errbuf_set(err, errlen, "scan.registry_ca_file %s: %s",
			    c->ca_file, strerror(-rc));
			registry_free(r);
			return -EINVAL;
		}
		/* curl takes one bundle: the system's, then the file. */
		if (read_whole("/etc/ssl/certs/ca-certificates.crt", &sys,
			&slen, 64u << 20) != 0)
			slen = 0;
		r->ca_len = slen + elen + 1;
		r->ca_blob = xmalloc(r->ca_len);
		if (slen > 0)
			memcpy(r->ca_blob, sys, slen);
		r->ca_blob[slen] = '\n';
		memcpy(r->ca_blob + slen + 1, extra, elen);
		free(sys);
		free(extra);
	}
	*out = r;
	return 0;
}

void
registry_free(registry *r)
{
	if (r == NULL)
		return;
	regauth_tokens_fini(&r->tokens);
	free(r->auth_file);
	for (size_t i = 0; i < r->ninsecure; i++)
		free(r->insecure[i]);
	free(r->insecure);
	for (size_t i = 0; i < r->nmirrors; i++) {
		free(r->mirrors[i].name);
		free(r->mirrors[i].url);
	}
	free(r->mirrors);
	free(r->ca_blob);
	free(r);
}

void
registry_tokens_clear(registry *r)
{
	regauth_tokens_clear(&r->tokens);
}

void
registry_upstream(const registry *r, const struct registry_ref *ref,
    char *out, size_t outlen)
{
	const char *host = strcmp(ref->name, "docker.io") == 0 ?
	    "registry-1.docker.io" : ref->name;
	snprintf(out, outlen, "%s://%s",
	    host_insecure(r, ref->name) ? "http" : "https", host);
}

/* Sets p up for the endpoint base (credentials under cred_name). */
static void
pull_init(struct pull *p, registry *r, const struct registry_ref *ref,
    const atomic_int *cancel, const char *base, const char *cred_name)
{
	char tok[REGAUTH_MAX_TOKEN];

	memset(p, 0, sizeof(*p));
	p->r = r;
	p->ref = ref;
	p->cancel = cancel;
	snprintf(p->base, sizeof(p->base), "%s", base);
	snprintf(p->cred_name, sizeof(p->cred_name), "%s", cred_name);
	snprintf(p->scope, sizeof(p->scope), "repository:%s:pull", ref->repo);
	snprintf(p->token_key, sizeof(p->token_key), "%s %s", cred_name,
	    p->scope);
	if (regauth_tokens_get(&r->tokens, p->token_key, tok, sizeof(tok)) ==
	    0)
		pull_set_authz(p, "Authorization: Bearer %s", tok);
	OPENSSL_cleanse(tok, sizeof(tok));
}

static void
pull_fini(struct pull *p)
{
	if (p->authz != NULL) {
		OPENSSL_cleanse(p->authz, strlen(p->authz));
		free(p->authz);
	}
	p->authz = NULL;
}

int
registry_load(registry *r, const char *refstr, const struct image_query *q,
    const struct layer_limits *lim, fileset *fs, struct image_found *found,
    struct registry_status *st, char *err, size_t errlen)
{
	struct registry_ref ref;
	struct image_lookup L;
	struct layer_limits deflim;
	struct registry_status dummy;
	char why[1024];
	int rc;

	if (st == NULL)
		st = &dummy;
	memset(st, 0, sizeof(*st));
	memset(found, 0, sizeof(*found));
	if ((rc = registry_ref_parse(refstr, &ref, why, sizeof(why))) != 0) {
		errbuf_set(err, errlen, "registry %s", why);
		return rc;
	}
	memset(&L, 0, sizeof(L));
	if (lim == NULL) {
		layer_limits_default(&deflim);
		lim = &deflim;
	}
	L.q = q;
	L.lim = lim;
	L.fs = fs;
	L.cache = q->layer_cache;
	if ((rc = image_lookup_init(&L, q, why, sizeof(why))) != 0) {
		errbuf_set(err, errlen, "registry %s: %s", ref.text, why);
		goto out;
	}

	/* The endpoints: mirrors of the registry, then itself. */
	rc = -ENOENT;
	for (size_t i = 0; i <= r->nmirrors; i++) {
		char base[600], sc[16], hp[300];
		const char *cred;
		if (i < r->nmirrors) {
			if (strcmp(r->mirrors[i].name, ref.name) != 0)
				continue;
			snprintf(base, sizeof(base), "%s", r->mirrors[i].url);
			if (url_origin(base, sc, sizeof(sc), hp,
				sizeof(hp)) != 0)
				continue;
			cred = hp;
		} else {
			registry_upstream(r, &ref, base, sizeof(base));
			cred = ref.name;
		}
		struct pull p;
		bool applied = false;
		pull_init(&p, r, &ref, lim->cancel, base, cred);
		if ((rc = url_allowed(r, base, why, sizeof(why))) == 0)
			rc = pull_image(&p, &L, found, &applied, why,
			    sizeof(why));
		st->retry_after_ms = p.retry_after_ms;
		pull_fini(&p);
		if (rc == 0)
			goto out;
		errbuf_set(err, errlen, "registry %s (%s): %s", ref.text, base,
		    why);
		if (applied)
			break; /* the fileset holds part of an image */
	}
out:
	free(L.hints);
	return rc;
}
