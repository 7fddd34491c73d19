/*
 * stream_util.h - a model of N weights under a streaming schedule, for the
 * stream suites: sources in host memory, a VBAR, a schedule, and a step
 * that acquires every use in order, checks that the bytes at the acquired
 * address equal the source (read back with dv_copy_d2h) and releases it.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef DV_TEST_STREAM_UTIL_H
#define DV_TEST_STREAM_UTIL_H

#include "dynvram_stream.h"
#include "testdev.h"

typedef struct ts_model {
    dv_device_t *dev;
    dv_vbar_t *vbar;
    dv_schedule_t *sched;
    uint64_t n;              /* uses */
    dv_schedule_range_t *rg; /* n uses */
    unsigned char *host;     /* the sources */
    uint64_t host_size;
    void *stream;            /* the consumer stream (NULL: default) */
    unsigned char *buf;      /* read-back buffer */
    uint64_t largest;
} ts_model_t;

typedef struct ts_count {
    uint64_t resident, streamed, offloaded;
} ts_count_t;

/* `n` ranges of `size` bytes, range i at offset i * stride, each filled
 * with bytes of its own; VBAR of n * stride bytes (rounded to pages). */
void ts_model_init(ts_model_t *m, dv_device_t *dev, uint64_t n, uint64_t size,
                   uint64_t stride);
/* Uses given explicitly: use i is range order[i] (duplicates allowed). */
void ts_model_uses(ts_model_t *m, const uint64_t *order, uint64_t count);
dv_result_t ts_create(ts_model_t *m, const dv_schedule_options_t *o);
/* Is `addr` inside the ring? */
int ts_in_ring(ts_model_t *m, uint64_t addr);
/* Read back `size` bytes at addr and compare with use i's source. */
void ts_verify(ts_model_t *m, uint64_t i, uint64_t addr);
/* Acquire, verify, release use i; counts what it was. */
dv_result_t ts_use(ts_model_t *m, uint64_t i, ts_count_t *c);
/* One whole step. */
ts_count_t ts_step(ts_model_t *m);
dv_schedule_info_t ts_info(ts_model_t *m);
/* Plan flags of every use, as a string: 'R' planned resident, '.' not. */
void ts_plan_string(ts_model_t *m, char *out);
void ts_model_fini(ts_model_t *m);

#endif
