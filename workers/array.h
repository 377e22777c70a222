/*
 * array.h - typed numeric arrays as they travel in job params and results.
 *
 * A numeric array is either a JSON array of numbers or an object
 * {"dtype": "float32", "b64": "..."} holding the little-endian bytes in
 * base64. Results use the form the input used. Any thread.
 */
#ifndef JD_ARRAY_H
#define JD_ARRAY_H

#include <stddef.h>
#include <stdint.h>

#include <jobd/task.h>

enum jd_dtype { JD_INT32, JD_INT64, JD_FLOAT32, JD_FLOAT64 };

struct jd_array {
	enum jd_dtype dtype;
	int b64;    /* 1 when the input was base64 (and output should be) */
	size_t n;   /* number of elements */
	void *data; /* n elements of dtype, owned, aligned for dtype */
};

/* Limit on elements in one array, to bound memory per request. */
#define JD_ARRAY_MAX_ELEMS ((size_t)64 * 1024 * 1024)

size_t jd_dtype_size(enum jd_dtype t);
const char *jd_dtype_name(enum jd_dtype t);
int jd_dtype_from_name(const char *name, enum jd_dtype *out); /* 0 or -EINVAL */

/* Check that `v` is a valid numeric array without decoding it (cheap; used
 * at submission). `field` names it in errors ("params.values"). When the
 * array is a JSON array, `dtype` (may be NULL: any number) tells the type
 * its elements must fit. On success *n_out (may be NULL) gets the length. */
int jd_array_check(const cJSON *v, const enum jd_dtype *dtype, const char *field, size_t *n_out,
		   struct jd_error *err);

/* Decode `v` into `out`. For a JSON array the elements are converted to
 * `dtype` (integers must be integral and in range for int types). For the
 * base64 form the object's own dtype wins, and `dtype`, when given
 * explicitly by the caller (explicit != 0), must match it. Returns 0 or
 * -EINVAL with err filled. */
int jd_array_decode(const cJSON *v, enum jd_dtype dtype, int explicit_dtype, const char *field,
		    struct jd_array *out, struct jd_error *err);

/* Largest integer a JSON number (a double) carries exactly: 2^53 - 1. */
#define JD_JSON_INT_MAX ((int64_t)9007199254740991)

/* Whether `a` can be written as a JSON array without losing values: no
 * NaN or infinity, no int64 beyond +-(2^53-1). The b64 form carries
 * anything. 0, or -ERANGE with err naming result.<name>[i]. */
int jd_array_json_safe(const struct jd_array *a, const char *name, struct jd_error *err);

/* Encode `a` in the form a->b64 selects. Returns a new cJSON or NULL on
 * allocation failure. */
cJSON *jd_array_encode(const struct jd_array *a);

/* Allocate an array of n elements (zeroed). Returns 0 or -ENOMEM. */
int jd_array_alloc(struct jd_array *a, enum jd_dtype dtype, size_t n, int b64);
void jd_array_cleanup(struct jd_array *a);

/* base64 (RFC 4648, with padding). */
size_t jd_base64_encoded_len(size_t n);                      /* without the NUL */
void jd_base64_encode(const void *src, size_t n, char *dst); /* writes NUL */
/* Decode `len` chars; returns bytes written to dst (capacity >= len/4*3),
 * or -EINVAL on bad input (bad char, bad padding, length not a multiple of 4). */
long jd_base64_decode(const char *src, size_t len, void *dst);

#endif
