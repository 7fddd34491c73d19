/*
 * schedule_plan.c - placement: which ranges of a schedule stay resident.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Capacity. What the plan may keep resident, in pages: the budget, less
 * the other schedules' rings, less what higher-priority VBARs hold, less
 * the memory left for framework allocations (the larger of the schedule's
 * activation_reserve and the framework's peak during this or the last
 * step), less the VBAR's own resident pages that no range of the schedule
 * covers (plain faults); and less this schedule's ring unless every range
 * fits without one. Lower-priority VBARs and the pool count as room: a
 * prefetch evicts the former and reuses the latter.
 *
 * Choice. Items are taken class by class (schedule.h): ranges the caller
 * asked to keep, ranges larger than a slot (they cannot be streamed),
 * ranges used more than once per step (each resident page saves several
 * copies), tiny ranges (streamed, a tiny range would hold a whole slot),
 * then the rest. The rest is chosen
 *  - SPREAD: by error diffusion over the use order (Bresenham on bytes):
 *    each range adds its page cost times the resident fraction to an
 *    accumulator and is kept once the accumulator reaches half its cost;
 *    so resident and streamed ranges alternate evenly through the step and
 *    the copy engine has compute to hide behind everywhere;
 *  - PREFIX: in use order while they fit (what a sticky watermark gives).
 * A range's cost is the pages it would add (pages shared with a planned
 * range are free).
 *
 * Changes. The plan is revised when the prefetcher enters a step. Less
 * capacity than planned: shrink at once (the memory is not there), keeping
 * a spread subset of what is planned (no new copies). More: grow only when
 * the room was there at two boundaries in a row, no planned range was lost
 * to pressure in the step before, and the backoff allows; a growth whose
 * ranges are taken again within the next step doubles the backoff (1, 2,
 * 4, ... 1024 steps); one that lasts a whole step resets it. Growth adds a
 * spread subset of the unplanned ranges. So a budget that moves never
 * makes the plan thrash, and one that stays put gives a fixed plan.
 */
#include <stdlib.h>

#include "core/schedule.h"

#define BACKOFF_MAX 1024u
/* A range of at most slot / TINY_DIV bytes counts as tiny. */
#define TINY_DIV 64u

void dv__plan_classify(dv__sched_t *s) {
    for (uint64_t k = 0; k < s->nitems; k++) {
        dv__sitem_t *it = &s->items[k];
        if (it->flags & DV_RANGE_PREFER_RESIDENT) {
            it->cls = DV__CLS_PREFER;
        } else if (it->size > s->slot_size) {
            it->cls = DV__CLS_UNSTREAMABLE;
        } else if (it->uses > 1) {
            it->cls = DV__CLS_SHARED;
        } else if (it->size <= s->slot_size / TINY_DIV) {
            it->cls = DV__CLS_TINY;
        } else {
            it->cls = DV__CLS_REGULAR;
        }
    }
}

int dv__plan_streams(const dv__sched_t *s) {
    for (uint64_t k = 0; k < s->nitems; k++) {
        if (!s->items[k].planned && s->items[k].size <= s->slot_size) {
            return 1;
        }
    }
    return 0;
}

uint64_t dv__plan_capacity_locked(dv__dev_t *dev, dv__sched_t *s) {
    uint64_t budget = 0;
    if (dv__budget_locked(dev, 0, &budget) != DV_OK) {
        /* No reading: plan with what is planned (no growth, no shrink). */
        return s->planned_pages;
    }
    /* Other schedules' rings are taken; ours counts only if the plan
     * needs one (below). */
    uint64_t ps = dev->page_size;
    uint64_t taken = dev->ring_bytes - s->ring_mapped * ps;
    for (dv__vbar_t *v = dev->top; v && v != s->vbar; v = v->down) {
        taken += v->resident_pages * dev->page_size;
    }
    dv__vbar_t *me = s->vbar;
    uint64_t reserve = s->act_reserve;
    uint64_t peak = me->fw_peak_cur > me->fw_peak_prev ? me->fw_peak_cur
                                                       : me->fw_peak_prev;
    if (dev->framework_bytes > peak) {
        peak = dev->framework_bytes;
    }
    if (peak > reserve) {
        reserve = peak;
    }
    uint64_t other = 0;
    for (uint64_t p = 0; p < me->page_count; p++) {
        other += me->pages[p].resident && !s->covered[p];
    }
    taken += other * ps;
    if (taken > UINT64_MAX - reserve || budget <= taken + reserve) {
        return 0;
    }
    uint64_t cap = (budget - taken - reserve) / ps;
    if (cap >= s->all_pages) {
        return cap; /* everything fits: no ring needed */
    }
    uint64_t ring = s->slot_pages * s->nslots;
    return cap > ring ? cap - ring : 0;
}

/* ---- the planned set, in pages --------------------------------------- */

static uint64_t cost(const dv__sched_t *s, const dv__sitem_t *it) {
    uint64_t n = 0;
    for (uint64_t p = it->first; p <= it->last; p++) {
        n += s->plan_refs[p] == 0;
    }
    return n;
}

static void plan_add(dv__sched_t *s, dv__sitem_t *it) {
    for (uint64_t p = it->first; p <= it->last; p++) {
        s->planned_pages += s->plan_refs[p]++ == 0;
    }
    it->planned = 1;
    s->planned_items++;
}

static void plan_drop(dv__sched_t *s, dv__sitem_t *it) {
    for (uint64_t p = it->first; p <= it->last; p++) {
        s->planned_pages -= --s->plan_refs[p] == 0;
    }
    it->planned = 0;
    it->grown = 0;
    s->planned_items--;
}

/* Items are numbered in first-use order (schedule.c), so index order is
 * use order. SPREAD or PREFIX applies to the regular class; the others are
 * taken in order while they fit. */
/* One pass over the candidates; returns the pages left. */
static uint64_t choose_pass(dv__sched_t *s, int cls, const uint8_t *pick,
                            uint64_t left, int grow) {
    /* The candidates' pages not planned yet, each counted once (ranges
     * may share pages): the fraction handed out is left / total. */
    uint64_t total = 0, last_page = UINT64_MAX;
    for (uint64_t k = 0; k < s->nitems; k++) {
        dv__sitem_t *it = &s->items[k];
        if (it->cls != cls || it->planned || (pick && !pick[k])) {
            continue;
        }
        for (uint64_t p = it->first; p <= it->last; p++) {
            if (s->plan_refs[p] == 0 && p != last_page) {
                total++;
            }
        }
        last_page = it->last; /* ranges in use order rarely interleave */
    }
    int spread = cls == DV__CLS_REGULAR && s->placement == DV_PLACEMENT_SPREAD;
    int64_t share = (int64_t)(left < total ? left : total); /* to hand out */
    int64_t all = (int64_t)total;
    int64_t acc = 0; /* error accumulator, in pages * total */
    for (uint64_t k = 0; k < s->nitems; k++) {
        dv__sitem_t *it = &s->items[k];
        if (it->cls != cls || it->planned || (pick && !pick[k])) {
            continue;
        }
        uint64_t c = cost(s, it);
        if (c == 0) {
            plan_add(s, it); /* its pages are planned already: free */
            it->grown = (uint8_t)grow;
            continue;
        }
        if (spread) {
            acc += share * (int64_t)c;
            if (2 * acc < (int64_t)c * all || c > left) {
                continue;
            }
            acc -= (int64_t)c * all;
        } else if (c > left) {
            if (cls == DV__CLS_REGULAR) {
                break; /* a prefix stops at the first that does not fit */
            }
            continue;
        }
        plan_add(s, it);
        it->grown = (uint8_t)grow;
        left -= c;
    }
    return left;
}

/* Add candidates of class `cls` (unplanned; and marked in `pick` when
 * given) while `left` pages last. Costs change as neighbours are planned
 * (shared pages), so one pass can leave pages unused: further passes hand
 * out the rest, each spread in turn. */
static uint64_t choose(dv__sched_t *s, int cls, const uint8_t *pick,
                       uint64_t left, int grow) {
    for (int pass = 0; pass < 8; pass++) {
        uint64_t before = s->planned_items;
        left = choose_pass(s, cls, pick, left, grow);
        if (!left || s->planned_items == before) {
            break;
        }
    }
    return left;
}

/* Grow the plan to at most `cap` pages with unplanned items. */
static void grow_to(dv__sched_t *s, uint64_t cap, int grow) {
    if (cap >= s->all_pages) {
        /* Everything fits (and then no ring is needed): plan it all. */
        for (uint64_t k = 0; k < s->nitems; k++) {
            if (!s->items[k].planned) {
                plan_add(s, &s->items[k]);
                s->items[k].grown = (uint8_t)grow;
            }
        }
        return;
    }
    uint64_t left = cap > s->planned_pages ? cap - s->planned_pages : 0;
    for (int c = 0; c < DV__CLS_COUNT; c++) {
        left = choose(s, c, NULL, left, grow);
    }
}

/* Shrink the plan to at most `cap` pages, keeping a spread subset of what
 * is planned (the lowest classes give way first). */
static void shrink_to(dv__sched_t *s, uint64_t cap, uint8_t *pick) {
    for (uint64_t k = 0; k < s->nitems; k++) {
        pick[k] = s->items[k].planned;
        if (s->items[k].planned) {
            plan_drop(s, &s->items[k]);
        }
    }
    uint64_t left = cap;
    for (int c = 0; c < DV__CLS_COUNT; c++) {
        left = choose(s, c, pick, left, 0);
    }
}

void dv__plan_initial_locked(dv__dev_t *dev, dv__sched_t *s) {
    s->cap_pages = dv__plan_capacity_locked(dev, s);
    grow_to(s, s->cap_pages, 0);
    s->plan_step = 0;
}

void dv__plan_note_loss(dv__sched_t *s, dv__sitem_t *it) {
    uint64_t step = dv__sched_step(s, s->ppos);
    s->lost_step = step;
    if (it->grown && s->grown_step != DV__NO_PAGE && step <= s->grown_step + 1) {
        /* Pressure took back what the last growth added: wait longer. */
        s->backoff = s->backoff ? s->backoff * 2 : 1;
        if (s->backoff > BACKOFF_MAX) {
            s->backoff = BACKOFF_MAX;
        }
        s->grow_after = step + 1 + s->backoff;
        s->grown_step = DV__NO_PAGE;
        for (uint64_t k = 0; k < s->nitems; k++) {
            s->items[k].grown = 0;
        }
    }
}

void dv__plan_evict_unplanned_locked(dv__dev_t *dev, dv__sched_t *s) {
    dv__vbar_t *v = s->vbar;
    int evicted = 0;
    for (uint64_t k = 0; k < s->nitems; k++) {
        dv__sitem_t *it = &s->items[k];
        if (it->planned || it->pins || it->preps) {
            continue;
        }
        for (uint64_t p = it->first; p <= it->last; p++) {
            dv__page_t *pg = &v->pages[p];
            if (!pg->resident || pg->pins || s->plan_refs[p] ||
                !dv__page_try_idle_locked(dev, pg)) {
                continue;
            }
            /* A page shared with an item that something prepared stays. */
            int busy = 0;
            for (uint64_t j = 0; j < s->nitems && !busy; j++) {
                const dv__sitem_t *o = &s->items[j];
                busy = j != k && o->preps && o->first <= p && p <= o->last;
            }
            if (!busy && dv__evict_page_locked(dev, v, p, 1, 0) == DV_OK) {
                evicted = 1;
            }
        }
    }
    if (evicted) {
        dv__pool_trim_locked(dev, UINT64_MAX, dev->pool_limit_pages);
    }
}

void dv__plan_step_locked(dv__dev_t *dev, dv__sched_t *s, uint64_t step) {
    s->plan_step = step;
    if (s->grown_step != DV__NO_PAGE && step > s->grown_step + 1) {
        s->backoff = 0; /* the last growth lasted a whole step */
        s->grown_step = DV__NO_PAGE;
    }
    uint64_t cap = dv__plan_capacity_locked(dev, s);
    s->cap_pages = cap;
    uint64_t before = s->planned_pages;
    uint64_t before_items = s->planned_items;
    if (cap < s->planned_pages) {
        uint8_t *pick = malloc((size_t)s->nitems);
        if (pick) {
            shrink_to(s, cap, pick);
            free(pick);
        }
        s->grow_seen = 0;
    } else if (cap > s->planned_pages && s->planned_items < s->nitems) {
        int lost_lately = s->lost_step != DV__NO_PAGE && step <= s->lost_step + 1;
        if (lost_lately || step < s->grow_after) {
            s->grow_seen = 0;
        } else if (++s->grow_seen >= 2) {
            for (uint64_t k = 0; k < s->nitems; k++) {
                s->items[k].grown = 0;
            }
            grow_to(s, cap, 1);
            s->grown_step = step;
            s->grow_seen = 0;
        }
    } else {
        s->grow_seen = 0;
    }
    if (s->planned_pages != before || s->planned_items != before_items) {
        s->st.replans++;
        dv__log(DV_LOG_DEBUG,
                "schedule %p: step %llu, capacity %llu pages: plan %llu -> "
                "%llu pages",
                (void *)(uintptr_t)s->handle, (unsigned long long)step,
                (unsigned long long)cap, (unsigned long long)before,
                (unsigned long long)s->planned_pages);
    }
    dv__plan_evict_unplanned_locked(dev, s);
}
