/*
 * cuda.c - the CUDA backend: dynvram's HAL on the CUDA driver's virtual
 * memory management API (cuMemAddressReserve / cuMemCreate / cuMemMap).
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Contracts kept here:
 *  - libcuda is opened once per process (cuda_load.c); a missing or unusable
 *    driver makes probe and init return DV_ERROR_BACKEND_UNAVAILABLE with the
 *    reason, never a crash.
 *  - Each device works in its primary context (retained in init, released in
 *    fini) and every op pushes that context around its driver calls and pops
 *    it again. Nothing relies on, or changes, the caller's current context,
 *    so several GPUs in one process each get their own context.
 *  - CUDA_ERROR_OUT_OF_MEMORY is DV_ERROR_OUT_OF_DEVICE_MEMORY where it means
 *    device memory (create, map, ...). For reserve it means address space
 *    (DV_ERROR_ADDRESS_SPACE) and for host_register host memory. Every other
 *    failure is DV_ERROR_BACKEND (or DV_ERROR_INVALID_ARGUMENT for
 *    CUDA_ERROR_INVALID_VALUE); the native code and text go to the shared
 *    per-thread record (base/native.h) for last_native_error.
 *  - The core serializes the ops of one device (HAL contract), so the
 *    per-device event cache needs no lock of its own.
 */
#include "dynvram_hal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/native.h"
#include "base/options.h"
#include "base/os.h"
#include "cuda_internal.h"

/* ---- probe, init, fini, caps ---- */

static void cu_copy_reason(char *dst, size_t len, const char *src) {
    if (dst && len) {
        snprintf(dst, len, "%s", src);
    }
}

static dv_result_t cu_probe(int *device_count, char *reason,
                            size_t reason_len) {
    char desc[160];
    char text[320];
    int n = 0;
    dv_cu_result rc;

    if (device_count) {
        *device_count = 0;
    }
    if (dv__cu_loaded() != DV_OK) {
        cu_copy_reason(reason, reason_len, dv__cu_load_reason());
        return DV_ERROR_BACKEND_UNAVAILABLE;
    }
    rc = dv__cu.cuDeviceGetCount(&n);
    if (rc != DV_CU_SUCCESS) {
        dv__cu_describe(&dv__cu, rc, desc, sizeof(desc));
        snprintf(text, sizeof(text), "cuDeviceGetCount failed: %s", desc);
        cu_copy_reason(reason, reason_len, text);
        return DV_ERROR_BACKEND_UNAVAILABLE;
    }
    if (n <= 0) {
        snprintf(text, sizeof(text), "%s: no CUDA device", dv__cu_load_reason());
        cu_copy_reason(reason, reason_len, text);
        return DV_ERROR_BACKEND_UNAVAILABLE;
    }
    if (device_count) {
        *device_count = n;
    }
    snprintf(text, sizeof(text), "%s, %d device%s", dv__cu_load_reason(), n,
             n == 1 ? "" : "s");
    cu_copy_reason(reason, reason_len, text);
    return DV_OK;
}

/* Granularity for pinned device memory on `d`: the recommended one when it
 * is a multiple of the minimum (it usually equals it), else the minimum. */
static dv_result_t cu_query_granularity(dv__cu_dev_t *d) {
    dv_cu_mem_allocation_prop prop;
    size_t min_g = 0;
    size_t rec_g = 0;
    dv_cu_result rc;

    memset(&prop, 0, sizeof(prop));
    prop.type = DV_CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.requested_handle_types = DV_CU_MEM_HANDLE_TYPE_NONE;
    prop.location.type = DV_CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = d->dev;
    rc = dv__cu.cuMemGetAllocationGranularity(
        &min_g, &prop, DV_CU_MEM_ALLOC_GRANULARITY_MINIMUM);
    if (rc != DV_CU_SUCCESS) {
        return dv__cu_fail_as(
            rc, DV_ERROR_BACKEND,
            "cuMemGetAllocationGranularity(device %d, minimum)", d->ordinal);
    }
    if (min_g == 0) {
        return dv__native_fail(DV_ERROR_BACKEND, 0, "cuda: device %d reports a granularity of 0",
                        d->ordinal);
    }
    rc = dv__cu.cuMemGetAllocationGranularity(
        &rec_g, &prop, DV_CU_MEM_ALLOC_GRANULARITY_RECOMMENDED);
    if (rc != DV_CU_SUCCESS || rec_g == 0 || rec_g % min_g != 0) {
        rec_g = min_g;
    }
    d->granularity = rec_g;
    dv__log(DV_LOG_DEBUG,
            "cuda: device %d granularity minimum %zu, recommended %zu",
            d->ordinal, min_g, rec_g);
    return DV_OK;
}

/* Backend options: nvml=0|1 (free memory from NVML as well, see
 * cuda_nvml.c). Unknown keys and malformed values are refused. */
static dv_result_t cu_parse_options(const char *options, int *nvml) {
    const char *cur = options;
    char key[32], val[32];
    int k;
    *nvml = 0;
    while ((k = dv__kv_next(&cur, key, sizeof(key), val, sizeof(val))) > 0) {
        if (strcmp(key, "nvml") != 0) {
            return dv__native_fail(DV_ERROR_INVALID_ARGUMENT, 0,
                                   "cuda backend: unknown option '%s' (known: "
                                   "nvml)",
                                   key);
        }
        if (strcmp(val, "1") == 0 || strcmp(val, "on") == 0) {
            *nvml = 1;
        } else if (strcmp(val, "0") == 0 || strcmp(val, "off") == 0) {
            *nvml = 0;
        } else {
            return dv__native_fail(DV_ERROR_INVALID_ARGUMENT, 0,
                                   "cuda backend: nvml='%s' is not 0 or 1",
                                   val);
        }
    }
    if (k < 0) {
        return dv__native_fail(DV_ERROR_INVALID_ARGUMENT, 0,
                               "cuda backend: malformed options '%s'", cur);
    }
    return DV_OK;
}

static dv_result_t cu_init(const dv_hal_init_args_t *args, void **out) {
    dv__cu_dev_t *d = NULL;
    dv_result_t r;
    dv_cu_result rc;
    int count = 0;
    int vmm = 0;
    size_t total = 0;
    int retained = 0;
    int nvml = 0;

    if (!args || !out) {
        return dv__native_fail(DV_ERROR_INVALID_ARGUMENT, 0, "cuda init: NULL argument");
    }
    *out = NULL;
    if (args->ordinal < 0) {
        return dv__native_fail(DV_ERROR_INVALID_ARGUMENT, 0, "cuda init: negative ordinal %d", args->ordinal);
    }
    r = cu_parse_options(args->size ? args->options : NULL, &nvml);
    if (r != DV_OK) {
        return r;
    }
    if (dv__cu_loaded() != DV_OK) {
        return dv__native_fail(DV_ERROR_BACKEND_UNAVAILABLE, 0, "cuda: %s",
                        dv__cu_load_reason());
    }
    rc = dv__cu.cuDeviceGetCount(&count);
    if (rc != DV_CU_SUCCESS) {
        return dv__cu_fail_as(rc, DV_ERROR_BACKEND, "cuDeviceGetCount");
    }
    if (args->ordinal >= count) {
        return dv__native_fail(DV_ERROR_DEVICE_NOT_FOUND, 0, "cuda: no device %d (%d present)", args->ordinal,
                        count);
    }
    d = calloc(1, sizeof(*d));
    if (!d) {
        return dv__native_fail(DV_ERROR_OUT_OF_HOST_MEMORY, 0, "cuda init: no memory");
    }
    d->ordinal = args->ordinal;
    rc = dv__cu.cuDeviceGet(&d->dev, args->ordinal);
    if (rc != DV_CU_SUCCESS) {
        r = dv__cu_fail_as(rc, DV_ERROR_BACKEND, "cuDeviceGet(%d)",
                           args->ordinal);
        goto fail;
    }
    rc = dv__cu.cuDeviceGetAttribute(
        &vmm, DV_CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED,
        d->dev);
    if (rc != DV_CU_SUCCESS) {
        r = dv__cu_fail_as(
            rc, DV_ERROR_BACKEND,
            "cuDeviceGetAttribute(VIRTUAL_MEMORY_MANAGEMENT, %d)",
            args->ordinal);
        goto fail;
    }
    if (!vmm) {
        r = dv__native_fail(DV_ERROR_NOT_SUPPORTED, 0, "cuda: device %d has no virtual memory management",
                     args->ordinal);
        goto fail;
    }
    rc = dv__cu.cuDeviceGetName(d->name, (int)sizeof(d->name) - 1, d->dev);
    if (rc != DV_CU_SUCCESS) {
        r = dv__cu_fail_as(rc, DV_ERROR_BACKEND, "cuDeviceGetName(%d)",
                           args->ordinal);
        goto fail;
    }
    rc = dv__cu.cuDeviceTotalMem(&total, d->dev);
    if (rc != DV_CU_SUCCESS) {
        r = dv__cu_fail_as(rc, DV_ERROR_BACKEND, "cuDeviceTotalMem(%d)",
                           args->ordinal);
        goto fail;
    }
    d->total_memory = total;
    rc = dv__cu.cuDevicePrimaryCtxRetain(&d->ctx, d->dev);
    if (rc != DV_CU_SUCCESS) {
        r = dv__cu_fail(rc, "cuDevicePrimaryCtxRetain(%d)", args->ordinal);
        goto fail;
    }
    retained = 1;
    r = dv__cu_enter(d);
    if (r != DV_OK) {
        goto fail;
    }
    r = cu_query_granularity(d);
    dv__cu_leave(d);
    if (r != DV_OK) {
        goto fail;
    }
    if (nvml) {
        dv__cu_nvml_open(d);
    }
    *out = d;
    return DV_OK;

fail:
    if (retained) {
        dv__cu.cuDevicePrimaryCtxRelease(d->dev);
    }
    free(d);
    return r;
}

static void cu_fini(void *ctx) {
    dv__cu_dev_t *d = ctx;
    if (!d) {
        return;
    }
    int entered = dv__cu_enter(d) == DV_OK;
    if (entered) {
        dv__cu_event_cache_clear(d);
    }
    /* Forgotten even when the context could not be bound: the records
     * must not outlive d. */
    dv__cu_streams_release(d, entered);
    if (entered) {
        dv__cu_leave(d);
    }
    dv__cu_nvml_close(d);
    dv__cu.cuDevicePrimaryCtxRelease(d->dev);
    free(d);
}

static dv_result_t cu_get_caps(void *ctx, dv_hal_caps_t *caps) {
    dv__cu_dev_t *d = ctx;
    if (!d || !caps) {
        return dv__native_fail(DV_ERROR_INVALID_ARGUMENT, 0, "cuda get_caps: NULL");
    }
    memset(caps, 0, sizeof(*caps));
    snprintf(caps->name, sizeof(caps->name), "%s", d->name);
    caps->granularity = d->granularity;
    caps->va_alignment = d->granularity;
    caps->total_memory = d->total_memory;
    caps->flags = DV_CAP_FENCES | DV_CAP_ASYNC_COPY | DV_CAP_HOST_REGISTER;
    return DV_OK;
}

static dv_result_t cu_mem_info(void *ctx, uint64_t *free_bytes,
                               uint64_t *total_bytes) {
    dv__cu_dev_t *d = ctx;
    size_t f = 0;
    size_t t = 0;
    dv_cu_result rc;
    dv_result_t r = dv__cu_enter(d);
    if (r != DV_OK) {
        return r;
    }
    rc = dv__cu.cuMemGetInfo(&f, &t);
    dv__cu_leave(d);
    if (rc != DV_CU_SUCCESS) {
        return dv__cu_fail_as(rc, DV_ERROR_BACKEND, "cuMemGetInfo(device %d)",
                              d->ordinal);
    }
    /* With nvml=1: NVML counts every process's use; the driver's figure
     * may count only what this process can see. The smaller one wins. */
    uint64_t nv_free = 0;
    if (dv__cu_nvml_free(d, &nv_free) && nv_free < f) {
        f = (size_t)nv_free;
    }
    if (free_bytes) {
        *free_bytes = f;
    }
    if (total_bytes) {
        *total_bytes = t;
    }
    return DV_OK;
}

static const dv_hal_ops_t cu_ops = {
    .version = DV_HAL_VERSION,
    .name = "cuda",
    .probe = cu_probe,
    .init = cu_init,
    .fini = cu_fini,
    .get_caps = cu_get_caps,
    .mem_info = cu_mem_info,
    .reserve = dv__cu_reserve,
    .unreserve = dv__cu_unreserve,
    .create = dv__cu_create,
    .release = dv__cu_release,
    .map = dv__cu_map,
    .unmap = dv__cu_unmap,
    .fence_record = dv__cu_fence_record,
    .fence_query = dv__cu_fence_query,
    .fence_wait = dv__cu_fence_wait,
    .fence_destroy = dv__cu_fence_destroy,
    .stream_create = dv__cu_stream_create,
    .stream_destroy = dv__cu_stream_destroy,
    .stream_synchronize = dv__cu_stream_synchronize,
    .copy_h2d = dv__cu_copy_h2d,
    .copy_d2h = dv__cu_copy_d2h,
    .host_register = dv__cu_host_register,
    .host_unregister = dv__cu_host_unregister,
    .last_native_error = dv__native_get,
    .stream_check = dv__cu_stream_check,
    .stream_wait = dv__cu_stream_wait,
    .stream_is_capturing = dv__cu_stream_is_capturing,
};

const dv_hal_ops_t *dv_hal_cuda(void) { return &cu_ops; }
