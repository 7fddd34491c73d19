/*
 * native.c - the per-thread native error record of the backends (native.h).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdarg.h>
#include <stdio.h>

#include "base/native.h"
#include "base/os.h"

#define NATIVE_TEXT 384

static DV__THREAD_LOCAL int64_t native_code;
static DV__THREAD_LOCAL char native_text[NATIVE_TEXT];

dv_result_t dv__native_fail(dv_result_t r, int64_t code, const char *fmt, ...) {
    /* Format into a local: an argument may point into the record itself. */
    char text[NATIVE_TEXT];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    native_code = code;
    snprintf(native_text, sizeof(native_text), "%s", text);
    return r;
}

void dv__native_get(int64_t *code, char *text, size_t len) {
    if (code) {
        *code = native_code;
    }
    if (text && len) {
        snprintf(text, len, "%s", native_text);
    }
}
