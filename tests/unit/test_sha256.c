/*
 * test_sha256.c - unit tests for opencl/sha256.c: the FIPS 180-4 example
 * vectors, a million 'a's, and that any split of the input across updates
 * gives the same digest.
 *
 * sha256.c is pure C (no OpenCL) and part of jdcore, so the test runs
 * whether or not JOBD_OPENCL is on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "opencl/sha256.h"

static void hex_of(const void *data, size_t n, char hex[65])
{
	uint8_t d[JD_SHA256_LEN];

	jd_sha256(data, n, d);
	jd_sha256_hex(d, hex);
}

static void test_vectors(void **state)
{
	static const struct {
		const char *in, *out;
	} v[] = {
		{ "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
		{ "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
		{ "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
		{ "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopq"
		  "klmnopqrlmnopqrsmnopqrstnopqrstu",
		  "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1" },
		{ "The quick brown fox jumps over the lazy dog",
		  "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592" },
	};
	char hex[65];

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		hex_of(v[i].in, strlen(v[i].in), hex);
		assert_string_equal(hex, v[i].out);
	}
}

static void test_million_a(void **state)
{
	size_t n = 1000000;
	char *a = malloc(n), hex[65];

	assert_non_null(a);
	memset(a, 'a', n);
	hex_of(a, n, hex);
	assert_string_equal(hex,
			    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	free(a);
}

/* Lengths around the 55/56/64-byte padding edges, each fed in every split
 * into two updates and in single bytes, must match the one-shot digest. */
static void test_splits(void **state)
{
	uint8_t buf[200], one[JD_SHA256_LEN], got[JD_SHA256_LEN];

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 131 + 7);
	for (size_t n = 0; n <= sizeof(buf); n++) {
		struct jd_sha256 c;

		jd_sha256(buf, n, one);
		for (size_t cut = 0; cut <= n; cut++) {
			jd_sha256_init(&c);
			jd_sha256_update(&c, buf, cut);
			jd_sha256_update(&c, buf + cut, n - cut);
			jd_sha256_final(&c, got);
			assert_memory_equal(one, got, JD_SHA256_LEN);
		}
		jd_sha256_init(&c);
		for (size_t i = 0; i < n; i++)
			jd_sha256_update(&c, buf + i, 1);
		jd_sha256_final(&c, got);
		assert_memory_equal(one, got, JD_SHA256_LEN);
	}
	/* Different inputs, different digests (sanity, not a proof). */
	jd_sha256("a", 1, one);
	jd_sha256("b", 1, got);
	assert_memory_not_equal(one, got, JD_SHA256_LEN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_million_a),
		cmocka_unit_test(test_splits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
