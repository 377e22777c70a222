/*
 * test_listen.c - unit tests for daemon/listen.c: which listen addresses
 * are local, listen_mode and listen_group parsing, and a Unix socket made
 * with its mode, taking over a stale socket file but never a live socket or
 * another kind of file.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/config.h"
#include "daemon/http.h"

static void test_is_unix(void **state)
{
	(void)state;
	/* Which addresses count as local is daemon/auth.c's, tested there. */
	assert_true(jd_listen_is_unix("unix:/x"));
	assert_false(jd_listen_is_unix("127.0.0.1:1"));
}

static void test_mode_and_group(void **state)
{
	unsigned mode = 0;
	gid_t gid = 1;
	(void)state;
	assert_int_equal(jd_listen_mode_parse("0660", &mode), 0);
	assert_int_equal(mode, 0660);
	assert_int_equal(jd_listen_mode_parse("600", &mode), 0);
	assert_int_equal(mode, 0600);
	assert_int_equal(jd_listen_mode_parse("0800", &mode), -EINVAL);
	assert_int_equal(jd_listen_mode_parse("1777", &mode), -EINVAL);
	assert_int_equal(jd_listen_mode_parse("", &mode), -EINVAL);
	assert_int_equal(jd_listen_group_parse("0", &gid), 0);
	assert_int_equal(gid, 0);
	assert_int_equal(jd_listen_group_parse("no-such-group-jobd-test", &gid), -ENOENT);
}

/* Open the listener of `addr` with `mode`; the fd or a negative errno. */
static int open_unix(const char *addr, const char *mode, char *bound, size_t blen)
{
	struct jd_config cfg;
	char err[256];
	jd_config_init(&cfg);
	free(cfg.listen);
	free(cfg.listen_mode);
	cfg.listen = strdup(addr);
	cfg.listen_mode = strdup(mode);
	int fd = jd_listen_open(&cfg, bound, blen, err, sizeof(err));
	jd_config_cleanup(&cfg);
	return fd;
}

static void test_unix_socket(void **state)
{
	char dir[] = "/tmp/jobd-listen-XXXXXX", path[64], addr[96], bound[256];
	struct stat st;
	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/api.sock", dir);
	snprintf(addr, sizeof(addr), "unix:%s", path);

	/* A stale socket file (bound, never listened on) is taken over. */
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	assert_int_equal(bind(s, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(s);

	int fd = open_unix(addr, "0640", bound, sizeof(bound));
	assert_true(fd >= 0);
	assert_string_equal(bound, addr);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0640);

	/* A live one is not. */
	assert_int_equal(open_unix(addr, "0660", bound, sizeof(bound)), -EADDRINUSE);
	close(fd);
	jd_listen_cleanup();
	assert_int_equal(stat(path, &st), -1);

	/* Nor is any other file. */
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(open_unix(addr, "0660", bound, sizeof(bound)), -EEXIST);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	unlink(path);

	/* Relative paths are refused. */
	assert_int_equal(open_unix("unix:relative.sock", "0660", bound, sizeof(bound)), -EINVAL);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_is_unix),
		cmocka_unit_test(test_mode_and_group),
		cmocka_unit_test(test_unix_socket),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
