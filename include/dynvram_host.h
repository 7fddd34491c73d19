/*
 * dynvram_host.h - test hooks of the host backend's simulated streams.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * The host backend runs copies synchronously, but its streams model a GPU
 * queue so that the fence logic can be tested without a GPU: work
 * "submitted" to a host stream (dv_stream_create on a host device) stays
 * pending until dv_host_stream_complete() or until a fence covering it is
 * waited on (which completes it, as a GPU would eventually). The NULL
 * stream never has pending work. All functions are thread-safe.
 */
#ifndef DYNVRAM_HOST_H
#define DYNVRAM_HOST_H

#include "dynvram.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Queue one unit of pending work on a host stream. */
DV_API dv_result_t dv_host_stream_submit(void *stream);
/* Finish all work queued so far on a host stream. */
DV_API dv_result_t dv_host_stream_complete(void *stream);
/* Units of work submitted / finished on it. */
DV_API dv_result_t dv_host_stream_counts(void *stream, uint64_t *submitted,
                                         uint64_t *completed);
/* Pretend a graph capture is (1) or is not (0) under way on a host stream,
 * as cuStreamIsCapturing would report it. */
DV_API dv_result_t dv_host_stream_set_capturing(void *stream, int capturing);
/* Process-wide number of host fence waits that found their work pending. */
DV_API uint64_t dv_host_fence_waits(void);
/* Live host memory registrations of the host backend (host_register that
 * was not unregistered), process-wide, and the bytes they cover. Either
 * pointer may be NULL. The host backend refuses a registration that
 * overlaps a live one and an unregistration of an address that does not
 * start one, as a GPU driver does. Always DV_OK. */
DV_API dv_result_t dv_host_registrations(uint64_t *count, uint64_t *bytes);

#ifdef __cplusplus
}
#endif

#endif /* DYNVRAM_HOST_H */
