/*
 * model_observe.c - reading what the library reports and comparing it with
 * the model after every call; page contents.
 * SPDX-License-Identifier: Apache-2.0
 *
 * What is compared, per open device (mt_check_dev):
 *  - dv_device_get_stats: every counter equals the model's, except
 *    fence_waits, which may grow only while a stream of the device had
 *    pending work, by at most the evictions plus the call's slack; sizes
 *    are derived from the model (resident and pinned pages, pool, framework
 *    bytes) and the budget from README's formula with the backend's free
 *    memory (host: capacity - held), so budget = min(vram_limit,
 *    capacity + framework - headroom);
 *  - dv_vbar_get_info of every live VBAR: base, size, page size and count,
 *    resident bytes, watermark, limit, and priority_rank equal to the
 *    position in the model's list;
 *  - dv_vbar_residency / dv_vbar_generations: resident and pinned flags and
 *    the generation of every page; a page the model holds pinned that is
 *    gone fails as "pinned-evicted";
 *  - contents: a resident page with a token (bytes written after its last
 *    population, generation unchanged since) still holds them: a few words
 *    of every such page after each call, every word when `full`;
 *  - dv_device_check() is DV_OK (last, so the model's own checks name the
 *    first difference).
 * Contents are a 64-bit pattern per word from the page's token, written by
 * direct stores (the host backend maps VBARs at CPU addresses) or through
 * dv_copy_h2d, and read back directly or through dv_copy_d2h.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "model.h"

uint64_t mt_resident_pages(const mt_dev_t *d) {
    uint64_t n = 0;
    for (int k = 0; k < d->nvb; k++) {
        const mt_vbar_t *v = &d->vb[d->order[k]];
        for (uint64_t i = 0; i < v->pages; i++) {
            n += v->pg[i].resident;
        }
    }
    return n;
}

static uint64_t pinned_pages(const mt_dev_t *d) {
    uint64_t n = 0;
    for (int k = 0; k < d->nvb; k++) {
        const mt_vbar_t *v = &d->vb[d->order[k]];
        for (uint64_t i = 0; i < v->pages; i++) {
            n += v->pg[i].pins > 0;
        }
    }
    return n;
}

uint64_t mt_used(const mt_dev_t *d) {
    return (mt_resident_pages(d) + d->pool + d->io.db_pages) * d->ps + d->fw +
           d->graph_bytes;
}

uint64_t mt_budget(const mt_dev_t *d) {
    /* avail = used + backend free = used + capacity - (resident + pool)
     *       = capacity + framework bytes */
    uint64_t b = d->cap + d->fw;
    b = b > d->o.headroom ? b - d->o.headroom : 0;
    if (d->o.vram_limit && d->o.vram_limit < b) {
        b = d->o.vram_limit;
    }
    return b;
}

int mt_stream_busy(mt_world_t *w, mt_dev_t *d, uint32_t id) {
    mt_stream_t *s = mt_find_stream(d, id);
    if (!s) {
        return 0; /* the NULL stream, none, or destroyed (settled) */
    }
    uint64_t sub = 0, done = 0;
    if (dv_host_stream_counts(s->h, &sub, &done) != DV_OK) {
        mt_fail(w, "probe", "dv_host_stream_counts(s%u): %s", id,
                dv_last_error());
    }
    return sub > done;
}

/* Fence waits the devices' counters hold, closed devices included. */
static uint64_t dev_fence_waits(const mt_world_t *w) {
    uint64_t n = w->seen.fence_waits;
    for (int k = 0; k < MT_DEVS; k++) {
        n += w->d[k].h ? w->d[k].st.fence_waits : 0;
    }
    return n;
}

void mt_host_counters_rebase(mt_world_t *w) {
    w->hfw0 = dv_host_fence_waits();
    w->dfw0 = dev_fence_waits(w);
}

void mt_pre_call(mt_world_t *w) {
    w->hpending0 = 0;
    for (int k = 0; k < MT_DEVS; k++) {
        mt_dev_t *d = &w->d[k];
        if (!d->h) {
            continue;
        }
        d->busy = 0;
        for (int j = 0; j < MT_STREAMS; j++) {
            uint64_t sub = 0, done = 0;
            if (d->s[j].h && mt_stream_busy(w, d, d->s[j].id)) {
                d->busy = 1;
                dv_host_stream_counts(d->s[j].h, &sub, &done);
                w->hpending0 += sub - done;
            }
        }
        d->evictions_before = d->st.evictions;
    }
    mt_host_counters_rebase(w);
    w->fence_slack = 0;
}

/* The host backend's process-wide counters (dynvram_host.h):
 *  - dv_host_registrations: the registrations of every host buffer the
 *    model holds plus one per reader staging ring made, with their bytes,
 *    over what the process had when the sequence began;
 *  - dv_host_fence_waits: since the op began it grew by at least the
 *    devices' own fence_waits and by at most the units of work that were
 *    pending on their streams (a wait that finds work pending finishes at
 *    least one unit; the op submits none before it waits), never fell. */
void mt_host_counters_check(mt_world_t *w) {
    uint64_t count = 0, bytes = 0, want_n = w->reg_count0,
             want_b = w->reg_bytes0;
    dv_result_t r = dv_host_registrations(&count, &bytes);
    mt_check_result(w, MT_FN_HOST_HOOK, r);
    for (int k = 0; k < MT_DEVS; k++) {
        const mt_dev_t *d = &w->d[k];
        if (!d->h) {
            continue;
        }
        if (d->io.hb) {
            want_n += d->io.nregs;
            for (uint32_t j = 0; j < d->io.nregs; j++) {
                want_b += d->io.reg_size[j];
            }
        }
        if (d->io.rd && d->io.rd_ring) {
            want_n++;
            want_b += d->io.rd_ring;
        }
    }
    if (count != want_n || bytes != want_b) {
        mt_fail(w, "host-registrations",
                "dv_host_registrations: %llu registrations of %llu bytes, the "
                "model says %llu of %llu",
                (unsigned long long)count, (unsigned long long)bytes,
                (unsigned long long)want_n, (unsigned long long)want_b);
    }
    uint64_t g = dv_host_fence_waits();
    uint64_t dev = dev_fence_waits(w) - w->dfw0;
    if (g < w->hfw0 || g - w->hfw0 < dev || g - w->hfw0 > w->hpending0) {
        mt_fail(w, "host-fence-waits",
                "dv_host_fence_waits went %llu -> %llu during the op; the "
                "devices counted %llu waits, %llu units of work were pending",
                (unsigned long long)w->hfw0, (unsigned long long)g,
                (unsigned long long)dev, (unsigned long long)w->hpending0);
    }
}

/* ---- contents ---- */

uint64_t mt_pattern_word(uint64_t token, uint64_t word) {
    uint64_t z = token ^ (word * 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 31)) * 0xbf58476d1ce4e5b9ull;
    return z ^ (z >> 29);
}

static uint64_t *page_ptr(const mt_dev_t *d, const mt_vbar_t *v, uint64_t i) {
    return (uint64_t *)(uintptr_t)(v->base + i * d->ps);
}

void mt_write_page(mt_world_t *w, mt_dev_t *d, mt_vbar_t *v, uint64_t i) {
    uint64_t token = mt_pattern_word(w->seed, ++w->token_seq) | 1;
    uint64_t words = d->ps / 8;
    if (token & 2) {
        uint64_t *p = page_ptr(d, v, i);
        for (uint64_t k = 0; k < words; k++) {
            p[k] = mt_pattern_word(token, k);
        }
    } else {
        for (uint64_t k = 0; k < words; k++) {
            w->buf[k] = mt_pattern_word(token, k);
        }
        uint64_t dst = v->base + i * d->ps;
        mt_call(w, "dv_copy_h2d(d%d, v%d page %llu, %llu bytes, NULL)", d->name,
                v->name, (unsigned long long)i, (unsigned long long)d->ps);
        dv_result_t r = dv_copy_h2d(d->h, dst, w->buf, d->ps, NULL);
        mt_ret(w, r);
        mt_expect(w, MT_FN_COPY, r, DV_OK);
    }
    v->pg[i].token = token;
}

static void content_fail(mt_world_t *w, const mt_dev_t *d, const mt_vbar_t *v,
                         uint64_t i, uint64_t k, uint64_t got, uint64_t want) {
    mt_fail(w, "content",
            "d%d v%d page %llu (generation %llu, unchanged) "
            "word %llu is %016" PRIx64 ", expected %016" PRIx64
            ": the bytes written after its population are gone",
            d->name, v->name, (unsigned long long)i,
            (unsigned long long)v->pg[i].gen, (unsigned long long)k, got, want);
}

void mt_verify_page(mt_world_t *w, mt_dev_t *d, mt_vbar_t *v, uint64_t i,
                    int full) {
    const mt_page_t *pg = &v->pg[i];
    if (!pg->resident || !pg->token) {
        return;
    }
    uint64_t words = d->ps / 8;
    const uint64_t *p = page_ptr(d, v, i);
    w->n_verified_pages++;
    if (!full) {
        uint64_t probe[4] = {0, words - 1, words / 2, (pg->gen * 7) % words};
        for (int k = 0; k < 4; k++) {
            uint64_t want = mt_pattern_word(pg->token, probe[k]);
            if (p[probe[k]] != want) {
                content_fail(w, d, v, i, probe[k], p[probe[k]], want);
            }
        }
        return;
    }
    if (pg->token & 4) {
        mt_call(w, "dv_copy_d2h(d%d, v%d page %llu, %llu bytes, NULL)", d->name,
                v->name, (unsigned long long)i, (unsigned long long)d->ps);
        dv_result_t r =
            dv_copy_d2h(d->h, w->buf, v->base + i * d->ps, d->ps, NULL);
        mt_ret(w, r);
        mt_expect(w, MT_FN_COPY, r, DV_OK);
        p = w->buf;
    }
    for (uint64_t k = 0; k < words; k++) {
        uint64_t want = mt_pattern_word(pg->token, k);
        if (p[k] != want) {
            content_fail(w, d, v, i, k, p[k], want);
        }
    }
}

/* ---- comparison ---- */

void mt_read_pages(mt_world_t *w, mt_dev_t *d, mt_vbar_t *v, uint8_t *flags,
                   uint64_t *gens) {
    dv_result_t r = dv_vbar_residency(d->h, v->h, 0, v->pages, flags);
    if (r != DV_OK) {
        mt_fail(w, "probe", "dv_vbar_residency(d%d, v%d): %s", d->name, v->name,
                dv_last_error());
    }
    r = dv_vbar_generations(d->h, v->h, 0, v->size, gens, v->pages);
    if (r != DV_OK) {
        mt_fail(w, "probe", "dv_vbar_generations(d%d, v%d): %s", d->name,
                v->name, dv_last_error());
    }
}

#define SAME(what, got, want)                                                  \
    do {                                                                       \
        uint64_t got_ = (got), want_ = (want);                                 \
        if (got_ != want_) {                                                   \
            mt_fail(w, check, "d%d %s is %llu, the model says %llu", d->name,  \
                    what, (unsigned long long)got_,                            \
                    (unsigned long long)want_);                                \
        }                                                                      \
    } while (0)

#define VSAME(what, got, want)                                                 \
    do {                                                                       \
        uint64_t got_ = (got), want_ = (want);                                 \
        if (got_ != want_) {                                                   \
            mt_fail(w, check, "d%d v%d %s is %llu, the model says %llu",       \
                    d->name, v->name, what, (unsigned long long)got_,          \
                    (unsigned long long)want_);                                \
        }                                                                      \
    } while (0)

static void check_stats(mt_world_t *w, mt_dev_t *d) {
    dv_device_stats_t st;
    dv_result_t r = dv_device_get_stats(d->h, &st);
    if (r != DV_OK) {
        mt_fail(w, "probe", "dv_device_get_stats(d%d): %s", d->name,
                dv_last_error());
    }
    const char *check = "stats";
    /* Which counter first: the one a broken policy moves. */
    SAME("evictions", st.evictions, d->st.evictions);
    SAME("evicted_bytes", st.evicted_bytes, d->st.evicted_bytes);
    SAME("pages_populated", st.pages_populated, d->st.pages_populated);
    SAME("faults_hit", st.faults_hit, d->st.faults_hit);
    SAME("faults_populated", st.faults_populated, d->st.faults_populated);
    SAME("faults_offloaded", st.faults_offloaded, d->st.faults_offloaded);
    SAME("pool_reuses", st.pool_reuses, d->st.pool_reuses);
    SAME("oom_retries", st.oom_retries, d->st.oom_retries);
    SAME("watermark_rises", st.watermark_rises, d->st.watermark_rises);
    uint64_t ev = d->st.evictions - d->evictions_before;
    uint64_t fence_max = d->busy ? ev + w->fence_slack : 0;
    if (st.fence_waits < d->st.fence_waits ||
        st.fence_waits - d->st.fence_waits > fence_max) {
        mt_fail(w, "stats",
                "d%d fence_waits %llu -> %llu; at most %llu "
                "more (%s)",
                d->name, (unsigned long long)d->st.fence_waits,
                (unsigned long long)st.fence_waits,
                (unsigned long long)fence_max,
                d->busy ? "evictions + slack" : "no stream had pending work");
    }
    d->st.fence_waits = st.fence_waits;
    check = "accounting";
    SAME("pinned_bytes", st.pinned_bytes, pinned_pages(d) * d->ps);
    SAME("resident_bytes", st.resident_bytes, mt_resident_pages(d) * d->ps);
    SAME("framework_bytes", st.framework_bytes, d->fw);
    SAME("pool_bytes", st.pool_bytes, d->pool * d->ps);
    SAME("used", st.used, mt_used(d));
    SAME("budget", st.budget, mt_budget(d));
    SAME("devbuf_bytes", st.devbuf_bytes, d->io.db_pages * d->ps);
    SAME("vbar_count", st.vbar_count, (uint64_t)d->nvb);
    SAME("graph_bytes", st.graph_bytes, d->graph_bytes);
}

static void check_vbar(mt_world_t *w, mt_dev_t *d, mt_vbar_t *v, int rank,
                       int full) {
    dv_vbar_info_t in;
    memset(&in, 0xa5, sizeof(in));
    dv_result_t r = dv_vbar_get_info(d->h, v->h, &in);
    if (r != DV_OK) {
        mt_fail(w, "probe", "dv_vbar_get_info(d%d, v%d): %s", d->name, v->name,
                dv_last_error());
    }
    uint8_t flags[MT_PAGES];
    uint64_t gens[MT_PAGES];
    mt_read_pages(w, d, v, flags, gens);
    uint64_t resident = 0;
    for (uint64_t i = 0; i < v->pages; i++) {
        const mt_page_t *pg = &v->pg[i];
        int res = (flags[i] & DV_PAGE_RESIDENT) != 0;
        int pin = (flags[i] & DV_PAGE_PINNED) != 0;
        if (pg->pins && !res) {
            mt_fail(w, "pinned-evicted",
                    "d%d v%d page %llu is pinned %u "
                    "time(s) by the tester but no longer resident",
                    d->name, v->name, (unsigned long long)i, pg->pins);
        }
        if (pg->pins && gens[i] != pg->gen) {
            mt_fail(w, "pinned-evicted",
                    "d%d v%d page %llu is pinned but "
                    "was re-populated (generation %llu -> %llu)",
                    d->name, v->name, (unsigned long long)i,
                    (unsigned long long)pg->gen, (unsigned long long)gens[i]);
        }
        if (res != pg->resident || pin != (pg->pins > 0) ||
            (flags[i] & ~(DV_PAGE_RESIDENT | DV_PAGE_PINNED))) {
            mt_fail(w, "residency",
                    "d%d v%d page %llu flags 0x%x, the model "
                    "says %s%s",
                    d->name, v->name, (unsigned long long)i, flags[i],
                    pg->resident ? "resident" : "absent",
                    pg->pins ? " pinned" : "");
        }
        if (gens[i] != pg->gen) {
            mt_fail(w, "generation",
                    "d%d v%d page %llu generation %llu, the "
                    "model says %llu",
                    d->name, v->name, (unsigned long long)i,
                    (unsigned long long)gens[i], (unsigned long long)pg->gen);
        }
        resident += pg->resident;
    }
    const char *check = "vbar-info";
    VSAME("base", in.base, v->base);
    VSAME("size", in.size, v->size);
    VSAME("page_size", in.page_size, d->ps);
    VSAME("page_count", in.page_count, v->pages);
    VSAME("resident_bytes", in.resident_bytes, resident * d->ps);
    check = "watermark";
    VSAME("watermark", in.watermark, v->wm);
    VSAME("watermark_limit", in.watermark_limit, v->limit);
    check = "priority";
    VSAME("priority_rank", in.priority_rank, (uint64_t)rank);
    for (uint64_t i = 0; i < v->pages; i++) {
        mt_verify_page(w, d, v, i, full);
    }
}

void mt_check_dev(mt_world_t *w, mt_dev_t *d, int full) {
    for (int k = 0; k < d->nvb; k++) {
        check_vbar(w, d, &d->vb[d->order[k]], k, full);
    }
    check_stats(w, d);
    mt_io_check(w, d);
    mt_check_graphs(w, d);
    dv_result_t r = dv_device_check(d->h);
    if (r != DV_OK) {
        mt_fail(w, "dv_device_check", "d%d: %s", d->name, dv_last_error());
    }
    w->n_strict++;
}

void mt_check_all(mt_world_t *w) {
    int full = w->calls % 61 == 0;
    for (int k = 0; k < MT_DEVS; k++) {
        if (w->d[k].h) {
            mt_check_dev(w, &w->d[k], full);
        }
    }
    mt_files_check(w);
    mt_host_counters_check(w);
}
