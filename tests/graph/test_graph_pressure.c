/*
 * test_graph_pressure.c - an allocation graph's physical pages come out of
 * the device's one budget: under a VRAM limit they evict weight pages
 * (lowest priority first) instead of failing, fail only when nothing is
 * evictable, and are not taken back by weight faults. Every backend.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "graph_util.h"

#define P TD_PAGE
#define M TG_MIB
#define LIMIT 16

/* Fault and unpin pages [0, n) of v. */
static void fill(dv_device_t *dev, dv_vbar_t *v, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        TD_OK(dv_fault(dev, v, i * P, P, NULL));
        TD_OK(dv_unpin(dev, v, i * P, P, NULL));
    }
}

static const tg_op_t block[] = {
    TG_P("block"), TG_A(0, 4 * M), TG_A(1, 4 * M), TG_A(2, 6 * M), TG_F(0),
    TG_A(3, 4 * M), TG_F(1), TG_F(2), TG_F(3), TG_O(),
};

Test(graph_pressure, graph_pages_evict_weights_instead_of_failing) {
    dv_device_t *dev = td_open(LIMIT);
    dv_vbar_t *low = NULL, *high = NULL;
    TD_OK(dv_vbar_create(dev, 8 * P, &low));
    TD_OK(dv_vbar_create(dev, 8 * P, &high)); /* newer: higher priority */
    fill(dev, low, 8);
    fill(dev, high, 8);
    cr_assert_eq(td_stats(dev).resident_bytes, LIMIT * P);
    dv_graph_t *g = tg_graph(dev, NULL, 0, 0);
    tg_run_t r1, r2;
    tg_script(dev, g, block, TG_LEN(block), &r1);
    dv_device_stats_t st = td_stats(dev);
    dv_graph_stats_t gs = tg_stats(dev, g);
    cr_assert_geq(gs.physical_bytes, 14 * M);
    cr_assert_eq(st.graph_bytes, gs.physical_bytes);
    cr_assert_leq(st.used, st.budget, "used %llu over budget %llu",
                  (unsigned long long)st.used, (unsigned long long)st.budget);
    cr_assert_geq(st.evictions, gs.physical_bytes / P);
    /* The lower-priority model paid first, top pages first. */
    cr_assert_eq(td_resident_pages(dev, high), 8);
    cr_assert_lt(td_resident_pages(dev, low), 8);
    if (gs.physical_bytes <= 8 * P) {
        cr_assert(td_page_flags(dev, low, 0) & DV_PAGE_RESIDENT);
    }
    /* Replays need no more room: nothing else is evicted. */
    uint64_t ev = st.evictions;
    tg_script(dev, g, block, TG_LEN(block), &r2);
    cr_assert_eq(r2.changed[0], 0);
    cr_assert_eq(td_stats(dev).evictions, ev);
    TD_OK(dv_graph_destroy(dev, g));
    TD_OK(dv_vbar_destroy(dev, low));
    TD_OK(dv_vbar_destroy(dev, high));
    TD_OK(dv_device_close(dev));
}

Test(graph_pressure, fails_only_when_nothing_is_evictable) {
    dv_device_t *dev = td_open(LIMIT);
    dv_vbar_t *v = NULL;
    TD_OK(dv_vbar_create(dev, LIMIT * P, &v));
    TD_OK(dv_fault(dev, v, 0, LIMIT * P, NULL)); /* all pinned */
    dv_graph_t *g = tg_graph(dev, NULL, 0, 0);
    TD_OK(dv_graph_push(dev, g, "s"));
    uint64_t p = 1;
    TD_IS(dv_graph_alloc(dev, g, 3 * M, NULL, &p),
          DV_ERROR_OUT_OF_DEVICE_MEMORY);
    cr_assert_eq(p, 0);
    dv_graph_stats_t gs = tg_stats(dev, g);
    cr_assert_eq(gs.physical_bytes, 0, "a failed allocation keeps no page");
    cr_assert_eq(gs.allocs, 0);
    td_check(dev);
    TD_OK(dv_unpin(dev, v, 0, LIMIT * P, NULL));
    p = tg_alloc(dev, g, 3 * M); /* now weights can go */
    tg_free(dev, g, p, 3 * M);
    tg_pop(dev, g);
    cr_assert_gt(td_stats(dev).evictions, 0);
    TD_OK(dv_graph_destroy(dev, g));
    TD_OK(dv_vbar_destroy(dev, v));
    TD_OK(dv_device_close(dev));
}

Test(graph_pressure, weight_faults_never_take_graph_memory) {
    dv_device_t *dev = td_open(LIMIT);
    dv_graph_t *g = tg_graph(dev, NULL, 0, 0);
    tg_run_t r1, r2;
    tg_script(dev, g, block, TG_LEN(block), &r1);
    uint64_t phys = tg_stats(dev, g).physical_bytes;
    dv_vbar_t *v = NULL;
    TD_OK(dv_vbar_create(dev, LIMIT * P, &v));
    uint64_t offloaded = 0;
    for (uint64_t i = 0; i < LIMIT; i++) {
        dv_result_t r = dv_fault(dev, v, i * P, P, NULL);
        cr_assert(r == DV_OK || r == DV_OFFLOADED, "%s", dv_last_error());
        if (r == DV_OK) {
            TD_OK(dv_unpin(dev, v, i * P, P, NULL));
        } else {
            offloaded++;
        }
    }
    cr_assert_geq(offloaded, phys / P, "the graph's pages stayed");
    cr_assert_eq(tg_stats(dev, g).physical_bytes, phys);
    tg_script(dev, g, block, TG_LEN(block), &r2);
    cr_assert_eq(r2.changed[0], 0);
    for (int s = 0; s < 4; s++) {
        cr_assert_eq(r1.addr[s], r2.addr[s]);
    }
    TD_OK(dv_graph_destroy(dev, g));
    TD_OK(dv_vbar_destroy(dev, v));
    TD_OK(dv_device_close(dev));
}

Test(graph_pressure, framework_and_graph_share_one_budget) {
    dv_device_t *dev = td_open(LIMIT);
    dv_graph_t *g = tg_graph(dev, NULL, 0, 0);
    TD_OK(dv_framework_reserve(dev, 10 * P));
    TD_OK(dv_graph_push(dev, g, "s"));
    uint64_t p = 0;
    TD_IS(dv_graph_alloc(dev, g, 7 * P, NULL, &p),
          DV_ERROR_OUT_OF_DEVICE_MEMORY);
    p = tg_alloc(dev, g, 5 * P);
    TD_IS(dv_framework_reserve(dev, 2 * P), DV_ERROR_OUT_OF_DEVICE_MEMORY);
    tg_free(dev, g, p, 5 * P);
    tg_pop(dev, g);
    /* Freed graph memory stays with the graph (replays need it). */
    TD_IS(dv_framework_reserve(dev, 2 * P), DV_ERROR_OUT_OF_DEVICE_MEMORY);
    TD_OK(dv_framework_release(dev, 10 * P));
    TD_OK(dv_graph_destroy(dev, g));
    TD_OK(dv_framework_reserve(dev, LIMIT * P));
    TD_OK(dv_framework_release(dev, LIMIT * P));
    TD_OK(dv_device_close(dev));
}
