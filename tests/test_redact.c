/*
 * test_redact: secrets kept out of what sbomd prints (util/redact and the
 * log). Which names are secret; "NAME=VALUE" redaction in free text
 * (quoted values, lists, several in one text, nothing to do); a refused
 * value cut out of a library's message; and log lines, written to a
 * temporary file put in place of stderr, that never show a secret whether
 * it comes as a field named like one or inside another field's text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "service/log.h"
#include "util/redact.h"

static void
test_secret_names(void **state)
{
	(void)state;
	static const char *const secret[] = { "sasl.password",
		"ssl.key.password", "ssl.key.pem", "ssl.keystore.password",
		"sasl.oauthbearer.client.secret", "sasl.jaas.config",
		"SASL.PASSWORD", "x.token", "password" };
	static const char *const plain[] = { "debug", "linger.ms",
		"sasl.username", "sasl.mechanism", "ssl.ca.location",
		"bootstrap.servers", "client.id", "" };

	for (size_t i = 0; i < sizeof(secret) / sizeof(secret[0]); i++)
		if (!redact_is_secret(secret[i]))
			fail_msg("%s is not seen as secret", secret[i]);
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
		if (redact_is_secret(plain[i]))
			fail_msg("%s is seen as secret", plain[i]);
	assert_false(redact_is_secret(NULL));
}

static void
redacts(const char *in, const char *want)
{
	char *got = redact_text(in);
	if (want == NULL) {
		if (got != NULL)
			fail_msg("redact_text(%s) = %s, want no change", in, got);
		return;
	}
	if (got == NULL)
		fail_msg("redact_text(%s) changed nothing, want %s", in, want);
	if (strcmp(got, want) != 0)
		fail_msg("redact_text(%s)\n  got:  %s\n  want: %s", in, got,
		    want);
	free(got);
}

static void
test_text(void **state)
{
	(void)state;
	redacts("no equals sign", NULL);
	redacts("debug=cgrp,linger.ms=5", NULL);
	redacts("=x", NULL);
	redacts("sasl.password=hunter2", "sasl.password=[redacted]");
	redacts("a=1,sasl.password=hunter2,b=2",
	    "a=1,sasl.password=[redacted],b=2");
	/* a password may hold any of ":/@": the value goes on to a space */
	redacts("x: sasl.password=hunter2: refused",
	    "x: sasl.password=[redacted] refused");
	redacts("sasl.password=\"hunter 2\" rest",
	    "sasl.password=[redacted] rest");
	redacts("sasl.password='unterminated", "sasl.password=[redacted]");
	redacts("sasl.password=;x.token=t;z=1",
	    "sasl.password=[redacted];x.token=[redacted];z=1");
	redacts("PlainLoginModule required username=\"u\" password=\"p\";",
	    "PlainLoginModule required username=\"u\" password=[redacted];");
	redacts("password=", "password=[redacted]");
}

static void
test_value(void **state)
{
	(void)state;
	char buf[128];

	redact_value("Invalid value \"hunter2\" for configuration property "
	    "\"security.protocol\"", "hunter2", buf, sizeof(buf));
	assert_string_equal(buf, "Invalid value \"[redacted]\" for "
	    "configuration property \"security.protocol\"");
	redact_value("a hunter2 hunter2", "hunter2", buf, sizeof(buf));
	assert_string_equal(buf, "a [redacted] [redacted]");
	redact_value("nothing", "", buf, sizeof(buf));
	assert_string_equal(buf, "nothing");
	redact_value("x hunter2", "hunter2", buf, 6);
	assert_string_equal(buf, "x [re");
}

/* What log_kv writes for one call, read back from a file on fd 2. */
static char *
logged(enum log_format fmt, void (*fn)(void))
{
	char path[] = "/tmp/test_redact.XXXXXX";
	int fd = mkstemp(path), saved = dup(2);
	assert_true(fd >= 0 && saved >= 0);
	unlink(path);
	assert_int_equal(dup2(fd, 2), 2);
	log_setup(LOG_DEBUG, fmt);
	fn();
	assert_int_equal(dup2(saved, 2), 2);
	close(saved);
	off_t n = lseek(fd, 0, SEEK_END);
	char *text = calloc(1, (size_t)n + 1);
	assert_non_null(text);
	assert_int_equal(pread(fd, text, (size_t)n, 0), n);
	close(fd);
	return text;
}

static void
log_secrets(void)
{
	/* the rate limit would drop the second round's warning and error */
	static int round;
	const char *msg[] = { "stopped", "stopped again" };

	round++;
	log_kv(LOG_INFO, "running", "consumer_properties",
	    "debug=cgrp,sasl.password=hunter2,client.id=me",
	    "sasl.password", "hunter2", (char *)NULL);
	log_kv(LOG_ERROR, msg[round % 2], "error", "kafka.consumer_properties: "
	    "sasl.jaas.config=\"x password=hunter2\": refused", (char *)NULL);
	log_kv(LOG_WARN, "password=hunter2 in the message", "error",
	    msg[round % 2], (char *)NULL);
}

static void
test_log_lines(void **state)
{
	(void)state;
	enum log_format fmts[] = { LOG_JSON, LOG_TEXT };

	for (size_t i = 0; i < 2; i++) {
		char *text = logged(fmts[i], log_secrets);
		if (strstr(text, "hunter2") != NULL ||
		    strstr(text, "sasl.jaas.config=[redacted]") == NULL)
			fail_msg("a log line shows a secret:\n%s", text);
		assert_non_null(strstr(text, "debug=cgrp,sasl.password="
		    "[redacted],client.id=me"));
		assert_non_null(strstr(text, "sasl.jaas.config=[redacted]"));
		assert_non_null(strstr(text, "password=[redacted] in the "
		    "message"));
		free(text);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_secret_names),
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_value),
		cmocka_unit_test(test_log_lines),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
