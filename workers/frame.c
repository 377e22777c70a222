/*
 * frame.c - frame encoding and decoding. Any thread.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "workers/frame.h"

static uint32_t get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t get_u16(const unsigned char *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

long jd_frame_decode(const void *buf, size_t n, uint32_t max, struct jd_frame *f)
{
	const unsigned char *p = buf;
	if (n < JD_FRAME_HEADER)
		return 0;
	long size = jd_frame_size(p, max);
	if (size < 0 || n < (size_t)size)
		return size < 0 ? size : 0;
	f->len = get_u32(p);
	f->type = get_u16(p + 4);
	f->flags = get_u16(p + 6);
	f->payload = (const char *)p + JD_FRAME_HEADER;
	return size;
}

long jd_frame_size(const void *hdr, uint32_t max)
{
	const unsigned char *p = hdr;
	uint32_t len = get_u32(p);
	uint16_t type = get_u16(p + 4);
	if (type == 0 || type > JD_FRAME_TYPE_MAX || len > max || len > JD_FRAME_MAX)
		return -EPROTO;
	return (long)(JD_FRAME_HEADER + len);
}

void jd_frame_header(void *hdr, uint16_t type, uint32_t len)
{
	unsigned char *p = hdr;
	p[0] = (unsigned char)len;
	p[1] = (unsigned char)(len >> 8);
	p[2] = (unsigned char)(len >> 16);
	p[3] = (unsigned char)(len >> 24);
	p[4] = (unsigned char)type;
	p[5] = (unsigned char)(type >> 8);
	p[6] = p[7] = 0;
}

static int write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int read_all(int fd, void *buf, size_t n)
{
	char *p = buf;
	while (n > 0) {
		ssize_t r = read(fd, p, n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EPIPE;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

int jd_frame_write_fd(int fd, uint16_t type, const void *payload, uint32_t len)
{
	unsigned char hdr[JD_FRAME_HEADER];
	jd_frame_header(hdr, type, len);
	int r = write_all(fd, hdr, sizeof(hdr));
	if (r == 0 && len)
		r = write_all(fd, payload, len);
	return r;
}

int jd_frame_read_fd(int fd, uint32_t max, uint16_t *type, char **payload, uint32_t *len)
{
	unsigned char hdr[JD_FRAME_HEADER];
	int r = read_all(fd, hdr, sizeof(hdr));
	if (r < 0)
		return r;
	if (jd_frame_size(hdr, max) < 0)
		return -EPROTO;
	uint32_t n = get_u32(hdr);
	char *p = malloc((size_t)n + 1);
	if (!p)
		return -ENOMEM;
	if ((r = read_all(fd, p, n)) < 0) {
		free(p);
		return r;
	}
	p[n] = '\0';
	*type = get_u16(hdr + 4);
	*payload = p;
	*len = n;
	return 0;
}

int jd_frame_status(const cJSON *v)
{
	/* Range first: converting a double outside int's range is undefined. */
	if (!cJSON_IsNumber(v) || !(v->valuedouble >= -4095 && v->valuedouble <= 0) ||
	    v->valuedouble != floor(v->valuedouble))
		return -EPROTO;
	return (int)v->valuedouble;
}
