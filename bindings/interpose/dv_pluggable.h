/*
 * dv_pluggable.h - an allocator for torch.cuda.memory.CUDAPluggableAllocator
 * on the CUDA driver API, under a dynvram device's budget.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * For PyTorch builds that the interposer (dv_interpose.h) cannot reach:
 * PyTorch's CUDA 13 builds for Windows link the CUDA runtime statically, so
 * their cudaMalloc is not a symbol anyone can replace. torch can instead be
 * given an allocator pair by path and name:
 *
 *   torch.cuda.memory.change_current_allocator(
 *       torch.cuda.memory.CUDAPluggableAllocator(
 *           path_of_this_library, "dv_pluggable_alloc", "dv_pluggable_free"))
 *
 * before its first CUDA allocation. Each allocation is then:
 *  - counted in the budget of the dynvram device attached for that CUDA
 *    ordinal (dv_framework_reserve: weight pages are evicted, lowest
 *    priority first, until it fits; when nothing evictable is left the
 *    allocation fails and torch reports out of memory);
 *  - made with cuMemAllocAsync on torch's stream (the driver's
 *    stream-ordered pool caches freed blocks, as torch's cudaMallocAsync
 *    backend does); a real CUDA_ERROR_OUT_OF_MEMORY evicts again
 *    (dv_framework_evict) and retries;
 *  - freed with cuMemFreeAsync and uncounted (dv_framework_release).
 * Devices never attached pass straight through to the driver.
 *
 * The driver (nvcuda.dll, libcuda.so.1, or DYNVRAM_CUDA_LIBRARY) is opened
 * at the first call and its entry points resolved at the CUDA 12.0 ABI.
 * The library does not link dynvram: the owner of the device passes the
 * entry points to call (the Python extension's interpose_api(), whose
 * dv_interpose_api_t starts with the fields of dv_pluggable_api_t).
 *
 * Thread-safety: every function may be called from any thread. Builds on
 * Windows (MSVC, mingw-w64) and POSIX.
 */
#ifndef DV_PLUGGABLE_H
#define DV_PLUGGABLE_H

#include <stddef.h>
#include <stdint.h>

#include "dynvram.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define DV_PLUGGABLE_EXPORT __declspec(dllexport)
#elif defined(__GNUC__)
#define DV_PLUGGABLE_EXPORT __attribute__((visibility("default")))
#else
#define DV_PLUGGABLE_EXPORT
#endif

/* CUDA device ordinals the allocator can track. */
#define DV_PLUGGABLE_MAX_DEVICES 64

/* The dynvram entry points called: the leading fields of
 * dv_interpose_api_t (version 1 and later are accepted). */
typedef struct dv_pluggable_api {
    uint32_t version;
    uint32_t reserved0;
    dv_result_t (*framework_reserve)(dv_device_t *dev, uint64_t size);
    dv_result_t (*framework_release)(dv_device_t *dev, uint64_t size);
    dv_result_t (*framework_evict)(dv_device_t *dev, uint64_t size,
                                   uint64_t *freed);
    dv_result_t (*device_get_stats)(dv_device_t *dev, dv_device_stats_t *st);
} dv_pluggable_api_t;

typedef struct dv_pluggable_stats {
    uint64_t allocs;          /* successful tracked allocations */
    uint64_t frees;           /* tracked frees */
    uint64_t live_bytes;      /* bytes allocated and not yet freed */
    uint64_t live_count;
    uint64_t budget_refusals; /* refused: nothing evictable was left */
    uint64_t oom_retries;     /* real OOMs answered by evict + retry */
    uint64_t oom_evicted;     /* bytes freed by those evictions */
    uint64_t failures;        /* allocations that failed in the end */
} dv_pluggable_stats_t;

/* Route allocations for `cuda_device` to `dev` (re-attaching replaces the
 * device; pointers of the previous one are freed without being released
 * to it). Results: DV_OK; DV_ERROR_INVALID_ARGUMENT (ordinal out of range,
 * dev or api NULL, an entry point missing). */
DV_PLUGGABLE_EXPORT dv_result_t
dv_pluggable_attach(int cuda_device, dv_device_t *dev,
                    const dv_pluggable_api_t *api);
/* Stop routing `cuda_device`. DV_OK or DV_ERROR_INVALID_ARGUMENT. */
DV_PLUGGABLE_EXPORT dv_result_t dv_pluggable_detach(int cuda_device);
/* Counters of `cuda_device` (zeros since the last attach). */
DV_PLUGGABLE_EXPORT dv_result_t
dv_pluggable_get_stats(int cuda_device, dv_pluggable_stats_t *st);
/* 1 when the driver was opened (opening it now if needed), else 0 with the
 * reason. */
DV_PLUGGABLE_EXPORT int dv_pluggable_driver_loaded(char *reason,
                                                   size_t reason_len);

/* The pair torch calls (CUDAPluggableAllocator's signatures). alloc
 * returns NULL on failure (torch raises out of memory). */
DV_PLUGGABLE_EXPORT void *dv_pluggable_alloc(size_t size, int device,
                                             void *stream);
DV_PLUGGABLE_EXPORT void dv_pluggable_free(void *ptr, size_t size, int device,
                                           void *stream);

#ifdef __cplusplus
}
#endif

#endif /* DV_PLUGGABLE_H */
