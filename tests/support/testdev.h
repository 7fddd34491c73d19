/*
 * testdev.h - opening test devices on the backend under test.
 * SPDX-License-Identifier: Apache-2.0
 *
 * The generic suites run on whatever backend DYNVRAM_BACKEND names (default
 * host): a built-in backend by name, or an out-of-tree one by the path of
 * its library (which exports dv_hal_entry(); the conformance runner, `dynvram
 * conformance`, runs the suites so). Their main() (in testdev.c) probes
 * that backend first and exits 77 (CTest's "skipped") with the reason when
 * it is unavailable.
 *
 * Environment read here and by the suites:
 *   DYNVRAM_BACKEND          the backend under test (name or library path)
 *   DV_TEST_BACKEND_OPTIONS  dv_device_options_t.backend_options for every
 *                            device the suites open (default: "capacity=1G"
 *                            on the host backend, none elsewhere)
 *   DV_TEST_REAL_DRIVER      1: the backend drives a real GPU driver, which
 *                            may reuse a destroyed stream's address and may
 *                            not survive being handed junk; 0: it does not
 *                            (default: guessed for the built-in backends,
 *                            0 for others)
 */
#ifndef DV_TEST_TESTDEV_H
#define DV_TEST_TESTDEV_H

#include <criterion/criterion.h>
#include <criterion/hooks.h>

#include "dynvram.h"
#include "dynvram_hal.h"

/* Page size used by the suites: 2 MiB is a multiple of every backend's
 * granularity seen (CUDA 2 MiB, HIP 4-64 KiB, Level Zero 64 KiB-2 MiB). */
#define TD_PAGE (2ull << 20)

/* The backend under test as dv_device_open takes it: "host" unless
 * DYNVRAM_BACKEND says otherwise (a name, or a library path). */
const char *td_backend(void);
/* Its ops (a library is loaded once and its dv_hal_entry() asked), or NULL
 * when there is no such backend; td_hal_problem() then says why. */
const dv_hal_ops_t *td_hal(void);
const char *td_hal_problem(void);
/* Its name as the backend reports it (ops->name: "host", "cuda", ...). */
const char *td_backend_name(void);

/* The backend_options the suites use (NULL: none). */
const char *td_backend_options(void);

/* Options for the backend under test: page TD_PAGE, vram_limit of
 * `limit_pages` pages (0 = none), default pool. */
void td_options(dv_device_options_t *o, uint64_t limit_pages);
/* Open with td_options; asserts success. */
dv_device_t *td_open(uint64_t limit_pages);
dv_device_t *td_open_opts(const dv_device_options_t *o);
/* Assert the device's invariants hold. */
void td_check(dv_device_t *dev);
/* Resident page count of a VBAR. */
uint64_t td_resident_pages(dv_device_t *dev, dv_vbar_t *v);
/* Residency flags of page i. */
uint8_t td_page_flags(dv_device_t *dev, dv_vbar_t *v, uint64_t i);
uint64_t td_watermark(dv_device_t *dev, dv_vbar_t *v);
dv_device_stats_t td_stats(dv_device_t *dev);

#define TD_OK(call)                                                            \
    do {                                                                       \
        dv_result_t td_r_ = (call);                                            \
        cr_assert_eq(td_r_, DV_OK, "%s -> %s (%s)", #call,                     \
                     dv_result_name(td_r_), dv_last_error());                  \
    } while (0)

#define TD_IS(call, want)                                                      \
    do {                                                                       \
        dv_result_t td_r_ = (call);                                            \
        cr_assert_eq(td_r_, (want), "%s -> %s, expected %s (%s)", #call,       \
                     dv_result_name(td_r_), dv_result_name(want),              \
                     dv_last_error());                                         \
    } while (0)

#endif
