/*
 * framework.c - allocations made outside dynvram (activations, scratch)
 * share the budget and take memory from weights before they would fail.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Order of reclaim: the pool first (it holds no data), then weight pages in
 * eviction order (lowest priority VBAR first, pages top-down, never pinned,
 * never below a watermark limit). Reclaimed memory is released to the
 * backend, since the framework allocates it from there.
 */
#include "core/internal.h"

/* Release pool handles, then evict pages in eviction order (released to
 * the backend, not pooled), until at least `need` bytes went back. Graph
 * pages (graph_mem.c) make room through here too. */
dv_result_t dv__reclaim_locked(dv__dev_t *dev, uint64_t need,
                               uint64_t *freed) {
    uint64_t ps = dev->page_size;
    uint64_t pages = need / ps + (need % ps != 0);
    uint64_t from_pool = dev->pool_count < pages ? dev->pool_count : pages;
    dv__pool_trim_locked(dev, UINT64_MAX, dev->pool_count - from_pool);
    uint64_t evicted = 0;
    dv_result_t r = dv__evict_victims_locked(dev, NULL, 0, pages - from_pool,
                                             0, &evicted);
    *freed = (from_pool + evicted) * ps;
    return r;
}

dv_result_t dv_framework_reserve(dv_device_t *h, uint64_t size) {
    dv__dev_t *dev = NULL;
    dv_result_t r = dv__dev_get(h, "dv_framework_reserve", &dev);
    if (r != DV_OK) {
        return r;
    }
    dv__mutex_lock(&dev->lock);
    uint64_t budget = 0;
    r = dv__budget_locked(dev, 1, &budget);
    if (r != DV_OK) {
        goto out;
    }
    uint64_t used = dv__used_locked(dev);
    if (size > UINT64_MAX - used) {
        r = dv__fail(DV_ERROR_INVALID_ARGUMENT,
                     "dv_framework_reserve: size %llu overflows",
                     (unsigned long long)size);
        goto out;
    }
    if (used + size > budget) {
        uint64_t freed = 0;
        r = dv__reclaim_locked(dev, used + size - budget, &freed);
        if (r != DV_OK) {
            goto out;
        }
        if (dv__used_locked(dev) + size > budget) {
            r = dv__fail(DV_ERROR_OUT_OF_DEVICE_MEMORY,
                         "dv_framework_reserve: %llu bytes do not fit: budget "
                         "%llu, in use %llu after evicting %llu",
                         (unsigned long long)size, (unsigned long long)budget,
                         (unsigned long long)dv__used_locked(dev),
                         (unsigned long long)freed);
            goto out;
        }
    }
    dev->framework_bytes += size;
    dv__recovery_note_framework(dev);
    r = dv__ok();
out:
    dv__mutex_unlock(&dev->lock);
    return r;
}

dv_result_t dv_framework_release(dv_device_t *h, uint64_t size) {
    dv__dev_t *dev = NULL;
    dv_result_t r = dv__dev_get(h, "dv_framework_release", &dev);
    if (r != DV_OK) {
        return r;
    }
    dv__mutex_lock(&dev->lock);
    if (size > dev->framework_bytes) {
        uint64_t have = dev->framework_bytes;
        dv__mutex_unlock(&dev->lock);
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "dv_framework_release: %llu bytes released but only "
                        "%llu reserved",
                        (unsigned long long)size, (unsigned long long)have);
    }
    dev->framework_bytes -= size;
    dv__mutex_unlock(&dev->lock);
    return dv__ok();
}

dv_result_t dv_framework_evict(dv_device_t *h, uint64_t size,
                               uint64_t *freed) {
    dv__dev_t *dev = NULL;
    dv_result_t r = dv__dev_get(h, "dv_framework_evict", &dev);
    if (r != DV_OK) {
        return r;
    }
    uint64_t done = 0;
    dv__mutex_lock(&dev->lock);
    r = dv__reclaim_locked(dev, size ? size : 1, &done);
    dv__mutex_unlock(&dev->lock);
    if (freed) {
        *freed = done;
    }
    if (r != DV_OK) {
        return r;
    }
    if (done == 0) {
        return dv__fail(DV_ERROR_OUT_OF_DEVICE_MEMORY,
                        "dv_framework_evict: nothing evictable for %llu bytes",
                        (unsigned long long)size);
    }
    return dv__ok();
}
