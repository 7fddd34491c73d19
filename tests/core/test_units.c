/*
 * test_units.c - result codes, messages, logging, options, backend list.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <pthread.h>
#include <string.h>

#include "base/os.h"
#include "testdev.h"

Test(units, every_result_has_a_name_and_text) {
#define CHECK(name, value, text)                                               \
    cr_assert_str_eq(dv_result_name(name), #name);                             \
    cr_assert_str_eq(dv_result_str(name), text);
    DV_RESULT_LIST(CHECK)
#undef CHECK
    cr_assert_str_eq(dv_result_str((dv_result_t)12345), "unknown result");
    cr_assert_lt(DV_ERROR_OUT_OF_DEVICE_MEMORY, 0);
    cr_assert_geq(DV_OFFLOADED, 0, "OFFLOADED is an outcome, not an error");
}

static void *other_thread(void *arg) {
    dv_device_t *dev = NULL;
    *(int *)arg = dv_device_open(NULL, NULL) == DV_ERROR_INVALID_ARGUMENT &&
                  strstr(dv_last_error(), "out is NULL") != NULL;
    (void)dev;
    return NULL;
}

Test(units, last_error_is_thread_local_and_cleared) {
    TD_IS(dv_fault(NULL, NULL, 0, 1, NULL), DV_ERROR_INVALID_ARGUMENT);
    char mine[256];
    strncpy(mine, dv_last_error(), sizeof(mine) - 1);
    mine[sizeof(mine) - 1] = 0;
    cr_assert(strstr(mine, "dv_fault") != NULL, "%s", mine);
    int ok = 0;
    pthread_t t;
    pthread_create(&t, NULL, other_thread, &ok);
    pthread_join(t, NULL);
    cr_assert(ok);
    cr_assert_str_eq(dv_last_error(), mine, "another thread's error leaked");
    dv_device_t *dev = td_open(0);
    cr_assert_str_eq(dv_last_error(), "", "success clears the message");
    TD_OK(dv_device_close(dev));
}

static int seen;
static char seen_msg[512];
static void catch_log(dv_log_level_t level, const char *msg, void *user) {
    seen++;
    strncpy(seen_msg, msg, sizeof(seen_msg) - 1);
    *(dv_log_level_t *)user = level;
}

Test(units, log_levels_and_callback) {
    dv_log_level_t got = DV_LOG_NONE;
    TD_OK(dv_log_set_callback(catch_log, &got));
    TD_OK(dv_log_set_level(DV_LOG_DEBUG));
    cr_assert_eq(dv_log_get_level(), DV_LOG_DEBUG);
    seen = 0;
    TD_IS(dv_fault(NULL, NULL, 0, 1, NULL), DV_ERROR_INVALID_ARGUMENT);
    cr_assert_gt(seen, 0, "errors are logged at debug level");
    cr_assert_eq(got, DV_LOG_DEBUG);
    cr_assert(strstr(seen_msg, "dv_fault"));
    TD_OK(dv_log_set_level(DV_LOG_ERROR));
    seen = 0;
    TD_IS(dv_fault(NULL, NULL, 0, 1, NULL), DV_ERROR_INVALID_ARGUMENT);
    cr_assert_eq(seen, 0, "below the level: silent");
    TD_OK(dv_log_set_callback(NULL, NULL));
    TD_OK(dv_log_set_level(DV_LOG_WARNING));
}

Test(units, backends_in_probe_order) {
    const char *order[] = {"cuda", "hip", "levelzero", "host"};
    cr_assert_eq(dv_backend_count(), 4);
    for (int i = 0; i < 4; i++) {
        dv_backend_info_t info;
        TD_OK(dv_backend_probe(i, &info));
        cr_assert_str_eq(info.name, order[i]);
        if (!info.available) {
            cr_assert_neq(strlen(info.reason), 0, "%s gives no reason", order[i]);
        }
        cr_assert_not_null(dv_hal_by_name(order[i]));
    }
    dv_backend_info_t info;
    TD_IS(dv_backend_probe(4, &info), DV_ERROR_INVALID_ARGUMENT);
    TD_OK(dv_backend_probe(3, &info));
    cr_assert(info.available, "host is always available");
    cr_assert_null(dv_hal_by_name("nope"));
}

Test(units, options_defaults) {
    dv_device_options_t o;
    memset(&o, 0x5a, sizeof(o));
    dv_device_options_init(&o);
    cr_assert_null(o.backend);
    cr_assert_eq(o.ordinal, 0);
    cr_assert_eq(o.page_size, 0);
    cr_assert_eq(o.vram_limit, 0);
    cr_assert_eq(o.pool_limit, UINT64_MAX);
    dv_device_options_init(NULL); /* harmless */
}

static dv_result_t no_mem_info(void *ctx, uint64_t *f, uint64_t *t) {
    *f = *t = 1ull << 30;
    return DV_ERROR_NOT_SUPPORTED;
}

Test(units, backend_without_free_memory_needs_a_limit) {
    dv_hal_ops_t ops = *dv_hal_host();
    ops.mem_info = no_mem_info;
    dv_device_options_t o;
    td_options(&o, 0);
    dv_device_t *dev = NULL;
    TD_IS(dv_device_open_hal(&ops, &o, &dev), DV_ERROR_NOT_SUPPORTED);
    cr_assert(strstr(dv_last_error(), "vram_limit"), "%s", dv_last_error());
    o.vram_limit = 3 * TD_PAGE;
    TD_OK(dv_device_open_hal(&ops, &o, &dev));
    cr_assert_eq(td_stats(dev).budget, 3 * TD_PAGE);
    dv_vbar_t *v = NULL;
    TD_OK(dv_vbar_create(dev, 4 * TD_PAGE, &v));
    uint64_t g;
    TD_OK(dv_fault(dev, v, 0, 3 * TD_PAGE, &g));
    TD_IS(dv_fault(dev, v, 3 * TD_PAGE, 1, &g), DV_OFFLOADED);
    TD_OK(dv_unpin(dev, v, 0, 3 * TD_PAGE, NULL));
    TD_OK(dv_vbar_destroy(dev, v));
    TD_OK(dv_device_close(dev));
}

/* base/os.h: a mutex initialised at compile time, and atomic ints
 * (what the Python extension uses instead of pthreads and GCC builtins). */
#define OS_THREADS 4
#define OS_ROUNDS 100000

static dv__mutex_t os_static_mutex = DV__MUTEX_INIT;
static volatile uint64_t os_counter;
static volatile int os_go;
static volatile int os_done;

static void *os_worker(void *arg) {
    (void)arg;
    while (!dv__atomic_load_int(&os_go)) {
        /* spin: the main thread's store must become visible */
    }
    for (int i = 0; i < OS_ROUNDS; i++) {
        dv__mutex_lock(&os_static_mutex);
        os_counter = os_counter + 1; /* exact only because of the lock */
        dv__mutex_unlock(&os_static_mutex);
    }
    dv__mutex_lock(&os_static_mutex);
    dv__atomic_store_int(&os_done, dv__atomic_load_int(&os_done) + 1);
    dv__mutex_unlock(&os_static_mutex);
    return NULL;
}

Test(units, os_static_mutex_and_atomic_int) {
    cr_assert_eq(dv__atomic_load_int(&os_go), 0, "zeroed storage holds 0");
    dv__atomic_store_int(&os_go, -7);
    cr_assert_eq(dv__atomic_load_int(&os_go), -7);
    dv__atomic_store_int(&os_go, 0);
    pthread_t t[OS_THREADS];
    for (int i = 0; i < OS_THREADS; i++) {
        cr_assert_eq(pthread_create(&t[i], NULL, os_worker, NULL), 0);
    }
    dv__atomic_store_int(&os_go, 1);
    for (int i = 0; i < OS_THREADS; i++) {
        pthread_join(t[i], NULL);
    }
    cr_assert_eq(os_counter, (uint64_t)OS_THREADS * OS_ROUNDS);
    cr_assert_eq(dv__atomic_load_int(&os_done), OS_THREADS);
}
