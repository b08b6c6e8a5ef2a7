/*
 * scan_cmd: `sbomd scan TARGET`, one SBOM to stdout, diagnostics to
 * stderr. Targets:
 *   oci:DIR[@DIGEST|:TAG]        an OCI image layout
 *   containerd:ROOT@IMAGE_ID     a containerd content store
 *   docker-archive:FILE          `docker save` output
 *   dir:ROOT                     a directory tree (as host scans read it)
 */
#include "scan/scan_cmd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "scan/scanner.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: sbomd scan [--platform OS/ARCH] TARGET\n"
	    "\n"
	    "Writes a CycloneDX 1.5 SBOM of TARGET to standard output.\n"
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
	    "\n"
	    "examples:\n"
	    "  sbomd scan oci:./busybox-layout:latest\n"
	    "  sbomd scan docker-archive:nginx.tar > nginx.cdx.json\n"
	    "  sbomd scan containerd:/var/lib/containerd@sha256:4b7c...\n"
	    "  sbomd scan dir:/\n"
	    "\n"
	    "exit status: 0 success, 2 usage error, 3 image not found (or a\n"
	    "pull in progress), 4 scan failure (corrupt or unreadable input)\n");
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

int
scan_main(int argc, char **argv)
{
	const char *platform = NULL;
	int i = 1;
	for (; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		}
		if (strcmp(argv[i], "--platform") == 0 && i + 1 < argc) {
			platform = argv[++i];
			continue;
		}
		break;
	}
	if (i != argc - 1) {
		usage(stderr);
		return 2;
	}
	char *target = strdup(argv[i]);
	if (target == NULL)
		return 4;

	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct scan_request req = {
		.kind = ENTITY_IMAGE,
		.platform = platform,
		.now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000,
	};
	const char *stores[1];
	const char *digests[1], *tags[1];
	char content[4096];
	char *digest = NULL, *tag = NULL;
	int status = 2;

	if (strncmp(target, "oci:", 4) == 0) {
		char *dir = target + 4;
		split_oci(dir, &digest, &tag);
		stores[0] = dir;
	} else if (strncmp(target, "docker-archive:", 15) == 0) {
		stores[0] = target + 15;
	} else if (strncmp(target, "containerd:", 11) == 0) {
		char *root = target + 11;
		char *at = strstr(root, "@sha256:");
		if (at == NULL) {
			fprintf(stderr, "sbomd scan: containerd targets need "
			    "@IMAGE_ID: %s\n", argv[i]);
			goto out;
		}
		*at = '\0';
		req.image_id = at + 1;
		/* containerd's root, or its content store itself */
		struct stat st;
		snprintf(content, sizeof(content),
		    "%s/io.containerd.content.v1.content", root);
		stores[0] = stat(content, &st) == 0 ? content : root;
	} else if (strncmp(target, "dir:", 4) == 0) {
		req.root = target + 4;
		req.kind = ENTITY_HOST;
		req.host_name = req.root;
	} else {
		fprintf(stderr, "sbomd scan: unknown target \"%s\"\n", argv[i]);
		usage(stderr);
		goto out;
	}
	if (req.root == NULL) {
		req.stores = stores;
		req.nstores = 1;
	}
	if (tag != NULL) {
		tags[0] = tag;
		req.repo_tags = tags;
		req.ntags = 1;
	}

	struct scan_result res;
	if (digest != NULL) {
		/* a manifest digest first, then an image ID */
		digests[0] = digest;
		req.repo_digests = digests;
		req.ndigests = 1;
		scan_run(&req, &res);
		if (res.rc == -ENOENT) {
			req.repo_digests = NULL;
			req.ndigests = 0;
			req.image_id = digest;
			scan_run(&req, &res);
		}
	} else {
		scan_run(&req, &res);
	}
	if (res.rc != 0) {
		fprintf(stderr, "sbomd scan: %s (%s)\n", res.error,
		    res.error_class == ERROR_RETRYABLE ? "retryable" :
		    "permanent");
		status = res.rc == -ENOENT || res.rc == -EAGAIN ? 3 : 4;
		goto out;
	}
	if (fwrite(res.sbom, 1, res.sbom_len, stdout) != res.sbom_len ||
	    fputc('\n', stdout) == EOF || fflush(stdout) != 0) {
		perror("sbomd scan: writing the SBOM");
		status = 4;
	} else {
		fprintf(stderr, "sbomd scan: %zu packages%s%s\n",
		    res.components, res.image_id[0] ? " in " : "",
		    res.image_id);
		status = 0;
	}
	scan_result_free(&res);
out:
	free(target);
	return status;
}
