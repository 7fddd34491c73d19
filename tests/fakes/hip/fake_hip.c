/*
 * fake_hip.c - simulated HIP runtime: configuration, devices and the
 * not_thread_safe defect (see fake_hip.h for the model and the switches;
 * fake_hip_mem.c has the memory, fake_hip_stream.c streams and events).
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Linux only. Every table is guarded by one mutex, so the simulator itself
 * is thread-safe; the not_thread_safe defect is detected before that mutex
 * is taken, as the real race would be.
 */
#define _GNU_SOURCE

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/fakes/hip/fake_hip_internal.h"

pthread_mutex_t dvsim__hip_lock = PTHREAD_MUTEX_INITIALIZER;

static pthread_once_t sim_once = PTHREAD_ONCE_INIT;
static dvsim_config_t sim_cfg;
static _Thread_local int sim_cur_dev;

static atomic_int sim_inflight;
static atomic_int sim_violations;

/* ---- configuration ---------------------------------------------------------- */

static uint64_t sim_parse_size(const char *s, uint64_t dflt) {
    if (!s || !*s) {
        return dflt;
    }
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 0);
    switch (end ? *end : '\0') {
    case 'k': case 'K': v <<= 10; break;
    case 'm': case 'M': v <<= 20; break;
    case 'g': case 'G': v <<= 30; break;
    default: break;
    }
    return v;
}

static int sim_env_int(const char *name, int dflt) {
    const char *s = getenv(name);
    return (s && *s) ? atoi(s) : dflt;
}

static uint32_t sim_parse_defects(const char *s) {
    static const struct {
        const char *name;
        uint32_t bit;
    } table[] = {
        {"unmap_needs_reprotect", DVSIM_DEFECT_UNMAP_NEEDS_REPROTECT},
        {"multi_unmap", DVSIM_DEFECT_MULTI_UNMAP},
        {"reserve_free_corrupts", DVSIM_DEFECT_RESERVE_FREE_CORRUPTS},
        {"not_thread_safe", DVSIM_DEFECT_NOT_THREAD_SAFE},
    };
    uint32_t bits = 0;
    while (s && *s) {
        size_t len = strcspn(s, ",");
        if (len == 3 && strncmp(s, "all", 3) == 0) {
            bits = ~0u;
        }
        for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
            if (strlen(table[i].name) == len &&
                strncmp(s, table[i].name, len) == 0) {
                bits |= table[i].bit;
            }
        }
        s += len;
        s += (*s == ',');
    }
    return bits;
}

static void sim_configure(void) {
    sim_cfg.devices = sim_env_int("DVSIM_HIP_DEVICES", 1);
    if (sim_cfg.devices < 0) {
        sim_cfg.devices = 0;
    }
    if (sim_cfg.devices > DVSIM_MAX_DEVICES) {
        sim_cfg.devices = DVSIM_MAX_DEVICES;
    }
    const char *cap = getenv("DVSIM_HIP_CAPACITY");
    uint64_t last = 2ull << 30;
    for (int i = 0; i < DVSIM_MAX_DEVICES; i++) {
        if (cap && *cap) {
            last = sim_parse_size(cap, last);
            cap += strcspn(cap, ",");
            cap += (*cap == ',');
        }
        sim_cfg.capacity[i] = last;
    }
    sim_cfg.granularity =
        sim_parse_size(getenv("DVSIM_HIP_GRANULARITY"), 64u << 10);
    sim_cfg.version = sim_env_int("DVSIM_HIP_VERSION", 70000000);
    sim_cfg.no_vmm = sim_env_int("DVSIM_HIP_NO_VMM", 0);
    sim_cfg.event_delay = sim_env_int("DVSIM_HIP_EVENT_DELAY", 0);
    sim_cfg.corrupt_after = sim_env_int("DVSIM_HIP_CORRUPT_AFTER", 4);
    sim_cfg.defects = sim_parse_defects(getenv("DVSIM_HIP_DEFECTS"));
}

const dvsim_config_t *dvsim__hip_config(void) {
    pthread_once(&sim_once, sim_configure);
    return &sim_cfg;
}

int dvsim__hip_defect(uint32_t bit) {
    return (dvsim__hip_config()->defects & bit) != 0;
}

int dvsim__hip_current_device(void) { return sim_cur_dev; }

/* ---- the not_thread_safe defect --------------------------------------------- */

int dvsim__hip_vmm_enter(void) {
    if (!dvsim__hip_defect(DVSIM_DEFECT_NOT_THREAD_SAFE)) {
        return 0;
    }
    if (atomic_fetch_add(&sim_inflight, 1) != 0) {
        atomic_fetch_sub(&sim_inflight, 1);
        atomic_fetch_add(&sim_violations, 1);
        fprintf(stderr, "dvsim-hip: concurrent VMM calls (not_thread_safe)\n");
        return 1;
    }
    /* Widen the window so that unserialized callers really overlap. */
    usleep(50);
    return 0;
}

void dvsim__hip_vmm_leave(void) {
    if (dvsim__hip_defect(DVSIM_DEFECT_NOT_THREAD_SAFE)) {
        atomic_fetch_sub(&sim_inflight, 1);
    }
}

/* ---- devices ------------------------------------------------------------------- */

int dvsim__hip_valid_device(int d) {
    return d >= 0 && d < dvsim__hip_config()->devices;
}

DVSIM_EXPORT dv_hip_error_t hipRuntimeGetVersion(int *version) {
    if (!version) {
        return DV_HIP_ERROR_INVALID_VALUE;
    }
    *version = dvsim__hip_config()->version;
    return DV_HIP_SUCCESS;
}

DVSIM_EXPORT const char *hipGetErrorName(dv_hip_error_t err) {
    switch (err) {
    case DV_HIP_SUCCESS: return "hipSuccess";
    case DV_HIP_ERROR_INVALID_VALUE: return "hipErrorInvalidValue";
    case DV_HIP_ERROR_OUT_OF_MEMORY: return "hipErrorOutOfMemory";
    case DV_HIP_ERROR_NO_DEVICE: return "hipErrorNoDevice";
    case DV_HIP_ERROR_INVALID_DEVICE: return "hipErrorInvalidDevice";
    case DV_HIP_ERROR_INVALID_HANDLE: return "hipErrorInvalidHandle";
    case DV_HIP_ERROR_NOT_READY: return "hipErrorNotReady";
    case DV_HIP_ERROR_ILLEGAL_ADDRESS: return "hipErrorIllegalAddress";
    case DV_HIP_ERROR_HOST_MEMORY_ALREADY_REGISTERED:
        return "hipErrorHostMemoryAlreadyRegistered";
    case DV_HIP_ERROR_HOST_MEMORY_NOT_REGISTERED:
        return "hipErrorHostMemoryNotRegistered";
    case DV_HIP_ERROR_NOT_SUPPORTED: return "hipErrorNotSupported";
    case DV_HIP_ERROR_UNKNOWN: return "hipErrorUnknown";
    default: return "hipErrorUnrecognized";
    }
}

DVSIM_EXPORT dv_hip_error_t hipGetDeviceCount(int *count) {
    if (!count) {
        return DV_HIP_ERROR_INVALID_VALUE;
    }
    *count = dvsim__hip_config()->devices;
    return *count > 0 ? DV_HIP_SUCCESS : DV_HIP_ERROR_NO_DEVICE;
}

DVSIM_EXPORT dv_hip_error_t hipGetDevice(int *device) {
    if (!device) {
        return DV_HIP_ERROR_INVALID_VALUE;
    }
    *device = sim_cur_dev;
    return DV_HIP_SUCCESS;
}

DVSIM_EXPORT dv_hip_error_t hipSetDevice(int device) {
    if (!dvsim__hip_valid_device(device)) {
        return DV_HIP_ERROR_INVALID_DEVICE;
    }
    sim_cur_dev = device;
    return DV_HIP_SUCCESS;
}

DVSIM_EXPORT dv_hip_error_t hipDeviceGet(dv_hip_device_t *dev, int ordinal) {
    if (!dev) {
        return DV_HIP_ERROR_INVALID_VALUE;
    }
    if (!dvsim__hip_valid_device(ordinal)) {
        return DV_HIP_ERROR_INVALID_DEVICE;
    }
    *dev = ordinal;
    return DV_HIP_SUCCESS;
}

DVSIM_EXPORT dv_hip_error_t hipDeviceGetName(char *name, int len,
                                             dv_hip_device_t dev) {
    if (!name || len <= 0) {
        return DV_HIP_ERROR_INVALID_VALUE;
    }
    if (!dvsim__hip_valid_device(dev)) {
        return DV_HIP_ERROR_INVALID_DEVICE;
    }
    snprintf(name, (size_t)len, "DVSIM HIP Device %d", dev);
    return DV_HIP_SUCCESS;
}

DVSIM_EXPORT dv_hip_error_t hipDeviceGetAttribute(
    int *value, dv_hip_device_attribute_t attr, int device) {
    if (!value) {
        return DV_HIP_ERROR_INVALID_VALUE;
    }
    if (!dvsim__hip_valid_device(device)) {
        return DV_HIP_ERROR_INVALID_DEVICE;
    }
    if (attr == DV_HIP_DEVICE_ATTRIBUTE_VMM_SUPPORTED) {
        *value = !dvsim__hip_config()->no_vmm;
        return DV_HIP_SUCCESS;
    }
    return DV_HIP_ERROR_INVALID_VALUE;
}

/* ---- test hooks ---------------------------------------------------------------- */

DVSIM_EXPORT int dvsim_hip_violations(void) {
    return atomic_load(&sim_violations);
}
