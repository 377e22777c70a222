/*
 * devices.h - OpenCL device discovery, the IDs jobd gives devices, their
 * description as JSON, and the names of OpenCL error codes.
 *
 * jobd-opencl-host only (the daemon never calls OpenCL). Single-threaded.
 *
 * A device's ID is "<type>-<n>": its type ("cpu", "gpu", "accelerator",
 * "other") and its rank among the devices of that type, counting platforms
 * in clGetPlatformIDs order and each platform's devices in order. IDs stay
 * the same while the hardware and the installed ICDs do.
 */
#ifndef JD_OPENCL_DEVICES_H
#define JD_OPENCL_DEVICES_H

#include <stddef.h>

#include <CL/cl.h>

#include "daemon/buf.h"

struct jd_cl_device {
	cl_platform_id platform;
	cl_device_id id;
	cl_device_type cl_type;
	char jid[32];  /* "cpu-0" */
	char type[16]; /* "cpu", "gpu", "accelerator", "other" */
	char name[256], vendor[256], version[256], driver_version[256];
	char platform_name[256], platform_version[256];
	cl_uint compute_units, max_dims, address_bits, mem_base_align_bits;
	cl_ulong global_mem, local_mem, max_alloc;
	size_t max_work_group_size, max_work_item_sizes[3];
	int fp64; /* cl_khr_fp64 (double) is supported */
};

/* Every device of every platform, in ID order. Returns 0 with *devs (free
 * with free()) and *n set - possibly 0 devices, with `why` saying why (no
 * platform, no ICD) - or -ENOMEM. Never fails for lack of OpenCL. */
int jd_cl_devices_list(struct jd_cl_device **devs, size_t *n, char *why, size_t why_len);

/* The device with this ID: 0, or -ENOENT (with `why` filled). */
int jd_cl_device_find(const char *jid, struct jd_cl_device *out, char *why, size_t why_len);

/* The device as a JSON object: id, platform, platform_version, name,
 * vendor, type, compute_units, global_mem, local_mem, max_alloc,
 * max_work_group_size, max_work_item_sizes, driver_version, version. */
void jd_cl_device_json(struct jd_buf *b, const struct jd_cl_device *d);

/* "CL_INVALID_VALUE" for -30; "CL_ERROR_<n>" for a code it does not know
 * (the string is then static, overwritten by the next such call). */
const char *jd_cl_err_name(cl_int err);

#endif
