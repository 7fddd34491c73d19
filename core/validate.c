/*
 * validate.c - the checks every public entry point starts with (handles,
 * ranges) and the message of a failed backend op. The bottom of the core:
 * it calls nothing else of it.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdio.h>

#include "core/internal.h"

/* ---- handles and validation ------------------------------------------ */

/* Why a device handle is not usable, for the message. */
static dv_result_t bad_device(dv_device_t *h, const char *fn) {
    if (!h) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT, "%s: device is NULL", fn);
    }
    if (dv__handle_get(dv__handle_of(h), DV__HK_VBAR)) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "%s: %p is a VBAR handle, not a device", fn, (void *)h);
    }
    if (dv__handle_get(dv__handle_of(h), DV__HK_GRAPH)) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "%s: %p is a graph handle, not a device", fn,
                        (void *)h);
    }
    return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                    "%s: device handle %p is not an open device (closed, or "
                    "never a device)",
                    fn, (void *)h);
}

dv_result_t dv__dev_get(dv_device_t *h, const char *fn, dv__dev_t **dev) {
    dv__dev_t *d = (dv__dev_t *)dv__handle_get(dv__handle_of(h), DV__HK_DEVICE);
    if (!d) {
        return bad_device(h, fn);
    }
    *dev = d;
    return DV_OK;
}

dv_result_t dv__vbar_get_fail(dv_device_t *dh, dv_vbar_t *vh, const char *fn) {
    dv__dev_t *dev = NULL;
    dv_result_t r = dv__dev_get(dh, fn, &dev);
    if (r != DV_OK) {
        return r;
    }
    if (!vh) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT, "%s: vbar is NULL", fn);
    }
    dv__vbar_t *v = (dv__vbar_t *)dv__handle_get(dv__handle_of(vh), DV__HK_VBAR);
    if (!v) {
        int graph = dv__handle_get(dv__handle_of(vh), DV__HK_GRAPH) != NULL;
        if (graph || dv__handle_get(dv__handle_of(vh), DV__HK_DEVICE)) {
            return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                            "%s: %p is a %s handle, not a VBAR", fn,
                            (void *)vh, graph ? "graph" : "device");
        }
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "%s: VBAR handle %p is not a live VBAR (destroyed, or "
                        "never a VBAR)",
                        fn, (void *)vh);
    }
    if (v->dev != dev) {
        return dv__fail(DV_ERROR_WRONG_DEVICE,
                        "%s: VBAR %p belongs to device %p (%s:%d), not %p "
                        "(%s:%d)",
                        fn, (void *)vh, (void *)dv__dev_handle(v->dev),
                        v->dev->hal.name, v->dev->ordinal, (void *)dh,
                        dev->hal.name, dev->ordinal);
    }
    return DV_ERROR_INVARIANT; /* unreachable: the fast check passes */
}

dv_result_t dv__vbar_get(dv_device_t *dh, dv_vbar_t *vh, const char *fn,
                         dv__dev_t **dev, dv__vbar_t **vbar) {
    return dv__vbar_fast(dh, vh, fn, dev, vbar);
}

dv_result_t dv__range(const dv__vbar_t *vbar, uint64_t offset, uint64_t size,
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
    const dv__dev_t *dev = vbar->dev;
    if (dev->page_shift) { /* the hot path: no 64-bit divisions */
        *first = offset >> dev->page_shift;
        *last = (offset + size - 1) >> dev->page_shift;
    } else {
        *first = offset / dev->page_size;
        *last = (offset + size - 1) / dev->page_size;
    }
    return DV_OK;
}

dv_result_t dv__hal_fail(dv__dev_t *dev, dv_result_t r, const char *what) {
    int64_t code = 0;
    char text[384] = "";
    if (dev->hal.last_native_error) {
        dev->hal.last_native_error(&code, text, sizeof(text));
    }
    if (code != 0) {
        return dv__fail(r, "%s failed on %s:%d: %s (native code %lld)", what,
                        dev->hal.name, dev->ordinal, text[0] ? text : "?",
                        (long long)code);
    }
    if (text[0]) {
        return dv__fail(r, "%s failed on %s:%d: %s", what, dev->hal.name,
                        dev->ordinal, text);
    }
    return dv__fail(r, "%s failed on %s:%d (the backend gave no reason)", what,
                    dev->hal.name, dev->ordinal);
}

