/*
 * test_registry: what the registry client decides without a network:
 * reference parsing and Docker Hub's normalisation (registry_ref_parse,
 * registry_upstream), credentials from a Docker config.json
 * (regauth_lookup: base64 auth, username/password, identity tokens, URL
 * keys and Hub aliases, a host with none, a file that is not one),
 * WWW-Authenticate challenges, and the Bearer token cache (per key, until
 * it expires, dropped, the oldest evicted when full). The pulls
 * themselves are tested against a real registry by
 * tests/registry_test.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "scan/oci/regauth.h"
#include "scan/oci/registry.h"

#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

struct ref_case {
	const char *in;
	const char *name, *repo, *tag, *digest, *text;
};

static void
test_ref_parse(void **state)
{
	(void)state;
	static const struct ref_case ok[] = {
		{ "nginx", "docker.io", "library/nginx", "latest", "",
		    "docker.io/library/nginx:latest" },
		{ "nginx:1.27", "docker.io", "library/nginx", "1.27", "",
		    "docker.io/library/nginx:1.27" },
		{ "user/app:1", "docker.io", "user/app", "1", "",
		    "docker.io/user/app:1" },
		{ "docker.io/nginx", "docker.io", "library/nginx", "latest", "",
		    "docker.io/library/nginx:latest" },
		{ "index.docker.io/library/nginx:1", "docker.io",
		    "library/nginx", "1", "", "docker.io/library/nginx:1" },
		{ "registry-1.docker.io/user/app", "docker.io", "user/app",
		    "latest", "", "docker.io/user/app:latest" },
		{ "host:5000/a/b@sha256:" HEX64, "host:5000", "a/b", "",
		    "sha256:" HEX64, "host:5000/a/b@sha256:" HEX64 },
		{ "host:5000/a/b:v2@sha256:" HEX64, "host:5000", "a/b", "v2",
		    "sha256:" HEX64, "host:5000/a/b:v2@sha256:" HEX64 },
		{ "localhost/app", "localhost", "app", "latest", "",
		    "localhost/app:latest" },
		{ "registry.example.com/team/app", "registry.example.com",
		    "team/app", "latest", "",
		    "registry.example.com/team/app:latest" },
		/* No dot, colon or localhost: a Hub namespace, not a host. */
		{ "team/app", "docker.io", "team/app", "latest", "",
		    "docker.io/team/app:latest" },
		/* A port is not a tag. */
		{ "127.0.0.1:5000/app", "127.0.0.1:5000", "app", "latest", "",
		    "127.0.0.1:5000/app:latest" },
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct registry_ref r;
		char err[256] = "";
		if (registry_ref_parse(ok[i].in, &r, err, sizeof(err)) != 0)
			fail_msg("refused %s: %s", ok[i].in, err);
		assert_string_equal(r.name, ok[i].name);
		assert_string_equal(r.repo, ok[i].repo);
		assert_string_equal(r.tag, ok[i].tag);
		assert_string_equal(r.digest, ok[i].digest);
		assert_string_equal(r.text, ok[i].text);
	}
}

static void
test_ref_parse_invalid(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"",
		"app@sha256:0123",		     /* short digest */
		"app@sha256:" HEX64 "00",	     /* long digest */
		"app@sha512:" HEX64,		     /* not sha256 */
		"app@",
		"app:",				     /* empty tag */
		"Team/App",			     /* uppercase */
		"host:5000/",			     /* no repository */
		"host:5000//a",
		"a/../b",
		"app name",
		"host:5000/a/b@sha256:" HEX64 "x",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct registry_ref r;
		char err[256] = "";
		if (registry_ref_parse(bad[i], &r, err, sizeof(err)) !=
		    -EINVAL)
			fail_msg("accepted: \"%s\"", bad[i]);
		assert_non_null(strstr(err, "reference"));
	}
	/* Too long. */
	char longref[1000];
	memset(longref, 'a', sizeof(longref) - 1);
	longref[sizeof(longref) - 1] = '\0';
	struct registry_ref r;
	char err[256];
	assert_int_equal(registry_ref_parse(longref, &r, err, sizeof(err)),
	    -EINVAL);
}

static void
test_upstream(void **state)
{
	(void)state;
	const char *insecure[] = { "127.0.0.1:5000" };
	struct registry_config c = { .auth_file = "",
		.insecure_hosts = insecure, .ninsecure = 1 };
	registry *reg;
	char err[256], url[600];
	struct registry_ref r;

	assert_int_equal(registry_new(&c, &reg, err, sizeof(err)), 0);
	assert_int_equal(registry_ref_parse("nginx", &r, err, sizeof(err)), 0);
	registry_upstream(reg, &r, url, sizeof(url));
	assert_string_equal(url, "https://registry-1.docker.io");
	assert_int_equal(registry_ref_parse("index.docker.io/user/app:1", &r,
	    err, sizeof(err)), 0);
	registry_upstream(reg, &r, url, sizeof(url));
	assert_string_equal(url, "https://registry-1.docker.io");
	assert_int_equal(registry_ref_parse("127.0.0.1:5000/a/b", &r, err,
	    sizeof(err)), 0);
	registry_upstream(reg, &r, url, sizeof(url));
	assert_string_equal(url, "http://127.0.0.1:5000");
	/* Only the host listed: another port is https. */
	assert_int_equal(registry_ref_parse("127.0.0.1:5001/a/b", &r, err,
	    sizeof(err)), 0);
	registry_upstream(reg, &r, url, sizeof(url));
	assert_string_equal(url, "https://127.0.0.1:5001");
	registry_free(reg);
}

static void
test_bad_mirror(void **state)
{
	(void)state;
	static const char *const bad[] = { "docker.io", "=https://m",
		"docker.io=mirror.local", "docker.io=ftp://m" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct registry_config c = { .auth_file = "",
			.mirrors = &bad[i], .nmirrors = 1 };
		registry *reg = NULL;
		char err[256] = "";
		if (registry_new(&c, &reg, err, sizeof(err)) != -EINVAL)
			fail_msg("accepted mirror %s", bad[i]);
		assert_null(reg);
		assert_non_null(strstr(err, "scan.registry_mirrors"));
	}
}

/* ---- config.json ------------------------------------------------------- */

static char tmpdir[] = "/tmp/sbomd-test-registry-XXXXXX";

static const char *
write_config(const char *name, const char *text)
{
	static char path[512];
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static void
test_lookup(void **state)
{
	(void)state;
	/* "scanner:s3cret:with:colons" and "hub:pw" in base64. */
	const char *path = write_config("config.json",
	    "{\"auths\": {"
	    "\"reg.example.com:5000\": {\"auth\": "
	    "\"c2Nhbm5lcjpzM2NyZXQ6d2l0aDpjb2xvbnM=\"},"
	    "\"https://index.docker.io/v1/\": {\"auth\": \"aHViOnB3\"},"
	    "\"plain.example.com\": {\"username\": \"u\", \"password\": "
	    "\"p\"},"
	    "\"https://idt.example.com/v2/\": {\"identitytoken\": "
	    "\"refresh-123\"},"
	    "\"empty.example.com\": {}"
	    "}, \"credsStore\": \"desktop\"}");
	struct regauth_cred c;
	char err[256] = "";

	assert_int_equal(regauth_lookup(path, "reg.example.com:5000", &c, err,
	    sizeof(err)), 0);
	assert_string_equal(c.user, "scanner");
	assert_string_equal(c.pass, "s3cret:with:colons");
	assert_string_equal(c.identity_token, "");

	/* A URL key of an alias of Docker Hub serves docker.io and its
	 * aliases. */
	static const char *const hub[] = { "docker.io", "registry-1.docker.io",
		"index.docker.io" };
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(regauth_lookup(path, hub[i], &c, err,
		    sizeof(err)), 0);
		assert_string_equal(c.user, "hub");
		assert_string_equal(c.pass, "pw");
	}

	assert_int_equal(regauth_lookup(path, "plain.example.com", &c, err,
	    sizeof(err)), 0);
	assert_string_equal(c.user, "u");
	assert_string_equal(c.pass, "p");

	assert_int_equal(regauth_lookup(path, "idt.example.com", &c, err,
	    sizeof(err)), 0);
	assert_string_equal(c.identity_token, "refresh-123");
	assert_string_equal(c.user, "");

	/* No entry, an entry with nothing in it, the port matters. */
	assert_int_equal(regauth_lookup(path, "other.example.com", &c, err,
	    sizeof(err)), -ENOENT);
	assert_int_equal(regauth_lookup(path, "empty.example.com", &c, err,
	    sizeof(err)), -ENOENT);
	assert_int_equal(regauth_lookup(path, "reg.example.com", &c, err,
	    sizeof(err)), -ENOENT);
	assert_string_equal(c.user, "");
}

static void
test_lookup_files(void **state)
{
	(void)state;
	struct regauth_cred c;
	char err[512] = "";
	char missing[600];

	snprintf(missing, sizeof(missing), "%s/no-such.json", tmpdir);
	assert_int_equal(regauth_lookup(missing, "h", &c, err, sizeof(err)),
	    -ENOENT);
	assert_int_equal(regauth_lookup("", "h", &c, err, sizeof(err)),
	    -ENOENT);

	const char *p = write_config("notjson.json", "{\"auths\": ");
	assert_int_equal(regauth_lookup(p, "h", &c, err, sizeof(err)),
	    -EINVAL);
	assert_non_null(strstr(err, p));

	p = write_config("auths.json", "{\"auths\": []}");
	assert_int_equal(regauth_lookup(p, "h", &c, err, sizeof(err)),
	    -EINVAL);
	assert_non_null(strstr(err, "auths"));

	/* Not base64 of user:password: an error naming the key. */
	p = write_config("badauth.json",
	    "{\"auths\": {\"h\": {\"auth\": \"bm9jb2xvbg==\"}}}");
	assert_int_equal(regauth_lookup(p, "h", &c, err, sizeof(err)),
	    -EINVAL);
	assert_non_null(strstr(err, "auths.\"h\".auth"));

	/* The default place: $DOCKER_CONFIG/config.json. */
	char dc[600];
	snprintf(dc, sizeof(dc), "%s/dc", tmpdir);
	assert_int_equal(mkdir(dc, 0700), 0);
	char cfg[700];
	snprintf(cfg, sizeof(cfg), "dc/config.json");
	write_config(cfg, "{\"auths\": {\"h:1\": {\"auth\": \"YTpi\"}}}");
	setenv("DOCKER_CONFIG", dc, 1);
	assert_int_equal(regauth_lookup(NULL, "h:1", &c, err, sizeof(err)), 0);
	assert_string_equal(c.user, "a");
	assert_string_equal(c.pass, "b");
	unsetenv("DOCKER_CONFIG");
}

static void
test_challenge(void **state)
{
	(void)state;
	struct regauth_challenge ch;

	regauth_challenge_parse("Bearer realm=\"https://auth.docker.io/token\","
	    "service=\"registry.docker.io\",scope=\"repository:library/nginx:"
	    "pull\"", &ch);
	assert_int_equal(ch.scheme, REGAUTH_BEARER);
	assert_string_equal(ch.realm, "https://auth.docker.io/token");
	assert_string_equal(ch.service, "registry.docker.io");
	assert_string_equal(ch.scope, "repository:library/nginx:pull");

	regauth_challenge_parse("Basic realm=\"Registry Realm\"", &ch);
	assert_int_equal(ch.scheme, REGAUTH_BASIC);
	assert_string_equal(ch.realm, "Registry Realm");

	regauth_challenge_parse("Negotiate abc", &ch);
	assert_int_equal(ch.scheme, REGAUTH_NONE);
	regauth_challenge_parse("Bearerx realm=a", &ch);
	assert_int_equal(ch.scheme, REGAUTH_NONE);
}

/* ---- the token cache ---------------------------------------------------- */

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0)
		;
}

static void
test_tokens_expire(void **state)
{
	(void)state;
	struct regauth_tokens t;
	char buf[64];

	regauth_tokens_init(&t);
	regauth_tokens_put(&t, "h repository:a:pull", "tok-a", 150);
	regauth_tokens_put(&t, "h repository:b:pull", "tok-b", 60000);
	assert_int_equal(regauth_tokens_get(&t, "h repository:a:pull", buf,
	    sizeof(buf)), 0);
	assert_string_equal(buf, "tok-a");
	/* Per scope: another repository has its own. */
	assert_int_equal(regauth_tokens_get(&t, "h repository:c:pull", buf,
	    sizeof(buf)), -ENOENT);
	sleep_ms(250);
	assert_int_equal(regauth_tokens_get(&t, "h repository:a:pull", buf,
	    sizeof(buf)), -ENOENT);
	assert_int_equal(regauth_tokens_get(&t, "h repository:b:pull", buf,
	    sizeof(buf)), 0);
	assert_string_equal(buf, "tok-b");

	/* A new token replaces the old one of its key. */
	regauth_tokens_put(&t, "h repository:b:pull", "tok-b2", 60000);
	assert_int_equal(regauth_tokens_get(&t, "h repository:b:pull", buf,
	    sizeof(buf)), 0);
	assert_string_equal(buf, "tok-b2");
	/* Refused: dropped. */
	regauth_tokens_drop(&t, "h repository:b:pull");
	assert_int_equal(regauth_tokens_get(&t, "h repository:b:pull", buf,
	    sizeof(buf)), -ENOENT);
	/* No lifetime: not kept. */
	regauth_tokens_put(&t, "k", "tok", 0);
	assert_int_equal(regauth_tokens_get(&t, "k", buf, sizeof(buf)),
	    -ENOENT);
	regauth_tokens_fini(&t);
}

static void
test_tokens_evict_oldest(void **state)
{
	(void)state;
	struct regauth_tokens t;
	char key[64], buf[64];

	regauth_tokens_init(&t);
	for (int i = 0; i <= REGAUTH_MAX_TOKENS; i++) {
		snprintf(key, sizeof(key), "h repository:r%d:pull", i);
		regauth_tokens_put(&t, key, "tok", 60000);
	}
	/* Full: the first one went, the others stay. */
	assert_int_equal(regauth_tokens_get(&t, "h repository:r0:pull", buf,
	    sizeof(buf)), -ENOENT);
	for (int i = 1; i <= REGAUTH_MAX_TOKENS; i++) {
		snprintf(key, sizeof(key), "h repository:r%d:pull", i);
		if (regauth_tokens_get(&t, key, buf, sizeof(buf)) != 0)
			fail_msg("lost %s", key);
	}
	regauth_tokens_fini(&t);
}

static int
setup(void **state)
{
	(void)state;
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	(void)state;
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ref_parse),
		cmocka_unit_test(test_ref_parse_invalid),
		cmocka_unit_test(test_upstream),
		cmocka_unit_test(test_bad_mirror),
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_lookup_files),
		cmocka_unit_test(test_challenge),
		cmocka_unit_test(test_tokens_expire),
		cmocka_unit_test(test_tokens_evict_oldest),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
