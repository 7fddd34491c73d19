/*
 * dv_interpose.h - the CUDA allocation interposer's control API.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * libdynvram_interpose.so defines cudaMalloc, cudaFree, cudaMallocAsync,
 * cudaFreeAsync and cudaMemGetInfo. Loaded before the framework (LD_PRELOAD,
 * or dlopen with RTLD_GLOBAL before `import torch`), it sits in front of the
 * real libcudart and makes the framework's allocations part of a dynvram
 * device's budget:
 *
 *  - before an allocation it calls dv_framework_reserve(), which evicts
 *    weight pages (lowest priority first) until the allocation fits the
 *    budget; when even that cannot make it fit, the allocation fails with
 *    cudaErrorMemoryAllocation (the framework then frees its cache and
 *    retries, as on a real out-of-memory);
 *  - when the real allocation still fails with cudaErrorMemoryAllocation it
 *    calls dv_framework_evict() and retries while something was freed;
 *  - on free it calls dv_framework_release() with the size it recorded for
 *    that pointer;
 *  - cudaMemGetInfo reports at most what the budget has left.
 *
 * Allocation graphs (dynvram_graph.h): a thread that bound a graph with
 * dv_interpose_graph_bind offers each of its cudaMallocAsync calls (and the
 * pluggable allocator's) on that device to the graph first. The graph takes
 * it while one of its scopes is open, the allocation is on the graph's
 * stream and the graph is not paused; otherwise (DV_OFFLOADED) the
 * allocation takes the path above. A pointer the graph handed out is freed
 * back to the graph (cudaFreeAsync or cudaFree, from any thread, at any
 * time: also a free the framework deferred past a capture), never to
 * libcudart. A graph allocation that fails for want of memory answers
 * cudaErrorMemoryAllocation.
 *
 * Frees: a pointer the interposer did not hand out (another library's, a
 * device never attached) goes to libcudart as it came, with libcudart's
 * answer. A pointer it handed out is never answered cudaErrorInvalidValue
 * for a free the framework could legitimately make: a graph pointer's free
 * succeeds (also when its graph is gone), and a pointer libcudart allocated
 * while its stream was being captured (cudaStreamIsCapturing, asked after
 * such an allocation when libcudart has it) belongs to that CUDA graph's
 * allocation node: freeing it before the graph ever ran fails in
 * libcudart with cudaErrorInvalidValue (there is nothing to free), which
 * is answered cudaSuccess with the thread's last error cleared (counted in
 * absorbed_frees).
 *
 * The interposer does not link dynvram: whoever owns the dv_device_t (the
 * Python extension, or a C program) attaches it for a CUDA device ordinal,
 * passing the entry points to call (so it works with a dynvram built into a
 * Python extension as well as with libdynvram.so). Devices not attached pass
 * straight through to libcudart.
 *
 * The real libcudart is found lazily, at the first call: dlsym(RTLD_NEXT),
 * then an already-loaded library by soname (DYNVRAM_CUDART, default
 * libcudart.so.13), then dlopen of that name.
 *
 * Thread-safety: every function here and every interposed entry point may be
 * called from any thread. Linux only.
 */
#ifndef DV_INTERPOSE_H
#define DV_INTERPOSE_H

#include <stddef.h>
#include <stdint.h>

#include "dynvram.h"
#include "dynvram_graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Version 2 added graph_alloc and graph_free; version 1 structs are still
 * accepted (graph binding then answers DV_ERROR_NOT_SUPPORTED). */
#define DV_INTERPOSE_API_VERSION 2
/* CUDA device ordinals the interposer can track. */
#define DV_INTERPOSE_MAX_DEVICES 64

/* The dynvram entry points the interposer calls. */
typedef struct dv_interpose_api {
    uint32_t version; /* DV_INTERPOSE_API_VERSION */
    uint32_t reserved0;
    dv_result_t (*framework_reserve)(dv_device_t *dev, uint64_t size);
    dv_result_t (*framework_release)(dv_device_t *dev, uint64_t size);
    dv_result_t (*framework_evict)(dv_device_t *dev, uint64_t size,
                                   uint64_t *freed);
    dv_result_t (*device_get_stats)(dv_device_t *dev, dv_device_stats_t *st);
    /* ---- version 2 ---- */
    dv_result_t (*graph_alloc)(dv_device_t *dev, dv_graph_t *graph,
                               uint64_t size, void *stream, uint64_t *ptr);
    dv_result_t (*graph_free)(dv_device_t *dev, dv_graph_t *graph,
                              uint64_t ptr, void *stream);
} dv_interpose_api_t;

typedef struct dv_interpose_stats {
    uint64_t allocs;          /* successful tracked allocations */
    uint64_t frees;           /* tracked frees */
    uint64_t live_bytes;      /* bytes allocated and not yet freed */
    uint64_t live_count;      /* pointers allocated and not yet freed */
    uint64_t budget_refusals; /* allocations refused: the budget had no room */
    uint64_t oom_retries;     /* real OOMs answered by evict + retry */
    uint64_t oom_evicted;     /* bytes freed by those evictions */
    uint64_t failures;        /* allocations that failed in the end */
    uint64_t graph_allocs;    /* allocations an allocation graph took */
    uint64_t graph_frees;     /* frees given back to a graph */
    uint64_t driver_allocs;   /* calls of libcudart's cudaMalloc[Async] */
    uint64_t driver_frees;    /* calls of libcudart's cudaFree[Async] */
    uint64_t capture_allocs;  /* tracked allocations libcudart made while
                                 their stream was being captured (the CUDA
                                 graph's allocation nodes) */
    uint64_t absorbed_frees;  /* frees answered cudaSuccess that the graph
                                 or libcudart refused: a graph pointer whose
                                 graph is gone, or a capture_allocs pointer
                                 whose CUDA graph never ran */
} dv_interpose_stats_t;

/*
 * Route allocations made while `cuda_device` is current to `dev`.
 * [in] api  entry points, version 1 or 2; NULL = look up
 *           dv_framework_reserve etc. (and dv_graph_alloc / dv_graph_free)
 *           in the global symbol scope (a program linked with libdynvram).
 * Re-attaching an ordinal replaces the previous device; pointers allocated
 * for the previous one are freed without being released to it.
 * Results: DV_OK; DV_ERROR_INVALID_ARGUMENT (ordinal out of range, dev NULL,
 * wrong api version); DV_ERROR_BACKEND_UNAVAILABLE (api NULL and the dynvram
 * symbols are not loaded).
 */
__attribute__((visibility("default"))) dv_result_t
dv_interpose_attach(int cuda_device, dv_device_t *dev,
                    const dv_interpose_api_t *api);

/* Stop routing `cuda_device`. Outstanding pointers are no longer released to
 * the device when freed. DV_OK or DV_ERROR_INVALID_ARGUMENT. */
__attribute__((visibility("default"))) dv_result_t
dv_interpose_detach(int cuda_device);

/*
 * Bind `graph` (a graph of the device attached to `cuda_device`) to the
 * calling thread: its cudaMallocAsync calls on that device are offered to
 * the graph first (see above). NULL unbinds. One graph per thread; binding
 * another replaces it. A binding ends with the device's detach or
 * re-attach. Results: DV_OK; DV_ERROR_INVALID_ARGUMENT (ordinal out of
 * range, or not attached); DV_ERROR_NOT_SUPPORTED (attached with a version
 * 1 api).
 */
__attribute__((visibility("default"))) dv_result_t
dv_interpose_graph_bind(int cuda_device, dv_graph_t *graph);

/* Counters of `cuda_device` (zeros when never attached). */
__attribute__((visibility("default"))) dv_result_t
dv_interpose_get_stats(int cuda_device, dv_interpose_stats_t *st);

/* 1 when the real libcudart was found (resolving it now if needed), else 0
 * with the reason in `reason`. */
__attribute__((visibility("default"))) int
dv_interpose_cudart_loaded(char *reason, size_t reason_len);

/*
 * The CUDAPluggableAllocator route: an alloc/free pair with the signature
 * torch.cuda.memory.CUDAPluggableAllocator expects. Allocations are
 * stream-ordered (cudaMallocAsync on `stream`), budgeted and counted like
 * the interposed ones, but they do not need the library to be loaded before
 * torch.
 */
__attribute__((visibility("default"))) void *
dv_interpose_alloc(size_t size, int device, void *stream);
__attribute__((visibility("default"))) void
dv_interpose_free(void *ptr, size_t size, int device, void *stream);

#ifdef __cplusplus
}
#endif

#endif /* DV_INTERPOSE_H */
