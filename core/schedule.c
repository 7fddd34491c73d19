/*
 * schedule.c - streaming schedules: handles, argument checks, creation
 * and destruction, queries and invariants (contract in
 * include/dynvram_stream.h, data model in schedule.h).
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * A schedule is a handle of the core's table (kind DV__HK_SCHEDULE), so a
 * dead or junk one is refused before anything is read through it, and it
 * belongs to one VBAR of one device: the VBAR cannot be destroyed while it
 * exists (DV_ERROR_BUSY), and a VBAR has at most one. The uses are
 * deduplicated into items numbered by first use, which is the order the
 * planner walks.
 */
#include <stdlib.h>
#include <string.h>

#include "core/schedule.h"

static const char create_fn[] = "dv_schedule_create";

void dv_schedule_options_init(dv_schedule_options_t *opts) {
    if (!opts) {
        return;
    }
    memset(opts, 0, sizeof(*opts));
    opts->size = (uint32_t)sizeof(*opts);
    opts->ring_slots = 2;
    opts->placement = DV_PLACEMENT_SPREAD;
}

dv_result_t dv__sched_get(dv_device_t *dh, dv_schedule_t *sh, const char *fn,
                          dv__dev_t **dev, dv__sched_t **out) {
    dv__dev_t *d = NULL;
    dv_result_t r = dv__dev_get(dh, fn, &d);
    if (r != DV_OK) {
        return r;
    }
    if (!sh) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT, "%s: schedule is NULL", fn);
    }
    dv__sched_t *s =
        (dv__sched_t *)dv__handle_get(dv__handle_of(sh), DV__HK_SCHEDULE);
    if (!s) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "%s: %p is not a live schedule (destroyed, or never a "
                        "schedule)",
                        fn, (void *)sh);
    }
    if (s->dev != d) {
        return dv__fail(DV_ERROR_WRONG_DEVICE,
                        "%s: schedule %p belongs to device %p (%s:%d), not %p",
                        fn, (void *)sh, (void *)dv__dev_handle(s->dev),
                        s->dev->hal.name, s->dev->ordinal, (void *)dh);
    }
    *dev = d;
    *out = s;
    return DV_OK;
}

/* ---- creation ----------------------------------------------------------- */

/* The caller's options, checked, with defaults for what it left out. */
static dv_result_t read_options(const dv_schedule_options_t *in,
                                dv_schedule_options_t *o) {
    dv_schedule_options_init(o);
    if (!in) {
        return DV_OK;
    }
    size_t have = sizeof(*o);
    if (in->size < have) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "%s: options.size is %u, not %zu: fill the options "
                        "with dv_schedule_options_init",
                        create_fn, in->size, have);
    }
    /* A newer caller's fields beyond ours must be left at their zero
     * defaults: we cannot honour anything else. */
    const unsigned char *extra = (const unsigned char *)in + have;
    for (size_t k = 0; k < in->size - have; k++) {
        if (extra[k]) {
            return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                            "%s: options of %u bytes set fields this dynvram "
                            "does not know (it knows %zu bytes)",
                            create_fn, in->size, have);
        }
    }
    memcpy(o, in, have);
    o->size = (uint32_t)have;
    if (o->ring_slots == 0) {
        o->ring_slots = 2;
    }
    if (o->ring_slots > DV_SCHEDULE_MAX_SLOTS || o->reserved0 ||
        o->placement > DV_PLACEMENT_PREFIX) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "%s: ring_slots %u (1..%u), placement %u or reserved0 "
                        "%u is out of range",
                        create_fn, o->ring_slots, DV_SCHEDULE_MAX_SLOTS,
                        o->placement, o->reserved0);
    }
    return DV_OK;
}

static dv_result_t check_range(const dv__vbar_t *v, const dv_schedule_range_t *rg,
                               uint64_t i) {
    if (rg->size == 0 || !rg->src || (rg->flags & ~DV_RANGE_PREFER_RESIDENT) ||
        rg->reserved0) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "%s: range %llu: size 0, src NULL, unknown flags 0x%x "
                        "or reserved0 set",
                        create_fn, (unsigned long long)i, rg->flags);
    }
    if (rg->offset > v->size || rg->size > v->size - rg->offset ||
        (uintptr_t)rg->src > UINTPTR_MAX - rg->size) {
        return dv__fail(DV_ERROR_OUT_OF_RANGE,
                        "%s: range %llu [%llu, +%llu) is outside the VBAR of "
                        "%llu bytes (or its source overflows)",
                        create_fn, (unsigned long long)i,
                        (unsigned long long)rg->offset,
                        (unsigned long long)rg->size,
                        (unsigned long long)v->size);
    }
    return DV_OK;
}

typedef struct sort_ent {
    uint64_t offset, size, use;
} sort_ent_t;

static int by_offset(const void *a, const void *b) {
    const sort_ent_t *x = a, *y = b;
    if (x->offset != y->offset) {
        return x->offset < y->offset ? -1 : 1;
    }
    if (x->size != y->size) {
        return x->size < y->size ? -1 : 1;
    }
    return x->use < y->use ? -1 : x->use > y->use;
}

/* Uses -> items numbered by first use. `tmp` has count entries. */
static dv_result_t build_items(dv__sched_t *s, const dv_schedule_range_t *rg,
                               sort_ent_t *tmp, uint32_t *item_of) {
    uint64_t n = s->count;
    for (uint64_t i = 0; i < n; i++) {
        tmp[i] = (sort_ent_t){rg[i].offset, rg[i].size, i};
    }
    qsort(tmp, (size_t)n, sizeof(*tmp), by_offset);
    /* Groups of equal ranges; item_of[use] = the group's first use. */
    for (uint64_t g = 0; g < n;) {
        uint64_t h = g + 1;
        const dv_schedule_range_t *a = &rg[tmp[g].use];
        while (h < n && tmp[h].offset == tmp[g].offset &&
               tmp[h].size == tmp[g].size) {
            if (rg[tmp[h].use].src != a->src) {
                return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                                "%s: uses %llu and %llu name the range [%llu, "
                                "+%llu) with different sources",
                                create_fn, (unsigned long long)tmp[g].use,
                                (unsigned long long)tmp[h].use,
                                (unsigned long long)a->offset,
                                (unsigned long long)a->size);
            }
            h++;
        }
        if (h < n && tmp[g].offset + tmp[g].size > tmp[h].offset) {
            return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                            "%s: uses %llu [%llu, +%llu) and %llu [%llu, "
                            "+%llu) overlap without being the same range",
                            create_fn, (unsigned long long)tmp[g].use,
                            (unsigned long long)tmp[g].offset,
                            (unsigned long long)tmp[g].size,
                            (unsigned long long)tmp[h].use,
                            (unsigned long long)tmp[h].offset,
                            (unsigned long long)tmp[h].size);
        }
        for (uint64_t k = g; k < h; k++) {
            item_of[tmp[k].use] = (uint32_t)tmp[g].use; /* smallest use */
        }
        g = h;
    }
    /* Number the items in first-use order. */
    uint64_t ps = s->dev->page_size;
    for (uint64_t i = 0; i < n; i++) {
        dv__sitem_t *it;
        if (item_of[i] == i) {
            it = &s->items[s->nitems];
            it->offset = rg[i].offset;
            it->size = rg[i].size;
            it->src = rg[i].src;
            it->first = rg[i].offset / ps;
            it->last = (rg[i].offset + rg[i].size - 1) / ps;
            it->first_use = i;
            s->uses[i].item = (uint32_t)s->nitems++;
        } else {
            s->uses[i].item = s->uses[item_of[i]].item;
        }
        it = &s->items[s->uses[i].item];
        it->uses++;
        it->flags |= rg[i].flags;
        s->uses[i].slot = s->uses[i].hslot = DV__NO_SLOT;
    }
    for (uint64_t k = 0; k < s->nitems; k++) {
        for (uint64_t p = s->items[k].first; p <= s->items[k].last; p++) {
            s->all_pages += !s->covered[p];
            s->covered[p] = 1;
        }
    }
    return DV_OK;
}

static void sched_free(dv__sched_t *s) {
    if (s) {
        free(s->uses);
        free(s->items);
        free(s->plan_refs);
        free(s->covered);
        free(s->ring_mem);
        free(s);
    }
}

/* Allocate the schedule and its tables, check and number the ranges. */
static dv_result_t sched_new(dv__dev_t *dev, dv__vbar_t *v,
                             const dv_schedule_range_t *rg, uint64_t count,
                             const dv_schedule_options_t *o, dv__sched_t **out) {
    if (count > UINT32_MAX || count > SIZE_MAX / sizeof(sort_ent_t)) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT, "%s: %llu uses are too many",
                        create_fn, (unsigned long long)count);
    }
    uint64_t largest = 0;
    for (uint64_t i = 0; i < count; i++) {
        dv_result_t r = check_range(v, &rg[i], i);
        if (r != DV_OK) {
            return r;
        }
        largest = rg[i].size > largest ? rg[i].size : largest;
    }
    uint64_t ps = dev->page_size;
    uint64_t slot = o->slot_size ? o->slot_size : largest;
    if (slot > UINT64_MAX - ps) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT, "%s: slot_size %llu overflows",
                        create_fn, (unsigned long long)slot);
    }
    dv__sched_t *s = calloc(1, sizeof(*s));
    sort_ent_t *tmp = malloc((size_t)count * sizeof(*tmp));
    uint32_t *item_of = malloc((size_t)count * sizeof(*item_of));
    if (s) {
        s->uses = calloc((size_t)count, sizeof(*s->uses));
        s->items = calloc((size_t)count, sizeof(*s->items));
        s->plan_refs = calloc((size_t)v->page_count, sizeof(*s->plan_refs));
        s->covered = calloc((size_t)v->page_count, 1);
    }
    dv_result_t r = DV_OK;
    if (!s || !tmp || !item_of || !s->uses || !s->items || !s->plan_refs ||
        !s->covered) {
        r = dv__fail(DV_ERROR_OUT_OF_HOST_MEMORY, "%s: tables for %llu uses",
                     create_fn, (unsigned long long)count);
        goto out;
    }
    s->dev = dev;
    s->vbar = v;
    s->count = count;
    s->nslots = o->ring_slots;
    s->slot_size = slot;
    s->slot_pages = (slot + ps - 1) / ps;
    s->placement = o->placement;
    s->act_reserve = o->activation_reserve;
    s->grown_step = DV__NO_PAGE;
    s->lost_step = DV__NO_PAGE;
    r = build_items(s, rg, tmp, item_of);
    if (r == DV_OK) {
        dv__plan_classify(s);
    }
out:
    free(tmp);
    free(item_of);
    if (r != DV_OK) {
        sched_free(s);
        return r;
    }
    *out = s;
    return DV_OK;
}

dv_result_t dv_schedule_create(dv_device_t *dh, dv_vbar_t *vh,
                               const dv_schedule_range_t *ranges,
                               uint64_t count,
                               const dv_schedule_options_t *opts,
                               dv_schedule_t **out) {
    dv__dev_t *dev = NULL;
    dv__vbar_t *v = NULL;
    dv_result_t r = dv__vbar_get(dh, vh, create_fn, &dev, &v);
    if (r != DV_OK) {
        return r;
    }
    if (!out || !ranges || count == 0) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "%s: out or ranges NULL, or count 0", create_fn);
    }
    *out = NULL;
    dv_schedule_options_t o;
    r = read_options(opts, &o);
    if (r != DV_OK) {
        return r;
    }
    if (!dev->hal.copy_h2d) {
        return dv__fail(DV_ERROR_NOT_SUPPORTED,
                        "%s: backend %s cannot copy host to device", create_fn,
                        dev->hal.name);
    }
    dv__sched_t *s = NULL;
    r = sched_new(dev, v, ranges, count, &o, &s);
    if (r != DV_OK) {
        return r;
    }
    s->handle = dv__handle_new(DV__HK_SCHEDULE, s);
    if (!s->handle) {
        sched_free(s);
        return dv__fail(DV_ERROR_OUT_OF_HOST_MEMORY, "%s: handle table full",
                        create_fn);
    }
    dv__mutex_lock(&dev->lock);
    if (v->sched) {
        r = dv__fail(DV_ERROR_BUSY, "%s: the VBAR has a schedule already",
                     create_fn);
        goto fail;
    }
    if (dev->hal.stream_create) {
        r = dev->hal.stream_create(dev->ctx, &s->copy_stream);
        if (r != DV_OK) {
            s->copy_stream = NULL;
            dv__hal_fail(dev, r, "stream_create (copy stream)");
            goto fail;
        }
    }
    r = dv__ring_reserve_locked(dev, s);
    if (r != DV_OK) {
        goto fail;
    }
    dv__plan_initial_locked(dev, s);
    if (dv__plan_streams(s)) {
        /* Something is streamed from the first step: the ring must fit
         * now (its room may come from this VBAR's own pages too). */
        r = dv__ring_map_locked(dev, s, 0);
        if (r != DV_OK) {
            goto fail;
        }
    }
    s->gpu_order = (dev->caps.flags & DV_CAP_ASYNC_COPY) && dev->hal.stream_wait &&
                   dev->hal.fence_record;
    /* The schedule owns the VBAR's residency from here on. */
    v->sched = s;
    v->watermark = v->page_count;
    dv__recovery_reset(v, 0);
    s->next = dev->scheds;
    dev->scheds = s;
    dv__log(DV_LOG_DEBUG,
            "schedule %p: %llu uses, %llu ranges, %u slots of %llu bytes, plan "
            "%llu of capacity %llu pages",
            (void *)(uintptr_t)s->handle, (unsigned long long)s->count,
            (unsigned long long)s->nitems, s->nslots,
            (unsigned long long)s->slot_size,
            (unsigned long long)s->planned_pages,
            (unsigned long long)s->cap_pages);
    dv__mutex_unlock(&dev->lock);
    *out = (dv_schedule_t *)(uintptr_t)s->handle;
    return dv__ok();
fail:
    if (s->ring_va && dv__ring_destroy_locked(dev, s) != DV_OK) {
        /* Only a second driver failure gets here: leak the rest, but keep
         * the books equal to what the schedules hold. */
        dv__log(DV_LOG_ERROR, "%s: ring left behind after a failure",
                create_fn);
        dev->ring_bytes -= s->ring_mapped * dev->page_size;
        s->ring_mapped = 0;
    }
    if (s->copy_stream && dev->hal.stream_destroy(dev->ctx, s->copy_stream) !=
                              DV_OK) {
        dv__log(DV_LOG_ERROR, "%s: copy stream left behind", create_fn);
    }
    dv__mutex_unlock(&dev->lock);
    dv__handle_free(s->handle, DV__HK_SCHEDULE);
    sched_free(s);
    return r;
}

/* ---- destruction ---------------------------------------------------------- */

/* Everything that may still read or write the ring or the prepared pages
 * is finished; nothing is torn down yet, so a failure changes nothing. */
static dv_result_t quiesce(dv__dev_t *dev, dv__sched_t *s) {
    dv__prefetch_drop_all_locked(dev, s);
    for (uint32_t k = 0; k < s->nslots; k++) {
        dv__slot_t *sl = &s->slots[k];
        if (sl->consumer) {
            dv_result_t r = dev->hal.fence_wait(dev->ctx, sl->consumer);
            if (r != DV_OK) {
                return dv__hal_fail(dev, r, "fence_wait (slot consumer)");
            }
        }
    }
    if (s->copy_stream && dev->hal.stream_synchronize) {
        dv_result_t r = dev->hal.stream_synchronize(dev->ctx, s->copy_stream);
        if (r != DV_OK) {
            return dv__hal_fail(dev, r, "stream_synchronize (copy stream)");
        }
    }
    return DV_OK;
}

static void drop_fences(dv__dev_t *dev, dv__sched_t *s) {
    dv_hal_fence_t *fs[2];
    for (uint32_t k = 0; k < s->nslots; k++) {
        fs[0] = &s->slots[k].ready;
        fs[1] = &s->slots[k].consumer;
        for (int j = 0; j < 2; j++) {
            if (*fs[j] && dev->hal.fence_destroy) {
                dev->hal.fence_destroy(dev->ctx, *fs[j]);
            }
            *fs[j] = NULL;
        }
    }
    for (uint64_t k = 0; k < s->nitems; k++) {
        if (s->items[k].ready && dev->hal.fence_destroy) {
            dev->hal.fence_destroy(dev->ctx, s->items[k].ready);
        }
        s->items[k].ready = NULL;
    }
}

dv_result_t dv_schedule_destroy(dv_device_t *dh, dv_schedule_t *sh) {
    static const char fn[] = "dv_schedule_destroy";
    dv__dev_t *dev = NULL;
    dv__sched_t *s = NULL;
    dv_result_t r = dv__sched_get(dh, sh, fn, &dev, &s);
    if (r != DV_OK) {
        return r;
    }
    dv__mutex_lock(&dev->lock);
    for (uint64_t i = 0; i < s->count; i++) {
        if (s->uses[i].held) {
            dv__mutex_unlock(&dev->lock);
            return dv__fail(DV_ERROR_BUSY,
                            "%s: use %llu is acquired (release it first)", fn,
                            (unsigned long long)i);
        }
    }
    if (!s->dying) {
        r = quiesce(dev, s);
        if (r != DV_OK) {
            goto out;
        }
        drop_fences(dev, s);
        s->dying = 1;
    }
    r = dv__ring_destroy_locked(dev, s);
    if (r != DV_OK) {
        goto out;
    }
    if (s->copy_stream) {
        r = dv__stream_forget_locked(dev, s->copy_stream);
        if (r == DV_OK) {
            r = dev->hal.stream_destroy(dev->ctx, s->copy_stream);
            if (r != DV_OK) {
                dv__hal_fail(dev, r, "stream_destroy (copy stream)");
            }
        }
        if (r != DV_OK) {
            goto out;
        }
        s->copy_stream = NULL;
    }
    for (dv__sched_t **p = &dev->scheds; *p; p = &(*p)->next) {
        if (*p == s) {
            *p = s->next;
            break;
        }
    }
    s->vbar->sched = NULL;
    dv__handle_free(s->handle, DV__HK_SCHEDULE);
    dv__mutex_unlock(&dev->lock);
    sched_free(s);
    return dv__ok();
out:
    dv__mutex_unlock(&dev->lock);
    return r;
}

/* ---- queries -------------------------------------------------------------- */

dv_result_t dv_schedule_get_info(dv_device_t *dh, dv_schedule_t *sh,
                                 dv_schedule_info_t *info) {
    static const char fn[] = "dv_schedule_get_info";
    dv__dev_t *dev = NULL;
    dv__sched_t *s = NULL;
    dv_result_t r = dv__sched_get(dh, sh, fn, &dev, &s);
    if (r != DV_OK) {
        return r;
    }
    if (!info) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT, "%s: info is NULL", fn);
    }
    dv__mutex_lock(&dev->lock);
    uint64_t ps = dev->page_size;
    *info = s->st;
    info->count = s->count;
    info->ranges = s->nitems;
    info->ring_base = s->ring_va;
    info->slot_stride = s->slot_pages * ps;
    info->slot_size = s->slot_size;
    info->ring_slots = s->nslots;
    info->placement = s->placement;
    info->capacity_bytes = s->cap_pages * ps;
    info->planned_bytes = s->planned_pages * ps;
    info->planned_ranges = s->planned_items;
    info->ring_mapped_bytes = s->ring_mapped * ps;
    dv__mutex_unlock(&dev->lock);
    return dv__ok();
}

dv_result_t dv_schedule_plan(dv_device_t *dh, dv_schedule_t *sh,
                             uint64_t first, uint64_t n, uint8_t *flags) {
    static const char fn[] = "dv_schedule_plan";
    dv__dev_t *dev = NULL;
    dv__sched_t *s = NULL;
    dv_result_t r = dv__sched_get(dh, sh, fn, &dev, &s);
    if (r != DV_OK) {
        return r;
    }
    if (!flags && n) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT, "%s: flags is NULL", fn);
    }
    if (first > s->count || n > s->count - first) {
        return dv__fail(DV_ERROR_OUT_OF_RANGE,
                        "%s: uses [%llu, +%llu) outside %llu", fn,
                        (unsigned long long)first, (unsigned long long)n,
                        (unsigned long long)s->count);
    }
    dv__mutex_lock(&dev->lock);
    for (uint64_t i = 0; i < n; i++) {
        const dv__sitem_t *it = &s->items[s->uses[first + i].item];
        flags[i] = (uint8_t)((it->planned ? DV_USE_PLANNED_RESIDENT : 0) |
                             (dv__item_current(s, it) ? DV_USE_RESIDENT : 0));
    }
    dv__mutex_unlock(&dev->lock);
    return dv__ok();
}
