/*
 * fuzz_config: bytes -> config_load, the libconfig text and the SBOMD_
 * environment through every key's validation and the cross-key checks,
 * then config_dump and config_free. The input is the file's text; after
 * a form feed come environment lines ("SBOMD_X=value", one per line)
 * passed as envp. A loaded configuration must dump and load back equal
 * (secret property values aside, which the dump redacts). Inputs with
 * "@include" are skipped: an include names a file of the machine
 * (/dev/zero would never end), and the configuration is the operator's
 * own anyway. Any return code is fine; crashes, leaks and UB are not.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "service/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64], path2[64];

static void
cleanup(void)
{
	unlink(path);
	unlink(path2);
}

static void
write_file(const char *p, const void *b, size_t n)
{
	FILE *f = fopen(p, "wb");
	if (f == NULL || (n > 0 && fwrite(b, 1, n, f) != n) || fclose(f) != 0)
		abort();
}

static bool
has_include(const uint8_t *d, size_t n)
{
	for (size_t i = 0; i + 8 <= n; i++)
		if (d[i] == '@' && strncasecmp((const char *)d + i + 1,
		    "include", 7) == 0)
			return true;
	return false;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *ff = size > 0 ? memchr(data, '\f', size) : NULL;
	size_t flen = ff != NULL ? (size_t)(ff - data) : size;
	char *env = NULL, **envp;
	size_t nenv = 0;
	struct sbomd_config c, d;
	char err[1024];

	if (has_include(data, flen))
		return 0;
	if (path[0] == '\0') {
		snprintf(path, sizeof(path), "/tmp/fuzz_config.%d.cfg",
		    (int)getpid());
		snprintf(path2, sizeof(path2), "/tmp/fuzz_config.%d.dump",
		    (int)getpid());
		atexit(cleanup);
	}
	write_file(path, data, flen);

	/* the environment: lines after the form feed, NUL-free */
	size_t elen = ff != NULL ? size - flen - 1 : 0;
	if ((env = malloc(elen + 1)) == NULL)
		abort();
	if (elen > 0)
		memcpy(env, ff + 1, elen);
	env[elen] = '\0';
	if ((envp = calloc(elen + 2, sizeof(*envp))) == NULL)
		abort();
	for (char *p = env; *p != '\0';) {
		char *nl = strchr(p, '\n');
		envp[nenv++] = p;
		if (nl == NULL)
			break;
		*nl = '\0';
		p = nl + 1;
	}
	envp[nenv] = NULL;

	if (config_load(&c, path, envp, err, sizeof(err)) == 0) {
		char *text = NULL;
		size_t tlen = 0;
		FILE *m = open_memstream(&text, &tlen);
		if (m == NULL)
			abort();
		config_dump(&c, m);
		fclose(m);
		write_file(path2, text, tlen);
		char *none[] = { NULL };
		if (config_load(&d, path2, none, err, sizeof(err)) != 0) {
			fprintf(stderr, "the dump does not load: %s\n%s\n", err,
			    text);
			abort();
		}
		config_free(&d);
		free(text);
		config_free(&c);
	}
	free(envp);
	free(env);
	return 0;
}
