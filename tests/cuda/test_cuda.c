/*
 * test_cuda.c - the CUDA backend on a real driver (or the fake one from
 * tests/cuda/fake_cuda.c): data survives the round trip through the public
 * API, every op binds its own context, and eviction waits for one page's
 * fence, never for the device.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Runs under testdev.c's main with DYNVRAM_BACKEND=cuda: the whole binary
 * exits 77 (skipped) with the probe's reason when no driver or GPU is there.
 * Raw driver calls (contexts, a busy stream) go through a table this test
 * loads itself with dv__cu_load, separate from the backend's own.
 * stream_check's junk cases run in child processes (a driver may crash on
 * them); the stream of another GPU is checked in test_cuda_multi.c.
 */
#define _POSIX_C_SOURCE 200809L /* fork, pipe, waitpid */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/os.h"
#include "hal/cuda/cuda_internal.h"
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
    dv_hal_init_args_t a = {0, 0};
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

/* ---- stream_check (issue 9) ---- */

/* Streams the backend's stream_check must accept: its own, the default
 * stream's stand-ins, and one of a context the caller made on this GPU. */
Test(cuda, stream_check_accepts_live_streams_of_this_device) {
    const dv_hal_ops_t *ops = dv_hal_cuda();
    dv_hal_init_args_t a = {0, 0};
    void *ctx = NULL;
    cr_assert_not_null(ops->stream_check);
    TD_OK(ops->init(&a, &ctx));
    void *s = NULL;
    TD_OK(ops->stream_create(ctx, &s));
    TD_OK(ops->stream_check(ctx, s));
    TD_OK(ops->stream_check(ctx, (void *)DV_CU_STREAM_LEGACY));
    TD_OK(ops->stream_check(ctx, (void *)DV_CU_STREAM_PER_THREAD));

    raw_load();
    raw_clear_current();
    dv_cu_device d0 = 0;
    dv_cu_context own = NULL;
    dv_cu_stream os = NULL;
    RAW_OK(raw.cuDeviceGet(&d0, 0));
    RAW_OK(raw.cuCtxCreate(&own, NULL, 0, 0, d0));
    RAW_OK(raw.cuStreamCreate(&os, DV_CU_STREAM_NON_BLOCKING));
    dv_cu_context popped = NULL;
    RAW_OK(raw.cuCtxPopCurrent(&popped));
    cr_assert_eq(popped, own);
    /* Checked with no context current, and with the created one current:
     * either way the stream's context is on device 0. */
    TD_OK(ops->stream_check(ctx, os));
    RAW_OK(raw.cuCtxPushCurrent(own));
    TD_OK(ops->stream_check(ctx, os));
    cr_assert_eq(raw_current(), own, "stream_check changed the context");
    RAW_OK(raw.cuStreamDestroy(os));
    RAW_OK(raw.cuCtxDestroy(own));

    TD_OK(ops->stream_destroy(ctx, s));
    ops->fini(ctx);
}

/* Destroyed streams stay refused, and their addresses stay out of the
 * driver's hands while the backend remembers them: a new stream never
 * equals a recently destroyed one (the real driver, left alone, hands the
 * very same address out again at once). No dead handle reaches the driver
 * here, so this runs in-process on a GPU too. */
Test(cuda, destroyed_streams_keep_their_addresses) {
    const dv_hal_ops_t *ops = dv_hal_cuda();
    dv_hal_init_args_t a = {0, 0};
    void *ctx = NULL;
    void *dead[8];
    TD_OK(ops->init(&a, &ctx));
    for (int i = 0; i < 8; i++) {
        TD_OK(ops->stream_create(ctx, &dead[i]));
        for (int j = 0; j < i; j++) {
            cr_assert_neq(dead[i], dead[j],
                          "stream %d took dead stream %d's address", i, j);
        }
        TD_OK(ops->stream_check(ctx, dead[i]));
        TD_OK(ops->stream_destroy(ctx, dead[i]));
    }
    for (int i = 0; i < 8; i++) {
        TD_IS(ops->stream_check(ctx, dead[i]), DV_ERROR_INVALID_ARGUMENT);
        cr_assert(strstr(td_hal_text(ops), "destroyed"), "%s",
                  td_hal_text(ops));
        TD_IS(ops->stream_destroy(ctx, dead[i]), DV_ERROR_INVALID_ARGUMENT);
    }
    ops->fini(ctx);
}

/*
 * Junk and dead streams, each checked in a child process of its own, so a
 * crash inside libcuda fails the test and names the case instead of taking
 * the suite down. No CUDA call is made before the fork (a CUDA context does
 * not survive one): each child loads and opens the backend itself and
 * reports the answer through a pipe; the parent prints it. Two kinds:
 *  - values the backend answers itself, with no driver call (native code
 *    0): below 64 KiB, and its own destroyed streams. Refused on every
 *    driver.
 *  - foreign values only the driver could judge: a stack address, freed
 *    memory, a stream the caller made and destroyed itself. The simulated
 *    driver refuses them with its code; the CUDA driver does not validate
 *    stream handles (driver 580.159.04 on an H200 dies with SIGSEGV in
 *    cuStreamGetCtx, cuStreamQuery, cuEventRecord... for each), so on a GPU
 *    the test reports what the driver did and skips when it crashed.
 */
enum {
    JUNK_SMALL,
    JUNK_LOW_PAGE,
    JUNK_DEAD_OWN,
    JUNK_STACK,
    JUNK_FREED,
    JUNK_DEAD_FOREIGN,
    JUNK_CASES
};

static const char *junk_name(int k) {
    static const char *const names[] = {
        "(void *)0x10",          "(void *)0xf000",
        "a stream it destroyed", "a stack address",
        "freed heap memory",     "a stream the caller destroyed"};
    return names[k];
}

/* In the child: 0 when stream_check refused case k with
 * DV_ERROR_INVALID_ARGUMENT, 1 otherwise, 2 when the setup failed. `msg`
 * gets the result and the native code and text. */
static int junk_child(int k, char *msg, size_t len) {
    const dv_hal_ops_t *ops = dv_hal_cuda();
    dv_hal_init_args_t a = {0, 0};
    void *ctx = NULL;
    int local = 0;
    void *s = NULL;
    if (ops->init(&a, &ctx) != DV_OK) {
        snprintf(msg, len, "init: %s", td_hal_text(ops));
        return 2;
    }
    if (k == JUNK_SMALL) {
        s = (void *)(uintptr_t)0x10;
    } else if (k == JUNK_LOW_PAGE) {
        s = (void *)(uintptr_t)0xf000;
    } else if (k == JUNK_STACK) {
        s = &local;
    } else if (k == JUNK_FREED) {
        void *p = malloc(256);
        /* Only the address is kept (volatile: the compiler need not see). */
        volatile uintptr_t freed = (uintptr_t)p;
        free(p);
        s = (void *)freed;
    } else if (k == JUNK_DEAD_OWN) {
        if (ops->stream_create(ctx, &s) != DV_OK ||
            ops->stream_destroy(ctx, s) != DV_OK) {
            snprintf(msg, len, "stream create/destroy: %s", td_hal_text(ops));
            return 2;
        }
    } else {
        dv_cu_context pc = NULL, popped = NULL;
        dv_cu_stream fs = NULL;
        raw_load();
        if (raw.cuDevicePrimaryCtxRetain(&pc, 0) != DV_CU_SUCCESS ||
            raw.cuCtxPushCurrent(pc) != DV_CU_SUCCESS ||
            raw.cuStreamCreate(&fs, 0) != DV_CU_SUCCESS ||
            raw.cuStreamDestroy(fs) != DV_CU_SUCCESS ||
            raw.cuCtxPopCurrent(&popped) != DV_CU_SUCCESS) {
            snprintf(msg, len, "raw stream create/destroy failed");
            return 2;
        }
        s = fs;
    }
    dv_result_t r = ops->stream_check(ctx, s);
    int64_t code = 0;
    char text[256] = "";
    ops->last_native_error(&code, text, sizeof(text));
    snprintf(msg, len, "%s (native %lld: %s)", dv_result_name(r),
             (long long)code, r == DV_OK ? "" : text);
    ops->fini(ctx);
    return r == DV_ERROR_INVALID_ARGUMENT ? 0 : 1;
}

typedef struct junk_outcome {
    int crashed, signal, status;
    char msg[512];
} junk_outcome_t;

static junk_outcome_t junk_run(int k) {
    junk_outcome_t o;
    int fds[2];
    memset(&o, 0, sizeof(o));
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1, "fork");
    if (pid == 0) {
        char msg[512] = "";
        close(fds[0]);
        int rc = junk_child(k, msg, sizeof(msg));
        ssize_t w = write(fds[1], msg, strlen(msg));
        (void)w;
        _exit(rc);
    }
    close(fds[1]);
    size_t n = 0;
    ssize_t m;
    while (n + 1 < sizeof(o.msg) &&
           (m = read(fds[0], o.msg + n, sizeof(o.msg) - 1 - n)) > 0) {
        n += (size_t)m;
    }
    o.msg[n] = '\0';
    close(fds[0]);
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    o.crashed = WIFSIGNALED(status);
    o.signal = o.crashed ? WTERMSIG(status) : 0;
    o.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    fprintf(stderr, "stream_check(%s): %s\n", junk_name(k),
            o.crashed ? "CRASHED" : o.msg);
    return o;
}

Test(cuda, stream_check_refuses_what_the_backend_knows_in_a_child) {
    for (int k = JUNK_SMALL; k <= JUNK_DEAD_OWN; k++) {
        junk_outcome_t o = junk_run(k);
        cr_assert_not(o.crashed,
                      "stream_check(%s) crashed (signal %d): it "
                      "reached the driver",
                      junk_name(k), o.signal);
        cr_assert_eq(o.status, 0,
                     "stream_check(%s) -> %s; expected "
                     "DV_ERROR_INVALID_ARGUMENT",
                     junk_name(k), o.msg);
        cr_assert(strstr(o.msg, "(native 0:"),
                  "stream_check(%s) asked the driver: %s", junk_name(k), o.msg);
    }
}

Test(cuda, stream_check_on_foreign_junk_in_a_child) {
    const char *lib = getenv("DYNVRAM_CUDA_LIBRARY");
    int fake = lib && strstr(lib, "fake");
    int crashes = 0;
    char first[160] = "";
    for (int k = JUNK_STACK; k < JUNK_CASES; k++) {
        junk_outcome_t o = junk_run(k);
        if (o.crashed && !fake) {
            if (crashes++ == 0) {
                snprintf(first, sizeof(first), "%s (signal %d)", junk_name(k),
                         o.signal);
            }
            continue;
        }
        cr_assert_not(o.crashed,
                      "stream_check(%s) crashed the simulated "
                      "driver (signal %d)",
                      junk_name(k), o.signal);
        cr_assert_eq(o.status, 0,
                     "stream_check(%s) -> %s; expected "
                     "DV_ERROR_INVALID_ARGUMENT",
                     junk_name(k), o.msg);
        cr_assert(!strstr(o.msg, "(native 0:"), "no driver code: %s", o.msg);
    }
    if (crashes) {
        cr_skip_test("the CUDA driver does not validate stream handles: %d of "
                     "3 foreign junk values crashed it, first %s",
                     crashes, first);
    }
}

/* Past DV__CU_PARKED destroys the oldest destroyed stream is destroyed for
 * real and forgotten: the backend then asks the driver about it. Only on
 * the simulated driver, which refuses it (a real one would crash). */
Test(cuda, the_parking_window_forgets_the_oldest) {
    const char *lib = getenv("DYNVRAM_CUDA_LIBRARY");
    if (!lib || !strstr(lib, "fake")) {
        cr_skip_test("needs the simulated driver (a real one does not "
                     "validate forgotten streams)");
    }
    const dv_hal_ops_t *ops = dv_hal_cuda();
    dv_hal_init_args_t a = {0, 0};
    void *ctx = NULL;
    static void *dead[DV__CU_PARKED + 2];
    TD_OK(ops->init(&a, &ctx));
    for (int i = 0; i < DV__CU_PARKED + 2; i++) {
        TD_OK(ops->stream_create(ctx, &dead[i]));
        TD_OK(ops->stream_destroy(ctx, dead[i]));
    }
    for (int i = 0; i < DV__CU_PARKED + 2; i++) {
        TD_IS(ops->stream_check(ctx, dead[i]), DV_ERROR_INVALID_ARGUMENT);
        int64_t code = -1;
        ops->last_native_error(&code, NULL, 0);
        /* The two oldest were forgotten: the driver's code; the rest are
         * still parked: the backend's own answer. */
        cr_assert_eq(code, i < 2 ? DV_CU_ERROR_INVALID_HANDLE : 0,
                     "stream %d: native %lld (%s)", i, (long long)code,
                     td_hal_text(ops));
    }
    ops->fini(ctx);
}
