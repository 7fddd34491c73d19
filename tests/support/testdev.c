/*
 * testdev.c - see testdev.h.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "testdev.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/os.h"

const char *td_backend(void) {
    const char *b = getenv("DYNVRAM_BACKEND");
    return b && *b ? b : "host";
}

/* A library path rather than a built-in name: the rule of hal/registry.c,
 * so the suites and dv_device_open read DYNVRAM_BACKEND alike. */
static int is_library_path(const char *name) {
    size_t n = strlen(name);
    return strchr(name, '/') || strchr(name, '\\') ||
           (n > 3 && strcmp(name + n - 3, ".so") == 0) ||
           (n > 4 && strcmp(name + n - 4, ".dll") == 0) ||
           (n > 6 && strcmp(name + n - 6, ".dylib") == 0);
}

static dv__once_t hal_once = DV__ONCE_INIT;
static const dv_hal_ops_t *hal_ops;
static char hal_problem[512];

typedef const dv_hal_ops_t *(*td_entry_fn)(void);

/* The same ops the registry gets: the loader hands back the library it
 * already holds (neither side ever unloads it). */
static void hal_find(void) {
    const char *b = td_backend();
    hal_ops = dv_hal_by_name(b);
    if (hal_ops) {
        return;
    }
    if (!is_library_path(b)) {
        snprintf(hal_problem, sizeof(hal_problem), "unknown backend '%s'", b);
        return;
    }
    char why[256] = "";
    void *lib = dv__lib_open(b, why, sizeof(why));
    if (!lib) {
        snprintf(hal_problem, sizeof(hal_problem),
                 "cannot load backend library %s: %s", b, why);
        return;
    }
    td_entry_fn entry = NULL;
    void *sym = dv__lib_sym(lib, "dv_hal_entry");
    memcpy(&entry, &sym, sizeof(entry));
    hal_ops = entry ? entry() : NULL;
    if (!hal_ops) {
        snprintf(hal_problem, sizeof(hal_problem),
                 "%s has no dv_hal_entry(), or it returned NULL", b);
    }
}

const dv_hal_ops_t *td_hal(void) {
    dv__once(&hal_once, hal_find);
    return hal_ops;
}

const char *td_hal_problem(void) {
    td_hal();
    return hal_problem;
}

const char *td_backend_name(void) {
    const dv_hal_ops_t *ops = td_hal();
    return ops && ops->name ? ops->name : td_backend();
}

const char *td_backend_options(void) {
    const char *opts = getenv("DV_TEST_BACKEND_OPTIONS");
    if (opts) {
        return opts;
    }
    return strcmp(td_backend_name(), "host") == 0 ? "capacity=1G" : NULL;
}

void td_options(dv_device_options_t *o, uint64_t limit_pages) {
    dv_device_options_init(o);
    o->backend = td_backend();
    o->page_size = TD_PAGE;
    o->vram_limit = limit_pages * TD_PAGE;
    o->backend_options = td_backend_options();
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
        fprintf(stderr, "SKIP: %s\n", td_hal_problem());
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
