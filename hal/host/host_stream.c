/*
 * host_stream.c - simulated GPU queues for the host backends.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * A stream counts units of work submitted and completed. A fence records the
 * submitted count at its creation and is done once completed reaches it.
 * Streams are reference-counted so a fence outliving its stream's destroy
 * stays valid. One process-wide mutex guards all of it: this is test
 * machinery, not a hot path.
 */
#include <stdlib.h>

#include "core/error.h"
#include "core/os.h"
#include "hal/host/host_stream.h"

#define HOST_STREAM_MAGIC 0x4853544du

typedef struct host_stream {
    uint32_t magic;
    int refs;
    int destroyed;
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
        s->magic = 0;
        free(s);
    }
}

static host_stream_t *hs_get(void *stream) {
    host_stream_t *s = stream;
    return s && s->magic == HOST_STREAM_MAGIC && !s->destroyed ? s : NULL;
}

dv_result_t dv__host_stream_create(void *ctx, void **stream) {
    host_stream_t *s = calloc(1, sizeof(*s));
    if (!s) {
        return DV_ERROR_OUT_OF_HOST_MEMORY;
    }
    s->magic = HOST_STREAM_MAGIC;
    s->refs = 1;
    *stream = s;
    return DV_OK;
}

dv_result_t dv__host_stream_destroy(void *ctx, void *stream) {
    hs_lock_();
    host_stream_t *s = hs_get(stream);
    if (s) {
        s->completed = s->submitted;
        s->destroyed = 1;
        hs_unref(s);
    }
    dv__mutex_unlock(&hs_lock);
    return s || !stream ? DV_OK : DV_ERROR_INVALID_ARGUMENT;
}

dv_result_t dv__host_stream_synchronize(void *ctx, void *stream) {
    return dv_host_stream_complete(stream);
}

dv_result_t dv__host_fence_record(void *ctx, void *stream, dv_hal_fence_t *f) {
    host_fence_t *fe = malloc(sizeof(*fe));
    if (!fe) {
        return DV_ERROR_OUT_OF_HOST_MEMORY;
    }
    hs_lock_();
    host_stream_t *s = hs_get(stream);
    if (stream && !s) {
        dv__mutex_unlock(&hs_lock);
        free(fe);
        return DV_ERROR_INVALID_ARGUMENT;
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
                                "dv_host_stream_submit: not a host stream");
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
                                "dv_host_stream_complete: not a host stream");
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
                                "dv_host_stream_counts: not a host stream");
}

uint64_t dv_host_fence_waits(void) {
    hs_lock_();
    uint64_t n = hs_waits;
    dv__mutex_unlock(&hs_lock);
    return n;
}
