/*
 * ocl_anchor.c - the plain OpenCL host program that jobd's OpenCL figures
 * are measured against.
 *
 * Mode `square` (figure h): on the first CPU device of the first platform
 * that has one (PoCL here; --gpu takes the first GPU instead), one context,
 * one in-order queue, one program with the same square kernel as jobd's
 * built-in (opencl/kernels.c, jd_square_i32), one 10-int buffer. Then, N
 * times: write the 10 ints (non-blocking), enqueue the kernel, read them
 * back (blocking), check the squares. Each iteration is timed with
 * CLOCK_MONOTONIC. Nothing is allocated, built or created in the loop:
 * this is the least any host program pays to run a tiny kernel on this
 * device, one at a time.
 *
 *   {"mode":"square","device":"...","iterations":N,"seconds":S,
 *    "iterations_per_s":R,"p50_us":..,"p90_us":..,"p99_us":..,"max_us":..,
 *    "mean_us":..,"profiling":false,"native_vector_width_float":W}
 *
 * Mode `sgemm` (a cross-check for figure i): builds --source FILE with
 * --options, runs --kernel on an n x n x n float32 product with the
 * register-blocked launch geometry jobd uses for that kernel on CPUs
 * (work-item = --rm rows x 2*--vw columns, work-group --lx x --ly), with
 * profiling on, --repeat times after one untimed run, and reports the
 * kernel time from the events:
 *
 *   {"mode":"sgemm","device":"...","n":N,"kernel_ms":[...],
 *    "kernel_ms_median":..,"gflops":..}
 *
 * Usage:
 *   ocl_anchor [square] [--iterations N] [--warmup W] [--profiling] [--gpu]
 *   ocl_anchor sgemm --source FILE [--kernel NAME] [--options STR] [--n N]
 *              [--rm R] [--vw V] [--lx X] [--ly Y] [--repeat R] [--gpu]
 *
 * One JSON line on stdout; {"error":"..."} and exit 1 on failure; exit 2
 * on bad usage.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NVALUES 10

/* The same kernel as jobd's jd_square_i32 (opencl/kernels.c). */
static const char square_src[] = "__kernel void jd_square_i32(__global int *x, uint n)\n"
				 "{\n"
				 "	size_t i = get_global_id(0);\n"
				 "	if (i < n) {\n"
				 "		uint v = as_uint(x[i]);\n"
				 "		x[i] = as_int(v * v);\n"
				 "	}\n"
				 "}\n";

static const char *mode_name = "square";

static void fail(const char *what, cl_int err) __attribute__((noreturn));

static void fail(const char *what, cl_int err)
{
	fprintf(stderr, "ocl_anchor: %s: CL error %d\n", what, (int)err);
	printf("{\"mode\":\"%s\",\"error\":\"%s: CL error %d\"}\n", mode_name, what, (int)err);
	fflush(stdout);
	exit(1);
}

static void failmsg(const char *msg) __attribute__((noreturn));

static void failmsg(const char *msg)
{
	fprintf(stderr, "ocl_anchor: %s\n", msg);
	printf("{\"mode\":\"%s\",\"error\":\"", mode_name);
	for (const char *p = msg; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if ((unsigned char)*p < 0x20)
			printf("\\u%04x", (unsigned char)*p);
		else
			putchar(*p);
	}
	printf("\"}\n");
	fflush(stdout);
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted nanoseconds, in microseconds (as
 * loadgen computes its percentiles). */
static double pct_us(const uint64_t *v, size_t n, double p)
{
	size_t k = (size_t)((p / 100.0) * (double)n + 0.999999);

	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return (double)v[k - 1] / 1000.0;
}

/* The first device of `type` on the first platform that has one. */
static cl_device_id pick_device(cl_device_type type, char *name, size_t namesz)
{
	cl_platform_id plats[16];
	cl_uint np = 0;
	cl_int err = clGetPlatformIDs(16, plats, &np);

	if (err != CL_SUCCESS)
		fail("clGetPlatformIDs", err);
	for (cl_uint i = 0; i < np && i < 16; i++) {
		cl_device_id dev;
		cl_uint nd = 0;

		if (clGetDeviceIDs(plats[i], type, 1, &dev, &nd) == CL_SUCCESS && nd > 0) {
			if (clGetDeviceInfo(dev, CL_DEVICE_NAME, namesz - 1, name, NULL) !=
			    CL_SUCCESS)
				snprintf(name, namesz, "?");
			name[namesz - 1] = '\0';
			for (char *p = name; *p; p++)
				if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
					*p = ' ';
			return dev;
		}
	}
	failmsg(type == CL_DEVICE_TYPE_GPU ? "no OpenCL GPU device" : "no OpenCL CPU device");
}

static cl_program build(cl_context ctx, cl_device_id dev, const char *src, const char *options)
{
	cl_int err;
	cl_program p = clCreateProgramWithSource(ctx, 1, &src, NULL, &err);

	if (err != CL_SUCCESS)
		fail("clCreateProgramWithSource", err);
	err = clBuildProgram(p, 1, &dev, options, NULL, NULL);
	if (err != CL_SUCCESS) {
		char log[4096] = "";

		clGetProgramBuildInfo(p, dev, CL_PROGRAM_BUILD_LOG, sizeof(log) - 1, log, NULL);
		fprintf(stderr, "%s\n", log);
		fail("clBuildProgram", err);
	}
	return p;
}

static long parse_long(const char *name, const char *s, long lo, long hi)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (end == s || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "ocl_anchor: bad %s '%s' (%ld..%ld)\n", name, s, lo, hi);
		exit(2);
	}
	return v;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ocl_anchor [square] [--iterations N] [--warmup W] [--profiling] [--gpu]\n"
		"       ocl_anchor sgemm --source FILE [--kernel NAME] [--options STR] [--n N]\n"
		"                  [--rm R] [--vw V] [--lx X] [--ly Y] [--repeat R] [--gpu]\n");
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long len;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0) {
		if (f)
			fclose(f);
		failmsg("cannot read --source");
	}
	buf = malloc((size_t)len + 1);
	if (buf == NULL || fread(buf, 1, (size_t)len, f) != (size_t)len)
		failmsg("cannot read --source");
	buf[len] = '\0';
	fclose(f);
	return buf;
}

static int run_square(cl_device_id dev, const char *dname, long iters, long warmup, int profiling)
{
	cl_int err, host[NVALUES];
	cl_uint n = NVALUES;
	size_t global = NVALUES;
	cl_context ctx = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
	cl_command_queue q;
	cl_program prog;
	cl_kernel k;
	cl_mem buf;
	uint64_t *lat, t0, t1;
	cl_uint vw = 0;

	if (err != CL_SUCCESS)
		fail("clCreateContext", err);
	if (clGetDeviceInfo(dev, CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT, sizeof(vw), &vw, NULL) !=
	    CL_SUCCESS)
		vw = 0;
	q = clCreateCommandQueue(ctx, dev, profiling ? CL_QUEUE_PROFILING_ENABLE : 0, &err);
	if (err != CL_SUCCESS)
		fail("clCreateCommandQueue", err);
	prog = build(ctx, dev, square_src, "");
	k = clCreateKernel(prog, "jd_square_i32", &err);
	if (err != CL_SUCCESS)
		fail("clCreateKernel", err);
	buf = clCreateBuffer(ctx, CL_MEM_READ_WRITE, sizeof(host), NULL, &err);
	if (err != CL_SUCCESS)
		fail("clCreateBuffer", err);
	err = clSetKernelArg(k, 0, sizeof(buf), &buf);
	if (err == CL_SUCCESS)
		err = clSetKernelArg(k, 1, sizeof(n), &n);
	if (err != CL_SUCCESS)
		fail("clSetKernelArg", err);
	lat = malloc((size_t)iters * sizeof(*lat));
	if (lat == NULL)
		failmsg("out of memory");

	t0 = 0;
	for (long it = -warmup; it < iters; it++) {
		uint64_t s;

		if (it == 0)
			t0 = now_ns();
		s = now_ns();
		for (int i = 0; i < NVALUES; i++)
			host[i] = (cl_int)(i + 1 + (it & 7));
		err = clEnqueueWriteBuffer(q, buf, CL_FALSE, 0, sizeof(host), host, 0, NULL, NULL);
		if (err != CL_SUCCESS)
			fail("clEnqueueWriteBuffer", err);
		err = clEnqueueNDRangeKernel(q, k, 1, NULL, &global, NULL, 0, NULL, NULL);
		if (err != CL_SUCCESS)
			fail("clEnqueueNDRangeKernel", err);
		err = clEnqueueReadBuffer(q, buf, CL_TRUE, 0, sizeof(host), host, 0, NULL, NULL);
		if (err != CL_SUCCESS)
			fail("clEnqueueReadBuffer", err);
		if (it >= 0)
			lat[it] = now_ns() - s;
		for (int i = 0; i < NVALUES; i++) {
			cl_int v = (cl_int)(i + 1 + (it & 7));

			if (host[i] != v * v)
				failmsg("wrong square read back");
		}
	}
	t1 = now_ns();

	{
		double secs = (double)(t1 - t0) / 1e9, sum = 0;

		for (long i = 0; i < iters; i++)
			sum += (double)lat[i];
		qsort(lat, (size_t)iters, sizeof(*lat), cmp_u64);
		printf("{\"mode\":\"square\",\"device\":\"%s\",\"values\":%d,\"iterations\":%ld,"
		       "\"warmup\":%ld,\"seconds\":%.6f,\"iterations_per_s\":%.1f,"
		       "\"p50_us\":%.2f,\"p90_us\":%.2f,\"p99_us\":%.2f,\"max_us\":%.2f,"
		       "\"mean_us\":%.2f,\"profiling\":%s,\"native_vector_width_float\":%u}\n",
		       dname, NVALUES, iters, warmup, secs, secs > 0 ? (double)iters / secs : 0.0,
		       pct_us(lat, (size_t)iters, 50), pct_us(lat, (size_t)iters, 90),
		       pct_us(lat, (size_t)iters, 99), pct_us(lat, (size_t)iters, 100),
		       sum / (double)iters / 1000.0, profiling ? "true" : "false", (unsigned)vw);
	}
	free(lat);
	clReleaseMemObject(buf);
	clReleaseKernel(k);
	clReleaseProgram(prog);
	clReleaseCommandQueue(q);
	clReleaseContext(ctx);
	return 0;
}

static int run_sgemm(cl_device_id dev, const char *dname, const char *srcpath, const char *kname,
		     const char *options, cl_uint n, unsigned rm, unsigned vw, size_t lx, size_t ly,
		     int repeat)
{
	cl_int err;
	char *src = read_file(srcpath);
	size_t elems = (size_t)n * n, global[2], local[2] = { lx, ly };
	float *a = malloc(elems * sizeof(float)), *b = malloc(elems * sizeof(float));
	float *c = malloc(elems * sizeof(float));
	cl_context ctx;
	cl_command_queue q;
	cl_program prog;
	cl_kernel k;
	cl_mem ma, mb, mc;
	double *ms = malloc((size_t)repeat * sizeof(double)), med;
	uint32_t seed = 12345;

	if (!a || !b || !c || !ms)
		failmsg("out of memory");
	for (size_t i = 0; i < elems; i++) {
		seed = seed * 1664525u + 1013904223u;
		a[i] = (float)(seed >> 8) / 16777216.0f - 0.5f;
		seed = seed * 1664525u + 1013904223u;
		b[i] = (float)(seed >> 8) / 16777216.0f - 0.5f;
	}
	ctx = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
	if (err != CL_SUCCESS)
		fail("clCreateContext", err);
	q = clCreateCommandQueue(ctx, dev, CL_QUEUE_PROFILING_ENABLE, &err);
	if (err != CL_SUCCESS)
		fail("clCreateCommandQueue", err);
	prog = build(ctx, dev, src, options);
	k = clCreateKernel(prog, kname, &err);
	if (err != CL_SUCCESS)
		fail("clCreateKernel", err);
	ma = clCreateBuffer(ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, elems * 4, a, &err);
	if (err != CL_SUCCESS)
		fail("clCreateBuffer", err);
	mb = clCreateBuffer(ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, elems * 4, b, &err);
	if (err != CL_SUCCESS)
		fail("clCreateBuffer", err);
	mc = clCreateBuffer(ctx, CL_MEM_WRITE_ONLY, elems * 4, NULL, &err);
	if (err != CL_SUCCESS)
		fail("clCreateBuffer", err);
	err = clSetKernelArg(k, 0, sizeof(n), &n);
	if (err == CL_SUCCESS)
		err = clSetKernelArg(k, 1, sizeof(n), &n);
	if (err == CL_SUCCESS)
		err = clSetKernelArg(k, 2, sizeof(n), &n);
	if (err == CL_SUCCESS)
		err = clSetKernelArg(k, 3, sizeof(ma), &ma);
	if (err == CL_SUCCESS)
		err = clSetKernelArg(k, 4, sizeof(mb), &mb);
	if (err == CL_SUCCESS)
		err = clSetKernelArg(k, 5, sizeof(mc), &mc);
	if (err != CL_SUCCESS)
		fail("clSetKernelArg", err);
	global[0] = ((n + rm - 1) / rm + lx - 1) / lx * lx;
	global[1] = ((n + 2 * vw - 1) / (2 * vw) + ly - 1) / ly * ly;

	for (int r = -1; r < repeat; r++) {
		cl_event ev;
		cl_ulong s = 0, e = 0;

		err = clEnqueueNDRangeKernel(q, k, 2, NULL, global, local, 0, NULL, &ev);
		if (err != CL_SUCCESS)
			fail("clEnqueueNDRangeKernel", err);
		err = clWaitForEvents(1, &ev);
		if (err != CL_SUCCESS)
			fail("clWaitForEvents", err);
		clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_START, sizeof(s), &s, NULL);
		clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_END, sizeof(e), &e, NULL);
		clReleaseEvent(ev);
		if (r >= 0)
			ms[r] = (double)(e - s) / 1e6;
	}
	err = clEnqueueReadBuffer(q, mc, CL_TRUE, 0, elems * 4, c, 0, NULL, NULL);
	if (err != CL_SUCCESS)
		fail("clEnqueueReadBuffer", err);
	/* Spot-check a few elements against a double-precision dot product. */
	for (int t = 0; t < 16; t++) {
		size_t i = ((size_t)t * 7919u) % n, j = ((size_t)t * 104729u) % n;
		double ref = 0, mag = 0;

		for (size_t p = 0; p < n; p++) {
			ref += (double)a[i * n + p] * (double)b[p * n + j];
			mag += (double)a[i * n + p] * (double)a[i * n + p];
		}
		if ((c[i * n + j] - ref) * (c[i * n + j] - ref) > 1e-6 * (1.0 + mag))
			failmsg("the sgemm result is wrong");
	}

	printf("{\"mode\":\"sgemm\",\"device\":\"%s\",\"kernel\":\"%s\",\"options\":\"%s\","
	       "\"n\":%u,\"global\":[%zu,%zu],\"local\":[%zu,%zu],\"kernel_ms\":[",
	       dname, kname, options, (unsigned)n, global[0], global[1], lx, ly);
	for (int r = 0; r < repeat; r++)
		printf("%s%.3f", r ? "," : "", ms[r]);
	qsort(ms, (size_t)repeat, sizeof(double), cmp_dbl);
	med = repeat % 2 ? ms[repeat / 2] : (ms[repeat / 2 - 1] + ms[repeat / 2]) / 2;
	printf("],\"kernel_ms_median\":%.3f,\"gflops\":%.2f}\n", med,
	       2.0 * (double)n * n * n / (med / 1e3) / 1e9);
	clReleaseMemObject(ma);
	clReleaseMemObject(mb);
	clReleaseMemObject(mc);
	clReleaseKernel(k);
	clReleaseProgram(prog);
	clReleaseCommandQueue(q);
	clReleaseContext(ctx);
	free(a);
	free(b);
	free(c);
	free(ms);
	free(src);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "iterations", required_argument, NULL, 'i' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "profiling", no_argument, NULL, 'P' },
		{ "gpu", no_argument, NULL, 'g' },
		{ "source", required_argument, NULL, 's' },
		{ "kernel", required_argument, NULL, 'k' },
		{ "options", required_argument, NULL, 'o' },
		{ "n", required_argument, NULL, 'n' },
		{ "rm", required_argument, NULL, 'r' },
		{ "vw", required_argument, NULL, 'v' },
		{ "lx", required_argument, NULL, 'x' },
		{ "ly", required_argument, NULL, 'y' },
		{ "repeat", required_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	long iters = 10000, warmup = 200, n = 1024, rm = 8, vw = 16, lx = 8, ly = 2, repeat = 3;
	int profiling = 0, gpu = 0, ch, sgemm = 0;
	const char *source = NULL, *kname = "jd_sgemm_rb", *options = "";
	char dname[256];
	cl_device_id dev;

	if (argc > 1 && argv[1][0] != '-') {
		if (strcmp(argv[1], "sgemm") == 0)
			sgemm = 1;
		else if (strcmp(argv[1], "square") != 0) {
			usage(stderr);
			return 2;
		}
		mode_name = argv[1];
		optind = 2;
	}
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'i': iters = parse_long("--iterations", optarg, 1, 100000000); break;
		case 'w': warmup = parse_long("--warmup", optarg, 0, 1000000); break;
		case 'P': profiling = 1; break;
		case 'g': gpu = 1; break;
		case 's': source = optarg; break;
		case 'k': kname = optarg; break;
		case 'o': options = optarg; break;
		case 'n': n = parse_long("--n", optarg, 1, 16384); break;
		case 'r': rm = parse_long("--rm", optarg, 1, 64); break;
		case 'v': vw = parse_long("--vw", optarg, 1, 16); break;
		case 'x': lx = parse_long("--lx", optarg, 1, 1024); break;
		case 'y': ly = parse_long("--ly", optarg, 1, 1024); break;
		case 'R': repeat = parse_long("--repeat", optarg, 1, 100); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || (sgemm && source == NULL)) {
		usage(stderr);
		return 2;
	}
	dev = pick_device(gpu ? CL_DEVICE_TYPE_GPU : CL_DEVICE_TYPE_CPU, dname, sizeof(dname));
	if (sgemm)
		return run_sgemm(dev, dname, source, kname, options, (cl_uint)n, (unsigned)rm,
				 (unsigned)vw, (size_t)lx, (size_t)ly, (int)repeat);
	return run_square(dev, dname, iters, warmup, profiling);
}
