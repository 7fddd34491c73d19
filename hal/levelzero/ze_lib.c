/*
 * ze_lib.c - loading the Level Zero loader at run time (through
 * base/dynlib.h), translating its result codes, and enumerating GPU
 * devices. See ze_internal.h.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/dynlib.h"
#include "base/error.h"
#include "base/native.h"
#include "base/os.h"
#include "ze_internal.h"

#if defined(_WIN32)
#define ZE_DEFAULT_LIBRARY "ze_loader.dll"
#else
#define ZE_DEFAULT_LIBRARY "libze_loader.so.1"
#endif

dv__ze_api_t dv__ze;

static dv__dynlib_t ze_dl = DV__DYNLIB_INIT;

static const dv__dynlib_sym_t ze_syms[] = {
#define DV__ZE_SYM(sym, type, req) DV__DYNLIB_SYM(dv__ze_api_t, sym, req),
    DV_ZE_SYMBOLS(DV__ZE_SYM)
#undef DV__ZE_SYM
};

const char *dv__ze_result_name(dv_ze_result_t r) {
    switch (r) {
#define ZE_NAME(v)                                                             \
    case DV_ZE_##v:                                                            \
        return "ZE_" #v;
        ZE_NAME(RESULT_SUCCESS)
        ZE_NAME(RESULT_NOT_READY)
        ZE_NAME(RESULT_ERROR_DEVICE_LOST)
        ZE_NAME(RESULT_ERROR_OUT_OF_HOST_MEMORY)
        ZE_NAME(RESULT_ERROR_OUT_OF_DEVICE_MEMORY)
        ZE_NAME(RESULT_ERROR_DEVICE_REQUIRES_RESET)
        ZE_NAME(RESULT_ERROR_DEVICE_IN_LOW_POWER_STATE)
        ZE_NAME(RESULT_ERROR_INSUFFICIENT_PERMISSIONS)
        ZE_NAME(RESULT_ERROR_NOT_AVAILABLE)
        ZE_NAME(RESULT_ERROR_DEPENDENCY_UNAVAILABLE)
        ZE_NAME(RESULT_ERROR_UNINITIALIZED)
        ZE_NAME(RESULT_ERROR_UNSUPPORTED_VERSION)
        ZE_NAME(RESULT_ERROR_UNSUPPORTED_FEATURE)
        ZE_NAME(RESULT_ERROR_INVALID_ARGUMENT)
        ZE_NAME(RESULT_ERROR_INVALID_NULL_HANDLE)
        ZE_NAME(RESULT_ERROR_HANDLE_OBJECT_IN_USE)
        ZE_NAME(RESULT_ERROR_INVALID_NULL_POINTER)
        ZE_NAME(RESULT_ERROR_INVALID_SIZE)
        ZE_NAME(RESULT_ERROR_UNSUPPORTED_SIZE)
        ZE_NAME(RESULT_ERROR_UNSUPPORTED_ALIGNMENT)
        ZE_NAME(RESULT_ERROR_INVALID_SYNCHRONIZATION_OBJECT)
        ZE_NAME(RESULT_ERROR_INVALID_ENUMERATION)
        ZE_NAME(RESULT_ERROR_UNSUPPORTED_ENUMERATION)
        ZE_NAME(RESULT_ERROR_OVERLAPPING_REGIONS)
        ZE_NAME(RESULT_ERROR_UNKNOWN)
#undef ZE_NAME
    default:
        return "ZE_RESULT_(unknown)";
    }
}

dv_result_t dv__ze_fail(dv_ze_result_t r, const char *call) {
    dv_result_t res = DV_ERROR_BACKEND;
    if (r == DV_ZE_RESULT_ERROR_OUT_OF_DEVICE_MEMORY) {
        res = DV_ERROR_OUT_OF_DEVICE_MEMORY;
    } else if (r == DV_ZE_RESULT_ERROR_OUT_OF_HOST_MEMORY) {
        res = DV_ERROR_OUT_OF_HOST_MEMORY;
    }
    return dv__native_fail(res, (int64_t)(uint32_t)r,
                           "levelzero: %s: %s (0x%08x)", call,
                           dv__ze_result_name(r), (unsigned)r);
}

/* The name tried (or loaded) is known once the load finished. */
const char *dv__ze_library(void) {
    return dv__dynlib_done(&ze_dl) ? ze_dl.name : "";
}

/* The loader must find a GPU driver. Runs under the load's lock, once. */
static int ze_finish(const dv__dynlib_spec_t *spec, const char *name, void *lib,
                     char *why, size_t len) {
    (void)spec;
    (void)lib;
    /* The Sysman trio is used only whole. */
    if (!dv__ze.zesDeviceEnumMemoryModules || !dv__ze.zesMemoryGetProperties ||
        !dv__ze.zesMemoryGetState) {
        dv__ze.zesDeviceEnumMemoryModules = NULL;
        dv__ze.zesMemoryGetProperties = NULL;
        dv__ze.zesMemoryGetState = NULL;
    }
    dv_ze_result_t r = dv__ze.zeInit(DV_ZE_INIT_FLAG_GPU_ONLY);
    if (r != DV_ZE_RESULT_SUCCESS) {
        snprintf(why, len,
                 "zeInit(GPU only) failed: %s (0x%08x): no Level Zero GPU "
                 "driver",
                 dv__ze_result_name(r), (unsigned)r);
        return -1;
    }
    snprintf(why, len, "%s", name);
    return 0;
}

dv_result_t dv__ze_load(char *reason, size_t reason_len) {
    if (!dv__dynlib_done(&ze_dl)) {
        static const char *const names[] = {ZE_DEFAULT_LIBRARY, NULL};
        dv__dynlib_spec_t spec = {
            .tag = "levelzero",
            .env = "DYNVRAM_ZE_LIBRARY",
            .names = names,
            .syms = ze_syms,
            .sym_count = sizeof(ze_syms) / sizeof(ze_syms[0]),
            .table = &dv__ze,
            .table_size = sizeof(dv__ze),
            .hint = "Level Zero loader too old?",
            .finish = ze_finish,
        };
        dv__dynlib_load(&ze_dl, &spec);
    }
    if (reason && reason_len) {
        snprintf(reason, reason_len, "%s", ze_dl.reason);
    }
    return ze_dl.result;
}

/* Root devices of one driver; *out is malloc'ed (NULL when count is 0). */
static dv_result_t ze_devices_of(dv_ze_driver_handle_t drv, uint32_t *count,
                                 dv_ze_device_handle_t **out) {
    *count = 0;
    *out = NULL;
    dv_ze_result_t r = dv__ze.zeDeviceGet(drv, count, NULL);
    if (r != DV_ZE_RESULT_SUCCESS) {
        return dv__ze_fail(r, "zeDeviceGet");
    }
    if (*count == 0) {
        return DV_OK;
    }
    *out = calloc(*count, sizeof(**out));
    if (!*out) {
        return dv__native_fail(DV_ERROR_OUT_OF_HOST_MEMORY, 0, "levelzero: device list");
    }
    r = dv__ze.zeDeviceGet(drv, count, *out);
    if (r != DV_ZE_RESULT_SUCCESS) {
        free(*out);
        *out = NULL;
        return dv__ze_fail(r, "zeDeviceGet");
    }
    return DV_OK;
}

dv_result_t dv__ze_find_device(int ordinal, int *count,
                               dv_ze_driver_handle_t *driver,
                               dv_ze_device_handle_t *device) {
    dv_ze_driver_handle_t *drivers = NULL;
    dv_ze_device_handle_t *devices = NULL;
    uint32_t ndrv = 0;
    int found = 0;
    int seen = 0;
    dv_result_t res = DV_OK;

    dv_ze_result_t r = dv__ze.zeDriverGet(&ndrv, NULL);
    if (r != DV_ZE_RESULT_SUCCESS) {
        return dv__ze_fail(r, "zeDriverGet");
    }
    if (ndrv > 0) {
        drivers = calloc(ndrv, sizeof(*drivers));
        if (!drivers) {
            return dv__native_fail(DV_ERROR_OUT_OF_HOST_MEMORY, 0, "levelzero: driver list");
        }
        r = dv__ze.zeDriverGet(&ndrv, drivers);
        if (r != DV_ZE_RESULT_SUCCESS) {
            res = dv__ze_fail(r, "zeDriverGet");
            goto out;
        }
    }
    for (uint32_t d = 0; d < ndrv && !found; d++) {
        uint32_t ndev = 0;
        res = ze_devices_of(drivers[d], &ndev, &devices);
        if (res != DV_OK) {
            goto out;
        }
        for (uint32_t i = 0; i < ndev; i++) {
            dv_ze_device_properties_t props;
            memset(&props, 0, sizeof(props));
            props.stype = DV_ZE_STRUCTURE_TYPE_DEVICE_PROPERTIES;
            r = dv__ze.zeDeviceGetProperties(devices[i], &props);
            if (r != DV_ZE_RESULT_SUCCESS) {
                res = dv__ze_fail(r, "zeDeviceGetProperties");
                goto out;
            }
            if (props.type != DV_ZE_DEVICE_TYPE_GPU) {
                continue;
            }
            if (seen == ordinal) {
                *driver = drivers[d];
                *device = devices[i];
                found = 1;
                break;
            }
            seen++;
        }
        free(devices);
        devices = NULL;
    }
    if (count) {
        /* When we stopped early the total is at least ordinal + 1. */
        *count = found ? seen + 1 : seen;
    }
    if (ordinal >= 0 && !found) {
        res = dv__native_fail(DV_ERROR_DEVICE_NOT_FOUND, 0, "levelzero: no GPU device %d (%d found)", ordinal, seen);
    }
out:
    free(devices);
    free(drivers);
    return res;
}
