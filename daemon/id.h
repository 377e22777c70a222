/*
 * id.h - job IDs: UUIDv7 (RFC 9562), unique across restarts and sortable by
 * creation time. Loop thread only for generation (it keeps a counter so IDs
 * made in the same millisecond still sort in creation order).
 */
#ifndef JD_ID_H
#define JD_ID_H

#include <stdint.h>

struct jd_id {
	uint8_t b[16];
};

#define JD_ID_STRLEN 37 /* 36 chars + NUL */

/* A new ID, strictly greater than every ID this process made before. */
void jd_id_new(struct jd_id *id);
void jd_id_format(const struct jd_id *id, char *buf); /* buf: JD_ID_STRLEN bytes */
/* Parse the canonical 36-char form (either case); 0 or -EINVAL. */
int jd_id_parse(const char *s, struct jd_id *out);
int jd_id_cmp(const struct jd_id *a, const struct jd_id *b);
/* The value of a hex digit (either case), or -1. */
int jd_hex_digit(char c);
uint64_t jd_id_hash(const struct jd_id *id);

#endif
