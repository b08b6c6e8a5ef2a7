/*
 * Tests for purl_format and cyclonedx_write: package URLs as the purl
 * spec and Trivy write them, the document's structure read back with
 * jansson, byte-identical output for one input, and validation of
 * generated documents against the official CycloneDX 1.5 schema with
 * tools/schema-check (node + the installed node_modules; skipped with a
 * message only when either is absent). The tool is found through
 * SBOMD_SOURCE_DIR, else upwards from the working directory, else beside
 * this source file.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "scan/catalog/catalog.h"
#include "scan/sbom/cyclonedx.h"
#include "scan/sbom/purl.h"
#include "util/xmalloc.h"

/* ---- fixtures ---------------------------------------------------------- */

static char *
dup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

/* Adds a package; lic is a NULL-terminated list or NULL. */
static struct pkg *
add_pkg(struct pkglist *l, enum pkg_type type, const char *name,
    const char *version, const char *arch, const char *const *lic)
{
	struct pkg *p = pkglist_add(l);
	size_t n = 0;

	p->type = type;
	p->name = xstrdup(name);
	p->version = dup_or_null(version);
	p->arch = dup_or_null(arch);
	while (lic != NULL && lic[n] != NULL)
		n++;
	if (n > 0) {
		p->licenses = xcalloc(n + 1, sizeof(char *));
		for (size_t i = 0; i < n; i++)
			p->licenses[i] = xstrdup(lic[i]);
		p->nlicenses = n;
	}
	return p;
}

static void
os_set(struct os_info *os, const char *id, const char *version_id,
    const char *pretty)
{
	memset(os, 0, sizeof(*os));
	os->id = dup_or_null(id);
	os->version_id = dup_or_null(version_id);
	os->pretty_name = dup_or_null(pretty);
}

static const char *const IMAGE_ID =
    "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
static const char *const REPO_TAGS[] = {"debian:12", "debian:bookworm"};
static const char *const REPO_DIGESTS[] = {
    "debian@sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"};

struct fixture {
	struct pkglist pkgs;
	struct os_info os;
	struct sbom_doc doc;
};

static const char *const GPL2[] = {"GPL-2.0-only", NULL};
static const char *const MULTI[] = {"GPL-2.0-or-later", "LGPL-2.1+",
    "public-domain", NULL};

/* A Debian image: OS, dpkg packages with licenses, one duplicate. */
static void
fixture_debian(struct fixture *f)
{
	struct pkg *p;

	memset(f, 0, sizeof(*f));
	pkglist_init(&f->pkgs);
	os_set(&f->os, "debian", "12.5", "Debian GNU/Linux 12 (bookworm)");
	add_pkg(&f->pkgs, PKG_DEB, "adduser", "3.134", "all", GPL2);
	p = add_pkg(&f->pkgs, PKG_DEB, "libc6", "2.36-9+deb12u4", "amd64",
	    MULTI);
	p->source_name = xstrdup("glibc");
	p = add_pkg(&f->pkgs, PKG_DEB, "login", "1:4.13+dfsg1-1", "amd64",
	    GPL2);
	p->source_name = xstrdup("shadow");
	p->source_version = xstrdup("1:4.13+dfsg1-1");
	add_pkg(&f->pkgs, PKG_DEB, "libssl3", "3.0.11-1~deb12u2", "amd64",
	    NULL);
	/* the same package twice (status and status.d): same purl */
	add_pkg(&f->pkgs, PKG_DEB, "tzdata", "2024a-0+deb12u1", "all", NULL);
	add_pkg(&f->pkgs, PKG_DEB, "tzdata", "2024a-0+deb12u1", "all", NULL);
	/* a license from a Latin-1 copyright file: invalid UTF-8 */
	p = add_pkg(&f->pkgs, PKG_DEB, "zlib1g", "1:1.2.13.dfsg-1", "amd64",
	    NULL);
	p->licenses = xcalloc(2, sizeof(char *));
	p->licenses[0] = xstrdup("Zlib (c) J\xe9r\xf4me");
	p->nlicenses = 1;
	pkglist_sort(&f->pkgs);

	f->doc.subject.kind = ENTITY_IMAGE;
	f->doc.subject.id = IMAGE_ID;
	f->doc.subject.repo_tags = REPO_TAGS;
	f->doc.subject.ntags = 2;
	f->doc.subject.repo_digests = REPO_DIGESTS;
	f->doc.subject.ndigests = 1;
	f->doc.os = &f->os;
	f->doc.pkgs = &f->pkgs;
	f->doc.serial = "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79";
	f->doc.timestamp_ms = 1714564800123;
	f->doc.tool_version = "0.1.0";
}

static void
fixture_free(struct fixture *f)
{
	pkglist_free(&f->pkgs);
	free(f->os.id);
	free(f->os.version_id);
	free(f->os.pretty_name);
	free(f->os.name);
}

static char *
write_doc(const struct sbom_doc *doc)
{
	char *out = NULL;
	size_t len = 0;

	assert_int_equal(cyclonedx_write(doc, &out, &len), 0);
	assert_non_null(out);
	assert_int_equal(len, strlen(out));
	return out;
}

static json_t *
parse(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, 0, &e);

	if (j == NULL)
		fail_msg("output is not JSON: %s (line %d)", e.text, e.line);
	return j;
}

/* ---- purl --------------------------------------------------------------- */

static void
check_purl(const struct pkg *p, const struct os_info *os, const char *want)
{
	char *purl = NULL;

	assert_int_equal(purl_format(p, os, &purl), 0);
	assert_non_null(purl);
	assert_string_equal(purl, want);
	free(purl);
}

static void
test_purl_deb(void **state)
{
	struct pkg p = {0};
	struct os_info os;

	(void)state;
	os_set(&os, "debian", "12.5", NULL);
	p.type = PKG_DEB;
	p.name = "libc6";
	p.version = "2.36-9+deb12u4";
	p.arch = "amd64";
	/* Trivy's own example */
	check_purl(&p, &os,
	    "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12.5");
	/* epoch moves to a qualifier, sorted after distro */
	p.name = "login";
	p.version = "1:4.13+dfsg1-1+b1";
	check_purl(&p, &os, "pkg:deb/debian/login@4.13%2Bdfsg1-1%2Bb1?"
	    "arch=amd64&distro=debian-12.5&epoch=1");
	p.version = "1:2.3-4";
	check_purl(&p, &os,
	    "pkg:deb/debian/login@2.3-4?arch=amd64&distro=debian-12.5&epoch=1");
	/* an epoch of 0 is no epoch */
	p.version = "0:2.3-4";
	check_purl(&p, &os,
	    "pkg:deb/debian/login@2.3-4?arch=amd64&distro=debian-12.5");
	/* '~' is unreserved; a ':' after the epoch is encoded */
	p.name = "libssl3";
	p.version = "3.0.11-1~deb12u2";
	check_purl(&p, &os, "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?"
	    "arch=amd64&distro=debian-12.5");
	p.version = "2:1.0:beta-1";
	check_purl(&p, &os, "pkg:deb/debian/libssl3@1.0%3Abeta-1?"
	    "arch=amd64&distro=debian-12.5&epoch=2");
	/* the namespace is lowercased; names too (deb names are) */
	free(os.id);
	os.id = xstrdup("Ubuntu");
	free(os.version_id);
	os.version_id = xstrdup("22.04");
	p.name = "Foo+Bar";
	p.version = "1.0";
	p.arch = "all";
	check_purl(&p, &os,
	    "pkg:deb/ubuntu/foo%2Bbar@1.0?arch=all&distro=ubuntu-22.04");
	free(os.id);
	free(os.version_id);
}

static void
test_purl_missing_parts(void **state)
{
	struct pkg p = {0};
	struct os_info os;
	char *purl = (char *)"not set";

	(void)state;
	p.type = PKG_DEB;
	p.name = "adduser";
	p.version = "3.134";
	/* no OS: no namespace, no distro (as Trivy); no arch */
	check_purl(&p, NULL, "pkg:deb/adduser@3.134");
	/* OS without a version: namespace but no distro */
	os_set(&os, "debian", NULL, NULL);
	check_purl(&p, &os, "pkg:deb/debian/adduser@3.134");
	os.version_id = xstrdup("12");
	check_purl(&p, &os, "pkg:deb/debian/adduser@3.134?distro=debian-12");
	/* no version */
	p.version = NULL;
	check_purl(&p, &os, "pkg:deb/debian/adduser?distro=debian-12");
	/* refused: no name, no package, no known type (*out is NULL) */
	p.name = "";
	assert_int_equal(purl_format(&p, &os, &purl), -EINVAL);
	assert_null(purl);
	assert_int_equal(purl_format(NULL, &os, &purl), -EINVAL);
	p.name = "adduser";
	p.type = (enum pkg_type)7;
	purl = (char *)"not set";
	assert_int_equal(purl_format(&p, &os, &purl), -EINVAL);
	assert_null(purl);
	free(os.id);
	free(os.version_id);
}

static void
test_purl_apk(void **state)
{
	struct pkg p = {0};
	struct os_info os;

	(void)state;
	os_set(&os, "alpine", "3.18.4", NULL);
	p.type = PKG_APK;
	p.name = "musl";
	p.version = "1.2.4-r2";
	p.arch = "x86_64";
	/* apk: distro is the version alone (Trivy) */
	check_purl(&p, &os,
	    "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=3.18.4");
	p.name = "libstdc++";
	p.version = "12.2.1_git20220924-r10";
	check_purl(&p, &os, "pkg:apk/alpine/libstdc%2B%2B@"
	    "12.2.1_git20220924-r10?arch=x86_64&distro=3.18.4");
	free(os.id);
	free(os.version_id);
}

static void
test_purl_rpm(void **state)
{
	struct pkg p = {0};
	struct os_info os;

	(void)state;
	os_set(&os, "rhel", "9.3", NULL);
	p.type = PKG_RPM;
	p.name = "bash";
	p.version = "5.1.8";
	p.release = "6.el9";
	p.epoch = "1";
	p.arch = "x86_64";
	check_purl(&p, &os, "pkg:rpm/redhat/bash@5.1.8-6.el9?arch=x86_64&"
	    "distro=redhat-9.3&epoch=1");
	/* a version that already carries the release; epoch 0 omitted */
	p.version = "5.1.8-6.el9";
	p.epoch = "0";
	check_purl(&p, &os,
	    "pkg:rpm/redhat/bash@5.1.8-6.el9?arch=x86_64&distro=redhat-9.3");
	/* rpm names keep their case */
	free(os.id);
	os.id = xstrdup("fedora");
	free(os.version_id);
	os.version_id = xstrdup("39");
	p.name = "Judy";
	p.version = "1.0.5";
	p.release = "32.fc39";
	p.epoch = NULL;
	p.arch = NULL;
	check_purl(&p, &os, "pkg:rpm/fedora/Judy@1.0.5-32.fc39?distro=fedora-39");
	free(os.id);
	free(os.version_id);
}

/* ---- document structure ------------------------------------------------ */

static const char *
jstr(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

static void
test_structure(void **state)
{
	struct fixture f;
	json_t *root, *meta, *comp, *comps, *c, *refs, *lic;
	const char *prev = "";
	size_t i, nlib = 0;
	char *out;

	(void)state;
	fixture_debian(&f);
	out = write_doc(&f.doc);
	root = parse(out);

	assert_string_equal(jstr(root, "bomFormat"), "CycloneDX");
	assert_string_equal(jstr(root, "specVersion"), "1.5");
	assert_string_equal(jstr(root, "serialNumber"), f.doc.serial);
	assert_int_equal(json_integer_value(json_object_get(root, "version")),
	    1);
	meta = json_object_get(root, "metadata");
	assert_string_equal(jstr(meta, "timestamp"), "2024-05-01T12:00:00Z");
	c = json_array_get(json_object_get(json_object_get(meta, "tools"),
	    "components"), 0);
	assert_string_equal(jstr(c, "name"), "sbomd");
	assert_string_equal(jstr(c, "version"), "0.1.0");
	comp = json_object_get(meta, "component");
	assert_string_equal(jstr(comp, "type"), "container");
	assert_string_equal(jstr(comp, "name"), "debian");
	assert_string_equal(jstr(comp, "version"), IMAGE_ID);
	assert_string_equal(jstr(comp, "purl"),
	    "pkg:oci/debian@sha256%3Afedcba9876543210fedcba9876543210fedcba"
	    "9876543210fedcba9876543210?repository_url=index.docker.io%2F"
	    "library%2Fdebian");
	assert_string_equal(jstr(comp, "bom-ref"), jstr(comp, "purl"));
	assert_int_equal(json_array_size(json_object_get(comp, "properties")),
	    4);

	comps = json_object_get(root, "components");
	assert_int_equal(json_array_size(comps), 1 + f.pkgs.n);
	c = json_array_get(comps, 0);
	assert_string_equal(jstr(c, "type"), "operating-system");
	assert_string_equal(jstr(c, "name"), "debian");
	assert_string_equal(jstr(c, "version"), "12.5");

	refs = json_object();
	json_object_set_new(refs, jstr(comp, "bom-ref"), json_true());
	json_array_foreach(comps, i, c) {
		const char *ref = jstr(c, "bom-ref");

		assert_non_null(ref);
		if (json_object_get(refs, ref) != NULL)
			fail_msg("bom-ref %s is not unique", ref);
		json_object_set_new(refs, ref, json_true());
		if (i == 0)
			continue;
		nlib++;
		assert_string_equal(jstr(c, "type"), "library");
		assert_non_null(jstr(c, "purl"));
		assert_true(strncmp(jstr(c, "purl"), "pkg:deb/debian/", 15) ==
		    0);
		if (strcmp(prev, jstr(c, "name")) > 0)
			fail_msg("components not sorted: %s after %s",
			    jstr(c, "name"), prev);
		prev = jstr(c, "name");
	}
	assert_int_equal(nlib, f.pkgs.n);
	json_decref(refs);

	/* the duplicate tzdata gets a distinct ref, the same purl */
	for (i = 1; i < json_array_size(comps); i++) {
		c = json_array_get(comps, i);
		if (strcmp(jstr(c, "name"), "tzdata") == 0)
			break;
	}
	assert_string_equal(jstr(c, "bom-ref"), jstr(c, "purl"));
	c = json_array_get(comps, i + 1);
	assert_string_equal(jstr(c, "name"), "tzdata");
	assert_string_equal(jstr(c, "bom-ref"),
	    "pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=all&"
	    "distro=debian-12.5&package-id=2");

	/* licenses, versions as the database has them, source props */
	json_array_foreach(comps, i, c) {
		const char *name = jstr(c, "name");

		lic = json_object_get(c, "licenses");
		if (strcmp(name, "libc6") == 0) {
			assert_int_equal(json_array_size(lic), 3);
			assert_string_equal(jstr(json_object_get(
			    json_array_get(lic, 1), "license"), "name"),
			    "LGPL-2.1+");
			assert_string_equal(jstr(json_array_get(
			    json_object_get(c, "properties"), 0), "value"),
			    "glibc");
		} else if (strcmp(name, "login") == 0) {
			assert_string_equal(jstr(c, "version"),
			    "1:4.13+dfsg1-1");
			assert_int_equal(json_array_size(lic), 1);
		} else if (strcmp(name, "libssl3") == 0) {
			assert_null(lic);
		} else if (strcmp(name, "zlib1g") == 0) {
			assert_string_equal(jstr(json_object_get(
			    json_array_get(lic, 0), "license"), "name"),
			    "Zlib (c) J\xef\xbf\xbdr\xef\xbf\xbdme");
		}
	}
	/* dependencies: image -> OS -> every package */
	c = json_object_get(root, "dependencies");
	assert_int_equal(json_array_size(c), 2);
	assert_int_equal(json_array_size(json_object_get(json_array_get(c, 1),
	    "dependsOn")), f.pkgs.n);

	json_decref(root);
	free(out);
	fixture_free(&f);
}

static void
test_host_and_empty(void **state)
{
	struct sbom_doc doc;
	struct pkglist empty;
	json_t *root, *comp;
	char *out;

	(void)state;
	memset(&doc, 0, sizeof(doc));
	pkglist_init(&empty);
	doc.subject.kind = ENTITY_HOST;
	doc.subject.id = "build-host-01";
	doc.pkgs = &empty;
	doc.timestamp_ms = 0;
	out = write_doc(&doc);
	root = parse(out);
	comp = json_object_get(json_object_get(root, "metadata"), "component");
	assert_string_equal(jstr(comp, "type"), "device");
	assert_string_equal(jstr(comp, "name"), "build-host-01");
	assert_int_equal(json_array_size(json_object_get(root, "components")),
	    0);
	assert_string_equal(jstr(json_object_get(root, "metadata"),
	    "timestamp"), "1970-01-01T00:00:00Z");
	/* a generated serial: a version 4 UUID */
	assert_int_equal(strlen(jstr(root, "serialNumber")), 45);
	assert_int_equal(strncmp(jstr(root, "serialNumber"), "urn:uuid:", 9),
	    0);
	assert_int_equal(jstr(root, "serialNumber")[23], '4');
	assert_non_null(strchr("89ab", jstr(root, "serialNumber")[28]));
	json_decref(root);
	free(out);

	assert_int_equal(cyclonedx_write(NULL, &out, NULL), -EINVAL);
	doc.subject.id = NULL;
	assert_int_equal(cyclonedx_write(&doc, &out, NULL), -EINVAL);
}

static void
test_deterministic(void **state)
{
	struct fixture f;
	char *a, *b, *c;
	json_t *ja, *jc;

	(void)state;
	fixture_debian(&f);
	a = write_doc(&f.doc);
	b = write_doc(&f.doc);
	assert_string_equal(a, b);
	/* without a serial: only serialNumber differs */
	f.doc.serial = NULL;
	c = write_doc(&f.doc);
	assert_string_not_equal(a, c);
	ja = parse(a);
	jc = parse(c);
	assert_string_not_equal(jstr(ja, "serialNumber"),
	    jstr(jc, "serialNumber"));
	json_object_del(ja, "serialNumber");
	json_object_del(jc, "serialNumber");
	assert_true(json_equal(ja, jc));
	json_decref(ja);
	json_decref(jc);
	free(a);
	free(b);
	free(c);
	fixture_free(&f);
}

/*
 * The bom-refs of duplicates are those the one-by-one search gave
 * (smallest free "package-id=<n>" from 2), also when a ref it would
 * take is already taken by another: here a host named like the second
 * copy's ref. The model below is that search, over a list of taken refs.
 */
static void
test_duplicate_refs(void **state)
{
	enum { N = 300 };
	struct pkglist l;
	struct os_info os;
	char **taken = xcalloc(2 * N + 4, sizeof(char *));
	size_t ntaken = 0;
	const char *base = "pkg:apk/alpine/dup@1-r0?arch=x86_64&"
	    "distro=3.19.1";
	char host[256], want[256];

	(void)state;
	pkglist_init(&l);
	os_set(&os, "alpine", "3.19.1", NULL);
	snprintf(host, sizeof(host), "%s&package-id=2", base);
	for (size_t i = 0; i < N; i++)
		add_pkg(&l, PKG_APK, "dup", "1-r0", "x86_64", NULL);
	add_pkg(&l, PKG_APK, "other", "1-r0", "x86_64", NULL);
	add_pkg(&l, PKG_APK, "other", "1-r0", "x86_64", NULL);
	pkglist_sort(&l);
	struct sbom_doc doc = {
		.subject = {.kind = ENTITY_HOST, .id = host},
		.os = &os, .pkgs = &l,
		.serial = "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79",
	};
	char *text = write_doc(&doc);
	json_t *root = parse(text);
	json_t *comps = json_object_get(root, "components");
	assert_int_equal(json_array_size(comps), N + 3);

	/* the model: subject, OS, then each package's smallest free ref */
	taken[ntaken++] = xstrdup(host);
	taken[ntaken++] = xstrdup("os:alpine@3.19.1");
	for (size_t i = 0; i < l.n; i++) {
		char *purl = NULL;
		assert_int_equal(purl_format(&l.pkgs[i], &os, &purl), 0);
		snprintf(want, sizeof(want), "%s", purl);
		for (unsigned n = 2;; n++) {
			bool used = false;
			for (size_t k = 0; k < ntaken && !used; k++)
				used = strcmp(taken[k], want) == 0;
			if (!used)
				break;
			snprintf(want, sizeof(want), "%s&package-id=%u", purl,
			    n);
		}
		taken[ntaken++] = xstrdup(want);
		free(purl);
		assert_string_equal(jstr(json_array_get(comps, i + 1),
		    "bom-ref"), want);
	}
	/* the host took "=2" of dup: its copies are the purl, =3, =4... */
	assert_string_equal(jstr(json_array_get(comps, 1), "bom-ref"), base);
	snprintf(want, sizeof(want), "%s&package-id=3", base);
	assert_string_equal(jstr(json_array_get(comps, 2), "bom-ref"), want);
	snprintf(want, sizeof(want), "%s&package-id=%d", base, N + 1);
	assert_string_equal(jstr(json_array_get(comps, N), "bom-ref"), want);

	for (size_t k = 0; k < ntaken; k++)
		free(taken[k]);
	free(taken);
	json_decref(root);
	free(text);
	pkglist_free(&l);
	free(os.id);
	free(os.version_id);
}

/* A set cancel flag stops the writer: -ECANCELED and no document. */
static void
test_cancelled(void **state)
{
	struct fixture f;
	atomic_int cancel = 1;
	char *out = (char *)1;
	size_t len = 7;

	(void)state;
	fixture_debian(&f);
	f.doc.cancel = &cancel;
	assert_int_equal(cyclonedx_write(&f.doc, &out, &len), -ECANCELED);
	assert_null(out);
	assert_int_equal(len, 0);
	atomic_store(&cancel, 0);
	out = write_doc(&f.doc);
	free(out);
	fixture_free(&f);
}

/* ---- schema ------------------------------------------------------------- */

static int
is_dir(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* tools/schema-check of the source tree, or NULL. */
static char *
find_schema_check(void)
{
	const char *src = getenv("SBOMD_SOURCE_DIR");
	char dir[4096], path[4200];

	if (src != NULL) {
		snprintf(path, sizeof(path), "%s/tools/schema-check", src);
		return is_dir(path) ? xstrdup(path) : NULL;
	}
	if (getcwd(dir, sizeof(dir)) != NULL) {
		for (;;) {
			char *slash;

			snprintf(path, sizeof(path), "%s/tools/schema-check",
			    dir);
			if (is_dir(path))
				return xstrdup(path);
			if ((slash = strrchr(dir, '/')) == NULL ||
			    slash == dir)
				break;
			*slash = '\0';
		}
	}
	/* An out-of-tree build (/tmp/asan-cdx): this file's own path. */
	snprintf(dir, sizeof(dir), "%s", __FILE__);
	if (dir[0] == '/' && strstr(dir, "/tests/") != NULL) {
		*strrchr(dir, '/') = '\0';
		*strrchr(dir, '/') = '\0';
		snprintf(path, sizeof(path), "%s/tools/schema-check", dir);
		if (is_dir(path))
			return xstrdup(path);
	}
	return NULL;
}

static void
write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
}

/* Runs validate.js on the files; its exit status. */
static int
run_validate(const char *tool, const char *files)
{
	char cmd[8192];
	int st;

	snprintf(cmd, sizeof(cmd), "node '%s/validate.js' %s", tool, files);
	st = system(cmd);
	assert_true(st != -1 && WIFEXITED(st));
	return WEXITSTATUS(st);
}

static void
test_schema(void **state)
{
	char tmpl[] = "/tmp/sbomd-cdx-XXXXXX", path[256], files[4096] = "",
	    nm[4200], *tool, *out;
	struct fixture f;
	struct pkg *p;
	size_t i;

	(void)state;
	tool = find_schema_check();
	snprintf(nm, sizeof(nm), "%s/node_modules/ajv", tool ? tool : "");
	if (tool == NULL || !is_dir(nm) ||
	    system("command -v node >/dev/null 2>&1") != 0) {
		printf("SKIP schema check: %s\n", tool == NULL ?
		    "tools/schema-check not found (set SBOMD_SOURCE_DIR)" :
		    "node or tools/schema-check/node_modules missing "
		    "(run scripts/setup.sh)");
		free(tool);
		skip();
	}
	assert_non_null(mkdtemp(tmpl));

	struct sbom_doc docs[5];
	const char *names[5] = {"image-debian", "host", "empty", "apk", "rpm"};
	struct pkglist apk, rpm, none;
	struct os_info alpine, rhel;

	fixture_debian(&f);
	docs[0] = f.doc;

	pkglist_init(&none);
	memset(&docs[1], 0, sizeof(docs[1]));
	docs[1].subject.kind = ENTITY_HOST;
	docs[1].subject.id = "host.example.org";
	docs[1].os = &f.os;
	docs[1].pkgs = &f.pkgs;
	docs[1].timestamp_ms = 1714564800000;

	memset(&docs[2], 0, sizeof(docs[2]));
	docs[2].subject.kind = ENTITY_IMAGE;
	docs[2].subject.id = IMAGE_ID;
	docs[2].pkgs = &none;

	pkglist_init(&apk);
	os_set(&alpine, "alpine", "3.19.1", "Alpine Linux v3.19");
	add_pkg(&apk, PKG_APK, "musl", "1.2.4_git20230717-r4", "x86_64",
	    (const char *const[]){"MIT", NULL});
	add_pkg(&apk, PKG_APK, "busybox", "1.36.1-r15", "x86_64",
	    (const char *const[]){"GPL-2.0-only", NULL});
	add_pkg(&apk, PKG_APK, "libstdc++", "13.2.1_git20231014-r0", "x86_64",
	    (const char *const[]){"GPL-2.0-or-later AND LGPL-2.1-or-later",
	    NULL});
	pkglist_sort(&apk);
	memset(&docs[3], 0, sizeof(docs[3]));
	docs[3].subject.kind = ENTITY_IMAGE;
	docs[3].subject.id = IMAGE_ID;
	docs[3].subject.repo_tags = (const char *const[]){
	    "registry.example.org:5000/team/alpine:3.19"};
	docs[3].subject.ntags = 1;
	docs[3].subject.repo_digests = (const char *const[]){
	    "registry.example.org:5000/team/alpine@sha256:"
	    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"};
	docs[3].subject.ndigests = 1;
	docs[3].os = &alpine;
	docs[3].pkgs = &apk;

	pkglist_init(&rpm);
	os_set(&rhel, "rhel", "9.3", NULL);
	p = add_pkg(&rpm, PKG_RPM, "bash", "5.1.8", "x86_64",
	    (const char *const[]){"GPLv3+", NULL});
	p->release = xstrdup("6.el9");
	p->epoch = xstrdup("1");
	p->source_name = xstrdup("bash");
	p->source_version = xstrdup("5.1.8-6.el9");
	p = add_pkg(&rpm, PKG_RPM, "gpg-pubkey", "fd431d51", NULL, NULL);
	p->release = xstrdup("4ae0493b");
	pkglist_sort(&rpm);
	memset(&docs[4], 0, sizeof(docs[4]));
	docs[4].subject.kind = ENTITY_IMAGE;
	docs[4].subject.id = IMAGE_ID;
	docs[4].os = &rhel;
	docs[4].pkgs = &rpm;
	docs[4].tool_version = "9.9.9";

	for (i = 0; i < 5; i++) {
		out = write_doc(&docs[i]);
		snprintf(path, sizeof(path), "%s/%s.cdx.json", tmpl, names[i]);
		write_file(path, out);
		free(out);
		strcat(files, " '");
		strcat(files, path);
		strcat(files, "'");
	}
	assert_int_equal(run_validate(tool, files), 0);

	/* The check can fail: a component without a name is refused. */
	snprintf(path, sizeof(path), "%s/invalid.cdx.json", tmpl);
	write_file(path, "{\"bomFormat\":\"CycloneDX\",\"specVersion\":\"1.5\","
	    "\"version\":1,\"components\":[{\"type\":\"library\","
	    "\"version\":\"1.0\"}]}");
	snprintf(files, sizeof(files), "'%s'", path);
	assert_int_not_equal(run_validate(tool, files), 0);
	/* ... and so is a license "id" that is not an SPDX identifier */
	snprintf(path, sizeof(path), "%s/invalid2.cdx.json", tmpl);
	write_file(path, "{\"bomFormat\":\"CycloneDX\",\"specVersion\":\"1.5\","
	    "\"version\":1,\"components\":[{\"type\":\"library\","
	    "\"name\":\"x\",\"licenses\":[{\"license\":{\"id\":\"GPLv3+\"}}]}]}");
	snprintf(files, sizeof(files), "'%s'", path);
	assert_int_not_equal(run_validate(tool, files), 0);

	snprintf(files, sizeof(files), "rm -rf '%s'", tmpl);
	assert_int_equal(system(files), 0);
	pkglist_free(&apk);
	pkglist_free(&rpm);
	pkglist_free(&none);
	free(alpine.id);
	free(alpine.version_id);
	free(alpine.pretty_name);
	free(rhel.id);
	free(rhel.version_id);
	fixture_free(&f);
	free(tool);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_purl_deb),
		cmocka_unit_test(test_purl_missing_parts),
		cmocka_unit_test(test_purl_apk),
		cmocka_unit_test(test_purl_rpm),
		cmocka_unit_test(test_structure),
		cmocka_unit_test(test_host_and_empty),
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_duplicate_refs),
		cmocka_unit_test(test_cancelled),
		cmocka_unit_test(test_schema),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
