/*
 * array.c - typed numeric arrays in job params and results, and base64.
 *
 * Any thread. jd_array_check() runs on the loop thread at submission, so it
 * allocates nothing and is one linear pass over the input; decoding and
 * encoding run on executor threads.
 *
 * JSON numbers reach us through cJSON, which holds every number as a double.
 * A double holds every integer up to 2^53 exactly and nothing beyond that
 * reliably, so int64 values past +-(2^53-1) in a JSON array are refused rather
 * than silently rounded: such data must travel in the b64 form, which is
 * exact for every dtype.
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workers/array.h"
#include "workers/tasks.h"

/* The b64 form carries little-endian bytes and is copied straight into the
 * element array; a big-endian port would need byte swaps here. */
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "array.c assumes a little-endian host"
#endif

/* 2^53-1. Every integer up to it has its own double; 2^53+1 already parses
 * as 2^53, so a JSON integer above this bound may not be what was sent. */
#define JSON_INT_MAX 9007199254740991.0

/* Smallest magnitude that rounds to infinity as a float32: FLT_MAX plus half
 * an ulp (the tie rounds to even, which is upward here). */
#define FLOAT32_OVERFLOW 0x1.ffffffp+127

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

#define BAD 0xff
/* Character -> 6-bit value; BAD (high bit set) for anything outside the
 * alphabet, '=' included: padding is handled apart, in the last quad. */
static const uint8_t b64_value[256] = {
	BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD,
	BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD,
	BAD, BAD, BAD, BAD, BAD, BAD, BAD, 62,  BAD, BAD, BAD, 63,  52,  53,  54,  55,  56,  57,
	58,  59,  60,  61,  BAD, BAD, BAD, BAD, BAD, BAD, BAD, 0,   1,   2,   3,   4,   5,   6,
	7,   8,   9,   10,  11,  12,  13,  14,  15,  16,  17,  18,  19,  20,  21,  22,  23,  24,
	25,  BAD, BAD, BAD, BAD, BAD, BAD, 26,  27,  28,  29,  30,  31,  32,  33,  34,  35,  36,
	37,  38,  39,  40,  41,  42,  43,  44,  45,  46,  47,  48,  49,  50,  51,  BAD, BAD, BAD,
	BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD,
	BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD,
	BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD,
	BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD,
	BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD,
	BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD,
	BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD, BAD,
	BAD, BAD, BAD, BAD,
};

static const char *const dtype_names[] = {
	[JD_INT32] = "int32",
	[JD_INT64] = "int64",
	[JD_FLOAT32] = "float32",
	[JD_FLOAT64] = "float64",
};

size_t jd_dtype_size(enum jd_dtype t)
{
	switch (t) {
	case JD_INT32:
	case JD_FLOAT32: return 4;
	case JD_INT64:
	case JD_FLOAT64: return 8;
	}
	return 0;
}

const char *jd_dtype_name(enum jd_dtype t)
{
	if ((unsigned)t < sizeof(dtype_names) / sizeof(dtype_names[0]))
		return dtype_names[t];
	return NULL;
}

int jd_dtype_from_name(const char *name, enum jd_dtype *out)
{
	if (!name)
		return -EINVAL;
	for (unsigned i = 0; i < sizeof(dtype_names) / sizeof(dtype_names[0]); i++) {
		if (strcmp(name, dtype_names[i]) == 0) {
			*out = (enum jd_dtype)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* ---- base64 ---- */

size_t jd_base64_encoded_len(size_t n)
{
	return n / 3 * 4 + (n % 3 ? 4 : 0);
}

void jd_base64_encode(const void *src, size_t n, char *dst)
{
	const uint8_t *s = src;
	size_t i = 0;

	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];

		dst[0] = b64_alphabet[v >> 18];
		dst[1] = b64_alphabet[(v >> 12) & 63];
		dst[2] = b64_alphabet[(v >> 6) & 63];
		dst[3] = b64_alphabet[v & 63];
		dst += 4;
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)s[i] << 16;

		dst[0] = b64_alphabet[v >> 18];
		dst[1] = b64_alphabet[(v >> 12) & 63];
		dst[2] = '=';
		dst[3] = '=';
		dst += 4;
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;

		dst[0] = b64_alphabet[v >> 18];
		dst[1] = b64_alphabet[(v >> 12) & 63];
		dst[2] = b64_alphabet[(v >> 6) & 63];
		dst[3] = '=';
		dst += 4;
	}
	*dst = '\0';
}

/* Padding characters at the end of a base64 text whose length is a
 * non-zero multiple of 4 (0, 1 or 2; a third '=' fails later as a bad
 * character). */
static size_t b64_padding(const char *s, size_t len)
{
	if (s[len - 1] != '=')
		return 0;
	return s[len - 2] == '=' ? 2 : 1;
}

/* Index of the first character of the quad at `q` that is outside the
 * alphabet. Only called once the quad is known to hold one. */
static size_t b64_bad_in_quad(const unsigned char *q, size_t base)
{
	for (size_t i = 0; i < 4; i++)
		if (b64_value[q[i]] & 0x80)
			return base + i;
	return base;
}

/* Check and decode the last quad, the only one that may hold padding. We
 * accept only canonical encodings (RFC 4648 §3.5): the bits that padding
 * leaves over must be zero, so that each byte string has one encoding.
 * Returns the bytes it holds (1..3) or -EINVAL with *bad set. */
static int b64_last_quad(const unsigned char *q, size_t base, uint8_t *dst, size_t *bad)
{
	uint32_t a = b64_value[q[0]], b = b64_value[q[1]], c, d;

	if ((a | b) & 0x80) {
		*bad = b64_bad_in_quad(q, base);
		return -EINVAL;
	}
	if (q[2] == '=' && q[3] == '=') {
		if (b & 0x0f) {
			*bad = base + 1;
			return -EINVAL;
		}
		if (dst)
			dst[0] = (uint8_t)(a << 2 | b >> 4);
		return 1;
	}
	c = b64_value[q[2]];
	if (c & 0x80) {
		*bad = base + 2;
		return -EINVAL;
	}
	if (q[3] == '=') {
		if (c & 0x03) {
			*bad = base + 2;
			return -EINVAL;
		}
		if (dst) {
			dst[0] = (uint8_t)(a << 2 | b >> 4);
			dst[1] = (uint8_t)(b << 4 | c >> 2);
		}
		return 2;
	}
	d = b64_value[q[3]];
	if (d & 0x80) {
		*bad = base + 3;
		return -EINVAL;
	}
	if (dst) {
		uint32_t v = a << 18 | b << 12 | c << 6 | d;

		dst[0] = (uint8_t)(v >> 16);
		dst[1] = (uint8_t)(v >> 8);
		dst[2] = (uint8_t)v;
	}
	return 3;
}

/* Decode (dst != NULL) or only validate (dst == NULL) `len` characters,
 * len a multiple of 4. Returns the byte count or -EINVAL with *bad the index
 * of the first offending character. Two loops rather than a test per quad:
 * this is the hot path for large arrays. */
static long b64_run(const char *src, size_t len, uint8_t *dst, size_t *bad)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t quads, i;
	int last;

	if (len == 0)
		return 0;
	quads = len / 4 - 1;
	if (dst) {
		uint8_t *d = dst;

		for (i = 0; i < quads; i++, s += 4, d += 3) {
			uint32_t a = b64_value[s[0]], b = b64_value[s[1]];
			uint32_t c = b64_value[s[2]], e = b64_value[s[3]];
			uint32_t v;

			if ((a | b | c | e) & 0x80) {
				*bad = b64_bad_in_quad(s, i * 4);
				return -EINVAL;
			}
			v = a << 18 | b << 12 | c << 6 | e;
			d[0] = (uint8_t)(v >> 16);
			d[1] = (uint8_t)(v >> 8);
			d[2] = (uint8_t)v;
		}
	} else {
		for (i = 0; i < quads; i++, s += 4) {
			if ((b64_value[s[0]] | b64_value[s[1]] | b64_value[s[2]] |
			     b64_value[s[3]]) &
			    0x80) {
				*bad = b64_bad_in_quad(s, i * 4);
				return -EINVAL;
			}
		}
	}
	last = b64_last_quad(s, quads * 4, dst ? dst + quads * 3 : NULL, bad);
	if (last < 0)
		return last;
	return (long)(quads * 3 + (size_t)last);
}

long jd_base64_decode(const char *src, size_t len, void *dst)
{
	size_t bad = 0;

	if (len % 4)
		return -EINVAL;
	return b64_run(src, len, dst, &bad);
}

/* ---- validation helpers ---- */

/* Print a double with 15 significant digits, or 17 when 15 do not read
 * back exactly, so that error messages quote what the client sent. */
static const char *fmt_num(char *buf, size_t size, double v)
{
	snprintf(buf, size, "%.15g", v);
	if (strtod(buf, NULL) != v)
		snprintf(buf, size, "%.17g", v);
	return buf;
}

/* Check one JSON array element against `dtype` (NULL: any finite number).
 * `field` names the array; the error names the element. */
static int check_elem(const cJSON *e, const enum jd_dtype *dtype, const char *field, size_t i,
		      struct jd_error *err)
{
	char f[sizeof(err->field)], num[32];
	double v;

	if (!cJSON_IsNumber(e)) {
		snprintf(f, sizeof(f), "%s[%zu]", field, i);
		return jd_error_set(err, "invalid_params", f, "expected a number, got %s",
				    jd_json_kind(e));
	}
	v = e->valuedouble;
	if (!isfinite(v)) {
		/* cJSON parses 1e999 as infinity; JSON itself has no NaN or
		 * infinity, and results could not carry them back. */
		snprintf(f, sizeof(f), "%s[%zu]", field, i);
		return jd_error_set(err, "invalid_params", f,
				    "not a finite number (JSON has no NaN or infinity; "
				    "use the b64 form to send such values)");
	}
	if (!dtype || *dtype == JD_FLOAT64)
		return 0;
	snprintf(f, sizeof(f), "%s[%zu]", field, i);
	switch (*dtype) {
	case JD_FLOAT32:
		if (fabs(v) >= FLOAT32_OVERFLOW)
			return jd_error_set(err, "invalid_params", f,
					    "%s is out of range for float32",
					    fmt_num(num, sizeof(num), v));
		return 0;
	case JD_INT32:
	case JD_INT64:
		if (v != floor(v))
			return jd_error_set(err, "invalid_params", f,
					    "%s is not an integer (dtype %s)",
					    fmt_num(num, sizeof(num), v), jd_dtype_name(*dtype));
		if (*dtype == JD_INT32 && (v < -2147483648.0 || v > 2147483647.0))
			return jd_error_set(err, "invalid_params", f,
					    "%s is out of range for int32 "
					    "(-2147483648..2147483647)",
					    fmt_num(num, sizeof(num), v));
		if (*dtype == JD_INT64 && fabs(v) > JSON_INT_MAX)
			return jd_error_set(err, "invalid_params", f,
					    "%s is beyond +-(2^53-1), the largest integer a JSON "
					    "number holds exactly; send such int64 data as "
					    "{\"dtype\": \"int64\", \"b64\": \"...\"}",
					    fmt_num(num, sizeof(num), v));
		return 0;
	case JD_FLOAT64: break;
	}
	return 0;
}

/* The parts of a {"dtype", "b64"} object, checked for everything but the
 * characters of the text. */
struct b64_form {
	enum jd_dtype dtype;
	const char *text;
	size_t len;    /* characters */
	size_t nbytes; /* decoded bytes */
	size_t n;      /* elements */
};

static int parse_b64_form(const cJSON *v, const char *field, struct b64_form *out,
			  struct jd_error *err)
{
	char f[sizeof(err->field)];
	const cJSON *dt = NULL, *text = NULL, *it;
	size_t esize;

	cJSON_ArrayForEach(it, v)
	{
		const cJSON **slot;

		if (it->string && strcmp(it->string, "dtype") == 0) {
			slot = &dt;
		} else if (it->string && strcmp(it->string, "b64") == 0) {
			slot = &text;
		} else {
			snprintf(f, sizeof(f), "%s.%s", field, it->string ? it->string : "");
			return jd_error_set(err, "invalid_params", f,
					    "unknown key; an encoded array is "
					    "{\"dtype\": ..., \"b64\": ...}");
		}
		if (*slot) {
			snprintf(f, sizeof(f), "%s.%s", field, it->string);
			return jd_error_set(err, "invalid_params", f, "duplicate key");
		}
		*slot = it;
	}
	snprintf(f, sizeof(f), "%s.dtype", field);
	if (!dt)
		return jd_error_set(err, "invalid_params", f,
				    "missing; an encoded array needs its dtype "
				    "(int32, int64, float32 or float64)");
	if (!cJSON_IsString(dt))
		return jd_error_set(err, "invalid_params", f, "expected a string, got %s",
				    jd_json_kind(dt));
	if (jd_dtype_from_name(dt->valuestring, &out->dtype) < 0)
		return jd_error_set(err, "invalid_params", f,
				    "unknown dtype \"%.40s\" (expected int32, int64, float32 "
				    "or float64)",
				    dt->valuestring);
	snprintf(f, sizeof(f), "%s.b64", field);
	if (!text)
		return jd_error_set(err, "invalid_params", f, "missing");
	if (!cJSON_IsString(text))
		return jd_error_set(err, "invalid_params", f, "expected a string, got %s",
				    jd_json_kind(text));
	out->text = text->valuestring;
	out->len = strlen(out->text);
	if (out->len % 4)
		return jd_error_set(err, "invalid_params", f,
				    "base64 length %zu is not a multiple of 4 (padded "
				    "RFC 4648 base64 expected)",
				    out->len);
	out->nbytes = out->len ? out->len / 4 * 3 - b64_padding(out->text, out->len) : 0;
	esize = jd_dtype_size(out->dtype);
	if (out->nbytes % esize)
		return jd_error_set(err, "invalid_params", f,
				    "%zu bytes is not a whole number of %s elements "
				    "(%zu bytes each)",
				    out->nbytes, jd_dtype_name(out->dtype), esize);
	out->n = out->nbytes / esize;
	if (out->n > JD_ARRAY_MAX_ELEMS)
		return jd_error_set(err, "invalid_params", f,
				    "%zu elements is more than the limit of %zu", out->n,
				    JD_ARRAY_MAX_ELEMS);
	return 0;
}

static int bad_b64_char(const struct b64_form *b, size_t bad, const char *field,
			struct jd_error *err)
{
	char f[sizeof(err->field)];
	unsigned char c = (unsigned char)b->text[bad];

	snprintf(f, sizeof(f), "%s.b64", field);
	if (c == '=')
		return jd_error_set(err, "invalid_params", f, "misplaced padding at character %zu",
				    bad);
	if (c > 0x20 && c < 0x7f && b64_value[c] != BAD)
		/* A valid letter can only fail as the last one before
		 * padding, with bits set that padding must leave zero. */
		return jd_error_set(err, "invalid_params", f,
				    "non-canonical base64: character %zu ('%c') has bits set "
				    "that the padding discards",
				    bad, c);
	if (c > 0x20 && c < 0x7f)
		return jd_error_set(err, "invalid_params", f,
				    "invalid base64 character '%c' at %zu (standard alphabet "
				    "A-Z a-z 0-9 + / expected, no line breaks)",
				    c, bad);
	return jd_error_set(err, "invalid_params", f,
			    "invalid base64 byte 0x%02x at %zu (standard alphabet A-Z a-z 0-9 "
			    "+ / expected, no line breaks)",
			    c, bad);
}

static int not_an_array(const cJSON *v, const char *field, struct jd_error *err)
{
	return jd_error_set(err, "invalid_params", field,
			    "expected an array of numbers or {\"dtype\": ..., \"b64\": ...}, "
			    "got %s",
			    jd_json_kind(v));
}

int jd_array_check(const cJSON *v, const enum jd_dtype *dtype, const char *field, size_t *n_out,
		   struct jd_error *err)
{
	const cJSON *e;
	size_t n = 0, bad = 0;
	int rc;

	if (!field)
		field = "";
	if (cJSON_IsArray(v)) {
		cJSON_ArrayForEach(e, v)
		{
			if (n == JD_ARRAY_MAX_ELEMS)
				return jd_error_set(err, "invalid_params", field,
						    "more than %zu elements", JD_ARRAY_MAX_ELEMS);
			rc = check_elem(e, dtype, field, n, err);
			if (rc < 0)
				return rc;
			n++;
		}
	} else if (cJSON_IsObject(v)) {
		struct b64_form b;

		rc = parse_b64_form(v, field, &b, err);
		if (rc < 0)
			return rc;
		if (b64_run(b.text, b.len, NULL, &bad) < 0)
			return bad_b64_char(&b, bad, field, err);
		n = b.n;
	} else {
		return not_an_array(v, field, err);
	}
	if (n_out)
		*n_out = n;
	return 0;
}

/* ---- decode / encode ---- */

int jd_array_alloc(struct jd_array *a, enum jd_dtype dtype, size_t n, int b64)
{
	size_t esize = jd_dtype_size(dtype), bytes;
	void *p;

	a->dtype = dtype;
	a->b64 = b64;
	a->n = 0;
	a->data = NULL;
	if (esize == 0 || n > SIZE_MAX / esize - 64)
		return -ENOMEM;
	/* 64: a cache line, and enough for any SIMD load; never 0 bytes so
	 * that an empty array still has a pointer to free. */
	bytes = n * esize;
	if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0)
		return -ENOMEM;
	memset(p, 0, bytes);
	a->n = n;
	a->data = p;
	return 0;
}

void jd_array_cleanup(struct jd_array *a)
{
	if (!a)
		return;
	free(a->data);
	a->data = NULL;
	a->n = 0;
}

/* Not the client's fault, so not "invalid_params"; -ENOMEM fails the job. */
static int out_of_memory(size_t n, const char *field, struct jd_error *err)
{
	jd_error_set(err, "task_failed", field, "out of memory for %zu elements", n);
	return -ENOMEM;
}

static int decode_json(const cJSON *v, enum jd_dtype dtype, const char *field, struct jd_array *out,
		       struct jd_error *err)
{
	const cJSON *e;
	size_t n, i = 0;
	int rc;

	/* The check pass gives the length and proves every element fits, so
	 * the conversion loop below cannot fail half-way. */
	rc = jd_array_check(v, &dtype, field, &n, err);
	if (rc < 0)
		return rc;
	if (jd_array_alloc(out, dtype, n, 0) < 0)
		return out_of_memory(n, field, err);
	cJSON_ArrayForEach(e, v)
	{
		double d = e->valuedouble;

		switch (dtype) {
		case JD_INT32: ((int32_t *)out->data)[i] = (int32_t)d; break;
		case JD_INT64: ((int64_t *)out->data)[i] = (int64_t)d; break;
		case JD_FLOAT32: ((float *)out->data)[i] = (float)d; break;
		case JD_FLOAT64: ((double *)out->data)[i] = d; break;
		}
		i++;
	}
	return 0;
}

int jd_array_decode(const cJSON *v, enum jd_dtype dtype, int explicit_dtype, const char *field,
		    struct jd_array *out, struct jd_error *err)
{
	struct b64_form b;
	size_t bad = 0;
	int rc;

	out->dtype = dtype;
	out->b64 = 0;
	out->n = 0;
	out->data = NULL;
	if (!field)
		field = "";
	if (jd_dtype_size(dtype) == 0)
		return jd_error_set(err, "invalid_params", field, "unknown dtype");
	if (cJSON_IsArray(v))
		return decode_json(v, dtype, field, out, err);
	if (!cJSON_IsObject(v))
		return not_an_array(v, field, err);

	rc = parse_b64_form(v, field, &b, err);
	if (rc < 0)
		return rc;
	if (explicit_dtype && b.dtype != dtype) {
		char f[sizeof(err->field)];

		snprintf(f, sizeof(f), "%s.dtype", field);
		return jd_error_set(err, "invalid_params", f,
				    "%s does not match the dtype %s given for this task",
				    jd_dtype_name(b.dtype), jd_dtype_name(dtype));
	}
	if (jd_array_alloc(out, b.dtype, b.n, 1) < 0)
		return out_of_memory(b.n, field, err);
	if (b64_run(b.text, b.len, out->data, &bad) < 0) {
		jd_array_cleanup(out);
		return bad_b64_char(&b, bad, field, err);
	}
	return 0;
}

/* The double nearest to the shortest decimal that reads back as `f`, so
 * that cJSON prints float32 results as 0.1 rather than 0.10000000149011612
 * and a client parsing them as float32 gets `f` back. 9 significant digits
 * always suffice; most values need 8 or 9, so the search starts at 8 and
 * goes down while the shorter text still reads back. %g drops trailing
 * zeros, so 0.1f already comes out as "0.1" at 6 digits. */
static double float32_shortest(float f)
{
	char buf[2][32];
	int best = -1;

	if (!isfinite(f))
		return (double)f;
	for (int p = 8; p >= 6; p--) {
		char *b = buf[p & 1];

		snprintf(b, sizeof(buf[0]), "%.*g", p, (double)f);
		if (strtof(b, NULL) != f)
			break;
		best = p;
	}
	if (best < 0) {
		snprintf(buf[0], sizeof(buf[0]), "%.9g", (double)f);
		return strtod(buf[0], NULL);
	}
	return strtod(buf[best & 1], NULL);
}

static cJSON *encode_b64(const struct jd_array *a)
{
	size_t nbytes = a->n * jd_dtype_size(a->dtype);
	cJSON *obj = NULL, *s;
	char *text;

	text = malloc(jd_base64_encoded_len(nbytes) + 1);
	if (!text)
		return NULL;
	jd_base64_encode(a->data, nbytes, text);
	obj = cJSON_CreateObject();
	if (!obj || !cJSON_AddStringToObject(obj, "dtype", jd_dtype_name(a->dtype)))
		goto fail;
	s = cJSON_CreateString(text);
	if (!s)
		goto fail;
	cJSON_AddItemToObject(obj, "b64", s);
	free(text);
	return obj;
fail:
	free(text);
	cJSON_Delete(obj);
	return NULL;
}

cJSON *jd_array_encode(const struct jd_array *a)
{
	cJSON *arr;

	if (jd_dtype_size(a->dtype) == 0)
		return NULL;
	if (a->b64)
		return encode_b64(a);
	/* Non-finite floats come out as JSON null (cJSON's choice); callers
	 * that must not lose them check before encoding. */
	arr = cJSON_CreateArray();
	if (!arr)
		return NULL;
	for (size_t i = 0; i < a->n; i++) {
		double d = 0;
		cJSON *e;

		switch (a->dtype) {
		case JD_INT32: d = ((const int32_t *)a->data)[i]; break;
		case JD_INT64: d = (double)((const int64_t *)a->data)[i]; break;
		case JD_FLOAT32: d = float32_shortest(((const float *)a->data)[i]); break;
		case JD_FLOAT64: d = ((const double *)a->data)[i]; break;
		}
		e = cJSON_CreateNumber(d);
		if (!e) {
			cJSON_Delete(arr);
			return NULL;
		}
		cJSON_AddItemToArray(arr, e);
	}
	return arr;
}

int jd_array_json_safe(const struct jd_array *a, const char *name, struct jd_error *err)
{
	char f[sizeof(err->field)];
	size_t i;

	if (a->b64)
		return 0;
	for (i = 0; i < a->n; i++) {
		if (a->dtype == JD_FLOAT32 && !isfinite(((const float *)a->data)[i]))
			break;
		if (a->dtype == JD_FLOAT64 && !isfinite(((const double *)a->data)[i]))
			break;
		if (a->dtype == JD_INT64 && (((const int64_t *)a->data)[i] > JD_JSON_INT_MAX ||
					     ((const int64_t *)a->data)[i] < -JD_JSON_INT_MAX))
			break;
	}
	if (i == a->n)
		return 0;
	snprintf(f, sizeof(f), "result.%s[%zu]", name, i);
	jd_error_set(err, "task_failed", f,
		     "the result %s, which a JSON number cannot carry exactly; send the "
		     "input as {\"dtype\": ..., \"b64\": ...} to get a b64 result",
		     a->dtype == JD_INT64 ? "is beyond +-(2^53-1)"
					  : "is not finite (NaN or infinity)");
	return -ERANGE;
}
