/*
 * fuzz.h - what every fuzz target (fuzz/fuzz_*.c) shares: the libFuzzer
 * entry point, which replay_main.c also calls, and FUZZ_CHECK for the
 * properties a target asserts beyond the sanitizers' own.
 */
#ifndef JD_FUZZ_H
#define JD_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* One input; 0 always (libFuzzer reserves other values). Everything the
 * call allocates is freed before it returns: LeakSanitizer is on. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property the code under test must keep: abort, so that libFuzzer saves
 * the input and the replay test fails. */
#define FUZZ_CHECK(cond)                                                                      \
	do {                                                                                  \
		if (!(cond)) {                                                                \
			fprintf(stderr, "%s:%d: FUZZ_CHECK(%s) failed\n", __FILE__, __LINE__, \
				#cond);                                                       \
			abort();                                                              \
		}                                                                             \
	} while (0)

/* The input as a NUL-terminated string (malloc'd; abort when out of
 * memory), as the daemon holds a request body or a config line. */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		abort();
	for (size_t i = 0; i < size; i++)
		s[i] = (char)data[i];
	s[size] = '\0';
	return s;
}

#endif
