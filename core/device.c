/*
 * device.c - handles and argument validation shared by the core, opening
 * a device on a HAL, closing it, device queries. Choosing a backend by
 * name is the registry's (hal/registry.c), above the core.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "base/native.h"

/* ---- options and opening ---------------------------------------------- */

void dv_device_options_init(dv_device_options_t *opts) {
    if (!opts) {
        return;
    }
    memset(opts, 0, sizeof(*opts));
    opts->size = (uint32_t)sizeof(*opts);
    opts->pool_limit = UINT64_MAX;
}

/* The caller's options as this library's struct: the fields the caller's
 * size covers, defaults for the rest. A larger size (a newer header) is
 * accepted when every field this library does not know is zero. */
static dv_result_t read_options(const dv_device_options_t *in,
                                dv_device_options_t *out) {
    dv_device_options_init(out);
    if (!in) {
        return DV_OK;
    }
    size_t have = in->size;
    if (have < offsetof(dv_device_options_t, fence_interval)) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "dv_device_open: options.size is %u: initialise the "
                        "options with dv_device_options_init",
                        in->size);
    }
    if (have > sizeof(*out)) {
        const unsigned char *extra = (const unsigned char *)in + sizeof(*out);
        for (size_t k = 0; k < have - sizeof(*out); k++) {
            if (extra[k]) {
                return dv__fail(DV_ERROR_NOT_SUPPORTED,
                                "dv_device_open: the options set a field at "
                                "byte %zu, unknown to dynvram %d.%d (its "
                                "options end at byte %zu)",
                                sizeof(*out) + k, DV_VERSION_MAJOR,
                                DV_VERSION_MINOR, sizeof(*out));
            }
        }
        have = sizeof(*out);
    }
    memcpy(out, in, have);
    out->size = (uint32_t)sizeof(*out);
    return DV_OK;
}

/* Bytes of dv_hal_ops_t a backend of `version` fills. */
static size_t hal_ops_size(uint32_t version) {
    return version >= 2 ? sizeof(dv_hal_ops_t)
                        : offsetof(dv_hal_ops_t, stream_check);
}

static int hal_ops_valid(const dv_hal_ops_t *ops) {
    return ops && ops->version >= DV_HAL_VERSION_MIN &&
           ops->version <= DV_HAL_VERSION && ops->name && ops->probe &&
           ops->init && ops->fini && ops->get_caps && ops->mem_info &&
           ops->reserve && ops->unreserve && ops->create && ops->release &&
           ops->map && ops->unmap;
}

/* DYNVRAM_WATERMARK_RECOVERY: "0" or "off" turns the default off. */
static int recovery_env_default(void) {
    const char *e = dv__getenv("DYNVRAM_WATERMARK_RECOVERY");
    return !(e && (strcmp(e, "0") == 0 || strcmp(e, "off") == 0 ||
                   strcmp(e, "OFF") == 0));
}

/* Free what open_on built before the device was published. */
static void open_undo(dv__dev_t *dev, int inited, int locked) {
    if (locked) {
        dv__mutex_destroy(&dev->lock);
    }
    if (inited) {
        dev->hal.fini(dev->ctx);
    }
    free(dev);
}

static dv_result_t open_on(const dv_hal_ops_t *ops,
                           const dv_device_options_t *o, dv__dev_t **out) {
    if (!hal_ops_valid(ops)) {
        int count = 0;
        char why[256] = "";
        if (ops && ops->probe &&
            ops->probe(&count, why, sizeof(why)) == DV_ERROR_BACKEND_UNAVAILABLE) {
            /* E.g. the stand-in of a backend left out of this build. */
            return dv__fail(DV_ERROR_BACKEND_UNAVAILABLE,
                            "dv_device_open: backend %s is unavailable: %s",
                            ops->name ? ops->name : "?", why);
        }
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "dv_device_open: HAL ops are NULL, of version %u "
                        "(supported: %u to %u), or lack a required op",
                        ops ? ops->version : 0u, DV_HAL_VERSION_MIN,
                        DV_HAL_VERSION);
    }
    dv__dev_t *dev = calloc(1, sizeof(*dev));
    if (!dev) {
        return dv__fail(DV_ERROR_OUT_OF_HOST_MEMORY, "dv_device_open");
    }
    memcpy(&dev->hal, ops, hal_ops_size(ops->version));
    if (!ops->fence_record || !ops->fence_query || !ops->fence_wait) {
        /* Fences are all or nothing: unpin then frees pages at once. */
        dev->hal.fence_record = NULL;
    }
    dev->ordinal = o->ordinal;
    dv_hal_init_args_t args = {.ordinal = o->ordinal};
    if (ops->version >= 2) {
        args.size = (uint32_t)sizeof(args);
        args.options = o->backend_options ? o->backend_options : "";
    } else if (o->backend_options && o->backend_options[0]) {
        free(dev);
        return dv__fail(DV_ERROR_NOT_SUPPORTED,
                        "dv_device_open: backend %s (HAL version 1) takes no "
                        "backend_options",
                        ops->name);
    }
    dv_result_t r = ops->init(&args, &dev->ctx);
    if (r != DV_OK) {
        dv__hal_fail(dev, r, "init");
        open_undo(dev, 0, 0);
        return r;
    }
    r = ops->get_caps(dev->ctx, &dev->caps);
    if (r != DV_OK) {
        dv__hal_fail(dev, r, "get_caps");
        open_undo(dev, 1, 0);
        return r;
    }
    uint64_t gran = dev->caps.granularity ? dev->caps.granularity : 1;
    uint64_t ps = o->page_size ? o->page_size : DV_DEFAULT_PAGE_SIZE;
    if (ps > UINT64_MAX / 2) {
        open_undo(dev, 1, 0);
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "dv_device_open: page size %llu is too large",
                        (unsigned long long)ps);
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
    if (o->watermark_recovery > DV_RECOVERY_OFF) {
        open_undo(dev, 1, 0);
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "dv_device_open: watermark_recovery %u is not a "
                        "DV_RECOVERY_* value",
                        o->watermark_recovery);
    }
    dev->recovery = o->watermark_recovery == DV_RECOVERY_ON ||
                    (o->watermark_recovery == DV_RECOVERY_DEFAULT &&
                     recovery_env_default());
    if (dv__mutex_init(&dev->lock) != 0) {
        open_undo(dev, 1, 0);
        return dv__fail(DV_ERROR_OUT_OF_HOST_MEMORY, "dv_device_open: mutex");
    }
    /* The budget needs free memory from the backend, or a limit instead. */
    uint64_t free_b = 0, total = 0;
    r = ops->mem_info(dev->ctx, &free_b, &total);
    if (r == DV_ERROR_NOT_SUPPORTED && !dev->vram_limit) {
        open_undo(dev, 1, 1);
        return dv__fail(DV_ERROR_NOT_SUPPORTED,
                        "dv_device_open: backend %s cannot report free memory "
                        "on device %d; set the vram_limit option (Level Zero: "
                        "or run with ZES_ENABLE_SYSMAN=1)",
                        ops->name, o->ordinal);
    }
    if (r != DV_OK && r != DV_ERROR_NOT_SUPPORTED) {
        dv__hal_fail(dev, r, "mem_info");
        open_undo(dev, 1, 1);
        return r;
    }
    dev->handle = dv__handle_new(DV__HK_DEVICE, dev);
    if (!dev->handle) {
        open_undo(dev, 1, 1);
        return dv__fail(DV_ERROR_OUT_OF_HOST_MEMORY,
                        "dv_device_open: handle table full");
    }
    dv__log(DV_LOG_INFO,
            "opened %s:%d (%s), page %llu KiB, granularity %llu KiB, limit "
            "%llu MiB",
            ops->name, o->ordinal, dev->caps.name,
            (unsigned long long)(dev->page_size >> 10),
            (unsigned long long)(gran >> 10),
            (unsigned long long)(dev->vram_limit >> 20));
    *out = dev;
    return dv__ok();
}

dv_result_t dv_device_open_hal(const dv_hal_ops_t *ops,
                               const dv_device_options_t *opts,
                               dv_device_t **out) {
    if (!out) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "dv_device_open: out is NULL");
    }
    *out = NULL;
    dv_device_options_t o;
    dv_result_t r = read_options(opts, &o);
    if (r != DV_OK) {
        return r;
    }
    if (o.ordinal < 0) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "dv_device_open: ordinal %d is negative", o.ordinal);
    }
    dv__dev_t *dev = NULL;
    r = open_on(ops, &o, &dev);
    if (r == DV_OK) {
        *out = dv__dev_handle(dev);
    }
    return r;
}

dv_result_t dv_device_close(dv_device_t *h) {
    dv__dev_t *dev = NULL;
    dv_result_t r = dv__dev_get(h, "dv_device_close", &dev);
    if (r != DV_OK) {
        return r;
    }
    dv__mutex_lock(&dev->lock);
    if (dev->vbar_count || dev->io_objects || dev->graph_count) {
        uint32_t n = dev->vbar_count, io = dev->io_objects;
        uint32_t g = dev->graph_count;
        dv__mutex_unlock(&dev->lock);
        return dv__fail(DV_ERROR_BUSY,
                        "dv_device_close: %u VBAR(s), %u graph(s) and %u host "
                        "I/O object(s) (host buffers, readers, device buffers) "
                        "still exist; destroy them first",
                        n, g, io);
    }
    /* Dead from here on: a concurrent or later call with this handle gets
     * DV_ERROR_INVALID_ARGUMENT, never this memory. */
    dv__handle_free(dev->handle, DV__HK_DEVICE);
    dv__pool_trim_locked(dev, 0, 0);
    dv__streams_fini_locked(dev);
    dv__mutex_unlock(&dev->lock);
    dv__mutex_destroy(&dev->lock);
    dev->hal.fini(dev->ctx);
    free(dev->pool);
    free(dev->streams);
    free(dev);
    return dv__ok();
}

/* ---- queries ---------------------------------------------------------- */

dv_result_t dv_device_get_caps(dv_device_t *h, dv_device_caps_t *caps) {
    dv__dev_t *dev = NULL;
    dv_result_t r = dv__dev_get(h, "dv_device_get_caps", &dev);
    if (r != DV_OK) {
        return r;
    }
    if (!caps) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "dv_device_get_caps: caps is NULL");
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

dv_result_t dv_device_get_stats(dv_device_t *h, dv_device_stats_t *st) {
    dv__dev_t *dev = NULL;
    dv_result_t r = dv__dev_get(h, "dv_device_get_stats", &dev);
    if (r != DV_OK) {
        return r;
    }
    if (!st) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "dv_device_get_stats: st is NULL");
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
        st->graph_bytes = dev->graph_bytes;
        st->ring_bytes = dev->ring_bytes;
        st->used = dv__used_locked(dev);
        st->vbar_count = dev->vbar_count;
        st->devbuf_bytes = dev->devbuf_bytes;
    }
    dv__mutex_unlock(&dev->lock);
    return r == DV_OK ? dv__ok() : r;
}

dv_result_t dv_device_check(dv_device_t *h) {
    dv__dev_t *dev = NULL;
    dv_result_t r = dv__dev_get(h, "dv_device_check", &dev);
    if (r != DV_OK) {
        return r;
    }
    dv__mutex_lock(&dev->lock);
    r = dv__check_locked(dev);
    dv__mutex_unlock(&dev->lock);
    return r == DV_OK ? dv__ok() : r;
}

dv_result_t dv_device_trim_pool(dv_device_t *h) {
    dv__dev_t *dev = NULL;
    dv_result_t r = dv__dev_get(h, "dv_device_trim_pool", &dev);
    if (r != DV_OK) {
        return r;
    }
    dv__mutex_lock(&dev->lock);
    dv__pool_trim_locked(dev, 0, 0);
    dv__mutex_unlock(&dev->lock);
    return dv__ok();
}

dv_result_t dv_device_set_headroom(dv_device_t *h, uint64_t headroom) {
    dv__dev_t *dev = NULL;
    dv_result_t r = dv__dev_get(h, "dv_device_set_headroom", &dev);
    if (r != DV_OK) {
        return r;
    }
    if (headroom > (1ull << 60)) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "dv_device_set_headroom: %llu bytes is above 2^60",
                        (unsigned long long)headroom);
    }
    dv__mutex_lock(&dev->lock);
    dev->headroom = headroom;
    dv__mutex_unlock(&dev->lock);
    return dv__ok();
}

dv_result_t dv_device_get_headroom(dv_device_t *h, uint64_t *headroom) {
    dv__dev_t *dev = NULL;
    dv_result_t r = dv__dev_get(h, "dv_device_get_headroom", &dev);
    if (r != DV_OK) {
        return r;
    }
    if (!headroom) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "dv_device_get_headroom: headroom is NULL");
    }
    dv__mutex_lock(&dev->lock);
    *headroom = dev->headroom;
    dv__mutex_unlock(&dev->lock);
    return dv__ok();
}
