/*
 * model_threads.c - the tester's multi-threaded mode: several threads drive
 * their own VBARs on shared devices at once.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Two host devices (one with 12 KiB pages, one with 4 KiB) with a capacity
 * of a few pages per thread are shared by T threads. Each thread owns two
 * VBARs (on either device), a stream per device and its own framework
 * bytes, and draws calls from its own seed. Other threads' faults evict
 * its unpinned pages and move the priority list at any time, so only the
 * checks that stay true under concurrency are made, after every call:
 *  - the result is documented for the call and, where this thread alone
 *    decides it, the exact one (DV_ERROR_NOT_PINNED, DV_ERROR_BUSY,
 *    DV_ERROR_WRONG_DEVICE, DV_ERROR_INVALID_ARGUMENT for bad input and
 *    dead handles, DV_OFFLOADED for a fault at or above a watermark only
 *    this thread can raise);
 *  - dv_device_check() is DV_OK;
 *  - every page this thread holds pinned is resident, pinned and keeps its
 *    generation; a fault's generation is the largest under its range; a
 *    page whose generation equals the one saved when the thread last filled
 *    it still holds those bytes (read only while pinned: an unpinned page
 *    may be unmapped by another thread at any moment);
 *  - counters never go down; pinned and framework bytes are at least this
 *    thread's own; used = resident + pool + framework.
 * At the end every thread unpins, releases and destroys what it owns; the
 * devices must then hold nothing pinned, no framework bytes and no VBAR.
 * Interleavings are not reproducible; a failure still names the seed and
 * the thread's last calls.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

#define TH_DEVS 2
#define TH_VBARS 2

typedef struct th_vbar {
    dv_vbar_t *h;
    int dev;
    uint64_t base, size, pages;
    int explicit_wm; /* this thread chose the watermark: it never rises */
    uint32_t pins[MT_PAGES];
    uint64_t gen[MT_PAGES];   /* saved after filling */
    uint64_t token[MT_PAGES]; /* what was written then */
} th_vbar_t;

typedef struct th_shared {
    dv_device_t *dev[TH_DEVS];
    uint64_t ps[TH_DEVS];
    int recovery[TH_DEVS];
} th_shared_t;

typedef struct th_ctx {
    mt_world_t w; /* source, trace and failure report */
    const th_shared_t *sh;
    pthread_t tid;
    th_vbar_t vb[TH_VBARS];
    void *stream[TH_DEVS];
    uint64_t fw[TH_DEVS];
    dv_device_stats_t last[TH_DEVS];
    int log_calls;
} th_ctx_t;

/* Trace a call, make it, check its result is documented for `fn`. */
#define CALL(c, fn, expr, ...)                                                 \
    do {                                                                       \
        mt_call(&(c)->w, __VA_ARGS__);                                         \
        r = (expr);                                                            \
        mt_ret(&(c)->w, r);                                                    \
        mt_check_result(&(c)->w, fn, r);                                       \
    } while (0)

static void expect(th_ctx_t *c, dv_result_t r, dv_result_t want) {
    if (r != want) {
        mt_fail(&c->w, "result-model", "returned %s, expected %s",
                dv_result_name(r), dv_result_name(want));
    }
}

static void create_vbar(th_ctx_t *c, int k) {
    th_vbar_t *v = &c->vb[k];
    memset(v, 0, sizeof(*v));
    v->dev = (int)mt_pick(&c->w.src, TH_DEVS);
    uint64_t ps = c->sh->ps[v->dev];
    v->pages = 1 + mt_pick(&c->w.src, 6);
    v->size = v->pages * ps;
    dv_result_t r;
    CALL(c, MT_FN_VBAR_CREATE,
         dv_vbar_create(c->sh->dev[v->dev], v->size - mt_pick(&c->w.src, ps),
                        &v->h),
         "dv_vbar_create(d%d, %llu pages)", v->dev,
         (unsigned long long)v->pages);
    expect(c, r, DV_OK);
    dv_vbar_info_t in;
    CALL(c, MT_FN_VBAR_INFO, dv_vbar_get_info(c->sh->dev[v->dev], v->h, &in),
         "dv_vbar_get_info(d%d)", v->dev);
    expect(c, r, DV_OK);
    v->base = in.base;
    v->explicit_wm = 0;
    if (in.size != v->size) {
        mt_fail(&c->w, "vbar-info", "size %llu, expected %llu",
                (unsigned long long)in.size, (unsigned long long)v->size);
    }
}

/* Pinned pages of this thread: resident, pinned, generation kept. */
static void check_own(th_ctx_t *c) {
    for (int k = 0; k < TH_VBARS; k++) {
        th_vbar_t *v = &c->vb[k];
        if (!v->h) {
            continue;
        }
        dv_device_t *dev = c->sh->dev[v->dev];
        uint8_t flags[MT_PAGES];
        uint64_t gens[MT_PAGES];
        if (dv_vbar_residency(dev, v->h, 0, v->pages, flags) != DV_OK ||
            dv_vbar_generations(dev, v->h, 0, v->size, gens, v->pages) !=
                DV_OK) {
            mt_fail(&c->w, "probe", "residency / generations: %s",
                    dv_last_error());
        }
        for (uint64_t i = 0; i < v->pages; i++) {
            if (!v->pins[i]) {
                continue;
            }
            if (flags[i] != (DV_PAGE_RESIDENT | DV_PAGE_PINNED) ||
                gens[i] != v->gen[i]) {
                mt_fail(&c->w, "pinned-evicted",
                        "page %llu pinned %u times: "
                        "flags 0x%x, generation %llu (was %llu)",
                        (unsigned long long)i, v->pins[i], flags[i],
                        (unsigned long long)gens[i],
                        (unsigned long long)v->gen[i]);
            }
        }
    }
    for (int d = 0; d < TH_DEVS; d++) {
        if (dv_device_check(c->sh->dev[d]) != DV_OK) {
            mt_fail(&c->w, "dv_device_check", "d%d: %s", d, dv_last_error());
        }
    }
}

static void fill_or_verify(th_ctx_t *c, th_vbar_t *v, uint64_t i) {
    uint64_t ps = c->sh->ps[v->dev];
    uint64_t *p = (uint64_t *)(uintptr_t)(v->base + i * ps);
    uint64_t words = ps / 8;
    if (v->token[i]) {
        for (uint64_t k = 0; k < words; k++) {
            if (p[k] != mt_pattern_word(v->token[i], k)) {
                mt_fail(&c->w, "content",
                        "page %llu generation %llu "
                        "unchanged but word %llu differs from what this "
                        "thread wrote",
                        (unsigned long long)i, (unsigned long long)v->gen[i],
                        (unsigned long long)k);
            }
        }
        return;
    }
    uint64_t token = mt_pattern_word(c->w.seed, ++c->w.token_seq) | 1;
    for (uint64_t k = 0; k < words; k++) {
        p[k] = mt_pattern_word(token, k);
    }
    v->token[i] = token;
}

static void th_fault(th_ctx_t *c, th_vbar_t *v) {
    dv_device_t *dev = c->sh->dev[v->dev];
    uint64_t ps = c->sh->ps[v->dev];
    uint64_t first = mt_pick(&c->w.src, v->pages);
    uint64_t last = first + mt_pick(&c->w.src, v->pages - first < 2 ? 1 : 2);
    dv_vbar_info_t in;
    if (dv_vbar_get_info(dev, v->h, &in) != DV_OK) {
        mt_fail(&c->w, "probe", "get_info: %s", dv_last_error());
    }
    uint64_t gen = 0;
    dv_result_t r;
    CALL(c, MT_FN_FAULT,
         dv_fault(dev, v->h, first * ps, (last - first + 1) * ps, &gen),
         "dv_fault(d%d, pages %llu-%llu) [wm %llu]", v->dev,
         (unsigned long long)first, (unsigned long long)last,
         (unsigned long long)in.watermark);
    if (last >= in.watermark && (!c->sh->recovery[v->dev] || v->explicit_wm)) {
        /* Only this thread raises its watermark (recovery never raises one
         * the caller chose): still at or below. */
        expect(c, r, DV_OFFLOADED);
    } else if (r != DV_OK && r != DV_OFFLOADED) {
        mt_fail(&c->w, "result-model", "dv_fault returned %s",
                dv_result_name(r));
    }
    if (r != DV_OK) {
        return;
    }
    uint64_t gens[MT_PAGES], max = 0;
    if (dv_vbar_generations(dev, v->h, first * ps, (last - first + 1) * ps,
                            gens, last - first + 1) != DV_OK) {
        mt_fail(&c->w, "probe", "generations: %s", dv_last_error());
    }
    for (uint64_t i = first; i <= last; i++) {
        uint64_t g = gens[i - first];
        max = g > max ? g : max;
        if (v->pins[i] && g != v->gen[i]) {
            mt_fail(&c->w, "pinned-evicted",
                    "page %llu pinned before the "
                    "fault got generation %llu -> %llu",
                    (unsigned long long)i, (unsigned long long)v->gen[i],
                    (unsigned long long)g);
        }
        if (g != v->gen[i]) {
            v->token[i] = 0; /* fresh memory: copy again */
            v->gen[i] = g;
        }
        v->pins[i]++;
        fill_or_verify(c, v, i);
    }
    if (gen != max) {
        mt_fail(&c->w, "generation",
                "dv_fault returned %llu, largest under "
                "the range %llu",
                (unsigned long long)gen, (unsigned long long)max);
    }
}

static void th_unpin(th_ctx_t *c, th_vbar_t *v) {
    dv_device_t *dev = c->sh->dev[v->dev];
    uint64_t ps = c->sh->ps[v->dev];
    uint64_t first = mt_pick(&c->w.src, v->pages), last = first;
    for (uint64_t n = 0; n < v->pages && !v->pins[first]; n++) {
        first = (first + 1) % v->pages;
    }
    last = first;
    while (last + 1 < v->pages && v->pins[last + 1] &&
           mt_chance(&c->w.src, 40)) {
        last++;
    }
    if (mt_chance(&c->w.src, 10)) {
        last = v->pages - 1;
    }
    dv_result_t want = DV_OK;
    for (uint64_t i = first; i <= last; i++) {
        want = v->pins[i] ? want : DV_ERROR_NOT_PINNED;
    }
    void *s = mt_chance(&c->w.src, 50) ? c->stream[v->dev] : NULL;
    dv_result_t r;
    CALL(c, MT_FN_UNPIN,
         dv_unpin(dev, v->h, first * ps, (last - first + 1) * ps, s),
         "dv_unpin(d%d, pages %llu-%llu, %s)", v->dev,
         (unsigned long long)first, (unsigned long long)last,
         s ? "own stream" : "NULL");
    expect(c, r, want);
    for (uint64_t i = first; r == DV_OK && i <= last; i++) {
        v->pins[i]--;
    }
}

static void th_stats(th_ctx_t *c, int d) {
    dv_device_stats_t st;
    dv_result_t r;
    CALL(c, MT_FN_DEV_STATS, dv_device_get_stats(c->sh->dev[d], &st),
         "dv_device_get_stats(d%d)", d);
    expect(c, r, DV_OK);
    const dv_device_stats_t *p = &c->last[d];
    if (st.faults_hit < p->faults_hit ||
        st.faults_populated < p->faults_populated ||
        st.faults_offloaded < p->faults_offloaded ||
        st.pages_populated < p->pages_populated ||
        st.evictions < p->evictions || st.evicted_bytes < p->evicted_bytes ||
        st.pool_reuses < p->pool_reuses || st.fence_waits < p->fence_waits ||
        st.oom_retries < p->oom_retries) {
        mt_fail(&c->w, "stats", "d%d: a counter went down", d);
    }
    uint64_t pinned = 0;
    for (int k = 0; k < TH_VBARS; k++) {
        for (uint64_t i = 0;
             c->vb[k].h && c->vb[k].dev == d && i < c->vb[k].pages; i++) {
            pinned += c->vb[k].pins[i] ? c->sh->ps[d] : 0;
        }
    }
    if (st.pinned_bytes < pinned || st.framework_bytes < c->fw[d] ||
        st.used != st.resident_bytes + st.pool_bytes + st.framework_bytes ||
        st.pinned_bytes > st.resident_bytes) {
        mt_fail(&c->w, "accounting",
                "d%d: pinned %llu (own %llu), framework "
                "%llu (own %llu), used %llu, resident %llu, pool %llu",
                d, (unsigned long long)st.pinned_bytes,
                (unsigned long long)pinned,
                (unsigned long long)st.framework_bytes,
                (unsigned long long)c->fw[d], (unsigned long long)st.used,
                (unsigned long long)st.resident_bytes,
                (unsigned long long)st.pool_bytes);
    }
    c->last[d] = st;
}

static void th_step(th_ctx_t *c) {
    th_vbar_t *v = &c->vb[mt_pick(&c->w.src, TH_VBARS)];
    int d = v->dev;
    dv_device_t *dev = c->sh->dev[d];
    uint64_t ps = c->sh->ps[d], f = 0;
    dv_result_t r;
    unsigned op = (unsigned)mt_pick(&c->w.src, 40);
    if (op < 14) {
        th_fault(c, v);
    } else if (op < 24) {
        th_unpin(c, v);
    } else if (op == 24) {
        CALL(c, MT_FN_VBAR_PRIO, dv_vbar_prioritize(dev, v->h),
             "dv_vbar_prioritize(d%d)", d);
        expect(c, r, DV_OK);
        v->explicit_wm = 0;
    } else if (op == 25) {
        CALL(c, MT_FN_VBAR_PRIO, dv_vbar_deprioritize(dev, v->h),
             "dv_vbar_deprioritize(d%d)", d);
        expect(c, r, DV_OK);
    } else if (op == 26) {
        uint64_t wm = mt_pick(&c->w.src, v->pages + 1);
        CALL(c, MT_FN_VBAR_WM, dv_vbar_set_watermark(dev, v->h, wm * ps),
             "dv_vbar_set_watermark(d%d, %llu pages)", d,
             (unsigned long long)wm);
        expect(c, r, DV_OK);
        v->explicit_wm = 1;
    } else if (op == 27) {
        CALL(c, MT_FN_VBAR_WM,
             dv_vbar_set_watermark_limit(dev, v->h, mt_pick(&c->w.src, 2) * ps),
             "dv_vbar_set_watermark_limit(d%d)", d);
        expect(c, r, DV_OK);
    } else if (op == 28) {
        CALL(c, MT_FN_VBAR_EVICT, dv_vbar_evict(dev, v->h, ps, &f),
             "dv_vbar_evict(d%d, 1 page)", d);
        expect(c, r, DV_OK);
    } else if (op == 29 || op == 30) {
        uint64_t size = (1 + mt_pick(&c->w.src, 2)) * ps;
        CALL(c, MT_FN_FW_RESERVE, dv_framework_reserve(dev, size),
             "dv_framework_reserve(d%d, %llu)", d, (unsigned long long)size);
        if (r == DV_OK) {
            c->fw[d] += size;
        } else {
            expect(c, r, DV_ERROR_OUT_OF_DEVICE_MEMORY);
        }
    } else if (op == 31) {
        CALL(c, MT_FN_FW_RELEASE, dv_framework_release(dev, c->fw[d]),
             "dv_framework_release(d%d, %llu)", d,
             (unsigned long long)c->fw[d]);
        expect(c, r, DV_OK);
        c->fw[d] = 0;
    } else if (op == 32) {
        CALL(c, MT_FN_FW_EVICT, dv_framework_evict(dev, ps, &f),
             "dv_framework_evict(d%d)", d);
    } else if (op == 33) {
        CALL(c, MT_FN_DEV_SIMPLE,
             mt_chance(&c->w.src, 50) ? dv_device_trim_pool(dev)
                                      : dv_device_reset_watermark_limits(dev),
             "dv_device_trim_pool / reset_watermark_limits(d%d)", d);
        expect(c, r, DV_OK);
    } else if (op == 34) {
        CALL(c, MT_FN_HOST_HOOK,
             mt_chance(&c->w.src, 50) ? dv_host_stream_submit(c->stream[d])
                                      : dv_host_stream_complete(c->stream[d]),
             "dv_host_stream_submit / complete(own stream of d%d)", d);
        expect(c, r, DV_OK);
    } else if (op == 35) {
        th_stats(c, d);
    } else if (op == 36) {
        int busy = 0;
        for (uint64_t i = 0; i < v->pages; i++) {
            busy |= v->pins[i] != 0;
        }
        CALL(c, MT_FN_VBAR_DESTROY, dv_vbar_destroy(dev, v->h),
             "dv_vbar_destroy(d%d)", d);
        expect(c, r, busy ? DV_ERROR_BUSY : DV_OK);
        if (r == DV_OK) {
            mt_grave_vbar(&c->w, v->h);
            create_vbar(c, (int)(v - c->vb));
        }
    } else if (op == 37) {
        /* Another device's VBAR: refused, nothing changes. */
        CALL(c, MT_FN_FAULT, dv_fault(c->sh->dev[1 - d], v->h, 0, ps, &f),
             "dv_fault(d%d, VBAR of d%d)", 1 - d, d);
        expect(c, r, DV_ERROR_WRONG_DEVICE);
    } else if (op == 38 && c->log_calls && mt_chance(&c->w.src, 50)) {
        /* Logging is global and may be set from any thread. */
        dv_log_level_t lv = dv_log_get_level();
        CALL(c, MT_FN_PROBE, dv_log_set_level(lv), "dv_log_set_level(%d)",
             (int)lv);
        expect(c, r, DV_OK);
    } else if (op == 38) {
        CALL(c, MT_FN_FAULT, dv_fault(dev, v->h, v->size, ps, &f),
             "dv_fault(d%d, past the end)", d);
        expect(c, r, DV_ERROR_OUT_OF_RANGE);
    } else if (c->w.dead_handles && c->w.n_dead_vbar) {
        dv_vbar_t *dead = c->w.dead_vbar[mt_pick(
            &c->w.src,
            c->w.n_dead_vbar < MT_GRAVE ? c->w.n_dead_vbar : MT_GRAVE)];
        CALL(c, MT_FN_FAULT, dv_fault(dev, dead, 0, ps, &f),
             "dv_fault(d%d, destroyed VBAR)", d);
        expect(c, r, DV_ERROR_INVALID_ARGUMENT);
    }
    check_own(c);
}

static void *th_main(void *arg) {
    th_ctx_t *c = arg;
    mt_install_crash_report(&c->w);
    dv_result_t r;
    for (int d = 0; d < TH_DEVS; d++) {
        CALL(c, MT_FN_STREAM, dv_stream_create(c->sh->dev[d], &c->stream[d]),
             "dv_stream_create(d%d)", d);
        expect(c, r, DV_OK);
    }
    for (int k = 0; k < TH_VBARS; k++) {
        create_vbar(c, k);
    }
    while (c->w.calls < c->w.max_calls) {
        th_step(c);
    }
    for (int k = 0; k < TH_VBARS; k++) {
        th_vbar_t *v = &c->vb[k];
        for (uint64_t i = 0; i < v->pages; i++) {
            while (v->pins[i]) {
                uint64_t ps = c->sh->ps[v->dev];
                CALL(c, MT_FN_UNPIN,
                     dv_unpin(c->sh->dev[v->dev], v->h, i * ps, ps, NULL),
                     "dv_unpin(d%d, page %llu)", v->dev, (unsigned long long)i);
                expect(c, r, DV_OK);
                v->pins[i]--;
            }
        }
        CALL(c, MT_FN_VBAR_DESTROY, dv_vbar_destroy(c->sh->dev[v->dev], v->h),
             "dv_vbar_destroy(d%d)", v->dev);
        expect(c, r, DV_OK);
    }
    for (int d = 0; d < TH_DEVS; d++) {
        CALL(c, MT_FN_FW_RELEASE, dv_framework_release(c->sh->dev[d], c->fw[d]),
             "dv_framework_release(d%d)", d);
        expect(c, r, DV_OK);
        CALL(c, MT_FN_STREAM, dv_stream_destroy(c->sh->dev[d], c->stream[d]),
             "dv_stream_destroy(d%d)", d);
        expect(c, r, DV_OK);
    }
    return NULL;
}

uint64_t mt_run_threads(const mt_thread_opts_t *o) {
    static mt_world_t main_w; /* for reports from this thread */
    mt_world_init(&main_w, o->seed);
    mt_install_crash_report(&main_w);
    main_w.trace_lines = o->trace_lines;
    snprintf(main_w.repro, sizeof(main_w.repro),
             "dv_model --seed %llu --sequences 1 --calls %llu --threads %d "
             "(interleavings vary)",
             (unsigned long long)o->seed, (unsigned long long)o->calls,
             o->threads);
    th_shared_t sh;
    static const uint64_t sizes[TH_DEVS] = {3 * 4096, 4096};
    for (int d = 0; d < TH_DEVS; d++) {
        dv_device_options_t opt;
        dv_device_options_init(&opt);
        opt.backend = "host";
        opt.ordinal = d;
        opt.page_size = sizes[d];
        char bopts[48];
        snprintf(bopts, sizeof(bopts), "capacity=%llu",
                 (unsigned long long)(2 + 3 * o->threads) * sizes[d]);
        opt.backend_options = bopts; /* read during the open only */
        opt.vram_limit =
            o->seed % 2 ? (uint64_t)(2 + 2 * o->threads) * sizes[d] : 0;
        opt.fence_interval = (uint32_t)(1 + o->seed % 3);
        /* Watermark recovery on one device, off on the other. */
        opt.watermark_recovery =
            d == (int)(o->seed % 2) ? DV_RECOVERY_ON : DV_RECOVERY_OFF;
        sh.recovery[d] = opt.watermark_recovery == DV_RECOVERY_ON;
        mt_call(&main_w, "dv_device_open(host:%d)", d);
        dv_result_t r = dv_device_open(&opt, &sh.dev[d]);
        mt_ret(&main_w, r);
        mt_expect(&main_w, MT_FN_DEV_OPEN, r, DV_OK);
        sh.ps[d] = sizes[d];
    }
    th_ctx_t *cs = calloc((size_t)o->threads, sizeof(*cs));
    if (!cs) {
        mt_fail(&main_w, "setup", "out of memory");
    }
    for (int k = 0; k < o->threads; k++) {
        th_ctx_t *c = &cs[k];
        mt_world_init(&c->w, o->seed * 1000 + (uint64_t)k);
        c->w.seed = o->seed;
        c->w.thread = k;
        c->w.max_calls = o->calls;
        c->w.dead_handles = o->dead_handles;
        c->w.clear_check = o->clear_check;
        c->w.trace_lines = o->trace_lines;
        snprintf(c->w.repro, sizeof(c->w.repro), "%s", main_w.repro);
        c->sh = &sh;
        c->log_calls = o->log_calls;
        if (pthread_create(&c->tid, NULL, th_main, c) != 0) {
            mt_fail(&main_w, "setup", "pthread_create");
        }
    }
    uint64_t calls = 0;
    for (int k = 0; k < o->threads; k++) {
        pthread_join(cs[k].tid, NULL);
        calls += cs[k].w.calls;
    }
    free(cs);
    for (int d = 0; d < TH_DEVS; d++) {
        dv_device_stats_t st;
        if (dv_device_check(sh.dev[d]) != DV_OK ||
            dv_device_get_stats(sh.dev[d], &st) != DV_OK) {
            mt_fail(&main_w, "dv_device_check", "d%d after the threads: %s", d,
                    dv_last_error());
        }
        if (st.pinned_bytes || st.framework_bytes || st.vbar_count ||
            st.resident_bytes) {
            mt_fail(&main_w, "accounting",
                    "d%d after every thread released "
                    "all: pinned %llu, framework %llu, VBARs %u, resident %llu",
                    d, (unsigned long long)st.pinned_bytes,
                    (unsigned long long)st.framework_bytes, st.vbar_count,
                    (unsigned long long)st.resident_bytes);
        }
        mt_call(&main_w, "dv_device_close(d%d)", d);
        dv_result_t r = dv_device_close(sh.dev[d]);
        mt_ret(&main_w, r);
        mt_expect(&main_w, MT_FN_DEV_CLOSE, r, DV_OK);
    }
    return calls;
}
