/*
 * test_cuda.c - the CUDA backend on a real driver (or the fake one from
 * tests/fakes/cuda/fake_cuda.c): data survives the round trip through the
 * public API, every op binds its own context, and eviction waits for one
 * page's fence, never for the device.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Runs under testdev.c's main with DYNVRAM_BACKEND=cuda: the whole binary
 * exits 77 (skipped) with the probe's reason when no driver or GPU is there.
 * Raw driver calls (contexts, a busy stream) go through a table this test
 * loads itself with dv__cu_load, separate from the backend's own.
 * The stream_check tests are in test_cuda_streams.c.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/os.h"
#include "hal/cuda/cuda_load.h"
#include "testdev.h"
#include "tests/support/hal_text.h"

#define MIB (1ull << 20)

static dv__cu_api_t raw;

static void raw_load(void) {
    char reason[256];
    dv_result_t r = dv__cu_load(NULL, &raw, reason, sizeof(reason));
    cr_assert_eq(r, DV_OK, "raw libcuda load: %s", reason);
}

/* The simulated driver (fake_cuda.c) names its devices so; it runs streams
 * synchronously, so timing tests mean nothing there. */
static int is_fake(dv_device_t *dev) {
    dv_device_caps_t c;
    TD_OK(dv_device_get_caps(dev, &c));
    return strncmp(c.name, "dynvram fake", 12) == 0;
}

#define RAW_OK(call)                                                           \
    do {                                                                       \
        dv_cu_result raw_rc_ = (call);                                         \
        char raw_d_[192];                                                      \
        dv__cu_describe(&raw, raw_rc_, raw_d_, sizeof(raw_d_));                \
        cr_assert_eq(raw_rc_, DV_CU_SUCCESS, "%s -> %s", #call, raw_d_);       \
    } while (0)

static dv_cu_context raw_current(void) {
    dv_cu_context c = (dv_cu_context)(uintptr_t)0x1;
    RAW_OK(raw.cuCtxGetCurrent(&c));
    return c;
}

/* Pop every context the thread has, so none is current. */
static void raw_clear_current(void) {
    dv_cu_context c = NULL;
    while (raw_current() != NULL) {
        RAW_OK(raw.cuCtxPopCurrent(&c));
    }
}

static dv_device_t *open_cuda(uint64_t page_size) {
    dv_device_options_t o;
    td_options(&o, 0);
    o.page_size = page_size;
    return td_open_opts(&o);
}

static uint64_t vbar_base(dv_device_t *dev, dv_vbar_t *v) {
    dv_vbar_info_t info;
    TD_OK(dv_vbar_get_info(dev, v, &info));
    return info.base;
}

static void fill(uint8_t *p, uint64_t n, uint32_t seed) {
    uint32_t x = seed * 2654435761u + 1;
    for (uint64_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = (uint8_t)(x >> 16);
    }
}

static uint64_t first_diff(const uint8_t *a, const uint8_t *b, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        if (a[i] != b[i]) {
            return i;
        }
    }
    return n;
}

/* Copy `n` bytes of pattern `seed` to dst, read them back, compare. */
static void roundtrip(dv_device_t *dev, void *stream, uint64_t dst, uint64_t n,
                      uint32_t seed, uint8_t *src, uint8_t *back) {
    fill(src, n, seed);
    memset(back, 0, n);
    TD_OK(dv_copy_h2d(dev, dst, src, n, stream));
    TD_OK(dv_copy_d2h(dev, back, dst, n, stream));
    TD_OK(dv_stream_synchronize(dev, stream));
    uint64_t at = first_diff(src, back, n);
    cr_assert_eq(at, n, "byte %llu of %llu differs after the round trip",
                 (unsigned long long)at, (unsigned long long)n);
}

Test(cuda, data_survives_fault_evict_fault) {
    const uint64_t page = 2 * MIB;
    const uint64_t n = 3 * page;
    dv_device_t *dev = open_cuda(page);
    dv_vbar_t *v = NULL;
    void *s = NULL;
    uint64_t g1 = 0, g2 = 0, freed = 0;
    uint8_t *src = malloc(n);
    uint8_t *back = malloc(n);
    cr_assert(src && back);

    TD_OK(dv_host_register(dev, src, n));
    TD_OK(dv_host_register(dev, back, n));
    TD_OK(dv_stream_create(dev, &s));
    TD_OK(dv_vbar_create(dev, 8 * page, &v));
    uint64_t base = vbar_base(dev, v);

    /* Offsets 1..4 pages: not at the VBAR start, spanning three pages. */
    TD_OK(dv_fault(dev, v, page, n, &g1));
    cr_assert_neq(g1, 0);
    roundtrip(dev, s, base + page, n, 1, src, back);
    TD_OK(dv_unpin(dev, v, page, n, s));

    TD_OK(dv_vbar_evict(dev, v, UINT64_MAX, &freed));
    cr_assert_geq(freed, n, "evicted %llu bytes", (unsigned long long)freed);
    cr_assert_eq(td_page_flags(dev, v, 1) & DV_PAGE_RESIDENT, 0);
    cr_assert_eq(td_page_flags(dev, v, 3) & DV_PAGE_RESIDENT, 0);

    TD_OK(dv_vbar_prioritize(dev, v)); /* eviction lowered the watermark */
    TD_OK(dv_fault(dev, v, page, n, &g2));
    cr_assert_neq(g2, g1, "fresh memory must carry a new generation");
    roundtrip(dev, s, base + page, n, 2, src, back);
    TD_OK(dv_unpin(dev, v, page, n, s));
    td_check(dev);

    TD_OK(dv_vbar_destroy(dev, v));
    TD_OK(dv_stream_destroy(dev, s));
    TD_OK(dv_host_unregister(dev, src));
    TD_OK(dv_host_unregister(dev, back));
    TD_OK(dv_device_close(dev));
    free(src);
    free(back);
}

/* Run a fault / copy / unpin / evict cycle and check after every call that
 * the thread's current context is still `want`. */
static void cycle_keeps_context(dv_cu_context want) {
    const uint64_t page = 2 * MIB;
    dv_device_t *dev = open_cuda(page);
    cr_assert_eq(raw_current(), want, "dv_device_open changed the context");
    dv_vbar_t *v = NULL;
    void *s = NULL;
    uint64_t gen = 0, freed = 0;
    uint8_t *src = malloc(page);
    uint8_t *back = malloc(page);
    cr_assert(src && back);

#define KEEPS(call)                                                            \
    do {                                                                       \
        TD_OK(call);                                                           \
        cr_assert_eq(raw_current(), want, "%s changed the current context",    \
                     #call);                                                   \
    } while (0)
    KEEPS(dv_stream_create(dev, &s));
    KEEPS(dv_vbar_create(dev, 4 * page, &v));
    KEEPS(dv_fault(dev, v, 0, page, &gen));
    uint64_t base = vbar_base(dev, v);
    fill(src, page, 7);
    KEEPS(dv_copy_h2d(dev, base, src, page, s));
    KEEPS(dv_copy_d2h(dev, back, base, page, s));
    KEEPS(dv_stream_synchronize(dev, s));
    cr_assert_eq(first_diff(src, back, page), page, "data differs");
    KEEPS(dv_unpin(dev, v, 0, page, s));
    KEEPS(dv_vbar_evict(dev, v, UINT64_MAX, &freed));
    cr_assert_eq(freed, page);
    KEEPS(dv_device_get_stats(dev, &(dv_device_stats_t){0}));
    KEEPS(dv_vbar_destroy(dev, v));
    KEEPS(dv_stream_destroy(dev, s));
    KEEPS(dv_device_close(dev));
#undef KEEPS
    free(src);
    free(back);
}

Test(cuda, works_with_no_context_current) {
    raw_load();
    raw_clear_current();
    cycle_keeps_context(NULL);
}

Test(cuda, leaves_another_current_context_alone) {
    raw_load();
    raw_clear_current();
    dv_cu_device d0 = 0;
    dv_cu_context other = NULL;
    RAW_OK(raw.cuDeviceGet(&d0, 0));
    /* cuCtxCreate makes the new context current on this thread. */
    RAW_OK(raw.cuCtxCreate(&other, NULL, 0, 0, d0));
    cr_assert_eq(raw_current(), other);
    cycle_keeps_context(other);
    RAW_OK(raw.cuCtxDestroy(other));
}

/*
 * Evicting an idle page must not wait for unrelated work. A long chain of
 * memsets runs on one stream while a page last used on another (idle)
 * stream is evicted: the eviction must return in a small fraction of the
 * chain's time and the chain must still be running afterwards. The raw
 * driver's unmap + release of an unrelated mapping is timed the same way,
 * so a driver that synchronizes on unmap shows up as such in the message.
 */
Test(cuda, evict_does_not_wait_for_other_streams, .timeout = 120) {
    const uint64_t page = 32 * MIB;
    const size_t busy_bytes = 1ull << 30;
    dv_device_t *dev = open_cuda(page);
    dv_vbar_t *v = NULL;
    void *idle = NULL;
    void *busy = NULL;
    dv_cu_deviceptr buf = 0;
    uint64_t gen = 0, freed = 0;

    if (is_fake(dev)) {
        TD_OK(dv_device_close(dev));
        cr_skip_test("the simulated driver runs streams synchronously");
    }
    raw_load();
    RAW_OK(raw.cuCtxSetCurrent(NULL));
    dv_cu_device d0 = 0;
    dv_cu_context pctx = NULL;
    RAW_OK(raw.cuDeviceGet(&d0, 0));
    RAW_OK(raw.cuDevicePrimaryCtxRetain(&pctx, d0));
    RAW_OK(raw.cuCtxSetCurrent(pctx));

    TD_OK(dv_stream_create(dev, &idle));
    TD_OK(dv_stream_create(dev, &busy));
    TD_OK(dv_vbar_create(dev, 2 * page, &v));
    TD_OK(dv_fault(dev, v, 0, page, &gen));
    TD_OK(dv_unpin(dev, v, 0, page, idle));
    TD_OK(dv_stream_synchronize(dev, idle));

    /* A raw VMM mapping to unmap while the chain runs. */
    dv_cu_mem_allocation_prop prop;
    memset(&prop, 0, sizeof(prop));
    prop.type = DV_CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = DV_CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = d0;
    dv_cu_mem_handle h = 0;
    dv_cu_deviceptr rva = 0;
    dv_cu_mem_access_desc acc = {{DV_CU_MEM_LOCATION_TYPE_DEVICE, d0},
                                 DV_CU_MEM_ACCESS_FLAGS_PROT_READWRITE};
    RAW_OK(raw.cuMemAddressReserve(&rva, page, page, 0, 0));
    RAW_OK(raw.cuMemCreate(&h, page, &prop, 0));
    RAW_OK(raw.cuMemMap(rva, page, 0, h, 0));
    RAW_OK(raw.cuMemSetAccess(rva, page, &acc, 1));

    /* Calibrate: how many 1 GiB memsets make about 800 ms of work. */
    RAW_OK(raw.cuMemAlloc(&buf, busy_bytes));
    uint64_t t0 = dv__now_ns();
    for (int i = 0; i < 4; i++) {
        RAW_OK(raw.cuMemsetD8Async(buf, (unsigned char)i, busy_bytes,
                                   (dv_cu_stream)busy));
    }
    RAW_OK(raw.cuStreamSynchronize((dv_cu_stream)busy));
    uint64_t one = (dv__now_ns() - t0) / 4;
    int reps = (int)(800000000ull / (one ? one : 1));
    reps = reps < 8 ? 8 : (reps > 20000 ? 20000 : reps);

    /* Chain on `busy`, then raw unmap+release, then dynvram's eviction. */
    uint64_t c0 = dv__now_ns();
    for (int i = 0; i < reps; i++) {
        RAW_OK(raw.cuMemsetD8Async(buf, (unsigned char)i, busy_bytes,
                                   (dv_cu_stream)busy));
    }
    uint64_t r0 = dv__now_ns();
    RAW_OK(raw.cuMemUnmap(rva, page));
    RAW_OK(raw.cuMemRelease(h));
    uint64_t r1 = dv__now_ns();
    dv_cu_result raw_busy = raw.cuStreamQuery((dv_cu_stream)busy);

    uint64_t e0 = dv__now_ns();
    TD_OK(dv_vbar_evict(dev, v, page, &freed));
    uint64_t e1 = dv__now_ns();
    dv_cu_result dv_busy = raw.cuStreamQuery((dv_cu_stream)busy);
    RAW_OK(raw.cuStreamSynchronize((dv_cu_stream)busy));
    uint64_t c1 = dv__now_ns();

    double chain_ms = (double)(c1 - c0) / 1e6;
    double raw_ms = (double)(r1 - r0) / 1e6;
    double evict_ms = (double)(e1 - e0) / 1e6;
    fprintf(stderr,
            "evict_no_sync: chain %d x 1 GiB memset %.1f ms; raw "
            "cuMemUnmap+cuMemRelease %.3f ms (chain %s after); dv_vbar_evict "
            "%.3f ms (chain %s after)\n",
            reps, chain_ms, raw_ms,
            raw_busy == DV_CU_ERROR_NOT_READY ? "still running" : "finished",
            evict_ms,
            dv_busy == DV_CU_ERROR_NOT_READY ? "still running" : "finished");

    cr_assert_eq(freed, page);
    cr_expect_eq(raw_busy, DV_CU_ERROR_NOT_READY,
                 "the driver's own cuMemUnmap+cuMemRelease waited for the "
                 "busy stream (%.3f ms of a %.1f ms chain): the driver "
                 "synchronizes on unmap",
                 raw_ms, chain_ms);
    cr_assert_eq(dv_busy, DV_CU_ERROR_NOT_READY,
                 "the busy stream finished before dv_vbar_evict returned "
                 "(evict %.3f ms, chain %.1f ms)",
                 evict_ms, chain_ms);
    cr_assert_lt(evict_ms, chain_ms / 10,
                 "dv_vbar_evict took %.3f ms while a %.1f ms chain ran",
                 evict_ms, chain_ms);

    RAW_OK(raw.cuMemFree(buf));
    RAW_OK(raw.cuMemAddressFree(rva, page));
    TD_OK(dv_vbar_destroy(dev, v));
    TD_OK(dv_stream_destroy(dev, idle));
    TD_OK(dv_stream_destroy(dev, busy));
    TD_OK(dv_device_close(dev));
    RAW_OK(raw.cuCtxSetCurrent(NULL));
    RAW_OK(raw.cuDevicePrimaryCtxRelease(d0));
}

/* Caps as the backend promises them. */
Test(cuda, caps) {
    dv_device_t *dev = open_cuda(32 * MIB);
    dv_device_caps_t c;
    TD_OK(dv_device_get_caps(dev, &c));
    cr_assert_str_eq(c.backend, "cuda");
    cr_assert_gt(c.granularity, 0);
    cr_assert_eq(c.page_size % c.granularity, 0);
    cr_assert_eq(c.flags &
                     (DV_CAP_FENCES | DV_CAP_ASYNC_COPY | DV_CAP_HOST_REGISTER),
                 DV_CAP_FENCES | DV_CAP_ASYNC_COPY | DV_CAP_HOST_REGISTER);
    cr_assert_eq(c.flags & DV_CAP_HOST_ACCESSIBLE, 0);
    cr_assert_gt(c.total_memory, 0);
    cr_assert_neq(c.name[0], '\0');
    TD_OK(dv_device_close(dev));
}

/* The HAL reports driver failures with the native code kept. */
Test(cuda, native_error_is_kept) {
    const dv_hal_ops_t *ops = dv_hal_cuda();
    dv_hal_init_args_t a = {.ordinal = 0};
    void *ctx = NULL;
    TD_OK(ops->init(&a, &ctx));
    /* Unmapping a range that was never reserved fails in the driver. */
    dv_result_t r = ops->unmap(ctx, 0x1000ull << 20, 2 * MIB);
    cr_assert(r == DV_ERROR_BACKEND || r == DV_ERROR_INVALID_ARGUMENT,
              "unmap of a bogus range -> %s", dv_result_name(r));
    int64_t code = 0;
    char text[256] = "";
    ops->last_native_error(&code, text, sizeof(text));
    cr_assert_neq(code, 0);
    cr_assert(strstr(text, "cuMemUnmap") != NULL, "text: %s", text);
    cr_assert(strstr(td_hal_text(ops), "CUDA_ERROR_") != NULL, "msg: %s",
              dv_last_error());
    /* A size that is not a multiple of the granularity never reaches the
     * driver. */
    dv_hal_mem_t m = 0;
    cr_assert_eq(ops->create(ctx, 4096 + 1, &m), DV_ERROR_INVALID_ARGUMENT);
    ops->fini(ctx);
}
