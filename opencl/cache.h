/*
 * cache.h - the program cache of a device host: built programs in memory,
 * their binaries on disk.
 *
 * jobd-opencl-host only; single-threaded.
 *
 * Key: SHA-256 over a format tag, the source, the build options, and the
 * device name, driver version and platform version - everything that
 * changes the binary. In memory: key -> built cl_program and its kernels
 * by name, least recently used dropped beyond a count. On disk:
 * DIR/<hex key>.bin, written to a temporary file in DIR, fsync'd and
 * renamed, so that a host killed mid-write (a crashing kernel, a timeout)
 * never leaves a partial file; hosts of several devices may share DIR. A
 * miss in memory tries the disk (clCreateProgramWithBinary, ~1 ms on PoCL),
 * then compiles from source (~0.1-1 s) and saves the binary.
 */
#ifndef JD_OPENCL_CACHE_H
#define JD_OPENCL_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include <CL/cl.h>

#include "opencl/devices.h"
#include "opencl/sha256.h"

struct jd_cl_kernel_slot {
	char *name;
	cl_kernel kernel;
};

struct jd_cl_program {
	uint8_t key[JD_SHA256_LEN];
	cl_program program;
	struct jd_cl_kernel_slot *kernels;
	size_t n_kernels, cap_kernels;
	unsigned long long last_use;
	int pinned;  /* never dropped (the built-in kernels) */
	int on_disk; /* its binary is in the cache dir (or cannot be saved) */
};

struct jd_cl_cache {
	cl_context ctx;
	const struct jd_cl_device *dev;
	char *dir; /* NULL: memory only */
	size_t max_programs;
	struct jd_cl_program **progs;
	size_t n;
	unsigned long long tick;
};

/* How a program was had, for the job's "timing"/"build". */
struct jd_cl_build {
	const char *cache; /* "memory", "disk" or "compiled" */
	double ms;         /* time spent getting it (0 from memory) */
	cl_int cl_err;     /* on failure: what clBuildProgram & co. said */
	char *log;         /* on build failure: the build log (malloc'd) or NULL */
};

/* `dir` may be NULL (memory only); it is created if missing, stale
 * temporary files of dead hosts are removed, and it is trimmed to
 * JD_CL_CACHE_DISK_MAX bytes, oldest files first. */
#define JD_CL_CACHE_DISK_MAX ((uint64_t)512 * 1024 * 1024)
int jd_cl_cache_init(struct jd_cl_cache *c, cl_context ctx, const struct jd_cl_device *dev,
		     const char *dir, size_t max_programs);
void jd_cl_cache_cleanup(struct jd_cl_cache *c);

/* The program built from `source` with `options` (may be NULL), from
 * memory, disk or a compile. Returns 0 with *out (owned by the cache; valid
 * until the next get) and *b filled; -EINVAL when the build fails (b->log
 * and b->cl_err say why; free b->log); -ENOMEM. */
int jd_cl_cache_get(struct jd_cl_cache *c, const char *source, const char *options,
		    struct jd_cl_program **out, struct jd_cl_build *b);

/* The kernel `name` of p, created once and kept: CL_SUCCESS, or the error
 * of clCreateKernel (CL_INVALID_KERNEL_NAME when there is none). */
cl_int jd_cl_program_kernel(struct jd_cl_program *p, const char *name, cl_kernel *out);

/* Write p's binary to the cache dir if it is not there yet. Called after a
 * program's first run, so that the binary also carries what PoCL compiled
 * for the work-group sizes used (a restarted host then starts warm).
 * Failures are logged and otherwise ignored. */
void jd_cl_cache_save(struct jd_cl_cache *c, struct jd_cl_program *p);

#endif
