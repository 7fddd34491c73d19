/*
 * prefetch.c - the prefetcher of a streaming schedule: preparing uses
 * ahead of the consumer and handing them out (contract in
 * include/dynvram_stream.h, data in schedule.h; the public acquire and
 * release are schedule_use.c's).
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * There is no thread: the prefetcher runs inside acquire and release, on
 * the caller's thread, and never waits there. Preparing a use means:
 *  - a planned item that is resident with our bytes (current): nothing,
 *    acquire pins it (the fault's hit path);
 *  - a planned item that is not current: a fault that happens early. Its
 *    pages get memory through the core's fault path, evicting only VBARs
 *    below this one (never a page the schedule needs), are pinned, and its
 *    bytes are copied in on the copy stream (a fence: item.ready). When
 *    there is no room it is streamed this time instead;
 *  - a streamed item: a ring slot whose last consumer released it. With
 *    GPU ordering (asynchronous copies and stream_wait) the copy stream
 *    waits on the consumer's fence, so the slot is refilled at once;
 *    without it the consumer's fence is queried and the copy deferred while
 *    it is pending, so a synchronous copy never overwrites bytes that a
 *    queued kernel is still to read. The copy's fence is the slot's `ready`.
 * Acquire makes the caller's stream wait on that one fence (stream_wait;
 * the host waits only without it). Release records a fence on the caller's
 * stream: the slot's `consumer`, or the pages' unpin fence (fence.c).
 */
#include "core/schedule.h"

int dv__item_current(const dv__sched_t *s, const dv__sitem_t *it) {
    if (!it->saved_gen) {
        return 0;
    }
    const dv__page_t *pages = s->vbar->pages;
    uint64_t gen = 0;
    for (uint64_t p = it->first; p <= it->last; p++) {
        if (!pages[p].resident) {
            return 0;
        }
        if (pages[p].gen > gen) {
            gen = pages[p].gen;
        }
    }
    return gen == it->saved_gen;
}

void dv__sched_fence_drop(dv__dev_t *dev, dv_hal_fence_t *f) {
    if (*f && dev->hal.fence_destroy) {
        dev->hal.fence_destroy(dev->ctx, *f);
    }
    *f = NULL;
}

/* The fence of a copy just issued on the copy stream, or NULL after
 * synchronizing it when no fence can be recorded. */
static dv_result_t record_ready(dv__dev_t *dev, dv__sched_t *s,
                                dv_hal_fence_t *out) {
    dv_result_t r = DV_ERROR_NOT_SUPPORTED;
    if (dev->hal.fence_record) {
        dv_hal_fence_t f = NULL;
        r = dev->hal.fence_record(dev->ctx, s->copy_stream, &f);
        if (r == DV_OK) {
            *out = f;
            return DV_OK;
        }
        dv__hal_fail(dev, r, "fence_record (copy stream)");
    }
    *out = NULL;
    if (!dev->hal.stream_synchronize) {
        return DV_OK; /* no streams at all: the copy was synchronous */
    }
    r = dev->hal.stream_synchronize(dev->ctx, s->copy_stream);
    return r == DV_OK ? DV_OK
                      : dv__hal_fail(dev, r, "stream_synchronize (copy stream)");
}

/* `stream` (the consumer) waits for the copy behind `*f`. A fence known to
 * be done is dropped. */
static dv_result_t wait_copy(dv__dev_t *dev, dv__sched_t *s, void *stream,
                             dv_hal_fence_t *f) {
    if (!*f) {
        return DV_OK;
    }
    dv_result_t r = dev->hal.fence_query(dev->ctx, *f);
    if (r == DV_OK) {
        dv__sched_fence_drop(dev, f);
        return DV_OK;
    }
    if (s->gpu_order) {
        r = dev->hal.stream_wait(dev->ctx, stream, *f);
        if (r == DV_OK) {
            return DV_OK;
        }
        dv__hal_fail(dev, r, "stream_wait");
        dv__log(DV_LOG_WARNING, "dv_schedule_acquire: %s; waiting on the host "
                "instead", dv_last_error());
    }
    s->st.host_waits++;
    r = dev->hal.fence_wait(dev->ctx, *f);
    return r == DV_OK ? DV_OK : dv__hal_fail(dev, r, "fence_wait (copy)");
}

/* Unpin an item's pages after the copy stream's work (a preparation that
 * is dropped). A double driver failure leaves them unpinned without a
 * fence rather than pinned for ever. */
static void unpin_after_copy(dv__dev_t *dev, dv__sched_t *s, dv__sitem_t *it) {
    dv__vbar_t *v = s->vbar;
    it->pins--;
    if (dv__unpin_range_locked(dev, v, it->first, it->last, s->copy_stream,
                               "dv_schedule (prefetch)") == DV_OK) {
        return;
    }
    dv__log(DV_LOG_ERROR, "%s; unpinning without a fence", dv_last_error());
    for (uint64_t p = it->first; p <= it->last; p++) {
        dv__page_t *pg = &v->pages[p];
        pg->stream = DV__NO_STREAM;
        if (--pg->pins == 0) {
            dev->pinned_bytes -= dev->page_size;
        }
    }
}

/* ---- preparing one use ------------------------------------------------ */

/* Copy a planned item that is not current into its own pages. DV_OK
 * (pinned, copy issued), DV_OFFLOADED (no room without evicting what the
 * schedule needs) or an error. */
static dv_result_t refill(dv__dev_t *dev, dv__sched_t *s, dv__sitem_t *it) {
    dv__vbar_t *v = s->vbar;
    uint64_t gen = 0;
    int all = 1;
    for (uint64_t p = it->first; p <= it->last && all; p++) {
        all = v->pages[p].resident;
    }
    dv_result_t r = DV_OK;
    if (all) {
        dv__pin_range_locked(dev, v, it->first, it->last, &gen);
    } else {
        r = dv__fault_range_locked(dev, v, it->first, it->last, &gen, 1,
                                   v->page_count);
        if (r != DV_OK) {
            return r;
        }
    }
    it->pins++;
    r = dev->hal.copy_h2d(dev->ctx, v->base + it->offset, it->src, it->size,
                          s->copy_stream);
    if (r != DV_OK) {
        dv__hal_fail(dev, r, "copy_h2d (refill)");
        unpin_after_copy(dev, s, it);
        return r;
    }
    dv__sched_fence_drop(dev, &it->ready);
    r = record_ready(dev, s, &it->ready);
    if (r != DV_OK) {
        unpin_after_copy(dev, s, it);
        return r;
    }
    it->saved_gen = gen;
    it->was_current = 1;
    s->st.refills++;
    s->st.copies++;
    s->st.copied_bytes += it->size;
    return DV_OK;
}

/* A slot for the next streamed copy: FREE, or DRAINING with its consumer
 * done (or ordered by stream_wait). `block`: wait on the host for a
 * pending consumer. DV_NOT_READY when none can be had now. */
static dv_result_t pick_slot(dv__dev_t *dev, dv__sched_t *s, int block,
                             uint32_t *out) {
    uint32_t pending = DV__NO_SLOT;
    for (uint32_t k = 0; k < s->nslots; k++) {
        if (s->slots[k].state == DV__SLOT_FREE) {
            *out = k;
            return DV_OK;
        }
    }
    for (uint32_t k = 0; k < s->nslots; k++) {
        dv__slot_t *sl = &s->slots[k];
        if (sl->state != DV__SLOT_DRAINING) {
            continue;
        }
        if (!sl->consumer || s->gpu_order) {
            *out = k;
            return DV_OK;
        }
        dv_result_t r = dev->hal.fence_query(dev->ctx, sl->consumer);
        if (r == DV_OK) {
            dv__sched_fence_drop(dev, &sl->consumer);
            *out = k;
            return DV_OK;
        }
        if (pending == DV__NO_SLOT) {
            pending = k;
        }
    }
    if (pending == DV__NO_SLOT) {
        return DV_NOT_READY; /* every slot is prepared or held */
    }
    if (!block) {
        s->st.deferred++;
        return DV_NOT_READY;
    }
    dv__slot_t *sl = &s->slots[pending];
    s->st.host_waits++;
    dv_result_t r = dev->hal.fence_wait(dev->ctx, sl->consumer);
    if (r != DV_OK) {
        return dv__hal_fail(dev, r, "fence_wait (slot consumer)");
    }
    dv__sched_fence_drop(dev, &sl->consumer);
    *out = pending;
    return DV_OK;
}

/* Copy `it` into slot k for the use at `pos`. */
static dv_result_t fill_slot(dv__dev_t *dev, dv__sched_t *s, uint32_t k,
                             const dv__sitem_t *it, uint64_t pos) {
    dv__slot_t *sl = &s->slots[k];
    dv_result_t r;
    if (sl->consumer) {
        /* GPU ordering: the copy stream waits for the last reader. */
        r = dev->hal.stream_wait(dev->ctx, s->copy_stream, sl->consumer);
        if (r != DV_OK) {
            dv__hal_fail(dev, r, "stream_wait (copy stream)");
            s->st.host_waits++;
            r = dev->hal.fence_wait(dev->ctx, sl->consumer);
            if (r != DV_OK) {
                return dv__hal_fail(dev, r, "fence_wait (slot consumer)");
            }
        }
        dv__sched_fence_drop(dev, &sl->consumer);
    }
    sl->state = DV__SLOT_FREE;
    dv__sched_fence_drop(dev, &sl->ready);
    r = dev->hal.copy_h2d(dev->ctx, sl->va, it->src, it->size, s->copy_stream);
    if (r != DV_OK) {
        return dv__hal_fail(dev, r, "copy_h2d (ring slot)");
    }
    /* On failure the slot stays FREE: a later copy into it is queued after
     * this one on the copy stream, and no consumer is handed its bytes. */
    r = record_ready(dev, s, &sl->ready);
    if (r != DV_OK) {
        return r;
    }
    sl->state = DV__SLOT_FILLED;
    sl->pos = pos;
    s->st.copies++;
    s->st.copied_bytes += it->size;
    return DV_OK;
}

void dv__prefetch_drop_locked(dv__dev_t *dev, dv__sched_t *s, dv__suse_t *u) {
    dv__sitem_t *it = &s->items[u->item];
    switch (u->prep) {
    case DV__PREP_RESIDENT:
        it->preps--;
        break;
    case DV__PREP_REFILL:
        it->preps--;
        unpin_after_copy(dev, s, it);
        break;
    case DV__PREP_SLOT:
        s->slots[u->slot].state = DV__SLOT_FREE;
        break;
    default:
        break;
    }
    u->prep = DV__PREP_NONE;
}

/* Every slot is prepared or held and the use at `pos` (a planned-resident
 * range that pressure took) cannot wait: take the slot prepared for the
 * latest use after it. The prefetcher goes back to that use, dropping what
 * it prepared from there on, so no use is left unprepared behind it (a
 * hole would steal again, and so on for ever). */
static dv_result_t steal_slot(dv__dev_t *dev, dv__sched_t *s, uint64_t pos,
                              uint32_t *out) {
    uint32_t best = DV__NO_SLOT;
    for (uint32_t k = 0; k < s->nslots; k++) {
        const dv__slot_t *sl = &s->slots[k];
        if (sl->state == DV__SLOT_FILLED && sl->pos > pos &&
            (best == DV__NO_SLOT || sl->pos > s->slots[best].pos)) {
            best = k;
        }
    }
    if (best == DV__NO_SLOT) {
        return DV_NOT_READY;
    }
    uint64_t from = s->slots[best].pos;
    for (uint64_t p = from; p < s->ppos; p++) {
        dv__suse_t *w = &s->uses[p % s->count];
        if (w->prep != DV__PREP_NONE && w->pos == p) {
            dv__prefetch_drop_locked(dev, s, w);
        }
    }
    s->ppos = from;
    *out = best;
    return DV_OK;
}

/* Prepare the use at position `pos` (see the top of this file). */
dv_result_t dv__prefetch_prepare_locked(dv__dev_t *dev, dv__sched_t *s,
                                        uint64_t pos, int block) {
    dv__suse_t *u = &s->uses[pos % s->count];
    dv__sitem_t *it = &s->items[u->item];
    if (u->prep != DV__PREP_NONE) {
        dv__prefetch_drop_locked(dev, s, u); /* for a position the consumer skipped */
    }
    dv_result_t r;
    if (it->planned) {
        if (dv__item_current(s, it)) {
            u->prep = DV__PREP_RESIDENT;
            it->preps++;
            goto done;
        }
        if (it->was_current) {
            dv__plan_note_loss(s, it);
            it->was_current = 0;
        }
        r = refill(dev, s, it);
        if (r == DV_OK) {
            u->prep = DV__PREP_REFILL;
            it->preps++;
            goto done;
        }
        if (r != DV_OFFLOADED) {
            return r;
        }
        /* No room now: streamed this time. */
    }
    if (it->size > s->slot_size) {
        u->prep = DV__PREP_OFFLOAD;
        goto done;
    }
    if (!dv__ring_mapped(s)) {
        /* The first streamed use since the ring was given back. Its room
         * comes from lower-priority VBARs only. */
        r = dv__ring_map_locked(dev, s, s->vbar->page_count);
        if (r == DV_ERROR_OUT_OF_DEVICE_MEMORY && block) {
            u->prep = DV__PREP_OFFLOAD; /* the caller copies it itself */
            goto done;
        }
        if (r != DV_OK) {
            return r;
        }
    }
    uint32_t k = DV__NO_SLOT;
    r = pick_slot(dev, s, block, &k);
    if (r == DV_NOT_READY && block) {
        r = steal_slot(dev, s, pos, &k);
    }
    if (r == DV_OK) {
        r = fill_slot(dev, s, k, it, pos);
    }
    if (r != DV_OK) {
        return r;
    }
    u->prep = DV__PREP_SLOT;
    u->slot = k;
done:
    u->pos = pos;
    return DV_OK;
}

/* At a step boundary: a ring that streamed nothing during the last step,
 * that the plan no longer needs and whose slots are idle goes back. */
static void maybe_unmap_ring(dv__dev_t *dev, dv__sched_t *s) {
    int idle = s->ring_mapped && !dv__plan_streams(s) &&
               s->st.streamed == s->streamed_at_plan;
    for (uint32_t k = 0; idle && k < s->nslots; k++) {
        dv__slot_t *sl = &s->slots[k];
        idle = sl->state == DV__SLOT_FREE ||
               (sl->state == DV__SLOT_DRAINING &&
                (!sl->consumer ||
                 dev->hal.fence_query(dev->ctx, sl->consumer) == DV_OK));
        idle = idle && (!sl->ready ||
                        dev->hal.fence_query(dev->ctx, sl->ready) == DV_OK);
    }
    s->streamed_at_plan = s->st.streamed;
    if (!idle) {
        return;
    }
    for (uint32_t k = 0; k < s->nslots; k++) {
        dv__sched_fence_drop(dev, &s->slots[k].consumer);
        dv__sched_fence_drop(dev, &s->slots[k].ready);
        s->slots[k].state = DV__SLOT_FREE;
    }
    if (dv__ring_unmap_locked(dev, s) != DV_OK) {
        dv__log(DV_LOG_DEBUG, "schedule %p: ring kept: %s",
                (void *)(uintptr_t)s->handle, dv_last_error());
    }
}

/* Prepare the use at ppos and move on; a new step revises the plan. */
dv_result_t dv__prefetch_next_locked(dv__dev_t *dev, dv__sched_t *s, int block) {
    uint64_t step = dv__sched_step(s, s->ppos);
    if (step != s->plan_step) {
        dv__plan_step_locked(dev, s, step);
        maybe_unmap_ring(dev, s);
    }
    dv_result_t r = dv__prefetch_prepare_locked(dev, s, s->ppos, block);
    if (r == DV_OK) {
        s->ppos++;
    }
    return r;
}

void dv__prefetch_run_locked(dv__dev_t *dev, dv__sched_t *s) {
    if (s->dying) {
        return;
    }
    while (s->ppos < s->cpos + s->count) {
        dv_result_t r = dv__prefetch_next_locked(dev, s, 0);
        if (r != DV_OK) {
            if (r < 0) {
                /* Retried at the next call; the acquire that needs it
                 * reports it if it persists. */
                dv__log(DV_LOG_DEBUG, "schedule %p: prefetch: %s",
                        (void *)(uintptr_t)s->handle, dv_last_error());
            }
            return;
        }
    }
}

void dv__prefetch_drop_all_locked(dv__dev_t *dev, dv__sched_t *s) {
    for (uint64_t i = 0; i < s->count; i++) {
        if (s->uses[i].prep != DV__PREP_NONE) {
            dv__prefetch_drop_locked(dev, s, &s->uses[i]);
        }
    }
    s->ppos = s->cpos;
}

/* ---- handing out ------------------------------------------------------ */

/* Hand the prepared use at `pos` to the consumer on `stream`. */
dv_result_t dv__prefetch_take_locked(dv__dev_t *dev, dv__sched_t *s,
                                     dv__suse_t *u, uint64_t pos, void *stream,
                                     uint64_t *addr) {
    dv__sitem_t *it = &s->items[u->item];
    dv__vbar_t *v = s->vbar;
    dv_result_t r;
    if (u->prep == DV__PREP_RESIDENT && !dv__item_current(s, it)) {
        /* Taken by pressure since it was prepared: prepare it again. */
        r = dv__prefetch_prepare_locked(dev, s, pos, 1);
        if (r < 0) {
            return r;
        }
    }
    if (u->prep == DV__PREP_NONE || u->pos != pos ||
        u->prep == DV__PREP_OFFLOAD) {
        /* Larger than a slot, or every slot held by unreleased uses. */
        if (u->prep != DV__PREP_NONE && u->pos == pos) {
            dv__prefetch_drop_locked(dev, s, u);
        }
        s->st.offloaded++;
        return DV_OFFLOADED;
    }
    switch (u->prep) {
    case DV__PREP_RESIDENT:
    case DV__PREP_REFILL:
        r = wait_copy(dev, s, stream, &it->ready);
        if (r != DV_OK) {
            return r; /* still prepared: a retry finds it */
        }
        if (u->prep == DV__PREP_RESIDENT) {
            dv__pin_range_locked(dev, v, it->first, it->last, NULL);
            it->pins++;
            s->st.resident_hits++;
        }
        it->preps--;
        it->was_current = 1;
        u->held = DV__HELD_RESIDENT;
        *addr = v->base + it->offset;
        break;
    default: { /* DV__PREP_SLOT */
        dv__slot_t *sl = &s->slots[u->slot];
        r = wait_copy(dev, s, stream, &sl->ready);
        if (r != DV_OK) {
            return r;
        }
        sl->state = DV__SLOT_HELD;
        u->held = DV__HELD_SLOT;
        u->hslot = u->slot;
        s->st.streamed++;
        *addr = sl->va;
        break;
    }
    }
    u->prep = DV__PREP_NONE;
    return DV_OK;
}
