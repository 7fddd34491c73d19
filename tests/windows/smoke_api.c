/*
 * smoke_api.c - the public API on Windows through dynvram.dll: backend
 * probing, and the host backend end to end (reserve, fault, copies, data
 * surviving until eviction, eviction under the simulated capacity, reuse of
 * placeholders after many map/unmap cycles).
 *
 * Where the host backend is unavailable (Windows before 10 1803, Wine 8
 * without placeholder support) the host cases check that it says so and
 * are skipped; "host backend: available" or "host backend: unavailable"
 * is printed for .ci/mingw.sh.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dynvram.h"
#include "dynvram_hal.h"

#define PAGE (64ull << 10)

static void test_results_and_backends(void) {
    CHECK(strcmp(dv_result_name(DV_ERROR_BUSY), "DV_ERROR_BUSY") == 0);
    CHECK(dv_result_str((dv_result_t)12345) != NULL);
    CHECK(dv_backend_count() == 4);
    const char *order[] = {"cuda", "hip", "levelzero", "host"};
    for (int i = 0; i < 4 && i < dv_backend_count(); i++) {
        dv_backend_info_t bi;
        CHECK_R(dv_backend_probe(i, &bi), DV_OK);
        CHECK(strcmp(bi.name, order[i]) == 0);
        CHECK(bi.available == 0 || bi.available == 1);
        /* An unavailable backend always says why. */
        CHECK(bi.available || bi.reason[0] != '\0');
        printf("backend %-9s available=%d devices=%d (%s)\n", bi.name,
               bi.available, bi.device_count, bi.reason);
    }
    dv_backend_info_t bi;
    CHECK_R(dv_backend_probe(4, &bi), DV_ERROR_INVALID_ARGUMENT);
    CHECK(dv_hal_by_name("host") == dv_hal_host());
    CHECK(dv_hal_by_name("nope") == NULL);

    dv_device_options_t o;
    dv_device_options_init(&o);
    o.backend = "nope";
    dv_device_t *dev = NULL;
    CHECK_R(dv_device_open(&o, &dev), DV_ERROR_INVALID_ARGUMENT);
    CHECK(dev == NULL);
    CHECK(strstr(dv_last_error(), "nope") != NULL);
}

static int host_available(void) {
    int count = 0;
    char reason[256] = "";
    dv_result_t r = dv_hal_host()->probe(&count, reason, sizeof(reason));
    if (r == DV_OK && count > 0) {
        printf("host backend: available\n");
        return 1;
    }
    printf("host backend: unavailable (%s)\n", reason);
    CHECK(r == DV_ERROR_BACKEND_UNAVAILABLE);
    CHECK(reason[0] != '\0');
    dv_device_options_t o;
    dv_device_options_init(&o);
    o.backend = "host";
    dv_device_t *dev = NULL;
    CHECK_R(dv_device_open(&o, &dev), DV_ERROR_BACKEND_UNAVAILABLE);
    return 0;
}

static dv_device_t *open_host(int ordinal, uint64_t capacity) {
    dv_device_options_t o;
    dv_device_options_init(&o);
    o.backend = "host";
    o.ordinal = ordinal;
    o.page_size = PAGE;
    char opts[64];
    snprintf(opts, sizeof(opts), "capacity=%llu", (unsigned long long)capacity);
    o.backend_options = opts;
    o.pool_limit = 0; /* every eviction goes back to the backend */
    dv_device_t *dev = NULL;
    CHECK_R(dv_device_open(&o, &dev), DV_OK);
    return dev;
}

static void fill(unsigned char *p, uint64_t n, unsigned seed) {
    for (uint64_t i = 0; i < n; i++) {
        p[i] = (unsigned char)(seed * 31u + i * 7u);
    }
}

static int same(const unsigned char *p, uint64_t n, unsigned seed) {
    for (uint64_t i = 0; i < n; i++) {
        if (p[i] != (unsigned char)(seed * 31u + i * 7u)) {
            return 0;
        }
    }
    return 1;
}

static void test_host_caps_and_ordinals(void) {
    dv_device_t *dev = open_host(0, 16 * PAGE);
    if (!dev) {
        return;
    }
    dv_device_caps_t c;
    CHECK_R(dv_device_get_caps(dev, &c), DV_OK);
    CHECK(strcmp(c.backend, "host") == 0);
    CHECK(c.granularity == PAGE); /* the allocation granularity */
    CHECK(c.page_size == PAGE);
    CHECK(c.total_memory == 16 * PAGE);
    CHECK(c.flags & DV_CAP_HOST_ACCESSIBLE);
    CHECK(c.flags & DV_CAP_FENCES);
    dv_device_t *dev3 = open_host(3, 0);
    CHECK(dev3 != NULL);
    if (dev3) {
        CHECK_R(dv_device_close(dev3), DV_OK);
    }
    dv_device_options_t o;
    dv_device_options_init(&o);
    o.backend = "host";
    o.ordinal = 4;
    dv_device_t *none = NULL;
    CHECK_R(dv_device_open(&o, &none), DV_ERROR_DEVICE_NOT_FOUND);
    CHECK_R(dv_device_close(dev), DV_OK);

    /* DYNVRAM_HOST_CAPACITY when the option is 0. */
    CHECK(_putenv("DYNVRAM_HOST_CAPACITY=3M") == 0);
    dev = open_host(0, 0);
    if (dev) {
        CHECK_R(dv_device_get_caps(dev, &c), DV_OK);
        CHECK(c.total_memory == (3ull << 20));
        CHECK_R(dv_device_close(dev), DV_OK);
    }
    CHECK(_putenv("DYNVRAM_HOST_CAPACITY=") == 0);
}

static void test_host_data(void) {
    dv_device_t *dev = open_host(0, 64 * PAGE);
    if (!dev) {
        return;
    }
    dv_vbar_t *vb = NULL;
    CHECK_R(dv_vbar_create(dev, 8 * PAGE, &vb), DV_OK);
    dv_vbar_info_t info;
    CHECK_R(dv_vbar_get_info(dev, vb, &info), DV_OK);
    CHECK(info.base % PAGE == 0);
    CHECK(info.page_count == 8);

    /* Pages 2..4 in one fault: the middle of the placeholder, split on
     * both sides. Write through the CPU pointer, read back by copy. */
    uint64_t gen = 0, gen2 = 0;
    CHECK_R(dv_fault(dev, vb, 2 * PAGE, 3 * PAGE, &gen), DV_OK);
    unsigned char *p = (unsigned char *)(uintptr_t)(info.base + 2 * PAGE);
    fill(p, 3 * PAGE, 1);
    unsigned char *buf = malloc(3 * PAGE);
    CHECK(buf != NULL);
    if (buf) {
        CHECK_R(dv_copy_d2h(dev, buf, info.base + 2 * PAGE, 3 * PAGE, NULL),
                DV_OK);
        CHECK(same(buf, 3 * PAGE, 1));
        fill(buf, PAGE, 2);
        CHECK_R(dv_copy_h2d(dev, info.base + 3 * PAGE, buf, PAGE, NULL), DV_OK);
        CHECK(same(p + PAGE, PAGE, 2));
    }
    /* Copies touching an absent page are refused, not a crash. */
    CHECK_R(dv_copy_h2d(dev, info.base, buf, PAGE, NULL),
            DV_ERROR_INVALID_ARGUMENT);
    CHECK_R(dv_unpin(dev, vb, 2 * PAGE, 3 * PAGE, NULL), DV_OK);

    /* Still resident: the same generation and the same bytes. */
    CHECK_R(dv_fault(dev, vb, 2 * PAGE, 3 * PAGE, &gen2), DV_OK);
    CHECK(gen2 == gen);
    CHECK(same(p, PAGE, 1) && same(p + PAGE, PAGE, 2));
    CHECK_R(dv_unpin(dev, vb, 2 * PAGE, 3 * PAGE, NULL), DV_OK);

    /* Evict everything, then fill every page: each unmap coalesced the
     * placeholders, each map split them again. */
    for (int round = 0; round < 20; round++) {
        uint64_t freed = 0;
        CHECK_R(dv_vbar_evict(dev, vb, UINT64_MAX, &freed), DV_OK);
        CHECK_R(dv_vbar_prioritize(dev, vb), DV_OK);
        for (uint64_t i = 0; i < 8; i++) {
            uint64_t pg = (i * 5 + (uint64_t)round) % 8; /* scattered order */
            CHECK_R(dv_fault(dev, vb, pg * PAGE, PAGE, NULL), DV_OK);
            fill((unsigned char *)(uintptr_t)(info.base + pg * PAGE), PAGE,
                 (unsigned)(pg + 10 * (unsigned)round));
        }
        int ok = 1;
        for (uint64_t pg = 0; pg < 8; pg++) {
            ok &= same((unsigned char *)(uintptr_t)(info.base + pg * PAGE),
                       PAGE, (unsigned)(pg + 10 * (unsigned)round));
        }
        CHECK(ok);
        CHECK_R(dv_unpin(dev, vb, 0, 8 * PAGE, NULL), DV_OK);
    }
    CHECK_R(dv_device_check(dev), DV_OK);
    CHECK_R(dv_vbar_destroy(dev, vb), DV_OK);
    CHECK_R(dv_device_close(dev), DV_OK);
    free(buf);
}

static void test_host_pressure(void) {
    dv_device_t *dev = open_host(1, 4 * PAGE);
    if (!dev) {
        return;
    }
    dv_vbar_t *low = NULL, *high = NULL;
    CHECK_R(dv_vbar_create(dev, 4 * PAGE, &low), DV_OK);
    CHECK_R(dv_fault(dev, low, 0, 4 * PAGE, NULL), DV_OK);
    /* Full and all pinned: a newer VBAR cannot get memory. */
    CHECK_R(dv_vbar_create(dev, 4 * PAGE, &high), DV_OK);
    CHECK_R(dv_fault(dev, high, 0, PAGE, NULL), DV_OFFLOADED);
    CHECK_R(dv_unpin(dev, low, 0, 4 * PAGE, NULL), DV_OK);
    /* Unpinned, the older VBAR's pages give way to the newer one. */
    CHECK_R(dv_fault(dev, high, 0, 2 * PAGE, NULL), DV_OK);
    dv_device_stats_t st;
    CHECK_R(dv_device_get_stats(dev, &st), DV_OK);
    CHECK(st.evictions >= 2);
    CHECK(st.resident_bytes <= 4 * PAGE);
    CHECK_R(dv_unpin(dev, high, 0, 2 * PAGE, NULL), DV_OK);
    CHECK_R(dv_device_check(dev), DV_OK);
    CHECK_R(dv_device_close(dev), DV_ERROR_BUSY); /* VBARs still exist */
    CHECK_R(dv_vbar_destroy(dev, low), DV_OK);
    CHECK_R(dv_vbar_destroy(dev, high), DV_OK);
    CHECK_R(dv_device_close(dev), DV_OK);
}

int main(void) {
    test_results_and_backends();
    if (host_available()) {
        test_host_caps_and_ordinals();
        test_host_data();
        test_host_pressure();
    } else {
        printf("host backend cases skipped\n");
    }
    return check_report();
}
