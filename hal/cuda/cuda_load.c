/*
 * cuda_load.c - open the CUDA driver library at run time and resolve its
 * entry points at a pinned ABI version.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Why cuGetProcAddress instead of dlsym for each name: the driver exports
 * several ABIs under versioned names (cuMemGetInfo_v2, cuCtxCreate_v4, ...)
 * and the plain name is usually the oldest one. cuGetProcAddress(name,
 * version) returns the ABI that `version` of the CUDA headers meant, so the
 * prototypes in cuda_abi.h stay valid on every newer driver.
 */
#include "cuda_load.h"

#include <stdio.h>
#include <string.h>

#include "base/os.h"

#if defined(_WIN32)
#define CU_DEFAULT_LIBRARY "nvcuda.dll"
#else
#define CU_DEFAULT_LIBRARY "libcuda.so.1"
#endif

const char *dv__cu_default_library(void) { return CU_DEFAULT_LIBRARY; }

void dv__cu_describe(const dv__cu_api_t *api, int code, char *buf, size_t len) {
    const char *name = NULL;
    const char *text = NULL;
    if (!buf || len == 0) {
        return;
    }
    if (api && api->cuGetErrorName &&
        api->cuGetErrorName(code, &name) != DV_CU_SUCCESS) {
        name = NULL;
    }
    if (api && api->cuGetErrorString &&
        api->cuGetErrorString(code, &text) != DV_CU_SUCCESS) {
        text = NULL;
    }
    snprintf(buf, len, "%s (%d): %s", name ? name : "CUDA_ERROR_UNKNOWN_CODE",
             code, text ? text : "no description");
}

void dv__cu_unload(dv__cu_api_t *api) {
    if (!api) {
        return;
    }
    dv__lib_close(api->lib);
    memset(api, 0, sizeof(*api));
}

/* Resolve one symbol through whichever cuGetProcAddress the driver has. */
static int cu_resolve(dv_cu_pfn_get_proc_address_v2 gpa2,
                      dv_cu_pfn_get_proc_address_v1 gpa1, const char *name,
                      void **fn, int *status) {
    dv_cu_proc_query_result st = DV_CU_GET_PROC_ADDRESS_SUCCESS;
    dv_cu_result rc;
    *fn = NULL;
    if (gpa2) {
        rc = gpa2(name, fn, DV_CU_ABI_VERSION,
                  DV_CU_GET_PROC_ADDRESS_LEGACY_STREAM, &st);
    } else {
        rc = gpa1(name, fn, DV_CU_ABI_VERSION,
                  DV_CU_GET_PROC_ADDRESS_LEGACY_STREAM);
    }
    *status = (int)st;
    if (rc == DV_CU_SUCCESS && (st != DV_CU_GET_PROC_ADDRESS_SUCCESS || !*fn)) {
        rc = DV_CU_ERROR_NOT_FOUND;
    }
    return rc;
}

dv_result_t dv__cu_load(const char *path, dv__cu_api_t *api, char *reason,
                        size_t reason_len) {
    char err[256] = "";
    char desc[192];
    dv_cu_pfn_driver_get_version get_version;
    dv_cu_pfn_get_proc_address_v2 gpa2;
    dv_cu_pfn_get_proc_address_v1 gpa1;
    int version = 0;
    int status = 0;
    dv_cu_result rc;
    void *fn;
    char dummy[1];

    if (!reason || reason_len == 0) {
        reason = dummy;
        reason_len = sizeof(dummy);
    }
    reason[0] = '\0';
    if (!api) {
        snprintf(reason, reason_len, "no table to fill");
        return DV_ERROR_BACKEND_UNAVAILABLE;
    }
    memset(api, 0, sizeof(*api));
    if (!path || !path[0]) {
        path = dv__getenv("DYNVRAM_CUDA_LIBRARY");
    }
    if (!path || !path[0]) {
        path = CU_DEFAULT_LIBRARY;
    }
    snprintf(api->path, sizeof(api->path), "%s", path);

    api->lib = dv__lib_open(path, err, sizeof(err));
    if (!api->lib) {
        snprintf(reason, reason_len, "%s not found: %s", path,
                 err[0] ? err : "unknown loader error");
        goto fail;
    }
    get_version = (dv_cu_pfn_driver_get_version)dv__lib_sym(
        api->lib, "cuDriverGetVersion");
    gpa2 = (dv_cu_pfn_get_proc_address_v2)dv__lib_sym(api->lib,
                                                      "cuGetProcAddress_v2");
    gpa1 = (dv_cu_pfn_get_proc_address_v1)dv__lib_sym(api->lib,
                                                      "cuGetProcAddress");
    if (!get_version || (!gpa2 && !gpa1)) {
        snprintf(reason, reason_len,
                 "%s is not a usable CUDA driver library "
                 "(no cuDriverGetVersion or cuGetProcAddress)",
                 path);
        goto fail;
    }
    rc = get_version(&version);
    if (rc != DV_CU_SUCCESS) {
        snprintf(reason, reason_len, "cuDriverGetVersion failed: error %d%s",
                 rc,
                 rc == DV_CU_ERROR_STUB_LIBRARY
                     ? " (CUDA_ERROR_STUB_LIBRARY: a stub, not the driver)"
                     : "");
        goto fail;
    }
    if (version < DV_CU_ABI_VERSION) {
        snprintf(reason, reason_len,
                 "driver supports CUDA %d.%d; dynvram needs %d.%d or newer",
                 version / 1000, (version % 1000) / 10,
                 DV_CU_ABI_VERSION / 1000, (DV_CU_ABI_VERSION % 1000) / 10);
        goto fail;
    }
    api->driver_version = version;

#define DV__CU_RESOLVE(name, ver, ret, params)                                 \
    rc = cu_resolve(gpa2, gpa1, #name, &fn, &status);                          \
    if (rc != DV_CU_SUCCESS) {                                                 \
        dv__cu_describe(api, rc, desc, sizeof(desc));                          \
        snprintf(reason, reason_len,                                           \
                 "cuGetProcAddress(%s, %d) failed: %s, status %d", #name,      \
                 DV_CU_ABI_VERSION, desc, status);                             \
        goto fail;                                                             \
    }                                                                          \
    api->name = (dv_cu_pfn_##name)fn;
    DV_CU_SYMBOLS(DV__CU_RESOLVE)
#undef DV__CU_RESOLVE

    rc = api->cuInit(0);
    if (rc != DV_CU_SUCCESS) {
        dv__cu_describe(api, rc, desc, sizeof(desc));
        snprintf(reason, reason_len, "cuInit failed: %s", desc);
        goto fail;
    }
    snprintf(reason, reason_len, "%s (CUDA driver %d.%d)", path, version / 1000,
             (version % 1000) / 10);
    return DV_OK;

fail:
    /* The reason stays: unload zeroes the table, not the buffer. */
    dv__cu_unload(api);
    return DV_ERROR_BACKEND_UNAVAILABLE;
}
