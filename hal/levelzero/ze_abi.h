/*
 * ze_abi.h - the part of the oneAPI Level Zero C ABI the backend uses.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Written from the Level Zero specification (API 1.0-1.4; every type here
 * is unchanged since 1.0) so the build needs no oneAPI SDK. Only the
 * types, constants and prototypes the backend calls are declared. Names
 * carry a dv_ze_ / DV_ZE_ prefix so this header can sit next to the real
 * ze_api.h: tests/levelzero/abi_check.c includes both and static_asserts
 * that sizes, offsets and values agree.
 *
 * Calling convention: ZE_APICALL is __cdecl on 32-bit Windows and empty
 * elsewhere; DV_ZE_CALL mirrors it.
 */
#ifndef DV_HAL_LEVELZERO_ZE_ABI_H
#define DV_HAL_LEVELZERO_ZE_ABI_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define DV_ZE_CALL __cdecl
#else
#define DV_ZE_CALL
#endif

/* ze_result_t: an enum pinned to 32 bits (..._FORCE_UINT32 = 0x7fffffff). */
typedef enum dv_ze_result {
    DV_ZE_RESULT_SUCCESS = 0,
    DV_ZE_RESULT_NOT_READY = 1,
    DV_ZE_RESULT_ERROR_DEVICE_LOST = 0x70000001,
    DV_ZE_RESULT_ERROR_OUT_OF_HOST_MEMORY = 0x70000002,
    DV_ZE_RESULT_ERROR_OUT_OF_DEVICE_MEMORY = 0x70000003,
    DV_ZE_RESULT_ERROR_DEVICE_REQUIRES_RESET = 0x70000006,
    DV_ZE_RESULT_ERROR_DEVICE_IN_LOW_POWER_STATE = 0x70000007,
    DV_ZE_RESULT_ERROR_INSUFFICIENT_PERMISSIONS = 0x70010000,
    DV_ZE_RESULT_ERROR_NOT_AVAILABLE = 0x70010001,
    DV_ZE_RESULT_ERROR_DEPENDENCY_UNAVAILABLE = 0x70020000,
    DV_ZE_RESULT_ERROR_UNINITIALIZED = 0x78000001,
    DV_ZE_RESULT_ERROR_UNSUPPORTED_VERSION = 0x78000002,
    DV_ZE_RESULT_ERROR_UNSUPPORTED_FEATURE = 0x78000003,
    DV_ZE_RESULT_ERROR_INVALID_ARGUMENT = 0x78000004,
    DV_ZE_RESULT_ERROR_INVALID_NULL_HANDLE = 0x78000005,
    DV_ZE_RESULT_ERROR_HANDLE_OBJECT_IN_USE = 0x78000006,
    DV_ZE_RESULT_ERROR_INVALID_NULL_POINTER = 0x78000007,
    DV_ZE_RESULT_ERROR_INVALID_SIZE = 0x78000008,
    DV_ZE_RESULT_ERROR_UNSUPPORTED_SIZE = 0x78000009,
    DV_ZE_RESULT_ERROR_UNSUPPORTED_ALIGNMENT = 0x7800000a,
    DV_ZE_RESULT_ERROR_INVALID_SYNCHRONIZATION_OBJECT = 0x7800000b,
    DV_ZE_RESULT_ERROR_INVALID_ENUMERATION = 0x7800000c,
    DV_ZE_RESULT_ERROR_UNSUPPORTED_ENUMERATION = 0x7800000d,
    DV_ZE_RESULT_ERROR_OVERLAPPING_REGIONS = 0x7800001a,
    DV_ZE_RESULT_ERROR_UNKNOWN = 0x7ffffffe,
    DV_ZE_RESULT_FORCE_UINT32 = 0x7fffffff
} dv_ze_result_t;

/* Handles are pointers to opaque structs. */
typedef struct dv_ze_driver_s *dv_ze_driver_handle_t;
typedef struct dv_ze_device_s *dv_ze_device_handle_t;
typedef struct dv_ze_context_s *dv_ze_context_handle_t;
typedef struct dv_ze_command_list_s *dv_ze_command_list_handle_t;
typedef struct dv_ze_event_pool_s *dv_ze_event_pool_handle_t;
typedef struct dv_ze_event_s *dv_ze_event_handle_t;
typedef struct dv_ze_physical_mem_s *dv_ze_physical_mem_handle_t;
/* zes_device_handle_t is a typedef of ze_device_handle_t. */
typedef struct dv_zes_mem_s *dv_zes_mem_handle_t;

/* ze_structure_type_t / zes_structure_type_t values (32-bit enums). */
typedef uint32_t dv_ze_structure_type_t;
#define DV_ZE_STRUCTURE_TYPE_DEVICE_PROPERTIES 0x3u
#define DV_ZE_STRUCTURE_TYPE_DEVICE_MEMORY_PROPERTIES 0x7u
#define DV_ZE_STRUCTURE_TYPE_CONTEXT_DESC 0xdu
#define DV_ZE_STRUCTURE_TYPE_COMMAND_QUEUE_DESC 0xeu
#define DV_ZE_STRUCTURE_TYPE_EVENT_POOL_DESC 0x10u
#define DV_ZE_STRUCTURE_TYPE_EVENT_DESC 0x11u
#define DV_ZE_STRUCTURE_TYPE_PHYSICAL_MEM_DESC 0x20u
#define DV_ZES_STRUCTURE_TYPE_MEM_PROPERTIES 0xbu
#define DV_ZES_STRUCTURE_TYPE_MEM_STATE 0x1eu

#define DV_ZE_INIT_FLAG_GPU_ONLY 0x1u
#define DV_ZE_DEVICE_TYPE_GPU 1u
#define DV_ZE_MAX_DEVICE_NAME 256
#define DV_ZE_MAX_DEVICE_UUID_SIZE 16
#define DV_ZE_EVENT_POOL_FLAG_HOST_VISIBLE 0x1u
#define DV_ZE_EVENT_SCOPE_FLAG_HOST 0x4u
#define DV_ZE_COMMAND_QUEUE_MODE_ASYNCHRONOUS 2u
#define DV_ZE_COMMAND_QUEUE_PRIORITY_NORMAL 0u
#define DV_ZE_MEMORY_ACCESS_ATTRIBUTE_READWRITE 1u
#define DV_ZES_MEM_LOC_DEVICE 1u

typedef struct dv_ze_device_uuid {
    uint8_t id[DV_ZE_MAX_DEVICE_UUID_SIZE];
} dv_ze_device_uuid_t;

typedef struct dv_ze_device_properties {
    dv_ze_structure_type_t stype;
    void *pNext;
    uint32_t type; /* ze_device_type_t */
    uint32_t vendorId;
    uint32_t deviceId;
    uint32_t flags;
    uint32_t subdeviceId;
    uint32_t coreClockRate;
    uint64_t maxMemAllocSize;
    uint32_t maxHardwareContexts;
    uint32_t maxCommandQueuePriority;
    uint32_t numThreadsPerEU;
    uint32_t physicalEUSimdWidth;
    uint32_t numEUsPerSubslice;
    uint32_t numSubslicesPerSlice;
    uint32_t numSlices;
    uint64_t timerResolution;
    uint32_t timestampValidBits;
    uint32_t kernelTimestampValidBits;
    dv_ze_device_uuid_t uuid;
    char name[DV_ZE_MAX_DEVICE_NAME];
} dv_ze_device_properties_t;

typedef struct dv_ze_device_memory_properties {
    dv_ze_structure_type_t stype;
    void *pNext;
    uint32_t flags;
    uint32_t maxClockRate;
    uint32_t maxBusWidth;
    uint64_t totalSize;
    char name[DV_ZE_MAX_DEVICE_NAME];
} dv_ze_device_memory_properties_t;

typedef struct dv_ze_context_desc {
    dv_ze_structure_type_t stype;
    const void *pNext;
    uint32_t flags;
} dv_ze_context_desc_t;

typedef struct dv_ze_command_queue_desc {
    dv_ze_structure_type_t stype;
    const void *pNext;
    uint32_t ordinal;
    uint32_t index;
    uint32_t flags;
    uint32_t mode;     /* ze_command_queue_mode_t */
    uint32_t priority; /* ze_command_queue_priority_t */
} dv_ze_command_queue_desc_t;

typedef struct dv_ze_event_pool_desc {
    dv_ze_structure_type_t stype;
    const void *pNext;
    uint32_t flags;
    uint32_t count;
} dv_ze_event_pool_desc_t;

typedef struct dv_ze_event_desc {
    dv_ze_structure_type_t stype;
    const void *pNext;
    uint32_t index;
    uint32_t signal; /* ze_event_scope_flags_t */
    uint32_t wait;
} dv_ze_event_desc_t;

typedef struct dv_ze_physical_mem_desc {
    dv_ze_structure_type_t stype;
    const void *pNext;
    uint32_t flags;
    size_t size;
} dv_ze_physical_mem_desc_t;

typedef struct dv_zes_mem_properties {
    dv_ze_structure_type_t stype;
    void *pNext;
    uint32_t type;       /* zes_mem_type_t */
    uint8_t onSubdevice; /* ze_bool_t */
    uint32_t subdeviceId;
    uint32_t location; /* zes_mem_loc_t */
    uint64_t physicalSize;
    int32_t busWidth;
    int32_t numChannels;
} dv_zes_mem_properties_t;

typedef struct dv_zes_mem_state {
    dv_ze_structure_type_t stype;
    const void *pNext;
    uint32_t health; /* zes_mem_health_t */
    uint64_t free;
    uint64_t size;
} dv_zes_mem_state_t;

/* Function pointer types, one per entry point used (see ze_lib.c for the
 * table that resolves them). */
typedef dv_ze_result_t(DV_ZE_CALL *dv_ze_init_fn)(uint32_t flags);
typedef dv_ze_result_t(DV_ZE_CALL *dv_ze_driver_get_fn)(
    uint32_t *count, dv_ze_driver_handle_t *drivers);
typedef dv_ze_result_t(DV_ZE_CALL *dv_ze_device_get_fn)(
    dv_ze_driver_handle_t driver, uint32_t *count,
    dv_ze_device_handle_t *devices);
typedef dv_ze_result_t(DV_ZE_CALL *dv_ze_device_get_properties_fn)(
    dv_ze_device_handle_t device, dv_ze_device_properties_t *props);
typedef dv_ze_result_t(DV_ZE_CALL *dv_ze_device_get_memory_properties_fn)(
    dv_ze_device_handle_t device, uint32_t *count,
    dv_ze_device_memory_properties_t *props);
typedef dv_ze_result_t(DV_ZE_CALL *dv_ze_context_create_fn)(
    dv_ze_driver_handle_t driver, const dv_ze_context_desc_t *desc,
    dv_ze_context_handle_t *context);
typedef dv_ze_result_t(DV_ZE_CALL *dv_ze_context_destroy_fn)(
    dv_ze_context_handle_t context);
typedef dv_ze_result_t(DV_ZE_CALL *dv_ze_command_list_create_immediate_fn)(
    dv_ze_context_handle_t context, dv_ze_device_handle_t device,
    const dv_ze_command_queue_desc_t *desc, dv_ze_command_list_handle_t *list);
typedef dv_ze_result_t(DV_ZE_CALL *dv_ze_command_list_destroy_fn)(
    dv_ze_command_list_handle_t list);
typedef dv_ze_result_t(DV_ZE_CALL *dv_ze_command_list_append_memory_copy_fn)(
    dv_ze_command_list_handle_t list, void *dst, const void *src, size_t size,
    dv_ze_event_handle_t signal_event, uint32_t num_wait_events,
    dv_ze_event_handle_t *wait_events);
typedef dv_ze_result_t(DV_ZE_CALL *dv_ze_command_list_append_signal_event_fn)(
    dv_ze_command_list_handle_t list, dv_ze_event_handle_t event);
typedef dv_ze_result_t(DV_ZE_CALL *dv_ze_command_list_append_barrier_fn)(
    dv_ze_command_list_handle_t list, dv_ze_event_handle_t signal_event,
    uint32_t num_wait_events, dv_ze_event_handle_t *wait_events);
typedef dv_ze_result_t(DV_ZE_CALL *dv_ze_event_pool_create_fn)(
    dv_ze_context_handle_t context, const dv_ze_event_pool_desc_t *desc,
    uint32_t num_devices, dv_ze_device_handle_t *devices,
    dv_ze_event_pool_handle_t *pool);
typedef dv_ze_result_t(DV_ZE_CALL *dv_ze_event_pool_destroy_fn)(
    dv_ze_event_pool_handle_t pool);
typedef dv_ze_result_t(DV_ZE_CALL *dv_ze_event_create_fn)(
    dv_ze_event_pool_handle_t pool, const dv_ze_event_desc_t *desc,
    dv_ze_event_handle_t *event);
typedef dv_ze_result_t(DV_ZE_CALL *dv_ze_event_destroy_fn)(
    dv_ze_event_handle_t event);
typedef dv_ze_result_t(DV_ZE_CALL *dv_ze_event_host_synchronize_fn)(
    dv_ze_event_handle_t event, uint64_t timeout_ns);
typedef dv_ze_result_t(DV_ZE_CALL *dv_ze_event_query_status_fn)(
    dv_ze_event_handle_t event);
typedef dv_ze_result_t(DV_ZE_CALL *dv_ze_event_host_reset_fn)(
    dv_ze_event_handle_t event);
typedef dv_ze_result_t(DV_ZE_CALL *dv_ze_virtual_mem_reserve_fn)(
    dv_ze_context_handle_t context, const void *start, size_t size, void **ptr);
typedef dv_ze_result_t(DV_ZE_CALL *dv_ze_virtual_mem_free_fn)(
    dv_ze_context_handle_t context, const void *ptr, size_t size);
typedef dv_ze_result_t(DV_ZE_CALL *dv_ze_virtual_mem_query_page_size_fn)(
    dv_ze_context_handle_t context, dv_ze_device_handle_t device, size_t size,
    size_t *pagesize);
typedef dv_ze_result_t(DV_ZE_CALL *dv_ze_virtual_mem_map_fn)(
    dv_ze_context_handle_t context, const void *ptr, size_t size,
    dv_ze_physical_mem_handle_t mem, size_t offset, uint32_t access);
typedef dv_ze_result_t(DV_ZE_CALL *dv_ze_virtual_mem_unmap_fn)(
    dv_ze_context_handle_t context, const void *ptr, size_t size);
typedef dv_ze_result_t(DV_ZE_CALL *dv_ze_physical_mem_create_fn)(
    dv_ze_context_handle_t context, dv_ze_device_handle_t device,
    dv_ze_physical_mem_desc_t *desc, dv_ze_physical_mem_handle_t *mem);
typedef dv_ze_result_t(DV_ZE_CALL *dv_ze_physical_mem_destroy_fn)(
    dv_ze_context_handle_t context, dv_ze_physical_mem_handle_t mem);
typedef dv_ze_result_t(DV_ZE_CALL *dv_zes_device_enum_memory_modules_fn)(
    dv_ze_device_handle_t device, uint32_t *count, dv_zes_mem_handle_t *mems);
typedef dv_ze_result_t(DV_ZE_CALL *dv_zes_memory_get_properties_fn)(
    dv_zes_mem_handle_t mem, dv_zes_mem_properties_t *props);
typedef dv_ze_result_t(DV_ZE_CALL *dv_zes_memory_get_state_fn)(
    dv_zes_mem_handle_t mem, dv_zes_mem_state_t *state);

#endif /* DV_HAL_LEVELZERO_ZE_ABI_H */
