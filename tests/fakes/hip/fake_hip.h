/*
 * fake_hip.h - a simulated HIP runtime on host memory, for tests.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * libdv_fake_hip exports the HIP entry points the dynvram backend uses, with
 * the C ABI of libamdhip64 (types from hal/hip/hip_abi.h), so the backend
 * loads it through DYNVRAM_HIP_LIBRARY exactly as it loads the real one.
 *
 * Streams and events are looked up by address, never read through, and
 * destroyed ones are never freed (so never reused): junk and dead handles
 * get ROCm's error codes (see fake_hip_stream.c).
 *
 * Memory model: an address reservation is an inaccessible anonymous mapping
 * of the process; a physical allocation is a memfd; hipMemMap maps the
 * memfd over the reservation (inaccessible until hipMemSetAccess) and
 * hipMemUnmap puts the inaccessible anonymous mapping back. Like ROCm on
 * Linux, device addresses are thus mirrored in the CPU address space.
 *
 * Configuration, read once at the first call, from the environment:
 *   DVSIM_HIP_DEVICES       number of devices (default 1; 0 = no device)
 *   DVSIM_HIP_CAPACITY      bytes per device, K/M/G suffixes, a comma list
 *                           gives one per device (default 2G)
 *   DVSIM_HIP_GRANULARITY   minimum granularity (default 64K); the
 *                           recommended one is max(minimum, 2M)
 *   DVSIM_HIP_VERSION       hipRuntimeGetVersion (default 70000000); below
 *                           60000000 the ROCm 5 hipMemAllocationProp layout
 *                           is expected
 *   DVSIM_HIP_NO_VMM        1 = devices report no VMM support
 *   DVSIM_HIP_EVENT_DELAY   queries an event answers hipErrorNotReady
 *                           before it completes (default 0)
 *   DVSIM_HIP_CORRUPT_AFTER address frees before reserve_free_corrupts
 *                           bites (default 4, at least 1)
 *   DVSIM_HIP_DEFECTS       comma list, or "all":
 *     unmap_needs_reprotect  hipMemUnmap leaves the physical pages mapped in
 *                            the process, so a released allocation stays
 *                            counted as used until something replaces that
 *                            mapping (ROCm on Linux)
 *     multi_unmap            hipMemUnmap of a range spanning several
 *                            mappings unmaps the first only, and succeeds
 *     reserve_free_corrupts  after CORRUPT_AFTER hipMemAddressFree calls,
 *                            every hipMemAddressReserve fails (Windows)
 *     not_thread_safe        VMM calls that overlap in time fail with
 *                            hipErrorUnknown and are counted as violations
 */
#ifndef DV_TESTS_FAKE_HIP_H
#define DV_TESTS_FAKE_HIP_H

#include <stddef.h>
#include <stdint.h>

#include "hal/hip/hip_abi.h"

#if defined(__GNUC__)
#define DVSIM_EXPORT __attribute__((visibility("default")))
#else
#define DVSIM_EXPORT
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the HIP ABI (same names and argument lists as libamdhip64) ---------- */

DVSIM_EXPORT dv_hip_error_t hipRuntimeGetVersion(int *version);
DVSIM_EXPORT const char *hipGetErrorName(dv_hip_error_t err);
DVSIM_EXPORT dv_hip_error_t hipGetDeviceCount(int *count);
DVSIM_EXPORT dv_hip_error_t hipGetDevice(int *device);
DVSIM_EXPORT dv_hip_error_t hipSetDevice(int device);
DVSIM_EXPORT dv_hip_error_t hipDeviceGet(dv_hip_device_t *dev, int ordinal);
DVSIM_EXPORT dv_hip_error_t hipDeviceGetName(char *name, int len,
                                             dv_hip_device_t dev);
DVSIM_EXPORT dv_hip_error_t hipDeviceGetAttribute(int *value,
                                                  dv_hip_device_attribute_t attr,
                                                  int device);
DVSIM_EXPORT dv_hip_error_t hipMemGetInfo(size_t *free_bytes,
                                          size_t *total_bytes);
DVSIM_EXPORT dv_hip_error_t hipMemAddressReserve(void **ptr, size_t size,
                                                 size_t alignment, void *addr,
                                                 unsigned long long flags);
DVSIM_EXPORT dv_hip_error_t hipMemAddressFree(void *ptr, size_t size);
DVSIM_EXPORT dv_hip_error_t hipMemCreate(dv_hip_mem_handle_t *handle,
                                         size_t size, const void *prop,
                                         unsigned long long flags);
DVSIM_EXPORT dv_hip_error_t hipMemRelease(dv_hip_mem_handle_t handle);
DVSIM_EXPORT dv_hip_error_t hipMemMap(void *ptr, size_t size, size_t offset,
                                      dv_hip_mem_handle_t handle,
                                      unsigned long long flags);
DVSIM_EXPORT dv_hip_error_t hipMemUnmap(void *ptr, size_t size);
DVSIM_EXPORT dv_hip_error_t hipMemSetAccess(void *ptr, size_t size,
                                            const dv_hip_mem_access_desc_t *desc,
                                            size_t count);
DVSIM_EXPORT dv_hip_error_t hipMemGetAllocationGranularity(
    size_t *granularity, const void *prop,
    dv_hip_mem_granularity_flags_t option);
DVSIM_EXPORT dv_hip_error_t hipStreamCreate(dv_hip_stream_t *stream);
DVSIM_EXPORT dv_hip_error_t hipStreamDestroy(dv_hip_stream_t stream);
DVSIM_EXPORT dv_hip_error_t hipStreamSynchronize(dv_hip_stream_t stream);
DVSIM_EXPORT dv_hip_error_t hipStreamGetDevice(dv_hip_stream_t stream,
                                               dv_hip_device_t *device);
DVSIM_EXPORT dv_hip_error_t hipStreamGetFlags(dv_hip_stream_t stream,
                                              unsigned int *flags);
DVSIM_EXPORT dv_hip_error_t hipEventCreateWithFlags(dv_hip_event_t *event,
                                                    unsigned flags);
DVSIM_EXPORT dv_hip_error_t hipEventRecord(dv_hip_event_t event,
                                           dv_hip_stream_t stream);
DVSIM_EXPORT dv_hip_error_t hipEventQuery(dv_hip_event_t event);
DVSIM_EXPORT dv_hip_error_t hipEventSynchronize(dv_hip_event_t event);
DVSIM_EXPORT dv_hip_error_t hipEventDestroy(dv_hip_event_t event);
DVSIM_EXPORT dv_hip_error_t hipMemcpyHtoDAsync(dv_hip_deviceptr_t dst,
                                               void *src, size_t size,
                                               dv_hip_stream_t stream);
DVSIM_EXPORT dv_hip_error_t hipMemcpyDtoHAsync(void *dst,
                                               dv_hip_deviceptr_t src,
                                               size_t size,
                                               dv_hip_stream_t stream);
DVSIM_EXPORT dv_hip_error_t hipHostRegister(void *ptr, size_t size,
                                            unsigned flags);
DVSIM_EXPORT dv_hip_error_t hipHostUnregister(void *ptr);

/* ---- test hooks ------------------------------------------------------------ */

/* Overlapping VMM calls seen while not_thread_safe is on. */
DVSIM_EXPORT int dvsim_hip_violations(void);
/* Physical bytes counted against `device` (after dropping allocations no
 * longer referenced by anything). */
DVSIM_EXPORT uint64_t dvsim_hip_used(int device);
/* Live mappings and live address reservations. */
DVSIM_EXPORT int dvsim_hip_mapping_count(void);
DVSIM_EXPORT int dvsim_hip_reservation_count(void);
/* Events recorded and not yet complete. */
DVSIM_EXPORT int dvsim_hip_pending_events(void);

#ifdef __cplusplus
}
#endif

#endif /* DV_TESTS_FAKE_HIP_H */
