/*
 * kernels.c - the built-in tasks on an OpenCL device.
 *
 * jobd-opencl-host only; single-threaded. Each runner first calls the
 * task's own check from workers/tasks.c, so params are validated exactly
 * as on a thread, then moves the arrays straight from the JSON (or base64)
 * into pooled device buffers, runs one kernel, and encodes the result in
 * the form the thread version would use.
 *
 * Same answers as the thread executor:
 *  - square, saxpy: bit-exact for every dtype. Integers wrap as unsigned
 *    arithmetic does; floats are IEEE operations in the same order, with
 *    FP_CONTRACT OFF so that a*x+y is not fused into an fma (the thread
 *    version is compiled without fma).
 *  - sum of int32/int64: exact (int64 wrap-around), by per-work-group
 *    partial sums in 64-bit integers finished on the host, since OpenCL 1.2
 *    has no 64-bit atomics.
 *  - sum of floats: a tree per work-group, partials added on the host in
 *    double. float32 values are accumulated in double when the device has
 *    fp64 (else in float). The order differs from the thread's sequential
 *    double sum, so the result agrees within a relative 1e-12 (float64
 *    data, or float32 with fp64) or 1e-5 (float32 without fp64) of the sum
 *    of absolute values - i.e. of the result, unless terms cancel.
 *  - sgemm: float32 with fused multiply-adds, summing over k in the same
 *    order: within a relative 1e-4 (in practice ~1e-6).
 *  - primes: exact (a segmented sieve, one work-item per segment).
 *
 * sgemm on CPU devices is register-blocked: each work-item computes an
 * 8x32 block of c (with 16-wide vectors; 6x16 with 8-wide ones) from one
 * row-panel of a and one column-panel of b, and work-items next to each
 * other in a work-group share the b panel in cache. On PoCL (2 cores,
 * AVX-512) that is ~150 GFLOP/s at n=512..1024 and ~130 at 2048, against
 * ~3.5 for a 16x16 local-memory tiled kernel: local memory is ordinary
 * memory on a CPU and the work-item loop does not vectorise. GPUs get the
 * tiled kernel.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"
#include "opencl/kernels.h"
#include "workers/tasks.h"

#define JSON_INT_MAX_I ((int64_t)9007199254740991) /* 2^53-1 */

/* clang-format off */
static const char builtin_source[] =
"/* jobd built-in kernels (opencl/kernels.c). */\n"
"#pragma OPENCL FP_CONTRACT OFF\n"
"#ifdef cl_khr_fp64\n"
"#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n"
"#define JD_FP64 1\n"
"#endif\n"
"\n"
"__kernel void jd_square_i32(__global int *x, uint n)\n"
"{\n"
"	size_t i = get_global_id(0);\n"
"	if (i < n) {\n"
"		uint v = as_uint(x[i]);\n"
"		x[i] = as_int(v * v);\n"
"	}\n"
"}\n"
"__kernel void jd_square_i64(__global long *x, uint n)\n"
"{\n"
"	size_t i = get_global_id(0);\n"
"	if (i < n) {\n"
"		ulong v = as_ulong(x[i]);\n"
"		x[i] = as_long(v * v);\n"
"	}\n"
"}\n"
"__kernel void jd_square_f32(__global float *x, uint n)\n"
"{\n"
"	size_t i = get_global_id(0);\n"
"	if (i < n) {\n"
"		float v = x[i];\n"
"		x[i] = v * v;\n"
"	}\n"
"}\n"
"#ifdef JD_FP64\n"
"__kernel void jd_square_f64(__global double *x, uint n)\n"
"{\n"
"	size_t i = get_global_id(0);\n"
"	if (i < n) {\n"
"		double v = x[i];\n"
"		x[i] = v * v;\n"
"	}\n"
"}\n"
"#endif\n"
"\n"
"__kernel void jd_saxpy_i32(int a, __global const int *x, __global int *y, uint n)\n"
"{\n"
"	size_t i = get_global_id(0);\n"
"	if (i < n)\n"
"		y[i] = as_int(as_uint(a) * as_uint(x[i]) + as_uint(y[i]));\n"
"}\n"
"__kernel void jd_saxpy_i64(long a, __global const long *x, __global long *y, uint n)\n"
"{\n"
"	size_t i = get_global_id(0);\n"
"	if (i < n)\n"
"		y[i] = as_long(as_ulong(a) * as_ulong(x[i]) + as_ulong(y[i]));\n"
"}\n"
"__kernel void jd_saxpy_f32(float a, __global const float *x, __global float *y, uint n)\n"
"{\n"
"	size_t i = get_global_id(0);\n"
"	if (i < n)\n"
"		y[i] = a * x[i] + y[i];\n"
"}\n"
"#ifdef JD_FP64\n"
"__kernel void jd_saxpy_f64(double a, __global const double *x, __global double *y, uint n)\n"
"{\n"
"	size_t i = get_global_id(0);\n"
"	if (i < n)\n"
"		y[i] = a * x[i] + y[i];\n"
"}\n"
"#endif\n"
"\n"
"/* Partial sums, one per work-group: each work-item adds a contiguous\n"
" * chunk (chunk > 0: CPUs, cache-friendly) or a strided slice (chunk == 0:\n"
" * GPUs, coalesced), then a tree in local memory. Local size: a power of 2. */\n"
"#define JD_SUM(NAME, T, ACC, CONV)                                          \\\n"
"__kernel void NAME(__global const T *x, uint n, uint chunk,                 \\\n"
"		   __global ACC *part, __local ACC *tmp)                     \\\n"
"{                                                                          \\\n"
"	size_t lid = get_local_id(0), lsz = get_local_size(0);              \\\n"
"	ACC acc = 0;                                                         \\\n"
"	if (chunk) {                                                         \\\n"
"		size_t lo = get_global_id(0) * (size_t)chunk;                \\\n"
"		size_t hi = min(lo + (size_t)chunk, (size_t)n);              \\\n"
"		for (size_t i = lo; i < hi; i++)                             \\\n"
"			acc += CONV(x[i]);                                   \\\n"
"	} else {                                                             \\\n"
"		for (size_t i = get_global_id(0); i < n; i += get_global_size(0)) \\\n"
"			acc += CONV(x[i]);                                   \\\n"
"	}                                                                    \\\n"
"	tmp[lid] = acc;                                                      \\\n"
"	barrier(CLK_LOCAL_MEM_FENCE);                                        \\\n"
"	for (size_t s = lsz / 2; s > 0; s >>= 1) {                           \\\n"
"		if (lid < s)                                                 \\\n"
"			tmp[lid] += tmp[lid + s];                            \\\n"
"		barrier(CLK_LOCAL_MEM_FENCE);                                \\\n"
"	}                                                                    \\\n"
"	if (lid == 0)                                                        \\\n"
"		part[get_group_id(0)] = tmp[0];                              \\\n"
"}\n"
"JD_SUM(jd_sum_i32, int, ulong, (ulong)(long))\n"
"JD_SUM(jd_sum_i64, long, ulong, (ulong))\n"
"JD_SUM(jd_sum_f32f, float, float, )\n"
"#ifdef JD_FP64\n"
"JD_SUM(jd_sum_f32, float, double, (double))\n"
"JD_SUM(jd_sum_f64, double, double, )\n"
"#endif\n"
"\n"
"/* c = a*b, row-major, register-blocked (CPUs): work-item (x, y) computes\n"
" * rows x*JD_RM.. and columns y*JD_CB.. of c; a block cut by the edge of\n"
" * c takes the plain path. Contraction is on here: a*b+c may fuse. */\n"
"#ifndef JD_RM\n"
"#define JD_RM 8\n"
"#endif\n"
"#ifndef JD_VW\n"
"#define JD_VW 16\n"
"#endif\n"
"#define JD_CAT_(a, b) a##b\n"
"#define JD_CAT(a, b) JD_CAT_(a, b)\n"
"#define JD_VT JD_CAT(float, JD_VW)\n"
"#define JD_VLOAD JD_CAT(vload, JD_VW)\n"
"#define JD_VSTORE JD_CAT(vstore, JD_VW)\n"
"#define JD_CB (2 * JD_VW)\n"
"__kernel void jd_sgemm_rb(uint M, uint N, uint K, __global const float *restrict A,\n"
"			  __global const float *restrict B, __global float *restrict C)\n"
"{\n"
"#pragma OPENCL FP_CONTRACT ON\n"
"	uint row = (uint)get_global_id(0) * JD_RM, col = (uint)get_global_id(1) * JD_CB;\n"
"	if (row >= M || col >= N)\n"
"		return;\n"
"	if (row + JD_RM <= M && col + JD_CB <= N) {\n"
"		JD_VT acc0[JD_RM], acc1[JD_RM];\n"
"		__global const float *a = A + (size_t)row * K;\n"
"		__global const float *b = B + col;\n"
"#pragma unroll\n"
"		for (int r = 0; r < JD_RM; r++) {\n"
"			acc0[r] = (JD_VT)(0.0f);\n"
"			acc1[r] = (JD_VT)(0.0f);\n"
"		}\n"
"		for (uint p = 0; p < K; p++) {\n"
"			JD_VT b0 = JD_VLOAD(0, b + (size_t)p * N);\n"
"			JD_VT b1 = JD_VLOAD(0, b + (size_t)p * N + JD_VW);\n"
"#pragma unroll\n"
"			for (int r = 0; r < JD_RM; r++) {\n"
"				JD_VT av = (JD_VT)(a[(size_t)r * K + p]);\n"
"				acc0[r] = av * b0 + acc0[r];\n"
"				acc1[r] = av * b1 + acc1[r];\n"
"			}\n"
"		}\n"
"#pragma unroll\n"
"		for (int r = 0; r < JD_RM; r++) {\n"
"			JD_VSTORE(acc0[r], 0, C + (size_t)(row + r) * N + col);\n"
"			JD_VSTORE(acc1[r], 0, C + (size_t)(row + r) * N + col + JD_VW);\n"
"		}\n"
"	} else {\n"
"		uint rmax = min((uint)JD_RM, M - row), cmax = min((uint)JD_CB, N - col);\n"
"		for (uint r = 0; r < rmax; r++) {\n"
"			for (uint c = 0; c < cmax; c++) {\n"
"				float s = 0.0f;\n"
"				for (uint p = 0; p < K; p++)\n"
"					s = A[(size_t)(row + r) * K + p] * B[(size_t)p * N + col + c] + s;\n"
"				C[(size_t)(row + r) * N + col + c] = s;\n"
"			}\n"
"		}\n"
"	}\n"
"}\n"
"\n"
"/* c = a*b in 16x16 tiles through local memory (GPUs). */\n"
"#define JD_TS 16\n"
"__kernel void jd_sgemm_tiled(uint M, uint N, uint K, __global const float *restrict A,\n"
"			     __global const float *restrict B, __global float *restrict C)\n"
"{\n"
"#pragma OPENCL FP_CONTRACT ON\n"
"	__local float as[JD_TS][JD_TS], bs[JD_TS][JD_TS];\n"
"	uint lx = get_local_id(0), ly = get_local_id(1);\n"
"	uint col = get_group_id(0) * JD_TS + lx, row = get_group_id(1) * JD_TS + ly;\n"
"	float acc = 0.0f;\n"
"	for (uint t = 0; t < K; t += JD_TS) {\n"
"		as[ly][lx] = row < M && t + lx < K ? A[(size_t)row * K + t + lx] : 0.0f;\n"
"		bs[ly][lx] = t + ly < K && col < N ? B[(size_t)(t + ly) * N + col] : 0.0f;\n"
"		barrier(CLK_LOCAL_MEM_FENCE);\n"
"#pragma unroll\n"
"		for (uint p = 0; p < JD_TS; p++)\n"
"			acc = as[ly][p] * bs[p][lx] + acc;\n"
"		barrier(CLK_LOCAL_MEM_FENCE);\n"
"	}\n"
"	if (row < M && col < N)\n"
"		C[(size_t)row * N + col] = acc;\n"
"}\n"
"\n"
"/* Primes below `below` among the odd numbers from 3: segment s covers the\n"
" * odd numbers 3 + 2*s*seg_len ..; work-item w sieves segments w, w+W, ...\n"
" * in its own seg_len bytes of scratch with the odd primes up to\n"
" * sqrt(below), and writes how many it found unmarked. below <= 2^31, so\n"
" * everything fits 32 bits. */\n"
"__kernel void jd_primes(uint below, __global const uint *primes, uint np, uint seg_len,\n"
"			uint nseg, __global uchar *scratch, __global uint *counts)\n"
"{\n"
"	size_t w = get_global_id(0), nw = get_global_size(0);\n"
"	__global uchar *seg = scratch + w * (size_t)seg_len;\n"
"	uint total = 0;\n"
"	for (size_t s = w; s < nseg; s += nw) {\n"
"		uint lo = 3 + 2 * (uint)s * seg_len;\n"
"		uint hi = below - lo > 2 * seg_len ? lo + 2 * seg_len : below;\n"
"		uint len = (hi - lo + 1) / 2;\n"
"		for (uint j = 0; j < len; j++)\n"
"			seg[j] = 0;\n"
"		for (uint i = 0; i < np; i++) {\n"
"			uint p = primes[i];\n"
"			if ((ulong)p * p >= hi)\n"
"				break;\n"
"			uint q = (lo + p - 1) / p * p;\n"
"			if (q < p * p)\n"
"				q = p * p;\n"
"			if (!(q & 1))\n"
"				q += p;\n"
"			for (; q < hi; q += 2 * p)\n"
"				seg[(q - lo) >> 1] = 1;\n"
"		}\n"
"		for (uint j = 0; j < len; j++)\n"
"			total += seg[j] == 0;\n"
"	}\n"
"	counts[w] = total;\n"
"}\n";
/* clang-format on */

/* sgemm_rb's block for the device's native float vector width: JD_RM rows
 * by two vectors of JD_VW columns, sized to the vector registers (8x32 for
 * 32 AVX-512 registers, 6x16 for 16 AVX2 ones). */
static void sgemm_block(const struct jd_cl_host *h, unsigned *vw, unsigned *rm)
{
	*vw = h->native_vw >= 16 ? 16 : h->native_vw >= 8 ? 8 : 4;
	*rm = *vw == 16 ? 8 : *vw == 8 ? 6 : 4;
}

/* Work-items per work-group of the 1-D kernels, before the device's and
 * the kernels' limits: enough to fill a GPU's SIMD lanes, few on a CPU
 * where a work-group is a loop on one thread. A power of 2 (sum's tree). */
#define LOCAL_CPU 64
#define LOCAL_GPU 256
/* sgemm_rb's work-group: 8 row blocks x 2 column blocks (measured best of
 * 16x1, 8x2, 4x4, 2x2 on PoCL at n = 512..2048). */
#define RB_LX 8
#define RB_LY 2
/* primes: bytes (odd numbers) per segment and the most work-items. */
#define PRIMES_SEG_CPU (128 * 1024)
#define PRIMES_SEG_GPU (16 * 1024)
#define PRIMES_WI_GPU  4096

static const char *const dtype_suffix[] = {
	[JD_INT32] = "i32",
	[JD_INT64] = "i64",
	[JD_FLOAT32] = "f32",
	[JD_FLOAT64] = "f64",
};

static int is_cpu(const struct jd_cl_host *h)
{
	return (h->dev.cl_type & CL_DEVICE_TYPE_GPU) == 0;
}

static size_t round_up(size_t x, size_t m)
{
	return (x + m - 1) / m * m;
}

static const cJSON *param(const cJSON *params, const char *name)
{
	return cJSON_GetObjectItemCaseSensitive(params, name);
}

static int is_b64(const cJSON *v)
{
	return cJSON_IsObject(v);
}

/* As workers/tasks.c resolves a task's dtype (its check already passed):
 * "dtype" when given, else the first encoded array's, else float64. */
static enum jd_dtype resolve_dtype(const cJSON *params, const cJSON *const *arrays, size_t n)
{
	const cJSON *d = param(params, "dtype");
	enum jd_dtype dt = JD_FLOAT64;

	if (cJSON_IsString(d) && jd_dtype_from_name(d->valuestring, &dt) == 0)
		return dt;
	for (size_t i = 0; i < n; i++) {
		const cJSON *o = cJSON_IsObject(arrays[i]) ? param(arrays[i], "dtype") : NULL;

		if (cJSON_IsString(o) && jd_dtype_from_name(o->valuestring, &dt) == 0)
			return dt;
	}
	return JD_FLOAT64;
}

static size_t array_len(const cJSON *v, enum jd_dtype dt)
{
	size_t n = 0;
	struct jd_error e;

	jd_array_check(v, &dt, "", &n, &e);
	return n;
}

static int no_fp64(struct jd_cl_host *h, struct jd_cl_job *job)
{
	jd_error_set(&job->err, "unsupported", "params.dtype",
		     "device %s (%s) has no double precision (cl_khr_fp64): float64 cannot run "
		     "here",
		     h->dev.jid, h->dev.name);
	return -ENOTSUP;
}

static int oom(struct jd_cl_job *job)
{
	jd_error_set(&job->err, "task_failed", NULL, "out of memory");
	return -ENOMEM;
}

static cl_int kernel(struct jd_cl_host *h, const char *name, cl_kernel *k)
{
	return jd_cl_program_kernel(h->builtins, name, k);
}

/* A pooled buffer filled from a checked array (n elements of dt). */
static cl_int upload(struct jd_cl_host *h, const cJSON *v, enum jd_dtype dt, size_t n,
		     cl_mem_flags flags, struct jd_cl_buf **out)
{
	size_t bytes = n * jd_dtype_size(dt);
	cl_int err = jd_cl_pool_get(&h->pool, bytes, flags, out);
	void *dst;

	if (err != CL_SUCCESS)
		return err;
	dst = jd_cl_buf_begin_write(&h->pool, *out, bytes, &err);
	if (!dst)
		return err;
	jd_cl_fill_array(v, dt, dst, n);
	return jd_cl_buf_end_write(&h->pool, *out);
}

/* An output the kernel writes whole: no zeroing needed. */
static cl_int output(struct jd_cl_host *h, size_t bytes, struct jd_cl_buf **out)
{
	cl_int err = jd_cl_pool_get(&h->pool, bytes, CL_MEM_WRITE_ONLY, out);

	if (err == CL_SUCCESS)
		(*out)->used = bytes;
	return err;
}

/* Set the kernel's arguments from a list of (size, pointer). */
struct karg {
	size_t size;
	const void *value;
};

static cl_int set_args(cl_kernel k, const struct karg *args, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		cl_int err = clSetKernelArg(k, i, args[i].size, args[i].value);

		if (err != CL_SUCCESS)
			return err;
	}
	return CL_SUCCESS;
}

/* Enqueue the kernel, read `out` back, wait for that, take the kernel's
 * timings. On success *host points at out's data until end_read. */
static cl_int launch(struct jd_cl_host *h, struct jd_cl_job *job, cl_kernel k, cl_uint dims,
		     const size_t *global, const size_t *local, struct jd_cl_buf *out, void **host)
{
	cl_event kev = NULL, rev = NULL;
	cl_int err;

	err = clEnqueueNDRangeKernel(h->q, k, dims, NULL, global, local, 0, NULL, &kev);
	if (err != CL_SUCCESS)
		return err;
	jd_cl_buf_written(out);
	err = jd_cl_buf_read(&h->pool, out, host, &rev);
	if (err == CL_SUCCESS)
		err = clWaitForEvents(1, rev ? &rev : &kev);
	if (err == CL_SUCCESS)
		jd_cl_timing_from_event(&job->tm, kev);
	if (rev)
		clReleaseEvent(rev);
	clReleaseEvent(kev);
	return err;
}

/* After a failure with commands possibly queued: let them drain before
 * the buffers go back to the pool. Once per failed job, never in a loop. */
static void drain(struct jd_cl_host *h)
{
	clFinish(h->q);
}

static void give_back(struct jd_cl_host *h, struct jd_cl_buf **bufs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (bufs[i] && bufs[i]->mapped)
			jd_cl_buf_end_read(&h->pool, bufs[i]);
		jd_cl_pool_put(&h->pool, bufs[i]);
		bufs[i] = NULL;
	}
}

/* {"<key>": the array}, refused like the thread version when JSON cannot
 * carry it. */
static int array_result(struct jd_cl_job *job, const struct jd_array *a, const char *key)
{
	cJSON *obj, *v;
	int rc = jd_cl_json_safe(job, a, key);

	if (rc < 0)
		return rc;
	obj = cJSON_CreateObject();
	v = jd_array_encode(a);
	if (!obj || !v) {
		cJSON_Delete(obj);
		cJSON_Delete(v);
		return oom(job);
	}
	cJSON_AddItemToObject(obj, key, v);
	job->result = obj;
	return 0;
}

static int number_result(struct jd_cl_job *job, const char *key, double v)
{
	cJSON *obj = cJSON_CreateObject();

	if (!obj || !cJSON_AddNumberToObject(obj, key, v)) {
		cJSON_Delete(obj);
		return oom(job);
	}
	job->result = obj;
	return 0;
}

/* ---- square and saxpy: one element per work-item ---- */

static int run_elementwise(struct jd_cl_host *h, struct jd_cl_job *job, int saxpy)
{
	const cJSON *arrays[2];
	struct jd_cl_buf *bufs[2] = { NULL, NULL };
	enum jd_dtype dt;
	size_t n, global, local = h->local_1d;
	char kname[32];
	cl_kernel k;
	cl_int err;
	cl_uint n32;
	void *host = NULL;
	int rc, b64;
	union {
		cl_int i32;
		cl_long i64;
		cl_float f32;
		cl_double f64;
	} a;

	arrays[0] = param(job->params, saxpy ? "x" : "values");
	arrays[1] = saxpy ? param(job->params, "y") : NULL;
	dt = resolve_dtype(job->params, arrays, saxpy ? 2 : 1);
	if (dt == JD_FLOAT64 && !h->dev.fp64)
		return no_fp64(h, job);
	n = array_len(arrays[0], dt);
	b64 = is_b64(arrays[0]) || (saxpy && is_b64(arrays[1]));
	if (n == 0) {
		struct jd_array empty = { .dtype = dt, .b64 = b64, .n = 0, .data = NULL };

		return array_result(job, &empty, "values");
	}
	snprintf(kname, sizeof(kname), "jd_%s_%s", saxpy ? "saxpy" : "square", dtype_suffix[dt]);
	err = kernel(h, kname, &k);
	if (err != CL_SUCCESS)
		return jd_cl_fail(job, err, kname);
	n32 = (cl_uint)n;
	if (saxpy) {
		double av = param(job->params, "a")->valuedouble;
		size_t asize = jd_dtype_size(dt);

		switch (dt) {
		case JD_INT32: a.i32 = (cl_int)av; break;
		case JD_INT64: a.i64 = (cl_long)av; break;
		case JD_FLOAT32: a.f32 = (cl_float)av; break;
		case JD_FLOAT64: a.f64 = av; break;
		}
		err = upload(h, arrays[0], dt, n, CL_MEM_READ_ONLY, &bufs[0]);
		if (err == CL_SUCCESS)
			err = upload(h, arrays[1], dt, n, CL_MEM_READ_WRITE, &bufs[1]);
		if (err == CL_SUCCESS) {
			struct karg args[] = { { asize, &a },
					       { sizeof(cl_mem), &bufs[0]->mem },
					       { sizeof(cl_mem), &bufs[1]->mem },
					       { sizeof(n32), &n32 } };

			err = set_args(k, args, 4);
		}
	} else {
		err = upload(h, arrays[0], dt, n, CL_MEM_READ_WRITE, &bufs[1]);
		if (err == CL_SUCCESS) {
			struct karg args[] = { { sizeof(cl_mem), &bufs[1]->mem },
					       { sizeof(n32), &n32 } };

			err = set_args(k, args, 2);
		}
	}
	global = round_up(n, local);
	if (err == CL_SUCCESS)
		err = launch(h, job, k, 1, &global, &local, bufs[1], &host);
	if (err != CL_SUCCESS) {
		drain(h);
		give_back(h, bufs, 2);
		return jd_cl_fail(job, err, kname);
	}
	struct jd_array out = { .dtype = dt, .b64 = b64, .n = n, .data = host };

	rc = array_result(job, &out, "values");
	give_back(h, bufs, 2);
	return rc;
}

static int run_square(struct jd_cl_host *h, struct jd_cl_job *job)
{
	return run_elementwise(h, job, 0);
}

static int run_saxpy(struct jd_cl_host *h, struct jd_cl_job *job)
{
	return run_elementwise(h, job, 1);
}

/* ---- sum ---- */

static int run_sum(struct jd_cl_host *h, struct jd_cl_job *job)
{
	const cJSON *values = param(job->params, "values");
	struct jd_cl_buf *bufs[2] = { NULL, NULL };
	enum jd_dtype dt = resolve_dtype(job->params, &values, 1);
	size_t n, local = h->local_1d, groups, global, acc_size;
	cl_uint n32, chunk32;
	const char *kname;
	cl_kernel k;
	cl_int err;
	void *host = NULL;
	int rc;

	if (dt == JD_FLOAT64 && !h->dev.fp64)
		return no_fp64(h, job);
	n = array_len(values, dt);
	if (n == 0)
		return number_result(job, "sum", 0);
	switch (dt) {
	case JD_INT32: kname = "jd_sum_i32", acc_size = 8; break;
	case JD_INT64: kname = "jd_sum_i64", acc_size = 8; break;
	case JD_FLOAT32:
		kname = h->dev.fp64 ? "jd_sum_f32" : "jd_sum_f32f";
		acc_size = h->dev.fp64 ? 8 : 4;
		break;
	default: kname = "jd_sum_f64", acc_size = 8; break;
	}
	err = kernel(h, kname, &k);
	if (err != CL_SUCCESS)
		return jd_cl_fail(job, err, kname);
	/* CPU: a few work-groups, each work-item a contiguous chunk. GPU:
	 * enough groups to fill it, strided. */
	groups = (n + local - 1) / local;
	if (is_cpu(h)) {
		if (groups > 2 * (size_t)h->dev.compute_units)
			groups = 2 * (size_t)h->dev.compute_units;
		if (groups == 0)
			groups = 1;
		chunk32 = (cl_uint)((n + groups * local - 1) / (groups * local));
	} else {
		if (groups > 8 * (size_t)h->dev.compute_units)
			groups = 8 * (size_t)h->dev.compute_units;
		if (groups == 0)
			groups = 1;
		chunk32 = 0;
	}
	global = groups * local;
	n32 = (cl_uint)n;
	err = upload(h, values, dt, n, CL_MEM_READ_ONLY, &bufs[0]);
	if (err == CL_SUCCESS)
		err = output(h, groups * acc_size, &bufs[1]);
	if (err == CL_SUCCESS) {
		struct karg args[] = { { sizeof(cl_mem), &bufs[0]->mem },
				       { sizeof(n32), &n32 },
				       { sizeof(chunk32), &chunk32 },
				       { sizeof(cl_mem), &bufs[1]->mem },
				       { local * acc_size, NULL } };

		err = set_args(k, args, 5);
	}
	if (err == CL_SUCCESS)
		err = launch(h, job, k, 1, &global, &local, bufs[1], &host);
	if (err != CL_SUCCESS) {
		drain(h);
		give_back(h, bufs, 2);
		return jd_cl_fail(job, err, kname);
	}
	if (dt == JD_INT32 || dt == JD_INT64) {
		uint64_t acc = 0;

		for (size_t g = 0; g < groups; g++)
			acc += ((const uint64_t *)host)[g];
		give_back(h, bufs, 2);
		int64_t isum = (int64_t)acc;

		if (isum > JSON_INT_MAX_I || isum < -JSON_INT_MAX_I) {
			jd_error_set(&job->err, "task_failed", "result.sum",
				     "the sum %lld is beyond +-(2^53-1) and cannot be sent exactly "
				     "as a JSON number",
				     (long long)isum);
			return -ERANGE;
		}
		return number_result(job, "sum", (double)isum);
	}
	double total = 0;

	for (size_t g = 0; g < groups; g++)
		total += acc_size == 8 ? ((const double *)host)[g] : ((const float *)host)[g];
	give_back(h, bufs, 2);
	if (!isfinite(total)) {
		jd_error_set(&job->err, "task_failed", "result.sum",
			     "the sum is not finite (NaN or infinity), which JSON cannot carry");
		return -ERANGE;
	}
	rc = number_result(job, "sum", total);
	return rc;
}

/* ---- sgemm ---- */

static int run_sgemm(struct jd_cl_host *h, struct jd_cl_job *job)
{
	const cJSON *av = param(job->params, "a"), *bv = param(job->params, "b");
	struct jd_cl_buf *bufs[3] = { NULL, NULL, NULL };
	cl_uint m = (cl_uint)param(job->params, "m")->valuedouble;
	cl_uint n = (cl_uint)param(job->params, "n")->valuedouble;
	cl_uint kk = (cl_uint)param(job->params, "k")->valuedouble;
	size_t global[2], local[2];
	const char *kname = is_cpu(h) ? "jd_sgemm_rb" : "jd_sgemm_tiled";
	size_t max_wg = 0;
	cl_kernel k;
	cl_int err;
	void *host = NULL;
	int rc;

	err = kernel(h, kname, &k);
	if (err == CL_SUCCESS)
		err = clGetKernelWorkGroupInfo(k, h->dev.id, CL_KERNEL_WORK_GROUP_SIZE,
					       sizeof(max_wg), &max_wg, NULL);
	if (err == CL_SUCCESS && !is_cpu(h) && max_wg < 256) {
		kname = "jd_sgemm_rb"; /* a small GPU: no 16x16 work-groups */
		err = kernel(h, kname, &k);
		if (err == CL_SUCCESS)
			err = clGetKernelWorkGroupInfo(k, h->dev.id, CL_KERNEL_WORK_GROUP_SIZE,
						       sizeof(max_wg), &max_wg, NULL);
	}
	if (err != CL_SUCCESS)
		return jd_cl_fail(job, err, kname);
	if (strcmp(kname, "jd_sgemm_tiled") == 0) {
		local[0] = local[1] = 16;
		global[0] = round_up(n, 16);
		global[1] = round_up(m, 16);
	} else {
		unsigned vw, rm, cb;

		sgemm_block(h, &vw, &rm);
		cb = 2 * vw;

		local[0] = RB_LX * RB_LY <= max_wg ? RB_LX : 1;
		local[1] = RB_LX * RB_LY <= max_wg ? RB_LY : 1;
		global[0] = round_up((m + rm - 1) / rm, local[0]);
		global[1] = round_up((n + cb - 1) / cb, local[1]);
	}
	err = upload(h, av, JD_FLOAT32, (size_t)m * kk, CL_MEM_READ_ONLY, &bufs[0]);
	if (err == CL_SUCCESS)
		err = upload(h, bv, JD_FLOAT32, (size_t)kk * n, CL_MEM_READ_ONLY, &bufs[1]);
	if (err == CL_SUCCESS)
		err = output(h, (size_t)m * n * sizeof(float), &bufs[2]);
	if (err == CL_SUCCESS) {
		struct karg args[] = { { sizeof(m), &m },
				       { sizeof(n), &n },
				       { sizeof(kk), &kk },
				       { sizeof(cl_mem), &bufs[0]->mem },
				       { sizeof(cl_mem), &bufs[1]->mem },
				       { sizeof(cl_mem), &bufs[2]->mem } };

		err = set_args(k, args, 6);
	}
	if (err == CL_SUCCESS)
		err = launch(h, job, k, 2, global, local, bufs[2], &host);
	if (err != CL_SUCCESS) {
		drain(h);
		give_back(h, bufs, 3);
		return jd_cl_fail(job, err, kname);
	}
	struct jd_array c = { .dtype = JD_FLOAT32,
			      .b64 = is_b64(av) || is_b64(bv),
			      .n = (size_t)m * n,
			      .data = host };

	rc = array_result(job, &c, "c");
	give_back(h, bufs, 3);
	return rc;
}

/* ---- primes ---- */

/* The odd primes up to `root` (<= 46341), by a plain sieve: *np of them in
 * a malloc'd array, NULL on allocation failure. */
static cl_uint *small_primes(cl_uint root, cl_uint *np)
{
	unsigned char *composite = calloc((size_t)root + 1, 1);
	cl_uint *p = malloc(((size_t)root / 2 + 1) * sizeof(*p));

	*np = 0;
	if (!composite || !p) {
		free(composite);
		free(p);
		return NULL;
	}
	for (cl_uint i = 3; i <= root; i += 2) {
		if (composite[i])
			continue;
		p[(*np)++] = i;
		for (cl_uint q = i * i; q <= root; q += 2 * i)
			composite[q] = 1;
	}
	free(composite);
	return p;
}

static int run_primes(struct jd_cl_host *h, struct jd_cl_job *job)
{
	uint64_t below = (uint64_t)param(job->params, "below")->valuedouble;
	struct jd_cl_buf *bufs[3] = { NULL, NULL, NULL };
	cl_uint root = 0, np = 0, seg_len, nseg, below32;
	size_t odds, global, local, workers;
	cl_uint *primes;
	cl_kernel k;
	cl_int err;
	void *host = NULL, *dst;
	uint64_t count;

	if (below <= 2)
		return number_result(job, "count", 0);
	odds = (size_t)(below - 2) / 2; /* odd numbers in [3, below) */
	if (odds == 0)
		return number_result(job, "count", 1);
	while ((uint64_t)(root + 1) * (root + 1) < below)
		root++;
	err = kernel(h, "jd_primes", &k);
	if (err != CL_SUCCESS)
		return jd_cl_fail(job, err, "jd_primes");
	primes = small_primes(root, &np);
	if (!primes)
		return oom(job);
	if (is_cpu(h)) {
		seg_len = PRIMES_SEG_CPU;
		nseg = (cl_uint)((odds + seg_len - 1) / seg_len);
		local = 1;
		workers = (size_t)h->dev.compute_units * 8;
		if (workers > nseg)
			workers = nseg;
		global = workers;
	} else {
		seg_len = PRIMES_SEG_GPU;
		nseg = (cl_uint)((odds + seg_len - 1) / seg_len);
		local = h->local_1d < 64 ? h->local_1d : 64;
		workers = round_up(nseg, local);
		if (workers > PRIMES_WI_GPU)
			workers = PRIMES_WI_GPU;
		global = workers;
	}
	below32 = (cl_uint)below;
	err = jd_cl_pool_get(&h->pool, np * sizeof(cl_uint), CL_MEM_READ_ONLY, &bufs[0]);
	if (err == CL_SUCCESS) {
		dst = jd_cl_buf_begin_write(&h->pool, bufs[0], np * sizeof(cl_uint), &err);
		if (dst) {
			memcpy(dst, primes, np * sizeof(cl_uint));
			err = jd_cl_buf_end_write(&h->pool, bufs[0]);
		}
	}
	free(primes);
	if (err == CL_SUCCESS)
		err = jd_cl_pool_get(&h->pool, workers * seg_len, CL_MEM_READ_WRITE, &bufs[1]);
	if (err == CL_SUCCESS) {
		bufs[1]->used = workers * seg_len; /* scratch: the kernel clears it */
		err = output(h, workers * sizeof(cl_uint), &bufs[2]);
	}
	if (err == CL_SUCCESS) {
		struct karg args[] = { { sizeof(below32), &below32 },
				       { sizeof(cl_mem), &bufs[0]->mem },
				       { sizeof(np), &np },
				       { sizeof(seg_len), &seg_len },
				       { sizeof(nseg), &nseg },
				       { sizeof(cl_mem), &bufs[1]->mem },
				       { sizeof(cl_mem), &bufs[2]->mem } };

		err = set_args(k, args, 7);
	}
	if (err == CL_SUCCESS) {
		jd_cl_buf_written(bufs[1]);
		err = launch(h, job, k, 1, &global, &local, bufs[2], &host);
	}
	if (err != CL_SUCCESS) {
		drain(h);
		give_back(h, bufs, 3);
		return jd_cl_fail(job, err, "jd_primes");
	}
	count = 1; /* 2 */
	for (size_t w = 0; w < workers; w++)
		count += ((const cl_uint *)host)[w];
	give_back(h, bufs, 3);
	return number_result(job, "count", (double)count);
}

/* ---- the table, set-up and warm-up ---- */

static const struct {
	const char *name;
	int (*run)(struct jd_cl_host *h, struct jd_cl_job *job);
} runners[] = {
	{ "square", run_square }, { "saxpy", run_saxpy },   { "sum", run_sum },
	{ "sgemm", run_sgemm },   { "primes", run_primes },
};

int jd_cl_builtin_has(const char *task)
{
	for (size_t i = 0; i < sizeof(runners) / sizeof(runners[0]); i++)
		if (strcmp(runners[i].name, task) == 0)
			return 1;
	return 0;
}

int jd_cl_builtin_run(struct jd_cl_host *h, const char *task, struct jd_cl_job *job)
{
	const struct jd_task *t = jd_task_find(task);
	int rc;

	for (size_t i = 0; t && i < sizeof(runners) / sizeof(runners[0]); i++) {
		if (strcmp(runners[i].name, task) != 0)
			continue;
		rc = t->check(job->params, &job->err);
		if (rc < 0)
			return rc;
		if (!h->builtins) {
			jd_error_set(&job->err, "executor_error", NULL,
				     "the built-in kernels are not available on %s: %s", h->dev.jid,
				     h->builtins_error);
			return -ENOTSUP;
		}
		job->tm.have_build = 1;
		job->tm.build_ms = 0;
		job->tm.cache = "memory";
		return runners[i].run(h, job);
	}
	jd_error_set(&job->err, "executor_error", NULL, "task \"%s\" cannot run on OpenCL", task);
	return -EPROTO;
}

/* Tiny jobs that touch every kernel at the work-group sizes jobs use. */
static const struct {
	const char *task, *params;
	int fp64; /* needs cl_khr_fp64 */
} warmups[] = {
	{ "square", "{\"values\":[1,2,3],\"dtype\":\"int32\"}", 0 },
	{ "square", "{\"values\":[1,2,3],\"dtype\":\"int64\"}", 0 },
	{ "square", "{\"values\":[1,2,3],\"dtype\":\"float32\"}", 0 },
	{ "square", "{\"values\":[1,2,3],\"dtype\":\"float64\"}", 1 },
	{ "saxpy", "{\"a\":2,\"x\":[1,2],\"y\":[3,4],\"dtype\":\"int32\"}", 0 },
	{ "saxpy", "{\"a\":2,\"x\":[1,2],\"y\":[3,4],\"dtype\":\"int64\"}", 0 },
	{ "saxpy", "{\"a\":2,\"x\":[1,2],\"y\":[3,4],\"dtype\":\"float32\"}", 0 },
	{ "saxpy", "{\"a\":2,\"x\":[1,2],\"y\":[3,4],\"dtype\":\"float64\"}", 1 },
	{ "sum", "{\"values\":[1,2,3],\"dtype\":\"int32\"}", 0 },
	{ "sum", "{\"values\":[1,2,3],\"dtype\":\"int64\"}", 0 },
	{ "sum", "{\"values\":[1,2,3],\"dtype\":\"float32\"}", 0 },
	{ "sum", "{\"values\":[1,2,3],\"dtype\":\"float64\"}", 1 },
	{ "primes", "{\"below\":1000}", 0 },
};

/* sgemm big enough for the register-blocked path and its edges. */
static cJSON *sgemm_warmup_params(void)
{
	char buf[4096];
	int len = snprintf(buf, sizeof(buf), "{\"m\":9,\"n\":33,\"k\":2,\"a\":[");

	for (int i = 0; i < 18; i++)
		len += snprintf(buf + len, sizeof(buf) - (size_t)len, "%s1", i ? "," : "");
	len += snprintf(buf + len, sizeof(buf) - (size_t)len, "],\"b\":[");
	for (int i = 0; i < 66; i++)
		len += snprintf(buf + len, sizeof(buf) - (size_t)len, "%s%d", i ? "," : "", i);
	snprintf(buf + len, sizeof(buf) - (size_t)len, "]}");
	return cJSON_Parse(buf);
}

static void warm(struct jd_cl_host *h, const char *task, cJSON *params)
{
	struct jd_cl_job job;
	int rc;

	memset(&job, 0, sizeof(job));
	job.params = params;
	rc = jd_cl_builtin_run(h, task, &job);
	if (rc < 0)
		jd_warn("opencl %s: warm-up %s failed: %s: %s", h->dev.jid, task, job.err.type,
			job.err.message);
	cJSON_Delete(job.result);
	free(job.long_message);
}

void jd_cl_builtins_init(struct jd_cl_host *h, struct jd_cl_build *build)
{
	char options[256];
	struct jd_cl_build b;
	int rc;

	unsigned vw, rm;

	sgemm_block(h, &vw, &rm);
	snprintf(options, sizeof(options), "-DJD_VW=%u -DJD_RM=%u", vw, rm);
	rc = jd_cl_cache_get(&h->cache, builtin_source, options, &h->builtins, &b);
	if (build)
		*build = b;
	if (rc < 0) {
		snprintf(h->builtins_error, sizeof(h->builtins_error), "build failed: %s",
			 jd_cl_err_name(b.cl_err));
		jd_err("opencl %s: the built-in kernels do not build (%s):\n%s", h->dev.jid,
		       jd_cl_err_name(b.cl_err), b.log ? b.log : "");
		h->builtins = NULL;
		free(b.log);
		if (build)
			build->log = NULL;
		return;
	}
	h->builtins->pinned = 1;
	/* Work-group size of the 1-D kernels: the smallest any of them
	 * allows, as a power of 2. */
	size_t local = is_cpu(h) ? LOCAL_CPU : LOCAL_GPU;
	static const char *const one_d[] = { "jd_square_i32", "jd_saxpy_f32", "jd_sum_i32",
					     "jd_sum_f32f", "jd_primes" };

	if (local > h->dev.max_work_group_size)
		local = h->dev.max_work_group_size;
	for (size_t i = 0; i < sizeof(one_d) / sizeof(one_d[0]); i++) {
		cl_kernel k;
		size_t max = 0;

		if (kernel(h, one_d[i], &k) == CL_SUCCESS &&
		    clGetKernelWorkGroupInfo(k, h->dev.id, CL_KERNEL_WORK_GROUP_SIZE, sizeof(max),
					     &max, NULL) == CL_SUCCESS &&
		    max > 0 && max < local)
			local = max;
	}
	h->local_1d = 1;
	while (h->local_1d * 2 <= local)
		h->local_1d *= 2;

	for (size_t i = 0; i < sizeof(warmups) / sizeof(warmups[0]); i++) {
		cJSON *p;

		if (warmups[i].fp64 && !h->dev.fp64)
			continue;
		p = cJSON_Parse(warmups[i].params);
		if (p)
			warm(h, warmups[i].task, p);
		cJSON_Delete(p);
	}
	cJSON *p = sgemm_warmup_params();

	if (p)
		warm(h, "sgemm", p);
	cJSON_Delete(p);
	/* The binary now carries what PoCL specialised for these sizes. */
	jd_cl_cache_save(&h->cache, h->builtins);
}
