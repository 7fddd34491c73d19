/*
 * hip_os_posix.c - the HIP backend's platform layer on Linux (and other
 * POSIX systems, where no ROCm exists but the simulated driver runs).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#if !defined(_DEFAULT_SOURCE)
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS, MAP_NORESERVE, mincore */
#endif

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "hip_internal.h"

const char *const *dv__hip_os_library_names(void) {
    /* Newest first: ROCm 7, 6, 5, then whatever the unversioned development
     * link points at. */
    static const char *const names[] = {
        "libamdhip64.so.7", "libamdhip64.so.6", "libamdhip64.so.5",
        "libamdhip64.so",   NULL,
    };
    return names;
}

uint32_t dv__hip_os_default_workarounds(void) {
    /* Defect (a) exists on Linux only. Defect (c) is Windows-only, so
     * address reservations are freed normally here. */
    return DV__HIP_WA_REPROTECT;
}

/* Is the page at `addr` part of some mapping of this process? mincore()
 * fails with ENOMEM exactly when it is not, and never changes anything. */
static int hip_os_is_mapped(uintptr_t addr, uintptr_t page) {
    unsigned char vec = 0;
    return mincore((void *)(addr & ~(page - 1)), 1, &vec) == 0;
}

int dv__hip_os_reprotect(uint64_t va, uint64_t size, char *why,
                         size_t why_len) {
    long page_l = sysconf(_SC_PAGESIZE);
    uintptr_t page = page_l > 0 ? (uintptr_t)page_l : 4096u;
    uintptr_t start = (uintptr_t)va;
    if (size == 0 || (start % page) != 0 || (size % page) != 0) {
        snprintf(why, why_len, "range %#llx+%#llx is not page aligned",
                 (unsigned long long)va, (unsigned long long)size);
        return -1;
    }
    /* ROCm on Linux mirrors every reserved device address range in the
     * process's CPU address space. If this runtime does not (nothing is
     * mapped at either end), nothing can hold the memory and nothing here
     * is ours to replace: leave it alone. */
    if (!hip_os_is_mapped(start, page) &&
        !hip_os_is_mapped(start + (uintptr_t)size - page, page)) {
        return 0;
    }
    /* The same mapping a fresh hipMemAddressReserve leaves behind (libhsakmt
     * reserves with an anonymous, inaccessible, non-reserving mapping):
     * MAP_FIXED drops the runtime's mapping of the DRM buffer that kept
     * the physical memory referenced. */
    void *p = mmap((void *)start, (size_t)size, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1,
                   0);
    if (p == MAP_FAILED) {
        snprintf(why, why_len, "mmap(PROT_NONE) failed: %s", strerror(errno));
        return -1;
    }
    return 0;
}
