/*
 * spy.c - see spy.h.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "spy.h"

#include <string.h>

typedef struct guard {
    uint64_t va, size;
    void *stream;
    uint64_t need;
} guard_t;

typedef struct copy_fence {
    uint64_t dst;
    dv_hal_fence_t fence;
} copy_fence_t;

static const dv_hal_ops_t *in;
static spy_state_t st;
static guard_t guards[64];
static int nguards;
static copy_fence_t cfs[64];
static int ncfs;
static int copy_pending_fence; /* a copy waits for its fence to be noted */

spy_state_t *spy_state(void) { return &st; }

void spy_reset(int async) {
    memset(&st, 0, sizeof(st));
    st.async = async;
    nguards = 0;
    ncfs = 0;
    copy_pending_fence = 0;
}

void spy_guard(uint64_t va, uint64_t size, void *stream, uint64_t need) {
    for (int k = 0; k < nguards; k++) {
        if (guards[k].va == va) {
            guards[k] = (guard_t){va, size, stream, need};
            return;
        }
    }
    if (nguards < 64) {
        guards[nguards++] = (guard_t){va, size, stream, need};
    }
}

dv_hal_fence_t spy_copy_fence(uint64_t dst) {
    for (int k = 0; k < ncfs; k++) {
        if (cfs[k].dst == dst) {
            return cfs[k].fence;
        }
    }
    return NULL;
}

static dv_result_t s_get_caps(void *ctx, dv_hal_caps_t *caps) {
    dv_result_t r = in->get_caps(ctx, caps);
    if (r == DV_OK && st.async) {
        caps->flags |= DV_CAP_ASYNC_COPY;
    }
    return r;
}

static dv_result_t s_stream_create(void *ctx, void **s) {
    dv_result_t r = in->stream_create(ctx, s);
    if (r == DV_OK && st.consumer && !st.copy_stream) {
        st.copy_stream = *s;
    }
    return r;
}

static dv_result_t s_stream_synchronize(void *ctx, void *s) {
    if (s && s == st.copy_stream) {
        st.stream_syncs_copy++;
    }
    return in->stream_synchronize(ctx, s);
}

static dv_result_t s_copy_h2d(void *ctx, uint64_t dst, const void *src,
                              uint64_t n, void *s) {
    for (int k = 0; k < nguards; k++) {
        const guard_t *g = &guards[k];
        if (dst < g->va + g->size && g->va < dst + n) {
            uint64_t sub = 0, done = 0;
            dv_host_stream_counts(g->stream, &sub, &done);
            if (done < g->need) {
                st.violations++;
            }
        }
    }
    dv_result_t r = in->copy_h2d(ctx, dst, src, n, s);
    if (r == DV_OK) {
        st.copies++;
        st.last_dst = dst;
        copy_pending_fence = s && s == st.copy_stream;
        if (st.async && copy_pending_fence) {
            dv_host_stream_submit(s); /* the copy engine is still at it */
        }
    }
    return r;
}

static dv_result_t s_fence_record(void *ctx, void *s, dv_hal_fence_t *f) {
    dv_result_t r = in->fence_record(ctx, s, f);
    if (r != DV_OK) {
        return r;
    }
    if (s && s == st.consumer) {
        st.consumer_fences++;
    }
    if (s && s == st.copy_stream && copy_pending_fence) {
        copy_pending_fence = 0;
        st.last_copy_fence = *f;
        int k = 0;
        while (k < ncfs && cfs[k].dst != st.last_dst) {
            k++;
        }
        if (k < 64) {
            cfs[k] = (copy_fence_t){st.last_dst, *f};
            ncfs = k == ncfs ? ncfs + 1 : ncfs;
        }
    }
    return r;
}

static dv_result_t s_fence_wait(void *ctx, dv_hal_fence_t f) {
    st.fence_waits++;
    return in->fence_wait(ctx, f);
}

static dv_result_t s_stream_wait(void *ctx, void *s, dv_hal_fence_t f) {
    if (st.nwaits < SPY_MAX) {
        st.waits[st.nwaits++] = (spy_wait_t){s, f};
    }
    st.stream_waits++;
    return in->stream_wait(ctx, s, f);
}

static dv_hal_ops_t ops;

const dv_hal_ops_t *spy_ops(void) {
    in = dv_hal_host();
    ops = *in;
    ops.name = "spy";
    ops.get_caps = s_get_caps;
    ops.stream_create = s_stream_create;
    ops.stream_synchronize = s_stream_synchronize;
    ops.copy_h2d = s_copy_h2d;
    ops.fence_record = s_fence_record;
    ops.fence_wait = s_fence_wait;
    ops.stream_wait = s_stream_wait;
    return &ops;
}
