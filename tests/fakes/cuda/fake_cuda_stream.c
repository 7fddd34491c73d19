/*
 * fake_cuda_stream.c - the simulated CUDA driver's streams and events (see
 * fake_cuda.c for the driver's contract).
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Handles are validated the way a careful driver would, and the way the
 * backend's stream_check relies on:
 *  - a stream or event argument is looked up on fk_objs by address; nothing
 *    is read through it before it is found, so a junk value (0x10, a stack
 *    address, freed memory) is CUDA_ERROR_INVALID_HANDLE, never a crash;
 *  - destroying one moves it to fk_graveyard, which is never freed: a new
 *    stream or event never gets a dead one's address, so a dead handle can
 *    never alias a live object and stays CUDA_ERROR_INVALID_HANDLE forever;
 *  - a live stream of another context is CUDA_ERROR_INVALID_CONTEXT where
 *    the call needs the stream's context current (copies, records,
 *    synchronize, query), as on the driver; cuStreamGetCtx needs no current
 *    context for a created stream.
 * NULL, CU_STREAM_LEGACY and CU_STREAM_PER_THREAD are the current context's
 * default streams. Streams run synchronously: work is done when the call
 * returns, so every event is complete and waits are no-ops.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "fake_cuda.h"

static fk_obj_t *fk_objs;      /* live streams and events */
static fk_obj_t *fk_graveyard; /* destroyed ones, kept until exit */

static int fk_default_stream(dv_cu_stream s) {
    return !s || s == DV_CU_STREAM_LEGACY || s == DV_CU_STREAM_PER_THREAD;
}

/* The live object of that kind at address `h`, or NULL. Caller holds
 * fk_lock. */
static fk_obj_t *fk_find_obj(const void *h, fk_kind_t kind) {
    for (fk_obj_t *o = fk_objs; o; o = o->next) {
        if ((const void *)o == h) {
            return o->kind == kind ? o : NULL;
        }
    }
    return NULL;
}

/* The context of live object `h`, or NULL when there is none. */
static int fk_obj_ctx(const void *h, fk_kind_t kind, fk_ctx_t **ctx) {
    pthread_mutex_lock(&fk_lock);
    fk_obj_t *o = fk_find_obj(h, kind);
    *ctx = o ? o->ctx : NULL;
    pthread_mutex_unlock(&fk_lock);
    return o != NULL;
}

static dv_cu_result fk_new_obj(fk_kind_t kind, void **out) {
    fk_obj_t *o = calloc(1, sizeof(*o));
    if (!o) {
        return DV_CU_ERROR_OUT_OF_MEMORY;
    }
    o->kind = kind;
    o->ctx = fk_current();
    pthread_mutex_lock(&fk_lock);
    o->next = fk_objs;
    fk_objs = o;
    pthread_mutex_unlock(&fk_lock);
    *out = o;
    return DV_CU_SUCCESS;
}

/* Move live object `h` of that kind and context to the graveyard. */
static dv_cu_result fk_bury(const void *h, fk_kind_t kind,
                            const fk_ctx_t *ctx) {
    dv_cu_result rc = DV_CU_ERROR_INVALID_HANDLE;
    pthread_mutex_lock(&fk_lock);
    for (fk_obj_t **p = &fk_objs; *p; p = &(*p)->next) {
        fk_obj_t *o = *p;
        if ((const void *)o != h) {
            continue;
        }
        if (o->kind == kind && o->ctx == ctx) {
            *p = o->next;
            o->next = fk_graveyard;
            fk_graveyard = o;
            rc = DV_CU_SUCCESS;
        } else if (o->kind == kind) {
            rc = DV_CU_ERROR_INVALID_CONTEXT;
        }
        break;
    }
    pthread_mutex_unlock(&fk_lock);
    return rc;
}

void fk_bury_objects_of(const fk_ctx_t *c) {
    pthread_mutex_lock(&fk_lock);
    for (fk_obj_t **p = &fk_objs; *p;) {
        fk_obj_t *o = *p;
        if (o->ctx == c) {
            *p = o->next;
            o->next = fk_graveyard;
            fk_graveyard = o;
        } else {
            p = &o->next;
        }
    }
    pthread_mutex_unlock(&fk_lock);
}

dv_cu_result fk_stream_arg(dv_cu_stream s) {
    fk_ctx_t *owner = NULL;
    if (fk_default_stream(s)) {
        return DV_CU_SUCCESS;
    }
    if (!fk_obj_ctx(s, FK_STREAM, &owner)) {
        return DV_CU_ERROR_INVALID_HANDLE;
    }
    return owner == fk_current() ? DV_CU_SUCCESS : DV_CU_ERROR_INVALID_CONTEXT;
}

/* An event argument: a live event of the current context. */
static dv_cu_result fk_event_arg(dv_cu_event e) {
    fk_ctx_t *owner = NULL;
    if (!fk_obj_ctx(e, FK_EVENT, &owner) || owner != fk_current()) {
        return DV_CU_ERROR_INVALID_HANDLE;
    }
    return DV_CU_SUCCESS;
}

/* ---- events ---- */

dv_cu_result fk_event_create(dv_cu_event *e, unsigned int flags) {
    NEED_CTX();
    if (!e || (flags & ~(unsigned)DV_CU_EVENT_DISABLE_TIMING)) {
        return DV_CU_ERROR_INVALID_VALUE;
    }
    void *o = NULL;
    dv_cu_result rc = fk_new_obj(FK_EVENT, &o);
    if (rc == DV_CU_SUCCESS) {
        *e = (dv_cu_event)o;
    }
    return rc;
}

dv_cu_result fk_event_record(dv_cu_event e, dv_cu_stream s) {
    NEED_CTX();
    if (fk_inject("cuEventRecord")) {
        return FK_ERROR_UNKNOWN;
    }
    dv_cu_result rc = fk_event_arg(e);
    return rc == DV_CU_SUCCESS ? fk_stream_arg(s) : rc;
}

dv_cu_result fk_event_check(dv_cu_event e) {
    NEED_CTX();
    return fk_event_arg(e);
}

dv_cu_result fk_event_destroy(dv_cu_event e) {
    NEED_CTX();
    dv_cu_result rc = fk_bury(e, FK_EVENT, fk_current());
    /* An event of another context is a bad handle here, not a bad
     * context: only streams need their context current. */
    return rc == DV_CU_ERROR_INVALID_CONTEXT ? DV_CU_ERROR_INVALID_HANDLE : rc;
}

/* ---- streams ---- */

dv_cu_result fk_stream_create(dv_cu_stream *s, unsigned int flags) {
    NEED_CTX();
    if (!s || (flags & ~(unsigned)DV_CU_STREAM_NON_BLOCKING)) {
        return DV_CU_ERROR_INVALID_VALUE;
    }
    void *o = NULL;
    dv_cu_result rc = fk_new_obj(FK_STREAM, &o);
    if (rc == DV_CU_SUCCESS) {
        *s = (dv_cu_stream)o;
    }
    return rc;
}

dv_cu_result fk_stream_check(dv_cu_stream s) {
    NEED_CTX();
    return fk_stream_arg(s);
}

dv_cu_result fk_stream_destroy(dv_cu_stream s) {
    NEED_CTX();
    if (fk_default_stream(s)) {
        return DV_CU_ERROR_INVALID_HANDLE;
    }
    return fk_bury(s, FK_STREAM, fk_current());
}

/* A created stream's context needs no current context to be found; the
 * default streams stand for the current context (none: INVALID_CONTEXT). */
dv_cu_result fk_stream_get_ctx(dv_cu_stream s, dv_cu_context *ctx) {
    fk_ctx_t *owner = NULL;
    NEED_INIT();
    if (!ctx) {
        return DV_CU_ERROR_INVALID_VALUE;
    }
    if (fk_default_stream(s)) {
        owner = fk_current();
        if (!owner) {
            return DV_CU_ERROR_INVALID_CONTEXT;
        }
    } else if (!fk_obj_ctx(s, FK_STREAM, &owner)) {
        return DV_CU_ERROR_INVALID_HANDLE;
    }
    *ctx = (dv_cu_context)owner;
    return DV_CU_SUCCESS;
}

/* The event may belong to another context or device (the driver allows
 * cross-device waits); the stream must be usable here. Work is synchronous,
 * so the wait itself is a no-op. */
dv_cu_result fk_stream_wait_event(dv_cu_stream s, dv_cu_event e,
                                  unsigned int flags) {
    fk_ctx_t *owner = NULL;
    NEED_CTX();
    if (flags != DV_CU_EVENT_WAIT_DEFAULT) {
        return DV_CU_ERROR_INVALID_VALUE;
    }
    dv_cu_result rc = fk_stream_arg(s);
    if (rc != DV_CU_SUCCESS) {
        return rc;
    }
    return fk_obj_ctx(e, FK_EVENT, &owner) ? DV_CU_SUCCESS
                                           : DV_CU_ERROR_INVALID_HANDLE;
}

/* No capture ever runs here, unless DV_FAKE_CUDA_CAPTURING=1 pretends one
 * is active on every created stream (the default streams cannot capture). */
dv_cu_result fk_stream_is_capturing(dv_cu_stream s,
                                    dv_cu_stream_capture_status *status) {
    NEED_CTX();
    if (!status) {
        return DV_CU_ERROR_INVALID_VALUE;
    }
    dv_cu_result rc = fk_stream_arg(s);
    if (rc != DV_CU_SUCCESS) {
        return rc;
    }
    *status = fk_capturing && !fk_default_stream(s)
                  ? DV_CU_STREAM_CAPTURE_STATUS_ACTIVE
                  : DV_CU_STREAM_CAPTURE_STATUS_NONE;
    return DV_CU_SUCCESS;
}
