/*
 * hip_lib.c - loading the HIP runtime at run time, translating its errors,
 * and the workaround switches.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * The runtime is opened once per process, by the first probe or init,
 * through base/dynlib.h. Each candidate name is tried in order (or only
 * DYNVRAM_HIP_LIBRARY when set); a candidate that loads but lacks a
 * required symbol (ROCm 5.2, say, which has no VMM entry points) is closed
 * and the next one is tried, so the reason for an unavailable backend lists
 * what happened to every name.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/dynlib.h"
#include "base/error.h"
#include "base/native.h"
#include "base/os.h"
#include "hip_internal.h"

dv__hip_api_t dv__hip;

static dv__dynlib_t hip_dl = DV__DYNLIB_INIT;
static int hip_version;

static const dv__dynlib_sym_t hip_syms[] = {
#define DV__HIP_SYM(sym, type, req) DV__DYNLIB_SYM(dv__hip_api_t, sym, req),
    DV_HIP_SYMBOLS(DV__HIP_SYM)
#undef DV__HIP_SYM
};

/* The runtime answers its version (a library that merely exports the names
 * would not). Runs under the load's lock, once. */
static int hip_finish(const dv__dynlib_spec_t *spec, const char *name,
                      void *lib, char *why, size_t len) {
    (void)spec;
    (void)lib;
    int version = 0;
    dv_hip_error_t e = dv__hip.hipRuntimeGetVersion(&version);
    if (e != DV_HIP_SUCCESS) {
        snprintf(why, len, "%s: hipRuntimeGetVersion failed (%d)", name,
                 (int)e);
        return -1;
    }
    hip_version = version;
    snprintf(why, len, "%s (HIP %d.%d)", name, DV_HIP_VERSION_MAJOR(version),
             DV_HIP_VERSION_MINOR(version));
    dv__log(DV_LOG_INFO, "hip: loaded %s, runtime version %d, workarounds 0x%x",
            name, version, (unsigned)dv__hip_workarounds());
    return 0;
}

dv_result_t dv__hip_load(char *reason, size_t reason_len) {
    if (!dv__dynlib_done(&hip_dl)) {
        /* A candidate that loads but lacks a required symbol (ROCm 5.2,
         * which has no VMM entry points) is closed and the next one tried. */
        dv__dynlib_spec_t spec = {
            .tag = "hip",
            .env = "DYNVRAM_HIP_LIBRARY",
            .names = dv__hip_os_library_names(),
            .syms = hip_syms,
            .sym_count = sizeof(hip_syms) / sizeof(hip_syms[0]),
            .table = &dv__hip,
            .table_size = sizeof(dv__hip),
            .hint = "virtual memory management needs a newer ROCm",
            .finish = hip_finish,
        };
        dv__dynlib_load(&hip_dl, &spec);
    }
    if (reason && reason_len) {
        snprintf(reason, reason_len, "%s", hip_dl.reason);
    }
    return hip_dl.result;
}

const char *dv__hip_library(void) {
    return hip_dl.result == DV_OK ? hip_dl.name : "";
}

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
