/*
 * redact: keeping secrets out of what sbomd prints. A property is secret
 * when its name contains "password", "secret", "sasl.jaas.config",
 * "ssl.key" or "token" (case-insensitive): librdkafka's sasl.password,
 * sasl.oauthbearer.client.secret, ssl.key.pem, ssl.key.password, ... Its
 * value is shown as REDACTED by --print-config and in every log line;
 * a property librdkafka refuses is named, its value never shown.
 */
#ifndef SBOMD_UTIL_REDACT_H
#define SBOMD_UTIL_REDACT_H

#include <stdbool.h>
#include <stddef.h>

#define REDACTED "[redacted]"

/* Whether a property (or log field) of this name holds a secret. */
bool redact_is_secret(const char *name);
bool redact_is_secret_n(const char *name, size_t len);

/*
 * text with the value of every "NAME=VALUE" whose NAME is secret replaced
 * by REDACTED; the value ends at a comma, a semicolon, white space or the
 * end, or at the closing quote when it starts with one. NULL when there
 * is nothing to redact (the common case: no allocation), else a new
 * string (xmalloc) the caller frees.
 */
char *redact_text(const char *text);

/*
 * s with every occurrence of value (a non-empty string) replaced by
 * REDACTED, into buf (truncated to buflen). For messages of libraries
 * that echo a value they refused.
 */
void redact_value(const char *s, const char *value, char *buf,
    size_t buflen);

#endif
