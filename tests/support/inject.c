/*
 * inject.c - see inject.h.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "inject.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct wrap {
    void *inner;
} wrap_t;

static const dv_hal_ops_t *in;
static long fail_at;
static dv_result_t fail_with;
static td_inject_state_t st;
/* The op whose injected failure is this thread's latest HAL failure, for
 * last_native_error; NULL once an op reaches the inner backend. */
static _Thread_local const char *injected_op;

static const char *fail_op; /* td_inject_fail_next: fail this op next */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static uint32_t extra_caps;
static int fences_pending;
static const char *block_op; /* td_inject_block_next */
static int blocked, released;

/* Calls per op name (every call, counted or not), for td_inject_calls. */
#define OPS_MAX 32
static struct {
    const char *op;
    long n;
} per_op[OPS_MAX];

void td_inject_arm(const dv_hal_ops_t *inner, long n, dv_result_t err) {
    pthread_mutex_lock(&mu);
    in = inner;
    fail_at = n;
    fail_with = err;
    fail_op = NULL;
    memset(&st, 0, sizeof(st));
    memset(per_op, 0, sizeof(per_op));
    extra_caps = 0;
    fences_pending = 0;
    block_op = NULL;
    blocked = released = 0;
    pthread_mutex_unlock(&mu);
}

void td_inject_add_caps(uint32_t flags) { extra_caps |= flags; }
void td_inject_fences_pending(int on) { fences_pending = on; }

void td_inject_block_next(const char *op) {
    pthread_mutex_lock(&mu);
    block_op = op;
    blocked = released = 0;
    pthread_mutex_unlock(&mu);
}

void td_inject_wait_blocked(void) {
    pthread_mutex_lock(&mu);
    while (!blocked) {
        pthread_cond_wait(&cv, &mu);
    }
    pthread_mutex_unlock(&mu);
}

void td_inject_release(void) {
    pthread_mutex_lock(&mu);
    released = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

/* A call of `op`: wait here if the test asked to block it. */
static void maybe_block(const char *op) {
    pthread_mutex_lock(&mu);
    if (block_op && strcmp(block_op, op) == 0 && !blocked) {
        blocked = 1;
        pthread_cond_broadcast(&cv);
        while (!released) {
            pthread_cond_wait(&cv, &mu);
        }
        block_op = NULL;
    }
    pthread_mutex_unlock(&mu);
}

static void count(long *field, long delta) {
    pthread_mutex_lock(&mu);
    *field += delta;
    pthread_mutex_unlock(&mu);
}

static void count_op(const char *op) {
    pthread_mutex_lock(&mu);
    for (int k = 0; k < OPS_MAX; k++) {
        if (!per_op[k].op || strcmp(per_op[k].op, op) == 0) {
            per_op[k].op = op;
            per_op[k].n++;
            break;
        }
    }
    pthread_mutex_unlock(&mu);
}

long td_inject_calls(const char *op) {
    long n = 0;
    pthread_mutex_lock(&mu);
    for (int k = 0; k < OPS_MAX && per_op[k].op; k++) {
        if (!op || strcmp(per_op[k].op, op) == 0) {
            n += per_op[k].n;
        }
    }
    pthread_mutex_unlock(&mu);
    return n;
}

void td_inject_fail_next(const char *op, dv_result_t err) {
    fail_op = op;
    fail_with = err;
    fail_at = 0;
    st.fired = 0;
    st.op = NULL;
}

const td_inject_state_t *td_inject_state(void) { return &st; }

/* Should this call fail? `allocating`: the op can run out of memory. */
static int hit(const char *op, int allocating) {
    maybe_block(op);
    count_op(op);
    if (fail_with == DV_ERROR_OUT_OF_DEVICE_MEMORY && !allocating) {
        return 0;
    }
    pthread_mutex_lock(&mu);
    st.calls++;
    int fire = !st.fired && ((fail_at && st.calls == fail_at) ||
                             (fail_op && strcmp(fail_op, op) == 0));
    if (fire) {
        st.fired = 1;
        st.op = op;
    }
    pthread_mutex_unlock(&mu);
    injected_op = fire ? op : NULL;
    return fire;
}

#define CTX(c) (((wrap_t *)(c))->inner)

static dv_result_t w_probe(int *count, char *reason, size_t len) {
    return in->probe(count, reason, len);
}

static dv_result_t w_init(const dv_hal_init_args_t *a, void **ctx) {
    if (hit("init", 1)) {
        return fail_with;
    }
    wrap_t *w = calloc(1, sizeof(*w));
    if (!w) {
        return DV_ERROR_OUT_OF_HOST_MEMORY;
    }
    dv_result_t r = in->init(a, &w->inner);
    if (r != DV_OK) {
        free(w);
        return r;
    }
    *ctx = w;
    return DV_OK;
}

static void w_fini(void *ctx) {
    in->fini(CTX(ctx));
    free(ctx);
}

static dv_result_t w_get_caps(void *ctx, dv_hal_caps_t *caps) {
    if (hit("get_caps", 0)) {
        return fail_with;
    }
    dv_result_t r = in->get_caps(CTX(ctx), caps);
    caps->flags |= extra_caps;
    return r;
}

static dv_result_t w_mem_info(void *ctx, uint64_t *f, uint64_t *t) {
    return hit("mem_info", 0) ? fail_with : in->mem_info(CTX(ctx), f, t);
}

static dv_result_t w_reserve(void *ctx, uint64_t size, uint64_t *va) {
    if (hit("reserve", 1)) {
        return fail_with;
    }
    dv_result_t r = in->reserve(CTX(ctx), size, va);
    count(&st.live_res, r == DV_OK);
    return r;
}

static dv_result_t w_unreserve(void *ctx, uint64_t va, uint64_t size) {
    if (hit("unreserve", 0)) {
        return fail_with;
    }
    dv_result_t r = in->unreserve(CTX(ctx), va, size);
    count(&st.live_res, -(r == DV_OK));
    return r;
}

static dv_result_t w_create(void *ctx, uint64_t size, dv_hal_mem_t *m) {
    if (hit("create", 1)) {
        return fail_with;
    }
    dv_result_t r = in->create(CTX(ctx), size, m);
    count(&st.live_mem, r == DV_OK);
    return r;
}

static dv_result_t w_release(void *ctx, dv_hal_mem_t m) {
    /* A failed release is modelled as the driver freeing the memory but
     * reporting an error: the core must drop the handle, never retry it
     * (a retry would be a double free that the sanitizers catch). */
    int fail = hit("release", 0);
    dv_result_t r = in->release(CTX(ctx), m);
    count(&st.live_mem, -(r == DV_OK));
    return fail ? fail_with : r;
}

static dv_result_t w_map(void *ctx, uint64_t va, uint64_t size, dv_hal_mem_t m) {
    if (hit("map", 1)) {
        return fail_with;
    }
    dv_result_t r = in->map(CTX(ctx), va, size, m);
    count(&st.live_maps, r == DV_OK);
    return r;
}

static dv_result_t w_unmap(void *ctx, uint64_t va, uint64_t size) {
    if (hit("unmap", 0)) {
        return fail_with;
    }
    dv_result_t r = in->unmap(CTX(ctx), va, size);
    count(&st.live_maps, -(r == DV_OK));
    return r;
}

static dv_result_t w_fence_record(void *ctx, void *s, dv_hal_fence_t *f) {
    if (hit("fence_record", 1)) {
        return fail_with;
    }
    dv_result_t r = in->fence_record(CTX(ctx), s, f);
    count(&st.live_fences, r == DV_OK);
    return r;
}

static dv_result_t w_fence_query(void *ctx, dv_hal_fence_t f) {
    if (hit("fence_query", 0)) {
        return fail_with;
    }
    dv_result_t r = in->fence_query(CTX(ctx), f);
    return r == DV_OK && fences_pending ? DV_NOT_READY : r;
}

static dv_result_t w_fence_wait(void *ctx, dv_hal_fence_t f) {
    return hit("fence_wait", 0) ? fail_with : in->fence_wait(CTX(ctx), f);
}

static void w_fence_destroy(void *ctx, dv_hal_fence_t f) {
    count_op("fence_destroy");
    count(&st.live_fences, -1);
    in->fence_destroy(CTX(ctx), f);
}

static dv_result_t w_stream_create(void *ctx, void **s) {
    if (hit("stream_create", 1)) {
        return fail_with;
    }
    dv_result_t r = in->stream_create(CTX(ctx), s);
    count(&st.live_streams, r == DV_OK);
    return r;
}

static dv_result_t w_stream_destroy(void *ctx, void *s) {
    count_op("stream_destroy");
    dv_result_t r = in->stream_destroy(CTX(ctx), s);
    count(&st.live_streams, -(r == DV_OK));
    return r;
}

static dv_result_t w_stream_synchronize(void *ctx, void *s) {
    return hit("stream_synchronize", 0) ? fail_with
                                        : in->stream_synchronize(CTX(ctx), s);
}

static dv_result_t w_copy_h2d(void *ctx, uint64_t d, const void *s, uint64_t n,
                              void *st_) {
    return hit("copy_h2d", 0) ? fail_with : in->copy_h2d(CTX(ctx), d, s, n, st_);
}

static dv_result_t w_copy_d2h(void *ctx, void *d, uint64_t s, uint64_t n,
                              void *st_) {
    count_op("copy_d2h");
    return in->copy_d2h(CTX(ctx), d, s, n, st_);
}

static dv_result_t w_stream_check(void *ctx, void *s) {
    return hit("stream_check", 0) ? fail_with : in->stream_check(CTX(ctx), s);
}

static dv_result_t w_host_register(void *ctx, void *p, uint64_t n) {
    if (hit("host_register", 0)) {
        return fail_with;
    }
    dv_result_t r = in->host_register(CTX(ctx), p, n);
    count(&st.live_regs, r == DV_OK);
    return r;
}

static dv_result_t w_host_unregister(void *ctx, void *p) {
    /* Like release: an injected failure comes after the real work. */
    int fail = hit("host_unregister", 0);
    dv_result_t r = in->host_unregister(CTX(ctx), p);
    count(&st.live_regs, -(r == DV_OK));
    return fail ? fail_with : r;
}

static dv_result_t w_stream_wait(void *ctx, void *s, dv_hal_fence_t f) {
    return hit("stream_wait", 0) ? fail_with : in->stream_wait(CTX(ctx), s, f);
}

static dv_result_t w_stream_is_capturing(void *ctx, void *s, int *c) {
    count_op("stream_is_capturing");
    return in->stream_is_capturing(CTX(ctx), s, c);
}

/* An injected failure explains itself, as a backend must for its own. */
static void w_last_native_error(int64_t *code, char *text, size_t len) {
    if (injected_op) {
        if (code) {
            *code = 0;
        }
        if (text && len) {
            snprintf(text, len, "injected failure of %s", injected_op);
        }
        return;
    }
    if (in->last_native_error) {
        in->last_native_error(code, text, len);
    } else {
        if (code) {
            *code = 0;
        }
        if (text && len) {
            text[0] = '\0';
        }
    }
}

static dv_hal_ops_t ops;

const dv_hal_ops_t *td_inject_ops(void) {
    ops = (dv_hal_ops_t){
        .version = DV_HAL_VERSION,
        .name = "inject",
        .probe = w_probe,
        .init = w_init,
        .fini = w_fini,
        .get_caps = w_get_caps,
        .mem_info = w_mem_info,
        .reserve = w_reserve,
        .unreserve = w_unreserve,
        .create = w_create,
        .release = w_release,
        .map = w_map,
        .unmap = w_unmap,
        .fence_record = in->fence_record ? w_fence_record : NULL,
        .fence_query = in->fence_query ? w_fence_query : NULL,
        .fence_wait = in->fence_wait ? w_fence_wait : NULL,
        .fence_destroy = in->fence_destroy ? w_fence_destroy : NULL,
        .stream_create = in->stream_create ? w_stream_create : NULL,
        .stream_destroy = in->stream_destroy ? w_stream_destroy : NULL,
        .stream_synchronize = in->stream_synchronize ? w_stream_synchronize : NULL,
        .copy_h2d = in->copy_h2d ? w_copy_h2d : NULL,
        .copy_d2h = in->copy_d2h ? w_copy_d2h : NULL,
        .host_register = in->host_register ? w_host_register : NULL,
        .host_unregister = in->host_unregister ? w_host_unregister : NULL,
        .last_native_error = w_last_native_error,
        .stream_check = in->stream_check ? w_stream_check : NULL,
        .stream_wait = in->stream_wait ? w_stream_wait : NULL,
        .stream_is_capturing =
            in->stream_is_capturing ? w_stream_is_capturing : NULL,
    };
    return &ops;
}
