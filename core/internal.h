/*
 * internal.h - the core's data model, shared by the files of core/.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Ownership and locking: a dv_device owns its VBARs, its pool and its stream
 * table. Every field below is protected by dev->lock unless marked
 * otherwise. Functions named dv__*_locked expect the lock held.
 *
 * Accounting (checked by dv__check_locked):
 *   resident_bytes = sum over VBARs of resident pages * page_size
 *   pinned_bytes   = sum of pages with pins > 0 (each counted once)
 *   pool_bytes     = pool_count * page_size
 *   ring_bytes     = sum over schedules of their ring slots' pages
 *   used           = resident_bytes + pool_bytes + framework_bytes
 *                    + devbuf_bytes + graph_bytes + ring_bytes
 *   devbuf_bytes   = sum over device buffers of mapped pages * page_size
 *   graph_bytes    = sum over graphs of their physical pages (graph_mem.c)
 */
#ifndef DV_CORE_INTERNAL_H
#define DV_CORE_INTERNAL_H

#include "dynvram.h"
#include "dynvram_hal.h"

#include "base/error.h"
#include "base/handle.h"
#include "base/os.h"

/* The internal objects behind the public handles: dv_device_t * and
 * dv_vbar_t * values are handles (core/handle.h), never these addresses, so
 * a dead or junk handle is rejected before anything is read through it. */
typedef struct dv__dev dv__dev_t;
typedef struct dv__vbar dv__vbar_t;
typedef struct dv__graph dv__graph_t; /* core/graph.h */
typedef struct dv__sched dv__sched_t; /* core/schedule.h */

#define DV__NO_STREAM UINT32_MAX
#define DV__FENCE_RING 16
#define DV__DEFAULT_FENCE_INTERVAL 32u
#define DV__BUDGET_TTL_NS (50ull * 1000 * 1000)
#define DV__DEFAULT_POOL_PAGES 8u

/* One residency unit of a VBAR. */
typedef struct dv__page {
    dv_hal_mem_t mem;   /* valid when resident */
    uint64_t gen;       /* population stamp; 0 = never populated */
    uint64_t unpin_seq; /* sequence of the last unpin on `stream` */
    uint32_t pins;      /* nested pin count */
    uint32_t stream;    /* stream table slot of the last unpin, or NO_STREAM */
    uint8_t resident;
} dv__page_t;

struct dv__vbar {
    uint64_t handle; /* the public dv_vbar_t * value */
    dv__dev_t *dev;
    uint64_t base;
    uint64_t size;
    uint64_t page_count;
    uint64_t resident_pages;
    uint64_t watermark;       /* pages; faults at or above are offloaded */
    uint64_t watermark_limit; /* pages; eviction never goes below */
    dv__page_t *pages;
    struct dv__vbar *up;   /* higher priority (NULL at top) */
    struct dv__vbar *down; /* lower priority (NULL at bottom) */

    /* Watermark recovery (recovery.c). A pass is one walk of the model: a
     * fault that starts below the previous fault starts a new one. */
    uint64_t pass;         /* passes started */
    uint64_t cursor;       /* first page of the last fault */
    uint64_t lost_pass;    /* pass in which pressure last took a page */
    uint64_t rise_after;   /* the watermark may rise from this pass on */
    uint64_t risen_from;   /* watermark before the current rises, or NONE */
    uint64_t fw_peak_cur;  /* framework bytes' peak during this pass */
    uint64_t fw_peak_prev; /* ... and during the previous one */
    uint32_t backoff;      /* passes to wait after recovered pages were lost */
    uint8_t wm_explicit;   /* set_watermark chose it: recovery keeps it */

    /* The streaming schedule that owns this VBAR's residency, or NULL.
     * While set, eviction never lowers the watermark (schedule.c). */
    dv__sched_t *sched;
};

/* A fence recorded on a stream, covering unpins with seq <= this seq. */
typedef struct dv__fence_ent {
    dv_hal_fence_t fence;
    uint64_t seq;
} dv__fence_ent_t;

/* Unpin bookkeeping of one native stream (see fence.c), and whether
 * dynvram created it (stream.c). */
typedef struct dv__stream {
    void *stream;
    uint8_t live;  /* the slot is in use */
    uint8_t owned; /* made by dv_stream_create on this device */
    uint64_t seq;           /* last unpin sequence number handed out */
    uint64_t done_seq;      /* every unpin <= this is known complete */
    uint32_t since_fence;   /* unpins since the last recorded fence */
    uint32_t ring_head;     /* index of the oldest fence */
    uint32_t ring_count;
    dv__fence_ent_t ring[DV__FENCE_RING];
} dv__stream_t;

struct dv__dev {
    uint64_t handle; /* the public dv_device_t * value */
    dv__mutex_t lock;
    dv_hal_ops_t hal; /* copied; optional ops may be NULL */
    void *ctx;
    dv_hal_caps_t caps;
    int ordinal;

    uint64_t page_size;
    uint32_t page_shift; /* log2(page_size) when a power of two, else 0 */
    uint64_t headroom;
    uint64_t vram_limit;
    uint64_t pool_limit_pages;
    uint32_t fence_interval;

    dv__vbar_t *top;    /* highest priority */
    dv__vbar_t *bottom; /* lowest priority */
    uint32_t vbar_count;

    dv_hal_mem_t *pool; /* evicted handles of page_size bytes */
    uint64_t pool_count;
    uint64_t pool_cap;

    dv__stream_t *streams;
    uint32_t stream_count;
    uint32_t stream_cap;
    uint32_t last_stream; /* cache for the unpin fast path */

    uint64_t generation; /* last stamp handed out */
    uint64_t resident_bytes;
    uint64_t pinned_bytes;
    uint64_t framework_bytes;
    uint64_t ring_bytes;   /* streaming ring slots (schedule_ring.c) */
    dv__sched_t *scheds;   /* the device's schedules (a list) */
    uint64_t reap_pending; /* unpinned pages above a lowered watermark */
    uint64_t avail;        /* pages + pool + backend free, at avail_ns */
    uint64_t avail_ns;     /* when mem_info was last read (0 = never) */

    uint8_t recovery; /* watermark recovery on (recovery.c) */

    /* Host I/O (core/io.h). io_objects counts live host buffers, readers
     * and device buffers: close refuses while any exists. */
    uint32_t io_objects;
    uint32_t devbuf_count;
    uint64_t devbuf_bytes;
    struct dv__devbuf *devbufs; /* list, for destinations and checks */

    dv__graph_t *graphs;  /* allocation graphs of this device (graph.c) */
    uint32_t graph_count;
    uint64_t graph_bytes; /* their physical pages, in the budget */
    /* Their invariants, installed by the first dv_graph_create: the files
     * below the graphs never call up into them. */
    dv_result_t (*graphs_check)(dv__dev_t *dev);

    dv_device_stats_t st; /* counters only; sizes are filled on query */
};

/* ---- handles and validation (validate.c) ---- */
/* The device behind a handle, or DV_ERROR_INVALID_ARGUMENT naming the
 * problem (NULL, closed, not a device handle). Never dereferences `h`. */
dv_result_t dv__dev_get(dv_device_t *h, const char *fn, dv__dev_t **dev);
/* Both handles resolved and the VBAR on that device (DV_ERROR_WRONG_DEVICE
 * otherwise). */
dv_result_t dv__vbar_get(dv_device_t *dh, dv_vbar_t *vh, const char *fn,
                         dv__dev_t **dev, dv__vbar_t **vbar);
/* The message for a failed dv__vbar_get (the cold half of dv__vbar_fast). */
dv_result_t dv__vbar_get_fail(dv_device_t *dh, dv_vbar_t *vh, const char *fn);

/* dv__vbar_get for the resident fault / unpin path: two table lookups. */
static inline dv_result_t dv__vbar_fast(dv_device_t *dh, dv_vbar_t *vh,
                                        const char *fn, dv__dev_t **dev,
                                        dv__vbar_t **vbar) {
    dv__dev_t *d = (dv__dev_t *)dv__handle_get(dv__handle_of(dh), DV__HK_DEVICE);
    dv__vbar_t *v = (dv__vbar_t *)dv__handle_get(dv__handle_of(vh), DV__HK_VBAR);
    if (d && v && v->dev == d) {
        *dev = d;
        *vbar = v;
        return DV_OK;
    }
    return dv__vbar_get_fail(dh, vh, fn);
}

static inline dv_device_t *dv__dev_handle(const dv__dev_t *dev) {
    return (dv_device_t *)(uintptr_t)dev->handle;
}
static inline dv_vbar_t *dv__vbar_handle(const dv__vbar_t *vbar) {
    return (dv_vbar_t *)(uintptr_t)vbar->handle;
}
/* Page span [*first, *last] of a byte range, with bounds checks. */
dv_result_t dv__range(const dv__vbar_t *vbar, uint64_t offset, uint64_t size,
                      uint64_t *first, uint64_t *last, const char *fn);
/* A backend failure: add the native code and text to the message. */
dv_result_t dv__hal_fail(dv__dev_t *dev, dv_result_t r, const char *what);

/* ---- framework allocations (framework.c) ---- */
/* Release pooled handles, then evict weight pages in eviction order
 * (released to the backend), until at least `need` bytes went back or
 * nothing evictable is left. *freed gets what went back. */
dv_result_t dv__reclaim_locked(dv__dev_t *dev, uint64_t need, uint64_t *freed);

/* ---- budget and pool (budget.c) ---- */
/* What pages + pool + framework may hold now. Queries mem_info when
 * `fresh` or when the last reading is older than DV__BUDGET_TTL_NS. */
dv_result_t dv__budget_locked(dv__dev_t *dev, int fresh, uint64_t *budget);
uint64_t dv__used_locked(const dv__dev_t *dev);
/* Memory the device holds for others than VBAR pages and the pool:
 * framework allocations and device buffers (recovery plans room for it). */
static inline uint64_t dv__outside_bytes(const dv__dev_t *dev) {
    return dev->framework_bytes + dev->devbuf_bytes;
}
/* Release pooled handles until used <= budget and pool_count <= keep. */
void dv__pool_trim_locked(dv__dev_t *dev, uint64_t budget, uint64_t keep);
/* Keep an evicted handle for reuse; 0 when the pool cannot grow. */
int dv__pool_push_locked(dv__dev_t *dev, dv_hal_mem_t m);

/* ---- eviction (evict.c) ---- */
/* Evict page `i` of `vbar`: wait for its fence, unmap, and put the handle in
 * the pool (to_pool) or release it. Lowers the watermark to i when
 * `lower_watermark`. */
dv_result_t dv__evict_page_locked(dv__dev_t *dev, dv__vbar_t *vbar,
                                  uint64_t i, int to_pool, int lower_watermark);
/* Evict up to `n` pages in eviction order: VBARs below `self` in the
 * priority list, then `self`'s pages at or above `self_floor` (self NULL:
 * every VBAR). *evicted (optional) gets the count. */
dv_result_t dv__evict_victims_locked(dv__dev_t *dev, dv__vbar_t *self,
                                     uint64_t self_floor, uint64_t n,
                                     int to_pool, uint64_t *evicted);
/* How many victims (up to `want`) the walk of dv__evict_victims_locked
 * would find, without evicting. */
uint64_t dv__count_victims_locked(dv__dev_t *dev, dv__vbar_t *self,
                                  uint64_t self_floor, uint64_t want);
/* Evict unpinned pages above watermark that have been waiting for unpin. */
void dv__reap_locked(dv__dev_t *dev);
/* Is page i of vbar evictable by pressure (resident, unpinned, >= limit)? */
int dv__evictable(const dv__vbar_t *vbar, uint64_t i);

/* ---- streams (stream.c) and fences (fence.c) ---- */
/* Slot of `stream` in the table. A stream not seen before is checked with
 * the backend (stream_check) and added; DV_ERROR_INVALID_ARGUMENT or
 * DV_ERROR_WRONG_DEVICE (message names `fn`) when it is not a live stream
 * of this device, DV_ERROR_OUT_OF_HOST_MEMORY when the table cannot grow. */
dv_result_t dv__stream_slot_locked(dv__dev_t *dev, void *stream,
                                   const char *fn, uint32_t *slot);
/* Called once per unpin call: returns the sequence number for its pages and
 * records a fence every fence_interval calls. */
dv_result_t dv__stream_unpin_locked(dv__dev_t *dev, uint32_t slot,
                                    uint64_t *seq);
/* Is the work before page's last unpin known finished (no driver call)? */
int dv__page_idle(const dv__dev_t *dev, const dv__page_t *pg);
/* Like dv__page_idle, but may record and query (never wait on) a fence;
 * 0 while the page's stream is being captured. */
int dv__page_try_idle_locked(dv__dev_t *dev, dv__page_t *pg);
/* Make sure the work before the page's last unpin finished: query, then
 * wait on the one fence that covers it. Counts fence_waits.
 * DV_ERROR_BUSY when that work is on a stream being captured. */
dv_result_t dv__page_wait_locked(dv__dev_t *dev, dv__page_t *pg);
/* Fallback when a fence cannot be recorded: synchronize the stream and
 * mark all its unpins done. DV_ERROR_BACKEND if that fails too,
 * DV_ERROR_BUSY (nothing done) while the stream is being captured. */
dv_result_t dv__stream_sync_locked(dv__dev_t *dev, uint32_t slot);
/* Hand out the next sequence number of the stream in `slot`, as an unpin
 * would, without recording a fence: a later dv__page_try_idle_locked or
 * dv__page_wait_locked records one on demand. */
uint64_t dv__stream_mark_locked(dv__dev_t *dev, uint32_t slot);
/* Is the stream in `slot` being captured into a graph (the HAL's
 * stream_is_capturing; 0 without it or when the query fails)? Work of a
 * capturing stream is never waited on, synchronized or fenced: that would
 * invalidate the capture. */
int dv__stream_capturing_locked(dv__dev_t *dev, uint32_t slot);
/* Is the page's last use unfinished work of a capturing stream? Such a
 * page is not evictable until the capture ends. */
int dv__page_blocked_locked(dv__dev_t *dev, const dv__page_t *pg);
/* Drop every fence of every slot (device close). */
void dv__streams_fini_locked(dv__dev_t *dev);
/* Drop the fences of one slot. */
void dv__stream_drop_fences_locked(dv__dev_t *dev, uint32_t slot);
/* A stream dynvram made itself (a schedule's copy stream) and is about to
 * destroy: synchronize it and empty its slot, if it has one. */
dv_result_t dv__stream_forget_locked(dv__dev_t *dev, void *stream);

/* ---- watermark recovery (recovery.c) ---- */
#define DV__NO_PAGE UINT64_MAX
/* A fault started below the previous one: a new pass of v begins. */
void dv__recovery_new_pass(dv__dev_t *dev, dv__vbar_t *v);
/* Every fault, on the fast path too: a compare and a store. */
static inline void dv__recovery_note_fault(dv__dev_t *dev, dv__vbar_t *v,
                                           uint64_t first) {
    if (first < v->cursor) {
        dv__recovery_new_pass(dev, v);
    }
    v->cursor = first;
}
/* Pressure (or dv_vbar_evict) took page i of v. */
void dv__recovery_note_loss(dv__vbar_t *v, uint64_t i);
/* Framework memory grew: remember the peak for every VBAR's pass. */
void dv__recovery_note_framework(dv__dev_t *dev);
/* A fault of [first, last] at or above the watermark: may the watermark
 * rise to last + 1 (then the fault populates without evicting)? */
int dv__recovery_may_rise_locked(dv__dev_t *dev, dv__vbar_t *v,
                                 uint64_t first, uint64_t last);
/* The watermark of v rose from `old` (and the fault succeeded). */
void dv__recovery_risen(dv__dev_t *dev, dv__vbar_t *v, uint64_t old);
/* The caller reset (prioritize) or chose (set_watermark) the watermark. */
void dv__recovery_reset(dv__vbar_t *v, int explicit_watermark);

/* ---- fault and unpin (fault.c) ---- */
/* The populating path of a fault; may_evict 0 never evicts a page (a
 * shortfall returns DV_OFFLOADED). */
dv_result_t dv__fault_slow_locked(dv__dev_t *dev, dv__vbar_t *vbar,
                                  uint64_t first, uint64_t last,
                                  uint64_t *generation, int may_evict);
/* The same with the victims of its evictions chosen by the caller: VBARs
 * below vbar in the priority list, then vbar's own pages at or above
 * self_floor (dv__fault_slow_locked passes last + 1; a streaming prefetch
 * passes page_count: never its own pages). */
dv_result_t dv__fault_range_locked(dv__dev_t *dev, dv__vbar_t *vbar,
                                   uint64_t first, uint64_t last,
                                   uint64_t *generation, int may_evict,
                                   uint64_t self_floor);
/* Pin pages [first, last], all resident (the fault's hit path). */
void dv__pin_range_locked(dv__dev_t *dev, dv__vbar_t *vbar, uint64_t first,
                          uint64_t last, uint64_t *generation);
/* dv_unpin's work for pages [first, last], all pinned: fences on `stream`
 * (`fn` names the caller in messages). Nothing changes on failure. */
dv_result_t dv__unpin_range_locked(dv__dev_t *dev, dv__vbar_t *vbar,
                                   uint64_t first, uint64_t last, void *stream,
                                   const char *fn);

/* ---- streaming schedules (schedule*.c) ---- */
/* Every invariant of the device's schedules and their rings. */
dv_result_t dv__sched_check_locked(dv__dev_t *dev);

/* ---- invariants (check.c; graphs: graph.c, through dev->graphs_check) ---- */
dv_result_t dv__check_locked(dv__dev_t *dev);

#endif /* DV_CORE_INTERNAL_H */
