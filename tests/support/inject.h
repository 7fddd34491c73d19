/*
 * inject.h - a HAL wrapper that fails one call on purpose, and counts what
 * the core holds so leaks show.
 * SPDX-License-Identifier: Apache-2.0
 *
 * td_inject_arm(inner, n, err): the n-th counted op call (1-based) returns
 * `err` without reaching the inner backend; n = 0 never fails. With
 * err == DV_ERROR_OUT_OF_DEVICE_MEMORY only ops that allocate count
 * (reserve, create, map, fence_record, stream_create), since a driver never
 * reports running out of memory from unmap or release.
 * An injected release failure still frees the memory (the driver reports
 * an error after freeing); every other injected failure reaches nothing.
 * An injected host_unregister failure still unregisters (the driver refused
 * after the fact), like release.
 * One wrapper per process: tests using it run with --jobs 1. Its counters
 * are guarded by a mutex, so HAL calls may come from several threads.
 */
#ifndef DV_TEST_INJECT_H
#define DV_TEST_INJECT_H

#include "dynvram_hal.h"

typedef struct td_inject_state {
    long calls;       /* counted calls so far */
    int fired;        /* the failure was injected */
    const char *op;   /* which op it hit */
    long live_mem;    /* create - release that reached the backend */
    long live_res;    /* reserve - unreserve */
    long live_maps;   /* map - unmap */
    long live_regs;   /* host_register - host_unregister */
    long live_fences; /* fence_record - fence_destroy */
    long live_streams; /* stream_create - stream_destroy */
} td_inject_state_t;

/* Keep counting, and fail the next call of `op` (e.g. "fence_wait") with
 * `err`, once. */
void td_inject_fail_next(const char *op, dv_result_t err);
const dv_hal_ops_t *td_inject_ops(void);
void td_inject_arm(const dv_hal_ops_t *inner, long n, dv_result_t err);
const td_inject_state_t *td_inject_state(void);
/* Calls of `op` that reached the wrapper since td_inject_arm, failed or
 * not, whatever the armed error (NULL: of every op). */
long td_inject_calls(const char *op);

/* Simulation switches, reset by td_inject_arm:
 *  - td_inject_add_caps: get_caps reports these DV_CAP_* flags too (e.g.
 *    DV_CAP_ASYNC_COPY on the host backend, whose copies are synchronous,
 *    so that the fence paths of asynchronous copies run);
 *  - td_inject_fences_pending: fence_query answers DV_NOT_READY, as for
 *    work still running, so callers must wait with fence_wait;
 *  - td_inject_block_next(op): the next call of op waits, before reaching
 *    the backend, until td_inject_release; td_inject_wait_blocked returns
 *    once a call is waiting there. */
void td_inject_add_caps(uint32_t flags);
void td_inject_fences_pending(int on);
void td_inject_block_next(const char *op);
void td_inject_wait_blocked(void);
void td_inject_release(void);

#endif
