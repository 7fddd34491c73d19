/*
 * model_policy.c - the tester's reference of the residency policy.
 * SPDX-License-Identifier: Apache-2.0
 *
 * README "The policy, exactly", as the model applies it:
 *  - victims: VBARs from the bottom of the priority list up to the faulting
 *    one (excluded), then its own pages above the range; each VBAR top-down;
 *    never a pinned page, never one below the watermark limit. Evicting page
 *    i lowers its VBAR's watermark to i.
 *  - a populating fault counts the room the budget leaves (plus pooled
 *    pages); when that is short it first checks that enough victims exist,
 *    and returns DV_OFFLOADED without evicting anything if not.
 *  - evicted pages go to the pool; populations take from the pool first;
 *    the pool is trimmed to its limit after a successful populating fault,
 *    an eviction call, a destroy or an unpin that frees a page.
 *  - framework reclaim releases the pool first, then victims of every VBAR.
 * Where the outcome depends on fence timing (a page unpinned above a lowered
 * watermark while its stream was busy may or may not be reaped by the next
 * populating fault), the prediction is declared inexact and mt_loose_fault
 * checks the observation against the rules instead: every eviction is a
 * reap candidate or an allowed victim, victims form a prefix of the order,
 * populated pages are the range's first absent pages with consecutive
 * generations, and pinned pages stay.
 */
#include <string.h>

#include "model.h"

int mt_victims(const mt_dev_t *d, int self, uint64_t floor, mt_pref_t *out,
               int max) {
    int n = 0;
    for (int k = d->nvb - 1; k >= 0 && n < max; k--) {
        int s = d->order[k];
        const mt_vbar_t *v = &d->vb[s];
        uint64_t lo = s == self ? floor : 0;
        if (lo < v->limit) {
            lo = v->limit;
        }
        for (uint64_t i = v->pages; i-- > lo && n < max;) {
            if (v->pg[i].resident && v->pg[i].pins == 0) {
                out[n].v = s;
                out[n].i = i;
                n++;
            }
        }
        if (s == self) {
            break;
        }
    }
    return n;
}

void mt_evict_page(mt_dev_t *d, int s, uint64_t i, int to_pool,
                   int lower_watermark) {
    mt_vbar_t *v = &d->vb[s];
    mt_page_t *pg = &v->pg[i];
    pg->resident = 0;
    pg->gen = 0;
    pg->token = 0;
    pg->stream = MT_NO_STREAM;
    d->st.evictions++;
    d->st.evicted_bytes += d->ps;
    if (lower_watermark) {
        mt_rec_note_loss(v, i);
        if (i < v->wm) {
            v->wm = i;
        }
    }
    if (to_pool) {
        d->pool++;
    }
}

void mt_pool_trim(mt_dev_t *d, uint64_t budget, uint64_t keep) {
    while (d->pool && (d->pool > keep || mt_used(d) > budget)) {
        d->pool--;
    }
}

int mt_reap_candidate(const mt_dev_t *d, int s, uint64_t i) {
    const mt_vbar_t *v = &d->vb[s];
    return v->h && i < v->pages && i >= v->wm && i >= v->limit &&
           v->pg[i].resident &&
           v->pg[i].pins == 0;
}

static uint64_t host_free_pages(const mt_dev_t *d) {
    uint64_t held = (mt_resident_pages(d) + d->pool + d->io.db_pages) * d->ps;
    return d->cap > held ? (d->cap - held) / d->ps : 0;
}

static void populate(mt_dev_t *d, mt_page_t *pg, int pooled) {
    pg->resident = 1;
    pg->gen = ++d->gen;
    pg->token = 0;
    pg->stream = MT_NO_STREAM;
    d->st.pages_populated++;
    d->st.pool_reuses += (uint64_t)pooled;
}

/* The reap the core runs at the start of a populating fault when pages
 * wait for it: evict every candidate whose fence is done. Returns 0 when
 * that cannot be known (a candidate's stream is busy, or the model does
 * not know whether the reap runs and there are candidates). */
void mt_note_reap_busy(mt_world_t *w, mt_dev_t *d) {
    memset(w->reap_busy, 0, sizeof(w->reap_busy));
    for (int k = 0; k < d->nvb; k++) {
        int s = d->order[k];
        const mt_vbar_t *v = &d->vb[s];
        for (uint64_t i = v->wm; i < v->pages; i++) {
            if (mt_reap_candidate(d, s, i) &&
                mt_stream_busy(w, d, v->pg[i].stream)) {
                w->reap_busy[s][i] = 1;
            }
        }
    }
}

static int reap(mt_world_t *w, mt_dev_t *d) {
    if (d->reap == MT_REAP_ZERO) {
        return 1; /* nothing waits: the core skips the reap */
    }
    int candidates = 0, busy = 0;
    for (int k = 0; k < d->nvb; k++) {
        const mt_vbar_t *v = &d->vb[d->order[k]];
        for (uint64_t i = v->wm; i < v->pages; i++) {
            if (!mt_reap_candidate(d, d->order[k], i)) {
                continue;
            }
            candidates++;
            busy += mt_stream_busy(w, d, v->pg[i].stream);
        }
    }
    if (busy) {
        return 0;
    }
    if (candidates == 0) {
        d->reap = MT_REAP_ZERO;
        return 1;
    }
    if (d->reap == MT_REAP_UNKNOWN) {
        return 0; /* it may or may not run */
    }
    for (int k = 0; k < d->nvb; k++) {
        int s = d->order[k];
        for (uint64_t i = d->vb[s].wm; i < d->vb[s].pages; i++) {
            if (mt_reap_candidate(d, s, i)) {
                mt_evict_page(d, s, i, 1, 0);
            }
        }
    }
    d->reap = MT_REAP_ZERO;
    return 1;
}

dv_result_t mt_predict_fault_slow(mt_world_t *w, mt_dev_t *d, int s,
                                  uint64_t first, uint64_t last, int may_evict,
                                  int *exact) {
    mt_dev_t saved = *d;
    *exact = 1;
    uint64_t budget = mt_budget(d);
    if (!reap(w, d)) {
        *d = saved;
        *exact = 0;
        return DV_OK;
    }
    mt_pool_trim(d, budget, UINT64_MAX);
    mt_vbar_t *v = &d->vb[s];
    uint64_t absent = 0;
    for (uint64_t i = first; i <= last; i++) {
        absent += !v->pg[i].resident;
    }
    uint64_t used = mt_used(d);
    uint64_t room = (budget > used ? (budget - used) / d->ps : 0) + d->pool;
    mt_pref_t vic[MT_VBARS * MT_PAGES];
    if (absent > room) {
        uint64_t need = absent - room;
        int n = may_evict ? mt_victims(d, s, last + 1, vic, MT_VBARS * MT_PAGES)
                          : 0;
        if ((uint64_t)n < need) {
            d->st.faults_offloaded++;
            return DV_OFFLOADED;
        }
        for (uint64_t k = 0; k < need; k++) {
            mt_evict_page(d, vic[k].v, vic[k].i, 1, 1);
        }
    }
    for (uint64_t i = first; i <= last; i++) {
        while (!v->pg[i].resident) {
            if (d->pool) {
                d->pool--;
                populate(d, &v->pg[i], 1);
            } else if (host_free_pages(d)) {
                populate(d, &v->pg[i], 0);
            } else if (!may_evict) {
                d->st.faults_offloaded++;
                return DV_OFFLOADED;
            } else {
                /* The backend's out-of-memory: one more victim, retry. */
                d->st.oom_retries++;
                if (!mt_victims(d, s, last + 1, vic, 1)) {
                    d->st.faults_offloaded++;
                    return DV_OFFLOADED;
                }
                mt_evict_page(d, vic[0].v, vic[0].i, 1, 1);
            }
        }
    }
    d->st.faults_populated++;
    mt_pool_trim(d, budget, d->pool_limit);
    return DV_OK;
}

/* ---- the inexact case ---- */

static int in_list(const mt_pref_t *l, int n, int s, uint64_t i) {
    for (int k = 0; k < n; k++) {
        if (l[k].v == s && l[k].i == i) {
            return k;
        }
    }
    return -1;
}

void mt_loose_fault(mt_world_t *w, mt_dev_t *d, const mt_dev_t *before, int s,
                    uint64_t first, uint64_t last, dv_result_t r, int may_evict,
                    int reap_ran) {
    /* The reap runs only when pages wait for it. */
    int reaping = before->reap != MT_REAP_ZERO;
    mt_pref_t vic[MT_VBARS * MT_PAGES];
    int nv = may_evict
                 ? mt_victims(before, s, last + 1, vic, MT_VBARS * MT_PAGES)
                 : 0;
    uint8_t evicted[MT_VBARS][MT_PAGES] = {{0}};
    int uncertain = 0, uncertain_left = 0;
    uint64_t n_evicted = 0, n_populated = 0;
    uint64_t gen = before->gen;
    for (int k = 0; k < d->nvb; k++) {
        int u = d->order[k];
        mt_vbar_t *v = &d->vb[u];
        const mt_vbar_t *bv = &before->vb[u];
        uint8_t flags[MT_PAGES];
        uint64_t gens[MT_PAGES];
        mt_read_pages(w, d, v, flags, gens);
        uint64_t lowest = bv->wm;
        for (uint64_t i = 0; i < v->pages; i++) {
            const mt_page_t *b = &bv->pg[i];
            mt_page_t *pg = &v->pg[i];
            int now = (flags[i] & DV_PAGE_RESIDENT) != 0;
            int cand = reaping && mt_reap_candidate(before, u, i);
            if (cand && w->reap_busy[u][i]) {
                uncertain++;
                uncertain_left += now;
            }
            if (b->resident && !now) {
                if (b->pins) {
                    mt_fail(w, "pinned-evicted",
                            "v%d page %llu was pinned "
                            "and is gone after a fault of v%d",
                            v->name, (unsigned long long)i, d->vb[s].name);
                }
                if (!cand && in_list(vic, nv, u, i) < 0) {
                    mt_fail(w, "evict-order",
                            "v%d page %llu evicted by a "
                            "fault of v%d pages [%llu, %llu]: neither of "
                            "lower priority nor waiting to be reaped",
                            v->name, (unsigned long long)i, d->vb[s].name,
                            (unsigned long long)first,
                            (unsigned long long)last);
                }
                evicted[u][i] = 1;
                n_evicted++;
                if (!cand && i < lowest) {
                    lowest = i;
                }
                if (!cand) {
                    mt_rec_note_loss(v, i); /* a victim for certain */
                }
                pg->resident = 0;
                pg->gen = 0;
                pg->token = 0;
                pg->stream = MT_NO_STREAM;
            } else if (!b->resident && now) {
                if (u != s || i < first || i > last) {
                    mt_fail(w, "populate-range",
                            "v%d page %llu populated by "
                            "a fault of v%d pages [%llu, %llu]",
                            v->name, (unsigned long long)i, d->vb[s].name,
                            (unsigned long long)first,
                            (unsigned long long)last);
                }
                if (gens[i] != gen + 1) {
                    mt_fail(w, "generation",
                            "v%d page %llu populated with "
                            "generation %llu, expected %llu (consecutive, in "
                            "page order)",
                            v->name, (unsigned long long)i,
                            (unsigned long long)gens[i],
                            (unsigned long long)(gen + 1));
                }
                gen++;
                n_populated++;
                pg->resident = 1;
                pg->gen = gens[i];
                pg->token = 0;
                pg->stream = MT_NO_STREAM;
            } else if (b->resident && gens[i] != b->gen) {
                mt_fail(w, "generation",
                        "v%d page %llu stayed resident but "
                        "its generation moved %llu -> %llu",
                        v->name, (unsigned long long)i,
                        (unsigned long long)b->gen,
                        (unsigned long long)gens[i]);
            }
        }
        v->wm = lowest < v->wm ? lowest : v->wm;
        /* A page that waited to be reaped but was also a victim: reaped
         * (no loss) or evicted by pressure (a loss)? */
        for (uint64_t i = 0; i < v->pages; i++) {
            if (evicted[u][i] && reaping && mt_reap_candidate(before, u, i) &&
                in_list(vic, nv, u, i) >= 0 &&
                (v->lost_pass != v->pass ||
                 (v->risen_from != UINT64_MAX && i >= v->risen_from))) {
                mt_rec_unsure(v);
            }
        }
    }
    /* Victims beyond the reap form a prefix of the eviction order. */
    int last_victim = -1;
    for (int k = 0; k < nv; k++) {
        if (evicted[vic[k].v][vic[k].i] &&
            !(reaping && mt_reap_candidate(before, vic[k].v, vic[k].i))) {
            last_victim = k;
        }
    }
    for (int k = 0; k < last_victim; k++) {
        if (!evicted[vic[k].v][vic[k].i]) {
            mt_fail(w, "evict-order",
                    "v%d page %llu was evicted before "
                    "v%d page %llu, which comes first in eviction order",
                    d->vb[vic[last_victim].v].name,
                    (unsigned long long)vic[last_victim].i,
                    d->vb[vic[k].v].name, (unsigned long long)vic[k].i);
        }
    }
    /* Populations: a prefix of the absent pages (all of them on DV_OK). */
    const mt_vbar_t *bv = &before->vb[s];
    int gap = 0;
    for (uint64_t i = first; i <= last; i++) {
        if (bv->pg[i].resident) {
            continue;
        }
        if (!d->vb[s].pg[i].resident) {
            gap = 1;
        } else if (gap) {
            mt_fail(w, "populate-order",
                    "v%d page %llu populated after an "
                    "absent page of the range was skipped",
                    d->vb[s].name, (unsigned long long)i);
        }
    }
    if (r == DV_OK && gap) {
        mt_fail(w, "fault-ok",
                "DV_OK but v%d pages [%llu, %llu] are not all "
                "resident",
                d->vb[s].name, (unsigned long long)first,
                (unsigned long long)last);
    }
    /* Adopt what is observable; the generic comparison checks the rest. */
    dv_device_stats_t st;
    if (dv_device_get_stats(d->h, &st) != DV_OK) {
        mt_fail(w, "probe", "dv_device_get_stats: %s", dv_last_error());
    }
    uint64_t reused = st.pool_reuses - before->st.pool_reuses;
    if (reused > n_populated) {
        mt_fail(w, "counters",
                "pool_reuses grew by %llu for %llu populated "
                "pages",
                (unsigned long long)reused, (unsigned long long)n_populated);
    }
    d->gen = gen;
    d->pool = st.pool_bytes / d->ps;
    if (r == DV_OK && d->pool > d->pool_limit) {
        mt_fail(w, "pool-limit",
                "pool holds %llu pages after a successful "
                "populating fault, limit %llu",
                (unsigned long long)d->pool, (unsigned long long)d->pool_limit);
    }
    d->st.evictions += n_evicted;
    d->st.evicted_bytes += n_evicted * d->ps;
    d->st.pages_populated += n_populated;
    d->st.pool_reuses += reused;
    if (st.oom_retries < d->st.oom_retries) {
        mt_fail(w, "counters", "oom_retries went down");
    }
    d->st.oom_retries = st.oom_retries;
    if (r == DV_OK) {
        d->st.faults_populated++;
    } else {
        d->st.faults_offloaded++;
    }
    if (!reaping) {
        d->reap = MT_REAP_ZERO; /* nothing waited, nothing was added */
    } else if (!reap_ran) {
        d->reap = MT_REAP_UNKNOWN; /* the reap may not have run */
    } else if (!uncertain) {
        d->reap = MT_REAP_ZERO;
    } else if (before->reap == MT_REAP_POSITIVE &&
               uncertain_left == uncertain) {
        d->reap = MT_REAP_POSITIVE;
    } else {
        d->reap = MT_REAP_UNKNOWN;
    }
    w->n_loose++;
}

uint64_t mt_reclaim(mt_dev_t *d, uint64_t need) {
    uint64_t pages = need / d->ps + (need % d->ps != 0);
    uint64_t from_pool = d->pool < pages ? d->pool : pages;
    d->pool -= from_pool;
    mt_pref_t vic[MT_VBARS * MT_PAGES];
    int n = mt_victims(d, -1, 0, vic, MT_VBARS * MT_PAGES);
    uint64_t evicted = 0;
    for (int k = 0; k < n && evicted < pages - from_pool; k++) {
        mt_evict_page(d, vic[k].v, vic[k].i, 0, 1);
        evicted++;
    }
    return (from_pool + evicted) * d->ps;
}
