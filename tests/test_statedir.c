/*
 * test_statedir: the state directory's lock and instance id
 * (consumer/service/statedir) on a real directory: a second holder is
 * refused with the first one's pid, the lock is not inherited across
 * exec, the instance id is made once and kept, a damaged id file is
 * refused rather than replaced.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "service/statedir.h"

static char *
tmpdir(void)
{
	char tmpl[] = "/tmp/test_statedir.XXXXXX";
	char *d = mkdtemp(tmpl);
	assert_non_null(d);
	return strdup(d);
}

static void
rm_rf(const char *dir)
{
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static void
test_second_holder_refused_with_pid(void **state)
{
	(void)state;
	char *root = tmpdir(), dir[600], err[512];
	snprintf(dir, sizeof(dir), "%s/a/b", root); /* created on the way */
	int fd = -1, fd2 = -1;
	assert_int_equal(statedir_lock(dir, &fd, err, sizeof(err)), 0);
	assert_true(fd >= 0);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	/* Another open file description conflicts, even in this process. */
	assert_int_equal(statedir_lock(dir, &fd2, err, sizeof(err)), -EBUSY);
	char pid[32];
	snprintf(pid, sizeof(pid), "pid %ld", (long)getpid());
	assert_non_null(strstr(err, pid));
	assert_non_null(strstr(err, dir));
	statedir_unlock(fd);
	/* Released: the next one takes it. */
	assert_int_equal(statedir_lock(dir, &fd2, err, sizeof(err)), 0);
	statedir_unlock(fd2);
	rm_rf(root);
	free(root);
}

static void
test_instance_id_made_once_and_kept(void **state)
{
	(void)state;
	char *dir = tmpdir(), err[512], a[64], b[64], path[600];
	assert_int_equal(statedir_instance_id(dir, a, sizeof(a), err,
	    sizeof(err)), 0);
	assert_int_equal(strncmp(a, "sbomd-", 6), 0);
	assert_int_equal(strlen(a), 6 + 16);
	assert_int_equal(statedir_instance_id(dir, b, sizeof(b), err,
	    sizeof(err)), 0);
	assert_string_equal(a, b);
	/* Another directory, another instance. */
	char *other = tmpdir();
	assert_int_equal(statedir_instance_id(other, b, sizeof(b), err,
	    sizeof(err)), 0);
	assert_string_not_equal(a, b);
	/* A damaged file is refused, not silently replaced. */
	snprintf(path, sizeof(path), "%s/instance-id", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("sbomd-xyz\n", f);
	fclose(f);
	assert_int_equal(statedir_instance_id(dir, b, sizeof(b), err,
	    sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, path));
	rm_rf(dir);
	rm_rf(other);
	free(dir);
	free(other);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_second_holder_refused_with_pid),
		cmocka_unit_test(test_instance_id_made_once_and_kept),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
