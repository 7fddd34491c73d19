/*
 * ze_internal.h - shared state of the Level Zero backend (ze_lib.c loads
 * the library and translates errors; ze.c implements the HAL ops).
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Contract:
 *  - dv__ze_load() opens the loader once per process (DYNVRAM_ZE_LIBRARY
 *    overrides the name), resolves the symbol table into dv__ze and calls
 *    zeInit(GPU only). Later calls return the first outcome: DV_OK, or
 *    DV_ERROR_BACKEND_UNAVAILABLE with the reason copied to `reason`.
 *    dv__ze is read-only after a successful load.
 *  - dv__ze_fail(r, call) keeps r and the call name as this thread's last
 *    native error, translates r (out of device memory -> OUT_OF_DEVICE_MEMORY,
 *    out of host memory -> OUT_OF_HOST_MEMORY, anything else -> BACKEND)
 *    and records a dv__fail message naming the call and the native code.
 *  - dv__ze_find_device(ordinal, ...) walks GPU devices of every driver in
 *    order; ordinal counts GPU root devices across drivers. With ordinal < 0
 *    it only counts. DV_ERROR_DEVICE_NOT_FOUND when ordinal >= count.
 */
#ifndef DV_HAL_LEVELZERO_ZE_INTERNAL_H
#define DV_HAL_LEVELZERO_ZE_INTERNAL_H

#include "base/os.h"
#include "dynvram_hal.h"
#include "ze_abi.h"

/* X(symbol, type, required). Optional symbols may be NULL after load. */
#define DV_ZE_SYMBOLS(X)                                                       \
    X(zeInit, dv_ze_init_fn, 1)                                                \
    X(zeDriverGet, dv_ze_driver_get_fn, 1)                                     \
    X(zeDeviceGet, dv_ze_device_get_fn, 1)                                     \
    X(zeDeviceGetProperties, dv_ze_device_get_properties_fn, 1)                \
    X(zeDeviceGetMemoryProperties, dv_ze_device_get_memory_properties_fn, 1)   \
    X(zeContextCreate, dv_ze_context_create_fn, 1)                             \
    X(zeContextDestroy, dv_ze_context_destroy_fn, 1)                           \
    X(zeCommandListCreateImmediate, dv_ze_command_list_create_immediate_fn, 1) \
    X(zeCommandListDestroy, dv_ze_command_list_destroy_fn, 1)                  \
    X(zeCommandListAppendMemoryCopy, dv_ze_command_list_append_memory_copy_fn, \
      1)                                                                       \
    X(zeCommandListAppendSignalEvent,                                          \
      dv_ze_command_list_append_signal_event_fn, 1)                            \
    X(zeCommandListAppendBarrier, dv_ze_command_list_append_barrier_fn, 1)     \
    X(zeEventPoolCreate, dv_ze_event_pool_create_fn, 1)                        \
    X(zeEventPoolDestroy, dv_ze_event_pool_destroy_fn, 1)                      \
    X(zeEventCreate, dv_ze_event_create_fn, 1)                                 \
    X(zeEventDestroy, dv_ze_event_destroy_fn, 1)                               \
    X(zeEventHostSynchronize, dv_ze_event_host_synchronize_fn, 1)              \
    X(zeEventQueryStatus, dv_ze_event_query_status_fn, 1)                      \
    X(zeEventHostReset, dv_ze_event_host_reset_fn, 1)                          \
    X(zeVirtualMemReserve, dv_ze_virtual_mem_reserve_fn, 1)                    \
    X(zeVirtualMemFree, dv_ze_virtual_mem_free_fn, 1)                          \
    X(zeVirtualMemQueryPageSize, dv_ze_virtual_mem_query_page_size_fn, 1)      \
    X(zeVirtualMemMap, dv_ze_virtual_mem_map_fn, 1)                            \
    X(zeVirtualMemUnmap, dv_ze_virtual_mem_unmap_fn, 1)                        \
    X(zePhysicalMemCreate, dv_ze_physical_mem_create_fn, 1)                    \
    X(zePhysicalMemDestroy, dv_ze_physical_mem_destroy_fn, 1)                  \
    X(zesDeviceEnumMemoryModules, dv_zes_device_enum_memory_modules_fn, 0)     \
    X(zesMemoryGetProperties, dv_zes_memory_get_properties_fn, 0)              \
    X(zesMemoryGetState, dv_zes_memory_get_state_fn, 0)

typedef struct dv__ze_api {
#define DV__ZE_FIELD(sym, type, req) type sym;
    DV_ZE_SYMBOLS(DV__ZE_FIELD)
#undef DV__ZE_FIELD
} dv__ze_api_t;

extern dv__ze_api_t dv__ze;

dv_result_t dv__ze_load(char *reason, size_t reason_len);
/* The library name or path the backend opened (or tried to). */
const char *dv__ze_library(void);

const char *dv__ze_result_name(dv_ze_result_t r);
dv_result_t dv__ze_fail(dv_ze_result_t r, const char *call);

dv_result_t dv__ze_find_device(int ordinal, int *count,
                               dv_ze_driver_handle_t *driver,
                               dv_ze_device_handle_t *device);

/* Per-device state (ze.c owns its life; ze_stream.c its fences). */
#define DV__ZE_POOL_EVENTS 64u
#define DV__ZE_MAX_MEM_MODULES 16u
/* Destroyed streams kept alive per device, so their addresses stay dead
 * (ze_stream.c). */
#define DV__ZE_PARKED 32

typedef struct dv__ze_fence {
    dv_ze_event_handle_t event; /* created on first use, reset on reuse */
    struct dv__ze_fence *next_free;
    uint32_t index;
    struct dv__ze_pool *pool;
} dv__ze_fence_t;

typedef struct dv__ze_pool {
    dv_ze_event_pool_handle_t handle;
    struct dv__ze_pool *next;
    dv__ze_fence_t fences[DV__ZE_POOL_EVENTS];
} dv__ze_pool_t;

typedef struct dv__ze_ctx {
    int ordinal;
    dv_ze_driver_handle_t driver;
    dv_ze_device_handle_t device;
    dv_ze_context_handle_t context;
    dv_ze_command_list_handle_t list; /* the default stream */
    char name[128];
    uint64_t granularity;
    uint64_t total_memory;
    dv_zes_mem_handle_t mem_modules[DV__ZE_MAX_MEM_MODULES];
    uint32_t mem_module_count; /* 0: no Sysman */
    dv__mutex_t fence_lock;    /* guards pools and free_fences */
    dv__ze_pool_t *pools;
    dv__ze_fence_t *free_fences;
    /* Destroyed streams, a ring (oldest at head); serialized by the core's
     * device lock. */
    int parked_head, parked_count;
    dv_ze_command_list_handle_t parked[DV__ZE_PARKED];
} dv__ze_ctx_t;

/* ze_stream.c: the default stream, fences, streams and copies. */
dv_result_t dv__ze_list_create(dv__ze_ctx_t *c,
                               dv_ze_command_list_handle_t *list);
/* Record c's default list (c->list) as this backend's, owned by c. */
dv_result_t dv__ze_lists_adopt_default(dv__ze_ctx_t *c);
/* At fini: destroy the lists stream_create made for c (parked ones and
 * the ones the caller never destroyed) and forget every list c owned (its
 * default list too, destroyed by the caller right after). */
void dv__ze_lists_release(dv__ze_ctx_t *c);
dv_result_t dv__ze_stream_check(void *ctx, void *stream);
/* Destroys every event and event pool of the device (at fini). */
void dv__ze_fences_free(dv__ze_ctx_t *c);
dv_result_t dv__ze_fence_record(void *ctx, void *stream, dv_hal_fence_t *fence);
dv_result_t dv__ze_fence_query(void *ctx, dv_hal_fence_t fence);
dv_result_t dv__ze_fence_wait(void *ctx, dv_hal_fence_t fence);
void dv__ze_fence_destroy(void *ctx, dv_hal_fence_t fence);
dv_result_t dv__ze_stream_create(void *ctx, void **stream);
dv_result_t dv__ze_stream_destroy(void *ctx, void *stream);
dv_result_t dv__ze_stream_synchronize(void *ctx, void *stream);
dv_result_t dv__ze_copy_h2d(void *ctx, uint64_t dst, const void *src,
                            uint64_t size, void *stream);
dv_result_t dv__ze_copy_d2h(void *ctx, void *dst, uint64_t src, uint64_t size,
                            void *stream);
dv_result_t dv__ze_host_register(void *ctx, void *ptr, uint64_t size);
dv_result_t dv__ze_host_unregister(void *ctx, void *ptr);

#endif /* DV_HAL_LEVELZERO_ZE_INTERNAL_H */
