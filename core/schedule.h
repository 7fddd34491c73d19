/*
 * schedule.h - the data model of streaming schedules, shared by
 * schedule_ring.c (ring slot memory), schedule_plan.c (placement),
 * prefetch.c (preparing uses ahead, handing them out), schedule.c
 * (lifetime, queries), schedule_use.c (acquire, release) and
 * schedule_check.c (invariants).
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Words. A *use* is one entry of the caller's list (index 0..count-1); an
 * *item* is a distinct range (uses naming the same range share one item).
 * A *position* counts uses across steps: pos = step * count + index. The
 * consumer has acquired everything before `cpos` that it did not skip; the
 * prefetcher has prepared every use from `cpos` up to (not including)
 * `ppos`, and never runs more than one step ahead (ppos <= cpos + count).
 *
 * Every field is protected by the device lock.
 *
 * Invariants (dv__sched_check_locked):
 *  - a slot is FILLED for exactly one prepared use (prep SLOT, same pos),
 *    HELD by exactly one held use, DRAINING or FREE for none;
 *  - item.pins = its held resident uses + its REFILL preparations, and each
 *    of those pins every page of the item once;
 *  - item.preps = its RESIDENT + REFILL preparations;
 *  - plan_refs[p] = planned items covering page p; planned_pages = pages
 *    with plan_refs > 0;
 *  - dev->ring_bytes = sum of ring_mapped * page_size over the schedules.
 */
#ifndef DV_CORE_SCHEDULE_H
#define DV_CORE_SCHEDULE_H

#include "dynvram_stream.h"

#include "core/internal.h"

#define DV__NO_SLOT UINT32_MAX

/* Slot states. */
enum {
    DV__SLOT_FREE = 0,     /* nothing anyone waits for */
    DV__SLOT_FILLED = 1,   /* a copy for the use at `pos` was issued */
    DV__SLOT_HELD = 2,     /* acquired by the use at `pos`, not released */
    DV__SLOT_DRAINING = 3, /* released; reusable once `consumer` is done */
};

/* What the prefetcher prepared for a use's next position. */
enum {
    DV__PREP_NONE = 0,
    DV__PREP_RESIDENT = 1, /* resident and current when checked (not pinned) */
    DV__PREP_REFILL = 2,   /* copied into fresh pages, pinned (item.ready) */
    DV__PREP_SLOT = 3,     /* copied into slot `slot` */
    DV__PREP_OFFLOAD = 4,  /* cannot be served: acquire says DV_OFFLOADED */
};

/* How a use is held between acquire and release. */
enum {
    DV__HELD_NONE = 0,
    DV__HELD_RESIDENT = 1, /* its item's pages, pinned */
    DV__HELD_SLOT = 2,     /* slot `hslot` */
};

/* Placement classes, kept resident in this order before the rest. */
enum {
    DV__CLS_PREFER = 0,       /* DV_RANGE_PREFER_RESIDENT */
    DV__CLS_UNSTREAMABLE = 1, /* larger than a slot */
    DV__CLS_SHARED = 2,       /* used more than once per step (tied) */
    DV__CLS_TINY = 3,         /* streaming it would hold a slot for little */
    DV__CLS_REGULAR = 4,
    DV__CLS_COUNT = 5,
};

typedef struct dv__slot {
    uint64_t va;
    uint64_t pos;            /* FILLED / HELD: the use's position */
    dv_hal_fence_t ready;    /* the copy into it; NULL once known done */
    dv_hal_fence_t consumer; /* DRAINING: the release fence; NULL = done */
    uint8_t state;
} dv__slot_t;

typedef struct dv__sitem {
    uint64_t offset;
    uint64_t size;
    const void *src;
    uint64_t first, last;  /* page span */
    uint64_t saved_gen;    /* largest page stamp after our last copy; 0 none */
    dv_hal_fence_t ready;  /* our last copy into its pages; NULL = done */
    uint64_t first_use;    /* index of its first use in a step */
    uint32_t uses;         /* uses per step */
    uint32_t pins;         /* pin levels held on its pages (see invariants) */
    uint32_t preps;        /* RESIDENT + REFILL preparations */
    uint32_t flags;        /* DV_RANGE_* */
    uint8_t cls;           /* DV__CLS_* */
    uint8_t planned;       /* the plan keeps it resident */
    uint8_t grown;         /* added by the last growth of the plan */
    uint8_t was_current;   /* current at its last use: a miss is a loss */
} dv__sitem_t;

typedef struct dv__suse {
    uint32_t item;
    uint32_t slot;  /* prep SLOT: the slot */
    uint32_t hslot; /* held SLOT: the slot */
    uint8_t prep;   /* DV__PREP_* for position `pos` */
    uint8_t held;   /* DV__HELD_* */
    uint64_t pos;   /* position of the preparation */
} dv__suse_t;

struct dv__sched {
    uint64_t handle; /* the public dv_schedule_t * value */
    dv__dev_t *dev;
    dv__vbar_t *vbar;
    dv__sched_t *next; /* the device's list */

    dv__suse_t *uses;
    uint64_t count;
    dv__sitem_t *items;
    uint64_t nitems;
    uint32_t *plan_refs; /* per VBAR page: planned items covering it */
    uint8_t *covered;    /* per VBAR page: some item covers it */

    /* The ring (schedule_ring.c): nslots slots of slot_pages pages. */
    dv__slot_t slots[DV_SCHEDULE_MAX_SLOTS];
    uint32_t nslots;
    uint64_t slot_size;  /* bytes a slot holds */
    uint64_t slot_pages;
    uint64_t ring_va;    /* reserved for the schedule's life; 0 if not */
    dv_hal_mem_t *ring_mem;
    uint64_t ring_mapped; /* pages mapped from ring_va on */
    uint64_t all_pages;   /* pages covered by the items */
    uint64_t streamed_at_plan; /* st.streamed when the plan was last revised */

    void *copy_stream;  /* dynvram's own, or NULL (the default stream) */
    uint8_t gpu_order;  /* asynchronous copies ordered by stream_wait */
    uint8_t dying;      /* destroy failed half way: only destroy again */

    uint64_t cpos;  /* the consumer's next position */
    uint64_t ppos;  /* the next position to prepare */
    uint64_t cstep; /* 1 + the step of the consumer's last acquire; 0 none */

    /* Placement (schedule_plan.c). */
    uint32_t placement;
    uint64_t act_reserve;   /* bytes */
    uint64_t plan_step;     /* the step the plan was made for */
    uint64_t cap_pages;     /* capacity at the last plan */
    uint64_t planned_pages;
    uint64_t planned_items;
    uint32_t grow_seen;     /* boundaries in a row with room to grow */
    uint32_t backoff;       /* steps to wait after grown ranges were lost */
    uint64_t grow_after;    /* the plan may grow from this step on */
    uint64_t grown_step;    /* step of the last growth, or DV__NO_PAGE */
    uint64_t lost_step;     /* step of the last loss, or DV__NO_PAGE */

    dv_schedule_info_t st; /* counters; the rest is filled on query */
};

/* ---- schedule.c ---- */
/* The schedule behind a handle, on device `dh` (as dv__vbar_get). */
dv_result_t dv__sched_get(dv_device_t *dh, dv_schedule_t *sh, const char *fn,
                          dv__dev_t **dev, dv__sched_t **s);
static inline uint64_t dv__sched_step(const dv__sched_t *s, uint64_t pos) {
    return pos / s->count;
}

/* ---- schedule_ring.c ---- */
/* Reserve the ring's address range (no memory). */
dv_result_t dv__ring_reserve_locked(dv__dev_t *dev, dv__sched_t *s);
/* Map memory under every slot, making room in the budget by evicting VBARs
 * below the schedule's, then its own pages at or above self_floor.
 * DV_ERROR_OUT_OF_DEVICE_MEMORY when it does not fit; pages mapped before
 * a failure stay mapped and counted. */
dv_result_t dv__ring_map_locked(dv__dev_t *dev, dv__sched_t *s,
                                uint64_t self_floor);
/* Give the ring's memory back (pool first); the range stays reserved. The
 * slots must be idle. */
dv_result_t dv__ring_unmap_locked(dv__dev_t *dev, dv__sched_t *s);
/* Unmap and unreserve. Can be called again after a failure. */
dv_result_t dv__ring_destroy_locked(dv__dev_t *dev, dv__sched_t *s);
static inline int dv__ring_mapped(const dv__sched_t *s) {
    return s->ring_mapped == s->slot_pages * s->nslots;
}

/* ---- schedule_plan.c ---- */
/* Classes of the items (after the ring's slot size is known). */
void dv__plan_classify(dv__sched_t *s);
/* Does the plan stream a range (an unplanned range that fits a slot)? */
int dv__plan_streams(const dv__sched_t *s);
/* Resident capacity now, in pages (see dynvram_stream.h). */
uint64_t dv__plan_capacity_locked(dv__dev_t *dev, dv__sched_t *s);
/* The first plan, at creation. */
void dv__plan_initial_locked(dv__dev_t *dev, dv__sched_t *s);
/* The prefetcher enters step `step`: follow the budget (shrink at once,
 * grow with hysteresis), then evict the pages no plan needs. */
void dv__plan_step_locked(dv__dev_t *dev, dv__sched_t *s, uint64_t step);
/* Evict idle pages of unplanned items that nothing prepared or holds. */
void dv__plan_evict_unplanned_locked(dv__dev_t *dev, dv__sched_t *s);
/* A planned item was found not current although it was at its last use:
 * pressure took it. */
void dv__plan_note_loss(dv__sched_t *s, dv__sitem_t *it);

/* ---- prefetch.c ---- */
/* Is the item resident with the bytes of our last copy? */
int dv__item_current(const dv__sched_t *s, const dv__sitem_t *it);
void dv__sched_fence_drop(dv__dev_t *dev, dv_hal_fence_t *f);
/* Prepare the use at position `pos` (dropping a stale preparation of that
 * use first). `block`: may wait on the host for a slot. DV_OK,
 * DV_NOT_READY (no slot without waiting, or every slot held) or an error. */
dv_result_t dv__prefetch_prepare_locked(dv__dev_t *dev, dv__sched_t *s,
                                        uint64_t pos, int block);
/* Prepare the use at ppos and advance it (revising the plan on entering a
 * new step). */
dv_result_t dv__prefetch_next_locked(dv__dev_t *dev, dv__sched_t *s, int block);
/* Give up one preparation. */
void dv__prefetch_drop_locked(dv__dev_t *dev, dv__sched_t *s, dv__suse_t *u);
/* Drop every preparation (destroy). */
void dv__prefetch_drop_all_locked(dv__dev_t *dev, dv__sched_t *s);
/* Prepare ahead without waiting, as far as the slots allow. */
void dv__prefetch_run_locked(dv__dev_t *dev, dv__sched_t *s);
/* Hand the use at `pos` to the consumer on `stream`: *addr, its pages
 * pinned or its slot held. DV_OFFLOADED when it could not be prepared
 * (nothing held). */
dv_result_t dv__prefetch_take_locked(dv__dev_t *dev, dv__sched_t *s,
                                     dv__suse_t *u, uint64_t pos, void *stream,
                                     uint64_t *addr);

#endif /* DV_CORE_SCHEDULE_H */
