/*
 * pool.c - pooled OpenCL buffers (see pool.h for the two modes).
 *
 * jobd-opencl-host only; single-threaded. Every enqueue here is on the
 * host's one in-order queue, so a write queued before a kernel is done
 * before it starts, and nothing here waits except the blocking maps for
 * writing (the queue is idle between jobs, so they return at once).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"
#include "opencl/pool.h"

#define ZC_MIN ((size_t)64 * 1024) /* smallest zero-copy buffer */

#define MIN_CLASS ((size_t)64)
#define PAGE      ((size_t)4096)

void jd_cl_pool_init(struct jd_cl_pool *p, cl_context ctx, cl_command_queue q, int zero_copy,
		     size_t max_alloc, size_t keep_bytes)
{
	memset(p, 0, sizeof(*p));
	p->ctx = ctx;
	p->q = q;
	p->zero_copy = zero_copy;
	p->max_alloc = max_alloc;
	p->keep_bytes = keep_bytes;
}

static void buf_free(struct jd_cl_buf *b)
{
	if (!b)
		return;
	if (b->mem)
		clReleaseMemObject(b->mem);
	free(b->host);
	free(b);
}

void jd_cl_pool_cleanup(struct jd_cl_pool *p)
{
	while (p->free_list) {
		struct jd_cl_buf *b = p->free_list;

		p->free_list = b->next;
		buf_free(b);
	}
	p->free_bytes = 0;
}

/* The size class of `bytes`: a power of two from 64, or, where that would
 * pass the device's largest allocation, the size rounded to a page. */
static size_t size_class(const struct jd_cl_pool *p, size_t bytes)
{
	size_t c = MIN_CLASS;

	while (c < bytes && c <= SIZE_MAX / 2)
		c *= 2;
	if (c > p->max_alloc && bytes <= p->max_alloc) {
		c = (bytes + PAGE - 1) / PAGE * PAGE;
		if (c > p->max_alloc)
			c = bytes;
	}
	return c;
}

static cl_int buf_new(struct jd_cl_pool *p, size_t cap, cl_mem_flags flags, struct jd_cl_buf **out)
{
	struct jd_cl_buf *b = calloc(1, sizeof(*b));
	cl_int err = CL_SUCCESS;

	if (!b)
		return CL_OUT_OF_HOST_MEMORY;
	b->cap = cap;
	b->flags = flags;
	/* Zero-copy pays a blocking map and an unmap per transfer; below
	 * ZC_MIN a plain copy is cheaper (measured on PoCL: 115-150 us vs
	 * 70-88 us a job for 10 ints). */
	b->zc = p->zero_copy && cap >= ZC_MIN;
	/* Host memory from the allocator may hold whatever this process
	 * freed there (an earlier job's arrays): treat all of it as written.
	 * A new device buffer (copy mode) comes from the driver. */
	b->dirty = b->zc ? cap : 0;
	/* Page-aligned: PoCL needs CL_DEVICE_MEM_BASE_ADDR_ALIGN (128 B) for
	 * a USE_HOST_PTR buffer, or a vector kernel can fault. */
	if (posix_memalign(&b->host, PAGE, cap) != 0) {
		free(b);
		return CL_OUT_OF_HOST_MEMORY;
	}
	if (b->zc)
		b->mem = clCreateBuffer(p->ctx, flags | CL_MEM_USE_HOST_PTR, cap, b->host, &err);
	else
		b->mem = clCreateBuffer(p->ctx, flags, cap, NULL, &err);
	if (err != CL_SUCCESS) {
		b->mem = NULL;
		buf_free(b);
		return err;
	}
	*out = b;
	return CL_SUCCESS;
}

cl_int jd_cl_pool_get(struct jd_cl_pool *p, size_t bytes, cl_mem_flags flags,
		      struct jd_cl_buf **out)
{
	size_t cap = size_class(p, bytes);
	struct jd_cl_buf **pp, *b;
	cl_int err;

	for (pp = &p->free_list; *pp; pp = &(*pp)->next) {
		if ((*pp)->cap == cap && (*pp)->flags == flags)
			break;
	}
	if (*pp) {
		b = *pp;
		*pp = b->next;
		p->free_bytes -= b->cap;
	} else {
		err = buf_new(p, cap, flags, &b);
		if (err != CL_SUCCESS && p->free_list) {
			/* Memory may be held by idle buffers of other sizes. */
			jd_cl_pool_cleanup(p);
			err = buf_new(p, cap, flags, &b);
		}
		if (err != CL_SUCCESS)
			return err;
	}
	b->next = NULL;
	b->used = 0;
	b->mapped = NULL;
	b->last_use = ++p->tick;
	*out = b;
	return CL_SUCCESS;
}

void jd_cl_pool_put(struct jd_cl_pool *p, struct jd_cl_buf *b)
{
	if (!b)
		return;
	if (b->mapped) {
		/* A failed job may leave a mapping behind. */
		clEnqueueUnmapMemObject(p->q, b->mem, b->mapped, 0, NULL, NULL);
		b->mapped = NULL;
	}
	if (b->cap > p->keep_bytes) {
		buf_free(b);
		return;
	}
	b->next = p->free_list;
	p->free_list = b;
	p->free_bytes += b->cap;
	/* Over budget: drop the least recently used idle buffers. */
	while (p->free_bytes > p->keep_bytes) {
		struct jd_cl_buf **oldest = &p->free_list;

		for (struct jd_cl_buf **pp = &p->free_list; *pp; pp = &(*pp)->next)
			if ((*pp)->last_use < (*oldest)->last_use)
				oldest = pp;
		struct jd_cl_buf *victim = *oldest;

		*oldest = victim->next;
		p->free_bytes -= victim->cap;
		buf_free(victim);
	}
}

void *jd_cl_buf_begin_write(struct jd_cl_pool *p, struct jd_cl_buf *b, size_t bytes, cl_int *err)
{
	size_t span = bytes > b->dirty ? bytes : b->dirty;
	void *ptr = b->host;

	*err = CL_SUCCESS;
	b->used = bytes;
	if (b->zc && span > 0) {
		ptr = clEnqueueMapBuffer(p->q, b->mem, CL_TRUE, CL_MAP_WRITE_INVALIDATE_REGION, 0,
					 span, 0, NULL, NULL, err);
		if (*err != CL_SUCCESS)
			return NULL;
		b->mapped = ptr;
	}
	if (span > bytes)
		memset((char *)ptr + bytes, 0, span - bytes);
	return ptr;
}

cl_int jd_cl_buf_end_write(struct jd_cl_pool *p, struct jd_cl_buf *b)
{
	size_t span = b->used > b->dirty ? b->used : b->dirty;
	cl_int err = CL_SUCCESS;

	if (b->zc) {
		if (b->mapped)
			err = clEnqueueUnmapMemObject(p->q, b->mem, b->mapped, 0, NULL, NULL);
		b->mapped = NULL;
	} else if (span > 0) {
		/* Non-blocking: the staging area lives as long as the buffer,
		 * and the job waits for its last command before giving it
		 * back. */
		err = clEnqueueWriteBuffer(p->q, b->mem, CL_FALSE, 0, span, b->host, 0, NULL, NULL);
	}
	if (err == CL_SUCCESS)
		b->dirty = b->used;
	return err;
}

cl_int jd_cl_buf_zero(struct jd_cl_pool *p, struct jd_cl_buf *b, size_t bytes)
{
	size_t span = bytes > b->dirty ? bytes : b->dirty;
	cl_int err = CL_SUCCESS;

	b->used = bytes;
	if (span == 0)
		return CL_SUCCESS;
	if (b->zc) {
		void *ptr =
		    clEnqueueMapBuffer(p->q, b->mem, CL_TRUE, CL_MAP_WRITE_INVALIDATE_REGION, 0,
				       span, 0, NULL, NULL, &err);

		if (err != CL_SUCCESS)
			return err;
		memset(ptr, 0, span);
		err = clEnqueueUnmapMemObject(p->q, b->mem, ptr, 0, NULL, NULL);
	} else {
		static const cl_uchar zero = 0;

		err = clEnqueueFillBuffer(p->q, b->mem, &zero, 1, 0, span, 0, NULL, NULL);
	}
	if (err == CL_SUCCESS)
		b->dirty = 0;
	return err;
}

cl_int jd_cl_buf_read(struct jd_cl_pool *p, struct jd_cl_buf *b, void **host, cl_event *ev)
{
	cl_int err = CL_SUCCESS;

	*ev = NULL;
	*host = b->host;
	if (b->used == 0)
		return CL_SUCCESS;
	if (b->zc) {
		void *ptr = clEnqueueMapBuffer(p->q, b->mem, CL_FALSE, CL_MAP_READ, 0, b->used, 0,
					       NULL, ev, &err);

		if (err != CL_SUCCESS)
			return err;
		b->mapped = ptr;
		*host = ptr;
		return CL_SUCCESS;
	}
	return clEnqueueReadBuffer(p->q, b->mem, CL_FALSE, 0, b->used, b->host, 0, NULL, ev);
}

cl_int jd_cl_buf_end_read(struct jd_cl_pool *p, struct jd_cl_buf *b)
{
	cl_int err = CL_SUCCESS;

	if (b->zc && b->mapped)
		err = clEnqueueUnmapMemObject(p->q, b->mem, b->mapped, 0, NULL, NULL);
	b->mapped = NULL;
	return err;
}

void jd_cl_buf_written(struct jd_cl_buf *b)
{
	if (b->used > b->dirty)
		b->dirty = b->used;
}
