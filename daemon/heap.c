/*
 * heap.c - indexed binary min-heap. Loop thread only (no locking).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/heap.h"

static size_t *slot_of(const struct jd_heap *h, void *e)
{
	return (size_t *)((char *)e + h->slot_offset);
}

static void place(struct jd_heap *h, size_t i, void *e)
{
	h->v[i] = e;
	*slot_of(h, e) = i;
}

void jd_heap_init(struct jd_heap *h, jd_heap_less_fn less, size_t slot_offset)
{
	memset(h, 0, sizeof(*h));
	h->less = less;
	h->slot_offset = slot_offset;
}

void jd_heap_cleanup(struct jd_heap *h)
{
	free(h->v);
	h->v = NULL;
	h->len = h->cap = 0;
}

static void sift_up(struct jd_heap *h, size_t i)
{
	void *e = h->v[i];
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (!h->less(e, h->v[parent]))
			break;
		place(h, i, h->v[parent]);
		i = parent;
	}
	place(h, i, e);
}

static void sift_down(struct jd_heap *h, size_t i)
{
	void *e = h->v[i];
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= h->len)
			break;
		if (c + 1 < h->len && h->less(h->v[c + 1], h->v[c]))
			c++;
		if (!h->less(h->v[c], e))
			break;
		place(h, i, h->v[c]);
		i = c;
	}
	place(h, i, e);
}

int jd_heap_push(struct jd_heap *h, void *e)
{
	if (h->len == h->cap) {
		size_t ncap = h->cap ? h->cap * 2 : 64;
		void **nv = realloc(h->v, ncap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		h->v = nv;
		h->cap = ncap;
	}
	h->v[h->len] = e;
	sift_up(h, h->len++);
	return 0;
}

void *jd_heap_peek(const struct jd_heap *h)
{
	return h->len ? h->v[0] : NULL;
}

void jd_heap_remove(struct jd_heap *h, void *e)
{
	size_t i = *slot_of(h, e);
	if (i == JD_HEAP_NONE || i >= h->len || h->v[i] != e)
		return;
	*slot_of(h, e) = JD_HEAP_NONE;
	h->len--;
	if (i == h->len)
		return;
	void *last = h->v[h->len];
	place(h, i, last);
	if (i > 0 && h->less(last, h->v[(i - 1) / 2]))
		sift_up(h, i);
	else
		sift_down(h, i);
}

void *jd_heap_pop(struct jd_heap *h)
{
	void *top = jd_heap_peek(h);
	if (top)
		jd_heap_remove(h, top);
	return top;
}

void jd_heap_update(struct jd_heap *h, void *e)
{
	size_t i = *slot_of(h, e);
	if (i == JD_HEAP_NONE || i >= h->len)
		return;
	sift_up(h, i);
	sift_down(h, *slot_of(h, e));
}
