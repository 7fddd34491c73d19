/*
 * evict.c - the eviction order and evicting one page.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Eviction walks VBARs from the lowest priority up and, inside a VBAR,
 * pages from the top down; it never takes a pinned page or one below the
 * VBAR's watermark limit. Evicting page i lowers the watermark to i (and
 * tells recovery.c). One walk serves faults, framework pressure and every
 * other user of memory.
 */
#include "core/internal.h"

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
    if (lower_watermark && !vbar->sched) {
        /* A scheduled VBAR's residency is its schedule's plan, not a
         * prefix: the schedule sees the loss by the page's generation. */
        dv__recovery_note_loss(vbar, i);
        if (i < vbar->watermark) {
            vbar->watermark = i;
        }
    }
    if (!to_pool || !dv__pool_push_locked(dev, pg->mem)) {
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

uint64_t dv__count_victims_locked(dv__dev_t *dev, dv__vbar_t *self,
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
        uint64_t from = v->watermark > v->watermark_limit ? v->watermark
                                                          : v->watermark_limit;
        for (uint64_t i = from; i < v->page_count; i++) {
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

