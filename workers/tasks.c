/*
 * tasks.c - the built-in tasks: their table, parameter checks and bodies.
 *
 * The table is read-only. Each task's check runs on the loop thread at
 * submission and must stay cheap (no large allocation, one pass over the
 * input); each run function runs on an executor thread (or in a worker
 * process), touches no daemon state, and polls jd_task_cancelled() so that
 * a cancel or timeout stops it within one row or segment.
 *
 * run functions repeat the check first: params may reach a worker process
 * over a frame, and a second cheap pass keeps every body simple and safe.
 *
 * Numeric arrays in results come back in the form their input used. JSON
 * cannot carry NaN, infinity or integers beyond 2^53 exactly, so a result
 * that would need them in JSON form fails with "task_failed" (-ERANGE) and
 * a message pointing at the b64 form, instead of being silently altered.
 */
#include <assert.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "opencl/task.h"
#include "workers/array.h"
#include "workers/plugins.h"
#include "workers/exec.h"
#include "workers/tasks.h"

/* 2^53-1 (JavaScript's MAX_SAFE_INTEGER): beyond it a JSON number may not
 * hold the integer that was meant. */
#define JSON_INT_MAX     9007199254740991.0
#define SGEMM_DIM_MAX    8192
#define PRIMES_BELOW_MAX 2147483648.0 /* 2^31 */
#define SLEEP_MAX        86400.0

/* ---- shared parameter checks ---- */

static int invalid(struct jd_error *err, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fill `err` for the field params.<name>. */
static int invalid(struct jd_error *err, const char *name, const char *fmt, ...)
{
	char f[sizeof(err->field)], msg[sizeof(err->message)];
	va_list ap;

	snprintf(f, sizeof(f), "params.%s", name);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return jd_error_set(err, "invalid_params", f, "%s", msg);
}

/* Reject params that are not an object, keys the task does not take (a
 * typo must not be ignored), duplicate keys, and missing required ones. */
static int check_keys(const cJSON *params, const struct jd_param *spec, struct jd_error *err)
{
	unsigned seen = 0;
	const cJSON *it;

	if (!cJSON_IsObject(params))
		return jd_error_set(err, "invalid_params", "params", "expected an object, got %s",
				    jd_json_kind(params));
	cJSON_ArrayForEach(it, params)
	{
		unsigned i;

		for (i = 0; spec[i].name; i++)
			if (it->string && strcmp(it->string, spec[i].name) == 0)
				break;
		if (!spec[i].name)
			return invalid(err, it->string ? it->string : "", "unknown parameter");
		assert(i < 32); /* `seen` has a bit per parameter */
		if (seen & (1u << i))
			return invalid(err, it->string, "duplicate parameter");
		seen |= 1u << i;
	}
	for (unsigned i = 0; spec[i].name; i++)
		if (spec[i].required && !(seen & (1u << i)))
			return invalid(err, spec[i].name, "missing required parameter");
	return 0;
}

/* A finite number in lo..hi; `integer` also asks for a whole number. */
static int check_number(const cJSON *v, const char *name, int integer, double lo, double hi,
			struct jd_error *err)
{
	char f[sizeof(err->field)];

	snprintf(f, sizeof(f), "params.%s", name);
	if (!cJSON_IsNumber(v))
		return jd_error_set(err, "invalid_params", f, "expected %s, got %s",
				    integer ? "an integer" : "a number", jd_json_kind(v));
	if (!isfinite(v->valuedouble))
		return jd_error_set(err, "invalid_params", f, "expected a finite number");
	if (integer && v->valuedouble != floor(v->valuedouble))
		return jd_error_set(err, "invalid_params", f, "expected an integer, got %.15g",
				    v->valuedouble);
	if (v->valuedouble < lo || v->valuedouble > hi)
		return jd_error_set(err, "invalid_params", f,
				    "%.15g is out of range (%.17g..%.17g)", v->valuedouble, lo, hi);
	return 0;
}

/* The dtype of an encoded array object, when it names a valid one. */
static int b64_dtype(const cJSON *v, enum jd_dtype *dt)
{
	const cJSON *d;

	if (!cJSON_IsObject(v))
		return 0;
	d = cJSON_GetObjectItemCaseSensitive(v, "dtype");
	return cJSON_IsString(d) && jd_dtype_from_name(d->valuestring, dt) == 0;
}

/* The element type of a task's arrays: the "dtype" param when given; else
 * the dtype of the first encoded array among `arrays` (JSON arrays beside
 * it are converted to it); else float64. *explicit_out tells whether
 * encoded arrays must match it. */
static int resolve_dtype(const cJSON *params, const cJSON *const *arrays, size_t n_arrays,
			 enum jd_dtype *dt, int *explicit_out, struct jd_error *err)
{
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(params, "dtype");

	if (d) {
		if (!cJSON_IsString(d))
			return invalid(err, "dtype", "expected a string, got %s", jd_json_kind(d));
		if (jd_dtype_from_name(d->valuestring, dt) < 0)
			return jd_error_set(err, "invalid_params", "params.dtype",
					    "unknown dtype \"%.40s\" (expected int32, int64, "
					    "float32 or float64)",
					    d->valuestring);
		*explicit_out = 1;
		return 0;
	}
	for (size_t i = 0; i < n_arrays; i++) {
		if (b64_dtype(arrays[i], dt)) {
			*explicit_out = 1;
			return 0;
		}
	}
	*dt = JD_FLOAT64;
	*explicit_out = 0;
	return 0;
}

/* jd_array_check, plus: an encoded array's dtype must be `dt` when that is
 * explicit. */
static int check_array(const cJSON *v, const char *name, enum jd_dtype dt, int explicit_dtype,
		       size_t *n, struct jd_error *err)
{
	char f[sizeof(err->field)];
	enum jd_dtype own;
	int rc;

	snprintf(f, sizeof(f), "params.%s", name);
	rc = jd_array_check(v, &dt, f, n, err);
	if (rc < 0)
		return rc;
	if (explicit_dtype && b64_dtype(v, &own) && own != dt) {
		snprintf(f, sizeof(f), "params.%s.dtype", name);
		return jd_error_set(err, "invalid_params", f,
				    "%s does not match the dtype %s of this job",
				    jd_dtype_name(own), jd_dtype_name(dt));
	}
	return 0;
}

static int decode(struct jd_task_ctx *ctx, const cJSON *v, const char *name, enum jd_dtype dt,
		  int explicit_dtype, struct jd_array *out)
{
	char f[sizeof(ctx->error.field)];

	snprintf(f, sizeof(f), "params.%s", name);
	return jd_array_decode(v, dt, explicit_dtype, f, out, &ctx->error);
}

static int out_of_memory(struct jd_task_ctx *ctx)
{
	jd_error_set(&ctx->error, "task_failed", NULL, "out of memory");
	return -ENOMEM;
}

static int cancelled(struct jd_task_ctx *ctx)
{
	jd_error_set(&ctx->error, "cancelled", NULL, "stopped before finishing");
	return -ECANCELED;
}

/* {"<key>": encoded a}, checked with jd_array_json_safe. */
static int array_result(struct jd_task_ctx *ctx, const struct jd_array *a, const char *key,
			cJSON **result)
{
	cJSON *obj, *v;
	int rc;

	rc = jd_array_json_safe(a, key, &ctx->error);
	if (rc < 0)
		return rc;
	obj = cJSON_CreateObject();
	v = jd_array_encode(a);
	if (!obj || !v) {
		cJSON_Delete(obj);
		cJSON_Delete(v);
		return out_of_memory(ctx);
	}
	cJSON_AddItemToObject(obj, key, v);
	*result = obj;
	return 0;
}

static int number_result(struct jd_task_ctx *ctx, const char *key, double v, cJSON **result)
{
	cJSON *obj = cJSON_CreateObject();

	if (!obj || !cJSON_AddNumberToObject(obj, key, v)) {
		cJSON_Delete(obj);
		return out_of_memory(ctx);
	}
	*result = obj;
	return 0;
}

/* ---- echo ---- */

static const struct jd_param echo_params[] = {
	{ "value", "any", 1, "any JSON value; returned unchanged" },
	{ "fail", "string", 0,
	  "when given, the job fails with this message instead (to test error handling)" },
	{ NULL, NULL, 0, NULL },
};

static int echo_check(const cJSON *params, struct jd_error *err)
{
	int rc = check_keys(params, echo_params, err);
	if (rc < 0)
		return rc;
	const cJSON *fail = cJSON_GetObjectItemCaseSensitive(params, "fail");
	if (fail && !cJSON_IsString(fail))
		return jd_error_set(err, "invalid_params", "params.fail",
				    "expected a string, got %s", jd_json_kind(fail));
	return 0;
}

static int echo_run(struct jd_task_ctx *ctx, const cJSON *params, cJSON **result)
{
	cJSON *obj, *copy;
	int rc;

	rc = echo_check(params, &ctx->error);
	if (rc < 0)
		return rc;
	const cJSON *fail = cJSON_GetObjectItemCaseSensitive(params, "fail");
	if (fail) {
		jd_error_set(&ctx->error, "task_failed", NULL, "%s", fail->valuestring);
		return -EPROTO;
	}
	obj = cJSON_CreateObject();
	copy = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(params, "value"), 1);
	if (!obj || !copy) {
		cJSON_Delete(obj);
		cJSON_Delete(copy);
		return out_of_memory(ctx);
	}
	cJSON_AddItemToObject(obj, "value", copy);
	*result = obj;
	return 0;
}

/* ---- sleep ---- */

static const struct jd_param sleep_params[] = {
	{ "seconds", "number", 1, "how long to sleep, 0..86400 (fractions allowed)" },
	{ NULL, NULL, 0, NULL },
};

static int sleep_check(const cJSON *params, struct jd_error *err)
{
	int rc = check_keys(params, sleep_params, err);

	if (rc < 0)
		return rc;
	return check_number(cJSON_GetObjectItemCaseSensitive(params, "seconds"), "seconds", 0, 0,
			    SLEEP_MAX, err);
}

/* For an executor that provides no sleep: short naps that poll the stop
 * flag, on the monotonic clock so that a clock change cannot stretch them. */
static int poll_sleep(struct jd_task_ctx *ctx, double seconds)
{
	struct timespec now, end;

	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += (time_t)seconds;
	end.tv_nsec += (long)((seconds - floor(seconds)) * 1e9);
	if (end.tv_nsec >= 1000000000L) {
		end.tv_sec++;
		end.tv_nsec -= 1000000000L;
	}
	for (;;) {
		struct timespec nap = { 0, 10 * 1000 * 1000 };
		long long left;

		if (jd_task_cancelled(ctx))
			return -ECANCELED;
		clock_gettime(CLOCK_MONOTONIC, &now);
		left = (long long)(end.tv_sec - now.tv_sec) * 1000000000LL +
		       (end.tv_nsec - now.tv_nsec);
		if (left <= 0)
			return 0;
		if (left < nap.tv_nsec)
			nap.tv_nsec = (long)left;
		nanosleep(&nap, NULL);
	}
}

static int sleep_run(struct jd_task_ctx *ctx, const cJSON *params, cJSON **result)
{
	double seconds;
	int rc;

	rc = sleep_check(params, &ctx->error);
	if (rc < 0)
		return rc;
	seconds = cJSON_GetObjectItemCaseSensitive(params, "seconds")->valuedouble;
	rc = ctx->sleep ? ctx->sleep(ctx, seconds) : poll_sleep(ctx, seconds);
	if (rc == -ECANCELED)
		return cancelled(ctx);
	if (rc < 0) {
		jd_error_set(&ctx->error, "task_failed", NULL, "sleep failed: %s", strerror(-rc));
		return rc;
	}
	*result = cJSON_CreateObject();
	return *result ? 0 : out_of_memory(ctx);
}

/* ---- square ---- */

static const struct jd_param square_params[] = {
	{ "values", "array", 1, "numeric array (JSON array or {\"dtype\", \"b64\"})" },
	{ "dtype", "string", 0,
	  "int32, int64, float32 or float64; default float64 for a JSON array, "
	  "the array's own for b64" },
	{ NULL, NULL, 0, NULL },
};

/* Tasks taking one array, "values", and "dtype": square and sum. */
static int values_check(const cJSON *params, const struct jd_param *spec, struct jd_error *err)
{
	const cJSON *values;
	enum jd_dtype dt;
	int rc, expl;

	rc = check_keys(params, spec, err);
	if (rc < 0)
		return rc;
	values = cJSON_GetObjectItemCaseSensitive(params, "values");
	rc = resolve_dtype(params, &values, 1, &dt, &expl, err);
	if (rc < 0)
		return rc;
	return check_array(values, "values", dt, expl, NULL, err);
}

static int square_check(const cJSON *params, struct jd_error *err)
{
	return values_check(params, square_params, err);
}

static int square_run(struct jd_task_ctx *ctx, const cJSON *params, cJSON **result)
{
	const cJSON *values;
	struct jd_array a;
	enum jd_dtype dt;
	int rc, expl;

	rc = square_check(params, &ctx->error);
	if (rc < 0)
		return rc;
	values = cJSON_GetObjectItemCaseSensitive(params, "values");
	resolve_dtype(params, &values, 1, &dt, &expl, &ctx->error);
	rc = decode(ctx, values, "values", dt, expl, &a);
	if (rc < 0)
		return rc;
	/* Integers wrap as the C type does (api.md); unsigned arithmetic
	 * gives that without undefined behaviour. */
	switch (a.dtype) {
	case JD_INT32: {
		int32_t *x = a.data;

		for (size_t i = 0; i < a.n; i++)
			x[i] = (int32_t)((uint32_t)x[i] * (uint32_t)x[i]);
		break;
	}
	case JD_INT64: {
		int64_t *x = a.data;

		for (size_t i = 0; i < a.n; i++)
			x[i] = (int64_t)((uint64_t)x[i] * (uint64_t)x[i]);
		break;
	}
	case JD_FLOAT32: {
		float *x = a.data;

		for (size_t i = 0; i < a.n; i++)
			x[i] = x[i] * x[i];
		break;
	}
	case JD_FLOAT64: {
		double *x = a.data;

		for (size_t i = 0; i < a.n; i++)
			x[i] = x[i] * x[i];
		break;
	}
	}
	rc = array_result(ctx, &a, "values", result);
	jd_array_cleanup(&a);
	return rc;
}

/* ---- saxpy ---- */

static const struct jd_param saxpy_params[] = {
	{ "a", "number", 1, "the scalar; an integer in range when dtype is an integer type" },
	{ "x", "array", 1, "numeric array" },
	{ "y", "array", 1, "numeric array, as long as x" },
	{ "dtype", "string", 0,
	  "int32, int64, float32 or float64; default float64 for JSON arrays, "
	  "the b64 arrays' own otherwise" },
	{ NULL, NULL, 0, NULL },
};

static int saxpy_check(const cJSON *params, struct jd_error *err)
{
	const cJSON *arrays[2], *a;
	enum jd_dtype dt;
	size_t nx, ny;
	int rc, expl;

	rc = check_keys(params, saxpy_params, err);
	if (rc < 0)
		return rc;
	arrays[0] = cJSON_GetObjectItemCaseSensitive(params, "x");
	arrays[1] = cJSON_GetObjectItemCaseSensitive(params, "y");
	rc = resolve_dtype(params, arrays, 2, &dt, &expl, err);
	if (rc < 0)
		return rc;
	a = cJSON_GetObjectItemCaseSensitive(params, "a");
	switch (dt) {
	case JD_INT32: rc = check_number(a, "a", 1, -2147483648.0, 2147483647.0, err); break;
	case JD_INT64: rc = check_number(a, "a", 1, -JSON_INT_MAX, JSON_INT_MAX, err); break;
	case JD_FLOAT32:
		rc = check_number(a, "a", 0, -(double)FLT_MAX, (double)FLT_MAX, err);
		break;
	case JD_FLOAT64: rc = check_number(a, "a", 0, -INFINITY, INFINITY, err); break;
	}
	if (rc < 0)
		return rc;
	rc = check_array(arrays[0], "x", dt, expl, &nx, err);
	if (rc < 0)
		return rc;
	rc = check_array(arrays[1], "y", dt, expl, &ny, err);
	if (rc < 0)
		return rc;
	if (nx != ny)
		return jd_error_set(err, "invalid_params", "params.y",
				    "has %zu elements but x has %zu; they must be equal", ny, nx);
	return 0;
}

static int saxpy_run(struct jd_task_ctx *ctx, const cJSON *params, cJSON **result)
{
	const cJSON *arrays[2];
	struct jd_array x, y;
	enum jd_dtype dt;
	double a;
	int rc, expl;

	rc = saxpy_check(params, &ctx->error);
	if (rc < 0)
		return rc;
	arrays[0] = cJSON_GetObjectItemCaseSensitive(params, "x");
	arrays[1] = cJSON_GetObjectItemCaseSensitive(params, "y");
	resolve_dtype(params, arrays, 2, &dt, &expl, &ctx->error);
	a = cJSON_GetObjectItemCaseSensitive(params, "a")->valuedouble;
	rc = decode(ctx, arrays[0], "x", dt, expl, &x);
	if (rc < 0)
		return rc;
	rc = decode(ctx, arrays[1], "y", dt, expl, &y);
	if (rc < 0) {
		jd_array_cleanup(&x);
		return rc;
	}
	switch (dt) {
	case JD_INT32: {
		const int32_t *xs = x.data;
		int32_t *ys = y.data;
		uint32_t ai = (uint32_t)(int32_t)a;

		for (size_t i = 0; i < y.n; i++)
			ys[i] = (int32_t)(ai * (uint32_t)xs[i] + (uint32_t)ys[i]);
		break;
	}
	case JD_INT64: {
		const int64_t *xs = x.data;
		int64_t *ys = y.data;
		uint64_t ai = (uint64_t)(int64_t)a;

		for (size_t i = 0; i < y.n; i++)
			ys[i] = (int64_t)(ai * (uint64_t)xs[i] + (uint64_t)ys[i]);
		break;
	}
	case JD_FLOAT32: {
		const float *xs = x.data;
		float *ys = y.data, af = (float)a;

		for (size_t i = 0; i < y.n; i++)
			ys[i] = af * xs[i] + ys[i];
		break;
	}
	case JD_FLOAT64: {
		const double *xs = x.data;
		double *ys = y.data;

		for (size_t i = 0; i < y.n; i++)
			ys[i] = a * xs[i] + ys[i];
		break;
	}
	}
	y.b64 = x.b64 || y.b64;
	rc = array_result(ctx, &y, "values", result);
	jd_array_cleanup(&x);
	jd_array_cleanup(&y);
	return rc;
}

/* ---- sum ---- */

static const struct jd_param sum_params[] = {
	{ "values", "array", 1, "numeric array" },
	{ "dtype", "string", 0,
	  "int32, int64, float32 or float64; default float64 for a JSON array, "
	  "the array's own for b64" },
	{ NULL, NULL, 0, NULL },
};

static int sum_check(const cJSON *params, struct jd_error *err)
{
	return values_check(params, sum_params, err);
}

static int sum_run(struct jd_task_ctx *ctx, const cJSON *params, cJSON **result)
{
	const cJSON *values;
	struct jd_array a;
	enum jd_dtype dt;
	double total = 0;
	int rc, expl;

	rc = sum_check(params, &ctx->error);
	if (rc < 0)
		return rc;
	values = cJSON_GetObjectItemCaseSensitive(params, "values");
	resolve_dtype(params, &values, 1, &dt, &expl, &ctx->error);
	rc = decode(ctx, values, "values", dt, expl, &a);
	if (rc < 0)
		return rc;
	if (a.dtype == JD_INT32 || a.dtype == JD_INT64) {
		/* int64 accumulator, wrapping as int64 does (unsigned, so
		 * without undefined behaviour). */
		uint64_t acc = 0;

		if (a.dtype == JD_INT32)
			for (size_t i = 0; i < a.n; i++)
				acc += (uint64_t)(int64_t)((const int32_t *)a.data)[i];
		else
			for (size_t i = 0; i < a.n; i++)
				acc += (uint64_t)((const int64_t *)a.data)[i];
		int64_t isum = (int64_t)acc;

		if (isum > JD_JSON_INT_MAX || isum < -JD_JSON_INT_MAX) {
			jd_array_cleanup(&a);
			jd_error_set(&ctx->error, "task_failed", "result.sum",
				     "the sum %lld is beyond +-(2^53-1) and cannot be sent exactly "
				     "as a JSON number",
				     (long long)isum);
			return -ERANGE;
		}
		total = (double)isum;
	} else {
		if (a.dtype == JD_FLOAT32)
			for (size_t i = 0; i < a.n; i++)
				total += ((const float *)a.data)[i];
		else
			for (size_t i = 0; i < a.n; i++)
				total += ((const double *)a.data)[i];
		if (!isfinite(total)) {
			jd_array_cleanup(&a);
			jd_error_set(&ctx->error, "task_failed", "result.sum",
				     "the sum is not finite (NaN or infinity), which JSON "
				     "cannot carry");
			return -ERANGE;
		}
	}
	jd_array_cleanup(&a);
	return number_result(ctx, "sum", total, result);
}

/* ---- sgemm ---- */

static const struct jd_param sgemm_params[] = {
	{ "m", "integer", 1, "rows of a and c, 1..8192" },
	{ "n", "integer", 1, "columns of b and c, 1..8192" },
	{ "k", "integer", 1, "columns of a and rows of b, 1..8192" },
	{ "a", "array", 1, "m*k float32 values, row-major" },
	{ "b", "array", 1, "k*n float32 values, row-major" },
	{ NULL, NULL, 0, NULL },
};

static int sgemm_check(const cJSON *params, struct jd_error *err)
{
	static const char *const dims[] = { "m", "n", "k" };
	size_t d[3], na, nb;
	int rc;

	rc = check_keys(params, sgemm_params, err);
	if (rc < 0)
		return rc;
	for (int i = 0; i < 3; i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(params, dims[i]);

		rc = check_number(v, dims[i], 1, 1, SGEMM_DIM_MAX, err);
		if (rc < 0)
			return rc;
		d[i] = (size_t)v->valuedouble;
	}
	rc = check_array(cJSON_GetObjectItemCaseSensitive(params, "a"), "a", JD_FLOAT32, 1, &na,
			 err);
	if (rc < 0)
		return rc;
	if (na != d[0] * d[2])
		return jd_error_set(err, "invalid_params", "params.a",
				    "has %zu elements; m*k = %zu*%zu = %zu expected", na, d[0],
				    d[2], d[0] * d[2]);
	rc = check_array(cJSON_GetObjectItemCaseSensitive(params, "b"), "b", JD_FLOAT32, 1, &nb,
			 err);
	if (rc < 0)
		return rc;
	if (nb != d[2] * d[1])
		return jd_error_set(err, "invalid_params", "params.b",
				    "has %zu elements; k*n = %zu*%zu = %zu expected", nb, d[2],
				    d[1], d[2] * d[1]);
	return 0;
}

/* c = a*b, row-major. i-k-j order: the inner loop streams one row of b and
 * one row of c with unit stride, which vectorises and stays in cache; the
 * stop flag is polled once per row of c. */
static int sgemm_kernel(struct jd_task_ctx *ctx, size_t m, size_t n, size_t k,
			const float *restrict a, const float *restrict b, float *restrict c)
{
	for (size_t i = 0; i < m; i++) {
		float *restrict crow = c + i * n;

		if (jd_task_cancelled(ctx))
			return -ECANCELED;
		for (size_t p = 0; p < k; p++) {
			const float aip = a[i * k + p];
			const float *restrict brow = b + p * n;

			for (size_t j = 0; j < n; j++)
				crow[j] += aip * brow[j];
		}
	}
	return 0;
}

static int sgemm_run(struct jd_task_ctx *ctx, const cJSON *params, cJSON **result)
{
	struct jd_array a, b, c;
	size_t m, n, k;
	int rc;

	rc = sgemm_check(params, &ctx->error);
	if (rc < 0)
		return rc;
	m = (size_t)cJSON_GetObjectItemCaseSensitive(params, "m")->valuedouble;
	n = (size_t)cJSON_GetObjectItemCaseSensitive(params, "n")->valuedouble;
	k = (size_t)cJSON_GetObjectItemCaseSensitive(params, "k")->valuedouble;
	rc = decode(ctx, cJSON_GetObjectItemCaseSensitive(params, "a"), "a", JD_FLOAT32, 1, &a);
	if (rc < 0)
		return rc;
	rc = decode(ctx, cJSON_GetObjectItemCaseSensitive(params, "b"), "b", JD_FLOAT32, 1, &b);
	if (rc < 0)
		goto out_a;
	/* The result is encoded when either input was: large inputs mean a
	 * large result. */
	if (jd_array_alloc(&c, JD_FLOAT32, m * n, a.b64 || b.b64) < 0) {
		rc = out_of_memory(ctx);
		goto out_b;
	}
	rc = sgemm_kernel(ctx, m, n, k, a.data, b.data, c.data);
	if (rc == 0)
		rc = array_result(ctx, &c, "c", result);
	else
		rc = cancelled(ctx);
	jd_array_cleanup(&c);
out_b:
	jd_array_cleanup(&b);
out_a:
	jd_array_cleanup(&a);
	return rc;
}

/* ---- primes ---- */

static const struct jd_param primes_params[] = {
	{ "below", "integer", 1, "count the primes below this, 0..2^31" },
	{ NULL, NULL, 0, NULL },
};

/* Odd numbers per sieve segment: 256 KiB of flags, about an L2 cache. */
#define SIEVE_SEGMENT ((uint64_t)256 * 1024)

static int primes_check(const cJSON *params, struct jd_error *err)
{
	int rc = check_keys(params, primes_params, err);

	if (rc < 0)
		return rc;
	return check_number(cJSON_GetObjectItemCaseSensitive(params, "below"), "below", 1, 0,
			    PRIMES_BELOW_MAX, err);
}

/* Number of primes < below, by a segmented sieve of Eratosthenes over odd
 * numbers only: memory stays at one segment plus the primes up to
 * sqrt(below) (4792 of them at most), and the stop flag is polled once per
 * segment. Returns the count or -ECANCELED / -ENOMEM. */
static int64_t count_primes(struct jd_task_ctx *ctx, uint64_t below)
{
	uint64_t root = 0, *next = NULL, *primes = NULL, np = 0;
	uint8_t *small = NULL, *seg = NULL;
	int64_t count = -ENOMEM;

	if (below <= 2)
		return 0;
	while ((root + 1) * (root + 1) < below)
		root++; /* the largest r with r*r < below, i.e. r*r <= below-1 */

	/* Odd primes up to root, by a plain sieve (root <= 46341). */
	small = calloc(root + 1, 1);
	primes = malloc((root / 2 + 1) * sizeof(*primes));
	next = malloc((root / 2 + 1) * sizeof(*next));
	seg = malloc(SIEVE_SEGMENT);
	if (!small || !primes || !next || !seg)
		goto out;
	for (uint64_t p = 3; p <= root; p += 2) {
		if (small[p])
			continue;
		primes[np] = p;
		next[np] = p * p; /* smaller multiples have a smaller factor */
		np++;
		for (uint64_t q = p * p; q <= root; q += 2 * p)
			small[q] = 1;
	}

	count = 1; /* 2 */
	/* seg[j] stands for the odd number lo + 2j. */
	for (uint64_t lo = 3; lo < below; lo += 2 * SIEVE_SEGMENT) {
		uint64_t hi = lo + 2 * SIEVE_SEGMENT < below ? lo + 2 * SIEVE_SEGMENT : below;
		uint64_t len = (hi - lo + 1) / 2;

		if (jd_task_cancelled(ctx)) {
			count = -ECANCELED;
			goto out;
		}
		memset(seg, 0, len);
		for (uint64_t i = 0; i < np && primes[i] * primes[i] < hi; i++) {
			uint64_t q = next[i], step = 2 * primes[i];

			for (; q < hi; q += step)
				seg[(q - lo) / 2] = 1;
			next[i] = q;
		}
		for (uint64_t j = 0; j < len; j++)
			count += !seg[j];
	}
out:
	free(small);
	free(primes);
	free(next);
	free(seg);
	return count;
}

static int primes_run(struct jd_task_ctx *ctx, const cJSON *params, cJSON **result)
{
	int64_t count;
	int rc;

	rc = primes_check(params, &ctx->error);
	if (rc < 0)
		return rc;
	count = count_primes(
	    ctx, (uint64_t)cJSON_GetObjectItemCaseSensitive(params, "below")->valuedouble);
	if (count == -ECANCELED)
		return cancelled(ctx);
	if (count < 0)
		return out_of_memory(ctx);
	return number_result(ctx, "count", (double)count, result);
}

/* ---- the table ---- */

#define CPU_EXECUTORS (JD_EXEC_THREAD | JD_EXEC_PROCESS)
/* Tasks with a kernel in jobd-opencl-host (opencl/kernels.c) as well. */
#define ANY_EXECUTOR (JD_EXEC_THREAD | JD_EXEC_PROCESS | JD_EXEC_OPENCL)

const struct jd_task jd_builtin_tasks[] = {
	{
	    .name = "echo",
	    .summary = "Return the value it is given",
	    .executors = CPU_EXECUTORS,
	    .preferred = JD_EXEC_THREAD,
	    .params = echo_params,
	    .result = "{\"value\": the value given}",
	    .check = echo_check,
	    .run = echo_run,
	},
	{
	    .name = "sleep",
	    .summary = "Sleep for a while; wakes at once when cancelled",
	    .executors = CPU_EXECUTORS,
	    .preferred = JD_EXEC_THREAD,
	    .params = sleep_params,
	    .result = "{}",
	    .check = sleep_check,
	    .run = sleep_run,
	},
	{
	    .name = "square",
	    .summary = "Square each element of a numeric array",
	    .executors = ANY_EXECUTOR,
	    .preferred = JD_EXEC_THREAD,
	    .params = square_params,
	    .result = "{\"values\": each value squared, same dtype and form as the input}",
	    .check = square_check,
	    .run = square_run,
	},
	{
	    .name = "saxpy",
	    .summary = "a*x + y over numeric arrays",
	    .executors = ANY_EXECUTOR,
	    .preferred = JD_EXEC_THREAD,
	    .params = saxpy_params,
	    .result = "{\"values\": a*x+y, b64 when x or y was}",
	    .check = saxpy_check,
	    .run = saxpy_run,
	},
	{
	    .name = "sum",
	    .summary = "Sum a numeric array",
	    .executors = ANY_EXECUTOR,
	    .preferred = JD_EXEC_THREAD,
	    .params = sum_params,
	    .result = "{\"sum\": the total, accumulated in double (floats) or int64 (ints)}",
	    .check = sum_check,
	    .run = sum_run,
	},
	{
	    .name = "sgemm",
	    .summary = "Single-precision matrix product c = a*b, row-major",
	    .executors = ANY_EXECUTOR,
	    .preferred = JD_EXEC_THREAD,
	    .params = sgemm_params,
	    .result = "{\"c\": m*n float32 values, row-major; b64 when a or b was}",
	    .check = sgemm_check,
	    .run = sgemm_run,
	},
	{
	    .name = "primes",
	    .summary = "Count the primes below a bound (segmented sieve)",
	    .executors = ANY_EXECUTOR,
	    .preferred = JD_EXEC_THREAD,
	    .params = primes_params,
	    .result = "{\"count\": number of primes below `below`}",
	    .check = primes_check,
	    .run = primes_run,
	},
	{ .name = NULL },
};

/* Entries of jd_builtin_tasks before its terminator. */
#define BUILTIN_COUNT (sizeof(jd_builtin_tasks) / sizeof(jd_builtin_tasks[0]) - 1)

const struct jd_task *jd_task_find(const char *name)
{
	if (!name)
		return NULL;
	for (const struct jd_task *t = jd_builtin_tasks; t->name; t++)
		if (strcmp(t->name, name) == 0)
			return t;
	if (strcmp(name, jd_exec_task.name) == 0)
		return &jd_exec_task;
	if (strcmp(name, jd_opencl_task.name) == 0)
		return &jd_opencl_task;
	return jd_plugin_task_find(name);
}

/* Built-ins, then exec (workers/exec.c), then opencl (opencl/task.c), then
 * plugin tasks. */
size_t jd_task_count(void)
{
	return BUILTIN_COUNT + 2 + jd_plugin_task_count();
}

const struct jd_task *jd_task_at(size_t i)
{
	if (i < BUILTIN_COUNT)
		return &jd_builtin_tasks[i];
	if (i == BUILTIN_COUNT)
		return &jd_exec_task;
	if (i == BUILTIN_COUNT + 1)
		return &jd_opencl_task;
	return jd_plugin_task_at(i - BUILTIN_COUNT - 2);
}

static const struct {
	unsigned bit;
	const char *name;
} exec_names[] = {
	{ JD_EXEC_THREAD, "thread" },
	{ JD_EXEC_PROCESS, "process" },
	{ JD_EXEC_OPENCL, "opencl" },
};

const char *jd_exec_name(unsigned bit)
{
	for (size_t i = 0; i < sizeof(exec_names) / sizeof(exec_names[0]); i++)
		if (exec_names[i].bit == bit)
			return exec_names[i].name;
	return NULL;
}

unsigned jd_exec_from_name(const char *name)
{
	if (!name)
		return 0;
	for (size_t i = 0; i < sizeof(exec_names) / sizeof(exec_names[0]); i++)
		if (strcmp(exec_names[i].name, name) == 0)
			return exec_names[i].bit;
	return 0;
}
