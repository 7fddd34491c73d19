/*
 * abi_check.c - hal/levelzero/ze_abi.h against the real Level Zero headers.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Compiles only if every size, field offset and constant the backend
 * declares itself agrees with ze_api.h / zes_api.h (Debian: libze-dev).
 * The program itself only prints a line: the checks are static.
 */
#include <assert.h>
#include <stddef.h>
#include <stdio.h>

#include <level_zero/ze_api.h>
#include <level_zero/zes_api.h>

#include "hal/levelzero/ze_abi.h"

#define SAME_SIZE(ours, theirs)                                                \
    static_assert(sizeof(ours) == sizeof(theirs), #ours " size")
#define SAME_FIELD(ours, theirs, fo, ft)                                       \
    static_assert(offsetof(ours, fo) == offsetof(theirs, ft) &&                \
                      sizeof(((ours *)0)->fo) == sizeof(((theirs *)0)->ft),    \
                  #ours "." #fo)
#define SAME_VALUE(ours, theirs)                                               \
    static_assert((long long)(ours) == (long long)(theirs), #ours)

/* Results. */
SAME_SIZE(dv_ze_result_t, ze_result_t);
SAME_VALUE(DV_ZE_RESULT_SUCCESS, ZE_RESULT_SUCCESS);
SAME_VALUE(DV_ZE_RESULT_NOT_READY, ZE_RESULT_NOT_READY);
SAME_VALUE(DV_ZE_RESULT_ERROR_DEVICE_LOST, ZE_RESULT_ERROR_DEVICE_LOST);
SAME_VALUE(DV_ZE_RESULT_ERROR_OUT_OF_HOST_MEMORY,
           ZE_RESULT_ERROR_OUT_OF_HOST_MEMORY);
SAME_VALUE(DV_ZE_RESULT_ERROR_OUT_OF_DEVICE_MEMORY,
           ZE_RESULT_ERROR_OUT_OF_DEVICE_MEMORY);
SAME_VALUE(DV_ZE_RESULT_ERROR_DEVICE_REQUIRES_RESET,
           ZE_RESULT_ERROR_DEVICE_REQUIRES_RESET);
SAME_VALUE(DV_ZE_RESULT_ERROR_DEVICE_IN_LOW_POWER_STATE,
           ZE_RESULT_ERROR_DEVICE_IN_LOW_POWER_STATE);
SAME_VALUE(DV_ZE_RESULT_ERROR_INSUFFICIENT_PERMISSIONS,
           ZE_RESULT_ERROR_INSUFFICIENT_PERMISSIONS);
SAME_VALUE(DV_ZE_RESULT_ERROR_NOT_AVAILABLE, ZE_RESULT_ERROR_NOT_AVAILABLE);
SAME_VALUE(DV_ZE_RESULT_ERROR_DEPENDENCY_UNAVAILABLE,
           ZE_RESULT_ERROR_DEPENDENCY_UNAVAILABLE);
SAME_VALUE(DV_ZE_RESULT_ERROR_UNINITIALIZED, ZE_RESULT_ERROR_UNINITIALIZED);
SAME_VALUE(DV_ZE_RESULT_ERROR_UNSUPPORTED_VERSION,
           ZE_RESULT_ERROR_UNSUPPORTED_VERSION);
SAME_VALUE(DV_ZE_RESULT_ERROR_UNSUPPORTED_FEATURE,
           ZE_RESULT_ERROR_UNSUPPORTED_FEATURE);
SAME_VALUE(DV_ZE_RESULT_ERROR_INVALID_ARGUMENT,
           ZE_RESULT_ERROR_INVALID_ARGUMENT);
SAME_VALUE(DV_ZE_RESULT_ERROR_INVALID_NULL_HANDLE,
           ZE_RESULT_ERROR_INVALID_NULL_HANDLE);
SAME_VALUE(DV_ZE_RESULT_ERROR_HANDLE_OBJECT_IN_USE,
           ZE_RESULT_ERROR_HANDLE_OBJECT_IN_USE);
SAME_VALUE(DV_ZE_RESULT_ERROR_INVALID_NULL_POINTER,
           ZE_RESULT_ERROR_INVALID_NULL_POINTER);
SAME_VALUE(DV_ZE_RESULT_ERROR_INVALID_SIZE, ZE_RESULT_ERROR_INVALID_SIZE);
SAME_VALUE(DV_ZE_RESULT_ERROR_UNSUPPORTED_SIZE,
           ZE_RESULT_ERROR_UNSUPPORTED_SIZE);
SAME_VALUE(DV_ZE_RESULT_ERROR_UNSUPPORTED_ALIGNMENT,
           ZE_RESULT_ERROR_UNSUPPORTED_ALIGNMENT);
SAME_VALUE(DV_ZE_RESULT_ERROR_INVALID_SYNCHRONIZATION_OBJECT,
           ZE_RESULT_ERROR_INVALID_SYNCHRONIZATION_OBJECT);
SAME_VALUE(DV_ZE_RESULT_ERROR_INVALID_ENUMERATION,
           ZE_RESULT_ERROR_INVALID_ENUMERATION);
SAME_VALUE(DV_ZE_RESULT_ERROR_UNSUPPORTED_ENUMERATION,
           ZE_RESULT_ERROR_UNSUPPORTED_ENUMERATION);
SAME_VALUE(DV_ZE_RESULT_ERROR_OVERLAPPING_REGIONS,
           ZE_RESULT_ERROR_OVERLAPPING_REGIONS);
SAME_VALUE(DV_ZE_RESULT_ERROR_UNKNOWN, ZE_RESULT_ERROR_UNKNOWN);

/* Constants. */
SAME_SIZE(dv_ze_structure_type_t, ze_structure_type_t);
SAME_SIZE(dv_ze_structure_type_t, zes_structure_type_t);
SAME_VALUE(DV_ZE_STRUCTURE_TYPE_DEVICE_PROPERTIES,
           ZE_STRUCTURE_TYPE_DEVICE_PROPERTIES);
SAME_VALUE(DV_ZE_STRUCTURE_TYPE_DEVICE_MEMORY_PROPERTIES,
           ZE_STRUCTURE_TYPE_DEVICE_MEMORY_PROPERTIES);
SAME_VALUE(DV_ZE_STRUCTURE_TYPE_CONTEXT_DESC, ZE_STRUCTURE_TYPE_CONTEXT_DESC);
SAME_VALUE(DV_ZE_STRUCTURE_TYPE_COMMAND_QUEUE_DESC,
           ZE_STRUCTURE_TYPE_COMMAND_QUEUE_DESC);
SAME_VALUE(DV_ZE_STRUCTURE_TYPE_EVENT_POOL_DESC,
           ZE_STRUCTURE_TYPE_EVENT_POOL_DESC);
SAME_VALUE(DV_ZE_STRUCTURE_TYPE_EVENT_DESC, ZE_STRUCTURE_TYPE_EVENT_DESC);
SAME_VALUE(DV_ZE_STRUCTURE_TYPE_PHYSICAL_MEM_DESC,
           ZE_STRUCTURE_TYPE_PHYSICAL_MEM_DESC);
SAME_VALUE(DV_ZES_STRUCTURE_TYPE_MEM_PROPERTIES,
           ZES_STRUCTURE_TYPE_MEM_PROPERTIES);
SAME_VALUE(DV_ZES_STRUCTURE_TYPE_MEM_STATE, ZES_STRUCTURE_TYPE_MEM_STATE);
SAME_VALUE(DV_ZE_INIT_FLAG_GPU_ONLY, ZE_INIT_FLAG_GPU_ONLY);
SAME_VALUE(DV_ZE_DEVICE_TYPE_GPU, ZE_DEVICE_TYPE_GPU);
SAME_VALUE(DV_ZE_MAX_DEVICE_NAME, ZE_MAX_DEVICE_NAME);
SAME_VALUE(DV_ZE_MAX_DEVICE_UUID_SIZE, ZE_MAX_DEVICE_UUID_SIZE);
SAME_VALUE(DV_ZE_EVENT_POOL_FLAG_HOST_VISIBLE, ZE_EVENT_POOL_FLAG_HOST_VISIBLE);
SAME_VALUE(DV_ZE_EVENT_SCOPE_FLAG_HOST, ZE_EVENT_SCOPE_FLAG_HOST);
SAME_VALUE(DV_ZE_COMMAND_QUEUE_MODE_ASYNCHRONOUS,
           ZE_COMMAND_QUEUE_MODE_ASYNCHRONOUS);
SAME_VALUE(DV_ZE_COMMAND_QUEUE_PRIORITY_NORMAL,
           ZE_COMMAND_QUEUE_PRIORITY_NORMAL);
SAME_VALUE(DV_ZE_MEMORY_ACCESS_ATTRIBUTE_READWRITE,
           ZE_MEMORY_ACCESS_ATTRIBUTE_READWRITE);
SAME_VALUE(DV_ZES_MEM_LOC_DEVICE, ZES_MEM_LOC_DEVICE);

/* Enums we declare as uint32_t fields are 32 bits wide in the real ABI. */
SAME_SIZE(uint32_t, ze_device_type_t);
SAME_SIZE(uint32_t, ze_command_queue_mode_t);
SAME_SIZE(uint32_t, ze_command_queue_priority_t);
SAME_SIZE(uint32_t, ze_memory_access_attribute_t);
SAME_SIZE(uint32_t, ze_init_flags_t);
SAME_SIZE(uint32_t, zes_mem_loc_t);
SAME_SIZE(uint8_t, ze_bool_t);

/* Handles. */
SAME_SIZE(dv_ze_driver_handle_t, ze_driver_handle_t);
SAME_SIZE(dv_ze_physical_mem_handle_t, ze_physical_mem_handle_t);
SAME_SIZE(dv_zes_mem_handle_t, zes_mem_handle_t);

/* Structures. */
#define P dv_ze_device_properties_t
#define Q ze_device_properties_t
SAME_SIZE(P, Q);
SAME_FIELD(P, Q, stype, stype);
SAME_FIELD(P, Q, pNext, pNext);
SAME_FIELD(P, Q, type, type);
SAME_FIELD(P, Q, vendorId, vendorId);
SAME_FIELD(P, Q, deviceId, deviceId);
SAME_FIELD(P, Q, flags, flags);
SAME_FIELD(P, Q, subdeviceId, subdeviceId);
SAME_FIELD(P, Q, coreClockRate, coreClockRate);
SAME_FIELD(P, Q, maxMemAllocSize, maxMemAllocSize);
SAME_FIELD(P, Q, maxHardwareContexts, maxHardwareContexts);
SAME_FIELD(P, Q, maxCommandQueuePriority, maxCommandQueuePriority);
SAME_FIELD(P, Q, numThreadsPerEU, numThreadsPerEU);
SAME_FIELD(P, Q, physicalEUSimdWidth, physicalEUSimdWidth);
SAME_FIELD(P, Q, numEUsPerSubslice, numEUsPerSubslice);
SAME_FIELD(P, Q, numSubslicesPerSlice, numSubslicesPerSlice);
SAME_FIELD(P, Q, numSlices, numSlices);
SAME_FIELD(P, Q, timerResolution, timerResolution);
SAME_FIELD(P, Q, timestampValidBits, timestampValidBits);
SAME_FIELD(P, Q, kernelTimestampValidBits, kernelTimestampValidBits);
SAME_FIELD(P, Q, uuid, uuid);
SAME_FIELD(P, Q, name, name);
#undef P
#undef Q

#define P dv_ze_device_memory_properties_t
#define Q ze_device_memory_properties_t
SAME_SIZE(P, Q);
SAME_FIELD(P, Q, stype, stype);
SAME_FIELD(P, Q, pNext, pNext);
SAME_FIELD(P, Q, flags, flags);
SAME_FIELD(P, Q, maxClockRate, maxClockRate);
SAME_FIELD(P, Q, maxBusWidth, maxBusWidth);
SAME_FIELD(P, Q, totalSize, totalSize);
SAME_FIELD(P, Q, name, name);
#undef P
#undef Q

SAME_SIZE(dv_ze_context_desc_t, ze_context_desc_t);
SAME_FIELD(dv_ze_context_desc_t, ze_context_desc_t, flags, flags);

#define P dv_ze_command_queue_desc_t
#define Q ze_command_queue_desc_t
SAME_SIZE(P, Q);
SAME_FIELD(P, Q, pNext, pNext);
SAME_FIELD(P, Q, ordinal, ordinal);
SAME_FIELD(P, Q, index, index);
SAME_FIELD(P, Q, flags, flags);
SAME_FIELD(P, Q, mode, mode);
SAME_FIELD(P, Q, priority, priority);
#undef P
#undef Q

SAME_SIZE(dv_ze_event_pool_desc_t, ze_event_pool_desc_t);
SAME_FIELD(dv_ze_event_pool_desc_t, ze_event_pool_desc_t, flags, flags);
SAME_FIELD(dv_ze_event_pool_desc_t, ze_event_pool_desc_t, count, count);

SAME_SIZE(dv_ze_event_desc_t, ze_event_desc_t);
SAME_FIELD(dv_ze_event_desc_t, ze_event_desc_t, index, index);
SAME_FIELD(dv_ze_event_desc_t, ze_event_desc_t, signal, signal);
SAME_FIELD(dv_ze_event_desc_t, ze_event_desc_t, wait, wait);

SAME_SIZE(dv_ze_physical_mem_desc_t, ze_physical_mem_desc_t);
SAME_FIELD(dv_ze_physical_mem_desc_t, ze_physical_mem_desc_t, flags, flags);
SAME_FIELD(dv_ze_physical_mem_desc_t, ze_physical_mem_desc_t, size, size);

#define P dv_zes_mem_properties_t
#define Q zes_mem_properties_t
SAME_SIZE(P, Q);
SAME_FIELD(P, Q, type, type);
SAME_FIELD(P, Q, onSubdevice, onSubdevice);
SAME_FIELD(P, Q, subdeviceId, subdeviceId);
SAME_FIELD(P, Q, location, location);
SAME_FIELD(P, Q, physicalSize, physicalSize);
SAME_FIELD(P, Q, busWidth, busWidth);
SAME_FIELD(P, Q, numChannels, numChannels);
#undef P
#undef Q

#define P dv_zes_mem_state_t
#define Q zes_mem_state_t
SAME_SIZE(P, Q);
SAME_FIELD(P, Q, health, health);
SAME_FIELD(P, Q, free, free);
SAME_FIELD(P, Q, size, size);
#undef P
#undef Q

/* Prototypes are not compared here: their handle types are distinct by
 * design. Every parameter type they use is checked above, and the
 * simulation tests call each one through the real loader. */

int main(void) {
    printf("ze_abi.h matches the Level Zero headers (API %d.%d)\n",
           ZE_MAJOR_VERSION(ZE_API_VERSION_CURRENT),
           ZE_MINOR_VERSION(ZE_API_VERSION_CURRENT));
    return 0;
}
