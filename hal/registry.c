/*
 * registry.c - the composition root: the built-in backends in probe order,
 * stand-ins for the ones this build left out, out-of-tree backends loaded
 * from a shared library, and the public calls that choose among them
 * (dv_device_open, dv_hal_by_name, dv_backend_count / probe).
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * The core knows nothing of any backend: it opens a device on whatever ops
 * it is given (dv_device_open_hal). This file is the only one that names
 * the backends, and it uses the core only through the public API.
 *
 * A backend compiled out still exports its getter: it returns ops whose
 * probe reports DV_ERROR_BACKEND_UNAVAILABLE, so the exported symbol list
 * never depends on build options.
 *
 * An out-of-tree backend is a shared library exporting
 *     const dv_hal_ops_t *dv_hal_entry(void);
 * named by path as the backend (options.backend or DYNVRAM_BACKEND). It is
 * loaded once per path and never unloaded: devices keep pointers into it.
 */
#include "dynvram_hal.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "base/error.h"
#include "base/native.h"
#include "base/os.h"

#define DV__STUB_BACKEND(tag)                                                  \
    static dv_result_t tag##_stub_probe(int *count, char *reason,              \
                                        size_t len) {                          \
        if (count) {                                                           \
            *count = 0;                                                        \
        }                                                                      \
        if (reason && len) {                                                   \
            snprintf(reason, len, "not compiled into this build");             \
        }                                                                      \
        return DV_ERROR_BACKEND_UNAVAILABLE;                                   \
    }                                                                          \
    static const dv_hal_ops_t tag##_stub_ops = {                               \
        .version = DV_HAL_VERSION,                                             \
        .name = #tag,                                                          \
        .probe = tag##_stub_probe,                                             \
    };                                                                         \
    const dv_hal_ops_t *dv_hal_##tag(void) { return &tag##_stub_ops; }

#if !defined(DV_HAVE_CUDA)
DV__STUB_BACKEND(cuda)
#endif
#if !defined(DV_HAVE_HIP)
DV__STUB_BACKEND(hip)
#endif
#if !defined(DV_HAVE_LEVELZERO)
DV__STUB_BACKEND(levelzero)
#endif

typedef const dv_hal_ops_t *(*dv__hal_getter)(void);

static const dv__hal_getter probe_order[] = {
    dv_hal_cuda,
    dv_hal_hip,
    dv_hal_levelzero,
    dv_hal_host,
};

#define N_BACKENDS ((int)(sizeof(probe_order) / sizeof(probe_order[0])))

static const dv_hal_ops_t *hal_at(int index) {
    return index >= 0 && index < N_BACKENDS ? probe_order[index]() : NULL;
}

const dv_hal_ops_t *dv_hal_by_name(const char *name) {
    if (!name) {
        return NULL;
    }
    for (int i = 0; i < N_BACKENDS; i++) {
        const dv_hal_ops_t *ops = hal_at(i);
        if (ops && ops->name && strcmp(ops->name, name) == 0) {
            return ops;
        }
    }
    return NULL;
}

/* ---- out-of-tree backends ------------------------------------------------ */

/* A backend name that is a library path rather than a built-in name. */
static int is_library_path(const char *name) {
    size_t n = strlen(name);
    return strchr(name, '/') || strchr(name, '\\') ||
           (n > 3 && strcmp(name + n - 3, ".so") == 0) ||
           (n > 4 && strcmp(name + n - 4, ".dll") == 0) ||
           (n > 6 && strcmp(name + n - 6, ".dylib") == 0);
}

#define MAX_LIBRARIES 16

static dv__mutex_t lib_lock = DV__MUTEX_INIT;
static struct {
    char path[512];
    const dv_hal_ops_t *ops;
} libs[MAX_LIBRARIES];
static int lib_count;

typedef const dv_hal_ops_t *(*dv__hal_entry_fn)(void);

/* The ops of the library at `path`, loading it the first time. */
static dv_result_t library_ops(const char *path, const dv_hal_ops_t **out) {
    dv_result_t r = DV_OK;
    dv__mutex_lock(&lib_lock);
    for (int i = 0; i < lib_count; i++) {
        if (strcmp(libs[i].path, path) == 0) {
            *out = libs[i].ops;
            goto done;
        }
    }
    if (strlen(path) >= sizeof(libs[0].path) || lib_count == MAX_LIBRARIES) {
        r = dv__fail(DV_ERROR_INVALID_ARGUMENT,
                     "dv_device_open: backend library path too long, or %d "
                     "libraries loaded already",
                     MAX_LIBRARIES);
        goto done;
    }
    char why[256] = "";
    void *lib = dv__lib_open(path, why, sizeof(why));
    if (!lib) {
        r = dv__fail(DV_ERROR_BACKEND_UNAVAILABLE,
                     "dv_device_open: cannot load backend library %s: %s", path,
                     why);
        goto done;
    }
    dv__hal_entry_fn entry = NULL;
    void *sym = dv__lib_sym(lib, "dv_hal_entry");
    memcpy(&entry, &sym, sizeof(entry)); /* object to function pointer */
    const dv_hal_ops_t *ops = entry ? entry() : NULL;
    if (!ops) {
        dv__lib_close(lib);
        r = dv__fail(DV_ERROR_BACKEND_UNAVAILABLE,
                     "dv_device_open: %s has no dv_hal_entry(), or it "
                     "returned NULL",
                     path);
        goto done;
    }
    snprintf(libs[lib_count].path, sizeof(libs[0].path), "%s", path);
    libs[lib_count++].ops = ops;
    *out = ops;
done:
    dv__mutex_unlock(&lib_lock);
    return r;
}

/* ---- choosing a backend ---------------------------------------------------- */

dv_result_t dv_device_open(const dv_device_options_t *opts, dv_device_t **out) {
    if (!out) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "dv_device_open: out is NULL");
    }
    *out = NULL;
    dv_device_options_t o;
    dv_device_options_init(&o);
    if (opts && opts->size < offsetof(dv_device_options_t, ordinal) + sizeof(int)) {
        /* Not initialised: dv_device_open_hal says so. */
        return dv_device_open_hal(dv_hal_host(), opts, out);
    }
    if (opts) {
        o.backend = opts->backend;
        o.ordinal = opts->ordinal;
    }
    const char *name = o.backend;
    if (!name || !*name) {
        name = dv__getenv("DYNVRAM_BACKEND");
    }
    if (name && *name && strcmp(name, "auto") != 0) {
        const dv_hal_ops_t *ops = dv_hal_by_name(name);
        if (!ops && is_library_path(name)) {
            dv_result_t r = library_ops(name, &ops);
            if (r != DV_OK) {
                return r;
            }
        }
        if (!ops) {
            return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                            "dv_device_open: unknown backend '%s' (known: "
                            "cuda, hip, levelzero, host, or the path of a "
                            "backend library)",
                            name);
        }
        return dv_device_open_hal(ops, opts, out);
    }
    /* Automatic: the first backend whose probe finds the device. */
    char why[512] = "";
    for (int i = 0; i < N_BACKENDS; i++) {
        const dv_hal_ops_t *ops = hal_at(i);
        int count = 0;
        char reason[128] = "";
        if (ops->probe(&count, reason, sizeof(reason)) != DV_OK ||
            count <= o.ordinal) {
            size_t n = strlen(why);
            snprintf(why + n, sizeof(why) - n, "%s%s: %s", n ? "; " : "",
                     ops->name, reason[0] ? reason : "no such device");
            continue;
        }
        dv_result_t r = dv_device_open_hal(ops, opts, out);
        if (r == DV_OK || r == DV_ERROR_INVALID_ARGUMENT) {
            return r; /* bad options: no other backend will take them */
        }
    }
    return dv__fail(DV_ERROR_BACKEND_UNAVAILABLE,
                    "dv_device_open: no backend could open device %d (%s)",
                    o.ordinal, why);
}

int dv_backend_count(void) { return N_BACKENDS; }

dv_result_t dv_backend_probe(int index, dv_backend_info_t *info) {
    const dv_hal_ops_t *ops = hal_at(index);
    if (!ops || !info) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "dv_backend_probe: index %d out of [0, %d) or info "
                        "NULL",
                        index, N_BACKENDS);
    }
    memset(info, 0, sizeof(*info));
    snprintf(info->name, sizeof(info->name), "%s", ops->name);
    int count = 0;
    dv_result_t r = ops->probe(&count, info->reason, sizeof(info->reason));
    info->available = r == DV_OK && count > 0;
    info->device_count = count;
    return dv__ok();
}
