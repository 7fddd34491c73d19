/*
 * schedule_use.c - dv_schedule_acquire and dv_schedule_release: where the
 * consumer is in the step, argument checks, and the fences of a release
 * (contract in include/dynvram_stream.h; the preparing and handing out is
 * prefetch.c's).
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * The consumer's position moves to the next occurrence of the index it
 * acquires: later in this step, or in the next step for an index lower
 * than the last one. Preparations for the positions it skips are dropped.
 * A release of a streamed use records a fence of its own on the caller's
 * stream (the slot's `consumer`); a resident use is unpinned through the
 * fault path's fences (fence.c). Both then let the prefetcher run ahead.
 */
#include "core/schedule.h"

static const char acq_fn[] = "dv_schedule_acquire";
static const char rel_fn[] = "dv_schedule_release";

/* The consumer starts step `step`: a pass of the VBAR for the framework
 * peak (recovery.c's fields), and pages the plan dropped go. */
static void consumer_enters(dv__dev_t *dev, dv__sched_t *s) {
    dv__vbar_t *v = s->vbar;
    s->st.steps++;
    v->fw_peak_prev = v->fw_peak_cur;
    v->fw_peak_cur = dev->framework_bytes;
    dv__plan_evict_unplanned_locked(dev, s);
}

/* Arguments shared by acquire and release; the device is locked on DV_OK. */
static dv_result_t enter(dv_device_t *dh, dv_schedule_t *sh, uint64_t index,
                         void *stream, const char *fn, dv__dev_t **dev,
                         dv__sched_t **s) {
    dv_result_t r = dv__sched_get(dh, sh, fn, dev, s);
    if (r != DV_OK) {
        return r;
    }
    if (index >= (*s)->count) {
        return dv__fail(DV_ERROR_OUT_OF_RANGE,
                        "%s: use %llu of a schedule of %llu uses", fn,
                        (unsigned long long)index,
                        (unsigned long long)(*s)->count);
    }
    dv__dev_t *d = *dev;
    dv__mutex_lock(&d->lock);
    if ((*s)->dying) {
        r = dv__fail(DV_ERROR_BUSY,
                     "%s: the schedule is being destroyed (a destroy failed "
                     "half way; call dv_schedule_destroy again)",
                     fn);
    }
    uint32_t slot;
    if (r == DV_OK && d->hal.fence_record) {
        /* A junk or dead stream is refused before anything changes. */
        r = dv__stream_slot_locked(d, stream, fn, &slot);
    }
    if (r != DV_OK) {
        dv__mutex_unlock(&d->lock);
    }
    return r;
}

dv_result_t dv_schedule_acquire(dv_device_t *dh, dv_schedule_t *sh,
                                uint64_t index, void *stream, uint64_t *addr) {
    dv__dev_t *dev = NULL;
    dv__sched_t *s = NULL;
    if (!addr) {
        dv_result_t r = dv__sched_get(dh, sh, acq_fn, &dev, &s);
        return r != DV_OK ? r
                          : dv__fail(DV_ERROR_INVALID_ARGUMENT,
                                     "%s: addr is NULL", acq_fn);
    }
    dv_result_t r = enter(dh, sh, index, stream, acq_fn, &dev, &s);
    if (r != DV_OK) {
        return r;
    }
    dv__suse_t *u = &s->uses[index];
    if (u->held) {
        dv__mutex_unlock(&dev->lock);
        return dv__fail(DV_ERROR_BUSY,
                        "%s: use %llu is acquired already (release it first)",
                        acq_fn, (unsigned long long)index);
    }
    if (stream && dev->hal.stream_is_capturing) {
        int capturing = 0;
        r = dev->hal.stream_is_capturing(dev->ctx, stream, &capturing);
        if (r == DV_OK && capturing) {
            dv__mutex_unlock(&dev->lock);
            return dv__fail(DV_ERROR_NOT_SUPPORTED,
                            "%s: stream %p is being captured into a graph; a "
                            "schedule cannot be captured",
                            acq_fn, stream);
        }
    }
    /* The use's next position: later in this step, or in the next one. */
    uint64_t cur = s->cpos % s->count;
    uint64_t pos =
        s->cpos + (index >= cur ? index - cur : s->count - cur + index);
    if (dv__sched_step(s, pos) + 1 != s->cstep) {
        s->cstep = dv__sched_step(s, pos) + 1;
        consumer_enters(dev, s);
    }
    for (uint64_t p = s->cpos; p < pos && p < s->ppos; p++) {
        dv__suse_t *w = &s->uses[p % s->count];
        if (w->prep != DV__PREP_NONE && w->pos == p) {
            dv__prefetch_drop_locked(dev, s, w); /* skipped */
        }
    }
    s->cpos = pos;
    if (s->ppos <= pos) {
        s->ppos = pos; /* the prefetcher was behind */
        r = dv__prefetch_next_locked(dev, s, 1);
    } else if (u->prep == DV__PREP_NONE || u->pos != pos) {
        r = dv__prefetch_prepare_locked(dev, s, pos, 1); /* its preparation was given up */
    }
    if (r < 0) {
        goto out; /* DV_NOT_READY: every slot held, take() offloads */
    }
    r = dv__prefetch_take_locked(dev, s, u, pos, stream, addr);
    if (r >= 0) {
        s->cpos = pos + 1;
        if (s->ppos < s->cpos) {
            s->ppos = s->cpos; /* it could not be prepared: offloaded */
        }
        if (r == DV_OK) {
            s->st.acquires++;
        }
        dv__prefetch_run_locked(dev, s);
    }
out:
    dv__mutex_unlock(&dev->lock);
    return r >= 0 ? dv__outcome(r) : r;
}

dv_result_t dv_schedule_release(dv_device_t *dh, dv_schedule_t *sh,
                                uint64_t index, void *stream) {
    dv__dev_t *dev = NULL;
    dv__sched_t *s = NULL;
    dv_result_t r = enter(dh, sh, index, stream, rel_fn, &dev, &s);
    if (r != DV_OK) {
        return r;
    }
    dv__suse_t *u = &s->uses[index];
    dv__sitem_t *it = &s->items[u->item];
    if (!u->held) {
        dv__mutex_unlock(&dev->lock);
        return dv__fail(DV_ERROR_NOT_PINNED,
                        "%s: use %llu is not acquired", rel_fn,
                        (unsigned long long)index);
    }
    if (u->held == DV__HELD_SLOT) {
        dv__slot_t *sl = &s->slots[u->hslot];
        dv_hal_fence_t f = NULL;
        r = DV_ERROR_NOT_SUPPORTED;
        if (dev->hal.fence_record) {
            r = dev->hal.fence_record(dev->ctx, stream, &f);
            if (r != DV_OK) {
                dv__hal_fail(dev, r, "fence_record");
                dv__log(DV_LOG_WARNING, "%s: %s; synchronizing the stream "
                        "instead", rel_fn, dv_last_error());
            }
        }
        if (r != DV_OK && dev->hal.stream_synchronize) {
            /* No fence: the slot is free once the stream is finished. */
            r = dev->hal.stream_synchronize(dev->ctx, stream);
            if (r != DV_OK) {
                dv__hal_fail(dev, r, "stream_synchronize");
                dv__mutex_unlock(&dev->lock);
                return r; /* nothing changed */
            }
        }
        dv__sched_fence_drop(dev, &sl->consumer);
        sl->consumer = f;
        sl->state = f ? DV__SLOT_DRAINING : DV__SLOT_FREE;
    } else {
        r = dv__unpin_range_locked(dev, s->vbar, it->first, it->last, stream,
                                   rel_fn);
        if (r != DV_OK) {
            dv__mutex_unlock(&dev->lock);
            return r; /* nothing changed */
        }
        it->pins--;
    }
    u->held = DV__HELD_NONE;
    dv__prefetch_run_locked(dev, s);
    dv__mutex_unlock(&dev->lock);
    return dv__ok();
}
