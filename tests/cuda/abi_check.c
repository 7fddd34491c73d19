/*
 * abi_check.c - compile-time proof that hal/cuda/cuda_abi.h matches the CUDA
 * SDK's cuda.h and cudaTypedefs.h.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Built only where the SDK headers exist (tests/cuda/tests.cmake). If it
 * compiles, every size, offset and constant our header declares equals the
 * SDK's, and every entry point's prototype is compatible with the SDK's
 * PFN_<name>_v<version> typedef: the ABI cuGetProcAddress hands out for that
 * name. At run time it only prints how many checks passed.
 */
#include "hal/cuda/cuda_abi.h"

#include <cuda.h>
#include <cudaTypedefs.h>
#include <stddef.h>
#include <stdio.h>

#define SAME_SIZE(a, b) _Static_assert(sizeof(a) == sizeof(b), #a " vs " #b)
#define SAME_VALUE(a, b) _Static_assert((long long)(a) == (long long)(b), #a)
#define SAME_FIELD(ta, fa, tb, fb)                                             \
    _Static_assert(offsetof(ta, fa) == offsetof(tb, fb) &&                      \
                       sizeof(((ta *)0)->fa) == sizeof(((tb *)0)->fb),          \
                   #ta "." #fa)

/* ---- types ---- */
SAME_SIZE(dv_cu_result, CUresult);
SAME_SIZE(dv_cu_device, CUdevice);
SAME_SIZE(dv_cu_device_attribute, CUdevice_attribute);
SAME_SIZE(dv_cu_granularity_flags, CUmemAllocationGranularity_flags);
SAME_SIZE(dv_cu_proc_query_result, CUdriverProcAddressQueryResult);
SAME_SIZE(dv_cu_deviceptr, CUdeviceptr);
SAME_SIZE(dv_cu_mem_handle, CUmemGenericAllocationHandle);
SAME_SIZE(dv_cu_uint64, cuuint64_t);
SAME_SIZE(dv_cu_context, CUcontext);
SAME_SIZE(dv_cu_stream, CUstream);
SAME_SIZE(dv_cu_event, CUevent);
SAME_SIZE(dv_cu_stream_capture_status, CUstreamCaptureStatus);

SAME_SIZE(dv_cu_mem_location, CUmemLocation);
SAME_FIELD(dv_cu_mem_location, type, CUmemLocation, type);
SAME_FIELD(dv_cu_mem_location, id, CUmemLocation, id);
SAME_SIZE(((dv_cu_mem_location *)0)->type, CUmemLocationType);

SAME_SIZE(dv_cu_mem_allocation_prop, CUmemAllocationProp);
SAME_FIELD(dv_cu_mem_allocation_prop, type, CUmemAllocationProp, type);
SAME_SIZE(((dv_cu_mem_allocation_prop *)0)->type, CUmemAllocationType);
SAME_FIELD(dv_cu_mem_allocation_prop, requested_handle_types,
           CUmemAllocationProp, requestedHandleTypes);
SAME_SIZE(((dv_cu_mem_allocation_prop *)0)->requested_handle_types,
          CUmemAllocationHandleType);
SAME_FIELD(dv_cu_mem_allocation_prop, location, CUmemAllocationProp, location);
SAME_FIELD(dv_cu_mem_allocation_prop, win32_handle_meta_data,
           CUmemAllocationProp, win32HandleMetaData);
SAME_FIELD(dv_cu_mem_allocation_prop, alloc_flags, CUmemAllocationProp,
           allocFlags);
SAME_FIELD(dv_cu_mem_allocation_prop, alloc_flags.compression_type,
           CUmemAllocationProp, allocFlags.compressionType);
SAME_FIELD(dv_cu_mem_allocation_prop, alloc_flags.gpu_direct_rdma_capable,
           CUmemAllocationProp, allocFlags.gpuDirectRDMACapable);
SAME_FIELD(dv_cu_mem_allocation_prop, alloc_flags.usage, CUmemAllocationProp,
           allocFlags.usage);
SAME_FIELD(dv_cu_mem_allocation_prop, alloc_flags.reserved,
           CUmemAllocationProp, allocFlags.reserved);

SAME_SIZE(dv_cu_mem_access_desc, CUmemAccessDesc);
SAME_FIELD(dv_cu_mem_access_desc, location, CUmemAccessDesc, location);
SAME_FIELD(dv_cu_mem_access_desc, flags, CUmemAccessDesc, flags);
SAME_SIZE(((dv_cu_mem_access_desc *)0)->flags, CUmemAccess_flags);

/* ---- constants ---- */
SAME_VALUE(DV_CU_SUCCESS, CUDA_SUCCESS);
SAME_VALUE(DV_CU_ERROR_INVALID_VALUE, CUDA_ERROR_INVALID_VALUE);
SAME_VALUE(DV_CU_ERROR_OUT_OF_MEMORY, CUDA_ERROR_OUT_OF_MEMORY);
SAME_VALUE(DV_CU_ERROR_NOT_INITIALIZED, CUDA_ERROR_NOT_INITIALIZED);
SAME_VALUE(DV_CU_ERROR_DEINITIALIZED, CUDA_ERROR_DEINITIALIZED);
SAME_VALUE(DV_CU_ERROR_STUB_LIBRARY, CUDA_ERROR_STUB_LIBRARY);
SAME_VALUE(DV_CU_ERROR_NO_DEVICE, CUDA_ERROR_NO_DEVICE);
SAME_VALUE(DV_CU_ERROR_INVALID_DEVICE, CUDA_ERROR_INVALID_DEVICE);
SAME_VALUE(DV_CU_ERROR_INVALID_CONTEXT, CUDA_ERROR_INVALID_CONTEXT);
SAME_VALUE(DV_CU_ERROR_INVALID_HANDLE, CUDA_ERROR_INVALID_HANDLE);
SAME_VALUE(DV_CU_ERROR_NOT_FOUND, CUDA_ERROR_NOT_FOUND);
SAME_VALUE(DV_CU_ERROR_NOT_READY, CUDA_ERROR_NOT_READY);
SAME_VALUE(DV_CU_ERROR_NOT_SUPPORTED, CUDA_ERROR_NOT_SUPPORTED);
SAME_VALUE(DV_CU_ERROR_CONTEXT_IS_DESTROYED, CUDA_ERROR_CONTEXT_IS_DESTROYED);
SAME_VALUE(DV_CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED,
           CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED);
SAME_VALUE(DV_CU_DEVICE_ATTRIBUTE_PCI_BUS_ID, CU_DEVICE_ATTRIBUTE_PCI_BUS_ID);
SAME_VALUE(DV_CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID,
           CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID);
SAME_VALUE(DV_CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID,
           CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID);
SAME_VALUE(DV_CU_MEM_ALLOCATION_TYPE_PINNED, CU_MEM_ALLOCATION_TYPE_PINNED);
SAME_VALUE(DV_CU_MEM_HANDLE_TYPE_NONE, CU_MEM_HANDLE_TYPE_NONE);
SAME_VALUE(DV_CU_MEM_LOCATION_TYPE_DEVICE, CU_MEM_LOCATION_TYPE_DEVICE);
SAME_VALUE(DV_CU_MEM_ACCESS_FLAGS_PROT_READWRITE,
           CU_MEM_ACCESS_FLAGS_PROT_READWRITE);
SAME_VALUE(DV_CU_MEM_ALLOC_GRANULARITY_MINIMUM, CU_MEM_ALLOC_GRANULARITY_MINIMUM);
SAME_VALUE(DV_CU_MEM_ALLOC_GRANULARITY_RECOMMENDED,
           CU_MEM_ALLOC_GRANULARITY_RECOMMENDED);
SAME_VALUE(DV_CU_EVENT_DISABLE_TIMING, CU_EVENT_DISABLE_TIMING);
SAME_VALUE(DV_CU_STREAM_NON_BLOCKING, CU_STREAM_NON_BLOCKING);
SAME_VALUE(DV_CU_EVENT_WAIT_DEFAULT, CU_EVENT_WAIT_DEFAULT);
SAME_VALUE(DV_CU_STREAM_CAPTURE_STATUS_NONE, CU_STREAM_CAPTURE_STATUS_NONE);
SAME_VALUE(DV_CU_STREAM_CAPTURE_STATUS_ACTIVE, CU_STREAM_CAPTURE_STATUS_ACTIVE);
SAME_VALUE(DV_CU_STREAM_CAPTURE_STATUS_INVALIDATED,
           CU_STREAM_CAPTURE_STATUS_INVALIDATED);
SAME_VALUE(DV_CU_MEMHOSTREGISTER_PORTABLE, CU_MEMHOSTREGISTER_PORTABLE);
SAME_VALUE(DV_CU_GET_PROC_ADDRESS_LEGACY_STREAM,
           CU_GET_PROC_ADDRESS_LEGACY_STREAM);
SAME_VALUE(DV_CU_GET_PROC_ADDRESS_SUCCESS, CU_GET_PROC_ADDRESS_SUCCESS);
_Static_assert(DV_CU_ABI_VERSION <= CUDA_VERSION, "SDK older than the pin");

/* ---- prototypes ----
 * From here on our type names stand for the SDK's, so each prototype can be
 * compared with the SDK typedef for the same symbol and ABI version. */
#define dv_cu_result CUresult
#define dv_cu_device CUdevice
#define dv_cu_device_attribute CUdevice_attribute
#define dv_cu_granularity_flags CUmemAllocationGranularity_flags
#define dv_cu_proc_query_result CUdriverProcAddressQueryResult
#define dv_cu_deviceptr CUdeviceptr
#define dv_cu_mem_handle CUmemGenericAllocationHandle
#define dv_cu_uint64 cuuint64_t
#define dv_cu_context CUcontext
#define dv_cu_stream CUstream
#define dv_cu_event CUevent
#define dv_cu_stream_capture_status CUstreamCaptureStatus
#define dv_cu_exec_affinity_param CUexecAffinityParam
#define dv_cu_mem_allocation_prop CUmemAllocationProp
#define dv_cu_mem_access_desc CUmemAccessDesc

#define SAME_PROTO(name, ver, ret, params)                                     \
    _Static_assert(__builtin_types_compatible_p(PFN_##name##_v##ver,           \
                                                ret(CUDAAPI *) params),        \
                   #name " does not match PFN_" #name "_v" #ver);              \
    _Static_assert(ver <= DV_CU_ABI_VERSION, #name " newer than the pin");
DV_CU_SYMBOLS(SAME_PROTO)

_Static_assert(__builtin_types_compatible_p(
                   PFN_cuGetProcAddress_v12000,
                   CUresult(CUDAAPI *)(const char *, void **, int, cuuint64_t,
                                       CUdriverProcAddressQueryResult *)),
               "cuGetProcAddress_v2");
_Static_assert(__builtin_types_compatible_p(
                   PFN_cuGetProcAddress_v11030,
                   CUresult(CUDAAPI *)(const char *, void **, int, cuuint64_t)),
               "cuGetProcAddress");
_Static_assert(__builtin_types_compatible_p(PFN_cuDriverGetVersion_v2020,
                                            CUresult(CUDAAPI *)(int *)),
               "cuDriverGetVersion");

/* ---- NVML (hal/cuda/nvml_abi.h), where the SDK ships nvml.h ---- */
#if defined(__has_include)
#if __has_include(<nvml.h>)
#include <nvml.h>

#include "hal/cuda/nvml_abi.h"
#define DV_HAVE_NVML_H 1
SAME_SIZE(dv_nvml_return, nvmlReturn_t);
SAME_SIZE(dv_nvml_device, nvmlDevice_t);
SAME_SIZE(dv_nvml_memory, nvmlMemory_t);
SAME_FIELD(dv_nvml_memory, total, nvmlMemory_t, total);
SAME_FIELD(dv_nvml_memory, free, nvmlMemory_t, free);
SAME_FIELD(dv_nvml_memory, used, nvmlMemory_t, used);
SAME_VALUE(DV_NVML_SUCCESS, NVML_SUCCESS);
SAME_VALUE(DV_NVML_PCI_BUS_ID_LEN, NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE);
#define dv_nvml_return nvmlReturn_t
#define dv_nvml_device nvmlDevice_t
#define dv_nvml_memory nvmlMemory_t
#define SAME_NVML_PROTO(name, ret, params)                                     \
    _Static_assert(                                                            \
        __builtin_types_compatible_p(__typeof__(&name), ret(*) params),        \
        #name " does not match nvml.h");
DV_NVML_SYMBOLS(SAME_NVML_PROTO)
#endif
#endif

/* Count the symbols so the output says what was covered. */
#define COUNT_ONE(name, ver, ret, params) +1
enum { ABI_SYMBOL_COUNT = 0 DV_CU_SYMBOLS(COUNT_ONE) };

int main(void) {
    /* Pointer constants are no integer constant expressions: checked here. */
    if ((void *)DV_CU_STREAM_LEGACY != (void *)CU_STREAM_LEGACY ||
        (void *)DV_CU_STREAM_PER_THREAD != (void *)CU_STREAM_PER_THREAD) {
        fprintf(stderr, "CU_STREAM_LEGACY / CU_STREAM_PER_THREAD differ\n");
        return 1;
    }
    printf("cuda_abi.h matches CUDA %d headers: %d entry points at ABI %d\n",
           CUDA_VERSION, (int)ABI_SYMBOL_COUNT, DV_CU_ABI_VERSION);
#ifdef DV_HAVE_NVML_H
    printf("nvml_abi.h matches nvml.h\n");
#else
    printf("nvml.h not found: nvml_abi.h not checked\n");
#endif
    return 0;
}
