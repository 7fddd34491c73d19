/*
 * fake_hip_internal.h - shared state of the simulated HIP runtime
 * (fake_hip.c: configuration, devices; fake_hip_mem.c: virtual memory;
 * fake_hip_stream.c: streams, events, copies, host registration).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef DV_TESTS_FAKE_HIP_INTERNAL_H
#define DV_TESTS_FAKE_HIP_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include "tests/fakes/hip/fake_hip.h"

#define DVSIM_MAX_DEVICES 8

#define DVSIM_DEFECT_UNMAP_NEEDS_REPROTECT 0x1u
#define DVSIM_DEFECT_MULTI_UNMAP 0x2u
#define DVSIM_DEFECT_RESERVE_FREE_CORRUPTS 0x4u
#define DVSIM_DEFECT_NOT_THREAD_SAFE 0x8u

typedef struct dvsim_config {
    int devices;
    uint64_t capacity[DVSIM_MAX_DEVICES];
    uint64_t granularity;
    int version;
    int no_vmm;
    int event_delay;
    int corrupt_after;
    uint32_t defects;
} dvsim_config_t;

/* Read once from the environment; never NULL. */
const dvsim_config_t *dvsim__hip_config(void);

/* Guards every table of the simulator. */
extern pthread_mutex_t dvsim__hip_lock;

/* The calling thread's current device (hipSetDevice). */
int dvsim__hip_current_device(void);
int dvsim__hip_valid_device(int device);
/* Is this DVSIM_DEFECT_* switched on? */
int dvsim__hip_defect(uint32_t bit);

/* Is [va, va + size) entirely covered by mappings whose access includes
 * `need` (DV_HIP_MEM_ACCESS_FLAGS_PROT_READ or _READ_WRITE)? Caller holds
 * the lock. */
int dvsim__hip_accessible(uintptr_t va, size_t size, int need);

/* Bracket a virtual-memory entry point: with not_thread_safe on, an entry
 * while another is in flight is a violation (returns nonzero). */
int dvsim__hip_vmm_enter(void);
void dvsim__hip_vmm_leave(void);

#define SIM_VMM_BEGIN()                                                        \
    if (dvsim__hip_vmm_enter()) {                                              \
        return DV_HIP_ERROR_UNKNOWN;                                           \
    }                                                                          \
    pthread_mutex_lock(&dvsim__hip_lock)

#define SIM_VMM_END(e)                                                         \
    pthread_mutex_unlock(&dvsim__hip_lock);                                    \
    dvsim__hip_vmm_leave();                                                    \
    return (e)

#endif /* DV_TESTS_FAKE_HIP_INTERNAL_H */
