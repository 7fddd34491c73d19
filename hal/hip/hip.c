/*
 * hip.c - the HIP backend's HAL ops: AMD GPUs through the HIP runtime's
 * virtual memory management API, loaded at run time.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Contract (beyond dynvram_hal.h):
 *  - HIP's current device is per thread, and the caller's thread may have
 *    chosen another one. Every op binds its device with hipSetDevice first
 *    and restores the caller's device afterwards.
 *  - Virtual-memory calls go through hip_vmm.c, which serializes them for
 *    the whole process and works around the ROCm defects; none of that is
 *    visible to the core except as caps (the queried granularity).
 *  - The backend never claims DV_CAP_HOST_ACCESSIBLE: device addresses are
 *    not CPU pointers, even where ROCm mirrors them in the CPU address space.
 *  - Fences are events created with hipEventDisableTiming, kept in a small
 *    per-device pool so an unpin does not pay for an event creation.
 *  - stream_check asks the runtime a question whose answer changes nothing:
 *    hipStreamGetDevice where the runtime has it (ROCm >= 5.6), else
 *    hipStreamGetFlags. Both are resolved as optional. ROCm answers them by
 *    looking the handle up in its set of live streams before reading it
 *    (hip::isValid), so a dead or junk stream gets
 *    hipErrorContextIsDestroyed instead of a crash: hipStreamGetDevice in
 *    every release that has it; hipStreamGetFlags in the ROCm 5 sources,
 *    which lack hipStreamGetDevice, while later ones read the stream
 *    unchecked. Hence the order: hipStreamGetFlags is asked only where
 *    hipStreamGetDevice is missing. hipStreamGetDevice also names the
 *    stream's device, so a stream of another GPU is DV_ERROR_WRONG_DEVICE;
 *    with hipStreamGetFlags that cannot be told and such a stream passes.
 *    A runtime with neither leaves streams unchecked. ROCm takes
 *    hipStreamLegacy and hipStreamPerThread ((hipStream_t)1 and 2) as valid
 *    streams.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/native.h"
#include "hip_internal.h"

#define HIP_EVENT_POOL 32

typedef struct hip_ctx {
    int ordinal;
    dv_hal_caps_t caps;
    union {
        dv_hip_mem_alloc_prop_t v6;
        dv_hip_mem_alloc_prop_v5_t v5;
    } prop; /* layout chosen by the runtime version */
    dv_hip_event_t events[HIP_EVENT_POOL];
    int event_count;
} hip_ctx_t;

/* ---- device binding ------------------------------------------------------ */

typedef struct hip_bind {
    int prev;
    int restore;
} hip_bind_t;

static dv_result_t hip_bind(int ordinal, hip_bind_t *b) {
    int cur = -1;
    b->prev = -1;
    b->restore = 0;
    if (dv__hip.hipGetDevice(&cur) != DV_HIP_SUCCESS) {
        cur = -1;
    }
    if (cur == ordinal) {
        return DV_OK;
    }
    dv_hip_error_t e = dv__hip.hipSetDevice(ordinal);
    if (e != DV_HIP_SUCCESS) {
        return dv__hip_fail(e, "hipSetDevice", "%d", ordinal);
    }
    b->prev = cur;
    b->restore = cur >= 0;
    return DV_OK;
}

static void hip_unbind(const hip_bind_t *b) {
    if (b->restore) {
        (void)dv__hip.hipSetDevice(b->prev);
    }
}

/* Runs `expr` (a dv_result_t expression) with the context's device bound. */
#define HIP_BOUND(c, expr)                                                     \
    do {                                                                       \
        hip_bind_t bind_;                                                      \
        dv_result_t br_ = hip_bind((c)->ordinal, &bind_);                      \
        if (br_ != DV_OK) {                                                    \
            return br_;                                                        \
        }                                                                      \
        br_ = (expr);                                                          \
        hip_unbind(&bind_);                                                    \
        return br_;                                                            \
    } while (0)

static const void *hip_prop(const hip_ctx_t *c) { return &c->prop; }

/* ---- probe, init, caps ------------------------------------------------------ */

static dv_result_t hip_probe(int *device_count, char *reason,
                             size_t reason_len) {
    char why[512];
    int n = 0;
    if (device_count) {
        *device_count = 0;
    }
    dv_result_t r = dv__hip_load(why, sizeof(why));
    if (r == DV_OK) {
        dv_hip_error_t e = dv__hip.hipGetDeviceCount(&n);
        if (e != DV_HIP_SUCCESS || n <= 0) {
            size_t len = strlen(why);
            snprintf(why + len, sizeof(why) - len, ": no HIP device (%s)",
                     e != DV_HIP_SUCCESS ? dv__hip_error_name(e) : "count 0");
            n = 0;
            r = DV_ERROR_BACKEND_UNAVAILABLE;
        }
    }
    if (device_count) {
        *device_count = n;
    }
    if (reason && reason_len) {
        snprintf(reason, reason_len, "%s", why);
    }
    return r;
}

static void hip_fill_prop(hip_ctx_t *c) {
    memset(&c->prop, 0, sizeof(c->prop));
    if (dv__hip_prop_is_v6()) {
        c->prop.v6.type = DV_HIP_MEM_ALLOCATION_TYPE_PINNED;
        c->prop.v6.requested_handle_types = DV_HIP_MEM_HANDLE_TYPE_NONE;
        c->prop.v6.location.type = DV_HIP_MEM_LOCATION_TYPE_DEVICE;
        c->prop.v6.location.id = c->ordinal;
    } else {
        c->prop.v5.type = DV_HIP_MEM_ALLOCATION_TYPE_PINNED;
        c->prop.v5.requested_handle_type = DV_HIP_MEM_HANDLE_TYPE_NONE;
        c->prop.v5.location.type = DV_HIP_MEM_LOCATION_TYPE_DEVICE;
        c->prop.v5.location.id = c->ordinal;
    }
}

static void hip_fill_name(hip_ctx_t *c) {
    char name[sizeof(c->caps.name)] = "";
    dv_hip_device_t dev = c->ordinal;
    if (dv__hip.hipDeviceGet &&
        dv__hip.hipDeviceGet(&dev, c->ordinal) != DV_HIP_SUCCESS) {
        dev = c->ordinal;
    }
    if (!dv__hip.hipDeviceGetName ||
        dv__hip.hipDeviceGetName(name, (int)sizeof(name), dev) !=
            DV_HIP_SUCCESS ||
        name[0] == '\0') {
        snprintf(name, sizeof(name), "AMD GPU %d", c->ordinal);
    }
    name[sizeof(name) - 1] = '\0';
    memcpy(c->caps.name, name, sizeof(name));
}

/* Everything init needs once the device is bound. */
static dv_result_t hip_init_bound(hip_ctx_t *c) {
    int vmm = 0;
    dv_hip_error_t e = dv__hip.hipDeviceGetAttribute(
        &vmm, DV_HIP_DEVICE_ATTRIBUTE_VMM_SUPPORTED, c->ordinal);
    if (e != DV_HIP_SUCCESS) {
        return dv__hip_fail_as(DV_ERROR_NOT_SUPPORTED, e,
                               "hipDeviceGetAttribute",
                               "VirtualMemoryManagementSupported");
    }
    if (!vmm) {
        return dv__native_fail(DV_ERROR_NOT_SUPPORTED, 0, "hip: device %d does not support virtual memory "
                        "management",
                        c->ordinal);
    }
    hip_fill_prop(c);
    uint64_t gmin = 0, grec = 0;
    dv_result_t r = dv__hip_vmm_granularity(hip_prop(c), &gmin, &grec);
    if (r != DV_OK) {
        return r;
    }
    size_t free_b = 0, total_b = 0;
    e = dv__hip.hipMemGetInfo(&free_b, &total_b);
    if (e != DV_HIP_SUCCESS) {
        return dv__hip_fail(e, "hipMemGetInfo", "device %d", c->ordinal);
    }
    hip_fill_name(c);
    c->caps.granularity = gmin;
    c->caps.va_alignment = grec;
    c->caps.total_memory = total_b;
    c->caps.flags = DV_CAP_FENCES | DV_CAP_ASYNC_COPY;
    if (dv__hip.hipHostRegister && dv__hip.hipHostUnregister) {
        c->caps.flags |= DV_CAP_HOST_REGISTER;
    }
    return DV_OK;
}

static dv_result_t hip_init(const dv_hal_init_args_t *args, void **ctx) {
    if (!args || !ctx) {
        return dv__native_fail(DV_ERROR_INVALID_ARGUMENT, 0, "hip: init: NULL argument");
    }
    char why[512];
    if (dv__hip_load(why, sizeof(why)) != DV_OK) {
        return dv__native_fail(DV_ERROR_BACKEND_UNAVAILABLE, 0, "hip: %s", why);
    }
    int n = 0;
    dv_hip_error_t e = dv__hip.hipGetDeviceCount(&n);
    if (e == DV_HIP_ERROR_NO_DEVICE) {
        n = 0;
    } else if (e != DV_HIP_SUCCESS) {
        return dv__hip_fail(e, "hipGetDeviceCount", "%s", "&count");
    }
    if (args->ordinal < 0 || args->ordinal >= n) {
        return dv__native_fail(DV_ERROR_DEVICE_NOT_FOUND, 0, "hip: no device %d (%d present)", args->ordinal, n);
    }
    hip_ctx_t *c = calloc(1, sizeof(*c));
    if (!c) {
        return dv__native_fail(DV_ERROR_OUT_OF_HOST_MEMORY, 0, "hip: init: no memory");
    }
    c->ordinal = args->ordinal;
    hip_bind_t b;
    dv_result_t r = hip_bind(c->ordinal, &b);
    if (r != DV_OK) {
        goto fail;
    }
    r = hip_init_bound(c);
    hip_unbind(&b);
    if (r != DV_OK) {
        goto fail;
    }
    *ctx = c;
    return DV_OK;
fail:
    free(c);
    return r;
}

static void hip_fini(void *ctx) {
    hip_ctx_t *c = ctx;
    if (!c) {
        return;
    }
    hip_bind_t b;
    if (hip_bind(c->ordinal, &b) == DV_OK) {
        for (int i = 0; i < c->event_count; i++) {
            (void)dv__hip.hipEventDestroy(c->events[i]);
        }
        hip_unbind(&b);
    }
    free(c);
}

static dv_result_t hip_get_caps(void *ctx, dv_hal_caps_t *caps) {
    hip_ctx_t *c = ctx;
    *caps = c->caps;
    return DV_OK;
}

static dv_result_t hip_mem_info_bound(hip_ctx_t *c, uint64_t *free_bytes,
                                      uint64_t *total_bytes) {
    size_t f = 0, t = 0;
    dv_hip_error_t e = dv__hip.hipMemGetInfo(&f, &t);
    if (e != DV_HIP_SUCCESS) {
        return dv__hip_fail(e, "hipMemGetInfo", "device %d", c->ordinal);
    }
    *free_bytes = f;
    *total_bytes = t;
    return DV_OK;
}

static dv_result_t hip_mem_info(void *ctx, uint64_t *free_bytes,
                                uint64_t *total_bytes) {
    hip_ctx_t *c = ctx;
    HIP_BOUND(c, hip_mem_info_bound(c, free_bytes, total_bytes));
}

/* ---- virtual memory -------------------------------------------------------- */

static dv_result_t hip_check_size(const hip_ctx_t *c, const char *op,
                                  uint64_t va, uint64_t size) {
    uint64_t g = c->caps.granularity;
    if (size == 0 || size % g != 0 || va % g != 0) {
        return dv__native_fail(DV_ERROR_INVALID_ARGUMENT, 0, "hip: %s(%#llx, %llu): not a multiple of the "
                        "granularity %llu",
                        op, (unsigned long long)va, (unsigned long long)size,
                        (unsigned long long)g);
    }
    return DV_OK;
}

static dv_result_t hip_reserve(void *ctx, uint64_t size, uint64_t *va) {
    hip_ctx_t *c = ctx;
    dv_result_t r = hip_check_size(c, "reserve", 0, size);
    if (r != DV_OK) {
        return r;
    }
    HIP_BOUND(c, dv__hip_vmm_reserve(size, c->caps.va_alignment, va));
}

static dv_result_t hip_unreserve(void *ctx, uint64_t va, uint64_t size) {
    hip_ctx_t *c = ctx;
    HIP_BOUND(c, dv__hip_vmm_unreserve(va, size));
}

static dv_result_t hip_create_bound(hip_ctx_t *c, uint64_t size,
                                    dv_hal_mem_t *mem) {
    dv_hip_mem_handle_t h = NULL;
    dv_result_t r = dv__hip_vmm_create(hip_prop(c), size, &h);
    if (r == DV_OK) {
        *mem = (dv_hal_mem_t)(uintptr_t)h;
    }
    return r;
}

static dv_result_t hip_create(void *ctx, uint64_t size, dv_hal_mem_t *mem) {
    hip_ctx_t *c = ctx;
    dv_result_t r = hip_check_size(c, "create", 0, size);
    if (r != DV_OK) {
        return r;
    }
    HIP_BOUND(c, hip_create_bound(c, size, mem));
}

static dv_hip_mem_handle_t hip_handle(dv_hal_mem_t mem) {
    return (dv_hip_mem_handle_t)(uintptr_t)mem;
}

static dv_result_t hip_release(void *ctx, dv_hal_mem_t mem) {
    hip_ctx_t *c = ctx;
    HIP_BOUND(c, dv__hip_vmm_release(hip_handle(mem)));
}

static dv_result_t hip_map(void *ctx, uint64_t va, uint64_t size,
                           dv_hal_mem_t mem) {
    hip_ctx_t *c = ctx;
    dv_result_t r = hip_check_size(c, "map", va, size);
    if (r != DV_OK) {
        return r;
    }
    HIP_BOUND(c, dv__hip_vmm_map(va, size, hip_handle(mem), c->ordinal));
}

static dv_result_t hip_unmap(void *ctx, uint64_t va, uint64_t size) {
    hip_ctx_t *c = ctx;
    dv_result_t r = hip_check_size(c, "unmap", va, size);
    if (r != DV_OK) {
        return r;
    }
    HIP_BOUND(c, dv__hip_vmm_unmap(va, size));
}

/* ---- fences ------------------------------------------------------------------ */

static dv_result_t hip_fence_record_bound(hip_ctx_t *c, void *stream,
                                          dv_hal_fence_t *fence) {
    dv_hip_event_t ev = NULL;
    if (c->event_count > 0) {
        ev = c->events[--c->event_count];
    } else {
        dv_hip_error_t e =
            dv__hip.hipEventCreateWithFlags(&ev, DV_HIP_EVENT_DISABLE_TIMING);
        if (e != DV_HIP_SUCCESS) {
            return dv__hip_fail(e, "hipEventCreateWithFlags", "device %d",
                                c->ordinal);
        }
    }
    dv_hip_error_t e = dv__hip.hipEventRecord(ev, (dv_hip_stream_t)stream);
    if (e != DV_HIP_SUCCESS) {
        c->events[c->event_count++] = ev; /* there was room: it came out */
        return dv__hip_fail(e, "hipEventRecord", "stream %p", stream);
    }
    *fence = ev;
    return DV_OK;
}

static dv_result_t hip_fence_record(void *ctx, void *stream,
                                    dv_hal_fence_t *fence) {
    hip_ctx_t *c = ctx;
    HIP_BOUND(c, hip_fence_record_bound(c, stream, fence));
}

static dv_result_t hip_fence_query_bound(dv_hal_fence_t fence) {
    dv_hip_error_t e = dv__hip.hipEventQuery((dv_hip_event_t)fence);
    if (e == DV_HIP_SUCCESS) {
        return DV_OK;
    }
    if (e == DV_HIP_ERROR_NOT_READY) {
        return DV_NOT_READY;
    }
    return dv__hip_fail(e, "hipEventQuery", "%p", fence);
}

static dv_result_t hip_fence_query(void *ctx, dv_hal_fence_t fence) {
    hip_ctx_t *c = ctx;
    HIP_BOUND(c, hip_fence_query_bound(fence));
}

static dv_result_t hip_fence_wait_bound(dv_hal_fence_t fence) {
    dv_hip_error_t e = dv__hip.hipEventSynchronize((dv_hip_event_t)fence);
    if (e != DV_HIP_SUCCESS) {
        return dv__hip_fail(e, "hipEventSynchronize", "%p", fence);
    }
    return DV_OK;
}

static dv_result_t hip_fence_wait(void *ctx, dv_hal_fence_t fence) {
    hip_ctx_t *c = ctx;
    HIP_BOUND(c, hip_fence_wait_bound(fence));
}

static void hip_fence_destroy(void *ctx, dv_hal_fence_t fence) {
    hip_ctx_t *c = ctx;
    if (!fence) {
        return;
    }
    if (c->event_count < HIP_EVENT_POOL) {
        c->events[c->event_count++] = (dv_hip_event_t)fence;
        return;
    }
    hip_bind_t b;
    if (hip_bind(c->ordinal, &b) == DV_OK) {
        (void)dv__hip.hipEventDestroy((dv_hip_event_t)fence);
        hip_unbind(&b);
    }
}

/* ---- streams and copies -------------------------------------------------------- */

static dv_result_t hip_stream_create_bound(void **stream) {
    dv_hip_stream_t s = NULL;
    dv_hip_error_t e = dv__hip.hipStreamCreate(&s);
    if (e != DV_HIP_SUCCESS) {
        return dv__hip_fail(e, "hipStreamCreate", "%s", "&stream");
    }
    *stream = s;
    return DV_OK;
}

static dv_result_t hip_stream_create(void *ctx, void **stream) {
    hip_ctx_t *c = ctx;
    HIP_BOUND(c, hip_stream_create_bound(stream));
}

static dv_result_t hip_stream_call(dv_hip_error_t e, const char *call,
                                   void *stream) {
    if (e != DV_HIP_SUCCESS) {
        return dv__hip_fail(e, call, "%p", stream);
    }
    return DV_OK;
}

static dv_result_t hip_stream_destroy(void *ctx, void *stream) {
    hip_ctx_t *c = ctx;
    HIP_BOUND(c, hip_stream_call(dv__hip.hipStreamDestroy(stream),
                                 "hipStreamDestroy", stream));
}

static dv_result_t hip_stream_synchronize(void *ctx, void *stream) {
    hip_ctx_t *c = ctx;
    HIP_BOUND(c, hip_stream_call(dv__hip.hipStreamSynchronize(stream),
                                 "hipStreamSynchronize", stream));
}

static dv_result_t hip_stream_bad(dv_hip_error_t e, const char *call,
                                  void *stream) {
    char detail[64];
    snprintf(detail, sizeof(detail), "%p: not a live stream", stream);
    return dv__hip_fail_as(DV_ERROR_INVALID_ARGUMENT, e, call, detail);
}

static dv_result_t hip_stream_check_bound(const hip_ctx_t *c, void *stream) {
    dv_hip_stream_t s = (dv_hip_stream_t)stream;
    if (dv__hip.hipStreamGetDevice) {
        dv_hip_device_t dev = -1;
        dv_hip_error_t e = dv__hip.hipStreamGetDevice(s, &dev);
        if (e != DV_HIP_SUCCESS) {
            return hip_stream_bad(e, "hipStreamGetDevice", stream);
        }
        if (dev != c->ordinal) {
            return dv__native_fail(DV_ERROR_WRONG_DEVICE, 0,
                                   "hip: stream %p belongs to device %d, not "
                                   "to device %d",
                                   stream, (int)dev, c->ordinal);
        }
        return DV_OK;
    }
    if (dv__hip.hipStreamGetFlags) {
        unsigned int flags = 0;
        dv_hip_error_t e = dv__hip.hipStreamGetFlags(s, &flags);
        if (e != DV_HIP_SUCCESS) {
            return hip_stream_bad(e, "hipStreamGetFlags", stream);
        }
    }
    return DV_OK;
}

static dv_result_t hip_stream_check(void *ctx, void *stream) {
    hip_ctx_t *c = ctx;
    if (!stream) {
        return DV_OK; /* the default stream; the core never asks */
    }
    HIP_BOUND(c, hip_stream_check_bound(c, stream));
}

static dv_result_t hip_copy_call(dv_hip_error_t e, const char *call,
                                 uint64_t dev_addr, uint64_t size) {
    if (e != DV_HIP_SUCCESS) {
        return dv__hip_fail(e, call, "%#llx, %llu",
                            (unsigned long long)dev_addr,
                            (unsigned long long)size);
    }
    return DV_OK;
}

static dv_result_t hip_copy_h2d(void *ctx, uint64_t dst, const void *src,
                                uint64_t size, void *stream) {
    hip_ctx_t *c = ctx;
    /* hipMemcpyHtoDAsync takes a non-const source it never writes. */
    void *s = (void *)(uintptr_t)src;
    HIP_BOUND(c, hip_copy_call(dv__hip.hipMemcpyHtoDAsync(
                                   (dv_hip_deviceptr_t)(uintptr_t)dst, s,
                                   (size_t)size, (dv_hip_stream_t)stream),
                               "hipMemcpyHtoDAsync", dst, size));
}

static dv_result_t hip_copy_d2h(void *ctx, void *dst, uint64_t src,
                                uint64_t size, void *stream) {
    hip_ctx_t *c = ctx;
    HIP_BOUND(c, hip_copy_call(dv__hip.hipMemcpyDtoHAsync(
                                   dst, (dv_hip_deviceptr_t)(uintptr_t)src,
                                   (size_t)size, (dv_hip_stream_t)stream),
                               "hipMemcpyDtoHAsync", src, size));
}

static dv_result_t hip_host_register(void *ctx, void *ptr, uint64_t size) {
    hip_ctx_t *c = ctx;
    if (!dv__hip.hipHostRegister) {
        return dv__native_fail(DV_ERROR_NOT_SUPPORTED, 0, "hip: the runtime has no hipHostRegister");
    }
    HIP_BOUND(c, hip_copy_call(dv__hip.hipHostRegister(
                                   ptr, (size_t)size,
                                   DV_HIP_HOST_REGISTER_DEFAULT),
                               "hipHostRegister", (uint64_t)(uintptr_t)ptr,
                               size));
}

static dv_result_t hip_host_unregister(void *ctx, void *ptr) {
    hip_ctx_t *c = ctx;
    if (!dv__hip.hipHostUnregister) {
        return dv__native_fail(DV_ERROR_NOT_SUPPORTED, 0, "hip: the runtime has no hipHostUnregister");
    }
    HIP_BOUND(c, hip_copy_call(dv__hip.hipHostUnregister(ptr),
                               "hipHostUnregister", (uint64_t)(uintptr_t)ptr,
                               0));
}

static const dv_hal_ops_t hip_ops = {
    .version = DV_HAL_VERSION,
    .name = "hip",
    .probe = hip_probe,
    .init = hip_init,
    .fini = hip_fini,
    .get_caps = hip_get_caps,
    .mem_info = hip_mem_info,
    .reserve = hip_reserve,
    .unreserve = hip_unreserve,
    .create = hip_create,
    .release = hip_release,
    .map = hip_map,
    .unmap = hip_unmap,
    .fence_record = hip_fence_record,
    .fence_query = hip_fence_query,
    .fence_wait = hip_fence_wait,
    .fence_destroy = hip_fence_destroy,
    .stream_create = hip_stream_create,
    .stream_destroy = hip_stream_destroy,
    .stream_synchronize = hip_stream_synchronize,
    .copy_h2d = hip_copy_h2d,
    .copy_d2h = hip_copy_d2h,
    .host_register = hip_host_register,
    .host_unregister = hip_host_unregister,
    .last_native_error = dv__native_get,
    .stream_check = hip_stream_check,
};

const dv_hal_ops_t *dv_hal_hip(void) { return &hip_ops; }
