/*
 * test_id.c - unit tests for daemon/id.c: UUIDv7 layout, strict ordering,
 * formatting and parsing.
 *
 * Single-threaded (jd_id_new is loop-thread only).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "daemon/id.h"

#define MANY 100000

/* The example UUIDv7 of RFC 9562 appendix A.6. */
#define RFC_ID "017f22e2-79b0-7cc3-98c4-dc0c0c07398f"
static const uint8_t rfc_bytes[16] = { 0x01, 0x7f, 0x22, 0xe2, 0x79, 0xb0, 0x7c, 0xc3,
				       0x98, 0xc4, 0xdc, 0x0c, 0x0c, 0x07, 0x39, 0x8f };

static uint64_t id_ms(const struct jd_id *id)
{
	uint64_t ms = 0;
	for (int i = 0; i < 6; i++)
		ms = ms << 8 | id->b[i];
	return ms;
}

static int64_t real_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Parse a heap copy, so that ASan sees any read past the terminator. */
static int parse_copy(const char *s, struct jd_id *out)
{
	char *copy = strdup(s);
	assert_non_null(copy);
	int r = jd_id_parse(copy, out);
	free(copy);
	return r;
}

static int cmp_ids(const void *a, const void *b)
{
	return jd_id_cmp(a, b);
}

static void test_version_variant(void **state)
{
	for (int i = 0; i < 1000; i++) {
		struct jd_id id;
		char s[JD_ID_STRLEN];

		jd_id_new(&id);
		assert_int_equal(id.b[6] >> 4, 7);
		assert_int_equal(id.b[8] & 0xc0, 0x80);
		jd_id_format(&id, s);
		assert_int_equal(strlen(s), 36);
		assert_int_equal(s[14], '7');
		assert_non_null(strchr("89ab", s[19]));
	}
}

static void test_increasing_unique(void **state)
{
	struct jd_id *ids = malloc(MANY * sizeof(*ids));
	char prev[JD_ID_STRLEN], cur[JD_ID_STRLEN];

	assert_non_null(ids);
	jd_id_new(&ids[0]);
	jd_id_format(&ids[0], prev);
	for (size_t i = 1; i < MANY; i++) {
		jd_id_new(&ids[i]);
		jd_id_format(&ids[i], cur);
		if (memcmp(ids[i - 1].b, ids[i].b, 16) >= 0)
			fail_msg("id %zu (%s) is not greater than the one before (%s)", i, cur,
				 prev);
		assert_true(jd_id_cmp(&ids[i - 1], &ids[i]) < 0);
		assert_true(jd_id_cmp(&ids[i], &ids[i - 1]) > 0);
		assert_true(strcmp(prev, cur) < 0);
		/* Still version 7 / variant 10 after counter carries. */
		assert_int_equal(ids[i].b[6] >> 4, 7);
		assert_int_equal(ids[i].b[8] & 0xc0, 0x80);
		memcpy(prev, cur, sizeof(prev));
	}
	assert_int_equal(jd_id_cmp(&ids[5], &ids[5]), 0);

	/* Unique, also by the hash's view of them mostly. */
	qsort(ids, MANY, sizeof(*ids), cmp_ids);
	size_t same_hash = 0;
	for (size_t i = 1; i < MANY; i++) {
		assert_true(memcmp(ids[i - 1].b, ids[i].b, 16) != 0);
		same_hash += jd_id_hash(&ids[i - 1]) == jd_id_hash(&ids[i]);
	}
	assert_true(same_hash < 4);
	free(ids);
}

static void test_timestamp(void **state)
{
	struct jd_id id;
	int64_t before = real_ms();

	jd_id_new(&id);
	int64_t after = real_ms();
	int64_t ms = (int64_t)id_ms(&id);
	if (ms < before - 1000 || ms > after + 1000)
		fail_msg("id time %lld ms, clock %lld..%lld ms", (long long)ms, (long long)before,
			 (long long)after);
	/* A plausible era: after 2024-01-01 and before 2100. */
	assert_true(ms > 1704067200000LL);
	assert_true(ms < 4102444800000LL);
}

static void test_format_parse(void **state)
{
	struct jd_id id, back;
	char s[JD_ID_STRLEN];

	memcpy(id.b, rfc_bytes, 16);
	jd_id_format(&id, s);
	assert_string_equal(s, RFC_ID);
	assert_int_equal(parse_copy(RFC_ID, &back), 0);
	assert_memory_equal(back.b, rfc_bytes, 16);
	assert_int_equal(id_ms(&back), 0x017f22e279b0ull); /* 2022-02-22 19:22:22 UTC */

	memset(&back, 0, sizeof(back));
	assert_int_equal(parse_copy("017F22E2-79B0-7CC3-98C4-DC0C0C07398F", &back), 0);
	assert_memory_equal(back.b, rfc_bytes, 16);
	assert_int_equal(parse_copy("017f22E2-79b0-7Cc3-98C4-dc0c0C07398f", &back), 0);
	assert_memory_equal(back.b, rfc_bytes, 16);

	memset(id.b, 0, 16);
	jd_id_format(&id, s);
	assert_string_equal(s, "00000000-0000-0000-0000-000000000000");
	memset(id.b, 0xff, 16);
	jd_id_format(&id, s);
	assert_string_equal(s, "ffffffff-ffff-ffff-ffff-ffffffffffff");
	assert_int_equal(parse_copy(s, &back), 0);
	assert_memory_equal(back.b, id.b, 16);

	for (int i = 0; i < 1000; i++) {
		jd_id_new(&id);
		jd_id_format(&id, s);
		memset(&back, 0, sizeof(back));
		assert_int_equal(parse_copy(s, &back), 0);
		assert_memory_equal(back.b, id.b, 16);
		assert_int_equal(jd_id_cmp(&back, &id), 0);
		assert_true(jd_id_hash(&back) == jd_id_hash(&id));
	}
}

static void test_parse_rejects(void **state)
{
	static const char *const bad[] = {
		"",
		"0",
		"017f22e2-79b0-7cc3-98c4-dc0c0c07398",    /* 35 chars */
		"017f22e2-79b0-7cc3-98c4-dc0c0c07398f0",  /* 37 chars */
		"017f22e2-79b0-7cc3-98c4-dc0c0c07398f ",  /* trailing space */
		"017f22e2-79b0-7cc3-98c4-dc0c0c07398f\n", /* trailing newline */
		" 017f22e2-79b0-7cc3-98c4-dc0c0c07398f",  /* leading space */
		"017f22e2-79b0-7cc3-98c4-dc0c0c07398g",   /* bad hex, last */
		"g17f22e2-79b0-7cc3-98c4-dc0c0c07398f",   /* bad hex, first */
		"017f22e2-79b0-7cz3-98c4-dc0c0c07398f",   /* bad hex, middle */
		"017f22e2-79b0-7cc3-98c4-dc0c0c07398-",   /* dash for hex */
		"017f22e2-79b0-7cc3-98c4+dc0c0c07398f",   /* plus for dash */
		"017f22e279b0-7cc3-98c4-dc0c0c07398f0",   /* missing first dash */
		"017f22e-279b0-7cc3-98c4-dc0c0c07398f",   /* dash one early */
		"017f22e22-79b0-7cc3-98c4-dc0c0c07398f",  /* dash one late */
		"017f22e2-79b07-cc3-98c4-dc0c0c07398f",   /* second dash late */
		"017f22e2-79b0-7cc398-c4-dc0c0c07398f",   /* third dash late */
		"017f22e2-79b0-7cc3-98c4d-c0c0c07398f",   /* fourth dash late */
		"017f22e279b07cc398c4dc0c0c07398f",       /* no dashes */
		"{017f22e2-79b0-7cc3-98c4-dc0c0c07398f}", /* braces */
		"017f22e2-79b0-7cc3-98c4-dc0c0c07398f-",
		"0x7f22e2-79b0-7cc3-98c4-dc0c0c07398f",
		"017f22e2-79b0-7cc3-98c4-dc0c0c07398\xc3\xa9",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct jd_id out;
		if (parse_copy(bad[i], &out) != -EINVAL)
			fail_msg("accepted \"%s\"", bad[i]);
	}
	/* An embedded NUL ends the string: too short. */
	char s[JD_ID_STRLEN + 1];
	struct jd_id out;
	memcpy(s, RFC_ID, JD_ID_STRLEN);
	s[20] = '\0';
	assert_int_equal(jd_id_parse(s, &out), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_version_variant), cmocka_unit_test(test_increasing_unique),
		cmocka_unit_test(test_timestamp),       cmocka_unit_test(test_format_parse),
		cmocka_unit_test(test_parse_rejects),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
