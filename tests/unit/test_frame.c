/*
 * test_frame.c - unit tests for workers/frame.c (frame headers, decoding,
 * the blocking reader, DONE statuses) and for how the process executor
 * decodes the payloads a worker sends (workers/procs.c). The cases the
 * fuzzer found (fuzz/fuzz_frame.c) are here by name.
 *
 * Single-threaded; the blocking reader reads from a socketpair.
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
#include <unistd.h>

#include <cmocka.h>

#include <cjson/cJSON.h>

#include "daemon/job.h"
#include "workers/frame.h"
#include "workers/procs.h"

static void header(unsigned char *h, uint32_t len, uint16_t type, uint16_t flags)
{
	jd_frame_header(h, type, len);
	h[6] = (unsigned char)flags;
	h[7] = (unsigned char)(flags >> 8);
}

static void test_size(void **state)
{
	unsigned char h[JD_FRAME_HEADER];
	(void)state;
	header(h, 0, JD_FRAME_HELLO, 0);
	assert_int_equal(jd_frame_size(h, JD_FRAME_MAX), JD_FRAME_HEADER);
	header(h, 1000, JD_FRAME_DONE, 0xffff);
	assert_int_equal(jd_frame_size(h, JD_FRAME_MAX), JD_FRAME_HEADER + 1000);
	assert_int_equal(jd_frame_size(h, 999), -EPROTO);
	header(h, JD_FRAME_MAX, JD_FRAME_OUTPUT, 0);
	assert_int_equal(jd_frame_size(h, JD_FRAME_MAX), JD_FRAME_HEADER + (long)JD_FRAME_MAX);
	header(h, JD_FRAME_MAX + 1, JD_FRAME_OUTPUT, 0);
	assert_int_equal(jd_frame_size(h, UINT32_MAX), -EPROTO);
	header(h, 4, 0, 0);
	assert_int_equal(jd_frame_size(h, JD_FRAME_MAX), -EPROTO);
	header(h, 4, JD_FRAME_TYPE_MAX + 1, 0);
	assert_int_equal(jd_frame_size(h, JD_FRAME_MAX), -EPROTO);
}

static void test_decode(void **state)
{
	unsigned char buf[64];
	struct jd_frame f;
	(void)state;
	header(buf, 2, JD_FRAME_DONE, 7);
	memcpy(buf + JD_FRAME_HEADER, "{}", 2);
	for (size_t n = 0; n < JD_FRAME_HEADER + 2; n++)
		assert_int_equal(jd_frame_decode(buf, n, JD_FRAME_MAX, &f), 0);
	assert_int_equal(jd_frame_decode(buf, sizeof(buf), JD_FRAME_MAX, &f), JD_FRAME_HEADER + 2);
	assert_int_equal(f.type, JD_FRAME_DONE);
	assert_int_equal(f.flags, 7);
	assert_int_equal(f.len, 2);
	assert_ptr_equal(f.payload, (const char *)buf + JD_FRAME_HEADER);
	/* A bad header is refused from its 8 bytes, whatever length it
	 * declares: a reader must not wait for (or gather) a body first.
	 * Found by fuzz_frame: workers/child.c waited for the whole declared
	 * body of a frame of type 0 before refusing it. */
	header(buf, 1 << 20, 0, 0);
	assert_int_equal(jd_frame_decode(buf, JD_FRAME_HEADER, JD_FRAME_MAX, &f), -EPROTO);
	assert_int_equal(jd_frame_size(buf, JD_FRAME_MAX), -EPROTO);
}

static void test_read_fd(void **state)
{
	int sv[2];
	unsigned char h[JD_FRAME_HEADER];
	uint16_t type = 0;
	char *payload = NULL;
	uint32_t len = 0;
	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(jd_frame_write_fd(sv[1], JD_FRAME_OUTPUT, "{\"a\":1}", 7), 0);
	assert_int_equal(jd_frame_write_fd(sv[1], JD_FRAME_HELLO, NULL, 0), 0);
	assert_int_equal(jd_frame_read_fd(sv[0], JD_FRAME_MAX, &type, &payload, &len), 0);
	assert_int_equal(type, JD_FRAME_OUTPUT);
	assert_int_equal(len, 7);
	assert_string_equal(payload, "{\"a\":1}");
	free(payload);
	assert_int_equal(jd_frame_read_fd(sv[0], JD_FRAME_MAX, &type, &payload, &len), 0);
	assert_int_equal(type, JD_FRAME_HELLO);
	assert_int_equal(len, 0);
	assert_string_equal(payload, "");
	free(payload);
	/* A bad header: refused at once, with the writer still open. */
	header(h, 100, 9, 0);
	assert_int_equal(write(sv[1], h, sizeof(h)), (ssize_t)sizeof(h));
	assert_int_equal(jd_frame_read_fd(sv[0], JD_FRAME_MAX, &type, &payload, &len), -EPROTO);
	/* Cut short: the end of the stream. */
	header(h, 100, JD_FRAME_DONE, 0);
	assert_int_equal(write(sv[1], h, sizeof(h)), (ssize_t)sizeof(h));
	assert_int_equal(write(sv[1], "{", 1), 1);
	close(sv[1]);
	assert_int_equal(jd_frame_read_fd(sv[0], JD_FRAME_MAX, &type, &payload, &len), -EPIPE);
	close(sv[0]);
}

static int status_of(const char *json)
{
	cJSON *v = cJSON_Parse(json);
	int s = jd_frame_status(v);
	cJSON_Delete(v);
	return s;
}

static void test_status(void **state)
{
	(void)state;
	assert_int_equal(status_of("0"), 0);
	assert_int_equal(status_of("-0"), 0);
	assert_int_equal(status_of("-22"), -22);
	assert_int_equal(status_of("-4095"), -4095);
	assert_int_equal(status_of("-4096"), -EPROTO);
	assert_int_equal(status_of("3"), -EPROTO);
	assert_int_equal(status_of("0.5"), -EPROTO);
	assert_int_equal(status_of("-1.5"), -EPROTO);
	/* Found by fuzz_frame: (int) of these was undefined behaviour. */
	assert_int_equal(status_of("1e300"), -EPROTO);
	assert_int_equal(status_of("-1e300"), -EPROTO);
	assert_int_equal(status_of("\"0\""), -EPROTO);
	assert_int_equal(jd_frame_status(NULL), -EPROTO);
}

static void test_worker_done(void **state)
{
	struct jd_error err = { 0 };
	char *result = NULL;
	int status = 1;
	(void)state;
	static const char ok[] = "{\"status\":0,\"result\":{\"v\":[1, 2]}}";
	assert_int_equal(jd__procs_parse_done(ok, sizeof(ok) - 1, &status, &result, &err), 0);
	assert_int_equal(status, 0);
	assert_string_equal(result, "{\"v\":[1,2]}");
	free(result);
	static const char failed[] = "{\"status\":-22,\"result\":null,\"error\":{\"type\":\"x\","
				     "\"field\":\"params.a\",\"message\":\"bad\"}}";
	assert_int_equal(jd__procs_parse_done(failed, sizeof(failed) - 1, &status, &result, &err),
			 0);
	assert_int_equal(status, -22);
	assert_null(result);
	assert_string_equal(err.type, "x");
	assert_string_equal(err.field, "params.a");
	assert_string_equal(err.message, "bad");
	static const char huge[] = "{\"status\":-1e300}";
	assert_int_equal(jd__procs_parse_done(huge, sizeof(huge) - 1, &status, &result, &err), 0);
	assert_int_equal(status, -EPROTO);
	static const char none[] = "{\"result\":1}";
	assert_int_equal(jd__procs_parse_done(none, sizeof(none) - 1, &status, &result, &err),
			 -EPROTO);
	assert_null(result);
	assert_int_equal(jd__procs_parse_done("{", 1, &status, &result, &err), -EPROTO);
}

static void output(const char *json, struct jd_output *out)
{
	jd__procs_parse_output(json, (uint32_t)strlen(json), out);
}

static void test_worker_output(void **state)
{
	struct jd_output out = { 0 };
	(void)state;
	output("{\"pgid\":4321,\"stored\":[10,0],\"total\":[10,20],\"truncated\":[false,true]}",
	       &out);
	assert_int_equal(out.pgid, 4321);
	assert_true(out.stored[0] == 10 && out.stored[1] == 0);
	assert_true(out.total[0] == 10 && out.total[1] == 20);
	assert_true(!out.truncated[0] && out.truncated[1]);
	/* Found by fuzz_frame: counts beyond uint64_t were converted anyway
	 * (undefined behaviour); they, and anything not a count, are left
	 * as they were. */
	output("{\"stored\":[1e30,-1],\"total\":[\"5\",18446744073709551616]}", &out);
	assert_true(out.stored[0] == 10 && out.stored[1] == 0);
	assert_true(out.total[0] == 10 && out.total[1] == 20);
	/* A process group jobd would kill: never 1 (kill(-1, ...) reaches
	 * every process), nor jobd's own, nor anything not a pid. */
	output("{\"pgid\":1}", &out);
	output("{\"pgid\":-5}", &out);
	output("{\"pgid\":1e300}", &out);
	output("{\"pgid\":77.5}", &out);
	char own[64];
	snprintf(own, sizeof(own), "{\"pgid\":%d}", (int)getpgrp());
	output(own, &out);
	assert_int_equal(out.pgid, 4321);
	output("{\"pgid\":4322}", &out);
	assert_int_equal(out.pgid, 4322);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_size),        cmocka_unit_test(test_decode),
		cmocka_unit_test(test_read_fd),     cmocka_unit_test(test_status),
		cmocka_unit_test(test_worker_done), cmocka_unit_test(test_worker_output),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
