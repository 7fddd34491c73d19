/*
 * host_stream.h - simulated streams and fences shared by the host backends
 * (POSIX and Windows). See include/dynvram_host.h for the model.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef DV_HAL_HOST_STREAM_H
#define DV_HAL_HOST_STREAM_H

#include "dynvram_hal.h"
#include "dynvram_host.h"

dv_result_t dv__host_fence_record(void *ctx, void *stream, dv_hal_fence_t *f);
dv_result_t dv__host_fence_query(void *ctx, dv_hal_fence_t f);
dv_result_t dv__host_fence_wait(void *ctx, dv_hal_fence_t f);
void dv__host_fence_destroy(void *ctx, dv_hal_fence_t f);
dv_result_t dv__host_stream_create(void *ctx, void **stream);
dv_result_t dv__host_stream_destroy(void *ctx, void *stream);
dv_result_t dv__host_stream_synchronize(void *ctx, void *stream);
dv_result_t dv__host_stream_check(void *ctx, void *stream);
dv_result_t dv__host_stream_wait(void *ctx, void *stream, dv_hal_fence_t f);
dv_result_t dv__host_stream_is_capturing(void *ctx, void *stream,
                                         int *capturing);

#endif
