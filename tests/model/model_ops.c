/*
 * model_ops.c - the tester's valid calls on VBARs: fault, unpin, priorities,
 * watermarks, eviction, introspection, copies.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Each op picks its arguments from the choice source, predicts the result
 * and the state after it in the model, makes the call, checks the result,
 * and leaves the comparison of everything observable to mt_check_all (run
 * by the sequence after every op). Device-level calls (framework, pool,
 * streams, devices) are in model_devops.c; bad input in model_bad.c.
 */
#include <stdio.h>
#include <string.h>

#include "model.h"

/* ---- fault and unpin ---- */

static void pin_range(mt_dev_t *d, mt_vbar_t *v, uint64_t first, uint64_t last,
                      uint64_t *gen) {
    *gen = 0;
    for (uint64_t i = first; i <= last; i++) {
        v->pg[i].pins++;
        if (v->pg[i].gen > *gen) {
            *gen = v->pg[i].gen;
        }
    }
}

/* Fault [off, off + size) of v, checked against the model. */
dv_result_t mt_fault_range(mt_world_t *w, mt_dev_t *d, mt_vbar_t *v,
                           uint64_t off, uint64_t size) {
    int s = mt_vslot(d, v);
    uint64_t first, last;
    mt_page_span(d, off, size, &first, &last);
    mt_rec_note_fault(d, v, first); /* every fault with a valid range */
    mt_note_reap_busy(w, d);
    mt_dev_t before = *d;
    int exact = 1, at_wm = last >= v->wm;
    dv_result_t want;
    int all = 1;
    for (uint64_t i = first; i <= last; i++) {
        all &= v->pg[i].resident;
    }
    if (at_wm) {
        /* Offloaded at once, unless recovery raises the watermark. */
        want = mt_rec_predict(w, d, s, first, last, &exact);
        w->n_at_wm += exact && want == DV_OFFLOADED;
        w->n_rises += exact && want == DV_OK;
    } else if (all) {
        want = DV_OK;
        d->st.faults_hit++;
    } else {
        want = mt_predict_fault_slow(w, d, s, first, last, 1, &exact);
        w->n_slow_ok += exact && want == DV_OK;
        w->n_slow_off += exact && want == DV_OFFLOADED;
        w->n_slow_evicting += exact && d->st.evictions != before.st.evictions;
    }
    uint64_t gen = 0xdeadull;
    mt_call(w, "dv_fault(d%d, v%d, %llu, %llu) [pages %llu-%llu, wm %llu]",
            d->name, v->name, (unsigned long long)off, (unsigned long long)size,
            (unsigned long long)first, (unsigned long long)last,
            (unsigned long long)before.vb[s].wm);
    dv_result_t r = dv_fault(d->h, v->h, off, size, &gen);
    mt_ret(w, r);
    if (exact) {
        mt_expect(w, MT_FN_FAULT, r, want);
    } else {
        mt_check_result(w, MT_FN_FAULT, r);
        if (r != DV_OK && r != DV_OFFLOADED) {
            mt_fail(w, "result-model", "a populating fault returned %s",
                    dv_result_name(r));
        }
        if (at_wm) {
            int was_unsure = before.vb[s].unsure;
            /* Not unsure: the rise was tried, its reap made it inexact. */
            mt_rec_loose(w, d, &before, s, first, last, r, !was_unsure);
            if (was_unsure && r == DV_OK) {
                mt_rec_unsure(v); /* a rise in an unsure state */
            }
        } else {
            mt_loose_fault(w, d, &before, s, first, last, r, 1, 1);
        }
    }
    if (r == DV_OK) {
        uint64_t want_gen;
        pin_range(d, v, first, last, &want_gen);
        if (gen != want_gen) {
            mt_fail(w, "generation",
                    "dv_fault returned generation %llu, the "
                    "largest stamp under the range is %llu",
                    (unsigned long long)gen, (unsigned long long)want_gen);
        }
    }
    mt_check_all(w);
    if (r != DV_OK) {
        return r;
    }
    /* A caller's reuse rule: same generation, same bytes; else copy. */
    for (uint64_t i = first; i <= last; i++) {
        if (v->pg[i].token && v->pg[i].gen == before.vb[s].pg[i].gen) {
            mt_verify_page(w, d, v, i, 1);
        } else {
            mt_write_page(w, d, v, i);
        }
    }
    return r;
}

static void op_fault(mt_world_t *w) {
    mt_dev_t *d = mt_any_dev(w);
    mt_vbar_t *v = d ? mt_any_vbar(w, d) : NULL;
    if (v) {
        uint64_t off, size;
        mt_pick_range(w, d, v, &off, &size);
        mt_fault_range(w, d, v, off, size);
    }
}


static void op_unpin(mt_world_t *w) {
    mt_dev_t *d = mt_any_dev(w);
    mt_vbar_t *v = d ? mt_any_vbar(w, d) : NULL;
    if (!v) {
        return;
    }
    uint64_t off, size, first, last;
    mt_pick_range(w, d, v, &off, &size);
    mt_page_span(d, off, size, &first, &last);
    if (mt_chance(&w->src, 85)) {
        /* Mostly a run of pages the tester holds pinned. */
        uint64_t k = mt_pick(&w->src, v->pages), n = 0;
        while (n < v->pages && !v->pg[(k + n) % v->pages].pins) {
            n++;
        }
        if (n < v->pages) {
            first = last = (k + n) % v->pages;
            while (last + 1 < v->pages && v->pg[last + 1].pins &&
                   mt_chance(&w->src, 50)) {
                last++;
            }
            off = first * d->ps;
            size = (last - first + 1) * d->ps;
            if (mt_chance(&w->src, 30)) { /* ragged ends, same pages */
                uint64_t cut = mt_pick(&w->src, d->ps);
                off += cut;
                size -= cut;
                size -= mt_pick(&w->src, size < d->ps ? size : d->ps);
                size = size ? size : 1;
            }
            mt_page_span(d, off, size, &first, &last);
        }
    }
    uint32_t sid;
    void *stream = mt_pick_stream(w, d, &sid);
    mt_unpin_range(w, d, v, off, size, stream, sid);
}

/* Unpin [off, off + size) of v on `stream` (id sid), checked. */
void mt_unpin_range(mt_world_t *w, mt_dev_t *d, mt_vbar_t *v, uint64_t off,
                    uint64_t size, void *stream, uint32_t sid) {
    uint64_t first, last;
    mt_page_span(d, off, size, &first, &last);
    dv_result_t want = DV_OK;
    for (uint64_t i = first; i <= last; i++) {
        if (!v->pg[i].pins) {
            want = DV_ERROR_NOT_PINNED; /* nothing changes */
        }
    }
    int s = mt_vslot(d, v);
    if (want == DV_OK) {
        int busy = mt_stream_busy(w, d, sid);
        for (uint64_t i = first; i <= last; i++) {
            mt_page_t *pg = &v->pg[i];
            pg->stream = sid;
            if (--pg->pins || i < v->wm || i < v->limit) {
                continue;
            }
            /* Left pinned when the watermark dropped: freed once idle, but
             * never below the watermark limit. */
            if (!busy) {
                mt_evict_page(d, s, i, 1, 0);
                mt_pool_trim(d, UINT64_MAX, d->pool_limit);
            } else {
                d->reap = MT_REAP_POSITIVE;
            }
        }
        w->fence_slack = last - first + 1; /* cross-stream page waits */
    }
    mt_call(w, "dv_unpin(d%d, v%d, %llu, %llu, s%u)", d->name, v->name,
            (unsigned long long)off, (unsigned long long)size, sid);
    dv_result_t r = dv_unpin(d->h, v->h, off, size, stream);
    mt_ret(w, r);
    mt_expect(w, MT_FN_UNPIN, r, want);
    mt_check_all(w);
}

/* ---- priorities and watermarks ---- */

void mt_prioritize(mt_world_t *w, mt_dev_t *d, mt_vbar_t *v, int top) {
    int s = mt_vslot(d, v);
    mt_list_remove(d, s);
    mt_list_push(d, s, top);
    if (top) {
        v->wm = v->pages; /* prioritize resets the watermark */
        mt_rec_reset(v, 0);
    }
    mt_call(w, "dv_vbar_%s(d%d, v%d)", top ? "prioritize" : "deprioritize",
            d->name, v->name);
    dv_result_t r =
        top ? dv_vbar_prioritize(d->h, v->h) : dv_vbar_deprioritize(d->h, v->h);
    mt_ret(w, r);
    mt_expect(w, MT_FN_VBAR_PRIO, r, DV_OK);
    mt_check_all(w);
}

static void op_prioritize(mt_world_t *w) {
    mt_dev_t *d = mt_any_dev(w);
    mt_vbar_t *v = d ? mt_any_vbar(w, d) : NULL;
    if (v) {
        mt_prioritize(w, d, v, mt_chance(&w->src, 60));
    }
}

static uint64_t pick_bytes(mt_world_t *w, const mt_dev_t *d,
                           const mt_vbar_t *v) {
    switch (mt_pick(&w->src, 6)) {
    case 0:
        return 0;
    case 1:
        return UINT64_MAX;
    case 2:
        return mt_pick(&w->src, v->size + 2 * d->ps);
    default:
        return mt_pick(&w->src, v->pages + 2) * d->ps;
    }
}

static uint64_t pages_for(const mt_dev_t *d, const mt_vbar_t *v, uint64_t b) {
    uint64_t p = b / d->ps + (b % d->ps != 0);
    return p < v->pages ? p : v->pages;
}

static void op_watermark(mt_world_t *w) {
    mt_dev_t *d = mt_any_dev(w);
    mt_vbar_t *v = d ? mt_any_vbar(w, d) : NULL;
    if (!v) {
        return;
    }
    uint64_t bytes = pick_bytes(w, d, v);
    int limit = mt_chance(&w->src, 40);
    if (limit) {
        v->limit = pages_for(d, v, bytes);
    } else {
        v->wm = pages_for(d, v, bytes);
        mt_rec_reset(v, 1); /* the caller's: recovery keeps it */
    }
    mt_call(w, "dv_vbar_set_watermark%s(d%d, v%d, %llu)", limit ? "_limit" : "",
            d->name, v->name, (unsigned long long)bytes);
    dv_result_t r = limit ? dv_vbar_set_watermark_limit(d->h, v->h, bytes)
                          : dv_vbar_set_watermark(d->h, v->h, bytes);
    mt_ret(w, r);
    mt_expect(w, MT_FN_VBAR_WM, r, DV_OK);
    mt_check_all(w);
}

static void op_reset_limits(mt_world_t *w) {
    mt_dev_t *d = mt_any_dev(w);
    if (!d) {
        return;
    }
    for (int k = 0; k < d->nvb; k++) {
        d->vb[d->order[k]].limit = 0;
    }
    mt_call(w, "dv_device_reset_watermark_limits(d%d)", d->name);
    dv_result_t r = dv_device_reset_watermark_limits(d->h);
    mt_ret(w, r);
    mt_expect(w, MT_FN_DEV_SIMPLE, r, DV_OK);
    mt_check_all(w);
}

void mt_evict_bytes(mt_world_t *w, mt_dev_t *d, mt_vbar_t *v, uint64_t bytes) {
    int s = mt_vslot(d, v);
    uint64_t done = 0;
    for (uint64_t i = v->pages; i-- > 0 && done < bytes;) {
        mt_page_t *pg = &v->pg[i];
        if (pg->resident && !pg->pins && i >= v->limit) {
            mt_evict_page(d, s, i, 1, 1);
            done += d->ps;
        }
    }
    mt_pool_trim(d, UINT64_MAX, d->pool_limit);
    uint64_t freed = 0xdead;
    mt_call(w, "dv_vbar_evict(d%d, v%d, %llu)", d->name, v->name,
            (unsigned long long)bytes);
    dv_result_t r = dv_vbar_evict(d->h, v->h, bytes, &freed);
    mt_ret(w, r);
    mt_expect(w, MT_FN_VBAR_EVICT, r, DV_OK);
    if (freed != done) {
        mt_fail(w, "evict", "dv_vbar_evict freed %llu bytes, the model %llu",
                (unsigned long long)freed, (unsigned long long)done);
    }
    mt_check_all(w);
}

static void op_evict(mt_world_t *w) {
    mt_dev_t *d = mt_any_dev(w);
    mt_vbar_t *v = d ? mt_any_vbar(w, d) : NULL;
    if (v) {
        mt_evict_bytes(w, d, v, pick_bytes(w, d, v));
    }
}

/* ---- introspection with ranges of its own ---- */

static void op_introspect(mt_world_t *w) {
    mt_dev_t *d = mt_any_dev(w);
    mt_vbar_t *v = d ? mt_any_vbar(w, d) : NULL;
    if (!v) {
        return;
    }
    uint8_t flags[MT_PAGES + 1];
    uint64_t gens[MT_PAGES + 1];
    uint64_t first = mt_pick(&w->src, v->pages);
    uint64_t count = mt_pick(&w->src, v->pages - first + 1);
    memset(flags, 0xee, sizeof(flags));
    mt_call(w, "dv_vbar_residency(d%d, v%d, %llu, %llu)", d->name, v->name,
            (unsigned long long)first, (unsigned long long)count);
    dv_result_t r = dv_vbar_residency(d->h, v->h, first, count, flags);
    mt_ret(w, r);
    mt_expect(w, MT_FN_VBAR_RESIDENCY, r, DV_OK);
    for (uint64_t k = 0; k < count; k++) {
        const mt_page_t *pg = &v->pg[first + k];
        uint8_t want = (uint8_t)((pg->resident ? DV_PAGE_RESIDENT : 0) |
                                 (pg->pins ? DV_PAGE_PINNED : 0));
        if (flags[k] != want) {
            mt_fail(w, "residency", "page %llu flags 0x%x, expected 0x%x",
                    (unsigned long long)(first + k), flags[k], want);
        }
    }
    if (flags[count] != 0xee) {
        mt_fail(w, "residency", "dv_vbar_residency wrote past count");
    }
    uint64_t off, size, f, l;
    mt_pick_range(w, d, v, &off, &size);
    mt_page_span(d, off, size, &f, &l);
    gens[l - f + 1] = 0xfeed;
    mt_call(w, "dv_vbar_generations(d%d, v%d, %llu, %llu)", d->name, v->name,
            (unsigned long long)off, (unsigned long long)size);
    r = dv_vbar_generations(d->h, v->h, off, size, gens, l - f + 1);
    mt_ret(w, r);
    mt_expect(w, MT_FN_VBAR_GENS, r, DV_OK);
    for (uint64_t i = f; i <= l; i++) {
        if (gens[i - f] != v->pg[i].gen) {
            mt_fail(w, "generation",
                    "page %llu generation %llu, expected "
                    "%llu",
                    (unsigned long long)i, (unsigned long long)gens[i - f],
                    (unsigned long long)v->pg[i].gen);
        }
    }
    if (gens[l - f + 1] != 0xfeed) {
        mt_fail(w, "generation", "dv_vbar_generations wrote past count");
    }
    mt_check_all(w);
}

/* ---- copies to and from pinned pages ---- */

static void op_copy(mt_world_t *w) {
    mt_dev_t *d = mt_any_dev(w);
    mt_vbar_t *v = d ? mt_any_vbar(w, d) : NULL;
    if (!v) {
        return;
    }
    uint64_t i = mt_pick(&w->src, v->pages);
    mt_page_t *pg = &v->pg[i];
    uint32_t sid;
    void *stream = mt_pick_stream(w, d, &sid);
    uint64_t addr = v->base + i * d->ps;
    if (!pg->resident) {
        /* Not mapped: the copy fails and writes nothing. */
        int h2d = mt_chance(&w->src, 50);
        mt_call(w, "dv_copy_%s(d%d, v%d absent page %llu, s%u)",
                h2d ? "h2d" : "d2h", d->name, v->name, (unsigned long long)i,
                sid);
        dv_result_t r = h2d ? dv_copy_h2d(d->h, addr, w->buf, d->ps, stream)
                            : dv_copy_d2h(d->h, w->buf, addr, d->ps, stream);
        mt_ret(w, r);
        mt_check_result(w, MT_FN_COPY, r);
        if (r == DV_OK) {
            mt_fail(w, "copy", "a copy to or from an absent page succeeded");
        }
        mt_check_all(w);
        return;
    }
    if (!pg->pins || !pg->token) {
        return; /* copies belong inside fault..unpin */
    }
    /* A sub-range: same pattern back (h2d) or compared (d2h). */
    uint64_t words = d->ps / 8;
    uint64_t w0 = mt_pick(&w->src, words);
    uint64_t n = 1 + mt_pick(&w->src, words - w0);
    int h2d = mt_chance(&w->src, 50);
    for (uint64_t k = 0; k < n; k++) {
        w->buf[k] = h2d ? mt_pattern_word(pg->token, w0 + k) : 0;
    }
    mt_call(w, "dv_copy_%s(d%d, v%d page %llu words %llu+%llu, s%u)",
            h2d ? "h2d" : "d2h", d->name, v->name, (unsigned long long)i,
            (unsigned long long)w0, (unsigned long long)n, sid);
    dv_result_t r =
        h2d ? dv_copy_h2d(d->h, addr + w0 * 8, w->buf, n * 8, stream)
            : dv_copy_d2h(d->h, w->buf, addr + w0 * 8, n * 8, stream);
    mt_ret(w, r);
    mt_expect(w, MT_FN_COPY, r, DV_OK);
    for (uint64_t k = 0; !h2d && k < n; k++) {
        if (w->buf[k] != mt_pattern_word(pg->token, w0 + k)) {
            mt_fail(w, "content",
                    "dv_copy_d2h of pinned v%d page %llu word "
                    "%llu differs from what was written",
                    v->name, (unsigned long long)i,
                    (unsigned long long)(w0 + k));
        }
    }
    mt_check_all(w);
}

/* ---- VBAR lifetime ---- */

void mt_create_vbar(mt_world_t *w, mt_dev_t *d) {
    int s = -1;
    for (int k = 0; k < MT_VBARS && s < 0; k++) {
        if (!d->vb[k].h) {
            s = k;
        }
    }
    if (s < 0) {
        return;
    }
    uint64_t size = 1 + mt_pick(&w->src, MT_PAGES * d->ps);
    if (mt_chance(&w->src, 50)) {
        size = (1 + mt_pick(&w->src, MT_PAGES)) * d->ps;
    }
    dv_vbar_t *h = (dv_vbar_t *)(uintptr_t)1;
    mt_vbar_t *v = &d->vb[s];
    memset(v, 0, sizeof(*v));
    v->name = w->next_name++;
    mt_call(w, "dv_vbar_create(d%d, %llu) = v%d", d->name,
            (unsigned long long)size, v->name);
    dv_result_t r = dv_vbar_create(d->h, size, &h);
    mt_ret(w, r);
    mt_expect(w, MT_FN_VBAR_CREATE, r, DV_OK);
    dv_vbar_info_t in;
    if (dv_vbar_get_info(d->h, h, &in) != DV_OK) {
        mt_fail(w, "probe", "dv_vbar_get_info: %s", dv_last_error());
    }
    v->h = h;
    v->base = in.base;
    v->pages = size / d->ps + (size % d->ps != 0);
    v->size = v->pages * d->ps;
    v->wm = v->pages;
    mt_rec_init(v);
    if (!in.base || in.base % 4096) {
        mt_fail(w, "vbar-info", "v%d base 0x%llx is not aligned", v->name,
                (unsigned long long)in.base);
    }
    mt_list_push(d, s, 1); /* a new VBAR is on top */
    mt_check_all(w);
}

static void op_vbar_create(mt_world_t *w) {
    mt_dev_t *d = mt_any_dev(w);
    if (d) {
        mt_create_vbar(w, d);
    }
}

static void op_vbar_destroy(mt_world_t *w) {
    mt_dev_t *d = mt_any_dev(w);
    mt_vbar_t *v = d ? mt_any_vbar(w, d) : NULL;
    if (!v) {
        return;
    }
    if (mt_chance(&w->src, 50)) {
        mt_unpin_all(w, d);
    }
    mt_destroy_vbar(w, d, v);
}

const mt_op_t mt_vbar_ops[] = {
    {"fault", op_fault, 24},
    {"unpin", op_unpin, 24},
    {"prioritize", op_prioritize, 8},
    {"watermark", op_watermark, 3},
    {"reset_limits", op_reset_limits, 1},
    {"evict", op_evict, 4},
    {"introspect", op_introspect, 2},
    {"copy", op_copy, 4},
    {"vbar_create", op_vbar_create, 3},
    {"vbar_destroy", op_vbar_destroy, 2},
};
const int mt_vbar_op_count = sizeof(mt_vbar_ops) / sizeof(mt_vbar_ops[0]);
