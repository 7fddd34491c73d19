/*
 * cuda_abi.h - the slice of the CUDA driver ABI that dynvram uses.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Written from the CUDA driver API documentation so that building dynvram
 * needs no CUDA SDK. Every name carries a dv_cu_ / DV_CU_ prefix so this
 * header and the real cuda.h can be included in one file:
 * tests/cuda/abi_check.c does that and static-asserts that every size,
 * offset, constant and function prototype below matches the SDK.
 *
 * Entry points are resolved through cuGetProcAddress with a pinned CUDA
 * version (DV_CU_ABI_VERSION). The driver then hands out, for each base name,
 * the ABI that version had, whatever newer versions of the symbol exist. The
 * prototypes in DV_CU_SYMBOLS are therefore the ones of CUDA 12.0; the number
 * in each entry is the CUDA version that introduced that ABI (cudaTypedefs.h
 * names it PFN_<name>_v<number>), which the ABI check compares against.
 *
 * Enumerations are plain ints here: every CUDA enum used is int-sized and
 * the values are pinned by the ABI check. The one exception is the stream
 * capture status, an enum (pinned to int width) so that graph code can
 * switch over it.
 *
 * Every entry point is required: dv__cu_load reports the backend
 * unavailable, naming the symbol, when cuGetProcAddress lacks one. That
 * never refuses a driver the version check lets through: the load needs a
 * CUDA 12.0 driver (DV_CU_ABI_VERSION) and the newest ABI listed is
 * cuCtxCreate's of CUDA 11.4. The stream entry points are much older:
 * cuCtxGetDevice 2.0, cuStreamWaitEvent and cuMemcpyDtoDAsync 3.2,
 * cuStreamGetCtx 9.2, cuStreamIsCapturing 10.0.
 */
#ifndef DV_HAL_CUDA_ABI_H
#define DV_HAL_CUDA_ABI_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define DV_CUAPI __stdcall
#else
#define DV_CUAPI
#endif

/* The CUDA version whose symbol ABI we request from cuGetProcAddress. */
#define DV_CU_ABI_VERSION 12000

/* ---- scalar and handle types ---- */

typedef int dv_cu_result;                 /* CUresult */
typedef int dv_cu_device;                 /* CUdevice */
typedef int dv_cu_device_attribute;       /* CUdevice_attribute */
typedef int dv_cu_granularity_flags;      /* CUmemAllocationGranularity_flags */
typedef int dv_cu_proc_query_result;      /* CUdriverProcAddressQueryResult */
typedef unsigned long long dv_cu_deviceptr;   /* CUdeviceptr */
typedef unsigned long long dv_cu_mem_handle;  /* CUmemGenericAllocationHandle */
typedef uint64_t dv_cu_uint64;                /* cuuint64_t */
typedef struct dv_cu_ctx_st *dv_cu_context;   /* CUcontext */
typedef struct dv_cu_stream_st *dv_cu_stream; /* CUstream */
typedef struct dv_cu_event_st *dv_cu_event;   /* CUevent */
/* CUstreamCaptureStatus (cuStreamIsCapturing). */
typedef enum dv_cu_stream_capture_status {
    DV_CU_STREAM_CAPTURE_STATUS_NONE = 0,
    DV_CU_STREAM_CAPTURE_STATUS_ACTIVE = 1,
    DV_CU_STREAM_CAPTURE_STATUS_INVALIDATED = 2,
    DV_CU_STREAM_CAPTURE_STATUS_FORCE_INT32 = 0x7fffffff
} dv_cu_stream_capture_status;
/* CUexecAffinityParam: only ever passed as NULL. */
typedef struct dv_cu_exec_affinity_param_st dv_cu_exec_affinity_param;

/* ---- structures ---- */

typedef struct dv_cu_mem_location {  /* CUmemLocation */
    int type;                        /* CUmemLocationType */
    int id;
} dv_cu_mem_location;

typedef struct dv_cu_mem_allocation_prop { /* CUmemAllocationProp */
    int type;                              /* CUmemAllocationType */
    int requested_handle_types;            /* CUmemAllocationHandleType */
    dv_cu_mem_location location;
    void *win32_handle_meta_data;
    struct {
        unsigned char compression_type;
        unsigned char gpu_direct_rdma_capable;
        unsigned short usage;
        unsigned char reserved[4];
    } alloc_flags;
} dv_cu_mem_allocation_prop;

typedef struct dv_cu_mem_access_desc { /* CUmemAccessDesc */
    dv_cu_mem_location location;
    int flags;                         /* CUmemAccess_flags */
} dv_cu_mem_access_desc;

/* ---- constants ---- */

#define DV_CU_SUCCESS 0
#define DV_CU_ERROR_INVALID_VALUE 1
#define DV_CU_ERROR_OUT_OF_MEMORY 2
#define DV_CU_ERROR_NOT_INITIALIZED 3
#define DV_CU_ERROR_DEINITIALIZED 4
#define DV_CU_ERROR_STUB_LIBRARY 34
#define DV_CU_ERROR_NO_DEVICE 100
#define DV_CU_ERROR_INVALID_DEVICE 101
#define DV_CU_ERROR_INVALID_CONTEXT 201
#define DV_CU_ERROR_INVALID_HANDLE 400
#define DV_CU_ERROR_NOT_FOUND 500
#define DV_CU_ERROR_NOT_READY 600
#define DV_CU_ERROR_NOT_SUPPORTED 801
#define DV_CU_ERROR_CONTEXT_IS_DESTROYED 709

#define DV_CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED 102
#define DV_CU_DEVICE_ATTRIBUTE_PCI_BUS_ID 33
#define DV_CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID 34
#define DV_CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID 50

#define DV_CU_MEM_ALLOCATION_TYPE_PINNED 0x1
#define DV_CU_MEM_HANDLE_TYPE_NONE 0x0
#define DV_CU_MEM_LOCATION_TYPE_DEVICE 0x1
#define DV_CU_MEM_ACCESS_FLAGS_PROT_READWRITE 0x3
#define DV_CU_MEM_ALLOC_GRANULARITY_MINIMUM 0x0
#define DV_CU_MEM_ALLOC_GRANULARITY_RECOMMENDED 0x1

#define DV_CU_EVENT_DISABLE_TIMING 0x2
#define DV_CU_STREAM_NON_BLOCKING 0x1
#define DV_CU_EVENT_WAIT_DEFAULT 0x0
/* The special stream handles: the legacy default stream and the per-thread
 * default stream. Both stand for a default stream of the current context. */
#define DV_CU_STREAM_LEGACY ((dv_cu_stream)0x1)
#define DV_CU_STREAM_PER_THREAD ((dv_cu_stream)0x2)
#define DV_CU_MEMHOSTREGISTER_PORTABLE 0x01

#define DV_CU_GET_PROC_ADDRESS_LEGACY_STREAM 0x1
#define DV_CU_GET_PROC_ADDRESS_SUCCESS 0

/* ---- cuGetProcAddress itself, found with dlsym ---- */

/* cuGetProcAddress_v2 (CUDA 12.0+). */
typedef dv_cu_result(DV_CUAPI *dv_cu_pfn_get_proc_address_v2)(
    const char *symbol, void **pfn, int cuda_version, dv_cu_uint64 flags,
    dv_cu_proc_query_result *symbol_status);
/* cuGetProcAddress (CUDA 11.3 to 11.8). */
typedef dv_cu_result(DV_CUAPI *dv_cu_pfn_get_proc_address_v1)(
    const char *symbol, void **pfn, int cuda_version, dv_cu_uint64 flags);
typedef dv_cu_result(DV_CUAPI *dv_cu_pfn_driver_get_version)(int *version);

/*
 * X(name, abi_version, return_type, parameter_list): every entry point
 * resolved through cuGetProcAddress at DV_CU_ABI_VERSION. Some are used by
 * the tests and benchmarks only (contexts, plain allocations, memset);
 * cuStreamWaitEvent and cuStreamIsCapturing back the HAL's stream_wait and
 * stream_is_capturing, and cuMemcpyDtoDAsync is loaded for the streaming
 * and allocation-graph work to come (unused so far).
 */
#define DV_CU_SYMBOLS(X)                                                       \
    X(cuGetErrorName, 6000, dv_cu_result, (dv_cu_result error, const char **str)) \
    X(cuGetErrorString, 6000, dv_cu_result, (dv_cu_result error, const char **str)) \
    X(cuInit, 2000, dv_cu_result, (unsigned int flags))                        \
    X(cuDriverGetVersion, 2020, dv_cu_result, (int *version))                  \
    X(cuDeviceGetCount, 2000, dv_cu_result, (int *count))                      \
    X(cuDeviceGet, 2000, dv_cu_result, (dv_cu_device *dev, int ordinal))       \
    X(cuDeviceGetName, 2000, dv_cu_result, (char *name, int len, dv_cu_device dev)) \
    X(cuDeviceTotalMem, 3020, dv_cu_result, (size_t *bytes, dv_cu_device dev)) \
    X(cuDeviceGetAttribute, 2000, dv_cu_result,                                \
      (int *value, dv_cu_device_attribute attrib, dv_cu_device dev))           \
    X(cuDevicePrimaryCtxRetain, 7000, dv_cu_result,                            \
      (dv_cu_context *ctx, dv_cu_device dev))                                  \
    X(cuDevicePrimaryCtxRelease, 11000, dv_cu_result, (dv_cu_device dev))      \
    X(cuCtxPushCurrent, 4000, dv_cu_result, (dv_cu_context ctx))               \
    X(cuCtxPopCurrent, 4000, dv_cu_result, (dv_cu_context *ctx))               \
    X(cuCtxGetCurrent, 4000, dv_cu_result, (dv_cu_context *ctx))               \
    X(cuCtxSetCurrent, 4000, dv_cu_result, (dv_cu_context ctx))                \
    X(cuCtxCreate, 11040, dv_cu_result,                                        \
      (dv_cu_context *ctx, dv_cu_exec_affinity_param *params, int num_params,  \
       unsigned int flags, dv_cu_device dev))                                  \
    X(cuCtxDestroy, 4000, dv_cu_result, (dv_cu_context ctx))                   \
    X(cuCtxSynchronize, 2000, dv_cu_result, (void))                            \
    X(cuCtxGetDevice, 2000, dv_cu_result, (dv_cu_device *device))              \
    X(cuMemGetInfo, 3020, dv_cu_result, (size_t *free_bytes, size_t *total_bytes)) \
    X(cuMemGetAllocationGranularity, 10020, dv_cu_result,                      \
      (size_t *granularity, const dv_cu_mem_allocation_prop *prop,             \
       dv_cu_granularity_flags option))                                        \
    X(cuMemAddressReserve, 10020, dv_cu_result,                                \
      (dv_cu_deviceptr *ptr, size_t size, size_t alignment,                    \
       dv_cu_deviceptr addr, unsigned long long flags))                        \
    X(cuMemAddressFree, 10020, dv_cu_result, (dv_cu_deviceptr ptr, size_t size)) \
    X(cuMemCreate, 10020, dv_cu_result,                                        \
      (dv_cu_mem_handle *handle, size_t size,                                  \
       const dv_cu_mem_allocation_prop *prop, unsigned long long flags))       \
    X(cuMemRelease, 10020, dv_cu_result, (dv_cu_mem_handle handle))            \
    X(cuMemMap, 10020, dv_cu_result,                                           \
      (dv_cu_deviceptr ptr, size_t size, size_t offset,                        \
       dv_cu_mem_handle handle, unsigned long long flags))                     \
    X(cuMemUnmap, 10020, dv_cu_result, (dv_cu_deviceptr ptr, size_t size))     \
    X(cuMemSetAccess, 10020, dv_cu_result,                                     \
      (dv_cu_deviceptr ptr, size_t size, const dv_cu_mem_access_desc *desc,    \
       size_t count))                                                          \
    X(cuEventCreate, 2000, dv_cu_result, (dv_cu_event *event, unsigned int flags)) \
    X(cuEventRecord, 2000, dv_cu_result, (dv_cu_event event, dv_cu_stream stream)) \
    X(cuEventQuery, 2000, dv_cu_result, (dv_cu_event event))                   \
    X(cuEventSynchronize, 2000, dv_cu_result, (dv_cu_event event))             \
    X(cuEventDestroy, 4000, dv_cu_result, (dv_cu_event event))                 \
    X(cuStreamCreate, 2000, dv_cu_result, (dv_cu_stream *stream, unsigned int flags)) \
    X(cuStreamDestroy, 4000, dv_cu_result, (dv_cu_stream stream))              \
    X(cuStreamSynchronize, 2000, dv_cu_result, (dv_cu_stream stream))          \
    X(cuStreamQuery, 2000, dv_cu_result, (dv_cu_stream stream))                \
    X(cuStreamGetCtx, 9020, dv_cu_result,                                      \
      (dv_cu_stream stream, dv_cu_context *ctx))                               \
    X(cuStreamWaitEvent, 3020, dv_cu_result,                                   \
      (dv_cu_stream stream, dv_cu_event event, unsigned int flags))            \
    X(cuStreamIsCapturing, 10000, dv_cu_result,                                \
      (dv_cu_stream stream, dv_cu_stream_capture_status *status))              \
    X(cuMemcpyHtoDAsync, 3020, dv_cu_result,                                   \
      (dv_cu_deviceptr dst, const void *src, size_t bytes, dv_cu_stream stream)) \
    X(cuMemcpyDtoHAsync, 3020, dv_cu_result,                                   \
      (void *dst, dv_cu_deviceptr src, size_t bytes, dv_cu_stream stream))     \
    X(cuMemcpyDtoDAsync, 3020, dv_cu_result,                                   \
      (dv_cu_deviceptr dst, dv_cu_deviceptr src, size_t bytes,                 \
       dv_cu_stream stream))                                                   \
    X(cuMemsetD8Async, 3020, dv_cu_result,                                     \
      (dv_cu_deviceptr dst, unsigned char value, size_t count,                 \
       dv_cu_stream stream))                                                   \
    X(cuMemAlloc, 3020, dv_cu_result, (dv_cu_deviceptr *ptr, size_t bytes))    \
    X(cuMemFree, 3020, dv_cu_result, (dv_cu_deviceptr ptr))                    \
    X(cuMemHostRegister, 6050, dv_cu_result,                                   \
      (void *ptr, size_t bytes, unsigned int flags))                           \
    X(cuMemHostUnregister, 4000, dv_cu_result, (void *ptr))

#define DV__CU_PFN_TYPEDEF(name, ver, ret, params)                             \
    typedef ret(DV_CUAPI *dv_cu_pfn_##name) params;
DV_CU_SYMBOLS(DV__CU_PFN_TYPEDEF)
#undef DV__CU_PFN_TYPEDEF

#endif /* DV_HAL_CUDA_ABI_H */
