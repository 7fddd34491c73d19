/*
 * test_inject.c - fail each HAL call in turn, with out-of-memory and with a
 * generic driver error, under one scenario that exercises faults, eviction,
 * the pool, framework pressure and teardown. After every public call the
 * invariants must hold; at the end nothing may leak; and an injected
 * out-of-memory must never come back as another error.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdio.h>
#include <string.h>

#include "inject.h"
#include "testdev.h"

#define P TD_PAGE

static dv_result_t injected;
static dv_device_t *dev;

/* Whether the injection had fired before the public call under test, to
 * tell whether it fired inside it. */
static int fired_before;

static dv_result_t expect(const char *what, dv_result_t r) {
    cr_assert_neq(r, DV_ERROR_INVARIANT, "%s: %s", what, dv_last_error());
    const td_inject_state_t *s = td_inject_state();
    if (r < 0 && s->fired && !fired_before) {
        /* The failure this call reports is the injected one: its message
         * must carry that op's own reason, not a generic or stale one. */
        char want[64];
        snprintf(want, sizeof(want), "injected failure of %s", s->op);
        cr_assert(strstr(dv_last_error(), want) != NULL,
                  "%s -> %s: message '%s' lacks '%s'", what, dv_result_name(r),
                  dv_last_error(), want);
    }
    fired_before = s->fired;
    if (injected == DV_ERROR_OUT_OF_DEVICE_MEMORY) {
        cr_assert_neq(r, DV_ERROR_BACKEND,
                      "%s: injected OOM reported as %s (%s)", what,
                      dv_result_name(r), dv_last_error());
    }
    if (dev) {
        td_check(dev);
    }
    return r;
}

#define CALL(expr) (fired_before = td_inject_state()->fired, expect(#expr, (expr)))

static void scenario(void) {
    dv_result_t r_;
    dv_device_options_t o;
    td_options(&o, 8);
    dev = NULL;
    dv_device_t *d = NULL;
    if (CALL(dv_device_open_hal(td_inject_ops(), &o, &d)) != DV_OK) {
        return;
    }
    dev = d;
    dv_vbar_t *a = NULL, *b = NULL;
    CALL(dv_vbar_create(dev, 6 * P, &a));
    CALL(dv_vbar_create(dev, 4 * P, &b));
    void *stream = NULL;
    if (CALL(dv_stream_create(dev, &stream)) != DV_OK) {
        stream = NULL;
    }
    uint64_t g, freed;
    for (int s = 0; a && s < 2; s++) {
        for (uint64_t i = 0; i < 6; i++) {
            r_ = CALL(dv_fault(dev, a, i * P, P, &g));
            if (injected == DV_ERROR_OUT_OF_DEVICE_MEMORY) {
                cr_assert(r_ == DV_OK || r_ == DV_OFFLOADED, "fault: %s",
                          dv_last_error());
            }
            if (r_ == DV_OK) {
                CALL(dv_unpin(dev, a, i * P, P, stream));
            }
        }
    }
    for (uint64_t i = 0; b && i < 4; i++) {
        if (CALL(dv_fault(dev, b, i * P, P, &g)) == DV_OK) {
            CALL(dv_unpin(dev, b, i * P, P, NULL));
        }
    }
    if (a) {
        CALL(dv_vbar_evict(dev, a, 2 * P, &freed));
        CALL(dv_vbar_prioritize(dev, a));
        if (CALL(dv_fault(dev, a, 0, 2 * P, &g)) == DV_OK) {
            CALL(dv_unpin(dev, a, 0, 2 * P, stream));
        }
    }
    if (CALL(dv_framework_reserve(dev, 2 * P)) == DV_OK) {
        CALL(dv_framework_release(dev, 2 * P));
    }
    CALL(dv_framework_evict(dev, P, &freed));
    CALL(dv_device_trim_pool(dev));

    /* Teardown: a failed call can be retried (the injection fires once). */
    for (int t = 0; a && t < 2 && CALL(dv_vbar_destroy(dev, a)) != DV_OK; t++) {
    }
    for (int t = 0; b && t < 2 && CALL(dv_vbar_destroy(dev, b)) != DV_OK; t++) {
    }
    for (int t = 0; stream && t < 2 && CALL(dv_stream_destroy(dev, stream)) != DV_OK;
         t++) {
    }
    dv_device_stats_t st;
    if (CALL(dv_device_get_stats(dev, &st)) != DV_OK) {
        CALL(dv_device_get_stats(dev, &st)); /* mem_info failed once */
    }
    cr_assert_eq(st.vbar_count, 0, "VBARs left after teardown retries");
    TD_OK(dv_device_close(dev));
    dev = NULL;
}

static void sweep(dv_result_t err) {
    injected = err;
    long n;
    for (n = 1; n < 10000; n++) {
        td_inject_arm(td_hal(), n, err);
        scenario();
        const td_inject_state_t *s = td_inject_state();
        cr_assert_eq(s->live_maps, 0, "call %ld (%s): %ld mappings leaked", n,
                     s->op ? s->op : "-", s->live_maps);
        cr_assert_eq(s->live_res, 0, "call %ld (%s): %ld reservations leaked",
                     n, s->op ? s->op : "-", s->live_res);
        cr_assert_eq(s->live_mem, 0, "call %ld (%s): %ld handles leaked", n,
                     s->op ? s->op : "-", s->live_mem);
        if (!s->fired) {
            break;
        }
    }
    cr_assert_gt(n, 20, "the scenario made only %ld HAL calls", n);
    cr_log_info("%s: %ld calls failed in turn", dv_result_name(err), n - 1);
}

Test(inject, every_call_fails_with_a_driver_error) { sweep(DV_ERROR_BACKEND); }

Test(inject, every_allocating_call_fails_with_oom) {
    sweep(DV_ERROR_OUT_OF_DEVICE_MEMORY);
}

Test(inject, oom_on_create_evicts_and_retries) {
    /* The budget says a page fits but the backend says no (another process
     * took the memory): the fault evicts one of its own lower-priority pages
     * and retries, and succeeds. */
    td_inject_arm(td_hal(), 0, DV_OK);
    dv_device_options_t o;
    td_options(&o, 0);
    dv_device_t *d = NULL;
    TD_OK(dv_device_open_hal(td_inject_ops(), &o, &d));
    dv_vbar_t *v = NULL;
    TD_OK(dv_vbar_create(d, 4 * P, &v));
    uint64_t g;
    TD_OK(dv_fault(d, v, 3 * P, P, &g));
    TD_OK(dv_unpin(d, v, 3 * P, P, NULL));
    TD_OK(dv_device_trim_pool(d));
    long calls = td_inject_state()->calls;
    /* Next create fails with OOM: counted calls are allocating ones only. */
    td_inject_arm(td_hal(), 1, DV_ERROR_OUT_OF_DEVICE_MEMORY);
    (void)calls;
    TD_OK(dv_fault(d, v, 0, P, &g));
    cr_assert(td_inject_state()->fired);
    cr_assert_eq(td_stats(d).oom_retries, 1);
    cr_assert_eq(td_resident_pages(d, v), 1, "page 3 was given to page 0");
    TD_OK(dv_unpin(d, v, 0, P, NULL));
    TD_OK(dv_vbar_destroy(d, v));
    TD_OK(dv_device_close(d));
}

Test(inject, a_failing_mem_info_at_open_fails_the_open) {
    td_inject_arm(td_hal(), 0, DV_OK);
    td_inject_fail_next("mem_info", DV_ERROR_BACKEND);
    dv_device_options_t o;
    td_options(&o, 8);
    dv_device_t *d = NULL;
    TD_IS(dv_device_open_hal(td_inject_ops(), &o, &d), DV_ERROR_BACKEND);
    cr_assert(strstr(dv_last_error(), "mem_info failed") != NULL, "%s",
              dv_last_error());
    cr_assert_null(d);
    cr_assert_eq(td_inject_state()->live_res, 0);
}

Test(inject, a_map_failure_after_create_is_reported_as_map) {
    td_inject_arm(td_hal(), 0, DV_OK);
    dv_device_options_t o;
    td_options(&o, 0);
    o.pool_limit = 0; /* every population creates a fresh handle */
    dv_device_t *d = NULL;
    TD_OK(dv_device_open_hal(td_inject_ops(), &o, &d));
    dv_vbar_t *v = NULL;
    TD_OK(dv_vbar_create(d, 2 * P, &v));
    td_inject_fail_next("map", DV_ERROR_BACKEND);
    uint64_t g;
    TD_IS(dv_fault(d, v, 0, P, &g), DV_ERROR_BACKEND);
    cr_assert(strstr(dv_last_error(), "map failed") != NULL, "%s",
              dv_last_error());
    cr_assert(strstr(dv_last_error(), "create failed") == NULL, "%s",
              dv_last_error());
    td_check(d);
    TD_OK(dv_vbar_destroy(d, v));
    TD_OK(dv_device_close(d));
    cr_assert_eq(td_inject_state()->live_mem, 0, "the created handle leaked");
}
