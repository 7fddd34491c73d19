/*
 * test_options.c - the options struct can grow, backend options reach only
 * their backend, and a backend can be a shared library named by path.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "testdev.h"

/* The options as a program built against an older header had them: the
 * same fields up to pool_limit, no backend_options. */
typedef struct old_options {
    uint32_t size;
    uint32_t fence_interval;
    const char *backend;
    int ordinal;
    uint32_t watermark_recovery;
    uint64_t page_size;
    uint64_t headroom;
    uint64_t vram_limit;
    uint64_t pool_limit;
} old_options_t;

_Static_assert(sizeof(old_options_t) ==
                   offsetof(dv_device_options_t, backend_options),
               "old_options_t must be a prefix of dv_device_options_t");

Test(options, an_older_binary_keeps_working) {
    old_options_t o;
    memset(&o, 0, sizeof(o));
    o.size = sizeof(o);
    o.backend = "host";
    o.page_size = TD_PAGE;
    o.vram_limit = 4 * TD_PAGE;
    o.pool_limit = UINT64_MAX;
    dv_device_t *dev = NULL;
    TD_OK(dv_device_open((const dv_device_options_t *)(void *)&o, &dev));
    dv_device_caps_t caps;
    TD_OK(dv_device_get_caps(dev, &caps));
    cr_assert_eq(caps.page_size, TD_PAGE, "a field inside the old size was lost");
    cr_assert_eq(td_stats(dev).budget, 4 * TD_PAGE);
    TD_OK(dv_device_close(dev));
}

Test(options, a_newer_binary_is_accepted_while_it_sets_nothing_unknown) {
    struct {
        dv_device_options_t o;
        uint64_t future[2];
    } n;
    memset(&n, 0, sizeof(n));
    dv_device_options_init(&n.o);
    n.o.size = sizeof(n);
    n.o.backend = "host";
    dv_device_t *dev = NULL;
    TD_OK(dv_device_open(&n.o, &dev));
    TD_OK(dv_device_close(dev));
    n.future[1] = 1;
    TD_IS(dv_device_open(&n.o, &dev), DV_ERROR_NOT_SUPPORTED);
    cr_assert(strstr(dv_last_error(), "unknown to dynvram") != NULL, "%s",
              dv_last_error());
    cr_assert_null(dev);
}

Test(options, uninitialised_options_are_refused) {
    dv_device_options_t o;
    memset(&o, 0, sizeof(o));
    o.backend = "host";
    dv_device_t *dev = NULL;
    TD_IS(dv_device_open(&o, &dev), DV_ERROR_INVALID_ARGUMENT);
    cr_assert(strstr(dv_last_error(), "dv_device_options_init") != NULL, "%s",
              dv_last_error());
    TD_IS(dv_device_open_hal(dv_hal_host(), &o, &dev), DV_ERROR_INVALID_ARGUMENT);
}

static dv_device_t *open_host_with(const char *backend_options, dv_result_t want) {
    dv_device_options_t o;
    dv_device_options_init(&o);
    o.backend = "host";
    o.backend_options = backend_options;
    dv_device_t *dev = NULL;
    TD_IS(dv_device_open(&o, &dev), want);
    return dev;
}

Test(options, backend_options_reach_the_backend) {
    dv_device_t *dev = open_host_with(" capacity = 96M ", DV_OK);
    dv_device_caps_t caps;
    TD_OK(dv_device_get_caps(dev, &caps));
    cr_assert_eq(caps.total_memory, 96ull << 20);
    TD_OK(dv_device_close(dev));
    open_host_with("capacity=lots", DV_ERROR_INVALID_ARGUMENT);
    cr_assert(strstr(dv_last_error(), "is not a size") != NULL, "%s",
              dv_last_error());
    open_host_with("capacity=0", DV_ERROR_INVALID_ARGUMENT);
    open_host_with("colour=blue", DV_ERROR_INVALID_ARGUMENT);
    cr_assert(strstr(dv_last_error(), "unknown option 'colour'") != NULL,
              "%s", dv_last_error());
    open_host_with("=3", DV_ERROR_INVALID_ARGUMENT);
    dev = open_host_with("", DV_OK);
    TD_OK(dv_device_close(dev));
}

Test(options, a_backend_library_is_loaded_by_path) {
    const char *lib = getenv("DV_TEST_HAL_LIBRARY");
    if (!lib || !*lib) {
        cr_skip_test("DV_TEST_HAL_LIBRARY is not set");
    }
    dv_device_options_t o;
    dv_device_options_init(&o);
    o.backend = lib;
    o.page_size = TD_PAGE;
    dv_device_t *dev = NULL;
    TD_OK(dv_device_open(&o, &dev));
    dv_vbar_t *v = NULL;
    TD_OK(dv_vbar_create(dev, 2 * TD_PAGE, &v));
    uint64_t g;
    TD_OK(dv_fault(dev, v, 0, TD_PAGE, &g));
    TD_OK(dv_unpin(dev, v, 0, TD_PAGE, NULL));
    TD_OK(dv_vbar_destroy(dev, v));
    TD_OK(dv_device_close(dev));
    /* Twice: the library is loaded once and stays. */
    TD_OK(dv_device_open(&o, &dev));
    TD_OK(dv_device_close(dev));
    o.backend = "/nonexistent/libnothing.so";
    TD_IS(dv_device_open(&o, &dev), DV_ERROR_BACKEND_UNAVAILABLE);
    cr_assert(strstr(dv_last_error(), "/nonexistent/libnothing.so") != NULL,
              "%s", dv_last_error());
}
