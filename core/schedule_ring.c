/*
 * schedule_ring.c - the ring slots of a streaming schedule: device memory
 * under a range of virtual address space of its own, charged to the
 * device's one budget.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * A slot is slot_pages pages of the device's page size, mapped back to back
 * (a copy may cross page boundaries: the range is contiguous virtual
 * memory). The address range is reserved for the schedule's whole life, so
 * slot addresses (and views of them) never change; the memory under it is
 * mapped only while the plan streams something: a schedule whose ranges
 * all stay resident holds no ring. Pages come from the pool first and go
 * back to it (bounded), so a ring costs no driver allocation when the pool
 * has pages, exactly like a populating fault. Room in the budget is made by
 * the one eviction walk: VBARs below the schedule's VBAR, and at creation
 * the VBAR's own pages (the schedule plans them anyway); never a
 * higher-priority VBAR. Every mapped page is counted in dev->ring_bytes as
 * soon as it is mapped, so the accounting holds after any failure.
 */
#include <stdlib.h>

#include "core/schedule.h"

/* Give one handle back to the pool (trimmed to its bound by the caller),
 * or release it when the pool cannot grow. */
static void give_back(dv__dev_t *dev, dv_hal_mem_t m) {
    if (dev->pool_count == dev->pool_cap) {
        uint64_t cap = dev->pool_cap ? dev->pool_cap * 2 : 16;
        dv_hal_mem_t *p = realloc(dev->pool, (size_t)cap * sizeof(*p));
        if (p) {
            dev->pool = p;
            dev->pool_cap = cap;
        }
    }
    if (dev->pool_count < dev->pool_cap) {
        dev->pool[dev->pool_count++] = m;
        return;
    }
    dv_result_t r = dev->hal.release(dev->ctx, m);
    if (r != DV_OK) {
        /* The handle is gone from our books either way. */
        dv__hal_fail(dev, r, "release (ring)");
        dv__log(DV_LOG_ERROR, "%s", dv_last_error());
    }
}

/* Unmap pages [keep, ring_mapped) from the top. */
static dv_result_t unmap_down_to(dv__dev_t *dev, dv__sched_t *s,
                                 uint64_t keep) {
    uint64_t ps = dev->page_size;
    while (s->ring_mapped > keep) {
        uint64_t j = s->ring_mapped - 1;
        dv_result_t r = dev->hal.unmap(dev->ctx, s->ring_va + j * ps, ps);
        if (r != DV_OK) {
            return dv__hal_fail(dev, r, "unmap (ring)");
        }
        s->ring_mapped = j;
        dev->ring_bytes -= ps;
        give_back(dev, s->ring_mem[j]);
    }
    return DV_OK;
}

/* One page of fresh memory for the ring: the pool, else create; an
 * out-of-memory evicts one more victim and retries. */
static dv_result_t take_page(dv__dev_t *dev, dv__sched_t *s, dv_hal_mem_t *m) {
    for (;;) {
        if (dev->pool_count) {
            *m = dev->pool[--dev->pool_count];
            dev->st.pool_reuses++;
            return DV_OK;
        }
        dv_result_t r = dev->hal.create(dev->ctx, dev->page_size, m);
        if (r == DV_OK) {
            return DV_OK;
        }
        if (r != DV_ERROR_OUT_OF_DEVICE_MEMORY) {
            return dv__hal_fail(dev, r, "create (ring)");
        }
        dev->st.oom_retries++;
        uint64_t got = 0;
        r = dv__evict_victims_locked(dev, s->vbar, s->vbar->page_count, 1, 1,
                                     &got);
        if (r != DV_OK) {
            return r;
        }
        if (!got) {
            return dv__fail(DV_ERROR_OUT_OF_DEVICE_MEMORY,
                            "dv_schedule: the backend has no memory for the "
                            "ring and nothing is left to evict");
        }
    }
}

dv_result_t dv__ring_reserve_locked(dv__dev_t *dev, dv__sched_t *s) {
    uint64_t ps = dev->page_size;
    if (s->slot_pages > UINT64_MAX / ps / s->nslots) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "dv_schedule_create: a ring of %u slots of %llu "
                        "bytes overflows",
                        s->nslots, (unsigned long long)s->slot_size);
    }
    uint64_t pages = s->slot_pages * s->nslots;
    s->ring_mem = calloc((size_t)pages, sizeof(*s->ring_mem));
    if (!s->ring_mem) {
        return dv__fail(DV_ERROR_OUT_OF_HOST_MEMORY,
                        "dv_schedule_create: ring table");
    }
    dv_result_t r = dev->hal.reserve(dev->ctx, pages * ps, &s->ring_va);
    if (r != DV_OK) {
        if (r == DV_ERROR_OUT_OF_DEVICE_MEMORY ||
            r == DV_ERROR_OUT_OF_HOST_MEMORY) {
            r = DV_ERROR_ADDRESS_SPACE;
        }
        s->ring_va = 0;
        free(s->ring_mem);
        s->ring_mem = NULL;
        return dv__hal_fail(dev, r, "reserve (ring)");
    }
    for (uint32_t k = 0; k < s->nslots; k++) {
        s->slots[k].va = s->ring_va + (uint64_t)k * s->slot_pages * ps;
    }
    return DV_OK;
}

dv_result_t dv__ring_map_locked(dv__dev_t *dev, dv__sched_t *s,
                                uint64_t self_floor) {
    uint64_t ps = dev->page_size;
    uint64_t pages = s->slot_pages * s->nslots;
    if (s->ring_mapped == pages) {
        return DV_OK;
    }
    uint64_t budget = 0;
    dv_result_t r = dv__budget_locked(dev, 0, &budget);
    if (r != DV_OK) {
        return r;
    }
    /* Room first, all of it, so a ring that cannot fit evicts no more than
     * it must and fails before touching the driver. */
    uint64_t need = pages - s->ring_mapped;
    uint64_t used = dv__used_locked(dev);
    uint64_t room = (budget > used ? (budget - used) / ps : 0) + dev->pool_count;
    if (need > room) {
        uint64_t got = 0;
        r = dv__evict_victims_locked(dev, s->vbar, self_floor, need - room, 1,
                                     &got);
        if (r != DV_OK) {
            return r;
        }
        if (got < need - room) {
            return dv__fail(DV_ERROR_OUT_OF_DEVICE_MEMORY,
                            "dv_schedule: a ring of %u x %llu bytes does not "
                            "fit the budget of %llu bytes (in use %llu after "
                            "evicting %llu pages)",
                            s->nslots,
                            (unsigned long long)(s->slot_pages * ps),
                            (unsigned long long)budget,
                            (unsigned long long)dv__used_locked(dev),
                            (unsigned long long)got);
        }
    }
    while (s->ring_mapped < pages) {
        uint64_t j = s->ring_mapped;
        dv_hal_mem_t m;
        r = take_page(dev, s, &m);
        if (r != DV_OK) {
            return r; /* the pages mapped so far stay, counted */
        }
        r = dev->hal.map(dev->ctx, s->ring_va + j * ps, ps, m);
        if (r != DV_OK) {
            dv__hal_fail(dev, r, "map (ring)");
            give_back(dev, m);
            dv__pool_trim_locked(dev, budget, dev->pool_limit_pages);
            return r;
        }
        s->ring_mem[j] = m;
        s->ring_mapped = j + 1;
        dev->ring_bytes += ps;
    }
    dv__pool_trim_locked(dev, budget, dev->pool_limit_pages);
    return DV_OK;
}

dv_result_t dv__ring_unmap_locked(dv__dev_t *dev, dv__sched_t *s) {
    dv_result_t r = unmap_down_to(dev, s, 0);
    dv__pool_trim_locked(dev, UINT64_MAX, dev->pool_limit_pages);
    return r;
}

dv_result_t dv__ring_destroy_locked(dv__dev_t *dev, dv__sched_t *s) {
    dv_result_t r = dv__ring_unmap_locked(dev, s);
    if (r != DV_OK) {
        return r;
    }
    if (s->ring_va) {
        uint64_t bytes = s->slot_pages * s->nslots * dev->page_size;
        r = dev->hal.unreserve(dev->ctx, s->ring_va, bytes);
        if (r != DV_OK) {
            return dv__hal_fail(dev, r, "unreserve (ring)");
        }
        s->ring_va = 0;
    }
    free(s->ring_mem);
    s->ring_mem = NULL;
    return DV_OK;
}
