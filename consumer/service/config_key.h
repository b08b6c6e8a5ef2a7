/*
 * config_key: the configuration's keys, one row each in config_keys[]:
 * the dotted name, the type, where the value lives in struct
 * sbomd_config, its bounds, its default and a one-line doc. The loader,
 * the environment overrides, the defaults, the dump, equality and
 * freeing all walk this table (config.c, config_value.c), so a key added
 * here is loaded, overridable, printed, compared and freed without
 * touching any other code.
 *
 * Rows of one group are contiguous; the group is the part of the name
 * before the dot and contains no '_' (so SBOMD_<GROUP>_<KEY> maps back to
 * one key without ambiguity). Defaults are written in the environment
 * syntax and go through the same parser as SBOMD_ values, so a default
 * can never bypass a bound.
 *
 * Read-only data and pure functions: any thread.
 */
#ifndef SBOMD_SERVICE_CONFIG_KEY_H
#define SBOMD_SERVICE_CONFIG_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum config_ktype {
	KT_STRING,	/* char * */
	KT_ENUM,	/* an enum; names[] are its values in order */
	KT_INT,		/* int32_t/uint32_t (size 4) or int64_t (size 8) */
	KT_FLOAT,	/* double; an integer in the file is accepted */
	KT_DURATION,	/* int64_t ms, from a duration string */
	KT_SIZE,	/* int64_t bytes, an integer or "64MiB" */
	KT_STRLIST,	/* struct config_strlist */
	KT_PROPS,	/* struct config_props */
	KT_INTLIST,	/* struct config_intlist */
	KT_BOOL,	/* int32_t 0/1; true/false in the file, names[] are
			 * {"false", "true"} */
};

/* Checks a string value (or list item, or property name): 0, or -EINVAL
 * with the reason in err. */
typedef int (*config_check_fn)(const char *s, char *err, size_t errlen);

struct config_key {
	const char *name;	/* "group.key" */
	enum config_ktype type;
	size_t off, size;	/* of the field in struct sbomd_config */
	int64_t min, max;	/* KT_INT, KT_INTLIST items, KT_DURATION,
				 * KT_SIZE */
	double fmin, fmax;	/* KT_FLOAT: [fmin, fmax], or [fmin, fmax) */
	bool fmax_open;
	const char *const *names; /* KT_ENUM, NULL-terminated */
	config_check_fn check;	/* KT_STRING, KT_STRLIST items, KT_PROPS
				 * names */
	const char *def;	/* default, in environment syntax */
	const char *doc;	/* one line, for config_dump */
};

/* The table, in the order keys are printed. */
extern const struct config_key config_keys[];
extern const size_t config_nkeys;

/* The key named name ("group.key"), or NULL. */
const struct config_key *config_key_find(const char *name);
/* The key whose environment variable is var[0..len), or NULL. */
const struct config_key *config_key_by_env(const char *var, size_t len);
/* The length of the group part of a key name. */
size_t config_key_group_len(const char *name);
/* Whether some key is in group g. */
bool config_key_group_known(const char *g);
/* SBOMD_<GROUP>_<KEY> of k into buf. */
void config_key_env_name(const struct config_key *k, char *buf,
    size_t buflen);

/*
 * For "did you mean": the key most like name ("group.key", or a bare key:
 * one with the same key part in another group, else the nearest by edit
 * distance); the group most like g (into buf); the variable most like
 * var[0..len) (into buf). NULL when nothing is close enough.
 */
const char *config_key_suggest(const char *name);
const char *config_key_suggest_group(const char *g, char *buf, size_t buflen);
const char *config_key_suggest_env(const char *var, size_t len, char *buf,
    size_t buflen);

#endif
