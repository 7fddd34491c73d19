/*
 * stream.c - the device's table of native streams, and the thin stream,
 * copy and host-memory wrappers over the backend.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Streams are the caller's native handles (a CUstream, a hipStream_t, ...),
 * not dynvram objects: a framework passes its own. Each device keeps a
 * table of the streams it has seen, for the fences of unpin (fence.c) and
 * to know which ones it created:
 *  - a stream not seen before is checked with the backend's stream_check
 *    once, before anything is recorded on it or passed to a copy, so a dead
 *    or junk stream is refused with DV_ERROR_INVALID_ARGUMENT where the
 *    backend can tell (the host backend and the simulated drivers always
 *    can; CUDA and HIP ask the driver);
 *  - dv_stream_destroy takes only a stream dv_stream_create made on this
 *    device and has not destroyed yet, so a double destroy or a foreign
 *    stream never reaches the driver.
 * A destroyed stream's slot is emptied (its unpins are finished first) and
 * reused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"

/* ---- the table ---------------------------------------------------------- */

static uint32_t find_live(const dv__dev_t *dev, void *stream) {
    for (uint32_t k = 0; k < dev->stream_count; k++) {
        if (dev->streams[k].live && dev->streams[k].stream == stream) {
            return k;
        }
    }
    return DV__NO_STREAM;
}

/* An empty slot for `stream` (not checked); DV__NO_STREAM on OOM. */
static uint32_t add_slot(dv__dev_t *dev, void *stream, int owned) {
    uint32_t k = 0;
    while (k < dev->stream_count && dev->streams[k].live) {
        k++;
    }
    if (k == dev->stream_count) {
        if (dev->stream_count == dev->stream_cap) {
            uint32_t cap = dev->stream_cap ? dev->stream_cap * 2 : 4;
            dv__stream_t *s = realloc(dev->streams, cap * sizeof(*s));
            if (!s) {
                return DV__NO_STREAM;
            }
            dev->streams = s;
            dev->stream_cap = cap;
        }
        dev->stream_count++;
    }
    dv__stream_t *s = &dev->streams[k];
    memset(s, 0, sizeof(*s));
    s->stream = stream;
    s->live = 1;
    s->owned = (uint8_t)owned;
    return k;
}

/* Refuse a stream the backend says is not a live stream of this device. */
static dv_result_t check_new(dv__dev_t *dev, void *stream, const char *fn) {
    if (!stream || !dev->hal.stream_check) {
        return DV_OK;
    }
    dv_result_t r = dev->hal.stream_check(dev->ctx, stream);
    if (r == DV_OK) {
        return DV_OK;
    }
    char what[160];
    snprintf(what, sizeof(what), "%s: stream %p is not a live stream of this "
             "device; stream_check", fn, stream);
    if (r != DV_ERROR_WRONG_DEVICE && r != DV_ERROR_INVALID_ARGUMENT) {
        r = DV_ERROR_INVALID_ARGUMENT;
    }
    return dv__hal_fail(dev, r, what);
}

dv_result_t dv__stream_slot_locked(dv__dev_t *dev, void *stream,
                                   const char *fn, uint32_t *slot) {
    uint32_t c = dev->last_stream;
    if (c < dev->stream_count && dev->streams[c].live &&
        dev->streams[c].stream == stream) {
        *slot = c;
        return DV_OK;
    }
    uint32_t k = find_live(dev, stream);
    if (k == DV__NO_STREAM) {
        dv_result_t r = check_new(dev, stream, fn);
        if (r != DV_OK) {
            return r;
        }
        k = add_slot(dev, stream, 0);
        if (k == DV__NO_STREAM) {
            return dv__fail(DV_ERROR_OUT_OF_HOST_MEMORY, "%s: stream table", fn);
        }
    }
    dev->last_stream = k;
    *slot = k;
    return DV_OK;
}

/* The stream is gone: no page may refer to its slot any more. Its unpins
 * were finished (synchronized) before. */
static void retire_slot(dv__dev_t *dev, uint32_t k) {
    for (dv__vbar_t *v = dev->top; v; v = v->down) {
        for (uint64_t i = 0; i < v->page_count; i++) {
            if (v->pages[i].stream == k) {
                v->pages[i].stream = DV__NO_STREAM;
            }
        }
    }
    dv__stream_drop_fences_locked(dev, k);
    dev->streams[k].live = 0;
    dev->streams[k].owned = 0;
}

/* ---- public wrappers ------------------------------------------------------ */

/* The backend lacks the op a wrapper needs. */
static dv_result_t no_op(const dv__dev_t *dev, const char *fn,
                         const char *what) {
    return dv__fail(DV_ERROR_NOT_SUPPORTED, "%s: backend %s has no %s", fn,
                    dev->hal.name, what);
}

/* The end of every wrapper: the backend's result, with its reason. Called
 * with the device lock held. */
static dv_result_t wrapper_end(dv__dev_t *dev, dv_result_t r, const char *fn) {
    return r == DV_OK ? DV_OK : dv__hal_fail(dev, r, fn);
}

dv_result_t dv_stream_create(dv_device_t *h, void **stream) {
    static const char fn[] = "dv_stream_create";
    dv__dev_t *dev = NULL;
    dv_result_t r = dv__dev_get(h, fn, &dev);
    if (r == DV_OK && !dev->hal.stream_create) {
        r = no_op(dev, fn, "streams");
    }
    if (r != DV_OK) {
        return r;
    }
    if (!stream) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT, "%s: stream is NULL", fn);
    }
    void *s = NULL;
    dv__mutex_lock(&dev->lock);
    r = wrapper_end(dev, dev->hal.stream_create(dev->ctx, &s), fn);
    if (r == DV_OK && add_slot(dev, s, 1) == DV__NO_STREAM) {
        dev->hal.stream_destroy(dev->ctx, s);
        r = dv__fail(DV_ERROR_OUT_OF_HOST_MEMORY, "%s: stream table", fn);
    }
    dv__mutex_unlock(&dev->lock);
    if (r != DV_OK) {
        return r;
    }
    *stream = s;
    return dv__ok();
}

dv_result_t dv_stream_destroy(dv_device_t *h, void *stream) {
    static const char fn[] = "dv_stream_destroy";
    dv__dev_t *dev = NULL;
    dv_result_t r = dv__dev_get(h, fn, &dev);
    if (r == DV_OK && !dev->hal.stream_destroy) {
        r = no_op(dev, fn, "streams");
    }
    if (r != DV_OK) {
        return r;
    }
    if (!stream) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "%s: the default (NULL) stream cannot be destroyed", fn);
    }
    dv__mutex_lock(&dev->lock);
    uint32_t k = find_live(dev, stream);
    if (k == DV__NO_STREAM || !dev->streams[k].owned) {
        dv__mutex_unlock(&dev->lock);
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "%s: stream %p was not made by dv_stream_create on "
                        "%s:%d, or is destroyed already",
                        fn, stream, dev->hal.name, dev->ordinal);
    }
    /* Pages unpinned on this stream may wait for a fence not recorded yet
     * (fences are batched): finish the stream's work now so none is ever
     * recorded on a dead stream. */
    r = dv__stream_sync_locked(dev, k);
    if (r == DV_OK) {
        r = wrapper_end(dev, dev->hal.stream_destroy(dev->ctx, stream), fn);
    }
    if (r == DV_OK) {
        retire_slot(dev, k);
    }
    dv__mutex_unlock(&dev->lock);
    return r == DV_OK ? dv__ok() : r;
}

dv_result_t dv_stream_synchronize(dv_device_t *h, void *stream) {
    static const char fn[] = "dv_stream_synchronize";
    dv__dev_t *dev = NULL;
    dv_result_t r = dv__dev_get(h, fn, &dev);
    if (r == DV_OK && !dev->hal.stream_synchronize) {
        r = no_op(dev, fn, "streams");
    }
    if (r != DV_OK) {
        return r;
    }
    dv__mutex_lock(&dev->lock);
    uint32_t k;
    r = dv__stream_slot_locked(dev, stream, fn, &k);
    if (r == DV_OK) {
        /* Every unpin handed out on it so far is finished afterwards. */
        r = dv__stream_sync_locked(dev, k);
    }
    dv__mutex_unlock(&dev->lock);
    return r == DV_OK ? dv__ok() : r;
}

/* The argument checks shared by both copy directions. */
static dv_result_t copy_args(const char *fn, const void *host, uint64_t devp,
                             uint64_t size) {
    if (!host || !devp || size == 0) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "%s: NULL pointer or size 0 (host %p, device 0x%llx, "
                        "size %llu)",
                        fn, host, (unsigned long long)devp,
                        (unsigned long long)size);
    }
    if (devp > UINT64_MAX - size || (uintptr_t)host > UINTPTR_MAX - size) {
        return dv__fail(DV_ERROR_OUT_OF_RANGE,
                        "%s: %llu bytes overflow the address space", fn,
                        (unsigned long long)size);
    }
    return DV_OK;
}

dv_result_t dv_copy_h2d(dv_device_t *h, uint64_t dst, const void *src,
                        uint64_t size, void *stream) {
    static const char fn[] = "dv_copy_h2d";
    dv__dev_t *dev = NULL;
    dv_result_t r = dv__dev_get(h, fn, &dev);
    if (r == DV_OK && !dev->hal.copy_h2d) {
        r = no_op(dev, fn, "copies");
    }
    if (r == DV_OK) {
        r = copy_args(fn, src, dst, size);
    }
    if (r != DV_OK) {
        return r;
    }
    dv__mutex_lock(&dev->lock);
    uint32_t k;
    r = dv__stream_slot_locked(dev, stream, fn, &k);
    if (r == DV_OK) {
        r = wrapper_end(dev, dev->hal.copy_h2d(dev->ctx, dst, src, size, stream),
                        fn);
    }
    dv__mutex_unlock(&dev->lock);
    return r == DV_OK ? dv__ok() : r;
}

dv_result_t dv_copy_d2h(dv_device_t *h, void *dst, uint64_t src,
                        uint64_t size, void *stream) {
    static const char fn[] = "dv_copy_d2h";
    dv__dev_t *dev = NULL;
    dv_result_t r = dv__dev_get(h, fn, &dev);
    if (r == DV_OK && !dev->hal.copy_d2h) {
        r = no_op(dev, fn, "copies");
    }
    if (r == DV_OK) {
        r = copy_args(fn, dst, src, size);
    }
    if (r != DV_OK) {
        return r;
    }
    dv__mutex_lock(&dev->lock);
    uint32_t k;
    r = dv__stream_slot_locked(dev, stream, fn, &k);
    if (r == DV_OK) {
        r = wrapper_end(dev, dev->hal.copy_d2h(dev->ctx, dst, src, size, stream),
                        fn);
    }
    dv__mutex_unlock(&dev->lock);
    return r == DV_OK ? dv__ok() : r;
}

dv_result_t dv_host_register(dv_device_t *h, void *ptr, uint64_t size) {
    static const char fn[] = "dv_host_register";
    dv__dev_t *dev = NULL;
    dv_result_t r = dv__dev_get(h, fn, &dev);
    if (r == DV_OK && !dev->hal.host_register) {
        r = no_op(dev, fn, "host registration");
    }
    if (r != DV_OK) {
        return r;
    }
    if (!ptr || size == 0 || (uintptr_t)ptr > UINTPTR_MAX - size) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "%s: NULL pointer, size 0 or a range that overflows",
                        fn);
    }
    dv__mutex_lock(&dev->lock);
    r = wrapper_end(dev, dev->hal.host_register(dev->ctx, ptr, size), fn);
    dv__mutex_unlock(&dev->lock);
    return r == DV_OK ? dv__ok() : r;
}

dv_result_t dv_host_unregister(dv_device_t *h, void *ptr) {
    static const char fn[] = "dv_host_unregister";
    dv__dev_t *dev = NULL;
    dv_result_t r = dv__dev_get(h, fn, &dev);
    if (r == DV_OK && !dev->hal.host_unregister) {
        r = no_op(dev, fn, "host registration");
    }
    if (r != DV_OK) {
        return r;
    }
    if (!ptr) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT, "%s: NULL pointer", fn);
    }
    dv__mutex_lock(&dev->lock);
    r = wrapper_end(dev, dev->hal.host_unregister(dev->ctx, ptr), fn);
    dv__mutex_unlock(&dev->lock);
    return r == DV_OK ? dv__ok() : r;
}
