/*
 * test_ze.c - Level Zero backend checks that the generic suites cannot
 * make: page-size query, unavailable reporting, out-of-memory translation,
 * native error codes, fences, streams and copies, Sysman and its absence.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Runs against the simulated driver (tests/fakes/levelzero/fake_ze*.c)
 * loaded by the real Level Zero loader: CTest sets ZE_ENABLE_ALT_DRIVERS, and
 * ZES_ENABLE_SYSMAN=1 and DVSIM_ZE_CAPACITY=1G. Criterion runs each test
 * in a fresh process, so a test may change the environment before its
 * first call into the backend (which loads the library once per process).
 * Each test skips when the loader or the simulation is missing. Raw Level
 * Zero calls (a caller's own command list) go through the backend's table,
 * and dvsim_ze_list_barriers is asked of the simulated driver itself.
 */
#define _GNU_SOURCE /* setenv, unsetenv, RTLD_NOLOAD */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dynvram.h"
#include "dynvram_hal.h"
#include "hal/levelzero/ze_internal.h"
#include "tests/support/hal_text.h"

#define MIB (1ull << 20)
#define NATIVE_OOM_DEVICE 0x70000003
#define NATIVE_UNSUPPORTED_SIZE 0x78000009

static const dv_hal_ops_t *ops;
static void *ctx;

#define OK(call)                                                               \
    do {                                                                       \
        dv_result_t r_ = (call);                                               \
        cr_assert_eq(r_, DV_OK, "%s -> %s (%s)", #call, dv_result_name(r_),    \
                     dv_last_error());                                         \
    } while (0)

#define IS(call, want)                                                         \
    do {                                                                       \
        dv_result_t r_ = (call);                                               \
        cr_assert_eq(r_, (want), "%s -> %s, expected %s (%s)", #call,          \
                     dv_result_name(r_), dv_result_name(want),                 \
                     dv_last_error());                                         \
    } while (0)

/* Probe (skip if the loader or simulation is absent) and open ordinal. */
static void open_ordinal(int ordinal) {
    int count = 0;
    char reason[256] = "";
    ops = dv_hal_levelzero();
    cr_assert_not_null(ops);
    if (ops->probe(&count, reason, sizeof(reason)) != DV_OK) {
        cr_skip_test("levelzero unavailable: %s", reason);
    }
    dv_hal_init_args_t a = {.ordinal = ordinal};
    OK(ops->init(&a, &ctx));
}

static void open_dev(void) { open_ordinal(0); }

static void close_dev(void) {
    if (ctx) {
        ops->fini(ctx);
        ctx = NULL;
    }
}

static void native(int64_t *code, char *text, size_t len) {
    ops->last_native_error(code, text, len);
}

Test(ze, caps_report_the_larger_page_size) {
    open_dev();
    dv_hal_caps_t caps;
    OK(ops->get_caps(ctx, &caps));
    /* The simulation answers 64 KiB below 2 MiB and 2 MiB from 2 MiB up. */
    cr_assert_eq(caps.granularity, 2 * MIB);
    cr_assert_eq(caps.va_alignment, 2 * MIB);
    cr_assert_eq(caps.total_memory, 1024 * MIB);
    cr_assert(caps.flags & DV_CAP_FENCES);
    cr_assert(caps.flags & DV_CAP_ASYNC_COPY);
    cr_assert_eq(caps.flags & DV_CAP_HOST_REGISTER, 0);
    cr_assert_eq(caps.flags & DV_CAP_HOST_ACCESSIBLE, 0);
    cr_assert(strstr(caps.name, "simulated Level Zero GPU 0"), "%s", caps.name);
    close_dev();
}

Test(ze, reservations_are_aligned_and_freed) {
    open_dev();
    uint64_t va[4];
    for (int i = 0; i < 4; i++) {
        OK(ops->reserve(ctx, (uint64_t)(i + 1) * 6 * MIB, &va[i]));
        cr_assert_eq(va[i] % (2 * MIB), 0);
    }
    for (int i = 0; i < 4; i++) {
        OK(ops->unreserve(ctx, va[i], (uint64_t)(i + 1) * 6 * MIB));
    }
    /* Freeing it twice is a driver error, never out of memory. */
    IS(ops->unreserve(ctx, va[0], 6 * MIB), DV_ERROR_BACKEND);
    close_dev();
}

Test(ze, unsupported_size_is_a_backend_error_with_native_code) {
    open_dev();
    dv_hal_mem_t m = 0;
    /* 3 MiB is not a multiple of the 2 MiB page a 3 MiB request gets. */
    IS(ops->create(ctx, 3 * MIB, &m), DV_ERROR_BACKEND);
    int64_t code = 0;
    char text[128];
    native(&code, text, sizeof(text));
    cr_assert_eq(code, NATIVE_UNSUPPORTED_SIZE);
    cr_assert(strstr(text, "ZE_RESULT_ERROR_UNSUPPORTED_SIZE"), "%s", text);
    cr_assert(strstr(text, "zePhysicalMemCreate"), "%s", text);
    cr_assert(strstr(td_hal_text(ops), "0x78000009"), "%s", td_hal_text(ops));
    /* A small allocation uses the 64 KiB page. */
    OK(ops->create(ctx, 64 << 10, &m));
    OK(ops->release(ctx, m));
    close_dev();
}

Test(ze, device_oom_maps_to_out_of_device_memory_only) {
    setenv("DVSIM_ZE_CAPACITY", "64M", 1);
    open_dev();
    dv_hal_mem_t m[33];
    for (int i = 0; i < 32; i++) {
        OK(ops->create(ctx, 2 * MIB, &m[i]));
    }
    IS(ops->create(ctx, 2 * MIB, &m[32]), DV_ERROR_OUT_OF_DEVICE_MEMORY);
    int64_t code = 0;
    char text[128];
    native(&code, text, sizeof(text));
    cr_assert_eq(code, NATIVE_OOM_DEVICE);
    cr_assert(strstr(td_hal_text(ops), "ZE_RESULT_ERROR_OUT_OF_DEVICE_MEMORY"),
              "%s", td_hal_text(ops));
    /* Memory given back can be had again. */
    OK(ops->release(ctx, m[0]));
    OK(ops->create(ctx, 2 * MIB, &m[0]));
    for (int i = 0; i < 32; i++) {
        OK(ops->release(ctx, m[i]));
    }
    close_dev();
}

Test(ze, mem_info_through_sysman_tracks_allocations) {
    open_dev();
    uint64_t f0, t0, f1, t1;
    OK(ops->mem_info(ctx, &f0, &t0));
    cr_assert_eq(t0, 1024 * MIB);
    dv_hal_mem_t m;
    OK(ops->create(ctx, 32 * MIB, &m));
    OK(ops->mem_info(ctx, &f1, &t1));
    cr_assert_eq(f0 - f1, 32 * MIB);
    OK(ops->release(ctx, m));
    close_dev();
}

Test(ze, mem_info_without_sysman_is_not_supported) {
    unsetenv("ZES_ENABLE_SYSMAN");
    open_dev();
    uint64_t f = 0, t = 0;
    IS(ops->mem_info(ctx, &f, &t), DV_ERROR_NOT_SUPPORTED);
    cr_assert_eq(t, 1024 * MIB);
    cr_assert_eq(f, t);
    cr_assert(strstr(td_hal_text(ops), "vram_limit"), "%s", td_hal_text(ops));
    int64_t code = -1;
    char text[64];
    native(&code, text, sizeof(text));
    cr_assert_eq(code, 0, "stale native error %s", text);
    close_dev();
}

Test(ze, data_round_trip_through_copies) {
    open_dev();
    const uint64_t size = 4 * MIB;
    uint64_t va;
    dv_hal_mem_t m;
    void *s = NULL;
    OK(ops->reserve(ctx, 3 * size, &va));
    OK(ops->create(ctx, size, &m));
    OK(ops->map(ctx, va, size, m));
    OK(ops->stream_create(ctx, &s));

    unsigned char *src = malloc(size), *dst = malloc(size);
    cr_assert(src && dst);
    for (uint64_t i = 0; i < size; i++) {
        src[i] = (unsigned char)(i * 131 + 7);
    }
    OK(ops->copy_h2d(ctx, va, src, size, s));
    dv_hal_fence_t f;
    OK(ops->fence_record(ctx, s, &f));
    OK(ops->fence_wait(ctx, f));
    OK(ops->fence_query(ctx, f));
    ops->fence_destroy(ctx, f);

    /* Remapped elsewhere (as the core's pool does) the data is still there. */
    OK(ops->unmap(ctx, va, size));
    OK(ops->map(ctx, va + 2 * size, size, m));
    memset(dst, 0, size);
    OK(ops->copy_d2h(ctx, dst, va + 2 * size, size, NULL));
    OK(ops->stream_synchronize(ctx, NULL));
    cr_assert_eq(memcmp(src, dst, size), 0);

    /* Copying from an unmapped part of a reservation is a driver error. */
    IS(ops->copy_d2h(ctx, dst, va, 4096, s), DV_ERROR_BACKEND);

    OK(ops->stream_synchronize(ctx, s));
    OK(ops->stream_destroy(ctx, s));
    OK(ops->unmap(ctx, va + 2 * size, size));
    OK(ops->release(ctx, m));
    OK(ops->unreserve(ctx, va, 3 * size));
    free(src);
    free(dst);
    close_dev();
}

Test(ze, misuse_is_reported_not_crashing) {
    open_dev();
    uint64_t va;
    dv_hal_mem_t m;
    OK(ops->reserve(ctx, 8 * MIB, &va));
    OK(ops->create(ctx, 2 * MIB, &m));
    IS(ops->unmap(ctx, va, 2 * MIB), DV_ERROR_BACKEND); /* nothing mapped */
    OK(ops->map(ctx, va, 2 * MIB, m));
    IS(ops->map(ctx, va, 2 * MIB, m), DV_ERROR_BACKEND);    /* already mapped */
    IS(ops->release(ctx, m), DV_ERROR_BACKEND);             /* still mapped */
    IS(ops->unreserve(ctx, va, 8 * MIB), DV_ERROR_BACKEND); /* maps inside */
    OK(ops->unmap(ctx, va, 2 * MIB));
    OK(ops->release(ctx, m));
    OK(ops->unreserve(ctx, va, 8 * MIB));
    IS(ops->stream_destroy(ctx, NULL), DV_ERROR_INVALID_ARGUMENT);
    IS(ops->host_register(ctx, &va, sizeof(va)), DV_ERROR_NOT_SUPPORTED);
    IS(ops->host_unregister(ctx, &va), DV_ERROR_NOT_SUPPORTED);
    close_dev();
}

Test(ze, fence_query_reports_not_ready) {
    setenv("DVSIM_ZE_EVENT_DELAY", "2", 1);
    open_dev();
    dv_hal_fence_t f;
    OK(ops->fence_record(ctx, NULL, &f));
    IS(ops->fence_query(ctx, f), DV_NOT_READY);
    IS(ops->fence_query(ctx, f), DV_NOT_READY);
    OK(ops->fence_query(ctx, f));
    ops->fence_destroy(ctx, f);
    /* A recycled fence starts unsignaled again. */
    OK(ops->fence_record(ctx, NULL, &f));
    IS(ops->fence_query(ctx, f), DV_NOT_READY);
    OK(ops->fence_wait(ctx, f));
    OK(ops->fence_query(ctx, f));
    ops->fence_destroy(ctx, f);
    close_dev();
}

Test(ze, fences_outgrow_one_event_pool) {
    open_dev();
    enum { N = 150 }; /* more than two pools of 64 */
    dv_hal_fence_t f[N];
    for (int i = 0; i < N; i++) {
        OK(ops->fence_record(ctx, NULL, &f[i]));
    }
    for (int i = 0; i < N; i++) {
        OK(ops->fence_wait(ctx, f[i]));
        ops->fence_destroy(ctx, f[i]);
    }
    for (int i = 0; i < N; i++) {
        OK(ops->fence_record(ctx, NULL, &f[i]));
    }
    for (int i = N - 1; i >= 0; i--) {
        OK(ops->fence_query(ctx, f[i]));
        ops->fence_destroy(ctx, f[i]);
    }
    close_dev(); /* strict mode aborts if a pool or event leaked */
}

Test(ze, ordinals_count_gpu_devices) {
    setenv("DVSIM_ZE_DEVICES", "2", 1);
    int count = 0;
    char reason[256];
    ops = dv_hal_levelzero();
    if (ops->probe(&count, reason, sizeof(reason)) != DV_OK) {
        cr_skip_test("levelzero unavailable: %s", reason);
    }
    cr_assert_eq(count, 2);
    open_ordinal(1);
    dv_hal_caps_t caps;
    OK(ops->get_caps(ctx, &caps));
    cr_assert(strstr(caps.name, "GPU 1"), "%s", caps.name);
    close_dev();
    dv_hal_init_args_t a = {.ordinal = 2};
    IS(ops->init(&a, &ctx), DV_ERROR_DEVICE_NOT_FOUND);
    cr_assert_null(ctx);
}

Test(ze, missing_library_is_unavailable) {
    setenv("DYNVRAM_ZE_LIBRARY", "/nonexistent/libze_loader.so.1", 1);
    int count = 7;
    char reason[256] = "";
    ops = dv_hal_levelzero();
    IS(ops->probe(&count, reason, sizeof(reason)),
       DV_ERROR_BACKEND_UNAVAILABLE);
    cr_assert_eq(count, 0);
    cr_assert(strstr(reason, "/nonexistent/libze_loader.so.1"), "%s", reason);
    dv_hal_init_args_t a = {0};
    IS(ops->init(&a, &ctx), DV_ERROR_BACKEND_UNAVAILABLE);
    cr_assert(strstr(td_hal_text(ops), "nonexistent"), "%s", td_hal_text(ops));

    dv_device_options_t o;
    dv_device_options_init(&o);
    o.backend = "levelzero";
    dv_device_t *dev = NULL;
    IS(dv_device_open(&o, &dev), DV_ERROR_BACKEND_UNAVAILABLE);
    cr_assert_null(dev);
}

Test(ze, library_without_level_zero_symbols_is_unavailable) {
    setenv("DYNVRAM_ZE_LIBRARY", "libc.so.6", 1);
    int count = 7;
    char reason[256] = "";
    ops = dv_hal_levelzero();
    IS(ops->probe(&count, reason, sizeof(reason)),
       DV_ERROR_BACKEND_UNAVAILABLE);
    cr_assert_eq(count, 0);
    cr_assert(strstr(reason, "lacks zeInit"), "%s", reason);
}

Test(ze, loader_without_driver_is_unavailable) {
    unsetenv("ZE_ENABLE_ALT_DRIVERS");
    int count = 7;
    char reason[256] = "";
    ops = dv_hal_levelzero();
    dv_result_t r = ops->probe(&count, reason, sizeof(reason));
    if (r == DV_OK) {
        cr_skip_test("a real Level Zero GPU driver is installed");
    }
    IS(r, DV_ERROR_BACKEND_UNAVAILABLE);
    cr_assert_eq(count, 0);
    /* Either the loader is absent, or it found no GPU driver. */
    cr_assert(strstr(reason, "zeInit") || strstr(reason, "cannot load"), "%s",
              reason);
}

Test(ze, public_api_end_to_end) {
    dv_device_options_t o;
    dv_device_options_init(&o);
    o.backend = "levelzero";
    o.page_size = 2 * MIB;
    o.vram_limit = 8 * MIB;
    dv_device_t *dev = NULL;
    dv_result_t r = dv_device_open(&o, &dev);
    if (r == DV_ERROR_BACKEND_UNAVAILABLE) {
        cr_skip_test("levelzero unavailable: %s", dv_last_error());
    }
    OK(r);
    dv_device_caps_t caps;
    OK(dv_device_get_caps(dev, &caps));
    cr_assert_str_eq(caps.backend, "levelzero");
    dv_vbar_t *v = NULL;
    OK(dv_vbar_create(dev, 32 * MIB, &v));
    uint64_t g = 0;
    OK(dv_fault(dev, v, 0, 6 * MIB, &g));
    dv_vbar_info_t info;
    OK(dv_vbar_get_info(dev, v, &info));
    unsigned char in[8192], out[8192];
    memset(in, 0xa5, sizeof(in));
    OK(dv_copy_h2d(dev, info.base + 3 * MIB, in, sizeof(in), NULL));
    OK(dv_copy_d2h(dev, out, info.base + 3 * MIB, sizeof(out), NULL));
    OK(dv_stream_synchronize(dev, NULL));
    cr_assert_eq(memcmp(in, out, sizeof(in)), 0);
    OK(dv_unpin(dev, v, 0, 6 * MIB, NULL));
    /* Past the 8 MiB limit the fault offloads instead of failing. */
    IS(dv_fault(dev, v, 6 * MIB, 16 * MIB, &g), DV_OFFLOADED);
    OK(dv_device_check(dev));
    OK(dv_vbar_destroy(dev, v));
    OK(dv_device_close(dev));
}

/* ---- stream_check (issue 9) ---------------------------------------------- */

#define NATIVE_INVALID_ARGUMENT 0x78000004

/* The simulated driver's count of barriers appended to a live list. */
static uint64_t sim_barriers(dv_ze_command_list_handle_t l) {
    const char *path = getenv("ZE_ENABLE_ALT_DRIVERS");
    void *lib = path ? dlopen(path, RTLD_NOW | RTLD_NOLOAD) : NULL;
    cr_assert_not_null(lib, "the simulated driver is not loaded");
    uint64_t (*fn)(dv_ze_command_list_handle_t) = NULL;
    void *sym = dlsym(lib, "dvsim_ze_list_barriers");
    cr_assert_not_null(sym);
    memcpy(&fn, &sym, sizeof(fn));
    uint64_t n = fn(l);
    dlclose(lib);
    return n;
}

/* A command list the caller made itself, through the same loader (as a
 * framework's queue would be). */
static dv_ze_command_list_handle_t foreign_list(dv_ze_context_handle_t *zc) {
    dv_ze_driver_handle_t drv = NULL;
    dv_ze_device_handle_t dev = NULL;
    dv_ze_context_desc_t cd;
    dv_ze_command_queue_desc_t qd;
    dv_ze_command_list_handle_t l = NULL;
    memset(&cd, 0, sizeof(cd));
    cd.stype = DV_ZE_STRUCTURE_TYPE_CONTEXT_DESC;
    memset(&qd, 0, sizeof(qd));
    qd.stype = DV_ZE_STRUCTURE_TYPE_COMMAND_QUEUE_DESC;
    qd.mode = DV_ZE_COMMAND_QUEUE_MODE_ASYNCHRONOUS;
    qd.priority = DV_ZE_COMMAND_QUEUE_PRIORITY_NORMAL;
    OK(dv__ze_find_device(0, NULL, &drv, &dev));
    cr_assert_eq(dv__ze.zeContextCreate(drv, &cd, zc), DV_ZE_RESULT_SUCCESS);
    cr_assert_eq(dv__ze.zeCommandListCreateImmediate(*zc, dev, &qd, &l),
                 DV_ZE_RESULT_SUCCESS);
    return l;
}

/* Lists this backend made are answered from its registry, without a
 * driver call: live -> OK, destroyed -> refused. A destroyed list stays
 * alive (parked) for the last DV__ZE_PARKED destroys, so no new list can
 * take its address; older ones are destroyed for real and forgotten, and
 * then the driver is asked (the simulated one refuses them). */
Test(ze_streams, own_lists_live_and_dead) {
    enum { N = 2 * DV__ZE_PARKED };
    open_dev();
    cr_assert_not_null(ops->stream_check);
    void *live = NULL;
    OK(ops->stream_create(ctx, &live));
    static void *dead[N];
    for (int i = 0; i < N; i++) {
        OK(ops->stream_create(ctx, &dead[i]));
        for (int j = i - DV__ZE_PARKED; j >= 0 && j < i; j++) {
            cr_assert_neq(dead[i], dead[j],
                          "a parked list's address came back (%d, %d)", i, j);
        }
        OK(ops->stream_check(ctx, dead[i]));
        OK(ops->stream_destroy(ctx, dead[i]));
    }
    for (int i = 0; i < N; i++) {
        int64_t code = -1;
        char text[256];
        IS(ops->stream_check(ctx, dead[i]), DV_ERROR_INVALID_ARGUMENT);
        native(&code, text, sizeof(text));
        if (i < N - DV__ZE_PARKED) {
            cr_assert_eq(code, NATIVE_INVALID_ARGUMENT, "%d: %s", i, text);
        } else {
            cr_assert(code == 0 && strstr(text, "destroyed"), "%d: %s", i,
                      text);
        }
        IS(ops->stream_destroy(ctx, dead[i]), DV_ERROR_INVALID_ARGUMENT);
    }
    OK(ops->stream_check(ctx, live));
    cr_assert_eq(sim_barriers(live), 0, "an own list was probed");
    OK(ops->stream_destroy(ctx, live));
    close_dev();
}

Test(ze_streams, a_list_of_another_device_is_wrong_device) {
    setenv("DVSIM_ZE_DEVICES", "2", 1);
    open_ordinal(0);
    void *c0 = ctx, *c1 = NULL, *s0 = NULL, *s1 = NULL;
    dv_hal_init_args_t a = {.ordinal = 1};
    OK(ops->init(&a, &c1));
    OK(ops->stream_create(c0, &s0));
    OK(ops->stream_create(c1, &s1));
    IS(ops->stream_check(c0, s1), DV_ERROR_WRONG_DEVICE);
    cr_assert(strstr(td_hal_text(ops), "belongs to device 1"), "%s",
              td_hal_text(ops));
    IS(ops->stream_check(c1, s0), DV_ERROR_WRONG_DEVICE);
    /* Once device 1 is closed its lists are dead to device 0 too. */
    ops->fini(c1);
    IS(ops->stream_check(c0, s1), DV_ERROR_INVALID_ARGUMENT);
    OK(ops->stream_destroy(c0, s0));
    close_dev();
}

/* A foreign list is probed once with an empty barrier; a driver that
 * validates handles (the simulated one does) refuses junk and dead lists
 * there, so they never reach a copy. */
Test(ze_streams, foreign_lists_are_probed_with_an_empty_barrier) {
    open_dev();
    dv_ze_context_handle_t zc = NULL;
    dv_ze_command_list_handle_t fl = foreign_list(&zc);
    OK(ops->stream_check(ctx, fl));
    cr_assert_eq(sim_barriers(fl), 1);

    int local = 0;
    void *p = malloc(64);
    cr_assert(p != NULL);
    volatile uintptr_t freed = (uintptr_t)p; /* only the address is kept */
    free(p);
    dv_ze_command_list_handle_t gone = NULL;
    dv_ze_command_queue_desc_t qd;
    memset(&qd, 0, sizeof(qd));
    qd.stype = DV_ZE_STRUCTURE_TYPE_COMMAND_QUEUE_DESC;
    dv_ze_driver_handle_t drv = NULL;
    dv_ze_device_handle_t zdev = NULL;
    OK(dv__ze_find_device(0, NULL, &drv, &zdev));
    cr_assert_eq(dv__ze.zeCommandListCreateImmediate(zc, zdev, &qd, &gone),
                 DV_ZE_RESULT_SUCCESS);
    cr_assert_eq(dv__ze.zeCommandListDestroy(gone), DV_ZE_RESULT_SUCCESS);
    /* Below 64 KiB: refused without asking the driver. */
    IS(ops->stream_check(ctx, (void *)(uintptr_t)0x10),
       DV_ERROR_INVALID_ARGUMENT);
    cr_assert(strstr(td_hal_text(ops), "64 KiB"), "%s", td_hal_text(ops));
    void *junk[] = {&local, (void *)freed, gone};
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
        IS(ops->stream_check(ctx, junk[i]), DV_ERROR_INVALID_ARGUMENT);
        int64_t code = 0;
        char text[256];
        native(&code, text, sizeof(text));
        cr_assert_eq(code, NATIVE_INVALID_ARGUMENT, "%s", text);
        cr_assert(strstr(text, "zeCommandListAppendBarrier"), "%s", text);
    }

    /* Through the public API: the core asks once per stream, so a copy on
     * the foreign list costs one probe, however many copies follow. */
    dv_device_options_t o;
    dv_device_options_init(&o);
    o.backend = "levelzero";
    o.page_size = 2 * MIB;
    dv_device_t *dev = NULL;
    OK(dv_device_open(&o, &dev));
    dv_vbar_t *v = NULL;
    uint64_t g = 0;
    dv_vbar_info_t info;
    unsigned char in[4096], out[4096];
    memset(in, 0x3c, sizeof(in));
    memset(out, 0, sizeof(out));
    OK(dv_vbar_create(dev, 4 * MIB, &v));
    OK(dv_fault(dev, v, 0, 2 * MIB, &g));
    OK(dv_vbar_get_info(dev, v, &info));
    for (int i = 0; i < 3; i++) {
        OK(dv_copy_h2d(dev, info.base, in, sizeof(in), fl));
    }
    OK(dv_copy_d2h(dev, out, info.base, sizeof(out), fl));
    OK(dv_stream_synchronize(dev, fl));
    cr_assert_eq(memcmp(in, out, sizeof(in)), 0);
    cr_assert_eq(sim_barriers(fl), 2, "one probe per device, not per call");
    IS(dv_copy_h2d(dev, info.base, in, sizeof(in), (void *)(uintptr_t)0x10),
       DV_ERROR_INVALID_ARGUMENT);
    IS(dv_stream_destroy(dev, fl), DV_ERROR_INVALID_ARGUMENT); /* not ours */
    OK(dv_unpin(dev, v, 0, 2 * MIB, fl));
    OK(dv_vbar_destroy(dev, v));
    OK(dv_device_close(dev));

    cr_assert_eq(dv__ze.zeCommandListDestroy(fl), DV_ZE_RESULT_SUCCESS);
    cr_assert_eq(dv__ze.zeContextDestroy(zc), DV_ZE_RESULT_SUCCESS);
    close_dev();
}

/* Lists stream_create made belong to the device: fini destroys those the
 * caller left (DVSIM_ZE_STRICT=1 aborts on a context with live objects). */
Test(ze_streams, fini_destroys_the_streams_left_behind) {
    open_dev();
    void *s[3] = {NULL, NULL, NULL};
    for (int i = 0; i < 3; i++) {
        OK(ops->stream_create(ctx, &s[i]));
    }
    OK(ops->stream_destroy(ctx, s[1]));
    close_dev();
    cr_assert_eq(sim_barriers(s[0]), 0);
}
