/*
 * hostbuf.c - growable host buffers at a fixed address, optionally pinned
 * part by part (public contract in dynvram_io.h; the registration table
 * and copies are in hostbuf_pin.c, the state in hostbuf.h).
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * A buffer reserves its maximum size once (dv__vm_reserve) and commits OS
 * pages as it grows, so its address never moves and a pointer into it
 * stays valid until the part it points to is truncated. Every registration
 * with the backend is tracked (the predecessor kept only the last one,
 * leaking the rest), which is what truncate and destroy work from.
 *
 * Two things keep memory alive under a truncate or a destroy:
 *  - reads in flight (dv__hostbuf_io_begin / _end): a truncate below one is
 *    refused, a destroy is refused by the handle's users count;
 *  - copies from the buffer (dv_hostbuf_copy_h2d) that the GPU may still be
 *    reading: their fences are kept and waited for first.
 * Truncate's rules for registrations are spelled out in dynvram_io.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hostbuf.h"

#define KNOWN_EXTEND (DV_HOSTBUF_REGISTER | DV_HOSTBUF_PREWARM)
#define PREWARM_THREADS 4u

/* ---- create, destroy ---------------------------------------------------- */

dv_result_t dv_hostbuf_create(dv_device_t *h, uint64_t max_size,
                              dv_hostbuf_t **out) {
    static const char fn[] = "dv_hostbuf_create";
    dv__dev_t *dev = NULL;
    dv_result_t r = dv__dev_get(h, fn, &dev);
    if (r != DV_OK) {
        return r;
    }
    if (!out) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT, "%s: out is NULL", fn);
    }
    *out = NULL;
    uint64_t page = dv__vm_page();
    if (max_size == 0 || max_size > UINT64_MAX - page ||
        max_size > (uint64_t)SIZE_MAX / 2) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "%s: max_size %llu is 0 or too large", fn,
                        (unsigned long long)max_size);
    }
    dv__hostbuf_t *hb = calloc(1, sizeof(*hb));
    if (!hb || dv__mutex_init(&hb->lock) != 0) {
        free(hb);
        return dv__fail(DV_ERROR_OUT_OF_HOST_MEMORY, "%s", fn);
    }
    hb->page = page;
    hb->max_size = dv__hb_up(hb, max_size);
    void *base = NULL;
    int e = dv__vm_reserve(hb->max_size, &base);
    if (e) {
        dv__mutex_destroy(&hb->lock);
        free(hb);
        return dv__io_os_fail(DV_ERROR_ADDRESS_SPACE, e, fn,
                              "reserving the address space");
    }
    hb->base = base;
    r = dv__io_publish(hb, DV__HK_HOSTBUF, dev, fn);
    if (r != DV_OK) {
        dv__vm_release(base, hb->max_size);
        dv__mutex_destroy(&hb->lock);
        free(hb);
        return r;
    }
    *out = (dv_hostbuf_t *)(uintptr_t)hb->io.handle;
    return dv__ok();
}

dv_result_t dv_hostbuf_destroy(dv_device_t *h, dv_hostbuf_t *bh) {
    static const char fn[] = "dv_hostbuf_destroy";
    dv__dev_t *dev = NULL;
    dv__hostbuf_t *hb = NULL;
    dv_result_t r =
        dv__io_acquire(h, bh, DV__HK_HOSTBUF, fn, &dev, (void **)&hb);
    if (r != DV_OK) {
        return r;
    }
    /* The copies first: a failed wait leaves the buffer as it was. */
    r = dv__hb_copies_drain(dev, hb);
    if (r == DV_OK) {
        r = dv__io_retire(hb, fn);
    }
    if (r != DV_OK) {
        dv__io_release(hb);
        return r;
    }
    /* Nobody else can reach the buffer now. Free it whatever fails: the
     * first failure is reported. A refused unregistration is tried once
     * more, then forgotten. */
    dv_result_t first = DV_OK;
    char why[1024] = "";
    dv__mutex_lock(&dev->lock);
    if (dv__fenceset_drain_locked(dev, &hb->copies) != DV_OK) {
        first = DV_ERROR_BACKEND;
        snprintf(why, sizeof(why), "%s", dv__io_msg_body(dv_last_error()));
        dv__fenceset_forget_locked(dev, &hb->copies);
    }
    dv__mutex_unlock(&dev->lock);
    while (hb->nregs) {
        uint32_t i = hb->nregs - 1;
        r = dv__hb_reg_drop(dev, hb, i, fn);
        if (r == DV_OK) {
            continue;
        }
        if (first == DV_OK) {
            first = r;
            snprintf(why, sizeof(why), "%s", dv__io_msg_body(dv_last_error()));
        }
        if (dv__hb_reg_drop(dev, hb, i, fn) != DV_OK) {
            hb->reg_bytes -= hb->regs[i].size;
            hb->nregs--;
        }
    }
    dv__vm_release(hb->base, hb->max_size);
    dv__io_unpublish(hb);
    dv__ranges_free(&hb->inflight);
    dv__mutex_destroy(&hb->lock);
    free(hb->regs);
    free(hb);
    return first == DV_OK ? dv__ok() : dv__fail(first, "%s", why);
}

/* ---- prewarm ------------------------------------------------------------ */

typedef struct warm_part {
    uint8_t *p;
    uint64_t n, page;
} warm_part_t;

/* Touch each page with an atomic add of 0: the page is faulted in for
 * writing and a concurrent write to it is never lost. */
static void warm(void *arg) {
    warm_part_t *w = arg;
    if (dv__vm_populate(w->p, w->n) == 0) {
        return;
    }
    for (uint64_t o = 0; o < w->n; o += w->page) {
        dv__atomic_fetch_add_int((volatile int *)(void *)(w->p + o), 0);
    }
}

/* [off, off + n) is committed and page aligned at its start. */
static void prewarm_range(dv__hostbuf_t *hb, uint64_t off, uint64_t n,
                          uint32_t threads) {
    uint64_t lo = off / hb->page * hb->page, hi = dv__hb_up(hb, off + n);
    uint64_t pages = (hi - lo) / hb->page;
    threads = threads ? threads : PREWARM_THREADS;
    if (threads > 64) {
        threads = 64;
    }
    if (pages < threads) {
        threads = pages ? (uint32_t)pages : 1;
    }
    warm_part_t parts[64];
    dv__thread_t tids[64];
    int started[64] = {0};
    uint64_t per = pages / threads, extra = pages % threads, at = lo;
    for (uint32_t t = 0; t < threads; t++) {
        uint64_t np = per + (t < extra);
        parts[t] = (warm_part_t){hb->base + at, np * hb->page, hb->page};
        at += np * hb->page;
        /* Thread 0 is the caller; a thread that cannot start is too. */
        started[t] = t > 0 && dv__thread_start(&tids[t], warm, &parts[t]) == 0;
    }
    for (uint32_t t = 0; t < threads; t++) {
        if (!started[t]) {
            warm(&parts[t]);
        }
    }
    for (uint32_t t = 1; t < threads; t++) {
        if (started[t]) {
            dv__thread_join(&tids[t]);
        }
    }
}

/* ---- extend, truncate --------------------------------------------------- */

dv_result_t dv_hostbuf_extend(dv_device_t *h, dv_hostbuf_t *bh, uint64_t bytes,
                              uint32_t flags, uint64_t *offset) {
    static const char fn[] = "dv_hostbuf_extend";
    dv__dev_t *dev = NULL;
    dv__hostbuf_t *hb = NULL;
    dv_result_t r =
        dv__io_acquire(h, bh, DV__HK_HOSTBUF, fn, &dev, (void **)&hb);
    if (r != DV_OK) {
        return r;
    }
    dv__mutex_lock(&hb->lock);
    uint64_t old = hb->size, oldc = hb->committed, newc = 0;
    if (bytes == 0 || (flags & ~KNOWN_EXTEND)) {
        r = dv__fail(DV_ERROR_INVALID_ARGUMENT,
                     "%s: bytes %llu is 0 or flags 0x%x unknown", fn,
                     (unsigned long long)bytes, flags);
        goto out;
    }
    if (bytes > hb->max_size - old) {
        r = dv__fail(DV_ERROR_OUT_OF_RANGE,
                     "%s: %llu + %llu bytes exceed max_size %llu", fn,
                     (unsigned long long)old, (unsigned long long)bytes,
                     (unsigned long long)hb->max_size);
        goto out;
    }
    newc = dv__hb_up(hb, old + bytes);
    if (newc > oldc) {
        int e = dv__vm_commit(hb->base + oldc, newc - oldc);
        if (e) {
            r = dv__io_os_fail(DV_ERROR_OUT_OF_HOST_MEMORY, e, fn, "commit");
            goto out;
        }
    }
    if ((flags & DV_HOSTBUF_REGISTER) && newc > oldc) {
        r = dv__hb_reg_add(dev, hb, oldc, newc - oldc, fn);
        if (r != DV_OK) {
            dv__vm_decommit(hb->base + oldc, newc - oldc);
            goto out;
        }
    }
    hb->size = old + bytes;
    hb->committed = newc > oldc ? newc : oldc;
    if (flags & DV_HOSTBUF_PREWARM) {
        prewarm_range(hb, old, bytes, 0);
    }
    if (offset) {
        *offset = old;
    }
    r = dv__ok();
out:
    dv__mutex_unlock(&hb->lock);
    dv__io_release(hb);
    return r;
}

/* Split registration i, which reaches past `keep`: register [off, keep)
 * again after unregistering it; on failure put the original back. */
static dv_result_t reg_split(dv__dev_t *dev, dv__hostbuf_t *hb, uint32_t i,
                             uint64_t keep, const char *fn) {
    dv__hb_reg_t g = hb->regs[i];
    dv_result_t r = dv__hb_reg_drop(dev, hb, i, fn);
    if (r != DV_OK) {
        return r;
    }
    r = dv__hb_reg_add(dev, hb, g.off, keep - g.off, fn);
    if (r == DV_OK) {
        return DV_OK;
    }
    char why[1024];
    snprintf(why, sizeof(why), "%s", dv_last_error());
    if (dv__hb_reg_add(dev, hb, g.off, g.size, fn) != DV_OK) {
        dv__log(DV_LOG_ERROR, "%s: registration [%llu, +%llu) lost: %s", fn,
                (unsigned long long)g.off, (unsigned long long)g.size,
                dv_last_error());
    }
    return dv__fail(r, "%s: could not split a registration: %s", fn, why);
}

/* Why this truncate cannot go ahead (a dv_result_t), or DV_OK. */
static dv_result_t truncate_check(dv__hostbuf_t *hb, uint64_t size,
                                  uint32_t flags, const char *fn) {
    if (flags & ~(uint32_t)DV_HOSTBUF_UNREGISTER) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT, "%s: flags 0x%x unknown", fn,
                        flags);
    }
    if (size > hb->size) {
        return dv__fail(DV_ERROR_OUT_OF_RANGE,
                        "%s: %llu is above the size %llu (extend grows)", fn,
                        (unsigned long long)size, (unsigned long long)hb->size);
    }
    uint64_t busy = dv__ranges_max_end(&hb->inflight);
    if (busy > size) {
        return dv__fail(DV_ERROR_BUSY,
                        "%s: a read in flight writes up to %llu, above %llu; "
                        "nothing changed",
                        fn, (unsigned long long)busy, (unsigned long long)size);
    }
    uint32_t j = dv__hb_reg_first_above(hb, size);
    int straddles = j < hb->nregs && hb->regs[j].off < size &&
                    hb->regs[j].off + hb->regs[j].size > dv__hb_up(hb, size);
    int cuts = hb->nregs && hb->regs[hb->nregs - 1].off >= size;
    if ((straddles || cuts) && !(flags & DV_HOSTBUF_UNREGISTER)) {
        return dv__fail(DV_ERROR_BUSY,
                        "%s: registrations reach past %llu; pass "
                        "DV_HOSTBUF_UNREGISTER or unregister them first; "
                        "nothing changed",
                        fn, (unsigned long long)size);
    }
    return DV_OK;
}

dv_result_t dv_hostbuf_truncate(dv_device_t *h, dv_hostbuf_t *bh, uint64_t size,
                                uint32_t flags) {
    static const char fn[] = "dv_hostbuf_truncate";
    dv__dev_t *dev = NULL;
    dv__hostbuf_t *hb = NULL;
    dv_result_t r =
        dv__io_acquire(h, bh, DV__HK_HOSTBUF, fn, &dev, (void **)&hb);
    if (r != DV_OK) {
        return r;
    }
    dv__mutex_lock(&hb->lock);
    r = truncate_check(hb, size, flags, fn);
    if (r == DV_OK) {
        r = dv__hb_copies_drain(dev, hb);
    }
    uint64_t keep = dv__hb_up(hb, size);
    /* The one registration that may straddle the new end: split first, it
     * is the only step that can be undone. */
    uint32_t j = dv__hb_reg_first_above(hb, size);
    if (r == DV_OK && j < hb->nregs && hb->regs[j].off < size &&
        hb->regs[j].off + hb->regs[j].size > keep) {
        r = reg_split(dev, hb, j, keep, fn);
    }
    while (r == DV_OK && hb->nregs && hb->regs[hb->nregs - 1].off >= size) {
        r = dv__hb_reg_drop(dev, hb, hb->nregs - 1, fn);
    }
    if (r == DV_OK && keep < hb->committed) {
        int e = dv__vm_decommit(hb->base + keep, hb->committed - keep);
        if (e) {
            /* The pages stay committed, which is harmless: say so. */
            dv__io_os_fail(DV_ERROR_IO, e, fn, "decommit");
            dv__log(DV_LOG_WARNING, "%s", dv_last_error());
        } else {
            hb->committed = keep;
        }
    }
    if (r == DV_OK) {
        hb->size = size;
        r = dv__ok();
    }
    dv__mutex_unlock(&hb->lock);
    dv__io_release(hb);
    return r;
}

/* ---- use ---------------------------------------------------------------- */

dv_result_t dv_hostbuf_prewarm(dv_device_t *h, dv_hostbuf_t *bh,
                               uint64_t offset, uint64_t size,
                               uint32_t threads) {
    static const char fn[] = "dv_hostbuf_prewarm";
    dv__dev_t *dev = NULL;
    dv__hostbuf_t *hb = NULL;
    dv_result_t r =
        dv__io_acquire(h, bh, DV__HK_HOSTBUF, fn, &dev, (void **)&hb);
    if (r != DV_OK) {
        return r;
    }
    dv__mutex_lock(&hb->lock);
    r = dv__hb_in_bounds(hb, offset, size, fn);
    if (r == DV_OK) {
        prewarm_range(hb, offset, size, threads);
    }
    dv__mutex_unlock(&hb->lock);
    dv__io_release(hb);
    return r == DV_OK ? dv__ok() : r;
}

dv_result_t dv_hostbuf_get_info(dv_device_t *h, dv_hostbuf_t *bh,
                                dv_hostbuf_info_t *info) {
    static const char fn[] = "dv_hostbuf_get_info";
    dv__dev_t *dev = NULL;
    dv__hostbuf_t *hb = NULL;
    dv_result_t r =
        dv__io_acquire(h, bh, DV__HK_HOSTBUF, fn, &dev, (void **)&hb);
    if (r != DV_OK) {
        return r;
    }
    if (!info) {
        dv__io_release(hb);
        return dv__fail(DV_ERROR_INVALID_ARGUMENT, "%s: info is NULL", fn);
    }
    dv__mutex_lock(&hb->lock);
    memset(info, 0, sizeof(*info));
    info->base = hb->base;
    info->size = hb->size;
    info->max_size = hb->max_size;
    info->committed = hb->committed;
    info->registered_bytes = hb->reg_bytes;
    info->registrations = hb->nregs;
    info->reads_in_flight = hb->inflight.n;
    dv__mutex_unlock(&hb->lock);
    dv__io_release(hb);
    return dv__ok();
}

/* Queue the copy and keep a fence that covers it (device lock held). */
/* ---- for the reader ----------------------------------------------------- */

dv_result_t dv__hostbuf_io_begin(dv__hostbuf_t *hb, uint64_t off, uint64_t size,
                                 const char *fn, uint8_t **ptr,
                                 uint64_t *ticket) {
    dv__mutex_lock(&hb->lock);
    dv_result_t r = dv__hb_in_bounds(hb, off, size, fn);
    if (r == DV_OK && dv__ranges_add(&hb->inflight, off, off + size, ticket)) {
        r = dv__fail(DV_ERROR_OUT_OF_HOST_MEMORY, "%s: in-flight table", fn);
    }
    if (r == DV_OK) {
        *ptr = hb->base + off;
    }
    dv__mutex_unlock(&hb->lock);
    return r;
}

void dv__hostbuf_io_end(dv__hostbuf_t *hb, uint64_t ticket) {
    dv__mutex_lock(&hb->lock);
    dv__ranges_remove(&hb->inflight, ticket);
    dv__mutex_unlock(&hb->lock);
}
