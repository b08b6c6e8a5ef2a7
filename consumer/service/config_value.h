/*
 * config_value: the typed values of the configuration keys (config_key.h)
 * in struct sbomd_config: setting them from text or from typed values,
 * within the key's bounds and checks; building lists item by item;
 * freeing, comparing and printing them.
 *
 * Every setter leaves the field unchanged on failure and returns 0, or
 * -EINVAL (malformed) / -ERANGE (out of bounds) with the reason in err.
 * Fields are passed as void * to the place config_key.off names.
 *
 * One thread at a time per config (the loader's).
 */
#ifndef SBOMD_SERVICE_CONFIG_VALUE_H
#define SBOMD_SERVICE_CONFIG_VALUE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "service/config.h"
#include "service/config_key.h"

/*
 * Sets a field from text in the environment syntax (also that of the
 * defaults): scalars as in the file but unquoted, durations and sizes as
 * strings, lists comma-separated. For list items err starts with the
 * 1-based item number.
 */
int config_value_set_text(const struct config_key *k, void *field,
    const char *text, char *err, size_t errlen);

/* Typed setters, for values the file gives typed. */
int config_value_set_string(const struct config_key *k, void *field,
    const char *s, char *err, size_t errlen); /* KT_STRING, KT_ENUM,
						 KT_DURATION */
int config_value_set_int(const struct config_key *k, void *field, int64_t v,
    char *err, size_t errlen);
int config_value_set_float(const struct config_key *k, void *field, double v,
    char *err, size_t errlen);
int config_value_set_size(const struct config_key *k, void *field, int64_t v,
    char *err, size_t errlen);
/* "<digits>[B|KiB|MiB|GiB|TiB]" into *v. */
int config_value_parse_size(const char *s, int64_t *v, char *err,
    size_t errlen);

/* A list value being built, for KT_STRLIST, KT_PROPS and KT_INTLIST. */
struct config_list {
	struct config_strlist strs;
	struct config_props props;
	struct config_intlist ints;
};

/* Adds a string item (KT_STRLIST, or "name=value" for KT_PROPS). */
int config_list_add_string(const struct config_key *k, struct config_list *l,
    const char *s, char *err, size_t errlen);
/* Adds an integer item (KT_INTLIST). */
int config_list_add_int(const struct config_key *k, struct config_list *l,
    int64_t v, char *err, size_t errlen);
/* Makes the built list the field's value (the old one is freed); l is
 * empty afterwards. */
void config_list_commit(const struct config_key *k, struct config_list *l,
    void *field);
void config_list_free(struct config_list *l);

/* Frees what the field owns and zeroes it. */
void config_value_free(const struct config_key *k, void *field);
/* Whether two fields of key k hold the same value. */
bool config_value_equal(const struct config_key *k, const void *a,
    const void *b);
/* The value in libconfig syntax, reading back to an equal value. */
void config_value_print(FILE *f, const struct config_key *k,
    const void *field);

#endif
