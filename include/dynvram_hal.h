/*
 * dynvram_hal.h - the hardware abstraction layer a backend implements.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * The core calls a backend only through a dv_hal_ops_t. A backend may live
 * out of tree: fill the struct and pass it to dv_device_open_hal().
 *
 * Contract for every op:
 *  - Returns a dv_result_t. Running out of device memory is always
 *    DV_ERROR_OUT_OF_DEVICE_MEMORY and nothing else is: the core evicts and
 *    retries on it. Other driver failures are DV_ERROR_BACKEND.
 *  - Every failing op records why, for last_native_error on the calling
 *    thread: the driver's code (0 when there is none, e.g. an argument the
 *    backend itself refused) and a text naming the call. The core builds
 *    its message from that record, so an op that fails without setting it
 *    shows an earlier failure's reason. An op never calls dv_last_error's
 *    machinery itself.
 *  - An op that fails leaves no partial state behind (a failed map leaves
 *    the range unmapped, a failed create allocates nothing).
 *  - The core serializes calls per device (it holds the device lock), except
 *    probe, which may run at any time. Different devices of one backend may
 *    call concurrently: shared backend state needs its own lock.
 *  - Four ops may also be called without the device lock, concurrently with
 *    any other op of the same device: fence_query and fence_wait (on a
 *    fence the caller recorded and has not destroyed), host_register and
 *    host_unregister (of different ranges). Host I/O calls them so: a read
 *    waiting for its staging copies, or pinning gigabytes of a host buffer,
 *    must not hold up faults. A backend keeps any state these touch under
 *    its own lock (the in-tree backends touch none but the host backend's
 *    registration table, which has one).
 *  - Ops marked optional may be NULL; the core then reports
 *    DV_ERROR_NOT_SUPPORTED or uses a documented fallback.
 *  - Vendor quirks stay inside the backend; the core sees only caps.
 */
#ifndef DYNVRAM_HAL_H
#define DYNVRAM_HAL_H

#include "dynvram.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Version 2 added stream_check, stream_wait and stream_is_capturing. A
 * backend built against version 1 (its
 * struct ends at last_native_error) still works: the core copies only the
 * fields its version has and treats the rest as NULL. */
#define DV_HAL_VERSION 2
#define DV_HAL_VERSION_MIN 1

/* An opaque physical allocation handle (CUmemGenericAllocationHandle, a
 * hipMemGenericAllocationHandle_t, a ze_physical_mem_handle_t, a memfd...). */
typedef uint64_t dv_hal_mem_t;
/* An opaque fence (an event). */
typedef void *dv_hal_fence_t;

typedef struct dv_hal_caps {
    char name[128];        /* device name */
    uint64_t granularity;  /* create/map sizes and offsets are multiples */
    uint64_t va_alignment; /* reserve returns addresses aligned to this */
    uint64_t total_memory;
    uint32_t flags;        /* dv_cap_flags_t bits */
    uint32_t reserved0;
} dv_hal_caps_t;

/* What init gets. `ordinal` stays first for version-1 backends, which get
 * size 0 and options NULL. */
typedef struct dv_hal_init_args {
    int ordinal;
    uint32_t size;       /* sizeof(dv_hal_init_args_t) (version 2 on) */
    const char *options; /* dv_device_options_t.backend_options, "" if none;
                            refuse keys you do not know */
} dv_hal_init_args_t;

typedef struct dv_hal_ops {
    uint32_t version; /* DV_HAL_VERSION (or an older one, >= DV_HAL_VERSION_MIN) */
    const char *name; /* "cuda", "hip", "levelzero", "host", ... */

    /* ---- required ---- */

    /* Is the backend usable here? Fills *device_count (0 if not) and, when
     * unavailable, a reason. Must not require init. DV_OK or
     * DV_ERROR_BACKEND_UNAVAILABLE. */
    dv_result_t (*probe)(int *device_count, char *reason, size_t reason_len);
    /* Open device args->ordinal; *ctx is the backend's per-device state. */
    dv_result_t (*init)(const dv_hal_init_args_t *args, void **ctx);
    void (*fini)(void *ctx);
    dv_result_t (*get_caps)(void *ctx, dv_hal_caps_t *caps);
    dv_result_t (*mem_info)(void *ctx, uint64_t *free_bytes,
                            uint64_t *total_bytes);
    /* Reserve `size` bytes of virtual address space (no memory). */
    dv_result_t (*reserve)(void *ctx, uint64_t size, uint64_t *va);
    dv_result_t (*unreserve)(void *ctx, uint64_t va, uint64_t size);
    /* Allocate `size` bytes of physical device memory. */
    dv_result_t (*create)(void *ctx, uint64_t size, dv_hal_mem_t *mem);
    dv_result_t (*release)(void *ctx, dv_hal_mem_t mem);
    /* Map all of `mem` (its size is `size`) at `va`, readable and writable
     * by the device (and by the CPU when DV_CAP_HOST_ACCESSIBLE). */
    dv_result_t (*map)(void *ctx, uint64_t va, uint64_t size, dv_hal_mem_t mem);
    /* Unmap [va, va + size): afterwards touching it faults. */
    dv_result_t (*unmap)(void *ctx, uint64_t va, uint64_t size);

    /* ---- optional ---- */

    /* Fences (DV_CAP_FENCES): record after the work queued on `stream`;
     * query returns DV_OK when done, DV_NOT_READY when not; wait blocks for
     * this fence only. */
    dv_result_t (*fence_record)(void *ctx, void *stream, dv_hal_fence_t *fence);
    dv_result_t (*fence_query)(void *ctx, dv_hal_fence_t fence);
    dv_result_t (*fence_wait)(void *ctx, dv_hal_fence_t fence);
    void (*fence_destroy)(void *ctx, dv_hal_fence_t fence);

    dv_result_t (*stream_create)(void *ctx, void **stream);
    dv_result_t (*stream_destroy)(void *ctx, void *stream);
    dv_result_t (*stream_synchronize)(void *ctx, void *stream);

    dv_result_t (*copy_h2d)(void *ctx, uint64_t dst, const void *src,
                            uint64_t size, void *stream);
    dv_result_t (*copy_d2h)(void *ctx, void *dst, uint64_t src, uint64_t size,
                            void *stream);
    /* Page-lock [ptr, ptr + size) for fast copies (DV_CAP_HOST_REGISTER).
     * Like the CUDA driver: a range overlapping a live registration is
     * refused, and unregister takes exactly the start of one. */
    dv_result_t (*host_register)(void *ctx, void *ptr, uint64_t size);
    dv_result_t (*host_unregister)(void *ctx, void *ptr);

    /* The native code and text of the last failure on the calling thread
     * (0 and "" if none). `code` and `text` may be NULL. */
    void (*last_native_error)(int64_t *code, char *text, size_t text_len);

    /* ---- version 2 (optional) ---- */

    /* Is `stream` (never NULL: NULL is the default stream) a live stream of
     * this device? DV_OK; DV_ERROR_INVALID_ARGUMENT (destroyed, or not a
     * stream at all); DV_ERROR_WRONG_DEVICE (a live stream of another
     * device). It must not crash on a junk value wherever the driver offers
     * a safe way to ask. The core asks once per stream it has not seen,
     * before recording a fence on it or passing it to a copy or a
     * synchronize; without this op such streams are passed on unchecked. */
    dv_result_t (*stream_check)(void *ctx, void *stream);

    /* Make work queued on `stream` after this call wait until `fence` is
     * done, without blocking the host (cuStreamWaitEvent). Streaming uses
     * it to order a copy stream against the compute stream both ways. */
    dv_result_t (*stream_wait)(void *ctx, void *stream, dv_hal_fence_t fence);

    /* *capturing = 1 while `stream` is being captured into a graph (CUDA
     * graph capture), else 0. While it is, the core never synchronizes it
     * or waits on a fence recorded on it: that would invalidate the
     * capture. Without this op the core assumes no capture. */
    dv_result_t (*stream_is_capturing)(void *ctx, void *stream, int *capturing);
} dv_hal_ops_t;

/* Built-in backends. Each getter exists in every build; a backend compiled
 * out returns ops whose probe reports DV_ERROR_BACKEND_UNAVAILABLE. */
DV_API const dv_hal_ops_t *dv_hal_cuda(void);
DV_API const dv_hal_ops_t *dv_hal_hip(void);
DV_API const dv_hal_ops_t *dv_hal_levelzero(void);
DV_API const dv_hal_ops_t *dv_hal_host(void);

/* The built-in backend of that name, or NULL. */
DV_API const dv_hal_ops_t *dv_hal_by_name(const char *name);

#ifdef __cplusplus
}
#endif

#endif /* DYNVRAM_HAL_H */
