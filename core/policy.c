/*
 * policy.c - fault, unpin, budget, pool and eviction order.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * The policy, as DESIGN.md states it:
 *  - Eviction walks VBARs from the lowest priority up and, inside a VBAR,
 *    pages from the top down; it never takes a pinned page or one below the
 *    VBAR's watermark limit. Evicting page i lowers the watermark to i.
 *  - A fault at or above the watermark returns DV_OFFLOADED at once.
 *  - A fault may evict only what has lower priority than the range: VBARs
 *    below it in the list, and its own pages above the range. It first
 *    checks that enough of those exist; if not it returns DV_OFFLOADED
 *    without evicting anything or pinning anything.
 *  - Evicted handles go to a bounded pool and are reused by later faults;
 *    the pool is released first when the budget shrinks.
 *  - Out of memory from the backend evicts one more victim and retries.
 */
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

/* ---- budget and pool -------------------------------------------------- */

uint64_t dv__used_locked(const dv__dev_t *dev) {
    return dev->resident_bytes + dev->pool_count * dev->page_size +
           dev->framework_bytes + dev->graph_bytes;
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

static int pool_push(dv__dev_t *dev, dv_hal_mem_t m) {
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

/* ---- eviction --------------------------------------------------------- */

int dv__evictable(const dv__vbar_t *vbar, uint64_t i) {
    const dv__page_t *pg = &vbar->pages[i];
    return pg->resident && pg->pins == 0 && i >= vbar->watermark_limit;
}

dv_result_t dv__evict_page_locked(dv__dev_t *dev, dv__vbar_t *vbar,
                                  uint64_t i, int to_pool,
                                  int lower_watermark) {
    dv__page_t *pg = &vbar->pages[i];
    dv_result_t r = dv__page_wait_locked(dev, pg);
    if (r != DV_OK) {
        return r;
    }
    uint64_t ps = dev->page_size;
    r = dev->hal.unmap(dev->ctx, vbar->base + i * ps, ps);
    if (r != DV_OK) {
        return dv__hal_fail(dev, r, "unmap");
    }
    pg->resident = 0;
    pg->stream = DV__NO_STREAM;
    vbar->resident_pages--;
    dev->resident_bytes -= ps;
    dev->st.evictions++;
    dev->st.evicted_bytes += ps;
    if (lower_watermark) {
        dv__recovery_note_loss(vbar, i);
        if (i < vbar->watermark) {
            vbar->watermark = i;
        }
    }
    if (!to_pool || !pool_push(dev, pg->mem)) {
        r = dev->hal.release(dev->ctx, pg->mem);
        if (r != DV_OK) {
            return dv__hal_fail(dev, r, "release");
        }
    }
    return DV_OK;
}

/*
 * Victim iteration: VBARs from the bottom of the list up to (not including)
 * `self`, then `self`'s pages at or above `self_floor`, each VBAR top-down,
 * skipping pinned pages and pages below a watermark limit. `self` NULL
 * means every VBAR is a candidate (framework pressure).
 */
typedef struct victim_iter {
    dv__vbar_t *v;
    uint64_t next; /* next page index to look at + 1 */
    dv__vbar_t *self;
    uint64_t self_floor;
    int on_self;
} victim_iter_t;

static void victims_begin(victim_iter_t *it, dv__dev_t *dev, dv__vbar_t *self,
                          uint64_t self_floor) {
    it->self = self;
    it->self_floor = self_floor;
    it->on_self = 0;
    it->v = dev->bottom;
    it->next = it->v ? it->v->page_count : 0;
}

static int victims_next(victim_iter_t *it, dv__vbar_t **v, uint64_t *i) {
    for (;;) {
        if (!it->v) {
            return 0;
        }
        if (it->v == it->self && !it->on_self) {
            /* Everything below `self` is exhausted: finish with its own
             * pages above the range, then stop. */
            it->on_self = 1;
        }
        uint64_t floor = it->on_self ? it->self_floor : 0;
        if (floor < it->v->watermark_limit) {
            floor = it->v->watermark_limit;
        }
        while (it->next > floor) {
            uint64_t k = --it->next;
            /* A page whose last use is queued on a stream being captured
             * cannot be waited for: not a victim until the capture ends. */
            if (it->v->resident_pages && dv__evictable(it->v, k) &&
                !dv__page_blocked_locked(it->v->dev, &it->v->pages[k])) {
                *v = it->v;
                *i = k;
                return 1;
            }
            if (!it->v->resident_pages) {
                it->next = floor;
            }
        }
        if (it->on_self) {
            it->v = NULL;
            return 0;
        }
        it->v = it->v->up;
        it->next = it->v ? it->v->page_count : 0;
    }
}

static uint64_t count_victims(dv__dev_t *dev, dv__vbar_t *self,
                              uint64_t self_floor, uint64_t want) {
    victim_iter_t it;
    victims_begin(&it, dev, self, self_floor);
    dv__vbar_t *v;
    uint64_t i, n = 0;
    while (n < want && victims_next(&it, &v, &i)) {
        n++;
    }
    return n;
}

dv_result_t dv__evict_victims_locked(dv__dev_t *dev, dv__vbar_t *self,
                                     uint64_t self_floor, uint64_t n,
                                     int to_pool, uint64_t *evicted) {
    /* One pass: evicting a page changes nothing the iterator has yet to
     * look at (it only moves down and up the list). */
    victim_iter_t it;
    victims_begin(&it, dev, self, self_floor);
    dv__vbar_t *v;
    uint64_t i, done = 0;
    dv_result_t r = DV_OK;
    while (done < n && victims_next(&it, &v, &i)) {
        r = dv__evict_page_locked(dev, v, i, to_pool, 1);
        if (r != DV_OK) {
            break;
        }
        done++;
    }
    if (evicted) {
        *evicted = done;
    }
    return r;
}

void dv__reap_locked(dv__dev_t *dev) {
    /* Pages left pinned above a lowered watermark and unpinned since: free
     * those whose work is done; the rest stay first in eviction order. */
    uint64_t left = 0;
    for (dv__vbar_t *v = dev->top; v; v = v->down) {
        for (uint64_t i = v->watermark; i < v->page_count; i++) {
            dv__page_t *pg = &v->pages[i];
            if (!pg->resident || pg->pins) {
                continue;
            }
            if (!dv__page_try_idle_locked(dev, pg) ||
                dv__evict_page_locked(dev, v, i, 1, 0) != DV_OK) {
                left++;
            }
        }
    }
    dev->reap_pending = left;
}

/* ---- fault ------------------------------------------------------------ */

static void pin_range(dv__dev_t *dev, dv__vbar_t *vbar, uint64_t first,
                      uint64_t last, uint64_t *generation) {
    uint64_t gen = 0;
    for (uint64_t i = first; i <= last; i++) {
        dv__page_t *pg = &vbar->pages[i];
        if (pg->pins++ == 0) {
            dev->pinned_bytes += dev->page_size;
        }
        if (pg->gen > gen) {
            gen = pg->gen;
        }
    }
    if (generation) {
        *generation = gen;
    }
}

/* Give page i fresh memory: from the pool, else create; on out-of-memory
 * evict one more victim and retry. DV_OFFLOADED when nothing is left. */
static dv_result_t populate_page(dv__dev_t *dev, dv__vbar_t *vbar, uint64_t i,
                                 uint64_t last, int may_evict) {
    uint64_t ps = dev->page_size;
    for (;;) {
        dv_hal_mem_t m;
        int pooled = dev->pool_count > 0;
        const char *op = "create";
        dv_result_t r;
        if (pooled) {
            m = dev->pool[--dev->pool_count];
        } else {
            r = dev->hal.create(dev->ctx, ps, &m);
            if (r != DV_OK) {
                goto failed;
            }
        }
        op = "map";
        r = dev->hal.map(dev->ctx, vbar->base + i * ps, ps, m);
        if (r != DV_OK) {
            /* Keep the handle: the pool takes it back (or release it). */
            if (!pool_push(dev, m)) {
                dev->hal.release(dev->ctx, m);
            }
            goto failed;
        }
        dv__page_t *pg = &vbar->pages[i];
        pg->mem = m;
        pg->resident = 1;
        pg->gen = ++dev->generation;
        pg->stream = DV__NO_STREAM;
        vbar->resident_pages++;
        dev->resident_bytes += ps;
        dev->st.pages_populated++;
        dev->st.pool_reuses += (uint64_t)pooled;
        return DV_OK;
    failed:
        if (r != DV_ERROR_OUT_OF_DEVICE_MEMORY) {
            return dv__hal_fail(dev, r, op);
        }
        if (!may_evict) {
            return DV_OFFLOADED;
        }
        dev->st.oom_retries++;
        uint64_t got = 0;
        r = dv__evict_victims_locked(dev, vbar, last + 1, 1, 1, &got);
        if (r != DV_OK) {
            return r;
        }
        if (!got) {
            return DV_OFFLOADED; /* nothing left to evict */
        }
    }
}

dv_result_t dv__fault_slow_locked(dv__dev_t *dev, dv__vbar_t *vbar,
                                  uint64_t first, uint64_t last,
                                  uint64_t *generation, int may_evict) {
    uint64_t ps = dev->page_size;
    uint64_t budget = 0;
    dv_result_t r = dv__budget_locked(dev, 0, &budget);
    if (r != DV_OK) {
        return r;
    }
    if (dev->reap_pending) {
        dv__reap_locked(dev);
    }
    /* A shrunken budget is paid from the pool first. */
    dv__pool_trim_locked(dev, budget, UINT64_MAX);

    uint64_t absent = 0;
    for (uint64_t i = first; i <= last; i++) {
        absent += !vbar->pages[i].resident;
    }
    uint64_t used = dv__used_locked(dev);
    uint64_t room = (budget > used ? (budget - used) / ps : 0) + dev->pool_count;
    if (absent > room) {
        uint64_t need = absent - room;
        if (!may_evict || count_victims(dev, vbar, last + 1, need) < need) {
            dev->st.faults_offloaded++;
            return DV_OFFLOADED;
        }
        r = dv__evict_victims_locked(dev, vbar, last + 1, need, 1, NULL);
        if (r != DV_OK) {
            return r;
        }
    }
    for (uint64_t i = first; i <= last; i++) {
        if (vbar->pages[i].resident) {
            continue;
        }
        r = populate_page(dev, vbar, i, last, may_evict);
        if (r != DV_OK) {
            if (r == DV_OFFLOADED) {
                dev->st.faults_offloaded++;
            }
            return r;
        }
    }
    dev->st.faults_populated++;
    pin_range(dev, vbar, first, last, generation);
    dv__pool_trim_locked(dev, budget, dev->pool_limit_pages);
    return DV_OK;
}

dv_result_t dv_fault(dv_device_t *dh, dv_vbar_t *vh, uint64_t offset,
                     uint64_t size, uint64_t *generation) {
    dv__dev_t *dev = NULL;
    dv__vbar_t *vbar = NULL;
    dv_result_t r = dv__vbar_fast(dh, vh, "dv_fault", &dev, &vbar);
    if (r != DV_OK) {
        return r;
    }
    uint64_t first, last;
    r = dv__range(vbar, offset, size, &first, &last, "dv_fault");
    if (r != DV_OK) {
        return r;
    }
    dv__mutex_lock(&dev->lock);
    dv__recovery_note_fault(dev, vbar, first);
    if (last >= vbar->watermark) {
        /* Offloaded at once, unless watermark recovery may raise it. */
        r = dv__recovery_try_locked(dev, vbar, first, last, generation);
        dv__mutex_unlock(&dev->lock);
        return r >= 0 ? dv__outcome(r) : r;
    }
    uint64_t i = first;
    while (i <= last && vbar->pages[i].resident) {
        i++;
    }
    if (i > last) {
        /* The fast path: everything resident, no driver call. */
        dev->st.faults_hit++;
        pin_range(dev, vbar, first, last, generation);
        dv__mutex_unlock(&dev->lock);
        return dv__ok();
    }
    r = dv__fault_slow_locked(dev, vbar, first, last, generation, 1);
    dv__mutex_unlock(&dev->lock);
    return r >= 0 ? dv__outcome(r) : r;
}

/* ---- unpin ------------------------------------------------------------ */

/* A page keeps one (stream, seq) pair: before a page last unpinned on
 * another stream takes this stream's, the other stream's work on it must
 * be finished (rare: a page shared by two streams). Done before anything
 * changes, so a failed wait leaves the unpin undone. */
static dv_result_t wait_other_streams(dv__dev_t *dev, dv__vbar_t *vbar,
                                      uint64_t first, uint64_t last,
                                      uint32_t slot) {
    for (uint64_t i = first; i <= last; i++) {
        dv__page_t *pg = &vbar->pages[i];
        if (pg->stream != DV__NO_STREAM && pg->stream != slot &&
            !dv__page_idle(dev, pg)) {
            dv_result_t r = dv__page_wait_locked(dev, pg);
            if (r != DV_OK) {
                return r;
            }
        }
    }
    return DV_OK;
}

dv_result_t dv_unpin(dv_device_t *dh, dv_vbar_t *vh, uint64_t offset,
                     uint64_t size, void *stream) {
    dv__dev_t *dev = NULL;
    dv__vbar_t *vbar = NULL;
    dv_result_t r = dv__vbar_fast(dh, vh, "dv_unpin", &dev, &vbar);
    if (r != DV_OK) {
        return r;
    }
    uint64_t first, last;
    r = dv__range(vbar, offset, size, &first, &last, "dv_unpin");
    if (r != DV_OK) {
        return r;
    }
    dv__mutex_lock(&dev->lock);
    for (uint64_t i = first; i <= last; i++) {
        if (!vbar->pages[i].pins) {
            dv__mutex_unlock(&dev->lock);
            return dv__fail(DV_ERROR_NOT_PINNED,
                            "dv_unpin: page %llu of the range [%llu, +%llu) is "
                            "not pinned",
                            (unsigned long long)i, (unsigned long long)offset,
                            (unsigned long long)size);
        }
    }
    uint32_t slot = DV__NO_STREAM;
    uint64_t seq = 0;
    if (dev->hal.fence_record) {
        r = dv__stream_slot_locked(dev, stream, "dv_unpin", &slot);
        if (r == DV_OK) {
            r = wait_other_streams(dev, vbar, first, last, slot);
        }
        if (r != DV_OK) {
            dv__mutex_unlock(&dev->lock);
            return r; /* nothing changed */
        }
        r = dv__stream_unpin_locked(dev, slot, &seq);
        if (r != DV_OK) {
            /* No fence: finish the stream's work now instead. */
            dv__log(DV_LOG_WARNING, "dv_unpin: %s; synchronizing the stream "
                    "instead", dv_last_error());
            r = dv__stream_sync_locked(dev, slot);
            if (r != DV_OK) {
                dv__mutex_unlock(&dev->lock);
                return r;
            }
        }
    }
    for (uint64_t i = first; i <= last; i++) {
        dv__page_t *pg = &vbar->pages[i];
        pg->stream = slot;
        pg->unpin_seq = seq;
        if (--pg->pins == 0) {
            dev->pinned_bytes -= dev->page_size;
            if (i >= vbar->watermark) {
                /* Left pinned when the watermark dropped: free it as soon
                 * as its work is done. */
                if (dv__page_try_idle_locked(dev, pg) &&
                    dv__evict_page_locked(dev, vbar, i, 1, 0) == DV_OK) {
                    dv__pool_trim_locked(dev, UINT64_MAX, dev->pool_limit_pages);
                } else {
                    dev->reap_pending++;
                }
            }
        }
    }
    dv__mutex_unlock(&dev->lock);
    return dv__ok();
}
