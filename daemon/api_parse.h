/*
 * api_parse.h - the pure parsing parts of the HTTP API (daemon/api.c):
 * routing a path and reading query values and the Content-Type, apart from
 * libmicrohttpd and the scheduler so that unit tests and the fuzzers
 * (fuzz/fuzz_route.c) can call them. Internal to jobd; any thread.
 */
#ifndef JD_API_PARSE_H
#define JD_API_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* The route pattern ("/v1/jobs/{id}") that serves `path` with `method` (one
 * enum jd_method bit; HEAD is served as GET), its {id} segment copied into
 * id (idlen JD_ID_STRLEN + 1 tells over-long ones). NULL when none does;
 * *allowed then holds the methods the path takes (0: no such path). */
const char *jd__api_route(const char *path, unsigned method, char *id, size_t idlen,
			  unsigned *allowed);

/* Whether a Content-Type (may be NULL) announces a JSON body. */
int jd__api_json_content_type(const char *ct);

/* Query values. Each returns 0 with *out set, or -EINVAL. */
/* ?wait=: seconds >= 0, cut to `max`. */
int jd__api_parse_seconds(const char *v, double max, double *out);
/* ?offset=: a byte offset >= 0. */
int jd__api_parse_offset(const char *v, uint64_t *out);
/* ?state=a,b: adds a bit per state (1 << enum jd_state) to *states; on
 * error the unknown name goes to bad (cut to badlen). */
int jd__api_parse_states(const char *v, unsigned *states, char *bad, size_t badlen);
/* ?limit=: 1 to the page size limit. */
int jd__api_parse_limit(const char *v, long *out);

#endif
