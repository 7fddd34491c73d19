/*
 * cuda_ctx.c - what every file of the CUDA backend shares: the driver's
 * entry points (loaded once per process), translating a failed call into a
 * result with its native record, and binding a device's primary context
 * around driver calls. The bottom of the backend: it calls no other file
 * of it but cuda_load.c.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdarg.h>
#include <stdio.h>

#include "base/error.h"
#include "base/native.h"
#include "base/os.h"
#include "cuda_internal.h"

dv__cu_api_t dv__cu;

static dv__dynlib_t cu_dl = DV__DYNLIB_INIT;

dv_result_t dv__cu_loaded(void) { return dv__cu_load_once(&cu_dl, &dv__cu); }

/* The native record reads "<call>: CUDA_ERROR_x (n): text". */
dv_result_t dv__cu_fail_as(dv_cu_result rc, dv_result_t oom, const char *fmt,
                           ...) {
    char what[128];
    char desc[160];
    dv_result_t r = DV_ERROR_BACKEND;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    dv__cu_describe(&dv__cu, rc, desc, sizeof(desc));
    if (rc == DV_CU_ERROR_OUT_OF_MEMORY) {
        r = oom;
    } else if (rc == DV_CU_ERROR_INVALID_VALUE) {
        r = DV_ERROR_INVALID_ARGUMENT;
    }
    return dv__native_fail(r, rc, "%s: %s", what, desc);
}

/* Bind the device's context for the calls that follow; dv__cu_leave unbinds
 * it, restoring whatever the calling thread had current before. When the
 * caller already has this device's context current (the usual case: a
 * framework thread working on that GPU) nothing is pushed: a push/pop pair
 * costs microseconds on some systems, more than the bookkeeping around a
 * map. HAL ops never nest, so one thread-local flag per thread suffices. */
static DV__THREAD_LOCAL int cu_pushed;

dv_result_t dv__cu_enter(const dv__cu_dev_t *d) {
    dv_cu_context cur = NULL;
    if (dv__cu.cuCtxGetCurrent(&cur) == DV_CU_SUCCESS && cur == d->ctx) {
        cu_pushed = 0;
        return DV_OK;
    }
    dv_cu_result rc = dv__cu.cuCtxPushCurrent(d->ctx);
    if (rc != DV_CU_SUCCESS) {
        return dv__cu_fail_as(rc, DV_ERROR_BACKEND,
                              "cuCtxPushCurrent(device %d)", d->ordinal);
    }
    cu_pushed = 1;
    return DV_OK;
}

void dv__cu_leave(const dv__cu_dev_t *d) {
    if (!cu_pushed) {
        return;
    }
    cu_pushed = 0;
    dv_cu_context popped = NULL;
    dv_cu_result rc = dv__cu.cuCtxPopCurrent(&popped);
    if (rc != DV_CU_SUCCESS || popped != d->ctx) {
        /* Not fatal for the op that ran, but the thread's context stack is
         * no longer what the caller left: say so loudly. */
        dv__log(DV_LOG_ERROR,
                "cuda: cuCtxPopCurrent on device %d returned %d (popped %p, "
                "expected %p)",
                d->ordinal, rc, (void *)popped, (void *)d->ctx);
    }
}

const char *dv__cu_load_reason(void) { return cu_dl.reason; }
