/*
 * test_recovery.c - watermark recovery (core/recovery.c) on the backend
 * under test: a squeezed model becomes resident again once memory is free,
 * and never thrashes under pressure that keeps coming back.
 * SPDX-License-Identifier: Apache-2.0
 *
 * A "pass" runs a model once: fault and unpin each of its pages in order,
 * checking the invariants after the pass. Pressure comes from
 * dv_vbar_evict (a partial unload) or dv_framework_reserve (activations).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>

#include "testdev.h"

#define P TD_PAGE

static dv_vbar_t *mk(dv_device_t *dev, uint64_t pages) {
    dv_vbar_t *v = NULL;
    TD_OK(dv_vbar_create(dev, pages * P, &v));
    return v;
}

/* Fault and unpin pages [from, to) of v; returns how many were resident. */
static uint64_t run(dv_device_t *dev, dv_vbar_t *v, uint64_t from,
                    uint64_t to) {
    uint64_t ok = 0;
    for (uint64_t i = from; i < to; i++) {
        uint64_t g;
        dv_result_t r = dv_fault(dev, v, i * P, P, &g);
        cr_assert(r == DV_OK || r == DV_OFFLOADED, "fault %llu: %s",
                  (unsigned long long)i, dv_last_error());
        if (r == DV_OK) {
            TD_OK(dv_unpin(dev, v, i * P, P, NULL));
            ok++;
        }
    }
    td_check(dev);
    return ok;
}

static uint64_t populated(dv_device_t *dev) {
    return td_stats(dev).pages_populated;
}

static dv_device_t *open_recovery(uint64_t limit_pages, uint32_t mode) {
    dv_device_options_t o;
    td_options(&o, limit_pages);
    o.watermark_recovery = mode;
    return td_open_opts(&o);
}

Test(recovery, a_partial_unload_recovers_within_two_passes) {
    dv_device_t *dev = open_recovery(16, DV_RECOVERY_ON);
    dv_vbar_t *v = mk(dev, 10);
    cr_assert_eq(run(dev, v, 0, 10), 10);
    uint64_t freed = 0;
    TD_OK(dv_vbar_evict(dev, v, 5 * P, &freed)); /* the caller's unload */
    cr_assert_eq(freed, 5 * P);
    cr_assert_eq(td_watermark(dev, v), 5);
    /* The pass right after the unload runs squeezed: the memory was freed
     * to be used by someone else. */
    cr_assert_eq(run(dev, v, 0, 10), 5);
    /* Nobody took it: the next pass brings the model back... */
    cr_assert_eq(run(dev, v, 0, 10), 10);
    cr_assert_eq(td_watermark(dev, v), 10);
    cr_assert_geq(td_stats(dev).watermark_rises, 1);
    /* ...and it stays resident without copying again. */
    uint64_t before = populated(dev);
    for (int k = 0; k < 10; k++) {
        cr_assert_eq(run(dev, v, 0, 10), 10);
    }
    cr_assert_eq(populated(dev), before, "re-populated while resident");
    TD_OK(dv_vbar_destroy(dev, v));
    TD_OK(dv_device_close(dev));
}

Test(recovery, framework_pressure_gone_for_good_recovers) {
    dv_device_t *dev = open_recovery(12, DV_RECOVERY_ON);
    dv_vbar_t *v = mk(dev, 10);
    cr_assert_eq(run(dev, v, 0, 10), 10);
    TD_OK(dv_framework_reserve(dev, 6 * P)); /* evicts the top 4 */
    cr_assert_eq(td_watermark(dev, v), 6);
    TD_OK(dv_framework_release(dev, 6 * P));
    int passes = 0;
    while (run(dev, v, 0, 10) < 10) {
        cr_assert_lt(++passes, 5, "not back after %d passes", passes);
    }
    /* The framework peaked at 6 pages during the squeezed pass; with it
     * gone, one more pass saw the peak drop out of the window. */
    cr_assert_leq(passes, 3);
    TD_OK(dv_vbar_destroy(dev, v));
    TD_OK(dv_device_close(dev));
}

Test(recovery, pressure_that_keeps_coming_never_thrashes) {
    /* Every pass, activations of 6 pages come and go between the model's
     * halves: exactly the memory the model's top would need. */
    dv_device_t *dev = open_recovery(12, DV_RECOVERY_ON);
    dv_vbar_t *v = mk(dev, 10);
    enum { PASSES = 60 };
    uint64_t pops[PASSES];
    for (int k = 0; k < PASSES; k++) {
        uint64_t before = populated(dev);
        run(dev, v, 0, 5);
        TD_OK(dv_framework_reserve(dev, 6 * P));
        run(dev, v, 5, 10);
        TD_OK(dv_framework_release(dev, 6 * P));
        pops[k] = populated(dev) - before;
    }
    uint64_t total = 0;
    for (int k = 2; k < PASSES; k++) {
        total += pops[k];
        /* A page evicted and re-populated in alternate passes is thrash. */
        cr_assert(!(k >= 4 && pops[k] && pops[k - 2]),
                  "populations in passes %d and %d", k - 2, k);
    }
    cr_assert_leq(total, 8, "%llu pages re-populated over %d passes",
                  (unsigned long long)total, PASSES);
    TD_OK(dv_vbar_destroy(dev, v));
    TD_OK(dv_device_close(dev));
}

Test(recovery, activations_after_each_pass_are_expected_back) {
    /* The activations peak after the weights were faulted (the last
     * layers' outputs): at the next pass's faults the memory looks free,
     * but the framework's peak in the passes before says it is coming back.
     * Rising into it would cost a copy every few passes. */
    dv_device_t *dev = open_recovery(12, DV_RECOVERY_ON);
    dv_vbar_t *v = mk(dev, 10);
    enum { PASSES = 40 };
    uint64_t total = 0;
    for (int k = 0; k < PASSES; k++) {
        uint64_t before = populated(dev);
        run(dev, v, 0, 10);
        TD_OK(dv_framework_reserve(dev, 6 * P));
        TD_OK(dv_framework_release(dev, 6 * P));
        if (k > 0) {
            total += populated(dev) - before;
        }
    }
    cr_assert_eq(total, 0, "%llu pages copied again after the first pass",
                 (unsigned long long)total);
    cr_assert_eq(td_resident_pages(dev, v), 6);
    TD_OK(dv_vbar_destroy(dev, v));
    TD_OK(dv_device_close(dev));
}

Test(recovery, two_models_taking_turns_stay_stable_in_each_turn) {
    dv_device_t *dev = open_recovery(12, DV_RECOVERY_ON);
    dv_vbar_t *a = mk(dev, 8), *b = mk(dev, 8);
    for (int round = 0; round < 3; round++) {
        dv_vbar_t *m[2] = {a, b};
        for (int t = 0; t < 2; t++) {
            TD_OK(dv_vbar_prioritize(dev, m[t]));
            run(dev, m[t], 0, 8); /* the switch: copies are expected */
            run(dev, m[t], 0, 8);
            uint64_t before = populated(dev);
            for (int k = 0; k < 4; k++) {
                cr_assert_eq(run(dev, m[t], 0, 8), 8, "round %d turn %d",
                             round, t);
            }
            cr_assert_eq(populated(dev), before, "thrash within a turn");
        }
    }
    TD_OK(dv_vbar_destroy(dev, a));
    TD_OK(dv_vbar_destroy(dev, b));
    TD_OK(dv_device_close(dev));
}

Test(recovery, an_explicit_watermark_is_kept) {
    dv_device_t *dev = open_recovery(16, DV_RECOVERY_ON);
    dv_vbar_t *v = mk(dev, 10);
    TD_OK(dv_vbar_set_watermark(dev, v, 3 * P));
    for (int k = 0; k < 6; k++) {
        cr_assert_eq(run(dev, v, 0, 10), 3, "pass %d", k);
    }
    cr_assert_eq(td_watermark(dev, v), 3);
    /* prioritize hands the watermark back to the policy. */
    TD_OK(dv_vbar_prioritize(dev, v));
    cr_assert_eq(run(dev, v, 0, 10), 10);
    /* A watermark limit is a floor for eviction and stays one. */
    TD_OK(dv_vbar_set_watermark_limit(dev, v, 4 * P));
    uint64_t freed = 0;
    TD_OK(dv_vbar_evict(dev, v, 10 * P, &freed));
    cr_assert_eq(freed, 6 * P);
    cr_assert_eq(td_resident_pages(dev, v), 4);
    TD_OK(dv_vbar_destroy(dev, v));
    TD_OK(dv_device_close(dev));
}

Test(recovery, off_keeps_the_watermark_sticky) {
    dv_device_t *dev = open_recovery(16, DV_RECOVERY_OFF);
    dv_vbar_t *v = mk(dev, 10);
    run(dev, v, 0, 10);
    TD_OK(dv_vbar_evict(dev, v, 5 * P, NULL));
    for (int k = 0; k < 6; k++) {
        cr_assert_eq(run(dev, v, 0, 10), 5, "pass %d", k);
    }
    cr_assert_eq(td_stats(dev).watermark_rises, 0);
    TD_OK(dv_vbar_destroy(dev, v));
    TD_OK(dv_device_close(dev));
    /* The environment turns the default off too. */
    setenv("DYNVRAM_WATERMARK_RECOVERY", "0", 1);
    dev = open_recovery(16, DV_RECOVERY_DEFAULT);
    v = mk(dev, 10);
    run(dev, v, 0, 10);
    TD_OK(dv_vbar_evict(dev, v, 5 * P, NULL));
    for (int k = 0; k < 4; k++) {
        cr_assert_eq(run(dev, v, 0, 10), 5, "pass %d (env off)", k);
    }
    unsetenv("DYNVRAM_WATERMARK_RECOVERY");
    TD_OK(dv_vbar_destroy(dev, v));
    TD_OK(dv_device_close(dev));
    dv_device_options_t o;
    td_options(&o, 16);
    o.watermark_recovery = 7;
    dv_device_t *bad = NULL;
    TD_IS(dv_device_open(&o, &bad), DV_ERROR_INVALID_ARGUMENT);
}

Test(recovery, a_higher_priority_model_takes_the_room_back_without_churn) {
    /* After each pass, a (the model in use, prioritized) gives 4 pages back
     * (a partial unload); b recovers into that room, and a's next pass
     * takes it back as priorities say. Without backoff b would come back
     * every other pass; with it, about log2(passes) times. */
    dv_device_t *dev = open_recovery(12, DV_RECOVERY_ON);
    dv_vbar_t *b = mk(dev, 8);
    dv_vbar_t *a = mk(dev, 8);
    run(dev, b, 0, 8);
    enum { PASSES = 100 };
    int rising_passes = 0;
    for (int k = 0; k < PASSES; k++) {
        TD_OK(dv_vbar_prioritize(dev, a));
        cr_assert_eq(run(dev, a, 0, 8), 8);
        TD_OK(dv_vbar_evict(dev, a, 4 * P, NULL));
        uint64_t rises = td_stats(dev).watermark_rises;
        run(dev, b, 0, 8);
        rising_passes += td_stats(dev).watermark_rises != rises;
    }
    cr_assert_geq(rising_passes, 2, "b never recovered");
    cr_assert_leq(rising_passes, 10, "b rose in %d of %d passes: churn",
                  rising_passes, PASSES);
    TD_OK(dv_vbar_destroy(dev, a));
    TD_OK(dv_vbar_destroy(dev, b));
    TD_OK(dv_device_close(dev));
}
