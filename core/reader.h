/*
 * reader.h - the reader's data model, shared by reader.c (threads, jobs,
 * the public read calls) and reader_ring.c (the staging ring).
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * A read is a job of chunk_size pieces. The calling thread queues it and
 * waits; the reader's threads take chunks from the oldest job first (so two
 * reads share the threads instead of one starving) and do the positional
 * reads. A chunk bound for device memory takes a staging slot for itself
 * (waiting while all are taken), reads into it, queues the copy to the
 * destination on the reader's stream, records a fence after it and gives
 * the slot back with that fence: the slot is reused only once its fence
 * has passed. Each slot thus has exactly one owner at a time, whatever
 * number of reads and threads use the ring (the predecessor's ring was
 * shared by reads without that rule and corrupted data under two threads).
 *
 * Locks: rd->lock guards the job queue, the slots' ownership, the counters
 * and the ring's state. Device calls take dev->lock (never while holding
 * rd->lock); fence waits take neither (dynvram_hal.h allows it).
 */
#ifndef DV_CORE_READER_H
#define DV_CORE_READER_H

#include "core/io.h"

#define DV__READER_MAX_THREADS 64u
#define DV__READER_MAX_SLOTS 256u
#define DV__READER_MAX_CHUNK (1ull << 30)

typedef struct dv__slot {
    uint8_t *buf;
    dv_hal_fence_t fence; /* a copy from buf may still run until it passes */
    uint8_t busy;         /* a chunk owns the slot */
} dv__slot_t;

typedef struct dv__job {
    struct dv__job *next;
    dv__dev_t *dev;
    const char *fn;
    dv__osfile_t file;
    uint64_t foff, size;
    uint8_t *host; /* host destination, or NULL: device */
    uint64_t dst;  /* device destination */
    uint32_t flags;
    uint64_t handed; /* bytes handed out to chunks */
    uint64_t left;   /* chunks not finished */
    dv_result_t err; /* the first failure */
    char msg[1024];  /* its message, without the result's name */
} dv__job_t;

enum { RING_NONE, RING_MAKING, RING_READY };

struct dv__reader {
    dv__ioobj_t io;
    dv__mutex_t lock;
    dv__cond_t work;  /* a job was queued, or stop */
    dv__cond_t done;  /* a job's chunks finished */
    dv__cond_t freed; /* a slot was given back, or the ring is made */
    uint32_t threads, nslots;
    uint64_t chunk;
    dv__thread_t tid[DV__READER_MAX_THREADS];
    uint32_t started;
    int stop;
    dv__job_t *head, *tail; /* jobs with chunks to hand out */
    uint32_t reads;         /* reads in flight */

    int ring;       /* RING_* */
    uint8_t *stage; /* nslots * chunk bytes, or NULL */
    uint64_t stage_bytes;
    int pinned;   /* the stage is registered with the backend */
    void *stream; /* the reader's copy stream (NULL: backend's default) */
    int own_stream;
    dv__slot_t slots[DV__READER_MAX_SLOTS];
    dv__fenceset_t pending; /* fences of stream-ordered reads (device lock) */

    uint64_t bytes_read, chunks, slot_waits, fence_waits;
};

/* ---- reader_ring.c ---- */

/* Make the staging ring and the copy stream once (the first read to
 * device memory; concurrent first reads wait for one to make it). */
dv_result_t dv__ring_ready(dv__reader_t *rd, dv__dev_t *dev, const char *fn);
/* The staging slot for a chunk: waits while every slot is taken, then for
 * the slot's last copy. */
dv_result_t dv__ring_take(dv__reader_t *rd, dv__dev_t *dev, const char *fn,
                          dv__slot_t **slot);
/* Give a slot back; `fence` (optional) passes once its copy has run. */
void dv__ring_give(dv__reader_t *rd, dv__slot_t *slot, dv_hal_fence_t fence);
/* Queue the copy of slot's first n bytes to dst on the reader's stream and
 * return the fence after it (NULL when the copy has already finished). */
dv_result_t dv__ring_copy(dv__reader_t *rd, dv__dev_t *dev, dv__slot_t *slot,
                          uint64_t n, uint64_t dst, const char *fn,
                          dv_hal_fence_t *fence);
/* After a device job: make `stream` wait for its copies (stream_wait), or
 * wait for them here (NULL stream, a failed job, no stream_wait). A fence
 * left pending goes to *keep (the job's device buffer takes it) or to the
 * reader's own set. Device lock not held. */
dv_result_t dv__ring_finish(dv__reader_t *rd, dv__dev_t *dev, void *stream,
                            int failed, const char *fn, dv_hal_fence_t *keep);
/* Wait for every copy and free the ring (reader destroy). */
void dv__ring_free(dv__reader_t *rd, dv__dev_t *dev);

#endif /* DV_CORE_READER_H */
