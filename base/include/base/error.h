/*
 * error.h - thread-local last-error messages and logging, for the core and
 * the backends.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * dv__fail(r, fmt, ...) records a message for dv_last_error() on the calling
 * thread, logs it at debug level and returns r, so error paths read
 * `return dv__fail(DV_ERROR_INVALID_ARGUMENT, "dv_fault: size is 0");`.
 * dv__ok() clears the message and returns DV_OK; public entry points end
 * with it on success.
 */
#ifndef DV_CORE_ERROR_H
#define DV_CORE_ERROR_H

#include "dynvram.h"

#if defined(__MINGW32__)
/* mingw's "printf" archetype is msvcrt's (no %zu, %llu); the build defines
 * __USE_MINGW_ANSI_STDIO so the C99 formats are what vsnprintf implements. */
#define DV__PRINTF(a, b) __attribute__((format(gnu_printf, a, b)))
#elif defined(__GNUC__)
#define DV__PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define DV__PRINTF(a, b)
#endif

dv_result_t dv__fail(dv_result_t r, const char *fmt, ...) DV__PRINTF(2, 3);
dv_result_t dv__ok(void);
/* A non-error outcome (DV_OK, DV_OFFLOADED, DV_NOT_READY): clears the
 * message like dv__ok and returns r. */
dv_result_t dv__outcome(dv_result_t r);

void dv__log(dv_log_level_t level, const char *fmt, ...) DV__PRINTF(2, 3);
int dv__log_enabled(dv_log_level_t level);

#endif /* DV_CORE_ERROR_H */
