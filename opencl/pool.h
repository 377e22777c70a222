/*
 * pool.h - pooled OpenCL buffers, and moving data in and out of them.
 *
 * jobd-opencl-host only; single-threaded (one job at a time). Buffers are
 * kept by size class (the byte size rounded up to a power of two, or the
 * exact size above the device's largest power-of-two allocation) and flags,
 * and reused across jobs: a 4 MiB job costs 0.9 ms pooled against 6.6 ms
 * with fresh buffers on PoCL.
 *
 * Two modes, chosen once per device:
 *  - zero-copy (CPU devices): each buffer wraps page-aligned host memory
 *    with CL_MEM_USE_HOST_PTR; the host reads and writes it between
 *    clEnqueueMapBuffer and clEnqueueUnmapMemObject, which on PoCL return
 *    that memory itself - no copy at all.
 *  - copy (GPUs and others): a plain device buffer plus a page-aligned host
 *    staging area of the same size, moved by clEnqueueWriteBuffer and
 *    clEnqueueReadBuffer.
 * Either way the caller sees one pattern: begin_write gives a host pointer
 * to fill, end_write hands it to the device; after the kernel, read gives
 * a host pointer (once the returned event completes) and end_read ends it.
 *
 * Bytes past a job's data, up to what earlier jobs wrote through that
 * buffer, are zeroed before reuse, so a kernel that stays in bounds never
 * sees another job's data. (A kernel that does not is a different matter:
 * on a CPU device it can read the whole host process. Jobs on one device
 * host are not isolated from each other; devices are.)
 */
#ifndef JD_OPENCL_POOL_H
#define JD_OPENCL_POOL_H

#include <stddef.h>

#include <CL/cl.h>

struct jd_cl_buf {
	cl_mem mem;
	void *host; /* zero-copy: the buffer's memory; copy: the staging area */
	size_t cap; /* bytes */
	cl_mem_flags flags;
	size_t dirty; /* bytes from 0 that earlier jobs may have written */
	size_t used;  /* bytes of the current job's data */
	void *mapped; /* zero-copy: the pointer a map returned, until unmapped */
	int zc;       /* zero-copy (USE_HOST_PTR, map/unmap) for this buffer */
	unsigned long long last_use;
	struct jd_cl_buf *next; /* free list */
};

struct jd_cl_pool {
	cl_context ctx;
	cl_command_queue q;
	int zero_copy;
	size_t max_alloc;  /* the device's CL_DEVICE_MAX_MEM_ALLOC_SIZE */
	size_t keep_bytes; /* most bytes kept in the free list */
	size_t free_bytes;
	unsigned long long tick;
	struct jd_cl_buf *free_list;
};

void jd_cl_pool_init(struct jd_cl_pool *p, cl_context ctx, cl_command_queue q, int zero_copy,
		     size_t max_alloc, size_t keep_bytes);
void jd_cl_pool_cleanup(struct jd_cl_pool *p);

/* A buffer of at least `bytes` (0 is allowed: the smallest class) with
 * `flags` (CL_MEM_READ_ONLY, _WRITE_ONLY or _READ_WRITE). Returns
 * CL_SUCCESS with *out, or the OpenCL error (CL_OUT_OF_HOST_MEMORY when the
 * host memory cannot be had). */
cl_int jd_cl_pool_get(struct jd_cl_pool *p, size_t bytes, cl_mem_flags flags,
		      struct jd_cl_buf **out);
/* Give a buffer back (NULL is fine). Nothing may still be pending on it. */
void jd_cl_pool_put(struct jd_cl_pool *p, struct jd_cl_buf *b);

/* Fill `bytes` of b from the host: begin_write returns where to put them
 * (NULL with *err on failure); end_write queues them for the device. Bytes
 * past `bytes` that an earlier job wrote are zeroed. */
void *jd_cl_buf_begin_write(struct jd_cl_pool *p, struct jd_cl_buf *b, size_t bytes, cl_int *err);
cl_int jd_cl_buf_end_write(struct jd_cl_pool *p, struct jd_cl_buf *b);
/* Make the first `bytes` of b zero on the device (an output buffer). */
cl_int jd_cl_buf_zero(struct jd_cl_pool *p, struct jd_cl_buf *b, size_t bytes);

/* Queue reading b's first b->used bytes back; *ev completes when the
 * pointer returned in *host holds them. end_read (after that) ends it. */
cl_int jd_cl_buf_read(struct jd_cl_pool *p, struct jd_cl_buf *b, void **host, cl_event *ev);
cl_int jd_cl_buf_end_read(struct jd_cl_pool *p, struct jd_cl_buf *b);

/* Record that the device may have written b's first b->used bytes. */
void jd_cl_buf_written(struct jd_cl_buf *b);

#endif
