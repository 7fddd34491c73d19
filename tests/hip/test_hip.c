/*
 * test_hip.c - HIP backend checks on the simulated runtime (libdv_fake_hip):
 * loading and its failures, caps, device binding, error translation, the
 * prop layouts, fences.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Criterion runs every test in a fresh process, so a test sets the
 * simulator's and the backend's environment before anything loads. The
 * test binary links the simulator too: the backend's dlopen of the same
 * file returns that very library, so the dvsim_hip_* hooks and direct HIP
 * calls see the state the backend drives.
 * The workaround tests are in test_hip_defects.c.
 */
#define _POSIX_C_SOURCE 200809L /* setenv, unsetenv */

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dynvram.h"
#include "dynvram_hal.h"
#include "tests/support/hal_text.h"
#include "hal/hip/hip_internal.h"
#include "tests/hip/hip_test.h"
#include "tests/fakes/hip/fake_hip.h"

/* ---- loading ------------------------------------------------------------ */

Test(hip_load, probe_names_the_library) {
    ht_sim_env(NULL, NULL);
    dv_backend_info_t info;
    ht_probe(&info);
    cr_assert(info.available, "unavailable: %s", info.reason);
    cr_assert_eq(info.device_count, 1);
    cr_assert(strstr(info.reason, DV_HIP_SIM_PATH), "%s", info.reason);
}

Test(hip_load, bad_path_is_unavailable_with_reason) {
    ht_sim_env(NULL, NULL);
    setenv("DYNVRAM_HIP_LIBRARY", "/nonexistent/libamdhip64.so.6", 1);
    dv_backend_info_t info;
    ht_probe(&info);
    cr_assert_not(info.available);
    cr_assert(strstr(info.reason, "/nonexistent/libamdhip64.so.6"), "%s",
              info.reason);
    dv_device_options_t o;
    dv_device_options_init(&o);
    o.backend = "hip";
    dv_device_t *dev = NULL;
    cr_assert_eq(dv_device_open(&o, &dev), DV_ERROR_BACKEND_UNAVAILABLE);
    cr_assert_null(dev);
    cr_assert(strstr(dv_last_error(), "/nonexistent/libamdhip64.so.6"), "%s",
              dv_last_error());
}

Test(hip_load, library_without_hip_symbols_is_unavailable) {
    ht_sim_env(NULL, NULL);
    setenv("DYNVRAM_HIP_LIBRARY", "libc.so.6", 1);
    dv_backend_info_t info;
    ht_probe(&info);
    cr_assert_not(info.available);
    cr_assert(strstr(info.reason, "lacks hipRuntimeGetVersion"), "%s",
              info.reason);
}

/* The real runtime, where one is installed (Debian's libamdhip64.so.5 on
 * CI): it loads, finds no GPU here, and says so. */
Test(hip_load, real_runtime_without_gpu_reports_no_device) {
    const char *real = "libamdhip64.so.5";
    ht_sim_env(NULL, NULL);
    if (access("/usr/lib/x86_64-linux-gnu/libamdhip64.so.5", R_OK) != 0) {
        cr_skip_test("no system libamdhip64.so.5");
    }
    setenv("DYNVRAM_HIP_LIBRARY", real, 1);
    dv_backend_info_t info;
    ht_probe(&info);
    if (info.available) {
        cr_skip_test("a HIP device is present: %s", info.reason);
    }
    cr_assert(strstr(info.reason, real), "%s", info.reason);
    cr_assert(strstr(info.reason, "no HIP device") ||
                  strstr(info.reason, "lacks"),
              "%s", info.reason);
}

Test(hip_load, no_device_is_unavailable) {
    ht_sim_env(NULL, NULL);
    setenv("DVSIM_HIP_DEVICES", "0", 1);
    dv_backend_info_t info;
    ht_probe(&info);
    cr_assert_not(info.available);
    cr_assert_eq(info.device_count, 0);
    cr_assert(strstr(info.reason, "no HIP device"), "%s", info.reason);
}

Test(hip_load, ordinal_beyond_count_is_not_found) {
    ht_sim_env(NULL, NULL);
    void *ctx = NULL;
    dv_hal_init_args_t a = {.ordinal = 1};
    cr_assert_eq(dv_hal_hip()->init(&a, &ctx), DV_ERROR_DEVICE_NOT_FOUND);
    a.ordinal = -1;
    cr_assert_eq(dv_hal_hip()->init(&a, &ctx), DV_ERROR_DEVICE_NOT_FOUND);
}

Test(hip_load, device_without_vmm_is_not_supported) {
    ht_sim_env(NULL, NULL);
    setenv("DVSIM_HIP_NO_VMM", "1", 1);
    void *ctx = NULL;
    dv_hal_init_args_t a = {.ordinal = 0};
    cr_assert_eq(dv_hal_hip()->init(&a, &ctx), DV_ERROR_NOT_SUPPORTED);
    cr_assert(strstr(td_hal_text(dv_hal_hip()), "virtual memory"), "%s",
              td_hal_text(dv_hal_hip()));
}

/* The fallback list, found through LD_LIBRARY_PATH (hip.fallback.* in
 * tests.cmake sets DV_HIP_EXPECT_LIBRARY and the search path). */
Test(hip_fallback, finds_the_runtime_by_soname) {
    const char *want = getenv("DV_HIP_EXPECT_LIBRARY");
    if (!want) {
        cr_skip_test("run by hip.fallback.* only");
    }
    unsetenv("DYNVRAM_HIP_LIBRARY");
    dv_backend_info_t info;
    ht_probe(&info);
    cr_assert(info.available, "unavailable: %s", info.reason);
    cr_assert_str_eq(dv__hip_library(), want);
    cr_assert(strncmp(info.reason, want, strlen(want)) == 0, "%s",
              info.reason);
}

/* ---- caps and data -------------------------------------------------------- */

static void check_granularity(const char *g, uint64_t want) {
    ht_sim_env(NULL, NULL);
    setenv("DVSIM_HIP_GRANULARITY", g, 1);
    dv_device_t *dev = ht_open(0, 0);
    dv_device_caps_t caps;
    HT_OK(dv_device_get_caps(dev, &caps));
    cr_assert_eq(caps.granularity, want);
    cr_assert_eq(caps.page_size % want, 0);
    ht_roundtrip(dev, 4);
    HT_OK(dv_device_close(dev));
}

/* Defect (e): the granularity is queried, whatever it is. */
Test(hip_caps, granularity_4k) { check_granularity("4K", 4096); }
Test(hip_caps, granularity_64k) { check_granularity("64K", 65536); }
Test(hip_caps, granularity_2m) { check_granularity("2M", 2u << 20); }

Test(hip_caps, flags_name_total) {
    ht_sim_env(NULL, NULL);
    setenv("DVSIM_HIP_CAPACITY", "96M", 1);
    dv_device_t *dev = ht_open(0, 0);
    dv_device_caps_t caps;
    HT_OK(dv_device_get_caps(dev, &caps));
    cr_assert_str_eq(caps.backend, "hip");
    cr_assert_str_eq(caps.name, "DVSIM HIP Device 0");
    cr_assert_eq(caps.total_memory, 96ull << 20);
    cr_assert(caps.flags & DV_CAP_FENCES);
    cr_assert(caps.flags & DV_CAP_ASYNC_COPY);
    cr_assert(caps.flags & DV_CAP_HOST_REGISTER);
    /* Device addresses are never CPU pointers for this backend, even
     * though the simulator's happen to be. */
    cr_assert_not(caps.flags & DV_CAP_HOST_ACCESSIBLE);
    HT_OK(dv_device_close(dev));
}

Test(hip_caps, data_survives_and_generation_moves) {
    ht_sim_env(NULL, NULL);
    dv_device_t *dev = ht_open(0, 0);
    ht_roundtrip(dev, 8);
    HT_OK(dv_device_check(dev));
    HT_OK(dv_device_close(dev));
}

/* Both hipMemAllocationProp layouts: a ROCm 5 runtime gets the old one. */
Test(hip_caps, rocm5_prop_layout) {
    ht_sim_env(NULL, NULL);
    setenv("DVSIM_HIP_VERSION", "50200000", 1);
    dv_device_t *dev = ht_open(0, 0);
    cr_assert_not(dv__hip_prop_is_v6());
    ht_roundtrip(dev, 2);
    HT_OK(dv_device_close(dev));
}

/* ...and the simulator tells the layouts apart, so the test above bites. */
Test(hip_caps, sim_rejects_the_wrong_layout) {
    ht_sim_env(NULL, NULL);
    setenv("DVSIM_HIP_VERSION", "50200000", 1);
    dv_hip_mem_alloc_prop_t p6 = {
        .type = DV_HIP_MEM_ALLOCATION_TYPE_PINNED,
        .location = {.type = DV_HIP_MEM_LOCATION_TYPE_DEVICE, .id = 0},
    };
    dv_hip_mem_handle_t h = NULL;
    cr_assert_eq(hipMemCreate(&h, 64u << 10, &p6, 0),
                 DV_HIP_ERROR_INVALID_VALUE);
}

Test(hip_caps, host_register) {
    ht_sim_env(NULL, NULL);
    dv_device_t *dev = ht_open(0, 0);
    static char buf[1 << 16];
    HT_OK(dv_host_register(dev, buf, sizeof(buf)));
    cr_assert_eq(dv_host_register(dev, buf, sizeof(buf)), DV_ERROR_BACKEND);
    HT_OK(dv_host_unregister(dev, buf));
    cr_assert_eq(dv_host_unregister(dev, buf), DV_ERROR_BACKEND);
    HT_OK(dv_device_close(dev));
}

/* ---- device binding --------------------------------------------------------- */

/* HIP's current device is per thread: every op binds its own and gives the
 * caller's back. With the caller on device 1, device 0's ops must still
 * reach device 0 (its memory info, its default stream for fences). */
Test(hip_bind, ops_bind_their_device_and_restore_the_callers) {
    ht_sim_env(NULL, NULL);
    setenv("DVSIM_HIP_DEVICES", "2", 1);
    setenv("DVSIM_HIP_CAPACITY", "64M,32M", 1);
    cr_assert_eq(hipSetDevice(1), DV_HIP_SUCCESS);
    dv_device_t *d0 = ht_open(0, 0);
    int cur = -1;
    cr_assert_eq(hipGetDevice(&cur), DV_HIP_SUCCESS);
    cr_assert_eq(cur, 1);
    dv_device_caps_t caps;
    HT_OK(dv_device_get_caps(d0, &caps));
    cr_assert_eq(caps.total_memory, 64ull << 20);
    ht_roundtrip(d0, 4); /* faults, copies, unpins (fences on stream 0) */
    cr_assert_eq(hipGetDevice(&cur), DV_HIP_SUCCESS);
    cr_assert_eq(cur, 1);
    cr_assert_eq(dvsim_hip_used(1), 0, "device 1 got device 0's memory");
    dv_device_t *d1 = ht_open(1, 0);
    HT_OK(dv_device_get_caps(d1, &caps));
    cr_assert_eq(caps.total_memory, 32ull << 20);
    cr_assert_eq(hipSetDevice(0), DV_HIP_SUCCESS);
    ht_roundtrip(d1, 2);
    cr_assert_eq(hipGetDevice(&cur), DV_HIP_SUCCESS);
    cr_assert_eq(cur, 0);
    HT_OK(dv_device_close(d1));
    HT_OK(dv_device_close(d0));
}

/* ---- errors ------------------------------------------------------------------ */

Test(hip_errors, out_of_memory_is_its_own_code) {
    ht_sim_env(NULL, NULL);
    setenv("DVSIM_HIP_CAPACITY", "4M", 1);
    const dv_hal_ops_t *ops = dv_hal_hip();
    void *ctx = NULL;
    dv_hal_init_args_t a = {.ordinal = 0};
    HT_OK(ops->init(&a, &ctx));
    dv_hal_mem_t m1 = 0, m2 = 0;
    HT_OK(ops->create(ctx, 4u << 20, &m1));
    cr_assert_eq(ops->create(ctx, 64u << 10, &m2),
                 DV_ERROR_OUT_OF_DEVICE_MEMORY);
    cr_assert(strstr(td_hal_text(ops), "hipMemCreate"), "%s", td_hal_text(ops));
    cr_assert(strstr(td_hal_text(ops), "hipErrorOutOfMemory"), "%s",
              td_hal_text(ops));
    int64_t code = 0;
    char text[128];
    ops->last_native_error(&code, text, sizeof(text));
    cr_assert_eq(code, DV_HIP_ERROR_OUT_OF_MEMORY);
    cr_assert(strstr(text, "hipErrorOutOfMemory"), "%s", text);
    HT_OK(ops->release(ctx, m1));
    HT_OK(ops->create(ctx, 64u << 10, &m2));
    HT_OK(ops->release(ctx, m2));
    ops->fini(ctx);
}

Test(hip_errors, other_failures_are_backend_errors) {
    ht_sim_env(NULL, NULL);
    const dv_hal_ops_t *ops = dv_hal_hip();
    void *ctx = NULL;
    dv_hal_init_args_t a = {.ordinal = 0};
    HT_OK(ops->init(&a, &ctx));
    static int not_a_handle;
    cr_assert_eq(ops->release(ctx, (dv_hal_mem_t)(uintptr_t)&not_a_handle),
                 DV_ERROR_BACKEND);
    int64_t code = 0;
    char text[128];
    ops->last_native_error(&code, text, sizeof(text));
    cr_assert_eq(code, DV_HIP_ERROR_INVALID_VALUE);
    cr_assert(strstr(text, "hipMemRelease"), "%s", text);
    cr_assert(strstr(td_hal_text(ops), "hipErrorInvalidValue"), "%s",
              td_hal_text(ops));
    /* Sizes off the granularity never reach the driver. */
    dv_hal_mem_t m = 0;
    cr_assert_eq(ops->create(ctx, 1000, &m), DV_ERROR_INVALID_ARGUMENT);
    uint64_t va = 0;
    cr_assert_eq(ops->reserve(ctx, 1000, &va), DV_ERROR_INVALID_ARGUMENT);
    ops->fini(ctx);
}

Test(hip_errors, map_and_unmap_outside_the_records) {
    ht_sim_env(NULL, NULL);
    const dv_hal_ops_t *ops = dv_hal_hip();
    void *ctx = NULL;
    dv_hal_init_args_t a = {.ordinal = 0};
    HT_OK(ops->init(&a, &ctx));
    dv_hal_caps_t caps;
    HT_OK(ops->get_caps(ctx, &caps));
    uint64_t g = caps.granularity, va = 0;
    dv_hal_mem_t m = 0;
    HT_OK(ops->reserve(ctx, 4 * g, &va));
    HT_OK(ops->create(ctx, 2 * g, &m));
    /* Past the end of the reservation, then a good map, then overlaps. */
    cr_assert_eq(ops->map(ctx, va + 3 * g, 2 * g, m), DV_ERROR_INVALID_ARGUMENT);
    HT_OK(ops->map(ctx, va, 2 * g, m));
    cr_assert_eq(ops->map(ctx, va + g, 2 * g, m), DV_ERROR_INVALID_ARGUMENT);
    /* Half a mapping, or nothing mapped. */
    cr_assert_eq(ops->unmap(ctx, va, g), DV_ERROR_INVALID_ARGUMENT);
    cr_assert_eq(ops->unmap(ctx, va + 2 * g, 2 * g), DV_ERROR_INVALID_ARGUMENT);
    cr_assert_eq(ops->unreserve(ctx, va, 4 * g), DV_ERROR_BUSY);
    HT_OK(ops->unmap(ctx, va, 2 * g));
    HT_OK(ops->release(ctx, m));
    HT_OK(ops->unreserve(ctx, va, 4 * g));
    cr_assert_eq(dvsim_hip_mapping_count(), 0);
    cr_assert_eq(dvsim_hip_used(0), 0);
    ops->fini(ctx);
}

/* ---- fences ---------------------------------------------------------------------- */

Test(hip_fence, not_ready_until_done) {
    ht_sim_env(NULL, NULL);
    setenv("DVSIM_HIP_EVENT_DELAY", "2", 1);
    const dv_hal_ops_t *ops = dv_hal_hip();
    void *ctx = NULL;
    dv_hal_init_args_t a = {.ordinal = 0};
    HT_OK(ops->init(&a, &ctx));
    void *stream = NULL;
    HT_OK(ops->stream_create(ctx, &stream));
    dv_hal_fence_t f = NULL;
    HT_OK(ops->fence_record(ctx, stream, &f));
    cr_assert_eq(ops->fence_query(ctx, f), DV_NOT_READY);
    cr_assert_eq(ops->fence_query(ctx, f), DV_NOT_READY);
    HT_OK(ops->fence_query(ctx, f));
    ops->fence_destroy(ctx, f);
    /* A pooled event is recorded again, and waiting completes it. */
    HT_OK(ops->fence_record(ctx, NULL, &f));
    cr_assert_eq(dvsim_hip_pending_events(), 1);
    HT_OK(ops->fence_wait(ctx, f));
    HT_OK(ops->fence_query(ctx, f));
    ops->fence_destroy(ctx, f);
    HT_OK(ops->fence_record(ctx, stream, &f));
    HT_OK(ops->stream_synchronize(ctx, stream));
    HT_OK(ops->fence_query(ctx, f));
    ops->fence_destroy(ctx, f);
    HT_OK(ops->stream_destroy(ctx, stream));
    ops->fini(ctx);
}

/* ---- stream_check (issue 9) --------------------------------------------- */

#define HIP_CONTEXT_IS_DESTROYED 709

/* A direct runtime call (hipError_t, not dv_result_t) succeeds. */
#define HIP_OK(call)                                                           \
    do {                                                                       \
        dv_hip_error_t hip_e_ = (call);                                        \
        cr_assert_eq(hip_e_, DV_HIP_SUCCESS, "%s -> %d", #call, (int)hip_e_);  \
    } while (0)

/* Junk values and a destroyed stream: the sim looks streams up as ROCm
 * does, so each is refused with ROCm's code and nothing crashes. */
static void expect_junk_refused(const dv_hal_ops_t *ops, void *ctx,
                                const char *query) {
    int local = 0;
    void *p = malloc(64);
    cr_assert(p != NULL);
    volatile uintptr_t freed = (uintptr_t)p; /* only the address is kept */
    free(p);
    void *dead = NULL;
    HT_OK(ops->stream_create(ctx, &dead));
    HT_OK(ops->stream_destroy(ctx, dead));
    void *junk[] = {(void *)(uintptr_t)0x10, &local, (void *)freed, dead};
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
        cr_assert_eq(ops->stream_check(ctx, junk[i]), DV_ERROR_INVALID_ARGUMENT,
                     "stream_check(%p): %s", junk[i], td_hal_text(ops));
        int64_t code = 0;
        char text[256] = "";
        ops->last_native_error(&code, text, sizeof(text));
        cr_assert_eq(code, HIP_CONTEXT_IS_DESTROYED, "%s", text);
        cr_assert(strstr(text, query), "'%s' does not name %s", text, query);
    }
}

Test(hip_streams, check_refuses_junk_and_dead_streams) {
    ht_sim_env(NULL, NULL);
    const dv_hal_ops_t *ops = dv_hal_hip();
    void *ctx = NULL;
    dv_hal_init_args_t a = {.ordinal = 0};
    HT_OK(ops->init(&a, &ctx));
    cr_assert_not_null(ops->stream_check);
    void *s = NULL;
    HT_OK(ops->stream_create(ctx, &s));
    HT_OK(ops->stream_check(ctx, s));
    expect_junk_refused(ops, ctx, "hipStreamGetDevice");
    HT_OK(ops->stream_check(ctx, s));
    HT_OK(ops->stream_destroy(ctx, s));
    ops->fini(ctx);
}

/* hipStreamGetDevice names the stream's device; the check binds its own
 * device and leaves the caller's current device alone. */
Test(hip_streams, check_tells_another_device) {
    ht_sim_env(NULL, NULL);
    setenv("DVSIM_HIP_DEVICES", "2", 1);
    const dv_hal_ops_t *ops = dv_hal_hip();
    void *ctx[2] = {NULL, NULL};
    void *s[2] = {NULL, NULL};
    for (int k = 0; k < 2; k++) {
        dv_hal_init_args_t a = {.ordinal = k};
        HT_OK(ops->init(&a, &ctx[k]));
        HT_OK(ops->stream_create(ctx[k], &s[k]));
    }
    HIP_OK(hipSetDevice(1));
    for (int k = 0; k < 2; k++) {
        HT_OK(ops->stream_check(ctx[k], s[k]));
        cr_assert_eq(ops->stream_check(ctx[k], s[1 - k]), DV_ERROR_WRONG_DEVICE,
                     "%s", td_hal_text(ops));
        cr_assert(strstr(td_hal_text(ops), "belongs to device"), "%s",
                  td_hal_text(ops));
    }
    int cur = -1;
    HIP_OK(hipGetDevice(&cur));
    cr_assert_eq(cur, 1, "stream_check changed the current device");
    for (int k = 0; k < 2; k++) {
        HT_OK(ops->stream_destroy(ctx[k], s[k]));
        ops->fini(ctx[k]);
    }
}

/* A runtime without hipStreamGetDevice (ROCm < 5.6): hipStreamGetFlags
 * still refuses dead and junk streams but cannot tell the device; without
 * either query streams pass unchecked. */
Test(hip_streams, check_falls_back_to_get_flags_then_to_nothing) {
    ht_sim_env(NULL, NULL);
    setenv("DVSIM_HIP_DEVICES", "2", 1);
    const dv_hal_ops_t *ops = dv_hal_hip();
    void *ctx[2] = {NULL, NULL};
    void *s1 = NULL;
    for (int k = 0; k < 2; k++) {
        dv_hal_init_args_t a = {.ordinal = k};
        HT_OK(ops->init(&a, &ctx[k]));
    }
    HT_OK(ops->stream_create(ctx[1], &s1));
    cr_assert_not_null(dv__hip.hipStreamGetDevice);
    cr_assert_not_null(dv__hip.hipStreamGetFlags);
    dv_hip_stream_get_device_fn get_device = dv__hip.hipStreamGetDevice;
    dv_hip_stream_get_flags_fn get_flags = dv__hip.hipStreamGetFlags;

    dv__hip.hipStreamGetDevice = NULL;
    expect_junk_refused(ops, ctx[0], "hipStreamGetFlags");
    HT_OK(ops->stream_check(ctx[0], s1)); /* cannot tell the device */

    dv__hip.hipStreamGetFlags = NULL;
    HT_OK(ops->stream_check(ctx[0], (void *)(uintptr_t)0x10)); /* unchecked */

    dv__hip.hipStreamGetDevice = get_device;
    dv__hip.hipStreamGetFlags = get_flags;
    cr_assert_eq(ops->stream_check(ctx[0], s1), DV_ERROR_WRONG_DEVICE);
    HT_OK(ops->stream_destroy(ctx[1], s1));
    for (int k = 0; k < 2; k++) {
        ops->fini(ctx[k]);
    }
}

/* The simulator itself: streams and events are looked up, dead ones are
 * never reused, and the codes are ROCm's. */
Test(hip_streams, sim_looks_handles_up_and_never_reuses_them) {
    ht_sim_env(NULL, NULL);
    dv_backend_info_t info;
    ht_probe(&info);
    cr_assert(info.available, "%s", info.reason);
    enum { N = 300 };
    static dv_hip_stream_t st[N];
    static dv_hip_event_t ev[N];
    dv_hip_device_t dev = -1;
    unsigned int flags = 1;
    for (int i = 0; i < N; i++) {
        HIP_OK(hipStreamCreate(&st[i]));
        HIP_OK(hipEventCreateWithFlags(&ev[i], DV_HIP_EVENT_DISABLE_TIMING));
        for (int j = 0; j < i; j++) {
            cr_assert(st[i] != st[j] && ev[i] != ev[j],
                      "a dead handle's address came back (%d, %d)", i, j);
        }
        HIP_OK(hipStreamGetDevice(st[i], &dev));
        cr_assert_eq(dev, 0);
        HIP_OK(hipStreamGetFlags(st[i], &flags));
        cr_assert_eq(flags, 0);
        HIP_OK(hipEventRecord(ev[i], st[i]));
        HIP_OK(hipEventDestroy(ev[i]));
        HIP_OK(hipStreamDestroy(st[i]));
    }
    for (int i = 0; i < N; i++) {
        cr_assert_eq(hipStreamDestroy(st[i]), HIP_CONTEXT_IS_DESTROYED);
        cr_assert_eq(hipStreamSynchronize(st[i]), HIP_CONTEXT_IS_DESTROYED);
        cr_assert_eq(hipStreamGetDevice(st[i], &dev), HIP_CONTEXT_IS_DESTROYED);
        cr_assert_eq(hipEventQuery(ev[i]), DV_HIP_ERROR_INVALID_HANDLE);
        cr_assert_eq(hipEventDestroy(ev[i]), DV_HIP_ERROR_INVALID_HANDLE);
    }
    dv_hip_stream_t junk = (dv_hip_stream_t)(uintptr_t)0x10;
    cr_assert_eq(hipStreamGetFlags(junk, &flags), HIP_CONTEXT_IS_DESTROYED);
    cr_assert_eq(hipEventRecord((dv_hip_event_t)(uintptr_t)0x10, NULL),
                 DV_HIP_ERROR_INVALID_HANDLE);
    cr_assert_eq(hipStreamDestroy(NULL), DV_HIP_ERROR_INVALID_HANDLE);
    cr_assert_eq(hipStreamGetFlags(NULL, &flags), DV_HIP_ERROR_INVALID_VALUE);
    HIP_OK(hipStreamGetDevice(NULL, &dev)); /* the current device */
    cr_assert_eq(dev, 0);
}
