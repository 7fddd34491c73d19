/*
 * test_stream_inject.c - every HAL call of a streaming scenario fails in
 * turn (tests/support/inject.h), once with a driver error and once with
 * out-of-memory: creation (copy stream, ring), steps with prefetch, slot
 * reuse and refills, framework pressure in the middle of a step, and
 * teardown. After every public call the invariants hold; every acquire
 * that succeeds hands out the right bytes; an injected out-of-memory never
 * comes back as another error; at the end nothing leaks (mappings,
 * reservations, handles, streams, fences).
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dynvram_stream.h"
#include "inject.h"
#include "testdev.h"

#define P TD_PAGE
#define N 6

static dv_result_t injected;
static dv_device_t *dev;
static int fired_before;
static unsigned char *src;
static unsigned char *readback;
static dv_schedule_range_t rg[N + 1]; /* N ranges, then range 0 again */

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
        cr_assert_neq(r, DV_ERROR_BACKEND, "%s: injected OOM reported as %s (%s)",
                      what, dv_result_name(r), dv_last_error());
    }
    if (dev) {
        td_check(dev);
    }
    return r;
}

#define CALL(expr)                                                             \
    (fired_before = td_inject_state()->fired, expect(#expr, (expr)))

/* A failed call can be retried: the injection fires once. */
#define RETRY(expr)                                                            \
    do {                                                                       \
        for (int t_ = 0; t_ < 3 && CALL(expr) != DV_OK; t_++) {                \
        }                                                                      \
    } while (0)

static void use(dv_schedule_t *s, uint64_t i, void *stream) {
    uint64_t addr = 0;
    dv_result_t r = CALL(dv_schedule_acquire(dev, s, i, stream, &addr));
    if (r != DV_OK) {
        return;
    }
    if (dv_copy_d2h(dev, readback, addr, P, stream) == DV_OK &&
        (!stream || dv_stream_synchronize(dev, stream) == DV_OK)) {
        cr_assert_eq(memcmp(readback, rg[i].src, P), 0,
                     "use %llu: an acquire that succeeded handed out bytes "
                     "that are not the range's (injected %s at call %ld)",
                     (unsigned long long)i,
                     td_inject_state()->op ? td_inject_state()->op : "-",
                     td_inject_state()->calls);
    }
    RETRY(dv_schedule_release(dev, s, i, stream));
}

static void scenario(void) {
    dv_device_options_t o;
    td_options(&o, 6);
    dev = NULL;
    dv_device_t *d = NULL;
    if (CALL(dv_device_open_hal(td_inject_ops(), &o, &d)) != DV_OK) {
        return;
    }
    dev = d;
    /* A lower-priority model with pages to take. */
    dv_vbar_t *low = NULL, *v = NULL;
    uint64_t g;
    CALL(dv_vbar_create(dev, 4 * P, &low));
    for (uint64_t i = 0; low && i < 3; i++) {
        if (CALL(dv_fault(dev, low, i * P, P, &g)) == DV_OK) {
            CALL(dv_unpin(dev, low, i * P, P, NULL));
        }
    }
    CALL(dv_vbar_create(dev, N * P, &v));
    void *stream = NULL;
    if (CALL(dv_stream_create(dev, &stream)) != DV_OK) {
        stream = NULL;
    }
    memset(rg, 0, sizeof(rg));
    for (uint64_t i = 0; i < N; i++) {
        rg[i].offset = i * P;
        rg[i].size = P;
        rg[i].src = src + i * P;
    }
    rg[N] = rg[0]; /* a tied range */
    dv_schedule_t *s = NULL;
    if (v && CALL(dv_schedule_create(dev, v, rg, N + 1, NULL, &s)) != DV_OK) {
        s = NULL;
    }
    for (int step = 0; s && step < 3; step++) {
        for (uint64_t i = 0; i <= N; i++) {
            use(s, i, stream);
            if (step == 1 && i == 2 &&
                CALL(dv_framework_reserve(dev, 2 * P)) == DV_OK) {
                use(s, 4, stream); /* skips ahead under pressure */
                CALL(dv_framework_release(dev, 2 * P));
            }
        }
    }
    if (s) {
        RETRY(dv_schedule_destroy(dev, s));
    }
    if (v) {
        RETRY(dv_vbar_destroy(dev, v));
    }
    if (low) {
        RETRY(dv_vbar_destroy(dev, low));
    }
    if (stream) {
        RETRY(dv_stream_destroy(dev, stream));
    }
    dv_device_stats_t st;
    if (CALL(dv_device_get_stats(dev, &st)) != DV_OK) {
        CALL(dv_device_get_stats(dev, &st));
    }
    cr_assert_eq(st.vbar_count, 0, "VBARs left after teardown retries");
    cr_assert_eq(st.ring_bytes, 0, "ring left after teardown retries");
    TD_OK(dv_device_close(dev));
    dev = NULL;
}

static void sweep(dv_result_t err) {
    injected = err;
    src = malloc(N * P);
    readback = malloc(P);
    cr_assert(src && readback);
    for (uint64_t k = 0; k < N * P; k++) {
        src[k] = (unsigned char)(k * 131 + k / P * 7 + 1);
    }
    long n;
    for (n = 1; n < 20000; n++) {
        td_inject_arm(td_hal(), n, err);
        scenario();
        const td_inject_state_t *s = td_inject_state();
        const char *op = s->op ? s->op : "-";
        cr_assert_eq(s->live_maps, 0, "call %ld (%s): %ld mappings leaked", n,
                     op, s->live_maps);
        cr_assert_eq(s->live_res, 0, "call %ld (%s): %ld reservations leaked",
                     n, op, s->live_res);
        cr_assert_eq(s->live_mem, 0, "call %ld (%s): %ld handles leaked", n,
                     op, s->live_mem);
        cr_assert_eq(s->live_streams, 0, "call %ld (%s): %ld streams leaked",
                     n, op, s->live_streams);
        cr_assert_eq(s->live_fences, 0, "call %ld (%s): %ld fences leaked",
                     n, op, s->live_fences);
        if (!s->fired) {
            break;
        }
    }
    long least = err == DV_ERROR_OUT_OF_DEVICE_MEMORY ? 40 : 120;
    cr_assert_gt(n, least, "the scenario made only %ld HAL calls", n);
    cr_log_info("%s: %ld calls failed in turn", dv_result_name(err), n - 1);
    free(src);
    free(readback);
}

Test(stream_inject, every_call_fails_with_a_driver_error) {
    sweep(DV_ERROR_BACKEND);
}

Test(stream_inject, every_allocating_call_fails_with_oom) {
    sweep(DV_ERROR_OUT_OF_DEVICE_MEMORY);
}
