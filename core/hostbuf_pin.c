/*
 * hostbuf_pin.c - the pinned side of host buffers: the table of every
 * registration with the backend, explicit register / unregister, and
 * copies from a buffer to the device, whose fences the buffer keeps (state
 * in hostbuf.h, public contract in dynvram_io.h).
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Registrations, and the host_register calls behind them, happen under the
 * buffer's own lock, not the device lock: pinning a few gigabytes takes
 * the CUDA driver a second, and faults on other threads must not wait for
 * it (dynvram_hal.h allows these ops without the device lock).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hostbuf.h"

/* ---- the registration table -------------------------------------------- */

/* First registration whose end is above `off`. */
uint32_t dv__hb_reg_first_above(const dv__hostbuf_t *hb, uint64_t off) {
    uint32_t lo = 0, hi = hb->nregs;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (hb->regs[mid].off + hb->regs[mid].size <= off) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static int reg_room(dv__hostbuf_t *hb) {
    if (hb->nregs < hb->cap) {
        return 0;
    }
    uint32_t cap = hb->cap ? hb->cap * 2 : 8;
    dv__hb_reg_t *p = realloc(hb->regs, cap * sizeof(*p));
    if (!p) {
        return -1;
    }
    hb->regs = p;
    hb->cap = cap;
    return 0;
}

/* Register [off, off + size) with the backend and record it. The caller
 * checked bounds and overlap. */
dv_result_t dv__hb_reg_add(dv__dev_t *dev, dv__hostbuf_t *hb, uint64_t off,
                           uint64_t size, const char *fn) {
    if (!dev->hal.host_register) {
        return dv__fail(DV_ERROR_NOT_SUPPORTED,
                        "%s: backend %s cannot register host memory", fn,
                        dev->hal.name);
    }
    if (reg_room(hb) != 0) {
        return dv__fail(DV_ERROR_OUT_OF_HOST_MEMORY, "%s: registration table",
                        fn);
    }
    dv_result_t r = dev->hal.host_register(dev->ctx, hb->base + off, size);
    if (r != DV_OK) {
        char what[96];
        snprintf(what, sizeof(what), "%s: host_register of [%llu, +%llu)", fn,
                 (unsigned long long)off, (unsigned long long)size);
        return dv__hal_fail(dev, r, what);
    }
    uint32_t i = dv__hb_reg_first_above(hb, off);
    memmove(&hb->regs[i + 1], &hb->regs[i],
            (hb->nregs - i) * sizeof(dv__hb_reg_t));
    hb->regs[i] = (dv__hb_reg_t){off, size};
    hb->nregs++;
    hb->reg_bytes += size;
    return DV_OK;
}

/* Unregister registration i and forget it (kept when the backend refuses). */
dv_result_t dv__hb_reg_drop(dv__dev_t *dev, dv__hostbuf_t *hb, uint32_t i,
                            const char *fn) {
    dv__hb_reg_t g = hb->regs[i];
    dv_result_t r = dev->hal.host_unregister
                        ? dev->hal.host_unregister(dev->ctx, hb->base + g.off)
                        : DV_ERROR_NOT_SUPPORTED;
    if (r != DV_OK) {
        char what[96];
        snprintf(what, sizeof(what), "%s: host_unregister of [%llu, +%llu)", fn,
                 (unsigned long long)g.off, (unsigned long long)g.size);
        return dv__hal_fail(
            dev, r == DV_ERROR_NOT_SUPPORTED ? DV_ERROR_BACKEND : r, what);
    }
    memmove(&hb->regs[i], &hb->regs[i + 1],
            (hb->nregs - i - 1) * sizeof(dv__hb_reg_t));
    hb->nregs--;
    hb->reg_bytes -= g.size;
    return DV_OK;
}

/* The copies the GPU may still make from the buffer are done. */
dv_result_t dv__hb_copies_drain(dv__dev_t *dev, dv__hostbuf_t *hb) {
    dv__mutex_lock(&dev->lock);
    dv_result_t r = dv__fenceset_drain_locked(dev, &hb->copies);
    dv__mutex_unlock(&dev->lock);
    return r;
}

/* ---- registrations ------------------------------------------------------ */

dv_result_t dv__hb_in_bounds(const dv__hostbuf_t *hb, uint64_t off,
                             uint64_t size, const char *fn) {
    if (size == 0) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT, "%s: size is 0", fn);
    }
    if (off > hb->size || size > hb->size - off) {
        return dv__fail(DV_ERROR_OUT_OF_RANGE,
                        "%s: range [%llu, +%llu) is outside the host buffer "
                        "of %llu bytes",
                        fn, (unsigned long long)off, (unsigned long long)size,
                        (unsigned long long)hb->size);
    }
    return DV_OK;
}

dv_result_t dv_hostbuf_register(dv_device_t *h, dv_hostbuf_t *bh,
                                uint64_t offset, uint64_t size) {
    static const char fn[] = "dv_hostbuf_register";
    dv__dev_t *dev = NULL;
    dv__hostbuf_t *hb = NULL;
    dv_result_t r =
        dv__io_acquire(h, bh, DV__HK_HOSTBUF, fn, &dev, (void **)&hb);
    if (r != DV_OK) {
        return r;
    }
    dv__mutex_lock(&hb->lock);
    r = dv__hb_in_bounds(hb, offset, size, fn);
    uint32_t i = dv__hb_reg_first_above(hb, offset);
    if (r == DV_OK && i < hb->nregs && hb->regs[i].off < offset + size) {
        r = dv__fail(DV_ERROR_INVALID_ARGUMENT,
                     "%s: [%llu, +%llu) overlaps the registration [%llu, "
                     "+%llu)",
                     fn, (unsigned long long)offset, (unsigned long long)size,
                     (unsigned long long)hb->regs[i].off,
                     (unsigned long long)hb->regs[i].size);
    }
    if (r == DV_OK) {
        r = dv__hb_reg_add(dev, hb, offset, size, fn);
    }
    dv__mutex_unlock(&hb->lock);
    dv__io_release(hb);
    return r == DV_OK ? dv__ok() : r;
}

dv_result_t dv_hostbuf_unregister(dv_device_t *h, dv_hostbuf_t *bh,
                                  uint64_t offset) {
    static const char fn[] = "dv_hostbuf_unregister";
    dv__dev_t *dev = NULL;
    dv__hostbuf_t *hb = NULL;
    dv_result_t r =
        dv__io_acquire(h, bh, DV__HK_HOSTBUF, fn, &dev, (void **)&hb);
    if (r != DV_OK) {
        return r;
    }
    dv__mutex_lock(&hb->lock);
    uint32_t i = dv__hb_reg_first_above(hb, offset);
    if (i == hb->nregs || hb->regs[i].off != offset) {
        r = dv__fail(DV_ERROR_INVALID_ARGUMENT,
                     "%s: no registration starts at offset %llu", fn,
                     (unsigned long long)offset);
    } else {
        r = dv__hb_copies_drain(dev, hb);
    }
    if (r == DV_OK) {
        r = dv__hb_reg_drop(dev, hb, i, fn);
    }
    dv__mutex_unlock(&hb->lock);
    dv__io_release(hb);
    return r == DV_OK ? dv__ok() : r;
}

dv_result_t dv_hostbuf_registrations(dv_device_t *h, dv_hostbuf_t *bh,
                                     dv_hostbuf_range_t *out, uint32_t cap,
                                     uint32_t *count) {
    static const char fn[] = "dv_hostbuf_registrations";
    dv__dev_t *dev = NULL;
    dv__hostbuf_t *hb = NULL;
    dv_result_t r =
        dv__io_acquire(h, bh, DV__HK_HOSTBUF, fn, &dev, (void **)&hb);
    if (r != DV_OK) {
        return r;
    }
    if (!count || (cap && !out)) {
        dv__io_release(hb);
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "%s: count is NULL, or out is NULL with cap %u", fn,
                        cap);
    }
    dv__mutex_lock(&hb->lock);
    for (uint32_t i = 0; i < hb->nregs && i < cap; i++) {
        out[i] = (dv_hostbuf_range_t){hb->regs[i].off, hb->regs[i].size};
    }
    *count = hb->nregs;
    dv__mutex_unlock(&hb->lock);
    dv__io_release(hb);
    return dv__ok();
}

static dv_result_t copy_locked(dv__dev_t *dev, dv__hostbuf_t *hb,
                               const void *src, uint64_t size, uint64_t dst,
                               void *stream, const char *fn) {
    uint32_t slot;
    dv_result_t r = dv__stream_slot_locked(dev, stream, fn, &slot);
    int capturing = 0;
    if (r == DV_OK && stream && dev->hal.stream_is_capturing &&
        dev->hal.stream_is_capturing(dev->ctx, stream, &capturing) == DV_OK &&
        capturing) {
        r = dv__fail(DV_ERROR_NOT_SUPPORTED,
                     "%s: stream %p is being captured into a graph", fn,
                     stream);
    }
    if (r != DV_OK) {
        return r;
    }
    r = dev->hal.copy_h2d(dev->ctx, dst, src, size, stream);
    if (r != DV_OK) {
        return dv__hal_fail(dev, r, fn);
    }
    if (!(dev->caps.flags & DV_CAP_ASYNC_COPY)) {
        return DV_OK; /* done already */
    }
    dv_hal_fence_t f = NULL;
    if (dev->hal.fence_record &&
        dev->hal.fence_record(dev->ctx, stream, &f) == DV_OK) {
        return dv__fenceset_add_locked(dev, &hb->copies, f);
    }
    /* No fence: finish the copy now rather than lose track of it. */
    return dv__stream_sync_locked(dev, slot);
}

dv_result_t dv_hostbuf_copy_h2d(dv_device_t *h, dv_hostbuf_t *bh,
                                uint64_t offset, uint64_t size, uint64_t dst,
                                void *stream) {
    static const char fn[] = "dv_hostbuf_copy_h2d";
    dv__dev_t *dev = NULL;
    dv__hostbuf_t *hb = NULL;
    dv_result_t r =
        dv__io_acquire(h, bh, DV__HK_HOSTBUF, fn, &dev, (void **)&hb);
    if (r != DV_OK) {
        return r;
    }
    dv__mutex_lock(&hb->lock);
    r = dv__hb_in_bounds(hb, offset, size, fn);
    if (r == DV_OK && (!dst || dst > UINT64_MAX - size)) {
        r = dv__fail(DV_ERROR_INVALID_ARGUMENT,
                     "%s: destination 0x%llx is 0 or its end overflows", fn,
                     (unsigned long long)dst);
    }
    if (r == DV_OK && !dev->hal.copy_h2d) {
        r = dv__fail(DV_ERROR_NOT_SUPPORTED, "%s: backend %s has no copies", fn,
                     dev->hal.name);
    }
    if (r == DV_OK) {
        dv__mutex_lock(&dev->lock);
        r = copy_locked(dev, hb, hb->base + offset, size, dst, stream, fn);
        dv__mutex_unlock(&dev->lock);
    }
    dv__mutex_unlock(&hb->lock);
    dv__io_release(hb);
    return r == DV_OK ? dv__ok() : r;
}
