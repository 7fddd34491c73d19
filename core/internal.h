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
 *   used           = resident_bytes + pool_bytes + framework_bytes
 */
#ifndef DV_CORE_INTERNAL_H
#define DV_CORE_INTERNAL_H

#include "dynvram.h"
#include "dynvram_hal.h"

#include "core/error.h"
#include "core/os.h"

#define DV__DEVICE_MAGIC 0x44564445u /* "DVDE" */
#define DV__VBAR_MAGIC 0x44565642u   /* "DVVB" */
#define DV__DEAD_MAGIC 0xdeadbeefu

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

struct dv_vbar {
    uint32_t magic;
    dv_device_t *dev;
    uint64_t base;
    uint64_t size;
    uint64_t page_count;
    uint64_t resident_pages;
    uint64_t watermark;       /* pages; faults at or above are offloaded */
    uint64_t watermark_limit; /* pages; eviction never goes below */
    dv__page_t *pages;
    struct dv_vbar *up;   /* higher priority (NULL at top) */
    struct dv_vbar *down; /* lower priority (NULL at bottom) */
};

/* A fence recorded on a stream, covering unpins with seq <= this seq. */
typedef struct dv__fence_ent {
    dv_hal_fence_t fence;
    uint64_t seq;
} dv__fence_ent_t;

/* Unpin bookkeeping of one native stream (see fence.c). */
typedef struct dv__stream {
    void *stream;
    uint64_t seq;           /* last unpin sequence number handed out */
    uint64_t done_seq;      /* every unpin <= this is known complete */
    uint32_t since_fence;   /* unpins since the last recorded fence */
    uint32_t ring_head;     /* index of the oldest fence */
    uint32_t ring_count;
    dv__fence_ent_t ring[DV__FENCE_RING];
} dv__stream_t;

struct dv_device {
    uint32_t magic;
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

    dv_vbar_t *top;    /* highest priority */
    dv_vbar_t *bottom; /* lowest priority */
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
    uint64_t reap_pending; /* unpinned pages above a lowered watermark */
    uint64_t avail;        /* pages + pool + backend free, at avail_ns */
    uint64_t avail_ns;     /* when mem_info was last read (0 = never) */

    dv_device_stats_t st; /* counters only; sizes are filled on query */
};

/* ---- validation (device.c) ---- */
dv_result_t dv__check_device(const dv_device_t *dev, const char *fn);
dv_result_t dv__check_vbar(const dv_device_t *dev, const dv_vbar_t *vbar,
                           const char *fn);
/* Page span [*first, *last] of a byte range, with bounds checks. */
dv_result_t dv__range(const dv_vbar_t *vbar, uint64_t offset, uint64_t size,
                      uint64_t *first, uint64_t *last, const char *fn);
/* A backend failure: add the native code and text to the message. */
dv_result_t dv__hal_fail(dv_device_t *dev, dv_result_t r, const char *what);

/* ---- budget and pool (policy.c) ---- */
/* What pages + pool + framework may hold now. Queries mem_info when
 * `fresh` or when the last reading is older than DV__BUDGET_TTL_NS. */
dv_result_t dv__budget_locked(dv_device_t *dev, int fresh, uint64_t *budget);
uint64_t dv__used_locked(const dv_device_t *dev);
/* Release pooled handles until used <= budget and pool_count <= keep. */
void dv__pool_trim_locked(dv_device_t *dev, uint64_t budget, uint64_t keep);

/* ---- eviction (policy.c) ---- */
/* Evict page `i` of `vbar`: wait for its fence, unmap, and put the handle in
 * the pool (to_pool) or release it. Lowers the watermark to i when
 * `lower_watermark`. */
dv_result_t dv__evict_page_locked(dv_device_t *dev, dv_vbar_t *vbar,
                                  uint64_t i, int to_pool, int lower_watermark);
/* Evict up to `n` pages in eviction order: VBARs below `self` in the
 * priority list, then `self`'s pages at or above `self_floor` (self NULL:
 * every VBAR). *evicted (optional) gets the count. */
dv_result_t dv__evict_victims_locked(dv_device_t *dev, dv_vbar_t *self,
                                     uint64_t self_floor, uint64_t n,
                                     int to_pool, uint64_t *evicted);
/* Evict unpinned pages above watermark that have been waiting for unpin. */
void dv__reap_locked(dv_device_t *dev);
/* Is page i of vbar evictable by pressure (resident, unpinned, >= limit)? */
int dv__evictable(const dv_vbar_t *vbar, uint64_t i);

/* ---- fences (fence.c) ---- */
/* Slot of `stream` in the table, added if new; DV__NO_STREAM on OOM. */
uint32_t dv__stream_slot_locked(dv_device_t *dev, void *stream);
/* Called once per unpin call: returns the sequence number for its pages and
 * records a fence every fence_interval calls. */
dv_result_t dv__stream_unpin_locked(dv_device_t *dev, uint32_t slot,
                                    uint64_t *seq);
/* Is the work before page's last unpin known finished (no driver call)? */
int dv__page_idle(const dv_device_t *dev, const dv__page_t *pg);
/* Like dv__page_idle, but may record and query (never wait on) a fence. */
int dv__page_try_idle_locked(dv_device_t *dev, dv__page_t *pg);
/* Make sure the work before the page's last unpin finished: query, then
 * wait on the one fence that covers it. Counts fence_waits. */
dv_result_t dv__page_wait_locked(dv_device_t *dev, dv__page_t *pg);
/* Fallback when a fence cannot be recorded: synchronize the stream and
 * mark all its unpins done. DV_ERROR_BACKEND if that fails too. */
dv_result_t dv__stream_sync_locked(dv_device_t *dev, uint32_t slot);
void dv__streams_fini_locked(dv_device_t *dev);

/* ---- invariants (check.c) ---- */
dv_result_t dv__check_locked(dv_device_t *dev);

#endif /* DV_CORE_INTERNAL_H */
