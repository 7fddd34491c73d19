/*
 * test_cuda_nvml.c - the CUDA backend's nvml=1 option: free memory taken
 * from NVML (every process's use counted) where NVML exists, ignored with a
 * warning where it does not.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * cuda-fake.nvml runs every case against the simulated libcuda and
 * tests/cuda/fake_nvml.c (DV_FAKE_NVML=1, DYNVRAM_NVML_LIBRARY naming it);
 * cuda.nvml runs only the real-driver case on a GPU (skipped, 77, without
 * one). Criterion runs each test in its own process, so environment set in
 * a test reaches the fake libraries loaded by that test.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testdev.h"

#define MIB (1ull << 20)

static int fake(void) {
    const char *f = getenv("DV_FAKE_NVML");
    return f && *f == '1';
}

static dv_result_t open_cuda(int ordinal, const char *options,
                             dv_device_t **dev) {
    dv_device_options_t o;
    dv_device_options_init(&o);
    o.backend = "cuda";
    o.ordinal = ordinal;
    o.page_size = TD_PAGE;
    o.pool_limit = 0;
    o.backend_options = options;
    return dv_device_open(&o, dev);
}

static dv_device_t *open_ok(int ordinal, const char *options) {
    dv_device_t *dev = NULL;
    TD_OK(open_cuda(ordinal, options, &dev));
    return dev;
}

/* The fake NVML's test hooks, from the copy the backend loaded. */
static void *hook(const char *name) {
    void *lib = dlopen(getenv("DYNVRAM_NVML_LIBRARY"), RTLD_NOW | RTLD_NOLOAD);
    cr_assert(lib, "fake NVML not loaded: %s", dlerror());
    void *fn = dlsym(lib, name);
    cr_assert(fn, "fake NVML lacks %s", name);
    return fn;
}

static int nvml_users(void) {
    return ((int (*)(void))hook("dv_fake_nvml_users"))();
}

static void nvml_set_free(int index, unsigned long long bytes) {
    cr_assert_eq(((int (*)(int, unsigned long long))hook(
                     "dv_fake_nvml_set_free"))(index, bytes),
                 0);
}

/* Warnings logged while a test runs. */
static char logged[4096];
static void capture(dv_log_level_t level, const char *msg, void *user) {
    (void)user;
    if (level <= DV_LOG_INFO) {
        strncat(logged, msg, sizeof(logged) - strlen(logged) - 2);
        strcat(logged, "\n");
    }
}

static void log_on(void) {
    logged[0] = '\0';
    dv_log_set_level(DV_LOG_INFO);
    dv_log_set_callback(capture, NULL);
}

#define FAKE_ONLY()                                                            \
    do {                                                                       \
        if (!fake()) {                                                         \
            cr_skip_test("needs the simulated NVML (cuda-fake.nvml)");         \
        }                                                                      \
    } while (0)

Test(nvml, options_are_checked) {
    FAKE_ONLY();
    static const char *bad[] = {"nvml=2", "nvml", "nvml=yes", "foo=1",
                                "nvml=1,capacity=1G"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        dv_device_t *dev = NULL;
        TD_IS(open_cuda(0, bad[i], &dev), DV_ERROR_INVALID_ARGUMENT);
        cr_assert_null(dev);
        cr_assert(strstr(dv_last_error(), "cuda backend"), "%s: %s", bad[i],
                  dv_last_error());
    }
    dv_device_t *dev = open_ok(0, "nvml=0");
    TD_OK(dv_device_close(dev));
    dev = open_ok(0, "nvml=off");
    TD_OK(dv_device_close(dev));
}

Test(nvml, budget_follows_nvml) {
    FAKE_ONLY();
    setenv("DV_FAKE_NVML_FREE", "256M", 1);
    dv_device_t *plain = open_ok(0, NULL);
    cr_assert_eq(td_stats(plain).budget, 1ull << 30, "the fake's 1 GiB");
    TD_OK(dv_device_close(plain));

    log_on();
    dv_device_t *dev = open_ok(0, "nvml=1");
    cr_assert(strstr(logged, "free memory from NVML"), "%s", logged);
    cr_assert_eq(nvml_users(), 1);
    cr_assert_eq(td_stats(dev).budget, 256 * MIB);
    /* Another process takes memory: the budget follows. */
    nvml_set_free(0, 128 * MIB);
    cr_assert_eq(td_stats(dev).budget, 128 * MIB);
    dv_vbar_t *v = NULL;
    TD_OK(dv_vbar_create(dev, 80 * TD_PAGE, &v));
    uint64_t resident = 0;
    for (uint64_t i = 0; i < 80; i++) {
        uint64_t g = 0;
        dv_result_t r = dv_fault(dev, v, i * TD_PAGE, TD_PAGE, &g);
        cr_assert(r == DV_OK || r == DV_OFFLOADED, "%s", dv_last_error());
        if (r == DV_OK) {
            resident++;
            TD_OK(dv_unpin(dev, v, i * TD_PAGE, TD_PAGE, NULL));
        }
    }
    cr_assert_eq(resident, 128 * MIB / TD_PAGE);
    TD_OK(dv_vbar_destroy(dev, v));
    TD_OK(dv_device_close(dev));
    cr_assert_eq(nvml_users(), 0, "nvmlShutdown at the last close");
}

Test(nvml, more_free_in_nvml_than_in_the_driver_changes_nothing) {
    FAKE_ONLY();
    setenv("DV_FAKE_CUDA_MEMORY", "536870912", 1); /* the driver: 512 MiB */
    setenv("DV_FAKE_NVML_FREE", "1G", 1);
    dv_device_t *dev = open_ok(0, "nvml=1");
    cr_assert_eq(td_stats(dev).budget, 512 * MIB, "the smaller figure");
    TD_OK(dv_device_close(dev));
}

Test(nvml, devices_are_matched_by_bus_id) {
    FAKE_ONLY();
    setenv("DV_FAKE_CUDA_DEVICES", "2", 1);
    setenv("DV_FAKE_NVML_FREE", "256M,512M", 1);
    dv_device_t *a = open_ok(0, "nvml=1");
    dv_device_t *b = open_ok(1, "nvml=1");
    cr_assert_eq(td_stats(a).budget, 256 * MIB);
    cr_assert_eq(td_stats(b).budget, 512 * MIB);
    /* One nvmlInit for the process, shut down with the last device. */
    cr_assert_eq(nvml_users(), 1);
    TD_OK(dv_device_close(a));
    cr_assert_eq(nvml_users(), 1);
    cr_assert_eq(td_stats(b).budget, 512 * MIB);
    TD_OK(dv_device_close(b));
    cr_assert_eq(nvml_users(), 0);
}

Test(nvml, missing_library_is_ignored_with_a_warning) {
    FAKE_ONLY();
    setenv("DYNVRAM_NVML_LIBRARY", "/nonexistent/libnvidia-ml.so.1", 1);
    log_on();
    dv_device_t *dev = open_ok(0, "nvml=1");
    cr_assert(strstr(logged, "NVML is unavailable"), "%s", logged);
    cr_assert(strstr(logged, "/nonexistent/libnvidia-ml.so.1"), "%s", logged);
    cr_assert_eq(td_stats(dev).budget, 1ull << 30, "cuMemGetInfo's figure");
    TD_OK(dv_device_close(dev));
}

Test(nvml, failing_init_is_ignored_with_a_warning) {
    FAKE_ONLY();
    setenv("DV_FAKE_NVML_INIT_FAIL", "1", 1);
    setenv("DV_FAKE_NVML_FREE", "256M", 1);
    log_on();
    dv_device_t *dev = open_ok(0, "nvml=1");
    cr_assert(strstr(logged, "nvmlInit_v2: Driver Not Loaded"), "%s", logged);
    cr_assert_eq(td_stats(dev).budget, 1ull << 30);
    TD_OK(dv_device_close(dev));
    cr_assert_eq(nvml_users(), 0);
}

Test(nvml, real_driver) {
    if (fake()) {
        cr_skip_test("the real NVML is tested by cuda.nvml on a GPU");
    }
    dv_device_t *plain = open_ok(0, NULL);
    uint64_t b0 = td_stats(plain).budget;
    TD_OK(dv_device_close(plain));
    log_on();
    dv_device_t *dev = open_ok(0, "nvml=1");
    uint64_t b1 = td_stats(dev).budget;
    printf("budget: %llu MiB from cuMemGetInfo, %llu MiB with nvml=1\n%s",
           (unsigned long long)(b0 >> 20), (unsigned long long)(b1 >> 20),
           logged);
    cr_assert_gt(b1, 0);
    /* NVML's free figure never adds memory (other processes may move the
     * numbers a little between the two readings). */
    cr_assert_leq(b1, b0 + 64 * MIB);
    cr_assert(strstr(logged, "free memory from NVML") ||
                  strstr(logged, "NVML is unavailable"),
              "%s", logged);
    TD_OK(dv_device_close(dev));
}
