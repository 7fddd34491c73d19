/*
 * hal_text.h - the reason a HAL op gave for its last failure, for tests
 * that call backend ops directly (the core turns it into dv_last_error()
 * when an op fails under a public call).
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef DV_TEST_HAL_TEXT_H
#define DV_TEST_HAL_TEXT_H

#include <stdint.h>

#include "dynvram_hal.h"

/* The text of ops->last_native_error on this thread ("" without one). */
static inline const char *td_hal_text(const dv_hal_ops_t *ops) {
    static _Thread_local char text[512];
    int64_t code = 0;
    text[0] = '\0';
    if (ops && ops->last_native_error) {
        ops->last_native_error(&code, text, sizeof(text));
    }
    return text;
}

#endif
