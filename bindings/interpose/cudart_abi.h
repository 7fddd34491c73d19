/*
 * cudart_abi.h - the slice of the CUDA runtime ABI the interposer defines
 * or calls. Written from the CUDA runtime API documentation so that the
 * build needs no CUDA SDK.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * cudaError_t is an int-sized enum; cudaStream_t an opaque pointer. The
 * prototypes must match the real ones exactly, since the interposer's
 * definitions replace them in the framework's symbol lookups.
 */
#ifndef DV_CUDART_ABI_H
#define DV_CUDART_ABI_H

#include <stddef.h>

typedef int cudaError_t;
typedef struct CUstream_st *cudaStream_t;

#define DV_CUDA_SUCCESS 0
#define DV_CUDA_ERROR_INVALID_VALUE 1
#define DV_CUDA_ERROR_MEMORY_ALLOCATION 2
#define DV_CUDA_ERROR_INITIALIZATION 3

/* Default soname the real runtime is looked up by (DYNVRAM_CUDART
 * overrides it). PyTorch 2.11 for CUDA 13 imports from this one. */
#define DV_CUDART_SONAME "libcudart.so.13"

typedef cudaError_t (*dv_cudaMalloc_fn)(void **ptr, size_t size);
typedef cudaError_t (*dv_cudaFree_fn)(void *ptr);
typedef cudaError_t (*dv_cudaMallocAsync_fn)(void **ptr, size_t size,
                                            cudaStream_t stream);
typedef cudaError_t (*dv_cudaFreeAsync_fn)(void *ptr, cudaStream_t stream);
typedef cudaError_t (*dv_cudaMemGetInfo_fn)(size_t *free_bytes,
                                           size_t *total_bytes);
typedef cudaError_t (*dv_cudaGetDevice_fn)(int *device);
typedef cudaError_t (*dv_cudaSetDevice_fn)(int device);
typedef cudaError_t (*dv_cudaGetLastError_fn)(void);
/* status: an enum cudaStreamCaptureStatus (int-sized): 0 none, 1 active,
 * 2 invalidated. */
typedef cudaError_t (*dv_cudaStreamIsCapturing_fn)(cudaStream_t stream,
                                                  int *status);

/* The legacy default stream's handle (cudaStreamLegacy). */
#define DV_CUDA_STREAM_LEGACY ((cudaStream_t)0x1)

/* The runtime entry points, as the interposer (and the test double) define
 * them. Default visibility: they must be found by the framework's symbol
 * lookups. */
#define DV_CUDART_EXPORT __attribute__((visibility("default")))
DV_CUDART_EXPORT cudaError_t cudaMalloc(void **ptr, size_t size);
DV_CUDART_EXPORT cudaError_t cudaFree(void *ptr);
DV_CUDART_EXPORT cudaError_t cudaMallocAsync(void **ptr, size_t size,
                                             cudaStream_t stream);
DV_CUDART_EXPORT cudaError_t cudaFreeAsync(void *ptr, cudaStream_t stream);
DV_CUDART_EXPORT cudaError_t cudaMemGetInfo(size_t *free_bytes,
                                            size_t *total_bytes);

#endif /* DV_CUDART_ABI_H */
