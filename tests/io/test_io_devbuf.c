/*
 * test_io_devbuf.c - device buffers on every backend: whole pages at a
 * fixed address, counted in the budget (stats.devbuf_bytes, used), growth
 * evicting weight pages in eviction order instead of failing, pinned pages
 * and watermark limits respected, shrink into the pool, bad input.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdlib.h>
#include <string.h>

#include "iotest.h"

#define P TD_PAGE

static dv_devbuf_info_t dinfo(dv_device_t *d, dv_devbuf_t *db) {
    dv_devbuf_info_t i;
    TD_OK(dv_devbuf_get_info(d, db, &i));
    return i;
}

/* A VBAR of n pages, each faulted and unpinned (resident, evictable). */
static dv_vbar_t *resident_vbar(dv_device_t *d, uint64_t n) {
    dv_vbar_t *v = NULL;
    TD_OK(dv_vbar_create(d, n * P, &v));
    for (uint64_t i = 0; i < n; i++) {
        uint64_t g;
        TD_OK(dv_fault(d, v, i * P, P, &g));
        TD_OK(dv_unpin(d, v, i * P, P, NULL));
    }
    return v;
}

Test(io_devbuf, whole_pages_counted_in_the_budget) {
    dv_device_t *d = td_open(8);
    dv_devbuf_t *db = NULL;
    TD_OK(dv_devbuf_create(d, 16 * P - 5, &db));
    dv_devbuf_info_t i = dinfo(d, db);
    cr_assert_eq(i.max_size, 16 * P);
    cr_assert_eq(i.mapped, 0);
    cr_assert_eq(td_stats(d).used, 0, "a reservation costs no memory");
    TD_OK(dv_devbuf_resize(d, db, 3 * P + 1));
    i = dinfo(d, db);
    cr_assert_eq(i.size, 3 * P + 1);
    cr_assert_eq(i.mapped, 4 * P);
    dv_device_stats_t st = td_stats(d);
    cr_assert_eq(st.devbuf_bytes, 4 * P);
    cr_assert_eq(st.used, 4 * P);
    td_check(d);
    /* Bytes written stay where they are while it grows. */
    uint8_t *buf = malloc(P), *back = malloc(P);
    for (uint64_t k = 0; k < P; k++) {
        buf[k] = tio_byte(k);
    }
    TD_OK(dv_copy_h2d(d, i.base, buf, P, NULL));
    TD_OK(dv_devbuf_resize(d, db, 6 * P));
    cr_assert_eq(dinfo(d, db).base, i.base, "the address moved");
    TD_OK(dv_copy_d2h(d, back, i.base, P, NULL));
    cr_assert_eq(memcmp(buf, back, P), 0, "growth lost the contents");
    /* Shrink: the pages go to the pool, still counted in `used`. */
    TD_OK(dv_devbuf_resize(d, db, P));
    st = td_stats(d);
    cr_assert_eq(st.devbuf_bytes, P);
    cr_assert_eq(st.pool_bytes, 5 * P);
    TD_OK(dv_copy_d2h(d, back, i.base, P, NULL));
    cr_assert_eq(memcmp(buf, back, P), 0, "shrink lost the first page");
    /* Growing again takes them back from the pool. */
    TD_OK(dv_devbuf_resize(d, db, 4 * P));
    st = td_stats(d);
    cr_assert_eq(st.pool_bytes, 2 * P);
    cr_assert_eq(st.devbuf_bytes, 4 * P);
    TD_OK(dv_devbuf_resize(d, db, 0));
    cr_assert_eq(dinfo(d, db).mapped, 0);
    td_check(d);
    TD_OK(dv_devbuf_destroy(d, db));
    cr_assert_eq(td_stats(d).devbuf_bytes, 0);
    free(buf);
    free(back);
    td_check(d);
    TD_OK(dv_device_close(d));
}

Test(io_devbuf, growth_evicts_weight_pages_instead_of_failing) {
    dv_device_t *d = td_open(8);
    dv_vbar_t *low = resident_vbar(d, 4);
    dv_vbar_t *high = resident_vbar(d, 4); /* newest: top of the list */
    cr_assert_eq(td_stats(d).resident_bytes, 8 * P);
    dv_devbuf_t *db = NULL;
    TD_OK(dv_devbuf_create(d, 8 * P, &db));
    TD_OK(dv_devbuf_resize(d, db, 3 * P));
    dv_device_stats_t st = td_stats(d);
    cr_assert_eq(st.evictions, 3);
    cr_assert_eq(st.devbuf_bytes, 3 * P);
    cr_assert_leq(st.used, st.budget);
    /* Lowest priority first, its pages top-down. */
    cr_assert_eq(td_resident_pages(d, low), 1);
    cr_assert_eq(td_resident_pages(d, high), 4);
    cr_assert_eq(td_page_flags(d, low, 0), DV_PAGE_RESIDENT);
    cr_assert_eq(td_watermark(d, low), 1, "eviction lowers the watermark");
    /* Pinned pages and pages under a watermark limit are never taken. */
    uint64_t g;
    TD_OK(dv_fault(d, high, 0, 4 * P, &g));
    TD_OK(dv_vbar_set_watermark_limit(d, low, P));
    dv_device_stats_t before = td_stats(d);
    TIO_BAD(dv_devbuf_resize(d, db, 5 * P), DV_ERROR_OUT_OF_DEVICE_MEMORY,
            "do not fit");
    dv_device_stats_t after = td_stats(d);
    cr_assert_eq(dinfo(d, db).size, 3 * P, "a failed growth changed the size");
    cr_assert_eq(after.devbuf_bytes, before.devbuf_bytes);
    cr_assert_eq(after.resident_bytes, before.resident_bytes);
    td_check(d);
    /* Once unpinned, the higher VBAR pays. */
    TD_OK(dv_unpin(d, high, 0, 4 * P, NULL));
    TD_OK(dv_devbuf_resize(d, db, 5 * P));
    cr_assert_eq(td_resident_pages(d, high), 2);
    cr_assert_eq(td_resident_pages(d, low), 1);
    /* Framework memory sees the device buffer in `used`. */
    TIO_BAD(dv_framework_reserve(d, 3 * P), DV_ERROR_OUT_OF_DEVICE_MEMORY,
            "do not fit");
    TD_OK(dv_devbuf_destroy(d, db));
    TD_OK(dv_framework_reserve(d, 3 * P));
    TD_OK(dv_framework_release(d, 3 * P));
    TD_OK(dv_vbar_destroy(d, low));
    TD_OK(dv_vbar_destroy(d, high));
    td_check(d);
    TD_OK(dv_device_close(d));
}

Test(io_devbuf, bad_input) {
    dv_device_options_t o;
    td_options(&o, 8);
    dv_device_t *d0 = td_open_opts(&o);
    o.ordinal = 1;
    dv_device_t *d1 = NULL;
    if (dv_device_open(&o, &d1) != DV_OK) {
        o.ordinal = 0;
        d1 = td_open_opts(&o);
    }
    dv_devbuf_t *db = NULL, *dead = NULL;
    TIO_BAD(dv_devbuf_create(d0, 0, &db), DV_ERROR_INVALID_ARGUMENT,
            "max_size");
    TIO_BAD(dv_devbuf_create(d0, UINT64_MAX, &db), DV_ERROR_INVALID_ARGUMENT,
            "max_size");
    TIO_BAD(dv_devbuf_create(d0, P, NULL), DV_ERROR_INVALID_ARGUMENT, "out");
    TD_OK(dv_devbuf_create(d0, 2 * P, &db));
    TD_OK(dv_devbuf_create(d0, P, &dead));
    TD_OK(dv_devbuf_destroy(d0, dead));
    TIO_BAD(dv_devbuf_resize(d0, dead, P), DV_ERROR_INVALID_ARGUMENT,
            "not a live device buffer");
    TIO_BAD(dv_devbuf_resize(d0, NULL, P), DV_ERROR_INVALID_ARGUMENT,
            "device buffer is NULL");
    TIO_BAD(dv_devbuf_resize(d0, db, 2 * P + 1), DV_ERROR_OUT_OF_RANGE,
            "max_size");
    TIO_BAD(dv_devbuf_resize(d1, db, P), DV_ERROR_WRONG_DEVICE, "belongs to");
    TIO_BAD(dv_devbuf_destroy(d1, db), DV_ERROR_WRONG_DEVICE, "belongs to");
    TIO_BAD(dv_devbuf_get_info(d0, db, NULL), DV_ERROR_INVALID_ARGUMENT,
            "info");
    dv_hostbuf_t *hb = NULL;
    TD_OK(dv_hostbuf_create(d0, P, &hb));
    TIO_BAD(dv_devbuf_resize(d0, (dv_devbuf_t *)hb, P),
            DV_ERROR_INVALID_ARGUMENT, "is a host buffer handle");
    TD_OK(dv_hostbuf_destroy(d0, hb));
    TD_OK(dv_devbuf_resize(d0, db, 2 * P));
    TIO_BAD(dv_device_close(d0), DV_ERROR_BUSY, "host I/O");
    cr_assert_eq(td_stats(d0).devbuf_bytes, 2 * P);
    TD_OK(dv_devbuf_destroy(d0, db));
    td_check(d0);
    TD_OK(dv_device_close(d0));
    TD_OK(dv_device_close(d1));
}
