/*
 * test_graph_inject.c - every HAL call of an allocation-graph scenario
 * (recording under weight pressure, replays, a break with a dropped
 * variant, rogues, retargeting, teardown) fails in turn, once with a driver
 * error and once with out-of-memory. After every public call the
 * invariants hold; at the end nothing leaks (mappings, reservations,
 * physical handles); an injected out-of-memory never comes back as another
 * error, and a failure's message carries the injected op's reason.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdio.h>
#include <string.h>

#include "graph_util.h"
#include "inject.h"

#define P TD_PAGE
#define M TG_MIB

static dv_result_t injected;
static dv_device_t *dev;
static int fired_before;

static dv_result_t expect(const char *what, dv_result_t r) {
    cr_assert_neq(r, DV_ERROR_INVARIANT, "%s: %s", what, dv_last_error());
    const td_inject_state_t *s = td_inject_state();
    if (r < 0 && s->fired && !fired_before) {
        char want[64];
        snprintf(want, sizeof(want), "injected failure of %s", s->op);
        cr_assert(strstr(dv_last_error(), want) != NULL,
                  "%s -> %s: message '%s' lacks '%s'", what, dv_result_name(r),
                  dv_last_error(), want);
    }
    fired_before = s->fired;
    if (injected == DV_ERROR_OUT_OF_DEVICE_MEMORY) {
        cr_assert(r != DV_ERROR_BACKEND && r != DV_ERROR_BUSY,
                  "%s: injected OOM reported as %s (%s)", what,
                  dv_result_name(r), dv_last_error());
    }
    if (dev) {
        td_check(dev);
    }
    return r;
}

#define CALL(expr)                                                             \
    (fired_before = td_inject_state()->fired, expect(#expr, (expr)))

/* One pass of the scope: allocations of `sizes` (0 ends), each freed after
 * the next one, the last left alive when `rogue`. */
static void pass(dv_graph_t *g, const uint64_t *sizes, int rogue,
                 uint64_t *kept) {
    uint64_t prev = 0;
    dv_graph_stats_t st;
    TD_OK(dv_graph_get_stats(dev, g, &st));
    void *stream = st.stream; /* a failed retarget leaves the old one */
    if (CALL(dv_graph_push(dev, g, "block")) != DV_OK) {
        return;
    }
    for (int i = 0; sizes[i]; i++) {
        uint64_t p = 0;
        dv_result_t r = CALL(dv_graph_alloc(dev, g, sizes[i], stream, &p));
        cr_assert(r == DV_OK || r < 0, "alloc: %s %s", dv_result_name(r),
                  dv_last_error());
        if (prev) {
            CALL(dv_graph_free(dev, g, prev, stream));
        }
        prev = r == DV_OK ? p : 0;
    }
    if (prev && !rogue) {
        CALL(dv_graph_free(dev, g, prev, stream));
        prev = 0;
    }
    int ch;
    CALL(dv_graph_pop(dev, g, &ch));
    if (kept) {
        *kept = prev;
    } else if (prev) {
        CALL(dv_graph_free(dev, g, prev, stream));
    }
}

static void scenario(void) {
    dv_device_options_t o;
    td_options(&o, 10);
    dev = NULL;
    dv_device_t *d = NULL;
    if (CALL(dv_device_open_hal(td_inject_ops(), &o, &d)) != DV_OK) {
        return;
    }
    dev = d;
    dv_vbar_t *v = NULL;
    if (CALL(dv_vbar_create(dev, 6 * P, &v)) == DV_OK) {
        for (uint64_t i = 0; i < 6; i++) {
            if (CALL(dv_fault(dev, v, i * P, P, NULL)) == DV_OK) {
                CALL(dv_unpin(dev, v, i * P, P, NULL));
            }
        }
    }
    void *s = NULL;
    if (CALL(dv_stream_create(dev, &s)) != DV_OK) {
        s = NULL;
    }
    dv_graph_options_t go;
    dv_graph_options_init(&go);
    go.stream = s;
    go.max_variants = 1; /* the break below drops the first variant */
    dv_graph_t *g = NULL;
    if (CALL(dv_graph_create(dev, &go, &g)) == DV_OK) {
        static const uint64_t a[] = {3 * M, 5 * M, M, 2 * M, 0};
        static const uint64_t b[] = {3 * M, 4 * M, 7000, 0};
        uint64_t kept = 0;
        pass(g, a, 0, NULL); /* record, evicting weights */
        pass(g, a, 1, &kept); /* replay, with a rogue */
        pass(g, b, 0, NULL); /* break: a new variant */
        if (kept) {
            CALL(dv_graph_free(dev, g, kept, s));
        }
        pass(g, a, 0, NULL); /* break back: the dropped one is gone */
        CALL(dv_graph_set_stream(dev, g, NULL));
        pass(g, b, 0, NULL);
        dv_graph_stats_t st;
        CALL(dv_graph_get_stats(dev, g, &st));
        for (int t = 0; t < 3 && CALL(dv_graph_destroy(dev, g)) != DV_OK; t++) {
        }
    }
    for (int t = 0; v && t < 2 && CALL(dv_vbar_destroy(dev, v)) != DV_OK; t++) {
    }
    for (int t = 0; s && t < 2 && CALL(dv_stream_destroy(dev, s)) != DV_OK;
         t++) {
    }
    dv_device_stats_t st;
    if (CALL(dv_device_get_stats(dev, &st)) != DV_OK) {
        CALL(dv_device_get_stats(dev, &st));
    }
    cr_assert_eq(st.graph_bytes, 0, "graph pages left after teardown retries");
    cr_assert_eq(st.vbar_count, 0);
    TD_OK(dv_device_close(dev));
    dev = NULL;
}

static void sweep(dv_result_t err) {
    injected = err;
    long n;
    for (n = 1; n < 20000; n++) {
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
    cr_assert_gt(n, 40, "the scenario made only %ld HAL calls", n);
    cr_log_info("%s: %ld calls failed in turn", dv_result_name(err), n - 1);
}

Test(graph_inject, every_call_fails_with_a_driver_error) {
    sweep(DV_ERROR_BACKEND);
}

Test(graph_inject, every_allocating_call_fails_with_oom) {
    sweep(DV_ERROR_OUT_OF_DEVICE_MEMORY);
}

Test(graph_inject, oom_on_a_graph_page_evicts_and_retries) {
    /* The budget says a page fits, the backend says no: the graph evicts a
     * weight page and retries. */
    td_inject_arm(td_hal(), 0, DV_OK);
    dv_device_options_t o;
    td_options(&o, 0);
    o.pool_limit = 0;
    dev = NULL;
    dv_device_t *d = NULL;
    TD_OK(dv_device_open_hal(td_inject_ops(), &o, &d));
    dv_vbar_t *v = NULL;
    TD_OK(dv_vbar_create(d, 2 * P, &v));
    TD_OK(dv_fault(d, v, 0, 2 * P, NULL));
    TD_OK(dv_unpin(d, v, 0, 2 * P, NULL));
    dv_graph_t *g = tg_graph(d, NULL, 0, 0);
    TD_OK(dv_graph_push(d, g, "s"));
    td_inject_fail_next("create", DV_ERROR_OUT_OF_DEVICE_MEMORY);
    uint64_t p = tg_alloc(d, g, M);
    cr_assert(td_inject_state()->fired);
    cr_assert_eq(td_stats(d).oom_retries, 1);
    cr_assert_eq(td_resident_pages(d, v), 1, "a weight page made room");
    tg_free(d, g, p, M);
    tg_pop(d, g);
    TD_OK(dv_graph_destroy(d, g));
    TD_OK(dv_vbar_destroy(d, v));
    TD_OK(dv_device_close(d));
}
