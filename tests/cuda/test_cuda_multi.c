/*
 * test_cuda_multi.c - the CUDA backend with two GPUs: whatever context the
 * calling thread has current (the other device's primary context, a context
 * the caller created on the other device, or none), every dynvram call on
 * device N runs on device N and leaves the caller's context as it was.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Runs on the real driver (cuda.multi) and on the simulated one with two
 * devices (cuda-fake.multi, DV_FAKE_CUDA_DEVICES=2). The whole binary exits
 * 77 (skipped) with the reason when the driver is missing or has fewer than
 * two devices.
 *
 * Where the memory lives is asked of the driver, not of dynvram:
 * cuPointerGetAttribute(CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL) on the mapped
 * VBAR address (falling back to the allocation's properties through
 * cuMemRetainAllocationHandle where a driver does not answer it for VMM
 * mappings), and each device's free memory through cuMemGetInfo under its
 * own primary context. The simulated driver is strict where a missing
 * context switch would show: streams and events belong to the context that
 * was current at their creation, and cuMemGetInfo reports the current
 * context's device.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/os.h"
#include "hal/cuda/cuda_load.h"
#include "testdev.h"

#define MIB (1ull << 20)
#define PAGE (2 * MIB)
#define PAGES 8

/* ---- what the test needs beyond cuda_abi.h (values from cuda.h) ---- */

#define CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL 9
typedef dv_cu_result (*pfn_pointer_get_attribute)(void *data, int attribute,
                                                  dv_cu_deviceptr ptr);
typedef dv_cu_result (*pfn_retain_allocation_handle)(dv_cu_mem_handle *handle,
                                                     void *addr);
typedef dv_cu_result (*pfn_allocation_properties)(
    dv_cu_mem_allocation_prop *prop, dv_cu_mem_handle handle);

static dv__cu_api_t raw;
static pfn_pointer_get_attribute raw_pointer_get_attribute;
static pfn_retain_allocation_handle raw_retain_allocation_handle;
static pfn_allocation_properties raw_allocation_properties;

#define RAW_OK(call)                                                           \
    do {                                                                       \
        dv_cu_result raw_rc_ = (call);                                         \
        char raw_d_[192];                                                      \
        dv__cu_describe(&raw, raw_rc_, raw_d_, sizeof(raw_d_));                \
        cr_assert_eq(raw_rc_, DV_CU_SUCCESS, "%s -> %s", #call, raw_d_);       \
    } while (0)

/* Resolve an entry point outside the table, at the table's ABI version. */
static void *raw_proc(const char *name) {
    dv_cu_pfn_get_proc_address_v2 gpa =
        (dv_cu_pfn_get_proc_address_v2)dv__lib_sym(raw.lib,
                                                   "cuGetProcAddress_v2");
    void *fn = NULL;
    dv_cu_proc_query_result status = 0;
    if (!gpa || gpa(name, &fn, DV_CU_ABI_VERSION,
                    DV_CU_GET_PROC_ADDRESS_LEGACY_STREAM, &status) !=
                    DV_CU_SUCCESS) {
        return NULL;
    }
    return fn;
}

static void raw_load(void) {
    char reason[256];
    dv_result_t r = dv__cu_load(NULL, &raw, reason, sizeof(reason));
    cr_assert_eq(r, DV_OK, "raw libcuda load: %s", reason);
    raw_pointer_get_attribute =
        (pfn_pointer_get_attribute)raw_proc("cuPointerGetAttribute");
    raw_retain_allocation_handle =
        (pfn_retain_allocation_handle)raw_proc("cuMemRetainAllocationHandle");
    raw_allocation_properties = (pfn_allocation_properties)raw_proc(
        "cuMemGetAllocationPropertiesFromHandle");
}

/* Skip the whole binary (CTest's 77) unless the backend sees two devices.
 * testdev.c's hook has already skipped it if the driver is missing. */
ReportHook(PRE_ALL)(struct criterion_test_set *set) {
    (void)set;
    int count = 0;
    char reason[256] = "";
    const dv_hal_ops_t *ops = dv_hal_cuda();
    if (ops->probe(&count, reason, sizeof(reason)) != DV_OK || count < 2) {
        fprintf(stderr, "SKIP: cuda.multi needs two CUDA devices; %d found%s%s\n",
                count, reason[0] ? ": " : "", reason);
        exit(77);
    }
}

static dv_cu_context raw_current(void) {
    dv_cu_context c = (dv_cu_context)(uintptr_t)0x1;
    RAW_OK(raw.cuCtxGetCurrent(&c));
    return c;
}

static void raw_clear_current(void) {
    dv_cu_context c = NULL;
    while (raw_current() != NULL) {
        RAW_OK(raw.cuCtxPopCurrent(&c));
    }
}

/* Free memory of device `ordinal`, asked under its own primary context. */
static uint64_t raw_free(int ordinal) {
    dv_cu_device d = 0;
    dv_cu_context ctx = NULL, popped = NULL;
    size_t free_b = 0, total_b = 0;
    RAW_OK(raw.cuDeviceGet(&d, ordinal));
    RAW_OK(raw.cuDevicePrimaryCtxRetain(&ctx, d));
    RAW_OK(raw.cuCtxPushCurrent(ctx));
    RAW_OK(raw.cuMemGetInfo(&free_b, &total_b));
    RAW_OK(raw.cuCtxPopCurrent(&popped));
    RAW_OK(raw.cuDevicePrimaryCtxRelease(d));
    return free_b;
}

/* Physical memory on device `ordinal` that nobody maps: makes that device's
 * free memory visibly different from the other's. Created and released
 * under the device's primary context. */
static dv_cu_mem_handle raw_ballast(int ordinal, uint64_t size) {
    dv_cu_device d = 0;
    dv_cu_context ctx = NULL, popped = NULL;
    dv_cu_mem_handle h = 0;
    dv_cu_mem_allocation_prop prop;
    memset(&prop, 0, sizeof(prop));
    prop.type = DV_CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = DV_CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = ordinal;
    RAW_OK(raw.cuDeviceGet(&d, ordinal));
    RAW_OK(raw.cuDevicePrimaryCtxRetain(&ctx, d));
    RAW_OK(raw.cuCtxPushCurrent(ctx));
    RAW_OK(raw.cuMemCreate(&h, size, &prop, 0));
    RAW_OK(raw.cuCtxPopCurrent(&popped));
    return h; /* the primary context stays retained until the release */
}

static void raw_ballast_release(int ordinal, dv_cu_mem_handle h) {
    dv_cu_device d = 0;
    dv_cu_context ctx = NULL, popped = NULL;
    RAW_OK(raw.cuDeviceGet(&d, ordinal));
    RAW_OK(raw.cuDevicePrimaryCtxRetain(&ctx, d));
    RAW_OK(raw.cuCtxPushCurrent(ctx));
    RAW_OK(raw.cuMemRelease(h));
    RAW_OK(raw.cuCtxPopCurrent(&popped));
    RAW_OK(raw.cuDevicePrimaryCtxRelease(d));
    RAW_OK(raw.cuDevicePrimaryCtxRelease(d));
}

/* The device whose memory is mapped at `va`, as the driver sees it. */
static int raw_ordinal_of(uint64_t va) {
    int ord = -1;
    dv_cu_result rc = DV_CU_ERROR_NOT_FOUND;
    if (raw_pointer_get_attribute) {
        rc = raw_pointer_get_attribute(&ord, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL,
                                       va);
    }
    if (rc == DV_CU_SUCCESS) {
        return ord;
    }
    cr_assert(raw_retain_allocation_handle && raw_allocation_properties,
              "cuPointerGetAttribute(DEVICE_ORDINAL, 0x%llx) -> %d and no "
              "cuMemRetainAllocationHandle to fall back on",
              (unsigned long long)va, rc);
    dv_cu_mem_handle h = 0;
    dv_cu_mem_allocation_prop prop;
    memset(&prop, 0, sizeof(prop));
    RAW_OK(raw_retain_allocation_handle(&h, (void *)(uintptr_t)va));
    RAW_OK(raw_allocation_properties(&prop, h));
    RAW_OK(raw.cuMemRelease(h)); /* the retain took a reference */
    cr_assert_eq(prop.location.type, DV_CU_MEM_LOCATION_TYPE_DEVICE);
    return prop.location.id;
}

static void fill(uint8_t *p, uint64_t n, uint32_t seed) {
    uint32_t x = seed * 2654435761u + 1;
    for (uint64_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = (uint8_t)(x >> 16);
    }
}

static dv_device_t *open_ordinal(int ordinal) {
    dv_device_options_t o;
    td_options(&o, 0);
    o.page_size = PAGE;
    o.ordinal = ordinal;
    return td_open_opts(&o);
}

/* Check after a call that the caller's context is still `want`. */
#define KEEPS(want, call)                                                      \
    do {                                                                       \
        TD_OK(call);                                                           \
        cr_assert_eq(raw_current(), (want), "%s changed the current context",  \
                     #call);                                                   \
    } while (0)

/*
 * With `want` current on this thread (it lives on device `other`, or is
 * NULL), run a whole cycle on dynvram device `target`: open, stream, VBAR,
 * fault, copy in, read back, unpin, evict, fault again, destroy, close.
 */
static void cycle_on(int target, int other, dv_cu_context want) {
    const uint64_t n = PAGES * PAGE;
    uint8_t *src = malloc(n);
    uint8_t *back = malloc(n);
    cr_assert(src && back);
    dv_vbar_t *v = NULL;
    void *s = NULL;
    uint64_t g1 = 0, g2 = 0, freed = 0;
    dv_vbar_info_t info;

    dv_device_t *dev = open_ordinal(target);
    cr_assert_eq(raw_current(), want, "dv_device_open changed the context");
    dv_device_caps_t caps;
    KEEPS(want, dv_device_get_caps(dev, &caps));
    cr_assert_eq(caps.ordinal, target);

    /* The budget is the target's free memory, not the current context's:
     * with a quarter of `other` (at most 8 GiB) taken, the two differ. */
    uint64_t ballast = caps.total_memory / 4;
    ballast = ballast > (8ull << 30) ? (8ull << 30) : ballast;
    ballast -= ballast % caps.granularity;
    dv_cu_mem_handle bh = raw_ballast(other, ballast);
    cr_assert_eq(raw_current(), want);
    uint64_t ft = raw_free(target), fo = raw_free(other);
    dv_device_stats_t st;
    KEEPS(want, dv_device_get_stats(dev, &st));
    uint64_t slack = ballast / 2;
    cr_assert(st.budget + slack > ft && st.budget < ft + slack,
              "device %d budget %llu MiB, its free memory %llu MiB (device %d "
              "has %llu MiB free)", target, (unsigned long long)(st.budget >> 20),
              (unsigned long long)(ft >> 20), other,
              (unsigned long long)(fo >> 20));
    raw_ballast_release(other, bh);
    cr_assert_eq(raw_current(), want);

    KEEPS(want, dv_stream_create(dev, &s));
    KEEPS(want, dv_vbar_create(dev, n, &v));
    KEEPS(want, dv_vbar_get_info(dev, v, &info));

    uint64_t free_t = raw_free(target), free_o = raw_free(other);
    KEEPS(want, dv_fault(dev, v, 0, n, &g1));
    uint64_t used_t = free_t - raw_free(target);
    uint64_t used_o = free_o - raw_free(other);
    cr_assert_geq(used_t, n, "device %d: %llu bytes taken for %llu mapped",
                  target, (unsigned long long)used_t, (unsigned long long)n);
    cr_assert_lt((int64_t)used_o, (int64_t)(n / 2),
                 "device %d lost %llu bytes while device %d was filled", other,
                 (unsigned long long)used_o, target);
    for (uint64_t i = 0; i < PAGES; i++) {
        int ord = raw_ordinal_of(info.base + i * PAGE + PAGE / 2);
        cr_assert_eq(ord, target, "page %llu of a device %d VBAR is on device %d",
                     (unsigned long long)i, target, ord);
    }

    fill(src, n, (uint32_t)target + 1);
    memset(back, 0, n);
    KEEPS(want, dv_copy_h2d(dev, info.base, src, n, s));
    KEEPS(want, dv_copy_d2h(dev, back, info.base, n, s));
    KEEPS(want, dv_stream_synchronize(dev, s));
    cr_assert(memcmp(src, back, n) == 0, "data differs after the round trip");
    KEEPS(want, dv_unpin(dev, v, 0, n, s));
    KEEPS(want, dv_vbar_evict(dev, v, UINT64_MAX, &freed));
    cr_assert_eq(freed, n);
    KEEPS(want, dv_device_trim_pool(dev));

    KEEPS(want, dv_vbar_prioritize(dev, v));
    KEEPS(want, dv_fault(dev, v, PAGE, PAGE, &g2));
    cr_assert_neq(g2, g1);
    cr_assert_eq(raw_ordinal_of(info.base + PAGE), target, "after refault");
    KEEPS(want, dv_copy_h2d(dev, info.base + PAGE, src, PAGE, s));
    KEEPS(want, dv_copy_d2h(dev, back, info.base + PAGE, PAGE, s));
    KEEPS(want, dv_stream_synchronize(dev, s));
    cr_assert(memcmp(src, back, PAGE) == 0, "data differs after the refault");
    KEEPS(want, dv_unpin(dev, v, PAGE, PAGE, s));
    KEEPS(want, dv_device_get_stats(dev, &(dv_device_stats_t){0}));
    KEEPS(want, dv_device_check(dev));
    KEEPS(want, dv_vbar_destroy(dev, v));
    KEEPS(want, dv_stream_destroy(dev, s));
    KEEPS(want, dv_device_close(dev));
    free(src);
    free(back);
}

typedef enum { OTHER_PRIMARY, OTHER_CREATED, NO_CONTEXT } ctx_mode_t;

static void with_context(int target, ctx_mode_t mode) {
    int other = 1 - target;
    dv_cu_device od = 0;
    dv_cu_context ctx = NULL;
    raw_load();
    raw_clear_current();
    RAW_OK(raw.cuDeviceGet(&od, other));
    if (mode == OTHER_PRIMARY) {
        RAW_OK(raw.cuDevicePrimaryCtxRetain(&ctx, od));
        RAW_OK(raw.cuCtxSetCurrent(ctx));
    } else if (mode == OTHER_CREATED) {
        /* cuCtxCreate makes the new context current on this thread. */
        RAW_OK(raw.cuCtxCreate(&ctx, NULL, 0, 0, od));
    }
    cr_assert_eq(raw_current(), ctx);
    cycle_on(target, other, ctx);
    if (mode == OTHER_PRIMARY) {
        RAW_OK(raw.cuCtxSetCurrent(NULL));
        RAW_OK(raw.cuDevicePrimaryCtxRelease(od));
    } else if (mode == OTHER_CREATED) {
        RAW_OK(raw.cuCtxDestroy(ctx));
    }
    dv__cu_unload(&raw);
}

Test(cuda_multi, device0_with_device1_primary_current) {
    with_context(0, OTHER_PRIMARY);
}
Test(cuda_multi, device0_with_a_created_device1_context_current) {
    with_context(0, OTHER_CREATED);
}
Test(cuda_multi, device0_with_no_context_current) {
    with_context(0, NO_CONTEXT);
}
Test(cuda_multi, device1_with_device0_primary_current) {
    with_context(1, OTHER_PRIMARY);
}
Test(cuda_multi, device1_with_a_created_device0_context_current) {
    with_context(1, OTHER_CREATED);
}
Test(cuda_multi, device1_with_no_context_current) {
    with_context(1, NO_CONTEXT);
}

/*
 * Both devices open at once, calls interleaved, device 1's primary context
 * current throughout: each VBAR's pages sit on its own device, each
 * device's copies run on its own streams, and evicting device 0 leaves
 * device 1's pages and data in place.
 */
Test(cuda_multi, both_devices_interleaved) {
    const uint64_t n = 2 * PAGE;
    uint8_t *src[2], *back = malloc(n);
    dv_device_t *d[2];
    dv_vbar_t *v[2];
    void *s[2];
    dv_vbar_info_t info[2];
    uint64_t g;
    dv_cu_device d1 = 0;
    dv_cu_context c1 = NULL;
    raw_load();
    raw_clear_current();
    RAW_OK(raw.cuDeviceGet(&d1, 1));
    RAW_OK(raw.cuDevicePrimaryCtxRetain(&c1, d1));
    RAW_OK(raw.cuCtxSetCurrent(c1));
    cr_assert(back != NULL);
    for (int k = 0; k < 2; k++) {
        d[k] = open_ordinal(k);
        src[k] = malloc(n);
        cr_assert(src[k] != NULL);
        fill(src[k], n, 40u + (uint32_t)k);
        KEEPS(c1, dv_stream_create(d[k], &s[k]));
        KEEPS(c1, dv_vbar_create(d[k], 4 * PAGE, &v[k]));
        KEEPS(c1, dv_vbar_get_info(d[k], v[k], &info[k]));
    }
    for (int k = 0; k < 2; k++) {
        KEEPS(c1, dv_fault(d[k], v[k], 0, n, &g));
    }
    for (int k = 0; k < 2; k++) {
        KEEPS(c1, dv_copy_h2d(d[k], info[k].base, src[k], n, s[k]));
    }
    for (int k = 0; k < 2; k++) {
        memset(back, 0, n);
        KEEPS(c1, dv_copy_d2h(d[k], back, info[k].base, n, s[k]));
        KEEPS(c1, dv_stream_synchronize(d[k], s[k]));
        cr_assert(memcmp(back, src[k], n) == 0, "device %d data", k);
        cr_assert_eq(raw_ordinal_of(info[k].base), k);
        cr_assert_eq(raw_ordinal_of(info[k].base + PAGE), k);
    }
    KEEPS(c1, dv_unpin(d[0], v[0], 0, n, s[0]));
    KEEPS(c1, dv_vbar_evict(d[0], v[0], UINT64_MAX, &g));
    cr_assert_eq(g, n);
    memset(back, 0, n);
    KEEPS(c1, dv_copy_d2h(d[1], back, info[1].base, n, s[1]));
    KEEPS(c1, dv_stream_synchronize(d[1], s[1]));
    cr_assert(memcmp(back, src[1], n) == 0, "device 1 data after evicting 0");
    cr_assert_eq(td_resident_pages(d[1], v[1]), 2);
    KEEPS(c1, dv_unpin(d[1], v[1], 0, n, s[1]));
    for (int k = 0; k < 2; k++) {
        KEEPS(c1, dv_device_check(d[k]));
        KEEPS(c1, dv_vbar_destroy(d[k], v[k]));
        KEEPS(c1, dv_stream_destroy(d[k], s[k]));
        KEEPS(c1, dv_device_close(d[k]));
        free(src[k]);
    }
    free(back);
    RAW_OK(raw.cuCtxSetCurrent(NULL));
    RAW_OK(raw.cuDevicePrimaryCtxRelease(d1));
    dv__cu_unload(&raw);
}

/*
 * stream_check across GPUs: a stream of the other device's primary context
 * (made by its own backend instance) or of a context the caller created on
 * the other device is DV_ERROR_WRONG_DEVICE; one of a created context on
 * the same device is accepted. Through the public API, a stream of device
 * 1 passed to device 0 is refused by every call that takes one, and
 * nothing of device 0 changes.
 */
Test(cuda_multi, stream_check_tells_the_device) {
    const dv_hal_ops_t *ops = dv_hal_cuda();
    void *ctx[2] = {NULL, NULL};
    void *s[2] = {NULL, NULL};
    for (int k = 0; k < 2; k++) {
        dv_hal_init_args_t a = {.ordinal = k};
        TD_OK(ops->init(&a, &ctx[k]));
        TD_OK(ops->stream_create(ctx[k], &s[k]));
    }
    TD_OK(ops->stream_check(ctx[0], s[0]));
    TD_OK(ops->stream_check(ctx[1], s[1]));
    TD_IS(ops->stream_check(ctx[0], s[1]), DV_ERROR_WRONG_DEVICE);
    TD_IS(ops->stream_check(ctx[1], s[0]), DV_ERROR_WRONG_DEVICE);

    raw_load();
    raw_clear_current();
    for (int k = 0; k < 2; k++) {
        dv_cu_device dev = 0;
        dv_cu_context own = NULL, popped = NULL;
        dv_cu_stream os = NULL;
        RAW_OK(raw.cuDeviceGet(&dev, k));
        RAW_OK(raw.cuCtxCreate(&own, NULL, 0, 0, dev));
        RAW_OK(raw.cuStreamCreate(&os, DV_CU_STREAM_NON_BLOCKING));
        RAW_OK(raw.cuCtxPopCurrent(&popped));
        TD_OK(ops->stream_check(ctx[k], os));
        TD_IS(ops->stream_check(ctx[1 - k], os), DV_ERROR_WRONG_DEVICE);
        cr_assert_null(raw_current(), "stream_check left a context current");
        RAW_OK(raw.cuCtxPushCurrent(own));
        RAW_OK(raw.cuStreamDestroy(os));
        RAW_OK(raw.cuCtxDestroy(own));
    }
    for (int k = 0; k < 2; k++) {
        TD_OK(ops->stream_destroy(ctx[k], s[k]));
        ops->fini(ctx[k]);
    }
    dv__cu_unload(&raw);
}
