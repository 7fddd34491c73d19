/*
 * model_iocheck.c - the tester's view of the host I/O objects: comparing
 * them with the model after every call, the shared model file, and their
 * teardown before a device closes (the ops are in model_io.c).
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model.h"

uint64_t mt_outside(const mt_dev_t *d) {
    return d->fw + d->io.db_pages * d->ps;
}

#define ISAME(what, got, want)                                                 \
    do {                                                                       \
        if ((uint64_t)(got) != (uint64_t)(want)) {                             \
            mt_fail(w, "io-state", "d%d %s is %llu, the model says %llu",      \
                    d->name, what, (unsigned long long)(got),                  \
                    (unsigned long long)(want));                               \
        }                                                                      \
    } while (0)

static void check_hostbuf(mt_world_t *w, mt_dev_t *d) {
    const mt_io_t *io = &d->io;
    dv_hostbuf_info_t hi;
    if (dv_hostbuf_get_info(d->h, io->hb, &hi) != DV_OK) {
        mt_fail(w, "probe", "dv_hostbuf_get_info(d%d): %s", d->name,
                dv_last_error());
    }
    ISAME("host buffer size", hi.size, io->hb_size);
    ISAME("host buffer max_size", hi.max_size, io->hb_max);
    ISAME("host buffer committed", hi.committed, io->hb_committed);
    ISAME("host buffer registrations", hi.registrations, io->nregs);
    ISAME("host buffer reads in flight", hi.reads_in_flight, 0);
    dv_hostbuf_range_t r[MT_REGS + 1];
    uint32_t n = 0;
    if (dv_hostbuf_registrations(d->h, io->hb, r, MT_REGS + 1, &n) != DV_OK) {
        mt_fail(w, "probe", "dv_hostbuf_registrations(d%d): %s", d->name,
                dv_last_error());
    }
    uint64_t bytes = 0;
    for (uint32_t k = 0; k < n && k < io->nregs; k++) {
        ISAME("registration offset", r[k].offset, io->reg_off[k]);
        ISAME("registration size", r[k].size, io->reg_size[k]);
        bytes += r[k].size;
    }
    ISAME("host buffer registered bytes", hi.registered_bytes, bytes);
}

void mt_io_check(mt_world_t *w, mt_dev_t *d) {
    const mt_io_t *io = &d->io;
    if (io->hb) {
        check_hostbuf(w, d);
    }
    if (io->db) {
        dv_devbuf_info_t di;
        if (dv_devbuf_get_info(d->h, io->db, &di) != DV_OK) {
            mt_fail(w, "probe", "dv_devbuf_get_info(d%d): %s", d->name,
                    dv_last_error());
        }
        ISAME("device buffer size", di.size, io->db_size);
        ISAME("device buffer mapped", di.mapped, io->db_pages * d->ps);
        ISAME("device buffer max_size", di.max_size, io->db_max);
    }
    if (io->rd) {
        dv_reader_info_t ri;
        if (dv_reader_get_info(d->h, io->rd, &ri) != DV_OK) {
            mt_fail(w, "probe", "dv_reader_get_info(d%d): %s", d->name,
                    dv_last_error());
        }
        ISAME("reader reads in flight", ri.reads_in_flight, 0);
        ISAME("reader staging bytes", ri.staging_bytes, io->rd_ring);
        ISAME("reader staging ring registered", ri.staging_pinned,
              io->rd_ring != 0);
    }
}

void mt_io_teardown(mt_world_t *w, mt_dev_t *d) {
    mt_io_t *io = &d->io;
    dv_result_t r;
    if (io->rd) {
        mt_call(w, "dv_reader_destroy(d%d)", d->name);
        r = dv_reader_destroy(d->h, io->rd);
        mt_ret(w, r);
        mt_expect(w, MT_FN_READER, r, DV_OK);
        io->rd = NULL;
        io->rd_ring = 0; /* unregistered and freed */
    }
    if (io->hb) {
        mt_call(w, "dv_hostbuf_destroy(d%d)", d->name);
        r = dv_hostbuf_destroy(d->h, io->hb);
        mt_ret(w, r);
        mt_expect(w, MT_FN_HOSTBUF, r, DV_OK);
        io->hb = NULL;
        io->nregs = 0;
    }
    if (io->db) {
        /* Its pages go to the pool, trimmed to the limit and the budget. */
        d->pool += io->db_pages;
        io->db_pages = 0;
        mt_pool_trim(d, mt_budget(d), d->pool_limit);
        mt_call(w, "dv_devbuf_destroy(d%d)", d->name);
        r = dv_devbuf_destroy(d->h, io->db);
        mt_ret(w, r);
        mt_expect(w, MT_FN_DEVBUF, r, DV_OK);
        io->db = NULL;
    }
    mt_check_all(w);
}
