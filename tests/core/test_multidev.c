/*
 * test_multidev.c - two devices in one process are independent.
 * (Placeholder filled in by the multi-device work; see issue 6.)
 * SPDX-License-Identifier: Apache-2.0
 */
#include "testdev.h"

Test(multidev, two_devices_open_independently) {
    dv_device_options_t o;
    td_options(&o, 4);
    dv_device_t *d0 = td_open_opts(&o);
    o.ordinal = 1;
    dv_device_t *d1 = NULL;
    if (dv_device_open(&o, &d1) != DV_OK) {
        TD_OK(dv_device_close(d0));
        cr_skip_test("backend %s has one device", td_backend());
    }
    dv_vbar_t *v0 = NULL, *v1 = NULL;
    TD_OK(dv_vbar_create(d0, 4 * TD_PAGE, &v0));
    TD_OK(dv_vbar_create(d1, 4 * TD_PAGE, &v1));
    uint64_t g;
    TD_OK(dv_fault(d0, v0, 0, 4 * TD_PAGE, &g));
    cr_assert_eq(td_stats(d1).resident_bytes, 0);
    TD_OK(dv_unpin(d0, v0, 0, 4 * TD_PAGE, NULL));
    TD_OK(dv_vbar_destroy(d0, v0));
    TD_OK(dv_vbar_destroy(d1, v1));
    TD_OK(dv_device_close(d0));
    TD_OK(dv_device_close(d1));
}
