/*
 * fuzz_array.c - typed numeric arrays (workers/array.c) and base64.
 *
 * The bytes are two things at once:
 *   - base64 text for jd_base64_decode(). Only the canonical encoding is
 *     accepted, so whatever decodes must encode back to the same text; and
 *     the bytes themselves must survive encode -> decode.
 *   - a JSON value. As an array parameter (a JSON array of numbers or
 *     {"dtype", "b64"}) it goes through jd_array_check() and
 *     jd_array_decode() for every dtype, given and not: the cheap check at
 *     submission and the decoder in the executor must agree, and a decoded
 *     array must come back bit for bit from jd_array_encode(), printed and
 *     parsed again (the b64 text itself unchanged). Then it runs in the
 *     array tasks (square, sum as {"values": ...}; an object also as the
 *     params of square, sum, saxpy and sgemm), whose run must agree with
 *     their check and answer valid JSON.
 */
#include <errno.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "daemon/buf.h"
#include "fuzz/fuzz.h"
#include "workers/array.h"
#include "workers/tasks.h"

static void base64(const uint8_t *data, size_t size)
{
	uint8_t *bytes = malloc(size / 4 * 3 + 1);
	FUZZ_CHECK(bytes != NULL);
	long n = jd_base64_decode((const char *)data, size, bytes);
	if (n >= 0) {
		FUZZ_CHECK((size_t)n <= size / 4 * 3 && (size_t)n + 2 >= size / 4 * 3);
		char *text = malloc(jd_base64_encoded_len((size_t)n) + 1);
		FUZZ_CHECK(text != NULL);
		jd_base64_encode(bytes, (size_t)n, text);
		FUZZ_CHECK(strlen(text) == size && memcmp(text, data, size) == 0);
		free(text);
	} else {
		FUZZ_CHECK(n == -EINVAL);
	}
	free(bytes);

	char *text = malloc(jd_base64_encoded_len(size) + 1);
	uint8_t *back = malloc(size + 3);
	FUZZ_CHECK(text != NULL && back != NULL);
	jd_base64_encode(data, size, text);
	FUZZ_CHECK(strlen(text) == jd_base64_encoded_len(size));
	FUZZ_CHECK(jd_base64_decode(text, strlen(text), back) == (long)size);
	FUZZ_CHECK(memcmp(back, data, size) == 0);
	free(back);
	free(text);
}

/* `a`, decoded from `v`, through the encoder and the printer and back. */
static void round_trip(const struct jd_array *a, const cJSON *v)
{
	struct jd_error err = { 0 };
	/* Decoded from JSON, it fits JSON; b64 carries anything. */
	FUZZ_CHECK(jd_array_json_safe(a, "values", &err) == 0);
	cJSON *enc = jd_array_encode(a);
	FUZZ_CHECK(enc != NULL);
	char *text = jd_json_print(enc);
	FUZZ_CHECK(text != NULL);
	cJSON *back = cJSON_Parse(text);
	FUZZ_CHECK(back != NULL);
	if (a->b64) {
		const cJSON *t0 = cJSON_GetObjectItemCaseSensitive(v, "b64");
		const cJSON *t1 = cJSON_GetObjectItemCaseSensitive(back, "b64");
		FUZZ_CHECK(cJSON_IsString(t0) && cJSON_IsString(t1));
		FUZZ_CHECK(strcmp(t0->valuestring, t1->valuestring) == 0);
	}
	struct jd_array b;
	int rc = jd_array_decode(back, a->dtype, 1, "values", &b, &err);
	if (rc != 0)
		fprintf(stderr, "%s does not decode again: %s: %s\n", text, err.field, err.message);
	FUZZ_CHECK(rc == 0);
	FUZZ_CHECK(b.n == a->n && b.dtype == a->dtype && b.b64 == a->b64);
	if (memcmp(b.data, a->data, a->n * jd_dtype_size(a->dtype)) != 0)
		fprintf(stderr, "%s comes back changed\n", text);
	FUZZ_CHECK(memcmp(b.data, a->data, a->n * jd_dtype_size(a->dtype)) == 0);
	jd_array_cleanup(&b);
	cJSON_Delete(back);
	free(text);
	cJSON_Delete(enc);
}

static void array_param(const cJSON *v)
{
	for (int d = -1; d < 4; d++) {
		enum jd_dtype dt = d < 0 ? JD_FLOAT64 : (enum jd_dtype)d;
		int expl = d >= 0, b64 = cJSON_IsObject(v);
		struct jd_error e1 = { 0 }, e2 = { 0 };
		struct jd_array a;
		size_t n = 0;
		int c = jd_array_check(v, &dt, "params.values", &n, &e1);
		int r = jd_array_decode(v, dt, expl, "params.values", &a, &e2);
		FUZZ_CHECK(c == 0 || c == -EINVAL);
		if (c < 0)
			FUZZ_CHECK(r < 0);
		/* A b64 array of another dtype than the one given passes the
		 * check (tasks compare dtypes themselves) and fails decoding. */
		if (!(b64 && expl)) {
			FUZZ_CHECK(c < 0 || r == 0 || r == -ENOMEM);
			FUZZ_CHECK(c == 0 || strcmp(e1.field, e2.field) == 0);
		}
		if (r < 0) {
			FUZZ_CHECK(r == -EINVAL || r == -ENOMEM);
			FUZZ_CHECK(a.data == NULL && e2.type[0] != '\0');
			continue;
		}
		FUZZ_CHECK(c == 0 && n == a.n && a.b64 == b64);
		FUZZ_CHECK(b64 || a.dtype == dt);
		round_trip(&a, v);
		jd_array_cleanup(&a);
	}
}

/* A task's run repeats its check: both agree, and a result is JSON. */
static void run_task(const char *name, const cJSON *params)
{
	const struct jd_task *t = jd_task_find(name);
	FUZZ_CHECK(t != NULL && t->check != NULL && t->run != NULL);
	struct jd_error err = { 0 };
	int checked = t->check(params, &err);
	struct jd_task_ctx ctx = { 0 };
	cJSON *result = NULL;
	int rc = t->run(&ctx, params, &result);
	if (checked < 0) {
		FUZZ_CHECK(rc == checked && result == NULL);
		FUZZ_CHECK(strcmp(err.field, ctx.error.field) == 0);
		return;
	}
	if (rc == 0) {
		FUZZ_CHECK(result != NULL);
		char *text = jd_json_print(result);
		FUZZ_CHECK(text != NULL);
		cJSON *back = cJSON_Parse(text);
		FUZZ_CHECK(back != NULL);
		cJSON_Delete(back);
		free(text);
	} else {
		FUZZ_CHECK(rc == -ERANGE || rc == -ENOMEM || rc == -EINVAL);
		FUZZ_CHECK(ctx.error.type[0] != '\0');
	}
	cJSON_Delete(result);
}

static void tasks(const cJSON *v)
{
	static const char *const dtypes[] = { NULL, "int32", "int64", "float32", "float64" };
	for (size_t i = 0; i < sizeof(dtypes) / sizeof(dtypes[0]); i++) {
		cJSON *params = cJSON_CreateObject();
		FUZZ_CHECK(params != NULL);
		FUZZ_CHECK(cJSON_AddItemReferenceToObject(params, "values", (cJSON *)v));
		if (dtypes[i])
			FUZZ_CHECK(cJSON_AddStringToObject(params, "dtype", dtypes[i]) != NULL);
		run_task("square", params);
		run_task("sum", params);
		cJSON_Delete(params);
	}
	if (cJSON_IsObject(v)) {
		run_task("square", v);
		run_task("sum", v);
		run_task("saxpy", v);
		run_task("sgemm", v);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	base64(data, size);
	char *text = fuzz_strndup(data, size);
	cJSON *v = cJSON_Parse(text);
	if (v) {
		array_param(v);
		tasks(v);
		cJSON_Delete(v);
	}
	free(text);
	return 0;
}
