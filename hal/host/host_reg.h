/*
 * host_reg.h - host memory registrations of the host backends (POSIX and
 * Windows), tracked the way a GPU driver tracks cuMemHostRegister.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Host memory needs no page-locking for the host backend's copies, but the
 * registration rules are kept as strictly as CUDA keeps them, so that CI
 * catches what a GPU would refuse:
 *  - registering a range that overlaps a live registration fails
 *    (DV_ERROR_INVALID_ARGUMENT, "already registered");
 *  - unregistering an address that is not the start of a live registration
 *    fails (DV_ERROR_INVALID_ARGUMENT, "not registered");
 *  - registrations are process-wide (like CUDA's portable ones), so the same
 *    memory cannot be registered through two devices either;
 *  - dv_host_registrations (dynvram_host.h) counts them, for leak checks.
 * Failures are recorded with dv__native_fail. Thread-safe (one mutex): the
 * core may call host_register / host_unregister without the device lock.
 */
#ifndef DV_HAL_HOST_REG_H
#define DV_HAL_HOST_REG_H

#include <stdint.h>

#include "dynvram.h"

dv_result_t dv__host_reg_add(void *ctx, void *ptr, uint64_t size);
dv_result_t dv__host_reg_remove(void *ctx, void *ptr);

#endif
