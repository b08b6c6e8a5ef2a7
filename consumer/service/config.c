/*
 * config: loading the service configuration (libconfig file, SBOMD_
 * environment, cross-key checks), printing it, comparing it. The keys
 * are config_key.c's table; their values are config_value.c's; this file
 * walks the table for the file, the environment, the defaults, the dump,
 * equality and freeing.
 *
 * The loader stops at the first problem. Every message says where the
 * value came from ("FILE:LINE: key: ...", "environment SBOMD_X: ...");
 * cross-key messages are prefixed with the origin of the first key they
 * mention that was set explicitly.
 *
 * libconfig 1.5 quirks: integers above 2^31-1 need an 'L' suffix (without
 * it they silently wrap; sizes are therefore best written as strings,
 * "64GiB"); separators between settings are optional.
 *
 * Called once at start-up, from one thread.
 */
#include "service/config.h"

#include <ctype.h>
#include <errno.h>
#include <libconfig.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "service/config_key.h"
#include "service/config_value.h"
#include "util/errbuf.h"
#include "util/redact.h"
#include "util/xmalloc.h"

extern char **environ;

static void *
field_of(struct sbomd_config *c, const struct config_key *k)
{
	return (char *)c + k->off;
}

static const void *
cfield_of(const struct sbomd_config *c, const struct config_key *k)
{
	return (const char *)c + k->off;
}

/* ---- loading ---- */

struct origin {
	const char *file;	/* NULL: not set from a file */
	unsigned line;
	bool env;		/* set from its environment variable */
};

struct loader {
	struct sbomd_config *c;
	const char *path;
	char *incdir;		/* the directory of path: @include base */
	char **shown;		/* included files' names as shown (owned) */
	size_t nshown;
	struct origin *origin;	/* by index in config_keys */
	char *err;
	size_t errlen;
	char *none[1];		/* an empty environment */
};

static struct origin *
origin_of(struct loader *ld, const struct config_key *k)
{
	return &ld->origin[k - config_keys];
}

static const char *
setting_type_name(int type)
{
	switch (type) {
	case CONFIG_TYPE_GROUP:
		return "a group";
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		return "an integer";
	case CONFIG_TYPE_FLOAT:
		return "a float";
	case CONFIG_TYPE_STRING:
		return "a string";
	case CONFIG_TYPE_BOOL:
		return "a boolean";
	case CONFIG_TYPE_ARRAY:
	case CONFIG_TYPE_LIST:
		return "a list";
	default:
		return "nothing";
	}
}

/*
 * The file a setting came from, as the user can find it: libconfig keeps
 * @include names as written, relative to the include directory.
 */
static const char *
setting_file(struct loader *ld, const config_setting_t *s)
{
	const char *f = config_setting_source_file(s);
	size_t n;
	char *p;

	if (f == NULL || strcmp(f, ld->path) == 0)
		return ld->path;
	if (f[0] == '/' || ld->incdir == NULL)
		return f;
	for (size_t i = 0; i < ld->nshown; i++) {
		const char *tail = ld->shown[i] + strlen(ld->incdir) + 1;
		if (strcmp(tail, f) == 0)
			return ld->shown[i];
	}
	n = strlen(ld->incdir) + strlen(f) + 2;
	p = xmalloc(n);
	snprintf(p, n, "%s/%s", ld->incdir, f);
	ld->shown = xreallocarray(ld->shown, ld->nshown + 1,
	    sizeof(*ld->shown));
	ld->shown[ld->nshown++] = p;
	return p;
}

/* "FILE:LINE: what: message" in the loader's err; -EINVAL. */
__attribute__((format(printf, 4, 5))) static int
fail_at(struct loader *ld, const config_setting_t *s, const char *what,
    const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	errbuf_set(ld->err, ld->errlen, "%s:%u: %s%s%s", setting_file(ld, s),
	    config_setting_source_line(s), what != NULL ? what : "",
	    what != NULL ? ": " : "", msg);
	return -EINVAL;
}

static bool
is_int(int type)
{
	return type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64;
}

/* Sets a scalar key from its setting in the file. */
static int
set_scalar(struct loader *ld, const struct config_key *k,
    const config_setting_t *s)
{
	void *field = field_of(ld->c, k);
	int type = config_setting_type(s);
	char reason[512];
	int64_t v = 0;
	int rc;

	switch (k->type) {
	case KT_BOOL:
		if (type != CONFIG_TYPE_BOOL)
			return fail_at(ld, s, k->name, "expected true or false, "
			    "got %s", setting_type_name(type));
		rc = config_value_set_string(k, field,
		    config_setting_get_bool(s) ? "true" : "false", reason,
		    sizeof(reason));
		break;
	case KT_STRING:
	case KT_ENUM:
	case KT_DURATION:
		if (type == CONFIG_TYPE_STRING)
			rc = config_value_set_string(k, field,
			    config_setting_get_string(s), reason,
			    sizeof(reason));
		else if (k->type == KT_DURATION && is_int(type) &&
		    config_setting_get_int64(s) == 0)
			rc = config_value_set_string(k, field, "0", reason,
			    sizeof(reason));
		else if (k->type == KT_DURATION)
			return fail_at(ld, s, k->name, "expected a duration "
			    "string such as \"5m\", got %s",
			    setting_type_name(type));
		else
			return fail_at(ld, s, k->name, "expected a string, "
			    "got %s", setting_type_name(type));
		break;
	case KT_INT:
		if (!is_int(type))
			return fail_at(ld, s, k->name, "expected an integer, "
			    "got %s", setting_type_name(type));
		rc = config_value_set_int(k, field, config_setting_get_int64(s),
		    reason, sizeof(reason));
		break;
	case KT_FLOAT:
		if (type != CONFIG_TYPE_FLOAT && !is_int(type))
			return fail_at(ld, s, k->name, "expected a number, got "
			    "%s", setting_type_name(type));
		rc = config_value_set_float(k, field,
		    type == CONFIG_TYPE_FLOAT ? config_setting_get_float(s) :
		    (double)config_setting_get_int64(s), reason,
		    sizeof(reason));
		break;
	case KT_SIZE:
		if (is_int(type))
			v = config_setting_get_int64(s);
		else if (type != CONFIG_TYPE_STRING)
			return fail_at(ld, s, k->name, "expected a size (an "
			    "integer or a string such as \"64MiB\"), got %s",
			    setting_type_name(type));
		rc = type == CONFIG_TYPE_STRING ? config_value_parse_size(
		    config_setting_get_string(s), &v, reason, sizeof(reason)) :
		    0;
		if (rc == 0)
			rc = config_value_set_size(k, field, v, reason,
			    sizeof(reason));
		break;
	default:
		return -EINVAL;
	}
	return rc != 0 ? fail_at(ld, s, k->name, "%s", reason) : 0;
}

/* Sets a list key from its setting in the file, item by item. */
static int
set_list(struct loader *ld, const struct config_key *k,
    const config_setting_t *s)
{
	struct config_list l = {0};
	int type = config_setting_type(s);
	int want = k->type == KT_INTLIST ? CONFIG_TYPE_INT : CONFIG_TYPE_STRING;
	char what[96], reason[512];
	int rc = 0;

	if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST)
		return fail_at(ld, s, k->name, "expected a list, got %s",
		    setting_type_name(type));
	for (int i = 0; i < config_setting_length(s) && rc == 0; i++) {
		const config_setting_t *e = config_setting_get_elem(s,
		    (unsigned)i);
		int et = config_setting_type(e);
		snprintf(what, sizeof(what), "%s[%d]", k->name, i);
		if (et != want && !(want == CONFIG_TYPE_INT && is_int(et))) {
			rc = fail_at(ld, e, what, "expected %s, got %s",
			    setting_type_name(want), setting_type_name(et));
			break;
		}
		if (k->type == KT_INTLIST)
			rc = config_list_add_int(k, &l,
			    config_setting_get_int64(e), reason,
			    sizeof(reason));
		else
			rc = config_list_add_string(k, &l,
			    config_setting_get_string(e), reason,
			    sizeof(reason));
		if (rc != 0)
			rc = fail_at(ld, e, what, "%s", reason);
	}
	if (rc == 0)
		config_list_commit(k, &l, field_of(ld->c, k));
	config_list_free(&l);
	return rc;
}

/* Sets a key from its setting in the file. */
static int
set_from_setting(struct loader *ld, const struct config_key *k,
    const config_setting_t *s)
{
	if (k->type == KT_STRLIST || k->type == KT_PROPS ||
	    k->type == KT_INTLIST)
		return set_list(ld, k, s);
	return set_scalar(ld, k, s);
}

static int
load_group(struct loader *ld, const config_setting_t *g)
{
	const char *gname = config_setting_name(g);
	int n = config_setting_length(g);

	for (int i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(g,
		    (unsigned)i);
		char full[256];
		int rc;

		snprintf(full, sizeof(full), "%s.%s", gname,
		    config_setting_name(s));
		const struct config_key *k = config_key_find(full);
		if (k == NULL) {
			const char *sug = config_key_suggest(full);
			if (sug != NULL)
				return fail_at(ld, s, NULL,
				    "unknown key '%s' (did you mean '%s'?)",
				    full, sug);
			return fail_at(ld, s, NULL, "unknown key '%s'", full);
		}
		if ((rc = set_from_setting(ld, k, s)) != 0)
			return rc;
		struct origin *o = origin_of(ld, k);
		o->file = setting_file(ld, s);
		o->line = config_setting_source_line(s);
		o->env = false;
	}
	return 0;
}

/* An unknown group at the top level: -EINVAL, with a suggestion. */
static int
unknown_group(struct loader *ld, const config_setting_t *s, const char *name)
{
	char buf[32];
	const char *sug = config_key_suggest(name);

	if (sug != NULL && strcmp(sug + config_key_group_len(sug) + 1,
	    name) == 0)
		return fail_at(ld, s, NULL, "unknown group '%s' (did you mean "
		    "'%s'? keys belong inside their group)", name, sug);
	sug = config_key_suggest_group(name, buf, sizeof(buf));
	if (sug != NULL)
		return fail_at(ld, s, NULL, "unknown group '%s' (did you mean "
		    "'%s'?)", name, sug);
	return fail_at(ld, s, NULL, "unknown group '%s'", name);
}

static int
load_root(struct loader *ld, const config_setting_t *root)
{
	int n = config_setting_length(root);

	for (int i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(root,
		    (unsigned)i);
		const char *name = config_setting_name(s);
		int rc;

		if (!config_key_group_known(name))
			return unknown_group(ld, s, name);
		if (config_setting_type(s) != CONFIG_TYPE_GROUP)
			return fail_at(ld, s, name, "expected a group, got %s",
			    setting_type_name(config_setting_type(s)));
		if ((rc = load_group(ld, s)) != 0)
			return rc;
	}
	return 0;
}

/* SBOMD_ variables that are not configuration keys. */
static bool
env_allowed(const char *name, size_t len)
{
	static const char *const allow[] = {"SBOMD_BIN", "SBOMD_SOURCE_DIR"};

	if (len >= 11 && strncmp(name, "SBOMD_TEST_", 11) == 0)
		return true;
	for (size_t i = 0; i < sizeof(allow) / sizeof(allow[0]); i++)
		if (strlen(allow[i]) == len && strncmp(name, allow[i], len) == 0)
			return true;
	return false;
}

static int
load_env(struct loader *ld, char *const *envp)
{
	for (size_t e = 0; envp[e] != NULL; e++) {
		const char *var = envp[e];
		const char *eq = strchr(var, '=');
		size_t len = eq != NULL ? (size_t)(eq - var) : strlen(var);
		char reason[512];

		if (strncmp(var, "SBOMD_", 6) != 0 || env_allowed(var, len))
			continue;
		const struct config_key *k = config_key_by_env(var, len);
		if (k == NULL) {
			const char *sug = config_key_suggest_env(var, len,
			    reason, sizeof(reason));
			errbuf_set(ld->err, ld->errlen, "environment %.*s: no "
			    "such configuration key%s%s%s", (int)len, var,
			    sug != NULL ? " (did you mean " : "",
			    sug != NULL ? sug : "", sug != NULL ? "?)" : "");
			return -EINVAL;
		}
		if (config_value_set_text(k, field_of(ld->c, k), eq != NULL ?
		    eq + 1 : "", reason, sizeof(reason)) != 0) {
			errbuf_set(ld->err, ld->errlen, "environment %.*s: %s",
			    (int)len, var, reason);
			return -EINVAL;
		}
		origin_of(ld, k)->env = true;
	}
	return 0;
}

/*
 * A cross-key problem: msg names keys; the message is prefixed with the
 * origin of the first named key (by position in msg) that was set
 * explicitly, else with "configuration". -EINVAL.
 */
static int
fail_cross(struct loader *ld, const char *msg)
{
	const struct origin *o = NULL;
	const char *first = NULL;
	const struct config_key *k = NULL;
	char env[128];

	for (size_t i = 0; i < config_nkeys; i++) {
		const struct origin *oi = &ld->origin[i];
		const char *name = config_keys[i].name;
		size_t n = strlen(name);
		const char *at = msg;

		if (oi->file == NULL && !oi->env)
			continue;
		while ((at = strstr(at, name)) != NULL) {
			char next = at[n];
			if (!isalnum((unsigned char)next) && next != '_')
				break;
			at += n;
		}
		if (at != NULL && (first == NULL || at < first)) {
			first = at;
			o = oi;
			k = &config_keys[i];
		}
	}
	if (o == NULL) {
		errbuf_set(ld->err, ld->errlen, "configuration: %s", msg);
	} else if (o->env) {
		config_key_env_name(k, env, sizeof(env));
		errbuf_set(ld->err, ld->errlen, "environment %s: %s", env, msg);
	} else {
		errbuf_set(ld->err, ld->errlen, "%s:%u: %s", o->file, o->line,
		    msg);
	}
	return -EINVAL;
}

static int
check_cross(struct loader *ld)
{
	const struct sbomd_config *c = ld->c;
	struct tracker_config tc;
	char msg[512];

	config_to_tracker(c, &tc);
	if (tracker_config_validate(&tc, msg, sizeof(msg)) != 0)
		return fail_cross(ld, msg);
	if (c->kafka.output_framing == CONFIG_FRAMING_CONFLUENT &&
	    c->kafka.output_schema_id == 0)
		return fail_cross(ld, "kafka.output_schema_id must be > 0 when "
		    "kafka.output_framing is \"confluent\"");
	if (strcmp(c->kafka.output_topic, c->kafka.input_topic) == 0)
		return fail_cross(ld, "kafka.output_topic must differ from "
		    "kafka.input_topic");
	if (strcmp(c->kafka.dead_letter_topic, c->kafka.input_topic) == 0 ||
	    strcmp(c->kafka.dead_letter_topic, c->kafka.output_topic) == 0)
		return fail_cross(ld, "kafka.dead_letter_topic must differ "
		    "from kafka.input_topic and kafka.output_topic");
	const char *cl = c->state.changelog_topic;
	if (cl[0] != '\0' && (strcmp(cl, c->kafka.input_topic) == 0 ||
	    strcmp(cl, c->kafka.output_topic) == 0 ||
	    strcmp(cl, c->kafka.dead_letter_topic) == 0))
		return fail_cross(ld, "state.changelog_topic must differ from "
		    "kafka.input_topic, kafka.output_topic and "
		    "kafka.dead_letter_topic");
	if (c->kafka.delivery == CONFIG_DELIVERY_EXACTLY_ONCE && cl[0] == '\0')
		return fail_cross(ld, "kafka.delivery = \"exactly-once\" needs "
		    "state.changelog_topic (the changelog is committed in the "
		    "same Kafka transaction as the outcomes and offsets)");
	for (size_t i = 0; c->kafka.delivery == CONFIG_DELIVERY_EXACTLY_ONCE &&
	    i < c->kafka.consumer_properties.n; i++)
		if (strcmp(c->kafka.consumer_properties.v[i].name,
		    "enable.auto.commit") == 0)
			return fail_cross(ld, "kafka.consumer_properties: "
			    "\"enable.auto.commit\" is set by kafka.delivery "
			    "= \"exactly-once\" (the offsets go with the "
			    "transactions)");
	if (c->scan.backend == CONFIG_BACKEND_EXEC) {
		if (c->scan.exec_argv.n == 0)
			return fail_cross(ld, "scan.exec_argv must not be empty "
			    "when scan.backend is \"exec\"");
		if (c->scan.exec_argv.v[0][0] == '\0')
			return fail_cross(ld, "scan.exec_argv: the program "
			    "(first item) must not be empty");
	}
	if (c->scan.backend == CONFIG_BACKEND_OCI && c->scan.stores.n == 0)
		return fail_cross(ld, "scan.stores must not be empty when "
		    "scan.backend is \"oci\"");
	return 0;
}

/* libconfig's parse error: -EIO when the file could not be read, else
 * -EINVAL, with "FILE:LINE: text". */
static int
read_error(struct loader *ld, config_t *cfg, const char *path)
{
	const char *f = config_error_file(cfg);
	bool io = config_error_type(cfg) == CONFIG_ERR_FILE_IO;

	if (f != NULL && strcmp(f, path) != 0 && f[0] != '/' &&
	    ld->incdir != NULL)
		errbuf_set(ld->err, ld->errlen, "%s/%s:%d: %s", ld->incdir, f,
		    config_error_line(cfg), config_error_text(cfg));
	else if (io)
		errbuf_set(ld->err, ld->errlen, "%s: %s", f != NULL ? f : path,
		    config_error_text(cfg));
	else
		errbuf_set(ld->err, ld->errlen, "%s:%d: %s", f != NULL ? f :
		    path, config_error_line(cfg), config_error_text(cfg));
	return io ? -EIO : -EINVAL;
}

static int
load_file(struct loader *ld, config_t *cfg, const char *path)
{
	struct stat st;
	char *dir, *slash;

	if (stat(path, &st) != 0) {
		int rc = -errno;
		errbuf_set(ld->err, ld->errlen, "%s: %s", path, strerror(-rc));
		return rc;
	}
	if (S_ISDIR(st.st_mode)) {
		errbuf_set(ld->err, ld->errlen, "%s: %s", path,
		    strerror(EISDIR));
		return -EISDIR;
	}
	/* @include "x" is relative to the main file's directory */
	dir = xstrdup(path);
	slash = strrchr(dir, '/');
	if (slash != NULL) {
		slash[slash == dir ? 1 : 0] = '\0';
		config_set_include_dir(cfg, dir);
		ld->incdir = dir;
	} else {
		free(dir);
	}
	if (!config_read_file(cfg, path))
		return read_error(ld, cfg, path);
	return load_root(ld, config_root_setting(cfg));
}

int
config_load(struct sbomd_config *c, const char *path, char *const *envp,
    char *err, size_t errlen)
{
	struct sbomd_config tmp;
	struct loader *ld = xcalloc(1, sizeof(*ld));
	config_t cfg;
	int rc = 0;

	config_defaults(&tmp);
	config_init(&cfg);
	ld->origin = xcalloc(config_nkeys, sizeof(*ld->origin));
	ld->c = &tmp;
	ld->path = path;
	ld->err = err;
	ld->errlen = errlen;
	if (path != NULL && (rc = load_file(ld, &cfg, path)) != 0)
		goto out;
	if (envp == NULL)
		envp = environ != NULL ? environ : (char *const *)ld->none;
	if ((rc = load_env(ld, envp)) != 0)
		goto out;
	rc = check_cross(ld); /* origins point into cfg: before destroy */
out:
	config_destroy(&cfg);
	for (size_t i = 0; i < ld->nshown; i++)
		free(ld->shown[i]);
	free(ld->shown);
	free(ld->incdir);
	free(ld->origin);
	free(ld);
	if (rc != 0) {
		config_free(&tmp);
		memset(c, 0, sizeof(*c));
		return rc;
	}
	*c = tmp;
	return 0;
}

/* ---- defaults, free, equal ---- */

void
config_defaults(struct sbomd_config *c)
{
	char reason[256];

	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < config_nkeys; i++) {
		const struct config_key *k = &config_keys[i];
		if (config_value_set_text(k, field_of(c, k), k->def, reason,
		    sizeof(reason)) != 0) {
			fprintf(stderr, "config: bad default of %s: %s\n",
			    k->name, reason);
			abort();
		}
	}
}

void
config_free(struct sbomd_config *c)
{
	for (size_t i = 0; i < config_nkeys; i++)
		config_value_free(&config_keys[i],
		    field_of(c, &config_keys[i]));
	memset(c, 0, sizeof(*c));
}

bool
config_equal(const struct sbomd_config *a, const struct sbomd_config *b)
{
	for (size_t i = 0; i < config_nkeys; i++)
		if (!config_value_equal(&config_keys[i],
		    cfield_of(a, &config_keys[i]),
		    cfield_of(b, &config_keys[i])))
			return false;
	return true;
}

void
config_to_tracker(const struct sbomd_config *c, struct tracker_config *t)
{
	tracker_config_defaults(t);
	t->retry = c->retry;
	t->rescan_after_ms = c->dedup.rescan_after_ms;
	t->forget_after_ms = c->dedup.forget_after_ms;
	t->max_sources = (size_t)c->dedup.max_sources;
	t->max_entity_bytes = (size_t)c->dedup.max_entity_bytes;
	t->max_clock_skew_ms = c->dedup.max_clock_skew_ms;
}

/* ---- dump ---- */

/* Whether keys i and j (an index, possibly out of the table) share a
 * group. */
static bool
same_group(size_t i, size_t j)
{
	if (j >= config_nkeys)
		return false;
	const char *a = config_keys[i].name, *b = config_keys[j].name;
	size_t gl = config_key_group_len(a);
	return gl == config_key_group_len(b) && strncmp(a, b, gl) == 0;
}

void
config_dump(const struct sbomd_config *c, FILE *f)
{
	fputs("# sbomd effective configuration (libconfig syntax)\n", f);
	for (size_t i = 0; i < config_nkeys; i++) {
		const struct config_key *k = &config_keys[i];
		size_t gl = config_key_group_len(k->name);
		char *line = NULL;
		size_t len = 0;
		FILE *m = open_memstream(&line, &len);

		if (m == NULL) {
			fprintf(stderr, "config: out of memory\n");
			abort();
		}
		if (i == 0 || !same_group(i, i - 1))
			fprintf(f, "\n%.*s = {\n", (int)gl, k->name);
		fprintf(m, "  %s = ", k->name + gl + 1);
		config_value_print(m, k, cfield_of(c, k));
		fputc(';', m);
		fclose(m);
		/* comments at column 36, as in config/sbomd.cfg */
		fprintf(f, "%s%*s# %s\n", line, len < 35 ? (int)(35 - len) : 1,
		    "", k->doc);
		free(line);
		if (!same_group(i, i + 1))
			fputs("};\n", f);
	}
}

char *
config_props_text(const struct config_props *p)
{
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);

	if (m == NULL) {
		fprintf(stderr, "config: out of memory\n");
		abort();
	}
	for (size_t i = 0; i < p->n; i++)
		fprintf(m, "%s%s=%s", i == 0 ? "" : ",", p->v[i].name,
		    redact_is_secret(p->v[i].name) ? REDACTED :
		    p->v[i].value);
	fclose(m);
	return text;
}

/* ---- names ---- */

static const char **key_names; /* made once, kept for the process */
static pthread_once_t key_names_once = PTHREAD_ONCE_INIT;

static void
key_names_init(void)
{
	key_names = xcalloc(config_nkeys + 1, sizeof(*key_names));
	for (size_t i = 0; i < config_nkeys; i++)
		key_names[i] = config_keys[i].name;
}

const char *const *
config_key_names(void)
{
	pthread_once(&key_names_once, key_names_init);
	return key_names;
}

int
config_env_name(const char *key, char *buf, size_t buflen)
{
	const struct config_key *k = config_key_find(key);

	if (k == NULL)
		return -ENOENT;
	config_key_env_name(k, buf, buflen);
	return 0;
}

/* Value v of the enum of key, as written in the file; "?" out of range. */
static const char *
enum_name(const char *key, int v)
{
	const struct config_key *k = config_key_find(key);

	for (int i = 0; k != NULL && k->names[i] != NULL; i++)
		if (i == v)
			return k->names[i];
	return "?";
}

const char *
config_framing_name(enum config_framing v)
{
	return enum_name("kafka.output_framing", (int)v);
}

const char *
config_delivery_name(enum config_delivery v)
{
	return enum_name("kafka.delivery", (int)v);
}

const char *
config_backend_name(enum config_backend v)
{
	return enum_name("scan.backend", (int)v);
}

const char *
config_log_level_name(enum config_log_level v)
{
	return enum_name("log.level", (int)v);
}

const char *
config_log_format_name(enum config_log_format v)
{
	return enum_name("log.format", (int)v);
}
