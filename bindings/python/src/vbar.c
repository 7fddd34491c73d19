/*
 * vbar.c - dynvram._native.VBAR: one dv_vbar_t, and the fault/unpin fast
 * path.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * fault() and unpin() are METH_FASTCALL methods taking plain ints and keep
 * the GIL: the resident path takes the device lock for nanoseconds and
 * releasing the GIL would cost more than the call. This is deadlock-free
 * because no thread holding a device lock ever waits for the GIL (the log
 * callback only queues, see module.c). A fault that must populate or evict
 * pages keeps the GIL for that time too (microseconds per page on a GPU).
 * Every other call releases the GIL.
 *
 * fault() returns the generation as an int; a small per-VBAR cache indexed
 * by value returns the same int object for a generation seen before, so the
 * steady state (every weight resident) allocates nothing.
 *
 * Views. A view (DLPackView, CudaArrayView) and every array made from one
 * through DLPack is an *export*: it holds a reference to this object and is
 * counted in `exports`. close() with no export destroys the handle at once.
 * close() with live exports closes the object (every call, new views
 * included, raises ValueError from then on), moves the VBAR to the bottom
 * of the priority list and keeps the handle in `deferred`: the pages stay
 * evictable by pressure and the address range stays reserved, so a stale
 * array never reads memory that was handed to something else. The last
 * export released destroys the handle. Reading a range outside a
 * fault..unpin window is undefined either way (the pages may be absent).
 */
#include "native.h"

#include <stdlib.h>
#include <string.h>

static int dvpy_vbar_ready(dvpy_vbar *self) {
    if (!self->vbar) {
        dvpy_raise_msg(DV_ERROR_INVALID_ARGUMENT, "VBAR is closed");
        return -1;
    }
    return 0;
}

/* Fast conversion for exact ints, the general one otherwise. */
static inline int dvpy_arg_u64(PyObject *o, const char *what, uint64_t *out) {
    if (PyLong_CheckExact(o)) {
        unsigned long long v = PyLong_AsUnsignedLongLong(o);
        if (v != (unsigned long long)-1 || !PyErr_Occurred()) {
            *out = (uint64_t)v;
            return 0;
        }
        PyErr_Clear();
    }
    return dvpy_u64(o, what, out);
}

static PyObject *dvpy_gen_obj(dvpy_vbar *self, uint64_t g) {
    unsigned i = (unsigned)(g % DVPY_GEN_CACHE);
    PyObject *o = self->gen_obj[i];
    if (o && self->gen_val[i] == g) {
        Py_INCREF(o);
        return o;
    }
    o = PyLong_FromUnsignedLongLong(g);
    if (!o) {
        return NULL;
    }
    Py_XDECREF(self->gen_obj[i]);
    Py_INCREF(o);
    self->gen_obj[i] = o;
    self->gen_val[i] = g;
    return o;
}

static int dvpy_vbar_init(PyObject *op, PyObject *args, PyObject *kw) {
    dvpy_vbar *self = (dvpy_vbar *)op;
    static char *kwlist[] = {"device", "size", NULL};
    PyObject *devobj = NULL, *sizeobj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO", kwlist, &devobj,
                                     &sizeobj)) {
        return -1;
    }
    if (self->vbar) {
        PyErr_SetString(PyExc_RuntimeError, "VBAR is already created");
        return -1;
    }
    if (!PyObject_TypeCheck(devobj, dvpy_device_type)) {
        PyErr_SetString(PyExc_TypeError, "device must be a dynvram.Device");
        return -1;
    }
    dvpy_device *d = (dvpy_device *)devobj;
    uint64_t size;
    if (dvpy_u64(sizeobj, "size", &size) < 0) {
        return -1;
    }
    if (!d->dev) {
        dvpy_raise_msg(DV_ERROR_INVALID_ARGUMENT, "device is closed");
        return -1;
    }
    dv_vbar_t *vbar = NULL;
    dv_result_t r;
    DVPY_CALL(d, dv_vbar_create(d->dev, size, &vbar), r);
    if (r != DV_OK) {
        dvpy_raise(r);
        return -1;
    }
    dv_vbar_info_t info;
    r = dv_vbar_get_info(d->dev, vbar, &info);
    if (r != DV_OK) {
        dvpy_raise(r);
        dv_vbar_destroy(d->dev, vbar);
        return -1;
    }
    Py_INCREF(devobj);
    self->owner = d;
    self->dev = d->dev;
    self->vbar = vbar;
    self->base = info.base;
    self->size = info.size;
    self->page_size = info.page_size;
    self->page_count = info.page_count;
    return 0;
}

static void dvpy_vbar_clear_cache(dvpy_vbar *self) {
    for (int i = 0; i < DVPY_GEN_CACHE; i++) {
        Py_CLEAR(self->gen_obj[i]);
    }
}

/* Destroy handle `h` from a destructor, keeping any pending exception. */
static void dvpy_vbar_destroy_quietly(dvpy_vbar *self, dv_vbar_t *h) {
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    dv_result_t r = dv_vbar_destroy(self->dev, h);
    if (r != DV_OK) {
        /* Pinned pages left behind: leaking the range is the only safe
         * choice, the GPU may still read it. */
        if (PyErr_WarnFormat(PyExc_ResourceWarning, 1,
                             "dynvram: VBAR leaked: %s", dv_last_error()) < 0) {
            PyErr_WriteUnraisable(NULL);
        }
    }
    dvpy_log_poll();
    PyErr_Restore(et, ev, tb);
}

/* The last export of a VBAR closed with live exports is gone. */
static void dvpy_vbar_finish_close(dvpy_vbar *self) {
    dv_vbar_t *h = self->deferred;
    self->deferred = NULL;
    dvpy_vbar_destroy_quietly(self, h);
    self->owner->deferred_vbars--;
    dvpy_device_finish_close(self->owner);
}

int dvpy_vbar_export_acquire(dvpy_vbar *v) {
    if (!v->vbar) {
        dvpy_raise_msg(DV_ERROR_INVALID_ARGUMENT,
                       "VBAR is closed: no new views of it");
        return -1;
    }
    v->exports++;
    Py_INCREF(v);
    return 0;
}

void dvpy_vbar_export_release(dvpy_vbar *v) {
    if (--v->exports == 0 && v->deferred) {
        dvpy_vbar_finish_close(v);
    }
    Py_DECREF(v);
}

#define DVPY_EXPORT_NAME "dynvram.export"

static void dvpy_export_destructor(PyObject *cap) {
    dvpy_vbar *v = PyCapsule_GetPointer(cap, DVPY_EXPORT_NAME);
    if (v) {
        dvpy_vbar_export_release(v);
    }
}

/* _export() -> an opaque token counted as an export until it is freed. */
static PyObject *dvpy_vbar_export(PyObject *op, PyObject *unused) {
    (void)unused;
    dvpy_vbar *self = (dvpy_vbar *)op;
    if (dvpy_vbar_export_acquire(self) < 0) {
        return NULL;
    }
    PyObject *cap =
        PyCapsule_New(self, DVPY_EXPORT_NAME, dvpy_export_destructor);
    if (!cap) {
        dvpy_vbar_export_release(self);
    }
    return cap;
}

static void dvpy_vbar_dealloc(PyObject *op) {
    dvpy_vbar *self = (dvpy_vbar *)op;
    /* Every export holds a reference to this object, so a deferred handle
     * is destroyed before this runs; whichever handle is left, destroy. */
    dv_vbar_t *h = self->vbar ? self->vbar : self->deferred;
    int was_deferred = !self->vbar && self->deferred;
    self->vbar = NULL;
    self->deferred = NULL;
    if (h) {
        dvpy_vbar_destroy_quietly(self, h);
        if (was_deferred) {
            self->owner->deferred_vbars--;
            dvpy_device_finish_close(self->owner);
        }
    }
    dvpy_vbar_clear_cache(self);
    Py_CLEAR(self->owner);
    PyTypeObject *tp = Py_TYPE(op);
    freefunc tp_free = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    tp_free(op);
    Py_DECREF(tp);
}

/* 1 when a page of the VBAR is pinned, 0 when none is, -1 on error. */
static int dvpy_vbar_any_pinned(dvpy_vbar *self) {
    uint8_t *flags = malloc(self->page_count ? (size_t)self->page_count : 1);
    if (!flags) {
        PyErr_NoMemory();
        return -1;
    }
    dv_result_t r =
        dv_vbar_residency(self->dev, self->vbar, 0, self->page_count, flags);
    int pinned = 0;
    for (uint64_t i = 0; r == DV_OK && i < self->page_count; i++) {
        pinned |= (flags[i] & DV_PAGE_PINNED) != 0;
    }
    free(flags);
    if (r != DV_OK) {
        dvpy_raise(r);
        return -1;
    }
    return pinned;
}

/* close() while views are alive: see the top of this file. */
static PyObject *dvpy_vbar_close_deferred(dvpy_vbar *self) {
    int pinned = dvpy_vbar_any_pinned(self);
    if (pinned < 0) {
        return NULL;
    }
    if (pinned) {
        /* What dv_vbar_destroy would refuse, refused now. */
        return dvpy_raise_msg(DV_ERROR_BUSY,
                              "VBAR.close: pages are still pinned; unpin "
                              "them first (nothing changed)");
    }
    dv_result_t r = dv_vbar_deprioritize(self->dev, self->vbar);
    if (r != DV_OK) {
        return dvpy_raise(r);
    }
    self->deferred = self->vbar;
    self->vbar = NULL;
    self->owner->deferred_vbars++;
    dvpy_vbar_clear_cache(self);
    Py_RETURN_NONE;
}

static PyObject *dvpy_vbar_close(PyObject *op, PyObject *unused) {
    (void)unused;
    dvpy_vbar *self = (dvpy_vbar *)op;
    if (!self->vbar) {
        Py_RETURN_NONE;
    }
    if (self->busy) {
        return dvpy_raise_msg(DV_ERROR_BUSY, "VBAR is in use by another thread");
    }
    if (self->exports > 0) {
        return dvpy_vbar_close_deferred(self);
    }
    /* Detach the handle before the GIL is released: another thread must
     * see the VBAR as closed, not call into it while it is destroyed. */
    dv_vbar_t *vbar = self->vbar;
    self->vbar = NULL;
    dv_result_t r;
    DVPY_CALL(self, dv_vbar_destroy(self->dev, vbar), r);
    if (r != DV_OK) {
        self->vbar = vbar; /* nothing changed (e.g. pages still pinned) */
        return dvpy_raise(r);
    }
    dvpy_vbar_clear_cache(self);
    Py_RETURN_NONE;
}

/* fault(offset, size) -> generation (int) or None when offloaded. */
static PyObject *dvpy_vbar_fault(PyObject *op, PyObject *const *args,
                                 Py_ssize_t nargs) {
    dvpy_vbar *self = (dvpy_vbar *)op;
    uint64_t off, size, gen = 0;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "fault(offset, size)");
        return NULL;
    }
    if (dvpy_arg_u64(args[0], "offset", &off) < 0 ||
        dvpy_arg_u64(args[1], "size", &size) < 0 ||
        dvpy_vbar_ready(self) < 0) {
        return NULL;
    }
    dv_result_t r = dv_fault(self->dev, self->vbar, off, size, &gen);
    /* After a failure dvpy_raise takes the message before the log queue
     * runs Python code (see DVPY_CALL). */
    if (r == DV_OK) {
        dvpy_log_poll();
        return dvpy_gen_obj(self, gen);
    }
    if (r == DV_OFFLOADED) {
        dvpy_log_poll();
        Py_RETURN_NONE;
    }
    return dvpy_raise(r);
}

/* unpin(offset, size, stream=0) */
static PyObject *dvpy_vbar_unpin(PyObject *op, PyObject *const *args,
                                 Py_ssize_t nargs) {
    dvpy_vbar *self = (dvpy_vbar *)op;
    uint64_t off, size, stream = 0;
    if (nargs != 2 && nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "unpin(offset, size, stream=0)");
        return NULL;
    }
    if (dvpy_arg_u64(args[0], "offset", &off) < 0 ||
        dvpy_arg_u64(args[1], "size", &size) < 0 ||
        (nargs == 3 && dvpy_arg_u64(args[2], "stream", &stream) < 0) ||
        dvpy_vbar_ready(self) < 0) {
        return NULL;
    }
    dv_result_t r = dv_unpin(self->dev, self->vbar, off, size,
                             (void *)(uintptr_t)stream);
    if (r != DV_OK) {
        return dvpy_raise(r);
    }
    dvpy_log_poll();
    Py_RETURN_NONE;
}

static PyObject *dvpy_vbar_simple(PyObject *op,
                                  dv_result_t (*fn)(dv_device_t *,
                                                    dv_vbar_t *)) {
    dvpy_vbar *self = (dvpy_vbar *)op;
    if (dvpy_vbar_ready(self) < 0) {
        return NULL;
    }
    dv_result_t r;
    DVPY_CALL(self, fn(self->dev, self->vbar), r);
    if (r != DV_OK) {
        return dvpy_raise(r);
    }
    Py_RETURN_NONE;
}

static PyObject *dvpy_vbar_prioritize(PyObject *op, PyObject *unused) {
    (void)unused;
    return dvpy_vbar_simple(op, dv_vbar_prioritize);
}

static PyObject *dvpy_vbar_deprioritize(PyObject *op, PyObject *unused) {
    (void)unused;
    return dvpy_vbar_simple(op, dv_vbar_deprioritize);
}

static PyObject *dvpy_vbar_bytes_op(PyObject *op, PyObject *arg,
                                    dv_result_t (*fn)(dv_device_t *,
                                                      dv_vbar_t *, uint64_t)) {
    dvpy_vbar *self = (dvpy_vbar *)op;
    uint64_t bytes;
    if (dvpy_u64(arg, "bytes", &bytes) < 0 || dvpy_vbar_ready(self) < 0) {
        return NULL;
    }
    dv_result_t r;
    DVPY_CALL(self, fn(self->dev, self->vbar, bytes), r);
    if (r != DV_OK) {
        return dvpy_raise(r);
    }
    Py_RETURN_NONE;
}

static PyObject *dvpy_vbar_set_watermark(PyObject *op, PyObject *arg) {
    return dvpy_vbar_bytes_op(op, arg, dv_vbar_set_watermark);
}

static PyObject *dvpy_vbar_set_watermark_limit(PyObject *op, PyObject *arg) {
    return dvpy_vbar_bytes_op(op, arg, dv_vbar_set_watermark_limit);
}

static PyObject *dvpy_vbar_evict(PyObject *op, PyObject *arg) {
    dvpy_vbar *self = (dvpy_vbar *)op;
    uint64_t bytes, freed = 0;
    if (dvpy_u64(arg, "bytes", &bytes) < 0 || dvpy_vbar_ready(self) < 0) {
        return NULL;
    }
    dv_result_t r;
    DVPY_CALL(self, dv_vbar_evict(self->dev, self->vbar, bytes, &freed), r);
    if (r != DV_OK) {
        return dvpy_raise(r);
    }
    return PyLong_FromUnsignedLongLong(freed);
}

static PyObject *dvpy_vbar_info(PyObject *op, PyObject *unused) {
    (void)unused;
    dvpy_vbar *self = (dvpy_vbar *)op;
    if (dvpy_vbar_ready(self) < 0) {
        return NULL;
    }
    dv_vbar_info_t i;
    dv_result_t r;
    DVPY_CALL(self, dv_vbar_get_info(self->dev, self->vbar, &i), r);
    if (r != DV_OK) {
        return dvpy_raise(r);
    }
#define U(x) (unsigned long long)(x)
    return Py_BuildValue("{s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K}", "base",
                         U(i.base), "size", U(i.size), "page_size",
                         U(i.page_size), "page_count", U(i.page_count),
                         "resident_bytes", U(i.resident_bytes), "watermark",
                         U(i.watermark), "watermark_limit",
                         U(i.watermark_limit), "priority_rank",
                         U(i.priority_rank));
#undef U
}

/* residency(first_page=0, count=None) -> bytes of DV_PAGE_* flags */
static PyObject *dvpy_vbar_residency(PyObject *op, PyObject *args,
                                     PyObject *kw) {
    dvpy_vbar *self = (dvpy_vbar *)op;
    static char *kwlist[] = {"first_page", "count", NULL};
    PyObject *firstobj = NULL, *countobj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|OO", kwlist, &firstobj,
                                     &countobj)) {
        return NULL;
    }
    uint64_t first = 0, count;
    if (dvpy_vbar_ready(self) < 0 ||
        (firstobj && dvpy_u64(firstobj, "first_page", &first) < 0)) {
        return NULL;
    }
    if (countobj && countobj != Py_None) {
        if (dvpy_u64(countobj, "count", &count) < 0) {
            return NULL;
        }
    } else {
        count = first <= self->page_count ? self->page_count - first : 0;
    }
    if (count > self->page_count) {
        return dvpy_raise_msg(DV_ERROR_OUT_OF_RANGE,
                              "count exceeds the VBAR's page count");
    }
    uint8_t *flags = malloc(count ? (size_t)count : 1);
    if (!flags) {
        return PyErr_NoMemory();
    }
    dv_result_t r = DV_OK;
    if (count) {
        DVPY_CALL(self,
                  dv_vbar_residency(self->dev, self->vbar, first, count, flags),
                  r);
    } else if (first > self->page_count) {
        free(flags);
        return dvpy_raise_msg(DV_ERROR_OUT_OF_RANGE,
                              "first_page beyond the VBAR");
    }
    PyObject *res = NULL;
    if (r != DV_OK) {
        dvpy_raise(r);
    } else {
        res = PyBytes_FromStringAndSize((const char *)flags, (Py_ssize_t)count);
    }
    free(flags);
    return res;
}

/* generations(offset=0, size=None) -> list of ints, one per page */
static PyObject *dvpy_vbar_generations(PyObject *op, PyObject *args,
                                       PyObject *kw) {
    dvpy_vbar *self = (dvpy_vbar *)op;
    static char *kwlist[] = {"offset", "size", NULL};
    PyObject *offobj = NULL, *sizeobj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|OO", kwlist, &offobj,
                                     &sizeobj)) {
        return NULL;
    }
    uint64_t off = 0, size;
    if (dvpy_vbar_ready(self) < 0 ||
        (offobj && dvpy_u64(offobj, "offset", &off) < 0)) {
        return NULL;
    }
    if (sizeobj && sizeobj != Py_None) {
        if (dvpy_u64(sizeobj, "size", &size) < 0) {
            return NULL;
        }
    } else {
        size = off < self->size ? self->size - off : 0;
    }
    if (size == 0 || off > self->size || size > self->size - off) {
        return dvpy_raise_msg(size == 0 ? DV_ERROR_INVALID_ARGUMENT
                                        : DV_ERROR_OUT_OF_RANGE,
                              "range is empty or outside the VBAR");
    }
    uint64_t first = off / self->page_size;
    uint64_t last = (off + size - 1) / self->page_size;
    uint64_t count = last - first + 1;
    uint64_t *gens = calloc((size_t)count, sizeof(*gens));
    if (!gens) {
        return PyErr_NoMemory();
    }
    dv_result_t r;
    DVPY_CALL(self,
              dv_vbar_generations(self->dev, self->vbar, off, size, gens,
                                  count),
              r);
    PyObject *list = NULL;
    if (r != DV_OK) {
        dvpy_raise(r);
        goto out;
    }
    list = PyList_New((Py_ssize_t)count);
    if (!list) {
        goto out;
    }
    for (uint64_t i = 0; i < count; i++) {
        PyObject *g = PyLong_FromUnsignedLongLong(gens[i]);
        if (!g) {
            Py_CLEAR(list);
            goto out;
        }
        PyList_SetItem(list, (Py_ssize_t)i, g);
    }
out:
    free(gens);
    return list;
}

#define DVPY_VBAR_GETTER(field)                                                \
    static PyObject *dvpy_vbar_get_##field(PyObject *op, void *closure) {      \
        (void)closure;                                                         \
        return PyLong_FromUnsignedLongLong(((dvpy_vbar *)op)->field);          \
    }
DVPY_VBAR_GETTER(base)
DVPY_VBAR_GETTER(size)
DVPY_VBAR_GETTER(page_size)
DVPY_VBAR_GETTER(page_count)

static PyObject *dvpy_vbar_get_handle(PyObject *op, void *closure) {
    (void)closure;
    return PyLong_FromVoidPtr(((dvpy_vbar *)op)->vbar);
}

static PyObject *dvpy_vbar_get_closed(PyObject *op, void *closure) {
    (void)closure;
    return PyBool_FromLong(((dvpy_vbar *)op)->vbar == NULL);
}

static PyObject *dvpy_vbar_get_released(PyObject *op, void *closure) {
    (void)closure;
    dvpy_vbar *self = (dvpy_vbar *)op;
    return PyBool_FromLong(self->vbar == NULL && self->deferred == NULL);
}

static PyObject *dvpy_vbar_get_exports(PyObject *op, void *closure) {
    (void)closure;
    return PyLong_FromLong(((dvpy_vbar *)op)->exports);
}

static PyObject *dvpy_vbar_get_device(PyObject *op, void *closure) {
    (void)closure;
    PyObject *d = (PyObject *)((dvpy_vbar *)op)->owner;
    if (!d) {
        Py_RETURN_NONE;
    }
    Py_INCREF(d);
    return d;
}

static PyMethodDef dvpy_vbar_methods[] = {
    {"fault", (PyCFunction)(void (*)(void))dvpy_vbar_fault, METH_FASTCALL,
     "fault(offset, size) -> generation, or None when offloaded."},
    {"unpin", (PyCFunction)(void (*)(void))dvpy_vbar_unpin, METH_FASTCALL,
     "unpin(offset, size, stream=0)"},
    {"close", dvpy_vbar_close, METH_NOARGS,
     "Close the VBAR: its pages and address range are released now, or, "
     "while views of it are alive, when the last of them is gone."},
    {"_export", dvpy_vbar_export, METH_NOARGS,
     "A token counted in `exports` until it is freed (for views)."},
    {"prioritize", dvpy_vbar_prioritize, METH_NOARGS,
     "Move to the top of the priority list; reset the watermark."},
    {"deprioritize", dvpy_vbar_deprioritize, METH_NOARGS,
     "Move to the bottom of the priority list."},
    {"set_watermark", dvpy_vbar_set_watermark, METH_O,
     "Faults at or above `bytes` (rounded up to pages) are offloaded."},
    {"set_watermark_limit", dvpy_vbar_set_watermark_limit, METH_O,
     "Pages below `bytes` are never evicted."},
    {"evict", dvpy_vbar_evict, METH_O,
     "evict(nbytes) -> bytes freed, from the top down."},
    {"info", dvpy_vbar_info, METH_NOARGS, "dv_vbar_get_info as a dict."},
    {"residency", (PyCFunction)(void (*)(void))dvpy_vbar_residency,
     METH_VARARGS | METH_KEYWORDS,
     "residency(first_page=0, count=None) -> bytes of PAGE_* flags."},
    {"generations", (PyCFunction)(void (*)(void))dvpy_vbar_generations,
     METH_VARARGS | METH_KEYWORDS,
     "generations(offset=0, size=None) -> list, one per page."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef dvpy_vbar_getset[] = {
    {"base", dvpy_vbar_get_base, NULL, "Device address of offset 0.", NULL},
    {"size", dvpy_vbar_get_size, NULL, "Bytes (whole pages).", NULL},
    {"page_size", dvpy_vbar_get_page_size, NULL, "Bytes per page.", NULL},
    {"page_count", dvpy_vbar_get_page_count, NULL, "Number of pages.", NULL},
    {"handle", dvpy_vbar_get_handle, NULL, "Address of the dv_vbar_t.", NULL},
    {"closed", dvpy_vbar_get_closed, NULL, "True after close().", NULL},
    {"released", dvpy_vbar_get_released, NULL,
     "True once the pages and address range are given back: at close(), or "
     "when the last view alive at close() is gone.",
     NULL},
    {"exports", dvpy_vbar_get_exports, NULL,
     "Live views of this VBAR and arrays made from them.", NULL},
    {"device", dvpy_vbar_get_device, NULL, "The owning Device.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot dvpy_vbar_slots[] = {
    {Py_tp_init, (void *)dvpy_vbar_init},
    {Py_tp_new, (void *)PyType_GenericNew},
    {Py_tp_dealloc, (void *)dvpy_vbar_dealloc},
    {Py_tp_methods, dvpy_vbar_methods},
    {Py_tp_getset, dvpy_vbar_getset},
    {Py_tp_doc, (void *)"VBAR(device, size): a reserved virtual range."},
    {0, NULL},
};

PyType_Spec dvpy_vbar_spec = {
    "dynvram._native.VBAR",
    sizeof(dvpy_vbar),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    dvpy_vbar_slots,
};
