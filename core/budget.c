/*
 * budget.c - what the device may hold, what it holds, and the pool of
 * evicted physical handles.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * used = resident pages + pooled handles + framework bytes. The budget is
 * the backend's free memory plus what dynvram holds, less the headroom,
 * capped by vram_limit. The pool keeps evicted handles for reuse (bounded)
 * and is given back first when the budget shrinks.
 */
#include <stdlib.h>

#include "core/internal.h"

/* ---- budget and pool -------------------------------------------------- */

uint64_t dv__used_locked(const dv__dev_t *dev) {
    return dev->resident_bytes + dev->pool_count * dev->page_size +
           dev->framework_bytes + dev->devbuf_bytes + dev->graph_bytes +
           dev->ring_bytes;
}

dv_result_t dv__budget_locked(dv__dev_t *dev, int fresh, uint64_t *budget) {
    /* used + free stays constant under our own creates and releases and
     * under framework allocations counted by dv_framework_reserve, so a
     * recent reading stays valid across them; only other processes move
     * it, and a backend OOM (evict-and-retry) covers a stale reading. This
     * keeps the driver's mem_info (microseconds) off the populating path. */
    uint64_t now = dv__now_ns();
    if (fresh || !dev->avail_ns || now - dev->avail_ns > DV__BUDGET_TTL_NS) {
        uint64_t free_b = 0, total = 0;
        dv_result_t r = dev->hal.mem_info(dev->ctx, &free_b, &total);
        if (r == DV_ERROR_NOT_SUPPORTED && dev->vram_limit) {
            /* The backend cannot tell free memory (Level Zero without
             * Sysman): the explicit limit is the budget; device_open
             * insisted on one. */
            *budget = dev->vram_limit;
            return DV_OK;
        }
        if (r != DV_OK) {
            return dv__hal_fail(dev, r, "mem_info");
        }
        /* What we and the framework hold is not in the backend's free
         * figure: add it back. */
        dev->avail = dv__used_locked(dev) + free_b;
        dev->avail_ns = now;
    }
    uint64_t b = dev->avail;
    b = b > dev->headroom ? b - dev->headroom : 0;
    if (dev->vram_limit && dev->vram_limit < b) {
        b = dev->vram_limit;
    }
    *budget = b;
    return DV_OK;
}

void dv__pool_trim_locked(dv__dev_t *dev, uint64_t budget, uint64_t keep) {
    while (dev->pool_count &&
           (dev->pool_count > keep || dv__used_locked(dev) > budget)) {
        dv_hal_mem_t m = dev->pool[--dev->pool_count];
        dv_result_t r = dev->hal.release(dev->ctx, m);
        if (r != DV_OK) {
            /* The handle is gone from our books either way: report it. */
            dv__hal_fail(dev, r, "release (pool trim)");
            dv__log(DV_LOG_ERROR, "%s", dv_last_error());
        }
    }
}

int dv__pool_push_locked(dv__dev_t *dev, dv_hal_mem_t m) {
    if (dev->pool_count == dev->pool_cap) {
        uint64_t cap = dev->pool_cap ? dev->pool_cap * 2 : 16;
        dv_hal_mem_t *p = realloc(dev->pool, (size_t)cap * sizeof(*p));
        if (!p) {
            return 0;
        }
        dev->pool = p;
        dev->pool_cap = cap;
    }
    dev->pool[dev->pool_count++] = m;
    return 1;
}

