/*
 * id.c - UUIDv7 generation and parsing.
 *
 * Layout (RFC 9562 §5.7): 48-bit Unix milliseconds, version 7, 12 bits of
 * rand_a, variant, 62 bits of rand_b. We use rand_a plus the top of rand_b
 * as a counter seeded randomly each millisecond (method 1 of §6.2), so IDs
 * from one process are strictly increasing even within a millisecond, and
 * the rest of rand_b is random so IDs from different runs never collide.
 */
#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "daemon/id.h"
#include "daemon/timeutil.h"

static uint64_t last_ms;
static uint32_t counter; /* 12 bits rand_a + 14 bits from rand_b: 26 bits */

static void fill_random_now(void *buf, size_t n)
{
	uint8_t *p = buf;
	while (n > 0) {
		ssize_t r = getrandom(p, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			/* getrandom cannot fail once the pool is initialised; keep
			 * going with what time gives rather than aborting. */
			uint64_t t = (uint64_t)jd_mono_us();
			memcpy(p, &t, n < 8 ? n : 8);
			r = (ssize_t)(n < 8 ? n : 8);
		}
		p += r;
		n -= (size_t)r;
	}
}

/* Random bytes from a per-thread pool refilled 512 bytes at a time: a
 * getrandom call per ID was a measurable share of a submission. The bytes
 * are the kernel's all the same; a pool is never handed out twice. */
static void fill_random(void *buf, size_t n)
{
	static _Thread_local uint8_t pool[512];
	static _Thread_local size_t left;
	if (n > sizeof(pool)) {
		fill_random_now(buf, n);
		return;
	}
	if (left < n) {
		fill_random_now(pool, sizeof(pool));
		left = sizeof(pool);
	}
	memcpy(buf, pool + sizeof(pool) - left, n);
	memset(pool + sizeof(pool) - left, 0, n);
	left -= n;
}

void jd_id_new(struct jd_id *id)
{
	uint64_t ms = (uint64_t)(jd_real_us() / 1000);
	uint8_t rnd[8];

	fill_random(rnd, sizeof(rnd));
	if (ms > last_ms) {
		last_ms = ms;
		/* Start the counter in its lower half so it rarely overflows. */
		counter = ((uint32_t)rnd[0] << 16 | (uint32_t)rnd[1] << 8 | rnd[2]) & 0x1ffffff;
	} else {
		/* Same millisecond, or the clock went back: keep last_ms and
		 * count up; on overflow borrow the next millisecond. */
		if (++counter >= (1u << 26)) {
			last_ms++;
			counter = 0;
		}
	}
	ms = last_ms;
	id->b[0] = (uint8_t)(ms >> 40);
	id->b[1] = (uint8_t)(ms >> 32);
	id->b[2] = (uint8_t)(ms >> 24);
	id->b[3] = (uint8_t)(ms >> 16);
	id->b[4] = (uint8_t)(ms >> 8);
	id->b[5] = (uint8_t)ms;
	id->b[6] = (uint8_t)(0x70 | ((counter >> 22) & 0x0f));
	id->b[7] = (uint8_t)(counter >> 14);
	id->b[8] = (uint8_t)(0x80 | ((counter >> 8) & 0x3f));
	id->b[9] = (uint8_t)counter;
	memcpy(&id->b[10], &rnd[3], 5);
	fill_random(&id->b[15], 1);
}

void jd_id_format(const struct jd_id *id, char *buf)
{
	static const char hex[] = "0123456789abcdef";
	char *p = buf;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		*p++ = hex[id->b[i] >> 4];
		*p++ = hex[id->b[i] & 15];
	}
	*p = '\0';
}

int jd_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int jd_id_parse(const char *s, struct jd_id *out)
{
	int j = 0;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return -EINVAL;
			continue;
		}
		int hi = jd_hex_digit(s[i]);
		if (hi < 0)
			return -EINVAL;
		int lo = jd_hex_digit(s[++i]);
		if (lo < 0)
			return -EINVAL;
		out->b[j++] = (uint8_t)(hi << 4 | lo);
	}
	return s[36] == '\0' ? 0 : -EINVAL;
}

int jd_id_cmp(const struct jd_id *a, const struct jd_id *b)
{
	return memcmp(a->b, b->b, 16);
}

uint64_t jd_id_hash(const struct jd_id *id)
{
	/* The low 8 bytes are mostly random (counter + random bits). */
	uint64_t h;
	memcpy(&h, &id->b[8], 8);
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 32;
	return h;
}
