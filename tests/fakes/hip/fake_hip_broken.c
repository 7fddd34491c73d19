/*
 * fake_hip_broken.c - a shared library that is not a HIP runtime (it exports
 * none of the HIP entry points). The fallback tests install it under a
 * name the backend tries before the simulator's, to show that a candidate
 * lacking the symbols is skipped and the search goes on.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "tests/fakes/hip/fake_hip.h"

DVSIM_EXPORT int dvsim_hip_broken(void);

DVSIM_EXPORT int dvsim_hip_broken(void) { return 1; }
