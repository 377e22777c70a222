/*
 * host.c - jobd-opencl-host: one OpenCL device, driven for jobd over
 * frames on fd 3 (workers/frame.h).
 *
 *   jobd-opencl-host --list
 *       Find every device of every platform (ICD loader), send one HELLO
 *       frame {"devices": [...]} (or {"devices": [], "error": "..."}) and
 *       exit 0. Without fd 3 (by hand), print that JSON on stdout.
 *   jobd-opencl-host --device ID --cache-dir DIR [--log-level L] [--parent PID]
 *       Serve device ID ("cpu-0", see devices.h): one context, one in-order
 *       profiling queue, the built-in kernels built (through the cache in
 *       DIR) and warmed up, then HELLO {"device", "warmup_ms", "builtins"}
 *       and a loop: RUN {"id", "task", "params"} -> DONE {"id", "status",
 *       "result", "error", "timing"}, one job at a time, in order. EOF on
 *       fd 3: exit 0.
 *
 * Exit codes: 0 done; 1 OpenCL or the channel failed (logged); 2 usage, or
 * the device is not there.
 *
 * Why a separate process per device (DESIGN.md): OpenCL cannot stop a
 * kernel and a bad one can crash its process, so jobd kills and restarts
 * this one instead; and a process forked after OpenCL is initialised can
 * hang in OpenCL, so jobd never calls OpenCL itself. Nothing here outlives
 * a kill badly: the disk cache is written by atomic rename only.
 *
 * Single-threaded (the OpenCL implementation has its own threads). Logs go
 * to stderr through daemon/log.h.
 *
 * Environment: POCL_CACHE_DIR, when unset, is set to DIR/pocl so that PoCL
 * keeps its own cache (and temporary files) there rather than in $HOME.
 * JOBD_OPENCL_COPY=1 turns zero-copy buffers off on CPU devices (tests use
 * it to exercise the path GPUs take).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/log.h"
#include "opencl/host.h"
#include "opencl/kernels.h"
#include "opencl/usertask.h"
#include "workers/frame.h"

#define CHANNEL       3
#define MAX_PROGRAMS  64 /* programs kept built in memory */
#define POOL_KEEP_MAX ((cl_ulong)256 * 1024 * 1024)

#if defined(__SANITIZE_ADDRESS__)
/* LeakSanitizer, in sanitizer builds: PoCL and the LLVM inside it keep
 * compiler state they never free (reported at exit after any compile from
 * source); those are not ours to fix. Our own leaks are still reported. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:libpocl.so\n"
	       "leak:libLLVM\n";
}

const char *__lsan_default_options(void);
const char *__lsan_default_options(void)
{
	return "print_suppressions=0";
}
#endif

/* ---- helpers shared with kernels.c and usertask.c ---- */

double jd_cl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int jd_cl_fail(struct jd_cl_job *job, cl_int err, const char *what)
{
	jd_error_set(&job->err, "opencl_error", NULL, "%s: %s", what, jd_cl_err_name(err));
	if (err == CL_OUT_OF_HOST_MEMORY || err == CL_MEM_OBJECT_ALLOCATION_FAILURE)
		return -ENOMEM;
	return -EIO;
}

void jd_cl_timing_from_event(struct jd_cl_timing *t, cl_event ev)
{
	if (clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_QUEUED, sizeof(cl_ulong),
				    &t->queued_ns, NULL) != CL_SUCCESS ||
	    clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_SUBMIT, sizeof(cl_ulong),
				    &t->submit_ns, NULL) != CL_SUCCESS ||
	    clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_START, sizeof(cl_ulong), &t->start_ns,
				    NULL) != CL_SUCCESS ||
	    clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_END, sizeof(cl_ulong), &t->end_ns,
				    NULL) != CL_SUCCESS) {
		t->have_kernel = 0;
		return;
	}
	t->have_kernel = 1;
}

static void ns_field(struct jd_buf *b, const char *name, int have, cl_ulong v)
{
	jd_buf_printf(b, "\"%s\":", name);
	if (have)
		jd_buf_printf(b, "%llu", (unsigned long long)v);
	else
		jd_buf_adds(b, "null");
}

void jd_cl_timing_json(struct jd_buf *b, const struct jd_cl_timing *t)
{
	int k = t->have_kernel;

	jd_buf_addc(b, '{');
	ns_field(b, "queued_ns", k, t->queued_ns);
	jd_buf_addc(b, ',');
	ns_field(b, "submit_ns", k, t->submit_ns);
	jd_buf_addc(b, ',');
	ns_field(b, "start_ns", k, t->start_ns);
	jd_buf_addc(b, ',');
	ns_field(b, "end_ns", k, t->end_ns);
	jd_buf_adds(b, ",\"kernel_ms\":");
	if (k)
		jd_buf_json_num(b, (double)(t->end_ns - t->start_ns) / 1e6);
	else
		jd_buf_adds(b, "null");
	jd_buf_adds(b, ",\"build_ms\":");
	if (t->have_build)
		jd_buf_json_num(b, t->build_ms);
	else
		jd_buf_adds(b, "null");
	jd_buf_adds(b, ",\"cache\":");
	if (t->cache)
		jd_buf_json_str(b, t->cache);
	else
		jd_buf_adds(b, "null");
	jd_buf_addc(b, '}');
}

cJSON *jd_cl_timing_cjson(const struct jd_cl_timing *t)
{
	struct jd_buf b;
	cJSON *v;

	jd_buf_init(&b, 256);
	jd_cl_timing_json(&b, t);
	v = b.oom ? NULL : cJSON_ParseWithLength(b.p, b.len);
	jd_buf_cleanup(&b);
	return v;
}

void jd_cl_fill_array(const cJSON *v, enum jd_dtype dtype, void *dst, size_t n)
{
	if (cJSON_IsArray(v)) {
		const cJSON *e;
		size_t i = 0;

		cJSON_ArrayForEach(e, v)
		{
			double d = e->valuedouble;

			if (i == n)
				break;
			switch (dtype) {
			case JD_INT32: ((int32_t *)dst)[i] = (int32_t)d; break;
			case JD_INT64: ((int64_t *)dst)[i] = (int64_t)d; break;
			case JD_FLOAT32: ((float *)dst)[i] = (float)d; break;
			case JD_FLOAT64: ((double *)dst)[i] = d; break;
			}
			i++;
		}
		return;
	}
	/* Base64, checked: all quads but the last decode in place; the last
	 * (which padding may shorten) through a small buffer, so that nothing
	 * is written past n elements. */
	const char *text = cJSON_GetObjectItemCaseSensitive(v, "b64")->valuestring;
	size_t len = strlen(text), bytes = n * jd_dtype_size(dtype);
	unsigned char last[3];
	long got;

	if (len == 0)
		return;
	got = jd_base64_decode(text, len - 4, dst);
	if (got < 0)
		return;
	long tail = jd_base64_decode(text + len - 4, 4, last);

	if (tail > 0 && (size_t)got + (size_t)tail <= bytes)
		memcpy((unsigned char *)dst + got, last, (size_t)tail);
}

int jd_cl_json_safe(struct jd_cl_job *job, const struct jd_array *a, const char *name)
{
	return jd_array_json_safe(a, name, &job->err);
}

/* ---- frames ---- */

static int channel_open(void)
{
	return fcntl(CHANNEL, F_GETFD) >= 0;
}

static int send_frame(uint16_t type, struct jd_buf *b)
{
	if (b->oom) {
		jd_err("opencl host: out of memory writing a frame");
		return -ENOMEM;
	}
	return jd_frame_write_fd(CHANNEL, type, b->p, (uint32_t)b->len);
}

/* ---- --list ---- */

static int list_main(void)
{
	struct jd_cl_device *devs = NULL;
	char why[256];
	size_t n = 0;
	struct jd_buf b;
	int rc;

	rc = jd_cl_devices_list(&devs, &n, why, sizeof(why));
	jd_buf_init(&b, 1024);
	jd_buf_adds(&b, "{\"devices\":[");
	for (size_t i = 0; i < n; i++) {
		if (i)
			jd_buf_addc(&b, ',');
		jd_cl_device_json(&b, &devs[i]);
	}
	jd_buf_addc(&b, ']');
	if (rc < 0)
		snprintf(why, sizeof(why), "out of memory");
	if (n == 0) {
		jd_buf_adds(&b, ",\"error\":");
		jd_buf_json_str(&b, why[0] ? why : "no OpenCL device");
	}
	jd_buf_addc(&b, '}');
	free(devs);
	if (channel_open()) {
		rc = send_frame(JD_FRAME_HELLO, &b);
		if (rc < 0)
			jd_err("opencl host: sending the device list: %s", strerror(-rc));
	} else {
		rc = b.oom ? -ENOMEM : 0;
		if (rc == 0)
			printf("%.*s\n", (int)b.len, b.p);
	}
	jd_buf_cleanup(&b);
	return rc < 0 ? 1 : 0;
}

/* ---- serving one device ---- */

static int host_init(struct jd_cl_host *h, const char *cache_dir)
{
	cl_context_properties props[] = { CL_CONTEXT_PLATFORM,
					  (cl_context_properties)h->dev.platform, 0 };
	const char *copy = getenv("JOBD_OPENCL_COPY");
	cl_uint vw = 0;
	cl_int err;
	cl_ulong keep;

	h->ctx = clCreateContext(props, 1, &h->dev.id, NULL, NULL, &err);
	if (err != CL_SUCCESS) {
		jd_err("opencl %s: clCreateContext: %s", h->dev.jid, jd_cl_err_name(err));
		return -EIO;
	}
	h->q = clCreateCommandQueue(h->ctx, h->dev.id, CL_QUEUE_PROFILING_ENABLE, &err);
	if (err != CL_SUCCESS) {
		jd_err("opencl %s: clCreateCommandQueue: %s", h->dev.jid, jd_cl_err_name(err));
		return -EIO;
	}
	if (clGetDeviceInfo(h->dev.id, CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT, sizeof(vw), &vw,
			    NULL) != CL_SUCCESS)
		vw = 4;
	h->native_vw = vw;
	h->zero_copy = (h->dev.cl_type & CL_DEVICE_TYPE_CPU) && !(copy && strcmp(copy, "1") == 0);
	if (jd_cl_cache_init(&h->cache, h->ctx, &h->dev, cache_dir, MAX_PROGRAMS) < 0) {
		jd_err("opencl %s: out of memory", h->dev.jid);
		return -ENOMEM;
	}
	/* Idle buffers kept for reuse: a quarter of the device's memory, at
	 * most 256 MiB (on a CPU device that is this process's memory). */
	keep = h->dev.global_mem / 4;
	if (keep > POOL_KEEP_MAX)
		keep = POOL_KEEP_MAX;
	jd_cl_pool_init(&h->pool, h->ctx, h->q, h->zero_copy, (size_t)h->dev.max_alloc,
			(size_t)keep);
	return 0;
}

static void host_cleanup(struct jd_cl_host *h)
{
	jd_cl_pool_cleanup(&h->pool);
	jd_cl_cache_cleanup(&h->cache);
	if (h->q)
		clReleaseCommandQueue(h->q);
	if (h->ctx)
		clReleaseContext(h->ctx);
}

static int send_hello(struct jd_cl_host *h, double warmup_ms, const struct jd_cl_build *b)
{
	struct jd_buf buf;
	int rc;

	jd_buf_init(&buf, 1024);
	jd_buf_adds(&buf, "{\"device\":");
	jd_cl_device_json(&buf, &h->dev);
	jd_buf_adds(&buf, ",\"warmup_ms\":");
	jd_buf_json_num(&buf, warmup_ms);
	jd_buf_printf(&buf, ",\"pid\":%d,\"builtins\":{\"ok\":%s,\"cache\":", (int)getpid(),
		      h->builtins ? "true" : "false");
	if (b->cache)
		jd_buf_json_str(&buf, b->cache);
	else
		jd_buf_adds(&buf, "null");
	jd_buf_adds(&buf, ",\"build_ms\":");
	jd_buf_json_num(&buf, b->ms);
	jd_buf_adds(&buf, ",\"error\":");
	if (h->builtins)
		jd_buf_adds(&buf, "null");
	else
		jd_buf_json_str(&buf, h->builtins_error);
	jd_buf_adds(&buf, "}}");
	rc = send_frame(JD_FRAME_HELLO, &buf);
	jd_buf_cleanup(&buf);
	return rc;
}

/* Run one RUN frame and answer it with DONE. */
static int run_one(struct jd_cl_host *h, const char *payload, uint32_t len)
{
	cJSON *run = cJSON_ParseWithLength(payload, len);
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(run, "id");
	const cJSON *task = cJSON_GetObjectItemCaseSensitive(run, "task");
	const cJSON *params = cJSON_GetObjectItemCaseSensitive(run, "params");
	struct jd_cl_job job;
	double t0 = jd_cl_now_ms();
	struct jd_buf b;
	int status, rc;

	memset(&job, 0, sizeof(job));
	job.params = params;
	if (!run || !cJSON_IsString(task) || !cJSON_IsObject(params)) {
		status = -EPROTO;
		jd_error_set(&job.err, "executor_error", NULL, "malformed job from jobd");
	} else if (strcmp(task->valuestring, "opencl") == 0) {
		status = jd_cl_user_run(h, &job);
	} else if (jd_cl_builtin_has(task->valuestring)) {
		status = jd_cl_builtin_run(h, task->valuestring, &job);
	} else {
		status = -EPROTO;
		jd_error_set(&job.err, "executor_error", NULL,
			     "task \"%.64s\" cannot run on an OpenCL device", task->valuestring);
	}
	if (status < 0 && !job.err.type[0])
		jd_error_set(&job.err, "task_failed", NULL, "%s", strerror(-status));
	if (status == 0 && !job.result)
		job.result = cJSON_CreateObject();

	jd_buf_init(&b, 256);
	jd_buf_adds(&b, "{\"id\":");
	if (cJSON_IsString(id))
		jd_buf_json_str(&b, id->valuestring);
	else
		jd_buf_adds(&b, "null");
	jd_buf_printf(&b, ",\"status\":%d,\"result\":", status);
	jd_buf_json_value(&b, job.result);
	jd_buf_adds(&b, ",\"error\":");
	if (status < 0) {
		jd_buf_adds(&b, "{\"type\":");
		jd_buf_json_str(&b, job.err.type);
		jd_buf_adds(&b, ",\"field\":");
		jd_buf_json_str(&b, job.err.field);
		jd_buf_adds(&b, ",\"message\":");
		jd_buf_json_str(&b, job.long_message ? job.long_message : job.err.message);
		jd_buf_addc(&b, '}');
	} else {
		jd_buf_adds(&b, "null");
	}
	jd_buf_adds(&b, ",\"timing\":");
	jd_cl_timing_json(&b, &job.tm);
	jd_buf_addc(&b, '}');
	if (b.oom) {
		static const char oom[] =
		    "{\"status\":-12,\"result\":null,\"error\":{\"type\":\"executor_error\","
		    "\"field\":\"\",\"message\":\"out of memory in the OpenCL host\"},"
		    "\"timing\":null}";

		rc = jd_frame_write_fd(CHANNEL, JD_FRAME_DONE, oom, sizeof(oom) - 1);
	} else {
		rc = send_frame(JD_FRAME_DONE, &b);
	}
	jd_debug("opencl %s: job %s %s: status %d in %.3f ms", h->dev.jid,
		 cJSON_IsString(id) ? id->valuestring : "?",
		 cJSON_IsString(task) ? task->valuestring : "?", status, jd_cl_now_ms() - t0);
	jd_buf_cleanup(&b);
	cJSON_Delete(job.result);
	free(job.long_message);
	cJSON_Delete(run);
	/* After the answer, off the job's time: the binary to disk, now
	 * that it includes what the first run made PoCL compile. */
	if (job.save)
		jd_cl_cache_save(&h->cache, job.save);
	return rc;
}

static int device_main(const char *jid, const char *cache_dir)
{
	struct jd_cl_host h;
	struct jd_cl_build b;
	char why[256] = "";
	double t0;
	int rc;

	memset(&h, 0, sizeof(h));
	if (jd_cl_device_find(jid, &h.dev, why, sizeof(why)) < 0) {
		jd_err("opencl host: device %s not found: %s", jid, why);
		return 2;
	}
	t0 = jd_cl_now_ms();
	if (host_init(&h, cache_dir) < 0) {
		host_cleanup(&h);
		return 1;
	}
	jd_cl_builtins_init(&h, &b);
	double warmup_ms = jd_cl_now_ms() - t0;

	if (h.builtins)
		jd_info("opencl %s: %s ready in %.1f ms (built-in kernels: %s, %.1f ms)", h.dev.jid,
			h.dev.name, warmup_ms, b.cache, b.ms);
	else
		jd_warn("opencl %s: %s ready in %.1f ms, without the built-in kernels (%s)",
			h.dev.jid, h.dev.name, warmup_ms, h.builtins_error);
	if (send_hello(&h, warmup_ms, &b) < 0) {
		jd_err("opencl %s: cannot say hello to jobd", h.dev.jid);
		host_cleanup(&h);
		return 1;
	}
	for (;;) {
		uint16_t type;
		char *payload;
		uint32_t len;

		rc = jd_frame_read_fd(CHANNEL, JD_FRAME_MAX, &type, &payload, &len);
		if (rc == -EPIPE) {
			rc = 0; /* jobd closed the channel: done */
			break;
		}
		if (rc < 0) {
			jd_err("opencl %s: reading from jobd: %s", h.dev.jid, strerror(-rc));
			rc = 1;
			break;
		}
		if (type == JD_FRAME_RUN)
			rc = run_one(&h, payload, len);
		/* STOP cannot stop a kernel: jobd kills this process instead. */
		free(payload);
		if (rc < 0) {
			jd_err("opencl %s: writing to jobd: %s", h.dev.jid, strerror(-rc));
			rc = 1;
			break;
		}
	}
	host_cleanup(&h);
	return rc;
}

static int usage(void)
{
	fprintf(stderr, "usage: jobd-opencl-host --list\n"
			"       jobd-opencl-host --device ID --cache-dir DIR [--log-level L] "
			"[--parent PID]\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *device = NULL, *cache_dir = NULL;
	long parent = 0;
	int list = 0;

	jd_log_init();
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--list") == 0) {
			list = 1;
			continue;
		}
		if (!v)
			return usage();
		i++;
		if (strcmp(a, "--device") == 0) {
			device = v;
		} else if (strcmp(a, "--cache-dir") == 0) {
			cache_dir = v;
		} else if (strcmp(a, "--parent") == 0) {
			parent = strtol(v, NULL, 10);
		} else if (strcmp(a, "--log-level") == 0) {
			enum jd_log_level l;

			if (jd_log_level_parse(v, &l) < 0)
				return usage();
			jd_log_set_level(l);
		} else {
			return usage();
		}
	}
	if (!list && !device)
		return usage();
	/* Die with jobd; if it died before we got here, go now. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (parent && getppid() != (pid_t)parent)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	if (list)
		return list_main();

	if (cache_dir && *cache_dir) {
		if (mkdir(cache_dir, 0700) < 0 && errno != EEXIST)
			jd_warn("opencl host: cache dir %s: %s", cache_dir, strerror(errno));
		if (!getenv("POCL_CACHE_DIR")) {
			char pocl[4096];

			snprintf(pocl, sizeof(pocl), "%s/pocl", cache_dir);
			setenv("POCL_CACHE_DIR", pocl, 0);
		}
	} else {
		jd_warn("opencl host: no --cache-dir; programs are cached in memory only");
	}
	return device_main(device, cache_dir);
}
