/*
 * hip_os_win.c - the HIP backend's platform layer on Windows (the HIP SDK's
 * amdhip64_N.dll).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdio.h>

#include "hip_internal.h"

const char *const *dv__hip_os_library_names(void) {
    /* The HIP SDK names the runtime DLL after its major version. */
    static const char *const names[] = {"amdhip64_7.dll", "amdhip64_6.dll",
                                        NULL};
    return names;
}

uint32_t dv__hip_os_default_workarounds(void) {
    /* Defect (c): repeated reserve/free of address ranges corrupts the
     * runtime's state on Windows, so reservations are kept and reused.
     * Defect (a) is a Linux (KFD/ROCr) one: unmapping releases memory here. */
    return DV__HIP_WA_REUSE_VA;
}

int dv__hip_os_reprotect(uint64_t va, uint64_t size, char *why,
                         size_t why_len) {
    /* Nothing to do: the Windows runtime does not mirror device ranges in
     * the CPU address space, so no CPU mapping can keep memory alive. */
    (void)va;
    (void)size;
    (void)why;
    (void)why_len;
    return 0;
}
