/*
 * test_hip_defects.c - the ROCm VMM defects and the backend's workarounds.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * For each defect: a simulator-level test calls the simulated runtime
 * directly, without the backend, and sees the defect (so the switch
 * bites); a backend test with the defect on behaves correctly; where the
 * workaround can be turned off (DYNVRAM_HIP_WORKAROUNDS), a backend test
 * without it fails the same way, so the workaround is what makes it work.
 */
#define _POSIX_C_SOURCE 200809L /* setenv, unsetenv */

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "dynvram.h"
#include "dynvram_hal.h"
#include "hal/hip/hip_internal.h"
#include "tests/hip/hip_test.h"
#include "tests/fakes/hip/fake_hip.h"

#define G (64u << 10) /* the simulator's default granularity */

#define SIM_OK(call)                                                           \
    do {                                                                       \
        dv_hip_error_t sim_e_ = (call);                                        \
        cr_assert_eq(sim_e_, DV_HIP_SUCCESS, "%s -> %s", #call,                \
                     hipGetErrorName(sim_e_));                                 \
    } while (0)

/* The default simulated runtime is HIP 7: the ROCm >= 6 prop layout. */
static const dv_hip_mem_alloc_prop_t sim_prop = {
    .type = DV_HIP_MEM_ALLOCATION_TYPE_PINNED,
    .location = {.type = DV_HIP_MEM_LOCATION_TYPE_DEVICE, .id = 0},
};

static void sim_map_rw(void *va, size_t size, dv_hip_mem_handle_t h) {
    SIM_OK(hipMemMap(va, size, 0, h, 0));
    dv_hip_mem_access_desc_t d = {
        .location = {.type = DV_HIP_MEM_LOCATION_TYPE_DEVICE, .id = 0},
        .flags = DV_HIP_MEM_ACCESS_FLAGS_PROT_READ_WRITE,
    };
    SIM_OK(hipMemSetAccess(va, size, &d, 1));
}

/* A device with one VBAR of `pages` pages faulted in, then evicted. */
static void fault_then_evict(dv_device_t *dev, uint64_t pages,
                             dv_vbar_t **out) {
    dv_vbar_t *v = NULL;
    HT_OK(dv_vbar_create(dev, pages * HT_PAGE, &v));
    HT_OK(dv_fault(dev, v, 0, pages * HT_PAGE, NULL));
    HT_OK(dv_unpin(dev, v, 0, pages * HT_PAGE, NULL));
    cr_assert_eq(dvsim_hip_used(0), pages * HT_PAGE);
    uint64_t freed = 0;
    HT_OK(dv_vbar_evict(dev, v, pages * HT_PAGE, &freed));
    cr_assert_eq(freed, pages * HT_PAGE);
    HT_OK(dv_device_trim_pool(dev));
    *out = v;
}

/* ---- (a) unmap without re-protect keeps the memory (Linux) -------------- */

Test(hip_defect_reprotect, sim_keeps_unmapped_memory) {
    ht_sim_env("unmap_needs_reprotect", NULL);
    void *va = NULL;
    dv_hip_mem_handle_t h = NULL;
    SIM_OK(hipMemAddressReserve(&va, 4 * G, 0, NULL, 0));
    SIM_OK(hipMemCreate(&h, 4 * G, &sim_prop, 0));
    sim_map_rw(va, 4 * G, h);
    SIM_OK(hipMemUnmap(va, 4 * G));
    SIM_OK(hipMemRelease(h));
    cr_assert_eq(dvsim_hip_used(0), 4 * G, "the defect did not bite");
    size_t free_b = 0, total_b = 0;
    SIM_OK(hipMemGetInfo(&free_b, &total_b));
    cr_assert_eq(total_b - free_b, 4 * G);
    SIM_OK(hipMemAddressFree(va, 4 * G)); /* only freeing the range helps */
    cr_assert_eq(dvsim_hip_used(0), 0);
}

Test(hip_defect_reprotect, backend_returns_evicted_memory) {
    ht_sim_env("unmap_needs_reprotect", NULL); /* Linux default: reprotect */
    cr_assert(dv__hip_workarounds() & DV__HIP_WA_REPROTECT);
    dv_device_t *dev = ht_open(0, 0);
    dv_vbar_t *v = NULL;
    fault_then_evict(dev, 4, &v);
    cr_assert_eq(dvsim_hip_used(0), 0, "evicted memory still counted");
    dv__hip_vmm_stats_t st;
    dv__hip_vmm_get_stats(&st);
    cr_assert_eq(st.reprotects, 4);
    cr_assert_eq(st.reprotect_failures, 0);
    /* The range is usable again after the re-protect. */
    HT_OK(dv_vbar_destroy(dev, v));
    ht_roundtrip(dev, 4);
    HT_OK(dv_device_close(dev));
}

Test(hip_defect_reprotect, backend_without_workaround_leaks) {
    ht_sim_env("unmap_needs_reprotect", "-reprotect");
    dv_device_t *dev = ht_open(0, 0);
    dv_vbar_t *v = NULL;
    fault_then_evict(dev, 4, &v);
    cr_assert_eq(dvsim_hip_used(0), 4 * HT_PAGE);
    HT_OK(dv_vbar_destroy(dev, v)); /* frees the range, and with it all */
    cr_assert_eq(dvsim_hip_used(0), 0);
    HT_OK(dv_device_close(dev));
}

/* ---- (b) unmapping several mappings in one call -------------------------- */

Test(hip_defect_multi_unmap, sim_leaves_mappings_behind) {
    ht_sim_env("multi_unmap", NULL);
    void *va = NULL;
    dv_hip_mem_handle_t h1 = NULL, h2 = NULL;
    SIM_OK(hipMemAddressReserve(&va, 2 * G, 0, NULL, 0));
    SIM_OK(hipMemCreate(&h1, G, &sim_prop, 0));
    SIM_OK(hipMemCreate(&h2, G, &sim_prop, 0));
    sim_map_rw(va, G, h1);
    sim_map_rw((char *)va + G, G, h2);
    SIM_OK(hipMemUnmap(va, 2 * G)); /* succeeds... */
    cr_assert_eq(dvsim_hip_mapping_count(), 1, "the defect did not bite");
    cr_assert_eq(hipMemAddressFree(va, 2 * G), DV_HIP_ERROR_INVALID_VALUE);
}

Test(hip_defect_multi_unmap, backend_unmaps_one_mapping_per_call) {
    ht_sim_env("multi_unmap", NULL);
    const dv_hal_ops_t *ops = dv_hal_hip();
    void *ctx = NULL;
    dv_hal_init_args_t a = {.ordinal = 0};
    HT_OK(ops->init(&a, &ctx));
    uint64_t va = 0;
    dv_hal_mem_t m[3];
    HT_OK(ops->reserve(ctx, 4 * G, &va));
    for (int i = 0; i < 3; i++) {
        HT_OK(ops->create(ctx, G, &m[i]));
        HT_OK(ops->map(ctx, va + (uint64_t)i * G, G, m[i]));
    }
    cr_assert_eq(dvsim_hip_mapping_count(), 3);
    /* One call over all three (and the unmapped granule after them). */
    HT_OK(ops->unmap(ctx, va, 4 * G));
    cr_assert_eq(dvsim_hip_mapping_count(), 0);
    dv__hip_vmm_stats_t st;
    dv__hip_vmm_get_stats(&st);
    cr_assert_eq(st.split_unmaps, 1);
    for (int i = 0; i < 3; i++) {
        HT_OK(ops->release(ctx, m[i]));
    }
    HT_OK(ops->unreserve(ctx, va, 4 * G));
    cr_assert_eq(dvsim_hip_reservation_count(), 0);
    ops->fini(ctx);
}

/* ---- (c) repeated reserve/free corrupts the runtime (Windows) ----------- */

Test(hip_defect_reuse_va, sim_fails_after_free_cycles) {
    ht_sim_env("reserve_free_corrupts", NULL);
    setenv("DVSIM_HIP_CORRUPT_AFTER", "2", 1);
    void *va = NULL;
    for (int i = 0; i < 2; i++) {
        SIM_OK(hipMemAddressReserve(&va, 4 * G, 0, NULL, 0));
        SIM_OK(hipMemAddressFree(va, 4 * G));
    }
    cr_assert_eq(hipMemAddressReserve(&va, 4 * G, 0, NULL, 0),
                 DV_HIP_ERROR_UNKNOWN, "the defect did not bite");
}

Test(hip_defect_reuse_va, backend_reuses_reservations) {
    ht_sim_env("reserve_free_corrupts", "reuse_va");
    setenv("DVSIM_HIP_CORRUPT_AFTER", "2", 1);
    dv_device_t *dev = ht_open(0, 0);
    for (int i = 0; i < 10; i++) {
        ht_roundtrip(dev, 4);
    }
    cr_assert_eq(dvsim_hip_reservation_count(), 1);
    HT_OK(dv_device_close(dev));
}

Test(hip_defect_reuse_va, backend_reuse_fits_by_size) {
    ht_sim_env("reserve_free_corrupts", "reuse_va");
    setenv("DVSIM_HIP_CORRUPT_AFTER", "1", 1); /* one free corrupts */
    dv_device_t *dev = ht_open(0, 0);
    dv_vbar_t *big = NULL, *small = NULL, *other = NULL;
    HT_OK(dv_vbar_create(dev, 8 * HT_PAGE, &big));
    dv_vbar_info_t ib, is;
    HT_OK(dv_vbar_get_info(dev, big, &ib));
    HT_OK(dv_vbar_destroy(dev, big));
    HT_OK(dv_vbar_create(dev, 4 * HT_PAGE, &small)); /* fits in the kept one */
    HT_OK(dv_vbar_get_info(dev, small, &is));
    cr_assert_eq(is.base, ib.base);
    HT_OK(dv_vbar_create(dev, 8 * HT_PAGE, &other)); /* needs a new one */
    cr_assert_eq(dvsim_hip_reservation_count(), 2);
    HT_OK(dv_fault(dev, other, 0, 8 * HT_PAGE, NULL));
    HT_OK(dv_unpin(dev, other, 0, 8 * HT_PAGE, NULL));
    HT_OK(dv_vbar_destroy(dev, other));
    HT_OK(dv_vbar_destroy(dev, small));
    dv__hip_vmm_stats_t st;
    dv__hip_vmm_get_stats(&st);
    cr_assert_eq(st.reservations_reused, 1);
    cr_assert_eq(st.reservations_kept, 2);
    HT_OK(dv_device_close(dev));
}

Test(hip_defect_reuse_va, backend_without_workaround_fails) {
    ht_sim_env("reserve_free_corrupts", "none");
    setenv("DVSIM_HIP_CORRUPT_AFTER", "2", 1);
    dv_device_t *dev = ht_open(0, 0);
    dv_vbar_t *v = NULL;
    for (int i = 0; i < 2; i++) {
        HT_OK(dv_vbar_create(dev, 4 * HT_PAGE, &v));
        HT_OK(dv_vbar_destroy(dev, v));
    }
    cr_assert_eq(dv_vbar_create(dev, 4 * HT_PAGE, &v), DV_ERROR_BACKEND);
    cr_assert(strstr(dv_last_error(), "hipMemAddressReserve"), "%s",
              dv_last_error());
    HT_OK(dv_device_close(dev));
}

/* ---- (d) concurrent VMM calls ------------------------------------------------ */

static void *sim_hammer(void *arg) {
    (void)arg;
    for (int i = 0; i < 300; i++) {
        dv_hip_mem_handle_t h = NULL;
        if (hipMemCreate(&h, G, &sim_prop, 0) == DV_HIP_SUCCESS) {
            (void)hipMemRelease(h);
        }
    }
    return NULL;
}

Test(hip_defect_threads, sim_detects_concurrent_calls) {
    ht_sim_env("not_thread_safe", NULL);
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(pthread_create(&t[i], NULL, sim_hammer, NULL), 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
    }
    cr_assert_gt(dvsim_hip_violations(), 0, "the defect did not bite");
}

static void *dev_hammer(void *arg) {
    dv_device_t *dev = arg;
    for (int i = 0; i < 15; i++) {
        ht_roundtrip(dev, 2);
    }
    return NULL;
}

/* The core serializes per device; two devices on two threads call the
 * driver concurrently unless the backend serializes the process. */
Test(hip_defect_threads, backend_serializes_vmm_calls) {
    ht_sim_env("not_thread_safe", NULL);
    setenv("DVSIM_HIP_DEVICES", "2", 1);
    dv_device_t *dev[2] = {ht_open(0, 0), ht_open(1, 0)};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(pthread_create(&t[i], NULL, dev_hammer, dev[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
    }
    cr_assert_eq(dvsim_hip_violations(), 0);
    for (int i = 0; i < 2; i++) {
        HT_OK(dv_device_close(dev[i]));
    }
}

/* ---- switches -------------------------------------------------------------------- */

Test(hip_workarounds, parse) {
    ht_sim_env(NULL, "reuse_va,-reprotect,bogus");
    cr_assert_eq(dv__hip_workarounds(), DV__HIP_WA_REUSE_VA);
}

Test(hip_workarounds, all_defects_all_workarounds) {
    ht_sim_env("all", "all");
    setenv("DVSIM_HIP_CORRUPT_AFTER", "1", 1);
    setenv("DVSIM_HIP_DEVICES", "2", 1);
    dv_device_t *dev[2] = {ht_open(0, 0), ht_open(1, 0)};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(pthread_create(&t[i], NULL, dev_hammer, dev[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
    }
    cr_assert_eq(dvsim_hip_violations(), 0);
    cr_assert_eq(dvsim_hip_used(0), 0);
    cr_assert_eq(dvsim_hip_used(1), 0);
    for (int i = 0; i < 2; i++) {
        HT_OK(dv_device_close(dev[i]));
    }
}
