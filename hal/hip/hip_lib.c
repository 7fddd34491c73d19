/*
 * hip_lib.c - loading the HIP runtime at run time, translating its errors,
 * and the workaround switches.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * The runtime is opened once per process, by the first probe or init. Each
 * candidate name is tried in order (or only DYNVRAM_HIP_LIBRARY when set);
 * a candidate that loads but lacks a required symbol (ROCm 5.2, say, which
 * has no VMM entry points) is closed and the next one is tried, so the
 * reason for an unavailable backend lists what happened to every name.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/error.h"
#include "base/native.h"
#include "base/os.h"
#include "hip_internal.h"

dv__hip_api_t dv__hip;

static dv__once_t hip_load_once = DV__ONCE_INIT;
static dv_result_t hip_load_result = DV_ERROR_BACKEND_UNAVAILABLE;
static char hip_load_reason[512];
static char hip_lib_name[256];
static int hip_version;
static void *hip_lib;


/* Appends "; " + text to the reason, truncating quietly. */
static void hip_reason_add(const char *fmt, ...) DV__PRINTF(1, 2);
static void hip_reason_add(const char *fmt, ...) {
    size_t len = strlen(hip_load_reason);
    if (len + 3 >= sizeof(hip_load_reason)) {
        return;
    }
    if (len > 0) {
        memcpy(hip_load_reason + len, "; ", 3);
        len += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(hip_load_reason + len, sizeof(hip_load_reason) - len, fmt, ap);
    va_end(ap);
}

/* Resolves the table from `lib`. Returns the first missing required symbol,
 * or NULL when all required ones are there. */
static const char *hip_resolve(void *lib, dv__hip_api_t *api) {
    memset(api, 0, sizeof(*api));
    /* Function pointers come back as void *: POSIX guarantees the round trip
     * and Windows' GetProcAddress works the same way. memcpy keeps strict
     * ISO C quiet about the conversion. */
#define DV__HIP_RESOLVE(sym, type, req)                                        \
    {                                                                          \
        void *p = dv__lib_sym(lib, #sym);                                      \
        if (!p && (req)) {                                                     \
            return #sym;                                                       \
        }                                                                      \
        memcpy(&api->sym, &p, sizeof(p));                                      \
    }
    DV_HIP_SYMBOLS(DV__HIP_RESOLVE)
#undef DV__HIP_RESOLVE
    return NULL;
}

/* Tries one candidate; on success the table and version are set. */
static int hip_try(const char *name) {
    char err[256] = "";
    void *lib = dv__lib_open(name, err, sizeof(err));
    if (!lib) {
        hip_reason_add("%s: %s", name, err[0] ? err : "cannot be loaded");
        return 0;
    }
    dv__hip_api_t api;
    const char *missing = hip_resolve(lib, &api);
    if (missing) {
        hip_reason_add("%s: lacks %s (virtual memory management needs a "
                       "newer ROCm)",
                       name, missing);
        dv__lib_close(lib);
        return 0;
    }
    int version = 0;
    dv_hip_error_t e = api.hipRuntimeGetVersion(&version);
    if (e != DV_HIP_SUCCESS) {
        hip_reason_add("%s: hipRuntimeGetVersion failed (%d)", name, (int)e);
        dv__lib_close(lib);
        return 0;
    }
    dv__hip = api;
    hip_lib = lib;
    hip_version = version;
    snprintf(hip_lib_name, sizeof(hip_lib_name), "%s", name);
    return 1;
}

static void hip_load_impl(void) {
    const char *override = dv__getenv("DYNVRAM_HIP_LIBRARY");
    int ok = 0;
    if (override && override[0]) {
        ok = hip_try(override);
    } else {
        const char *const *names = dv__hip_os_library_names();
        for (size_t i = 0; names[i] && !ok; i++) {
            ok = hip_try(names[i]);
        }
    }
    if (!ok) {
        hip_load_result = DV_ERROR_BACKEND_UNAVAILABLE;
        return;
    }
    snprintf(hip_load_reason, sizeof(hip_load_reason), "%s (HIP %d.%d)",
             hip_lib_name, DV_HIP_VERSION_MAJOR(hip_version),
             DV_HIP_VERSION_MINOR(hip_version));
    hip_load_result = DV_OK;
    dv__log(DV_LOG_INFO, "hip: loaded %s, runtime version %d, workarounds 0x%x",
            hip_lib_name, hip_version, (unsigned)dv__hip_workarounds());
}

dv_result_t dv__hip_load(char *reason, size_t reason_len) {
    dv__once(&hip_load_once, hip_load_impl);
    if (reason && reason_len) {
        snprintf(reason, reason_len, "%s", hip_load_reason);
    }
    return hip_load_result;
}

const char *dv__hip_library(void) { return hip_lib_name; }

int dv__hip_runtime_version(void) { return hip_version; }

int dv__hip_prop_is_v6(void) { return DV_HIP_VERSION_MAJOR(hip_version) >= 6; }

/* ---- workaround switches ------------------------------------------------- */

static dv__once_t hip_wa_once = DV__ONCE_INIT;
static uint32_t hip_wa_bits;

static uint32_t hip_wa_bit(const char *name, size_t len) {
    if (len == 9 && strncmp(name, "reprotect", len) == 0) {
        return DV__HIP_WA_REPROTECT;
    }
    if (len == 8 && strncmp(name, "reuse_va", len) == 0) {
        return DV__HIP_WA_REUSE_VA;
    }
    return 0;
}

static void hip_wa_impl(void) {
    uint32_t bits = dv__hip_os_default_workarounds();
    const char *env = dv__getenv("DYNVRAM_HIP_WORKAROUNDS");
    if (env && strcmp(env, "all") == 0) {
        bits = DV__HIP_WA_REPROTECT | DV__HIP_WA_REUSE_VA;
    } else if (env && strcmp(env, "none") == 0) {
        bits = 0;
    } else if (env && env[0] && strcmp(env, "default") != 0) {
        const char *p = env;
        while (*p) {
            int off = (*p == '-');
            p += off;
            size_t len = strcspn(p, ",");
            uint32_t bit = hip_wa_bit(p, len);
            if (!bit) {
                dv__log(DV_LOG_WARNING,
                        "hip: DYNVRAM_HIP_WORKAROUNDS: unknown entry '%.*s'",
                        (int)len, p);
            }
            bits = off ? (bits & ~bit) : (bits | bit);
            p += len;
            p += (*p == ',');
        }
    }
    hip_wa_bits = bits;
}

uint32_t dv__hip_workarounds(void) {
    dv__once(&hip_wa_once, hip_wa_impl);
    return hip_wa_bits;
}

/* ---- errors ---------------------------------------------------------------- */

const char *dv__hip_error_name(dv_hip_error_t err) {
    const char *name = NULL;
    if (dv__hip.hipGetErrorName) {
        name = dv__hip.hipGetErrorName(err);
    }
    return name ? name : "hipError?";
}

dv_result_t dv__hip_fail_as(dv_result_t r, dv_hip_error_t err, const char *call,
                            const char *detail) {
    return dv__native_fail(r, (int64_t)err, "hip: %s(%s): %s (%d)", call,
                           detail ? detail : "", dv__hip_error_name(err),
                           (int)err);
}

dv_result_t dv__hip_fail(dv_hip_error_t err, const char *call, const char *fmt,
                         ...) {
    char detail[200] = "";
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(detail, sizeof(detail), fmt, ap);
        va_end(ap);
    }
    /* Eviction depends on this distinction: only the driver's own
     * out-of-memory code may read as out of device memory. */
    dv_result_t r = (err == DV_HIP_ERROR_OUT_OF_MEMORY)
                        ? DV_ERROR_OUT_OF_DEVICE_MEMORY
                        : DV_ERROR_BACKEND;
    return dv__hip_fail_as(r, err, call, detail);
}
