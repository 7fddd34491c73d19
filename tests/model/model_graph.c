/*
 * model_graph.c - allocation graphs (include/dynvram_graph.h) in the model.
 * SPDX-License-Identifier: Apache-2.0
 *
 * What is exact: every result (a scope's pop or iterate may say "changed"
 * either way and, with no assertion flag, returns DV_OK), which allocations
 * the graph takes (a scope open, not paused, on the graph's stream), the
 * scope stack, rogues (the live allocations of each pass a pop, iterate or
 * abort closes), the counters of dv_graph_get_stats except the replay /
 * record / break split (their sum is the passes judged) and the device's
 * counters around it. What is observed: how many physical pages a
 * recording created (placement is the library's). Each observed page is
 * then charged to the model the way graph_mem.c does it, one page at a
 * time, making room like a framework allocation (pool first, then victims
 * in eviction order), so the device's evictions, pool and budget stay
 * exact; an allocation that failed for memory is replayed in the model
 * until the first page that does not fit, those pages given back.
 * Contents: every live graph allocation carries a pattern, checked after
 * every call and at its free, so two live allocations never share bytes.
 */
#include <stdio.h>
#include <string.h>

#include "model.h"

static const char *names[3] = {NULL, "a", "b"};

static mt_graph_t *any_graph(mt_world_t *w, mt_dev_t *d) {
    int k = (int)mt_pick(&w->src, MT_GRAPHS);
    for (int n = 0; n < MT_GRAPHS; n++) {
        mt_graph_t *g = &d->g[(k + n) % MT_GRAPHS];
        if (g->h) {
            return g;
        }
    }
    return NULL;
}

static dv_graph_stats_t gstats(mt_world_t *w, mt_dev_t *d, mt_graph_t *g) {
    dv_graph_stats_t st;
    dv_result_t r = dv_graph_get_stats(d->h, g->h, &st);
    if (r != DV_OK) {
        mt_fail(w, "probe", "dv_graph_get_stats(d%d, g%d): %s", d->name,
                g->name, dv_last_error());
    }
    return st;
}

/* ---- contents ---- */

static void fill(mt_galloc_t *a) {
    uint64_t *p = (uint64_t *)(uintptr_t)a->ptr;
    for (uint64_t k = 0; k < a->size / 8; k++) {
        p[k] = mt_pattern_word(a->token, k);
    }
}

static void verify(mt_world_t *w, mt_dev_t *d, mt_graph_t *g,
                   const mt_galloc_t *a) {
    const uint64_t *p = (const uint64_t *)(uintptr_t)a->ptr;
    for (uint64_t k = 0; k < a->size / 8; k++) {
        if (p[k] != mt_pattern_word(a->token, k)) {
            mt_fail(w, "graph-content",
                    "d%d g%d allocation 0x%llx (%llu bytes) word %llu was "
                    "overwritten while live: another allocation shares its "
                    "bytes",
                    d->name, g->name, (unsigned long long)a->ptr,
                    (unsigned long long)a->size, (unsigned long long)k);
        }
    }
}

void mt_check_graphs(mt_world_t *w, mt_dev_t *d) {
    for (int k = 0; k < MT_GRAPHS; k++) {
        mt_graph_t *g = &d->g[k];
        if (!g->h) {
            continue;
        }
        dv_graph_stats_t st = gstats(w, d, g);
        const char *check = "graph-stats";
#define GSAME(what, got, want)                                                 \
    do {                                                                       \
        if ((uint64_t)(got) != (uint64_t)(want)) {                             \
            mt_fail(w, check, "d%d g%d %s is %llu, the model says %llu",       \
                    d->name, g->name, what, (unsigned long long)(got),         \
                    (unsigned long long)(want));                               \
        }                                                                      \
    } while (0)
        GSAME("allocs", st.allocs, g->allocs);
        GSAME("frees", st.frees, g->frees);
        GSAME("bypassed", st.bypassed, g->bypassed);
        GSAME("unknown_frees", st.unknown_frees, g->unknown);
        GSAME("rogues", st.rogues, g->rogues);
        GSAME("rogue_bytes", st.rogue_bytes, g->rogue_bytes);
        GSAME("used", st.used, g->used);
        GSAME("peak_used", st.peak_used, g->peak);
        GSAME("depth", st.depth, g->depth);
        GSAME("paused", st.paused, g->paused);
        GSAME("page_size", st.page_size, g->ps);
        GSAME("physical_bytes", st.physical_bytes, g->phys);
        GSAME("passes", st.breaks + st.replays + st.records, g->judged);
        if ((uintptr_t)st.stream != (uintptr_t)g->stream ||
            st.replayed_allocs > st.allocs) {
            mt_fail(w, check, "d%d g%d stream %p (model %p), %llu of %llu "
                    "allocations replayed", d->name, g->name, st.stream,
                    g->stream, (unsigned long long)st.replayed_allocs,
                    (unsigned long long)st.allocs);
        }
#undef GSAME
        for (int j = 0; j < g->nlive; j++) {
            verify(w, d, g, &g->live[j]);
        }
    }
}

/* ---- the budget: pages charged like graph_mem.c's page_create ---- */

/* One graph page of the model: room in the budget, else reclaim; 0 when it
 * does not fit even then (evictions stay done). */
static int charge_page(mt_dev_t *d, uint64_t ps) {
    uint64_t budget = mt_budget(d), used = mt_used(d);
    if (used > budget || ps > budget - used) {
        mt_reclaim(d, used + ps - budget);
        used = mt_used(d);
        if (used > budget || ps > budget - used) {
            return 0;
        }
    }
    d->graph_bytes += ps;
    return 1;
}

static void adopt_pages(mt_world_t *w, mt_dev_t *d, mt_graph_t *g,
                        dv_result_t r) {
    uint64_t phys = gstats(w, d, g).physical_bytes;
    if (phys < g->phys || (phys - g->phys) % g->ps) {
        mt_fail(w, "graph-pages", "d%d g%d physical %llu -> %llu (page %llu)",
                d->name, g->name, (unsigned long long)g->phys,
                (unsigned long long)phys, (unsigned long long)g->ps);
    }
    uint64_t n = (phys - g->phys) / g->ps;
    if (r == DV_ERROR_OUT_OF_DEVICE_MEMORY) {
        uint64_t made = 0;
        while (charge_page(d, g->ps)) {
            made++;
        }
        d->graph_bytes -= made * g->ps; /* the failed call gave them back */
        if (n) {
            mt_fail(w, "graph-pages", "d%d g%d kept %llu pages of a failed "
                    "allocation", d->name, g->name, (unsigned long long)n);
        }
        return;
    }
    for (uint64_t k = 0; k < n; k++) {
        if (!charge_page(d, g->ps)) {
            mt_fail(w, "graph-budget",
                    "d%d g%d made %llu pages; the model's budget holds only "
                    "%llu of them",
                    d->name, g->name, (unsigned long long)n,
                    (unsigned long long)k);
        }
    }
    g->phys = phys;
}

/* ---- scopes ---- */

/* Frames [from, depth) close: their live allocations become rogues. */
static void close_frames(mt_graph_t *g, int from) {
    for (int f = g->depth - 1; f >= from; f--) {
        for (int j = 0; j < g->nlive; j++) {
            mt_galloc_t *a = &g->live[j];
            if (a->owner && a->owner == g->serial[f]) {
                a->owner = 0;
                g->rogues++;
                g->rogue_bytes += a->size;
            }
        }
    }
    g->depth = from;
}

static void open_frame(mt_graph_t *g, int name) {
    if (g->depth == 0) {
        g->tops_seen |= (uint8_t)(1u << name);
    }
    g->names[g->depth] = name;
    g->serial[g->depth] = ++g->next_serial;
    g->depth++;
}

static void op_scope(mt_world_t *w) {
    mt_dev_t *d = mt_any_dev(w);
    mt_graph_t *g = d ? any_graph(w, d) : NULL;
    if (!g) {
        return;
    }
    uint64_t c = mt_pick(&w->src, 10);
    dv_result_t r;
    if (c < 4 && g->depth < MT_GDEPTH) {
        int name = (int)mt_pick(&w->src, 3);
        mt_call(w, "dv_graph_push(d%d, g%d, %s)", d->name, g->name,
                names[name] ? names[name] : "NULL");
        r = dv_graph_push(d->h, g->h, names[name]);
        mt_ret(w, r);
        mt_expect(w, MT_FN_GRAPH_SCOPE, r, DV_OK);
        open_frame(g, name);
    } else if (c < 8) {
        int ch = -1;
        mt_call(w, "dv_graph_pop(d%d, g%d)", d->name, g->name);
        r = dv_graph_pop(d->h, g->h, &ch);
        mt_ret(w, r);
        mt_expect(w, MT_FN_GRAPH_POP, r,
                  g->depth ? DV_OK : DV_ERROR_INVALID_ARGUMENT);
        if (g->depth) {
            if (ch != 0 && ch != 1) {
                mt_fail(w, "graph-pop", "changed is %d", ch);
            }
            g->judged++;
            close_frames(g, g->depth - 1);
        }
    } else if (c < 9) {
        int name = (int)mt_pick(&w->src, 3);
        int k = g->depth - 1;
        if (name) { /* the innermost open scope of that name */
            while (k >= 0 && g->names[k] != name) {
                k--;
            }
        }
        mt_call(w, "dv_graph_iterate(d%d, g%d, %s)", d->name, g->name,
                names[name] ? names[name] : "NULL");
        r = dv_graph_iterate(d->h, g->h, names[name], NULL);
        mt_ret(w, r);
        mt_expect(w, MT_FN_GRAPH_POP, r,
                  k >= 0 ? DV_OK : DV_ERROR_INVALID_ARGUMENT);
        if (k >= 0) {
            int nm = g->names[k];
            g->judged += (uint64_t)(g->depth - k);
            close_frames(g, k);
            open_frame(g, nm);
        }
    } else {
        mt_call(w, "dv_graph_abort(d%d, g%d)", d->name, g->name);
        r = dv_graph_abort(d->h, g->h);
        mt_ret(w, r);
        mt_expect(w, MT_FN_GRAPH_SCOPE, r, DV_OK);
        close_frames(g, 0);
    }
    mt_check_all(w);
}

/* ---- allocations ---- */

static void op_alloc(mt_world_t *w) {
    mt_dev_t *d = mt_any_dev(w);
    mt_graph_t *g = d ? any_graph(w, d) : NULL;
    if (!g || g->nlive == MT_GLIVE) {
        return;
    }
    static const uint64_t small[] = {8, 512, 600, 4000};
    uint64_t size = mt_chance(&w->src, 40)
                        ? small[mt_pick(&w->src, 4)]
                        : 8 * (1 + mt_pick(&w->src, 3 * g->ps / 8));
    void *stream = g->stream;
    if (mt_chance(&w->src, 10)) {
        uint32_t sid;
        stream = mt_pick_stream(w, d, &sid);
    }
    int taken = g->depth && !g->paused && stream == g->stream;
    uint64_t p = 1;
    mt_call(w, "dv_graph_alloc(d%d, g%d, %llu, %p)", d->name, g->name,
            (unsigned long long)size, stream);
    dv_result_t r = dv_graph_alloc(d->h, g->h, size, stream, &p);
    mt_ret(w, r);
    mt_check_result(w, MT_FN_GRAPH_ALLOC, r);
    if (!taken) {
        mt_expect(w, MT_FN_GRAPH_ALLOC, r, DV_OFFLOADED);
        g->bypassed++;
    } else if (r != DV_OK && r != DV_ERROR_OUT_OF_DEVICE_MEMORY) {
        mt_fail(w, "graph-alloc", "%s (%s)", dv_result_name(r),
                dv_last_error());
    }
    adopt_pages(w, d, g, r);
    if ((r == DV_OK) != (p != 0) || (r == DV_OK && p % DV_GRAPH_ALIGNMENT)) {
        mt_fail(w, "graph-alloc", "%s with address 0x%llx", dv_result_name(r),
                (unsigned long long)p);
    }
    if (r == DV_OK) {
        for (int j = 0; j < g->nlive; j++) {
            uint64_t q = g->live[j].ptr, n = g->live[j].size;
            if (p < q + n && q < p + size) {
                mt_fail(w, "graph-alloc", "0x%llx overlaps live 0x%llx",
                        (unsigned long long)p, (unsigned long long)q);
            }
        }
        mt_galloc_t *a = &g->live[g->nlive++];
        a->ptr = p;
        a->size = size;
        a->owner = g->serial[g->depth - 1];
        a->token = mt_pattern_word(w->seed, ++w->token_seq);
        fill(a);
        for (int j = 0; j < 4; j++) {
            if (g->dead[j] == p) {
                g->dead[j] = 0;
            }
        }
        g->allocs++;
        g->used += size;
        g->peak = g->used > g->peak ? g->used : g->peak;
    }
    mt_check_all(w);
}

static void op_free(mt_world_t *w) {
    mt_dev_t *d = mt_any_dev(w);
    mt_graph_t *g = d ? any_graph(w, d) : NULL;
    if (!g) {
        return;
    }
    uint64_t c = mt_pick(&w->src, 10), p = 0x1000;
    dv_result_t want = DV_OFFLOADED;
    int j = -1;
    if (c < 7 && g->nlive) {
        j = (int)mt_pick(&w->src, (uint64_t)g->nlive);
        p = g->live[j].ptr;
        want = DV_OK;
    } else if (c < 8 && g->nlive && g->live[0].size > DV_GRAPH_ALIGNMENT) {
        p = g->live[0].ptr + DV_GRAPH_ALIGNMENT; /* not its first byte */
        want = DV_ERROR_INVALID_ARGUMENT;
    } else if (c < 9 && g->dead[c % 4]) {
        p = g->dead[c % 4]; /* freed twice */
        want = DV_ERROR_INVALID_ARGUMENT;
    }
    mt_call(w, "dv_graph_free(d%d, g%d, 0x%llx)", d->name, g->name,
            (unsigned long long)p);
    if (j >= 0) {
        verify(w, d, g, &g->live[j]);
    }
    dv_result_t r = dv_graph_free(d->h, g->h, p, NULL);
    mt_ret(w, r);
    mt_expect(w, MT_FN_GRAPH_FREE, r, want);
    if (want == DV_OFFLOADED) {
        g->unknown++;
    } else if (want == DV_OK) {
        mt_galloc_t a = g->live[j];
        g->live[j] = g->live[--g->nlive];
        g->frees++;
        g->used -= a.size;
        g->rogue_bytes -= a.owner ? 0 : a.size;
        g->dead[g->frees % 4] = a.ptr;
    }
    mt_check_all(w);
}

/* ---- lifetime, pause, streams ---- */

static void destroy(mt_world_t *w, mt_dev_t *d, mt_graph_t *g) {
    dv_result_t want = g->depth || g->nlive ? DV_ERROR_BUSY : DV_OK;
    if (want == DV_OK && mt_stream_busy(w, d, g->sid)) {
        w->fence_slack = 1; /* destroy waits for the graph's stream */
    }
    mt_call(w, "dv_graph_destroy(d%d, g%d)", d->name, g->name);
    dv_result_t r = dv_graph_destroy(d->h, g->h);
    mt_ret(w, r);
    mt_expect(w, MT_FN_GRAPH_DESTROY, r, want);
    if (r == DV_OK) {
        d->graph_bytes -= g->phys;
        memset(g, 0, sizeof(*g));
    }
}

static void op_lifetime(mt_world_t *w) {
    mt_dev_t *d = mt_any_dev(w);
    if (!d) {
        return;
    }
    mt_graph_t *g = &d->g[mt_pick(&w->src, MT_GRAPHS)];
    if (g->h) {
        destroy(w, d, g);
        mt_check_all(w);
        return;
    }
    dv_graph_options_t o;
    dv_graph_options_init(&o);
    o.page_size = 4096ull << mt_pick(&w->src, 2);
    o.max_variants = (uint32_t)mt_pick(&w->src, 4);
    o.arena_size = mt_chance(&w->src, 50) ? 64 * o.page_size : 0;
    o.stream = mt_pick_stream(w, d, &g->sid);
    dv_graph_t *h = NULL;
    mt_call(w, "dv_graph_create(d%d, page %llu, variants %u, stream %p)",
            d->name, (unsigned long long)o.page_size, o.max_variants,
            o.stream);
    dv_result_t r = dv_graph_create(d->h, &o, &h);
    mt_ret(w, r);
    mt_expect(w, MT_FN_GRAPH_CREATE, r, DV_OK);
    g->h = h;
    g->name = w->next_name++;
    g->stream = o.stream;
    g->ps = o.page_size;
    mt_check_all(w);
}

static void op_pause(mt_world_t *w) {
    mt_dev_t *d = mt_any_dev(w);
    mt_graph_t *g = d ? any_graph(w, d) : NULL;
    if (!g) {
        return;
    }
    int resume = g->paused && mt_chance(&w->src, 60);
    int sync = mt_chance(&w->src, 30);
    if (mt_chance(&w->src, 10)) {
        resume = 1; /* sometimes without a pause: refused */
    }
    mt_call(w, "dv_graph_%s(d%d, g%d, %d)", resume ? "resume" : "pause",
            d->name, g->name, sync);
    dv_result_t r = resume ? dv_graph_resume(d->h, g->h, sync)
                           : dv_graph_pause(d->h, g->h, sync);
    mt_ret(w, r);
    dv_result_t want = resume && !g->paused ? DV_ERROR_INVALID_ARGUMENT : DV_OK;
    mt_expect(w, MT_FN_GRAPH_PAUSE, r, want);
    if (want == DV_OK) {
        g->paused = resume ? g->paused - 1 : g->paused + 1;
    }
    mt_check_all(w);
}

static void op_retarget(mt_world_t *w) {
    mt_dev_t *d = mt_any_dev(w);
    mt_graph_t *g = d ? any_graph(w, d) : NULL;
    if (!g) {
        return;
    }
    uint32_t sid;
    void *s = mt_pick_stream(w, d, &sid);
    mt_call(w, "dv_graph_set_stream(d%d, g%d, s%u)", d->name, g->name, sid);
    dv_result_t r = dv_graph_set_stream(d->h, g->h, s);
    mt_ret(w, r);
    mt_expect(w, MT_FN_GRAPH_STREAM, r, DV_OK);
    g->stream = s;
    g->sid = sid;
    mt_check_all(w);
}

/* Dead and foreign graph handles, and a graph where a VBAR is expected:
 * refused, nothing changes. */
static void op_bad(mt_world_t *w) {
    mt_dev_t *d = mt_any_dev(w);
    if (!d || !w->dead_handles) {
        return;
    }
    mt_graph_t *g = any_graph(w, d);
    dv_graph_t *junk = (dv_graph_t *)(uintptr_t)(0xd800000000000000ull |
                                                 mt_pick(&w->src, 1u << 20));
    uint64_t p = 0;
    mt_call(w, "dv_graph_alloc(d%d, junk graph)", d->name);
    dv_result_t r = dv_graph_alloc(d->h, junk, 64, NULL, &p);
    mt_ret(w, r);
    mt_expect(w, MT_FN_GRAPH_ALLOC, r, DV_ERROR_INVALID_ARGUMENT);
    {
        uint32_t n = 0;
        mt_call(w, "dv_graph_trace / get_trace / get_recording / "
                   "note_capture(d%d, junk graph)", d->name);
        r = dv_graph_trace(d->h, junk, 4);
        mt_expect(w, MT_FN_GRAPH_DEBUG, r, DV_ERROR_INVALID_ARGUMENT);
        r = dv_graph_get_trace(d->h, junk, NULL, 0, &n);
        mt_expect(w, MT_FN_GRAPH_DEBUG, r, DV_ERROR_INVALID_ARGUMENT);
        r = dv_graph_get_recording(d->h, junk, NULL, NULL, 0, &n);
        mt_expect(w, MT_FN_GRAPH_DEBUG, r, DV_ERROR_INVALID_ARGUMENT);
        r = dv_graph_note_capture(d->h, junk);
        mt_expect(w, MT_FN_GRAPH_DEBUG, r, DV_ERROR_INVALID_ARGUMENT);
    }
    if (g) {
        mt_call(w, "dv_vbar_get_info(d%d, g%d as a VBAR)", d->name, g->name);
        dv_vbar_info_t in;
        r = dv_vbar_get_info(d->h, (dv_vbar_t *)g->h, &in);
        mt_ret(w, r);
        mt_expect(w, MT_FN_VBAR_INFO, r, DV_ERROR_INVALID_ARGUMENT);
        mt_call(w, "dv_graph_alloc(d%d, g%d, 0 bytes)", d->name, g->name);
        r = dv_graph_alloc(d->h, g->h, 0, g->stream, &p);
        mt_ret(w, r);
        mt_expect(w, MT_FN_GRAPH_ALLOC, r, DV_ERROR_INVALID_ARGUMENT);
        for (int k = 0; k < MT_DEVS; k++) {
            mt_dev_t *o = &w->d[k];
            if (o->h && o != d) {
                mt_call(w, "dv_graph_push(d%d, g%d of d%d)", o->name, g->name,
                        d->name);
                r = dv_graph_push(o->h, g->h, "x");
                mt_ret(w, r);
                mt_expect(w, MT_FN_GRAPH_SCOPE, r, DV_ERROR_WRONG_DEVICE);
                uint32_t n = 0;
                r = dv_graph_get_trace(o->h, g->h, NULL, 0, &n);
                mt_expect(w, MT_FN_GRAPH_DEBUG, r, DV_ERROR_WRONG_DEVICE);
                r = dv_graph_note_capture(o->h, g->h);
                mt_expect(w, MT_FN_GRAPH_DEBUG, r, DV_ERROR_WRONG_DEVICE);
                break;
            }
        }
    }
    mt_check_all(w);
}

/* ---- debugging: trace, recording, note_capture ---- */

/* The trace is exact for a pass this op runs itself: enabled (cleared),
 * then one push and one pop, it holds exactly those two events (the newest
 * min(capacity, 2) of them), numbered from 0, with the scope's name and
 * depth; a pop at depth 0 leaves a recording of that name ending with its
 * POP. Tracing is turned off again before the op ends (its stream query
 * per allocation would otherwise be a backend call the model does not
 * count). note_capture is called only with no scope open, where it must
 * change nothing (with scopes open it changes what later allocations do:
 * tests/graph/test_graph_capture.c covers that). */
static void op_debug(mt_world_t *w) {
    mt_dev_t *d = mt_any_dev(w);
    mt_graph_t *g = d ? any_graph(w, d) : NULL;
    if (!g) {
        return;
    }
    dv_result_t r;
    uint32_t cap = 1 + (uint32_t)mt_pick(&w->src, 4);
    if (mt_chance(&w->src, 15)) {
        mt_call(w, "dv_graph_trace(d%d, g%d, 1<<20 + 1)", d->name, g->name);
        r = dv_graph_trace(d->h, g->h, (1u << 20) + 1);
        mt_ret(w, r);
        mt_expect(w, MT_FN_GRAPH_DEBUG, r, DV_ERROR_INVALID_ARGUMENT);
    }
    mt_call(w, "dv_graph_trace(d%d, g%d, %u)", d->name, g->name, cap);
    r = dv_graph_trace(d->h, g->h, cap);
    mt_ret(w, r);
    mt_expect(w, MT_FN_GRAPH_DEBUG, r, DV_OK);
    dv_graph_event_t ev[8];
    uint32_t n = 99;
    mt_call(w, "dv_graph_get_trace(d%d, g%d, count only)", d->name, g->name);
    r = dv_graph_get_trace(d->h, g->h, NULL, 0, &n);
    mt_ret(w, r);
    mt_expect(w, MT_FN_GRAPH_DEBUG, r, DV_OK);
    if (n != 0) {
        mt_fail(w, "graph-trace", "a trace just enabled holds %u events", n);
    }
    int top = g->depth == 0;
    if (g->depth < MT_GDEPTH) {
        int name = (int)mt_pick(&w->src, 3);
        int fresh = top && !(g->tops_seen & (1u << name));
        mt_call(w, "dv_graph_push(d%d, g%d, %s)", d->name, g->name,
                names[name] ? names[name] : "NULL");
        r = dv_graph_push(d->h, g->h, names[name]);
        mt_ret(w, r);
        mt_expect(w, MT_FN_GRAPH_SCOPE, r, DV_OK);
        open_frame(g, name);
        uint32_t depth = (uint32_t)g->depth;
        int ch = -1;
        mt_call(w, "dv_graph_pop(d%d, g%d)", d->name, g->name);
        r = dv_graph_pop(d->h, g->h, &ch);
        mt_ret(w, r);
        mt_expect(w, MT_FN_GRAPH_POP, r, DV_OK);
        g->judged++;
        close_frames(g, g->depth - 1);
        memset(ev, 0xa5, sizeof(ev));
        n = 99;
        mt_call(w, "dv_graph_get_trace(d%d, g%d, 8)", d->name, g->name);
        r = dv_graph_get_trace(d->h, g->h, ev, 8, &n);
        mt_ret(w, r);
        mt_expect(w, MT_FN_GRAPH_DEBUG, r, DV_OK);
        uint32_t want = cap < 2 ? cap : 2;
        if (n != want) {
            mt_fail(w, "graph-trace", "%u events after a push and a pop with "
                    "capacity %u (want %u)", n, cap, want);
        }
        const char *nm = names[name] ? names[name] : "";
        for (uint32_t i = 0; i < n && i < 2; i++) {
            uint32_t kind = n - i == 1 ? DV_GRAPH_EV_POP : DV_GRAPH_EV_PUSH;
            uint64_t seq = 2 - (n - i);
            if (ev[i].kind != kind || ev[i].seq != seq ||
                ev[i].depth != depth || strcmp(ev[i].scope, nm) != 0 ||
                ev[i].outcome < DV_GRAPH_OUT_REPLAYED ||
                ev[i].outcome > DV_GRAPH_OUT_FAILED) {
                mt_fail(w, "graph-trace",
                        "event %u: kind %u seq %llu depth %u scope '%.64s' "
                        "outcome %u (want kind %u seq %llu depth %u scope "
                        "'%s')",
                        i, ev[i].kind, (unsigned long long)ev[i].seq,
                        ev[i].depth, ev[i].scope, ev[i].outcome, kind,
                        (unsigned long long)seq, depth, nm);
            }
        }
        if (top) {
            uint32_t total = 0;
            mt_call(w, "dv_graph_get_recording(d%d, g%d, %s, count only)",
                    d->name, g->name, names[name] ? names[name] : "NULL");
            r = dv_graph_get_recording(d->h, g->h, names[name], NULL, 0,
                                       &total);
            mt_ret(w, r);
            mt_expect(w, MT_FN_GRAPH_DEBUG, r, DV_OK);
            n = 99;
            memset(ev, 0xa5, sizeof(ev));
            uint32_t max = (uint32_t)mt_pick(&w->src, 9);
            mt_call(w, "dv_graph_get_recording(d%d, g%d, %s, %u)", d->name,
                    g->name, names[name] ? names[name] : "NULL", max);
            r = dv_graph_get_recording(d->h, g->h, names[name],
                                       max ? ev : NULL, max, &n);
            mt_ret(w, r);
            mt_expect(w, MT_FN_GRAPH_DEBUG, r, DV_OK);
            if (total == 0 || n != total) {
                mt_fail(w, "graph-recording", "a scope just closed has %u "
                        "recorded events (count only: %u)", n, total);
            }
            /* It ends with the scope's POP; a scope's first pass, empty,
             * is that POP alone, where the pass ended. (After earlier
             * passes the most recent path may go on past where an empty
             * pass ended: only the POP at its end is certain.) */
            if (max >= total && total &&
                ev[total - 1].kind != DV_GRAPH_EV_POP) {
                mt_fail(w, "graph-recording", "the recording of a scope just "
                        "closed ends with kind %u, not its POP",
                        ev[total - 1].kind);
            }
            if (fresh && (total != 1 || (max && !(ev[0].flags &
                                                  DV_GRAPH_EVF_ENDS)))) {
                mt_fail(w, "graph-recording", "a new scope's empty pass is "
                        "recorded as %u events (first flags 0x%x), not one "
                        "POP where a pass ended", total, ev[0].flags);
            }
            for (uint32_t i = 0; i < max && i < total; i++) {
                if (ev[i].kind < DV_GRAPH_EV_ALLOC ||
                    ev[i].kind > DV_GRAPH_EV_POP) {
                    mt_fail(w, "graph-recording", "event %u has kind %u", i,
                            ev[i].kind);
                }
            }
        }
    }
    mt_call(w, "dv_graph_get_trace(d%d, g%d, count NULL)", d->name, g->name);
    r = dv_graph_get_trace(d->h, g->h, ev, 8, NULL);
    mt_ret(w, r);
    mt_expect(w, MT_FN_GRAPH_DEBUG, r, DV_ERROR_INVALID_ARGUMENT);
    mt_call(w, "dv_graph_get_trace(d%d, g%d, out NULL, 4)", d->name, g->name);
    r = dv_graph_get_trace(d->h, g->h, NULL, 4, &n);
    mt_ret(w, r);
    mt_expect(w, MT_FN_GRAPH_DEBUG, r, DV_ERROR_INVALID_ARGUMENT);
    mt_call(w, "dv_graph_trace(d%d, g%d, 0)", d->name, g->name);
    r = dv_graph_trace(d->h, g->h, 0);
    mt_ret(w, r);
    mt_expect(w, MT_FN_GRAPH_DEBUG, r, DV_OK);
    n = 99;
    r = dv_graph_get_trace(d->h, g->h, ev, 8, &n);
    mt_expect(w, MT_FN_GRAPH_DEBUG, r, DV_OK);
    if (n != 0) {
        mt_fail(w, "graph-trace", "a trace turned off still gives %u events",
                n);
    }
    /* Never pushed (the model's scopes are NULL, "a" and "b"), too long,
     * and out NULL with room asked for. */
    char longname[300];
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = 0;
    const char *bad[2] = {"never-pushed", longname};
    for (int k = 0; k < 2; k++) {
        mt_call(w, "dv_graph_get_recording(d%d, g%d, %s)", d->name, g->name,
                k ? "<299 bytes>" : bad[k]);
        r = dv_graph_get_recording(d->h, g->h, bad[k], ev, 8, &n);
        mt_ret(w, r);
        mt_expect(w, MT_FN_GRAPH_DEBUG, r, DV_ERROR_INVALID_ARGUMENT);
    }
    mt_call(w, "dv_graph_get_recording(d%d, g%d, NULL, out NULL, 4)", d->name,
            g->name);
    r = dv_graph_get_recording(d->h, g->h, NULL, NULL, 4, &n);
    mt_ret(w, r);
    mt_expect(w, MT_FN_GRAPH_DEBUG, r, DV_ERROR_INVALID_ARGUMENT);
    if (g->depth == 0) {
        mt_call(w, "dv_graph_note_capture(d%d, g%d) (no scope open)", d->name,
                g->name);
        r = dv_graph_note_capture(d->h, g->h);
        mt_ret(w, r);
        mt_expect(w, MT_FN_GRAPH_DEBUG, r, DV_OK);
    }
    mt_check_all(w);
}

void mt_graphs_teardown(mt_world_t *w, mt_dev_t *d) {
    for (int k = 0; k < MT_GRAPHS; k++) {
        mt_graph_t *g = &d->g[k];
        if (!g->h) {
            continue;
        }
        mt_pre_call(w);
        mt_call(w, "dv_graph_abort(d%d, g%d)", d->name, g->name);
        dv_result_t r = dv_graph_abort(d->h, g->h);
        mt_ret(w, r);
        mt_expect(w, MT_FN_GRAPH_SCOPE, r, DV_OK);
        close_frames(g, 0);
        while (g->nlive) {
            mt_galloc_t *a = &g->live[g->nlive - 1];
            verify(w, d, g, a);
            mt_call(w, "dv_graph_free(d%d, g%d, 0x%llx)", d->name, g->name,
                    (unsigned long long)a->ptr);
            r = dv_graph_free(d->h, g->h, a->ptr, NULL);
            mt_ret(w, r);
            mt_expect(w, MT_FN_GRAPH_FREE, r, DV_OK);
            g->frees++;
            g->used -= a->size;
            g->rogue_bytes -= a->owner ? 0 : a->size;
            g->nlive--;
        }
        mt_pre_call(w);
        destroy(w, d, g);
        mt_check_all(w);
    }
}

const mt_op_t mt_graph_ops[] = {
    {"graph_lifetime", op_lifetime, 2}, {"graph_scope", op_scope, 8},
    {"graph_alloc", op_alloc, 10},      {"graph_free", op_free, 7},
    {"graph_pause", op_pause, 2},       {"graph_retarget", op_retarget, 1},
    {"graph_bad", op_bad, 1},           {"graph_debug", op_debug, 1},
};
const int mt_graph_op_count = sizeof(mt_graph_ops) / sizeof(mt_graph_ops[0]);
