/*
 * device.c - dynvram._native.Device: one opened dv_device_t.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Calls that may block (open, close, stats, copies, framework accounting)
 * release the GIL; `busy` counts them so close() cannot free the device
 * under another thread. The handle is closed by close() or on deallocation
 * (the VBAR objects hold a strong reference, so a device is never closed
 * under a live VBAR object).
 *
 * close() while the only VBARs left are closed ones whose views are still
 * alive (vbar.c) closes the object at once and the handle when the last of
 * those VBARs is destroyed, so `with Device(...)` blocks end cleanly even
 * when an array made from a view outlives them.
 *
 * Streams made by stream_create are remembered, so stream_destroy can
 * refuse a value that is not one of them (a junk int, a stream destroyed
 * already, another device's stream) without handing it to the library.
 * Every other call taking a stream accepts any native stream (torch's own,
 * for one) and leaves checking it to the library.
 */
#include "native.h"

#include <string.h>

static int dvpy_device_ready(dvpy_device *self) {
    if (!self->dev) {
        dvpy_raise_msg(DV_ERROR_INVALID_ARGUMENT, "device is closed");
        return -1;
    }
    return 0;
}

static int dvpy_opt_u64(PyObject *o, const char *what, uint64_t *out,
                        uint64_t dflt) {
    if (!o || o == Py_None) {
        *out = dflt;
        return 0;
    }
    return dvpy_u64(o, what, out);
}

static int dvpy_device_init(PyObject *op, PyObject *args, PyObject *kw) {
    dvpy_device *self = (dvpy_device *)op;
    static char *kwlist[] = {"backend",   "ordinal",       "vram_limit",
                             "headroom",  "page_size",     "host_capacity",
                             "pool_limit", "fence_interval",
                             "backend_options", "watermark_recovery", NULL};
    const char *backend = NULL, *backend_options = NULL;
    int ordinal = 0;
    PyObject *vram_limit = NULL, *headroom = NULL, *page_size = NULL;
    PyObject *host_capacity = NULL, *pool_limit = NULL, *fence = NULL;
    PyObject *recovery = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|ziOOOOOOzO", kwlist,
                                     &backend, &ordinal, &vram_limit,
                                     &headroom, &page_size, &host_capacity,
                                     &pool_limit, &fence, &backend_options,
                                     &recovery)) {
        return -1;
    }
    if (self->dev) {
        PyErr_SetString(PyExc_RuntimeError, "Device is already open");
        return -1;
    }
    dv_device_options_t o;
    dv_device_options_init(&o);
    uint64_t fence_interval = 0, capacity = 0;
    o.backend = backend;
    o.ordinal = ordinal;
    if (dvpy_opt_u64(vram_limit, "vram_limit", &o.vram_limit, 0) < 0 ||
        dvpy_opt_u64(headroom, "headroom", &o.headroom, 0) < 0 ||
        dvpy_opt_u64(page_size, "page_size", &o.page_size, 0) < 0 ||
        dvpy_opt_u64(host_capacity, "host_capacity", &capacity, 0) < 0 ||
        dvpy_opt_u64(pool_limit, "pool_limit", &o.pool_limit, o.pool_limit) < 0 ||
        dvpy_opt_u64(fence, "fence_interval", &fence_interval, 0) < 0) {
        return -1;
    }
    if (fence_interval > UINT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "fence_interval is too large");
        return -1;
    }
    o.fence_interval = (uint32_t)fence_interval;
    /* watermark_recovery: None = the default, else a bool. */
    if (recovery && recovery != Py_None) {
        int on = PyObject_IsTrue(recovery);
        if (on < 0) {
            return -1;
        }
        o.watermark_recovery = on ? DV_RECOVERY_ON : DV_RECOVERY_OFF;
    }
    /* host_capacity is shorthand for the host backend's capacity option. */
    char opts[512];
    if (capacity) {
        int n = snprintf(opts, sizeof(opts), "%s%scapacity=%llu",
                         backend_options ? backend_options : "",
                         backend_options && backend_options[0] ? "," : "",
                         (unsigned long long)capacity);
        if (n < 0 || (size_t)n >= sizeof(opts)) {
            PyErr_SetString(PyExc_ValueError, "backend_options is too long");
            return -1;
        }
        o.backend_options = opts;
    } else {
        o.backend_options = backend_options;
    }
    dv_device_t *dev = NULL;
    dv_result_t r;
    Py_BEGIN_ALLOW_THREADS
    r = dv_device_open(&o, &dev);
    Py_END_ALLOW_THREADS
    if (r != DV_OK) {
        dvpy_raise(r);
        return -1;
    }
    dv_device_caps_t caps;
    r = dv_device_get_caps(dev, &caps);
    if (r != DV_OK) {
        dvpy_raise(r);
        dv_device_close(dev);
        return -1;
    }
    self->dev = dev;
    self->ordinal = caps.ordinal;
    self->page_size = caps.page_size;
    return 0;
}

/* Close `dev` from a destructor: on failure (VBARs made through the C API
 * behind our back) leak it rather than free it under them, and warn. */
static void dvpy_device_close_quietly(dv_device_t *dev) {
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    dv_result_t r = dv_device_close(dev);
    if (r != DV_OK) {
        if (PyErr_WarnFormat(PyExc_ResourceWarning, 1,
                             "dynvram: device not closed: %s",
                             dv_last_error()) < 0) {
            PyErr_WriteUnraisable(NULL);
        }
    }
    dvpy_log_poll();
    PyErr_Restore(et, ev, tb);
}

void dvpy_device_finish_close(dvpy_device *d) {
    if (d->deferred && d->deferred_vbars == 0) {
        dv_device_t *dev = d->deferred;
        d->deferred = NULL;
        dvpy_device_close_quietly(dev);
    }
}

static void dvpy_device_dealloc(PyObject *op) {
    dvpy_device *self = (dvpy_device *)op;
    /* A deferred handle cannot be left here: each deferred VBAR object
     * holds a reference to this one. Close whichever handle remains. */
    dv_device_t *dev = self->dev ? self->dev : self->deferred;
    self->dev = NULL;
    self->deferred = NULL;
    if (dev) {
        dvpy_device_close_quietly(dev);
    }
    Py_CLEAR(self->streams);
    PyTypeObject *tp = Py_TYPE(op);
    freefunc tp_free = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    tp_free(op);
    Py_DECREF(tp);
}

static PyObject *dvpy_device_close(PyObject *op, PyObject *unused) {
    (void)unused;
    dvpy_device *self = (dvpy_device *)op;
    if (!self->dev) {
        Py_RETURN_NONE;
    }
    if (self->busy) {
        return dvpy_raise_msg(DV_ERROR_BUSY,
                              "device is in use by another thread");
    }
    /* Detach the handle before the GIL is released (see VBAR.close). */
    dv_device_t *dev = self->dev;
    self->dev = NULL;
    dv_result_t r;
    DVPY_CALL(self, dv_device_close(dev), r);
    if (r == DV_ERROR_BUSY && self->deferred_vbars > 0) {
        /* Busy only because of VBARs closed with live views: close the
         * object now, the handle after the last of them. */
        char msg[1024];
        snprintf(msg, sizeof(msg), "%s", dv_last_error());
        dv_device_stats_t st;
        if (dv_device_get_stats(dev, &st) == DV_OK &&
            st.vbar_count <= (uint32_t)self->deferred_vbars) {
            self->deferred = dev;
            Py_CLEAR(self->streams);
            Py_RETURN_NONE;
        }
        self->dev = dev;
        return dvpy_raise_msg(r, msg);
    }
    if (r != DV_OK) {
        self->dev = dev; /* nothing changed (VBARs still exist) */
        return dvpy_raise(r);
    }
    Py_CLEAR(self->streams); /* gone with the device */
    Py_RETURN_NONE;
}

static PyObject *dvpy_device_caps(PyObject *op, PyObject *unused) {
    (void)unused;
    dvpy_device *self = (dvpy_device *)op;
    if (dvpy_device_ready(self) < 0) {
        return NULL;
    }
    dv_device_caps_t c;
    dv_result_t r = dv_device_get_caps(self->dev, &c);
    if (r != DV_OK) {
        return dvpy_raise(r);
    }
    return Py_BuildValue(
        "{s:s,s:s,s:i,s:k,s:K,s:K,s:K,s:K,s:O,s:O,s:O,s:O}", "backend",
        c.backend, "name", c.name, "ordinal", c.ordinal, "flags",
        (unsigned long)c.flags, "granularity", (unsigned long long)c.granularity,
        "va_alignment", (unsigned long long)c.va_alignment, "page_size",
        (unsigned long long)c.page_size, "total_memory",
        (unsigned long long)c.total_memory, "fences",
        (c.flags & DV_CAP_FENCES) ? Py_True : Py_False, "async_copy",
        (c.flags & DV_CAP_ASYNC_COPY) ? Py_True : Py_False, "host_register",
        (c.flags & DV_CAP_HOST_REGISTER) ? Py_True : Py_False,
        "host_accessible",
        (c.flags & DV_CAP_HOST_ACCESSIBLE) ? Py_True : Py_False);
}

static PyObject *dvpy_device_stats(PyObject *op, PyObject *unused) {
    (void)unused;
    dvpy_device *self = (dvpy_device *)op;
    if (dvpy_device_ready(self) < 0) {
        return NULL;
    }
    dv_device_stats_t s;
    dv_result_t r;
    DVPY_CALL(self, dv_device_get_stats(self->dev, &s), r);
    if (r != DV_OK) {
        return dvpy_raise(r);
    }
#define U(x) (unsigned long long)(x)
    return Py_BuildValue(
        "{s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,"
        "s:K,s:K,s:K,s:K}",
        "budget", U(s.budget), "used", U(s.used), "resident_bytes",
        U(s.resident_bytes), "pinned_bytes", U(s.pinned_bytes), "pool_bytes",
        U(s.pool_bytes), "framework_bytes", U(s.framework_bytes),
        "faults_hit", U(s.faults_hit), "faults_populated",
        U(s.faults_populated), "faults_offloaded", U(s.faults_offloaded),
        "pages_populated", U(s.pages_populated), "pool_reuses",
        U(s.pool_reuses), "evictions", U(s.evictions), "evicted_bytes",
        U(s.evicted_bytes), "fence_waits", U(s.fence_waits), "oom_retries",
        U(s.oom_retries), "vbar_count", U(s.vbar_count), "watermark_rises",
        U(s.watermark_rises), "devbuf_bytes", U(s.devbuf_bytes), "graph_bytes",
        U(s.graph_bytes), "ring_bytes", U(s.ring_bytes));
#undef U
}

/* A no-argument call returning None: check, trim_pool, ... */
static PyObject *dvpy_device_simple(dvpy_device *self,
                                    dv_result_t (*fn)(dv_device_t *)) {
    if (dvpy_device_ready(self) < 0) {
        return NULL;
    }
    dv_result_t r;
    DVPY_CALL(self, fn(self->dev), r);
    if (r != DV_OK) {
        return dvpy_raise(r);
    }
    Py_RETURN_NONE;
}

static PyObject *dvpy_device_check(PyObject *op, PyObject *unused) {
    (void)unused;
    return dvpy_device_simple((dvpy_device *)op, dv_device_check);
}

static PyObject *dvpy_device_trim_pool(PyObject *op, PyObject *unused) {
    (void)unused;
    return dvpy_device_simple((dvpy_device *)op, dv_device_trim_pool);
}

static PyObject *dvpy_device_reset_limits(PyObject *op, PyObject *unused) {
    (void)unused;
    return dvpy_device_simple((dvpy_device *)op,
                              dv_device_reset_watermark_limits);
}

static PyObject *dvpy_device_set_headroom(PyObject *op, PyObject *arg) {
    dvpy_device *self = (dvpy_device *)op;
    uint64_t n;
    if (dvpy_device_ready(self) < 0 || dvpy_u64(arg, "headroom", &n) < 0) {
        return NULL;
    }
    dv_result_t r = dv_device_set_headroom(self->dev, n);
    if (r != DV_OK) {
        return dvpy_raise(r);
    }
    Py_RETURN_NONE;
}

static PyObject *dvpy_device_get_headroom(PyObject *op, PyObject *unused) {
    (void)unused;
    dvpy_device *self = (dvpy_device *)op;
    uint64_t n = 0;
    if (dvpy_device_ready(self) < 0) {
        return NULL;
    }
    dv_result_t r = dv_device_get_headroom(self->dev, &n);
    if (r != DV_OK) {
        return dvpy_raise(r);
    }
    return PyLong_FromUnsignedLongLong(n);
}

static PyObject *dvpy_device_fw(PyObject *op, PyObject *arg, int which) {
    dvpy_device *self = (dvpy_device *)op;
    uint64_t n, freed = 0;
    if (dvpy_device_ready(self) < 0 || dvpy_u64(arg, "size", &n) < 0) {
        return NULL;
    }
    dv_result_t r;
    if (which == 0) {
        DVPY_CALL(self, dv_framework_reserve(self->dev, n), r);
    } else if (which == 1) {
        DVPY_CALL(self, dv_framework_release(self->dev, n), r);
    } else {
        DVPY_CALL(self, dv_framework_evict(self->dev, n, &freed), r);
    }
    if (r != DV_OK) {
        return dvpy_raise(r);
    }
    if (which == 2) {
        return PyLong_FromUnsignedLongLong(freed);
    }
    Py_RETURN_NONE;
}

static PyObject *dvpy_device_fw_reserve(PyObject *op, PyObject *arg) {
    return dvpy_device_fw(op, arg, 0);
}
static PyObject *dvpy_device_fw_release(PyObject *op, PyObject *arg) {
    return dvpy_device_fw(op, arg, 1);
}
static PyObject *dvpy_device_fw_evict(PyObject *op, PyObject *arg) {
    return dvpy_device_fw(op, arg, 2);
}

/* Parse (a, b, c[, stream]) of addresses and sizes. */
static int dvpy_parse_u64s(PyObject *const *args, Py_ssize_t nargs,
                           Py_ssize_t need, Py_ssize_t max, uint64_t *v,
                           const char *fname) {
    if (nargs < need || nargs > max) {
        PyErr_Format(PyExc_TypeError, "%s() takes %d to %d arguments", fname,
                     (int)need, (int)max);
        return -1;
    }
    for (Py_ssize_t i = 0; i < max; i++) {
        v[i] = 0;
        if (i < nargs && dvpy_u64(args[i], "argument", &v[i]) < 0) {
            return -1;
        }
    }
    return 0;
}

/* copy_h2d(dst_address, src_address, size, stream=0) */
static PyObject *dvpy_device_copy_h2d(PyObject *op, PyObject *const *args,
                                      Py_ssize_t nargs) {
    dvpy_device *self = (dvpy_device *)op;
    uint64_t v[4];
    if (dvpy_device_ready(self) < 0 ||
        dvpy_parse_u64s(args, nargs, 3, 4, v, "copy_h2d") < 0) {
        return NULL;
    }
    dv_result_t r;
    DVPY_CALL(self,
              dv_copy_h2d(self->dev, v[0], (const void *)(uintptr_t)v[1], v[2],
                          (void *)(uintptr_t)v[3]),
              r);
    if (r != DV_OK) {
        return dvpy_raise(r);
    }
    Py_RETURN_NONE;
}

/* copy_d2h(dst_address, src_address, size, stream=0) */
static PyObject *dvpy_device_copy_d2h(PyObject *op, PyObject *const *args,
                                      Py_ssize_t nargs) {
    dvpy_device *self = (dvpy_device *)op;
    uint64_t v[4];
    if (dvpy_device_ready(self) < 0 ||
        dvpy_parse_u64s(args, nargs, 3, 4, v, "copy_d2h") < 0) {
        return NULL;
    }
    dv_result_t r;
    DVPY_CALL(self,
              dv_copy_d2h(self->dev, (void *)(uintptr_t)v[0], v[1], v[2],
                          (void *)(uintptr_t)v[3]),
              r);
    if (r != DV_OK) {
        return dvpy_raise(r);
    }
    Py_RETURN_NONE;
}

/* host_register(address, size) / host_unregister(address) */
static PyObject *dvpy_device_host_register(PyObject *op, PyObject *const *args,
                                           Py_ssize_t nargs) {
    dvpy_device *self = (dvpy_device *)op;
    uint64_t v[2];
    if (dvpy_device_ready(self) < 0 ||
        dvpy_parse_u64s(args, nargs, 2, 2, v, "host_register") < 0) {
        return NULL;
    }
    dv_result_t r;
    DVPY_CALL(self, dv_host_register(self->dev, (void *)(uintptr_t)v[0], v[1]),
              r);
    if (r != DV_OK) {
        return dvpy_raise(r);
    }
    Py_RETURN_NONE;
}

static PyObject *dvpy_device_host_unregister(PyObject *op, PyObject *arg) {
    dvpy_device *self = (dvpy_device *)op;
    uint64_t addr;
    if (dvpy_device_ready(self) < 0 || dvpy_u64(arg, "address", &addr) < 0) {
        return NULL;
    }
    dv_result_t r;
    DVPY_CALL(self, dv_host_unregister(self->dev, (void *)(uintptr_t)addr), r);
    if (r != DV_OK) {
        return dvpy_raise(r);
    }
    Py_RETURN_NONE;
}

static PyObject *dvpy_device_stream_create(PyObject *op, PyObject *unused) {
    (void)unused;
    dvpy_device *self = (dvpy_device *)op;
    if (dvpy_device_ready(self) < 0) {
        return NULL;
    }
    if (!self->streams && !(self->streams = PySet_New(NULL))) {
        return NULL;
    }
    void *stream = NULL;
    dv_result_t r;
    DVPY_CALL(self, dv_stream_create(self->dev, &stream), r);
    if (r != DV_OK) {
        return dvpy_raise(r);
    }
    /* (close() refuses while the call was in flight: self->streams and
     * self->dev are still there.) */
    PyObject *key = PyLong_FromUnsignedLongLong((uint64_t)(uintptr_t)stream);
    if (!key || PySet_Add(self->streams, key) < 0) {
        /* Not remembered, so never destroyable: destroy it now. */
        Py_XDECREF(key);
        dv_stream_destroy(self->dev, stream);
        return NULL;
    }
    return key;
}

static PyObject *dvpy_device_stream_destroy(PyObject *op, PyObject *arg) {
    dvpy_device *self = (dvpy_device *)op;
    uint64_t s;
    if (dvpy_device_ready(self) < 0 || dvpy_u64(arg, "stream", &s) < 0) {
        return NULL;
    }
    PyObject *key = PyLong_FromUnsignedLongLong(s);
    if (!key) {
        return NULL;
    }
    /* Forget it before the GIL is released: a second destroy racing this
     * one is refused instead of reaching the library. */
    int known = self->streams ? PySet_Discard(self->streams, key) : 0;
    if (known <= 0) {
        Py_DECREF(key);
        if (known < 0) {
            return NULL;
        }
        char msg[160];
        if (s == 0) {
            snprintf(msg, sizeof(msg),
                     "stream_destroy: stream 0 is the default stream, it "
                     "cannot be destroyed");
        } else {
            snprintf(msg, sizeof(msg),
                     "stream_destroy: stream 0x%llx is not a live stream of "
                     "this device (not made by its stream_create, or "
                     "destroyed already)",
                     (unsigned long long)s);
        }
        return dvpy_raise_msg(DV_ERROR_INVALID_ARGUMENT, msg);
    }
    dv_result_t r;
    DVPY_CALL(self, dv_stream_destroy(self->dev, (void *)(uintptr_t)s), r);
    if (r != DV_OK) {
        /* The library keeps the stream when it fails (settling its work
         * failed): it stays destroyable. */
        if (self->streams && PySet_Add(self->streams, key) < 0) {
            PyErr_Clear();
        }
        Py_DECREF(key);
        return dvpy_raise(r);
    }
    Py_DECREF(key);
    Py_RETURN_NONE;
}

static PyObject *dvpy_device_stream_sync(PyObject *op, PyObject *arg) {
    dvpy_device *self = (dvpy_device *)op;
    uint64_t s;
    if (dvpy_device_ready(self) < 0 || dvpy_u64(arg, "stream", &s) < 0) {
        return NULL;
    }
    dv_result_t r;
    DVPY_CALL(self, dv_stream_synchronize(self->dev, (void *)(uintptr_t)s), r);
    if (r != DV_OK) {
        return dvpy_raise(r);
    }
    Py_RETURN_NONE;
}

static PyObject *dvpy_device_get_handle(PyObject *op, void *closure) {
    (void)closure;
    dvpy_device *self = (dvpy_device *)op;
    return PyLong_FromVoidPtr(self->dev);
}

static PyObject *dvpy_device_get_closed(PyObject *op, void *closure) {
    (void)closure;
    return PyBool_FromLong(((dvpy_device *)op)->dev == NULL);
}

static PyObject *dvpy_device_get_released(PyObject *op, void *closure) {
    (void)closure;
    dvpy_device *self = (dvpy_device *)op;
    return PyBool_FromLong(self->dev == NULL && self->deferred == NULL);
}

static PyObject *dvpy_device_get_ordinal(PyObject *op, void *closure) {
    (void)closure;
    return PyLong_FromLong(((dvpy_device *)op)->ordinal);
}

static PyObject *dvpy_device_get_page_size(PyObject *op, void *closure) {
    (void)closure;
    return PyLong_FromUnsignedLongLong(((dvpy_device *)op)->page_size);
}

static PyMethodDef dvpy_device_methods[] = {
    {"close", dvpy_device_close, METH_NOARGS,
     "Close the device (every VBAR must be closed first)."},
    {"caps", dvpy_device_caps, METH_NOARGS, "Capabilities as a dict."},
    {"stats", dvpy_device_stats, METH_NOARGS, "Counters and budget as a dict."},
    {"check", dvpy_device_check, METH_NOARGS,
     "Check internal invariants; raises dynvram.Error if one is broken."},
    {"trim_pool", dvpy_device_trim_pool, METH_NOARGS,
     "Release pooled physical memory."},
    {"reset_watermark_limits", dvpy_device_reset_limits, METH_NOARGS,
     "Reset every VBAR's watermark limit to 0."},
    {"set_headroom", dvpy_device_set_headroom, METH_O,
     "set_headroom(bytes): free device memory never used, from the next "
     "budget reading on (ValueError above 2^60)."},
    {"get_headroom", dvpy_device_get_headroom, METH_NOARGS,
     "The headroom in bytes."},
    {"framework_reserve", dvpy_device_fw_reserve, METH_O,
     "Count a framework allocation, evicting weights to fit."},
    {"framework_release", dvpy_device_fw_release, METH_O,
     "Uncount a framework allocation."},
    {"framework_evict", dvpy_device_fw_evict, METH_O,
     "Evict after a framework OOM; returns bytes freed."},
    {"copy_h2d", (PyCFunction)(void (*)(void))dvpy_device_copy_h2d,
     METH_FASTCALL, "copy_h2d(dst, src_address, size, stream=0)"},
    {"copy_d2h", (PyCFunction)(void (*)(void))dvpy_device_copy_d2h,
     METH_FASTCALL, "copy_d2h(dst_address, src, size, stream=0)"},
    {"host_register", (PyCFunction)(void (*)(void))dvpy_device_host_register,
     METH_FASTCALL, "host_register(address, size)"},
    {"host_unregister", dvpy_device_host_unregister, METH_O,
     "host_unregister(address)"},
    {"stream_create", dvpy_device_stream_create, METH_NOARGS,
     "A new native stream handle (int)."},
    {"stream_destroy", dvpy_device_stream_destroy, METH_O,
     "Destroy a stream made by stream_create (ValueError for any other "
     "value, including a stream destroyed already)."},
    {"stream_synchronize", dvpy_device_stream_sync, METH_O,
     "Wait for a stream (0 = default stream)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef dvpy_device_getset[] = {
    {"handle", dvpy_device_get_handle, NULL,
     "Address of the dv_device_t (0 when closed).", NULL},
    {"closed", dvpy_device_get_closed, NULL, "True after close().", NULL},
    {"released", dvpy_device_get_released, NULL,
     "True once the library's device is closed: at close(), or after the "
     "last view of its closed VBARs is gone.",
     NULL},
    {"ordinal", dvpy_device_get_ordinal, NULL, "Device ordinal.", NULL},
    {"page_size", dvpy_device_get_page_size, NULL, "Residency unit in bytes.",
     NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot dvpy_device_slots[] = {
    {Py_tp_init, (void *)dvpy_device_init},
    {Py_tp_new, (void *)PyType_GenericNew},
    {Py_tp_dealloc, (void *)dvpy_device_dealloc},
    {Py_tp_methods, dvpy_device_methods},
    {Py_tp_getset, dvpy_device_getset},
    {Py_tp_doc, (void *)"Device(backend=None, ordinal=0, vram_limit=0, "
                        "headroom=0, page_size=0, host_capacity=0, "
                        "pool_limit=None, fence_interval=0)"},
    {0, NULL},
};

PyType_Spec dvpy_device_spec = {
    "dynvram._native.Device",
    sizeof(dvpy_device),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    dvpy_device_slots,
};
