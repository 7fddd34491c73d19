/*
 * test_badinput.c - bad input gets a clear error code and message and
 * leaves state untouched.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <string.h>

#include "testdev.h"

#define P TD_PAGE

/* Snapshot of everything observable about one VBAR and its device. */
typedef struct snap {
    dv_device_stats_t st;
    dv_vbar_info_t info;
    uint8_t flags[8];
} snap_t;

static snap_t take(dv_device_t *dev, dv_vbar_t *v) {
    snap_t s;
    memset(&s, 0, sizeof(s));
    TD_OK(dv_device_get_stats(dev, &s.st));
    TD_OK(dv_vbar_get_info(dev, v, &s.info));
    uint64_t n = s.info.page_count < 8 ? s.info.page_count : 8;
    TD_OK(dv_vbar_residency(dev, v, 0, n, s.flags));
    return s;
}

static void same(const snap_t *a, const snap_t *b) {
    cr_assert_eq(memcmp(&a->info, &b->info, sizeof(a->info)), 0, "VBAR changed");
    cr_assert_eq(memcmp(a->flags, b->flags, sizeof(a->flags)), 0, "pages changed");
    cr_assert_eq(a->st.resident_bytes, b->st.resident_bytes);
    cr_assert_eq(a->st.pinned_bytes, b->st.pinned_bytes);
    cr_assert_eq(a->st.evictions, b->st.evictions);
    cr_assert_eq(a->st.pages_populated, b->st.pages_populated);
}

/* The call fails with `want`, says something, and changes nothing. */
#define BAD(dev, v, call, want)                                                \
    do {                                                                       \
        snap_t before_ = take(dev, v);                                         \
        TD_IS(call, want);                                                     \
        cr_assert_neq(strlen(dv_last_error()), 0, "no message for %s", #call); \
        cr_assert(strstr(dv_last_error(), dv_result_name(want)) != NULL,       \
                  "message '%s' lacks the code", dv_last_error());             \
        snap_t after_ = take(dev, v);                                          \
        same(&before_, &after_);                                               \
        td_check(dev);                                                         \
    } while (0)

Test(badinput, null_and_dead_handles) {
    dv_device_t *dev = td_open(0);
    dv_vbar_t *v = NULL;
    TD_OK(dv_vbar_create(dev, 8 * P, &v));
    uint64_t g;
    TD_IS(dv_fault(NULL, v, 0, P, &g), DV_ERROR_INVALID_ARGUMENT);
    BAD(dev, v, dv_fault(dev, NULL, 0, P, &g), DV_ERROR_INVALID_ARGUMENT);
    BAD(dev, v, dv_unpin(dev, NULL, 0, P, NULL), DV_ERROR_INVALID_ARGUMENT);
    BAD(dev, v, dv_vbar_prioritize(dev, NULL), DV_ERROR_INVALID_ARGUMENT);
    BAD(dev, v, dv_vbar_create(dev, P, NULL), DV_ERROR_INVALID_ARGUMENT);
    BAD(dev, v, dv_device_get_stats(dev, NULL), DV_ERROR_INVALID_ARGUMENT);
    BAD(dev, v, dv_vbar_get_info(dev, v, NULL), DV_ERROR_INVALID_ARGUMENT);
    BAD(dev, v, dv_vbar_residency(dev, v, 0, 1, NULL), DV_ERROR_INVALID_ARGUMENT);
    TD_IS(dv_device_close(NULL), DV_ERROR_INVALID_ARGUMENT);
    TD_IS(dv_device_open(NULL, NULL), DV_ERROR_INVALID_ARGUMENT);
    /* A VBAR handle that is not one. */
    uint64_t junk[16] = {0};
    BAD(dev, v, dv_fault(dev, (dv_vbar_t *)junk, 0, P, &g),
        DV_ERROR_INVALID_ARGUMENT);
    TD_OK(dv_vbar_destroy(dev, v));
    TD_OK(dv_device_close(dev));
}

Test(badinput, ranges) {
    dv_device_t *dev = td_open(0);
    dv_vbar_t *v = NULL;
    TD_OK(dv_vbar_create(dev, 8 * P, &v));
    uint64_t g;
    TD_OK(dv_fault(dev, v, 0, P, &g)); /* some state to keep */
    BAD(dev, v, dv_fault(dev, v, 0, 0, &g), DV_ERROR_INVALID_ARGUMENT);
    BAD(dev, v, dv_fault(dev, v, 8 * P, 1, &g), DV_ERROR_OUT_OF_RANGE);
    BAD(dev, v, dv_fault(dev, v, 7 * P, P + 1, &g), DV_ERROR_OUT_OF_RANGE);
    BAD(dev, v, dv_fault(dev, v, UINT64_MAX, 2, &g), DV_ERROR_OUT_OF_RANGE);
    BAD(dev, v, dv_fault(dev, v, P, UINT64_MAX, &g), DV_ERROR_OUT_OF_RANGE);
    BAD(dev, v, dv_unpin(dev, v, UINT64_MAX - 1, 4, NULL), DV_ERROR_OUT_OF_RANGE);
    BAD(dev, v, dv_unpin(dev, v, 0, 0, NULL), DV_ERROR_INVALID_ARGUMENT);
    BAD(dev, v, dv_vbar_residency(dev, v, 7, 2, (uint8_t[2]){0}),
        DV_ERROR_OUT_OF_RANGE);
    BAD(dev, v, dv_vbar_residency(dev, v, UINT64_MAX, 2, (uint8_t[2]){0}),
        DV_ERROR_OUT_OF_RANGE);
    uint64_t gens[1];
    BAD(dev, v, dv_vbar_generations(dev, v, 0, 2 * P, gens, 1),
        DV_ERROR_INVALID_ARGUMENT);
    dv_vbar_t *w = NULL;
    BAD(dev, v, dv_vbar_create(dev, 0, &w), DV_ERROR_INVALID_ARGUMENT);
    BAD(dev, v, dv_vbar_create(dev, UINT64_MAX, &w), DV_ERROR_INVALID_ARGUMENT);
    BAD(dev, v, dv_vbar_create(dev, UINT64_MAX - P / 2, &w),
        DV_ERROR_INVALID_ARGUMENT);
    cr_assert_null(w);
    TD_OK(dv_unpin(dev, v, 0, P, NULL));
    TD_OK(dv_vbar_destroy(dev, v));
    TD_OK(dv_device_close(dev));
}

Test(badinput, wrong_order) {
    dv_device_t *dev = td_open(0);
    dv_vbar_t *v = NULL;
    TD_OK(dv_vbar_create(dev, 8 * P, &v));
    uint64_t g;
    /* Unpin of an unpinned range, including a partly pinned one. */
    BAD(dev, v, dv_unpin(dev, v, 0, P, NULL), DV_ERROR_NOT_PINNED);
    TD_OK(dv_fault(dev, v, 0, P, &g));
    BAD(dev, v, dv_unpin(dev, v, 0, 2 * P, NULL), DV_ERROR_NOT_PINNED);
    /* Destroy with pinned pages; close with live VBARs. */
    BAD(dev, v, dv_vbar_destroy(dev, v), DV_ERROR_BUSY);
    BAD(dev, v, dv_device_close(dev), DV_ERROR_BUSY);
    BAD(dev, v, dv_framework_release(dev, 1), DV_ERROR_INVALID_ARGUMENT);
    TD_OK(dv_unpin(dev, v, 0, P, NULL));
    TD_OK(dv_vbar_destroy(dev, v));
    TD_OK(dv_device_close(dev));
}

Test(badinput, vbar_of_another_device) {
    dv_device_options_t o;
    td_options(&o, 0);
    dv_device_t *d0 = td_open_opts(&o);
    o.ordinal = 1;
    dv_device_t *d1 = NULL;
    if (dv_device_open(&o, &d1) != DV_OK) {
        /* One device on this backend: a second handle on ordinal 0. */
        o.ordinal = 0;
        d1 = td_open_opts(&o);
    }
    dv_vbar_t *v0 = NULL, *v1 = NULL;
    TD_OK(dv_vbar_create(d0, 4 * P, &v0));
    TD_OK(dv_vbar_create(d1, 4 * P, &v1));
    uint64_t g;
    BAD(d0, v0, dv_fault(d1, v0, 0, P, &g), DV_ERROR_WRONG_DEVICE);
    BAD(d1, v1, dv_fault(d0, v1, 0, P, &g), DV_ERROR_WRONG_DEVICE);
    BAD(d0, v0, dv_vbar_destroy(d1, v0), DV_ERROR_WRONG_DEVICE);
    BAD(d0, v0, dv_vbar_prioritize(d1, v0), DV_ERROR_WRONG_DEVICE);
    BAD(d0, v0, dv_vbar_evict(d1, v0, P, &g), DV_ERROR_WRONG_DEVICE);
    BAD(d0, v0, dv_unpin(d1, v0, 0, P, NULL), DV_ERROR_WRONG_DEVICE);
    /* Each device's work stays its own. */
    TD_OK(dv_fault(d0, v0, 0, 2 * P, &g));
    cr_assert_eq(td_stats(d1).resident_bytes, 0);
    TD_OK(dv_unpin(d0, v0, 0, 2 * P, NULL));
    TD_OK(dv_vbar_destroy(d0, v0));
    TD_OK(dv_vbar_destroy(d1, v1));
    TD_OK(dv_device_close(d0));
    TD_OK(dv_device_close(d1));
}

Test(badinput, bad_options) {
    dv_device_options_t o;
    td_options(&o, 0);
    dv_device_t *dev = (dv_device_t *)0x1;
    o.backend = "no-such-backend";
    TD_IS(dv_device_open(&o, &dev), DV_ERROR_INVALID_ARGUMENT);
    cr_assert_null(dev);
    cr_assert(strstr(dv_last_error(), "no-such-backend"));
    td_options(&o, 0);
    o.ordinal = -1;
    TD_IS(dv_device_open(&o, &dev), DV_ERROR_INVALID_ARGUMENT);
    o.ordinal = 1000;
    dv_result_t r = dv_device_open(&o, &dev);
    cr_assert(r == DV_ERROR_DEVICE_NOT_FOUND || r == DV_ERROR_BACKEND,
              "%s", dv_last_error());
    TD_IS(dv_device_open_hal(NULL, NULL, &dev), DV_ERROR_INVALID_ARGUMENT);
    TD_IS(dv_log_set_level((dv_log_level_t)99), DV_ERROR_INVALID_ARGUMENT);
}
