/*
 * host_reg.c - the host backends' registration table (contract in
 * host_reg.h).
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * A sorted array of [ptr, ptr + size) ranges, searched by bisection: a
 * process holds few registrations (a host buffer registers each part it
 * grows by, a reader its staging ring).
 */
#include <stdlib.h>
#include <string.h>

#include "dynvram_host.h"

#include "base/error.h"
#include "base/native.h"
#include "base/os.h"
#include "host_reg.h"

typedef struct reg {
    uintptr_t lo, hi;
    void *owner; /* the ctx that registered it, for messages */
} reg_t;

static dv__once_t reg_once = DV__ONCE_INIT;
static dv__mutex_t reg_lock;
static reg_t *regs;
static size_t reg_count, reg_cap;
static uint64_t reg_bytes;

static void reg_init(void) { dv__mutex_init(&reg_lock); }

static void lock(void) {
    dv__once(&reg_once, reg_init);
    dv__mutex_lock(&reg_lock);
}

/* Index of the first registration whose end is above `p`. */
static size_t first_above(uintptr_t p) {
    size_t lo = 0, hi = reg_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (regs[mid].hi <= p) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

dv_result_t dv__host_reg_add(void *ctx, void *ptr, uint64_t size) {
    uintptr_t lo = (uintptr_t)ptr;
    if (!ptr || size == 0 || size > UINTPTR_MAX - lo) {
        return dv__native_fail(DV_ERROR_INVALID_ARGUMENT, 0,
                               "host host_register: NULL pointer, size 0 or "
                               "a range that overflows");
    }
    uintptr_t hi = lo + (uintptr_t)size;
    lock();
    size_t i = first_above(lo);
    if (i < reg_count && regs[i].lo < hi) {
        reg_t o = regs[i];
        dv__mutex_unlock(&reg_lock);
        return dv__native_fail(DV_ERROR_INVALID_ARGUMENT, 0,
                               "host host_register(%p, %llu): already "
                               "registered (overlaps [%p, +%llu))",
                               ptr, (unsigned long long)size, (void *)o.lo,
                               (unsigned long long)(o.hi - o.lo));
    }
    if (reg_count == reg_cap) {
        size_t cap = reg_cap ? reg_cap * 2 : 16;
        reg_t *p = realloc(regs, cap * sizeof(*p));
        if (!p) {
            dv__mutex_unlock(&reg_lock);
            return dv__native_fail(DV_ERROR_OUT_OF_HOST_MEMORY, 0,
                                   "host host_register: registration table");
        }
        regs = p;
        reg_cap = cap;
    }
    memmove(&regs[i + 1], &regs[i], (reg_count - i) * sizeof(*regs));
    regs[i] = (reg_t){lo, hi, ctx};
    reg_count++;
    reg_bytes += size;
    dv__mutex_unlock(&reg_lock);
    return DV_OK;
}

dv_result_t dv__host_reg_remove(void *ctx, void *ptr) {
    (void)ctx;
    uintptr_t p = (uintptr_t)ptr;
    lock();
    size_t i = first_above(p);
    if (i == reg_count || regs[i].lo != p) {
        int inside = i < reg_count && regs[i].lo < p;
        dv__mutex_unlock(&reg_lock);
        return dv__native_fail(DV_ERROR_INVALID_ARGUMENT, 0,
                               "host host_unregister(%p): not registered%s",
                               ptr,
                               inside ? " (inside a registration, not its "
                                        "start)"
                                      : "");
    }
    reg_bytes -= regs[i].hi - regs[i].lo;
    memmove(&regs[i], &regs[i + 1], (reg_count - i - 1) * sizeof(*regs));
    reg_count--;
    dv__mutex_unlock(&reg_lock);
    return DV_OK;
}

dv_result_t dv_host_registrations(uint64_t *count, uint64_t *bytes) {
    lock();
    if (count) {
        *count = reg_count;
    }
    if (bytes) {
        *bytes = reg_bytes;
    }
    dv__mutex_unlock(&reg_lock);
    return dv__ok();
}
