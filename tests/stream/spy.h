/*
 * spy.h - a HAL wrapper over the host backend that watches what a
 * streaming schedule asks of the driver: which stream waits on which
 * fence, which fence follows which copy, and whether a copy ever writes a
 * slot whose last reader (a host stream with pending work) is not done.
 * It can also pretend to be an asynchronous backend: DV_CAP_ASYNC_COPY in
 * the caps, and every copy on the copy stream left pending (one unit of
 * host-stream work) until a fence wait or a stream wait finishes it, as a
 * GPU's copy engine would.
 * One spy per process: tests using it run with --jobs 1.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef DV_TEST_SPY_H
#define DV_TEST_SPY_H

#include "dynvram_hal.h"
#include "dynvram_host.h"

#define SPY_MAX 4096

typedef struct spy_wait {
    void *stream;
    dv_hal_fence_t fence;
} spy_wait_t;

typedef struct spy_state {
    int async;           /* advertise DV_CAP_ASYNC_COPY, copies stay pending */
    void *consumer;      /* the test's stream (set by the test) */
    void *copy_stream;   /* the first stream created after `consumer` was set */
    long copies, stream_syncs_copy, fence_waits, stream_waits;
    long consumer_fences;  /* fences recorded on the consumer stream */
    long violations;       /* copies into a guarded range before its reader */
    uint64_t last_dst;     /* destination of the last copy */
    dv_hal_fence_t last_copy_fence; /* fence recorded right after it */
    spy_wait_t waits[SPY_MAX];
    long nwaits;
} spy_state_t;

const dv_hal_ops_t *spy_ops(void);
spy_state_t *spy_state(void);
void spy_reset(int async);
/* A range a reader on `stream` uses until the stream has completed `need`
 * units of work; a copy into it before then is a violation. Replaces an
 * earlier guard of the same va. */
void spy_guard(uint64_t va, uint64_t size, void *stream, uint64_t need);
/* The fence recorded after the last copy into `dst`, or NULL. */
dv_hal_fence_t spy_copy_fence(uint64_t dst);

#endif
