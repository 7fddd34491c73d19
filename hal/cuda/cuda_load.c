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

#include "base/dynlib.h"
#include "base/os.h"

#if defined(_WIN32)
#define CU_DEFAULT_LIBRARY "nvcuda.dll"
#else
#define CU_DEFAULT_LIBRARY "libcuda.so.1"
#endif

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

/* Every entry point is required (cuda_abi.h says why). */
static const dv__dynlib_sym_t cu_syms[] = {
#define DV__CU_SYM(name, ver, ret, params)                                     \
    DV__DYNLIB_SYM(dv__cu_api_t, name, 1),
    DV_CU_SYMBOLS(DV__CU_SYM)
#undef DV__CU_SYM
};

/* What the load hooks share: the driver's own lookup, found by prepare. */
typedef struct cu_loader {
    dv__cu_api_t *api;
    dv_cu_pfn_get_proc_address_v2 gpa2;
    dv_cu_pfn_get_proc_address_v1 gpa1;
} cu_loader_t;

/* The library must be a driver (not the SDK's stub) of CUDA 12.0 or newer,
 * and have cuGetProcAddress to resolve the rest through. */
static int cu_prepare(const dv__dynlib_spec_t *spec, const char *name,
                      void *lib, char *why, size_t len) {
    cu_loader_t *ld = spec->arg;
    dv_cu_pfn_driver_get_version get_version = NULL;
    void *p = dv__lib_sym(lib, "cuDriverGetVersion");
    memcpy(&get_version, &p, sizeof(p));
    p = dv__lib_sym(lib, "cuGetProcAddress_v2");
    memcpy(&ld->gpa2, &p, sizeof(p));
    p = dv__lib_sym(lib, "cuGetProcAddress");
    memcpy(&ld->gpa1, &p, sizeof(p));
    if (!get_version || (!ld->gpa2 && !ld->gpa1)) {
        snprintf(why, len,
                 "%s is not a usable CUDA driver library "
                 "(no cuDriverGetVersion or cuGetProcAddress)",
                 name);
        return -1;
    }
    int version = 0;
    dv_cu_result rc = get_version(&version);
    if (rc != DV_CU_SUCCESS) {
        snprintf(why, len, "cuDriverGetVersion failed: error %d%s", rc,
                 rc == DV_CU_ERROR_STUB_LIBRARY
                     ? " (CUDA_ERROR_STUB_LIBRARY: a stub, not the driver)"
                     : "");
        return -1;
    }
    if (version < DV_CU_ABI_VERSION) {
        snprintf(why, len,
                 "driver supports CUDA %d.%d; dynvram needs %d.%d or newer",
                 version / 1000, (version % 1000) / 10,
                 DV_CU_ABI_VERSION / 1000, (DV_CU_ABI_VERSION % 1000) / 10);
        return -1;
    }
    ld->api->driver_version = version;
    return 0;
}

/* Resolve one symbol through whichever cuGetProcAddress the driver has.
 * The error names come first in the table, so a later miss is described
 * with them. */
static void *cu_resolve(const dv__dynlib_spec_t *spec, void *lib,
                        const char *name, char *why, size_t len) {
    cu_loader_t *ld = spec->arg;
    dv_cu_proc_query_result st = DV_CU_GET_PROC_ADDRESS_SUCCESS;
    dv_cu_result rc;
    void *fn = NULL;
    (void)lib;
    if (ld->gpa2) {
        rc = ld->gpa2(name, &fn, DV_CU_ABI_VERSION,
                      DV_CU_GET_PROC_ADDRESS_LEGACY_STREAM, &st);
    } else {
        rc = ld->gpa1(name, &fn, DV_CU_ABI_VERSION,
                      DV_CU_GET_PROC_ADDRESS_LEGACY_STREAM);
    }
    if (rc == DV_CU_SUCCESS && (st != DV_CU_GET_PROC_ADDRESS_SUCCESS || !fn)) {
        rc = DV_CU_ERROR_NOT_FOUND;
    }
    if (rc != DV_CU_SUCCESS) {
        char desc[160];
        dv__cu_describe(ld->api, rc, desc, sizeof(desc));
        snprintf(why, len, "cuGetProcAddress(%s, %d) failed: %s, status %d",
                 name, DV_CU_ABI_VERSION, desc, (int)st);
        return NULL;
    }
    return fn;
}

static int cu_finish(const dv__dynlib_spec_t *spec, const char *name, void *lib,
                     char *why, size_t len) {
    cu_loader_t *ld = spec->arg;
    char desc[160];
    dv_cu_result rc = ld->api->cuInit(0);
    if (rc != DV_CU_SUCCESS) {
        dv__cu_describe(ld->api, rc, desc, sizeof(desc));
        snprintf(why, len, "cuInit failed: %s", desc);
        return -1;
    }
    ld->api->lib = lib;
    snprintf(ld->api->path, sizeof(ld->api->path), "%s", name);
    snprintf(why, len, "%s (CUDA driver %d.%d)", name,
             ld->api->driver_version / 1000,
             (ld->api->driver_version % 1000) / 10);
    return 0;
}

/* The CUDA steps for base/dynlib.h. `ld` lives as long as the load. */
static void cu_spec(dv__dynlib_spec_t *spec, cu_loader_t *ld, const char *path,
                    dv__cu_api_t *api) {
    static const char *const names[] = {CU_DEFAULT_LIBRARY, NULL};
    ld->api = api;
    ld->gpa1 = NULL;
    ld->gpa2 = NULL;
    memset(spec, 0, sizeof(*spec));
    spec->tag = "cuda";
    spec->path = path;
    spec->env = "DYNVRAM_CUDA_LIBRARY";
    spec->names = names;
    spec->syms = cu_syms;
    spec->sym_count = sizeof(cu_syms) / sizeof(cu_syms[0]);
    spec->table = api;
    spec->table_size = sizeof(*api);
    spec->prepare = cu_prepare;
    spec->resolve = cu_resolve;
    spec->finish = cu_finish;
    spec->arg = ld;
}

dv_result_t dv__cu_load(const char *path, dv__cu_api_t *api, char *reason,
                        size_t reason_len) {
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
    cu_loader_t ld;
    dv__dynlib_spec_t spec;
    dv__dynlib_t dl;
    cu_spec(&spec, &ld, path, api);
    dv__dynlib_open(&spec, &dl);
    snprintf(reason, reason_len, "%s", dl.reason);
    return dl.result;
}

dv_result_t dv__cu_load_once(dv__dynlib_t *dl, dv__cu_api_t *api) {
    if (dv__dynlib_done(dl)) {
        return dl->result;
    }
    cu_loader_t ld;
    dv__dynlib_spec_t spec;
    cu_spec(&spec, &ld, NULL, api);
    return dv__dynlib_load(dl, &spec);
}
