/*
 * dynvram_stream.h - overlapped streaming: a schedule of the ranges of a
 * VBAR in the order one step uses them, prefetched ahead of use on a copy
 * stream of dynvram's own.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * The fault protocol (dynvram.h) copies an offloaded weight on the caller's
 * stream when the caller reaches it, so copy and compute take turns. A
 * schedule knows what comes next. The caller declares, once, the ranges of
 * one step in the order they are used (duplicates allowed: a tied weight
 * used twice); then, for each use i in order:
 *
 *     dv_schedule_acquire(dev, s, i, stream, &addr);   addr holds the bytes
 *     ... launch the work reading addr on `stream` ...
 *     dv_schedule_release(dev, s, i, stream);
 *
 * After the last use comes use 0 of the next step: the schedule is cyclic.
 *
 * What dynvram does behind it:
 *  - Placement. The schedule owns the residency of its ranges. It plans
 *    which ranges stay resident in the VBAR's pages (their address is the
 *    VBAR's) and which are streamed through a small ring of device buffers
 *    (ring slots). The resident capacity is the device's budget less the
 *    ring, less what higher-priority VBARs hold, less the memory left for
 *    activations; lower-priority VBARs are evictable. With
 *    DV_PLACEMENT_SPREAD (the default) the resident ranges are spread
 *    evenly through the step, so the streamed ones are spread too and a
 *    two-slot ring keeps the copy engine busy for the whole step; with
 *    DV_PLACEMENT_PREFIX the first ones in use order stay resident (for
 *    comparison: the copies then cannot run ahead of the resident prefix's
 *    compute by more than the ring's depth).
 *  - Prefetch. On its copy stream dynvram copies the next streamed range
 *    into a ring slot as soon as the slot's previous consumer has released
 *    it (ordered on the GPU after that consumer's fence, without blocking
 *    the host), and copies resident ranges whose memory was taken away
 *    (their generation changed) back into fresh pages of their own, ahead
 *    of use. The prefetch wraps across steps: the first streamed ranges of
 *    step n + 1 load during the tail of step n.
 *  - Fences. Acquire makes `stream` wait on the one fence of the copy that
 *    brought range i (never on the whole copy stream); release records a
 *    fence on `stream` and the slot is reused only after it.
 *  - Pressure. Ring slots are device memory charged to the device's one
 *    budget (dv_device_stats_t.ring_bytes), mapped only while the plan
 *    streams something: when every range fits, the schedule holds no ring,
 *    and a ring that streamed nothing for a step is given back at the next
 *    step boundary (its addresses stay reserved). A prefetch makes room only by
 *    evicting lower-priority VBARs: never a page the schedule needs sooner.
 *    A range planned resident that cannot be made resident now is streamed
 *    this time. The plan follows the budget at step boundaries: it shrinks
 *    as soon as memory is short and grows back only after the room has
 *    lasted two step boundaries (with a backoff when grown ranges are taken
 *    again), so a changing budget never makes it thrash.
 *  - Watermark. A VBAR with a schedule is not governed by the sticky
 *    watermark (spread residency is not a prefix): while the schedule
 *    exists, eviction never lowers that VBAR's watermark, and creating the
 *    schedule resets it to the page count. The plain fault API keeps
 *    working on it (dv_fault / dv_unpin of any range). The watermark policy
 *    of every other VBAR is unchanged.
 *
 * Backends without asynchronous copies (DV_CAP_ASYNC_COPY unset, e.g. the
 * host backend) copy at once: a slot is then refilled only once its
 * consumer's fence is done (checked without waiting; the copy is deferred
 * otherwise, and waited for only when the range is acquired). Backends
 * without stream_wait make acquire wait on the host for the copy instead.
 *
 * Contract common to every function here (as in dynvram.h): results are
 * dv_result_t; bad input returns an error, leaves all state untouched and
 * sets dv_last_error(); every function is safe from any thread (the
 * device's lock); handles are validated before use.
 */
#ifndef DYNVRAM_STREAM_H
#define DYNVRAM_STREAM_H

#include "dynvram.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dv_schedule dv_schedule_t;

/* Most ring slots a schedule may have. */
#define DV_SCHEDULE_MAX_SLOTS 16u

/* dv_schedule_range_t.flags: keep this range resident before any other
 * (for example a range held while other ranges are acquired and released,
 * which would otherwise hold a ring slot that long). */
#define DV_RANGE_PREFER_RESIDENT 0x1u

/* One use of a range in a step. */
typedef struct dv_schedule_range {
    uint64_t offset;  /* bytes into the VBAR */
    uint64_t size;    /* bytes, > 0 */
    const void *src;  /* the range's bytes in host memory (pinned for speed:
                         dv_host_register or the framework's pinned memory);
                         must stay valid and unchanged while the schedule
                         lives */
    uint32_t flags;   /* DV_RANGE_* bits, 0 = none */
    uint32_t reserved0; /* must be 0 */
} dv_schedule_range_t;

typedef enum dv_placement {
    DV_PLACEMENT_SPREAD = 0, /* resident ranges spread through the step */
    DV_PLACEMENT_PREFIX = 1, /* the first ranges in use order resident */
    DV_PLACEMENT_FORCE_UINT32 = 0x7fffffff
} dv_placement_t;

typedef struct dv_schedule_options {
    /* sizeof(dv_schedule_options_t) of the caller's header, set by
     * dv_schedule_options_init: fields added later are taken as their
     * defaults for a caller built against this version. */
    uint32_t size;
    /* Ring slots, 1..DV_SCHEDULE_MAX_SLOTS. 0 = 2. */
    uint32_t ring_slots;
    /* Bytes per slot (rounded up to whole pages). 0 = the largest range.
     * A range larger than a slot is never streamed by dynvram: when it is
     * not resident, acquire returns DV_OFFLOADED for it. */
    uint64_t slot_size;
    /* Bytes of the budget the plan leaves free for framework allocations
     * (activations); the plan also leaves the framework's peak of the last
     * step, whichever is larger. Default 0. */
    uint64_t activation_reserve;
    /* DV_PLACEMENT_SPREAD (default) or DV_PLACEMENT_PREFIX. */
    uint32_t placement;
    uint32_t reserved0; /* must be 0 */
} dv_schedule_options_t;

/* Fill `opts` with defaults (and its size). NULL is ignored. */
DV_API void dv_schedule_options_init(dv_schedule_options_t *opts);

/*
 * Create a schedule of `count` uses of ranges of `vbar`, in use order.
 * Two uses either name the same range (same offset, size and src) or
 * ranges that do not overlap. Makes the ring (device memory, charged to
 * the budget, when the first plan streams something; lower-priority VBARs and
 * this VBAR's own pages are evicted to make room for it), a copy stream, and
 * the first plan. Nothing is copied until the first acquire.
 * [in]  dev, vbar      the VBAR must belong to dev and have no schedule.
 * [in]  ranges, count  count >= 1; copied.
 * [in][optional] opts  NULL = defaults.
 * [out] out            the schedule.
 * Results: DV_OK; DV_ERROR_INVALID_ARGUMENT (NULL or dead handles, NULL
 * ranges or out, count 0, size 0, src NULL, unknown flags, partly
 * overlapping or conflicting ranges, bad options); DV_ERROR_OUT_OF_RANGE (a
 * range beyond the VBAR or overflowing); DV_ERROR_WRONG_DEVICE;
 * DV_ERROR_BUSY (the VBAR has a schedule already); DV_ERROR_NOT_SUPPORTED
 * (the backend cannot copy host to device);
 * DV_ERROR_OUT_OF_DEVICE_MEMORY (the ring does not fit even after
 * eviction; evictions done stay done); DV_ERROR_OUT_OF_HOST_MEMORY;
 * DV_ERROR_ADDRESS_SPACE; DV_ERROR_BACKEND. On failure nothing is kept.
 */
DV_API dv_result_t dv_schedule_create(dv_device_t *dev, dv_vbar_t *vbar,
                                      const dv_schedule_range_t *ranges,
                                      uint64_t count,
                                      const dv_schedule_options_t *opts,
                                      dv_schedule_t **out);

/*
 * Destroy a schedule: waits for its copies and for the consumers of its
 * slots, gives the ring back (its pages go to the pool, bounded) and the
 * VBAR back to the ordinary policy. Resident pages stay resident.
 * Results: DV_OK; DV_ERROR_INVALID_ARGUMENT; DV_ERROR_WRONG_DEVICE;
 * DV_ERROR_BUSY (a use is acquired and not released; nothing changed);
 * DV_ERROR_BACKEND (the schedule stays, and the call can be retried).
 */
DV_API dv_result_t dv_schedule_destroy(dv_device_t *dev, dv_schedule_t *sched);

/*
 * The device address holding the bytes of use `index`, with `stream`
 * (a native stream; NULL = the default stream) ordered after the copy that
 * brought them. *addr is the range's VBAR address when it is resident
 * (pinned until release), else the start of a ring slot (reserved for it
 * until release). Acquiring use i after use j < i - 1 skips the uses in
 * between (what was prefetched for them is dropped); acquiring a lower
 * index than the last one starts a new step. May wait on the host only
 * when the range was not prefetched in time (a slot's consumer not done on
 * a backend without asynchronous copies, or every slot reserved).
 * Results: DV_OK; DV_OFFLOADED (neither resident nor streamable now: the
 *   range is larger than a slot, or every slot is held by an unreleased
 *   use; nothing is held, do not release it: copy it yourself as with
 *   dv_fault); DV_ERROR_INVALID_ARGUMENT (handles, addr NULL, a junk
 *   stream, a stream under graph capture); DV_ERROR_OUT_OF_RANGE (index >=
 *   count); DV_ERROR_WRONG_DEVICE; DV_ERROR_BUSY (use `index` is acquired
 *   and not released yet); DV_ERROR_BACKEND (nothing held).
 */
DV_API dv_result_t dv_schedule_acquire(dv_device_t *dev, dv_schedule_t *sched,
                                       uint64_t index, void *stream,
                                       uint64_t *addr);

/*
 * The work reading use `index` was launched on `stream`: a fence is
 * recorded there, after which its pages become evictable again or its slot
 * is refilled with the next streamed range (prefetch, without waiting).
 * Results: DV_OK; DV_ERROR_INVALID_ARGUMENT; DV_ERROR_OUT_OF_RANGE;
 * DV_ERROR_WRONG_DEVICE; DV_ERROR_NOT_PINNED (use `index` is not acquired;
 * nothing changed); DV_ERROR_BACKEND (no fence could be recorded and the
 * stream could not be synchronized either; nothing changed). When only
 * the fence fails, the stream is synchronized instead.
 */
DV_API dv_result_t dv_schedule_release(dv_device_t *dev, dv_schedule_t *sched,
                                       uint64_t index, void *stream);

typedef struct dv_schedule_info {
    uint64_t count;        /* uses per step */
    uint64_t ranges;       /* distinct ranges */
    uint64_t ring_base;    /* device address of slot 0 (reserved for the
                              schedule's life; memory mapped on demand) */
    uint64_t slot_stride;  /* bytes from one slot to the next (whole pages) */
    uint64_t slot_size;    /* bytes a slot holds */
    uint32_t ring_slots;
    uint32_t placement;
    uint64_t steps;            /* steps started by the consumer */
    uint64_t capacity_bytes;   /* resident capacity at the last plan */
    uint64_t planned_bytes;    /* pages the plan keeps resident, in bytes */
    uint64_t planned_ranges;   /* distinct ranges planned resident */
    uint64_t replans;          /* plans that changed the resident set */
    uint64_t acquires;         /* successful acquires */
    uint64_t resident_hits;    /* ... served resident without a copy */
    uint64_t streamed;         /* ... served from a ring slot */
    uint64_t offloaded;        /* acquires that returned DV_OFFLOADED */
    uint64_t copies;           /* host-to-device copies issued */
    uint64_t copied_bytes;
    uint64_t refills;          /* resident ranges copied into fresh pages */
    uint64_t deferred;         /* slot refills put off: consumer not done */
    uint64_t host_waits;       /* acquires that waited on the host */
    uint64_t ring_mapped_bytes; /* memory under the ring now (0 while the
                                   plan streams nothing) */
} dv_schedule_info_t;

/* Results: DV_OK; DV_ERROR_INVALID_ARGUMENT; DV_ERROR_WRONG_DEVICE. */
DV_API dv_result_t dv_schedule_get_info(dv_device_t *dev, dv_schedule_t *sched,
                                        dv_schedule_info_t *info);

#define DV_USE_PLANNED_RESIDENT 0x1u /* the plan keeps its range resident */
#define DV_USE_RESIDENT 0x2u         /* its range is resident and current */

/*
 * Per use, one byte of DV_USE_* bits, for uses [first, first + n).
 * Results: DV_OK; DV_ERROR_INVALID_ARGUMENT (flags NULL with n > 0);
 * DV_ERROR_OUT_OF_RANGE; DV_ERROR_WRONG_DEVICE.
 */
DV_API dv_result_t dv_schedule_plan(dv_device_t *dev, dv_schedule_t *sched,
                                    uint64_t first, uint64_t n,
                                    uint8_t *flags);

#ifdef __cplusplus
}
#endif

#endif /* DYNVRAM_STREAM_H */
