/*
 * example_stream.c - the template backend's streams and fences
 * (example_backend.h).
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Work on a stream runs when it is submitted (copies are memcpy), so every
 * fence is complete as soon as it is recorded and waiting never blocks. A
 * GPU backend records an event here and asks the driver instead; the
 * shape stays the same.
 *
 * Stream handles are numbers, not pointers: EXB_STREAM_TAG in the top bits
 * (no user-space address on any 64-bit system dynvram runs on looks like
 * that) and a serial number below, never reused in the life of the
 * process. So stream_check can answer for any value it is handed, junk
 * included, without reading through it, and a destroyed stream stays
 * recognisable as dead forever. The registry is process-wide (two devices
 * may create streams at once) and has its own lock.
 */
#include <pthread.h>
#include <stdlib.h>

#include "example_backend.h"

#define EXB_STREAM_TAG 0xdb00000000000000ull
#define EXB_STREAM_MASK 0x00ffffffffffffffull

/* What the registry remembers of each stream ever made, for the life of
 * the process (streams are made rarely): its device, and whether it
 * lives. */
typedef struct exb_stream_rec {
    const exb_dev_t *owner;
    int alive;
} exb_stream_rec_t;

static pthread_mutex_t exb_streams_lock = PTHREAD_MUTEX_INITIALIZER;
static exb_stream_rec_t *exb_streams;
static size_t exb_stream_count, exb_stream_cap;

/* A fence: where it was recorded. Complete from birth (see above). */
typedef struct exb_fence {
    uint64_t stream; /* 0: the default stream */
} exb_fence_t;

static uint64_t handle_of(void *stream) { return (uint64_t)(uintptr_t)stream; }

/* The record of a stream handle, or NULL for anything that is not one.
 * Under the lock. */
static exb_stream_rec_t *rec_of(void *stream) {
    uint64_t h = handle_of(stream);
    if ((h & ~EXB_STREAM_MASK) != EXB_STREAM_TAG) {
        return NULL;
    }
    uint64_t n = h & EXB_STREAM_MASK;
    return n >= 1 && n <= exb_stream_count ? &exb_streams[n - 1] : NULL;
}

dv_result_t exb_stream_create(void *ctx, void **stream) {
    exb_dev_t *d = ctx;
    dv_result_t r = DV_OK;
    pthread_mutex_lock(&exb_streams_lock);
    if (exb_stream_count == exb_stream_cap) {
        size_t cap = exb_stream_cap ? 2 * exb_stream_cap : 256;
        exb_stream_rec_t *t = realloc(exb_streams, cap * sizeof(*t));
        if (!t) {
            r = exb_fail(DV_ERROR_OUT_OF_HOST_MEMORY, 0,
                         "example stream_create: registry");
            goto out;
        }
        exb_streams = t;
        exb_stream_cap = cap;
    }
    exb_streams[exb_stream_count] = (exb_stream_rec_t){d, 1};
    exb_stream_count++;
    *stream = (void *)(uintptr_t)(EXB_STREAM_TAG | exb_stream_count);
out:
    pthread_mutex_unlock(&exb_streams_lock);
    return r;
}

/* DV_OK for a live stream of d; otherwise why not, recorded. */
static dv_result_t check_locked(const exb_dev_t *d, void *stream,
                                const char *op) {
    exb_stream_rec_t *rec = rec_of(stream);
    if (!rec) {
        return exb_fail(DV_ERROR_INVALID_ARGUMENT, 0,
                        "example %s: %p is not a stream", op, stream);
    }
    if (!rec->alive) {
        return exb_fail(DV_ERROR_INVALID_ARGUMENT, 0,
                        "example %s: stream %p was destroyed", op, stream);
    }
    if (rec->owner != d) {
        return exb_fail(DV_ERROR_WRONG_DEVICE, 0,
                        "example %s: stream %p belongs to another device", op,
                        stream);
    }
    return DV_OK;
}

dv_result_t exb_stream_destroy(void *ctx, void *stream) {
    pthread_mutex_lock(&exb_streams_lock);
    dv_result_t r = check_locked(ctx, stream, "stream_destroy");
    if (r == DV_OK) {
        rec_of(stream)->alive = 0;
    }
    pthread_mutex_unlock(&exb_streams_lock);
    /* Another device's live stream is not ours to destroy: the caller
     * passed a bad argument, whatever the reason. */
    return r == DV_ERROR_WRONG_DEVICE ? DV_ERROR_INVALID_ARGUMENT : r;
}

dv_result_t exb_stream_check(void *ctx, void *stream) {
    pthread_mutex_lock(&exb_streams_lock);
    dv_result_t r = check_locked(ctx, stream, "stream_check");
    pthread_mutex_unlock(&exb_streams_lock);
    return r;
}

/* Nothing is ever pending. A real backend waits for the stream's work;
 * NULL is the device's default stream. */
dv_result_t exb_stream_synchronize(void *ctx, void *stream) {
    (void)ctx;
    (void)stream;
    return DV_OK;
}

/* Work queued later on `stream` waits for `fence`: already true. */
dv_result_t exb_stream_wait(void *ctx, void *stream, dv_hal_fence_t fence) {
    (void)ctx;
    (void)stream;
    (void)fence;
    return DV_OK;
}

/* No graph capture exists here. */
dv_result_t exb_stream_is_capturing(void *ctx, void *stream, int *capturing) {
    (void)ctx;
    (void)stream;
    *capturing = 0;
    return DV_OK;
}

dv_result_t exb_fence_record(void *ctx, void *stream, dv_hal_fence_t *fence) {
    (void)ctx;
    exb_fence_t *f = malloc(sizeof(*f));
    if (!f) {
        return exb_fail(DV_ERROR_OUT_OF_HOST_MEMORY, 0, "example fence_record");
    }
    f->stream = handle_of(stream);
    *fence = f;
    return DV_OK;
}

dv_result_t exb_fence_query(void *ctx, dv_hal_fence_t fence) {
    (void)ctx;
    (void)fence;
    return DV_OK; /* done; a GPU backend answers DV_NOT_READY until it is */
}

dv_result_t exb_fence_wait(void *ctx, dv_hal_fence_t fence) {
    (void)ctx;
    (void)fence;
    return DV_OK;
}

void exb_fence_destroy(void *ctx, dv_hal_fence_t fence) {
    (void)ctx;
    free(fence);
}

void exb_streams_fini(exb_dev_t *d) {
    pthread_mutex_lock(&exb_streams_lock);
    for (size_t i = 0; i < exb_stream_count; i++) {
        if (exb_streams[i].owner == d) {
            /* A later device may get d's address: its streams must not
             * look like the new device's. */
            exb_streams[i].alive = 0;
            exb_streams[i].owner = NULL;
        }
    }
    pthread_mutex_unlock(&exb_streams_lock);
}
