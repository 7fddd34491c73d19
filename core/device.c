/*
 * device.c - opening and closing devices, backend selection, argument
 * validation shared by the core, and the thin stream/copy wrappers.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "hal/registry.h"

/* ---- validation ------------------------------------------------------- */

dv_result_t dv__check_device(const dv_device_t *dev, const char *fn) {
    if (!dev) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT, "%s: device is NULL", fn);
    }
    if (dev->magic != DV__DEVICE_MAGIC) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "%s: %p is not an open device", fn, (const void *)dev);
    }
    return DV_OK;
}

dv_result_t dv__check_vbar(const dv_device_t *dev, const dv_vbar_t *vbar,
                           const char *fn) {
    dv_result_t r = dv__check_device(dev, fn);
    if (r != DV_OK) {
        return r;
    }
    if (!vbar) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT, "%s: vbar is NULL", fn);
    }
    if (vbar->magic != DV__VBAR_MAGIC) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT, "%s: %p is not a live VBAR",
                        fn, (const void *)vbar);
    }
    if (vbar->dev != dev) {
        return dv__fail(DV_ERROR_WRONG_DEVICE,
                        "%s: VBAR %p belongs to device %p (%s:%d), not %p "
                        "(%s:%d)",
                        fn, (const void *)vbar, (const void *)vbar->dev,
                        vbar->dev->hal.name, vbar->dev->ordinal,
                        (const void *)dev, dev->hal.name, dev->ordinal);
    }
    return DV_OK;
}

dv_result_t dv__range(const dv_vbar_t *vbar, uint64_t offset, uint64_t size,
                      uint64_t *first, uint64_t *last, const char *fn) {
    if (size == 0) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT, "%s: size is 0", fn);
    }
    if (offset > vbar->size || size > vbar->size - offset) {
        return dv__fail(DV_ERROR_OUT_OF_RANGE,
                        "%s: range [%llu, +%llu) is outside the VBAR of %llu "
                        "bytes",
                        fn, (unsigned long long)offset,
                        (unsigned long long)size,
                        (unsigned long long)vbar->size);
    }
    const dv_device_t *dev = vbar->dev;
    if (dev->page_shift) { /* the hot path: no 64-bit divisions */
        *first = offset >> dev->page_shift;
        *last = (offset + size - 1) >> dev->page_shift;
    } else {
        *first = offset / dev->page_size;
        *last = (offset + size - 1) / dev->page_size;
    }
    return DV_OK;
}

dv_result_t dv__hal_fail(dv_device_t *dev, dv_result_t r, const char *what) {
    int64_t code = 0;
    char text[256] = "";
    if (dev->hal.last_native_error) {
        dev->hal.last_native_error(&code, text, sizeof(text));
    }
    if (code != 0 || text[0]) {
        return dv__fail(r, "%s failed on %s:%d (native %lld: %s)", what,
                        dev->hal.name, dev->ordinal, (long long)code, text);
    }
    return dv__fail(r, "%s failed on %s:%d", what, dev->hal.name, dev->ordinal);
}

/* ---- options and opening ---------------------------------------------- */

void dv_device_options_init(dv_device_options_t *opts) {
    if (!opts) {
        return;
    }
    memset(opts, 0, sizeof(*opts));
    opts->pool_limit = UINT64_MAX;
}

static int hal_ops_valid(const dv_hal_ops_t *ops) {
    return ops && ops->version == DV_HAL_VERSION && ops->name && ops->probe &&
           ops->init && ops->fini && ops->get_caps && ops->mem_info &&
           ops->reserve && ops->unreserve && ops->create && ops->release &&
           ops->map && ops->unmap;
}

static dv_result_t open_on(const dv_hal_ops_t *ops,
                           const dv_device_options_t *o, dv_device_t **out) {
    if (!hal_ops_valid(ops)) {
        if (ops && ops->init && ops->version == DV_HAL_VERSION) {
            /* A stand-in for a backend left out of the build. */
            dv_hal_init_args_t a = {0};
            void *ctx = NULL;
            return ops->init(&a, &ctx);
        }
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "dv_device_open: HAL ops are NULL, of another version "
                        "or lack a required op");
    }
    dv_device_t *dev = calloc(1, sizeof(*dev));
    if (!dev) {
        return dv__fail(DV_ERROR_OUT_OF_HOST_MEMORY, "dv_device_open");
    }
    dev->hal = *ops;
    if (!ops->fence_record || !ops->fence_query || !ops->fence_wait) {
        /* Fences are all or nothing: unpin then frees pages at once. */
        dev->hal.fence_record = NULL;
    }
    dev->ordinal = o->ordinal;
    dv_hal_init_args_t args = {.ordinal = o->ordinal,
                               .host_capacity = o->host_capacity};
    dv_result_t r = ops->init(&args, &dev->ctx);
    if (r != DV_OK) {
        if (!dv_last_error()[0]) {
            dv__hal_fail(dev, r, "init");
        }
        free(dev);
        return r;
    }
    r = ops->get_caps(dev->ctx, &dev->caps);
    if (r != DV_OK) {
        r = dv__hal_fail(dev, r, "get_caps");
        goto fail_init;
    }
    uint64_t gran = dev->caps.granularity ? dev->caps.granularity : 1;
    uint64_t ps = o->page_size ? o->page_size : DV_DEFAULT_PAGE_SIZE;
    if (ps > UINT64_MAX / 2) {
        r = dv__fail(DV_ERROR_INVALID_ARGUMENT, "dv_device_open: page size %llu "
                     "is too large", (unsigned long long)ps);
        goto fail_init;
    }
    dev->page_size = (ps + gran - 1) / gran * gran;
    if ((dev->page_size & (dev->page_size - 1)) == 0) {
        while ((1ull << dev->page_shift) < dev->page_size) {
            dev->page_shift++;
        }
    }
    dev->headroom = o->headroom;
    dev->vram_limit = o->vram_limit;
    dev->pool_limit_pages = o->pool_limit == UINT64_MAX
                                ? DV__DEFAULT_POOL_PAGES
                                : o->pool_limit / dev->page_size;
    dev->fence_interval =
        o->fence_interval ? o->fence_interval : DV__DEFAULT_FENCE_INTERVAL;
    if (dv__mutex_init(&dev->lock) != 0) {
        r = dv__fail(DV_ERROR_OUT_OF_HOST_MEMORY, "dv_device_open: mutex");
        goto fail_init;
    }
    uint64_t free_b = 0, total = 0;
    r = ops->mem_info(dev->ctx, &free_b, &total);
    if (r == DV_ERROR_NOT_SUPPORTED && !dev->vram_limit) {
        r = dv__fail(DV_ERROR_NOT_SUPPORTED,
                     "dv_device_open: backend %s cannot report free memory on "
                     "device %d; set the vram_limit option (Level Zero: or run "
                     "with ZES_ENABLE_SYSMAN=1)",
                     ops->name, o->ordinal);
        dv__mutex_destroy(&dev->lock);
        goto fail_init;
    }
    dev->magic = DV__DEVICE_MAGIC;
    dv__log(DV_LOG_INFO,
            "opened %s:%d (%s), page %llu KiB, granularity %llu KiB, limit "
            "%llu MiB",
            ops->name, o->ordinal, dev->caps.name,
            (unsigned long long)(dev->page_size >> 10),
            (unsigned long long)(gran >> 10),
            (unsigned long long)(dev->vram_limit >> 20));
    *out = dev;
    return dv__ok();

fail_init:
    ops->fini(dev->ctx);
    free(dev);
    return r;
}

static dv_result_t check_options(const dv_device_options_t *o,
                                 dv_device_t **out) {
    if (!out) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT, "dv_device_open: out is NULL");
    }
    *out = NULL;
    if (o->ordinal < 0) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "dv_device_open: ordinal %d is negative", o->ordinal);
    }
    return DV_OK;
}

dv_result_t dv_device_open_hal(const dv_hal_ops_t *ops,
                               const dv_device_options_t *opts,
                               dv_device_t **out) {
    dv_device_options_t defaults;
    dv_device_options_init(&defaults);
    const dv_device_options_t *o = opts ? opts : &defaults;
    dv_result_t r = check_options(o, out);
    return r != DV_OK ? r : open_on(ops, o, out);
}

dv_result_t dv_device_open(const dv_device_options_t *opts, dv_device_t **out) {
    dv_device_options_t defaults;
    dv_device_options_init(&defaults);
    const dv_device_options_t *o = opts ? opts : &defaults;
    dv_result_t r = check_options(o, out);
    if (r != DV_OK) {
        return r;
    }
    const char *name = o->backend;
    if (!name || !*name) {
        name = dv__getenv("DYNVRAM_BACKEND");
    }
    if (name && *name && strcmp(name, "auto") != 0) {
        const dv_hal_ops_t *ops = dv_hal_by_name(name);
        if (!ops) {
            return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                            "dv_device_open: unknown backend '%s' (known: "
                            "cuda, hip, levelzero, host)",
                            name);
        }
        return open_on(ops, o, out);
    }
    /* Automatic: the first backend whose probe finds a device. */
    char why[512] = "";
    for (int i = 0; i < dv__hal_count(); i++) {
        const dv_hal_ops_t *ops = dv__hal_at(i);
        int count = 0;
        char reason[128] = "";
        if (ops->probe(&count, reason, sizeof(reason)) != DV_OK ||
            count <= o->ordinal) {
            size_t n = strlen(why);
            snprintf(why + n, sizeof(why) - n, "%s%s: %s", n ? "; " : "",
                     ops->name, reason[0] ? reason : "no such device");
            continue;
        }
        r = open_on(ops, o, out);
        if (r == DV_OK) {
            return r;
        }
    }
    return dv__fail(DV_ERROR_BACKEND_UNAVAILABLE,
                    "dv_device_open: no backend could open device %d (%s)",
                    o->ordinal, why);
}

dv_result_t dv_device_close(dv_device_t *dev) {
    dv_result_t r = dv__check_device(dev, "dv_device_close");
    if (r != DV_OK) {
        return r;
    }
    dv__mutex_lock(&dev->lock);
    if (dev->vbar_count) {
        uint32_t n = dev->vbar_count;
        dv__mutex_unlock(&dev->lock);
        return dv__fail(DV_ERROR_BUSY,
                        "dv_device_close: %u VBAR(s) still exist; destroy them "
                        "first",
                        n);
    }
    dv__pool_trim_locked(dev, 0, 0);
    dv__streams_fini_locked(dev);
    dev->magic = DV__DEAD_MAGIC;
    dv__mutex_unlock(&dev->lock);
    dv__mutex_destroy(&dev->lock);
    dev->hal.fini(dev->ctx);
    free(dev->pool);
    free(dev->streams);
    free(dev);
    return dv__ok();
}

/* ---- queries ---------------------------------------------------------- */

dv_result_t dv_device_get_caps(dv_device_t *dev, dv_device_caps_t *caps) {
    dv_result_t r = dv__check_device(dev, "dv_device_get_caps");
    if (r != DV_OK) {
        return r;
    }
    if (!caps) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT, "dv_device_get_caps: caps is NULL");
    }
    memset(caps, 0, sizeof(*caps));
    snprintf(caps->backend, sizeof(caps->backend), "%s", dev->hal.name);
    snprintf(caps->name, sizeof(caps->name), "%s", dev->caps.name);
    caps->ordinal = dev->ordinal;
    caps->flags = dev->caps.flags;
    caps->granularity = dev->caps.granularity;
    caps->va_alignment = dev->caps.va_alignment;
    caps->page_size = dev->page_size;
    caps->total_memory = dev->caps.total_memory;
    return dv__ok();
}

dv_result_t dv_device_get_stats(dv_device_t *dev, dv_device_stats_t *st) {
    dv_result_t r = dv__check_device(dev, "dv_device_get_stats");
    if (r != DV_OK) {
        return r;
    }
    if (!st) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT, "dv_device_get_stats: st is NULL");
    }
    dv__mutex_lock(&dev->lock);
    uint64_t budget = 0;
    r = dv__budget_locked(dev, 1, &budget);
    if (r == DV_OK) {
        *st = dev->st;
        st->budget = budget;
        st->resident_bytes = dev->resident_bytes;
        st->pinned_bytes = dev->pinned_bytes;
        st->pool_bytes = dev->pool_count * dev->page_size;
        st->framework_bytes = dev->framework_bytes;
        st->used = dv__used_locked(dev);
        st->vbar_count = dev->vbar_count;
    }
    dv__mutex_unlock(&dev->lock);
    return r == DV_OK ? dv__ok() : r;
}

dv_result_t dv_device_check(dv_device_t *dev) {
    dv_result_t r = dv__check_device(dev, "dv_device_check");
    if (r != DV_OK) {
        return r;
    }
    dv__mutex_lock(&dev->lock);
    r = dv__check_locked(dev);
    dv__mutex_unlock(&dev->lock);
    return r == DV_OK ? dv__ok() : r;
}

dv_result_t dv_device_trim_pool(dv_device_t *dev) {
    dv_result_t r = dv__check_device(dev, "dv_device_trim_pool");
    if (r != DV_OK) {
        return r;
    }
    dv__mutex_lock(&dev->lock);
    dv__pool_trim_locked(dev, 0, 0);
    dv__mutex_unlock(&dev->lock);
    return dv__ok();
}

/* ---- backends --------------------------------------------------------- */

int dv_backend_count(void) { return dv__hal_count(); }

dv_result_t dv_backend_probe(int index, dv_backend_info_t *info) {
    const dv_hal_ops_t *ops = dv__hal_at(index);
    if (!ops || !info) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "dv_backend_probe: index %d out of [0, %d) or info "
                        "NULL",
                        index, dv__hal_count());
    }
    memset(info, 0, sizeof(*info));
    snprintf(info->name, sizeof(info->name), "%s", ops->name);
    int count = 0;
    dv_result_t r = ops->probe(&count, info->reason, sizeof(info->reason));
    info->available = r == DV_OK && count > 0;
    info->device_count = count;
    return dv__ok();
}

/* ---- streams, copies, host memory --------------------------------------- */

#define DV__FORWARD(fn, op, ...)                                               \
    dv_result_t r = dv__check_device(dev, fn);                                 \
    if (r != DV_OK) {                                                          \
        return r;                                                              \
    }                                                                          \
    if (!dev->hal.op) {                                                        \
        return dv__fail(DV_ERROR_NOT_SUPPORTED, "%s: backend %s has no " #op,  \
                        fn, dev->hal.name);                                    \
    }                                                                          \
    dv__mutex_lock(&dev->lock);                                                \
    r = dev->hal.op(dev->ctx, __VA_ARGS__);                                    \
    if (r != DV_OK) {                                                          \
        dv__hal_fail(dev, r, fn);                                              \
    }                                                                          \
    dv__mutex_unlock(&dev->lock);                                              \
    return r == DV_OK ? dv__ok() : r;

dv_result_t dv_stream_create(dv_device_t *dev, void **stream) {
    if (!stream) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT, "dv_stream_create: stream is NULL");
    }
    DV__FORWARD("dv_stream_create", stream_create, stream)
}

dv_result_t dv_stream_destroy(dv_device_t *dev, void *stream) {
    dv_result_t r = dv__check_device(dev, "dv_stream_destroy");
    if (r != DV_OK) {
        return r;
    }
    if (!dev->hal.stream_destroy) {
        return dv__fail(DV_ERROR_NOT_SUPPORTED,
                        "dv_stream_destroy: backend %s has no streams",
                        dev->hal.name);
    }
    dv__mutex_lock(&dev->lock);
    /* Pages unpinned on this stream may wait for a fence not recorded yet
     * (fences are batched): finish the stream's work now so none is ever
     * recorded on a dead stream. */
    for (uint32_t k = 0; k < dev->stream_count; k++) {
        if (dev->streams[k].stream == stream) {
            r = dv__stream_sync_locked(dev, k);
            break;
        }
    }
    if (r == DV_OK) {
        r = dev->hal.stream_destroy(dev->ctx, stream);
        if (r != DV_OK) {
            dv__hal_fail(dev, r, "dv_stream_destroy");
        }
    }
    dv__mutex_unlock(&dev->lock);
    return r == DV_OK ? dv__ok() : r;
}

dv_result_t dv_stream_synchronize(dv_device_t *dev, void *stream) {
    DV__FORWARD("dv_stream_synchronize", stream_synchronize, stream)
}

dv_result_t dv_copy_h2d(dv_device_t *dev, uint64_t dst, const void *src,
                        uint64_t size, void *stream) {
    if (!src || !dst || size == 0) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "dv_copy_h2d: NULL pointer or size 0");
    }
    DV__FORWARD("dv_copy_h2d", copy_h2d, dst, src, size, stream)
}

dv_result_t dv_copy_d2h(dv_device_t *dev, void *dst, uint64_t src,
                        uint64_t size, void *stream) {
    if (!src || !dst || size == 0) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "dv_copy_d2h: NULL pointer or size 0");
    }
    DV__FORWARD("dv_copy_d2h", copy_d2h, dst, src, size, stream)
}

dv_result_t dv_host_register(dv_device_t *dev, void *ptr, uint64_t size) {
    if (!ptr || size == 0) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "dv_host_register: NULL pointer or size 0");
    }
    DV__FORWARD("dv_host_register", host_register, ptr, size)
}

dv_result_t dv_host_unregister(dv_device_t *dev, void *ptr) {
    if (!ptr) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT, "dv_host_unregister: NULL pointer");
    }
    DV__FORWARD("dv_host_unregister", host_unregister, ptr)
}
