/*
 * native.h - a backend's record of why its last op failed, kept per thread.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * The HAL contract (dynvram_hal.h) has a backend explain each failure
 * through last_native_error: the driver's own code (0 when the failure has
 * none, e.g. a bad argument caught by the backend) and a text naming the
 * call. Every in-tree backend keeps that record here, one per thread, and
 * sets it on every failure path, so the core's message for a failed op
 * always carries that op's reason and never an earlier one.
 *
 * Contract:
 *  - dv__native_fail(r, code, fmt, ...): records (code, text) for the calling
 *    thread and returns r, so backend error paths read
 *    `return dv__native_fail(DV_ERROR_BACKEND, rc, "cuMemMap(%p)", p);`.
 *  - dv__native_get: the record, as dv_hal_ops_t.last_native_error wants it
 *    (code and text may be NULL / 0-length).
 */
#ifndef DV_CORE_NATIVE_H
#define DV_CORE_NATIVE_H

#include <stddef.h>
#include <stdint.h>

#include "dynvram.h"
#include "base/error.h"

dv_result_t dv__native_fail(dv_result_t r, int64_t code, const char *fmt, ...)
    DV__PRINTF(3, 4);
void dv__native_get(int64_t *code, char *text, size_t len);

#endif /* DV_CORE_NATIVE_H */
