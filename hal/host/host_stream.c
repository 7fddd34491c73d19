/*
 * host_stream.c - simulated GPU queues for the host backends.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * A stream counts units of work submitted and completed. A fence records the
 * submitted count at its creation and is done once completed reaches it.
 * Streams are reference-counted so a fence outliving its stream's destroy
 * stays valid. A stream handle is a handle of the core's table (kind
 * DV__HK_HOST_STREAM), so a destroyed or junk stream is recognised without
 * reading through it, and a dead handle never equals a new stream's. The
 * device (ctx) that made a stream owns it: another device refuses it. One
 * process-wide mutex guards all of it: this is test machinery, not a hot
 * path.
 */
#include <stdlib.h>

#include "base/error.h"
#include "base/handle.h"
#include "base/native.h"
#include "base/os.h"
#include "host_stream.h"

typedef struct host_stream {
    uint64_t handle;
    void *owner; /* the backend ctx of the device that made it */
    int refs;
    int destroyed;
    int capturing; /* dv_host_stream_set_capturing */
    uint64_t submitted;
    uint64_t completed;
} host_stream_t;

typedef struct host_fence {
    host_stream_t *s; /* NULL: recorded on the NULL stream, always done */
    uint64_t target;
} host_fence_t;

static dv__once_t hs_once = DV__ONCE_INIT;
static dv__mutex_t hs_lock;
static uint64_t hs_waits;

static void hs_init(void) { dv__mutex_init(&hs_lock); }

static void hs_lock_(void) {
    dv__once(&hs_once, hs_init);
    dv__mutex_lock(&hs_lock);
}

static void hs_unref(host_stream_t *s) {
    if (--s->refs == 0) {
        free(s);
    }
}

/* The live stream behind a handle, or NULL (dead, junk, NULL). */
static host_stream_t *hs_get(void *stream) {
    return (host_stream_t *)dv__handle_get(dv__handle_of(stream),
                                           DV__HK_HOST_STREAM);
}

static dv_result_t hs_bad(const char *op, void *stream) {
    return dv__native_fail(DV_ERROR_INVALID_ARGUMENT, 0,
                           "host %s: %p is not a live host stream (destroyed, "
                           "or never a stream)",
                           op, stream);
}

dv_result_t dv__host_stream_create(void *ctx, void **stream) {
    host_stream_t *s = calloc(1, sizeof(*s));
    if (!s) {
        return dv__native_fail(DV_ERROR_OUT_OF_HOST_MEMORY, 0,
                               "host stream_create: calloc");
    }
    s->owner = ctx;
    s->refs = 1;
    s->handle = dv__handle_new(DV__HK_HOST_STREAM, s);
    if (!s->handle) {
        free(s);
        return dv__native_fail(DV_ERROR_OUT_OF_HOST_MEMORY, 0,
                               "host stream_create: handle table full");
    }
    *stream = (void *)(uintptr_t)s->handle;
    return DV_OK;
}

dv_result_t dv__host_stream_destroy(void *ctx, void *stream) {
    if (!stream) {
        return DV_OK;
    }
    hs_lock_();
    host_stream_t *s = hs_get(stream);
    if (s) {
        dv__handle_free(s->handle, DV__HK_HOST_STREAM);
        s->completed = s->submitted;
        s->destroyed = 1;
        hs_unref(s);
    }
    dv__mutex_unlock(&hs_lock);
    return s ? DV_OK : hs_bad("stream_destroy", stream);
}

dv_result_t dv__host_stream_check(void *ctx, void *stream) {
    hs_lock_();
    host_stream_t *s = hs_get(stream);
    void *owner = s ? s->owner : NULL;
    dv__mutex_unlock(&hs_lock);
    if (!s) {
        return hs_bad("stream_check", stream);
    }
    if (owner != ctx) {
        return dv__native_fail(DV_ERROR_WRONG_DEVICE, 0,
                               "host stream_check: stream %p belongs to "
                               "another host device",
                               stream);
    }
    return DV_OK;
}

dv_result_t dv__host_stream_synchronize(void *ctx, void *stream) {
    if (!stream) {
        return DV_OK;
    }
    hs_lock_();
    host_stream_t *s = hs_get(stream);
    if (s) {
        s->completed = s->submitted;
    }
    dv__mutex_unlock(&hs_lock);
    return s ? DV_OK : hs_bad("stream_synchronize", stream);
}

dv_result_t dv__host_fence_record(void *ctx, void *stream, dv_hal_fence_t *f) {
    host_fence_t *fe = malloc(sizeof(*fe));
    if (!fe) {
        return dv__native_fail(DV_ERROR_OUT_OF_HOST_MEMORY, 0,
                               "host fence_record: malloc");
    }
    hs_lock_();
    host_stream_t *s = hs_get(stream);
    if (stream && !s) {
        dv__mutex_unlock(&hs_lock);
        free(fe);
        return hs_bad("fence_record", stream);
    }
    fe->s = s;
    fe->target = s ? s->submitted : 0;
    if (s) {
        s->refs++;
    }
    dv__mutex_unlock(&hs_lock);
    *f = fe;
    return DV_OK;
}

dv_result_t dv__host_fence_query(void *ctx, dv_hal_fence_t f) {
    host_fence_t *fe = f;
    hs_lock_();
    int done = !fe->s || fe->s->completed >= fe->target;
    dv__mutex_unlock(&hs_lock);
    return done ? DV_OK : DV_NOT_READY;
}

dv_result_t dv__host_fence_wait(void *ctx, dv_hal_fence_t f) {
    host_fence_t *fe = f;
    hs_lock_();
    if (fe->s && fe->s->completed < fe->target) {
        /* The simulated GPU finishes exactly the work this fence covers. */
        fe->s->completed = fe->target;
        hs_waits++;
    }
    dv__mutex_unlock(&hs_lock);
    return DV_OK;
}

/* The simulated GPU has no queue between streams: work queued on `stream`
 * after the wait runs after the fence's work, which the simulation gets by
 * finishing that work now (as fence_wait does). */
dv_result_t dv__host_stream_wait(void *ctx, void *stream, dv_hal_fence_t f) {
    hs_lock_();
    host_stream_t *s = hs_get(stream);
    if (stream && !s) {
        dv__mutex_unlock(&hs_lock);
        return hs_bad("stream_wait", stream);
    }
    host_fence_t *fe = f;
    if (fe->s && fe->s->completed < fe->target) {
        fe->s->completed = fe->target;
    }
    dv__mutex_unlock(&hs_lock);
    return DV_OK;
}

dv_result_t dv__host_stream_is_capturing(void *ctx, void *stream,
                                         int *capturing) {
    hs_lock_();
    host_stream_t *s = hs_get(stream);
    *capturing = s ? s->capturing : 0;
    dv__mutex_unlock(&hs_lock);
    return s || !stream ? DV_OK : hs_bad("stream_is_capturing", stream);
}

dv_result_t dv_host_stream_set_capturing(void *stream, int capturing) {
    hs_lock_();
    host_stream_t *s = hs_get(stream);
    if (s) {
        s->capturing = capturing != 0;
    }
    dv__mutex_unlock(&hs_lock);
    return s ? DV_OK : dv__fail(DV_ERROR_INVALID_ARGUMENT,
                                "dv_host_stream_set_capturing: %p is not a "
                                "live host stream",
                                stream);
}

void dv__host_fence_destroy(void *ctx, dv_hal_fence_t f) {
    host_fence_t *fe = f;
    hs_lock_();
    if (fe->s) {
        hs_unref(fe->s);
    }
    dv__mutex_unlock(&hs_lock);
    free(fe);
}

dv_result_t dv_host_stream_submit(void *stream) {
    hs_lock_();
    host_stream_t *s = hs_get(stream);
    if (s) {
        s->submitted++;
    }
    dv__mutex_unlock(&hs_lock);
    return s ? DV_OK : dv__fail(DV_ERROR_INVALID_ARGUMENT,
                                "dv_host_stream_submit: %p is not a live host "
                                "stream",
                                stream);
}

dv_result_t dv_host_stream_complete(void *stream) {
    if (!stream) {
        return DV_OK;
    }
    hs_lock_();
    host_stream_t *s = hs_get(stream);
    if (s) {
        s->completed = s->submitted;
    }
    dv__mutex_unlock(&hs_lock);
    return s ? DV_OK : dv__fail(DV_ERROR_INVALID_ARGUMENT,
                                "dv_host_stream_complete: %p is not a live "
                                "host stream",
                                stream);
}

dv_result_t dv_host_stream_counts(void *stream, uint64_t *submitted,
                                  uint64_t *completed) {
    hs_lock_();
    host_stream_t *s = hs_get(stream);
    if (s && submitted) {
        *submitted = s->submitted;
    }
    if (s && completed) {
        *completed = s->completed;
    }
    dv__mutex_unlock(&hs_lock);
    return s ? DV_OK : dv__fail(DV_ERROR_INVALID_ARGUMENT,
                                "dv_host_stream_counts: %p is not a live host "
                                "stream",
                                stream);
}

uint64_t dv_host_fence_waits(void) {
    hs_lock_();
    uint64_t n = hs_waits;
    dv__mutex_unlock(&hs_lock);
    return n;
}
