/*
 * hip_abi.h - the slice of the HIP runtime C ABI that the dynvram HIP
 * backend uses, written from the public API documentation so that building
 * needs no ROCm SDK.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Contract:
 *  - Every name here carries the dv_hip_ / DV_HIP_ prefix, so this header
 *    can be included next to the real <hip/hip_runtime_api.h> (the ABI check
 *    in tests/hip/abi_check.c does exactly that and static_asserts that the
 *    sizes, offsets and values below equal the real ones).
 *  - Only what the backend (and the simulated driver in tests/fakes/hip)
 *    calls is declared. Enums carry a _FORCE_INT32 member so their width is int, as
 *    the real C enums are.
 *  - hipMemAllocationProp changed layout between ROCm 5 and ROCm 6 (6 made
 *    it match CUDA's CUmemAllocationProp). Both layouts are declared; the
 *    backend picks one from hipRuntimeGetVersion() at load time.
 */
#ifndef DV_HAL_HIP_ABI_H
#define DV_HAL_HIP_ABI_H

#include <stddef.h>
#include <stdint.h>

/* HIP declares its entry points with the platform's default C calling
 * convention (no __stdcall on Windows, unlike the CUDA driver API). */

/* ---- results (hipError_t) ---------------------------------------------- */

typedef enum dv_hip_error {
    DV_HIP_SUCCESS = 0,
    DV_HIP_ERROR_INVALID_VALUE = 1,
    DV_HIP_ERROR_OUT_OF_MEMORY = 2, /* also hipErrorMemoryAllocation */
    DV_HIP_ERROR_NOT_INITIALIZED = 3,
    DV_HIP_ERROR_NO_DEVICE = 100,
    DV_HIP_ERROR_INVALID_DEVICE = 101,
    DV_HIP_ERROR_INVALID_CONTEXT = 201,
    DV_HIP_ERROR_INVALID_HANDLE = 400, /* also hipErrorInvalidResourceHandle */
    DV_HIP_ERROR_NOT_READY = 600,
    DV_HIP_ERROR_ILLEGAL_ADDRESS = 700,
    /* What ROCm answers for a stream that is not (or no longer) one of its
     * live streams, where it checks (hipStreamGetDevice, and
     * hipStreamGetFlags before ROCm 6). */
    DV_HIP_ERROR_CONTEXT_IS_DESTROYED = 709,
    DV_HIP_ERROR_HOST_MEMORY_ALREADY_REGISTERED = 712,
    DV_HIP_ERROR_HOST_MEMORY_NOT_REGISTERED = 713,
    DV_HIP_ERROR_NOT_SUPPORTED = 801,
    DV_HIP_ERROR_UNKNOWN = 999,
    DV_HIP_ERROR_FORCE_INT32 = 0x7fffffff
} dv_hip_error_t;

/* ---- opaque handles ----------------------------------------------------- */

typedef int dv_hip_device_t;                              /* hipDevice_t */
typedef struct dv_hip_stream_opaque *dv_hip_stream_t;     /* hipStream_t */
typedef struct dv_hip_event_opaque *dv_hip_event_t;       /* hipEvent_t */
typedef void *dv_hip_deviceptr_t;                         /* hipDeviceptr_t */
typedef struct dv_hip_mem_opaque *dv_hip_mem_handle_t;    /* hipMemGenericAllocationHandle_t */

/* ---- enums and flags ----------------------------------------------------- */

typedef enum dv_hip_device_attribute {
    /* hipDeviceAttributeVirtualMemoryManagementSupported (ROCm >= 5.3). */
    DV_HIP_DEVICE_ATTRIBUTE_VMM_SUPPORTED = 89,
    DV_HIP_DEVICE_ATTRIBUTE_FORCE_INT32 = 0x7fffffff
} dv_hip_device_attribute_t;

typedef enum dv_hip_mem_location_type {
    DV_HIP_MEM_LOCATION_TYPE_INVALID = 0,
    DV_HIP_MEM_LOCATION_TYPE_DEVICE = 1,
    DV_HIP_MEM_LOCATION_TYPE_FORCE_INT32 = 0x7fffffff
} dv_hip_mem_location_type_t;

typedef enum dv_hip_mem_allocation_type {
    DV_HIP_MEM_ALLOCATION_TYPE_INVALID = 0,
    DV_HIP_MEM_ALLOCATION_TYPE_PINNED = 1,
    DV_HIP_MEM_ALLOCATION_TYPE_FORCE_INT32 = 0x7fffffff
} dv_hip_mem_allocation_type_t;

typedef enum dv_hip_mem_handle_type {
    DV_HIP_MEM_HANDLE_TYPE_NONE = 0,
    DV_HIP_MEM_HANDLE_TYPE_FORCE_INT32 = 0x7fffffff
} dv_hip_mem_handle_type_t;

typedef enum dv_hip_mem_access_flags {
    DV_HIP_MEM_ACCESS_FLAGS_PROT_NONE = 0,
    DV_HIP_MEM_ACCESS_FLAGS_PROT_READ = 1,
    DV_HIP_MEM_ACCESS_FLAGS_PROT_READ_WRITE = 3,
    DV_HIP_MEM_ACCESS_FLAGS_FORCE_INT32 = 0x7fffffff
} dv_hip_mem_access_flags_t;

typedef enum dv_hip_mem_granularity_flags {
    DV_HIP_MEM_ALLOC_GRANULARITY_MINIMUM = 0,
    DV_HIP_MEM_ALLOC_GRANULARITY_RECOMMENDED = 1,
    DV_HIP_MEM_ALLOC_GRANULARITY_FORCE_INT32 = 0x7fffffff
} dv_hip_mem_granularity_flags_t;

#define DV_HIP_EVENT_DISABLE_TIMING 0x2u  /* hipEventDisableTiming */
#define DV_HIP_HOST_REGISTER_DEFAULT 0x0u /* hipHostRegisterDefault */

/* ---- structs -------------------------------------------------------------- */

typedef struct dv_hip_mem_location { /* hipMemLocation */
    dv_hip_mem_location_type_t type;
    int id;
} dv_hip_mem_location_t;

typedef struct dv_hip_mem_access_desc { /* hipMemAccessDesc */
    dv_hip_mem_location_t location;
    dv_hip_mem_access_flags_t flags;
} dv_hip_mem_access_desc_t;

/* hipMemAllocationProp, ROCm >= 6 (same layout as CUmemAllocationProp). */
typedef struct dv_hip_mem_alloc_prop {
    dv_hip_mem_allocation_type_t type;
    dv_hip_mem_handle_type_t requested_handle_types;
    dv_hip_mem_location_t location;
    void *win32_handle_meta_data;
    struct {
        unsigned char compression_type;
        unsigned char gpu_direct_rdma_capable;
        unsigned short usage;
    } alloc_flags;
} dv_hip_mem_alloc_prop_t;

/* hipMemAllocationProp, ROCm 5.x (the layout of Debian 12's HIP 5.2). */
typedef struct dv_hip_mem_alloc_prop_v5 {
    unsigned char compression_type;
    dv_hip_mem_location_t location;
    dv_hip_mem_handle_type_t requested_handle_type;
    dv_hip_mem_allocation_type_t type;
    unsigned short usage;
    void *win32_handle_meta_data;
} dv_hip_mem_alloc_prop_v5_t;

/* The runtime version (hipRuntimeGetVersion) is
 * major * 10000000 + minor * 100000 + patch. */
#define DV_HIP_VERSION_MAJOR(v) ((v) / 10000000)
#define DV_HIP_VERSION_MINOR(v) (((v) / 100000) % 100)

/* ---- entry points ----------------------------------------------------------
 * `prop` is const void * because its layout depends on the runtime version
 * (dv_hip_mem_alloc_prop_t or dv_hip_mem_alloc_prop_v5_t). */

typedef dv_hip_error_t(*dv_hip_runtime_get_version_fn)(int *version);
typedef const char *(*dv_hip_get_error_name_fn)(dv_hip_error_t err);
typedef dv_hip_error_t(*dv_hip_get_device_count_fn)(int *count);
typedef dv_hip_error_t(*dv_hip_get_device_fn)(int *device);
typedef dv_hip_error_t(*dv_hip_set_device_fn)(int device);
typedef dv_hip_error_t(*dv_hip_device_get_fn)(dv_hip_device_t *dev,
                                                         int ordinal);
typedef dv_hip_error_t(*dv_hip_device_get_name_fn)(
    char *name, int len, dv_hip_device_t dev);
typedef dv_hip_error_t(*dv_hip_device_get_attribute_fn)(
    int *value, dv_hip_device_attribute_t attr, int device);
typedef dv_hip_error_t(*dv_hip_mem_get_info_fn)(size_t *free_bytes,
                                                           size_t *total_bytes);

typedef dv_hip_error_t(*dv_hip_mem_address_reserve_fn)(
    void **ptr, size_t size, size_t alignment, void *addr,
    unsigned long long flags);
typedef dv_hip_error_t(*dv_hip_mem_address_free_fn)(void *ptr,
                                                               size_t size);
typedef dv_hip_error_t(*dv_hip_mem_create_fn)(
    dv_hip_mem_handle_t *handle, size_t size, const void *prop,
    unsigned long long flags);
typedef dv_hip_error_t(*dv_hip_mem_release_fn)(
    dv_hip_mem_handle_t handle);
typedef dv_hip_error_t(*dv_hip_mem_map_fn)(
    void *ptr, size_t size, size_t offset, dv_hip_mem_handle_t handle,
    unsigned long long flags);
typedef dv_hip_error_t(*dv_hip_mem_unmap_fn)(void *ptr, size_t size);
typedef dv_hip_error_t(*dv_hip_mem_set_access_fn)(
    void *ptr, size_t size, const dv_hip_mem_access_desc_t *desc, size_t count);
typedef dv_hip_error_t(*dv_hip_mem_get_allocation_granularity_fn)(
    size_t *granularity, const void *prop,
    dv_hip_mem_granularity_flags_t option);

typedef dv_hip_error_t(*dv_hip_stream_create_fn)(
    dv_hip_stream_t *stream);
typedef dv_hip_error_t(*dv_hip_stream_destroy_fn)(
    dv_hip_stream_t stream);
typedef dv_hip_error_t(*dv_hip_stream_synchronize_fn)(
    dv_hip_stream_t stream);
/* hipStreamGetFlags (every ROCm) and hipStreamGetDevice (ROCm >= 5.6; its
 * hipDevice_t is the device ordinal, as from hipDeviceGet). */
typedef dv_hip_error_t (*dv_hip_stream_get_flags_fn)(dv_hip_stream_t stream,
                                                     unsigned int *flags);
typedef dv_hip_error_t (*dv_hip_stream_get_device_fn)(dv_hip_stream_t stream,
                                                      dv_hip_device_t *device);
typedef dv_hip_error_t(*dv_hip_event_create_with_flags_fn)(
    dv_hip_event_t *event, unsigned flags);
typedef dv_hip_error_t(*dv_hip_event_record_fn)(
    dv_hip_event_t event, dv_hip_stream_t stream);
typedef dv_hip_error_t(*dv_hip_event_query_fn)(dv_hip_event_t event);
typedef dv_hip_error_t(*dv_hip_event_synchronize_fn)(
    dv_hip_event_t event);
typedef dv_hip_error_t(*dv_hip_event_destroy_fn)(
    dv_hip_event_t event);

typedef dv_hip_error_t(*dv_hip_memcpy_htod_async_fn)(
    dv_hip_deviceptr_t dst, void *src, size_t size, dv_hip_stream_t stream);
typedef dv_hip_error_t(*dv_hip_memcpy_dtoh_async_fn)(
    void *dst, dv_hip_deviceptr_t src, size_t size, dv_hip_stream_t stream);
typedef dv_hip_error_t(*dv_hip_host_register_fn)(void *ptr,
                                                            size_t size,
                                                            unsigned flags);
typedef dv_hip_error_t(*dv_hip_host_unregister_fn)(void *ptr);

#endif /* DV_HAL_HIP_ABI_H */
