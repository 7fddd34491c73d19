/*
 * hip_test.h - helpers shared by the HIP backend tests (hip_test.c).
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef DV_TESTS_HIP_HIP_TEST_H
#define DV_TESTS_HIP_HIP_TEST_H

#include <criterion/criterion.h>

#include "dynvram.h"

/* The residency unit of the tests: a multiple of every simulated
 * granularity (4 KiB to 2 MiB). */
#define HT_PAGE (2ull << 20)

#define HT_OK(call)                                                            \
    do {                                                                       \
        dv_result_t ht_r_ = (call);                                            \
        cr_assert_eq(ht_r_, DV_OK, "%s -> %s (%s)", #call,                     \
                     dv_result_name(ht_r_), dv_last_error());                  \
    } while (0)

/* Point the backend at the simulator, with these simulator defects and
 * backend workarounds (NULL: unset, i.e. none / the platform defaults). */
void ht_sim_env(const char *defects, const char *workarounds);
/* Probe the hip backend through the public API. */
void ht_probe(dv_backend_info_t *info);
/* Open hip device `ordinal` with HT_PAGE pages and the given pool limit;
 * asserts success. */
dv_device_t *ht_open(int ordinal, uint64_t pool_limit);
/* Fault a VBAR of `pages` pages, fill it, read it back, evict it all, fault
 * again: asserts the data and the generations. */
void ht_roundtrip(dv_device_t *dev, uint64_t pages);

#endif
