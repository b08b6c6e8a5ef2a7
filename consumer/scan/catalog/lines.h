/*
 * lines: the text catalogers' line reader over a fileset file. Lines end
 * at '\n' (the last one may not); a NUL byte anywhere in a line is an
 * error naming the file and line, since none of these formats has one.
 */
#ifndef SBOMD_SCAN_CATALOG_LINES_H
#define SBOMD_SCAN_CATALOG_LINES_H

#include <stdatomic.h>
#include <stddef.h>

#include "scan/fileset.h"

struct lines {
	const char *d, *end; /* what is left to read */
	const char *nul;     /* the first NUL byte, or NULL */
	const char *path;
	size_t line;	     /* number of the line last returned, 1-based */
	const atomic_int *cancel; /* NULL (lines_init), or a flag that stops
				   * the reading */
};

/* A reader of f's lines; set cancel afterwards to make it stoppable. */
void lines_init(struct lines *l, const struct fileset_file *f);

/*
 * The next line in *s (len bytes, without its '\n'): 0; -ENOENT at the
 * end of the file; -EINVAL for a line holding a NUL byte ("PATH:LINE: NUL
 * byte" in err); -ECANCELED when the cancel flag is set, looked at every
 * PKGLIST_POLL_EVERY lines ("PATH:LINE: cancelled").
 */
int lines_next(struct lines *l, const char **s, size_t *len, char *err,
    size_t errlen);

#endif
