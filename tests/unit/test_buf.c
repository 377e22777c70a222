/*
 * test_buf.c - unit tests for daemon/buf.c: the growable buffer, JSON
 * string escaping, exact number output, and jd_json_print of whole trees.
 *
 * Single-threaded; random inputs come from a fixed-seed generator so a
 * failure repeats.
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <cjson/cJSON.h>

#include "daemon/buf.h"

/* ---- helpers ---- */

static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint64_t next_rand(void)
{
	/* xorshift64* */
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545f4914f6cdd1dull;
}

static unsigned rand_below(unsigned n)
{
	return (unsigned)(next_rand() % n);
}

static char *json_str(const char *s, size_t n)
{
	struct jd_buf b;
	jd_buf_init(&b, 4);
	jd_buf_json_strn(&b, s, n);
	char *out = jd_buf_steal(&b, NULL);
	assert_non_null(out);
	return out;
}

static void assert_json_str(const char *s, const char *want)
{
	char *got = json_str(s, strlen(s));
	assert_string_equal(got, want);
	free(got);
}

static char *json_num(double v)
{
	struct jd_buf b;
	jd_buf_init(&b, 0);
	jd_buf_json_num(&b, v);
	char *out = jd_buf_steal(&b, NULL);
	assert_non_null(out);
	return out;
}

static void assert_json_num(double v, const char *want)
{
	char *got = json_num(v);
	if (strcmp(got, want) != 0)
		fail_msg("%.17g printed as \"%s\", want \"%s\"", v, got, want);
	free(got);
}

static int same_double(double a, double b)
{
	return memcmp(&a, &b, sizeof(a)) == 0;
}

/* ---- the buffer ---- */

static void test_buf_basics(void **state)
{
	struct jd_buf b;
	size_t len = 0;
	char big[1000];

	jd_buf_init(&b, 1);
	jd_buf_adds(&b, "ab");
	jd_buf_addc(&b, 'c');
	jd_buf_add(&b, "d\0e", 3);
	jd_buf_printf(&b, "[%d|%s]", -42, "x");
	assert_int_equal(b.len, 13);
	assert_memory_equal(b.p, "abcd\0e[-42|x]", 13);

	/* printf output longer than its 256-byte scratch buffer. */
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	jd_buf_printf(&b, "<%s>", big);
	assert_int_equal(b.len, 13 + 1001);
	jd_buf_json_int(&b, INT64_MIN);
	jd_buf_json_int(&b, 0);
	jd_buf_json_int(&b, INT64_MAX);
	assert_int_equal(b.oom, 0);
	char *s = jd_buf_steal(&b, &len);
	assert_non_null(s);
	assert_int_equal(len, 13 + 1001 + 20 + 1 + 19);
	assert_int_equal(s[len], '\0');
	assert_int_equal(s[13], '<');
	assert_int_equal(s[13 + 1000], '>');
	assert_string_equal(s + 1014, "-922337203685477580809223372036854775807");
	assert_null(b.p);
	assert_int_equal(b.len, 0);
	free(s);

	/* An empty buffer steals as "". */
	jd_buf_init(&b, 0);
	s = jd_buf_steal(&b, &len);
	assert_string_equal(s, "");
	assert_int_equal(len, 0);
	free(s);
	jd_buf_init(&b, 0);
	jd_buf_cleanup(&b);
	jd_buf_cleanup(&b);
}

/* ---- strings ---- */

static void test_str_escapes(void **state)
{
	assert_json_str("", "\"\"");
	assert_json_str("plain", "\"plain\"");
	assert_json_str("a\"b", "\"a\\\"b\"");
	assert_json_str("a\\b", "\"a\\\\b\"");
	assert_json_str("\\\"", "\"\\\\\\\"\"");
	assert_json_str("/", "\"/\"");
	assert_json_str("\n\r\t\b\f", "\"\\n\\r\\t\\b\\f\"");
	assert_json_str("\x01\x02\x1f", "\"\\u0001\\u0002\\u001f\"");
	assert_json_str("\x0b\x1b", "\"\\u000b\\u001b\"");
	assert_json_str("\x7f", "\"\x7f\"");
	assert_json_str(" ~", "\" ~\"");
	/* UTF-8 passes through byte for byte. */
	assert_json_str("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80",
			"\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
	assert_json_str("\xe2\x80\xa8", "\"\xe2\x80\xa8\"");

	/* An embedded NUL with the explicit length. */
	char *got = json_str("a\0b", 3);
	assert_string_equal(got, "\"a\\u0000b\"");
	free(got);
	got = json_str("abc", 1);
	assert_string_equal(got, "\"a\"");
	free(got);
}

/* Every byte value from 1 to 255 round-trips through cJSON's parser, and
 * every control character is escaped. */
static void test_str_all_bytes(void **state)
{
	char in[256];

	for (int i = 1; i < 256; i++)
		in[i - 1] = (char)i;
	in[255] = '\0';
	char *out = json_str(in, 255);
	for (const unsigned char *p = (const unsigned char *)out; *p; p++)
		assert_true(*p >= 0x20);
	/* 31 controls: 5 short escapes (2 bytes), 26 \u00XX (6); 2 more
	 * for " and \; and the quotes around. */
	assert_int_equal(strlen(out), 255 + 5 * 1 + 26 * 5 + 2 + 2);
	cJSON *v = cJSON_Parse(out);
	assert_non_null(v);
	assert_true(cJSON_IsString(v));
	assert_string_equal(v->valuestring, in);
	cJSON_Delete(v);
	free(out);
}

/* ---- numbers ---- */

static void test_num_exact(void **state)
{
	assert_json_num(0.0, "0");
	assert_json_num(1.0, "1");
	assert_json_num(-1.0, "-1");
	assert_json_num(0.1, "0.1");
	assert_json_num(-0.1, "-0.1");
	assert_json_num(0.1 + 0.2, "0.30000000000000004");
	assert_json_num(1.0 / 3, "0.3333333333333333");
	assert_json_num(2.0 / 3, "0.6666666666666666");
	assert_json_num(1.5, "1.5");
	assert_json_num(123456.789, "123456.789");
	assert_json_num(1e300, "1e+300");
	assert_json_num(-1e300, "-1e+300");
	assert_json_num(1e-300, "1e-300");
	assert_json_num(1e-7, "1e-07");
	assert_json_num(0.0001, "0.0001");
	assert_json_num(DBL_MAX, "1.7976931348623157e+308");
	assert_json_num(DBL_MIN, "2.2250738585072014e-308");
	assert_json_num(3.141592653589793, "3.141592653589793");
	/* Integers up to 2^53 need no exponent and no fraction. */
	assert_json_num(1e15, "1000000000000000");
	assert_json_num(123456789012345678.0 / 100, "1234567890123456.8");
	assert_json_num(9007199254740991.0, "9007199254740991");
	assert_json_num(-9007199254740991.0, "-9007199254740991");
	assert_json_num(9007199254740992.0, "9007199254740992");
	assert_json_num(-9007199254740992.0, "-9007199254740992");
	assert_json_num(4503599627370497.0, "4503599627370497");
	assert_json_num(1e16, "1e+16");
	assert_json_num(18446744073709551616.0, "1.8446744073709552e+19");
	/* -0 keeps its sign and reads back as -0. */
	assert_json_num(-0.0, "-0");
	/* Not representable in JSON. */
	assert_json_num(NAN, "null");
	assert_json_num(-NAN, "null");
	assert_json_num(INFINITY, "null");
	assert_json_num(-INFINITY, "null");

	/* The smallest subnormal reads back exactly (15 digits, not the
	 * shortest "5e-324"). */
	char *s = json_num(4.9406564584124654e-324);
	assert_string_equal(s, "4.94065645841247e-324");
	assert_true(same_double(strtod(s, NULL), 4.9406564584124654e-324));
	free(s);
}

/* The shortest %g form (1..17 significant digits) that reads back as the
 * same double. */
static void shortest(double v, char *out, size_t size)
{
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(out, size, "%.*g", prec, v);
		if (same_double(strtod(out, NULL), v))
			return;
	}
	fail_msg("%a does not round-trip at 17 digits", v);
}

/* Random doubles (random bits, and decimal-looking values): each prints as
 * a JSON number that reads back as the same bits, and for normal numbers
 * that are not small integers, as the shortest such form. */
static void test_num_random(void **state)
{
	char want[64];
	int checked_shortest = 0;

	for (int i = 0; i < 200000; i++) {
		double v;
		if (i % 2) {
			uint64_t bits = next_rand();
			memcpy(&v, &bits, sizeof(v));
			if (!isfinite(v))
				continue;
		} else {
			v = (double)(int64_t)(next_rand() % 2000000001) - 1e9;
			v /= pow(10, rand_below(20));
		}
		char *s = json_num(v);
		assert_true(strlen(s) <= 24);
		assert_true(same_double(strtod(s, NULL), v));
		cJSON *n = cJSON_Parse(s);
		if (!n || !cJSON_IsNumber(n))
			fail_msg("%.17g printed as \"%s\", which is not a JSON number", v, s);
		assert_true(same_double(n->valuedouble, v));
		cJSON_Delete(n);
		if (isnormal(v) && !(v == floor(v) && fabs(v) < 9007199254740992.0)) {
			shortest(v, want, sizeof(want));
			if (strcmp(s, want) != 0)
				fail_msg("%a printed as \"%s\", shortest is \"%s\"", v, s, want);
			checked_shortest++;
		}
		free(s);
	}
	assert_true(checked_shortest > 150000);
}

/* ---- whole trees ---- */

static char *random_string(void)
{
	static const char *const pieces[] = {
		"a",
		"Z",
		"0",
		" ",
		"\"",
		"\\",
		"/",
		"\n",
		"\t",
		"\x01",
		"\x1f",
		"\x7f",
		"\xc3\xa9",
		"\xe2\x82\xac",
		"\xf0\x9f\x98\x80",
		"key",
		"{}",
		"[]",
		":",
		",",
	};
	size_t n = rand_below(12);
	char *s = malloc(n * 4 + 1);
	assert_non_null(s);
	s[0] = '\0';
	for (size_t i = 0; i < n; i++)
		strcat(s, pieces[rand_below(sizeof(pieces) / sizeof(pieces[0]))]);
	return s;
}

static double random_number(void)
{
	static const double special[] = {
		0.0,
		-0.0,
		0.1,
		0.30000000000000004,
		9007199254740991.0,
		-9007199254740992.0,
		1e300,
		-1e-300,
		5e-324,
		DBL_MAX,
		1.5,
		-7.0,
	};
	switch (rand_below(3)) {
	case 0: return special[rand_below(sizeof(special) / sizeof(special[0]))];
	case 1: return (double)((int64_t)rand_below(2000001) - 1000000);
	default: {
		double v;
		do {
			uint64_t bits = next_rand();
			memcpy(&v, &bits, sizeof(v));
		} while (!isfinite(v));
		return v;
	}
	}
}

static cJSON *random_tree(int depth)
{
	unsigned kind = rand_below(depth > 0 ? 8 : 6);
	cJSON *v = NULL;

	switch (kind) {
	case 0: v = cJSON_CreateNull(); break;
	case 1: v = cJSON_CreateTrue(); break;
	case 2: v = cJSON_CreateFalse(); break;
	case 3:
	case 4: v = cJSON_CreateNumber(random_number()); break;
	case 5: {
		char *s = random_string();
		v = cJSON_CreateString(s);
		free(s);
		break;
	}
	case 6: {
		v = cJSON_CreateArray();
		unsigned n = rand_below(6);
		for (unsigned i = 0; i < n; i++)
			cJSON_AddItemToArray(v, random_tree(depth - 1));
		break;
	}
	default: {
		v = cJSON_CreateObject();
		unsigned n = rand_below(6);
		for (unsigned i = 0; i < n; i++) {
			/* Keys are unique: cJSON_Compare looks members up by key. */
			char *s = random_string();
			char *key = malloc(strlen(s) + 16);
			assert_non_null(key);
			sprintf(key, "%s#%u", s, i);
			cJSON_AddItemToObject(v, key, random_tree(depth - 1));
			free(key);
			free(s);
		}
		break;
	}
	}
	assert_non_null(v);
	return v;
}

/* Stricter than cJSON_Compare, which compares numbers with a tolerance:
 * same shape, same member order, same bytes, same double bits. */
static void assert_tree_identical(const cJSON *a, const cJSON *b)
{
	assert_int_equal(a->type & 0xff, b->type & 0xff);
	if (a->string || b->string) {
		assert_non_null(a->string);
		assert_non_null(b->string);
		assert_string_equal(a->string, b->string);
	}
	if (cJSON_IsNumber(a))
		assert_true(same_double(a->valuedouble, b->valuedouble));
	if (cJSON_IsString(a))
		assert_string_equal(a->valuestring, b->valuestring);
	const cJSON *ca = a->child, *cb = b->child;
	for (; ca && cb; ca = ca->next, cb = cb->next)
		assert_tree_identical(ca, cb);
	assert_null(ca);
	assert_null(cb);
}

static void test_print_random_trees(void **state)
{
	for (int i = 0; i < 2000; i++) {
		cJSON *tree = random_tree(5);
		char *text = jd_json_print(tree);
		assert_non_null(text);
		cJSON *back = cJSON_Parse(text);
		if (!back)
			fail_msg("tree %d printed as unparsable JSON: %s", i, text);
		if (!cJSON_Compare(tree, back, 1))
			fail_msg("tree %d changed in a round trip: %s", i, text);
		assert_tree_identical(tree, back);
		/* Printing what was read gives the same text. */
		char *again = jd_json_print(back);
		assert_non_null(again);
		assert_string_equal(again, text);
		free(again);
		cJSON_Delete(back);
		free(text);
		cJSON_Delete(tree);
	}
}

static void test_print_fixed(void **state)
{
	cJSON *v = cJSON_Parse("{ \"a\" : [ 1, 2.5, \"x\\ty\", true, false, null, {} , [] ],"
			       "\"b\\\"\": {\"c\": 0.30000000000000004, \"d\": -0}, \"\": 1e300 }");
	char *s;

	assert_non_null(v);
	s = jd_json_print(v);
	assert_string_equal(s, "{\"a\":[1,2.5,\"x\\ty\",true,false,null,{},[]],"
			       "\"b\\\"\":{\"c\":0.30000000000000004,\"d\":-0},\"\":1e+300}");
	free(s);
	cJSON_Delete(v);

	/* NaN and infinity cannot be JSON: they are written as null. */
	v = cJSON_CreateArray();
	cJSON_AddItemToArray(v, cJSON_CreateNumber(NAN));
	cJSON_AddItemToArray(v, cJSON_CreateNumber(-INFINITY));
	cJSON_AddItemToArray(v, cJSON_CreateRaw("{\"raw\":[1, 2]}"));
	s = jd_json_print(v);
	assert_string_equal(s, "[null,null,{\"raw\":[1, 2]}]");
	free(s);
	cJSON_Delete(v);

	s = jd_json_print(NULL);
	assert_string_equal(s, "null");
	free(s);

	/* Appending to a buffer that already holds text. */
	struct jd_buf b;
	jd_buf_init(&b, 0);
	jd_buf_adds(&b, "x=");
	v = cJSON_CreateString("\xe2\x82\xac\"");
	jd_buf_json_value(&b, v);
	s = jd_buf_steal(&b, NULL);
	assert_string_equal(s, "x=\"\xe2\x82\xac\\\"\"");
	free(s);
	cJSON_Delete(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf_basics),    cmocka_unit_test(test_str_escapes),
		cmocka_unit_test(test_str_all_bytes), cmocka_unit_test(test_num_exact),
		cmocka_unit_test(test_num_random),    cmocka_unit_test(test_print_random_trees),
		cmocka_unit_test(test_print_fixed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
