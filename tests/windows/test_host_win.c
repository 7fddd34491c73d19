/*
 * test_host_win.c - hal/host/host_vm_win.c on Linux, against the strict fake
 * Win32 memory manager (fake_win.c): placeholder splitting and coalescing,
 * failure unwinding, capacity, availability checks, and the whole core on
 * top of it. Criterion runs each test in its own process, so the backend's
 * once-resolved API table and the fake start fresh every time.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dynvram.h"
#include "dynvram_hal.h"
#include "tests/support/hal_text.h"
#include "fake_win.h"
#include <windows.h> /* the fake: error codes */

/* host.c's dv_hal_host (over host_vm_win.c), renamed by the build. */
const dv_hal_ops_t *dv__test_hal_host_win(void);

#define G ((uint64_t)FW_GRANULE)

static const dv_hal_ops_t *H;

static void *open_ctx(int ordinal, uint64_t capacity) {
    H = dv__test_hal_host_win();
    char opts[64] = ""; /* capacity 0: the default (the environment) */
    if (capacity) {
        snprintf(opts, sizeof(opts), "capacity=%llu",
                 (unsigned long long)capacity);
    }
    dv_hal_init_args_t a = {.ordinal = ordinal, .size = sizeof(a),
                            .options = opts};
    void *ctx = NULL;
    cr_assert_eq(H->init(&a, &ctx), DV_OK, "init: %s", dv_last_error());
    return ctx;
}

static dv_hal_mem_t make(void *ctx, uint64_t size) {
    dv_hal_mem_t m = 0;
    cr_assert_eq(H->create(ctx, size, &m), DV_OK, "create: %s",
                 dv_last_error());
    return m;
}

static void native_contains(const char *what) {
    int64_t code = 0;
    char text[256] = "";
    H->last_native_error(&code, text, sizeof(text));
    cr_expect(strstr(text, what) != NULL, "native text '%s' lacks '%s'", text,
              what);
}

Test(host_win, probe_and_caps) {
    void *ctx = open_ctx(0, 16 * G);
    int count = 0;
    char reason[128];
    cr_assert_eq(H->probe(&count, reason, sizeof(reason)), DV_OK);
    cr_expect_eq(count, 4);
    dv_hal_caps_t c;
    cr_assert_eq(H->get_caps(ctx, &c), DV_OK);
    cr_expect_eq(c.granularity, G);
    cr_expect_eq(c.va_alignment, G);
    cr_expect_eq(c.total_memory, 16 * G);
    cr_expect(c.flags & DV_CAP_HOST_ACCESSIBLE);
    cr_expect(c.flags & DV_CAP_FENCES);
    H->fini(ctx);
    dv_hal_init_args_t a = {.ordinal = 4};
    cr_expect_eq(H->init(&a, &ctx), DV_ERROR_DEVICE_NOT_FOUND);
    /* The trial in probe left nothing behind. */
    cr_expect_eq(fw_regions(), 0);
}

Test(host_win, capacity_from_env) {
    setenv("DYNVRAM_HOST_CAPACITY", "2M", 1);
    void *ctx = open_ctx(0, 0);
    uint64_t free_b = 0, total = 0;
    cr_assert_eq(H->mem_info(ctx, &free_b, &total), DV_OK);
    cr_expect_eq(total, 2ull << 20);
    cr_expect_eq(free_b, 2ull << 20);
    H->fini(ctx);
}

Test(host_win, unavailable_without_placeholders) {
    fw_no_placeholders(); /* like Wine 8 */
    H = dv__test_hal_host_win();
    int count = 7;
    char reason[256] = "";
    cr_expect_eq(H->probe(&count, reason, sizeof(reason)),
                 DV_ERROR_BACKEND_UNAVAILABLE);
    cr_expect_eq(count, 0);
    cr_expect(strstr(reason, "placeholder") != NULL, "reason: %s", reason);
    dv_device_options_t o;
    dv_device_options_init(&o);
    dv_device_t *dev = NULL;
    cr_expect_eq(dv_device_open_hal(H, &o, &dev), DV_ERROR_BACKEND_UNAVAILABLE);
    cr_expect_null(dev);
    cr_expect_eq(fw_regions(), 0);
}

Test(host_win, unavailable_before_1803) {
    fw_hide_export("MapViewOfFile3");
    H = dv__test_hal_host_win();
    int count = 7;
    char reason[256] = "";
    cr_expect_eq(H->probe(&count, reason, sizeof(reason)),
                 DV_ERROR_BACKEND_UNAVAILABLE);
    cr_expect(strstr(reason, "MapViewOfFile3") != NULL, "reason: %s", reason);
    cr_expect(strstr(reason, "1803") != NULL, "reason: %s", reason);
    dv_hal_init_args_t a = {0};
    void *ctx = NULL;
    cr_expect_eq(H->init(&a, &ctx), DV_ERROR_BACKEND_UNAVAILABLE);
    cr_expect(strstr(td_hal_text(H), "MapViewOfFile3") != NULL, "%s",
              td_hal_text(H));
}

Test(host_win, split_map_unmap_coalesce) {
    void *ctx = open_ctx(0, 64 * G);
    uint64_t va = 0;
    cr_assert_eq(H->reserve(ctx, 8 * G, &va), DV_OK);
    cr_expect_eq(va % G, 0);
    cr_expect_eq(fw_regions(), 1);
    dv_hal_mem_t m[8];
    for (int i = 0; i < 8; i++) {
        m[i] = make(ctx, G);
    }
    /* Middle, then its neighbours, then the two ends. */
    cr_assert_eq(H->map(ctx, va + 3 * G, G, m[3]), DV_OK);
    cr_expect_eq(fw_views(), 1);
    cr_expect_eq(fw_placeholders(), 2);
    cr_assert_eq(H->map(ctx, va + 4 * G, G, m[4]), DV_OK);
    cr_assert_eq(H->map(ctx, va + 0 * G, G, m[0]), DV_OK);
    cr_assert_eq(H->map(ctx, va + 7 * G, G, m[7]), DV_OK);
    cr_expect_eq(fw_views(), 4);
    cr_expect_eq(fw_placeholders(), 2); /* [1, 3) and [5, 7) */
    cr_expect_eq(fw_check(), 0);
    /* Views are real memory and distinct. */
    for (int i = 0; i < 8; i++) {
        if (i == 0 || i == 3 || i == 4 || i == 7) {
            memset((void *)(uintptr_t)(va + (uint64_t)i * G), i + 1, G);
        }
    }
    cr_expect_eq(((unsigned char *)(uintptr_t)va)[G - 1], 1);
    cr_expect_eq(((unsigned char *)(uintptr_t)(va + 4 * G))[0], 5);
    /* Unmapping 3 merges it with [1, 3); 4 then merges the lot up to 7. */
    cr_assert_eq(H->unmap(ctx, va + 3 * G, G), DV_OK);
    cr_expect_eq(fw_placeholders(), 2);
    cr_assert_eq(H->unmap(ctx, va + 4 * G, G), DV_OK);
    cr_expect_eq(fw_placeholders(), 1);
    cr_expect_eq(fw_regions(), 3);
    /* One range over views and holes: everything back to one piece. */
    cr_assert_eq(H->unmap(ctx, va, 8 * G), DV_OK);
    cr_expect_eq(fw_regions(), 1);
    /* A section keeps its data across unmap and a new map elsewhere. */
    cr_assert_eq(H->map(ctx, va + 5 * G, G, m[0]), DV_OK);
    cr_expect_eq(((unsigned char *)(uintptr_t)(va + 5 * G))[7], 1);
    cr_assert_eq(H->unmap(ctx, va + 5 * G, G), DV_OK);
    for (int i = 0; i < 8; i++) {
        cr_expect_eq(H->release(ctx, m[i]), DV_OK);
    }
    cr_expect_eq(fw_sections(), 0);
    cr_assert_eq(H->unreserve(ctx, va, 8 * G), DV_OK);
    cr_expect_eq(fw_regions(), 0);
    H->fini(ctx);
}

Test(host_win, multi_granule_view) {
    void *ctx = open_ctx(0, 64 * G);
    uint64_t va = 0;
    cr_assert_eq(H->reserve(ctx, 16 * G, &va), DV_OK);
    dv_hal_mem_t a = make(ctx, 4 * G), b = make(ctx, 4 * G);
    cr_assert_eq(H->map(ctx, va + 4 * G, 4 * G, a), DV_OK);
    cr_assert_eq(H->map(ctx, va + 8 * G, 4 * G, b), DV_OK);
    memset((void *)(uintptr_t)(va + 4 * G), 0xab, 8 * G);
    unsigned char out[16];
    cr_assert_eq(H->copy_d2h(ctx, out, va + 8 * G - 8, 16, NULL), DV_OK);
    for (int i = 0; i < 16; i++) {
        cr_expect_eq(out[i], 0xab);
    }
    /* Copies must stay inside views. */
    cr_expect_eq(H->copy_d2h(ctx, out, va + 4 * G - 8, 16, NULL),
                 DV_ERROR_INVALID_ARGUMENT);
    cr_expect_eq(H->copy_h2d(ctx, va + 12 * G - 8, out, 16, NULL),
                 DV_ERROR_INVALID_ARGUMENT);
    cr_expect_eq(H->copy_h2d(ctx, 4096, out, 16, NULL),
                 DV_ERROR_INVALID_ARGUMENT);
    memset(out, 0x5a, sizeof(out));
    cr_assert_eq(H->copy_h2d(ctx, va + 6 * G, out, 16, NULL), DV_OK);
    cr_expect_eq(((unsigned char *)(uintptr_t)(va + 6 * G))[15], 0x5a);
    /* Unreserve with views still mapped drops them (like munmap). */
    cr_assert_eq(H->unreserve(ctx, va, 16 * G), DV_OK);
    cr_expect_eq(fw_regions(), 0);
    cr_expect_eq(H->release(ctx, a), DV_OK);
    cr_expect_eq(H->release(ctx, b), DV_OK);
    cr_expect_eq(fw_sections(), 0);
    H->fini(ctx);
}

Test(host_win, bad_arguments_change_nothing) {
    void *ctx = open_ctx(0, 64 * G);
    void *other = open_ctx(1, 64 * G);
    uint64_t va = 0;
    cr_assert_eq(H->reserve(ctx, 4 * G, &va), DV_OK);
    dv_hal_mem_t m = make(ctx, 2 * G), small = make(ctx, G);
    dv_hal_mem_t foreign = make(other, G);
    uint64_t dummy;
    cr_expect_eq(H->reserve(ctx, 0, &dummy), DV_ERROR_INVALID_ARGUMENT);
    cr_expect_eq(H->reserve(ctx, G + 4096, &dummy), DV_ERROR_INVALID_ARGUMENT);
    cr_expect_eq(H->create(ctx, 4096, &dummy), DV_ERROR_INVALID_ARGUMENT);
    cr_expect_eq(H->map(ctx, va + 4096, G, small), DV_ERROR_INVALID_ARGUMENT);
    cr_expect_eq(H->map(ctx, va, 2 * G, small), DV_ERROR_INVALID_ARGUMENT);
    cr_expect_eq(H->map(ctx, va + 3 * G, 2 * G, m), DV_ERROR_INVALID_ARGUMENT);
    cr_expect_eq(H->map(ctx, va, G, foreign), DV_ERROR_INVALID_ARGUMENT);
    cr_expect_eq(H->map(ctx, 1ull << 46, G, small), DV_ERROR_INVALID_ARGUMENT);
    cr_expect_eq(fw_regions(), 1);
    cr_assert_eq(H->map(ctx, va + G, 2 * G, m), DV_OK);
    /* Over a view, or cutting one: refused, layout unchanged. */
    cr_expect_eq(H->map(ctx, va + 2 * G, G, small), DV_ERROR_INVALID_ARGUMENT);
    cr_expect_eq(H->unmap(ctx, va + 2 * G, G), DV_ERROR_INVALID_ARGUMENT);
    cr_expect_eq(H->unmap(ctx, va, 2 * G), DV_ERROR_INVALID_ARGUMENT);
    cr_expect_eq(fw_views(), 1);
    cr_expect_eq(fw_regions(), 3);
    cr_expect_eq(H->release(ctx, m), DV_ERROR_BUSY);
    cr_expect_eq(H->release(ctx, foreign), DV_ERROR_INVALID_ARGUMENT);
    cr_expect_eq(H->unreserve(ctx, va, 2 * G), DV_ERROR_INVALID_ARGUMENT);
    cr_expect_eq(H->unreserve(ctx, va + G, 4 * G), DV_ERROR_INVALID_ARGUMENT);
    cr_expect_eq(fw_regions(), 3);
    cr_assert_eq(H->unmap(ctx, va + G, 2 * G), DV_OK);
    cr_expect_eq(H->release(ctx, m), DV_OK);
    cr_expect_eq(H->release(ctx, small), DV_OK);
    cr_expect_eq(H->release(other, foreign), DV_OK);
    cr_assert_eq(H->unreserve(ctx, va, 4 * G), DV_OK);
    cr_expect_eq(fw_regions(), 0);
    cr_expect_eq(fw_sections(), 0);
    H->fini(ctx);
    H->fini(other);
}

Test(host_win, capacity_and_commit_limit) {
    void *ctx = open_ctx(0, 4 * G);
    dv_hal_mem_t a = make(ctx, 3 * G), b = 0;
    uint64_t free_b, total;
    cr_assert_eq(H->mem_info(ctx, &free_b, &total), DV_OK);
    cr_expect_eq(free_b, G);
    cr_expect_eq(H->create(ctx, 2 * G, &b), DV_ERROR_OUT_OF_DEVICE_MEMORY);
    cr_expect_eq(fw_sections(), 1);
    /* The system's commit limit is host memory, not the device's. */
    fw_commit_limit(3 * G);
    cr_expect_eq(H->create(ctx, G, &b), DV_ERROR_OUT_OF_HOST_MEMORY);
    native_contains("CreateFileMapping");
    cr_assert_eq(H->mem_info(ctx, &free_b, &total), DV_OK);
    cr_expect_eq(free_b, G); /* nothing counted for the failure */
    fw_commit_limit(0);
    fw_fail("CreateFileMappingW", 1, ERROR_INVALID_PARAMETER);
    cr_expect_eq(H->create(ctx, G, &b), DV_ERROR_BACKEND);
    b = make(ctx, G);
    cr_expect_eq(H->release(ctx, a), DV_OK);
    cr_expect_eq(H->release(ctx, b), DV_OK);
    cr_assert_eq(H->mem_info(ctx, &free_b, &total), DV_OK);
    cr_expect_eq(free_b, 4 * G);
    H->fini(ctx);
}

/* A failure at each step of map leaves the reservation in one piece and
 * nothing mapped. */
static void map_failure(const char *fn, int nth, uint32_t code,
                        dv_result_t expect, const char *native) {
    void *ctx = open_ctx(0, 64 * G);
    uint64_t va = 0;
    cr_assert_eq(H->reserve(ctx, 8 * G, &va), DV_OK);
    dv_hal_mem_t m = make(ctx, G);
    fw_fail(fn, nth, code);
    cr_expect_eq(H->map(ctx, va + 3 * G, G, m), expect, "%s", dv_last_error());
    native_contains(native);
    cr_expect_eq(fw_views(), 0);
    cr_expect_eq(fw_regions(), 1);
    cr_expect_eq(fw_check(), 0);
    /* And the backend's books agree: the same map now works. */
    cr_assert_eq(H->map(ctx, va + 3 * G, G, m), DV_OK);
    cr_assert_eq(H->unmap(ctx, va + 3 * G, G), DV_OK);
    cr_expect_eq(H->release(ctx, m), DV_OK);
    cr_assert_eq(H->unreserve(ctx, va, 8 * G), DV_OK);
    cr_expect_eq(fw_regions(), 0);
    H->fini(ctx);
}

Test(host_win, map_fails_at_view) {
    map_failure("MapViewOfFile3", 1, ERROR_INVALID_ADDRESS, DV_ERROR_BACKEND,
                "MapViewOfFile3");
}

Test(host_win, map_fails_at_view_oom) {
    map_failure("MapViewOfFile3", 1, ERROR_NOT_ENOUGH_MEMORY,
                DV_ERROR_OUT_OF_HOST_MEMORY, "MapViewOfFile3");
}

Test(host_win, map_fails_at_first_split) {
    map_failure("VirtualFree.split", 1, ERROR_INVALID_PARAMETER,
                DV_ERROR_BACKEND, "PRESERVE_PLACEHOLDER");
}

Test(host_win, map_fails_at_second_split) {
    map_failure("VirtualFree.split", 2, ERROR_INVALID_PARAMETER,
                DV_ERROR_BACKEND, "PRESERVE_PLACEHOLDER");
}

Test(host_win, reserve_fails) {
    void *ctx = open_ctx(0, 64 * G);
    uint64_t va = 0;
    fw_fail("VirtualAlloc2", 1, ERROR_NOT_ENOUGH_MEMORY);
    cr_expect_eq(H->reserve(ctx, 8 * G, &va), DV_ERROR_ADDRESS_SPACE);
    native_contains("VirtualAlloc2");
    int64_t code = 0;
    H->last_native_error(&code, NULL, 0);
    cr_expect_eq(code, ERROR_NOT_ENOUGH_MEMORY);
    cr_expect_eq(H->unreserve(ctx, va, 8 * G), DV_ERROR_INVALID_ARGUMENT);
    cr_expect_eq(fw_regions(), 0);
    H->fini(ctx);
}

Test(host_win, coalesce_failure_is_harmless) {
    void *ctx = open_ctx(0, 64 * G);
    uint64_t va = 0;
    cr_assert_eq(H->reserve(ctx, 8 * G, &va), DV_OK);
    dv_hal_mem_t m = make(ctx, G);
    cr_assert_eq(H->map(ctx, va + 3 * G, G, m), DV_OK);
    /* Coalescing after the unmap fails: the pieces stay split... */
    fw_fail("VirtualFree.coalesce", 1, ERROR_INVALID_PARAMETER);
    cr_assert_eq(H->unmap(ctx, va + 3 * G, G), DV_OK);
    cr_expect_eq(fw_regions(), 3);
    cr_expect_eq(fw_views(), 0);
    /* ...the books still match (map works there and beside it)... */
    cr_assert_eq(H->map(ctx, va + 3 * G, G, m), DV_OK);
    cr_assert_eq(H->unmap(ctx, va + 3 * G, G), DV_OK);
    /* ...and unreserve still frees everything, piece by piece if its own
     * coalescing fails too. */
    cr_assert_eq(H->map(ctx, va + 5 * G, G, m), DV_OK);
    fw_fail("VirtualFree.coalesce", 1, ERROR_INVALID_PARAMETER);
    cr_assert_eq(H->unmap(ctx, va + 5 * G, G), DV_OK);
    int split = fw_regions();
    cr_expect_gt(split, 1);
    fw_fail("VirtualFree.coalesce", 1, ERROR_INVALID_PARAMETER);
    cr_assert_eq(H->unreserve(ctx, va, 8 * G), DV_OK);
    cr_expect_eq(fw_regions(), 0);
    cr_expect_eq(H->release(ctx, m), DV_OK);
    H->fini(ctx);
}

Test(host_win, unmap_failure_reported) {
    void *ctx = open_ctx(0, 64 * G);
    uint64_t va = 0;
    cr_assert_eq(H->reserve(ctx, 4 * G, &va), DV_OK);
    dv_hal_mem_t m = make(ctx, G);
    cr_assert_eq(H->map(ctx, va, G, m), DV_OK);
    fw_fail("UnmapViewOfFile2", 1, ERROR_INVALID_ADDRESS);
    cr_expect_eq(H->unmap(ctx, va, G), DV_ERROR_BACKEND);
    native_contains("UnmapViewOfFile2");
    cr_expect_eq(fw_views(), 1); /* still mapped, and still known so */
    cr_expect_eq(H->release(ctx, m), DV_ERROR_BUSY);
    cr_assert_eq(H->unmap(ctx, va, G), DV_OK);
    cr_expect_eq(H->release(ctx, m), DV_OK);
    cr_assert_eq(H->unreserve(ctx, va, 4 * G), DV_OK);
    H->fini(ctx);
}

/* Random maps and unmaps against a model of which granules are mapped. */
Test(host_win, random_against_model) {
    enum { N = 48, STEPS = 3000 };
    void *ctx = open_ctx(0, 1024 * G);
    uint64_t va = 0;
    cr_assert_eq(H->reserve(ctx, N * G, &va), DV_OK);
    int owner[N]; /* -1 free, else the index of the view's first granule */
    int len[N];
    dv_hal_mem_t mem[N];
    for (int i = 0; i < N; i++) {
        owner[i] = -1;
        len[i] = 0;
    }
    srand(1234);
    for (int step = 0; step < STEPS; step++) {
        int at = rand() % N, n = 1 + rand() % 3;
        if (at + n > N) {
            n = N - at;
        }
        int is_free = 1;
        for (int k = at; k < at + n; k++) {
            is_free &= owner[k] < 0;
        }
        if (is_free) {
            mem[at] = make(ctx, (uint64_t)n * G);
            cr_assert_eq(H->map(ctx, va + (uint64_t)at * G, (uint64_t)n * G,
                                mem[at]),
                         DV_OK, "step %d: %s", step, dv_last_error());
            for (int k = at; k < at + n; k++) {
                owner[k] = at;
            }
            len[at] = n;
            *(volatile int *)(uintptr_t)(va + (uint64_t)at * G) = step;
        } else if (owner[at] >= 0) {
            int s = owner[at];
            cr_assert_eq(H->unmap(ctx, va + (uint64_t)s * G,
                                  (uint64_t)len[s] * G),
                         DV_OK, "step %d", step);
            cr_assert_eq(H->release(ctx, mem[s]), DV_OK);
            for (int k = s; k < s + len[s]; k++) {
                owner[k] = -1;
            }
        }
        /* Pieces: one per view, one per maximal free run. */
        int expect = 0;
        for (int k = 0; k < N; k++) {
            if (owner[k] >= 0 ? owner[k] == k : (k == 0 || owner[k - 1] >= 0)) {
                expect++;
            }
        }
        cr_assert_eq(fw_regions(), expect, "step %d", step);
        cr_assert_eq(fw_check(), 0, "step %d", step);
    }
    cr_assert_eq(H->unreserve(ctx, va, N * G), DV_OK);
    for (int k = 0; k < N; k++) {
        if (owner[k] == k) {
            cr_expect_eq(H->release(ctx, mem[k]), DV_OK);
        }
    }
    cr_expect_eq(fw_regions(), 0);
    cr_expect_eq(fw_sections(), 0);
    H->fini(ctx);
}

/* The core on top: faults, data, eviction under the capacity, teardown. */
Test(host_win, core_end_to_end) {
    H = dv__test_hal_host_win();
    dv_device_options_t o;
    dv_device_options_init(&o);
    o.page_size = G;
    char opts[64];
    snprintf(opts, sizeof(opts), "capacity=%llu", (unsigned long long)(6 * G));
    o.backend_options = opts;
    dv_device_t *dev = NULL;
    cr_assert_eq(dv_device_open_hal(H, &o, &dev), DV_OK, "%s", dv_last_error());
    dv_vbar_t *a = NULL, *b = NULL;
    cr_assert_eq(dv_vbar_create(dev, 8 * G, &a), DV_OK);
    dv_vbar_info_t ia;
    cr_assert_eq(dv_vbar_get_info(dev, a, &ia), DV_OK);
    uint64_t gen = 0, gen2 = 0;
    cr_assert_eq(dv_fault(dev, a, 0, 4 * G, &gen), DV_OK, "%s", dv_last_error());
    memset((void *)(uintptr_t)ia.base, 0x11, 4 * G);
    cr_assert_eq(dv_unpin(dev, a, 0, 4 * G, NULL), DV_OK);
    cr_assert_eq(dv_fault(dev, a, 0, 4 * G, &gen2), DV_OK);
    cr_expect_eq(gen, gen2);
    cr_expect_eq(((unsigned char *)(uintptr_t)ia.base)[4 * G - 1], 0x11);
    cr_assert_eq(dv_unpin(dev, a, 0, 4 * G, NULL), DV_OK);
    /* A newer VBAR takes memory from the older one. */
    cr_assert_eq(dv_vbar_create(dev, 8 * G, &b), DV_OK);
    cr_assert_eq(dv_fault(dev, b, 0, 5 * G, NULL), DV_OK, "%s", dv_last_error());
    dv_device_stats_t st;
    cr_assert_eq(dv_device_get_stats(dev, &st), DV_OK);
    cr_expect_geq(st.evictions, 3);
    cr_expect_leq(st.resident_bytes, 6 * G);
    cr_expect_eq(dv_device_check(dev), DV_OK, "%s", dv_last_error());
    cr_assert_eq(dv_unpin(dev, b, 0, 5 * G, NULL), DV_OK);
    cr_assert_eq(dv_vbar_destroy(dev, a), DV_OK);
    cr_assert_eq(dv_vbar_destroy(dev, b), DV_OK);
    cr_assert_eq(dv_device_close(dev), DV_OK);
    cr_expect_eq(fw_regions(), 0);
    cr_expect_eq(fw_sections(), 0);
}
