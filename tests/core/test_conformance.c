/*
 * test_conformance.c - what every backend must do, through the public API:
 * the same cases on host, simulated HIP, simulated Level Zero and CUDA.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hal_text.h"
#include "testdev.h"

#define P TD_PAGE

Test(conformance, open_reports_caps) {
    dv_device_t *dev = td_open(0);
    dv_device_caps_t caps;
    TD_OK(dv_device_get_caps(dev, &caps));
    cr_assert_str_eq(caps.backend, td_backend_name());
    cr_assert_gt(caps.granularity, 0);
    cr_assert_eq(caps.page_size % caps.granularity, 0);
    cr_assert_eq(caps.page_size, P);
    cr_assert_gt(caps.total_memory, 0);
    dv_device_stats_t st = td_stats(dev);
    cr_assert_gt(st.budget, 0);
    cr_assert_eq(st.used, 0);
    TD_OK(dv_device_close(dev));
}

Test(conformance, page_size_rounds_up_to_granularity) {
    dv_device_options_t o;
    td_options(&o, 0);
    o.page_size = 1;
    dv_device_t *dev = td_open_opts(&o);
    dv_device_caps_t caps;
    TD_OK(dv_device_get_caps(dev, &caps));
    cr_assert_eq(caps.page_size, caps.granularity);
    TD_OK(dv_device_close(dev));
}

Test(conformance, vbar_reserves_without_memory) {
    dv_device_t *dev = td_open(0);
    dv_vbar_t *v = NULL;
    TD_OK(dv_vbar_create(dev, 64 * P + 1, &v)); /* rounds up */
    dv_vbar_info_t info;
    TD_OK(dv_vbar_get_info(dev, v, &info));
    cr_assert_eq(info.page_count, 65);
    cr_assert_eq(info.size, 65 * P);
    cr_assert_neq(info.base, 0);
    cr_assert_eq(info.resident_bytes, 0);
    cr_assert_eq(info.watermark, 65);
    cr_assert_eq(td_stats(dev).used, 0);
    TD_OK(dv_vbar_destroy(dev, v));
    TD_OK(dv_device_close(dev));
}

Test(conformance, data_round_trip_and_generation) {
    dv_device_t *dev = td_open(0);
    dv_vbar_t *v = NULL;
    TD_OK(dv_vbar_create(dev, 4 * P, &v));
    dv_vbar_info_t info;
    TD_OK(dv_vbar_get_info(dev, v, &info));
    size_t n = (size_t)(2 * P);
    unsigned char *src = malloc(n), *dst = malloc(n);
    cr_assert(src && dst);
    for (size_t i = 0; i < n; i++) {
        src[i] = (unsigned char)(i * 131 + 7);
    }
    uint64_t g1;
    TD_OK(dv_fault(dev, v, P, 2 * P, &g1));
    TD_OK(dv_copy_h2d(dev, info.base + P, src, n, NULL));
    TD_OK(dv_stream_synchronize(dev, NULL));
    TD_OK(dv_unpin(dev, v, P, 2 * P, NULL));
    /* Still resident: same generation, same bytes. */
    uint64_t g2;
    TD_OK(dv_fault(dev, v, P, 2 * P, &g2));
    cr_assert_eq(g2, g1);
    memset(dst, 0, n);
    TD_OK(dv_copy_d2h(dev, dst, info.base + P, n, NULL));
    TD_OK(dv_stream_synchronize(dev, NULL));
    cr_assert_eq(memcmp(src, dst, n), 0);
    TD_OK(dv_unpin(dev, v, P, 2 * P, NULL));
    /* Evict, fault again: a new generation says the content must be
     * copied again; after copying it reads back. */
    uint64_t freed;
    TD_OK(dv_vbar_evict(dev, v, 4 * P, &freed));
    cr_assert_eq(freed, 2 * P);
    TD_OK(dv_vbar_prioritize(dev, v));
    uint64_t g3;
    TD_OK(dv_fault(dev, v, P, 2 * P, &g3));
    cr_assert_neq(g3, g1);
    TD_OK(dv_copy_h2d(dev, info.base + P, src, n, NULL));
    memset(dst, 0, n);
    TD_OK(dv_copy_d2h(dev, dst, info.base + P, n, NULL));
    TD_OK(dv_stream_synchronize(dev, NULL));
    cr_assert_eq(memcmp(src, dst, n), 0);
    TD_OK(dv_unpin(dev, v, P, 2 * P, NULL));
    free(src);
    free(dst);
    TD_OK(dv_vbar_destroy(dev, v));
    td_check(dev);
    TD_OK(dv_device_close(dev));
}

Test(conformance, unpin_on_a_stream_then_evict) {
    dv_device_t *dev = td_open(2);
    void *stream = NULL;
    dv_result_t r = dv_stream_create(dev, &stream);
    if (r == DV_ERROR_NOT_SUPPORTED) {
        TD_OK(dv_device_close(dev));
        cr_skip_test("backend has no streams");
    }
    TD_OK(r);
    dv_vbar_t *a = NULL, *b = NULL;
    TD_OK(dv_vbar_create(dev, 2 * P, &a));
    TD_OK(dv_vbar_create(dev, 2 * P, &b));
    uint64_t g;
    TD_OK(dv_fault(dev, a, 0, 2 * P, &g));
    TD_OK(dv_unpin(dev, a, 0, 2 * P, stream));
    /* B (on top) takes A's pages: the eviction waits for A's fence. */
    TD_OK(dv_fault(dev, b, 0, 2 * P, &g));
    TD_OK(dv_unpin(dev, b, 0, 2 * P, stream));
    dv_vbar_info_t info;
    TD_OK(dv_vbar_get_info(dev, a, &info));
    cr_assert_eq(info.resident_bytes, 0);
    td_check(dev);
    TD_OK(dv_vbar_destroy(dev, a));
    TD_OK(dv_vbar_destroy(dev, b));
    TD_OK(dv_stream_synchronize(dev, stream));
    TD_OK(dv_stream_destroy(dev, stream));
    TD_OK(dv_device_close(dev));
}

Test(conformance, stats_account_pages) {
    dv_device_t *dev = td_open(0);
    dv_vbar_t *v = NULL;
    TD_OK(dv_vbar_create(dev, 3 * P, &v));
    uint64_t g;
    TD_OK(dv_fault(dev, v, 0, 3 * P, &g));
    dv_device_stats_t st = td_stats(dev);
    cr_assert_eq(st.resident_bytes, 3 * P);
    cr_assert_eq(st.pinned_bytes, 3 * P);
    cr_assert_eq(st.faults_populated, 1);
    cr_assert_eq(st.pages_populated, 3);
    cr_assert_eq(st.vbar_count, 1);
    TD_OK(dv_unpin(dev, v, 0, 3 * P, NULL));
    TD_OK(dv_fault(dev, v, 0, P, &g));
    cr_assert_eq(td_stats(dev).faults_hit, 1);
    TD_OK(dv_unpin(dev, v, 0, P, NULL));
    TD_OK(dv_vbar_destroy(dev, v));
    st = td_stats(dev);
    cr_assert_eq(st.resident_bytes, 0);
    cr_assert_eq(st.vbar_count, 0);
    TD_OK(dv_device_close(dev));
}

Test(conformance, exhausting_device_memory_offloads) {
    /* No vram_limit: the backend's own capacity runs out. On host the
     * capacity is 1 GiB (td_options); other backends use a large VBAR. */
    dv_device_t *dev = td_open(0);
    dv_device_stats_t st = td_stats(dev);
    uint64_t pages = st.budget / P + 4;
    if (pages > 4096) {
        TD_OK(dv_device_close(dev));
        cr_skip_test("device too large to exhaust in a test");
    }
    dv_vbar_t *v = NULL;
    TD_OK(dv_vbar_create(dev, pages * P, &v));
    uint64_t ok = 0, off = 0, g;
    for (uint64_t i = 0; i < pages; i++) {
        dv_result_t r = dv_fault(dev, v, i * P, P, &g);
        cr_assert(r == DV_OK || r == DV_OFFLOADED, "%s", dv_last_error());
        if (r == DV_OK) {
            ok++;
            TD_OK(dv_unpin(dev, v, i * P, P, NULL));
        } else {
            off++;
        }
    }
    cr_assert_gt(ok, 0);
    cr_assert_geq(off, 4);
    td_check(dev);
    TD_OK(dv_vbar_destroy(dev, v));
    TD_OK(dv_device_close(dev));
}

Test(conformance, any_page_size_multiple_of_granularity) {
    dv_device_options_t o;
    td_options(&o, 0);
    o.page_size = 3ull << 20; /* not a power of two on most backends */
    dv_device_t *dev = td_open_opts(&o);
    dv_device_caps_t caps;
    TD_OK(dv_device_get_caps(dev, &caps));
    uint64_t ps = caps.page_size;
    cr_assert_geq(ps, 3ull << 20);
    dv_vbar_t *v = NULL;
    TD_OK(dv_vbar_create(dev, 4 * ps, &v));
    uint64_t g;
    TD_OK(dv_fault(dev, v, 2 * ps - 1, 2, &g)); /* straddles pages 1 and 2 */
    uint8_t f[4];
    TD_OK(dv_vbar_residency(dev, v, 0, 4, f));
    cr_assert_eq(f[0], 0);
    cr_assert_eq(f[1], DV_PAGE_RESIDENT | DV_PAGE_PINNED);
    cr_assert_eq(f[2], DV_PAGE_RESIDENT | DV_PAGE_PINNED);
    cr_assert_eq(f[3], 0);
    TD_OK(dv_unpin(dev, v, 2 * ps - 1, 2, NULL));
    TD_OK(dv_vbar_destroy(dev, v));
    TD_OK(dv_device_close(dev));
}

/* Running out of device memory is DV_ERROR_OUT_OF_DEVICE_MEMORY and nothing
 * else (the core evicts and retries on it, and only on it), with a reason.
 * Asked of the backend directly: through the public API the budget keeps
 * creates below the free memory it reports. */
Test(conformance, creating_past_free_memory_is_out_of_device_memory) {
    const dv_hal_ops_t *ops = td_hal();
    dv_hal_init_args_t args = {.ordinal = 0};
    if (ops->version >= 2) {
        args.size = (uint32_t)sizeof(args);
        args.options = td_backend_options() ? td_backend_options() : "";
    }
    void *ctx = NULL;
    TD_OK(ops->init(&args, &ctx));
    dv_hal_caps_t caps;
    TD_OK(ops->get_caps(ctx, &caps));
    uint64_t free_b = 0, total = 0;
    dv_result_t r = ops->mem_info(ctx, &free_b, &total);
    if (r == DV_ERROR_NOT_SUPPORTED) {
        ops->fini(ctx);
        cr_skip_test("backend %s cannot report free memory", td_backend_name());
    }
    cr_assert_eq(r, DV_OK, "mem_info: %s", td_hal_text(ops));
    uint64_t g = caps.granularity ? caps.granularity : 1;
    uint64_t chunk = (free_b / 8 + g - 1) / g * g;
    chunk = chunk ? chunk : g;
    enum { MAX_CHUNKS = 64 };
    dv_hal_mem_t mem[MAX_CHUNKS];
    int n = 0;
    while (n < MAX_CHUNKS && (r = ops->create(ctx, chunk, &mem[n])) == DV_OK) {
        n++;
    }
    char why[512];
    snprintf(why, sizeof(why), "%s", td_hal_text(ops));
    for (int i = 0; i < n; i++) {
        TD_OK(ops->release(ctx, mem[i]));
    }
    ops->fini(ctx);
    if (n == MAX_CHUNKS) {
        cr_skip_test("backend %s accepted %d allocations of %llu bytes with "
                     "%llu free: it over-commits",
                     td_backend_name(), MAX_CHUNKS, (unsigned long long)chunk,
                     (unsigned long long)free_b);
    }
    cr_assert_eq(r, DV_ERROR_OUT_OF_DEVICE_MEMORY,
                 "create #%d of %llu bytes (%llu free at first): %s, "
                 "expected DV_ERROR_OUT_OF_DEVICE_MEMORY (%s)",
                 n + 1, (unsigned long long)chunk, (unsigned long long)free_b,
                 dv_result_name(r), why);
    cr_assert(why[0] != '\0', "the failed create left no reason in "
                              "last_native_error");
}
