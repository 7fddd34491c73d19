/*
 * hal_entry_host.c - the host backend packaged like an out-of-tree backend:
 * a shared library whose dv_hal_entry() returns its ops. Loaded by path as
 * options.backend (tests/core/test_options.c) and by the conformance runner.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "dynvram_hal.h"

#if defined(_WIN32)
#define ENTRY_API __declspec(dllexport)
#else
#define ENTRY_API __attribute__((visibility("default")))
#endif

ENTRY_API const dv_hal_ops_t *dv_hal_entry(void);
ENTRY_API const dv_hal_ops_t *dv_hal_entry(void) { return dv_hal_host(); }
