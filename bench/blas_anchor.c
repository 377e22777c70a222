/*
 * blas_anchor.c - the OpenBLAS anchor for jobd's sgemm figure (figure i).
 *
 * c = a * b for n x n float32 matrices, row-major, with cblas_sgemm, the
 * same operation jobd's built-in `sgemm` task runs. The inputs are the raw
 * little-endian float32 files the driver also sends to jobd (--a, --b), or,
 * without them, n*n values from a fixed LCG. One untimed call first (page
 * faults, OpenBLAS's thread start-up), then --repeat timed calls; OpenBLAS
 * uses its default thread count (all CPUs, or OPENBLAS_NUM_THREADS).
 *
 * --check FILE compares c with another raw n x n float32 result (jobd's)
 * and reports the largest difference, absolute and relative to max |c|.
 *
 * Usage: blas_anchor [--n N] [--a FILE --b FILE] [--repeat R] [--check FILE]
 * Prints one JSON line on stdout:
 *   {"n":N,"threads":T,"seconds":[...],"seconds_median":S,"gflops":G,
 *    "gflops_runs":[...],"config":"...","max_abs_diff":..,"max_rel_diff":..}
 * or {"error":"..."} and exit 1; exit 2 on bad usage.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <cblas.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void failmsg(const char *what, const char *arg) __attribute__((noreturn));

static void failmsg(const char *what, const char *arg)
{
	fprintf(stderr, "blas_anchor: %s%s%s\n", what, arg ? " " : "", arg ? arg : "");
	printf("{\"error\":\"%s%s", what, arg ? " " : "");
	for (const char *p = arg ? arg : ""; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if ((unsigned char)*p >= 0x20)
			putchar(*p);
	}
	printf("\"}\n");
	fflush(stdout);
	exit(1);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static float *load(const char *path, size_t elems)
{
	float *v = malloc(elems * sizeof(float));
	FILE *f = fopen(path, "rb");

	if (v == NULL)
		failmsg("out of memory", NULL);
	if (f == NULL)
		failmsg("cannot open", path);
	if (fread(v, sizeof(float), elems, f) != elems)
		failmsg("too short (need n*n float32 values):", path);
	fclose(f);
	return v;
}

static long parse_long(const char *name, const char *s, long lo, long hi)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (end == s || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "blas_anchor: bad %s '%s' (%ld..%ld)\n", name, s, lo, hi);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "n", required_argument, NULL, 'n' },
		{ "a", required_argument, NULL, 'a' },
		{ "b", required_argument, NULL, 'b' },
		{ "repeat", required_argument, NULL, 'r' },
		{ "check", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *apath = NULL, *bpath = NULL, *check = NULL;
	long n = 1024, repeat = 3;
	double *secs, med;
	float *a, *b, *c;
	size_t elems;
	int ch;

	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'n': n = parse_long("--n", optarg, 1, 16384); break;
		case 'a': apath = optarg; break;
		case 'b': bpath = optarg; break;
		case 'r': repeat = parse_long("--repeat", optarg, 1, 100); break;
		case 'c': check = optarg; break;
		case 'h':
			printf("usage: blas_anchor [--n N] [--a FILE --b FILE] [--repeat R] "
			       "[--check FILE]\n");
			return 0;
		default:
			fprintf(stderr, "usage: blas_anchor [--n N] [--a FILE --b FILE] "
					"[--repeat R] [--check FILE]\n");
			return 2;
		}
	}
	if (optind != argc || (apath == NULL) != (bpath == NULL)) {
		fprintf(stderr, "blas_anchor: give both --a and --b, or neither\n");
		return 2;
	}
	elems = (size_t)n * (size_t)n;
	if (apath) {
		a = load(apath, elems);
		b = load(bpath, elems);
	} else {
		uint32_t seed = 12345;

		a = malloc(elems * sizeof(float));
		b = malloc(elems * sizeof(float));
		if (!a || !b)
			failmsg("out of memory", NULL);
		for (size_t i = 0; i < elems; i++) {
			seed = seed * 1664525u + 1013904223u;
			a[i] = (float)(seed >> 8) / 16777216.0f - 0.5f;
			seed = seed * 1664525u + 1013904223u;
			b[i] = (float)(seed >> 8) / 16777216.0f - 0.5f;
		}
	}
	c = malloc(elems * sizeof(float));
	secs = malloc((size_t)repeat * sizeof(double));
	if (!c || !secs)
		failmsg("out of memory", NULL);

	for (long r = -1; r < repeat; r++) {
		double t = now_s();

		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)n, (int)n, 1.0f,
			    a, (int)n, b, (int)n, 0.0f, c, (int)n);
		if (r >= 0)
			secs[r] = now_s() - t;
	}

	printf("{\"n\":%ld,\"threads\":%d,\"seconds\":[", n, openblas_get_num_threads());
	for (long r = 0; r < repeat; r++)
		printf("%s%.6f", r ? "," : "", secs[r]);
	printf("],\"gflops_runs\":[");
	for (long r = 0; r < repeat; r++)
		printf("%s%.2f", r ? "," : "", 2.0 * (double)n * n * n / secs[r] / 1e9);
	qsort(secs, (size_t)repeat, sizeof(double), cmp_dbl);
	med = repeat % 2 ? secs[repeat / 2] : (secs[repeat / 2 - 1] + secs[repeat / 2]) / 2;
	printf("],\"seconds_median\":%.6f,\"gflops\":%.2f,\"config\":\"", med,
	       2.0 * (double)n * n * n / med / 1e9);
	for (const char *p = openblas_get_config(); p && *p; p++)
		if (*p != '"' && *p != '\\' && (unsigned char)*p >= 0x20)
			putchar(*p);
	printf("\"");
	if (check) {
		float *o = load(check, elems);
		double maxc = 0, maxd = 0;
		int nan = 0;

		for (size_t i = 0; i < elems; i++) {
			double d = fabs((double)o[i] - (double)c[i]);

			if (isnan(o[i]))
				nan = 1;
			if (fabs((double)c[i]) > maxc)
				maxc = fabs((double)c[i]);
			if (d > maxd)
				maxd = d;
		}
		printf(",\"max_abs_diff\":%.3g,\"max_rel_diff\":%.3g,\"check_nan\":%s", maxd,
		       maxc > 0 ? maxd / maxc : maxd, nan ? "true" : "false");
		free(o);
	}
	printf("}\n");
	free(a);
	free(b);
	free(c);
	free(secs);
	return 0;
}
