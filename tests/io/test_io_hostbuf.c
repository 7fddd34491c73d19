/*
 * test_io_hostbuf.c - host buffers on every backend: growth at a fixed
 * address, registrations tracked one by one, the truncate rules (cut,
 * split, refuse), explicit register/unregister, prewarm, copies to the
 * device, bad handles and bad ranges.
 * SPDX-License-Identifier: Apache-2.0
 */
#define _GNU_SOURCE
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "iotest.h"

#define MIB (1ull << 20)

static uint64_t pg(void) { return (uint64_t)sysconf(_SC_PAGESIZE); }

static dv_hostbuf_info_t info(dv_device_t *d, dv_hostbuf_t *hb) {
    dv_hostbuf_info_t i;
    TD_OK(dv_hostbuf_get_info(d, hb, &i));
    return i;
}

static uint32_t regs(dv_device_t *d, dv_hostbuf_t *hb, dv_hostbuf_range_t *r,
                     uint32_t cap) {
    uint32_t n = 0;
    TD_OK(dv_hostbuf_registrations(d, hb, r, cap, &n));
    return n;
}

/* Resident pages of [p, p + n) (mincore). */
static uint64_t resident(const void *p, uint64_t n) {
    uint64_t pages = (n + pg() - 1) / pg(), count = 0;
    unsigned char v[4096];
    cr_assert_leq(pages, sizeof(v));
    cr_assert_eq(mincore((void *)p, n, v), 0);
    for (uint64_t i = 0; i < pages; i++) {
        count += v[i] & 1;
    }
    return count;
}

Test(io_hostbuf, grows_at_a_fixed_address_and_tracks_every_part) {
    dv_device_t *d = td_open(0);
    uint32_t flag = tio_can_register(d) ? DV_HOSTBUF_REGISTER : 0;
    uint64_t before = tio_host_regs();
    dv_hostbuf_t *hb = NULL;
    TD_OK(dv_hostbuf_create(d, 64 * MIB, &hb));
    dv_hostbuf_info_t i0 = info(d, hb);
    cr_assert_eq(i0.size, 0);
    cr_assert_eq(i0.committed, 0);
    cr_assert_eq(i0.max_size, 64 * MIB);
    uint64_t off = 99;
    for (int k = 0; k < 4; k++) {
        TD_OK(dv_hostbuf_extend(d, hb, MIB + 100, flag, &off));
        cr_assert_eq(off, k * (MIB + 100), "part %d at %llu", k,
                     (unsigned long long)off);
        uint8_t *b = info(d, hb).base;
        cr_assert_eq(b, i0.base, "the base moved");
        memset(b + off, 0x40 + k, MIB + 100);
    }
    uint8_t *b = i0.base;
    for (int k = 0; k < 4; k++) {
        cr_assert_eq(b[k * (MIB + 100) + 7], 0x40 + k, "part %d lost", k);
    }
    dv_hostbuf_info_t i1 = info(d, hb);
    cr_assert_eq(i1.size, 4 * (MIB + 100));
    cr_assert_eq(i1.committed, (i1.size + pg() - 1) / pg() * pg());
    if (flag) {
        dv_hostbuf_range_t r[8];
        cr_assert_eq(regs(d, hb, r, 8), 4, "every part is registered");
        uint64_t end = 0;
        for (int k = 0; k < 4; k++) {
            cr_assert_eq(r[k].offset, end, "parts are contiguous pages");
            cr_assert_eq(r[k].offset % pg(), 0);
            end = r[k].offset + r[k].size;
        }
        cr_assert_eq(end, i1.committed);
        cr_assert_eq(i1.registered_bytes, end);
        if (!strcmp(td_backend(), "host")) {
            cr_assert_eq(tio_host_regs(), before + 4);
        }
    }
    TD_OK(dv_hostbuf_destroy(d, hb));
    cr_assert_eq(tio_host_regs(), before, "destroy unregistered everything");
    TD_OK(dv_device_close(d));
}

Test(io_hostbuf, extend_refuses_bad_input_and_changes_nothing) {
    dv_device_t *d = td_open(0);
    dv_hostbuf_t *hb = NULL;
    TD_OK(dv_hostbuf_create(d, 4 * MIB, &hb));
    TD_OK(dv_hostbuf_extend(d, hb, MIB, 0, NULL));
    dv_hostbuf_info_t a = info(d, hb);
    TIO_BAD(dv_hostbuf_extend(d, hb, 3 * MIB + 1, 0, NULL),
            DV_ERROR_OUT_OF_RANGE, "max_size");
    TIO_BAD(dv_hostbuf_extend(d, hb, UINT64_MAX, 0, NULL),
            DV_ERROR_OUT_OF_RANGE, "exceed");
    TIO_BAD(dv_hostbuf_extend(d, hb, 0, 0, NULL), DV_ERROR_INVALID_ARGUMENT,
            "0");
    TIO_BAD(dv_hostbuf_extend(d, hb, 1, 0x80, NULL), DV_ERROR_INVALID_ARGUMENT,
            "flags");
    dv_hostbuf_info_t b = info(d, hb);
    cr_assert_eq(memcmp(&a, &b, sizeof(a)), 0, "state changed");
    dv_hostbuf_t *other = (dv_hostbuf_t *)1;
    TIO_BAD(dv_hostbuf_create(d, 0, &other), DV_ERROR_INVALID_ARGUMENT,
            "max_size");
    cr_assert_null(other, "a failed create left *out set");
    TIO_BAD(dv_hostbuf_create(d, UINT64_MAX, &other), DV_ERROR_INVALID_ARGUMENT,
            "max_size");
    TIO_BAD(dv_hostbuf_create(d, MIB, NULL), DV_ERROR_INVALID_ARGUMENT, "out");
    if (!tio_can_register(d)) {
        TIO_BAD(dv_hostbuf_extend(d, hb, MIB, DV_HOSTBUF_REGISTER, NULL),
                DV_ERROR_NOT_SUPPORTED, "register");
        dv_hostbuf_info_t c = info(d, hb);
        cr_assert_eq(memcmp(&a, &c, sizeof(a)), 0, "a failed extend grew");
    }
    TD_OK(dv_hostbuf_destroy(d, hb));
    TD_OK(dv_device_close(d));
}

Test(io_hostbuf, truncate_cuts_splits_or_refuses) {
    dv_device_t *d = td_open(0);
    if (!tio_can_register(d)) {
        cr_skip_test("backend %s cannot register host memory", td_backend());
    }
    uint64_t before = tio_host_regs();
    dv_hostbuf_t *hb = NULL;
    TD_OK(dv_hostbuf_create(d, 64 * MIB, &hb));
    TD_OK(dv_hostbuf_extend(d, hb, 2 * MIB, DV_HOSTBUF_REGISTER, NULL));
    TD_OK(dv_hostbuf_extend(d, hb, 4 * MIB, DV_HOSTBUF_REGISTER, NULL));
    TD_OK(dv_hostbuf_extend(d, hb, 2 * MIB, DV_HOSTBUF_REGISTER, NULL));
    uint8_t *b = info(d, hb).base;
    memset(b, 0x5a, 8 * MIB);
    dv_hostbuf_info_t a = info(d, hb);
    /* Without the flag nothing registered may be dropped. */
    TIO_BAD(dv_hostbuf_truncate(d, hb, 6 * MIB, 0), DV_ERROR_BUSY,
            "DV_HOSTBUF_UNREGISTER");
    TIO_BAD(dv_hostbuf_truncate(d, hb, 3 * MIB, 0), DV_ERROR_BUSY,
            "reach past");
    dv_hostbuf_info_t c = info(d, hb);
    cr_assert_eq(memcmp(&a, &c, sizeof(a)), 0, "a refused truncate changed");
    /* At a boundary: the last part is unregistered. */
    TD_OK(dv_hostbuf_truncate(d, hb, 6 * MIB, DV_HOSTBUF_UNREGISTER));
    dv_hostbuf_range_t r[4];
    cr_assert_eq(regs(d, hb, r, 4), 2);
    cr_assert_eq(r[1].offset + r[1].size, 6 * MIB);
    /* Inside the 4 MiB part: it is split, its lower part stays pinned. */
    uint64_t cut = 3 * MIB + 100;
    uint64_t keep = (cut + pg() - 1) / pg() * pg();
    TD_OK(dv_hostbuf_truncate(d, hb, cut, DV_HOSTBUF_UNREGISTER));
    cr_assert_eq(regs(d, hb, r, 4), 2);
    cr_assert_eq(r[1].offset, 2 * MIB);
    cr_assert_eq(r[1].offset + r[1].size, keep, "split at %llu",
                 (unsigned long long)keep);
    dv_hostbuf_info_t t = info(d, hb);
    cr_assert_eq(t.size, cut);
    cr_assert_eq(t.committed, keep);
    cr_assert_eq(t.registered_bytes, keep);
    for (uint64_t k = 0; k < cut; k += 4096) {
        cr_assert_eq(b[k], 0x5a, "byte %llu below the cut lost",
                     (unsigned long long)k);
    }
    /* A registration ending inside the kept page stays as it is. */
    TD_OK(dv_hostbuf_truncate(d, hb, cut - 10, 0));
    cr_assert_eq(regs(d, hb, r, 4), 2);
    /* Growing again gives zeros where the cut was. */
    TD_OK(dv_hostbuf_extend(d, hb, 2 * MIB, 0, NULL));
    cr_assert_eq(b[keep + 4096], 0, "decommitted memory came back dirty");
    TIO_BAD(dv_hostbuf_truncate(d, hb, 64 * MIB, 0), DV_ERROR_OUT_OF_RANGE,
            "above");
    TIO_BAD(dv_hostbuf_truncate(d, hb, 0, 0x40), DV_ERROR_INVALID_ARGUMENT,
            "flags");
    TD_OK(dv_hostbuf_truncate(d, hb, 0, DV_HOSTBUF_UNREGISTER));
    cr_assert_eq(regs(d, hb, r, 4), 0);
    cr_assert_eq(info(d, hb).committed, 0);
    cr_assert_eq(tio_host_regs(), before);
    TD_OK(dv_hostbuf_destroy(d, hb));
    TD_OK(dv_device_close(d));
}

Test(io_hostbuf, explicit_registrations) {
    dv_device_t *d = td_open(0);
    dv_hostbuf_t *hb = NULL;
    TD_OK(dv_hostbuf_create(d, 16 * MIB, &hb));
    TD_OK(dv_hostbuf_extend(d, hb, 4 * MIB, 0, NULL));
    if (!tio_can_register(d)) {
        TIO_BAD(dv_hostbuf_register(d, hb, 0, MIB), DV_ERROR_NOT_SUPPORTED,
                "register");
        TD_OK(dv_hostbuf_destroy(d, hb));
        TD_OK(dv_device_close(d));
        return;
    }
    TD_OK(dv_hostbuf_register(d, hb, MIB, MIB));
    TIO_BAD(dv_hostbuf_register(d, hb, MIB + 10, 10), DV_ERROR_INVALID_ARGUMENT,
            "overlaps the registration [1048576, +1048576)");
    TIO_BAD(dv_hostbuf_register(d, hb, 0, MIB + 1), DV_ERROR_INVALID_ARGUMENT,
            "overlaps");
    TIO_BAD(dv_hostbuf_register(d, hb, 3 * MIB, 2 * MIB), DV_ERROR_OUT_OF_RANGE,
            "outside");
    TIO_BAD(dv_hostbuf_register(d, hb, 0, 0), DV_ERROR_INVALID_ARGUMENT,
            "size is 0");
    TIO_BAD(dv_hostbuf_register(d, hb, UINT64_MAX, 2), DV_ERROR_OUT_OF_RANGE,
            "outside");
    TD_OK(dv_hostbuf_register(d, hb, 0, MIB)); /* adjacent is fine */
    TIO_BAD(dv_hostbuf_unregister(d, hb, MIB + 4096), DV_ERROR_INVALID_ARGUMENT,
            "no registration starts");
    dv_hostbuf_range_t r[4];
    cr_assert_eq(regs(d, hb, r, 4), 2);
    cr_assert_eq(r[0].offset, 0);
    cr_assert_eq(r[1].offset, MIB);
    uint32_t n = 0;
    TD_OK(dv_hostbuf_registrations(d, hb, NULL, 0, &n));
    cr_assert_eq(n, 2);
    TIO_BAD(dv_hostbuf_registrations(d, hb, NULL, 1, &n),
            DV_ERROR_INVALID_ARGUMENT, "NULL");
    TD_OK(dv_hostbuf_unregister(d, hb, MIB));
    TD_OK(dv_hostbuf_register(d, hb, MIB, 2 * MIB));
    TIO_BAD(dv_hostbuf_unregister(d, hb, MIB * 3), DV_ERROR_INVALID_ARGUMENT,
            "no registration");
    cr_assert_eq(info(d, hb).registered_bytes, 3 * MIB);
    TD_OK(dv_hostbuf_destroy(d, hb));
    TD_OK(dv_device_close(d));
}

Test(io_hostbuf, prewarm_makes_pages_resident_and_keeps_contents) {
    dv_device_t *d = td_open(0);
    dv_hostbuf_t *hb = NULL;
    TD_OK(dv_hostbuf_create(d, 64 * MIB, &hb));
    TD_OK(dv_hostbuf_extend(d, hb, 8 * MIB, 0, NULL));
    uint8_t *b = info(d, hb).base;
    cr_assert_eq(resident(b, 8 * MIB), 0, "fresh memory is not resident");
    for (uint64_t k = 0; k < MIB; k++) {
        b[k] = (uint8_t)(k * 7);
    }
    TD_OK(dv_hostbuf_prewarm(d, hb, 0, 8 * MIB, 3));
    cr_assert_eq(resident(b, 8 * MIB), 8 * MIB / pg());
    for (uint64_t k = 0; k < MIB; k++) {
        cr_assert_eq(b[k], (uint8_t)(k * 7), "prewarm changed byte %llu",
                     (unsigned long long)k);
    }
    /* The flag on extend prewarms the new part. */
    TD_OK(dv_hostbuf_extend(d, hb, 4 * MIB, DV_HOSTBUF_PREWARM, NULL));
    cr_assert_eq(resident(b + 8 * MIB, 4 * MIB), 4 * MIB / pg());
    TIO_BAD(dv_hostbuf_prewarm(d, hb, 12 * MIB, 1, 0), DV_ERROR_OUT_OF_RANGE,
            "outside");
    TIO_BAD(dv_hostbuf_prewarm(d, hb, 0, 0, 0), DV_ERROR_INVALID_ARGUMENT,
            "size is 0");
    TD_OK(dv_hostbuf_destroy(d, hb));
    TD_OK(dv_device_close(d));
}

Test(io_hostbuf, copies_to_the_device_and_is_waited_for) {
    dv_device_t *d = td_open(0);
    dv_hostbuf_t *hb = NULL;
    TD_OK(dv_hostbuf_create(d, 16 * MIB, &hb));
    uint32_t flag = tio_can_register(d) ? DV_HOSTBUF_REGISTER : 0;
    TD_OK(dv_hostbuf_extend(d, hb, 3 * TD_PAGE, flag, NULL));
    uint8_t *b = info(d, hb).base;
    for (uint64_t k = 0; k < 3 * TD_PAGE; k++) {
        b[k] = tio_byte(k);
    }
    dv_vbar_t *v = NULL;
    TD_OK(dv_vbar_create(d, 2 * TD_PAGE, &v));
    dv_vbar_info_t vi;
    TD_OK(dv_vbar_get_info(d, v, &vi));
    uint64_t g;
    TD_OK(dv_fault(d, v, 0, 2 * TD_PAGE, &g));
    void *s = NULL;
    TD_OK(dv_stream_create(d, &s));
    TD_OK(dv_hostbuf_copy_h2d(d, hb, TD_PAGE, TD_PAGE, vi.base, s));
    TD_OK(dv_hostbuf_copy_h2d(d, hb, 0, TD_PAGE, vi.base + TD_PAGE, NULL));
    TD_OK(dv_stream_synchronize(d, s));
    cr_assert_eq(tio_device_mismatch(d, vi.base, TD_PAGE, TD_PAGE), -1);
    cr_assert_eq(tio_device_mismatch(d, vi.base + TD_PAGE, TD_PAGE, 0), -1);
    TIO_BAD(dv_hostbuf_copy_h2d(d, hb, 2 * TD_PAGE, TD_PAGE + 1, vi.base, NULL),
            DV_ERROR_OUT_OF_RANGE, "outside");
    TIO_BAD(dv_hostbuf_copy_h2d(d, hb, 0, TD_PAGE, 0, NULL),
            DV_ERROR_INVALID_ARGUMENT, "destination");
    /* Junk below 64 KiB: every backend refuses it itself. */
    TIO_BAD(dv_hostbuf_copy_h2d(d, hb, 0, TD_PAGE, vi.base, (void *)0x10),
            DV_ERROR_INVALID_ARGUMENT, "stream");
    /* Truncating right after a stream copy waits for it first. */
    TD_OK(dv_hostbuf_copy_h2d(d, hb, TD_PAGE, TD_PAGE, vi.base, s));
    TD_OK(dv_hostbuf_truncate(d, hb, 0, DV_HOSTBUF_UNREGISTER));
    TD_OK(dv_stream_destroy(d, s));
    TD_OK(dv_unpin(d, v, 0, 2 * TD_PAGE, NULL));
    TD_OK(dv_vbar_destroy(d, v));
    TD_OK(dv_hostbuf_destroy(d, hb));
    td_check(d);
    TD_OK(dv_device_close(d));
}

Test(io_hostbuf, handles_are_validated) {
    dv_device_options_t o;
    td_options(&o, 0);
    dv_device_t *d0 = td_open_opts(&o);
    o.ordinal = 1;
    dv_device_t *d1 = NULL;
    if (dv_device_open(&o, &d1) != DV_OK) {
        o.ordinal = 0;
        d1 = td_open_opts(&o);
    }
    dv_hostbuf_t *hb = NULL, *dead = NULL;
    TD_OK(dv_hostbuf_create(d0, MIB, &hb));
    TD_OK(dv_hostbuf_create(d0, MIB, &dead));
    TD_OK(dv_hostbuf_destroy(d0, dead));
    dv_hostbuf_info_t i;
    TIO_BAD(dv_hostbuf_get_info(d0, dead, &i), DV_ERROR_INVALID_ARGUMENT,
            "host buffer handle");
    TIO_BAD(dv_hostbuf_destroy(d0, dead), DV_ERROR_INVALID_ARGUMENT,
            "not a live host buffer");
    TIO_BAD(dv_hostbuf_extend(d0, NULL, 1, 0, NULL), DV_ERROR_INVALID_ARGUMENT,
            "host buffer is NULL");
    uint64_t junk[8] = {0};
    TIO_BAD(dv_hostbuf_extend(d0, (dv_hostbuf_t *)junk, 1, 0, NULL),
            DV_ERROR_INVALID_ARGUMENT, "host buffer");
    dv_vbar_t *v = NULL;
    TD_OK(dv_vbar_create(d0, TD_PAGE, &v));
    TIO_BAD(dv_hostbuf_extend(d0, (dv_hostbuf_t *)v, 1, 0, NULL),
            DV_ERROR_INVALID_ARGUMENT, "is a VBAR handle, not a host buffer");
    TIO_BAD(dv_hostbuf_extend(d1, hb, 1, 0, NULL), DV_ERROR_WRONG_DEVICE,
            "belongs to");
    TIO_BAD(dv_hostbuf_destroy(d1, hb), DV_ERROR_WRONG_DEVICE, "belongs to");
    TIO_BAD(dv_hostbuf_get_info(d0, hb, NULL), DV_ERROR_INVALID_ARGUMENT,
            "info");
    TIO_BAD(dv_hostbuf_create(NULL, MIB, &dead), DV_ERROR_INVALID_ARGUMENT,
            "device");
    TD_OK(dv_vbar_destroy(d0, v));
    /* The device cannot close under a live host buffer. */
    TIO_BAD(dv_device_close(d0), DV_ERROR_BUSY, "host I/O object");
    TD_OK(dv_hostbuf_get_info(d0, hb, &i));
    TD_OK(dv_hostbuf_destroy(d0, hb));
    TD_OK(dv_device_close(d0));
    TD_OK(dv_device_close(d1));
}
