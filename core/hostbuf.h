/*
 * hostbuf.h - a host buffer's state, shared by hostbuf_pin.c (its
 * registration table, copies from it, register/unregister) and hostbuf.c
 * (its lifetime, growth, truncation, prewarm, reads into it). The public
 * contract is include/dynvram_io.h; the model is described in hostbuf.c.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Everything is guarded by hb->lock, taken before the device lock; the
 * fence set of copies is also changed only with the device lock held.
 */
#ifndef DV_CORE_HOSTBUF_H
#define DV_CORE_HOSTBUF_H

#include "core/io.h"

typedef struct dv__hb_reg {
    uint64_t off, size;
} dv__hb_reg_t;

struct dv__hostbuf {
    dv__ioobj_t io;
    dv__mutex_t lock; /* everything below */
    uint8_t *base;
    uint64_t page;
    uint64_t max_size, size, committed;
    dv__hb_reg_t *regs; /* sorted by offset, disjoint */
    uint32_t nregs, cap;
    uint64_t reg_bytes;
    dv__ranges_t inflight; /* reads writing into the buffer */
    dv__fenceset_t copies; /* also under the device lock */
};

/* n rounded up to the buffer's page (the OS page). */
static inline uint64_t dv__hb_up(const dv__hostbuf_t *hb, uint64_t n) {
    return (n + hb->page - 1) / hb->page * hb->page;
}

/* ---- hostbuf_pin.c (buffer lock held) ---- */
/* Index of the first registration whose end is above `off`. */
uint32_t dv__hb_reg_first_above(const dv__hostbuf_t *hb, uint64_t off);
/* Register [off, off + size) with the backend and record it; the caller
 * checked bounds and overlap. */
dv_result_t dv__hb_reg_add(dv__dev_t *dev, dv__hostbuf_t *hb, uint64_t off,
                           uint64_t size, const char *fn);
/* Unregister registration i and forget it (kept when the backend refuses). */
dv_result_t dv__hb_reg_drop(dv__dev_t *dev, dv__hostbuf_t *hb, uint32_t i,
                            const char *fn);
/* Wait for the copies the GPU may still make from the buffer. */
dv_result_t dv__hb_copies_drain(dv__dev_t *dev, dv__hostbuf_t *hb);
/* [off, off + size) is a non-empty range inside the buffer's size. */
dv_result_t dv__hb_in_bounds(const dv__hostbuf_t *hb, uint64_t off,
                             uint64_t size, const char *fn);

#endif /* DV_CORE_HOSTBUF_H */
