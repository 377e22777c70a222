/*
 * store_mem.c - the memory store: acknowledges at once, keeps nothing.
 *
 * Loop thread only. The scheduler's own job table is the only copy of a
 * job, so a restart loses every job; durable stores replace this file.
 */
#include <stdlib.h>

#include "daemon/store.h"

static void mem_put(struct jd_store *st, struct jd_job **jobs, size_t n, jd_store_done_fn done,
		    void *arg)
{
	(void)st;
	(void)jobs;
	(void)n;
	done(arg, 0);
}

static void mem_update(struct jd_store *st, const struct jd_job *job)
{
	(void)st;
	(void)job;
}

static void mem_remove(struct jd_store *st, const struct jd_id *ids, size_t n)
{
	(void)st;
	(void)ids;
	(void)n;
}

static void mem_free(struct jd_store *st)
{
	free(st);
}

static const struct jd_store_ops mem_ops = {
	.name = "memory",
	.put = mem_put,
	.update = mem_update,
	.load = NULL, /* nothing survives a restart */
	.remove = mem_remove,
	.free = mem_free,
	.put_keyed = NULL, /* idempotency keys live in the daemon's table only */
};

struct jd_store *jd_store_mem_new(struct event_base *base)
{
	(void)base;
	struct jd_store *st = calloc(1, sizeof(*st));
	if (st)
		st->ops = &mem_ops;
	return st;
}
