/*
 * graph.c - dynvram._native.Graph: one dv_graph_t (include/dynvram_graph.h).
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * The object holds a strong reference to its Device, so the device outlives
 * it. Every call releases the GIL (a recording may evict weight pages and
 * wait for their fences); `busy` counts calls in flight so close() cannot
 * destroy the handle under another thread. Streams are native handles
 * passed as ints (torch's Stream.cuda_stream; 0 = the default stream).
 *
 * close() refuses while a scope is open or an allocation of the graph is
 * alive (the library's DV_ERROR_BUSY); deallocation then leaves the graph
 * to the device (a ResourceWarning) rather than unmap memory under live
 * tensors.
 */
#include "native.h"

#include <string.h>

#include "dynvram_graph.h"

PyTypeObject *dvpy_graph_type;

typedef struct dvpy_graph {
    PyObject_HEAD
    dvpy_device *owner;
    dv_device_t *dev;
    dv_graph_t *graph; /* NULL once closed */
    int busy;
} dvpy_graph;

static PyObject *dvpy_none_or_raise(dv_result_t r) {
    if (r != DV_OK) {
        return dvpy_raise(r);
    }
    Py_RETURN_NONE;
}

static int dvpy_graph_ready(dvpy_graph *self) {
    if (!self->graph) {
        dvpy_raise_msg(DV_ERROR_INVALID_ARGUMENT, "graph is closed");
        return -1;
    }
    return 0;
}

static int dvpy_opt_u64(PyObject *o, const char *what, uint64_t *out) {
    *out = 0;
    return !o || o == Py_None ? 0 : dvpy_u64(o, what, out);
}

static int dvpy_graph_init(PyObject *op, PyObject *args, PyObject *kw) {
    dvpy_graph *self = (dvpy_graph *)op;
    static char *kwlist[] = {"device",       "stream",     "page_size",
                             "arena_size",   "max_variants", "assert_no_breaks",
                             NULL};
    PyObject *devobj = NULL, *stream = NULL, *page = NULL, *arena = NULL;
    PyObject *variants = NULL;
    int assert_nb = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|OOOOp", kwlist, &devobj,
                                     &stream, &page, &arena, &variants,
                                     &assert_nb)) {
        return -1;
    }
    if (self->graph) {
        PyErr_SetString(PyExc_RuntimeError, "Graph is already created");
        return -1;
    }
    if (!PyObject_TypeCheck(devobj, dvpy_device_type)) {
        PyErr_SetString(PyExc_TypeError, "device must be a dynvram.Device");
        return -1;
    }
    dvpy_device *d = (dvpy_device *)devobj;
    uint64_t s, ps, as, mv;
    if (dvpy_opt_u64(stream, "stream", &s) < 0 ||
        dvpy_opt_u64(page, "page_size", &ps) < 0 ||
        dvpy_opt_u64(arena, "arena_size", &as) < 0 ||
        dvpy_opt_u64(variants, "max_variants", &mv) < 0) {
        return -1;
    }
    if (mv > UINT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "max_variants is too large");
        return -1;
    }
    if (!d->dev) {
        dvpy_raise_msg(DV_ERROR_INVALID_ARGUMENT, "device is closed");
        return -1;
    }
    dv_graph_options_t o;
    dv_graph_options_init(&o);
    o.stream = (void *)(uintptr_t)s;
    o.page_size = ps;
    o.arena_size = as;
    o.max_variants = (uint32_t)mv;
    o.flags = assert_nb ? DV_GRAPH_ASSERT_NO_BREAKS : 0;
    dv_graph_t *g = NULL;
    dv_result_t r;
    DVPY_CALL(d, dv_graph_create(d->dev, &o, &g), r);
    if (r != DV_OK) {
        dvpy_raise(r);
        return -1;
    }
    Py_INCREF(devobj);
    self->owner = d;
    self->dev = d->dev;
    self->graph = g;
    return 0;
}

static void dvpy_graph_dealloc(PyObject *op) {
    dvpy_graph *self = (dvpy_graph *)op;
    if (self->graph) {
        PyObject *et, *ev, *tb;
        PyErr_Fetch(&et, &ev, &tb);
        dv_result_t r = dv_graph_destroy(self->dev, self->graph);
        if (r != DV_OK &&
            PyErr_WarnFormat(PyExc_ResourceWarning, 1,
                             "dynvram: graph not destroyed: %s",
                             dv_last_error()) < 0) {
            PyErr_WriteUnraisable(NULL);
        }
        dvpy_log_poll();
        PyErr_Restore(et, ev, tb);
        self->graph = NULL;
    }
    Py_CLEAR(self->owner);
    PyTypeObject *tp = Py_TYPE(op);
    freefunc tp_free = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    tp_free(op);
    Py_DECREF(tp);
}

static PyObject *dvpy_graph_close(PyObject *op, PyObject *unused) {
    (void)unused;
    dvpy_graph *self = (dvpy_graph *)op;
    if (!self->graph) {
        Py_RETURN_NONE;
    }
    if (self->busy) {
        return dvpy_raise_msg(DV_ERROR_BUSY, "graph is in use by another thread");
    }
    dv_graph_t *g = self->graph;
    self->graph = NULL; /* no other call starts on it meanwhile */
    dv_result_t r;
    DVPY_CALL(self, dv_graph_destroy(self->dev, g), r);
    if (r != DV_OK) {
        self->graph = g; /* busy (scopes open, allocations alive): kept */
        return dvpy_raise(r);
    }
    Py_RETURN_NONE;
}

/* A call with one optional name. */
static int dvpy_opt_name(PyObject *args, PyObject *kw, const char **name) {
    static char *kwlist[] = {"name", NULL};
    *name = NULL;
    return PyArg_ParseTupleAndKeywords(args, kw, "|z", kwlist, name) ? 0 : -1;
}

static PyObject *dvpy_graph_push(PyObject *op, PyObject *args, PyObject *kw) {
    dvpy_graph *self = (dvpy_graph *)op;
    const char *name;
    if (dvpy_opt_name(args, kw, &name) < 0 || dvpy_graph_ready(self) < 0) {
        return NULL;
    }
    dv_result_t r;
    DVPY_CALL(self, dv_graph_push(self->dev, self->graph, name), r);
    return dvpy_none_or_raise(r);
}

static PyObject *dvpy_graph_pop(PyObject *op, PyObject *unused) {
    (void)unused;
    dvpy_graph *self = (dvpy_graph *)op;
    if (dvpy_graph_ready(self) < 0) {
        return NULL;
    }
    int changed = 0;
    dv_result_t r;
    DVPY_CALL(self, dv_graph_pop(self->dev, self->graph, &changed), r);
    return r == DV_OK ? PyBool_FromLong(changed) : dvpy_raise(r);
}

static PyObject *dvpy_graph_iterate(PyObject *op, PyObject *args,
                                    PyObject *kw) {
    dvpy_graph *self = (dvpy_graph *)op;
    const char *name;
    if (dvpy_opt_name(args, kw, &name) < 0 || dvpy_graph_ready(self) < 0) {
        return NULL;
    }
    int changed = 0;
    dv_result_t r;
    DVPY_CALL(self, dv_graph_iterate(self->dev, self->graph, name, &changed),
              r);
    return r == DV_OK ? PyBool_FromLong(changed) : dvpy_raise(r);
}

static PyObject *dvpy_graph_abort(PyObject *op, PyObject *unused) {
    (void)unused;
    dvpy_graph *self = (dvpy_graph *)op;
    if (dvpy_graph_ready(self) < 0) {
        return NULL;
    }
    dv_result_t r;
    DVPY_CALL(self, dv_graph_abort(self->dev, self->graph), r);
    return dvpy_none_or_raise(r);
}

static PyObject *dvpy_graph_pause_step(PyObject *op, PyObject *args,
                                       PyObject *kw, int resume) {
    dvpy_graph *self = (dvpy_graph *)op;
    static char *kwlist[] = {"sync", NULL};
    int sync = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|p", kwlist, &sync) ||
        dvpy_graph_ready(self) < 0) {
        return NULL;
    }
    dv_result_t r;
    if (resume) {
        DVPY_CALL(self, dv_graph_resume(self->dev, self->graph, sync), r);
    } else {
        DVPY_CALL(self, dv_graph_pause(self->dev, self->graph, sync), r);
    }
    return dvpy_none_or_raise(r);
}

static PyObject *dvpy_graph_pause(PyObject *op, PyObject *args, PyObject *kw) {
    return dvpy_graph_pause_step(op, args, kw, 0);
}

static PyObject *dvpy_graph_resume(PyObject *op, PyObject *args, PyObject *kw) {
    return dvpy_graph_pause_step(op, args, kw, 1);
}

static PyObject *dvpy_graph_set_stream(PyObject *op, PyObject *arg) {
    dvpy_graph *self = (dvpy_graph *)op;
    uint64_t s;
    if (dvpy_graph_ready(self) < 0 || dvpy_u64(arg, "stream", &s) < 0) {
        return NULL;
    }
    dv_result_t r;
    DVPY_CALL(self,
              dv_graph_set_stream(self->dev, self->graph, (void *)(uintptr_t)s),
              r);
    return dvpy_none_or_raise(r);
}

/* The stream argument of alloc / free: None = the graph's own. */
static int dvpy_graph_stream_arg(dvpy_graph *self, PyObject *o, void **s) {
    if (!o || o == Py_None) {
        dv_graph_stats_t st;
        dv_result_t r = dv_graph_get_stats(self->dev, self->graph, &st);
        if (r != DV_OK) {
            dvpy_raise(r);
            return -1;
        }
        *s = st.stream;
        return 0;
    }
    uint64_t v;
    if (dvpy_u64(o, "stream", &v) < 0) {
        return -1;
    }
    *s = (void *)(uintptr_t)v;
    return 0;
}

static PyObject *dvpy_graph_alloc(PyObject *op, PyObject *args, PyObject *kw) {
    dvpy_graph *self = (dvpy_graph *)op;
    static char *kwlist[] = {"size", "stream", NULL};
    PyObject *sizeobj = NULL, *streamobj = NULL;
    uint64_t size;
    void *stream;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O", kwlist, &sizeobj,
                                     &streamobj) ||
        dvpy_graph_ready(self) < 0 || dvpy_u64(sizeobj, "size", &size) < 0 ||
        dvpy_graph_stream_arg(self, streamobj, &stream) < 0) {
        return NULL;
    }
    uint64_t ptr = 0;
    dv_result_t r;
    DVPY_CALL(self, dv_graph_alloc(self->dev, self->graph, size, stream, &ptr),
              r);
    if (r == DV_OFFLOADED) {
        Py_RETURN_NONE;
    }
    return r == DV_OK ? PyLong_FromUnsignedLongLong(ptr) : dvpy_raise(r);
}

static PyObject *dvpy_graph_free(PyObject *op, PyObject *args, PyObject *kw) {
    dvpy_graph *self = (dvpy_graph *)op;
    static char *kwlist[] = {"ptr", "stream", NULL};
    PyObject *ptrobj = NULL, *streamobj = NULL;
    uint64_t ptr;
    void *stream;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O", kwlist, &ptrobj,
                                     &streamobj) ||
        dvpy_graph_ready(self) < 0 || dvpy_u64(ptrobj, "ptr", &ptr) < 0 ||
        dvpy_graph_stream_arg(self, streamobj, &stream) < 0) {
        return NULL;
    }
    dv_result_t r;
    DVPY_CALL(self, dv_graph_free(self->dev, self->graph, ptr, stream), r);
    if (r == DV_OFFLOADED) {
        Py_RETURN_FALSE;
    }
    if (r != DV_OK) {
        return dvpy_raise(r);
    }
    Py_RETURN_TRUE;
}

static PyObject *dvpy_graph_stats(PyObject *op, PyObject *unused) {
    (void)unused;
    dvpy_graph *self = (dvpy_graph *)op;
    if (dvpy_graph_ready(self) < 0) {
        return NULL;
    }
    dv_graph_stats_t s;
    dv_result_t r;
    DVPY_CALL(self, dv_graph_get_stats(self->dev, self->graph, &s), r);
    if (r != DV_OK) {
        return dvpy_raise(r);
    }
#define U(x) (unsigned long long)(x)
    return Py_BuildValue(
        "{s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,"
        "s:K,s:K,s:K,s:K,s:K,s:K}",
        "used", U(s.used), "peak_used", U(s.peak_used), "virtual_bytes",
        U(s.virtual_bytes), "mapped_bytes", U(s.mapped_bytes),
        "physical_bytes", U(s.physical_bytes), "page_size", U(s.page_size),
        "allocs", U(s.allocs), "replayed_allocs", U(s.replayed_allocs),
        "frees", U(s.frees), "bypassed", U(s.bypassed), "unknown_frees",
        U(s.unknown_frees), "rogues", U(s.rogues), "rogue_bytes",
        U(s.rogue_bytes), "breaks", U(s.breaks), "replays", U(s.replays),
        "records", U(s.records), "backend_calls", U(s.backend_calls),
        "ranges", U(s.ranges), "variants_dropped", U(s.variants_dropped),
        "stream", U((uintptr_t)s.stream), "depth", U(s.depth), "paused",
        U(s.paused), "capture_skips", U(s.capture_skips));
#undef U
}

static PyObject *dvpy_graph_note_capture(PyObject *op, PyObject *unused) {
    (void)unused;
    dvpy_graph *self = (dvpy_graph *)op;
    if (dvpy_graph_ready(self) < 0) {
        return NULL;
    }
    dv_result_t r;
    DVPY_CALL(self, dv_graph_note_capture(self->dev, self->graph), r);
    return dvpy_none_or_raise(r);
}

static PyObject *dvpy_graph_set_trace(PyObject *op, PyObject *arg) {
    dvpy_graph *self = (dvpy_graph *)op;
    uint64_t cap;
    if (dvpy_graph_ready(self) < 0 || dvpy_u64(arg, "capacity", &cap) < 0) {
        return NULL;
    }
    if (cap > UINT32_MAX) {
        return dvpy_raise_msg(DV_ERROR_INVALID_ARGUMENT, "capacity too large");
    }
    dv_result_t r;
    DVPY_CALL(self, dv_graph_trace(self->dev, self->graph, (uint32_t)cap), r);
    return dvpy_none_or_raise(r);
}

/* Events as a list of tuples (seq, kind, outcome, size, ptr, serial, stream,
 * depth, flags, variants, scope): dynvram._graph names the fields. */
static PyObject *dvpy_events(const dv_graph_event_t *ev, uint32_t n) {
    PyObject *list = PyList_New(0);
    if (!list) {
        return NULL;
    }
    for (uint32_t i = 0; i < n; i++) {
        const dv_graph_event_t *e = &ev[i];
        char scope[sizeof(e->scope) + 1];
        memcpy(scope, e->scope, sizeof(e->scope));
        scope[sizeof(e->scope)] = '\0';
        PyObject *t = Py_BuildValue(
            "(KIIKKKKIIIs)", (unsigned long long)e->seq, e->kind, e->outcome,
            (unsigned long long)e->size, (unsigned long long)e->ptr,
            (unsigned long long)e->serial,
            (unsigned long long)(uintptr_t)e->stream, e->depth, e->flags,
            e->variants, scope);
        if (!t || PyList_Append(list, t) < 0) {
            Py_XDECREF(t);
            Py_DECREF(list);
            return NULL;
        }
        Py_DECREF(t);
    }
    return list;
}

static PyObject *dvpy_graph_trace_events(PyObject *op, PyObject *unused) {
    (void)unused;
    dvpy_graph *self = (dvpy_graph *)op;
    if (dvpy_graph_ready(self) < 0) {
        return NULL;
    }
    uint32_t n = 0;
    dv_result_t r;
    DVPY_CALL(self, dv_graph_get_trace(self->dev, self->graph, NULL, 0, &n),
              r);
    if (r != DV_OK) {
        return dvpy_raise(r);
    }
    dv_graph_event_t *ev = n ? PyMem_Calloc(n, sizeof(*ev)) : NULL;
    if (n && !ev) {
        return PyErr_NoMemory();
    }
    uint32_t got = 0;
    if (n) {
        DVPY_CALL(self, dv_graph_get_trace(self->dev, self->graph, ev, n, &got),
                  r);
    }
    PyObject *out = r == DV_OK ? dvpy_events(ev, got) : dvpy_raise(r);
    PyMem_Free(ev);
    return out;
}

static PyObject *dvpy_graph_recording(PyObject *op, PyObject *args,
                                      PyObject *kw) {
    dvpy_graph *self = (dvpy_graph *)op;
    const char *name;
    if (dvpy_opt_name(args, kw, &name) < 0 || dvpy_graph_ready(self) < 0) {
        return NULL;
    }
    uint32_t n = 0;
    dv_result_t r;
    DVPY_CALL(self,
              dv_graph_get_recording(self->dev, self->graph, name, NULL, 0, &n),
              r);
    if (r != DV_OK) {
        return dvpy_raise(r);
    }
    dv_graph_event_t *ev = PyMem_Calloc(n ? n : 1, sizeof(*ev));
    if (!ev) {
        return PyErr_NoMemory();
    }
    uint32_t total = 0;
    DVPY_CALL(self,
              dv_graph_get_recording(self->dev, self->graph, name, ev, n,
                                     &total),
              r);
    /* Recorded between the two calls (another thread): the first n. */
    PyObject *out = r == DV_OK ? dvpy_events(ev, total < n ? total : n)
                               : dvpy_raise(r);
    PyMem_Free(ev);
    return out;
}

static PyObject *dvpy_graph_get_handle(PyObject *op, void *closure) {
    (void)closure;
    return PyLong_FromVoidPtr(((dvpy_graph *)op)->graph);
}

static PyObject *dvpy_graph_get_closed(PyObject *op, void *closure) {
    (void)closure;
    return PyBool_FromLong(((dvpy_graph *)op)->graph == NULL);
}

static PyObject *dvpy_graph_get_device(PyObject *op, void *closure) {
    (void)closure;
    dvpy_graph *self = (dvpy_graph *)op;
    PyObject *d = self->owner ? (PyObject *)self->owner : Py_None;
    Py_INCREF(d);
    return d;
}

#define KW (METH_VARARGS | METH_KEYWORDS)
static PyMethodDef dvpy_graph_methods[] = {
    {"close", dvpy_graph_close, METH_NOARGS,
     "Destroy the graph (no scope open, no allocation alive)."},
    {"push", (PyCFunction)(void (*)(void))dvpy_graph_push, KW,
     "push(name=None): open a scope."},
    {"pop", dvpy_graph_pop, METH_NOARGS,
     "Close the innermost scope; True when the pass was not an exact "
     "replay."},
    {"iterate", (PyCFunction)(void (*)(void))dvpy_graph_iterate, KW,
     "iterate(name=None): close the scope of that name and open it again."},
    {"abort", dvpy_graph_abort, METH_NOARGS, "Close every open scope."},
    {"pause", (PyCFunction)(void (*)(void))dvpy_graph_pause, KW,
     "pause(sync=False): allocations bypass the graph until resume()."},
    {"resume", (PyCFunction)(void (*)(void))dvpy_graph_resume, KW,
     "resume(sync=False): undo one pause()."},
    {"set_stream", dvpy_graph_set_stream, METH_O,
     "set_stream(stream): retarget the graph."},
    {"alloc", (PyCFunction)(void (*)(void))dvpy_graph_alloc, KW,
     "alloc(size, stream=None): an address, or None when the graph does not "
     "take it."},
    {"free", (PyCFunction)(void (*)(void))dvpy_graph_free, KW,
     "free(ptr, stream=None): True when it was the graph's."},
    {"stats", dvpy_graph_stats, METH_NOARGS, "Counters as a dict."},
    {"note_capture", dvpy_graph_note_capture, METH_NOARGS,
     "The open scope passes run a capture of the graph's stream."},
    {"set_trace", dvpy_graph_set_trace, METH_O,
     "set_trace(capacity): keep the last `capacity` calls (0 = off)."},
    {"trace_events", dvpy_graph_trace_events, METH_NOARGS,
     "The traced calls, oldest first, as tuples."},
    {"recording", (PyCFunction)(void (*)(void))dvpy_graph_recording, KW,
     "recording(name=None): a scope's most recently used path, as tuples."},
    {NULL, NULL, 0, NULL},
};
#undef KW

static PyGetSetDef dvpy_graph_getset[] = {
    {"handle", dvpy_graph_get_handle, NULL,
     "Address of the dv_graph_t (0 when closed).", NULL},
    {"closed", dvpy_graph_get_closed, NULL, "True after close().", NULL},
    {"device", dvpy_graph_get_device, NULL, "The Device it belongs to.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot dvpy_graph_slots[] = {
    {Py_tp_init, (void *)dvpy_graph_init},
    {Py_tp_new, (void *)PyType_GenericNew},
    {Py_tp_dealloc, (void *)dvpy_graph_dealloc},
    {Py_tp_methods, dvpy_graph_methods},
    {Py_tp_getset, dvpy_graph_getset},
    {Py_tp_doc, (void *)"Graph(device, stream=0, page_size=0, arena_size=0, "
                        "max_variants=0, assert_no_breaks=False)"},
    {0, NULL},
};

PyType_Spec dvpy_graph_spec = {
    "dynvram._native.Graph",
    sizeof(dvpy_graph),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    dvpy_graph_slots,
};
