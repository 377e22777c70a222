/*
 * sha256.h - a small, self-contained SHA-256 (FIPS 180-4), for the OpenCL
 * program cache's keys. Any thread; no state beyond the context given.
 */
#ifndef JD_SHA256_H
#define JD_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define JD_SHA256_LEN 32

struct jd_sha256 {
	uint32_t h[8];
	uint64_t bytes; /* message length so far */
	uint8_t block[64];
	size_t fill; /* bytes waiting in block */
};

void jd_sha256_init(struct jd_sha256 *c);
void jd_sha256_update(struct jd_sha256 *c, const void *data, size_t n);
void jd_sha256_final(struct jd_sha256 *c, uint8_t out[JD_SHA256_LEN]);

/* One-shot digest of data[0..n). */
void jd_sha256(const void *data, size_t n, uint8_t out[JD_SHA256_LEN]);

/* Lower-case hex of a digest into hex (65 bytes with the NUL). */
void jd_sha256_hex(const uint8_t digest[JD_SHA256_LEN], char hex[2 * JD_SHA256_LEN + 1]);

#endif
