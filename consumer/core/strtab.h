/*
 * strtab: interned, reference-counted strings (the tracker's source
 * names). A node's name is stored once however many entities it reports;
 * a name nobody references any more is freed and its id reused.
 * Nothing here fails (memory comes from xmalloc, which aborts).
 */
#ifndef SBOMD_CORE_STRTAB_H
#define SBOMD_CORE_STRTAB_H

#include <stddef.h>
#include <stdint.h>

#define STRTAB_NONE UINT32_MAX

typedef struct strtab strtab;

strtab *strtab_new(void);
void strtab_free(strtab *st);

/* The id of s (len bytes), adding it if new; takes one reference. */
uint32_t strtab_intern(strtab *st, const char *s, size_t len);
/* The id of s, or STRTAB_NONE; takes no reference. Remembers the last
 * id found, so a run of lookups of one name costs one comparison. */
uint32_t strtab_lookup(strtab *st, const char *s, size_t len);
void strtab_ref(strtab *st, uint32_t id);
void strtab_unref(strtab *st, uint32_t id);
/* The string of id (NUL-terminated) and its length. */
const char *strtab_get(const strtab *st, uint32_t id, size_t *len);
size_t strtab_count(const strtab *st);
uint32_t strtab_refs(const strtab *st, uint32_t id);

#endif
