/*
 * purl: package URLs for the OS packages the catalogers find.
 *
 *   pkg:<type>/<namespace>/<name>@<version>?<qualifiers>
 *
 * The form follows the purl spec's deb / apk / rpm type definitions and,
 * where the spec leaves a choice, what Trivy emits (pkg/purl/purl.go with
 * packageurl-go), because users diff our SBOMs against Trivy's:
 *
 *   deb  pkg:deb/debian/login@4.13%2Bdfsg1-1?arch=amd64&distro=debian-12.5&epoch=1
 *   apk  pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=3.18.4
 *   rpm  pkg:rpm/redhat/bash@5.1.8-6.el9?arch=x86_64&distro=redhat-9.3&epoch=1
 *
 * - namespace: the OS family, lowercased; os-release IDs are mapped to the
 *   family names Trivy uses (rhel -> redhat, almalinux -> alma, amzn ->
 *   amazon, ol -> oracle, opensuse-leap -> opensuse.leap...). Unknown OS:
 *   no namespace and no distro qualifier, as Trivy does.
 * - version: deb and rpm move a non-zero epoch out of the version into
 *   the "epoch" qualifier (the spec's rpm definition and Trivy for both);
 *   rpm's version is version-release.
 * - qualifiers: arch, distro (deb, rpm: "<family>-<version_id>"; apk:
 *   "<version_id>" alone, as Trivy), epoch; sorted by key as the spec
 *   requires of a canonical purl; empty values are left out.
 * - percent-encoding: everything but ASCII alphanumerics and ".-_~" is
 *   encoded in name, version and qualifier values, so '+' is %2B (Trivy
 *   and the spec agree) and ':' is %3A. The newest spec text lets ':'
 *   stand unencoded; packageurl-go (hence Trivy) encodes it, both decode
 *   to the same purl, and a deb/rpm version only keeps a ':' in the rare
 *   case of a colon after the epoch.
 *
 * Pure functions, any thread. Strings are short (< 1 KiB) and built in
 * a textbuf that simply grows.
 */
#include "scan/sbom/purl.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

struct qual {
	const char *key;
	const char *value;	/* not yet encoded */
	size_t vlen;
};

void
purl_encode(struct textbuf *b, const char *s, size_t n, bool lower)
{
	static const char hex[] = "0123456789ABCDEF";

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char enc[3];

		if (lower && c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '-' ||
		    c == '_' || c == '~') {
			enc[0] = (char)c;
			textbuf_append(b, enc, 1);
		} else {
			enc[0] = '%';
			enc[1] = hex[c >> 4];
			enc[2] = hex[c & 15];
			textbuf_append(b, enc, 3);
		}
	}
}

static void
purl_puts(struct textbuf *b, const char *s)
{
	textbuf_append(b, s, strlen(s));
}

/*
 * The purl namespace (OS family) for an os-release ID, as Trivy names
 * the families; other IDs are used as they are (lowercased by the
 * encoder).
 */
static const char *
purl_family(const char *id)
{
	static const struct {
		const char *id, *family;
	} map[] = {
		{"rhel", "redhat"},
		{"almalinux", "alma"},
		{"amzn", "amazon"},
		{"ol", "oracle"},
		{"opensuse-leap", "opensuse.leap"},
		{"opensuse-tumbleweed", "opensuse.tumbleweed"},
		{"sles", "sles"},
		{"sled", "sles"},
	};
	size_t i;

	for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcasecmp(id, map[i].id) == 0)
			return map[i].family;
	return id;
}

/*
 * Splits "N:rest" into the epoch digits and the rest; *elen is 0 when
 * the version has no epoch.
 */
static const char *
purl_split_epoch(const char *v, const char **epoch, size_t *elen)
{
	size_t n = 0;

	while (v[n] >= '0' && v[n] <= '9')
		n++;
	if (n > 0 && v[n] == ':') {
		*epoch = v;
		*elen = n;
		return v + n + 1;
	}
	*epoch = NULL;
	*elen = 0;
	return v;
}

/* An epoch of all zeros is no epoch (Trivy: Epoch != 0). */
static bool
purl_epoch_set(const char *e, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (e[i] != '0')
			return true;
	return false;
}

static void
purl_add_qual(struct qual *q, size_t *nq, const char *key,
    const char *value, size_t vlen)
{
	if (value == NULL || vlen == 0)
		return;
	q[*nq].key = key;
	q[*nq].value = value;
	q[*nq].vlen = vlen;
	(*nq)++;
}

static const char *
purl_type_name(enum pkg_type t)
{
	switch (t) {
	case PKG_DEB:
		return "deb";
	case PKG_APK:
		return "apk";
	case PKG_RPM:
		return "rpm";
	}
	return NULL;
}

/* "@version[-release]" (version without its epoch), when there is one. */
static void
purl_put_version(struct textbuf *b, const struct pkg *p, const char *version)
{
	if (version[0] == '\0')
		return;
	purl_puts(b, "@");
	purl_encode(b, version, strlen(version), false);
	/* version may already be version-release */
	if (p->type == PKG_RPM && pkg_needs_release(version, p->release)) {
		purl_puts(b, "-");
		purl_encode(b, p->release, strlen(p->release), false);
	}
}

/* "?k=v&..." sorted by key (distro: the "distro" value, may be empty). */
static void
purl_put_qualifiers(struct textbuf *b, const struct pkg *p,
    const struct textbuf *distro, const char *epoch, size_t elen)
{
	struct qual q[4];
	size_t nq = 0, i, j;

	purl_add_qual(q, &nq, "arch", p->arch, p->arch ? strlen(p->arch) : 0);
	purl_add_qual(q, &nq, "distro", distro->data, distro->len);
	purl_add_qual(q, &nq, "epoch", epoch, elen);
	/* Keys are few and fixed; insertion sort keeps them canonical. */
	for (i = 1; i < nq; i++)
		for (j = i; j > 0 && strcmp(q[j - 1].key, q[j].key) > 0; j--) {
			struct qual t = q[j];

			q[j] = q[j - 1];
			q[j - 1] = t;
		}
	for (i = 0; i < nq; i++) {
		purl_puts(b, i == 0 ? "?" : "&");
		purl_puts(b, q[i].key);
		purl_puts(b, "=");
		purl_encode(b, q[i].value, q[i].vlen, false);
	}
}

int
purl_format(const struct pkg *p, const struct os_info *os, char **out)
{
	struct textbuf b = {0}, distro = {0};
	const char *type, *family = NULL, *version, *epoch = NULL;
	size_t elen = 0;

	*out = NULL;
	if (p == NULL || p->name == NULL || p->name[0] == '\0' ||
	    (type = purl_type_name(p->type)) == NULL)
		return -EINVAL;
	if (os != NULL && os->id != NULL && os->id[0] != '\0')
		family = purl_family(os->id);

	version = p->version != NULL ? p->version : "";
	if (p->type != PKG_APK)
		version = purl_split_epoch(version, &epoch, &elen);
	if (p->type == PKG_RPM && p->epoch != NULL && p->epoch[0] != '\0') {
		epoch = p->epoch;
		elen = strlen(p->epoch);
	}
	if (!purl_epoch_set(epoch, elen))
		elen = 0;

	if (family != NULL && os->version_id != NULL &&
	    os->version_id[0] != '\0') {
		if (p->type != PKG_APK) {
			/* Lowercased here, encoded with the other values. */
			purl_puts(&distro, family);
			for (char *c = distro.data; *c != '\0'; c++)
				if (*c >= 'A' && *c <= 'Z')
					*c = (char)(*c - 'A' + 'a');
			purl_puts(&distro, "-");
		}
		purl_puts(&distro, os->version_id);
	}

	purl_puts(&b, "pkg:");
	purl_puts(&b, type);
	purl_puts(&b, "/");
	if (family != NULL) {
		purl_encode(&b, family, strlen(family), true);
		purl_puts(&b, "/");
	}
	/* deb and apk names are lowercase by their spec; rpm's keep case. */
	purl_encode(&b, p->name, strlen(p->name), p->type != PKG_RPM);
	purl_put_version(&b, p, version);
	purl_put_qualifiers(&b, p, &distro, epoch, elen);
	*out = textbuf_take(&b, NULL);
	textbuf_free(&distro);
	return 0;
}
