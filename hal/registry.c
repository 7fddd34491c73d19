/*
 * registry.c - the built-in backends, in probe order, and stand-ins for the
 * ones this build left out.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * A backend compiled out still exports its getter: it returns ops whose
 * probe and init report DV_ERROR_BACKEND_UNAVAILABLE, so the exported symbol
 * list never depends on build options.
 */
#include "dynvram_hal.h"

#include <string.h>

#include "core/native.h"
#include "hal/registry.h"

#define DV__STUB_BACKEND(tag)                                                  \
    static dv_result_t tag##_stub_probe(int *count, char *reason,              \
                                        size_t len) {                          \
        if (count) {                                                           \
            *count = 0;                                                        \
        }                                                                      \
        if (reason && len) {                                                   \
            strncpy(reason, "not compiled into this build", len - 1);          \
            reason[len - 1] = '\0';                                            \
        }                                                                      \
        return DV_ERROR_BACKEND_UNAVAILABLE;                                   \
    }                                                                          \
    static dv_result_t tag##_stub_init(const dv_hal_init_args_t *a, void **c) { \
        return dv__native_fail(DV_ERROR_BACKEND_UNAVAILABLE, 0,                \
                               "backend '" #tag "' is not compiled into "     \
                               "this build");                                 \
    }                                                                          \
    static const dv_hal_ops_t tag##_stub_ops = {                               \
        .version = DV_HAL_VERSION,                                             \
        .name = #tag,                                                          \
        .probe = tag##_stub_probe,                                             \
        .init = tag##_stub_init,                                               \
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

int dv__hal_count(void) {
    return (int)(sizeof(probe_order) / sizeof(probe_order[0]));
}

const dv_hal_ops_t *dv__hal_at(int index) {
    if (index < 0 || index >= dv__hal_count()) {
        return NULL;
    }
    return probe_order[index]();
}

const dv_hal_ops_t *dv_hal_by_name(const char *name) {
    if (!name) {
        return NULL;
    }
    for (int i = 0; i < dv__hal_count(); i++) {
        const dv_hal_ops_t *ops = dv__hal_at(i);
        if (ops && ops->name && strcmp(ops->name, name) == 0) {
            return ops;
        }
    }
    return NULL;
}
