/*
 * heap.h - a binary min-heap of pointers that knows where each element is,
 * so elements can be removed from the middle (a cancelled job, a long-poll
 * that ended early) in O(log n).
 *
 * Each element embeds a `size_t` slot that the heap keeps equal to its
 * position (JD_HEAP_NONE when it is not in the heap). Not thread-safe: the
 * loop thread owns every heap.
 */
#ifndef JD_HEAP_H
#define JD_HEAP_H

#include <stddef.h>

#define JD_HEAP_NONE ((size_t)-1)

/* Returns non-zero when a must come out before b. */
typedef int (*jd_heap_less_fn)(const void *a, const void *b);

struct jd_heap {
	void **v;
	size_t len, cap;
	size_t slot_offset; /* offsetof(element, its size_t slot) */
	jd_heap_less_fn less;
};

void jd_heap_init(struct jd_heap *h, jd_heap_less_fn less, size_t slot_offset);
void jd_heap_cleanup(struct jd_heap *h);
int jd_heap_push(struct jd_heap *h, void *elem); /* 0 or -ENOMEM */
void *jd_heap_peek(const struct jd_heap *h);     /* NULL when empty */
void *jd_heap_pop(struct jd_heap *h);
void jd_heap_remove(struct jd_heap *h, void *elem); /* no-op when not in heap */
/* Re-establish order after elem's key changed. */
void jd_heap_update(struct jd_heap *h, void *elem);

static inline size_t jd_heap_len(const struct jd_heap *h)
{
	return h->len;
}

#endif
