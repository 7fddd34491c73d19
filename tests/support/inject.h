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
 * One wrapper per process: tests using it run with --jobs 1.
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

#endif
