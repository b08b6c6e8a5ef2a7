/*
 * cyclonedx: CycloneDX 1.5 JSON documents with package URLs.
 */
#ifndef SBOMD_SCAN_CYCLONEDX_H
#define SBOMD_SCAN_CYCLONEDX_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "scan/catalog/pkglist.h"
#include "util/vocab.h"

struct sbom_subject {
	enum entity_kind kind;
	const char *id;	/* "sha256:…" image ID, or the host name */
	const char *const *repo_tags;
	size_t ntags;
	const char *const *repo_digests;
	size_t ndigests;
};

struct sbom_doc {
	struct sbom_subject subject;
	const struct os_info *os;	/* may be NULL */
	const struct pkglist *pkgs;	/* sorted (pkglist_sort) */
	const char *serial;		/* "urn:uuid:…"; NULL: generated */
	int64_t timestamp_ms;		/* metadata.timestamp */
	const char *tool_version;	/* sbomd's version */
	/* NULL, or a flag another thread sets to stop the writing: looked
	 * at every PKGLIST_POLL_EVERY packages and before the text is
	 * made. */
	const atomic_int *cancel;
};

/*
 * Writes the document as JSON into *out (malloc'd, NUL-terminated).
 * Components are sorted and bom-refs unique, so two scans of one image
 * differ only in serialNumber and timestamp. 0, -EINVAL for a bad
 * document, -ENOMEM, -ECANCELED when doc->cancel was set, or
 * -EIO/-errno when no random serial can be made. Time and memory are
 * O(n log n) and O(n) in the packages, duplicates or not.
 */
int cyclonedx_write(const struct sbom_doc *doc, char **out, size_t *len);

#endif
