/*
 * model_ioread.c - the tester's reads through the read pool (into the
 * device's host buffer or device buffer, with every range check of
 * dynvram_io.h predicted, the bytes verified after a success) and its bad
 * host I/O calls (dead handles, handles of another kind or device, NULL
 * outputs, unknown flags): an error must change nothing.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdlib.h>
#include <string.h>

#include "model.h"

static void reader_ready(mt_world_t *w, mt_dev_t *d) {
    if (d->io.rd) {
        return;
    }
    dv_reader_options_t o;
    dv_reader_options_init(&o);
    o.threads = 1 + (uint32_t)mt_pick(&w->src, 2);
    o.slots = 1 + (uint32_t)mt_pick(&w->src, 3);
    o.chunk_size = 4096u * (1 + mt_pick(&w->src, 4));
    mt_call(w, "dv_reader_create(d%d, threads %u, slots %u, chunk %llu)",
            d->name, o.threads, o.slots, (unsigned long long)o.chunk_size);
    dv_result_t r = dv_reader_create(d->h, &o, &d->io.rd);
    mt_ret(w, r);
    mt_expect(w, MT_FN_READER, r, DV_OK);
    /* Its staging ring comes with the first read to device memory. */
    d->io.rd_ring = 0;
    d->io.rd_ring_want = (uint64_t)o.slots * o.chunk_size;
}

/* A range of a file of `fsize` bytes for a destination of `room` bytes:
 * mostly one that fits both (*dst_off inside the destination), else
 * anything: empty, past the end, wrapping. */
static void pick_ranges(mt_world_t *w, uint64_t fsize, uint64_t room,
                        uint64_t *off, uint64_t *size, uint64_t *dst_off) {
    uint64_t most = room < fsize ? room : fsize;
    if (most && mt_chance(&w->src, 70)) {
        *size = 1 + mt_pick(&w->src, most);
        *off = mt_pick(&w->src, fsize - *size + 1);
        *dst_off = mt_pick(&w->src, room - *size + 1);
        return;
    }
    *dst_off = mt_pick(&w->src, room + 2);
    *off = mt_pick(&w->src, fsize + 2);
    *size = 1 + mt_pick(&w->src, 3 * 4096);
    if (mt_chance(&w->src, 5)) {
        *size = 0;
    } else if (mt_chance(&w->src, 5)) {
        *size = UINT64_MAX - mt_pick(&w->src, 3);
    }
}

static dv_result_t file_want(uint64_t fsize, uint64_t off, uint64_t size) {
    if (size == 0) {
        return DV_ERROR_INVALID_ARGUMENT;
    }
    if (off > fsize || size > fsize - off) {
        return DV_ERROR_OUT_OF_RANGE;
    }
    return DV_OK;
}

static int same_as_file(const uint8_t *b, uint64_t n, uint64_t foff) {
    for (uint64_t i = 0; i < n; i++) {
        if (b[i] != mt_io_fbyte(foff + i)) {
            return 0;
        }
    }
    return 1;
}

static void read_host(mt_world_t *w, mt_dev_t *d, uint32_t flags,
                      dv_file_t *file, uint64_t fsize) {
    mt_io_t *io = &d->io;
    uint64_t foff, size, hoff;
    pick_ranges(w, fsize, io->hb_size, &foff, &size, &hoff);
    dv_result_t want = (flags & ~(uint32_t)DV_READ_MARK_COLD)
                           ? DV_ERROR_INVALID_ARGUMENT
                           : file_want(fsize, foff, size);
    if (want == DV_OK && (hoff > io->hb_size || size > io->hb_size - hoff)) {
        want = DV_ERROR_OUT_OF_RANGE;
    }
    mt_call(w, "dv_read_to_host(d%d, file %llu +%llu, hb %llu, 0x%x)", d->name,
            (unsigned long long)foff, (unsigned long long)size,
            (unsigned long long)hoff, flags);
    dv_result_t r =
        dv_read_to_host(d->h, io->rd, file, foff, size, io->hb, hoff, flags);
    mt_ret(w, r);
    mt_expect(w, MT_FN_READ, r, want);
    if (r == DV_OK) {
        dv_hostbuf_info_t hi;
        dv_hostbuf_get_info(d->h, io->hb, &hi);
        if (!same_as_file((const uint8_t *)hi.base + hoff, size, foff)) {
            mt_fail(w, "read-content",
                    "d%d: the host buffer does not hold "
                    "the file's bytes after dv_read_to_host",
                    d->name);
        }
    }
}

static void read_device(mt_world_t *w, mt_dev_t *d, uint32_t flags) {
    mt_io_t *io = &d->io;
    dv_devbuf_info_t di;
    dv_devbuf_get_info(d->h, io->db, &di);
    uint64_t foff, size, doff;
    pick_ranges(w, MT_IO_FILE_SIZE, io->db_size, &foff, &size, &doff);
    if (doff >= io->db_max) {
        doff = io->db_max - 1; /* inside the reservation: never a VBAR's */
    }
    uint32_t sid;
    void *stream = mt_pick_stream(w, d, &sid);
    dv_result_t want = (flags & ~(uint32_t)DV_READ_MARK_COLD)
                           ? DV_ERROR_INVALID_ARGUMENT
                           : file_want(MT_IO_FILE_SIZE, foff, size);
    if (want == DV_OK && (doff > io->db_size || size > io->db_size - doff)) {
        want = DV_ERROR_OUT_OF_RANGE;
    }
    mt_call(w, "dv_read_to_device(d%d, file %llu +%llu, db %llu, s%u, 0x%x)",
            d->name, (unsigned long long)foff, (unsigned long long)size,
            (unsigned long long)doff, sid, flags);
    dv_result_t r = dv_read_to_device(d->h, io->rd, mt_io_file(w), foff, size,
                                      di.base + doff, stream, flags);
    mt_ret(w, r);
    mt_expect(w, MT_FN_READ, r, want);
    if (r == DV_OK) {
        io->rd_ring = io->rd_ring_want; /* made now, registered */
        uint8_t *b = malloc(size);
        if (!b || dv_copy_d2h(d->h, b, di.base + doff, size, NULL) != DV_OK ||
            !same_as_file(b, size, foff)) {
            mt_fail(w, "read-content",
                    "d%d: the device buffer does not hold "
                    "the file's bytes after dv_read_to_device",
                    d->name);
        }
        free(b);
    }
}

void mt_op_io_read(mt_world_t *w) {
    mt_dev_t *d = mt_any_dev(w);
    if (!d || (!d->io.hb && !d->io.db)) {
        return;
    }
    reader_ready(w, d);
    uint32_t flags = mt_chance(&w->src, 30) ? DV_READ_MARK_COLD : 0;
    if (mt_chance(&w->src, 4)) {
        flags |= 0x10;
    }
    if (d->io.hb && (!d->io.db || mt_chance(&w->src, 50))) {
        read_host(w, d, flags, mt_io_file(w), MT_IO_FILE_SIZE);
    } else {
        read_device(w, d, flags);
    }
    mt_check_all(w);
}

void mt_io_read_file(mt_world_t *w, dv_file_t *file, uint64_t size) {
    mt_dev_t *d = mt_any_dev(w);
    if (!d || !d->io.hb) {
        return;
    }
    reader_ready(w, d);
    read_host(w, d, 0, file, size);
}

/* ---- bad calls ---- */

#define BAD(fn, call, want, text)                                              \
    do {                                                                       \
        mt_call(w, "%s", text);                                                \
        dv_result_t r_ = (call);                                               \
        mt_ret(w, r_);                                                         \
        mt_expect(w, fn, r_, want);                                            \
    } while (0)

/* Handles of objects made and destroyed here: dead from then on. */
static void dead_handles(mt_world_t *w, mt_dev_t *d) {
    dv_hostbuf_t *hb = NULL;
    dv_devbuf_t *db = NULL;
    dv_reader_t *rd = NULL;
    uint64_t off;
    mt_call(w, "dv_hostbuf_create/destroy(d%d)", d->name);
    if (dv_hostbuf_create(d->h, 4096, &hb) != DV_OK ||
        dv_hostbuf_destroy(d->h, hb) != DV_OK ||
        dv_devbuf_create(d->h, d->ps, &db) != DV_OK ||
        dv_devbuf_destroy(d->h, db) != DV_OK ||
        dv_reader_create(d->h, NULL, &rd) != DV_OK ||
        dv_reader_destroy(d->h, rd) != DV_OK) {
        mt_fail(w, "io-setup", "making and destroying I/O objects: %s",
                dv_last_error());
    }
    /* A device buffer's destroy trims the pool to its limit and budget. */
    mt_pool_trim(d, mt_budget(d), d->pool_limit);
    BAD(MT_FN_HOSTBUF, dv_hostbuf_extend(d->h, hb, 1, 0, &off),
        DV_ERROR_INVALID_ARGUMENT, "dv_hostbuf_extend(dead)");
    BAD(MT_FN_DEVBUF, dv_devbuf_resize(d->h, db, 1), DV_ERROR_INVALID_ARGUMENT,
        "dv_devbuf_resize(dead)");
    BAD(MT_FN_READER, dv_reader_destroy(d->h, rd), DV_ERROR_INVALID_ARGUMENT,
        "dv_reader_destroy(dead)");
    if (d->io.hb) {
        BAD(MT_FN_READ,
            dv_read_to_host(d->h, rd, mt_io_file(w), 0, 1, d->io.hb, 0, 0),
            DV_ERROR_INVALID_ARGUMENT, "dv_read_to_host(dead reader)");
    }
}

/* Another device's objects, and objects of the wrong kind. */
static void foreign_handles(mt_world_t *w, mt_dev_t *d) {
    mt_dev_t *o = NULL;
    for (int k = 0; k < MT_DEVS; k++) {
        if (w->d[k].h && &w->d[k] != d) {
            o = &w->d[k];
        }
    }
    if (o && d->io.hb) {
        dv_hostbuf_info_t hi;
        BAD(MT_FN_HOSTBUF, dv_hostbuf_get_info(o->h, d->io.hb, &hi),
            DV_ERROR_WRONG_DEVICE, "dv_hostbuf_get_info(other device)");
    }
    if (o && d->io.db) {
        BAD(MT_FN_DEVBUF, dv_devbuf_resize(o->h, d->io.db, 0),
            DV_ERROR_WRONG_DEVICE, "dv_devbuf_resize(other device)");
    }
    mt_vbar_t *v = mt_any_vbar(w, d);
    if (v) {
        BAD(MT_FN_DEVBUF, dv_devbuf_resize(d->h, (dv_devbuf_t *)v->h, 0),
            DV_ERROR_INVALID_ARGUMENT, "dv_devbuf_resize(a VBAR)");
        BAD(MT_FN_HOSTBUF,
            dv_hostbuf_truncate(d->h, (dv_hostbuf_t *)v->h, 0, 0),
            DV_ERROR_INVALID_ARGUMENT, "dv_hostbuf_truncate(a VBAR)");
    }
    BAD(MT_FN_HOSTBUF, dv_hostbuf_create(d->h, 4096, NULL),
        DV_ERROR_INVALID_ARGUMENT, "dv_hostbuf_create(NULL out)");
    BAD(MT_FN_DEVBUF, dv_devbuf_create(d->h, 0, NULL),
        DV_ERROR_INVALID_ARGUMENT, "dv_devbuf_create(NULL out)");
    uint64_t junk[4] = {0};
    BAD(MT_FN_READ,
        dv_read_to_device(d->h, (dv_reader_t *)junk, mt_io_file(w), 0, 1, 4096,
                          NULL, 0),
        DV_ERROR_INVALID_ARGUMENT, "dv_read_to_device(junk reader)");
}

void mt_op_io_bad(mt_world_t *w) {
    mt_dev_t *d = mt_any_dev(w);
    if (!d) {
        return;
    }
    if (w->dead_handles && mt_chance(&w->src, 50)) {
        dead_handles(w, d);
    } else {
        foreign_handles(w, d);
    }
    mt_check_all(w);
}
