/*
 * io.c - handles, OS failures, fence sets and in-flight ranges of the host
 * I/O objects (contract in io.h).
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * One process-wide mutex guards every I/O object's `users` count and the
 * death of its handle. It is taken once per call on each object the call
 * uses (never per chunk), so it is not contended.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/io.h"

static dv__once_t io_once = DV__ONCE_INIT;
static dv__mutex_t io_lock;

static void io_init(void) { dv__mutex_init(&io_lock); }

static void lock(void) {
    dv__once(&io_once, io_init);
    dv__mutex_lock(&io_lock);
}

static void unlock(void) { dv__mutex_unlock(&io_lock); }

const char *dv__io_kind_name(uint32_t kind) {
    switch (kind) {
    case DV__HK_DEVICE:
        return "device";
    case DV__HK_VBAR:
        return "VBAR";
    case DV__HK_HOST_STREAM:
        return "host stream";
    case DV__HK_HOSTBUF:
        return "host buffer";
    case DV__HK_FILE:
        return "file";
    case DV__HK_READER:
        return "reader";
    case DV__HK_DEVBUF:
        return "device buffer";
    default:
        return "object";
    }
}

/* Why `oh` is not a live object of `kind`, for the message. */
static dv_result_t bad_handle(const void *oh, uint32_t kind, const char *fn) {
    const char *want = dv__io_kind_name(kind);
    if (!oh) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT, "%s: %s is NULL", fn, want);
    }
    for (uint32_t k = 1; k <= DV__HK_DEVBUF; k++) {
        if (k != kind &&
            dv__handle_get(dv__handle_of(oh), (dv__handle_kind_t)k)) {
            return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                            "%s: %p is a %s handle, not a %s", fn, oh,
                            dv__io_kind_name(k), want);
        }
    }
    return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                    "%s: %s handle %p is not a live %s (destroyed, or never "
                    "a %s)",
                    fn, want, oh, want, want);
}

dv_result_t dv__io_acquire(dv_device_t *dh, const void *oh,
                           dv__handle_kind_t kind, const char *fn,
                           dv__dev_t **dev, void **obj) {
    dv__dev_t *d = NULL;
    if (kind != DV__HK_FILE) {
        dv_result_t r = dv__dev_get(dh, fn, &d);
        if (r != DV_OK) {
            return r;
        }
    }
    lock();
    dv__ioobj_t *o = dv__handle_get(dv__handle_of(oh), kind);
    if (!o) {
        unlock();
        return bad_handle(oh, kind, fn);
    }
    if (d && o->dev != d) {
        dv__dev_t *other = o->dev;
        unlock();
        return dv__fail(DV_ERROR_WRONG_DEVICE,
                        "%s: %s %p belongs to %s:%d, not to %s:%d", fn,
                        dv__io_kind_name(kind), oh, other->hal.name,
                        other->ordinal, d->hal.name, d->ordinal);
    }
    o->users++;
    unlock();
    if (dev) {
        *dev = d;
    }
    *obj = o;
    return DV_OK;
}

void dv__io_release(void *obj) {
    dv__ioobj_t *o = obj;
    lock();
    o->users--;
    unlock();
}

void dv__io_hold(void *obj) {
    dv__ioobj_t *o = obj;
    lock();
    o->users++;
    unlock();
}

dv_result_t dv__io_retire(void *obj, const char *fn) {
    dv__ioobj_t *o = obj;
    lock();
    uint32_t others = o->users - 1;
    if (others) {
        unlock();
        return dv__fail(DV_ERROR_BUSY,
                        "%s: the %s is in use by %u call(s) on other threads "
                        "(a read in flight?); nothing changed",
                        fn, dv__io_kind_name(o->kind), others);
    }
    dv__handle_free(o->handle, (dv__handle_kind_t)o->kind);
    o->users = 0;
    unlock();
    return DV_OK;
}

dv_result_t dv__io_publish(void *obj, dv__handle_kind_t kind, dv__dev_t *dev,
                           const char *fn) {
    dv__ioobj_t *o = obj;
    o->kind = kind;
    o->dev = dev;
    o->users = 0;
    if (dev) {
        dv__mutex_lock(&dev->lock);
        dev->io_objects++;
        dv__mutex_unlock(&dev->lock);
    }
    o->handle = dv__handle_new(kind, o);
    if (!o->handle) {
        dv__io_unpublish(o);
        return dv__fail(DV_ERROR_OUT_OF_HOST_MEMORY, "%s: handle table full",
                        fn);
    }
    return DV_OK;
}

void dv__io_unpublish(void *obj) {
    dv__ioobj_t *o = obj;
    if (o->dev) {
        dv__mutex_lock(&o->dev->lock);
        o->dev->io_objects--;
        dv__mutex_unlock(&o->dev->lock);
    }
}

dv_result_t dv__io_os_fail(dv_result_t r, int code, const char *fn,
                           const char *what) {
    char text[256];
    dv__os_strerror(code, text, sizeof(text));
    if (dv__os_is_oom(code)) {
        r = DV_ERROR_OUT_OF_HOST_MEMORY;
    } else if (code == DV__OS_UNSUPPORTED) {
        r = DV_ERROR_NOT_SUPPORTED;
    }
    return dv__fail(r, "%s: %s: %s", fn, what, text);
}

const char *dv__io_msg_body(const char *msg) {
    const char *colon = strstr(msg, ": ");
    return strncmp(msg, "DV_", 3) == 0 && colon ? colon + 2 : msg;
}

/* ---- fence sets -------------------------------------------------------- */

static void fs_drop(dv__dev_t *dev, dv__fenceset_t *s, uint32_t i) {
    if (dev->hal.fence_destroy) {
        dev->hal.fence_destroy(dev->ctx, s->f[i]);
    }
    memmove(&s->f[i], &s->f[i + 1], (s->n - i - 1) * sizeof(s->f[0]));
    s->n--;
}

/* Wait for fence i and drop it. */
static dv_result_t fs_wait(dv__dev_t *dev, dv__fenceset_t *s, uint32_t i) {
    dv_result_t r = dev->hal.fence_query(dev->ctx, s->f[i]);
    if (r == DV_NOT_READY) {
        r = dev->hal.fence_wait(dev->ctx, s->f[i]);
    }
    if (r != DV_OK) {
        return dv__hal_fail(dev, r, "fence wait (host I/O copy)");
    }
    fs_drop(dev, s, i);
    return DV_OK;
}

dv_result_t dv__fenceset_add_locked(dv__dev_t *dev, dv__fenceset_t *s,
                                    dv_hal_fence_t f) {
    for (uint32_t i = 0; i < s->n;) {
        if (dev->hal.fence_query(dev->ctx, s->f[i]) == DV_OK) {
            fs_drop(dev, s, i);
        } else {
            i++;
        }
    }
    dv_result_t r = DV_OK;
    if (s->n == DV__FENCESET_MAX) {
        r = fs_wait(dev, s, 0);
        if (r != DV_OK) {
            fs_drop(dev, s, 0);
        }
    }
    s->f[s->n++] = f;
    return r;
}

dv_result_t dv__fenceset_drain_locked(dv__dev_t *dev, dv__fenceset_t *s) {
    while (s->n) {
        dv_result_t r = fs_wait(dev, s, 0);
        if (r != DV_OK) {
            return r;
        }
    }
    return DV_OK;
}

void dv__fenceset_forget_locked(dv__dev_t *dev, dv__fenceset_t *s) {
    while (s->n) {
        fs_drop(dev, s, 0);
    }
}

/* ---- in-flight ranges -------------------------------------------------- */

int dv__ranges_add(dv__ranges_t *rs, uint64_t lo, uint64_t hi, uint64_t *id) {
    if (rs->n == rs->cap) {
        uint32_t cap = rs->cap ? rs->cap * 2 : 8;
        dv__range_ent_t *p = realloc(rs->r, cap * sizeof(*p));
        if (!p) {
            return -1;
        }
        rs->r = p;
        rs->cap = cap;
    }
    *id = ++rs->next_id;
    rs->r[rs->n++] = (dv__range_ent_t){lo, hi, *id};
    return 0;
}

void dv__ranges_remove(dv__ranges_t *rs, uint64_t id) {
    for (uint32_t i = 0; i < rs->n; i++) {
        if (rs->r[i].id == id) {
            rs->r[i] = rs->r[--rs->n];
            return;
        }
    }
}

uint64_t dv__ranges_max_end(const dv__ranges_t *rs) {
    uint64_t m = 0;
    for (uint32_t i = 0; i < rs->n; i++) {
        if (rs->r[i].hi > m) {
            m = rs->r[i].hi;
        }
    }
    return m;
}

void dv__ranges_free(dv__ranges_t *rs) {
    free(rs->r);
    memset(rs, 0, sizeof(*rs));
}
