/*
 * hip_internal.h - shared state of the HIP backend.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Files:
 *   hip_lib.c       loads the runtime, the symbol table, error translation,
 *                   the workaround switches
 *   hip_vmm.c       every virtual-memory call, serialized, with the records
 *                   and the workarounds for ROCm's VMM defects
 *   hip.c           the HAL ops (devices, caps, fences, streams, copies)
 *   hip_os_posix.c / hip_os_win.c   library names, the per-platform
 *                   workaround defaults and the Linux re-protect primitive
 *
 * Contract:
 *  - dv__hip_load() opens the runtime once per process (DYNVRAM_HIP_LIBRARY
 *    overrides the candidate list), resolves the symbol table into dv__hip
 *    and reads the runtime version. Later calls return the first outcome:
 *    DV_OK, or DV_ERROR_BACKEND_UNAVAILABLE with the reason copied out.
 *    dv__hip is read-only after a successful load.
 *  - dv__hip_fail(err, call, fmt, ...) keeps err and its name as this
 *    thread's last native error and records a dv__fail message naming the
 *    call, the context and the native code. hipErrorOutOfMemory, and only
 *    it, becomes DV_ERROR_OUT_OF_DEVICE_MEMORY; everything else becomes
 *    DV_ERROR_BACKEND.
 *  - The dv__hip_vmm_* functions take the process-wide VMM lock themselves;
 *    the caller binds the device first.
 */
#ifndef DV_HAL_HIP_INTERNAL_H
#define DV_HAL_HIP_INTERNAL_H

#include "dynvram_hal.h"
#include "hip_abi.h"

/* X(symbol, type, required). Optional symbols may be NULL after load. */
#define DV_HIP_SYMBOLS(X)                                                      \
    X(hipRuntimeGetVersion, dv_hip_runtime_get_version_fn, 1)                  \
    X(hipGetErrorName, dv_hip_get_error_name_fn, 0)                            \
    X(hipGetDeviceCount, dv_hip_get_device_count_fn, 1)                        \
    X(hipGetDevice, dv_hip_get_device_fn, 1)                                   \
    X(hipSetDevice, dv_hip_set_device_fn, 1)                                   \
    X(hipDeviceGet, dv_hip_device_get_fn, 0)                                   \
    X(hipDeviceGetName, dv_hip_device_get_name_fn, 0)                          \
    X(hipDeviceGetAttribute, dv_hip_device_get_attribute_fn, 1)                \
    X(hipMemGetInfo, dv_hip_mem_get_info_fn, 1)                                \
    X(hipMemAddressReserve, dv_hip_mem_address_reserve_fn, 1)                  \
    X(hipMemAddressFree, dv_hip_mem_address_free_fn, 1)                        \
    X(hipMemCreate, dv_hip_mem_create_fn, 1)                                   \
    X(hipMemRelease, dv_hip_mem_release_fn, 1)                                 \
    X(hipMemMap, dv_hip_mem_map_fn, 1)                                         \
    X(hipMemUnmap, dv_hip_mem_unmap_fn, 1)                                     \
    X(hipMemSetAccess, dv_hip_mem_set_access_fn, 1)                            \
    X(hipMemGetAllocationGranularity,                                          \
      dv_hip_mem_get_allocation_granularity_fn, 1)                             \
    X(hipStreamCreate, dv_hip_stream_create_fn, 1)                             \
    X(hipStreamDestroy, dv_hip_stream_destroy_fn, 1)                           \
    X(hipStreamSynchronize, dv_hip_stream_synchronize_fn, 1)                   \
    X(hipStreamGetDevice, dv_hip_stream_get_device_fn, 0)                      \
    X(hipStreamGetFlags, dv_hip_stream_get_flags_fn, 0)                        \
    X(hipEventCreateWithFlags, dv_hip_event_create_with_flags_fn, 1)           \
    X(hipEventRecord, dv_hip_event_record_fn, 1)                               \
    X(hipEventQuery, dv_hip_event_query_fn, 1)                                 \
    X(hipEventSynchronize, dv_hip_event_synchronize_fn, 1)                     \
    X(hipEventDestroy, dv_hip_event_destroy_fn, 1)                             \
    X(hipMemcpyHtoDAsync, dv_hip_memcpy_htod_async_fn, 1)                      \
    X(hipMemcpyDtoHAsync, dv_hip_memcpy_dtoh_async_fn, 1)                      \
    X(hipHostRegister, dv_hip_host_register_fn, 0)                             \
    X(hipHostUnregister, dv_hip_host_unregister_fn, 0)

typedef struct dv__hip_api {
#define DV__HIP_FIELD(sym, type, req) type sym;
    DV_HIP_SYMBOLS(DV__HIP_FIELD)
#undef DV__HIP_FIELD
} dv__hip_api_t;

extern dv__hip_api_t dv__hip;

/* ---- workarounds for ROCm VMM defects (see hip_vmm.c) ----------------- */

/* (a) Linux: after hipMemUnmap, re-protect the range so the driver drops
 *     its reference to the physical memory. */
#define DV__HIP_WA_REPROTECT 0x1u
/* (c) Windows: never free an address reservation; keep it and reuse it for
 *     a later reserve that fits. */
#define DV__HIP_WA_REUSE_VA 0x2u
/* (b) unmapping one mapping per call and (d) serializing every VMM call of
 *     the process are always on: they cost nothing measurable. */

/* The workarounds in force: the platform defaults, changed by
 * DYNVRAM_HIP_WORKAROUNDS ("all", "none", or a comma list of "reprotect",
 * "reuse_va", each optionally prefixed by '-' to turn it off). Read once. */
uint32_t dv__hip_workarounds(void);

/* ---- loading and errors -------------------------------------------------- */

dv_result_t dv__hip_load(char *reason, size_t reason_len);
/* The library name or path the backend opened ("" before a success). */
const char *dv__hip_library(void);
/* 1 when the runtime uses the ROCm >= 6 hipMemAllocationProp layout. */
int dv__hip_prop_is_v6(void);

const char *dv__hip_error_name(dv_hip_error_t err);
dv_result_t dv__hip_fail(dv_hip_error_t err, const char *call, const char *fmt,
                         ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Like dv__hip_fail but with the dynvram result chosen by the caller (for
 * calls whose out-of-memory is not device memory, e.g. address space). */
dv_result_t dv__hip_fail_as(dv_result_t r, dv_hip_error_t err, const char *call,
                            const char *detail);

/* ---- platform layer (hip_os_*.c) ----------------------------------------- */

/* NULL-terminated list of library names to try, in order. */
const char *const *dv__hip_os_library_names(void);
/* DV__HIP_WA_* bits that this platform needs by default. */
uint32_t dv__hip_os_default_workarounds(void);
/* Replace whatever the process has mapped at [va, va + size) by an
 * inaccessible anonymous reservation, if and only if something is mapped
 * there. Returns 0 on success or when nothing was mapped, -1 with errno
 * text in `why` otherwise. */
int dv__hip_os_reprotect(uint64_t va, uint64_t size, char *why, size_t why_len);

/* ---- virtual memory (hip_vmm.c) ------------------------------------------- */

dv_result_t dv__hip_vmm_reserve(uint64_t size, uint64_t alignment,
                                uint64_t *va);
dv_result_t dv__hip_vmm_unreserve(uint64_t va, uint64_t size);
dv_result_t dv__hip_vmm_create(const void *prop, uint64_t size,
                               dv_hip_mem_handle_t *handle);
dv_result_t dv__hip_vmm_release(dv_hip_mem_handle_t handle);
dv_result_t dv__hip_vmm_map(uint64_t va, uint64_t size,
                            dv_hip_mem_handle_t handle, int ordinal);
dv_result_t dv__hip_vmm_unmap(uint64_t va, uint64_t size);
dv_result_t dv__hip_vmm_granularity(const void *prop, uint64_t *minimum,
                                    uint64_t *recommended);

/* Counters for tests and diagnostics (read under the VMM lock). */
typedef struct dv__hip_vmm_stats {
    uint64_t reservations_live;   /* reservations handed to the core */
    uint64_t reservations_kept;   /* freed by the core, kept for reuse */
    uint64_t reservations_reused; /* reserves served from kept ones */
    uint64_t mappings;            /* live mappings */
    uint64_t split_unmaps;        /* unmap requests spanning > 1 mapping */
    uint64_t reprotects;          /* ranges re-protected after unmap */
    uint64_t reprotect_failures;
} dv__hip_vmm_stats_t;
void dv__hip_vmm_get_stats(dv__hip_vmm_stats_t *st);

#endif /* DV_HAL_HIP_INTERNAL_H */
