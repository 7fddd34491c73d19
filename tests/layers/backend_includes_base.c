/* The control of layers.refuse: with the same include path as a backend,
 * the HAL header and the base layer compile.
 * SPDX-License-Identifier: Apache-2.0 */
#include "dynvram_hal.h"

#include "base/native.h"
#include "base/os.h"

int dv_layers_probe(void);
int dv_layers_probe(void) { return (int)dv__now_ns() & 0; }
