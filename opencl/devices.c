/*
 * devices.c - finding OpenCL devices through the ICD loader, naming them,
 * describing them, and naming OpenCL error codes.
 *
 * jobd-opencl-host only; single-threaded. Every query tolerates failure: a
 * broken or missing ICD gives an empty list with a reason, never a crash
 * (clGetPlatformIDs answers CL_PLATFORM_NOT_FOUND_KHR, -1001, when the
 * loader finds no ICD at all).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opencl/devices.h"

#ifndef CL_PLATFORM_NOT_FOUND_KHR
#define CL_PLATFORM_NOT_FOUND_KHR -1001
#endif

#define MAX_PLATFORMS 32
#define MAX_DEVICES   64 /* per platform */

static const struct {
	cl_int code;
	const char *name;
} err_names[] = {
	{ 0, "CL_SUCCESS" },
	{ -1, "CL_DEVICE_NOT_FOUND" },
	{ -2, "CL_DEVICE_NOT_AVAILABLE" },
	{ -3, "CL_COMPILER_NOT_AVAILABLE" },
	{ -4, "CL_MEM_OBJECT_ALLOCATION_FAILURE" },
	{ -5, "CL_OUT_OF_RESOURCES" },
	{ -6, "CL_OUT_OF_HOST_MEMORY" },
	{ -7, "CL_PROFILING_INFO_NOT_AVAILABLE" },
	{ -8, "CL_MEM_COPY_OVERLAP" },
	{ -9, "CL_IMAGE_FORMAT_MISMATCH" },
	{ -10, "CL_IMAGE_FORMAT_NOT_SUPPORTED" },
	{ -11, "CL_BUILD_PROGRAM_FAILURE" },
	{ -12, "CL_MAP_FAILURE" },
	{ -13, "CL_MISALIGNED_SUB_BUFFER_OFFSET" },
	{ -14, "CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST" },
	{ -15, "CL_COMPILE_PROGRAM_FAILURE" },
	{ -16, "CL_LINKER_NOT_AVAILABLE" },
	{ -17, "CL_LINK_PROGRAM_FAILURE" },
	{ -18, "CL_DEVICE_PARTITION_FAILED" },
	{ -19, "CL_KERNEL_ARG_INFO_NOT_AVAILABLE" },
	{ -30, "CL_INVALID_VALUE" },
	{ -31, "CL_INVALID_DEVICE_TYPE" },
	{ -32, "CL_INVALID_PLATFORM" },
	{ -33, "CL_INVALID_DEVICE" },
	{ -34, "CL_INVALID_CONTEXT" },
	{ -35, "CL_INVALID_QUEUE_PROPERTIES" },
	{ -36, "CL_INVALID_COMMAND_QUEUE" },
	{ -37, "CL_INVALID_HOST_PTR" },
	{ -38, "CL_INVALID_MEM_OBJECT" },
	{ -39, "CL_INVALID_IMAGE_FORMAT_DESCRIPTOR" },
	{ -40, "CL_INVALID_IMAGE_SIZE" },
	{ -41, "CL_INVALID_SAMPLER" },
	{ -42, "CL_INVALID_BINARY" },
	{ -43, "CL_INVALID_BUILD_OPTIONS" },
	{ -44, "CL_INVALID_PROGRAM" },
	{ -45, "CL_INVALID_PROGRAM_EXECUTABLE" },
	{ -46, "CL_INVALID_KERNEL_NAME" },
	{ -47, "CL_INVALID_KERNEL_DEFINITION" },
	{ -48, "CL_INVALID_KERNEL" },
	{ -49, "CL_INVALID_ARG_INDEX" },
	{ -50, "CL_INVALID_ARG_VALUE" },
	{ -51, "CL_INVALID_ARG_SIZE" },
	{ -52, "CL_INVALID_KERNEL_ARGS" },
	{ -53, "CL_INVALID_WORK_DIMENSION" },
	{ -54, "CL_INVALID_WORK_GROUP_SIZE" },
	{ -55, "CL_INVALID_WORK_ITEM_SIZE" },
	{ -56, "CL_INVALID_GLOBAL_OFFSET" },
	{ -57, "CL_INVALID_EVENT_WAIT_LIST" },
	{ -58, "CL_INVALID_EVENT" },
	{ -59, "CL_INVALID_OPERATION" },
	{ -60, "CL_INVALID_GL_OBJECT" },
	{ -61, "CL_INVALID_BUFFER_SIZE" },
	{ -62, "CL_INVALID_MIP_LEVEL" },
	{ -63, "CL_INVALID_GLOBAL_WORK_SIZE" },
	{ -64, "CL_INVALID_PROPERTY" },
	{ -65, "CL_INVALID_IMAGE_DESCRIPTOR" },
	{ -66, "CL_INVALID_COMPILER_OPTIONS" },
	{ -67, "CL_INVALID_LINKER_OPTIONS" },
	{ -68, "CL_INVALID_DEVICE_PARTITION_COUNT" },
	{ -69, "CL_INVALID_PIPE_SIZE" },
	{ -70, "CL_INVALID_DEVICE_QUEUE" },
	{ -71, "CL_INVALID_SPEC_ID" },
	{ -72, "CL_MAX_SIZE_RESTRICTION_EXCEEDED" },
	{ -1000, "CL_INVALID_GL_SHAREGROUP_REFERENCE_KHR" },
	{ -1001, "CL_PLATFORM_NOT_FOUND_KHR" },
};

const char *jd_cl_err_name(cl_int err)
{
	static char unknown[32];

	for (size_t i = 0; i < sizeof(err_names) / sizeof(err_names[0]); i++)
		if (err_names[i].code == err)
			return err_names[i].name;
	snprintf(unknown, sizeof(unknown), "CL_ERROR_%d", (int)err);
	return unknown;
}

static void str_info_platform(cl_platform_id p, cl_platform_info what, char *out, size_t n)
{
	out[0] = '\0';
	if (clGetPlatformInfo(p, what, n, out, NULL) != CL_SUCCESS)
		out[0] = '\0';
	out[n - 1] = '\0';
}

static void str_info(cl_device_id d, cl_device_info what, char *out, size_t n)
{
	out[0] = '\0';
	if (clGetDeviceInfo(d, what, n, out, NULL) != CL_SUCCESS)
		out[0] = '\0';
	out[n - 1] = '\0';
}

/* A scalar device property, 0 when the query fails. */
#define DEV_INFO(dev, what, var)                                                         \
	do {                                                                             \
		if (clGetDeviceInfo(dev, what, sizeof(var), &(var), NULL) != CL_SUCCESS) \
			memset(&(var), 0, sizeof(var));                                  \
	} while (0)

static const char *type_name(cl_device_type t)
{
	if (t & CL_DEVICE_TYPE_GPU)
		return "gpu";
	if (t & CL_DEVICE_TYPE_CPU)
		return "cpu";
	if (t & CL_DEVICE_TYPE_ACCELERATOR)
		return "accelerator";
	return "other";
}

static void describe(struct jd_cl_device *d, cl_platform_id p, cl_device_id id)
{
	cl_device_fp_config fp64 = 0;
	size_t sizes[16];
	size_t got = 0;

	memset(d, 0, sizeof(*d));
	d->platform = p;
	d->id = id;
	str_info_platform(p, CL_PLATFORM_NAME, d->platform_name, sizeof(d->platform_name));
	str_info_platform(p, CL_PLATFORM_VERSION, d->platform_version, sizeof(d->platform_version));
	str_info(id, CL_DEVICE_NAME, d->name, sizeof(d->name));
	str_info(id, CL_DEVICE_VENDOR, d->vendor, sizeof(d->vendor));
	str_info(id, CL_DEVICE_VERSION, d->version, sizeof(d->version));
	str_info(id, CL_DRIVER_VERSION, d->driver_version, sizeof(d->driver_version));
	DEV_INFO(id, CL_DEVICE_TYPE, d->cl_type);
	snprintf(d->type, sizeof(d->type), "%s", type_name(d->cl_type));
	DEV_INFO(id, CL_DEVICE_MAX_COMPUTE_UNITS, d->compute_units);
	DEV_INFO(id, CL_DEVICE_MAX_WORK_ITEM_DIMENSIONS, d->max_dims);
	DEV_INFO(id, CL_DEVICE_ADDRESS_BITS, d->address_bits);
	DEV_INFO(id, CL_DEVICE_MEM_BASE_ADDR_ALIGN, d->mem_base_align_bits);
	DEV_INFO(id, CL_DEVICE_GLOBAL_MEM_SIZE, d->global_mem);
	DEV_INFO(id, CL_DEVICE_LOCAL_MEM_SIZE, d->local_mem);
	DEV_INFO(id, CL_DEVICE_MAX_MEM_ALLOC_SIZE, d->max_alloc);
	DEV_INFO(id, CL_DEVICE_MAX_WORK_GROUP_SIZE, d->max_work_group_size);
	DEV_INFO(id, CL_DEVICE_DOUBLE_FP_CONFIG, fp64);
	if (clGetDeviceInfo(id, CL_DEVICE_MAX_WORK_ITEM_SIZES, sizeof(sizes), sizes, &got) ==
	    CL_SUCCESS) {
		for (size_t i = 0; i < 3 && i < got / sizeof(size_t); i++)
			d->max_work_item_sizes[i] = sizes[i];
	}
	if (d->max_dims > 3)
		d->max_dims = 3;
	d->fp64 = fp64 != 0;
}

int jd_cl_devices_list(struct jd_cl_device **devs, size_t *n, char *why, size_t why_len)
{
	cl_platform_id plats[MAX_PLATFORMS];
	cl_uint np = 0;
	cl_int rc;
	size_t count = 0, cap = 0;
	struct jd_cl_device *out = NULL;
	unsigned per_type[4] = { 0, 0, 0, 0 };
	static const char *const types[4] = { "cpu", "gpu", "accelerator", "other" };

	*devs = NULL;
	*n = 0;
	why[0] = '\0';
	rc = clGetPlatformIDs(MAX_PLATFORMS, plats, &np);
	if (rc == CL_PLATFORM_NOT_FOUND_KHR || (rc == CL_SUCCESS && np == 0)) {
		snprintf(why, why_len, "no OpenCL platform (no ICD installed, or none loads)");
		return 0;
	}
	if (rc != CL_SUCCESS) {
		snprintf(why, why_len, "clGetPlatformIDs: %s", jd_cl_err_name(rc));
		return 0;
	}
	if (np > MAX_PLATFORMS)
		np = MAX_PLATFORMS;
	for (cl_uint p = 0; p < np; p++) {
		cl_device_id ids[MAX_DEVICES];
		cl_uint nd = 0;

		rc = clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, MAX_DEVICES, ids, &nd);
		if (rc != CL_SUCCESS)
			continue; /* CL_DEVICE_NOT_FOUND: a platform with no device */
		if (nd > MAX_DEVICES)
			nd = MAX_DEVICES;
		for (cl_uint i = 0; i < nd; i++) {
			struct jd_cl_device *d;
			int t;

			if (count == cap) {
				size_t ncap = cap ? 2 * cap : 8;
				struct jd_cl_device *g = realloc(out, ncap * sizeof(*out));

				if (!g) {
					free(out);
					return -ENOMEM;
				}
				out = g;
				cap = ncap;
			}
			d = &out[count++];
			describe(d, plats[p], ids[i]);
			for (t = 0; t < 3 && strcmp(types[t], d->type) != 0; t++)
				;
			snprintf(d->jid, sizeof(d->jid), "%s-%u", d->type, per_type[t]++);
		}
	}
	if (count == 0)
		snprintf(why, why_len, "%u OpenCL platform%s but no device", (unsigned)np,
			 np == 1 ? "" : "s");
	*devs = out;
	*n = count;
	return 0;
}

int jd_cl_device_find(const char *jid, struct jd_cl_device *out, char *why, size_t why_len)
{
	struct jd_cl_device *devs;
	size_t n;
	int rc = jd_cl_devices_list(&devs, &n, why, why_len);

	if (rc < 0) {
		snprintf(why, why_len, "out of memory");
		return rc;
	}
	for (size_t i = 0; i < n; i++) {
		if (strcmp(devs[i].jid, jid) == 0) {
			*out = devs[i];
			free(devs);
			return 0;
		}
	}
	if (n > 0)
		snprintf(why, why_len, "no device %s among the %zu found", jid, n);
	free(devs);
	return -ENOENT;
}

void jd_cl_device_json(struct jd_buf *b, const struct jd_cl_device *d)
{
	jd_buf_adds(b, "{\"id\":");
	jd_buf_json_str(b, d->jid);
	jd_buf_adds(b, ",\"platform\":");
	jd_buf_json_str(b, d->platform_name);
	jd_buf_adds(b, ",\"platform_version\":");
	jd_buf_json_str(b, d->platform_version);
	jd_buf_adds(b, ",\"name\":");
	jd_buf_json_str(b, d->name);
	jd_buf_adds(b, ",\"vendor\":");
	jd_buf_json_str(b, d->vendor);
	jd_buf_adds(b, ",\"type\":");
	jd_buf_json_str(b, d->type);
	jd_buf_printf(b,
		      ",\"compute_units\":%u,\"global_mem\":%llu,\"local_mem\":%llu,"
		      "\"max_alloc\":%llu,\"max_work_group_size\":%zu,"
		      "\"max_work_item_sizes\":[%zu,%zu,%zu]",
		      (unsigned)d->compute_units, (unsigned long long)d->global_mem,
		      (unsigned long long)d->local_mem, (unsigned long long)d->max_alloc,
		      d->max_work_group_size, d->max_work_item_sizes[0], d->max_work_item_sizes[1],
		      d->max_work_item_sizes[2]);
	jd_buf_printf(b, ",\"fp64\":%s", d->fp64 ? "true" : "false");
	jd_buf_adds(b, ",\"driver_version\":");
	jd_buf_json_str(b, d->driver_version);
	jd_buf_adds(b, ",\"version\":");
	jd_buf_json_str(b, d->version);
	jd_buf_addc(b, '}');
}
