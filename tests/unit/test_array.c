/*
 * test_array.c - unit tests for workers/array.c (base64, typed numeric
 * arrays) and workers/error.c.
 *
 * Single-threaded cmocka tests; each checks exact values so that a wrong
 * answer fails.
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
#include <time.h>

#include <cmocka.h>

#include "workers/array.h"

/* ---- helpers ---- */

static cJSON *parse(const char *json)
{
	cJSON *v = cJSON_Parse(json);

	if (!v)
		fail_msg("test JSON does not parse: %s", json);
	return v;
}

/* {"dtype": dtype, "b64": base64 of bytes} */
static cJSON *b64_object(const char *dtype, const void *bytes, size_t n)
{
	char *text = malloc(jd_base64_encoded_len(n) + 1);
	cJSON *obj = cJSON_CreateObject();

	assert_non_null(text);
	jd_base64_encode(bytes, n, text);
	cJSON_AddStringToObject(obj, "dtype", dtype);
	cJSON_AddStringToObject(obj, "b64", text);
	free(text);
	return obj;
}

static char *print(const cJSON *v)
{
	char *s = cJSON_PrintUnformatted(v);

	assert_non_null(s);
	return s;
}

static void assert_printed(const cJSON *v, const char *want)
{
	char *s = print(v);

	assert_string_equal(s, want);
	free(s);
}

/* Check and decode must both reject `json` (as `dtype`, explicit) naming
 * `field`, with a message containing `words`. */
static void expect_invalid(const char *json, enum jd_dtype dtype, const char *field,
			   const char *words)
{
	cJSON *v = parse(json);
	struct jd_error err;
	struct jd_array a;
	size_t n = 12345;

	memset(&err, 0, sizeof(err));
	assert_int_equal(jd_array_check(v, &dtype, "params.values", &n, &err), -EINVAL);
	assert_int_equal(n, 12345); /* untouched on error */
	assert_string_equal(err.type, "invalid_params");
	assert_string_equal(err.field, field);
	if (!strstr(err.message, words))
		fail_msg("check message \"%s\" lacks \"%s\"", err.message, words);

	memset(&err, 0, sizeof(err));
	assert_int_equal(jd_array_decode(v, dtype, 1, "params.values", &a, &err), -EINVAL);
	assert_null(a.data);
	assert_string_equal(err.type, "invalid_params");
	assert_string_equal(err.field, field);
	if (!strstr(err.message, words))
		fail_msg("decode message \"%s\" lacks \"%s\"", err.message, words);
	cJSON_Delete(v);
}

static void decode_ok(const cJSON *v, enum jd_dtype dtype, int explicit_dtype, struct jd_array *a)
{
	struct jd_error err;

	memset(&err, 0, sizeof(err));
	if (jd_array_decode(v, dtype, explicit_dtype, "params.values", a, &err) != 0)
		fail_msg("decode failed: %s: %s", err.field, err.message);
	assert_non_null(a->data);
	assert_int_equal((uintptr_t)a->data % 64, 0);
}

/* ---- error.c ---- */

static void test_error_set(void **state)
{
	struct jd_error err;
	char longer[9000];

	assert_int_equal(jd_error_set(NULL, "a", "b", "c"), -EINVAL);

	assert_int_equal(jd_error_set(&err, "invalid_params", "params.x", "bad %d/%s", 42, "y"),
			 -EINVAL);
	assert_string_equal(err.type, "invalid_params");
	assert_string_equal(err.field, "params.x");
	assert_string_equal(err.message, "bad 42/y");

	assert_int_equal(jd_error_set(&err, NULL, NULL, NULL), -EINVAL);
	assert_string_equal(err.type, "");
	assert_string_equal(err.field, "");
	assert_string_equal(err.message, "");

	/* Long text is truncated, never overflows. */
	memset(longer, 'x', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	jd_error_set(&err, longer, longer, "%s", longer);
	assert_int_equal(strlen(err.type), sizeof(err.type) - 1);
	assert_int_equal(strlen(err.field), sizeof(err.field) - 1);
	assert_int_equal(strlen(err.message), sizeof(err.message) - 1);
}

/* ---- base64 ---- */

static void test_base64_rfc4648_vectors(void **state)
{
	/* RFC 4648 §10 */
	static const struct {
		const char *plain, *enc;
	} v[] = {
		{ "", "" },
		{ "f", "Zg==" },
		{ "fo", "Zm8=" },
		{ "foo", "Zm9v" },
		{ "foob", "Zm9vYg==" },
		{ "fooba", "Zm9vYmE=" },
		{ "foobar", "Zm9vYmFy" },
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		size_t n = strlen(v[i].plain);
		char enc[16], dec[16];

		assert_int_equal(jd_base64_encoded_len(n), strlen(v[i].enc));
		memset(enc, '?', sizeof(enc));
		jd_base64_encode(v[i].plain, n, enc);
		assert_string_equal(enc, v[i].enc);

		memset(dec, 0, sizeof(dec));
		assert_int_equal(jd_base64_decode(v[i].enc, strlen(v[i].enc), dec), (long)n);
		assert_memory_equal(dec, v[i].plain, n);
	}
}

static void test_base64_round_trip(void **state)
{
	uint8_t src[100], dec[100 + 3];
	char enc[200];
	unsigned seed = 12345;

	for (size_t n = 0; n <= 100; n++) {
		for (size_t i = 0; i < n; i++) {
			seed = seed * 1103515245u + 12345u;
			src[i] = (uint8_t)(seed >> 16);
		}
		jd_base64_encode(src, n, enc);
		assert_int_equal(strlen(enc), jd_base64_encoded_len(n));
		assert_int_equal(strlen(enc) % 4, 0);
		assert_int_equal(strspn(enc, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
					     "0123456789+/="),
				 strlen(enc));
		assert_int_equal(jd_base64_decode(enc, strlen(enc), dec), (long)n);
		assert_memory_equal(dec, src, n);
	}
}

/* Every byte value, in each of the three positions of a quad. */
static void test_base64_all_bytes(void **state)
{
	uint8_t all[258], back[258];
	char enc[400];

	for (size_t shift = 0; shift < 3; shift++) {
		memset(all, 0, sizeof(all));
		for (size_t i = 0; i < 256; i++)
			all[shift + i] = (uint8_t)(255 - i);
		jd_base64_encode(all, 256 + shift, enc);
		assert_int_equal(jd_base64_decode(enc, strlen(enc), back), (long)(256 + shift));
		assert_memory_equal(back, all, 256 + shift);
	}
}

static void test_base64_invalid(void **state)
{
	static const char *const bad[] = {
		"Z",           "Zg",   "Zg=",        "Zm9vY", /* length not a multiple of 4 */
		"Zm9v!A==",    "Zm 9", "Zm9v\nZg==", "Zm-_",  /* outside the alphabet */
		"Zg==Zg==",    "=Zg=", "Z===",       "====",  /* misplaced padding */
		"Zg=a",        "Zm=v",                        /* padding then data */
		"Zh==",        "Zm9=",                        /* non-canonical bits */
		"Zm9v\x80g==",
	};
	uint8_t dst[16];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		long rc = jd_base64_decode(bad[i], strlen(bad[i]), dst);

		if (rc != -EINVAL)
			fail_msg("\"%s\" decoded to %ld instead of -EINVAL", bad[i], rc);
	}
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* 4 MiB must decode in a few ms; the bound is loose (sanitizers, busy
 * machines) but catches anything not table-driven and linear. */
static void test_base64_speed(void **state)
{
	size_t n = 4u << 20;
	uint8_t *src = malloc(n), *dst = malloc(n);
	char *enc = malloc(jd_base64_encoded_len(n) + 1);
	double t0, t1;

	assert_non_null(src);
	assert_non_null(dst);
	assert_non_null(enc);
	for (size_t i = 0; i < n; i++)
		src[i] = (uint8_t)(i * 131 + (i >> 9));
	jd_base64_encode(src, n, enc);
	t0 = now_ms();
	assert_int_equal(jd_base64_decode(enc, strlen(enc), dst), (long)n);
	t1 = now_ms();
	assert_memory_equal(dst, src, n);
	print_message("decoded 4 MiB in %.2f ms\n", t1 - t0);
	assert_true(t1 - t0 < 250.0);
	free(src);
	free(dst);
	free(enc);
}

/* ---- dtypes ---- */

static void test_dtype_names(void **state)
{
	static const struct {
		const char *name;
		enum jd_dtype t;
		size_t size;
	} v[] = {
		{ "int32", JD_INT32, 4 },
		{ "int64", JD_INT64, 8 },
		{ "float32", JD_FLOAT32, 4 },
		{ "float64", JD_FLOAT64, 8 },
	};
	enum jd_dtype t;

	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(jd_dtype_from_name(v[i].name, &t), 0);
		assert_int_equal(t, v[i].t);
		assert_string_equal(jd_dtype_name(v[i].t), v[i].name);
		assert_int_equal(jd_dtype_size(v[i].t), v[i].size);
	}
	assert_int_equal(jd_dtype_from_name("float16", &t), -EINVAL);
	assert_int_equal(jd_dtype_from_name("Float32", &t), -EINVAL);
	assert_int_equal(jd_dtype_from_name("", &t), -EINVAL);
	assert_int_equal(jd_dtype_from_name(NULL, &t), -EINVAL);
}

static void test_alloc(void **state)
{
	struct jd_array a;

	assert_int_equal(jd_array_alloc(&a, JD_FLOAT64, 1000, 1), 0);
	assert_non_null(a.data);
	assert_int_equal((uintptr_t)a.data % 64, 0);
	assert_int_equal(a.n, 1000);
	assert_int_equal(a.b64, 1);
	assert_int_equal(a.dtype, JD_FLOAT64);
	for (size_t i = 0; i < 1000; i++)
		assert_true(((double *)a.data)[i] == 0.0);
	jd_array_cleanup(&a);
	assert_null(a.data);
	jd_array_cleanup(&a); /* twice is harmless */
	jd_array_cleanup(NULL);

	assert_int_equal(jd_array_alloc(&a, JD_INT32, 0, 0), 0);
	assert_non_null(a.data);
	assert_int_equal(a.n, 0);
	jd_array_cleanup(&a);

	assert_int_equal(jd_array_alloc(&a, JD_INT64, SIZE_MAX / 4, 0), -ENOMEM);
	assert_null(a.data);
}

/* ---- JSON form ---- */

static void test_json_every_dtype(void **state)
{
	cJSON *v = parse("[1, -2, 3, 0]");
	struct jd_array a;
	cJSON *out;
	size_t n;
	struct jd_error err;

	for (enum jd_dtype t = JD_INT32; t <= JD_FLOAT64; t++) {
		assert_int_equal(jd_array_check(v, &t, "params.values", &n, &err), 0);
		assert_int_equal(n, 4);
		decode_ok(v, t, 0, &a);
		assert_int_equal(a.dtype, t);
		assert_int_equal(a.b64, 0);
		assert_int_equal(a.n, 4);
		switch (t) {
		case JD_INT32:
			assert_int_equal(((int32_t *)a.data)[1], -2);
			assert_int_equal(((int32_t *)a.data)[2], 3);
			break;
		case JD_INT64:
			assert_int_equal(((int64_t *)a.data)[1], -2);
			assert_int_equal(((int64_t *)a.data)[2], 3);
			break;
		case JD_FLOAT32:
			assert_true(((float *)a.data)[1] == -2.0f);
			assert_true(((float *)a.data)[2] == 3.0f);
			break;
		case JD_FLOAT64:
			assert_true(((double *)a.data)[1] == -2.0);
			assert_true(((double *)a.data)[2] == 3.0);
			break;
		}
		out = jd_array_encode(&a);
		assert_true(cJSON_IsArray(out));
		assert_printed(out, "[1,-2,3,0]");
		cJSON_Delete(out);
		jd_array_cleanup(&a);
	}
	cJSON_Delete(v);

	/* Extreme but valid values for each type. */
	v = parse("[-2147483648, 2147483647, -0.0]");
	decode_ok(v, JD_INT32, 1, &a);
	assert_int_equal(((int32_t *)a.data)[0], INT32_MIN);
	assert_int_equal(((int32_t *)a.data)[1], INT32_MAX);
	assert_int_equal(((int32_t *)a.data)[2], 0);
	jd_array_cleanup(&a);
	cJSON_Delete(v);

	v = parse("[9007199254740991, -9007199254740991, 4503599627370495]");
	decode_ok(v, JD_INT64, 1, &a);
	assert_true(((int64_t *)a.data)[0] == INT64_C(9007199254740991));
	assert_true(((int64_t *)a.data)[1] == -INT64_C(9007199254740991));
	out = jd_array_encode(&a);
	assert_true(cJSON_GetArrayItem(out, 0)->valuedouble == 9007199254740991.0);
	assert_true(cJSON_GetArrayItem(out, 1)->valuedouble == -9007199254740991.0);
	/* cJSON 1.7.15 prints some doubles of 16-17 digits with 15 (its
	 * round-trip test is approximate), so only integers below 2^52 are
	 * compared as text. */
	cJSON_DeleteItemFromArray(out, 0);
	cJSON_DeleteItemFromArray(out, 0);
	assert_printed(out, "[4503599627370495]");
	cJSON_Delete(out);
	jd_array_cleanup(&a);
	cJSON_Delete(v);

	v = parse("[3.4028234663852886e38, 1e-45]");
	decode_ok(v, JD_FLOAT32, 1, &a);
	assert_true(((float *)a.data)[0] == FLT_MAX);
	assert_true(((float *)a.data)[1] > 0.0f); /* the smallest subnormal */
	jd_array_cleanup(&a);
	cJSON_Delete(v);

	/* dtype NULL in check: any finite number. */
	v = parse("[0.5, 1e300, -7]");
	assert_int_equal(jd_array_check(v, NULL, "params.values", &n, &err), 0);
	assert_int_equal(n, 3);
	cJSON_Delete(v);

	v = parse("[]");
	decode_ok(v, JD_FLOAT64, 0, &a);
	assert_int_equal(a.n, 0);
	out = jd_array_encode(&a);
	assert_printed(out, "[]");
	cJSON_Delete(out);
	jd_array_cleanup(&a);
	cJSON_Delete(v);
}

/* float32 results in JSON form read back as the same float32, printed as
 * the shortest decimal that does so. */
static void test_json_float32_round_trip(void **state)
{
	struct jd_array a, back;
	unsigned seed = 99;
	cJSON *out, *reparsed;
	char *text;

	assert_int_equal(jd_array_alloc(&a, JD_FLOAT32, 1000, 0), 0);
	float *f = a.data;

	f[0] = 0.1f;
	f[1] = 0.1f * 0.1f;
	f[2] = 1.5f;
	f[3] = FLT_MAX;
	f[4] = FLT_MIN;
	f[5] = -FLT_TRUE_MIN;
	for (size_t i = 6; i < a.n; i++) {
		uint32_t bits;

		do {
			seed = seed * 1103515245u + 12345u;
			bits = seed ^ (seed << 13);
			memcpy(&f[i], &bits, 4);
		} while (!isfinite(f[i]));
	}
	out = jd_array_encode(&a);
	assert_non_null(out);
	text = print(out);
	assert_memory_equal(text, "[0.1,0.010000001,1.5,", 21);
	reparsed = parse(text);
	decode_ok(reparsed, JD_FLOAT32, 1, &back);
	assert_int_equal(back.n, a.n);
	assert_memory_equal(back.data, a.data, a.n * 4);
	jd_array_cleanup(&back);
	cJSON_Delete(reparsed);
	free(text);
	cJSON_Delete(out);
	jd_array_cleanup(&a);
}

/* ---- b64 form ---- */

static void test_b64_every_dtype(void **state)
{
	static const int32_t i32[] = { 1, -1, INT32_MAX, INT32_MIN };
	static const int64_t i64[] = { 1, -1, INT64_MAX, INT64_MIN };
	static const float f32[] = { 1.5f, -2.0f, 0.1f, FLT_MAX };
	static const double f64[] = { 1.5, -0.25, 1e300, -DBL_MIN };
	static const struct {
		const char *name;
		enum jd_dtype t;
		const void *data;
		size_t bytes;
	} v[] = {
		{ "int32", JD_INT32, i32, sizeof(i32) },
		{ "int64", JD_INT64, i64, sizeof(i64) },
		{ "float32", JD_FLOAT32, f32, sizeof(f32) },
		{ "float64", JD_FLOAT64, f64, sizeof(f64) },
	};
	struct jd_error err;

	for (size_t i = 0; i < 4; i++) {
		cJSON *obj = b64_object(v[i].name, v[i].data, v[i].bytes), *out;
		struct jd_array a;
		enum jd_dtype other = v[i].t == JD_FLOAT64 ? JD_INT32 : JD_FLOAT64;
		size_t n;

		/* check ignores the dtype argument for the b64 form */
		assert_int_equal(jd_array_check(obj, &other, "params.values", &n, &err), 0);
		assert_int_equal(n, 4);
		/* not explicit: the object's dtype wins */
		decode_ok(obj, other, 0, &a);
		assert_int_equal(a.dtype, v[i].t);
		assert_int_equal(a.b64, 1);
		assert_int_equal(a.n, 4);
		assert_memory_equal(a.data, v[i].data, v[i].bytes);
		out = jd_array_encode(&a);
		assert_true(cJSON_IsObject(out));
		assert_string_equal(cJSON_GetObjectItem(out, "dtype")->valuestring, v[i].name);
		assert_string_equal(cJSON_GetObjectItem(out, "b64")->valuestring,
				    cJSON_GetObjectItem(obj, "b64")->valuestring);
		assert_int_equal(cJSON_GetArraySize(out), 2);
		cJSON_Delete(out);
		jd_array_cleanup(&a);
		cJSON_Delete(obj);
	}
}

static void test_b64_known_bytes(void **state)
{
	cJSON *v = parse("{\"dtype\": \"int32\", \"b64\": \"AQAAAP////8=\"}");
	cJSON *w = parse("{\"b64\": \"AAAAAAAA+D8AAAAAAADQvw==\", \"dtype\": \"float64\"}");
	cJSON *out;
	struct jd_array a;

	decode_ok(v, JD_INT32, 1, &a);
	assert_int_equal(a.n, 2);
	assert_int_equal(((int32_t *)a.data)[0], 1);
	assert_int_equal(((int32_t *)a.data)[1], -1);
	out = jd_array_encode(&a);
	assert_printed(out, "{\"dtype\":\"int32\",\"b64\":\"AQAAAP////8=\"}");
	cJSON_Delete(out);
	/* the same data asked for in JSON form */
	a.b64 = 0;
	out = jd_array_encode(&a);
	assert_printed(out, "[1,-1]");
	cJSON_Delete(out);
	jd_array_cleanup(&a);

	decode_ok(w, JD_FLOAT64, 1, &a);
	assert_int_equal(a.n, 2);
	assert_true(((double *)a.data)[0] == 1.5);
	assert_true(((double *)a.data)[1] == -0.25);
	jd_array_cleanup(&a);

	cJSON_Delete(v);
	cJSON_Delete(w);

	v = parse("{\"dtype\": \"float32\", \"b64\": \"\"}");
	decode_ok(v, JD_FLOAT32, 1, &a);
	assert_int_equal(a.n, 0);
	jd_array_cleanup(&a);
	cJSON_Delete(v);
}

/* ---- errors ---- */

static void test_errors_json_elements(void **state)
{
	expect_invalid("\"abc\"", JD_FLOAT64, "params.values", "expected an array of numbers");
	expect_invalid("12", JD_FLOAT64, "params.values", "got a number");
	expect_invalid("null", JD_FLOAT64, "params.values", "got null");
	expect_invalid("[1, 2, \"3\"]", JD_FLOAT64, "params.values[2]",
		       "expected a number, got a string");
	expect_invalid("[true]", JD_INT32, "params.values[0]", "got a boolean");
	expect_invalid("[1, null]", JD_FLOAT32, "params.values[1]", "got null");
	expect_invalid("[[1]]", JD_INT64, "params.values[0]", "got an array");
	expect_invalid("[1, 2, 3, {}]", JD_FLOAT64, "params.values[3]", "got an object");

	/* non-integral values for int dtypes */
	expect_invalid("[1, 3.5]", JD_INT32, "params.values[1]", "3.5 is not an integer");
	expect_invalid("[0.1]", JD_INT64, "params.values[0]",
		       "0.1 is not an integer (dtype int64)");

	/* range */
	expect_invalid("[2147483648]", JD_INT32, "params.values[0]",
		       "2147483648 is out of range for int32");
	expect_invalid("[0, -2147483649]", JD_INT32, "params.values[1]", "out of range for int32");
	expect_invalid("[9007199254740992]", JD_INT64, "params.values[0]", "b64");
	expect_invalid("[-9007199254740992]", JD_INT64, "params.values[0]", "2^53");
	expect_invalid("[1e39]", JD_FLOAT32, "params.values[0]", "out of range for float32");
	expect_invalid("[-3.5e38]", JD_FLOAT32, "params.values[0]", "out of range for float32");

	/* infinity (cJSON parses 1e999 as inf) for every dtype */
	for (enum jd_dtype t = JD_INT32; t <= JD_FLOAT64; t++)
		expect_invalid("[1, 1e999]", t, "params.values[1]", "not a finite number");
}

static void test_errors_nan(void **state)
{
	cJSON *v = cJSON_CreateArray();
	struct jd_error err;
	struct jd_array a;

	cJSON_AddItemToArray(v, cJSON_CreateNumber(1));
	cJSON_AddItemToArray(v, cJSON_CreateNumber(NAN));
	assert_int_equal(jd_array_check(v, NULL, "params.x", NULL, &err), -EINVAL);
	assert_string_equal(err.field, "params.x[1]");
	assert_non_null(strstr(err.message, "not a finite number"));
	assert_int_equal(jd_array_decode(v, JD_FLOAT64, 0, "params.x", &a, &err), -EINVAL);
	assert_string_equal(err.field, "params.x[1]");
	cJSON_Delete(v);
}

static void test_errors_b64_form(void **state)
{
	/* 3 bytes: not whole float32 elements */
	expect_invalid("{\"dtype\": \"float32\", \"b64\": \"AAAA\"}", JD_FLOAT32,
		       "params.values.b64", "3 bytes is not a whole number of float32 elements");
	/* 4 bytes: not whole int64 elements */
	expect_invalid("{\"dtype\": \"int64\", \"b64\": \"AQAAAA==\"}", JD_INT64,
		       "params.values.b64", "not a whole number of int64");
	expect_invalid("{\"dtype\": \"int32\", \"b64\": \"AQAAAP////8\"}", JD_INT32,
		       "params.values.b64", "not a multiple of 4");
	expect_invalid("{\"dtype\": \"int32\", \"b64\": \"AQAA*P////8=\"}", JD_INT32,
		       "params.values.b64", "invalid base64 character '*' at 4");
	expect_invalid("{\"dtype\": \"int32\", \"b64\": \"AQAA\\nAP///8=\"}", JD_INT32,
		       "params.values.b64", "invalid base64 byte 0x0a at 4");
	expect_invalid("{\"dtype\": \"int32\", \"b64\": \"AQ==AP////8=\"}", JD_INT32,
		       "params.values.b64", "misplaced padding at character 2");
	expect_invalid("{\"dtype\": \"int32\", \"b64\": \"AQAAAP////9=\"}", JD_INT32,
		       "params.values.b64", "non-canonical");
	expect_invalid("{\"dtype\": \"float16\", \"b64\": \"\"}", JD_FLOAT32, "params.values.dtype",
		       "unknown dtype \"float16\"");
	expect_invalid("{\"dtype\": 4, \"b64\": \"\"}", JD_FLOAT32, "params.values.dtype",
		       "expected a string, got a number");
	expect_invalid("{\"b64\": \"\"}", JD_FLOAT32, "params.values.dtype", "missing");
	expect_invalid("{\"dtype\": \"int32\"}", JD_INT32, "params.values.b64", "missing");
	expect_invalid("{\"dtype\": \"int32\", \"b64\": [1]}", JD_INT32, "params.values.b64",
		       "expected a string, got an array");
	expect_invalid("{\"dtype\": \"int32\", \"b64\": \"\", \"shape\": [2]}", JD_INT32,
		       "params.values.shape", "unknown key");
	expect_invalid("{\"dtype\": \"int32\", \"b64\": \"\", \"dtype\": \"int32\"}", JD_INT32,
		       "params.values.dtype", "duplicate key");
	expect_invalid("{}", JD_INT32, "params.values.dtype", "missing");
}

/* An explicit dtype must match the object's; a non-explicit one yields. */
static void test_errors_dtype_mismatch(void **state)
{
	cJSON *v = parse("{\"dtype\": \"float32\", \"b64\": \"AADAPw==\"}");
	struct jd_error err;
	struct jd_array a;

	assert_int_equal(jd_array_decode(v, JD_INT32, 1, "params.values", &a, &err), -EINVAL);
	assert_null(a.data);
	assert_string_equal(err.field, "params.values.dtype");
	assert_non_null(strstr(err.message, "float32 does not match the dtype int32"));

	decode_ok(v, JD_INT32, 0, &a);
	assert_int_equal(a.dtype, JD_FLOAT32);
	assert_true(((float *)a.data)[0] == 1.5f);
	jd_array_cleanup(&a);
	cJSON_Delete(v);
}

/* More than JD_ARRAY_MAX_ELEMS elements: refused from the length alone,
 * before the text is scanned or memory allocated. */
static void test_errors_too_many_elements(void **state)
{
	size_t bytes = (JD_ARRAY_MAX_ELEMS + 1) * 4, len = jd_base64_encoded_len(bytes);
	char *text = malloc(len + 1);
	cJSON *obj = cJSON_CreateObject(), *s;
	struct jd_error err;
	struct jd_array a;
	enum jd_dtype t = JD_INT32;
	size_t n;

	assert_non_null(text);
	memset(text, 'A', len);
	text[len] = '\0';
	/* (2^26+1)*4 bytes leave 2 bytes in the last quad: "AAA=" */
	text[len - 1] = '=';
	cJSON_AddStringToObject(obj, "dtype", "int32");
	s = cJSON_CreateStringReference(text);
	cJSON_AddItemToObject(obj, "b64", s);

	assert_int_equal(jd_array_check(obj, &t, "params.values", &n, &err), -EINVAL);
	assert_string_equal(err.field, "params.values.b64");
	assert_non_null(strstr(err.message, "more than the limit"));
	assert_int_equal(jd_array_decode(obj, t, 1, "params.values", &a, &err), -EINVAL);
	assert_string_equal(err.field, "params.values.b64");

	/* Exactly the limit is fine: 2^28 bytes end in a quad of one byte. */
	len -= 4;
	text[len] = '\0';
	text[len - 2] = text[len - 1] = '=';
	assert_int_equal(jd_array_check(obj, &t, "params.values", &n, &err), 0);
	assert_int_equal(n, JD_ARRAY_MAX_ELEMS);

	cJSON_Delete(obj);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_error_set),
		cmocka_unit_test(test_base64_rfc4648_vectors),
		cmocka_unit_test(test_base64_round_trip),
		cmocka_unit_test(test_base64_all_bytes),
		cmocka_unit_test(test_base64_invalid),
		cmocka_unit_test(test_base64_speed),
		cmocka_unit_test(test_dtype_names),
		cmocka_unit_test(test_alloc),
		cmocka_unit_test(test_json_every_dtype),
		cmocka_unit_test(test_json_float32_round_trip),
		cmocka_unit_test(test_b64_every_dtype),
		cmocka_unit_test(test_b64_known_bytes),
		cmocka_unit_test(test_errors_json_elements),
		cmocka_unit_test(test_errors_nan),
		cmocka_unit_test(test_errors_b64_form),
		cmocka_unit_test(test_errors_dtype_mismatch),
		cmocka_unit_test(test_errors_too_many_elements),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
