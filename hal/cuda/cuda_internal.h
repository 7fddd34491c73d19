/*
 * cuda_internal.h - state and helpers shared by the CUDA backend's files
 * (cuda.c: loading, errors, device; cuda_mem.c: address space and physical
 * memory; cuda_stream.c: fences, stream checks, copies, host memory;
 * cuda_stream_registry.c: the streams the backend makes, and their records).
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Every op follows one shape: dv__cu_enter (push the device's primary
 * context), the driver call(s), dv__cu_leave (pop it), and on failure
 * dv__cu_fail_as, which keeps the native code for last_native_error and
 * returns the translated result.
 */
#ifndef DV_HAL_CUDA_INTERNAL_H
#define DV_HAL_CUDA_INTERNAL_H

#include "dynvram_hal.h"

#include "base/error.h"
#include "base/native.h"
#include "cuda_load.h"

/* Events kept for reuse per device: fence_record then costs one
 * cuEventRecord instead of a create and a destroy. */
#define DV__CU_EVENT_CACHE 64
/* Destroyed streams kept alive per device, so their addresses stay dead
 * (cuda_stream_registry.c). */
#define DV__CU_PARKED 64

typedef struct dv__cu_dev {
    int ordinal;
    dv_cu_device dev;
    dv_cu_context ctx; /* the device's primary context, retained */
    uint64_t granularity;
    uint64_t total_memory;
    char name[128];
    /* Serialized by the core's device lock (HAL contract). */
    int event_count;
    dv_cu_event events[DV__CU_EVENT_CACHE];
    int parked_head, parked_count; /* a ring, oldest at head */
    dv_cu_stream parked[DV__CU_PARKED];
    /* The NVML device when the backend option nvml=1 found one, else NULL
     * (cuda_nvml.c). */
    void *nvml_dev;
} dv__cu_dev_t;

/* The process-wide driver table, valid once the backend loaded
 * (cuda_ctx.c). */
extern dv__cu_api_t dv__cu;
/* Load the driver once per process; DV_OK or DV_ERROR_BACKEND_UNAVAILABLE
 * with the reason (also the loaded library's name on success). */
dv_result_t dv__cu_loaded(void);
const char *dv__cu_load_reason(void);

/* Push d's context / pop it again (restoring the caller's). */
dv_result_t dv__cu_enter(const dv__cu_dev_t *d);
void dv__cu_leave(const dv__cu_dev_t *d);

/*
 * Record the failed call (code and text, thread-local) and return its
 * translation: `oom` for CUDA_ERROR_OUT_OF_MEMORY, DV_ERROR_INVALID_ARGUMENT
 * for CUDA_ERROR_INVALID_VALUE, DV_ERROR_BACKEND otherwise. `fmt` names the
 * call and its arguments.
 */
dv_result_t dv__cu_fail_as(dv_cu_result rc, dv_result_t oom, const char *fmt,
                           ...) DV__PRINTF(3, 4);

/* The usual case: out of memory is out of device memory. */
#define dv__cu_fail(rc, ...)                                                   \
    dv__cu_fail_as((rc), DV_ERROR_OUT_OF_DEVICE_MEMORY, __VA_ARGS__)

/* Ops implemented in cuda_mem.c and cuda_stream.c. */
dv_result_t dv__cu_reserve(void *ctx, uint64_t size, uint64_t *va);
dv_result_t dv__cu_unreserve(void *ctx, uint64_t va, uint64_t size);
dv_result_t dv__cu_create(void *ctx, uint64_t size, dv_hal_mem_t *mem);
dv_result_t dv__cu_release(void *ctx, dv_hal_mem_t mem);
dv_result_t dv__cu_map(void *ctx, uint64_t va, uint64_t size,
                       dv_hal_mem_t mem);
dv_result_t dv__cu_unmap(void *ctx, uint64_t va, uint64_t size);

dv_result_t dv__cu_fence_record(void *ctx, void *stream,
                                dv_hal_fence_t *fence);
dv_result_t dv__cu_fence_query(void *ctx, dv_hal_fence_t fence);
dv_result_t dv__cu_fence_wait(void *ctx, dv_hal_fence_t fence);
void dv__cu_fence_destroy(void *ctx, dv_hal_fence_t fence);
/* Destroy the cached events (fini; context already pushed). */
void dv__cu_event_cache_clear(dv__cu_dev_t *d);
dv_result_t dv__cu_stream_create(void *ctx, void **stream);
dv_result_t dv__cu_stream_destroy(void *ctx, void *stream);
dv_result_t dv__cu_stream_synchronize(void *ctx, void *stream);
/* DV_OK for a live stream of this device (of its primary context or of
 * another context on the same GPU), DV_ERROR_WRONG_DEVICE for one of another
 * GPU, DV_ERROR_INVALID_ARGUMENT for a destroyed one of ours, a value below
 * 64 KiB or one cuStreamGetCtx refuses. */
dv_result_t dv__cu_stream_check(void *ctx, void *stream);
dv_result_t dv__cu_stream_wait(void *ctx, void *stream, dv_hal_fence_t fence);
dv_result_t dv__cu_stream_is_capturing(void *ctx, void *stream,
                                       int *capturing);
/* cuda_stream_registry.c. 1 with *r set when `stream` is one this backend made
 * (live or destroyed) or no pointer at all; 0 for a foreign stream. */
int dv__cu_stream_known(const dv__cu_dev_t *d, void *stream, dv_result_t *r);
/* At fini: forget d's streams, parked ones and the ones the caller left,
 * destroying them when `destroy` (d's context is pushed). */
void dv__cu_streams_release(dv__cu_dev_t *d, int destroy);
dv_result_t dv__cu_copy_h2d(void *ctx, uint64_t dst, const void *src,
                            uint64_t size, void *stream);
dv_result_t dv__cu_copy_d2h(void *ctx, void *dst, uint64_t src, uint64_t size,
                            void *stream);
dv_result_t dv__cu_host_register(void *ctx, void *ptr, uint64_t size);
dv_result_t dv__cu_host_unregister(void *ctx, void *ptr);

/* cuda_nvml.c (backend option nvml=1). open: find d's NVML device (by PCI
 * bus id); without NVML it logs why and leaves d->nvml_dev NULL. close:
 * give it back. free: 1 with NVML's free bytes (every process's use
 * counted), 0 when d has no NVML device or the query failed. */
void dv__cu_nvml_open(dv__cu_dev_t *d);
void dv__cu_nvml_close(dv__cu_dev_t *d);
int dv__cu_nvml_free(const dv__cu_dev_t *d, uint64_t *free_bytes);

#endif /* DV_HAL_CUDA_INTERNAL_H */
