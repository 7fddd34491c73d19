/*
 * criterion/hooks.h - ReportHook(PRE_ALL) for the in-process Criterion
 * stand-in (see criterion.h next to this file). The hook runs once before
 * the first test, with a NULL test set.
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef DV_CRSHIM_HOOKS_H
#define DV_CRSHIM_HOOKS_H

#include "criterion.h"

#define ReportHook(kind) CRSHIM_HOOK_##kind
#define CRSHIM_HOOK_PRE_ALL                                                    \
    static void crshim_pre_all_fn(struct criterion_test_set *);                \
    __attribute__((constructor)) static void crshim_pre_all_reg(void) {        \
        crshim_register_pre_all(crshim_pre_all_fn);                            \
    }                                                                          \
    static void crshim_pre_all_fn

#endif
