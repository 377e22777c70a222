/*
 * task.c - the `opencl` task's table entry and its parameter check.
 *
 * Part of jdcore, with no OpenCL in it: jobd runs the check on the loop
 * thread at submission (cheap, one pass, no large allocation), and
 * jobd-opencl-host runs it again before a job (params cross a process
 * boundary). run is NULL here: only the host, in opencl/usertask.c, runs
 * the task, on a device the daemon picked.
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "opencl/task.h"
#include "workers/array.h"
#include "workers/tasks.h"

#define JSON_INT_MAX 9007199254740991.0 /* 2^53-1, see workers/array.c */

static const struct jd_param opencl_params[] = {
	{ "source", "string", 1, "OpenCL C source of the program, at most 1 MiB" },
	{ "kernel", "string", 1, "name of the kernel function to run" },
	{ "global", "integer or array", 1, "global work size: a positive integer or 1..3 of them" },
	{ "local", "integer or array", 0,
	  "work-group size, as many dims as global, each dividing global; default: the "
	  "device picks" },
	{ "build_options", "string", 0, "options for clBuildProgram, at most 4 KiB" },
	{ "args", "array", 0,
	  "kernel arguments in order, at most 64: {\"buffer\": ARRAY, \"dtype\", \"access\": "
	  "read|write|read_write}, {\"size\": N, \"dtype\", \"access\": write, \"b64\": bool} (a "
	  "zeroed output of N elements), {\"scalar\": V, \"dtype\"}, {\"local\": BYTES}" },
	{ NULL, NULL, 0, NULL },
};

static int bad(struct jd_error *err, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(struct jd_error *err, const char *field, const char *fmt, ...)
{
	char msg[sizeof(err->message)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return jd_error_set(err, "invalid_params", field, "%s", msg);
}

/* Top-level keys: known, not repeated, required ones present. */
static int check_keys(const cJSON *params, struct jd_error *err)
{
	unsigned seen = 0;
	const cJSON *it;
	char f[sizeof(err->field)];

	if (!cJSON_IsObject(params))
		return bad(err, "params", "expected an object, got %s", jd_json_kind(params));
	cJSON_ArrayForEach(it, params)
	{
		unsigned i;

		for (i = 0; opencl_params[i].name; i++)
			if (it->string && strcmp(it->string, opencl_params[i].name) == 0)
				break;
		snprintf(f, sizeof(f), "params.%.80s", it->string ? it->string : "");
		if (!opencl_params[i].name)
			return bad(err, f, "unknown parameter");
		if (seen & (1u << i))
			return bad(err, f, "duplicate parameter");
		seen |= 1u << i;
	}
	for (unsigned i = 0; opencl_params[i].name; i++) {
		if (opencl_params[i].required && !(seen & (1u << i))) {
			snprintf(f, sizeof(f), "params.%s", opencl_params[i].name);
			return bad(err, f, "missing required parameter");
		}
	}
	return 0;
}

static int check_string(const cJSON *v, const char *field, size_t max, struct jd_error *err)
{
	if (!cJSON_IsString(v))
		return bad(err, field, "expected a string, got %s", jd_json_kind(v));
	if (strlen(v->valuestring) > max)
		return bad(err, field, "is %zu bytes; at most %zu are allowed",
			   strlen(v->valuestring), max);
	return 0;
}

static int check_kernel_name(const cJSON *v, struct jd_error *err)
{
	const char *s;
	int rc = check_string(v, "params.kernel", JD_OPENCL_KERNEL_MAX, err);

	if (rc < 0)
		return rc;
	s = v->valuestring;
	if (!*s)
		return bad(err, "params.kernel", "must not be empty");
	for (const char *p = s; *p; p++) {
		int ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
			 (p > s && *p >= '0' && *p <= '9');

		if (!ok)
			return bad(err, "params.kernel", "\"%.64s\" is not an OpenCL C identifier",
				   s);
	}
	return 0;
}

/* A positive integer work size, 1..2^32-1. `what` names the CL error that
 * the device would give. */
static int check_dim(const cJSON *v, const char *field, const char *what, struct jd_error *err)
{
	if (!cJSON_IsNumber(v))
		return bad(err, field, "expected a positive integer, got %s", jd_json_kind(v));
	if (!isfinite(v->valuedouble) || v->valuedouble != floor(v->valuedouble))
		return bad(err, field, "expected a positive integer, got %.17g", v->valuedouble);
	if (v->valuedouble < 1)
		return bad(err, field, "%s: work sizes must be positive, got %.17g", what,
			   v->valuedouble);
	if (v->valuedouble > JD_OPENCL_DIM_MAX)
		return bad(err, field, "%s: %.17g is above %.17g", what, v->valuedouble,
			   JD_OPENCL_DIM_MAX);
	return 0;
}

/* "global" or "local": an integer or an array of 1..3. */
static int check_dims(const cJSON *v, const char *name, const char *what, size_t d[3], int *nd,
		      struct jd_error *err)
{
	char f[sizeof(err->field)];
	int i = 0, rc;
	const cJSON *it;

	d[0] = d[1] = d[2] = 1;
	snprintf(f, sizeof(f), "params.%s", name);
	if (cJSON_IsNumber(v)) {
		rc = check_dim(v, f, what, err);
		if (rc < 0)
			return rc;
		d[0] = (size_t)v->valuedouble;
		*nd = 1;
		return 0;
	}
	if (!cJSON_IsArray(v))
		return bad(err, f, "expected a positive integer or an array of 1 to 3, got %s",
			   jd_json_kind(v));
	cJSON_ArrayForEach(it, v)
	{
		char fi[sizeof(err->field)];

		if (i == 3)
			return bad(err, f, "%s: at most 3 dimensions", what);
		snprintf(fi, sizeof(fi), "params.%s[%d]", name, i);
		rc = check_dim(it, fi, what, err);
		if (rc < 0)
			return rc;
		d[i++] = (size_t)it->valuedouble;
	}
	if (i == 0)
		return bad(err, f, "%s: at least 1 dimension", what);
	*nd = i;
	return 0;
}

static const char *const access_names[] = {
	[JD_OPENCL_READ] = "read",
	[JD_OPENCL_WRITE] = "write",
	[JD_OPENCL_READ_WRITE] = "read_write",
};

static int access_from_name(const char *s)
{
	for (int i = JD_OPENCL_READ; i <= JD_OPENCL_READ_WRITE; i++)
		if (strcmp(s, access_names[i]) == 0)
			return i;
	return 0;
}

/* Keys an arg of each kind may carry, besides its own. */
static const char *const kind_keys[] = { "buffer", "size", "scalar", "local" };
static const char *const kind_extra[][3] = {
	[JD_OPENCL_ARG_BUFFER] = { "dtype", "access", NULL },
	[JD_OPENCL_ARG_SIZE] = { "dtype", "access", "b64" },
	[JD_OPENCL_ARG_SCALAR] = { "dtype", NULL, NULL },
	[JD_OPENCL_ARG_LOCAL] = { NULL, NULL, NULL },
};

static int check_scalar(const cJSON *v, enum jd_dtype dt, const char *field, struct jd_error *err)
{
	double x, lo, hi;
	int integer = dt == JD_INT32 || dt == JD_INT64;

	if (!cJSON_IsNumber(v))
		return bad(err, field, "expected a number, got %s", jd_json_kind(v));
	x = v->valuedouble;
	if (!isfinite(x))
		return bad(err, field, "expected a finite number");
	if (integer && x != floor(x))
		return bad(err, field, "expected an integer for dtype %s, got %.17g",
			   jd_dtype_name(dt), x);
	switch (dt) {
	case JD_INT32: lo = -2147483648.0, hi = 2147483647.0; break;
	case JD_INT64: lo = -JSON_INT_MAX, hi = JSON_INT_MAX; break;
	case JD_FLOAT32: lo = -(double)FLT_MAX, hi = (double)FLT_MAX; break;
	default: lo = -DBL_MAX, hi = DBL_MAX; break;
	}
	if (x < lo || x > hi)
		return bad(err, field, "%.17g is out of range for %s (%.17g..%.17g)", x,
			   jd_dtype_name(dt), lo, hi);
	return 0;
}

static int check_arg(const cJSON *arg, int i, struct jd_error *err)
{
	char f[sizeof(err->field)], base[32];
	const cJSON *it, *v, *dtype, *access;
	int kind = -1, rc;
	enum jd_dtype dt = JD_FLOAT32;

	snprintf(base, sizeof(base), "params.args[%d]", i);
	if (!cJSON_IsObject(arg))
		return bad(err, base, "expected an object, got %s", jd_json_kind(arg));
	for (int k = 0; k < 4; k++) {
		if (!cJSON_GetObjectItemCaseSensitive(arg, kind_keys[k]))
			continue;
		if (kind >= 0)
			return bad(err, base,
				   "has both \"%s\" and \"%s\"; an argument is one of "
				   "buffer, size, scalar or local",
				   kind_keys[kind], kind_keys[k]);
		kind = k;
	}
	if (kind < 0)
		return bad(err, base,
			   "expected one of \"buffer\", \"size\", \"scalar\" or \"local\"");
	cJSON_ArrayForEach(it, arg)
	{
		int ok = it->string && strcmp(it->string, kind_keys[kind]) == 0;
		int dup = 0;

		for (int k = 0; !ok && k < 3 && kind_extra[kind][k]; k++)
			ok = it->string && strcmp(it->string, kind_extra[kind][k]) == 0;
		snprintf(f, sizeof(f), "%s.%.40s", base, it->string ? it->string : "");
		if (!ok)
			return bad(err, f, "unknown key for a %s argument", kind_keys[kind]);
		for (const cJSON *o = arg->child; o != it; o = o->next)
			dup |= o->string && strcmp(o->string, it->string) == 0;
		if (dup)
			return bad(err, f, "duplicate key");
	}

	dtype = cJSON_GetObjectItemCaseSensitive(arg, "dtype");
	if (dtype) {
		snprintf(f, sizeof(f), "%s.dtype", base);
		if (!cJSON_IsString(dtype))
			return bad(err, f, "expected a string, got %s", jd_json_kind(dtype));
		if (jd_dtype_from_name(dtype->valuestring, &dt) < 0)
			return bad(err, f,
				   "unknown dtype \"%.40s\" (expected int32, int64, float32 or "
				   "float64)",
				   dtype->valuestring);
	}
	access = cJSON_GetObjectItemCaseSensitive(arg, "access");
	if (access) {
		snprintf(f, sizeof(f), "%s.access", base);
		if (!cJSON_IsString(access))
			return bad(err, f, "expected a string, got %s", jd_json_kind(access));
		if (!access_from_name(access->valuestring))
			return bad(err, f,
				   "expected \"read\", \"write\" or \"read_write\", got "
				   "\"%.40s\"",
				   access->valuestring);
		if (kind == JD_OPENCL_ARG_SIZE &&
		    access_from_name(access->valuestring) == JD_OPENCL_READ)
			return bad(err, f,
				   "a size argument is a zeroed output buffer: access "
				   "must be \"write\" or \"read_write\"");
	}

	v = cJSON_GetObjectItemCaseSensitive(arg, kind_keys[kind]);
	snprintf(f, sizeof(f), "%s.%s", base, kind_keys[kind]);
	switch (kind) {
	case JD_OPENCL_ARG_BUFFER: {
		enum jd_dtype own;
		const cJSON *od;

		/* A JSON array's elements must fit the dtype (float32 by
		 * default); an encoded array carries its own, which an
		 * explicit "dtype" must then match. */
		rc = jd_array_check(v, &dt, f, NULL, err);
		if (rc < 0)
			return rc;
		od = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, "dtype") : NULL;
		if (dtype && cJSON_IsString(od) && jd_dtype_from_name(od->valuestring, &own) == 0 &&
		    own != dt) {
			snprintf(f, sizeof(f), "%s.dtype", base);
			return bad(err, f, "%s does not match the buffer's own dtype %s",
				   jd_dtype_name(dt), jd_dtype_name(own));
		}
		return 0;
	}
	case JD_OPENCL_ARG_SIZE: {
		const cJSON *b64 = cJSON_GetObjectItemCaseSensitive(arg, "b64");

		if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) ||
		    v->valuedouble != floor(v->valuedouble))
			return bad(err, f, "expected a positive integer (elements), got %s",
				   jd_json_kind(v));
		if (v->valuedouble < 1 || v->valuedouble > (double)JD_ARRAY_MAX_ELEMS)
			return bad(err, f, "%.17g elements is out of range (1..%zu)",
				   v->valuedouble, JD_ARRAY_MAX_ELEMS);
		if (b64 && !cJSON_IsBool(b64)) {
			snprintf(f, sizeof(f), "%s.b64", base);
			return bad(err, f, "expected a boolean, got %s", jd_json_kind(b64));
		}
		return 0;
	}
	case JD_OPENCL_ARG_SCALAR:
		if (!dtype) {
			snprintf(f, sizeof(f), "%s.dtype", base);
			return bad(err, f,
				   "a scalar needs a dtype (int32, int64, float32 or "
				   "float64): it sets the C type the kernel receives");
		}
		return check_scalar(v, dt, f, err);
	case JD_OPENCL_ARG_LOCAL:
		if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) ||
		    v->valuedouble != floor(v->valuedouble))
			return bad(err, f, "expected a positive integer (bytes), got %s",
				   jd_json_kind(v));
		if (v->valuedouble < 1 || v->valuedouble > JD_OPENCL_LOCAL_MAX)
			return bad(err, f,
				   "CL_INVALID_ARG_SIZE: %.17g bytes of local memory is out of "
				   "range (1..%.0f)",
				   v->valuedouble, JD_OPENCL_LOCAL_MAX);
		return 0;
	}
	return 0;
}

int jd_opencl_task_check(const cJSON *params, struct jd_error *err)
{
	const cJSON *v, *args;
	size_t g[3], l[3];
	int ng, nl, rc, i = 0;

	rc = check_keys(params, err);
	if (rc < 0)
		return rc;
	v = cJSON_GetObjectItemCaseSensitive(params, "source");
	rc = check_string(v, "params.source", JD_OPENCL_SOURCE_MAX, err);
	if (rc < 0)
		return rc;
	if (!v->valuestring[0])
		return bad(err, "params.source", "must not be empty");
	rc = check_kernel_name(cJSON_GetObjectItemCaseSensitive(params, "kernel"), err);
	if (rc < 0)
		return rc;
	v = cJSON_GetObjectItemCaseSensitive(params, "build_options");
	if (v) {
		rc = check_string(v, "params.build_options", JD_OPENCL_OPTIONS_MAX, err);
		if (rc < 0)
			return rc;
	}
	rc = check_dims(cJSON_GetObjectItemCaseSensitive(params, "global"), "global",
			"CL_INVALID_GLOBAL_WORK_SIZE", g, &ng, err);
	if (rc < 0)
		return rc;
	v = cJSON_GetObjectItemCaseSensitive(params, "local");
	if (v) {
		rc = check_dims(v, "local", "CL_INVALID_WORK_GROUP_SIZE", l, &nl, err);
		if (rc < 0)
			return rc;
		if (nl != ng)
			return bad(err, "params.local",
				   "CL_INVALID_WORK_DIMENSION: local has %d dimension%s, global %d",
				   nl, nl == 1 ? "" : "s", ng);
		for (int d = 0; d < ng; d++) {
			char f[32];

			if (g[d] % l[d] == 0)
				continue;
			if (cJSON_IsArray(v))
				snprintf(f, sizeof(f), "params.local[%d]", d);
			else
				snprintf(f, sizeof(f), "params.local");
			return bad(err, f,
				   "CL_INVALID_WORK_GROUP_SIZE: local size %zu does not divide "
				   "global size %zu",
				   l[d], g[d]);
		}
	}
	args = cJSON_GetObjectItemCaseSensitive(params, "args");
	if (!args)
		return 0;
	if (!cJSON_IsArray(args))
		return bad(err, "params.args", "expected an array, got %s", jd_json_kind(args));
	cJSON_ArrayForEach(v, args)
	{
		if (i == JD_OPENCL_ARGS_MAX)
			return bad(err, "params.args", "more than %d arguments",
				   JD_OPENCL_ARGS_MAX);
		rc = check_arg(v, i++, err);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int jd_opencl_dims(const cJSON *v, size_t d[3])
{
	const cJSON *it;
	int n = 0;

	d[0] = d[1] = d[2] = 1;
	if (cJSON_IsNumber(v)) {
		d[0] = (size_t)v->valuedouble;
		return 1;
	}
	cJSON_ArrayForEach(it, v)
	{
		if (n < 3)
			d[n++] = (size_t)it->valuedouble;
	}
	return n;
}

enum jd_opencl_arg_kind jd_opencl_arg_kind(const cJSON *arg)
{
	if (cJSON_GetObjectItemCaseSensitive(arg, "buffer"))
		return JD_OPENCL_ARG_BUFFER;
	if (cJSON_GetObjectItemCaseSensitive(arg, "size"))
		return JD_OPENCL_ARG_SIZE;
	if (cJSON_GetObjectItemCaseSensitive(arg, "scalar"))
		return JD_OPENCL_ARG_SCALAR;
	return JD_OPENCL_ARG_LOCAL;
}

enum jd_opencl_access jd_opencl_arg_access(const cJSON *arg)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(arg, "access");
	int x = cJSON_IsString(a) ? access_from_name(a->valuestring) : 0;

	if (x)
		return (enum jd_opencl_access)x;
	return jd_opencl_arg_kind(arg) == JD_OPENCL_ARG_SIZE ? JD_OPENCL_WRITE : JD_OPENCL_READ;
}

const struct jd_task jd_opencl_task = {
	.name = "opencl",
	.summary = "Build and run a user OpenCL C kernel on an OpenCL device",
	.executors = JD_EXEC_OPENCL,
	.preferred = JD_EXEC_OPENCL,
	.params = opencl_params,
	.result = "{\"outputs\": every buffer with write access, in argument order, in the "
		  "form its input used; \"device\", \"timings\", \"build\": {\"cache\", \"ms\"}}",
	.check = jd_opencl_task_check,
	.run = NULL,
};
