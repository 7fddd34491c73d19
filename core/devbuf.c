/*
 * devbuf.c - growable device buffers at a fixed address, in the device's
 * one budget (public contract in dynvram_io.h).
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * A device buffer reserves its maximum size once and maps whole pages of
 * the device's page size as it grows, so its physical handles are the same
 * kind as a VBAR page's: growth takes them from the pool first, and a
 * shrink gives them back to it. Its bytes are counted in `used` like
 * framework memory, and growth makes room the way framework allocations do
 * (the one eviction walk, dv__evict_victims_locked), except that evicted
 * pages go to the pool and straight into the buffer, saving a release and
 * a create each. All state is under the device lock.
 *
 * Reads into a buffer (dv_read_to_device with a destination inside it) mark
 * their range in flight and hold the buffer until they return, and keep a
 * fence covering their copies: a shrink below a read in flight is refused,
 * and a shrink or destroy waits for the copies before unmapping.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/io.h"

struct dv__devbuf {
    dv__ioobj_t io;
    uint64_t base;
    uint64_t max_size, max_pages;
    uint64_t size;  /* bytes usable */
    uint64_t pages; /* pages mapped: ceil(size / page_size) */
    dv_hal_mem_t *mem;
    dv__ranges_t inflight;
    dv__fenceset_t fences;
    struct dv__devbuf *next;
};

static void list_remove(dv__dev_t *dev, dv__devbuf_t *db) {
    for (dv__devbuf_t **p = &dev->devbufs; *p; p = &(*p)->next) {
        if (*p == db) {
            *p = db->next;
            dev->devbuf_count--;
            return;
        }
    }
}

/* Unmap page i into the pool (or release it). A failed unmap changes
 * nothing: the page stays mapped and counted. */
static dv_result_t page_drop(dv__dev_t *dev, dv__devbuf_t *db, uint64_t i) {
    uint64_t ps = dev->page_size;
    dv_result_t r = dev->hal.unmap(dev->ctx, db->base + i * ps, ps);
    if (r != DV_OK) {
        return dv__hal_fail(dev, r, "unmap (device buffer)");
    }
    if (!dv__pool_push_locked(dev, db->mem[i])) {
        dev->hal.release(dev->ctx, db->mem[i]);
    }
    db->pages--;
    dev->devbuf_bytes -= ps;
    return DV_OK;
}

/* Every page goes, whatever fails (destroy): a page whose unmap fails twice
 * has its handle released anyway, which frees it once unreserved. */
static dv_result_t pages_drop_all(dv__dev_t *dev, dv__devbuf_t *db) {
    dv_result_t first = DV_OK;
    while (db->pages) {
        uint64_t i = db->pages - 1;
        if (page_drop(dev, db, i) == DV_OK || page_drop(dev, db, i) == DV_OK) {
            continue;
        }
        first = first != DV_OK ? first : DV_ERROR_BACKEND;
        dv__log(DV_LOG_ERROR, "%s", dv_last_error());
        dev->hal.release(dev->ctx, db->mem[i]);
        db->pages--;
        dev->devbuf_bytes -= dev->page_size;
    }
    return first;
}

/* ---- create, destroy ---------------------------------------------------- */

dv_result_t dv_devbuf_create(dv_device_t *h, uint64_t max_size,
                             dv_devbuf_t **out) {
    static const char fn[] = "dv_devbuf_create";
    dv__dev_t *dev = NULL;
    dv_result_t r = dv__dev_get(h, fn, &dev);
    if (r != DV_OK) {
        return r;
    }
    if (!out) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT, "%s: out is NULL", fn);
    }
    *out = NULL;
    uint64_t ps = dev->page_size;
    uint64_t pages = max_size / ps + (max_size % ps != 0);
    if (max_size == 0 || max_size > UINT64_MAX - ps ||
        pages > SIZE_MAX / sizeof(dv_hal_mem_t)) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "%s: max_size %llu is 0 or too large", fn,
                        (unsigned long long)max_size);
    }
    dv__devbuf_t *db = calloc(1, sizeof(*db));
    dv_hal_mem_t *mem = calloc((size_t)pages, sizeof(*mem));
    if (!db || !mem) {
        free(db);
        free(mem);
        return dv__fail(DV_ERROR_OUT_OF_HOST_MEMORY, "%s: %llu pages", fn,
                        (unsigned long long)pages);
    }
    db->mem = mem;
    db->max_pages = pages;
    db->max_size = pages * ps;
    dv__mutex_lock(&dev->lock);
    r = dev->hal.reserve(dev->ctx, db->max_size, &db->base);
    if (r == DV_OK) {
        db->next = dev->devbufs;
        dev->devbufs = db;
        dev->devbuf_count++;
    } else {
        if (r == DV_ERROR_OUT_OF_DEVICE_MEMORY ||
            r == DV_ERROR_OUT_OF_HOST_MEMORY) {
            r = DV_ERROR_ADDRESS_SPACE;
        }
        dv__hal_fail(dev, r, "reserve (device buffer)");
    }
    dv__mutex_unlock(&dev->lock);
    if (r == DV_OK) {
        r = dv__io_publish(db, DV__HK_DEVBUF, dev, fn);
        if (r != DV_OK) {
            dv__mutex_lock(&dev->lock);
            list_remove(dev, db);
            dev->hal.unreserve(dev->ctx, db->base, db->max_size);
            dv__mutex_unlock(&dev->lock);
        }
    }
    if (r != DV_OK) {
        free(mem);
        free(db);
        return r;
    }
    *out = (dv_devbuf_t *)(uintptr_t)db->io.handle;
    return dv__ok();
}

dv_result_t dv_devbuf_destroy(dv_device_t *h, dv_devbuf_t *bh) {
    static const char fn[] = "dv_devbuf_destroy";
    dv__dev_t *dev = NULL;
    dv__devbuf_t *db = NULL;
    dv_result_t r =
        dv__io_acquire(h, bh, DV__HK_DEVBUF, fn, &dev, (void **)&db);
    if (r != DV_OK) {
        return r;
    }
    dv__mutex_lock(&dev->lock);
    /* Wait for the copies first: a failed wait leaves the buffer whole. */
    r = dv__fenceset_drain_locked(dev, &db->fences);
    dv__mutex_unlock(&dev->lock);
    if (r == DV_OK) {
        r = dv__io_retire(db, fn);
    }
    if (r != DV_OK) {
        dv__io_release(db);
        return r;
    }
    dv__mutex_lock(&dev->lock);
    /* Reads started between the drain and the retire left fences too. */
    if (dv__fenceset_drain_locked(dev, &db->fences) != DV_OK) {
        dv__log(DV_LOG_ERROR, "%s", dv_last_error());
        dv__fenceset_forget_locked(dev, &db->fences);
    }
    r = pages_drop_all(dev, db);
    dv_result_t u = dev->hal.unreserve(dev->ctx, db->base, db->max_size);
    if (u != DV_OK) {
        u = dev->hal.unreserve(dev->ctx, db->base,
                               db->max_size); /* once more */
    }
    if (u != DV_OK) {
        dv__hal_fail(dev, u, "unreserve (device buffer)");
        r = r != DV_OK ? r : u;
    }
    list_remove(dev, db);
    uint64_t budget = 0;
    if (dv__budget_locked(dev, 0, &budget) == DV_OK) {
        dv__pool_trim_locked(dev, budget, dev->pool_limit_pages);
    }
    dv__mutex_unlock(&dev->lock);
    dv__io_unpublish(db);
    dv__ranges_free(&db->inflight);
    free(db->mem);
    free(db);
    return r == DV_OK ? dv__ok() : r;
}

/* ---- resize ------------------------------------------------------------- */

/* Page i gets memory: the pool's, else a new handle; a backend OOM evicts
 * one more page into the pool and retries. */
static dv_result_t page_add(dv__dev_t *dev, dv__devbuf_t *db, uint64_t i) {
    uint64_t ps = dev->page_size;
    for (;;) {
        dv_hal_mem_t m;
        dv_result_t r = DV_OK;
        if (dev->pool_count) {
            m = dev->pool[--dev->pool_count];
        } else {
            r = dev->hal.create(dev->ctx, ps, &m);
        }
        if (r == DV_OK) {
            r = dev->hal.map(dev->ctx, db->base + i * ps, ps, m);
            if (r == DV_OK) {
                db->mem[i] = m;
                db->pages++;
                dev->devbuf_bytes += ps;
                return DV_OK;
            }
            if (!dv__pool_push_locked(dev, m)) {
                dev->hal.release(dev->ctx, m);
            }
        }
        if (r != DV_ERROR_OUT_OF_DEVICE_MEMORY) {
            return dv__hal_fail(dev, r, "create/map (device buffer)");
        }
        uint64_t got = 0;
        dev->st.oom_retries++;
        r = dv__evict_victims_locked(dev, NULL, 0, 1, 1, &got);
        if (r != DV_OK) {
            return r;
        }
        if (!got) {
            return dv__fail(DV_ERROR_OUT_OF_DEVICE_MEMORY,
                            "dv_devbuf_resize: the backend is out of memory "
                            "and nothing is left to evict");
        }
    }
}

static dv_result_t grow_locked(dv__dev_t *dev, dv__devbuf_t *db,
                               uint64_t want) {
    uint64_t ps = dev->page_size, need = want - db->pages, budget = 0;
    dv_result_t r = dv__budget_locked(dev, 1, &budget);
    if (r != DV_OK) {
        return r;
    }
    uint64_t used = dv__used_locked(dev);
    uint64_t room =
        (budget > used ? (budget - used) / ps : 0) + dev->pool_count;
    if (need > room) {
        r = dv__evict_victims_locked(dev, NULL, 0, need - room, 1, NULL);
        used = dv__used_locked(dev);
        room = (budget > used ? (budget - used) / ps : 0) + dev->pool_count;
        if (r == DV_OK && need > room) {
            r = dv__fail(DV_ERROR_OUT_OF_DEVICE_MEMORY,
                         "dv_devbuf_resize: %llu more pages do not fit: budget "
                         "%llu, in use %llu after evicting what could be",
                         (unsigned long long)need, (unsigned long long)budget,
                         (unsigned long long)used);
        }
        if (r != DV_OK) {
            return r;
        }
    }
    uint64_t from = db->pages;
    while (db->pages < want) {
        r = page_add(dev, db, db->pages);
        if (r != DV_OK) {
            /* Undo (a successful unmap leaves the message alone). */
            while (db->pages > from &&
                   page_drop(dev, db, db->pages - 1) == DV_OK) {
            }
            if (db->pages > from) {
                /* Could not undo: keep what is mapped, counted. */
                db->size = db->pages * ps;
            }
            return r;
        }
    }
    dv__recovery_note_framework(dev);
    dv__pool_trim_locked(dev, budget, dev->pool_limit_pages);
    return DV_OK;
}

static dv_result_t shrink_locked(dv__dev_t *dev, dv__devbuf_t *db,
                                 uint64_t size, uint64_t want) {
    uint64_t busy = dv__ranges_max_end(&db->inflight);
    if (busy > size) {
        return dv__fail(DV_ERROR_BUSY,
                        "dv_devbuf_resize: a read in flight writes up to %llu, "
                        "above %llu; nothing changed",
                        (unsigned long long)busy, (unsigned long long)size);
    }
    if (want < db->pages) {
        dv_result_t r = dv__fenceset_drain_locked(dev, &db->fences);
        if (r != DV_OK) {
            return r;
        }
    }
    while (db->pages > want) {
        dv_result_t r = page_drop(dev, db, db->pages - 1);
        if (r != DV_OK) {
            db->size = db->pages * dev->page_size; /* what is still mapped */
            return r;
        }
    }
    uint64_t budget = 0;
    if (dv__budget_locked(dev, 0, &budget) == DV_OK) {
        dv__pool_trim_locked(dev, budget, dev->pool_limit_pages);
    }
    return DV_OK;
}

dv_result_t dv_devbuf_resize(dv_device_t *h, dv_devbuf_t *bh, uint64_t size) {
    static const char fn[] = "dv_devbuf_resize";
    dv__dev_t *dev = NULL;
    dv__devbuf_t *db = NULL;
    dv_result_t r =
        dv__io_acquire(h, bh, DV__HK_DEVBUF, fn, &dev, (void **)&db);
    if (r != DV_OK) {
        return r;
    }
    if (size > db->max_size) {
        dv__io_release(db);
        return dv__fail(
            DV_ERROR_OUT_OF_RANGE, "%s: %llu bytes exceed max_size %llu", fn,
            (unsigned long long)size, (unsigned long long)db->max_size);
    }
    uint64_t ps = dev->page_size;
    uint64_t want = size / ps + (size % ps != 0);
    dv__mutex_lock(&dev->lock);
    r = want > db->pages ? grow_locked(dev, db, want)
                         : shrink_locked(dev, db, size, want);
    if (r == DV_OK) {
        db->size = size;
    }
    dv__mutex_unlock(&dev->lock);
    dv__io_release(db);
    return r == DV_OK ? dv__ok() : r;
}

dv_result_t dv_devbuf_get_info(dv_device_t *h, dv_devbuf_t *bh,
                               dv_devbuf_info_t *info) {
    static const char fn[] = "dv_devbuf_get_info";
    dv__dev_t *dev = NULL;
    dv__devbuf_t *db = NULL;
    dv_result_t r =
        dv__io_acquire(h, bh, DV__HK_DEVBUF, fn, &dev, (void **)&db);
    if (r != DV_OK) {
        return r;
    }
    if (!info) {
        dv__io_release(db);
        return dv__fail(DV_ERROR_INVALID_ARGUMENT, "%s: info is NULL", fn);
    }
    dv__mutex_lock(&dev->lock);
    info->base = db->base;
    info->size = db->size;
    info->mapped = db->pages * dev->page_size;
    info->max_size = db->max_size;
    dv__mutex_unlock(&dev->lock);
    dv__io_release(db);
    return dv__ok();
}

/* ---- destinations of reads ---------------------------------------------- */

static int overlaps(uint64_t a, uint64_t an, uint64_t b, uint64_t bn) {
    return a < b + bn && b < a + an;
}

/* A destination touching a VBAR must lie in it, every page pinned. */
static dv_result_t vbar_dst(const dv__vbar_t *v, uint64_t dst, uint64_t size,
                            const char *fn) {
    if (dst < v->base || dst + size > v->base + v->size) {
        return dv__fail(DV_ERROR_OUT_OF_RANGE,
                        "%s: destination [0x%llx, +%llu) straddles the VBAR "
                        "at 0x%llx of %llu bytes",
                        fn, (unsigned long long)dst, (unsigned long long)size,
                        (unsigned long long)v->base,
                        (unsigned long long)v->size);
    }
    uint64_t ps = v->dev->page_size;
    for (uint64_t i = (dst - v->base) / ps;
         i <= (dst + size - 1 - v->base) / ps; i++) {
        if (!v->pages[i].pins) {
            return dv__fail(DV_ERROR_NOT_PINNED,
                            "%s: page %llu of the destination VBAR is not "
                            "faulted and pinned (fault the range first)",
                            fn, (unsigned long long)i);
        }
    }
    return DV_OK;
}

dv_result_t dv__io_dst_begin_locked(dv__dev_t *dev, uint64_t dst, uint64_t size,
                                    const char *fn, dv__devbuf_t **out,
                                    uint64_t *ticket) {
    *out = NULL;
    if (!dst) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT, "%s: destination is 0", fn);
    }
    if (dst > UINT64_MAX - size) {
        return dv__fail(DV_ERROR_OUT_OF_RANGE,
                        "%s: destination 0x%llx + %llu overflows", fn,
                        (unsigned long long)dst, (unsigned long long)size);
    }
    for (const dv__vbar_t *v = dev->top; v; v = v->down) {
        if (overlaps(dst, size, v->base, v->size)) {
            return vbar_dst(v, dst, size, fn);
        }
    }
    for (dv__devbuf_t *db = dev->devbufs; db; db = db->next) {
        if (!overlaps(dst, size, db->base, db->max_size)) {
            continue;
        }
        if (dst < db->base || dst + size > db->base + db->size) {
            return dv__fail(
                DV_ERROR_OUT_OF_RANGE,
                "%s: destination [0x%llx, +%llu) is outside the "
                "device buffer's %llu usable bytes at 0x%llx",
                fn, (unsigned long long)dst, (unsigned long long)size,
                (unsigned long long)db->size, (unsigned long long)db->base);
        }
        uint64_t lo = dst - db->base;
        if (dv__ranges_add(&db->inflight, lo, lo + size, ticket) != 0) {
            return dv__fail(DV_ERROR_OUT_OF_HOST_MEMORY, "%s: in-flight table",
                            fn);
        }
        dv__io_hold(db);
        *out = db;
        return DV_OK;
    }
    return DV_OK; /* memory dynvram does not manage (a framework tensor) */
}

void dv__devbuf_io_end_locked(dv__dev_t *dev, dv__devbuf_t *db, uint64_t ticket,
                              dv_hal_fence_t pending) {
    dv__ranges_remove(&db->inflight, ticket);
    if (pending &&
        dv__fenceset_add_locked(dev, &db->fences, pending) != DV_OK) {
        dv__log(DV_LOG_ERROR, "%s", dv_last_error());
    }
    dv__io_release(db);
}

dv_result_t dv__devbuf_check_locked(dv__dev_t *dev) {
    uint64_t ps = dev->page_size, bytes = 0;
    uint32_t n = 0;
    for (const dv__devbuf_t *db = dev->devbufs; db; db = db->next) {
        if (++n > dev->devbuf_count) {
            return dv__fail(DV_ERROR_INVARIANT,
                            "device buffer list longer than %u (cycle?)",
                            dev->devbuf_count);
        }
        uint64_t want = db->size / ps + (db->size % ps != 0);
        if (db->pages != want || db->pages > db->max_pages) {
            return dv__fail(DV_ERROR_INVARIANT,
                            "device buffer at 0x%llx: %llu pages mapped for "
                            "%llu bytes (max %llu pages)",
                            (unsigned long long)db->base,
                            (unsigned long long)db->pages,
                            (unsigned long long)db->size,
                            (unsigned long long)db->max_pages);
        }
        bytes += db->pages * ps;
    }
    if (n != dev->devbuf_count || bytes != dev->devbuf_bytes) {
        return dv__fail(DV_ERROR_INVARIANT,
                        "device buffers: %u listed, %u recorded; %llu bytes "
                        "mapped, %llu recorded",
                        n, dev->devbuf_count, (unsigned long long)bytes,
                        (unsigned long long)dev->devbuf_bytes);
    }
    return DV_OK;
}
