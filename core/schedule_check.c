/*
 * schedule_check.c - the invariants of streaming schedules (schedule.h),
 * checked by dv_device_check.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "core/schedule.h"

#define BROKEN(...) return dv__fail(DV_ERROR_INVARIANT, __VA_ARGS__)

static dv_result_t check_slots(const dv__sched_t *s) {
    for (uint32_t k = 0; k < s->nslots; k++) {
        const dv__slot_t *sl = &s->slots[k];
        uint32_t preps = 0, holds = 0;
        for (uint64_t i = 0; i < s->count; i++) {
            const dv__suse_t *u = &s->uses[i];
            preps += u->prep == DV__PREP_SLOT && u->slot == k;
            holds += u->held == DV__HELD_SLOT && u->hslot == k;
            if (u->prep == DV__PREP_SLOT && u->slot == k &&
                (sl->state != DV__SLOT_FILLED || sl->pos != u->pos)) {
                BROKEN("schedule %p: use %llu prepared in slot %u of state %u",
                       (const void *)s, (unsigned long long)i, k, sl->state);
            }
        }
        if (preps != (sl->state == DV__SLOT_FILLED) ||
            holds != (sl->state == DV__SLOT_HELD)) {
            BROKEN("schedule %p: slot %u of state %u has %u preparations and "
                   "%u holders",
                   (const void *)s, k, sl->state, preps, holds);
        }
        if (!dv__ring_mapped(s) && sl->state != DV__SLOT_FREE) {
            BROKEN("schedule %p: slot %u in use while the ring is not mapped",
                   (const void *)s, k);
        }
        if (sl->consumer && sl->state != DV__SLOT_DRAINING) {
            BROKEN("schedule %p: slot %u has a consumer fence in state %u",
                   (const void *)s, k, sl->state);
        }
    }
    return DV_OK;
}

static dv_result_t check_items(const dv__sched_t *s) {
    const dv__vbar_t *v = s->vbar;
    uint64_t planned = 0, planned_items = 0;
    for (uint64_t p = 0; p < v->page_count; p++) {
        uint32_t refs = 0, pins = 0;
        for (uint64_t k = 0; k < s->nitems; k++) {
            const dv__sitem_t *it = &s->items[k];
            if (it->first <= p && p <= it->last) {
                refs += it->planned;
                pins += it->pins;
            }
        }
        if (refs != s->plan_refs[p] || v->pages[p].pins < pins) {
            BROKEN("schedule %p: page %llu has %u plan refs (counted %u), %u "
                   "pins (items hold %u)",
                   (const void *)s, (unsigned long long)p, s->plan_refs[p],
                   refs, v->pages[p].pins, pins);
        }
        planned += refs > 0;
    }
    for (uint64_t k = 0; k < s->nitems; k++) {
        const dv__sitem_t *it = &s->items[k];
        uint32_t held = 0, preps = 0, refills = 0;
        for (uint64_t i = 0; i < s->count; i++) {
            const dv__suse_t *u = &s->uses[i];
            if (u->item != k) {
                continue;
            }
            held += u->held == DV__HELD_RESIDENT;
            preps += u->prep == DV__PREP_RESIDENT || u->prep == DV__PREP_REFILL;
            refills += u->prep == DV__PREP_REFILL;
        }
        if (it->pins != held + refills || it->preps != preps) {
            BROKEN("schedule %p: range %llu: %u pins, %u preparations; uses "
                   "hold %u, prepared %u (%u refills)",
                   (const void *)s, (unsigned long long)k, it->pins, it->preps,
                   held, preps, refills);
        }
        planned_items += it->planned;
    }
    if (planned != s->planned_pages || planned_items != s->planned_items) {
        BROKEN("schedule %p: %llu planned pages and %llu ranges counted, %llu "
               "and %llu recorded",
               (const void *)s, (unsigned long long)planned,
               (unsigned long long)planned_items,
               (unsigned long long)s->planned_pages,
               (unsigned long long)s->planned_items);
    }
    return DV_OK;
}

dv_result_t dv__sched_check_locked(dv__dev_t *dev) {
    uint64_t ring = 0;
    for (const dv__sched_t *s = dev->scheds; s; s = s->next) {
        if (dv__handle_get(s->handle, DV__HK_SCHEDULE) != s || s->dev != dev ||
            s->vbar->sched != s) {
            BROKEN("schedule %p is dead, foreign or not its VBAR's",
                   (const void *)s);
        }
        if (s->ppos < s->cpos || s->ppos > s->cpos + s->count) {
            BROKEN("schedule %p: prefetch position %llu outside [%llu, +%llu]",
                   (const void *)s, (unsigned long long)s->ppos,
                   (unsigned long long)s->cpos, (unsigned long long)s->count);
        }
        dv_result_t r = check_slots(s);
        if (r == DV_OK) {
            r = check_items(s);
        }
        if (r != DV_OK) {
            return r;
        }
        ring += s->ring_mapped * dev->page_size;
    }
    if (ring != dev->ring_bytes) {
        BROKEN("ring bytes %llu counted, %llu recorded",
               (unsigned long long)ring, (unsigned long long)dev->ring_bytes);
    }
    return DV_OK;
}
