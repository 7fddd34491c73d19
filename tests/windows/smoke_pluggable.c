/*
 * smoke_pluggable.c - the CUDAPluggableAllocator library on Windows
 * (libdynvram_pluggable.dll, bindings/interpose/pluggable.c), loaded the
 * way torch loads it (by path, entry points by name): every export is
 * there, a machine without nvcuda.dll is reported with the reason and
 * allocations fail cleanly (NULL, never a crash), bad arguments are
 * refused, the counters answer. Run by .ci/mingw.sh under Wine.
 *
 *   dv_smoke_pluggable.exe PATH_OF_THE_DLL
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdio.h>
#include <string.h>
#include <windows.h>

#include "check.h"
#include "dv_pluggable.h"

typedef int (*loaded_fn)(char *, size_t);
typedef void *(*alloc_fn)(size_t, int, void *);
typedef void (*free_fn)(void *, size_t, int, void *);
typedef dv_result_t (*attach_fn)(int, dv_device_t *,
                                 const dv_pluggable_api_t *);
typedef dv_result_t (*detach_fn)(int);
typedef dv_result_t (*stats_fn)(int, dv_pluggable_stats_t *);

static dv_result_t no_reserve(dv_device_t *d, uint64_t n) {
    (void)d;
    (void)n;
    return DV_ERROR_OUT_OF_DEVICE_MEMORY;
}
static dv_result_t no_release(dv_device_t *d, uint64_t n) {
    (void)d;
    (void)n;
    return DV_OK;
}
static dv_result_t no_evict(dv_device_t *d, uint64_t n, uint64_t *f) {
    (void)d;
    (void)n;
    *f = 0;
    return DV_ERROR_OUT_OF_DEVICE_MEMORY;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s libdynvram_pluggable.dll\n", argv[0]);
        return 2;
    }
    HMODULE lib = LoadLibraryA(argv[1]);
    CHECK(lib != NULL);
    if (!lib) {
        return 1;
    }
#define SYM(type, name)                                                        \
    type p_##name = (type)(uintptr_t)GetProcAddress(lib, "dv_pluggable_" #name)
    SYM(loaded_fn, driver_loaded);
    SYM(alloc_fn, alloc);
    SYM(free_fn, free);
    SYM(attach_fn, attach);
    SYM(detach_fn, detach);
    SYM(stats_fn, get_stats);
#undef SYM
    CHECK(p_driver_loaded && p_alloc &&
          p_free && p_attach && p_detach &&
          p_get_stats);
    if (check_failed) {
        return 1;
    }
    char why[512] = "";
    int ok = p_driver_loaded(why, sizeof(why));
    printf("driver: %s (%s)\n", ok ? "loaded" : "not loaded", why);
    /* Wine has no nvcuda.dll: said so, with the library's name. */
    CHECK(ok || strstr(why, "nvcuda.dll") != NULL);
    static const dv_pluggable_api_t api = {1, 0, no_reserve, no_release,
                                           no_evict, NULL};
    static int dummy;
    dv_device_t *dev = (dv_device_t *)&dummy;
    CHECK(p_attach(-1, dev, &api) == DV_ERROR_INVALID_ARGUMENT);
    CHECK(p_attach(DV_PLUGGABLE_MAX_DEVICES, dev, &api) ==
          DV_ERROR_INVALID_ARGUMENT);
    CHECK(p_attach(0, NULL, &api) == DV_ERROR_INVALID_ARGUMENT);
    CHECK(p_attach(0, dev, NULL) == DV_ERROR_INVALID_ARGUMENT);
    CHECK(p_attach(0, dev, &api) == DV_OK);
    if (!ok) {
        /* No driver: nothing is allocated, nothing is counted. */
        CHECK(p_alloc(1 << 20, 0, NULL) == NULL);
    } else {
        /* A driver (a real Windows machine): the budget refuses. */
        CHECK(p_alloc(1 << 20, 0, NULL) == NULL);
    }
    p_free(NULL, 0, 0, NULL);
    dv_pluggable_stats_t st;
    CHECK(p_get_stats(0, &st) == DV_OK);
    CHECK(st.allocs == 0 && st.live_bytes == 0);
    CHECK(p_get_stats(-1, &st) == DV_ERROR_INVALID_ARGUMENT);
    CHECK(p_detach(0) == DV_OK);
    CHECK(p_detach(99) == DV_ERROR_INVALID_ARGUMENT);
    CHECK(p_alloc(0, 0, NULL) == NULL);
    return check_report();
}
