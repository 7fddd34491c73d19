/*
 * test_policy.c - the residency policy (README.md, "The policy, exactly"),
 * on the backend under test (DYNVRAM_BACKEND, default host). Budgets are imposed with vram_limit
 * so the numbers are exact on every backend.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "inject.h"
#include "testdev.h"

#define P TD_PAGE

static dv_vbar_t *mk(dv_device_t *dev, uint64_t pages) {
    dv_vbar_t *v = NULL;
    TD_OK(dv_vbar_create(dev, pages * P, &v));
    return v;
}

static dv_result_t fp(dv_device_t *dev, dv_vbar_t *v, uint64_t i) {
    uint64_t g;
    return dv_fault(dev, v, i * P, P, &g);
}

static void up(dv_device_t *dev, dv_vbar_t *v, uint64_t i) {
    TD_OK(dv_unpin(dev, v, i * P, P, NULL));
}

/* Fault and unpin page i; returns whether it was resident (OK). */
static int touch(dv_device_t *dev, dv_vbar_t *v, uint64_t i) {
    dv_result_t r = fp(dev, v, i);
    cr_assert(r == DV_OK || r == DV_OFFLOADED, "fault %llu: %s",
              (unsigned long long)i, dv_last_error());
    if (r == DV_OK) {
        up(dev, v, i);
    }
    return r == DV_OK;
}

/* Run one step over all pages; returns a bitmask of resident pages. */
static uint64_t step(dv_device_t *dev, dv_vbar_t *v, uint64_t pages) {
    uint64_t mask = 0;
    for (uint64_t i = 0; i < pages; i++) {
        mask |= (uint64_t)touch(dev, v, i) << i;
    }
    td_check(dev);
    return mask;
}

static void teardown(dv_device_t *dev, dv_vbar_t **v, int n) {
    for (int k = 0; k < n; k++) {
        TD_OK(dv_vbar_destroy(dev, v[k]));
    }
    td_check(dev);
    TD_OK(dv_device_close(dev));
}

Test(policy, larger_model_settles_into_stable_prefix) {
    dv_device_t *dev = td_open(6);
    dv_vbar_t *v = mk(dev, 10);
    uint64_t first = step(dev, v, 10);
    cr_assert_eq(first, 0x3f, "step 1 resident mask %llx",
                 (unsigned long long)first);
    dv_device_stats_t s1 = td_stats(dev);
    for (int k = 0; k < 4; k++) {
        cr_assert_eq(step(dev, v, 10), 0x3f);
    }
    dv_device_stats_t s2 = td_stats(dev);
    cr_assert_eq(s2.pages_populated, s1.pages_populated, "no thrash");
    cr_assert_eq(s2.evictions, 0);
    cr_assert_eq(s2.faults_hit - s1.faults_hit, 4 * 6);
    cr_assert_eq(s2.faults_offloaded - s1.faults_offloaded, 4 * 4);

    /* Activation pressure takes the top page; the watermark then keeps the
     * prefix stable instead of re-faulting it every step. */
    TD_OK(dv_framework_reserve(dev, P));
    cr_assert_eq(td_watermark(dev, v), 5);
    TD_OK(dv_framework_release(dev, P));
    cr_assert_eq(step(dev, v, 10), 0x1f);
    dv_device_stats_t s3 = td_stats(dev);
    cr_assert_eq(step(dev, v, 10), 0x1f);
    cr_assert_eq(td_stats(dev).pages_populated, s3.pages_populated);
    /* prioritize() resets the watermark: the prefix grows back. */
    TD_OK(dv_vbar_prioritize(dev, v));
    cr_assert_eq(step(dev, v, 10), 0x3f);
    teardown(dev, &v, 1);
}

Test(policy, newer_vbar_evicts_older_from_the_top) {
    dv_device_t *dev = td_open(8);
    dv_vbar_t *a = mk(dev, 6);
    cr_assert_eq(step(dev, a, 6), 0x3f);
    dv_vbar_t *b = mk(dev, 6); /* on top */
    cr_assert_eq(step(dev, b, 6), 0x3f);
    cr_assert_eq(td_resident_pages(dev, a), 2);
    cr_assert_eq(td_page_flags(dev, a, 0), DV_PAGE_RESIDENT);
    cr_assert_eq(td_page_flags(dev, a, 1), DV_PAGE_RESIDENT);
    cr_assert_eq(td_page_flags(dev, a, 2), 0);
    cr_assert_eq(td_watermark(dev, a), 2);
    /* A's faults at or above its watermark are offloaded at once. */
    dv_device_stats_t s = td_stats(dev);
    TD_IS(fp(dev, a, 3), DV_OFFLOADED);
    cr_assert_eq(td_stats(dev).evictions, s.evictions);
    /* A prioritized: its watermark resets and it takes B's top pages. */
    TD_OK(dv_vbar_prioritize(dev, a));
    cr_assert_eq(step(dev, a, 6), 0x3f);
    cr_assert_eq(td_resident_pages(dev, b), 2);
    cr_assert_eq(td_watermark(dev, b), 2);
    dv_vbar_t *vs[] = {a, b};
    teardown(dev, vs, 2);
}

Test(policy, lower_priority_fault_never_evicts_higher) {
    dv_device_t *dev = td_open(4);
    dv_vbar_t *a = mk(dev, 4);
    dv_vbar_t *b = mk(dev, 4); /* top */
    cr_assert_eq(step(dev, b, 4), 0xf);
    dv_device_stats_t s = td_stats(dev);
    /* A two-page fault cannot fit without B's pages: OFFLOADED, nothing
     * evicted, nothing pinned. */
    uint64_t g;
    TD_IS(dv_fault(dev, a, 0, 2 * P, &g), DV_OFFLOADED);
    cr_assert_eq(td_stats(dev).evictions, s.evictions);
    cr_assert_eq(td_resident_pages(dev, b), 4);
    cr_assert_eq(td_stats(dev).pinned_bytes, 0);
    /* deprioritize(B) puts it below A: now A may take B's pages. */
    TD_OK(dv_vbar_deprioritize(dev, b));
    TD_OK(dv_fault(dev, a, 0, 2 * P, &g));
    TD_OK(dv_unpin(dev, a, 0, 2 * P, NULL));
    cr_assert_eq(td_resident_pages(dev, b), 2);
    cr_assert_eq(td_watermark(dev, b), 2);
    dv_vbar_t *vs[] = {a, b};
    teardown(dev, vs, 2);
}

Test(policy, fault_evicts_own_higher_pages_but_not_lower) {
    dv_device_t *dev = td_open(4);
    dv_vbar_t *v = mk(dev, 10);
    for (uint64_t i = 6; i < 10; i++) {
        cr_assert(touch(dev, v, i));
    }
    /* Pages 0 and 1 win over 8 and 9 (lower offsets first). */
    cr_assert(touch(dev, v, 0));
    cr_assert(touch(dev, v, 1));
    cr_assert_eq(td_page_flags(dev, v, 9), 0);
    cr_assert_eq(td_page_flags(dev, v, 8), 0);
    cr_assert_eq(td_page_flags(dev, v, 7), DV_PAGE_RESIDENT);
    cr_assert_eq(td_watermark(dev, v), 8);
    /* A range whose fit would need pages below it: offloaded, no eviction.
     * Pages 0,1,6,7 resident; faulting 2..5 (4 new) could only evict
     * nothing above 5 except 6,7 (2 pages). */
    dv_device_stats_t s = td_stats(dev);
    uint64_t g;
    TD_IS(dv_fault(dev, v, 2 * P, 4 * P, &g), DV_OFFLOADED);
    cr_assert_eq(td_stats(dev).evictions, s.evictions);
    cr_assert_eq(td_resident_pages(dev, v), 4);
    teardown(dev, &v, 1);
}

Test(policy, watermark_limit_is_a_floor) {
    dv_device_t *dev = td_open(6);
    dv_vbar_t *a = mk(dev, 6);
    cr_assert_eq(step(dev, a, 6), 0x3f);
    TD_OK(dv_vbar_set_watermark_limit(dev, a, 3 * P - 1)); /* 3 pages */
    dv_vbar_t *b = mk(dev, 6);
    cr_assert_eq(step(dev, b, 6), 0x7); /* only A's pages 3..5 could go */
    cr_assert_eq(td_resident_pages(dev, a), 3);
    uint64_t freed = 99;
    TD_OK(dv_vbar_evict(dev, a, 6 * P, &freed));
    cr_assert_eq(freed, 0, "limit protects pages 0..2 from evict too");
    /* Framework pressure respects the floor too: it takes B's page. */
    TD_OK(dv_framework_reserve(dev, P));
    cr_assert_eq(td_resident_pages(dev, a), 3);
    cr_assert_eq(td_resident_pages(dev, b), 2);
    TD_OK(dv_framework_release(dev, P));
    /* Reset: A is evictable again (B is on top, A lower). */
    TD_OK(dv_device_reset_watermark_limits(dev));
    TD_OK(dv_vbar_prioritize(dev, b));
    cr_assert_eq(step(dev, b, 6), 0x3f);
    cr_assert_eq(td_resident_pages(dev, a), 0);
    dv_vbar_t *vs[] = {a, b};
    teardown(dev, vs, 2);
}

Test(policy, evict_n_bytes_from_the_top) {
    dv_device_t *dev = td_open(0);
    dv_vbar_t *v = mk(dev, 8);
    cr_assert_eq(step(dev, v, 8), 0xff);
    uint64_t freed = 0;
    TD_OK(dv_vbar_evict(dev, v, 2 * P + 1, &freed));
    cr_assert_eq(freed, 3 * P);
    cr_assert_eq(td_resident_pages(dev, v), 5);
    cr_assert_eq(td_page_flags(dev, v, 4), DV_PAGE_RESIDENT);
    cr_assert_eq(td_page_flags(dev, v, 5), 0);
    cr_assert_eq(td_watermark(dev, v), 5);
    td_check(dev);
    TD_OK(dv_vbar_set_watermark(dev, v, 8 * P));
    cr_assert_eq(td_watermark(dev, v), 8);
    TD_OK(dv_vbar_evict(dev, v, 100 * P, &freed));
    cr_assert_eq(freed, 5 * P);
    cr_assert_eq(td_resident_pages(dev, v), 0);
    teardown(dev, &v, 1);
}

Test(policy, generation_changes_exactly_on_repopulation) {
    dv_device_t *dev = td_open(0);
    dv_vbar_t *v = mk(dev, 4);
    uint64_t g1 = 0, g2 = 0, g3 = 0, g4 = 0;
    TD_OK(dv_fault(dev, v, 0, P, &g1));
    cr_assert_neq(g1, 0);
    TD_OK(dv_unpin(dev, v, 0, P, NULL));
    TD_OK(dv_fault(dev, v, P, P, &g2)); /* another page: page 0 unaffected */
    TD_OK(dv_unpin(dev, v, P, P, NULL));
    TD_OK(dv_fault(dev, v, 0, P, &g3));
    cr_assert_eq(g3, g1, "resident page keeps its generation");
    /* A range's generation is the largest under it. */
    TD_OK(dv_fault(dev, v, 0, 2 * P, &g4));
    cr_assert_eq(g4, g2 > g1 ? g2 : g1);
    TD_OK(dv_unpin(dev, v, 0, 2 * P, NULL));
    TD_OK(dv_unpin(dev, v, 0, P, NULL));
    uint64_t freed;
    TD_OK(dv_vbar_evict(dev, v, 4 * P, &freed));
    TD_OK(dv_vbar_prioritize(dev, v));
    TD_OK(dv_fault(dev, v, 0, P, &g4));
    cr_assert_neq(g4, g1, "re-populated page has a new generation");
    cr_assert_gt(g4, g2);
    uint64_t gens[2];
    TD_OK(dv_vbar_generations(dev, v, 0, 2 * P, gens, 2));
    cr_assert_eq(gens[0], g4);
    cr_assert_eq(gens[1], 0, "absent page reports 0");
    TD_OK(dv_unpin(dev, v, 0, P, NULL));
    teardown(dev, &v, 1);
}

Test(policy, pinned_pages_survive_pressure) {
    dv_device_t *dev = td_open(4);
    dv_vbar_t *a = mk(dev, 4);
    uint64_t g;
    TD_OK(dv_fault(dev, a, 0, 4 * P, &g)); /* all pinned */
    dv_vbar_t *b = mk(dev, 4);
    TD_IS(fp(dev, b, 0), DV_OFFLOADED);
    TD_IS(dv_framework_reserve(dev, P), DV_ERROR_OUT_OF_DEVICE_MEMORY);
    uint64_t freed = 1;
    TD_OK(dv_vbar_evict(dev, a, 4 * P, &freed));
    cr_assert_eq(freed, 0);
    cr_assert_eq(td_resident_pages(dev, a), 4);
    for (uint64_t i = 0; i < 4; i++) {
        cr_assert_eq(td_page_flags(dev, a, i), DV_PAGE_RESIDENT | DV_PAGE_PINNED);
    }
    cr_assert_eq(td_stats(dev).pinned_bytes, 4 * P);
    TD_OK(dv_unpin(dev, a, 0, 4 * P, NULL));
    cr_assert_eq(td_stats(dev).pinned_bytes, 0);
    TD_OK(fp(dev, b, 0));
    up(dev, b, 0);
    dv_vbar_t *vs[] = {a, b};
    teardown(dev, vs, 2);
}

Test(policy, unpin_frees_pages_above_lowered_watermark) {
    dv_device_t *dev = td_open(0);
    dv_vbar_t *v = mk(dev, 6);
    cr_assert_eq(step(dev, v, 6), 0x3f);
    TD_OK(fp(dev, v, 5)); /* keep page 5 pinned */
    uint64_t freed;
    TD_OK(dv_vbar_evict(dev, v, 2 * P, &freed)); /* takes 4 and 3 */
    cr_assert_eq(freed, 2 * P);
    cr_assert_eq(td_watermark(dev, v), 3);
    cr_assert_eq(td_page_flags(dev, v, 5), DV_PAGE_RESIDENT | DV_PAGE_PINNED);
    /* Faults above the watermark are offloaded even on a resident page. */
    TD_IS(fp(dev, v, 5), DV_OFFLOADED);
    up(dev, v, 5);
    if (td_page_flags(dev, v, 5) != 0) {
        /* An asynchronous backend's fence may not be done yet at unpin: the
         * page then goes at the next populating fault once it is. */
        TD_OK(dv_stream_synchronize(dev, NULL));
        dv_vbar_t *w = mk(dev, 1);
        cr_assert(touch(dev, w, 0));
        TD_OK(dv_vbar_destroy(dev, w));
    }
    cr_assert_eq(td_page_flags(dev, v, 5), 0, "freed once its work is done");
    cr_assert_eq(td_resident_pages(dev, v), 3);
    teardown(dev, &v, 1);
}

Test(policy, pool_reuses_evicted_handles) {
    td_inject_arm(td_hal(), 0, DV_OK); /* counts only */
    dv_device_options_t o;
    td_options(&o, 0);
    dv_device_t *dev = NULL;
    TD_OK(dv_device_open_hal(td_inject_ops(), &o, &dev));
    dv_vbar_t *v = mk(dev, 6);
    cr_assert_eq(step(dev, v, 6), 0x3f);
    long created = td_inject_state()->live_mem;
    cr_assert_eq(created, 6);
    uint64_t freed;
    TD_OK(dv_vbar_evict(dev, v, 2 * P, &freed));
    cr_assert_eq(td_stats(dev).pool_bytes, 2 * P);
    cr_assert_eq(td_inject_state()->live_mem, 6, "pooled, not released");
    TD_OK(dv_vbar_prioritize(dev, v));
    dv_device_stats_t s = td_stats(dev);
    cr_assert_eq(step(dev, v, 6), 0x3f);
    cr_assert_eq(td_stats(dev).pool_reuses - s.pool_reuses, 2);
    cr_assert_eq(td_stats(dev).pool_bytes, 0);
    cr_assert_eq(td_inject_state()->live_mem, 6, "no new create");
    /* The pool is bounded. */
    TD_OK(dv_vbar_evict(dev, v, 6 * P, &freed));
    cr_assert_eq(td_stats(dev).pool_bytes, 6 * P); /* default 8 pages */
    TD_OK(dv_device_trim_pool(dev));
    cr_assert_eq(td_stats(dev).pool_bytes, 0);
    cr_assert_eq(td_inject_state()->live_mem, 0);
    teardown(dev, &v, 1);
    cr_assert_eq(td_inject_state()->live_res, 0);
}

Test(policy, pool_limit_bounds_and_budget_shrink_releases) {
    dv_device_options_t o;
    td_options(&o, 8);
    o.pool_limit = 2 * P;
    dv_device_t *dev = td_open_opts(&o);
    dv_vbar_t *v = mk(dev, 6);
    cr_assert_eq(step(dev, v, 6), 0x3f);
    uint64_t freed;
    TD_OK(dv_vbar_evict(dev, v, 4 * P, &freed));
    cr_assert_eq(freed, 4 * P);
    cr_assert_eq(td_stats(dev).pool_bytes, 2 * P, "bounded by pool_limit");
    /* Budget 8, used 2 resident + 2 pooled: 5 pages of framework memory
     * fit only by releasing the pool first, before any page. */
    dv_device_stats_t s = td_stats(dev);
    TD_OK(dv_framework_reserve(dev, 5 * P));
    cr_assert_eq(td_stats(dev).pool_bytes, P);
    cr_assert_eq(td_stats(dev).evictions, s.evictions);
    TD_OK(dv_framework_reserve(dev, 2 * P)); /* now pages go */
    cr_assert_eq(td_stats(dev).pool_bytes, 0);
    cr_assert_eq(td_resident_pages(dev, v), 1);
    TD_OK(dv_framework_release(dev, 7 * P));
    TD_IS(dv_framework_release(dev, 1), DV_ERROR_INVALID_ARGUMENT);
    teardown(dev, &v, 1);
}

Test(policy, framework_evicts_lowest_priority_first) {
    dv_device_t *dev = td_open(8);
    dv_vbar_t *a = mk(dev, 4);
    dv_vbar_t *b = mk(dev, 4); /* top */
    cr_assert_eq(step(dev, a, 4), 0xf);
    cr_assert_eq(step(dev, b, 4), 0xf);
    TD_OK(dv_framework_reserve(dev, 3 * P));
    cr_assert_eq(td_resident_pages(dev, a), 1);
    cr_assert_eq(td_resident_pages(dev, b), 4);
    cr_assert_eq(td_stats(dev).framework_bytes, 3 * P);
    /* After a real OOM: evict at least the size asked. */
    uint64_t freed = 0;
    TD_OK(dv_framework_evict(dev, P + 1, &freed));
    cr_assert_eq(freed, 2 * P);
    cr_assert_eq(td_resident_pages(dev, a), 0);
    cr_assert_eq(td_resident_pages(dev, b), 3);
    TD_OK(dv_framework_release(dev, 3 * P));
    dv_vbar_t *vs[] = {a, b};
    teardown(dev, vs, 2);
}

Test(policy, pins_nest) {
    dv_device_t *dev = td_open(0);
    dv_vbar_t *v = mk(dev, 2);
    TD_OK(fp(dev, v, 0));
    TD_OK(fp(dev, v, 0));
    up(dev, v, 0);
    cr_assert_eq(td_page_flags(dev, v, 0), DV_PAGE_RESIDENT | DV_PAGE_PINNED);
    up(dev, v, 0);
    cr_assert_eq(td_page_flags(dev, v, 0), DV_PAGE_RESIDENT);
    TD_IS(dv_unpin(dev, v, 0, P, NULL), DV_ERROR_NOT_PINNED);
    teardown(dev, &v, 1);
}

Test(policy, headroom_changes_at_run_time) {
    dv_device_t *dev = td_open(0);
    dv_vbar_t *v = mk(dev, 6);
    uint64_t h = 1;
    TD_OK(dv_device_get_headroom(dev, &h));
    cr_assert_eq(h, 0);
    /* Leave room for three and a half pages: the fourth fault offloads. */
    uint64_t avail = td_stats(dev).budget;
    cr_assert_gt(avail, 4 * P);
    TD_OK(dv_device_set_headroom(dev, avail - 3 * P - P / 2));
    TD_OK(dv_device_get_headroom(dev, &h));
    cr_assert_eq(h, avail - 3 * P - P / 2);
    cr_assert_eq(step(dev, v, 6), 0x7);
    /* Back to no headroom: the rest fits. */
    TD_OK(dv_device_set_headroom(dev, 0));
    cr_assert_eq(step(dev, v, 6), 0x3f);
    /* A bad value changes nothing. */
    TD_IS(dv_device_set_headroom(dev, (1ull << 60) + 1),
          DV_ERROR_INVALID_ARGUMENT);
    TD_OK(dv_device_get_headroom(dev, &h));
    cr_assert_eq(h, 0);
    TD_IS(dv_device_get_headroom(dev, NULL), DV_ERROR_INVALID_ARGUMENT);
    TD_IS(dv_device_set_headroom(NULL, 0), DV_ERROR_INVALID_ARGUMENT);
    teardown(dev, &v, 1);
}

Test(policy, unpin_never_frees_below_the_watermark_limit) {
    /* The caller set the watermark below the limit while pages were
     * pinned: at unpin the pages above the watermark are freed, but not
     * those under the limit (found by the model-based tester). */
    dv_device_t *dev = td_open(8);
    dv_vbar_t *v = mk(dev, 4);
    uint64_t g;
    TD_OK(dv_fault(dev, v, 0, 4 * P, &g));
    TD_OK(dv_vbar_set_watermark_limit(dev, v, 2 * P));
    TD_OK(dv_vbar_set_watermark(dev, v, 0));
    TD_OK(dv_unpin(dev, v, 0, 4 * P, NULL));
    cr_assert_eq(td_page_flags(dev, v, 0), DV_PAGE_RESIDENT);
    cr_assert_eq(td_page_flags(dev, v, 1), DV_PAGE_RESIDENT);
    cr_assert_eq(td_page_flags(dev, v, 2), 0, "page 2 is above the limit");
    cr_assert_eq(td_page_flags(dev, v, 3), 0);
    td_check(dev);
    teardown(dev, &v, 1);
}
