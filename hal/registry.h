/* registry.h - internal view of the built-in backend list.
 * SPDX-License-Identifier: Apache-2.0 */
#ifndef DV_HAL_REGISTRY_H
#define DV_HAL_REGISTRY_H

#include "dynvram_hal.h"

/* Number of built-in backends, and backend `index` in probe order
 * (cuda, hip, levelzero, host). */
int dv__hal_count(void);
const dv_hal_ops_t *dv__hal_at(int index);

#endif
