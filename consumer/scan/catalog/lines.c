/*
 * lines: see lines.h. Pure, any thread.
 */
#include "scan/catalog/lines.h"

#include <errno.h>
#include <string.h>

#include "scan/catalog/pkglist.h"
#include "util/errbuf.h"

void
lines_init(struct lines *l, const struct fileset_file *f)
{
	l->d = (const char *)f->data;
	l->end = l->d + f->len;
	l->nul = memchr(l->d, '\0', f->len);
	l->path = f->path;
	l->line = 0;
	l->cancel = NULL;
}

int
lines_next(struct lines *l, const char **s, size_t *len, char *err,
    size_t errlen)
{
	if (l->d >= l->end)
		return -ENOENT;
	const char *eol = memchr(l->d, '\n', (size_t)(l->end - l->d));
	if (eol == NULL)
		eol = l->end;
	l->line++;
	if (l->cancel != NULL && l->line % PKGLIST_POLL_EVERY == 0 &&
	    atomic_load(l->cancel) != 0) {
		errbuf_set(err, errlen, "%s:%zu: cancelled", l->path, l->line);
		return -ECANCELED;
	}
	if (l->nul != NULL && l->nul < eol) {
		errbuf_set(err, errlen, "%s:%zu: NUL byte", l->path, l->line);
		return -EINVAL;
	}
	*s = l->d;
	*len = (size_t)(eol - l->d);
	l->d = eol < l->end ? eol + 1 : l->end;
	return 0;
}
