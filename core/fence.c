/*
 * fence.c - when may an unpinned page be evicted?
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Each unpin call on a stream gets a sequence number; its pages remember
 * (stream slot, seq). A fence recorded on the stream covers every unpin with
 * a smaller or equal seq. Recording a fence per unpin costs a driver call
 * (about a microsecond), so unpins share one: a fence is recorded every
 * fence_interval unpins, and on demand when eviction needs a page whose
 * unpin no fence covers yet. Waiting for a page means waiting for the
 * oldest fence at or after its seq on its own stream: never for another
 * stream and never for the whole device.
 *
 * Each stream keeps a ring of at most DV__FENCE_RING fences. When it is
 * full the oldest is dropped: later fences cover its unpins too, only more
 * conservatively.
 *
 * Graph capture (CUDA graphs): while a stream is being captured, nothing
 * here records a fence on it, queries or waits on its fences, or
 * synchronizes it; any of those would invalidate the capture (or, for a
 * fence recorded inside it, make the fence part of the graph). So:
 *  - the periodic fence of unpin is put off until an unpin after the
 *    capture (the unpins in between share that later fence);
 *  - a page whose last unpin is not known finished and whose stream is
 *    capturing is "blocked": eviction passes over it (it is not a victim,
 *    and reap leaves it for later), and a wait for it fails with
 *    DV_ERROR_BUSY instead of blocking;
 *  - the synchronize fallback fails with DV_ERROR_BUSY instead.
 * A page known finished (done_seq covers it) needs none of these and stays
 * evictable. The state is asked of the backend (stream_is_capturing) each
 * time one of these decisions is made, never on the resident fast path.
 */
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

static dv__fence_ent_t *ring_at(dv__stream_t *s, uint32_t k) {
    return &s->ring[(s->ring_head + k) % DV__FENCE_RING];
}

static void ring_pop(dv__dev_t *dev, dv__stream_t *s) {
    dv__fence_ent_t *e = ring_at(s, 0);
    if (dev->hal.fence_destroy) {
        dev->hal.fence_destroy(dev->ctx, e->fence);
    }
    s->ring_head = (s->ring_head + 1) % DV__FENCE_RING;
    s->ring_count--;
}

/* Record a fence covering every unpin handed out so far on this stream. */
static dv_result_t record(dv__dev_t *dev, dv__stream_t *s) {
    dv_hal_fence_t f = NULL;
    dv_result_t r = dev->hal.fence_record(dev->ctx, s->stream, &f);
    if (r != DV_OK) {
        return dv__hal_fail(dev, r, "fence_record");
    }
    if (s->ring_count == DV__FENCE_RING) {
        ring_pop(dev, s);
    }
    dv__fence_ent_t *e = ring_at(s, s->ring_count++);
    e->fence = f;
    e->seq = s->seq;
    s->since_fence = 0;
    return DV_OK;
}

int dv__stream_capturing_locked(dv__dev_t *dev, uint32_t slot) {
    dv__stream_t *s = &dev->streams[slot];
    int capturing = 0;
    if (!dev->hal.stream_is_capturing || !s->stream ||
        dev->hal.stream_is_capturing(dev->ctx, s->stream, &capturing) !=
            DV_OK) {
        return 0; /* as without the op: the NULL stream is never captured */
    }
    return capturing != 0;
}

dv_result_t dv__stream_unpin_locked(dv__dev_t *dev, uint32_t slot,
                                    uint64_t *seq) {
    dv__stream_t *s = &dev->streams[slot];
    *seq = ++s->seq;
    if (++s->since_fence >= dev->fence_interval &&
        !dv__stream_capturing_locked(dev, slot)) {
        return record(dev, s);
    }
    return DV_OK;
}

uint64_t dv__stream_mark_locked(dv__dev_t *dev, uint32_t slot) {
    dv__stream_t *s = &dev->streams[slot];
    s->since_fence++;
    return ++s->seq;
}

int dv__page_blocked_locked(dv__dev_t *dev, const dv__page_t *pg) {
    return !dv__page_idle(dev, pg) &&
           dv__stream_capturing_locked(dev, pg->stream);
}

/* The DV_ERROR_BUSY of a wait or synchronize refused during a capture. */
static dv_result_t captured(const dv__stream_t *s, const char *what) {
    return dv__fail(DV_ERROR_BUSY,
                    "%s: stream %p is being captured into a graph; its work "
                    "is not waited for until the capture ends",
                    what, s->stream);
}

int dv__page_idle(const dv__dev_t *dev, const dv__page_t *pg) {
    return pg->stream == DV__NO_STREAM ||
           pg->unpin_seq <= dev->streams[pg->stream].done_seq;
}

/* Everything up to fence k is done: drop fences 0..k. */
static void retire_through(dv__dev_t *dev, dv__stream_t *s, uint32_t k) {
    uint64_t seq = ring_at(s, k)->seq;
    for (uint32_t n = 0; n <= k; n++) {
        ring_pop(dev, s);
    }
    if (seq > s->done_seq) {
        s->done_seq = seq;
    }
}

/* Index of the oldest fence covering the page's unpin, recording one when
 * none does yet; -1 if recording failed. */
static int64_t covering_fence(dv__dev_t *dev, dv__stream_t *s,
                              const dv__page_t *pg) {
    uint32_t k = 0;
    while (k < s->ring_count && ring_at(s, k)->seq < pg->unpin_seq) {
        k++;
    }
    if (k == s->ring_count) {
        if (record(dev, s) != DV_OK) {
            return -1;
        }
        k = s->ring_count - 1;
    }
    return k;
}

/* No fence could be recorded: finish the stream's work instead (correct,
 * only slower). Everything handed out on it so far is then done. */
static dv_result_t sync_instead(dv__dev_t *dev, dv__stream_t *s) {
    if (dv__stream_capturing_locked(dev, (uint32_t)(s - dev->streams))) {
        return captured(s, "stream synchronize");
    }
    dv_result_t r = dev->hal.stream_synchronize
                        ? dev->hal.stream_synchronize(dev->ctx, s->stream)
                        : DV_ERROR_NOT_SUPPORTED;
    if (r != DV_OK) {
        return dv__hal_fail(dev, DV_ERROR_BACKEND,
                            "fence_record and stream_synchronize");
    }
    while (s->ring_count) {
        ring_pop(dev, s);
    }
    s->done_seq = s->seq;
    s->since_fence = 0;
    return DV_OK;
}

dv_result_t dv__stream_sync_locked(dv__dev_t *dev, uint32_t slot) {
    return sync_instead(dev, &dev->streams[slot]);
}

int dv__page_try_idle_locked(dv__dev_t *dev, dv__page_t *pg) {
    if (dv__page_idle(dev, pg)) {
        return 1;
    }
    if (dv__stream_capturing_locked(dev, pg->stream)) {
        return 0;
    }
    dv__stream_t *s = &dev->streams[pg->stream];
    int64_t k = covering_fence(dev, s, pg);
    if (k < 0 || dev->hal.fence_query(dev->ctx, ring_at(s, (uint32_t)k)->fence) !=
                     DV_OK) {
        return 0;
    }
    retire_through(dev, s, (uint32_t)k);
    return 1;
}

dv_result_t dv__page_wait_locked(dv__dev_t *dev, dv__page_t *pg) {
    if (dv__page_idle(dev, pg)) {
        return DV_OK;
    }
    dv__stream_t *s = &dev->streams[pg->stream];
    if (dv__stream_capturing_locked(dev, pg->stream)) {
        return captured(s, "fence wait");
    }
    int64_t k = covering_fence(dev, s, pg);
    if (k < 0) {
        dv__log(DV_LOG_WARNING, "no fence could be recorded (%s): "
                "synchronizing the stream instead", dv_last_error());
        return sync_instead(dev, s);
    }
    dv_hal_fence_t f = ring_at(s, (uint32_t)k)->fence;
    dv_result_t r = dev->hal.fence_query(dev->ctx, f);
    if (r == DV_NOT_READY) {
        dev->st.fence_waits++;
        r = dev->hal.fence_wait(dev->ctx, f);
    }
    if (r != DV_OK) {
        return dv__hal_fail(dev, r, "fence wait");
    }
    retire_through(dev, s, (uint32_t)k);
    return DV_OK;
}

void dv__stream_drop_fences_locked(dv__dev_t *dev, uint32_t slot) {
    dv__stream_t *s = &dev->streams[slot];
    while (s->ring_count) {
        ring_pop(dev, s);
    }
}

void dv__streams_fini_locked(dv__dev_t *dev) {
    for (uint32_t k = 0; k < dev->stream_count; k++) {
        dv__stream_drop_fences_locked(dev, k);
    }
    dev->stream_count = 0;
}
