/*
 * check.c - every invariant of a device, checked on demand (tests run it
 * after each call).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "core/internal.h"
#include "core/io.h"

#define BROKEN(...) return dv__fail(DV_ERROR_INVARIANT, __VA_ARGS__)

dv_result_t dv__check_locked(dv__dev_t *dev) {
    uint64_t ps = dev->page_size;
    uint64_t resident = 0, pinned = 0;
    uint32_t n = 0;
    const dv__vbar_t *prev = NULL;
    for (const dv__vbar_t *v = dev->top; v; prev = v, v = v->down) {
        if (++n > dev->vbar_count) {
            BROKEN("priority list longer than vbar_count %u (cycle?)",
                   dev->vbar_count);
        }
        if (dv__handle_get(v->handle, DV__HK_VBAR) != v || v->dev != dev) {
            BROKEN("VBAR %p in the list is dead or foreign", (const void *)v);
        }
        if (v->up != prev) {
            BROKEN("VBAR %p: up link broken", (const void *)v);
        }
        if (v->watermark > v->page_count || v->watermark_limit > v->page_count) {
            BROKEN("VBAR %p: watermark %llu / limit %llu beyond %llu pages",
                   (const void *)v, (unsigned long long)v->watermark,
                   (unsigned long long)v->watermark_limit,
                   (unsigned long long)v->page_count);
        }
        if (v->size != v->page_count * ps) {
            BROKEN("VBAR %p: size is not page_count * page_size", (const void *)v);
        }
        uint64_t r = 0;
        for (uint64_t i = 0; i < v->page_count; i++) {
            const dv__page_t *pg = &v->pages[i];
            if (pg->pins && !pg->resident) {
                BROKEN("VBAR %p page %llu pinned but not resident",
                       (const void *)v, (unsigned long long)i);
            }
            if (pg->resident && (pg->gen == 0 || pg->gen > dev->generation)) {
                BROKEN("VBAR %p page %llu: generation %llu out of (0, %llu]",
                       (const void *)v, (unsigned long long)i,
                       (unsigned long long)pg->gen,
                       (unsigned long long)dev->generation);
            }
            if (pg->stream != DV__NO_STREAM && pg->stream >= dev->stream_count) {
                BROKEN("VBAR %p page %llu: stream slot %u of %u",
                       (const void *)v, (unsigned long long)i, pg->stream,
                       dev->stream_count);
            }
            r += pg->resident;
            pinned += pg->pins ? ps : 0;
        }
        if (r != v->resident_pages) {
            BROKEN("VBAR %p: %llu resident pages counted, %llu recorded",
                   (const void *)v, (unsigned long long)r,
                   (unsigned long long)v->resident_pages);
        }
        resident += r * ps;
    }
    if (n != dev->vbar_count || dev->bottom != prev) {
        BROKEN("priority list has %u VBARs, device records %u", n,
               dev->vbar_count);
    }
    if (resident != dev->resident_bytes) {
        BROKEN("resident bytes %llu counted, %llu recorded",
               (unsigned long long)resident,
               (unsigned long long)dev->resident_bytes);
    }
    if (pinned != dev->pinned_bytes) {
        BROKEN("pinned bytes %llu counted, %llu recorded",
               (unsigned long long)pinned, (unsigned long long)dev->pinned_bytes);
    }
    if (dev->pool_count > dev->pool_cap) {
        BROKEN("pool count %llu above capacity %llu",
               (unsigned long long)dev->pool_count,
               (unsigned long long)dev->pool_cap);
    }
    dv_result_t dr = dv__devbuf_check_locked(dev);
    if (dr != DV_OK) {
        return dr;
    }
    dv_result_t sr = dv__sched_check_locked(dev);
    if (sr != DV_OK) {
        return sr;
    }
    for (uint32_t k = 0; k < dev->stream_count; k++) {
        const dv__stream_t *s = &dev->streams[k];
        if (s->ring_count > DV__FENCE_RING || s->done_seq > s->seq) {
            BROKEN("stream slot %u: ring %u, done %llu > seq %llu", k,
                   s->ring_count, (unsigned long long)s->done_seq,
                   (unsigned long long)s->seq);
        }
    }
    if (dev->graph_bytes && !dev->graphs_check) {
        BROKEN("graph bytes %llu without a graph",
               (unsigned long long)dev->graph_bytes);
    }
    return dev->graphs_check ? dev->graphs_check(dev) : DV_OK;
}
