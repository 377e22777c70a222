/*
 * test_heap.c - unit tests for daemon/heap.c, the indexed binary heap.
 *
 * Elements are real struct jd_job records ordered like the scheduler's
 * queues (higher priority first, then lower seq: FIFO within a priority),
 * with the heap slot in job->qslot. Random inputs come from a fixed-seed
 * generator so a failure repeats.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/heap.h"
#include "daemon/job.h"

#define N 10000

/* ---- helpers ---- */

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_rand(void)
{
	/* xorshift64* */
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545f4914f6cdd1dull;
}

static unsigned rand_below(unsigned n)
{
	return (unsigned)(next_rand() % n);
}

/* The scheduler's queue order (daemon/sched.c queue_less). */
static int queue_less(const void *a, const void *b)
{
	const struct jd_job *x = a, *y = b;
	if (x->priority != y->priority)
		return x->priority > y->priority;
	return x->seq < y->seq;
}

/* The same order as a qsort comparator over job pointers. */
static int queue_cmp(const void *a, const void *b)
{
	const struct jd_job *x = *(struct jd_job *const *)a, *y = *(struct jd_job *const *)b;
	if (x->priority != y->priority)
		return x->priority > y->priority ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq ? 1 : 0;
}

static void heap_init(struct jd_heap *h)
{
	jd_heap_init(h, queue_less, offsetof(struct jd_job, qslot));
}

/* n jobs with random priorities in -100..100 (so many ties) and distinct
 * seqs 1..n, in random order. */
static struct jd_job *make_jobs(size_t n)
{
	struct jd_job *jobs = calloc(n, sizeof(*jobs));

	assert_non_null(jobs);
	for (size_t i = 0; i < n; i++) {
		jobs[i].priority = (int8_t)((int)rand_below(201) - 100);
		jobs[i].seq = i + 1;
		jobs[i].qslot = JD_HEAP_NONE;
	}
	/* Shuffle the seqs so push order is not seq order. */
	for (size_t i = n - 1; i > 0; i--) {
		size_t j = rand_below((unsigned)(i + 1));
		uint64_t t = jobs[i].seq;
		jobs[i].seq = jobs[j].seq;
		jobs[j].seq = t;
	}
	return jobs;
}

/* Every element's slot is its position, and no child comes before its
 * parent. */
static void check_heap(const struct jd_heap *h)
{
	for (size_t i = 0; i < h->len; i++) {
		const struct jd_job *j = h->v[i];
		if (j->qslot != i)
			fail_msg("element at %zu has slot %zu", i, j->qslot);
		if (i > 0 && queue_less(h->v[i], h->v[(i - 1) / 2]))
			fail_msg("element at %zu comes before its parent", i);
	}
}

/* Pop everything; it must come out in the order of `want` (n pointers). */
static void pop_all_in_order(struct jd_heap *h, struct jd_job **want, size_t n)
{
	assert_int_equal(jd_heap_len(h), n);
	for (size_t i = 0; i < n; i++) {
		assert_ptr_equal(jd_heap_peek(h), want[i]);
		struct jd_job *j = jd_heap_pop(h);
		if (j != want[i])
			fail_msg("pop %zu: got prio %d seq %llu, want prio %d seq %llu", i,
				 j ? j->priority : 0, j ? (unsigned long long)j->seq : 0,
				 want[i]->priority, (unsigned long long)want[i]->seq);
		assert_int_equal(j->qslot, JD_HEAP_NONE);
		if (i % 997 == 0)
			check_heap(h);
	}
	assert_int_equal(jd_heap_len(h), 0);
	assert_null(jd_heap_peek(h));
	assert_null(jd_heap_pop(h));
}

/* ---- tests ---- */

static void test_empty(void **state)
{
	struct jd_heap h;
	struct jd_job j = { .qslot = JD_HEAP_NONE };

	heap_init(&h);
	assert_int_equal(jd_heap_len(&h), 0);
	assert_null(jd_heap_peek(&h));
	assert_null(jd_heap_pop(&h));
	jd_heap_remove(&h, &j);
	jd_heap_update(&h, &j);
	assert_int_equal(jd_heap_len(&h), 0);
	assert_int_equal(j.qslot, JD_HEAP_NONE);

	assert_int_equal(jd_heap_push(&h, &j), 0);
	assert_int_equal(j.qslot, 0);
	assert_ptr_equal(jd_heap_peek(&h), &j);
	assert_ptr_equal(jd_heap_pop(&h), &j);
	assert_int_equal(j.qslot, JD_HEAP_NONE);
	jd_heap_cleanup(&h);
	assert_null(h.v);
	jd_heap_cleanup(&h);
}

/* FIFO within a priority, higher priority first: a small hand-checked case. */
static void test_small_order(void **state)
{
	struct jd_heap h;
	struct jd_job j[6] = {
		{ .priority = 0, .seq = 1 }, { .priority = 5, .seq = 2 },
		{ .priority = 0, .seq = 3 }, { .priority = -5, .seq = 4 },
		{ .priority = 5, .seq = 5 }, { .priority = 0, .seq = 6 },
	};
	static const int order[6] = { 1, 4, 0, 2, 5, 3 };

	heap_init(&h);
	for (int i = 5; i >= 0; i--)
		assert_int_equal(jd_heap_push(&h, &j[i]), 0);
	check_heap(&h);
	for (int i = 0; i < 6; i++)
		assert_ptr_equal(jd_heap_pop(&h), &j[order[i]]);
	jd_heap_cleanup(&h);
}

static void test_random_order(void **state)
{
	struct jd_heap h;
	struct jd_job *jobs = make_jobs(N);
	struct jd_job **want = malloc(N * sizeof(*want));

	assert_non_null(want);
	heap_init(&h);
	for (size_t i = 0; i < N; i++) {
		assert_int_equal(jd_heap_push(&h, &jobs[i]), 0);
		want[i] = &jobs[i];
	}
	check_heap(&h);
	qsort(want, N, sizeof(*want), queue_cmp);
	pop_all_in_order(&h, want, N);

	/* Interleaved pushes and pops: each pop returns the least of what is
	 * in the heap at that moment. */
	size_t pushed = 0, popped = 0;
	while (pushed < N) {
		unsigned burst = 1 + rand_below(20);
		for (unsigned k = 0; k < burst && pushed < N; k++)
			assert_int_equal(jd_heap_push(&h, &jobs[pushed++]), 0);
		unsigned pops = rand_below(burst + 1);
		for (unsigned k = 0; k < pops && jd_heap_len(&h) > 0; k++) {
			struct jd_job *top = jd_heap_pop(&h);
			for (size_t i = 0; i < h.len; i++)
				assert_false(queue_less(h.v[i], top));
			popped++;
		}
	}
	check_heap(&h);
	assert_int_equal(jd_heap_len(&h), N - popped);
	jd_heap_cleanup(&h);
	free(want);
	free(jobs);
}

static void test_remove_middle(void **state)
{
	struct jd_heap h;
	struct jd_job *jobs = make_jobs(N);
	struct jd_job **want = malloc(N * sizeof(*want));
	size_t nwant = 0, removed = 0;

	assert_non_null(want);
	heap_init(&h);
	for (size_t i = 0; i < N; i++)
		assert_int_equal(jd_heap_push(&h, &jobs[i]), 0);

	/* Remove the root, the last element, and then 3000 at random
	 * positions. */
	struct jd_job *root = h.v[0], *last = h.v[h.len - 1];
	jd_heap_remove(&h, root);
	jd_heap_remove(&h, last);
	assert_int_equal(root->qslot, JD_HEAP_NONE);
	assert_int_equal(last->qslot, JD_HEAP_NONE);
	removed = 2;
	check_heap(&h);
	while (removed < 3002) {
		struct jd_job *j = h.v[rand_below((unsigned)h.len)];
		jd_heap_remove(&h, j);
		assert_int_equal(j->qslot, JD_HEAP_NONE);
		removed++;
		if (removed % 101 == 0)
			check_heap(&h);
	}
	check_heap(&h);
	assert_int_equal(jd_heap_len(&h), N - removed);
	for (size_t i = 0; i < N; i++)
		if (jobs[i].qslot != JD_HEAP_NONE)
			want[nwant++] = &jobs[i];
	assert_int_equal(nwant, N - removed);
	qsort(want, nwant, sizeof(*want), queue_cmp);
	pop_all_in_order(&h, want, nwant);
	jd_heap_cleanup(&h);
	free(want);
	free(jobs);
}

/* Raising and lowering keys in place, then everything pops in the new
 * order. */
static void test_update(void **state)
{
	struct jd_heap h;
	struct jd_job *jobs = make_jobs(N);
	struct jd_job **want = malloc(N * sizeof(*want));

	assert_non_null(want);
	heap_init(&h);
	for (size_t i = 0; i < N; i++) {
		assert_int_equal(jd_heap_push(&h, &jobs[i]), 0);
		want[i] = &jobs[i];
	}
	for (int k = 0; k < 5000; k++) {
		struct jd_job *j = &jobs[rand_below(N)];
		switch (k % 4) {
		case 0: j->priority = 100; break;  /* to the front */
		case 1: j->priority = -100; break; /* to the back */
		default: j->priority = (int8_t)((int)rand_below(201) - 100); break;
		}
		jd_heap_update(&h, j);
		assert_ptr_equal(h.v[j->qslot], j);
		if (k % 251 == 0)
			check_heap(&h);
	}
	/* An update with no change moves nothing. */
	struct jd_job *top = jd_heap_peek(&h);
	jd_heap_update(&h, top);
	assert_ptr_equal(jd_heap_peek(&h), top);
	assert_int_equal(top->qslot, 0);
	check_heap(&h);
	qsort(want, N, sizeof(*want), queue_cmp);
	pop_all_in_order(&h, want, N);
	jd_heap_cleanup(&h);
	free(want);
	free(jobs);
}

/* Removing (or updating) an element that is not in the heap changes
 * nothing, whatever its slot says. */
static void test_remove_absent(void **state)
{
	struct jd_heap h, other;
	struct jd_job *jobs = make_jobs(100);
	struct jd_job stranger = { .priority = 100, .seq = 0, .qslot = JD_HEAP_NONE };
	void *before[100];

	heap_init(&h);
	heap_init(&other);
	for (size_t i = 0; i < 100; i++)
		assert_int_equal(jd_heap_push(&h, &jobs[i]), 0);
	memcpy(before, h.v, sizeof(before));

	jd_heap_remove(&h, &stranger);
	jd_heap_update(&h, &stranger);
	assert_int_equal(stranger.qslot, JD_HEAP_NONE);
	/* A stale slot inside the heap's range, and one beyond it. */
	stranger.qslot = 5;
	jd_heap_remove(&h, &stranger);
	assert_int_equal(stranger.qslot, 5);
	stranger.qslot = 1000;
	jd_heap_remove(&h, &stranger);
	assert_int_equal(stranger.qslot, 1000);
	/* An element of another heap. */
	stranger.qslot = JD_HEAP_NONE;
	assert_int_equal(jd_heap_push(&other, &stranger), 0);
	assert_int_equal(stranger.qslot, 0);
	jd_heap_remove(&h, &stranger);
	assert_int_equal(stranger.qslot, 0);
	assert_int_equal(jd_heap_len(&other), 1);

	assert_int_equal(jd_heap_len(&h), 100);
	assert_memory_equal(before, h.v, sizeof(before));
	check_heap(&h);

	/* Removing twice: the second is a no-op. */
	struct jd_job *j = h.v[37];
	jd_heap_remove(&h, j);
	assert_int_equal(jd_heap_len(&h), 99);
	jd_heap_remove(&h, j);
	assert_int_equal(jd_heap_len(&h), 99);
	check_heap(&h);
	for (size_t i = 0; i < h.len; i++)
		assert_ptr_not_equal(h.v[i], j);

	jd_heap_cleanup(&h);
	jd_heap_cleanup(&other);
	free(jobs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),        cmocka_unit_test(test_small_order),
		cmocka_unit_test(test_random_order), cmocka_unit_test(test_remove_middle),
		cmocka_unit_test(test_update),       cmocka_unit_test(test_remove_absent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
