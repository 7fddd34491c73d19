/* Compiled with a backend's include path by the layers.refuse test: it must
 * NOT compile, because a backend may not see the core's internals.
 * SPDX-License-Identifier: Apache-2.0 */
#include "core/internal.h"

int dv_layers_probe(void);
int dv_layers_probe(void) { return 0; }
