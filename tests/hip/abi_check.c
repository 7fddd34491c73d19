/*
 * abi_check.c - hal/hip/hip_abi.h against the real HIP headers, at compile
 * time. Built only where <hip/hip_runtime_api.h> exists (Debian 12:
 * libamdhip64-dev, HIP 5.2); the program itself only reports what it
 * checked.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Checked: the value of every constant, the size of every type and the
 * offset of every struct member the backend uses, and the argument list of
 * every entry point it calls (transcribed in the header's own types and
 * compared with the declaration, so a misread signature fails to build).
 * hipMemAllocationProp is checked in the layout of the headers found: the
 * ROCm 5 layout on HIP 5.x, the ROCm 6 layout on HIP >= 6.
 */
#include <assert.h>
#include <stddef.h>
#include <stdio.h>

#include <hip/hip_runtime_api.h>

#include "hal/hip/hip_abi.h"

#define SAME_SIZE(a, b) static_assert(sizeof(a) == sizeof(b), #a " vs " #b)
#define SAME_OFF(ta, fa, tb, fb)                                               \
    static_assert(offsetof(ta, fa) == offsetof(tb, fb),                        \
                  #ta "." #fa " vs " #tb "." #fb)
#define SAME_VAL(a, b) static_assert((long long)(a) == (long long)(b), #a)
/* The declaration of `fn` in the real header has exactly this type. */
#define SIG(fn, ...)                                                           \
    static_assert(__builtin_types_compatible_p(__typeof__(&fn), __VA_ARGS__),  \
                  "signature of " #fn)

/* ---- results ------------------------------------------------------------ */
SAME_SIZE(hipError_t, dv_hip_error_t);
SAME_VAL(hipSuccess, DV_HIP_SUCCESS);
SAME_VAL(hipErrorInvalidValue, DV_HIP_ERROR_INVALID_VALUE);
SAME_VAL(hipErrorOutOfMemory, DV_HIP_ERROR_OUT_OF_MEMORY);
SAME_VAL(hipErrorNotInitialized, DV_HIP_ERROR_NOT_INITIALIZED);
SAME_VAL(hipErrorNoDevice, DV_HIP_ERROR_NO_DEVICE);
SAME_VAL(hipErrorInvalidDevice, DV_HIP_ERROR_INVALID_DEVICE);
SAME_VAL(hipErrorInvalidContext, DV_HIP_ERROR_INVALID_CONTEXT);
SAME_VAL(hipErrorInvalidHandle, DV_HIP_ERROR_INVALID_HANDLE);
SAME_VAL(hipErrorInvalidResourceHandle, DV_HIP_ERROR_INVALID_HANDLE);
SAME_VAL(hipErrorContextIsDestroyed, DV_HIP_ERROR_CONTEXT_IS_DESTROYED);
SAME_VAL(hipErrorNotReady, DV_HIP_ERROR_NOT_READY);
SAME_VAL(hipErrorIllegalAddress, DV_HIP_ERROR_ILLEGAL_ADDRESS);
SAME_VAL(hipErrorHostMemoryAlreadyRegistered,
         DV_HIP_ERROR_HOST_MEMORY_ALREADY_REGISTERED);
SAME_VAL(hipErrorHostMemoryNotRegistered,
         DV_HIP_ERROR_HOST_MEMORY_NOT_REGISTERED);
SAME_VAL(hipErrorNotSupported, DV_HIP_ERROR_NOT_SUPPORTED);
SAME_VAL(hipErrorUnknown, DV_HIP_ERROR_UNKNOWN);

/* ---- handles -------------------------------------------------------------- */
SAME_SIZE(hipDevice_t, dv_hip_device_t);
SAME_SIZE(hipStream_t, dv_hip_stream_t);
SAME_SIZE(hipEvent_t, dv_hip_event_t);
SAME_SIZE(hipDeviceptr_t, dv_hip_deviceptr_t);
SAME_SIZE(hipMemGenericAllocationHandle_t, dv_hip_mem_handle_t);

/* ---- enums and flags ------------------------------------------------------- */
SAME_SIZE(hipDeviceAttribute_t, dv_hip_device_attribute_t);
#if HIP_VERSION_MAJOR > 5 || (HIP_VERSION_MAJOR == 5 && HIP_VERSION_MINOR >= 3)
SAME_VAL(hipDeviceAttributeVirtualMemoryManagementSupported,
         DV_HIP_DEVICE_ATTRIBUTE_VMM_SUPPORTED);
#else
/* HIP 5.2 predates the attribute; later releases appended it right after
 * hipDeviceAttributeMemoryPoolsSupported, which must therefore be 88. */
SAME_VAL(hipDeviceAttributeMemoryPoolsSupported + 1,
         DV_HIP_DEVICE_ATTRIBUTE_VMM_SUPPORTED);
#endif
SAME_SIZE(hipMemLocationType, dv_hip_mem_location_type_t);
SAME_VAL(hipMemLocationTypeInvalid, DV_HIP_MEM_LOCATION_TYPE_INVALID);
SAME_VAL(hipMemLocationTypeDevice, DV_HIP_MEM_LOCATION_TYPE_DEVICE);
SAME_SIZE(hipMemAllocationType, dv_hip_mem_allocation_type_t);
SAME_VAL(hipMemAllocationTypeInvalid, DV_HIP_MEM_ALLOCATION_TYPE_INVALID);
SAME_VAL(hipMemAllocationTypePinned, DV_HIP_MEM_ALLOCATION_TYPE_PINNED);
SAME_SIZE(hipMemAllocationHandleType, dv_hip_mem_handle_type_t);
SAME_VAL(hipMemHandleTypeNone, DV_HIP_MEM_HANDLE_TYPE_NONE);
SAME_SIZE(hipMemAccessFlags, dv_hip_mem_access_flags_t);
SAME_VAL(hipMemAccessFlagsProtNone, DV_HIP_MEM_ACCESS_FLAGS_PROT_NONE);
SAME_VAL(hipMemAccessFlagsProtRead, DV_HIP_MEM_ACCESS_FLAGS_PROT_READ);
SAME_VAL(hipMemAccessFlagsProtReadWrite,
         DV_HIP_MEM_ACCESS_FLAGS_PROT_READ_WRITE);
SAME_SIZE(hipMemAllocationGranularity_flags, dv_hip_mem_granularity_flags_t);
SAME_VAL(hipMemAllocationGranularityMinimum,
         DV_HIP_MEM_ALLOC_GRANULARITY_MINIMUM);
SAME_VAL(hipMemAllocationGranularityRecommended,
         DV_HIP_MEM_ALLOC_GRANULARITY_RECOMMENDED);
SAME_VAL(hipEventDisableTiming, DV_HIP_EVENT_DISABLE_TIMING);
SAME_VAL(hipHostRegisterDefault, DV_HIP_HOST_REGISTER_DEFAULT);

/* ---- structs ------------------------------------------------------------------ */
SAME_SIZE(hipMemLocation, dv_hip_mem_location_t);
SAME_OFF(hipMemLocation, type, dv_hip_mem_location_t, type);
SAME_OFF(hipMemLocation, id, dv_hip_mem_location_t, id);

SAME_SIZE(hipMemAccessDesc, dv_hip_mem_access_desc_t);
SAME_OFF(hipMemAccessDesc, location, dv_hip_mem_access_desc_t, location);
SAME_OFF(hipMemAccessDesc, flags, dv_hip_mem_access_desc_t, flags);

#if HIP_VERSION_MAJOR >= 6
#define PROP_T dv_hip_mem_alloc_prop_t
SAME_SIZE(hipMemAllocationProp, PROP_T);
SAME_OFF(hipMemAllocationProp, type, PROP_T, type);
SAME_OFF(hipMemAllocationProp, requestedHandleTypes, PROP_T,
         requested_handle_types);
SAME_OFF(hipMemAllocationProp, location, PROP_T, location);
SAME_OFF(hipMemAllocationProp, win32HandleMetaData, PROP_T,
         win32_handle_meta_data);
SAME_OFF(hipMemAllocationProp, allocFlags.compressionType, PROP_T,
         alloc_flags.compression_type);
SAME_OFF(hipMemAllocationProp, allocFlags.gpuDirectRDMACapable, PROP_T,
         alloc_flags.gpu_direct_rdma_capable);
SAME_OFF(hipMemAllocationProp, allocFlags.usage, PROP_T, alloc_flags.usage);
#else
#define PROP_T dv_hip_mem_alloc_prop_v5_t
SAME_SIZE(hipMemAllocationProp, PROP_T);
SAME_OFF(hipMemAllocationProp, compressionType, PROP_T, compression_type);
SAME_OFF(hipMemAllocationProp, location, PROP_T, location);
SAME_OFF(hipMemAllocationProp, requestedHandleType, PROP_T,
         requested_handle_type);
SAME_OFF(hipMemAllocationProp, type, PROP_T, type);
SAME_OFF(hipMemAllocationProp, usage, PROP_T, usage);
SAME_OFF(hipMemAllocationProp, win32HandleMetaData, PROP_T,
         win32_handle_meta_data);
#endif
/* Both layouts are the same size, so the backend's union fits either. */
static_assert(sizeof(dv_hip_mem_alloc_prop_t) ==
                  sizeof(dv_hip_mem_alloc_prop_v5_t),
              "prop layouts differ in size");

/* ---- entry points, transcribed in the header's types ------------------------ */
SIG(hipRuntimeGetVersion, hipError_t (*)(int *));
SIG(hipGetErrorName, const char *(*)(hipError_t));
SIG(hipGetDeviceCount, hipError_t (*)(int *));
SIG(hipGetDevice, hipError_t (*)(int *));
SIG(hipSetDevice, hipError_t (*)(int));
SIG(hipDeviceGet, hipError_t (*)(hipDevice_t *, int));
SIG(hipDeviceGetName, hipError_t (*)(char *, int, hipDevice_t));
SIG(hipDeviceGetAttribute, hipError_t (*)(int *, hipDeviceAttribute_t, int));
SIG(hipMemGetInfo, hipError_t (*)(size_t *, size_t *));
SIG(hipMemAddressReserve,
    hipError_t (*)(void **, size_t, size_t, void *, unsigned long long));
SIG(hipMemAddressFree, hipError_t (*)(void *, size_t));
SIG(hipMemCreate,
    hipError_t (*)(hipMemGenericAllocationHandle_t *, size_t,
                   const hipMemAllocationProp *, unsigned long long));
SIG(hipMemRelease, hipError_t (*)(hipMemGenericAllocationHandle_t));
SIG(hipMemMap, hipError_t (*)(void *, size_t, size_t,
                              hipMemGenericAllocationHandle_t,
                              unsigned long long));
SIG(hipMemUnmap, hipError_t (*)(void *, size_t));
SIG(hipMemSetAccess,
    hipError_t (*)(void *, size_t, const hipMemAccessDesc *, size_t));
SIG(hipMemGetAllocationGranularity,
    hipError_t (*)(size_t *, const hipMemAllocationProp *,
                   hipMemAllocationGranularity_flags));
SIG(hipStreamCreate, hipError_t (*)(hipStream_t *));
SIG(hipStreamDestroy, hipError_t (*)(hipStream_t));
SIG(hipStreamSynchronize, hipError_t (*)(hipStream_t));
SIG(hipStreamGetFlags, hipError_t (*)(hipStream_t, unsigned int *));
#if HIP_VERSION_MAJOR > 5 || (HIP_VERSION_MAJOR == 5 && HIP_VERSION_MINOR >= 6)
SIG(hipStreamGetDevice, hipError_t (*)(hipStream_t, hipDevice_t *));
#else
/* HIP < 5.6 headers lack hipStreamGetDevice (the backend resolves it as
 * optional); its device argument is a hipDevice_t, sized above. */
#endif
SIG(hipEventCreateWithFlags, hipError_t (*)(hipEvent_t *, unsigned));
SIG(hipEventRecord, hipError_t (*)(hipEvent_t, hipStream_t));
SIG(hipEventQuery, hipError_t (*)(hipEvent_t));
SIG(hipEventSynchronize, hipError_t (*)(hipEvent_t));
SIG(hipEventDestroy, hipError_t (*)(hipEvent_t));
SIG(hipMemcpyHtoDAsync,
    hipError_t (*)(hipDeviceptr_t, void *, size_t, hipStream_t));
SIG(hipMemcpyDtoHAsync,
    hipError_t (*)(void *, hipDeviceptr_t, size_t, hipStream_t));
SIG(hipHostRegister, hipError_t (*)(void *, size_t, unsigned int));
SIG(hipHostUnregister, hipError_t (*)(void *));

int main(void) {
    printf("hip_abi.h matches <hip/hip_runtime_api.h> of HIP %d.%d "
           "(hipMemAllocationProp in the ROCm %s layout)\n",
           HIP_VERSION_MAJOR, HIP_VERSION_MINOR,
           HIP_VERSION_MAJOR >= 6 ? ">= 6" : "5");
    return 0;
}
