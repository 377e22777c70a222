/*
 * frame.h - length-prefixed frames between jobd and its child processes
 * (worker processes now, OpenCL device hosts later).
 *
 * A frame is an 8-byte header - payload length (u32, little-endian), type
 * (u16), flags (u16) - and `length` bytes of payload, JSON text for every
 * type in use. Both sides check type and size before using a frame: a child
 * is not trusted to be well-behaved (it runs user code). Any thread; no
 * state beyond the buffers given.
 */
#ifndef JD_FRAME_H
#define JD_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define JD_FRAME_HEADER 8
#define JD_FRAME_MAX    ((uint32_t)256 * 1024 * 1024) /* payload bytes */

enum jd_frame_type {
	JD_FRAME_HELLO = 1,  /* child -> jobd: {"pid", "abi"} once started */
	JD_FRAME_RUN = 2,    /* jobd -> child: one job to run */
	JD_FRAME_DONE = 3,   /* child -> jobd: the job's end */
	JD_FRAME_OUTPUT = 4, /* child -> jobd: an exec job's output grew */
	JD_FRAME_STOP = 5,   /* jobd -> child: stop the running job */
	JD_FRAME_TYPE_MAX = 5,
};

struct jd_frame {
	uint16_t type;
	uint16_t flags;
	uint32_t len;
	const char *payload; /* points into the decoded buffer; not NUL-terminated */
};

/* Decode one frame from buf[0..n). Returns the bytes it takes (> 0) with
 * *f filled, 0 when more bytes are needed, or -EPROTO for a frame that can
 * never be valid (unknown type, length above `max`). */
long jd_frame_decode(const void *buf, size_t n, uint32_t max, struct jd_frame *f);

/* The size in bytes (header included) of the frame whose JD_FRAME_HEADER
 * header bytes are at hdr, or -EPROTO when that header can never start a
 * valid frame. A reader checks this before it waits for the payload. */
long jd_frame_size(const void *hdr, uint32_t max);

/* Write the header for a frame of `len` payload bytes into hdr. */
void jd_frame_header(void *hdr, uint16_t type, uint32_t len);

/* Blocking helpers for the child side: write a whole frame, read one.
 * jd_frame_read returns the payload (malloc'd, NUL-terminated) in *payload;
 * 0, -EPIPE at end of stream, -EPROTO, or -errno. */
int jd_frame_write_fd(int fd, uint16_t type, const void *payload, uint32_t len);
int jd_frame_read_fd(int fd, uint32_t max, uint16_t *type, char **payload, uint32_t *len);

struct cJSON;
/* The "status" of a DONE payload as jobd takes it: 0 or a negative errno,
 * sent as a whole JSON number from -4095 to 0. Anything else - missing, not
 * a number, positive, fractional, out of range - is -EPROTO. */
int jd_frame_status(const struct cJSON *v);

#endif
