/*
 * fake_nvml.c - a simulated NVML with the C ABI of the entry points in
 * hal/cuda/nvml_abi.h, for the CUDA backend's nvml=1 option in CI (the
 * backend is pointed at it with DYNVRAM_NVML_LIBRARY, next to the simulated
 * libcuda of fake_cuda.c).
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Strict where the backend's contract matters:
 *  - every device call fails with NVML_ERROR_UNINITIALIZED unless
 *    nvmlInit_v2 was called more often than nvmlShutdown (NVML counts
 *    them), and nvmlShutdown without a matching init fails too;
 *  - devices are found only by the bus id fake_cuda.c gives CUDA device i:
 *    "00000000:0<1+i>:00.0" (domain 0, bus 1 + i, device 0, function 0),
 *    case-insensitively like NVML; anything else is NVML_ERROR_NOT_FOUND;
 *  - handles are looked up, never read through: a junk one is
 *    NVML_ERROR_INVALID_ARGUMENT.
 *
 * Environment: DV_FAKE_CUDA_DEVICES (default 1, as fake_cuda.c),
 * DV_FAKE_CUDA_MEMORY (total bytes per device, default 1 GiB),
 * DV_FAKE_NVML_FREE (free bytes, one value for every device or a comma
 * separated list per device; default: all free), DV_FAKE_NVML_INIT_FAIL=1
 * (nvmlInit_v2 fails with NVML_ERROR_DRIVER_NOT_LOADED).
 * Test hooks: dv_fake_nvml_users() (inits not yet shut down),
 * dv_fake_nvml_set_free(i, bytes) (another process took memory),
 * dv_fake_nvml_queries() (nvmlDeviceGetMemoryInfo calls so far).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hal/cuda/nvml_abi.h"

#define NV_EXPORT __attribute__((visibility("default")))
#define NV_MAX_DEV 16

/* NVML's result codes used here. */
#define NV_ERROR_UNINITIALIZED 1
#define NV_ERROR_INVALID_ARGUMENT 2
#define NV_ERROR_NOT_FOUND 6
#define NV_ERROR_DRIVER_NOT_LOADED 9

struct dv_nvml_device_st {
    int index;
};

/* The entry points, declared from the ABI table (with default
 * visibility, as the library exports them). */
#define NV_DECLARE(name, ret, params) NV_EXPORT ret name params;
DV_NVML_SYMBOLS(NV_DECLARE)
#undef NV_DECLARE

static pthread_mutex_t nv_lock = PTHREAD_MUTEX_INITIALIZER;
static struct dv_nvml_device_st nv_devs[NV_MAX_DEV];
static int nv_users;
static int nv_configured;
static int nv_count = 1;
static unsigned long long nv_total = 1ull << 30;
static unsigned long long nv_free[NV_MAX_DEV];
static unsigned long long nv_queries;

static unsigned long long nv_size(const char *s) {
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 0);
    if (end && (*end == 'K' || *end == 'k')) {
        v <<= 10;
    } else if (end && (*end == 'M' || *end == 'm')) {
        v <<= 20;
    } else if (end && (*end == 'G' || *end == 'g')) {
        v <<= 30;
    }
    return v;
}

/* Read the environment once (nv_lock held). */
static void nv_configure_locked(void) {
    if (nv_configured) {
        return;
    }
    nv_configured = 1;
    const char *n = getenv("DV_FAKE_CUDA_DEVICES");
    if (n && *n) {
        nv_count = atoi(n);
    }
    if (nv_count < 0) {
        nv_count = 0;
    }
    if (nv_count > NV_MAX_DEV) {
        nv_count = NV_MAX_DEV;
    }
    const char *mem = getenv("DV_FAKE_CUDA_MEMORY");
    if (mem && *mem) {
        nv_total = strtoull(mem, NULL, 0);
    }
    for (int i = 0; i < NV_MAX_DEV; i++) {
        nv_devs[i].index = i;
        nv_free[i] = nv_total;
    }
    const char *f = getenv("DV_FAKE_NVML_FREE");
    if (f && *f) {
        char buf[512];
        snprintf(buf, sizeof(buf), "%s", f);
        char *save = NULL;
        int i = 0;
        unsigned long long last = nv_total;
        for (char *tok = strtok_r(buf, ",", &save); tok && i < NV_MAX_DEV;
             tok = strtok_r(NULL, ",", &save)) {
            last = nv_size(tok);
            nv_free[i++] = last;
        }
        for (; i < NV_MAX_DEV; i++) {
            nv_free[i] = last;
        }
    }
}

static int nv_find(dv_nvml_device h) {
    for (int i = 0; i < nv_count; i++) {
        if (h == &nv_devs[i]) {
            return i;
        }
    }
    return -1;
}

NV_EXPORT dv_nvml_return nvmlInit_v2(void) {
    const char *fail = getenv("DV_FAKE_NVML_INIT_FAIL");
    if (fail && *fail && *fail != '0') {
        return NV_ERROR_DRIVER_NOT_LOADED;
    }
    pthread_mutex_lock(&nv_lock);
    nv_configure_locked();
    nv_users++;
    pthread_mutex_unlock(&nv_lock);
    return DV_NVML_SUCCESS;
}

NV_EXPORT dv_nvml_return nvmlShutdown(void) {
    dv_nvml_return rc = DV_NVML_SUCCESS;
    pthread_mutex_lock(&nv_lock);
    if (nv_users == 0) {
        rc = NV_ERROR_UNINITIALIZED;
    } else {
        nv_users--;
    }
    pthread_mutex_unlock(&nv_lock);
    return rc;
}

NV_EXPORT const char *nvmlErrorString(dv_nvml_return result) {
    switch (result) {
    case DV_NVML_SUCCESS:
        return "Success";
    case NV_ERROR_UNINITIALIZED:
        return "Uninitialized";
    case NV_ERROR_INVALID_ARGUMENT:
        return "Invalid Argument";
    case NV_ERROR_NOT_FOUND:
        return "Not Found";
    case NV_ERROR_DRIVER_NOT_LOADED:
        return "Driver Not Loaded";
    default:
        return "Unknown Error";
    }
}

NV_EXPORT dv_nvml_return
nvmlDeviceGetHandleByPciBusId_v2(const char *bus_id, dv_nvml_device *device) {
    dv_nvml_return rc = NV_ERROR_NOT_FOUND;
    if (!bus_id || !device) {
        return NV_ERROR_INVALID_ARGUMENT;
    }
    pthread_mutex_lock(&nv_lock);
    if (nv_users == 0) {
        rc = NV_ERROR_UNINITIALIZED;
    } else {
        for (int i = 0; i < nv_count; i++) {
            char want[DV_NVML_PCI_BUS_ID_LEN];
            snprintf(want, sizeof(want), "%08x:%02x:%02x.0", 0u,
                     (unsigned)(1 + i), 0u);
            if (strcasecmp(want, bus_id) == 0) {
                *device = &nv_devs[i];
                rc = DV_NVML_SUCCESS;
                break;
            }
        }
    }
    pthread_mutex_unlock(&nv_lock);
    return rc;
}

NV_EXPORT dv_nvml_return nvmlDeviceGetMemoryInfo(dv_nvml_device device,
                                                 dv_nvml_memory *memory) {
    dv_nvml_return rc = DV_NVML_SUCCESS;
    pthread_mutex_lock(&nv_lock);
    int i = nv_find(device);
    if (nv_users == 0) {
        rc = NV_ERROR_UNINITIALIZED;
    } else if (i < 0 || !memory) {
        rc = NV_ERROR_INVALID_ARGUMENT;
    } else {
        unsigned long long f = nv_free[i] < nv_total ? nv_free[i] : nv_total;
        memory->total = nv_total;
        memory->free = f;
        memory->used = nv_total - f;
        nv_queries++;
    }
    pthread_mutex_unlock(&nv_lock);
    return rc;
}

/* ---- test hooks ---- */

NV_EXPORT int dv_fake_nvml_users(void);
NV_EXPORT int dv_fake_nvml_set_free(int index, unsigned long long bytes);
NV_EXPORT unsigned long long dv_fake_nvml_queries(void);

NV_EXPORT int dv_fake_nvml_users(void) {
    pthread_mutex_lock(&nv_lock);
    int n = nv_users;
    pthread_mutex_unlock(&nv_lock);
    return n;
}

NV_EXPORT int dv_fake_nvml_set_free(int index, unsigned long long bytes) {
    pthread_mutex_lock(&nv_lock);
    nv_configure_locked();
    int ok = index >= 0 && index < NV_MAX_DEV;
    if (ok) {
        nv_free[index] = bytes;
    }
    pthread_mutex_unlock(&nv_lock);
    return ok ? 0 : -1;
}

NV_EXPORT unsigned long long dv_fake_nvml_queries(void) {
    pthread_mutex_lock(&nv_lock);
    unsigned long long n = nv_queries;
    pthread_mutex_unlock(&nv_lock);
    return n;
}
