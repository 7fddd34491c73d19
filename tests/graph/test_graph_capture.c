/*
 * test_graph_capture.c - a stream being captured into a graph (CUDA graph
 * capture, simulated by dv_host_stream_set_capturing) is never waited on,
 * synchronized or fenced: not by eviction, unpin, destroy, nor by an
 * allocation graph, whose replays inside a capture make no backend call.
 *
 * The device runs on a guard HAL over the host backend that counts every
 * call and every violation: a fence recorded on, queried or waited on for,
 * or a synchronize of, a stream while it is capturing.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdlib.h>

#include "dynvram_host.h"
#include "graph_util.h"

#define P TD_PAGE
#define M TG_MIB

static const dv_hal_ops_t *host;
static dv_hal_ops_t guard;
static long violations, calls;

typedef struct gfence {
    dv_hal_fence_t f;
    void *stream;
} gfence_t;

static int capturing(void *ctx, void *s) {
    int c = 0;
    return s && host->stream_is_capturing(ctx, s, &c) == DV_OK && c;
}

static dv_result_t g_fence_record(void *ctx, void *s, dv_hal_fence_t *out) {
    calls++;
    violations += capturing(ctx, s);
    gfence_t *g = malloc(sizeof(*g));
    if (!g) {
        return DV_ERROR_OUT_OF_HOST_MEMORY;
    }
    dv_result_t r = host->fence_record(ctx, s, &g->f);
    if (r != DV_OK) {
        free(g);
        return r;
    }
    g->stream = s;
    *out = g;
    return DV_OK;
}

static dv_result_t g_fence_query(void *ctx, dv_hal_fence_t f) {
    gfence_t *g = f;
    calls++;
    violations += capturing(ctx, g->stream);
    return host->fence_query(ctx, g->f);
}

static dv_result_t g_fence_wait(void *ctx, dv_hal_fence_t f) {
    gfence_t *g = f;
    calls++;
    violations += capturing(ctx, g->stream);
    return host->fence_wait(ctx, g->f);
}

static void g_fence_destroy(void *ctx, dv_hal_fence_t f) {
    gfence_t *g = f;
    host->fence_destroy(ctx, g->f);
    free(g);
}

static dv_result_t g_stream_synchronize(void *ctx, void *s) {
    calls++;
    violations += capturing(ctx, s);
    return host->stream_synchronize(ctx, s);
}

static dv_result_t g_stream_wait(void *ctx, void *s, dv_hal_fence_t f) {
    gfence_t *g = f;
    calls++;
    violations += capturing(ctx, s) || capturing(ctx, g->stream);
    return host->stream_wait(ctx, s, g->f);
}

#define COUNTED(name, params, args)                                            \
    static dv_result_t g_##name params {                                       \
        calls++;                                                               \
        return host->name args;                                                \
    }
COUNTED(reserve, (void *c, uint64_t n, uint64_t *va), (c, n, va))
COUNTED(unreserve, (void *c, uint64_t va, uint64_t n), (c, va, n))
COUNTED(create, (void *c, uint64_t n, dv_hal_mem_t *m), (c, n, m))
COUNTED(release, (void *c, dv_hal_mem_t m), (c, m))
COUNTED(map, (void *c, uint64_t va, uint64_t n, dv_hal_mem_t m), (c, va, n, m))
COUNTED(unmap, (void *c, uint64_t va, uint64_t n), (c, va, n))
COUNTED(mem_info, (void *c, uint64_t *f, uint64_t *t), (c, f, t))

static dv_device_t *open_guarded(uint64_t limit_pages, uint32_t fence_interval) {
    host = dv_hal_host();
    guard = *host;
    guard.name = "guard";
    guard.fence_record = g_fence_record;
    guard.fence_query = g_fence_query;
    guard.fence_wait = g_fence_wait;
    guard.fence_destroy = g_fence_destroy;
    guard.stream_synchronize = g_stream_synchronize;
    guard.stream_wait = g_stream_wait;
    guard.reserve = g_reserve;
    guard.unreserve = g_unreserve;
    guard.create = g_create;
    guard.release = g_release;
    guard.map = g_map;
    guard.unmap = g_unmap;
    guard.mem_info = g_mem_info;
    violations = calls = 0;
    dv_device_options_t o;
    td_options(&o, limit_pages);
    o.fence_interval = fence_interval;
    o.pool_limit = 0;
    dv_device_t *dev = NULL;
    TD_OK(dv_device_open_hal(&guard, &o, &dev));
    return dev;
}

/* Pages [first, first + n) of v faulted and unpinned on `stream`, with
 * pending work queued before each unpin. */
static void use_on(dv_device_t *dev, dv_vbar_t *v, uint64_t first, uint64_t n,
                   void *stream) {
    for (uint64_t i = first; i < first + n; i++) {
        TD_OK(dv_fault(dev, v, i * P, P, NULL));
        if (stream) {
            TD_OK(dv_host_stream_submit(stream));
        }
        TD_OK(dv_unpin(dev, v, i * P, P, stream));
    }
}

static uint64_t completed(void *s) {
    uint64_t sub = 0, done = 0;
    TD_OK(dv_host_stream_counts(s, &sub, &done));
    return done;
}

Test(capture, eviction_passes_over_pages_of_a_capturing_stream) {
    dv_device_t *dev = open_guarded(8, 1);
    void *s = NULL;
    TD_OK(dv_stream_create(dev, &s));
    dv_vbar_t *v = NULL;
    TD_OK(dv_vbar_create(dev, 8 * P, &v));
    use_on(dev, v, 0, 4, NULL);
    use_on(dev, v, 4, 4, s); /* the top pages: first in eviction order */
    TD_OK(dv_host_stream_set_capturing(s, 1));
    uint64_t waits = dv_host_fence_waits(), done = completed(s);
    /* Only the four idle pages can go: 6 pages do not fit, 4 do. */
    TD_IS(dv_framework_reserve(dev, 6 * P), DV_ERROR_OUT_OF_DEVICE_MEMORY);
    TD_OK(dv_framework_reserve(dev, 4 * P));
    for (uint64_t i = 4; i < 8; i++) {
        cr_assert(td_page_flags(dev, v, i) & DV_PAGE_RESIDENT, "page %llu",
                  (unsigned long long)i);
    }
    cr_assert_eq(violations, 0);
    cr_assert_eq(dv_host_fence_waits(), waits);
    cr_assert_eq(completed(s), done, "the capturing stream was waited on");
    /* dv_vbar_evict, reap and a stream synchronize leave it alone too. */
    uint64_t freed = 1;
    TD_OK(dv_vbar_evict(dev, v, 8 * P, &freed));
    cr_assert_eq(freed, 0);
    TD_IS(dv_stream_synchronize(dev, s), DV_ERROR_BUSY);
    TD_IS(dv_vbar_destroy(dev, v), DV_ERROR_BUSY);
    cr_assert_eq(violations, 0);
    td_check(dev);
    /* The capture ends: the pages are ordinary victims again. */
    TD_OK(dv_host_stream_set_capturing(s, 0));
    TD_OK(dv_framework_reserve(dev, 4 * P));
    cr_assert_gt(dv_host_fence_waits(), waits);
    TD_OK(dv_framework_release(dev, 8 * P));
    TD_OK(dv_vbar_destroy(dev, v));
    TD_OK(dv_stream_destroy(dev, s));
    TD_OK(dv_device_close(dev));
}

Test(capture, unpin_records_no_fence_during_a_capture) {
    dv_device_t *dev = open_guarded(0, 1); /* a fence per unpin */
    void *s = NULL;
    TD_OK(dv_stream_create(dev, &s));
    dv_vbar_t *v = NULL;
    TD_OK(dv_vbar_create(dev, 4 * P, &v));
    TD_OK(dv_host_stream_set_capturing(s, 1));
    use_on(dev, v, 0, 4, s);
    cr_assert_eq(violations, 0, "a fence was recorded inside the capture");
    TD_OK(dv_host_stream_set_capturing(s, 0));
    /* After the capture the pages are evicted with a fence that covers
     * their unpins. */
    uint64_t freed = 0;
    TD_OK(dv_vbar_evict(dev, v, 4 * P, &freed));
    cr_assert_eq(freed, 4 * P);
    cr_assert_eq(completed(s), 4);
    TD_OK(dv_vbar_destroy(dev, v));
    TD_OK(dv_stream_destroy(dev, s));
    TD_OK(dv_device_close(dev));
}

Test(capture, a_fault_offloads_rather_than_wait_for_a_capture) {
    dv_device_t *dev = open_guarded(4, 1);
    void *s = NULL;
    TD_OK(dv_stream_create(dev, &s));
    dv_vbar_t *low = NULL, *high = NULL;
    TD_OK(dv_vbar_create(dev, 4 * P, &low));
    use_on(dev, low, 0, 4, s);
    TD_OK(dv_vbar_create(dev, 4 * P, &high));
    TD_OK(dv_host_stream_set_capturing(s, 1));
    TD_IS(dv_fault(dev, high, 0, P, NULL), DV_OFFLOADED);
    cr_assert_eq(td_resident_pages(dev, low), 4);
    cr_assert_eq(violations, 0);
    TD_OK(dv_host_stream_set_capturing(s, 0));
    TD_OK(dv_fault(dev, high, 0, P, NULL));
    TD_OK(dv_unpin(dev, high, 0, P, NULL));
    TD_OK(dv_vbar_destroy(dev, low));
    TD_OK(dv_vbar_destroy(dev, high));
    TD_OK(dv_stream_destroy(dev, s));
    TD_OK(dv_device_close(dev));
}

static const tg_op_t block[] = {
    TG_P("block"), TG_A(0, 3 * M), TG_A(1, 5 * M), TG_F(0), TG_A(2, M),
    TG_F(1), TG_F(2), TG_O(),
};

Test(capture, a_graph_replays_inside_a_capture_without_a_call) {
    dv_device_t *dev = open_guarded(0, 32);
    void *s = NULL;
    TD_OK(dv_stream_create(dev, &s));
    dv_graph_t *g = tg_graph(dev, s, 0, 0);
    tg_run_t r1, r2;
    tg_script(dev, g, block, TG_LEN(block), &r1);
    TD_OK(dv_host_stream_set_capturing(s, 1));
    long before = calls;
    tg_script(dev, g, block, TG_LEN(block), &r2);
    cr_assert_eq(calls, before, "%ld backend calls inside the capture",
                 calls - before);
    cr_assert_eq(r2.changed[0], 0);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(r1.addr[i], r2.addr[i]);
    }
    /* Nothing that would wait on the capture is done now. */
    TD_IS(dv_graph_destroy(dev, g), DV_ERROR_BUSY);
    TD_IS(dv_graph_set_stream(dev, g, NULL), DV_ERROR_BUSY);
    TD_IS(dv_graph_pause(dev, g, 1), DV_ERROR_BUSY);
    cr_assert_eq(tg_stats(dev, g).paused, 0);
    TD_OK(dv_graph_pause(dev, g, 0));
    TD_OK(dv_graph_resume(dev, g, 0));
    cr_assert_eq(violations, 0);
    TD_OK(dv_host_stream_set_capturing(s, 0));
    TD_OK(dv_graph_destroy(dev, g));
    TD_OK(dv_stream_destroy(dev, s));
    TD_OK(dv_device_close(dev));
}

Test(capture, a_graph_records_around_pages_of_a_capturing_stream) {
    dv_device_t *dev = open_guarded(8, 1);
    void *s = NULL, *gs = NULL;
    TD_OK(dv_stream_create(dev, &s));
    TD_OK(dv_stream_create(dev, &gs));
    dv_vbar_t *v = NULL;
    TD_OK(dv_vbar_create(dev, 8 * P, &v));
    use_on(dev, v, 0, 4, NULL);
    use_on(dev, v, 4, 4, s);
    dv_graph_t *g = tg_graph(dev, gs, 0, 0); /* its own stream is free */
    TD_OK(dv_host_stream_set_capturing(s, 1));
    TD_OK(dv_graph_push(dev, g, "b"));
    uint64_t p = tg_alloc(dev, g, 4 * P); /* takes the idle pages */
    uint64_t q = 0;
    TD_IS(dv_graph_alloc(dev, g, 2 * P, gs, &q), DV_ERROR_OUT_OF_DEVICE_MEMORY);
    cr_assert_eq(violations, 0);
    cr_assert_eq(td_resident_pages(dev, v), 4);
    tg_free(dev, g, p, 4 * P);
    tg_pop(dev, g);
    TD_OK(dv_host_stream_set_capturing(s, 0));
    TD_OK(dv_graph_destroy(dev, g));
    TD_OK(dv_vbar_destroy(dev, v));
    TD_OK(dv_stream_destroy(dev, gs));
    TD_OK(dv_stream_destroy(dev, s));
    TD_OK(dv_device_close(dev));
}

Test(capture, a_pass_that_must_record_inside_a_capture_bypasses) {
    dv_device_t *dev = open_guarded(0, 32);
    void *s = NULL;
    TD_OK(dv_stream_create(dev, &s));
    dv_graph_t *g = tg_graph(dev, s, 0, 0);
    tg_run_t r1, r2;
    tg_script(dev, g, block, TG_LEN(block), &r1);
    TD_OK(dv_host_stream_set_capturing(s, 1));
    long before = calls;
    TD_OK(dv_graph_push(dev, g, "block"));
    uint64_t a = tg_alloc(dev, g, 3 * M); /* replayed */
    cr_assert_eq(a, r1.addr[0]);
    uint64_t b = 1;
    /* The recording has 5 MiB here: 6 MiB would need new memory. */
    TD_IS(dv_graph_alloc(dev, g, 6 * M, s, &b), DV_OFFLOADED);
    cr_assert_eq(b, 0);
    TD_OK(dv_graph_push(dev, g, "nested")); /* lost too */
    TD_IS(dv_graph_alloc(dev, g, M, s, &b), DV_OFFLOADED);
    tg_pop(dev, g);
    TD_IS(dv_graph_alloc(dev, g, M, s, &b), DV_OFFLOADED);
    tg_free(dev, g, a, 3 * M);
    cr_assert_eq(tg_pop(dev, g), 1, "the pass changed");
    cr_assert_eq(calls, before, "the capture saw no backend memory call");
    dv_graph_stats_t st = tg_stats(dev, g);
    cr_assert_eq(st.breaks, 1);
    cr_assert_eq(st.bypassed, 3);
    cr_assert_eq(violations, 0);
    /* After the capture the recording is as it was: the old pass replays. */
    TD_OK(dv_host_stream_set_capturing(s, 0));
    tg_script(dev, g, block, TG_LEN(block), &r2);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(r1.addr[i], r2.addr[i]);
    }
    cr_assert_eq(tg_stats(dev, g).breaks, 1);
    TD_OK(dv_graph_destroy(dev, g));
    TD_OK(dv_stream_destroy(dev, s));
    TD_OK(dv_device_close(dev));
}
