/*
 * fault.c - dv_fault and dv_unpin: the resident fast path, populating pages
 * (pool first, then create; out of memory evicts one more victim and
 * retries), the watermark and its recovery, and unpin's fences.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * A fault may evict only what has lower priority than its range: VBARs
 * below it in the list and its own pages above the range. It first checks
 * that enough such pages exist; if not it returns DV_OFFLOADED without
 * evicting or pinning anything.
 */
#include "core/internal.h"

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
            if (!dv__pool_push_locked(dev, m)) {
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
        if (!may_evict || dv__count_victims_locked(dev, vbar, last + 1, need) < need) {
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
        /* Offloaded at once, unless watermark recovery may raise it; a
         * rise populates without evicting anything. */
        r = DV_OFFLOADED;
        if (dv__recovery_may_rise_locked(dev, vbar, first, last)) {
            uint64_t old = vbar->watermark;
            vbar->watermark = last + 1;
            r = dv__fault_slow_locked(dev, vbar, first, last, generation, 0);
            if (r == DV_OK) {
                dv__recovery_risen(dev, vbar, old);
            } else {
                vbar->watermark = old;
            }
        } else {
            dev->st.faults_offloaded++;
        }
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
            if (i >= vbar->watermark && i >= vbar->watermark_limit) {
                /* Left pinned when the watermark dropped: free it as soon
                 * as its work is done (never below the limit, a floor that
                 * no eviction crosses). */
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
