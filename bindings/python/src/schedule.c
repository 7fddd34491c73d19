/*
 * schedule.c - dynvram._native.Schedule: one dv_schedule_t (streaming,
 * include/dynvram_stream.h) over a VBAR.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * acquire() and release() are METH_FASTCALL methods taking plain ints and
 * keep the GIL, like VBAR.fault/unpin: they take the device lock for
 * microseconds and never block on a healthy GPU (a host wait happens only
 * when a range was not prefetched in time). Every other call releases the
 * GIL.
 *
 * Lifetime. The object holds strong references to its VBAR object (which
 * cannot be destroyed while the schedule lives: dv_vbar_destroy says BUSY)
 * and to `keep`, the objects owning the source bytes (pinned tensors), so
 * the sources outlive every copy. ring_capsule() makes DLPack capsules over
 * the ring slots; each array made from one is an export, and close()
 * refuses (DV_ERROR_BUSY) while exports are alive, so no array ever points
 * into a ring that was given back.
 */
#include "native.h"

#include <stdlib.h>
#include <string.h>

#include "dynvram_stream.h"

PyTypeObject *dvpy_schedule_type;

typedef struct dvpy_schedule {
    PyObject_HEAD
    dvpy_vbar *vbar;       /* strong reference */
    PyObject *keep;        /* owners of the sources, or NULL */
    dv_device_t *dev;
    dv_schedule_t *sched;  /* NULL once closed */
    int busy;
    int exports;           /* live arrays over the ring */
    uint64_t count;
    uint64_t ring_base;
    uint64_t ring_bytes;
} dvpy_schedule;

static int dvpy_sched_ready(dvpy_schedule *self) {
    if (!self->sched) {
        dvpy_raise_msg(DV_ERROR_INVALID_ARGUMENT, "schedule is closed");
        return -1;
    }
    return 0;
}

static inline int dvpy_sched_u64(PyObject *o, const char *what, uint64_t *out) {
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

/* ranges: a sequence of (offset, size, src_address[, flags]). */
static int dvpy_sched_ranges(PyObject *seq, dv_schedule_range_t **out,
                             uint64_t *count) {
    PyObject *fast = PySequence_Fast(seq, "ranges must be a sequence");
    if (!fast) {
        return -1;
    }
    Py_ssize_t n = PySequence_Size(fast);
    dv_schedule_range_t *rg = calloc(n > 0 ? (size_t)n : 1, sizeof(*rg));
    if (!rg) {
        Py_DECREF(fast);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *t = PySequence_GetItem(fast, i);
        if (!t) {
            goto fail;
        }
        Py_ssize_t k = PySequence_Check(t) ? PySequence_Size(t) : -1;
        uint64_t v[4] = {0, 0, 0, 0};
        int bad = k < 3 || k > 4;
        for (Py_ssize_t j = 0; !bad && j < k; j++) {
            PyObject *e = PySequence_GetItem(t, j);
            bad = !e || dvpy_u64(e, "range field", &v[j]) < 0;
            Py_XDECREF(e);
        }
        Py_DECREF(t);
        if (bad) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_TypeError,
                                "each range is (offset, size, src_address"
                                "[, flags])");
            }
            goto fail;
        }
        if (v[3] > UINT32_MAX) {
            PyErr_SetString(PyExc_ValueError, "range flags do not fit 32 bits");
            goto fail;
        }
        rg[i].offset = v[0];
        rg[i].size = v[1];
        rg[i].src = (const void *)(uintptr_t)v[2];
        rg[i].flags = (uint32_t)v[3];
    }
    Py_DECREF(fast);
    *out = rg;
    *count = (uint64_t)n;
    return 0;
fail:
    Py_DECREF(fast);
    free(rg);
    return -1;
}

static int dvpy_sched_init(PyObject *op, PyObject *args, PyObject *kw) {
    dvpy_schedule *self = (dvpy_schedule *)op;
    static char *kwlist[] = {"vbar",     "ranges",    "ring_slots",
                             "slot_size", "activation_reserve",
                             "placement", "keep",      NULL};
    PyObject *vobj = NULL, *rangesobj = NULL, *keep = NULL;
    PyObject *slotsobj = NULL, *sizeobj = NULL, *resobj = NULL, *placeobj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|OOOOO", kwlist, &vobj,
                                     &rangesobj, &slotsobj, &sizeobj, &resobj,
                                     &placeobj, &keep)) {
        return -1;
    }
    if (self->sched) {
        PyErr_SetString(PyExc_RuntimeError, "Schedule is already created");
        return -1;
    }
    if (!PyObject_TypeCheck(vobj, dvpy_vbar_type)) {
        PyErr_SetString(PyExc_TypeError, "vbar must be a dynvram.VBAR");
        return -1;
    }
    dvpy_vbar *v = (dvpy_vbar *)vobj;
    if (!v->vbar) {
        dvpy_raise_msg(DV_ERROR_INVALID_ARGUMENT, "VBAR is closed");
        return -1;
    }
    dv_schedule_options_t o;
    dv_schedule_options_init(&o);
    uint64_t slots = 0, place = 0;
    if ((slotsobj && slotsobj != Py_None &&
         dvpy_u64(slotsobj, "ring_slots", &slots) < 0) ||
        (sizeobj && sizeobj != Py_None &&
         dvpy_u64(sizeobj, "slot_size", &o.slot_size) < 0) ||
        (resobj && resobj != Py_None &&
         dvpy_u64(resobj, "activation_reserve", &o.activation_reserve) < 0) ||
        (placeobj && placeobj != Py_None &&
         dvpy_u64(placeobj, "placement", &place) < 0)) {
        return -1;
    }
    if (slots > UINT32_MAX || place > UINT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "ring_slots or placement too large");
        return -1;
    }
    o.ring_slots = (uint32_t)slots;
    o.placement = (uint32_t)place;
    dv_schedule_range_t *rg = NULL;
    uint64_t count = 0;
    if (dvpy_sched_ranges(rangesobj, &rg, &count) < 0) {
        return -1;
    }
    dv_schedule_t *s = NULL;
    dv_result_t r;
    DVPY_CALL(v, dv_schedule_create(v->dev, v->vbar, rg, count, &o, &s), r);
    free(rg);
    if (r != DV_OK) {
        dvpy_raise(r);
        return -1;
    }
    dv_schedule_info_t in;
    r = dv_schedule_get_info(v->dev, s, &in);
    if (r != DV_OK) {
        dvpy_raise(r);
        dv_schedule_destroy(v->dev, s);
        return -1;
    }
    Py_INCREF(vobj);
    self->vbar = v;
    Py_XINCREF(keep);
    self->keep = keep;
    self->dev = v->dev;
    self->sched = s;
    self->count = in.count;
    self->ring_base = in.ring_base;
    self->ring_bytes = in.slot_stride * in.ring_slots;
    return 0;
}

static void dvpy_sched_destroy_quietly(dvpy_schedule *self) {
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    dv_result_t r = dv_schedule_destroy(self->dev, self->sched);
    if (r != DV_OK &&
        PyErr_WarnFormat(PyExc_ResourceWarning, 1,
                         "dynvram: schedule leaked: %s", dv_last_error()) < 0) {
        PyErr_WriteUnraisable(NULL);
    }
    self->sched = NULL;
    dvpy_log_poll();
    PyErr_Restore(et, ev, tb);
}

static void dvpy_sched_dealloc(PyObject *op) {
    dvpy_schedule *self = (dvpy_schedule *)op;
    /* Every export holds a reference, so none is alive here. */
    if (self->sched) {
        dvpy_sched_destroy_quietly(self);
    }
    Py_CLEAR(self->keep);
    Py_CLEAR(self->vbar);
    PyTypeObject *tp = Py_TYPE(op);
    freefunc tp_free = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    tp_free(op);
    Py_DECREF(tp);
}

static PyObject *dvpy_sched_close(PyObject *op, PyObject *unused) {
    (void)unused;
    dvpy_schedule *self = (dvpy_schedule *)op;
    if (!self->sched) {
        Py_RETURN_NONE;
    }
    if (self->busy) {
        return dvpy_raise_msg(DV_ERROR_BUSY,
                              "schedule is in use by another thread");
    }
    if (self->exports > 0) {
        return dvpy_raise_msg(DV_ERROR_BUSY,
                              "Schedule.close: arrays over its ring slots are "
                              "still alive; drop them first (nothing changed)");
    }
    dv_schedule_t *s = self->sched;
    self->sched = NULL;
    dv_result_t r;
    DVPY_CALL(self, dv_schedule_destroy(self->dev, s), r);
    if (r != DV_OK) {
        self->sched = s;
        return dvpy_raise(r);
    }
    Py_CLEAR(self->keep);
    Py_RETURN_NONE;
}

/* acquire(index, stream=0) -> address (int), or None when offloaded. */
static PyObject *dvpy_sched_acquire(PyObject *op, PyObject *const *args,
                                    Py_ssize_t nargs) {
    dvpy_schedule *self = (dvpy_schedule *)op;
    uint64_t i, stream = 0, addr = 0;
    if (nargs != 1 && nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "acquire(index, stream=0)");
        return NULL;
    }
    if (dvpy_sched_u64(args[0], "index", &i) < 0 ||
        (nargs == 2 && dvpy_sched_u64(args[1], "stream", &stream) < 0) ||
        dvpy_sched_ready(self) < 0) {
        return NULL;
    }
    dv_result_t r = dv_schedule_acquire(self->dev, self->sched, i,
                                        (void *)(uintptr_t)stream, &addr);
    if (r == DV_OK) {
        dvpy_log_poll();
        return PyLong_FromUnsignedLongLong(addr);
    }
    if (r == DV_OFFLOADED) {
        dvpy_log_poll();
        Py_RETURN_NONE;
    }
    return dvpy_raise(r);
}

/* release(index, stream=0) */
static PyObject *dvpy_sched_release(PyObject *op, PyObject *const *args,
                                    Py_ssize_t nargs) {
    dvpy_schedule *self = (dvpy_schedule *)op;
    uint64_t i, stream = 0;
    if (nargs != 1 && nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "release(index, stream=0)");
        return NULL;
    }
    if (dvpy_sched_u64(args[0], "index", &i) < 0 ||
        (nargs == 2 && dvpy_sched_u64(args[1], "stream", &stream) < 0) ||
        dvpy_sched_ready(self) < 0) {
        return NULL;
    }
    dv_result_t r = dv_schedule_release(self->dev, self->sched, i,
                                        (void *)(uintptr_t)stream);
    if (r != DV_OK) {
        return dvpy_raise(r);
    }
    dvpy_log_poll();
    Py_RETURN_NONE;
}

static PyObject *dvpy_sched_info(PyObject *op, PyObject *unused) {
    (void)unused;
    dvpy_schedule *self = (dvpy_schedule *)op;
    if (dvpy_sched_ready(self) < 0) {
        return NULL;
    }
    dv_schedule_info_t i;
    dv_result_t r;
    DVPY_CALL(self, dv_schedule_get_info(self->dev, self->sched, &i), r);
    if (r != DV_OK) {
        return dvpy_raise(r);
    }
#define U(x) (unsigned long long)(x)
    return Py_BuildValue(
        "{s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,"
        "s:K,s:K,s:K,s:K,s:K}",
        "count", U(i.count), "ranges", U(i.ranges), "ring_base",
        U(i.ring_base), "slot_stride", U(i.slot_stride), "slot_size",
        U(i.slot_size), "ring_slots", U(i.ring_slots), "placement",
        U(i.placement), "steps", U(i.steps), "capacity_bytes",
        U(i.capacity_bytes), "planned_bytes", U(i.planned_bytes),
        "planned_ranges", U(i.planned_ranges), "replans", U(i.replans),
        "acquires", U(i.acquires), "resident_hits", U(i.resident_hits),
        "streamed", U(i.streamed), "offloaded", U(i.offloaded), "copies",
        U(i.copies), "copied_bytes", U(i.copied_bytes), "refills",
        U(i.refills), "deferred", U(i.deferred), "host_waits",
        U(i.host_waits));
#undef U
}

/* plan() -> bytes, one DV_USE_* byte per use. */
static PyObject *dvpy_sched_plan(PyObject *op, PyObject *unused) {
    (void)unused;
    dvpy_schedule *self = (dvpy_schedule *)op;
    if (dvpy_sched_ready(self) < 0) {
        return NULL;
    }
    uint8_t *f = malloc(self->count ? (size_t)self->count : 1);
    if (!f) {
        return PyErr_NoMemory();
    }
    dv_result_t r;
    DVPY_CALL(self, dv_schedule_plan(self->dev, self->sched, 0, self->count, f),
              r);
    PyObject *res = r == DV_OK ? PyBytes_FromStringAndSize(
                                     (const char *)f, (Py_ssize_t)self->count)
                               : dvpy_raise(r);
    free(f);
    return res;
}

static void dvpy_sched_export_release(PyObject *owner) {
    dvpy_schedule *self = (dvpy_schedule *)owner;
    self->exports--;
    Py_DECREF(owner);
}

/* ring_capsule(device_type, device_id) -> a DLPack capsule over every slot
 * (uint8, slot_stride * ring_slots bytes), counted in `exports`. */
static PyObject *dvpy_sched_ring_capsule(PyObject *op, PyObject *args) {
    dvpy_schedule *self = (dvpy_schedule *)op;
    int dtype, did;
    if (!PyArg_ParseTuple(args, "ii", &dtype, &did) ||
        dvpy_sched_ready(self) < 0) {
        return NULL;
    }
    self->exports++;
    Py_INCREF(op);
    return dvpy_dlpack_owned(self->ring_base, self->ring_bytes, dtype, did, op,
                             dvpy_sched_export_release);
}

static PyObject *dvpy_sched_get_closed(PyObject *op, void *closure) {
    (void)closure;
    return PyBool_FromLong(((dvpy_schedule *)op)->sched == NULL);
}

static PyObject *dvpy_sched_get_exports(PyObject *op, void *closure) {
    (void)closure;
    return PyLong_FromLong(((dvpy_schedule *)op)->exports);
}

static PyObject *dvpy_sched_get_vbar(PyObject *op, void *closure) {
    (void)closure;
    PyObject *v = (PyObject *)((dvpy_schedule *)op)->vbar;
    if (!v) {
        Py_RETURN_NONE;
    }
    Py_INCREF(v);
    return v;
}

#define DVPY_SCHED_GETTER(field)                                               \
    static PyObject *dvpy_sched_get_##field(PyObject *op, void *closure) {     \
        (void)closure;                                                         \
        return PyLong_FromUnsignedLongLong(((dvpy_schedule *)op)->field);      \
    }
DVPY_SCHED_GETTER(count)
DVPY_SCHED_GETTER(ring_base)
DVPY_SCHED_GETTER(ring_bytes)

static PyMethodDef dvpy_sched_methods[] = {
    {"acquire", (PyCFunction)(void (*)(void))dvpy_sched_acquire, METH_FASTCALL,
     "acquire(index, stream=0) -> device address, or None when offloaded."},
    {"release", (PyCFunction)(void (*)(void))dvpy_sched_release, METH_FASTCALL,
     "release(index, stream=0)"},
    {"close", dvpy_sched_close, METH_NOARGS, "Destroy the schedule."},
    {"info", dvpy_sched_info, METH_NOARGS, "dv_schedule_get_info as a dict."},
    {"plan", dvpy_sched_plan, METH_NOARGS,
     "plan() -> bytes of USE_* flags, one per use."},
    {"ring_capsule", dvpy_sched_ring_capsule, METH_VARARGS,
     "ring_capsule(device_type, device_id) -> DLPack capsule over the ring."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef dvpy_sched_getset[] = {
    {"closed", dvpy_sched_get_closed, NULL, "True after close().", NULL},
    {"exports", dvpy_sched_get_exports, NULL,
     "Live arrays over the ring slots.", NULL},
    {"vbar", dvpy_sched_get_vbar, NULL, "The scheduled VBAR.", NULL},
    {"count", dvpy_sched_get_count, NULL, "Uses per step.", NULL},
    {"ring_base", dvpy_sched_get_ring_base, NULL,
     "Device address of slot 0.", NULL},
    {"ring_bytes", dvpy_sched_get_ring_bytes, NULL,
     "Bytes of the ring (every slot).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot dvpy_sched_slots[] = {
    {Py_tp_init, (void *)dvpy_sched_init},
    {Py_tp_new, (void *)PyType_GenericNew},
    {Py_tp_dealloc, (void *)dvpy_sched_dealloc},
    {Py_tp_methods, dvpy_sched_methods},
    {Py_tp_getset, dvpy_sched_getset},
    {Py_tp_doc, (void *)"Schedule(vbar, ranges, ...): streaming schedule."},
    {0, NULL},
};

PyType_Spec dvpy_schedule_spec = {
    "dynvram._native.Schedule",
    sizeof(dvpy_schedule),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    dvpy_sched_slots,
};
