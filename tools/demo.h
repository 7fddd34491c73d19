/* demo.h - `dynvram demo`. SPDX-License-Identifier: Apache-2.0 */
#ifndef DV_TOOLS_DEMO_H
#define DV_TOOLS_DEMO_H

#include <stdint.h>

typedef struct dv_demo_opts {
    const char *backend; /* NULL = automatic */
    int steps;           /* steps per phase */
    int layers;          /* 0 = default (24) */
    uint64_t layer_mib;  /* 0 = default (32) */
    uint64_t budget_mib; /* 0 = default (about 2/3 of one model) */
    int quiet;           /* only the final table */
} dv_demo_opts_t;

int dv_demo_run(const dv_demo_opts_t *o);

#endif
