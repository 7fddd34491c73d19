/*
 * graph.c - allocation graphs: handles, validation, scopes and the public
 * entry points (contract: include/dynvram_graph.h; data model:
 * core/graph.h).
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * A graph is a handle of kind DV__HK_GRAPH, validated like a VBAR before
 * anything is read through it. Its state is guarded by its device's lock;
 * the replay path (dv_graph_alloc / dv_graph_free matching a recording)
 * holds it for a few comparisons and span updates and calls no driver.
 *
 * Scopes (push, pop, iterate, abort, pause) are in graph_scope.c. An
 * allocation belongs to the innermost scope pass open when it was made.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/graph.h"

static dv_graph_t *graph_handle(const dv__graph_t *g) {
    return (dv_graph_t *)(uintptr_t)g->handle;
}

/* ---- validation ----------------------------------------------------------- */

static dv_result_t graph_get_fail(dv_device_t *dh, dv_graph_t *gh,
                                  const char *fn) {
    dv__dev_t *dev = NULL;
    dv_result_t r = dv__dev_get(dh, fn, &dev);
    if (r != DV_OK) {
        return r;
    }
    if (!gh) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT, "%s: graph is NULL", fn);
    }
    uint64_t h = dv__handle_of(gh);
    dv__graph_t *g = (dv__graph_t *)dv__handle_get(h, DV__HK_GRAPH);
    if (!g) {
        const char *kind = dv__handle_get(h, DV__HK_VBAR)     ? "a VBAR"
                           : dv__handle_get(h, DV__HK_DEVICE) ? "a device"
                                                              : NULL;
        if (kind) {
            return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                            "%s: %p is %s handle, not a graph", fn, (void *)gh,
                            kind);
        }
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "%s: graph handle %p is not a live graph (destroyed, "
                        "or never a graph)",
                        fn, (void *)gh);
    }
    return dv__fail(DV_ERROR_WRONG_DEVICE,
                    "%s: graph %p belongs to device %p (%s:%d), not %p (%s:%d)",
                    fn, (void *)gh, (void *)dv__dev_handle(g->dev),
                    g->dev->hal.name, g->dev->ordinal, (void *)dh,
                    dev->hal.name, dev->ordinal);
}

dv_result_t dv__graph_get(dv_device_t *dh, dv_graph_t *gh, const char *fn,
                          dv__dev_t **dev, dv__graph_t **graph) {
    dv__dev_t *d = (dv__dev_t *)dv__handle_get(dv__handle_of(dh), DV__HK_DEVICE);
    dv__graph_t *g =
        (dv__graph_t *)dv__handle_get(dv__handle_of(gh), DV__HK_GRAPH);
    if (d && g && g->dev == d) {
        *dev = d;
        *graph = g;
        return DV_OK;
    }
    return graph_get_fail(dh, gh, fn);
}

/* ---- invariants (dv_device_check, through dev->graphs_check) ----------- */

static dv_result_t graphs_check_locked(dv__dev_t *dev) {
    uint64_t bytes = 0;
    uint32_t n = 0;
    for (const dv__graph_t *g = dev->graphs; g; g = g->gnext) {
        if (++n > dev->graph_count ||
            dv__handle_get(g->handle, DV__HK_GRAPH) != g || g->dev != dev) {
            return dv__fail(DV_ERROR_INVARIANT,
                            "graph list of the device is longer than %u, or "
                            "holds a dead or foreign graph",
                            dev->graph_count);
        }
        if (g->depth > g->fcap || g->st.used > g->st.peak_used ||
            g->st.rogue_bytes > g->st.used) {
            return dv__fail(DV_ERROR_INVARIANT,
                            "graph %p: depth %u of %u, used %llu, peak %llu, "
                            "rogue bytes %llu",
                            (void *)graph_handle(g), g->depth, g->fcap,
                            (unsigned long long)g->st.used,
                            (unsigned long long)g->st.peak_used,
                            (unsigned long long)g->st.rogue_bytes);
        }
        dv_result_t r = dv__gmem_check(dev, g);
        if (r != DV_OK) {
            return r;
        }
        bytes += (uint64_t)g->npages * g->page_size;
    }
    if (n != dev->graph_count || bytes != dev->graph_bytes) {
        return dv__fail(DV_ERROR_INVARIANT,
                        "%u graphs listed of %u; their pages hold %llu bytes, "
                        "the device counts %llu",
                        n, dev->graph_count, (unsigned long long)bytes,
                        (unsigned long long)dev->graph_bytes);
    }
    return DV_OK;
}

/* ---- options and lifetime -------------------------------------------------- */

void dv_graph_options_init(dv_graph_options_t *opts) {
    if (opts) {
        memset(opts, 0, sizeof(*opts));
    }
}

/* The graph's page: a power of two, a multiple of the granularity. */
static uint64_t graph_page(const dv__dev_t *dev, uint64_t want) {
    uint64_t gran = dev->caps.granularity ? dev->caps.granularity : 1;
    uint64_t ps = 4096;
    while (ps < want || ps < gran) {
        ps <<= 1;
    }
    while (ps % gran) {
        ps <<= 1;
    }
    return ps;
}

static dv_result_t check_options(const dv__dev_t *dev,
                                 const dv_graph_options_t *o, uint64_t *ps,
                                 uint64_t *arena_pages) {
    static const char fn[] = "dv_graph_create";
    if (o->page_size > DV__G_MAX_PAGE || o->max_variants > DV__G_MAX_VARIANTS ||
        (o->flags & ~DV_GRAPH_ASSERT_NO_BREAKS)) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "%s: page_size %llu (at most %llu), max_variants %u (at "
                        "most %u) or flags 0x%x out of range",
                        fn, (unsigned long long)o->page_size,
                        (unsigned long long)DV__G_MAX_PAGE, o->max_variants,
                        DV__G_MAX_VARIANTS, o->flags);
    }
    *ps = graph_page(dev, o->page_size ? o->page_size : DV__G_DEFAULT_PAGE);
    if (*ps > DV__G_MAX_PAGE) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "%s: the backend's granularity %llu exceeds the largest "
                        "graph page",
                        fn, (unsigned long long)dev->caps.granularity);
    }
    uint64_t ap = o->arena_size ? o->arena_size / *ps + (o->arena_size % *ps != 0)
                                : DV__G_DEFAULT_ARENA_PAGES;
    if (ap > UINT32_MAX) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "%s: arena_size %llu is too large", fn,
                        (unsigned long long)o->arena_size);
    }
    *arena_pages = ap;
    return DV_OK;
}

dv_result_t dv_graph_create(dv_device_t *h, const dv_graph_options_t *opts,
                            dv_graph_t **out) {
    static const char fn[] = "dv_graph_create";
    dv__dev_t *dev = NULL;
    dv_result_t r = dv__dev_get(h, fn, &dev);
    if (r != DV_OK) {
        return r;
    }
    if (!out) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT, "%s: out is NULL", fn);
    }
    *out = NULL;
    dv_graph_options_t defaults;
    dv_graph_options_init(&defaults);
    const dv_graph_options_t *o = opts ? opts : &defaults;
    uint64_t ps = 0, ap = 0;
    r = check_options(dev, o, &ps, &ap);
    if (r != DV_OK) {
        return r;
    }
    dv__graph_t *g = calloc(1, sizeof(*g));
    if (!g) {
        return dv__fail(DV_ERROR_OUT_OF_HOST_MEMORY, "%s", fn);
    }
    g->dev = dev;
    g->stream = o->stream;
    g->page_size = ps;
    while ((1ull << g->page_shift) < ps) {
        g->page_shift++;
    }
    g->arena_pages = ap;
    g->flags = o->flags;
    g->max_variants = o->max_variants ? o->max_variants : DV__G_DEFAULT_VARIANTS;
    g->handle = dv__handle_new(DV__HK_GRAPH, g);
    if (!g->handle) {
        free(g);
        return dv__fail(DV_ERROR_OUT_OF_HOST_MEMORY, "%s: handle table full",
                        fn);
    }
    dv__mutex_lock(&dev->lock);
    uint32_t slot;
    r = dv__stream_slot_locked(dev, o->stream, fn, &slot);
    if (r == DV_OK) {
        dev->graphs_check = graphs_check_locked;
        g->gnext = dev->graphs;
        dev->graphs = g;
        dev->graph_count++;
    }
    dv__mutex_unlock(&dev->lock);
    if (r != DV_OK) {
        dv__handle_free(g->handle, DV__HK_GRAPH);
        free(g);
        return r;
    }
    *out = graph_handle(g);
    return dv__ok();
}

dv_result_t dv_graph_destroy(dv_device_t *dh, dv_graph_t *gh) {
    static const char fn[] = "dv_graph_destroy";
    dv__dev_t *dev = NULL;
    dv__graph_t *g = NULL;
    dv_result_t r = dv__graph_get(dh, gh, fn, &dev, &g);
    if (r != DV_OK) {
        return r;
    }
    dv__mutex_lock(&dev->lock);
    if (g->depth || g->live) {
        uint32_t depth = g->depth;
        uint64_t used = g->st.used;
        dv__mutex_unlock(&dev->lock);
        if (depth) {
            return dv__fail(DV_ERROR_BUSY,
                            "%s: %u scope(s) open; pop or abort them first", fn,
                            depth);
        }
        return dv__fail(DV_ERROR_BUSY,
                        "%s: %llu bytes of the graph's allocations still "
                        "alive; free them first",
                        fn, (unsigned long long)used);
    }
    r = dv__gspace_quiesce(dev, g);
    if (r == DV_OK) {
        dv__grec_drop_all(dev, g);
        r = dv__gspace_teardown(dev, g);
    }
    if (r != DV_OK) {
        dv__mutex_unlock(&dev->lock);
        return r;
    }
    dv__graph_t **pp = &dev->graphs;
    while (*pp != g) {
        pp = &(*pp)->gnext;
    }
    *pp = g->gnext;
    dev->graph_count--;
    dv__handle_free(g->handle, DV__HK_GRAPH);
    dv__mutex_unlock(&dev->lock);
    dv__gmem_free(g);
    free(g->trace);
    free(g);
    return dv__ok();
}

/* ---- streams --------------------------------------------------------------- */

/* Order work queued on `to` after this call behind what `from` has queued. */
static dv_result_t order_streams(dv__dev_t *dev, uint32_t from, void *to) {
    void *fs = dev->streams[from].stream;
    if (!dev->hal.fence_record) {
        return DV_OK; /* no asynchronous work to order */
    }
    if (!dev->hal.stream_wait) {
        return dv__stream_sync_locked(dev, from);
    }
    dv_hal_fence_t f = NULL;
    dv_result_t r = dev->hal.fence_record(dev->ctx, fs, &f);
    if (r != DV_OK) {
        return dv__hal_fail(dev, r, "fence_record (graph retarget)");
    }
    r = dev->hal.stream_wait(dev->ctx, to, f);
    if (r != DV_OK) {
        r = dv__hal_fail(dev, r, "stream_wait (graph retarget)");
    }
    if (dev->hal.fence_destroy) {
        dev->hal.fence_destroy(dev->ctx, f);
    }
    return r;
}

dv_result_t dv_graph_set_stream(dv_device_t *dh, dv_graph_t *gh, void *stream) {
    static const char fn[] = "dv_graph_set_stream";
    dv__dev_t *dev = NULL;
    dv__graph_t *g = NULL;
    dv_result_t r = dv__graph_get(dh, gh, fn, &dev, &g);
    if (r != DV_OK) {
        return r;
    }
    dv__mutex_lock(&dev->lock);
    uint32_t from = 0, to = 0;
    r = dv__stream_slot_locked(dev, stream, fn, &to);
    if (r == DV_OK && stream != g->stream) {
        /* An old stream destroyed meanwhile has nothing left to order. */
        int old = dv__stream_slot_locked(dev, g->stream, fn, &from) == DV_OK;
        if (dv__stream_capturing_locked(dev, to) ||
            (old && dv__stream_capturing_locked(dev, from))) {
            r = dv__fail(DV_ERROR_BUSY,
                         "%s: stream %p or %p is being captured into a graph",
                         fn, g->stream, stream);
        }
        if (r == DV_OK && old) {
            r = order_streams(dev, from, stream);
        }
    }
    if (r == DV_OK) {
        g->stream = stream;
    }
    dv__mutex_unlock(&dev->lock);
    return r == DV_OK ? dv__ok() : r;
}

/* ---- the debug trace -------------------------------------------------------- */

void dv__gtrace(dv__dev_t *dev, dv__graph_t *g, dv_graph_event_t *ev) {
    if (!g->trace) {
        return;
    }
    ev->seq = g->trseq++;
    ev->depth = g->depth;
    if (g->depth) {
        const dv__gframe_t *f = &g->frames[g->depth - 1];
        snprintf(ev->scope, sizeof(ev->scope), "%s", f->name);
        if (f->captured) {
            ev->flags |= DV_GRAPH_EVF_CAPTURE_PASS;
        }
    }
    if (ev->kind == DV_GRAPH_EV_ALLOC || ev->kind == DV_GRAPH_EV_FREE) {
        ev->flags |= dv__grec_capturing(dev, g) ? DV_GRAPH_EVF_CAPTURING : 0;
    }
    g->trace[g->trhead] = *ev;
    g->trhead = (g->trhead + 1) % g->trcap;
    if (g->trlen < g->trcap) {
        g->trlen++;
    }
}

static void trace_call(dv__dev_t *dev, dv__graph_t *g, uint32_t kind,
                       uint32_t outcome, uint64_t size, uint64_t ptr,
                       uint64_t serial, void *stream) {
    if (!g->trace) {
        return;
    }
    dv_graph_event_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.kind = kind;
    ev.outcome = outcome;
    ev.size = size;
    ev.ptr = ptr;
    ev.serial = serial;
    ev.stream = stream;
    dv__gtrace(dev, g, &ev);
}

#define TRACE_MAX (1u << 20)

dv_result_t dv_graph_trace(dv_device_t *dh, dv_graph_t *gh, uint32_t capacity) {
    static const char fn[] = "dv_graph_trace";
    dv__dev_t *dev = NULL;
    dv__graph_t *g = NULL;
    dv_result_t r = dv__graph_get(dh, gh, fn, &dev, &g);
    if (r != DV_OK) {
        return r;
    }
    if (capacity > TRACE_MAX) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "%s: capacity %u (at most %u)", fn, capacity,
                        TRACE_MAX);
    }
    dv_graph_event_t *t = NULL;
    if (capacity) {
        t = calloc(capacity, sizeof(*t));
        if (!t) {
            return dv__fail(DV_ERROR_OUT_OF_HOST_MEMORY, "%s: %u events", fn,
                            capacity);
        }
    }
    dv__mutex_lock(&dev->lock);
    dv_graph_event_t *old = g->trace;
    g->trace = t;
    g->trcap = capacity;
    g->trlen = g->trhead = 0;
    g->trseq = 0;
    dv__mutex_unlock(&dev->lock);
    free(old);
    return dv__ok();
}

dv_result_t dv_graph_get_trace(dv_device_t *dh, dv_graph_t *gh,
                               dv_graph_event_t *out, uint32_t max,
                               uint32_t *count) {
    static const char fn[] = "dv_graph_get_trace";
    dv__dev_t *dev = NULL;
    dv__graph_t *g = NULL;
    dv_result_t r = dv__graph_get(dh, gh, fn, &dev, &g);
    if (r != DV_OK) {
        return r;
    }
    if (!count || (!out && max)) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT, "%s: count NULL, or out "
                        "NULL with max %u", fn, max);
    }
    dv__mutex_lock(&dev->lock);
    if (!max) {
        *count = g->trlen;
    } else {
        uint32_t n = max < g->trlen ? max : g->trlen;
        uint32_t first = (g->trhead + g->trcap - n) % (g->trcap ? g->trcap : 1);
        for (uint32_t i = 0; i < n; i++) {
            out[i] = g->trace[(first + i) % g->trcap];
        }
        *count = n;
    }
    dv__mutex_unlock(&dev->lock);
    return dv__ok();
}

dv_result_t dv_graph_get_recording(dv_device_t *dh, dv_graph_t *gh,
                                   const char *name, dv_graph_event_t *out,
                                   uint32_t max, uint32_t *count) {
    static const char fn[] = "dv_graph_get_recording";
    dv__dev_t *dev = NULL;
    dv__graph_t *g = NULL;
    dv_result_t r = dv__graph_get(dh, gh, fn, &dev, &g);
    if (r != DV_OK) {
        return r;
    }
    if (!count || (!out && max)) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT, "%s: count NULL, or out "
                        "NULL with max %u", fn, max);
    }
    const char *nm = name ? name : "";
    dv__mutex_lock(&dev->lock);
    const dv__gtop_t *top = NULL;
    for (uint32_t k = 0; k < g->ntops && !top; k++) {
        if (strcmp(g->tops[k].name, nm) == 0) {
            top = &g->tops[k];
        }
    }
    if (top) {
        *count = dv__grec_describe(top->root, out, max);
    }
    dv__mutex_unlock(&dev->lock);
    if (!top) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "%s: no outermost scope is named '%.64s'", fn, nm);
    }
    return dv__ok();
}

/* ---- allocations ----------------------------------------------------------- */

dv_result_t dv_graph_alloc(dv_device_t *dh, dv_graph_t *gh, uint64_t size,
                           void *stream, uint64_t *ptr) {
    static const char fn[] = "dv_graph_alloc";
    dv__dev_t *dev = NULL;
    dv__graph_t *g = NULL;
    dv_result_t r = dv__graph_get(dh, gh, fn, &dev, &g);
    if (r != DV_OK) {
        return r;
    }
    if (!ptr || size == 0 || size > DV__G_MAX_SIZE ||
        (size >> g->page_shift) >= (1ull << 31)) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "%s: ptr NULL or size %llu is 0 or too large", fn,
                        (unsigned long long)size);
    }
    *ptr = 0;
    dv__mutex_lock(&dev->lock);
    dv__gframe_t *f = g->depth ? &g->frames[g->depth - 1] : NULL;
    if (!f || f->lost || g->paused || stream != g->stream) {
        g->st.bypassed++;
        trace_call(dev, g, DV_GRAPH_EV_ALLOC, DV_GRAPH_OUT_BYPASSED, size, 0,
                   0, stream);
        dv__mutex_unlock(&dev->lock);
        return dv__outcome(DV_OFFLOADED);
    }
    dv__grange_t *rg = NULL;
    uint32_t outcome = DV_GRAPH_OUT_FAILED;
    r = dv__grec_alloc(dev, g, f, size, &rg, &outcome);
    if (r == DV_OFFLOADED) { /* a recording needed inside a capture */
        g->st.bypassed++;
        trace_call(dev, g, DV_GRAPH_EV_ALLOC, outcome, size, 0, 0, stream);
        dv__mutex_unlock(&dev->lock);
        return dv__outcome(r);
    }
    if (r == DV_OK) {
        rg->owner = f->serial;
        g->st.allocs++;
        g->st.replayed_allocs += outcome == DV_GRAPH_OUT_REPLAYED;
        g->st.used += size;
        if (g->st.used > g->st.peak_used) {
            g->st.peak_used = g->st.used;
        }
        *ptr = rg->va;
    }
    trace_call(dev, g, DV_GRAPH_EV_ALLOC,
               r == DV_OK ? outcome : DV_GRAPH_OUT_FAILED, size,
               r == DV_OK ? rg->va : 0, r == DV_OK ? rg->serial : 0, stream);
    dv__mutex_unlock(&dev->lock);
    return r == DV_OK ? dv__ok() : r;
}

dv_result_t dv_graph_free(dv_device_t *dh, dv_graph_t *gh, uint64_t ptr,
                          void *stream) {
    static const char fn[] = "dv_graph_free";
    dv__dev_t *dev = NULL;
    dv__graph_t *g = NULL;
    dv_result_t r = dv__graph_get(dh, gh, fn, &dev, &g);
    if (r != DV_OK) {
        return r;
    }
    /* Frees are taken in the graph stream's order (the stream is traced
     * only). */
    dv__mutex_lock(&dev->lock);
    int inside = 0;
    dv__grange_t *rg = dv__gmem_find(g, ptr, &inside);
    if (!rg || !rg->live) {
        if (!inside) {
            g->st.unknown_frees++;
        }
        trace_call(dev, g, DV_GRAPH_EV_FREE,
                   inside ? DV_GRAPH_OUT_FAILED : DV_GRAPH_OUT_UNKNOWN, 0, ptr,
                   rg ? rg->serial : 0, stream);
        dv__mutex_unlock(&dev->lock);
        if (!inside) {
            return dv__outcome(DV_OFFLOADED);
        }
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "%s: 0x%llx is in the graph's address space but not a "
                        "live allocation (freed twice, or not its first byte)",
                        fn, (unsigned long long)ptr);
    }
    /* Out of every sequence: no scope open, paused, a lost pass, or a free
     * whose recorded place a capture pass stepped over. */
    uint32_t outcome = DV_GRAPH_OUT_UNSEQUENCED;
    if (g->depth && !g->paused && !g->frames[g->depth - 1].lost &&
        !rg->unseq) {
        (void)dv__grec_free(dev, g, &g->frames[g->depth - 1], rg, &outcome);
    }
    g->st.frees++;
    g->st.used -= rg->size;
    if (!rg->owner) {
        g->st.rogue_bytes -= rg->size;
    }
    rg->unseq = 0;
    trace_call(dev, g, DV_GRAPH_EV_FREE, outcome, rg->size, ptr, rg->serial,
               stream);
    dv__gmem_release(dev, g, rg);
    dv__mutex_unlock(&dev->lock);
    return dv__ok();
}

/* ---- queries --------------------------------------------------------------- */

dv_result_t dv_graph_get_stats(dv_device_t *dh, dv_graph_t *gh,
                               dv_graph_stats_t *st) {
    dv__dev_t *dev = NULL;
    dv__graph_t *g = NULL;
    dv_result_t r = dv__graph_get(dh, gh, "dv_graph_get_stats", &dev, &g);
    if (r != DV_OK) {
        return r;
    }
    if (!st) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "dv_graph_get_stats: st is NULL");
    }
    dv__mutex_lock(&dev->lock);
    *st = g->st;
    dv__gspace_sizes(g, &st->mapped_bytes, &st->virtual_bytes);
    st->physical_bytes = (uint64_t)g->npages * g->page_size;
    st->page_size = g->page_size;
    st->stream = g->stream;
    st->depth = g->depth;
    st->paused = g->paused;
    dv__mutex_unlock(&dev->lock);
    return dv__ok();
}
