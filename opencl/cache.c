/*
 * cache.c - the program cache: memory, then disk, then the compiler (see
 * cache.h).
 *
 * jobd-opencl-host only; single-threaded. Disk trouble (unwritable dir,
 * bad file) never fails a job: it is logged and the cache falls back to
 * memory, or to compiling; a binary that does not load is removed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/log.h"
#include "opencl/cache.h"

/* Changes whenever the key's inputs or the file layout change. */
#define KEY_TAG    "jobd-opencl-cache-1"
#define FILE_MAGIC "JDCLBIN1"
#define HEADER_LEN (8 + JD_SHA256_LEN + 8)
#define BINARY_MAX ((size_t)256 * 1024 * 1024)

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Each field with its length first, so that no two field lists hash
 * alike. */
static void key_field(struct jd_sha256 *h, const char *s)
{
	uint64_t n = s ? strlen(s) : 0;
	uint8_t len[8];

	for (int i = 0; i < 8; i++)
		len[i] = (uint8_t)(n >> (8 * i));
	jd_sha256_update(h, len, sizeof(len));
	if (n)
		jd_sha256_update(h, s, n);
}

static void make_key(const struct jd_cl_device *dev, const char *source, const char *options,
		     uint8_t key[JD_SHA256_LEN])
{
	struct jd_sha256 h;

	jd_sha256_init(&h);
	key_field(&h, KEY_TAG);
	key_field(&h, source);
	key_field(&h, options);
	key_field(&h, dev->name);
	key_field(&h, dev->driver_version);
	key_field(&h, dev->platform_version);
	jd_sha256_final(&h, key);
}

static void file_path(const struct jd_cl_cache *c, const uint8_t key[JD_SHA256_LEN], char *out,
		      size_t n)
{
	char hex[2 * JD_SHA256_LEN + 1];

	jd_sha256_hex(key, hex);
	snprintf(out, n, "%s/%s.bin", c->dir, hex);
}

/* ---- start-up housekeeping of the directory ---- */

struct file_ent {
	char name[80];
	off_t size;
	time_t mtime;
};

static int by_mtime(const void *a, const void *b)
{
	const struct file_ent *x = a, *y = b;

	return (x->mtime > y->mtime) - (x->mtime < y->mtime);
}

/* Remove temporary files whose writer is dead, and trim *.bin files,
 * oldest first (disk hits touch their file), to JD_CL_CACHE_DISK_MAX. */
static void tidy_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	struct file_ent *files = NULL;
	size_t n = 0, cap = 0;
	uint64_t total = 0;

	if (!d)
		return;
	while ((e = readdir(d))) {
		struct stat st;
		size_t len = strlen(e->d_name);

		if (strncmp(e->d_name, ".tmp-", 5) == 0) {
			long pid = strtol(e->d_name + 5, NULL, 10);

			if (pid > 0 && kill((pid_t)pid, 0) < 0 && errno == ESRCH)
				unlinkat(dirfd(d), e->d_name, 0);
			continue;
		}
		if (len < 5 || len >= sizeof(files[0].name) || strcmp(e->d_name + len - 4, ".bin"))
			continue;
		if (fstatat(dirfd(d), e->d_name, &st, 0) < 0 || !S_ISREG(st.st_mode))
			continue;
		if (n == cap) {
			size_t ncap = cap ? 2 * cap : 64;
			struct file_ent *g = realloc(files, ncap * sizeof(*files));

			if (!g)
				break;
			files = g;
			cap = ncap;
		}
		memcpy(files[n].name, e->d_name, len + 1); /* len < sizeof(name) */
		files[n].size = st.st_size;
		files[n].mtime = st.st_mtime;
		total += (uint64_t)st.st_size;
		n++;
	}
	if (total > JD_CL_CACHE_DISK_MAX && n > 0) {
		qsort(files, n, sizeof(*files), by_mtime);
		for (size_t i = 0; i < n && total > JD_CL_CACHE_DISK_MAX; i++) {
			if (unlinkat(dirfd(d), files[i].name, 0) == 0)
				total -= (uint64_t)files[i].size;
		}
		jd_info("opencl cache %s trimmed to %llu bytes", dir, (unsigned long long)total);
	}
	free(files);
	closedir(d);
}

int jd_cl_cache_init(struct jd_cl_cache *c, cl_context ctx, const struct jd_cl_device *dev,
		     const char *dir, size_t max_programs)
{
	memset(c, 0, sizeof(*c));
	c->ctx = ctx;
	c->dev = dev;
	c->max_programs = max_programs < 2 ? 2 : max_programs;
	c->progs = calloc(c->max_programs, sizeof(*c->progs));
	if (!c->progs)
		return -ENOMEM;
	if (dir && *dir) {
		if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
			jd_warn("opencl cache dir %s: %s; caching in memory only", dir,
				strerror(errno));
			return 0;
		}
		c->dir = strdup(dir);
		if (!c->dir)
			return -ENOMEM;
		tidy_dir(dir);
	}
	return 0;
}

static void program_free(struct jd_cl_program *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_kernels; i++) {
		clReleaseKernel(p->kernels[i].kernel);
		free(p->kernels[i].name);
	}
	free(p->kernels);
	if (p->program)
		clReleaseProgram(p->program);
	free(p);
}

void jd_cl_cache_cleanup(struct jd_cl_cache *c)
{
	for (size_t i = 0; i < c->n; i++)
		program_free(c->progs[i]);
	free(c->progs);
	free(c->dir);
	memset(c, 0, sizeof(*c));
}

/* ---- disk ---- */

/* Read DIR/<key>.bin whole into *data (malloc'd): 0, or -errno. A file
 * that is not ours or is cut short is removed (-EBADMSG). */
static int disk_read(const struct jd_cl_cache *c, const uint8_t key[JD_SHA256_LEN],
		     unsigned char **data, size_t *len)
{
	char path[4096];
	unsigned char *buf = NULL;
	struct stat st;
	uint64_t blen = 0;
	size_t got = 0;
	int fd, rc = -EBADMSG;

	file_path(c, key, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || st.st_size < HEADER_LEN ||
	    (size_t)st.st_size > BINARY_MAX + HEADER_LEN)
		goto bad;
	buf = malloc((size_t)st.st_size);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			goto bad;
		got += (size_t)r;
	}
	for (int i = 0; i < 8; i++)
		blen |= (uint64_t)buf[8 + JD_SHA256_LEN + i] << (8 * i);
	if (memcmp(buf, FILE_MAGIC, 8) != 0 || memcmp(buf + 8, key, JD_SHA256_LEN) != 0 ||
	    blen != (uint64_t)st.st_size - HEADER_LEN || blen == 0)
		goto bad;
	close(fd);
	/* Touch it: the start-up trim drops the least recently used. */
	utimensat(AT_FDCWD, path, NULL, 0);
	memmove(buf, buf + HEADER_LEN, blen);
	*data = buf;
	*len = blen;
	return 0;
bad:
	close(fd);
	free(buf);
	jd_warn("opencl cache: %s is not a valid cache file; removing it", path);
	unlink(path);
	return rc;
}

static int write_all(int fd, const void *p, size_t n)
{
	const char *s = p;

	while (n) {
		ssize_t w = write(fd, s, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

static int disk_write(const struct jd_cl_cache *c, const uint8_t key[JD_SHA256_LEN],
		      const unsigned char *bin, size_t len)
{
	char path[4096], tmp[4096];
	unsigned char header[HEADER_LEN];
	int fd, rc;

	file_path(c, key, path, sizeof(path));
	/* The pid in the name lets a later host tell a dead writer's file
	 * from a live one's (tidy_dir). */
	snprintf(tmp, sizeof(tmp), "%s/.tmp-%ld-XXXXXX", c->dir, (long)getpid());
	fd = mkstemp(tmp);
	if (fd < 0)
		return -errno;
	memcpy(header, FILE_MAGIC, 8);
	memcpy(header + 8, key, JD_SHA256_LEN);
	for (int i = 0; i < 8; i++)
		header[8 + JD_SHA256_LEN + i] = (uint8_t)((uint64_t)len >> (8 * i));
	rc = write_all(fd, header, sizeof(header));
	if (rc == 0)
		rc = write_all(fd, bin, len);
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0) {
		unlink(tmp);
		return rc;
	}
	/* The rename itself is durable once the directory is synced. */
	fd = open(c->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	return 0;
}

void jd_cl_cache_save(struct jd_cl_cache *c, struct jd_cl_program *p)
{
	size_t len = 0;
	unsigned char *bin;
	cl_int err;
	int rc;

	if (p->on_disk || !c->dir)
		return;
	p->on_disk = 1; /* one try per program, whatever happens */
	err = clGetProgramInfo(p->program, CL_PROGRAM_BINARY_SIZES, sizeof(len), &len, NULL);
	if (err != CL_SUCCESS || len == 0 || len > BINARY_MAX) {
		jd_debug("opencl cache: no binary to save (%s, %zu bytes)", jd_cl_err_name(err),
			 len);
		return;
	}
	bin = malloc(len);
	if (!bin)
		return;
	err = clGetProgramInfo(p->program, CL_PROGRAM_BINARIES, sizeof(bin), &bin, NULL);
	if (err != CL_SUCCESS) {
		jd_warn("opencl cache: reading a program binary: %s", jd_cl_err_name(err));
		free(bin);
		return;
	}
	rc = disk_write(c, p->key, bin, len);
	if (rc < 0)
		jd_warn("opencl cache: writing to %s: %s", c->dir, strerror(-rc));
	free(bin);
}

/* ---- memory ---- */

static struct jd_cl_program *mem_find(struct jd_cl_cache *c, const uint8_t key[JD_SHA256_LEN])
{
	for (size_t i = 0; i < c->n; i++)
		if (memcmp(c->progs[i]->key, key, JD_SHA256_LEN) == 0)
			return c->progs[i];
	return NULL;
}

/* Make room for one more, dropping the least recently used unpinned
 * program. */
static void mem_make_room(struct jd_cl_cache *c)
{
	size_t victim = c->n;

	if (c->n < c->max_programs)
		return;
	for (size_t i = 0; i < c->n; i++) {
		if (c->progs[i]->pinned)
			continue;
		if (victim == c->n || c->progs[i]->last_use < c->progs[victim]->last_use)
			victim = i;
	}
	if (victim == c->n)
		return; /* all pinned; the caller then fails with -ENOMEM */
	program_free(c->progs[victim]);
	c->progs[victim] = c->progs[--c->n];
}

static char *build_log(cl_program prog, cl_device_id dev)
{
	size_t n = 0;
	char *log;

	if (clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_LOG, 0, NULL, &n) != CL_SUCCESS ||
	    n == 0)
		return NULL;
	log = malloc(n + 1);
	if (!log)
		return NULL;
	if (clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_LOG, n, log, NULL) != CL_SUCCESS) {
		free(log);
		return NULL;
	}
	log[n] = '\0';
	return log;
}

/* From a cached binary: the program, or NULL (a miss; a binary that does
 * not load is removed). */
static cl_program load_binary(struct jd_cl_cache *c, const uint8_t key[JD_SHA256_LEN],
			      const char *options)
{
	unsigned char *bin = NULL;
	const unsigned char *cbin;
	size_t len = 0;
	cl_int err, status = CL_SUCCESS;
	cl_program prog;
	char path[4096];

	if (!c->dir || disk_read(c, key, &bin, &len) < 0)
		return NULL;
	cbin = bin;
	prog = clCreateProgramWithBinary(c->ctx, 1, &c->dev->id, &len, &cbin, &status, &err);
	free(bin);
	if (err == CL_SUCCESS && status == CL_SUCCESS)
		err = clBuildProgram(prog, 1, &c->dev->id, options, NULL, NULL);
	else if (err == CL_SUCCESS)
		err = status;
	if (err == CL_SUCCESS)
		return prog;
	if (prog)
		clReleaseProgram(prog);
	file_path(c, key, path, sizeof(path));
	jd_warn("opencl cache: %s does not load (%s); removing it", path, jd_cl_err_name(err));
	unlink(path);
	return NULL;
}

int jd_cl_cache_get(struct jd_cl_cache *c, const char *source, const char *options,
		    struct jd_cl_program **out, struct jd_cl_build *b)
{
	uint8_t key[JD_SHA256_LEN];
	struct jd_cl_program *p;
	cl_program prog;
	double t0 = now_ms();
	cl_int err;
	int on_disk = 0;

	memset(b, 0, sizeof(*b));
	make_key(c->dev, source, options, key);
	p = mem_find(c, key);
	if (p) {
		p->last_use = ++c->tick;
		b->cache = "memory";
		*out = p;
		return 0;
	}
	prog = load_binary(c, key, options);
	if (prog) {
		b->cache = "disk";
		on_disk = 1;
	} else {
		prog = clCreateProgramWithSource(c->ctx, 1, &source, NULL, &err);
		if (err != CL_SUCCESS) {
			b->cl_err = err;
			return err == CL_OUT_OF_HOST_MEMORY ? -ENOMEM : -EINVAL;
		}
		err = clBuildProgram(prog, 1, &c->dev->id, options, NULL, NULL);
		if (err != CL_SUCCESS) {
			b->cl_err = err;
			b->log = build_log(prog, c->dev->id);
			b->cache = "compiled";
			b->ms = now_ms() - t0;
			clReleaseProgram(prog);
			return -EINVAL;
		}
		b->cache = "compiled";
	}
	b->ms = now_ms() - t0;
	mem_make_room(c);
	p = calloc(1, sizeof(*p));
	if (!p || c->n == c->max_programs) {
		free(p);
		clReleaseProgram(prog);
		b->cl_err = CL_OUT_OF_HOST_MEMORY;
		return -ENOMEM;
	}
	memcpy(p->key, key, sizeof(key));
	p->program = prog;
	p->on_disk = on_disk;
	p->last_use = ++c->tick;
	c->progs[c->n++] = p;
	*out = p;
	return 0;
}

cl_int jd_cl_program_kernel(struct jd_cl_program *p, const char *name, cl_kernel *out)
{
	cl_int err;
	cl_kernel k;

	for (size_t i = 0; i < p->n_kernels; i++) {
		if (strcmp(p->kernels[i].name, name) == 0) {
			*out = p->kernels[i].kernel;
			return CL_SUCCESS;
		}
	}
	k = clCreateKernel(p->program, name, &err);
	if (err != CL_SUCCESS)
		return err;
	if (p->n_kernels == p->cap_kernels) {
		size_t ncap = p->cap_kernels ? 2 * p->cap_kernels : 4;
		struct jd_cl_kernel_slot *g = realloc(p->kernels, ncap * sizeof(*g));

		if (!g) {
			clReleaseKernel(k);
			return CL_OUT_OF_HOST_MEMORY;
		}
		p->kernels = g;
		p->cap_kernels = ncap;
	}
	p->kernels[p->n_kernels].name = strdup(name);
	if (!p->kernels[p->n_kernels].name) {
		clReleaseKernel(k);
		return CL_OUT_OF_HOST_MEMORY;
	}
	p->kernels[p->n_kernels++].kernel = k;
	*out = k;
	return CL_SUCCESS;
}
