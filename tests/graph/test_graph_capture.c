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

/* ---- capture passes: what torch does differently while it captures ---- */

/* Two blocks of a step as torch runs `x = block(x)` in scopes: each block
 * frees the previous block's output as its last event (the old x, dropped
 * when the name is rebound), and its own output outlives the scope. */
typedef struct step_addrs {
    uint64_t t1, o1, t2, o2;
} step_addrs_t;

static void block1(dv_device_t *dev, dv_graph_t *g, step_addrs_t *a) {
    TD_OK(dv_graph_push(dev, g, "b1"));
    a->t1 = tg_alloc(dev, g, 4 * M);
    a->o1 = tg_alloc(dev, g, 2 * M);
    tg_free(dev, g, a->t1, 4 * M);
    cr_assert_eq(tg_pop(dev, g), 0, "b1 did not replay");
}

static void eager_step(dv_device_t *dev, dv_graph_t *g, step_addrs_t *a,
                       int replay) {
    TD_OK(dv_graph_push(dev, g, "b1"));
    a->t1 = tg_alloc(dev, g, 4 * M);
    a->o1 = tg_alloc(dev, g, 2 * M);
    tg_free(dev, g, a->t1, 4 * M);
    cr_assert_eq(tg_pop(dev, g), !replay);
    TD_OK(dv_graph_push(dev, g, "b2"));
    a->t2 = tg_alloc(dev, g, 4 * M);
    a->o2 = tg_alloc(dev, g, 2 * M);
    tg_free(dev, g, a->t2, 4 * M);
    tg_free(dev, g, a->o1, 2 * M);
    cr_assert_eq(tg_pop(dev, g), !replay);
    tg_free(dev, g, a->o2, 2 * M);
}

Test(capture, frees_deferred_past_the_capture_neither_break_it_nor_the_next_scope) {
    dv_device_t *dev = open_guarded(0, 32);
    void *s = NULL;
    TD_OK(dv_stream_create(dev, &s));
    dv_graph_t *g = tg_graph(dev, s, 0, 0);
    step_addrs_t e1, e2, c;
    eager_step(dev, g, &e1, 0);
    eager_step(dev, g, &e2, 1);
    /* The capturing step: b2's body is captured. o1 was allocated before
     * the capture, so torch's cudaMallocAsync backend defers its free until
     * the next allocation after the capture. */
    block1(dev, g, &c);
    TD_OK(dv_graph_push(dev, g, "b2"));
    TD_OK(dv_host_stream_set_capturing(s, 1));
    TD_OK(dv_graph_note_capture(dev, g)); /* dynvram.torch's capture_begin */
    long before = calls;
    c.t2 = tg_alloc(dev, g, 4 * M);
    c.o2 = tg_alloc(dev, g, 2 * M);
    tg_free(dev, g, c.t2, 4 * M);
    cr_assert_eq(calls, before, "backend calls inside the capture");
    TD_OK(dv_host_stream_set_capturing(s, 0));
    cr_assert_eq(tg_pop(dev, g), 0, "the capture pass did not replay");
    cr_assert_eq(c.t2, e2.t2);
    cr_assert_eq(c.o2, e2.o2);
    tg_free(dev, g, c.o2, 2 * M); /* the step's output, used */
    dv_graph_stats_t st = tg_stats(dev, g);
    cr_assert_eq(st.breaks, 0);
    cr_assert_eq(st.capture_skips, 1, "the deferred free was stepped over");
    /* The next step: the deferred free comes first, inside b1. It is in no
     * sequence: b1 replays, and o1's bytes are free for its new o1. */
    TD_OK(dv_graph_push(dev, g, "b1"));
    tg_free(dev, g, c.o1, 2 * M);
    uint64_t t1 = tg_alloc(dev, g, 4 * M);
    uint64_t o1 = tg_alloc(dev, g, 2 * M);
    tg_free(dev, g, t1, 4 * M);
    cr_assert_eq(tg_pop(dev, g), 0, "the deferred free broke the next scope");
    cr_assert_eq(t1, e2.t1);
    cr_assert_eq(o1, e2.o1);
    TD_OK(dv_graph_push(dev, g, "b2"));
    uint64_t t2 = tg_alloc(dev, g, 4 * M);
    uint64_t o2 = tg_alloc(dev, g, 2 * M);
    tg_free(dev, g, t2, 4 * M);
    tg_free(dev, g, o1, 2 * M);
    cr_assert_eq(tg_pop(dev, g), 0);
    tg_free(dev, g, o2, 2 * M);
    st = tg_stats(dev, g);
    cr_assert_eq(st.breaks, 0);
    cr_assert_eq(st.used, 0);
    cr_assert_eq(violations, 0);
    TD_OK(dv_graph_destroy(dev, g));
    TD_OK(dv_stream_destroy(dev, s));
    TD_OK(dv_device_close(dev));
}

Test(capture, a_free_deferred_from_the_middle_of_a_pass_is_stepped_over) {
    dv_device_t *dev = open_guarded(0, 32);
    void *s = NULL;
    TD_OK(dv_stream_create(dev, &s));
    dv_graph_t *g = tg_graph(dev, s, 0, 0);
    /* Recording: the previous output is freed before the block's own
     * allocations; in the capture its free comes only after the pass. */
    uint64_t addr[2][3];
    for (int pass = 0; pass < 2; pass++) {
        TD_OK(dv_graph_push(dev, g, "prev"));
        uint64_t prev = tg_alloc(dev, g, M);
        cr_assert_eq(tg_pop(dev, g), pass == 0);
        TD_OK(dv_graph_push(dev, g, "b"));
        tg_free(dev, g, prev, M);
        addr[pass][0] = tg_alloc(dev, g, 4 * M);
        addr[pass][1] = tg_alloc(dev, g, 6 * M);
        tg_free(dev, g, addr[pass][0], 4 * M);
        tg_free(dev, g, addr[pass][1], 6 * M);
        cr_assert_eq(tg_pop(dev, g), pass == 0);
    }
    TD_OK(dv_graph_push(dev, g, "prev"));
    uint64_t prev = tg_alloc(dev, g, M);
    cr_assert_eq(tg_pop(dev, g), 0);
    TD_OK(dv_graph_push(dev, g, "b"));
    TD_OK(dv_host_stream_set_capturing(s, 1));
    long before = calls;
    /* The recorded free of prev is stepped over (prev is still live), and
     * each allocation replays if none of its bytes is prev's, else it goes
     * to the framework while the pass stays on its recording. */
    uint64_t a = 0, b = 0;
    dv_result_t ra = dv_graph_alloc(dev, g, 4 * M, s, &a);
    dv_result_t rb = dv_graph_alloc(dev, g, 6 * M, s, &b);
    cr_assert(ra == DV_OK || ra == DV_OFFLOADED);
    cr_assert(rb == DV_OK || rb == DV_OFFLOADED);
    cr_assert(ra == DV_OK || rb == DV_OK, "nothing replayed after the skip");
    /* Here (host backend, 2 MiB pages) the 4 MiB range was placed over
     * prev's bytes: it goes to the framework, and the recorded allocation
     * it stands for is stepped over, so the 6 MiB one still replays. */
    cr_assert_eq(ra, DV_OFFLOADED);
    cr_assert_eq(rb, DV_OK);
    cr_assert(ra != DV_OK || a == addr[1][0]);
    cr_assert(rb != DV_OK || b == addr[1][1]);
    TD_IS(dv_graph_free(dev, g, a ? a : 0x1000, s),
          ra == DV_OK ? DV_OK : DV_OFFLOADED);
    TD_IS(dv_graph_free(dev, g, b ? b : 0x1000, s),
          rb == DV_OK ? DV_OK : DV_OFFLOADED);
    cr_assert_eq(calls, before);
    int changed = tg_pop(dev, g);
    cr_assert_eq(changed, !(ra == DV_OK && rb == DV_OK));
    TD_OK(dv_host_stream_set_capturing(s, 0));
    /* The deferred free, after the capture, in no sequence. */
    tg_free(dev, g, prev, M);
    cr_assert_eq(tg_stats(dev, g).used, 0);
    /* The recording is as it was: an eager pass replays it. */
    TD_OK(dv_graph_push(dev, g, "prev"));
    prev = tg_alloc(dev, g, M);
    cr_assert_eq(tg_pop(dev, g), 0);
    TD_OK(dv_graph_push(dev, g, "b"));
    tg_free(dev, g, prev, M);
    a = tg_alloc(dev, g, 4 * M);
    b = tg_alloc(dev, g, 6 * M);
    tg_free(dev, g, a, 4 * M);
    tg_free(dev, g, b, 6 * M);
    cr_assert_eq(tg_pop(dev, g), 0);
    cr_assert_eq(a, addr[1][0]);
    cr_assert_eq(b, addr[1][1]);
    cr_assert_eq(violations, 0);
    TD_OK(dv_graph_destroy(dev, g));
    TD_OK(dv_stream_destroy(dev, s));
    TD_OK(dv_device_close(dev));
}

Test(capture, an_allocation_with_no_recording_in_a_capture_leaves_the_rest_replaying) {
    dv_device_t *dev = open_guarded(0, 32);
    void *s = NULL;
    TD_OK(dv_stream_create(dev, &s));
    dv_graph_t *g = tg_graph(dev, s, 0, 0);
    tg_run_t r1, r2;
    tg_script(dev, g, block, TG_LEN(block), &r1);
    TD_OK(dv_host_stream_set_capturing(s, 1));
    long before = calls;
    TD_OK(dv_graph_push(dev, g, "block"));
    /* Something the eager passes never allocated (an RNG state a capture
     * needs, say), first in the capture. */
    uint64_t x = 1;
    TD_IS(dv_graph_alloc(dev, g, 16, s, &x), DV_OFFLOADED);
    cr_assert_eq(x, 0);
    uint64_t a = tg_alloc(dev, g, 3 * M);
    uint64_t b = tg_alloc(dev, g, 5 * M);
    tg_free(dev, g, a, 3 * M);
    uint64_t c = tg_alloc(dev, g, M);
    tg_free(dev, g, b, 5 * M);
    tg_free(dev, g, c, M);
    cr_assert_eq(tg_pop(dev, g), 1, "an address came from elsewhere");
    cr_assert_eq(calls, before);
    cr_assert_eq(a, r1.addr[0]);
    cr_assert_eq(b, r1.addr[1]);
    cr_assert_eq(c, r1.addr[2]);
    dv_graph_stats_t st = tg_stats(dev, g);
    cr_assert_eq(st.bypassed, 1);
    cr_assert_eq(st.capture_skips, 1);
    cr_assert_eq(st.breaks, 1);
    cr_assert_eq(violations, 0);
    TD_OK(dv_host_stream_set_capturing(s, 0));
    /* Nothing was recorded: the next pass replays, no new break. */
    tg_script(dev, g, block, TG_LEN(block), &r2);
    cr_assert_eq(r2.changed[0], 0);
    cr_assert_eq(tg_stats(dev, g).breaks, 1);
    TD_OK(dv_graph_destroy(dev, g));
    TD_OK(dv_stream_destroy(dev, s));
    TD_OK(dv_device_close(dev));
}

Test(capture, set_up_allocations_before_the_capture_must_bypass_the_graph) {
    dv_device_t *dev = open_guarded(0, 32);
    void *s = NULL;
    TD_OK(dv_stream_create(dev, &s));
    dv_graph_t *g = tg_graph(dev, s, 0, 0);
    tg_run_t r1;
    tg_script(dev, g, block, TG_LEN(block), &r1);
    tg_script(dev, g, block, TG_LEN(block), &r1);
    /* torch's capture_begin, the first time: the RNG's graph state, two
     * small tensors on the capture stream just before the capture begins.
     * In the scope's sequence they would be a break recorded before the
     * capture, and such a pass cannot replay inside it (it is lost):
     * dynvram.torch pauses the graph around capture_begin. */
    for (int guarded = 1; guarded >= 0; guarded--) {
        TD_OK(dv_graph_push(dev, g, "block"));
        uint64_t seed = 0, offset = 0; /* 8 bytes each in torch */
        if (guarded) {
            TD_OK(dv_graph_pause(dev, g, 0));
            TD_IS(dv_graph_alloc(dev, g, 16, s, &seed), DV_OFFLOADED);
            TD_IS(dv_graph_alloc(dev, g, 16, s, &offset), DV_OFFLOADED);
            TD_OK(dv_graph_resume(dev, g, 0));
        } else {
            seed = tg_alloc(dev, g, 16);
            offset = tg_alloc(dev, g, 16);
        }
        TD_OK(dv_host_stream_set_capturing(s, 1));
        TD_OK(dv_graph_note_capture(dev, g));
        uint64_t a = 0, b = 0, c = 0;
        dv_result_t ra = dv_graph_alloc(dev, g, 3 * M, s, &a);
        dv_result_t rb = dv_graph_alloc(dev, g, 5 * M, s, &b);
        if (ra == DV_OK) {
            TD_OK(dv_graph_free(dev, g, a, s));
        }
        dv_result_t rc = dv_graph_alloc(dev, g, M, s, &c);
        if (rb == DV_OK) {
            TD_OK(dv_graph_free(dev, g, b, s));
        }
        if (rc == DV_OK) {
            TD_OK(dv_graph_free(dev, g, c, s));
        }
        TD_OK(dv_host_stream_set_capturing(s, 0));
        int changed = tg_pop(dev, g);
        if (guarded) {
            cr_assert_eq(changed, 0);
            cr_assert(ra == DV_OK && rb == DV_OK && rc == DV_OK);
            cr_assert_eq(a, r1.addr[0]);
            cr_assert_eq(b, r1.addr[1]);
            cr_assert_eq(c, r1.addr[2]);
        } else {
            cr_assert_eq(changed, 1);
            cr_assert(ra == DV_OFFLOADED && rb == DV_OFFLOADED &&
                          rc == DV_OFFLOADED,
                      "a pass that broke before the capture replayed in it");
            tg_free(dev, g, seed, 16);
            tg_free(dev, g, offset, 16);
        }
    }
    cr_assert_eq(violations, 0);
    TD_OK(dv_graph_destroy(dev, g));
    TD_OK(dv_stream_destroy(dev, s));
    TD_OK(dv_device_close(dev));
}

/* ---- the debug trace and a scope's recording ---- */

Test(capture, the_trace_and_the_recording_show_what_a_capture_asked_for) {
    dv_device_t *dev = open_guarded(0, 32);
    void *s = NULL, *other = NULL;
    TD_OK(dv_stream_create(dev, &s));
    TD_OK(dv_stream_create(dev, &other));
    dv_graph_t *g = tg_graph(dev, s, 0, 0);
    uint32_t n = 7;
    TD_IS(dv_graph_get_trace(dev, g, NULL, 4, &n), DV_ERROR_INVALID_ARGUMENT);
    TD_IS(dv_graph_get_trace(dev, g, NULL, 0, NULL), DV_ERROR_INVALID_ARGUMENT);
    TD_OK(dv_graph_get_trace(dev, g, NULL, 0, &n));
    cr_assert_eq(n, 0, "off by default");
    TD_IS(dv_graph_trace(dev, g, (1u << 20) + 1), DV_ERROR_INVALID_ARGUMENT);
    TD_IS(dv_graph_get_recording(dev, g, "block", NULL, 0, &n),
          DV_ERROR_INVALID_ARGUMENT);
    tg_run_t r1;
    tg_script(dev, g, block, TG_LEN(block), &r1);
    /* The recording: push-less path of six events and the scope's end. */
    dv_graph_event_t rec[16];
    TD_OK(dv_graph_get_recording(dev, g, "block", rec, 16, &n));
    cr_assert_eq(n, 7);
    const uint32_t kinds[7] = {DV_GRAPH_EV_ALLOC, DV_GRAPH_EV_ALLOC,
                               DV_GRAPH_EV_FREE,  DV_GRAPH_EV_ALLOC,
                               DV_GRAPH_EV_FREE,  DV_GRAPH_EV_FREE,
                               DV_GRAPH_EV_POP};
    for (uint32_t i = 0; i < n; i++) {
        cr_assert_eq(rec[i].kind, kinds[i], "event %u", i);
        cr_assert_eq(rec[i].variants, i < 6 ? 1u : 0u);
    }
    cr_assert_eq(rec[0].size, 3 * M);
    cr_assert_eq(rec[0].ptr, r1.addr[0]);
    cr_assert_eq(rec[2].serial, rec[0].serial, "the free names its range");
    cr_assert_eq(rec[4].serial, rec[1].serial);
    cr_assert(rec[6].flags & DV_GRAPH_EVF_ENDS);
    uint32_t total = 0;
    TD_OK(dv_graph_get_recording(dev, g, "block", rec, 2, &total));
    cr_assert_eq(total, 7, "the count is the whole path");
    /* A traced capture pass: an extra allocation, one on another stream. */
    TD_OK(dv_graph_trace(dev, g, 4));
    TD_OK(dv_graph_trace(dev, g, 64));
    TD_OK(dv_host_stream_set_capturing(s, 1));
    TD_OK(dv_graph_push(dev, g, "block"));
    uint64_t x = 0;
    TD_IS(dv_graph_alloc(dev, g, 16, other, &x), DV_OFFLOADED);
    TD_IS(dv_graph_alloc(dev, g, 16, s, &x), DV_OFFLOADED);
    uint64_t a = tg_alloc(dev, g, 3 * M);
    tg_free(dev, g, a, 3 * M);
    TD_OK(dv_graph_abort(dev, g));
    TD_OK(dv_host_stream_set_capturing(s, 0));
    dv_graph_event_t ev[64];
    TD_OK(dv_graph_get_trace(dev, g, ev, 64, &n));
    cr_assert_eq(n, 6);
    cr_assert_eq(ev[0].kind, DV_GRAPH_EV_PUSH);
    cr_assert_eq(ev[0].seq, 0);
    cr_assert_str_eq(ev[0].scope, "block");
    cr_assert_eq(ev[1].kind, DV_GRAPH_EV_ALLOC);
    cr_assert_eq(ev[1].outcome, DV_GRAPH_OUT_BYPASSED);
    cr_assert_eq(ev[1].stream, other);
    cr_assert_eq(ev[1].size, 16);
    cr_assert(ev[1].flags & DV_GRAPH_EVF_CAPTURING);
    cr_assert_eq(ev[2].outcome, DV_GRAPH_OUT_SKIPPED);
    cr_assert(ev[2].flags & DV_GRAPH_EVF_CAPTURE_PASS);
    cr_assert_eq(ev[3].outcome, DV_GRAPH_OUT_REPLAYED);
    cr_assert_eq(ev[3].ptr, r1.addr[0]);
    cr_assert_eq(ev[3].serial, rec[0].serial);
    cr_assert_eq(ev[4].kind, DV_GRAPH_EV_FREE);
    cr_assert_eq(ev[4].outcome, DV_GRAPH_OUT_SKIPPED, "not where recorded");
    cr_assert_eq(ev[5].kind, DV_GRAPH_EV_POP);
    cr_assert_eq(ev[5].depth, 1);
    /* Only the newest fit a small buffer; a smaller trace keeps fewer. */
    TD_OK(dv_graph_get_trace(dev, g, ev, 2, &n));
    cr_assert_eq(n, 2);
    cr_assert_eq(ev[0].seq, 4);
    TD_OK(dv_graph_trace(dev, g, 2));
    tg_script(dev, g, block, TG_LEN(block), &r1); /* after an abort */
    tg_script(dev, g, block, TG_LEN(block), &r1);
    TD_OK(dv_graph_get_trace(dev, g, NULL, 0, &n));
    cr_assert_eq(n, 2);
    TD_OK(dv_graph_get_trace(dev, g, ev, 64, &n));
    cr_assert_eq(n, 2);
    cr_assert_eq(ev[1].kind, DV_GRAPH_EV_POP);
    cr_assert_eq(ev[1].outcome, DV_GRAPH_OUT_REPLAYED);
    cr_assert_eq(ev[1].seq, 15, "8 events a pass");
    TD_OK(dv_graph_trace(dev, g, 0));
    TD_OK(dv_graph_get_trace(dev, g, NULL, 0, &n));
    cr_assert_eq(n, 0);
    TD_OK(dv_graph_destroy(dev, g));
    TD_OK(dv_stream_destroy(dev, s));
    TD_OK(dv_stream_destroy(dev, other));
    TD_OK(dv_device_close(dev));
}
