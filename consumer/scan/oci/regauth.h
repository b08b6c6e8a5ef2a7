/*
 * regauth: what a registry pull needs to authenticate: credentials from
 * a Docker config.json, the parsed WWW-Authenticate challenge, and the
 * cache of Bearer tokens (per registry and repository scope, until they
 * expire). The HTTP exchanges themselves are registry.c's.
 */
#ifndef SBOMD_SCAN_REGAUTH_H
#define SBOMD_SCAN_REGAUTH_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* Largest config.json read. */
#define REGAUTH_MAX_FILE (1u << 20)
/* Tokens cached at once (the oldest goes). */
#define REGAUTH_MAX_TOKENS 64
/* Longest token kept. */
#define REGAUTH_MAX_TOKEN (16u << 10)

struct regauth_cred {
	char user[256];
	char pass[1024];
	char identity_token[4096]; /* "" when none */
};

/*
 * The credentials of registry name (normalised: "docker.io",
 * "host:port") in the Docker config file path (NULL: the default,
 * $DOCKER_CONFIG/config.json else $HOME/.docker/config.json). 0 found;
 * -ENOENT none (no file, no entry); -EINVAL the file is not a config.json
 * (err names it and the key); -EFBIG larger than REGAUTH_MAX_FILE.
 */
int regauth_lookup(const char *path, const char *name,
    struct regauth_cred *c, char *err, size_t errlen);

/* "docker.io" for Docker Hub's aliases, else name itself (in out). */
void regauth_normalise_host(const char *name, char *out, size_t outlen);

enum regauth_scheme { REGAUTH_NONE, REGAUTH_BASIC, REGAUTH_BEARER };

struct regauth_challenge {
	enum regauth_scheme scheme;
	char realm[512];
	char service[256];
	char scope[512];
};

/* Parses a WWW-Authenticate value; scheme NONE when neither Basic nor
 * Bearer. */
void regauth_challenge_parse(const char *v, struct regauth_challenge *ch);

/* The Bearer token cache (one per registry object). */
struct regauth_tokens {
	pthread_mutex_t mu;
	struct regauth_token {
		char *key;	/* "registry scope" */
		char *token;
		int64_t expires_ms; /* monotonic */
		int64_t added;	    /* order, for eviction */
	} slot[REGAUTH_MAX_TOKENS];
	int64_t seq;
};

void regauth_tokens_init(struct regauth_tokens *t);
void regauth_tokens_fini(struct regauth_tokens *t);
void regauth_tokens_clear(struct regauth_tokens *t);
/* A live token for key into buf: 0, or -ENOENT. */
int regauth_tokens_get(struct regauth_tokens *t, const char *key, char *buf,
    size_t buflen);
/* Keeps token for key until now + ttl_ms (monotonic). */
void regauth_tokens_put(struct regauth_tokens *t, const char *key,
    const char *token, int64_t ttl_ms);
/* Drops the token of key (it was refused). */
void regauth_tokens_drop(struct regauth_tokens *t, const char *key);

#endif
