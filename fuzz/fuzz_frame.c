/*
 * fuzz_frame.c - what a child process sends jobd: a stream of frames
 * (workers/frame.c) and their payloads.
 *
 * The bytes are a byte stream from a child. They are decoded twice:
 *   - as workers/child.c's on_read() does on jobd's side: header first
 *     (jd_frame_size: a bad type or length is refused before any byte of
 *     the body is waited for), then jd_frame_decode() of the whole frame,
 *     then the
 *     payload of each DONE and OUTPUT frame as the process executor reads
 *     it (jd__procs_parse_done, jd__procs_parse_output);
 *   - with the blocking jd_frame_read_fd() a child uses, from a memfd.
 * Both must find the same frames and stop at the same place for the same
 * reason; a decoded header must encode back to the same bytes.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "daemon/job.h"
#include "fuzz/fuzz.h"
#include "workers/frame.h"
#include "workers/procs.h"

struct seen {
	uint16_t type;
	uint32_t len;
	size_t off; /* of the payload in the input */
};

/* Payloads, checked as the process executor takes them. */
static void payload(const struct jd_frame *f)
{
	if (f->type == JD_FRAME_DONE) {
		struct jd_error err = { 0 };
		char *result = NULL;
		int status = 1;
		if (jd__procs_parse_done(f->payload, f->len, &status, &result, &err) == 0) {
			/* 0 or a negative errno: what jd_sched_complete() takes. */
			FUZZ_CHECK(status <= 0 && status >= -4095);
			if (result) {
				cJSON *r = cJSON_Parse(result);
				FUZZ_CHECK(r != NULL);
				cJSON_Delete(r);
			}
		} else {
			FUZZ_CHECK(result == NULL);
		}
		free(result);
	} else if (f->type == JD_FRAME_OUTPUT) {
		struct jd_output out = { 0 };
		jd__procs_parse_output(f->payload, f->len, &out);
		/* A process group jobd may signal: never 1 (kill(-1) is every
		 * process), never its own. */
		FUZZ_CHECK(out.pgid == 0 || (out.pgid > 1 && out.pgid != getpgrp()));
	}
}

static uint32_t get_len(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

enum stop { NEED_MORE, BAD };

/* child.c's on_read() over the whole input. */
static enum stop decode_stream(const uint8_t *data, size_t size, struct seen *seen, size_t *nseen)
{
	size_t off = 0;
	*nseen = 0;
	for (;;) {
		size_t avail = size - off;
		if (avail < JD_FRAME_HEADER)
			return NEED_MORE;
		const uint8_t *hdr = data + off;
		long need = jd_frame_size(hdr, JD_FRAME_MAX);
		if (need < 0) {
			FUZZ_CHECK(need == -EPROTO);
			return BAD;
		}
		if (avail < (size_t)need)
			return NEED_MORE;
		uint32_t len = get_len(hdr);
		FUZZ_CHECK((size_t)need == JD_FRAME_HEADER + len);
		struct jd_frame f;
		long n = jd_frame_decode(hdr, JD_FRAME_HEADER + len, JD_FRAME_MAX, &f);
		if (n <= 0) {
			FUZZ_CHECK(n == -EPROTO);
			return BAD;
		}
		FUZZ_CHECK((size_t)n == JD_FRAME_HEADER + len);
		FUZZ_CHECK(f.len == len && f.type >= 1 && f.type <= JD_FRAME_TYPE_MAX);
		FUZZ_CHECK(f.payload == (const char *)hdr + JD_FRAME_HEADER);
		/* With all the rest of the stream: the same frame. */
		struct jd_frame g;
		FUZZ_CHECK(jd_frame_decode(hdr, avail, JD_FRAME_MAX, &g) == n);
		FUZZ_CHECK(g.len == f.len && g.type == f.type && g.flags == f.flags);
		/* One byte short: not yet a frame. */
		FUZZ_CHECK(jd_frame_decode(hdr, (size_t)n - 1, JD_FRAME_MAX, &g) == 0);
		uint8_t back[JD_FRAME_HEADER];
		jd_frame_header(back, f.type, f.len);
		FUZZ_CHECK(memcmp(back, hdr, 6) == 0);
		payload(&f);
		seen[*nseen] = (struct seen){ f.type, f.len, off + JD_FRAME_HEADER };
		(*nseen)++;
		off += (size_t)n;
	}
}

/* The child side's blocking reader must agree with decode_stream. */
static void read_fd(const uint8_t *data, size_t size, const struct seen *seen, size_t nseen,
		    enum stop stop)
{
	int fd = memfd_create("fuzz_frame", MFD_CLOEXEC);
	FUZZ_CHECK(fd >= 0);
	FUZZ_CHECK(write(fd, data, size) == (ssize_t)size);
	FUZZ_CHECK(lseek(fd, 0, SEEK_SET) == 0);
	for (size_t i = 0;; i++) {
		uint16_t type = 0;
		char *p = NULL;
		uint32_t len = 0;
		int rc = jd_frame_read_fd(fd, JD_FRAME_MAX, &type, &p, &len);
		if (i < nseen) {
			FUZZ_CHECK(rc == 0);
			FUZZ_CHECK(type == seen[i].type && len == seen[i].len);
			FUZZ_CHECK(memcmp(p, data + seen[i].off, len) == 0 && p[len] == '\0');
			free(p);
			continue;
		}
		/* Past the last whole frame: a bad header is -EPROTO, a cut
		 * one (or none) the end of the stream. */
		FUZZ_CHECK(rc == (stop == BAD ? -EPROTO : -EPIPE));
		break;
	}
	close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t nseen;
	struct seen *seen = malloc((size / JD_FRAME_HEADER + 1) * sizeof(*seen));
	FUZZ_CHECK(seen != NULL);
	enum stop stop = decode_stream(data, size, seen, &nseen);
	read_fd(data, size, seen, nseen, stop);
	free(seen);
	return 0;
}
