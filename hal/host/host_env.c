/*
 * host_env.c - settings of the host backends that come from the environment
 * (see host_env.h).
 * SPDX-License-Identifier: Apache-2.0
 */
#include "host_env.h"

#include <stdio.h>
#include <string.h>

#include "base/native.h"
#include "base/options.h"
#include "base/os.h"

int dv__host_env_devices(char *why, size_t len) {
    const char *s = dv__getenv("DYNVRAM_HOST_DEVICES");
    if (!s || !*s) {
        return DV__HOST_DEFAULT_DEVICES;
    }
    /* Digits only: no sign, no spaces, no suffix, so "-1" or "4x" never
     * turn into some other count. */
    int n = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || n > DV__HOST_MAX_DEVICES) {
            n = -1;
            break;
        }
        n = n * 10 + (*p - '0');
    }
    if (n < 1 || n > DV__HOST_MAX_DEVICES) {
        if (why && len) {
            snprintf(why, len,
                     "DYNVRAM_HOST_DEVICES='%.32s' is not a whole number 1..%d",
                     s, DV__HOST_MAX_DEVICES);
        }
        return 0;
    }
    return n;
}

dv_result_t dv__host_env_probe(int *count, char *reason, size_t len) {
    char why[96] = "";
    int n = dv__host_env_devices(why, sizeof(why));
    *count = n;
    if (reason && len) {
        const char *s = dv__getenv("DYNVRAM_HOST_DEVICES");
        if (!n) {
            snprintf(reason, len, "%s", why);
        } else if (s && *s) {
            snprintf(
                reason, len,
                "simulated on host virtual memory (DYNVRAM_HOST_DEVICES=%d)",
                n);
        } else {
            snprintf(reason, len,
                     "simulated on host virtual memory (%d devices by default; "
                     "DYNVRAM_HOST_DEVICES=1..%d sets how many)",
                     n, DV__HOST_MAX_DEVICES);
        }
    }
    return n ? DV_OK : DV_ERROR_BACKEND_UNAVAILABLE;
}

dv_result_t dv__host_env_check_ordinal(int ordinal) {
    char why[96] = "";
    int n = dv__host_env_devices(why, sizeof(why));
    if (!n) {
        return dv__native_fail(DV_ERROR_BACKEND_UNAVAILABLE, 0,
                               "host backend: %s", why);
    }
    if (ordinal < 0 || ordinal >= n) {
        return dv__native_fail(DV_ERROR_DEVICE_NOT_FOUND, 0,
                               "host backend: ordinal %d of %d "
                               "(DYNVRAM_HOST_DEVICES sets how many)",
                               ordinal, n);
    }
    return DV_OK;
}

#define HOST_DEFAULT_CAPACITY (4ull << 30)

dv_result_t dv__host_env_capacity(const char *options, uint64_t *capacity) {
    uint64_t cap = 0;
    const char *cur = options;
    char key[32], val[64];
    int k;
    while ((k = dv__kv_next(&cur, key, sizeof(key), val, sizeof(val))) > 0) {
        if (strcmp(key, "capacity") != 0) {
            return dv__native_fail(DV_ERROR_INVALID_ARGUMENT, 0,
                                   "host backend: unknown option '%s' (known: "
                                   "capacity)",
                                   key);
        }
        if (dv__parse_size(val, &cap) != 0 || cap == 0) {
            return dv__native_fail(DV_ERROR_INVALID_ARGUMENT, 0,
                                   "host backend: capacity '%s' is not a size "
                                   "(e.g. 6G, 512M)",
                                   val);
        }
    }
    if (k < 0) {
        return dv__native_fail(DV_ERROR_INVALID_ARGUMENT, 0,
                               "host backend: malformed options '%s'", cur);
    }
    if (!cap) {
        const char *env = dv__getenv("DYNVRAM_HOST_CAPACITY");
        if (env && *env && (dv__parse_size(env, &cap) != 0 || cap == 0)) {
            return dv__native_fail(DV_ERROR_INVALID_ARGUMENT, 0,
                                   "host backend: DYNVRAM_HOST_CAPACITY='%s' "
                                   "is not a size (e.g. 6G, 512M)",
                                   env);
        }
    }
    *capacity = cap ? cap : HOST_DEFAULT_CAPACITY;
    return DV_OK;
}
