/*
 * model_seq.c - one single-threaded sequence: the op table, the model's
 * helpers (picking devices, VBARs, ranges, streams; the priority list),
 * opening and closing devices, destroying VBARs, and the teardown that
 * checks everything comes back to zero.
 * SPDX-License-Identifier: Apache-2.0
 *
 * A sequence opens 1 to 3 host devices with tiny pages (4 KiB, 8 KiB,
 * 12 KiB = 3 * 4096 which is not a power of two, 5000 bytes rounded up to
 * 8 KiB, 16 KiB), a capacity of 2 to 10 pages, sometimes a vram_limit,
 * a headroom, a pool limit and a fence interval, creates a few VBARs, and
 * then draws weighted ops until the call budget is spent or the fuzzer
 * input ends. Each op checks the model after its calls.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dynvram_hal.h"
#include "model.h"

/* ---- picking ---- */

mt_dev_t *mt_any_dev(mt_world_t *w) {
    int k = (int)mt_pick(&w->src, MT_DEVS);
    for (int n = 0; n < MT_DEVS; n++) {
        mt_dev_t *d = &w->d[(k + n) % MT_DEVS];
        if (d->h) {
            return d;
        }
    }
    return NULL;
}

mt_vbar_t *mt_any_vbar(mt_world_t *w, mt_dev_t *d) {
    if (!d->nvb) {
        return NULL;
    }
    return &d->vb[d->order[mt_pick(&w->src, (uint64_t)d->nvb)]];
}

int mt_vslot(const mt_dev_t *d, const mt_vbar_t *v) { return (int)(v - d->vb); }

int mt_rank(const mt_dev_t *d, int slot) {
    for (int k = 0; k < d->nvb; k++) {
        if (d->order[k] == slot) {
            return k;
        }
    }
    return -1;
}

void mt_list_remove(mt_dev_t *d, int slot) {
    int k = mt_rank(d, slot);
    if (k < 0) {
        return;
    }
    memmove(&d->order[k], &d->order[k + 1],
            (size_t)(d->nvb - k - 1) * sizeof(int));
    d->nvb--;
}

void mt_list_push(mt_dev_t *d, int slot, int top) {
    if (top) {
        memmove(&d->order[1], &d->order[0], (size_t)d->nvb * sizeof(int));
        d->order[0] = slot;
    } else {
        d->order[d->nvb] = slot;
    }
    d->nvb++;
}

void mt_pick_range(mt_world_t *w, const mt_dev_t *d, const mt_vbar_t *v,
                   uint64_t *off, uint64_t *size) {
    uint64_t first = mt_pick(&w->src, v->pages);
    uint64_t left = v->pages - first;
    uint64_t n = 1 + mt_pick(&w->src, left < 3 ? left : 3);
    if (mt_chance(&w->src, 70)) {
        *off = first * d->ps;
        *size = n * d->ps;
        return;
    }
    *off = first * d->ps + mt_pick(&w->src, d->ps);
    uint64_t max = v->size - *off;
    if (max > n * d->ps) {
        max = n * d->ps;
    }
    *size = 1 + mt_pick(&w->src, max);
}

void mt_page_span(const mt_dev_t *d, uint64_t off, uint64_t size,
                  uint64_t *first, uint64_t *last) {
    *first = off / d->ps;
    *last = (off + size - 1) / d->ps;
}

mt_stream_t *mt_find_stream(mt_dev_t *d, uint32_t id) {
    if (id <= MT_NULL_STREAM) {
        return NULL;
    }
    for (int k = 0; k < MT_STREAMS; k++) {
        if (d->s[k].h && d->s[k].id == id) {
            return &d->s[k];
        }
    }
    return NULL;
}

void *mt_pick_stream(mt_world_t *w, mt_dev_t *d, uint32_t *id) {
    mt_stream_t *s = &d->s[mt_pick(&w->src, MT_STREAMS)];
    if (s->h && mt_chance(&w->src, 60)) {
        *id = s->id;
        return s->h;
    }
    *id = MT_NULL_STREAM;
    return NULL;
}

void mt_grave_vbar(mt_world_t *w, dv_vbar_t *h) {
    w->dead_vbar[w->n_dead_vbar++ % MT_GRAVE] = h;
}

void mt_grave_dev(mt_world_t *w, dv_device_t *h) {
    w->dead_dev[w->n_dead_dev++ % MT_GRAVE] = h;
}

void mt_grave_stream(mt_world_t *w, void *h) {
    w->dead_stream[w->n_dead_stream++ % MT_GRAVE] = h;
}

int mt_host_devices(void) {
    const char *e = getenv("DYNVRAM_HOST_DEVICES");
    int n = e && *e ? atoi(e) : 4;
    return n >= 1 && n <= 64 ? n : 4;
}

/* ---- devices and VBARs ---- */

static const uint64_t page_sizes[] = {4096, 8192, 3 * 4096, 5000, 16384, 1};

void mt_open_device(mt_world_t *w, int slot) {
    mt_dev_t *d = &w->d[slot];
    memset(d, 0, sizeof(*d));
    dv_device_options_t *o = &d->o;
    dv_device_options_init(o);
    o->backend = "host";
    o->ordinal = (int)mt_pick(&w->src, (uint64_t)mt_host_devices());
    o->page_size = page_sizes[mt_pick(&w->src, 6)];
    uint64_t ps = (o->page_size + 4095) / 4096 * 4096;
    uint64_t cap = (2 + mt_pick(&w->src, 9)) * ps;
    if (mt_chance(&w->src, 20)) {
        cap += 1 + mt_pick(&w->src, ps - 1);
    }
    if (cap % 1024 == 0 && mt_chance(&w->src, 30)) {
        snprintf(d->bopts, sizeof(d->bopts), "capacity=%lluK",
                 (unsigned long long)(cap / 1024));
    } else {
        snprintf(d->bopts, sizeof(d->bopts), " capacity = %llu ",
                 (unsigned long long)cap);
    }
    o->backend_options = d->bopts;
    if (mt_chance(&w->src, 50)) {
        o->vram_limit = (1 + mt_pick(&w->src, 8)) * ps;
        if (mt_chance(&w->src, 20)) {
            o->vram_limit += 1 + mt_pick(&w->src, ps - 1);
        }
    }
    if (mt_chance(&w->src, 25)) {
        o->headroom = mt_pick(&w->src, 2 * ps);
    }
    static const uint64_t pools[] = {UINT64_MAX, 0, 4096, 2 * 16384 + 1,
                                     3 * 16384};
    o->pool_limit = pools[mt_pick(&w->src, 5)];
    static const uint32_t fences[] = {0, 1, 2, 5};
    o->fence_interval = fences[mt_pick(&w->src, 4)];
    static const uint32_t recov[] = {DV_RECOVERY_DEFAULT, DV_RECOVERY_ON,
                                     DV_RECOVERY_OFF};
    o->watermark_recovery = recov[mt_pick(&w->src, 3)];
    d->recovery =
        o->watermark_recovery == DV_RECOVERY_ON ||
        (o->watermark_recovery == DV_RECOVERY_DEFAULT && mt_recovery_default());
    d->name = w->next_name++;
    d->ps = ps;
    d->cap = cap;
    d->pool_limit = o->pool_limit == UINT64_MAX ? 8 : o->pool_limit / ps;
    d->reap = MT_REAP_ZERO;
    dv_device_t *h = (dv_device_t *)(uintptr_t)1;
    mt_call(w,
            "dv_device_open(host:%d page %llu cap %llu limit %llu "
            "headroom %llu pool %llu fence %u recovery %u) = d%d",
            o->ordinal, (unsigned long long)o->page_size,
            (unsigned long long)cap, (unsigned long long)o->vram_limit,
            (unsigned long long)o->headroom, (unsigned long long)o->pool_limit,
            o->fence_interval, o->watermark_recovery, d->name);
    /* Sometimes through the out-of-tree entry point, on the same HAL. */
    dv_result_t r = mt_chance(&w->src, 25)
                        ? dv_device_open_hal(dv_hal_host(), o, &h)
                        : dv_device_open(o, &h);
    mt_ret(w, r);
    mt_expect(w, MT_FN_DEV_OPEN, r, DV_OK);
    d->h = h;
}

void mt_close_device(mt_world_t *w, mt_dev_t *d, int expect_busy) {
    if (!expect_busy) {
        mt_io_teardown(w, d);
        for (int k = 0; k < MT_STREAMS; k++) {
            if (!d->s[k].h) {
                continue;
            }
            mt_call(w, "dv_stream_destroy(d%d, s%u)", d->name, d->s[k].id);
            dv_result_t r = dv_stream_destroy(d->h, d->s[k].h);
            mt_ret(w, r);
            mt_expect(w, MT_FN_STREAM, r, DV_OK);
            mt_grave_stream(w, d->s[k].h);
            d->s[k].h = NULL;
        }
        mt_check_all(w);
    }
    mt_call(w, "dv_device_close(d%d)", d->name);
    dv_result_t r = dv_device_close(d->h);
    mt_ret(w, r);
    mt_expect(w, MT_FN_DEV_CLOSE, r, expect_busy ? DV_ERROR_BUSY : DV_OK);
    if (!expect_busy) {
        dv_device_stats_t *a = &w->seen;
        a->faults_hit += d->st.faults_hit;
        a->faults_populated += d->st.faults_populated;
        a->faults_offloaded += d->st.faults_offloaded;
        a->pages_populated += d->st.pages_populated;
        a->pool_reuses += d->st.pool_reuses;
        a->evictions += d->st.evictions;
        a->fence_waits += d->st.fence_waits;
        a->oom_retries += d->st.oom_retries;
        mt_grave_dev(w, d->h);
        d->h = NULL;
    }
    mt_check_all(w);
}

void mt_destroy_vbar(mt_world_t *w, mt_dev_t *d, mt_vbar_t *v) {
    int s = mt_vslot(d, v);
    dv_result_t want = DV_OK;
    for (uint64_t i = 0; i < v->pages; i++) {
        if (v->pg[i].pins) {
            want = DV_ERROR_BUSY; /* nothing changes */
        }
    }
    if (want == DV_OK) {
        for (uint64_t i = v->pages; i-- > 0;) {
            if (v->pg[i].resident) {
                mt_evict_page(d, s, i, 1, 0);
            }
        }
        mt_list_remove(d, s);
        mt_pool_trim(d, UINT64_MAX, d->pool_limit);
    }
    mt_call(w, "dv_vbar_destroy(d%d, v%d)", d->name, v->name);
    dv_result_t r = dv_vbar_destroy(d->h, v->h);
    mt_ret(w, r);
    mt_expect(w, MT_FN_VBAR_DESTROY, r, want);
    if (r == DV_OK) {
        mt_grave_vbar(w, v->h);
        v->h = NULL;
    }
    mt_check_all(w);
}

void mt_unpin_all(mt_world_t *w, mt_dev_t *d) {
    for (int k = 0; k < d->nvb; k++) {
        int s = d->order[k];
        mt_vbar_t *v = &d->vb[s];
        for (uint64_t i = 0; i < v->pages; i++) {
            while (v->pg[i].pins) {
                mt_pre_call(w);
                v->pg[i].stream = MT_NULL_STREAM;
                if (--v->pg[i].pins == 0 && i >= v->wm && i >= v->limit) {
                    mt_evict_page(d, s, i, 1, 0);
                    mt_pool_trim(d, UINT64_MAX, d->pool_limit);
                }
                w->fence_slack = 1;
                mt_call(w, "dv_unpin(d%d, v%d, page %llu, NULL)", d->name,
                        v->name, (unsigned long long)i);
                dv_result_t r = dv_unpin(d->h, v->h, i * d->ps, d->ps, NULL);
                mt_ret(w, r);
                mt_expect(w, MT_FN_UNPIN, r, DV_OK);
                mt_check_all(w);
            }
        }
    }
}

/* ---- the sequence ---- */

void mt_world_init(mt_world_t *w, uint64_t seed) {
    memset(w, 0, sizeof(*w));
    mt_src_seed(&w->src, seed);
    w->seed = seed;
    w->thread = -1;
    w->trace_lines = 40;
    w->dead_handles = 1;
    w->next_stream = MT_NULL_STREAM;
    w->max_calls = 1000;
    /* What other sequences (and the process) left: this one adds none. */
    dv_host_registrations(&w->reg_count0, &w->reg_bytes0);
    mt_host_counters_rebase(w);
}

static const mt_op_t *pick_op(mt_world_t *w, int *index) {
    const mt_op_t *tables[7] = {mt_vbar_ops, mt_dev_ops, mt_bad_ops,
                                mt_step_ops, mt_io_ops, mt_graph_ops,
                                mt_sched_ops};
    const int counts[7] = {mt_vbar_op_count, mt_dev_op_count, mt_bad_op_count,
                           mt_step_op_count, mt_io_op_count, mt_graph_op_count,
                           mt_sched_op_count};
    unsigned total = 0;
    for (int t = 0; t < 7; t++) {
        for (int k = 0; k < counts[t]; k++) {
            total += tables[t][k].weight;
        }
    }
    unsigned x = (unsigned)mt_pick(&w->src, total);
    int n = 0;
    for (int t = 0; t < 7; t++) {
        for (int k = 0; k < counts[t]; k++, n++) {
            if (x < tables[t][k].weight) {
                *index = n;
                return &tables[t][k];
            }
            x -= tables[t][k].weight;
        }
    }
    *index = 0;
    return &tables[0][0];
}

const char *mt_op_name(int index) {
    const mt_op_t *tables[7] = {mt_vbar_ops, mt_dev_ops, mt_bad_ops,
                                mt_step_ops, mt_io_ops, mt_graph_ops,
                                mt_sched_ops};
    const int counts[7] = {mt_vbar_op_count, mt_dev_op_count, mt_bad_op_count,
                           mt_step_op_count, mt_io_op_count, mt_graph_op_count,
                           mt_sched_op_count};
    for (int t = 0; t < 7; t++) {
        if (index < counts[t]) {
            return tables[t][index].name;
        }
        index -= counts[t];
    }
    return NULL;
}

static void teardown(mt_world_t *w) {
    mt_sched_teardown(w);
    mt_files_teardown(w);
    for (int k = 0; k < MT_DEVS; k++) {
        mt_dev_t *d = &w->d[k];
        if (!d->h) {
            continue;
        }
        mt_unpin_all(w, d);
        mt_graphs_teardown(w, d);
        while (d->nvb) {
            mt_pre_call(w);
            mt_destroy_vbar(w, d, &d->vb[d->order[0]]);
        }
        mt_pre_call(w);
        mt_io_teardown(w, d);
        mt_call(w, "dv_framework_release(d%d, %llu)", d->name,
                (unsigned long long)d->fw);
        dv_result_t r = dv_framework_release(d->h, d->fw);
        mt_ret(w, r);
        mt_expect(w, MT_FN_FW_RELEASE, r, DV_OK);
        d->fw = 0;
        d->pool = 0;
        mt_call(w, "dv_device_trim_pool(d%d)", d->name);
        r = dv_device_trim_pool(d->h);
        mt_ret(w, r);
        mt_expect(w, MT_FN_DEV_SIMPLE, r, DV_OK);
        /* Everything is back: nothing resident, pinned, pooled, counted. */
        mt_check_dev(w, d, 1);
        mt_close_device(w, d, 0);
    }
}

uint64_t mt_run_sequence(mt_world_t *w) {
    mt_install_crash_report(w);
    int devs = 1 + (int)mt_pick(&w->src, MT_DEVS);
    for (int k = 0; k < devs; k++) {
        mt_open_device(w, k);
        int vbars = 1 + (int)mt_pick(&w->src, 2);
        for (int j = 0; j < vbars; j++) {
            mt_create_vbar(w, &w->d[k]);
        }
    }
    mt_check_all(w);
    while (w->calls < w->max_calls && !w->src.exhausted) {
        int index;
        mt_pre_call(w);
        const mt_op_t *op = pick_op(w, &index);
        if (op->fn) {
            op->fn(w);
        }
        if (index < 64) {
            w->op_count[index]++;
        }
    }
    teardown(w);
    return w->calls;
}
