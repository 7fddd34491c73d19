/*
 * host_env.h - settings of the host backends (POSIX and Windows) that come
 * from the environment.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef DV_HAL_HOST_ENV_H
#define DV_HAL_HOST_ENV_H

#include <stddef.h>
#include <stdint.h>

#include "dynvram.h"

/* Simulated devices when DYNVRAM_HOST_DEVICES is unset: more than one, so
 * that programs and tests can exercise several devices in one process on a
 * machine without a GPU, and few enough that `dynvram info` stays short. */
#define DV__HOST_DEFAULT_DEVICES 4
#define DV__HOST_MAX_DEVICES 64

/* The number of simulated host devices: DYNVRAM_HOST_DEVICES (a whole number
 * 1..DV__HOST_MAX_DEVICES), else DV__HOST_DEFAULT_DEVICES. Returns 0 when
 * the variable is set to anything else and writes why into `why`
 * [out][optional] (`len` bytes): the backend then reports itself
 * unavailable rather than guessing. Thread-safe (reads the environment). */
int dv__host_env_devices(char *why, size_t len);

/* The probe op's answer, shared by both host backends: *count [out] devices
 * and `reason` [out] (`len` bytes), which says how many there are and how
 * to change that. DV_OK; DV_ERROR_BACKEND_UNAVAILABLE (*count 0) when
 * DYNVRAM_HOST_DEVICES is invalid. */
dv_result_t dv__host_env_probe(int *count, char *reason, size_t len);

/* DV_OK when `ordinal` names a simulated device; else the failure (with
 * its message) that the init op returns: DV_ERROR_DEVICE_NOT_FOUND, or
 * DV_ERROR_BACKEND_UNAVAILABLE when DYNVRAM_HOST_DEVICES is invalid. */
dv_result_t dv__host_env_check_ordinal(int ordinal);

/* The simulated capacity of a device: capacity=<size> in the backend
 * options, else DYNVRAM_HOST_CAPACITY, else 4 GiB. DV_OK, or
 * DV_ERROR_INVALID_ARGUMENT (native reason set) for an unknown option key or
 * a size that does not parse. */
dv_result_t dv__host_env_capacity(const char *options, uint64_t *capacity);

#endif
