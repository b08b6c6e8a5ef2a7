/*
 * oci_layout: OCI image layouts, directories with an "oci-layout" file,
 * an index.json and blobs/sha256 (the image-spec's image-layout.md).
 * index.json is the root of the search: its descriptors are walked by the
 * front's index walk (imagestore.c), nested and multi-platform indexes
 * included.
 *
 * A layout that is not readable as one (index.json missing, a link, not
 * a regular file, over IMAGESTORE_MAX_JSON, not a JSON object) is an
 * error remembered in the lookup, and the search goes on in the other
 * stores. index.json is read once per lookup: layouts are small (one
 * index of a few to a few hundred descriptors) and may be rewritten
 * between lookups, so nothing is cached. Any thread; no state.
 */
#include "scan/oci/imagestore_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/errbuf.h"

bool
oci_layout_is(int dfd)
{
	struct stat st;

	return fstatat(dfd, "oci-layout", &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(st.st_mode) &&
	    fstatat(dfd, "index.json", &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* Reads and parses the layout's index.json. */
static int
oci_layout_index(const struct image_store *s, json_t **idx, char *err,
    size_t errlen)
{
	struct stat st;
	char *buf = NULL;
	size_t len;
	int fd, rc;

	fd = openat(s->dfd, "index.json", O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
		O_CLOEXEC);
	if (fd < 0) {
		rc = errno == ELOOP ? -EINVAL : -EIO;
		errbuf_set(err, errlen, "index.json: %s", strerror(errno));
		return rc;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		errbuf_set(err, errlen, "index.json is not a regular file");
		return -EINVAL;
	}
	rc = blob_read_all(fd, IMAGESTORE_MAX_JSON, &buf, &len, "index.json",
	    err, errlen);
	close(fd);
	if (rc == 0)
		rc = blob_parse_object(buf, len, idx, "index.json", err,
		    errlen);
	free(buf);
	return rc;
}

bool
oci_layout_search(struct image_store *s, struct image_lookup *L,
    struct image_hit *h)
{
	json_t *idx = NULL;
	char why[512];
	bool found;
	int rc;

	if ((rc = oci_layout_index(s, &idx, why, sizeof(why))) != 0) {
		image_lookup_record(L, rc, s->path, why);
		return false;
	}
	found = image_search_index(s, L, idx, 0, false, h);
	json_decref(idx);
	return found;
}
