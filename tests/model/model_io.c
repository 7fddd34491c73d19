/*
 * model_io.c - the tester's host I/O calls (include/dynvram_io.h): one
 * device buffer, one host buffer and one reader per device, and one file of
 * the process, with every result predicted by the model:
 *  - a device buffer's growth takes pooled pages first, then evicts in the
 *    model's eviction order into the pool (an OOM keeps those evictions),
 *    its shrink and destroy give pages to the pool, trimmed to the limit;
 *    its bytes count in `used` and in recovery's framework peak;
 *  - a host buffer's extend, truncate (cut, split, refuse), register and
 *    unregister follow the rules of dynvram_io.h on 4 KiB pages, and the
 *    registrations the library lists must be the model's;
 *  - reads into the host buffer or the device buffer check their ranges in
 *    the documented order, and a successful read must leave the file's
 *    bytes there;
 *  - dead handles and objects of another device are refused;
 *  - model files (model_file.c) are opened, mapped, bounced, marked cold
 *    and closed beside them.
 * SPDX-License-Identifier: Apache-2.0
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model.h"

#define HPAGE 4096u

static uint64_t hup(uint64_t n) { return (n + HPAGE - 1) / HPAGE * HPAGE; }

/* ---- the file of the process ---- */

static char file_path[64];
static dv_file_t *the_file;

uint8_t mt_io_fbyte(uint64_t off) { return (uint8_t)(off * 131u + 7u); }

static void file_gone(void) {
    if (file_path[0]) {
        unlink(file_path);
    }
}

const char *mt_io_path(mt_world_t *w) {
    mt_io_file(w);
    return file_path;
}

dv_file_t *mt_io_file(mt_world_t *w) {
    if (the_file) {
        return the_file;
    }
    snprintf(file_path, sizeof(file_path), "/tmp/dv-model-XXXXXX");
    int fd = mkstemp(file_path);
    uint8_t *b = malloc(MT_IO_FILE_SIZE);
    for (uint64_t i = 0; b && i < MT_IO_FILE_SIZE; i++) {
        b[i] = mt_io_fbyte(i);
    }
    if (fd < 0 || !b ||
        write(fd, b, MT_IO_FILE_SIZE) != (ssize_t)MT_IO_FILE_SIZE) {
        mt_fail(w, "setup", "cannot write the model's file %s", file_path);
    }
    free(b);
    close(fd);
    atexit(file_gone);
    if (dv_file_open(file_path, &the_file) != DV_OK) {
        mt_fail(w, "setup", "dv_file_open: %s", dv_last_error());
    }
    return the_file;
}

/* ---- device buffers ---- */

static dv_result_t predict_grow(mt_dev_t *d, uint64_t want) {
    uint64_t need = want - d->io.db_pages, budget = mt_budget(d);
    uint64_t used = mt_used(d);
    uint64_t room = (budget > used ? (budget - used) / d->ps : 0) + d->pool;
    if (need > room) {
        mt_pref_t vic[MT_VBARS * MT_PAGES];
        int n = mt_victims(d, -1, 0, vic, MT_VBARS * MT_PAGES);
        for (int k = 0; k < n && (uint64_t)k < need - room; k++) {
            mt_evict_page(d, vic[k].v, vic[k].i, 1, 1);
        }
        used = mt_used(d);
        room = (budget > used ? (budget - used) / d->ps : 0) + d->pool;
        if (need > room) {
            return DV_ERROR_OUT_OF_DEVICE_MEMORY; /* evictions stay done */
        }
    }
    uint64_t reuse = d->pool < need ? d->pool : need;
    d->pool -= reuse;
    d->io.db_pages = want;
    mt_rec_note_framework(d);
    mt_pool_trim(d, budget, d->pool_limit);
    return DV_OK;
}

static void devbuf_create(mt_world_t *w, mt_dev_t *d) {
    uint64_t max =
        (1 + mt_pick(&w->src, 6)) * d->ps - mt_pick(&w->src, 3) * 100;
    dv_result_t want = DV_OK;
    if (mt_chance(&w->src, 5)) {
        max = 0;
        want = DV_ERROR_INVALID_ARGUMENT;
    }
    dv_devbuf_t *h = NULL;
    mt_call(w, "dv_devbuf_create(d%d, %llu)", d->name, (unsigned long long)max);
    dv_result_t r = dv_devbuf_create(d->h, max, &h);
    mt_ret(w, r);
    mt_expect(w, MT_FN_DEVBUF, r, want);
    if (r == DV_OK) {
        d->io.db = h;
        d->io.db_max = (max + d->ps - 1) / d->ps * d->ps;
        d->io.db_size = d->io.db_pages = 0;
    }
}

static void op_devbuf(mt_world_t *w) {
    mt_dev_t *d = mt_any_dev(w);
    if (!d) {
        return;
    }
    mt_io_t *io = &d->io;
    if (!io->db) {
        devbuf_create(w, d);
        mt_check_all(w);
        return;
    }
    if (mt_chance(&w->src, 10)) {
        mt_io_teardown(w, d); /* all three objects go */
        return;
    }
    uint64_t size = mt_pick(&w->src, io->db_max + 1);
    if (mt_chance(&w->src, 10)) {
        size = io->db_max + 1 + mt_pick(&w->src, d->ps);
    } else if (mt_chance(&w->src, 20)) {
        size = io->db_max;
    }
    uint64_t want_pages = size / d->ps + (size % d->ps != 0);
    dv_result_t want = DV_OK;
    if (size > io->db_max) {
        want = DV_ERROR_OUT_OF_RANGE;
    } else if (want_pages > io->db_pages) {
        want = predict_grow(d, want_pages);
    } else {
        d->pool += io->db_pages - want_pages;
        io->db_pages = want_pages;
        mt_pool_trim(d, mt_budget(d), d->pool_limit);
    }
    if (want == DV_OK) {
        io->db_size = size;
    }
    mt_call(w, "dv_devbuf_resize(d%d, %llu)", d->name,
            (unsigned long long)size);
    dv_result_t r = dv_devbuf_resize(d->h, io->db, size);
    mt_ret(w, r);
    mt_expect(w, MT_FN_DEVBUF, r, want);
    mt_check_all(w);
}

/* ---- host buffers ---- */

static void reg_insert(mt_io_t *io, uint64_t off, uint64_t size) {
    uint32_t i = 0;
    while (i < io->nregs && io->reg_off[i] < off) {
        i++;
    }
    memmove(&io->reg_off[i + 1], &io->reg_off[i],
            (io->nregs - i) * sizeof(uint64_t));
    memmove(&io->reg_size[i + 1], &io->reg_size[i],
            (io->nregs - i) * sizeof(uint64_t));
    io->reg_off[i] = off;
    io->reg_size[i] = size;
    io->nregs++;
}

static void reg_erase(mt_io_t *io, uint32_t i) {
    memmove(&io->reg_off[i], &io->reg_off[i + 1],
            (io->nregs - i - 1) * sizeof(uint64_t));
    memmove(&io->reg_size[i], &io->reg_size[i + 1],
            (io->nregs - i - 1) * sizeof(uint64_t));
    io->nregs--;
}

static dv_result_t predict_extend(mt_io_t *io, uint64_t bytes, uint32_t flags) {
    if (bytes == 0 || (flags & ~(DV_HOSTBUF_REGISTER | DV_HOSTBUF_PREWARM))) {
        return DV_ERROR_INVALID_ARGUMENT;
    }
    if (bytes > io->hb_max - io->hb_size) {
        return DV_ERROR_OUT_OF_RANGE;
    }
    uint64_t newc = hup(io->hb_size + bytes);
    if ((flags & DV_HOSTBUF_REGISTER) && newc > io->hb_committed) {
        reg_insert(io, io->hb_committed, newc - io->hb_committed);
    }
    io->hb_size += bytes;
    io->hb_committed = newc > io->hb_committed ? newc : io->hb_committed;
    return DV_OK;
}

static dv_result_t predict_truncate(mt_io_t *io, uint64_t size,
                                    uint32_t flags) {
    if (flags & ~(uint32_t)DV_HOSTBUF_UNREGISTER) {
        return DV_ERROR_INVALID_ARGUMENT;
    }
    if (size > io->hb_size) {
        return DV_ERROR_OUT_OF_RANGE;
    }
    uint64_t keep = hup(size);
    int straddle = -1, cuts = 0;
    for (uint32_t k = 0; k < io->nregs; k++) {
        uint64_t lo = io->reg_off[k], hi = lo + io->reg_size[k];
        cuts |= lo >= size;
        if (lo < size && hi > keep) {
            straddle = (int)k;
        }
    }
    if ((cuts || straddle >= 0) && !(flags & DV_HOSTBUF_UNREGISTER)) {
        return DV_ERROR_BUSY;
    }
    if (straddle >= 0) {
        io->reg_size[straddle] = keep - io->reg_off[straddle];
    }
    while (io->nregs && io->reg_off[io->nregs - 1] >= size) {
        io->nregs--;
    }
    io->hb_committed = keep < io->hb_committed ? keep : io->hb_committed;
    io->hb_size = size;
    return DV_OK;
}

static void hostbuf_create(mt_world_t *w, mt_dev_t *d) {
    uint64_t max = 1 + mt_pick(&w->src, 12 * HPAGE);
    dv_hostbuf_t *h = NULL;
    mt_call(w, "dv_hostbuf_create(d%d, %llu)", d->name,
            (unsigned long long)max);
    dv_result_t r = dv_hostbuf_create(d->h, max, &h);
    mt_ret(w, r);
    mt_expect(w, MT_FN_HOSTBUF, r, DV_OK);
    d->io.hb = h;
    d->io.hb_max = hup(max);
    d->io.hb_size = d->io.hb_committed = 0;
    d->io.nregs = 0;
}

static void hostbuf_extend(mt_world_t *w, mt_dev_t *d) {
    mt_io_t *io = &d->io;
    uint64_t bytes = mt_pick(&w->src, 3 * HPAGE + 1);
    uint32_t flags = (uint32_t)mt_pick(&w->src, 4);
    if (mt_chance(&w->src, 5)) {
        flags |= 0x40;
    }
    if (io->nregs >= MT_REGS - 1) {
        flags &= ~(uint32_t)DV_HOSTBUF_REGISTER; /* the model's table is full */
    }
    dv_result_t want = predict_extend(io, bytes, flags);
    mt_call(w, "dv_hostbuf_extend(d%d, %llu, 0x%x)", d->name,
            (unsigned long long)bytes, flags);
    uint64_t off = 0;
    dv_result_t r = dv_hostbuf_extend(d->h, io->hb, bytes, flags, &off);
    mt_ret(w, r);
    mt_expect(w, MT_FN_HOSTBUF, r, want);
}

static void hostbuf_register(mt_world_t *w, mt_dev_t *d) {
    mt_io_t *io = &d->io;
    if (io->nregs && mt_chance(&w->src, 50)) {
        uint32_t k = (uint32_t)mt_pick(&w->src, io->nregs);
        uint64_t off = io->reg_off[k] + (mt_chance(&w->src, 10) ? 1 : 0);
        dv_result_t want =
            off == io->reg_off[k] ? DV_OK : DV_ERROR_INVALID_ARGUMENT;
        if (want == DV_OK) {
            reg_erase(io, k);
        }
        mt_call(w, "dv_hostbuf_unregister(d%d, %llu)", d->name,
                (unsigned long long)off);
        dv_result_t r = dv_hostbuf_unregister(d->h, io->hb, off);
        mt_ret(w, r);
        mt_expect(w, MT_FN_HOSTBUF, r, want);
        return;
    }
    uint64_t off = mt_pick(&w->src, io->hb_size + 2);
    uint64_t size = mt_pick(&w->src, 2 * HPAGE);
    dv_result_t want = DV_OK;
    if (size == 0) {
        want = DV_ERROR_INVALID_ARGUMENT;
    } else if (off > io->hb_size || size > io->hb_size - off) {
        want = DV_ERROR_OUT_OF_RANGE;
    } else {
        for (uint32_t k = 0; k < io->nregs; k++) {
            if (io->reg_off[k] < off + size &&
                off < io->reg_off[k] + io->reg_size[k]) {
                want = DV_ERROR_INVALID_ARGUMENT;
            }
        }
        if (want == DV_OK && io->nregs >= MT_REGS - 1) {
            return; /* the model's table is full: skip */
        }
    }
    if (want == DV_OK) {
        reg_insert(io, off, size);
    }
    mt_call(w, "dv_hostbuf_register(d%d, %llu, %llu)", d->name,
            (unsigned long long)off, (unsigned long long)size);
    dv_result_t r = dv_hostbuf_register(d->h, io->hb, off, size);
    mt_ret(w, r);
    mt_expect(w, MT_FN_HOSTBUF, r, want);
}

static void op_hostbuf(mt_world_t *w) {
    mt_dev_t *d = mt_any_dev(w);
    if (!d) {
        return;
    }
    mt_io_t *io = &d->io;
    if (!io->hb) {
        hostbuf_create(w, d);
    } else if (mt_chance(&w->src, 40)) {
        hostbuf_extend(w, d);
    } else if (mt_chance(&w->src, 50)) {
        uint64_t size = mt_pick(&w->src, io->hb_size + 2);
        uint32_t flags = mt_chance(&w->src, 60) ? DV_HOSTBUF_UNREGISTER : 0;
        dv_result_t want = predict_truncate(io, size, flags);
        mt_call(w, "dv_hostbuf_truncate(d%d, %llu, 0x%x)", d->name,
                (unsigned long long)size, flags);
        dv_result_t r = dv_hostbuf_truncate(d->h, io->hb, size, flags);
        mt_ret(w, r);
        mt_expect(w, MT_FN_HOSTBUF, r, want);
    } else if (mt_chance(&w->src, 85)) {
        hostbuf_register(w, d);
    } else if (io->hb_size && mt_chance(&w->src, 50)) {
        uint64_t off = mt_pick(&w->src, io->hb_size);
        mt_call(w, "dv_hostbuf_prewarm(d%d, %llu, 1, 2)", d->name,
                (unsigned long long)off);
        dv_result_t r = dv_hostbuf_prewarm(d->h, io->hb, off, 1, 2);
        mt_ret(w, r);
        mt_expect(w, MT_FN_HOSTBUF, r, DV_OK);
    } else {
        mt_call(w, "dv_hostbuf_destroy(d%d)", d->name);
        dv_result_t r = dv_hostbuf_destroy(d->h, io->hb);
        mt_ret(w, r);
        mt_expect(w, MT_FN_HOSTBUF, r, DV_OK);
        io->hb = NULL;
        io->nregs = 0;
    }
    mt_check_all(w);
}

const mt_op_t mt_io_ops[] = {
    {"io_devbuf", op_devbuf, 4},
    {"io_hostbuf", op_hostbuf, 4},
    {"io_read", mt_op_io_read, 3},
    {"io_bad", mt_op_io_bad, 1},
    {"io_file", mt_op_file, 3},
    {"io_file_bad", mt_op_file_bad, 1},
};
const int mt_io_op_count = sizeof(mt_io_ops) / sizeof(mt_io_ops[0]);
