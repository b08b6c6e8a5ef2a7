/*
 * cyclonedx: one scan's packages as a CycloneDX 1.5 JSON document.
 *
 * Layout (field order fixed, so the text is stable):
 *
 *   bomFormat, specVersion "1.5", serialNumber, version 1,
 *   metadata { timestamp, tools { components [sbomd] }, component },
 *   components [ operating-system, library... ],
 *   dependencies [ subject -> OS (or the packages), OS -> packages ]
 *
 * - The subject (metadata.component) of an image is a "container" named
 *   after the repository of its first repo tag (else its ID), with the
 *   image ID as version; its purl is pkg:oci/<name>@<digest>?
 *   repository_url=<registry/repo> from the first repo digest, as Trivy
 *   builds it; tags, digests and the ID are also properties. A host is a
 *   "device": CycloneDX defines a device as hardware that SHOULD carry a
 *   separate "operating-system" (or firmware) component for the software
 *   on it, which is exactly what a host scan reports; "operating-system"
 *   is already the OS component and "platform"/"application" describe
 *   runtimes and programs, not a machine.
 * - Every package is a "library" with name, version (as its database has
 *   it, deb epoch included, rpm [epoch:]version-release), purl,
 *   licenses ({"license":{"name":...}}: always valid, whereas "id" only
 *   takes SPDX identifiers the schema enumerates) and the source package
 *   as sbomd:SrcName / sbomd:SrcVersion properties (Trivy's
 *   aquasecurity:trivy:SrcName).
 * - bom-refs: a package's is its purl; a repeated purl (the same package
 *   twice in one database) gets "package-id=<n>" appended, n counting
 *   from 2, so refs are unique and still stable for sorted input. The
 *   refs taken are one hash table (jansson's object) whose value for a
 *   ref is the next n to try for it, so k copies of one purl cost O(k)
 *   lookups, not O(k^2): the n of a copy is the smallest not yet taken,
 *   as trying 2, 3, ... each time would find.
 * - Cancellation: doc->cancel is looked at every PKGLIST_POLL_EVERY
 *   packages and before the text is made (json_dumps, linear in the
 *   document, is not interrupted).
 * - Order: components in pkglist order (the caller sorts, pkglist_sort),
 *   the OS first, so two documents of one input differ only in
 *   serialNumber and timestamp; with both given they are byte-identical.
 * - Strings from the image that are not valid UTF-8 (a Latin-1 copyright
 *   file) get U+FFFD for each bad byte: JSON must be UTF-8.
 *
 * Any thread; nothing global. A document of a few thousand packages is a
 * few MiB and is built in memory with jansson.
 */
#include "scan/sbom/cyclonedx.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "scan/sbom/purl.h"
#include "util/textbuf.h"
#include "util/xmalloc.h"

#ifndef SBOMD_VERSION
#define SBOMD_VERSION "0.0.0"
#endif

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if none. */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
	size_t len, i;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1fu;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0fu;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07u;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3fu);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

/* A JSON string of s, invalid UTF-8 bytes replaced by U+FFFD. */
static json_t *
cdx_str(const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t n = strlen(s), i = 0, o = 0, k;
	json_t *j;
	char *fixed;

	if ((j = json_string(s)) != NULL)
		return j;
	fixed = xmalloc(n * 3 + 1);
	while (i < n) {
		if ((k = utf8_seq(u + i, n - i)) == 0 || (k == 1 && u[i] == 0)) {
			memcpy(fixed + o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		} else {
			memcpy(fixed + o, u + i, k);
			o += k;
			i += k;
		}
	}
	fixed[o] = '\0';
	j = json_string(fixed);
	free(fixed);
	return j;
}

/*
 * json_object_set_new that records failure: jansson steals the value
 * even when it fails, so the caller checks *ok once at the end.
 */
static void
cdx_set(json_t *obj, const char *key, json_t *v, bool *ok)
{
	if (v == NULL || json_object_set_new(obj, key, v) != 0)
		*ok = false;
}

static void
cdx_set_str(json_t *obj, const char *key, const char *s, bool *ok)
{
	if (s != NULL)
		cdx_set(obj, key, cdx_str(s), ok);
}

static void
cdx_append(json_t *arr, json_t *v, bool *ok)
{
	if (v == NULL || json_array_append_new(arr, v) != 0)
		*ok = false;
}

static void
cdx_prop(json_t *props, const char *name, const char *value, bool *ok)
{
	json_t *p;

	if (value == NULL)
		return;
	if ((p = json_object()) == NULL) {
		*ok = false;
		return;
	}
	cdx_set_str(p, "name", name, ok);
	cdx_set_str(p, "value", value, ok);
	cdx_append(props, p, ok);
}

/* "urn:uuid:" + a random (version 4) UUID. */
static int
cdx_serial(char out[46])
{
	unsigned char r[16];
	size_t got = 0;
	int fd;

	while (got < sizeof(r)) {
		ssize_t n = getrandom(r + got, sizeof(r) - got, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got < sizeof(r)) {
		if ((fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)) < 0)
			return -errno;
		while (got < sizeof(r)) {
			ssize_t n = read(fd, r + got, sizeof(r) - got);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				close(fd);
				return -EIO;
			}
			got += (size_t)n;
		}
		close(fd);
	}
	r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
	r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
	snprintf(out, 46, "urn:uuid:%02x%02x%02x%02x-%02x%02x-%02x%02x-"
	    "%02x%02x-%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3],
	    r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13],
	    r[14], r[15]);
	return 0;
}

/* ISO-8601 UTC to the second ("2024-05-01T12:00:00Z"). */
static int
cdx_timestamp(int64_t ms, char out[32])
{
	int64_t secs = ms / 1000 - (ms % 1000 < 0 ? 1 : 0);
	time_t t = (time_t)secs;
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 > 9999 ||
	    tm.tm_year + 1900 < 0)
		return -EINVAL;
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return 0;
}

/*
 * pkg:oci/<name>@<digest>?repository_url=<registry>/<repo> from a repo
 * digest "[registry/]repo@sha256:…", normalised the way Trivy's
 * go-containerregistry does (Docker Hub: index.docker.io, library/).
 * NULL when the digest is malformed.
 */
static char *
cdx_oci_purl(const char *repo_digest)
{
	const char *at = strrchr(repo_digest, '@'), *slash, *name;
	struct textbuf purl = { 0 };
	char *repo = NULL, *p;
	const char *first_end;
	size_t rlen;
	bool hub;

	if (at == NULL || at == repo_digest || strchr(at, ':') == NULL)
		return NULL;
	rlen = (size_t)(at - repo_digest);
	first_end = memchr(repo_digest, '/', rlen);
	/* The first component is a registry when it looks like a host. */
	hub = first_end == NULL ||
	    (memchr(repo_digest, '.', (size_t)(first_end - repo_digest)) ==
	    NULL && memchr(repo_digest, ':', (size_t)(first_end -
	    repo_digest)) == NULL && strncmp(repo_digest, "localhost/", 10) !=
	    0);
	repo = xmalloc(rlen + sizeof("index.docker.io/library/"));
	if (hub)
		snprintf(repo, rlen + sizeof("index.docker.io/library/"),
		    "index.docker.io/%s%.*s", first_end == NULL ? "library/" :
		    "", (int)rlen, repo_digest);
	else if (strncmp(repo_digest, "docker.io/", 10) == 0)
		snprintf(repo, rlen + sizeof("index.docker.io/library/"),
		    "index.docker.io/%s%.*s", strchr(repo_digest + 10, '/') ==
		    NULL || strchr(repo_digest + 10, '/') > at ? "library/" :
		    "", (int)(rlen - 10), repo_digest + 10);
	else
		snprintf(repo, rlen + sizeof("index.docker.io/library/"),
		    "%.*s", (int)rlen, repo_digest);
	for (p = repo; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	slash = strrchr(repo, '/');
	name = slash != NULL ? slash + 1 : repo;

	textbuf_printf(&purl, "pkg:oci/");
	purl_encode(&purl, name, strlen(name), false);
	textbuf_printf(&purl, "@");
	purl_encode(&purl, at + 1, strlen(at + 1), false);
	textbuf_printf(&purl, "?repository_url=");
	purl_encode(&purl, repo, strlen(repo), false);
	free(repo);
	return textbuf_take(&purl, NULL);
}

/* The repository part of a tag "registry:5000/a/b:tag" -> "registry:5000/a/b". */
static char *
cdx_tag_repo(const char *tag)
{
	const char *colon = strrchr(tag, ':'), *slash = strrchr(tag, '/');

	if (colon != NULL && (slash == NULL || colon > slash))
		return xstrndup(tag, (size_t)(colon - tag));
	return xstrdup(tag);
}

/*
 * Claims ref in seen; when it is taken, claims ref + "package-id=<n>"
 * with the smallest n >= 2 not taken. seen maps each ref taken to the
 * next n to try for it (all below are taken: refs are never released),
 * so repeats of one ref cost one lookup each, not one per earlier copy.
 * Returns the unique ref (malloc'd).
 */
static char *
cdx_unique_ref(json_t *seen, const char *ref)
{
	size_t need = strlen(ref) + 32;
	json_t *base = json_object_get(seen, ref);
	char *r;

	if (base == NULL) {
		json_object_set_new(seen, ref, json_integer(2));
		return xstrdup(ref);
	}
	json_int_t n = json_integer_value(base);
	r = xmalloc(need);
	for (;; n++) {
		snprintf(r, need, "%s%cpackage-id=%lld", ref,
		    strchr(ref, '?') != NULL ? '&' : '?', (long long)n);
		if (json_object_get(seen, r) == NULL)
			break;
	}
	json_integer_set(base, n + 1);
	json_object_set_new(seen, r, json_integer(2));
	return r;
}

static json_t *
cdx_subject(const struct sbom_subject *s, json_t *seen, char **ref,
    bool *ok)
{
	json_t *c = json_object(), *props = json_array();
	char *name = NULL, *purl = NULL;
	size_t i;

	if (c == NULL || props == NULL) {
		json_decref(c);
		json_decref(props);
		*ok = false;
		return NULL;
	}
	if (s->kind == ENTITY_HOST) {
		name = xstrdup(s->id);
		*ref = cdx_unique_ref(seen, s->id);
		cdx_set_str(c, "bom-ref", *ref, ok);
		cdx_set_str(c, "type", "device", ok);
		cdx_set_str(c, "name", name, ok);
		cdx_prop(props, "sbomd:HostName", s->id, ok);
	} else {
		name = s->ntags > 0 ? cdx_tag_repo(s->repo_tags[0]) :
		    xstrdup(s->id);
		if (s->ndigests > 0)
			purl = cdx_oci_purl(s->repo_digests[0]);
		*ref = cdx_unique_ref(seen, purl != NULL ? purl : s->id);
		cdx_set_str(c, "bom-ref", *ref, ok);
		cdx_set_str(c, "type", "container", ok);
		cdx_set_str(c, "name", name, ok);
		cdx_set_str(c, "version", s->id, ok);
		cdx_set_str(c, "purl", purl, ok);
		/* Sorted by name, then as given. */
		cdx_prop(props, "sbomd:ImageID", s->id, ok);
		for (i = 0; i < s->ndigests; i++)
			cdx_prop(props, "sbomd:RepoDigest", s->repo_digests[i],
			    ok);
		for (i = 0; i < s->ntags; i++)
			cdx_prop(props, "sbomd:RepoTag", s->repo_tags[i], ok);
	}
	if (json_array_size(props) > 0)
		cdx_set(c, "properties", props, ok);
	else
		json_decref(props);
	free(name);
	free(purl);
	return c;
}

/*
 * The package's version as its database prints it: deb and apk as
 * stored, rpm as [epoch:]version-release (Trivy's FormatVersion).
 */
static char *
cdx_pkg_version(const struct pkg *p)
{
	const char *v = p->version != NULL ? p->version : "";
	const char *epoch = "", *rel = "";
	size_t need;
	char *out;

	if (p->type != PKG_RPM)
		return xstrdup(v);
	if (p->epoch != NULL && p->epoch[0] != '\0' &&
	    strcmp(p->epoch, "0") != 0 && strchr(v, ':') == NULL)
		epoch = p->epoch;
	if (pkg_needs_release(v, p->release))
		rel = p->release;
	need = strlen(epoch) + strlen(v) + strlen(rel) + 3;
	out = xmalloc(need);
	snprintf(out, need, "%s%s%s%s%s", epoch, epoch[0] ? ":" : "", v,
	    rel[0] ? "-" : "", rel);
	return out;
}

static json_t *
cdx_package(const struct pkg *p, const struct os_info *os, json_t *seen,
    char **ref, bool *ok)
{
	json_t *c = json_object(), *lic = NULL, *props = NULL;
	char *purl = NULL, *version = NULL;
	size_t i;

	*ref = NULL;
	if (c == NULL || purl_format(p, os, &purl) != 0) {
		json_decref(c);
		*ok = false;
		return NULL;
	}
	version = cdx_pkg_version(p);
	*ref = cdx_unique_ref(seen, purl);

	cdx_set_str(c, "bom-ref", *ref, ok);
	cdx_set_str(c, "type", "library", ok);
	cdx_set_str(c, "name", p->name, ok);
	if (version[0] != '\0')
		cdx_set_str(c, "version", version, ok);
	if (p->nlicenses > 0 && p->licenses != NULL) {
		if ((lic = json_array()) == NULL)
			*ok = false;
		for (i = 0; lic != NULL && i < p->nlicenses; i++) {
			json_t *l, *inner;

			if (p->licenses[i] == NULL || p->licenses[i][0] == '\0')
				continue;
			l = json_object();
			inner = json_object();
			cdx_set_str(inner, "name", p->licenses[i], ok);
			cdx_set(l, "license", inner, ok);
			cdx_append(lic, l, ok);
		}
		if (lic != NULL && json_array_size(lic) > 0)
			cdx_set(c, "licenses", lic, ok);
		else
			json_decref(lic);
	}
	cdx_set_str(c, "purl", purl, ok);
	if (p->source_name != NULL || p->source_version != NULL) {
		if ((props = json_array()) == NULL)
			*ok = false;
		else {
			cdx_prop(props, "sbomd:SrcName", p->source_name, ok);
			cdx_prop(props, "sbomd:SrcVersion", p->source_version,
			    ok);
			cdx_set(c, "properties", props, ok);
		}
	}
	free(purl);
	free(version);
	return c;
}

static json_t *
cdx_os(const struct os_info *os, json_t *seen, char **ref, bool *ok)
{
	json_t *c = json_object();
	size_t need = strlen(os->id) + (os->version_id ?
	    strlen(os->version_id) : 0) + 8;
	char *r = xmalloc(need);

	snprintf(r, need, "os:%s%s%s", os->id, os->version_id ? "@" : "",
	    os->version_id ? os->version_id : "");
	*ref = cdx_unique_ref(seen, r);
	free(r);
	if (c == NULL) {
		*ok = false;
		return NULL;
	}
	cdx_set_str(c, "bom-ref", *ref, ok);
	cdx_set_str(c, "type", "operating-system", ok);
	cdx_set_str(c, "name", os->id, ok);
	cdx_set_str(c, "version", os->version_id, ok);
	cdx_set_str(c, "description", os->pretty_name, ok);
	return c;
}

static json_t *
cdx_dep(const char *ref, char **on, size_t non, bool *ok)
{
	json_t *d = json_object(), *arr = json_array();
	size_t i;

	if (d == NULL || arr == NULL) {
		json_decref(d);
		json_decref(arr);
		*ok = false;
		return NULL;
	}
	cdx_set_str(d, "ref", ref, ok);
	for (i = 0; i < non; i++)
		cdx_append(arr, cdx_str(on[i]), ok);
	cdx_set(d, "dependsOn", arr, ok);
	return d;
}

/* metadata: the timestamp, sbomd as the tool, the subject. */
static json_t *
cdx_metadata(const struct sbom_doc *doc, const char *ts, json_t *seen,
    char **subject_ref, bool *ok)
{
	json_t *meta = json_object(), *tools = json_object(),
	    *tcomps = json_array(), *tool = json_object();

	cdx_set_str(meta, "timestamp", ts, ok);
	cdx_set_str(tool, "type", "application", ok);
	cdx_set_str(tool, "name", "sbomd", ok);
	cdx_set_str(tool, "version", doc->tool_version ? doc->tool_version :
	    SBOMD_VERSION, ok);
	cdx_append(tcomps, tool, ok);
	cdx_set(tools, "components", tcomps, ok);
	cdx_set(meta, "tools", tools, ok);
	cdx_set(meta, "component", cdx_subject(&doc->subject, seen,
	    subject_ref, ok), ok);
	return meta;
}

static bool
cdx_cancelled(const struct sbom_doc *doc)
{
	return doc->cancel != NULL && atomic_load(doc->cancel) != 0;
}

/* components: the OS, then the packages (refs[i]: package i's bom-ref). */
static json_t *
cdx_components(const struct sbom_doc *doc, json_t *seen, char **os_ref,
    char **refs, bool *ok)
{
	json_t *comps = json_array();
	size_t npkgs = doc->pkgs != NULL ? doc->pkgs->n : 0;

	if (comps == NULL) {
		*ok = false;
		return NULL;
	}
	if (doc->os != NULL && doc->os->id != NULL && doc->os->id[0] != '\0')
		cdx_append(comps, cdx_os(doc->os, seen, os_ref, ok), ok);
	for (size_t i = 0; i < npkgs && *ok; i++) {
		if (i % PKGLIST_POLL_EVERY == 0 && cdx_cancelled(doc)) {
			*ok = false;
			break;
		}
		cdx_append(comps, cdx_package(&doc->pkgs->pkgs[i], doc->os,
		    seen, &refs[i], ok), ok);
	}
	return comps;
}

/* dependencies: subject -> OS -> packages, or subject -> packages. */
static json_t *
cdx_dependencies(const char *subject_ref, char *os_ref, char **refs,
    size_t npkgs, bool *ok)
{
	json_t *deps = json_array();

	if (deps == NULL) {
		*ok = false;
		return NULL;
	}
	if (!*ok || subject_ref == NULL)
		return deps;
	if (os_ref != NULL) {
		cdx_append(deps, cdx_dep(subject_ref, &os_ref, 1, ok), ok);
		cdx_append(deps, cdx_dep(os_ref, refs, npkgs, ok), ok);
	} else {
		cdx_append(deps, cdx_dep(subject_ref, refs, npkgs, ok), ok);
	}
	return deps;
}

/* Why a document could not be built: a package purl_format refuses
 * (-EINVAL), else memory (-ENOMEM). */
static int
cdx_failure(const struct sbom_doc *doc)
{
	size_t npkgs = doc->pkgs != NULL ? doc->pkgs->n : 0;
	char *purl;

	for (size_t i = 0; i < npkgs; i++) {
		if (purl_format(&doc->pkgs->pkgs[i], doc->os, &purl) != 0)
			return -EINVAL;
		free(purl);
	}
	return -ENOMEM;
}

int
cyclonedx_write(const struct sbom_doc *doc, char **out, size_t *len)
{
	json_t *root = NULL, *seen = NULL;
	char serial[46], ts[32], *subject_ref = NULL, *os_ref = NULL;
	char **refs = NULL;
	size_t npkgs, i;
	bool ok = true;
	int rc;

	if (doc == NULL || out == NULL || doc->subject.id == NULL ||
	    (doc->subject.ntags > 0 && doc->subject.repo_tags == NULL) ||
	    (doc->subject.ndigests > 0 && doc->subject.repo_digests == NULL))
		return -EINVAL;
	*out = NULL;
	if (len != NULL)
		*len = 0;
	npkgs = doc->pkgs != NULL ? doc->pkgs->n : 0;
	if (doc->serial == NULL && (rc = cdx_serial(serial)) < 0)
		return rc;
	if ((rc = cdx_timestamp(doc->timestamp_ms, ts)) < 0)
		return rc;

	root = json_object();
	seen = json_object();
	if (root == NULL || seen == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	refs = xcalloc(npkgs + 1, sizeof(*refs));

	cdx_set_str(root, "$schema", "http://cyclonedx.org/schema/bom-1.5.schema.json", &ok);
	cdx_set_str(root, "bomFormat", "CycloneDX", &ok);
	cdx_set_str(root, "specVersion", "1.5", &ok);
	cdx_set_str(root, "serialNumber", doc->serial ? doc->serial : serial,
	    &ok);
	cdx_set(root, "version", json_integer(1), &ok);
	cdx_set(root, "metadata", cdx_metadata(doc, ts, seen, &subject_ref,
	    &ok), &ok);
	cdx_set(root, "components", cdx_components(doc, seen, &os_ref, refs,
	    &ok), &ok);
	cdx_set(root, "dependencies", cdx_dependencies(subject_ref, os_ref,
	    refs, npkgs, &ok), &ok);
	if (cdx_cancelled(doc)) {
		rc = -ECANCELED;
		goto out;
	}
	if (!ok) {
		rc = cdx_failure(doc);
		goto out;
	}
	*out = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (*out == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	if (len != NULL)
		*len = strlen(*out);
	rc = 0;
out:
	if (refs != NULL)
		for (i = 0; i < npkgs; i++)
			free(refs[i]);
	free(refs);
	free(subject_ref);
	free(os_ref);
	json_decref(seen);
	json_decref(root);
	return rc;
}
