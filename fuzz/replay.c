/*
 * replay: a plain main for the libFuzzer targets, so that every target's
 * corpus runs as an ordinary test in every build (gcc, the sanitizer
 * build) without libFuzzer: each file named, or each file of each
 * directory named, is read and passed once to LLVMFuzzerTestOneInput.
 * Fails when a directory is unreadable or nothing was replayed (a corpus
 * that went missing). Inputs are copied to buffers of exactly their size,
 * as libFuzzer does, so that a read past the end is seen under ASan.
 */
#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	uint8_t *b;
	size_t n;

	if (f == NULL || fstat(fileno(f), &st) != 0) {
		perror(path);
		if (f != NULL)
			fclose(f);
		return -1;
	}
	n = (size_t)st.st_size;
	if ((b = malloc(n ? n : 1)) == NULL)
		abort();
	if (n > 0 && fread(b, 1, n, f) != n) {
		fprintf(stderr, "%s: short read\n", path);
		free(b);
		fclose(f);
		return -1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(b, n);
	free(b);
	return 0;
}

int
main(int argc, char **argv)
{
	size_t done = 0;

	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) != 0) {
			perror(argv[i]);
			return 1;
		}
		if (!S_ISDIR(st.st_mode)) {
			if (replay_file(argv[i]) != 0)
				return 1;
			done++;
			continue;
		}
		DIR *d = opendir(argv[i]);
		struct dirent *de;
		if (d == NULL) {
			perror(argv[i]);
			return 1;
		}
		while ((de = readdir(d)) != NULL) {
			char path[4096];
			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", argv[i],
			    de->d_name);
			if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
				continue;
			if (replay_file(path) != 0) {
				closedir(d);
				return 1;
			}
			done++;
		}
		closedir(d);
	}
	printf("replayed %zu inputs\n", done);
	return done > 0 ? 0 : 1;
}
