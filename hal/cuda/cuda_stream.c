/*
 * cuda_stream.c - the CUDA backend's fences (events), streams, copies and
 * host memory registration.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * A fence is a CUevent created with CU_EVENT_DISABLE_TIMING (timing makes
 * record and query dearer). Destroyed fences go back to a small per-device
 * cache and are re-recorded later: recording an event again simply moves it
 * to the new point in the stream, so a recycled event carries no old state.
 * A NULL stream is the legacy default stream (symbols are resolved with
 * CU_GET_PROC_ADDRESS_LEGACY_STREAM), the one PyTorch uses by default.
 *
 * stream_check first asks the backend's own records (cuda_stream_registry.c:
 * the streams stream_create made, live or destroyed, and values that are no
 * pointer at all). Any other stream is the caller's, and the driver is
 * asked which context it belongs to (cuStreamGetCtx): a failure means no
 * live stream. A context other than the device's primary one is pushed
 * just long enough for cuCtxGetDevice to name its device, so a stream of a
 * context the caller created on this GPU is accepted and one of another
 * GPU is DV_ERROR_WRONG_DEVICE. The driver does not validate the handle:
 * a dead or junk foreign stream crashes in cuStreamGetCtx, as it would in
 * any other call (tests/cuda/test_cuda.c shows it in a child process).
 */
#include <stdint.h>

#include "cuda_internal.h"

static dv_cu_stream cu_stream(void *stream) { return (dv_cu_stream)stream; }

dv_result_t dv__cu_fence_record(void *ctx, void *stream,
                                dv_hal_fence_t *fence) {
    dv__cu_dev_t *d = ctx;
    dv_cu_event ev = NULL;
    dv_cu_result rc;
    dv_result_t r;

    if (!fence) {
        return dv__native_fail(DV_ERROR_INVALID_ARGUMENT, 0, "cuda fence_record: NULL");
    }
    r = dv__cu_enter(d);
    if (r != DV_OK) {
        return r;
    }
    if (d->event_count > 0) {
        ev = d->events[--d->event_count];
    } else {
        rc = dv__cu.cuEventCreate(&ev, DV_CU_EVENT_DISABLE_TIMING);
        if (rc != DV_CU_SUCCESS) {
            dv__cu_leave(d);
            return dv__cu_fail_as(rc, DV_ERROR_BACKEND,
                                  "cuEventCreate(DISABLE_TIMING)");
        }
    }
    rc = dv__cu.cuEventRecord(ev, cu_stream(stream));
    if (rc != DV_CU_SUCCESS) {
        if (d->event_count < DV__CU_EVENT_CACHE) {
            d->events[d->event_count++] = ev;
        } else {
            dv__cu.cuEventDestroy(ev);
        }
        dv__cu_leave(d);
        return dv__cu_fail_as(rc, DV_ERROR_BACKEND, "cuEventRecord(stream %p)",
                              stream);
    }
    dv__cu_leave(d);
    *fence = ev;
    return DV_OK;
}

dv_result_t dv__cu_fence_query(void *ctx, dv_hal_fence_t fence) {
    dv__cu_dev_t *d = ctx;
    dv_cu_result rc;
    dv_result_t r = dv__cu_enter(d);
    if (r != DV_OK) {
        return r;
    }
    rc = dv__cu.cuEventQuery((dv_cu_event)fence);
    dv__cu_leave(d);
    if (rc == DV_CU_SUCCESS) {
        return DV_OK;
    }
    if (rc == DV_CU_ERROR_NOT_READY) {
        return DV_NOT_READY;
    }
    return dv__cu_fail_as(rc, DV_ERROR_BACKEND, "cuEventQuery(%p)", fence);
}

dv_result_t dv__cu_fence_wait(void *ctx, dv_hal_fence_t fence) {
    dv__cu_dev_t *d = ctx;
    dv_cu_result rc;
    dv_result_t r = dv__cu_enter(d);
    if (r != DV_OK) {
        return r;
    }
    rc = dv__cu.cuEventSynchronize((dv_cu_event)fence);
    dv__cu_leave(d);
    if (rc != DV_CU_SUCCESS) {
        return dv__cu_fail_as(rc, DV_ERROR_BACKEND, "cuEventSynchronize(%p)",
                              fence);
    }
    return DV_OK;
}

void dv__cu_fence_destroy(void *ctx, dv_hal_fence_t fence) {
    dv__cu_dev_t *d = ctx;
    dv_cu_result rc;
    if (!fence) {
        return;
    }
    if (d->event_count < DV__CU_EVENT_CACHE) {
        d->events[d->event_count++] = (dv_cu_event)fence;
        return;
    }
    if (dv__cu_enter(d) != DV_OK) {
        return;
    }
    rc = dv__cu.cuEventDestroy((dv_cu_event)fence);
    dv__cu_leave(d);
    if (rc != DV_CU_SUCCESS) {
        dv__log(DV_LOG_WARNING, "cuda: cuEventDestroy(%p) returned %d", fence,
                rc);
    }
}

void dv__cu_event_cache_clear(dv__cu_dev_t *d) {
    while (d->event_count > 0) {
        dv__cu.cuEventDestroy(d->events[--d->event_count]);
    }
}

/* The device of context `sc`, found with sc pushed (and popped again). */
static dv_result_t cu_ctx_device(dv_cu_context sc, dv_cu_device *dev) {
    dv_cu_result rc = dv__cu.cuCtxPushCurrent(sc);
    if (rc != DV_CU_SUCCESS) {
        return dv__cu_fail_as(rc, DV_ERROR_BACKEND,
                              "cuda stream_check: cuCtxPushCurrent(%p)",
                              (void *)sc);
    }
    rc = dv__cu.cuCtxGetDevice(dev);
    dv_cu_context popped = NULL;
    dv_cu_result prc = dv__cu.cuCtxPopCurrent(&popped);
    if (rc != DV_CU_SUCCESS) {
        return dv__cu_fail_as(rc, DV_ERROR_BACKEND,
                              "cuda stream_check: cuCtxGetDevice(context %p)",
                              (void *)sc);
    }
    if (prc != DV_CU_SUCCESS) {
        return dv__cu_fail_as(prc, DV_ERROR_BACKEND,
                              "cuda stream_check: cuCtxPopCurrent");
    }
    if (popped != sc) {
        return dv__native_fail(DV_ERROR_BACKEND, 0,
                               "cuda stream_check: cuCtxPopCurrent popped %p, "
                               "not the pushed %p",
                               (void *)popped, (void *)sc);
    }
    return DV_OK;
}

static dv_result_t cu_stream_check_bound(const dv__cu_dev_t *d, void *stream) {
    dv_cu_context sc = NULL;
    dv_cu_result rc = dv__cu.cuStreamGetCtx(cu_stream(stream), &sc);
    if (rc != DV_CU_SUCCESS) {
        char desc[160];
        dv__cu_describe(&dv__cu, rc, desc, sizeof(desc));
        return dv__native_fail(DV_ERROR_INVALID_ARGUMENT, rc,
                               "cuda stream_check: cuStreamGetCtx(%p): %s: "
                               "not a live stream",
                               stream, desc);
    }
    if (sc == d->ctx) {
        return DV_OK;
    }
    dv_cu_device dev = -1;
    dv_result_t r = cu_ctx_device(sc, &dev);
    if (r != DV_OK) {
        return r;
    }
    if (dev != d->dev) {
        return dv__native_fail(DV_ERROR_WRONG_DEVICE, 0,
                               "cuda stream_check: stream %p belongs to a "
                               "context (%p) of CUDA device %d, not of device "
                               "%d",
                               stream, (void *)sc, dev, d->ordinal);
    }
    return DV_OK; /* a context of its own on this device */
}

dv_result_t dv__cu_stream_check(void *ctx, void *stream) {
    dv__cu_dev_t *d = ctx;
    dv_result_t r = DV_OK;
    if (!stream) {
        return DV_OK; /* the legacy default stream of the device's context */
    }
    if (dv__cu_stream_known(d, stream, &r)) {
        return r;
    }
    r = dv__cu_enter(d);
    if (r != DV_OK) {
        return r;
    }
    r = cu_stream_check_bound(d, stream);
    dv__cu_leave(d);
    return r;
}

dv_result_t dv__cu_stream_synchronize(void *ctx, void *stream) {
    dv__cu_dev_t *d = ctx;
    dv_cu_result rc;
    dv_result_t r = dv__cu_enter(d);
    if (r != DV_OK) {
        return r;
    }
    rc = dv__cu.cuStreamSynchronize(cu_stream(stream));
    dv__cu_leave(d);
    if (rc != DV_CU_SUCCESS) {
        return dv__cu_fail_as(rc, DV_ERROR_BACKEND, "cuStreamSynchronize(%p)",
                              stream);
    }
    return DV_OK;
}

/* HAL v2: work queued on `stream` after this waits for `fence`, on the GPU
 * (host I/O orders a caller's stream after its staging copies). */
dv_result_t dv__cu_stream_wait(void *ctx, void *stream, dv_hal_fence_t fence) {
    dv__cu_dev_t *d = ctx;
    dv_result_t r = dv__cu_enter(d);
    if (r != DV_OK) {
        return r;
    }
    dv_cu_result rc = dv__cu.cuStreamWaitEvent(
        cu_stream(stream), (dv_cu_event)fence, DV_CU_EVENT_WAIT_DEFAULT);
    dv__cu_leave(d);
    if (rc != DV_CU_SUCCESS) {
        return dv__cu_fail_as(rc, DV_ERROR_BACKEND, "cuStreamWaitEvent(%p, %p)",
                              stream, fence);
    }
    return DV_OK;
}

/* HAL v2: is `stream` being captured into a graph? (An invalidated capture
 * counts: it is still capturing until the caller ends it.) */
dv_result_t dv__cu_stream_is_capturing(void *ctx, void *stream,
                                       int *capturing) {
    dv__cu_dev_t *d = ctx;
    dv_result_t r = dv__cu_enter(d);
    if (r != DV_OK) {
        return r;
    }
    dv_cu_stream_capture_status st = DV_CU_STREAM_CAPTURE_STATUS_NONE;
    dv_cu_result rc = dv__cu.cuStreamIsCapturing(cu_stream(stream), &st);
    dv__cu_leave(d);
    if (rc != DV_CU_SUCCESS) {
        return dv__cu_fail_as(rc, DV_ERROR_BACKEND, "cuStreamIsCapturing(%p)",
                              stream);
    }
    *capturing = st != DV_CU_STREAM_CAPTURE_STATUS_NONE;
    return DV_OK;
}

dv_result_t dv__cu_copy_h2d(void *ctx, uint64_t dst, const void *src,
                            uint64_t size, void *stream) {
    dv__cu_dev_t *d = ctx;
    dv_cu_result rc;
    dv_result_t r;
    if (size > (uint64_t)SIZE_MAX || (size && !src)) {
        return dv__native_fail(DV_ERROR_INVALID_ARGUMENT, 0, "cuda copy_h2d: bad source");
    }
    r = dv__cu_enter(d);
    if (r != DV_OK) {
        return r;
    }
    rc = dv__cu.cuMemcpyHtoDAsync(dst, src, (size_t)size, cu_stream(stream));
    dv__cu_leave(d);
    if (rc != DV_CU_SUCCESS) {
        return dv__cu_fail_as(
            rc, DV_ERROR_BACKEND, "cuMemcpyHtoDAsync(0x%llx, %p, %llu)",
            (unsigned long long)dst, src, (unsigned long long)size);
    }
    return DV_OK;
}

dv_result_t dv__cu_copy_d2h(void *ctx, void *dst, uint64_t src, uint64_t size,
                            void *stream) {
    dv__cu_dev_t *d = ctx;
    dv_cu_result rc;
    dv_result_t r;
    if (size > (uint64_t)SIZE_MAX || (size && !dst)) {
        return dv__native_fail(DV_ERROR_INVALID_ARGUMENT, 0, "cuda copy_d2h: bad destination");
    }
    r = dv__cu_enter(d);
    if (r != DV_OK) {
        return r;
    }
    rc = dv__cu.cuMemcpyDtoHAsync(dst, src, (size_t)size, cu_stream(stream));
    dv__cu_leave(d);
    if (rc != DV_CU_SUCCESS) {
        return dv__cu_fail_as(
            rc, DV_ERROR_BACKEND, "cuMemcpyDtoHAsync(%p, 0x%llx, %llu)", dst,
            (unsigned long long)src, (unsigned long long)size);
    }
    return DV_OK;
}

dv_result_t dv__cu_host_register(void *ctx, void *ptr, uint64_t size) {
    dv__cu_dev_t *d = ctx;
    dv_cu_result rc;
    dv_result_t r;
    if (!ptr || size == 0 || size > (uint64_t)SIZE_MAX) {
        return dv__native_fail(DV_ERROR_INVALID_ARGUMENT, 0, "cuda host_register: NULL pointer or bad size");
    }
    r = dv__cu_enter(d);
    if (r != DV_OK) {
        return r;
    }
    rc = dv__cu.cuMemHostRegister(ptr, (size_t)size,
                                  DV_CU_MEMHOSTREGISTER_PORTABLE);
    dv__cu_leave(d);
    if (rc != DV_CU_SUCCESS) {
        /* Failing to page-lock is short host memory, not device memory. */
        return dv__cu_fail_as(rc, DV_ERROR_OUT_OF_HOST_MEMORY,
                              "cuMemHostRegister(%p, %llu, PORTABLE)", ptr,
                              (unsigned long long)size);
    }
    return DV_OK;
}

dv_result_t dv__cu_host_unregister(void *ctx, void *ptr) {
    dv__cu_dev_t *d = ctx;
    dv_cu_result rc;
    dv_result_t r = dv__cu_enter(d);
    if (r != DV_OK) {
        return r;
    }
    rc = dv__cu.cuMemHostUnregister(ptr);
    dv__cu_leave(d);
    if (rc != DV_CU_SUCCESS) {
        return dv__cu_fail_as(rc, DV_ERROR_BACKEND, "cuMemHostUnregister(%p)",
                              ptr);
    }
    return DV_OK;
}
