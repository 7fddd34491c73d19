/*
 * cuda_nvml.c - free memory from NVML, the backend option nvml=1.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * cuMemGetInfo reports what the CUDA driver lets this process see as free.
 * NVML reports the device's free memory with every process's use counted
 * (on Windows' WDDM driver the two differ most: another application's VRAM
 * does not show in cuMemGetInfo). With nvml=1 the backend's mem_info
 * answers the smaller of the two, so the budget shrinks when another
 * process takes memory.
 *
 * Contract:
 *  - NVML is opened at run time, once per process (DYNVRAM_NVML_LIBRARY,
 *    else libnvidia-ml.so.1 / nvml.dll), and nvmlInit_v2 is called when the
 *    first device asks for it; nvmlShutdown when the last such device is
 *    closed. The library itself stays loaded.
 *  - A device is matched by its PCI bus id (domain:bus:device.0 from the
 *    CUDA device attributes), so CUDA_VISIBLE_DEVICES renumbering cannot
 *    pair it with another GPU.
 *  - Missing NVML (no library, init failure, device not found) is not an
 *    error: the device opens without it, says why at warning level, and
 *    mem_info stays on cuMemGetInfo. A failing query later falls back the
 *    same way for that call.
 *  - Called from init / fini / mem_info, which the core serializes per
 *    device; the process-wide state has its own lock.
 */
#include <stdio.h>
#include <string.h>

#include "base/error.h"
#include "base/os.h"
#include "cuda_internal.h"
#include "nvml_abi.h"

#if defined(_WIN32)
#define NV_DEFAULT_LIBRARY "nvml.dll"
#else
#define NV_DEFAULT_LIBRARY "libnvidia-ml.so.1"
#endif

typedef struct nv_api {
#define NV_FIELD(name, ret, params) dv_nvml_pfn_##name name;
    DV_NVML_SYMBOLS(NV_FIELD)
#undef NV_FIELD
} nv_api_t;

static dv__mutex_t nv_mu = DV__MUTEX_INIT;
static void *nv_lib; /* loaded once, never closed */
static nv_api_t nv;  /* valid while nv_lib != NULL */
static int nv_users; /* devices holding nvmlInit */
static char nv_path[256];

/* Load the library and its symbols (nv_mu held). 0, or -1 with `why`. */
static int nv_load_locked(char *why, size_t why_len) {
    char err[256] = "";
    if (nv_lib) {
        return 0;
    }
    const char *path = dv__getenv("DYNVRAM_NVML_LIBRARY");
    if (!path || !path[0]) {
        path = NV_DEFAULT_LIBRARY;
    }
    void *lib = dv__lib_open(path, err, sizeof(err));
    if (!lib) {
        snprintf(why, why_len, "%s not found: %s", path,
                 err[0] ? err : "unknown loader error");
        return -1;
    }
    nv_api_t api;
    memset(&api, 0, sizeof(api));
#define NV_RESOLVE(name, ret, params)                                          \
    api.name = (dv_nvml_pfn_##name)dv__lib_sym(lib, #name);                    \
    if (!api.name) {                                                           \
        snprintf(why, why_len, "%s lacks %s", path, #name);                    \
        dv__lib_close(lib);                                                    \
        return -1;                                                             \
    }
    DV_NVML_SYMBOLS(NV_RESOLVE)
#undef NV_RESOLVE
    nv = api;
    nv_lib = lib;
    snprintf(nv_path, sizeof(nv_path), "%s", path);
    return 0;
}

static const char *nv_text(dv_nvml_return rc) {
    const char *t = nv.nvmlErrorString ? nv.nvmlErrorString(rc) : NULL;
    return t ? t : "unknown NVML error";
}

/* The device's PCI bus id in NVML's form, e.g. "00000000:65:00.0". */
static dv_result_t nv_bus_id(const dv__cu_dev_t *d, char *out, size_t len) {
    int domain = 0, bus = 0, dev = 0;
    dv_cu_result rc = dv__cu.cuDeviceGetAttribute(
        &domain, DV_CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID, d->dev);
    if (rc == DV_CU_SUCCESS) {
        rc = dv__cu.cuDeviceGetAttribute(
            &bus, DV_CU_DEVICE_ATTRIBUTE_PCI_BUS_ID, d->dev);
    }
    if (rc == DV_CU_SUCCESS) {
        rc = dv__cu.cuDeviceGetAttribute(
            &dev, DV_CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID, d->dev);
    }
    if (rc != DV_CU_SUCCESS) {
        return DV_ERROR_BACKEND;
    }
    snprintf(out, len, "%08x:%02x:%02x.0", (unsigned)domain, (unsigned)bus,
             (unsigned)dev);
    return DV_OK;
}

void dv__cu_nvml_open(dv__cu_dev_t *d) {
    char why[320] = "";
    char bus[DV_NVML_PCI_BUS_ID_LEN];
    dv_nvml_device h = NULL;
    int inited = 0;

    d->nvml_dev = NULL;
    if (nv_bus_id(d, bus, sizeof(bus)) != DV_OK) {
        snprintf(why, sizeof(why),
                 "the PCI bus id of CUDA device %d is "
                 "unknown",
                 d->ordinal);
        goto off;
    }
    dv__mutex_lock(&nv_mu);
    if (nv_load_locked(why, sizeof(why)) == 0) {
        dv_nvml_return rc = nv_users ? DV_NVML_SUCCESS : nv.nvmlInit_v2();
        if (rc != DV_NVML_SUCCESS) {
            snprintf(why, sizeof(why), "nvmlInit_v2: %s (%d)", nv_text(rc), rc);
        } else {
            nv_users++;
            inited = 1;
            rc = nv.nvmlDeviceGetHandleByPciBusId_v2(bus, &h);
            if (rc != DV_NVML_SUCCESS || !h) {
                snprintf(why, sizeof(why),
                         "nvmlDeviceGetHandleByPciBusId_v2(%s): %s (%d)", bus,
                         nv_text(rc), rc);
                h = NULL;
            }
        }
    }
    if (!h && inited && --nv_users == 0) {
        nv.nvmlShutdown();
    }
    dv__mutex_unlock(&nv_mu);
    if (h) {
        d->nvml_dev = h;
        dv__log(DV_LOG_INFO, "cuda: device %d (%s): free memory from NVML (%s)",
                d->ordinal, bus, nv_path);
        return;
    }
off:
    dv__log(DV_LOG_WARNING,
            "cuda: device %d: nvml=1 asked for, but NVML is unavailable (%s); "
            "free memory comes from cuMemGetInfo",
            d->ordinal, why);
}

void dv__cu_nvml_close(dv__cu_dev_t *d) {
    if (!d->nvml_dev) {
        return;
    }
    d->nvml_dev = NULL;
    dv__mutex_lock(&nv_mu);
    if (--nv_users == 0) {
        nv.nvmlShutdown();
    }
    dv__mutex_unlock(&nv_mu);
}

int dv__cu_nvml_free(const dv__cu_dev_t *d, uint64_t *free_bytes) {
    dv_nvml_memory m;
    if (!d->nvml_dev) {
        return 0;
    }
    memset(&m, 0, sizeof(m));
    /* nv is immutable once loaded, and this device holds an nvmlInit. */
    dv_nvml_return rc =
        nv.nvmlDeviceGetMemoryInfo((dv_nvml_device)d->nvml_dev, &m);
    if (rc != DV_NVML_SUCCESS) {
        dv__log(DV_LOG_DEBUG, "cuda: device %d: nvmlDeviceGetMemoryInfo: %s",
                d->ordinal, nv_text(rc));
        return 0;
    }
    *free_bytes = (uint64_t)m.free;
    return 1;
}
