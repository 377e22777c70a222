/*
 * usertask.c - the `opencl` task: a user's OpenCL C kernel, built through
 * the program cache and run on the host's device.
 *
 * jobd-opencl-host only; single-threaded. Order of business, so that every
 * mistake a user can make comes back as a clear error before anything is
 * enqueued: check params (as jobd did at submission); get the program
 * (memory, disk or compile; a build failure returns the log, host paths
 * scrubbed); find the kernel; compare its signature (clGetKernelArgInfo,
 * the program is built with -cl-kernel-arg-info) with the args given;
 * check work sizes and memory against the device; then upload, set args,
 * run, read every buffer with write access back.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"
#include "opencl/task.h"
#include "opencl/usertask.h"

#define ARG_INFO_OPTION " -cl-kernel-arg-info"

struct uarg {
	enum jd_opencl_arg_kind kind;
	enum jd_opencl_access access;
	enum jd_dtype dtype;
	const cJSON *value; /* the buffer array or the scalar */
	size_t n;           /* elements (buffer, size) or bytes (local) */
	int b64;            /* output form */
	struct jd_cl_buf *buf;
	void *host; /* read back */
};

static int fail_with(struct jd_cl_job *job, const char *type, const char *field, int status,
		     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int fail_with(struct jd_cl_job *job, const char *type, const char *field, int status,
		     const char *fmt, ...)
{
	char msg[sizeof(job->err.message)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	jd_error_set(&job->err, type, field, "%s", msg);
	return status;
}

/* ---- build logs ---- */

static int path_char(char c)
{
	return c && c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != ':' && c != '\'' &&
	       c != '"' && c != ')' && c != ',' && c != ';' && c != '>';
}

char *jd_cl_scrub_log(const char *log, const char *cache_dir, size_t max)
{
	const char *prefixes[8];
	size_t np = 0, len = strlen(log), o = 0;
	static const char truncated[] = "\n[build log truncated]";
	char *out;

	/* Longest first is not needed: every prefix eats the whole path. */
	if (cache_dir && *cache_dir)
		prefixes[np++] = cache_dir;
	static const char *const envs[] = { "POCL_CACHE_DIR", "HOME", "TMPDIR", "XDG_CACHE_HOME" };
	for (size_t i = 0; i < sizeof(envs) / sizeof(envs[0]); i++) {
		const char *v = getenv(envs[i]);

		if (v && strlen(v) > 1)
			prefixes[np++] = v;
	}
	prefixes[np++] = "/tmp/";
	prefixes[np++] = "/var/tmp/";
	out = malloc(len + 1 < max + sizeof(truncated) ? len + 1 + 64 : max + sizeof(truncated));
	if (!out)
		return NULL;
	for (size_t i = 0; i < len && o < max;) {
		size_t hit = 0;

		for (size_t p = 0; p < np && !hit; p++) {
			size_t pl = strlen(prefixes[p]);

			if (strncmp(log + i, prefixes[p], pl) == 0)
				hit = pl;
		}
		if (hit) {
			static const char tag[] = "<path>";

			i += hit;
			while (i < len && path_char(log[i]))
				i++;
			if (o + sizeof(tag) - 1 > max)
				break;
			memcpy(out + o, tag, sizeof(tag) - 1);
			o += sizeof(tag) - 1;
			continue;
		}
		out[o++] = log[i++];
	}
	/* Drop a UTF-8 sequence cut in the middle. */
	if (o >= max) {
		while (o > 0 && ((unsigned char)out[o - 1] & 0xc0) == 0x80)
			o--;
		if (o > 0 && ((unsigned char)out[o - 1] & 0xc0) == 0xc0)
			o--;
		memcpy(out + o, truncated, sizeof(truncated));
		return out;
	}
	out[o] = '\0';
	return out;
}

static int build_failed(struct jd_cl_host *h, struct jd_cl_job *job, struct jd_cl_build *b)
{
	char *scrubbed = b->log ? jd_cl_scrub_log(b->log, h->cache.dir, JD_CL_BUILD_LOG_MAX) : NULL;
	const char *log = scrubbed ? scrubbed : "";
	size_t n;

	/* Trailing blank lines say nothing. */
	n = strlen(log);
	while (n > 0 && (log[n - 1] == '\n' || log[n - 1] == ' '))
		n--;
	if (b->cl_err == CL_BUILD_PROGRAM_FAILURE || b->cl_err == CL_COMPILE_PROGRAM_FAILURE) {
		job->long_message = malloc(n + 32);
		if (job->long_message)
			snprintf(job->long_message, n + 32, "build failed:\n%.*s", (int)n, log);
	} else {
		const char *name = jd_cl_err_name(b->cl_err);

		job->long_message = malloc(n + strlen(name) + 32);
		if (job->long_message)
			snprintf(job->long_message, n + strlen(name) + 32, "build failed: %s%s%.*s",
				 name, n ? "\n" : "", (int)n, log);
	}
	jd_error_set(&job->err, "build_failed",
		     b->cl_err == CL_INVALID_BUILD_OPTIONS ? "params.build_options"
							   : "params.source",
		     "%s", job->long_message ? job->long_message : "build failed");
	free(scrubbed);
	return -EINVAL;
}

static int kernel_not_found(struct jd_cl_program *p, struct jd_cl_job *job, const char *name)
{
	char names[200] = "";
	size_t got = 0;
	char *all = NULL;

	if (clGetProgramInfo(p->program, CL_PROGRAM_KERNEL_NAMES, 0, NULL, &got) == CL_SUCCESS &&
	    got > 0 && (all = malloc(got + 1))) {
		if (clGetProgramInfo(p->program, CL_PROGRAM_KERNEL_NAMES, got, all, NULL) ==
		    CL_SUCCESS) {
			all[got] = '\0';
			snprintf(names, sizeof(names), "%s", all);
			for (char *c = names; *c; c++)
				if (*c == ';')
					*c = ' ';
		}
		free(all);
	}
	return fail_with(job, "kernel_not_found", "params.kernel", -EINVAL,
			 "CL_INVALID_KERNEL_NAME: the program has no kernel \"%s\" (kernels: %s)",
			 name, names[0] ? names : "none");
}

/* ---- kernel signature ---- */

/* Size and kind of a scalar OpenCL C type named `t` ("int", "float4",
 * "unsigned int"); 0 with *size, *is_float set, or -1 when unknown (a
 * struct, a typedef): then only clSetKernelArg judges. */
static int scalar_type(const char *t, unsigned addr_bytes, size_t *size, int *is_float)
{
	static const struct {
		const char *name;
		size_t size;
		int is_float;
	} types[] = {
		{ "char", 1, 0 },      { "uchar", 1, 0 },     { "short", 2, 0 },
		{ "ushort", 2, 0 },    { "int", 4, 0 },       { "uint", 4, 0 },
		{ "long", 8, 0 },      { "ulong", 8, 0 },     { "half", 2, 1 },
		{ "float", 4, 1 },     { "double", 8, 1 },    { "bool", 1, 0 },
		{ "size_t", 0, 0 },    { "ptrdiff_t", 0, 0 }, { "intptr_t", 0, 0 },
		{ "uintptr_t", 0, 0 },
	};
	char base[160];
	size_t bl, width = 1;

	if (strncmp(t, "unsigned ", 9) == 0)
		snprintf(base, sizeof(base), "u%s", t + 9);
	else if (strncmp(t, "signed ", 7) == 0)
		snprintf(base, sizeof(base), "%s", t + 7);
	else
		snprintf(base, sizeof(base), "%s", t);
	bl = strlen(base);
	while (bl > 0 && base[bl - 1] >= '0' && base[bl - 1] <= '9')
		bl--;
	if (base[bl]) {
		width = (size_t)strtoul(base + bl, NULL, 10);
		if (width != 2 && width != 3 && width != 4 && width != 8 && width != 16)
			return -1;
		base[bl] = '\0';
	}
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		if (strcmp(base, types[i].name) != 0)
			continue;
		*size = (types[i].size ? types[i].size : addr_bytes) * (width == 3 ? 4 : width);
		*is_float = types[i].is_float;
		return 0;
	}
	return -1;
}

/* Compare the args given with the kernel's parameters. 0, or -EINVAL with
 * "invalid_args" naming the arg and the OpenCL error it would cause. */
static int check_signature(struct jd_cl_host *h, struct jd_cl_job *job, cl_kernel k,
			   const char *kname, struct uarg *args, size_t nargs)
{
	cl_uint nk = 0;
	char field[48];
	cl_int err;

	err = clGetKernelInfo(k, CL_KERNEL_NUM_ARGS, sizeof(nk), &nk, NULL);
	if (err != CL_SUCCESS)
		return jd_cl_fail(job, err, "clGetKernelInfo");
	if (nk != nargs)
		return fail_with(job, "invalid_args", "params.args", -EINVAL,
				 "CL_INVALID_KERNEL_ARGS: kernel %s takes %u argument%s, %zu given",
				 kname, (unsigned)nk, nk == 1 ? "" : "s", nargs);
	for (size_t i = 0; i < nargs; i++) {
		cl_kernel_arg_address_qualifier aq = 0;
		char tname[128] = "", pname[128] = "";
		size_t tl, tsize;
		int is_ptr, is_float;

		err = clGetKernelArgInfo(k, (cl_uint)i, CL_KERNEL_ARG_ADDRESS_QUALIFIER, sizeof(aq),
					 &aq, NULL);
		if (err == CL_KERNEL_ARG_INFO_NOT_AVAILABLE)
			return 0; /* clSetKernelArg will judge */
		if (err != CL_SUCCESS)
			return jd_cl_fail(job, err, "clGetKernelArgInfo");
		if (clGetKernelArgInfo(k, (cl_uint)i, CL_KERNEL_ARG_TYPE_NAME, sizeof(tname) - 1,
				       tname, NULL) != CL_SUCCESS)
			tname[0] = '\0';
		if (clGetKernelArgInfo(k, (cl_uint)i, CL_KERNEL_ARG_NAME, sizeof(pname) - 1, pname,
				       NULL) != CL_SUCCESS)
			snprintf(pname, sizeof(pname), "#%zu", i);
		tl = strlen(tname);
		is_ptr = tl > 0 && tname[tl - 1] == '*';
		snprintf(field, sizeof(field), "params.args[%zu]", i);
		switch (args[i].kind) {
		case JD_OPENCL_ARG_BUFFER:
		case JD_OPENCL_ARG_SIZE:
			if (strstr(tname, "image") || strstr(tname, "sampler"))
				return fail_with(
				    job, "invalid_args", field, -EINVAL,
				    "CL_INVALID_ARG_VALUE for arg %zu: parameter %s is "
				    "%s; images and samplers are not supported",
				    i, pname, tname);
			if ((aq != CL_KERNEL_ARG_ADDRESS_GLOBAL &&
			     aq != CL_KERNEL_ARG_ADDRESS_CONSTANT) ||
			    (tl && !is_ptr))
				return fail_with(
				    job, "invalid_args", field, -EINVAL,
				    "CL_INVALID_ARG_VALUE for arg %zu: parameter %s is "
				    "%s%s, not a __global pointer, so it cannot take a "
				    "buffer",
				    i, pname, aq == CL_KERNEL_ARG_ADDRESS_LOCAL ? "__local " : "",
				    tname);
			break;
		case JD_OPENCL_ARG_LOCAL:
			if (aq != CL_KERNEL_ARG_ADDRESS_LOCAL)
				return fail_with(
				    job, "invalid_args", field, -EINVAL,
				    "CL_INVALID_ARG_VALUE for arg %zu: parameter %s is "
				    "%s, not a __local pointer, so it cannot take "
				    "{\"local\": bytes}",
				    i, pname, tname);
			break;
		case JD_OPENCL_ARG_SCALAR:
			if (aq != CL_KERNEL_ARG_ADDRESS_PRIVATE || is_ptr)
				return fail_with(
				    job, "invalid_args", field, -EINVAL,
				    "CL_INVALID_ARG_VALUE for arg %zu: parameter %s is "
				    "%s%s, which takes a buffer or local memory, not a "
				    "scalar",
				    i, pname, aq == CL_KERNEL_ARG_ADDRESS_LOCAL ? "__local " : "",
				    tname);
			if (scalar_type(tname, h->dev.address_bits / 8, &tsize, &is_float) < 0)
				break;
			if (tsize != jd_dtype_size(args[i].dtype))
				return fail_with(job, "invalid_args", field, -EINVAL,
						 "CL_INVALID_ARG_SIZE for arg %zu: parameter %s is "
						 "%s (%zu bytes), the scalar is %s (%zu bytes)",
						 i, pname, tname, tsize,
						 jd_dtype_name(args[i].dtype),
						 jd_dtype_size(args[i].dtype));
			if (is_float !=
			    (args[i].dtype == JD_FLOAT32 || args[i].dtype == JD_FLOAT64))
				return fail_with(
				    job, "invalid_args", field, -EINVAL,
				    "CL_INVALID_ARG_VALUE for arg %zu: parameter %s is "
				    "%s, the scalar is %s; give it the matching dtype",
				    i, pname, tname, jd_dtype_name(args[i].dtype));
			break;
		}
	}
	return 0;
}

/* ---- device limits ---- */

static int check_limits(struct jd_cl_host *h, struct jd_cl_job *job, cl_kernel k, int dims,
			const size_t *global, const size_t *local, struct uarg *args, size_t nargs)
{
	const struct jd_cl_device *d = &h->dev;
	size_t kmax = 0, reqd[3] = { 0, 0, 0 }, wg = 1;
	cl_ulong static_local = 0, local_total = 0, total = 0;

	if ((cl_uint)dims > d->max_dims)
		return fail_with(job, "invalid_params", "params.global", -EINVAL,
				 "CL_INVALID_WORK_DIMENSION: %d dimensions; the device has %u",
				 dims, (unsigned)d->max_dims);
	if (d->address_bits == 32) {
		for (int i = 0; i < dims; i++)
			if (global[i] > 0xffffffffu)
				return fail_with(job, "invalid_params", "params.global", -EINVAL,
						 "CL_INVALID_GLOBAL_WORK_SIZE: %zu is beyond the "
						 "device's 32-bit size_t",
						 global[i]);
	}
	clGetKernelWorkGroupInfo(k, d->id, CL_KERNEL_WORK_GROUP_SIZE, sizeof(kmax), &kmax, NULL);
	clGetKernelWorkGroupInfo(k, d->id, CL_KERNEL_COMPILE_WORK_GROUP_SIZE, sizeof(reqd), reqd,
				 NULL);
	clGetKernelWorkGroupInfo(k, d->id, CL_KERNEL_LOCAL_MEM_SIZE, sizeof(static_local),
				 &static_local, NULL);
	if (local) {
		for (int i = 0; i < dims; i++) {
			if (local[i] > d->max_work_item_sizes[i])
				return fail_with(
				    job, "invalid_params", "params.local", -EINVAL,
				    "CL_INVALID_WORK_ITEM_SIZE: local size %zu in dimension %d is "
				    "above the device's %zu",
				    local[i], i, d->max_work_item_sizes[i]);
			wg *= local[i];
		}
		if (wg > d->max_work_group_size || (kmax && wg > kmax))
			return fail_with(
			    job, "invalid_params", "params.local", -EINVAL,
			    "CL_INVALID_WORK_GROUP_SIZE: %zu work-items per group; "
			    "this kernel allows at most %zu on this device",
			    wg,
			    kmax && kmax < d->max_work_group_size ? kmax : d->max_work_group_size);
		if (reqd[0] && (reqd[0] != local[0] || reqd[1] != (dims > 1 ? local[1] : 1) ||
				reqd[2] != (dims > 2 ? local[2] : 1)))
			return fail_with(job, "invalid_params", "params.local", -EINVAL,
					 "CL_INVALID_WORK_GROUP_SIZE: the kernel requires a "
					 "work-group size of (%zu, %zu, %zu)",
					 reqd[0], reqd[1], reqd[2]);
	}
	for (size_t i = 0; i < nargs; i++) {
		char field[48];
		cl_ulong bytes;

		snprintf(field, sizeof(field), "params.args[%zu]", i);
		if (args[i].kind == JD_OPENCL_ARG_LOCAL) {
			local_total += args[i].n;
			continue;
		}
		if (args[i].kind == JD_OPENCL_ARG_SCALAR)
			continue;
		bytes = (cl_ulong)args[i].n * jd_dtype_size(args[i].dtype);
		if (bytes > d->max_alloc)
			return fail_with(job, "invalid_params", field, -EINVAL,
					 "buffer %zu is %llu bytes; the device allows at most %llu",
					 i, (unsigned long long)bytes,
					 (unsigned long long)d->max_alloc);
		total += bytes;
	}
	if (total > d->global_mem)
		return fail_with(job, "invalid_params", "params.args", -EINVAL,
				 "the buffers take %llu bytes; the device has %llu",
				 (unsigned long long)total, (unsigned long long)d->global_mem);
	if (local_total + static_local > d->local_mem)
		return fail_with(job, "invalid_params", "params.args", -EINVAL,
				 "CL_OUT_OF_RESOURCES: %llu bytes of local memory (%llu in local "
				 "args, %llu in the kernel); the device has %llu",
				 (unsigned long long)(local_total + static_local),
				 (unsigned long long)local_total, (unsigned long long)static_local,
				 (unsigned long long)d->local_mem);
	return 0;
}

/* Errors of clSetKernelArg and clEnqueueNDRangeKernel that are the job's
 * doing, not the device's. */
static int enqueue_error(struct jd_cl_job *job, cl_int err)
{
	switch (err) {
	case CL_INVALID_WORK_DIMENSION:
	case CL_INVALID_WORK_GROUP_SIZE:
	case CL_INVALID_WORK_ITEM_SIZE:
	case CL_INVALID_GLOBAL_WORK_SIZE:
	case CL_INVALID_GLOBAL_OFFSET:
		return fail_with(
		    job, "invalid_params",
		    err == CL_INVALID_GLOBAL_WORK_SIZE ? "params.global" : "params.local", -EINVAL,
		    "%s: the device refused these work sizes", jd_cl_err_name(err));
	case CL_INVALID_KERNEL_ARGS:
		return fail_with(job, "invalid_args", "params.args", -EINVAL,
				 "CL_INVALID_KERNEL_ARGS: not every argument is set");
	default: return jd_cl_fail(job, err, "clEnqueueNDRangeKernel");
	}
}

/* ---- the run ---- */

static int parse_args(const cJSON *list, struct uarg *args, size_t *nargs)
{
	const cJSON *a;
	size_t n = 0;

	cJSON_ArrayForEach(a, list)
	{
		struct uarg *u = &args[n++];
		const cJSON *dt = cJSON_GetObjectItemCaseSensitive(a, "dtype");
		const cJSON *b64 = cJSON_GetObjectItemCaseSensitive(a, "b64");

		memset(u, 0, sizeof(*u));
		u->kind = jd_opencl_arg_kind(a);
		u->access = jd_opencl_arg_access(a);
		u->dtype = JD_FLOAT32;
		if (cJSON_IsString(dt))
			jd_dtype_from_name(dt->valuestring, &u->dtype);
		switch (u->kind) {
		case JD_OPENCL_ARG_BUFFER: {
			struct jd_error e;
			const cJSON *own;

			u->value = cJSON_GetObjectItemCaseSensitive(a, "buffer");
			u->b64 = cJSON_IsObject(u->value);
			own = u->b64 ? cJSON_GetObjectItemCaseSensitive(u->value, "dtype") : NULL;
			if (cJSON_IsString(own))
				jd_dtype_from_name(own->valuestring, &u->dtype);
			jd_array_check(u->value, &u->dtype, "", &u->n, &e);
			break;
		}
		case JD_OPENCL_ARG_SIZE:
			u->n = (size_t)cJSON_GetObjectItemCaseSensitive(a, "size")->valuedouble;
			u->b64 = cJSON_IsTrue(b64);
			break;
		case JD_OPENCL_ARG_SCALAR:
			u->value = cJSON_GetObjectItemCaseSensitive(a, "scalar");
			break;
		case JD_OPENCL_ARG_LOCAL:
			u->n = (size_t)cJSON_GetObjectItemCaseSensitive(a, "local")->valuedouble;
			break;
		}
	}
	*nargs = n;
	return 0;
}

static cl_mem_flags mem_flags(enum jd_opencl_access a)
{
	switch (a) {
	case JD_OPENCL_READ: return CL_MEM_READ_ONLY;
	case JD_OPENCL_WRITE: return CL_MEM_WRITE_ONLY;
	default: return CL_MEM_READ_WRITE;
	}
}

static cl_int set_arg(cl_kernel k, cl_uint i, struct uarg *u)
{
	union {
		cl_int i32;
		cl_long i64;
		cl_float f32;
		cl_double f64;
	} v;
	double x;

	switch (u->kind) {
	case JD_OPENCL_ARG_BUFFER:
	case JD_OPENCL_ARG_SIZE: return clSetKernelArg(k, i, sizeof(cl_mem), &u->buf->mem);
	case JD_OPENCL_ARG_LOCAL: return clSetKernelArg(k, i, u->n, NULL);
	case JD_OPENCL_ARG_SCALAR: break;
	}
	x = u->value->valuedouble;
	switch (u->dtype) {
	case JD_INT32: v.i32 = (cl_int)x; break;
	case JD_INT64: v.i64 = (cl_long)x; break;
	case JD_FLOAT32: v.f32 = (cl_float)x; break;
	case JD_FLOAT64: v.f64 = x; break;
	}
	return clSetKernelArg(k, i, jd_dtype_size(u->dtype), &v);
}

static void release_args(struct jd_cl_host *h, struct uarg *args, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (args[i].buf && args[i].buf->mapped)
			jd_cl_buf_end_read(&h->pool, args[i].buf);
		jd_cl_pool_put(&h->pool, args[i].buf);
		args[i].buf = NULL;
	}
}

/* The result: {"outputs", "device", "timings", "build"}. */
static int make_result(struct jd_cl_host *h, struct jd_cl_job *job, struct uarg *args, size_t nargs,
		       const struct jd_cl_build *b)
{
	cJSON *res = cJSON_CreateObject(), *outs = cJSON_CreateArray(), *build, *t;
	int k = 0, rc;

	if (!res || !outs)
		goto oom;
	cJSON_AddItemToObject(res, "outputs", outs);
	for (size_t i = 0; i < nargs; i++) {
		char name[32];
		cJSON *v;

		if (args[i].kind == JD_OPENCL_ARG_SCALAR || args[i].kind == JD_OPENCL_ARG_LOCAL ||
		    !(args[i].access & JD_OPENCL_WRITE))
			continue;
		struct jd_array a = { .dtype = args[i].dtype,
				      .b64 = args[i].b64,
				      .n = args[i].n,
				      .data = args[i].host };

		snprintf(name, sizeof(name), "outputs[%d]", k++);
		rc = jd_cl_json_safe(job, &a, name);
		if (rc < 0) {
			cJSON_Delete(res);
			return rc;
		}
		v = jd_array_encode(&a);
		if (!v)
			goto oom;
		cJSON_AddItemToArray(outs, v);
	}
	if (!cJSON_AddStringToObject(res, "device", h->dev.jid))
		goto oom;
	t = jd_cl_timing_cjson(&job->tm);
	if (!t)
		goto oom;
	cJSON_AddItemToObject(res, "timings", t);
	build = cJSON_CreateObject();
	if (!build)
		goto oom;
	cJSON_AddItemToObject(res, "build", build);
	if (!cJSON_AddStringToObject(build, "cache", b->cache) ||
	    !cJSON_AddNumberToObject(build, "ms", b->ms))
		goto oom;
	job->result = res;
	return 0;
oom:
	cJSON_Delete(res);
	jd_error_set(&job->err, "task_failed", NULL, "out of memory");
	return -ENOMEM;
}

int jd_cl_user_run(struct jd_cl_host *h, struct jd_cl_job *job)
{
	const cJSON *p = job->params, *opt, *lv;
	struct uarg args[JD_OPENCL_ARGS_MAX];
	size_t nargs = 0, global[3], local[3];
	struct jd_cl_program *prog;
	struct jd_cl_build b;
	const char *kname, *source;
	char *options;
	cl_kernel k;
	cl_event kev = NULL, last = NULL;
	cl_int err, status = CL_COMPLETE;
	int rc, dims;

	rc = jd_opencl_task_check(p, &job->err);
	if (rc < 0)
		return rc;
	source = cJSON_GetObjectItemCaseSensitive(p, "source")->valuestring;
	kname = cJSON_GetObjectItemCaseSensitive(p, "kernel")->valuestring;
	opt = cJSON_GetObjectItemCaseSensitive(p, "build_options");
	options = malloc((opt ? strlen(opt->valuestring) : 0) + sizeof(ARG_INFO_OPTION));
	if (!options)
		return fail_with(job, "task_failed", NULL, -ENOMEM, "out of memory");
	/* Without it, clGetKernelArgInfo answers nothing on most platforms. */
	sprintf(options, "%s" ARG_INFO_OPTION, opt ? opt->valuestring : "");

	rc = jd_cl_cache_get(&h->cache, source, options, &prog, &b);
	free(options);
	job->tm.have_build = 1;
	job->tm.build_ms = b.ms;
	job->tm.cache = b.cache;
	if (rc == -EINVAL) {
		rc = build_failed(h, job, &b);
		free(b.log);
		return rc;
	}
	if (rc < 0)
		return fail_with(job, "task_failed", NULL, rc, "out of memory");
	if (!prog->on_disk)
		job->save = prog;

	err = jd_cl_program_kernel(prog, kname, &k);
	if (err == CL_INVALID_KERNEL_NAME)
		return kernel_not_found(prog, job, kname);
	if (err != CL_SUCCESS)
		return jd_cl_fail(job, err, "clCreateKernel");

	parse_args(cJSON_GetObjectItemCaseSensitive(p, "args"), args, &nargs);
	dims = jd_opencl_dims(cJSON_GetObjectItemCaseSensitive(p, "global"), global);
	lv = cJSON_GetObjectItemCaseSensitive(p, "local");
	if (lv)
		jd_opencl_dims(lv, local);
	rc = check_signature(h, job, k, kname, args, nargs);
	if (rc == 0)
		rc = check_limits(h, job, k, dims, global, lv ? local : NULL, args, nargs);
	if (rc < 0)
		return rc;

	/* Buffers in, args set. */
	for (size_t i = 0; i < nargs && rc == 0; i++) {
		struct uarg *u = &args[i];
		size_t bytes = u->n * jd_dtype_size(u->dtype);
		void *dst;

		err = CL_SUCCESS;
		if (u->kind == JD_OPENCL_ARG_BUFFER || u->kind == JD_OPENCL_ARG_SIZE) {
			err = jd_cl_pool_get(&h->pool, bytes, mem_flags(u->access), &u->buf);
			if (err == CL_SUCCESS && u->kind == JD_OPENCL_ARG_SIZE) {
				err = jd_cl_buf_zero(&h->pool, u->buf, bytes);
			} else if (err == CL_SUCCESS) {
				dst = jd_cl_buf_begin_write(&h->pool, u->buf, bytes, &err);
				if (dst) {
					jd_cl_fill_array(u->value, u->dtype, dst, u->n);
					err = jd_cl_buf_end_write(&h->pool, u->buf);
				}
			}
			if (err != CL_SUCCESS) {
				rc = jd_cl_fail(job, err, "allocating a buffer");
				break;
			}
		}
		err = set_arg(k, (cl_uint)i, u);
		if (err != CL_SUCCESS) {
			char field[48];

			snprintf(field, sizeof(field), "params.args[%zu]", i);
			rc = fail_with(job, "invalid_args", field, -EINVAL, "%s for arg %zu",
				       jd_cl_err_name(err), i);
		}
	}
	if (rc == 0) {
		err = clEnqueueNDRangeKernel(h->q, k, (cl_uint)dims, NULL, global,
					     lv ? local : NULL, 0, NULL, &kev);
		if (err != CL_SUCCESS)
			rc = enqueue_error(job, err);
	}
	/* Every buffer the kernel may write comes back. */
	for (size_t i = 0; i < nargs && rc == 0; i++) {
		struct uarg *u = &args[i];
		cl_event ev = NULL;

		if (!u->buf || !(u->access & JD_OPENCL_WRITE))
			continue;
		jd_cl_buf_written(u->buf);
		err = jd_cl_buf_read(&h->pool, u->buf, &u->host, &ev);
		if (err != CL_SUCCESS) {
			rc = jd_cl_fail(job, err, "reading a buffer back");
			break;
		}
		if (ev) {
			if (last)
				clReleaseEvent(last);
			last = ev;
		}
	}
	if (rc == 0) {
		/* In order: the last read done means everything is. */
		err = clWaitForEvents(1, last ? &last : &kev);
		clGetEventInfo(kev, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof(status), &status,
			       NULL);
		if (status < 0)
			rc = jd_cl_fail(job, status, "the kernel failed");
		else if (err != CL_SUCCESS)
			rc = jd_cl_fail(job, err, "clWaitForEvents");
		else
			jd_cl_timing_from_event(&job->tm, kev);
	} else {
		clFinish(h->q); /* once, so that buffers go back idle */
	}
	if (rc == 0)
		rc = make_result(h, job, args, nargs, &b);
	if (last)
		clReleaseEvent(last);
	if (kev)
		clReleaseEvent(kev);
	release_args(h, args, nargs);
	return rc;
}
