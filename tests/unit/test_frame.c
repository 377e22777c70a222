/*
 * test_frame.c - unit tests for workers/frame.c (DONE statuses) and for
 * how the process executor decodes the payloads a worker sends
 * (workers/procs.c). The cases the fuzzer found (fuzz/fuzz_frame.c) are
 * here by name.
 *
 * Single-threaded.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <cjson/cJSON.h>

#include "daemon/job.h"
#include "workers/frame.h"
#include "workers/procs.h"

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
		cmocka_unit_test(test_status),
		cmocka_unit_test(test_worker_done),
		cmocka_unit_test(test_worker_output),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
