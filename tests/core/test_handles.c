/*
 * test_handles.c - dead, junk and foreign handles are refused before
 * anything is read through them, and a dead handle never aliases a live
 * object, however many objects were made and destroyed since.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Before handles were table entries, a destroyed VBAR's memory went back to
 * malloc and the next VBAR often got the same address: its old handle then
 * destroyed the new VBAR (this suite's first test did exactly that).
 */
#include <stdlib.h>
#include <string.h>

#include "testdev.h"

#define P TD_PAGE
#define N 12

/* The call fails with DV_ERROR_INVALID_ARGUMENT and a message naming `kind`. */
#define REFUSED(call, kind)                                                    \
    do {                                                                       \
        TD_IS(call, DV_ERROR_INVALID_ARGUMENT);                                \
        cr_assert(strstr(dv_last_error(), kind) != NULL,                       \
                  "%s: message '%s' does not name the %s", #call,             \
                  dv_last_error(), kind);                                      \
    } while (0)

/* A live VBAR is untouched: same base, size and resident pages as noted. */
static void still_alive(dv_device_t *dev, dv_vbar_t *v, uint64_t base,
                        uint64_t resident) {
    dv_vbar_info_t info;
    TD_OK(dv_vbar_get_info(dev, v, &info));
    cr_assert_eq(info.base, base, "a live VBAR moved");
    cr_assert_eq(info.resident_bytes, resident, "a live VBAR lost pages");
}

Test(handles, dead_vbars_never_alias_new_ones) {
    dv_device_t *dev = td_open(0);
    dv_vbar_t *dead[N], *live[N];
    uint64_t base[N];
    for (int i = 0; i < N; i++) {
        TD_OK(dv_vbar_create(dev, 2 * P, &dead[i]));
    }
    for (int i = 0; i < N; i++) {
        TD_OK(dv_vbar_destroy(dev, dead[i]));
    }
    for (int i = 0; i < N; i++) {
        TD_OK(dv_vbar_create(dev, 2 * P, &live[i]));
        uint64_t g;
        TD_OK(dv_fault(dev, live[i], 0, P, &g));
        TD_OK(dv_unpin(dev, live[i], 0, P, NULL));
        dv_vbar_info_t info;
        TD_OK(dv_vbar_get_info(dev, live[i], &info));
        base[i] = info.base;
    }
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < N; j++) {
            cr_assert_neq((void *)dead[i], (void *)live[j],
                          "a dead handle equals a live one");
        }
        uint64_t g;
        REFUSED(dv_vbar_destroy(dev, dead[i]), "VBAR handle");
        REFUSED(dv_fault(dev, dead[i], 0, P, &g), "VBAR handle");
        REFUSED(dv_unpin(dev, dead[i], 0, P, NULL), "VBAR handle");
        REFUSED(dv_vbar_prioritize(dev, dead[i]), "VBAR handle");
        REFUSED(dv_vbar_evict(dev, dead[i], P, NULL), "VBAR handle");
    }
    for (int i = 0; i < N; i++) {
        still_alive(dev, live[i], base[i], P);
        TD_OK(dv_vbar_destroy(dev, live[i]));
    }
    td_check(dev);
    TD_OK(dv_device_close(dev));
}

Test(handles, many_cycles_keep_every_dead_handle_dead) {
    dv_device_t *dev = td_open(0);
    enum { CYCLES = 2000 };
    dv_vbar_t **old = calloc(CYCLES, sizeof(*old));
    cr_assert(old);
    dv_vbar_t *keep = NULL;
    TD_OK(dv_vbar_create(dev, P, &keep));
    for (int c = 0; c < CYCLES; c++) {
        TD_OK(dv_vbar_create(dev, P, &old[c]));
        TD_OK(dv_vbar_destroy(dev, old[c]));
    }
    dv_vbar_info_t info;
    for (int c = 0; c < CYCLES; c++) {
        TD_IS(dv_vbar_get_info(dev, old[c], &info), DV_ERROR_INVALID_ARGUMENT);
    }
    TD_OK(dv_vbar_get_info(dev, keep, &info));
    cr_assert_eq(td_stats(dev).vbar_count, 1);
    TD_OK(dv_vbar_destroy(dev, keep));
    free(old);
    TD_OK(dv_device_close(dev));
}

Test(handles, closed_devices_are_refused) {
    dv_device_t *dev = td_open(0);
    TD_OK(dv_device_close(dev));
    REFUSED(dv_device_close(dev), "device handle");
    dv_device_stats_t st;
    REFUSED(dv_device_get_stats(dev, &st), "device handle");
    REFUSED(dv_device_check(dev), "device handle");
    dv_vbar_t *v = NULL;
    REFUSED(dv_vbar_create(dev, P, &v), "device handle");
    REFUSED(dv_framework_reserve(dev, P), "device handle");
    REFUSED(dv_stream_synchronize(dev, NULL), "device handle");
    /* A new device does not revive the old handle. */
    dv_device_t *again = td_open(0);
    cr_assert_neq((void *)again, (void *)dev);
    REFUSED(dv_device_close(dev), "device handle");
    TD_OK(dv_device_get_stats(again, &st));
    TD_OK(dv_device_close(again));
}

Test(handles, junk_and_swapped_handles) {
    dv_device_t *dev = td_open(0);
    dv_vbar_t *v = NULL;
    TD_OK(dv_vbar_create(dev, 2 * P, &v));
    uint64_t g;
    uint64_t stack_junk[16] = {0};
    void *heap_junk = calloc(1, 256);
    void *junk[] = {(void *)0x10, (void *)stack_junk, heap_junk,
                    (void *)(uintptr_t)0xd2ffffffffffffffull,
                    (void *)(uintptr_t)UINT64_MAX};
    for (size_t k = 0; k < sizeof(junk) / sizeof(junk[0]); k++) {
        REFUSED(dv_fault(dev, (dv_vbar_t *)junk[k], 0, P, &g), "VBAR handle");
        REFUSED(dv_fault((dv_device_t *)junk[k], v, 0, P, &g), "device handle");
        REFUSED(dv_device_check((dv_device_t *)junk[k]), "device handle");
    }
    /* A live handle with another generation: the slot exists, the handle
     * does not. */
    uint64_t forged = (uint64_t)(uintptr_t)v ^ (1ull << 20);
    REFUSED(dv_vbar_prioritize(dev, (dv_vbar_t *)(uintptr_t)forged),
            "VBAR handle");
    /* A VBAR passed as a device and a device passed as a VBAR. */
    REFUSED(dv_device_check((dv_device_t *)v), "VBAR handle, not a device");
    REFUSED(dv_vbar_prioritize(dev, (dv_vbar_t *)dev),
            "device handle, not a VBAR");
    free(heap_junk);
    td_check(dev);
    TD_OK(dv_vbar_destroy(dev, v));
    TD_OK(dv_device_close(dev));
}

Test(handles, errors_name_the_call_and_success_clears_them) {
    dv_device_t *dev = td_open(0);
    dv_vbar_t *v = NULL;
    TD_OK(dv_vbar_create(dev, 2 * P, &v));
    uint64_t g;
    TD_IS(dv_fault(dev, v, 0, 0, &g), DV_ERROR_INVALID_ARGUMENT);
    cr_assert(strstr(dv_last_error(), "dv_fault") != NULL);
    /* The first fault populates, the second hits the resident fast path:
     * both clear the message, as does each unpin. */
    TD_OK(dv_fault(dev, v, 0, P, &g));
    cr_assert_str_eq(dv_last_error(), "", "populating fault kept a message");
    TD_IS(dv_fault(dev, v, 0, 0, &g), DV_ERROR_INVALID_ARGUMENT);
    TD_OK(dv_fault(dev, v, 0, P, &g));
    cr_assert_str_eq(dv_last_error(), "", "resident fault kept a message");
    TD_IS(dv_unpin(dev, v, 0, 0, NULL), DV_ERROR_INVALID_ARGUMENT);
    TD_OK(dv_unpin(dev, v, 0, P, NULL));
    cr_assert_str_eq(dv_last_error(), "", "unpin kept a message");
    TD_IS(dv_unpin(dev, v, 0, 0, NULL), DV_ERROR_INVALID_ARGUMENT);
    TD_OK(dv_unpin(dev, v, 0, P, NULL));
    cr_assert_str_eq(dv_last_error(), "", "last unpin kept a message");
    TD_OK(dv_vbar_destroy(dev, v));
    TD_OK(dv_device_close(dev));
}
