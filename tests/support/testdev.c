/*
 * testdev.c - see testdev.h.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "testdev.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *td_backend(void) {
    const char *b = getenv("DYNVRAM_BACKEND");
    return b && *b ? b : "host";
}

const dv_hal_ops_t *td_hal(void) { return dv_hal_by_name(td_backend()); }

void td_options(dv_device_options_t *o, uint64_t limit_pages) {
    dv_device_options_init(o);
    o->backend = td_backend();
    o->page_size = TD_PAGE;
    o->vram_limit = limit_pages * TD_PAGE;
    o->backend_options = strcmp(o->backend, "host") == 0 ? "capacity=1G" : NULL;
}

dv_device_t *td_open_opts(const dv_device_options_t *o) {
    dv_device_t *dev = NULL;
    dv_result_t r = dv_device_open(o, &dev);
    cr_assert_eq(r, DV_OK, "open %s: %s", td_backend(), dv_last_error());
    return dev;
}

dv_device_t *td_open(uint64_t limit_pages) {
    dv_device_options_t o;
    td_options(&o, limit_pages);
    return td_open_opts(&o);
}

void td_check(dv_device_t *dev) {
    dv_result_t r = dv_device_check(dev);
    cr_assert_eq(r, DV_OK, "invariants: %s", dv_last_error());
}

uint64_t td_resident_pages(dv_device_t *dev, dv_vbar_t *v) {
    dv_vbar_info_t info;
    TD_OK(dv_vbar_get_info(dev, v, &info));
    return info.resident_bytes / info.page_size;
}

uint8_t td_page_flags(dv_device_t *dev, dv_vbar_t *v, uint64_t i) {
    uint8_t f = 0xff;
    TD_OK(dv_vbar_residency(dev, v, i, 1, &f));
    return f;
}

uint64_t td_watermark(dv_device_t *dev, dv_vbar_t *v) {
    dv_vbar_info_t info;
    TD_OK(dv_vbar_get_info(dev, v, &info));
    return info.watermark;
}

dv_device_stats_t td_stats(dv_device_t *dev) {
    dv_device_stats_t st;
    TD_OK(dv_device_get_stats(dev, &st));
    return st;
}

/* Before any test runs: skip the whole binary (exit 77, CTest's "skipped")
 * when the backend under test is unavailable on this machine. */
ReportHook(PRE_ALL)(struct criterion_test_set *set) {
    (void)set;
    const dv_hal_ops_t *ops = td_hal();
    if (!ops) {
        fprintf(stderr, "SKIP: unknown backend '%s'\n", td_backend());
        exit(77);
    }
    int count = 0;
    char reason[256] = "";
    if (ops->probe(&count, reason, sizeof(reason)) != DV_OK || count < 1) {
        fprintf(stderr, "SKIP: backend %s unavailable: %s\n", td_backend(),
                reason);
        exit(77);
    }
}
