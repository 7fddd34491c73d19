/*
 * test_interpose.c - the CUDA allocation interposer on the host backend and
 * a libcudart test double (fake_cudart.c).
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * The executable links the interposer before the fake runtime, so its
 * cudaMalloc calls reach the interposer, whose RTLD_NEXT lookups find the
 * fake. The dynvram device is a host device with a VRAM limit: allocations
 * past the budget must evict weight pages instead of failing.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cudart_abi.h"
#include "dv_interpose.h"
#include "dynvram.h"

/* The fake runtime's control functions and the ones the interposer does not
 * define. */
cudaError_t cudaGetLastError(void);
cudaError_t cudaSetDevice(int device);
void dv_fake_cudart_set_capacity(uint64_t bytes);
void dv_fake_cudart_fail_next(int n);
uint64_t dv_fake_cudart_used(void);

#define MIB (1ull << 20)
#define PAGE MIB
#define LIMIT_PAGES 16ull

#define OK(call)                                                               \
    do {                                                                       \
        dv_result_t r_ = (call);                                               \
        cr_assert_eq(r_, DV_OK, "%s -> %s (%s)", #call, dv_result_name(r_),    \
                     dv_last_error());                                         \
    } while (0)

static dv_device_t *dev;
static dv_vbar_t *vbar;

static const dv_interpose_api_t api = {
    .version = DV_INTERPOSE_API_VERSION,
    .framework_reserve = dv_framework_reserve,
    .framework_release = dv_framework_release,
    .framework_evict = dv_framework_evict,
    .device_get_stats = dv_device_get_stats,
    .graph_alloc = dv_graph_alloc,
    .graph_free = dv_graph_free,
};

static void setup(void) {
    dv_device_options_t o;
    dv_device_options_init(&o);
    o.backend = "host";
    o.page_size = PAGE;
    o.vram_limit = LIMIT_PAGES * PAGE;
    o.pool_limit = 0;
    OK(dv_device_open(&o, &dev));
    OK(dv_vbar_create(dev, 32 * PAGE, &vbar));
    dv_fake_cudart_set_capacity(1ull << 30);
    dv_fake_cudart_fail_next(0);
    cudaSetDevice(0);
    (void)cudaGetLastError();
    OK(dv_interpose_attach(0, dev, &api));
}

static void teardown(void) {
    dv_interpose_detach(0);
    dv_vbar_destroy(dev, vbar);
    dv_device_close(dev);
}

/* Fault and unpin the first `n` pages; all must become resident. */
static void fill_weights(uint64_t n) {
    for (uint64_t i = 0; i < n; i++) {
        uint64_t gen = 0;
        OK(dv_fault(dev, vbar, i * PAGE, PAGE, &gen));
        OK(dv_unpin(dev, vbar, i * PAGE, PAGE, NULL));
    }
}

static dv_device_stats_t stats(void) {
    dv_device_stats_t st;
    OK(dv_device_get_stats(dev, &st));
    return st;
}

static dv_interpose_stats_t ipstats(int device) {
    dv_interpose_stats_t st;
    OK(dv_interpose_get_stats(device, &st));
    return st;
}

TestSuite(interpose, .init = setup, .fini = teardown);

Test(interpose, cudart_found) {
    char reason[256];
    cr_assert(dv_interpose_cudart_loaded(reason, sizeof(reason)), "%s", reason);
}

Test(interpose, allocation_past_budget_evicts_weights) {
    fill_weights(LIMIT_PAGES);
    cr_assert_eq(stats().resident_bytes, LIMIT_PAGES * PAGE);

    void *p = NULL;
    cr_assert_eq(cudaMalloc(&p, 6 * MIB), DV_CUDA_SUCCESS);
    cr_assert_not_null(p);
    memset(p, 0xab, 6 * MIB); /* the fake hands out real host memory */
    dv_device_stats_t st = stats();
    cr_assert_eq(st.framework_bytes, 6 * MIB);
    cr_assert_geq(st.evictions, 6);
    cr_assert_leq(st.resident_bytes, (LIMIT_PAGES - 6) * PAGE);
    cr_assert_eq(ipstats(0).live_bytes, 6 * MIB);
    cr_assert_eq(dv_fake_cudart_used(), 6 * MIB);

    /* The highest pages went first; a fault there is now offloaded
     * (watermark), the lowest pages are still resident. */
    uint8_t flags[LIMIT_PAGES];
    OK(dv_vbar_residency(dev, vbar, 0, LIMIT_PAGES, flags));
    cr_assert(flags[0] & DV_PAGE_RESIDENT);
    cr_assert_eq(flags[LIMIT_PAGES - 1], 0);

    cr_assert_eq(cudaFree(p), DV_CUDA_SUCCESS);
    st = stats();
    cr_assert_eq(st.framework_bytes, 0);
    cr_assert_eq(ipstats(0).live_bytes, 0);
    cr_assert_eq(ipstats(0).frees, 1);
    OK(dv_device_check(dev));
}

Test(interpose, weights_come_back_with_new_generation) {
    uint64_t g0 = 0, g1 = 0;
    fill_weights(LIMIT_PAGES);
    uint64_t top = (LIMIT_PAGES - 1) * PAGE;
    OK(dv_vbar_generations(dev, vbar, top, PAGE, &g0, 1));
    cr_assert_neq(g0, 0);

    void *p = NULL;
    cr_assert_eq(cudaMalloc(&p, LIMIT_PAGES * PAGE), DV_CUDA_SUCCESS);
    cr_assert_eq(stats().resident_bytes, 0);
    cr_assert_eq(cudaFree(p), DV_CUDA_SUCCESS);

    OK(dv_vbar_prioritize(dev, vbar)); /* resets the watermark */
    uint64_t gen = 0;
    OK(dv_fault(dev, vbar, top, PAGE, &gen));
    OK(dv_vbar_generations(dev, vbar, top, PAGE, &g1, 1));
    cr_assert_neq(g1, g0, "a page that was evicted must get a new generation");
    OK(dv_unpin(dev, vbar, top, PAGE, NULL));
}

Test(interpose, pinned_weights_are_not_evicted_and_budget_refuses) {
    /* Pin every page of the budget: nothing is evictable. */
    for (uint64_t i = 0; i < LIMIT_PAGES; i++) {
        OK(dv_fault(dev, vbar, i * PAGE, PAGE, NULL));
    }
    void *p = (void *)1;
    cr_assert_eq(cudaMalloc(&p, 2 * MIB), DV_CUDA_ERROR_MEMORY_ALLOCATION);
    cr_assert_eq(stats().resident_bytes, LIMIT_PAGES * PAGE);
    cr_assert_eq(stats().framework_bytes, 0);
    cr_assert_eq(ipstats(0).budget_refusals, 1);
    cr_assert_eq(dv_fake_cudart_used(), 0, "refused before reaching the GPU");
    OK(dv_unpin(dev, vbar, 0, LIMIT_PAGES * PAGE, NULL));
}

Test(interpose, real_oom_evicts_and_retries) {
    fill_weights(4);
    /* The budget has room, but the "GPU" says no once (memory the budget
     * does not see); the interposer evicts and retries. */
    dv_fake_cudart_fail_next(1);
    void *p = NULL;
    cr_assert_eq(cudaMalloc(&p, 2 * MIB), DV_CUDA_SUCCESS);
    dv_interpose_stats_t s = ipstats(0);
    cr_assert_eq(s.oom_retries, 1);
    cr_assert_geq(s.oom_evicted, 2 * MIB);
    cr_assert_eq(stats().framework_bytes, 2 * MIB);
    cr_assert_eq(cudaGetLastError(), DV_CUDA_SUCCESS,
                 "the failed attempt's error must not stay sticky");
    cr_assert_eq(cudaFree(p), DV_CUDA_SUCCESS);
}

Test(interpose, real_oom_with_nothing_to_evict_fails_uncounted) {
    dv_fake_cudart_fail_next(100);
    void *p = NULL;
    cr_assert_eq(cudaMalloc(&p, 2 * MIB), DV_CUDA_ERROR_MEMORY_ALLOCATION);
    cr_assert_eq(stats().framework_bytes, 0);
    cr_assert_eq(ipstats(0).failures, 1);
    dv_fake_cudart_fail_next(0);
}

Test(interpose, async_pair_and_pluggable_pair_are_counted) {
    void *a = NULL;
    cr_assert_eq(cudaMallocAsync(&a, 3 * MIB, NULL), DV_CUDA_SUCCESS);
    void *b = dv_interpose_alloc(5 * MIB, 0, NULL);
    cr_assert_not_null(b);
    cr_assert_eq(stats().framework_bytes, 8 * MIB);
    cr_assert_eq(ipstats(0).live_count, 2);
    cr_assert_eq(cudaFreeAsync(a, NULL), DV_CUDA_SUCCESS);
    dv_interpose_free(b, 5 * MIB, 0, NULL);
    cr_assert_eq(stats().framework_bytes, 0);
    cr_assert_eq(ipstats(0).live_count, 0);
}

Test(interpose, unattached_device_passes_through) {
    cr_assert_eq(cudaSetDevice(1), DV_CUDA_SUCCESS);
    void *p = NULL;
    cr_assert_eq(cudaMalloc(&p, 64 * MIB), DV_CUDA_SUCCESS);
    cr_assert_eq(stats().framework_bytes, 0);
    cr_assert_eq(dv_fake_cudart_used(), 64 * MIB);
    cr_assert_eq(cudaFree(p), DV_CUDA_SUCCESS);
    cr_assert_eq(cudaSetDevice(0), DV_CUDA_SUCCESS);
}

Test(interpose, detach_forgets_outstanding_pointers) {
    void *p = NULL;
    cr_assert_eq(cudaMalloc(&p, 4 * MIB), DV_CUDA_SUCCESS);
    cr_assert_eq(stats().framework_bytes, 4 * MIB);
    OK(dv_interpose_detach(0));
    cr_assert_eq(cudaFree(p), DV_CUDA_SUCCESS);
    /* Not released to the device any more: the owner had detached. */
    cr_assert_eq(stats().framework_bytes, 4 * MIB);
    OK(dv_framework_release(dev, 4 * MIB));
}

Test(interpose, mem_get_info_reports_the_budget) {
    fill_weights(LIMIT_PAGES);
    OK(dv_fault(dev, vbar, 0, 2 * PAGE, NULL)); /* 2 pages pinned */
    size_t free_b = 0, total_b = 0;
    cr_assert_eq(cudaMemGetInfo(&free_b, &total_b), DV_CUDA_SUCCESS);
    /* Everything but the pinned pages could be had by evicting. */
    cr_assert_eq(free_b, (LIMIT_PAGES - 2) * PAGE);
    cr_assert_gt(total_b, 0);
    OK(dv_unpin(dev, vbar, 0, 2 * PAGE, NULL));
}

Test(interpose, attach_rejects_bad_input) {
    cr_assert_eq(dv_interpose_attach(-1, dev, &api), DV_ERROR_INVALID_ARGUMENT);
    cr_assert_eq(dv_interpose_attach(DV_INTERPOSE_MAX_DEVICES, dev, &api),
                 DV_ERROR_INVALID_ARGUMENT);
    cr_assert_eq(dv_interpose_attach(0, NULL, &api), DV_ERROR_INVALID_ARGUMENT);
    dv_interpose_api_t bad = api;
    bad.version = 99;
    cr_assert_eq(dv_interpose_attach(0, dev, &bad), DV_ERROR_INVALID_ARGUMENT);
    bad = api;
    bad.graph_free = NULL; /* version 2 needs both graph entry points */
    cr_assert_eq(dv_interpose_attach(0, dev, &bad), DV_ERROR_INVALID_ARGUMENT);
    /* NULL api: the dv_* symbols of libdynvram.so, which this test links. */
    OK(dv_interpose_attach(0, dev, NULL));
}

/* Many threads allocating and freeing through the interposer: the pointer
 * table and the accounting stay exact. */
static void *churn(void *arg) {
    (void)arg;
    void *ptrs[32];
    for (int round = 0; round < 50; round++) {
        for (int i = 0; i < 32; i++) {
            if (cudaMalloc(&ptrs[i], 4096 + (size_t)i * 512) !=
                DV_CUDA_SUCCESS) {
                ptrs[i] = NULL;
            }
        }
        for (int i = 0; i < 32; i++) {
            if (ptrs[i]) {
                cudaFree(ptrs[i]);
            }
        }
    }
    return NULL;
}

Test(interpose, threads_keep_accounting_exact) {
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(pthread_create(&t[i], NULL, churn, NULL), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
    }
    dv_interpose_stats_t s = ipstats(0);
    cr_assert_eq(s.live_bytes, 0);
    cr_assert_eq(s.live_count, 0);
    cr_assert_eq(s.allocs, s.frees);
    cr_assert_eq(s.allocs, 4 * 50 * 32);
    cr_assert_eq(stats().framework_bytes, 0);
    cr_assert_eq(dv_fake_cudart_used(), 0);
}
