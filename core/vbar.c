/*
 * vbar.c - VBAR lifetime, the priority list, watermarks and introspection.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * The priority list is doubly linked, top = highest priority. A new VBAR
 * goes on top; prioritize moves one to the top, deprioritize to the bottom.
 */
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

static void list_unlink(dv__dev_t *dev, dv__vbar_t *v) {
    if (v->up) {
        v->up->down = v->down;
    } else {
        dev->top = v->down;
    }
    if (v->down) {
        v->down->up = v->up;
    } else {
        dev->bottom = v->up;
    }
    v->up = v->down = NULL;
}

static void list_push_top(dv__dev_t *dev, dv__vbar_t *v) {
    v->up = NULL;
    v->down = dev->top;
    if (dev->top) {
        dev->top->up = v;
    } else {
        dev->bottom = v;
    }
    dev->top = v;
}

static void list_push_bottom(dv__dev_t *dev, dv__vbar_t *v) {
    v->down = NULL;
    v->up = dev->bottom;
    if (dev->bottom) {
        dev->bottom->down = v;
    } else {
        dev->top = v;
    }
    dev->bottom = v;
}

static uint64_t pages_for(const dv__dev_t *dev, uint64_t bytes,
                          uint64_t count) {
    uint64_t p = bytes / dev->page_size + (bytes % dev->page_size != 0);
    return p < count ? p : count;
}

dv_result_t dv_vbar_create(dv_device_t *h, uint64_t size, dv_vbar_t **out) {
    dv__dev_t *dev = NULL;
    dv_result_t r = dv__dev_get(h, "dv_vbar_create", &dev);
    if (r != DV_OK) {
        return r;
    }
    if (!out) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT, "dv_vbar_create: out is NULL");
    }
    *out = NULL;
    uint64_t ps = dev->page_size;
    if (size == 0 || size > UINT64_MAX - ps) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "dv_vbar_create: size %llu is 0 or overflows",
                        (unsigned long long)size);
    }
    uint64_t count = size / ps + (size % ps != 0);
    if (count > SIZE_MAX / sizeof(dv__page_t)) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "dv_vbar_create: size %llu is too large",
                        (unsigned long long)size);
    }
    dv__vbar_t *v = calloc(1, sizeof(*v));
    dv__page_t *pages = calloc((size_t)count, sizeof(dv__page_t));
    if (!v || !pages) {
        free(v);
        free(pages);
        return dv__fail(DV_ERROR_OUT_OF_HOST_MEMORY,
                        "dv_vbar_create: page table of %llu pages",
                        (unsigned long long)count);
    }
    for (uint64_t i = 0; i < count; i++) {
        pages[i].stream = DV__NO_STREAM;
    }
    v->dev = dev;
    v->size = count * ps;
    v->page_count = count;
    v->watermark = count;
    v->pages = pages;
    v->lost_pass = DV__NO_PAGE;
    v->risen_from = DV__NO_PAGE;

    v->handle = dv__handle_new(DV__HK_VBAR, v);
    if (!v->handle) {
        free(pages);
        free(v);
        return dv__fail(DV_ERROR_OUT_OF_HOST_MEMORY,
                        "dv_vbar_create: handle table full");
    }

    dv__mutex_lock(&dev->lock);
    r = dev->hal.reserve(dev->ctx, v->size, &v->base);
    if (r != DV_OK) {
        if (r == DV_ERROR_OUT_OF_DEVICE_MEMORY || r == DV_ERROR_OUT_OF_HOST_MEMORY) {
            r = DV_ERROR_ADDRESS_SPACE;
        }
        dv__hal_fail(dev, r, "reserve");
        dv__mutex_unlock(&dev->lock);
        dv__handle_free(v->handle, DV__HK_VBAR);
        free(pages);
        free(v);
        return r;
    }
    list_push_top(dev, v);
    dev->vbar_count++;
    dv__mutex_unlock(&dev->lock);
    dv__log(DV_LOG_DEBUG, "vbar %p: %llu pages at 0x%llx", (void *)(uintptr_t)v->handle,
            (unsigned long long)count, (unsigned long long)v->base);
    *out = dv__vbar_handle(v);
    return dv__ok();
}

dv_result_t dv_vbar_destroy(dv_device_t *dh, dv_vbar_t *vh) {
    dv__dev_t *dev = NULL;
    dv__vbar_t *vbar = NULL;
    dv_result_t r = dv__vbar_get(dh, vh, "dv_vbar_destroy", &dev, &vbar);
    if (r != DV_OK) {
        return r;
    }
    dv__mutex_lock(&dev->lock);
    if (vbar->sched) {
        dv__mutex_unlock(&dev->lock);
        return dv__fail(DV_ERROR_BUSY,
                        "dv_vbar_destroy: the VBAR has a streaming schedule "
                        "(dv_schedule_destroy it first)");
    }
    for (uint64_t i = 0; i < vbar->page_count; i++) {
        if (vbar->pages[i].pins) {
            dv__mutex_unlock(&dev->lock);
            return dv__fail(DV_ERROR_BUSY,
                            "dv_vbar_destroy: page %llu is still pinned "
                            "(unpin first)",
                            (unsigned long long)i);
        }
    }
    /* Pages go back to the pool (bounded); a failure leaves the VBAR alive
     * with the remaining pages, so the call can be retried. */
    for (uint64_t i = vbar->page_count; i-- > 0;) {
        if (vbar->pages[i].resident) {
            r = dv__evict_page_locked(dev, vbar, i, 1, 0);
            if (r != DV_OK) {
                goto out;
            }
        }
    }
    r = dev->hal.unreserve(dev->ctx, vbar->base, vbar->size);
    if (r != DV_OK) {
        dv__hal_fail(dev, r, "unreserve");
        goto out;
    }
    list_unlink(dev, vbar);
    dev->vbar_count--;
    dv__handle_free(vbar->handle, DV__HK_VBAR);
    dv__pool_trim_locked(dev, UINT64_MAX, dev->pool_limit_pages);
    dv__mutex_unlock(&dev->lock);
    free(vbar->pages);
    free(vbar);
    return dv__ok();
out:
    dv__mutex_unlock(&dev->lock);
    return r;
}

dv_result_t dv_vbar_get_info(dv_device_t *dh, dv_vbar_t *vh,
                             dv_vbar_info_t *info) {
    dv__dev_t *dev = NULL;
    dv__vbar_t *vbar = NULL;
    dv_result_t r = dv__vbar_get(dh, vh, "dv_vbar_get_info", &dev, &vbar);
    if (r != DV_OK) {
        return r;
    }
    if (!info) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT, "dv_vbar_get_info: info is NULL");
    }
    dv__mutex_lock(&dev->lock);
    memset(info, 0, sizeof(*info));
    info->base = vbar->base;
    info->size = vbar->size;
    info->page_size = dev->page_size;
    info->page_count = vbar->page_count;
    info->resident_bytes = vbar->resident_pages * dev->page_size;
    info->watermark = vbar->watermark;
    info->watermark_limit = vbar->watermark_limit;
    uint32_t rank = 0;
    for (dv__vbar_t *v = dev->top; v && v != vbar; v = v->down) {
        rank++;
    }
    info->priority_rank = rank;
    dv__mutex_unlock(&dev->lock);
    return dv__ok();
}

dv_result_t dv_vbar_prioritize(dv_device_t *dh, dv_vbar_t *vh) {
    dv__dev_t *dev = NULL;
    dv__vbar_t *vbar = NULL;
    dv_result_t r = dv__vbar_get(dh, vh, "dv_vbar_prioritize", &dev, &vbar);
    if (r != DV_OK) {
        return r;
    }
    dv__mutex_lock(&dev->lock);
    list_unlink(dev, vbar);
    list_push_top(dev, vbar);
    vbar->watermark = vbar->page_count;
    dv__recovery_reset(vbar, 0);
    dv__mutex_unlock(&dev->lock);
    return dv__ok();
}

dv_result_t dv_vbar_deprioritize(dv_device_t *dh, dv_vbar_t *vh) {
    dv__dev_t *dev = NULL;
    dv__vbar_t *vbar = NULL;
    dv_result_t r = dv__vbar_get(dh, vh, "dv_vbar_deprioritize", &dev, &vbar);
    if (r != DV_OK) {
        return r;
    }
    dv__mutex_lock(&dev->lock);
    list_unlink(dev, vbar);
    list_push_bottom(dev, vbar);
    dv__mutex_unlock(&dev->lock);
    return dv__ok();
}

dv_result_t dv_vbar_set_watermark(dv_device_t *dh, dv_vbar_t *vh,
                                  uint64_t bytes) {
    dv__dev_t *dev = NULL;
    dv__vbar_t *vbar = NULL;
    dv_result_t r = dv__vbar_get(dh, vh, "dv_vbar_set_watermark", &dev, &vbar);
    if (r != DV_OK) {
        return r;
    }
    dv__mutex_lock(&dev->lock);
    vbar->watermark = pages_for(dev, bytes, vbar->page_count);
    dv__recovery_reset(vbar, 1);
    dv__mutex_unlock(&dev->lock);
    return dv__ok();
}

dv_result_t dv_vbar_set_watermark_limit(dv_device_t *dh, dv_vbar_t *vh,
                                        uint64_t bytes) {
    dv__dev_t *dev = NULL;
    dv__vbar_t *vbar = NULL;
    dv_result_t r = dv__vbar_get(dh, vh, "dv_vbar_set_watermark_limit", &dev, &vbar);
    if (r != DV_OK) {
        return r;
    }
    dv__mutex_lock(&dev->lock);
    vbar->watermark_limit = pages_for(dev, bytes, vbar->page_count);
    dv__mutex_unlock(&dev->lock);
    return dv__ok();
}

dv_result_t dv_device_reset_watermark_limits(dv_device_t *h) {
    dv__dev_t *dev = NULL;
    dv_result_t r = dv__dev_get(h, "dv_device_reset_watermark_limits", &dev);
    if (r != DV_OK) {
        return r;
    }
    dv__mutex_lock(&dev->lock);
    for (dv__vbar_t *v = dev->top; v; v = v->down) {
        v->watermark_limit = 0;
    }
    dv__mutex_unlock(&dev->lock);
    return dv__ok();
}

dv_result_t dv_vbar_evict(dv_device_t *dh, dv_vbar_t *vh, uint64_t bytes,
                          uint64_t *freed) {
    dv__dev_t *dev = NULL;
    dv__vbar_t *vbar = NULL;
    dv_result_t r = dv__vbar_get(dh, vh, "dv_vbar_evict", &dev, &vbar);
    if (r != DV_OK) {
        return r;
    }
    uint64_t done = 0;
    dv__mutex_lock(&dev->lock);
    for (uint64_t i = vbar->page_count; i-- > 0 && done < bytes;) {
        if (!dv__evictable(vbar, i) ||
            dv__page_blocked_locked(dev, &vbar->pages[i])) {
            continue; /* pinned, under the limit, or in a graph capture */
        }
        r = dv__evict_page_locked(dev, vbar, i, 1, 1);
        if (r != DV_OK) {
            break;
        }
        done += dev->page_size;
    }
    dv__pool_trim_locked(dev, UINT64_MAX, dev->pool_limit_pages);
    dv__mutex_unlock(&dev->lock);
    if (freed) {
        *freed = done;
    }
    return r == DV_OK ? dv__ok() : r;
}

dv_result_t dv_vbar_residency(dv_device_t *dh, dv_vbar_t *vh,
                              uint64_t first_page, uint64_t count,
                              uint8_t *flags) {
    dv__dev_t *dev = NULL;
    dv__vbar_t *vbar = NULL;
    dv_result_t r = dv__vbar_get(dh, vh, "dv_vbar_residency", &dev, &vbar);
    if (r != DV_OK) {
        return r;
    }
    if (!flags && count) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT, "dv_vbar_residency: flags is NULL");
    }
    if (first_page > vbar->page_count || count > vbar->page_count - first_page) {
        return dv__fail(DV_ERROR_OUT_OF_RANGE,
                        "dv_vbar_residency: pages [%llu, +%llu) outside %llu",
                        (unsigned long long)first_page,
                        (unsigned long long)count,
                        (unsigned long long)vbar->page_count);
    }
    dv__mutex_lock(&dev->lock);
    for (uint64_t i = 0; i < count; i++) {
        const dv__page_t *pg = &vbar->pages[first_page + i];
        flags[i] = (uint8_t)((pg->resident ? DV_PAGE_RESIDENT : 0) |
                             (pg->pins ? DV_PAGE_PINNED : 0));
    }
    dv__mutex_unlock(&dev->lock);
    return dv__ok();
}

dv_result_t dv_vbar_generations(dv_device_t *dh, dv_vbar_t *vh,
                                uint64_t offset, uint64_t size, uint64_t *gens,
                                uint64_t count) {
    dv__dev_t *dev = NULL;
    dv__vbar_t *vbar = NULL;
    dv_result_t r = dv__vbar_get(dh, vh, "dv_vbar_generations", &dev, &vbar);
    if (r != DV_OK) {
        return r;
    }
    uint64_t first, last;
    r = dv__range(vbar, offset, size, &first, &last, "dv_vbar_generations");
    if (r != DV_OK) {
        return r;
    }
    if (!gens || count != last - first + 1) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "dv_vbar_generations: gens NULL or count %llu != %llu "
                        "pages under the range",
                        (unsigned long long)count,
                        (unsigned long long)(last - first + 1));
    }
    dv__mutex_lock(&dev->lock);
    for (uint64_t i = first; i <= last; i++) {
        gens[i - first] = vbar->pages[i].resident ? vbar->pages[i].gen : 0;
    }
    dv__mutex_unlock(&dev->lock);
    return dv__ok();
}
