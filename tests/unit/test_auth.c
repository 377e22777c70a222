/*
 * test_auth.c - unit tests for daemon/auth.c: the tokens file parser (every
 * error named file:line), the file's permission checks, the constant-time
 * compare, token lookup by hash, tenants, who may see which job, and which
 * listen addresses count as local.
 *
 * The request side (401, 403, 429) needs a live connection and is tested
 * end to end in tests/e2e/test_auth.py.
 */
#include <arpa/inet.h>
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
#include <unistd.h>

#include <cmocka.h>

#include "daemon/auth.h"
#include "daemon/job.h"

/* SHA-256("abc"), as a tokens file writes it (FIPS 180-4's example). */
#define HASH_ABC "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static const char *hash_of(const char *token, char out[JD_TOKEN_HASH_STRLEN])
{
	jd_token_hash_string(token, out);
	return out;
}

/* Parse `text`; returns the parser's result, errors in *errs. */
static int parse(const char *text, struct jd_tokens *t, struct jd_config_errors *errs)
{
	return jd_tokens_parse(text, strlen(text), "tokens", t, errs);
}

/* Parse text that must fail with exactly one error starting with `want`. */
static void assert_one_error(const char *text, const char *want)
{
	struct jd_tokens t;
	struct jd_config_errors errs = { 0 };
	assert_int_equal(parse(text, &t, &errs), -EINVAL);
	assert_int_equal(t.n, 0);
	assert_null(t.v);
	if (errs.n != 1 || strncmp(errs.msg[0], want, strlen(want)) != 0)
		fail_msg("for %s\nwanted: %s...\ngot %zu error(s), first: %s", text, want, errs.n,
			 errs.n ? errs.msg[0] : "");
	jd_config_errors_cleanup(&errs);
}

static void test_ct_equal(void **state)
{
	uint8_t a[32], b[32];
	(void)state;
	for (size_t i = 0; i < sizeof(a); i++)
		a[i] = b[i] = (uint8_t)(i * 7);
	assert_true(jd_ct_equal(a, b, sizeof(a)));
	assert_true(jd_ct_equal(a, b, 0));
	b[0] ^= 1;
	assert_false(jd_ct_equal(a, b, sizeof(a)));
	b[0] ^= 1;
	b[31] ^= 0x80;
	assert_false(jd_ct_equal(a, b, sizeof(a)));
	assert_true(jd_ct_equal(a, b, 31)); /* only the bytes asked about */
}

static void test_hash_string(void **state)
{
	char h[JD_TOKEN_HASH_STRLEN];
	(void)state;
	jd_token_hash_string("abc", h);
	assert_string_equal(h, HASH_ABC);
	assert_int_equal(strlen(h), JD_TOKEN_HASH_STRLEN - 1);
}

static void test_token_valid(void **state)
{
	char big[JD_TOKEN_MAX + 2];
	(void)state;
	assert_true(jd_token_valid("jobd_AbC-12_x"));
	assert_true(jd_token_valid("a.b~c+d/e=="));
	assert_false(jd_token_valid(""));
	assert_false(jd_token_valid("two words"));
	assert_false(jd_token_valid("semi;colon"));
	assert_false(jd_token_valid("=x"));
	assert_false(jd_token_valid("pad=then"));
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_false(jd_token_valid(big));
	big[JD_TOKEN_MAX] = '\0';
	assert_true(jd_token_valid(big));
}

static void test_parse_good(void **state)
{
	char h1[JD_TOKEN_HASH_STRLEN], h2[JD_TOKEN_HASH_STRLEN], h3[JD_TOKEN_HASH_STRLEN];
	char text[1024];
	struct jd_tokens t;
	struct jd_config_errors errs = { 0 };
	(void)state;
	hash_of("jobd_alice", h1);
	hash_of("jobd_alice_read", h2);
	hash_of("jobd_root", h3);
	snprintf(text, sizeof(text),
		 "# jobd tokens\n"
		 "\n"
		 "   # indented comment\n"
		 "alice submit %s max_queued=5 rate=2.5 # trailing comment\n"
		 "alice\tread\t%s\r\n"
		 "root admin %s burst=10",
		 h1, h2, h3);
	assert_int_equal(parse(text, &t, &errs), 0);
	assert_int_equal(errs.n, 0);
	assert_int_equal(t.n, 3);

	assert_string_equal(t.v[0].name, "alice");
	assert_int_equal(t.v[0].role, JD_ROLE_SUBMIT);
	assert_int_equal(t.v[0].line, 4);
	assert_int_equal(t.v[0].max_queued, 5);
	assert_true(t.v[0].rate == 2.5);
	assert_true(t.v[0].burst == -1);
	assert_int_equal(t.v[1].role, JD_ROLE_READ);
	assert_int_equal(t.v[1].line, 5);
	assert_int_equal(t.v[1].max_queued, -1);
	assert_int_equal(t.v[2].role, JD_ROLE_ADMIN);
	assert_true(t.v[2].burst == 10);
	/* One name, one tenant. */
	assert_non_null(t.v[0].tenant);
	assert_ptr_equal(t.v[0].tenant, t.v[1].tenant);
	assert_ptr_not_equal(t.v[0].tenant, t.v[2].tenant);
	assert_string_equal(t.v[2].tenant->name, "root");

	assert_ptr_equal(jd_tokens_find(&t, "jobd_alice"), &t.v[0]);
	assert_ptr_equal(jd_tokens_find(&t, "jobd_alice_read"), &t.v[1]);
	assert_ptr_equal(jd_tokens_find(&t, "jobd_root"), &t.v[2]);
	assert_null(jd_tokens_find(&t, "jobd_root "));
	assert_null(jd_tokens_find(&t, "jobd_roo"));
	assert_null(jd_tokens_find(&t, ""));
	jd_tokens_cleanup(&t);
	assert_int_equal(t.n, 0);

	/* Empty and comment-only files hold no token, and are fine. */
	assert_int_equal(parse("", &t, &errs), 0);
	assert_int_equal(t.n, 0);
	assert_int_equal(parse("# none yet\n\n", &t, &errs), 0);
	assert_int_equal(t.n, 0);
	assert_null(jd_tokens_find(&t, "jobd_alice"));
	/* Upper-case hex is the same hash. */
	assert_int_equal(
	    parse("x read sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF"
		  "61F20015AD\n",
		  &t, &errs),
	    0);
	assert_ptr_equal(jd_tokens_find(&t, "abc"), &t.v[0]);
	jd_tokens_cleanup(&t);
	assert_int_equal(errs.n, 0);
}

static void test_parse_errors(void **state)
{
	(void)state;
	assert_one_error("alice submit\n", "tokens:1: expected NAME ROLE sha256:HEX");
	assert_one_error("# c\nalice\n", "tokens:2: expected NAME ROLE");
	assert_one_error("alice write " HASH_ABC "\n", "tokens:1: unknown role \"write\"");
	assert_one_error("alice none " HASH_ABC "\n", "tokens:1: unknown role \"none\"");
	assert_one_error("alice Admin " HASH_ABC "\n", "tokens:1: unknown role \"Admin\"");
	assert_one_error("al/ice read " HASH_ABC "\n", "tokens:1: bad name \"al/ice\"");
	assert_one_error(
	    "alice read ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n",
	    "tokens:1: bad hash");
	assert_one_error("alice read sha256:ba78\n", "tokens:1: bad hash");
	assert_one_error(
	    "alice read sha256:zz7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f2"
	    "0015ad\n",
	    "tokens:1: bad hash");
	assert_one_error("alice read " HASH_ABC " colour=red\n",
			 "tokens:1: unknown option \"colour=red\"");
	assert_one_error("alice read " HASH_ABC " max_queued\n", "tokens:1: unknown option");
	assert_one_error("alice read " HASH_ABC " max_queued=1.5\n", "tokens:1: bad value");
	assert_one_error("alice read " HASH_ABC " max_queued=-1\n", "tokens:1: bad value");
	assert_one_error("alice read " HASH_ABC " rate=fast\n", "tokens:1: bad value");
	assert_one_error("alice read " HASH_ABC " burst=0\n", "tokens:1: bad value");
	/* The same token twice, and one tenant's limits that disagree. */
	assert_one_error("alice read " HASH_ABC "\nbob read " HASH_ABC "\n",
			 "tokens:2: the same token (hash) as line 1");

	char text[512], h1[JD_TOKEN_HASH_STRLEN], h2[JD_TOKEN_HASH_STRLEN];
	hash_of("one", h1);
	hash_of("two", h2);
	snprintf(text, sizeof(text), "a submit %s max_queued=3\na read %s max_queued=4\n", h1, h2);
	assert_one_error(text, "tokens:2: max_queued differs from line 1");
	snprintf(text, sizeof(text), "a submit %s rate=1\n\na read %s rate=2\n", h1, h2);
	assert_one_error(text, "tokens:3: rate differs from line 1");
	/* Limits given once apply to the name; others need not repeat them. */
	struct jd_tokens t;
	struct jd_config_errors errs = { 0 };
	snprintf(text, sizeof(text), "a submit %s max_queued=3\na read %s\n", h1, h2);
	assert_int_equal(parse(text, &t, &errs), 0);
	assert_int_equal(t.n, 2);
	jd_tokens_cleanup(&t);

	/* A long line, and a NUL byte. */
	char *lng = malloc(3000);
	assert_non_null(lng);
	memset(lng, 'a', 2999);
	lng[2999] = '\0';
	assert_one_error(lng, "tokens:1: line too long");
	free(lng);
	static const char nul[] = "a read x\0y\n";
	assert_int_equal(jd_tokens_parse(nul, sizeof(nul) - 1, "tokens", &t, &errs), -EINVAL);
	assert_int_equal(errs.n, 1);
	assert_string_equal(errs.msg[0], "tokens:1: NUL byte in line");
	jd_config_errors_cleanup(&errs);

	/* Every bad line is reported, not just the first, and no token of a
	 * bad file is used. */
	snprintf(text, sizeof(text), "ok read %s\nbad\nalso bad read x\nok2 write %s\n", h1, h2);
	assert_int_equal(parse(text, &t, &errs), -EINVAL);
	assert_int_equal(t.n, 0);
	assert_int_equal(errs.n, 3);
	assert_true(strncmp(errs.msg[0], "tokens:2:", 9) == 0);
	assert_true(strncmp(errs.msg[1], "tokens:3:", 9) == 0);
	assert_true(strncmp(errs.msg[2], "tokens:4:", 9) == 0);
	jd_config_errors_cleanup(&errs);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static void test_load_file(void **state)
{
	char dir[] = "/tmp/jobd-test-auth-XXXXXX", path[64], text[256], h[JD_TOKEN_HASH_STRLEN];
	struct jd_tokens t;
	struct jd_config_errors errs = { 0 };
	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/tokens", dir);
	snprintf(text, sizeof(text), "ci submit %s\n", hash_of("jobd_ci", h));

	assert_true(jd_tokens_load(path, &t, &errs) < 0); /* missing */
	assert_int_equal(errs.n, 1);
	assert_non_null(strstr(errs.msg[0], "cannot open the tokens file"));
	jd_config_errors_cleanup(&errs);

	write_file(path, text, 0600);
	assert_int_equal(jd_tokens_load(path, &t, &errs), 0);
	assert_int_equal(t.n, 1);
	assert_non_null(jd_tokens_find(&t, "jobd_ci"));
	jd_tokens_cleanup(&t);

	chmod(path, 0644); /* readable by all: a warning in the log, no error */
	assert_int_equal(jd_tokens_load(path, &t, &errs), 0);
	assert_int_equal(t.n, 1);
	jd_tokens_cleanup(&t);

	chmod(path, 0666); /* writable by all: anyone could add an admin */
	assert_int_equal(jd_tokens_load(path, &t, &errs), -EINVAL);
	assert_int_equal(t.n, 0);
	assert_int_equal(errs.n, 1);
	assert_non_null(strstr(errs.msg[0], "writable by every user"));
	jd_config_errors_cleanup(&errs);

	assert_int_equal(jd_tokens_load(dir, &t, &errs), -EINVAL); /* a directory */
	jd_config_errors_cleanup(&errs);

	/* The errors of a file name the file. */
	write_file(path, "ci submit\n", 0600);
	assert_int_equal(jd_tokens_load(path, &t, &errs), -EINVAL);
	assert_int_equal(errs.n, 1);
	snprintf(text, sizeof(text), "%s:1: expected", path);
	assert_true(strncmp(errs.msg[0], text, strlen(text)) == 0);
	jd_config_errors_cleanup(&errs);
	unlink(path);
	rmdir(dir);
}

static void test_tenants_and_visibility(void **state)
{
	(void)state;
	struct jd_tenant *a = jd_tenant_get("tenant-a"), *b = jd_tenant_get("tenant-b");
	assert_non_null(a);
	assert_non_null(b);
	assert_ptr_equal(jd_tenant_get("tenant-a"), a);
	assert_ptr_not_equal(a, b);
	assert_string_equal(a->name, "tenant-a");
	assert_ptr_equal(a->as[JD_ROLE_READ].tenant, a);
	assert_int_equal(a->as[JD_ROLE_SUBMIT].role, JD_ROLE_SUBMIT);

	struct jd_job ja = { .owner = a }, jb = { .owner = b }, none = { .owner = NULL };
	const struct jd_principal anon_admin = { NULL, JD_ROLE_ADMIN };
	const struct jd_principal nobody = { NULL, JD_ROLE_NONE };

	assert_true(jd_auth_may_see(&a->as[JD_ROLE_READ], &ja));
	assert_true(jd_auth_may_see(&a->as[JD_ROLE_SUBMIT], &ja));
	assert_false(jd_auth_may_see(&a->as[JD_ROLE_READ], &jb));
	assert_false(jd_auth_may_see(&a->as[JD_ROLE_SUBMIT], &jb));
	assert_false(jd_auth_may_see(&a->as[JD_ROLE_SUBMIT], &none));
	assert_false(jd_auth_may_see(&a->as[JD_ROLE_NONE], &ja));
	assert_true(jd_auth_may_see(&a->as[JD_ROLE_ADMIN], &jb));
	assert_true(jd_auth_may_see(&a->as[JD_ROLE_ADMIN], &none));
	assert_true(jd_auth_may_see(&anon_admin, &jb));
	assert_false(jd_auth_may_see(&nobody, &none));
	assert_false(jd_auth_may_see(&nobody, &ja));
	assert_false(jd_auth_may_see(NULL, &ja));
	assert_string_equal(jd_role_name(JD_ROLE_SUBMIT), "submit");
}

/* A job's owner goes through the store's extra column and comes back as
 * the same tenant. */
static void test_owner_stored(void **state)
{
	(void)state;
	struct jd_job job = { .owner = jd_tenant_get("stored-owner") }, back = { 0 };
	int oom;
	char *extra = jd_job_extra(&job, &oom);
	assert_non_null(extra);
	assert_non_null(strstr(extra, "\"owner\":\"stored-owner\""));
	assert_int_equal(jd_job_set_extra(&back, extra), 0);
	assert_ptr_equal(back.owner, job.owner);
	free(extra);
	free(back.attempts);
}

static void test_listen_is_local(void **state)
{
	(void)state;
	assert_true(jd_auth_listen_is_local("127.0.0.1:7070"));
	assert_true(jd_auth_listen_is_local("127.0.0.2:0"));
	assert_true(jd_auth_listen_is_local("127.255.255.254:80"));
	assert_true(jd_auth_listen_is_local("[::1]:7070"));
	assert_true(jd_auth_listen_is_local("[::ffff:127.0.0.1]:7070"));
	assert_true(jd_auth_listen_is_local("unix:/run/jobd/api.sock"));
	assert_true(jd_auth_listen_is_local("localhost:7070"));
	assert_false(jd_auth_listen_is_local("0.0.0.0:7070"));
	assert_false(jd_auth_listen_is_local(":7070"));
	assert_false(jd_auth_listen_is_local("[::]:7070"));
	assert_false(jd_auth_listen_is_local("10.1.2.3:7070"));
	assert_false(jd_auth_listen_is_local("128.0.0.1:7070"));
	assert_false(jd_auth_listen_is_local("[::ffff:10.0.0.1]:7070"));
	assert_false(jd_auth_listen_is_local("[::1:7070"));
}

static void test_fd_is_local(void **state)
{
	(void)state;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET };
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_true(jd_auth_fd_is_local(fd));
	close(fd);

	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_true(jd_auth_fd_is_local(sv[0]));
	close(sv[0]);
	close(sv[1]);

	fd = socket(AF_INET, SOCK_STREAM, 0); /* unbound: 0.0.0.0 */
	assert_false(jd_auth_fd_is_local(fd));
	close(fd);
	assert_false(jd_auth_fd_is_local(-1));
}

static int teardown(void **state)
{
	(void)state;
	jd_tenants_cleanup();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ct_equal),
		cmocka_unit_test(test_hash_string),
		cmocka_unit_test(test_token_valid),
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_tenants_and_visibility),
		cmocka_unit_test(test_owner_stored),
		cmocka_unit_test(test_listen_is_local),
		cmocka_unit_test(test_fd_is_local),
	};
	return cmocka_run_group_tests(tests, NULL, teardown);
}
