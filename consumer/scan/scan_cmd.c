/*
 * scan_cmd: `sbomd scan TARGET`, one SBOM to stdout, diagnostics to
 * stderr. Targets:
 *   oci:DIR[@DIGEST|:TAG]        an OCI image layout
 *   containerd:ROOT@IMAGE_ID     a containerd content store
 *   docker-archive:FILE          `docker save` output
 *   dir:ROOT                     a directory tree (as host scans read it)
 *   registry:[HOST[:PORT]/]REPO[:TAG|@sha256:DIGEST]
 *                                an image pulled from its registry
 *                                (scan/oci/registry.h), credentials from
 *                                --registry-auth (else the Docker
 *                                config.json's default place),
 *                                --registry-ca, --registry-insecure and
 *                                --registry-mirror as the scan.registry*
 *                                keys
 *
 * The scan is held to scan.max_packages' default (SCAN_DEFAULT_MAX_PACKAGES)
 * unless --max-packages says otherwise; `sbomd scan` reads no config
 * file. --layer-cache DIR uses (and fills) a per-layer catalog cache
 * (scan/oci/layercache.h) of LAYER_CACHE_DEFAULT_MAX bytes; a line on
 * stderr says how many layers came from it.
 */
#include "scan/scan_cmd.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "scan/oci/layercache.h"
#include "scan/scanner.h"
#include "util/clock.h"
#include "util/xmalloc.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: sbomd scan [--platform OS/ARCH] [--max-packages N]\n"
	    "                  [--layer-cache DIR]\n"
	    "                  [--registry-auth FILE] [--registry-ca FILE]\n"
	    "                  [--registry-insecure HOST[:PORT]]\n"
	    "                  [--registry-mirror REGISTRY=URL] TARGET\n"
	    "\n"
	    "Writes a CycloneDX 1.5 SBOM of TARGET to standard output.\n"
	    "A TARGET with more than N packages (default %d, as\n"
	    "scan.max_packages) fails.\n"
	    "\n"
	    "targets:\n"
	    "  oci:DIR                  the image of an OCI image layout\n"
	    "  oci:DIR@sha256:HEX       ... by manifest digest or image ID\n"
	    "  oci:DIR:TAG              ... by its ref.name annotation\n"
	    "  containerd:ROOT@IMAGE_ID an image in a containerd content store\n"
	    "                           (ROOT: the content directory or\n"
	    "                           containerd's root)\n"
	    "  docker-archive:FILE      a `docker save` tarball\n"
	    "  dir:ROOT                 a directory tree, e.g. a host's /\n"
	    "  registry:[HOST[:PORT]/]REPO[:TAG|@sha256:HEX]\n"
	    "                           an image pulled from its registry (a\n"
	    "                           manifest or index digest; Docker Hub\n"
	    "                           when there is no HOST)\n"
	    "\n"
	    "--layer-cache DIR: keep what was catalogued from each layer in\n"
	    "DIR (at most 1 GiB, least recently used layers go), and read\n"
	    "no layer that DIR already holds.\n"
	    "\n"
	    "registry options:\n"
	    "  --registry-auth FILE     a Docker config.json (default\n"
	    "                           $DOCKER_CONFIG/config.json, else\n"
	    "                           ~/.docker/config.json)\n"
	    "  --registry-ca FILE       PEM certificates trusted besides the\n"
	    "                           system's\n"
	    "  --registry-insecure H    plain HTTP to host H (repeatable)\n"
	    "  --registry-mirror R=URL  try URL before registry R (as\n"
	    "                           scan.registry_mirrors; repeatable,\n"
	    "                           in order)\n"
	    "\n"
	    "examples:\n"
	    "  sbomd scan oci:./busybox-layout:latest\n"
	    "  sbomd scan docker-archive:nginx.tar > nginx.cdx.json\n"
	    "  sbomd scan containerd:/var/lib/containerd@sha256:4b7c...\n"
	    "  sbomd scan dir:/\n"
	    "  sbomd scan registry:registry.example.com/team/app:1.4\n"
	    "\n"
	    "exit status: 0 success, 2 usage error, 3 image not found (or a\n"
	    "pull in progress; a manifest or blob unknown to the registry, or\n"
	    "a registry busy), 4 scan failure (corrupt or unreadable input,\n"
	    "credentials refused, a registry unreachable)\n",
	    SCAN_DEFAULT_MAX_PACKAGES);
}

/* Splits "DIR@sha256:…" / "DIR:TAG" (the last ':' after the last '/'). */
static void
split_oci(char *spec, char **digest, char **tag)
{
	char *at = strstr(spec, "@sha256:");
	if (at != NULL) {
		*at = '\0';
		*digest = at + 1;
		return;
	}
	char *slash = strrchr(spec, '/');
	char *colon = strrchr(slash ? slash : spec, ':');
	if (colon != NULL && colon != spec) {
		*colon = '\0';
		*tag = colon + 1;
	}
}

/* What a target names, and the storage the request points into. */
struct scan_target {
	char *spec;	       /* a copy of the argument, cut up in place */
	const char *stores[1];
	const char *digests[1], *tags[1];
	char content[4096];    /* containerd's content store under a root */
	const char *digest;    /* oci:DIR@sha256:… (manifest digest or ID) */
};

/*
 * Fills req from the target argument (see the top). 0, or -EINVAL with a
 * message on stderr.
 */
static int
scan_target(const char *arg, struct scan_target *t, struct scan_request *req)
{
	char *digest = NULL, *tag = NULL, *s = t->spec;

	if (strncmp(s, "oci:", 4) == 0) {
		split_oci(s + 4, &digest, &tag);
		t->stores[0] = s + 4;
	} else if (strncmp(s, "docker-archive:", 15) == 0) {
		t->stores[0] = s + 15;
	} else if (strncmp(s, "containerd:", 11) == 0) {
		char *root = s + 11, *at = strstr(root, "@sha256:");
		struct stat st;
		if (at == NULL) {
			fprintf(stderr, "sbomd scan: containerd targets need "
			    "@IMAGE_ID: %s\n", arg);
			return -EINVAL;
		}
		*at = '\0';
		req->image_id = at + 1;
		/* containerd's root, or its content store itself */
		snprintf(t->content, sizeof(t->content),
		    "%s/io.containerd.content.v1.content", root);
		t->stores[0] = stat(t->content, &st) == 0 ? t->content : root;
	} else if (strncmp(s, "registry:", 9) == 0) {
		req->registry_ref = s + 9;
	} else if (strncmp(s, "dir:", 4) == 0) {
		req->root = s + 4;
		req->kind = ENTITY_HOST;
		req->host_name = req->root;
	} else {
		fprintf(stderr, "sbomd scan: unknown target \"%s\"\n", arg);
		usage(stderr);
		return -EINVAL;
	}
	if (req->root == NULL && req->registry_ref == NULL) {
		req->stores = t->stores;
		req->nstores = 1;
	}
	if (tag != NULL) {
		t->tags[0] = tag;
		req->repo_tags = t->tags;
		req->ntags = 1;
	}
	t->digest = digest;
	return 0;
}

/* Runs the scan; a digest is tried as a manifest digest, then as an
 * image ID. */
static void
scan_target_run(struct scan_target *t, struct scan_request *req,
    struct scan_result *res)
{
	if (t->digest == NULL || req->registry_ref != NULL) {
		scan_run(req, res);
		return;
	}
	t->digests[0] = t->digest;
	req->repo_digests = t->digests;
	req->ndigests = 1;
	scan_run(req, res);
	if (res->rc == -ENOENT) {
		req->repo_digests = NULL;
		req->ndigests = 0;
		req->image_id = t->digest;
		scan_run(req, res);
	}
}

/* The SBOM to stdout, a summary or the error to stderr; the exit
 * status. */
static int
scan_report(const struct scan_result *res)
{
	if (res->rc != 0) {
		fprintf(stderr, "sbomd scan: %s (%s)\n", res->error,
		    error_class_name(res->error_class));
		return res->rc == -ENOENT || res->rc == -EAGAIN ? 3 : 4;
	}
	if (fwrite(res->sbom, 1, res->sbom_len, stdout) != res->sbom_len ||
	    fputc('\n', stdout) == EOF || fflush(stdout) != 0) {
		perror("sbomd scan: writing the SBOM");
		return 4;
	}
	fprintf(stderr, "sbomd scan: %zu packages%s%s\n", res->components,
	    res->image_id[0] ? " in " : "", res->image_id);
	return 0;
}

int
scan_main(int argc, char **argv)
{
	const char *platform = NULL;
	const char *insecure[16];
	const char *mirrors[16];
	struct registry_config rc = { .auth_file = NULL };
	registry *reg = NULL;
	const char *cache_dir = NULL;
	layer_cache *cache = NULL;
	char rerr[512];
	size_t max_packages = SCAN_DEFAULT_MAX_PACKAGES;
	struct scan_target t = { 0 };
	struct scan_result res;
	int i = 1, status;

	for (; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		}
		if (strcmp(argv[i], "--platform") == 0 && i + 1 < argc) {
			platform = argv[++i];
			continue;
		}
		if (strcmp(argv[i], "--layer-cache") == 0 && i + 1 < argc) {
			cache_dir = argv[++i];
			continue;
		}
		if (strcmp(argv[i], "--registry-auth") == 0 && i + 1 < argc) {
			rc.auth_file = argv[++i];
			continue;
		}
		if (strcmp(argv[i], "--registry-ca") == 0 && i + 1 < argc) {
			rc.ca_file = argv[++i];
			continue;
		}
		if (strcmp(argv[i], "--registry-insecure") == 0 &&
		    i + 1 < argc) {
			if (rc.ninsecure == sizeof(insecure) /
			    sizeof(insecure[0])) {
				fprintf(stderr, "sbomd scan: too many "
				    "--registry-insecure\n");
				return 2;
			}
			insecure[rc.ninsecure++] = argv[++i];
			rc.insecure_hosts = insecure;
			continue;
		}
		if (strcmp(argv[i], "--registry-mirror") == 0 &&
		    i + 1 < argc) {
			if (rc.nmirrors == sizeof(mirrors) /
			    sizeof(mirrors[0])) {
				fprintf(stderr, "sbomd scan: too many "
				    "--registry-mirror\n");
				return 2;
			}
			mirrors[rc.nmirrors++] = argv[++i];
			rc.mirrors = mirrors;
			continue;
		}
		if (strcmp(argv[i], "--max-packages") == 0 && i + 1 < argc) {
			char *end;
			errno = 0;
			unsigned long long v = strtoull(argv[++i], &end, 10);
			if (errno != 0 || end == argv[i] || *end != '\0' ||
			    v == 0 || v > SIZE_MAX || argv[i][0] == '-') {
				fprintf(stderr, "sbomd scan: --max-packages: "
				    "\"%s\" is not a positive number\n",
				    argv[i]);
				return 2;
			}
			max_packages = (size_t)v;
			continue;
		}
		break;
	}
	if (i != argc - 1) {
		usage(stderr);
		return 2;
	}
	struct scan_request req = {
		.kind = ENTITY_IMAGE,
		.platform = platform,
		.now_ms = clock_wall_ms(),
		.max_packages = max_packages,
	};
	t.spec = xstrdup(argv[i]);
	if (scan_target(argv[i], &t, &req) != 0) {
		status = 2;
	} else if (req.registry_ref != NULL &&
	    registry_new(&rc, &reg, rerr, sizeof(rerr)) != 0) {
		fprintf(stderr, "sbomd scan: %s\n", rerr);
		status = 2;
	} else if (cache_dir != NULL && layer_cache_open(
	    &(struct layer_cache_options){ .dir = cache_dir }, &cache, rerr,
	    sizeof(rerr)) != 0) {
		fprintf(stderr, "sbomd scan: --layer-cache: %s\n", rerr);
		status = 2;
	} else {
		req.registry = reg;
		req.layer_cache = cache;
		scan_target_run(&t, &req, &res);
		status = scan_report(&res);
		scan_result_free(&res);
		if (cache != NULL) {
			struct layer_cache_counters ct;
			layer_cache_counters(cache, &ct);
			fprintf(stderr, "sbomd scan: layer cache %s: %llu "
			    "layers from the cache, %llu not in it, %llu stored\n",
			    cache_dir, (unsigned long long)ct.hits,
			    (unsigned long long)ct.misses,
			    (unsigned long long)ct.stores);
		}
	}
	layer_cache_close(cache);
	registry_free(reg);
	free(t.spec);
	return status;
}
