/*
 * module.c - dynvram._native: module init, exceptions, log routing.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Log routing. dynvram may log from any thread, possibly with a device lock
 * held. Running Python code there can deadlock: Python code may give up the
 * GIL to another thread, which may then wait for that device lock while
 * holding the GIL (a fault from Python, or torch allocating through the
 * interposer). So the callback never touches Python: it queues the message
 * (bounded; overflow is counted) and
 *  - every call of this module drains the queue when it returns
 *    (dvpy_log_poll: one relaxed load when the queue is empty), so messages
 *    caused by a Python call reach `logging` before that call returns;
 *  - messages from other threads (torch's allocator, C threads) are drained
 *    on the main thread through Py_AddPendingCall, which is safe without the
 *    GIL; flush_log() drains on demand.
 */
#include "native.h"

#include <stdlib.h>
#include <string.h>

#include "dv_interpose.h"
#include "dynvram_stream.h"

PyTypeObject *dvpy_device_type;
PyTypeObject *dvpy_vbar_type;
PyObject *dvpy_error;
static PyObject *dvpy_value_error;
static PyObject *dvpy_memory_error;
static PyObject *dvpy_graph_break_error;

volatile int dvpy_log_count;

/* ---- exceptions ---------------------------------------------------------- */

static PyObject *dvpy_make_exc(PyObject *type, dv_result_t r, const char *msg) {
    const char *name = dv_result_name(r);
    if (!msg || !msg[0]) {
        msg = dv_result_str(r);
    }
    PyObject *exc = PyObject_CallFunction(type, "s", msg);
    if (!exc) {
        return NULL;
    }
    PyObject *code = PyLong_FromLong((long)r);
    PyObject *pname = PyUnicode_FromString(name);
    PyObject *pmsg = PyUnicode_FromString(msg);
    if (!code || !pname || !pmsg ||
        PyObject_SetAttrString(exc, "code", code) < 0 ||
        PyObject_SetAttrString(exc, "name", pname) < 0 ||
        PyObject_SetAttrString(exc, "message", pmsg) < 0) {
        Py_XDECREF(code);
        Py_XDECREF(pname);
        Py_XDECREF(pmsg);
        Py_DECREF(exc);
        return NULL;
    }
    Py_DECREF(code);
    Py_DECREF(pname);
    Py_DECREF(pmsg);
    return exc;
}

PyObject *dvpy_raise_msg(dv_result_t r, const char *msg) {
    dvpy_log_poll();
    PyObject *type = dvpy_error;
    if (r == DV_ERROR_INVALID_ARGUMENT || r == DV_ERROR_OUT_OF_RANGE) {
        type = dvpy_value_error;
    } else if (r == DV_ERROR_OUT_OF_DEVICE_MEMORY ||
               r == DV_ERROR_OUT_OF_HOST_MEMORY) {
        type = dvpy_memory_error;
    } else if (r == DV_ERROR_GRAPH_BREAK) {
        type = dvpy_graph_break_error;
    }
    PyObject *exc = dvpy_make_exc(type, r, msg);
    if (exc) {
        PyErr_SetObject(type, exc);
        Py_DECREF(exc);
    }
    return NULL;
}

PyObject *dvpy_raise(dv_result_t r) {
    /* Copy: building the exception may run Python code that calls dynvram. */
    char msg[1024];
    const char *last = dv_last_error();
    snprintf(msg, sizeof(msg), "%s", last ? last : "");
    return dvpy_raise_msg(r, msg);
}

int dvpy_u64(PyObject *o, const char *what, uint64_t *out) {
    PyObject *idx = PyNumber_Index(o);
    if (!idx) {
        return -1;
    }
    int neg = PyObject_RichCompareBool(idx, Py_False, Py_LT);
    if (neg != 0) {
        Py_DECREF(idx);
        if (neg > 0) {
            PyErr_Format(PyExc_ValueError, "%s must not be negative", what);
        }
        return -1;
    }
    unsigned long long v = PyLong_AsUnsignedLongLong(idx);
    Py_DECREF(idx);
    if (v == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "%s does not fit in 64 bits", what);
        return -1;
    }
    *out = (uint64_t)v;
    return 0;
}

/* ---- log routing --------------------------------------------------------- */

typedef struct dvpy_logmsg {
    struct dvpy_logmsg *next;
    int level;
    char text[];
} dvpy_logmsg;

#define DVPY_LOG_QUEUE_MAX 4096

static dv__mutex_t dvpy_log_mu = DV__MUTEX_INIT;
static dvpy_logmsg *dvpy_log_head;
static dvpy_logmsg *dvpy_log_tail;
static int dvpy_log_scheduled;
static unsigned long dvpy_log_dropped;
/* The Python handler, handler(level: int, message: str). Read and written
 * with the GIL held only. */
static PyObject *dvpy_log_handler;

static void dvpy_log_emit(int level, const char *text) {
    if (!dvpy_log_handler) {
        return;
    }
    PyObject *res = PyObject_CallFunction(dvpy_log_handler, "is", level, text);
    if (res) {
        Py_DECREF(res);
    } else {
        PyErr_WriteUnraisable(dvpy_log_handler);
    }
}

/* Emit every queued message. GIL held. Preserves any pending exception. */
void dvpy_log_drain(void) {
    dv__mutex_lock(&dvpy_log_mu);
    dvpy_logmsg *m = dvpy_log_head;
    unsigned long dropped = dvpy_log_dropped;
    dvpy_log_head = dvpy_log_tail = NULL;
    dv__atomic_store_int(&dvpy_log_count, 0);
    dvpy_log_dropped = 0;
    dvpy_log_scheduled = 0;
    dv__mutex_unlock(&dvpy_log_mu);
    if (!m && !dropped) {
        return;
    }
    PyObject *et, *ev, *tb;
    PyErr_Fetch(&et, &ev, &tb);
    while (m) {
        dvpy_logmsg *next = m->next;
        dvpy_log_emit(m->level, m->text);
        free(m);
        m = next;
    }
    if (dropped) {
        char buf[96];
        snprintf(buf, sizeof(buf), "%lu log messages dropped (queue full)",
                 dropped);
        dvpy_log_emit(DV_LOG_WARNING, buf);
    }
    PyErr_Restore(et, ev, tb);
}

static int dvpy_log_pending(void *unused) {
    (void)unused;
    dvpy_log_drain();
    return 0;
}

static void dvpy_log_callback(dv_log_level_t level, const char *msg,
                              void *user) {
    (void)user;
    size_t len = strlen(msg);
    dvpy_logmsg *m = malloc(sizeof(*m) + len + 1);
    int schedule = 0;
    dv__mutex_lock(&dvpy_log_mu);
    int count = dv__atomic_load_int(&dvpy_log_count);
    if (!m || count >= DVPY_LOG_QUEUE_MAX) {
        dvpy_log_dropped++;
        free(m);
        m = NULL;
    } else {
        m->next = NULL;
        m->level = (int)level;
        memcpy(m->text, msg, len + 1);
        if (dvpy_log_tail) {
            dvpy_log_tail->next = m;
        } else {
            dvpy_log_head = m;
        }
        dvpy_log_tail = m;
        dv__atomic_store_int(&dvpy_log_count, count + 1);
    }
    if (!dvpy_log_scheduled) {
        dvpy_log_scheduled = 1;
        schedule = 1;
    }
    dv__mutex_unlock(&dvpy_log_mu);
    if (schedule && Py_AddPendingCall(dvpy_log_pending, NULL) != 0) {
        /* The interpreter's queue is full: try again on the next message. */
        dv__mutex_lock(&dvpy_log_mu);
        dvpy_log_scheduled = 0;
        dv__mutex_unlock(&dvpy_log_mu);
    }
}

static PyObject *dvpy_set_log_handler(PyObject *mod, PyObject *fn) {
    (void)mod;
    if (fn != Py_None && !PyCallable_Check(fn)) {
        PyErr_SetString(PyExc_TypeError, "handler must be callable or None");
        return NULL;
    }
    dvpy_log_drain();
    Py_XDECREF(dvpy_log_handler);
    dvpy_log_handler = NULL;
    if (fn == Py_None) {
        dv_log_set_callback(NULL, NULL);
    } else {
        Py_INCREF(fn);
        dvpy_log_handler = fn;
        dv_log_set_callback(dvpy_log_callback, NULL);
    }
    Py_RETURN_NONE;
}

static PyObject *dvpy_flush_log(PyObject *mod, PyObject *unused) {
    (void)mod;
    (void)unused;
    dvpy_log_drain();
    Py_RETURN_NONE;
}

static PyObject *dvpy_set_log_level(PyObject *mod, PyObject *arg) {
    (void)mod;
    long level = PyLong_AsLong(arg);
    if (level == -1 && PyErr_Occurred()) {
        return NULL;
    }
    dv_result_t r = dv_log_set_level((dv_log_level_t)level);
    if (r != DV_OK) {
        return dvpy_raise(r);
    }
    Py_RETURN_NONE;
}

static PyObject *dvpy_get_log_level(PyObject *mod, PyObject *unused) {
    (void)mod;
    (void)unused;
    return PyLong_FromLong((long)dv_log_get_level());
}

/* ---- small module functions ---------------------------------------------- */

static PyObject *dvpy_result_name(PyObject *mod, PyObject *arg) {
    (void)mod;
    long v = PyLong_AsLong(arg);
    if (v == -1 && PyErr_Occurred()) {
        return NULL;
    }
    return PyUnicode_FromString(dv_result_name((dv_result_t)v));
}

static PyObject *dvpy_last_error(PyObject *mod, PyObject *unused) {
    (void)mod;
    (void)unused;
    return PyUnicode_FromString(dv_last_error());
}

static PyObject *dvpy_backends(PyObject *mod, PyObject *unused) {
    (void)mod;
    (void)unused;
    int n = dv_backend_count();
    PyObject *list = PyList_New(0);
    if (!list) {
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        dv_backend_info_t info;
        memset(&info, 0, sizeof(info));
        dv_result_t r;
        Py_BEGIN_ALLOW_THREADS
        r = dv_backend_probe(i, &info);
        Py_END_ALLOW_THREADS
        if (r != DV_OK) {
            Py_DECREF(list);
            return dvpy_raise(r);
        }
        PyObject *d = Py_BuildValue("{s:s,s:O,s:i,s:s}", "name", info.name,
                                    "available",
                                    info.available ? Py_True : Py_False,
                                    "device_count", info.device_count,
                                    "reason", info.reason);
        if (!d || PyList_Append(list, d) < 0) {
            Py_XDECREF(d);
            Py_DECREF(list);
            return NULL;
        }
        Py_DECREF(d);
    }
    return list;
}

/* The entry points the interposer calls, for dv_interpose_attach(). The
 * extension carries its own copy of the library, so the interposer must call
 * this copy, not look symbols up globally. */
static const dv_interpose_api_t dvpy_api = {
    .version = DV_INTERPOSE_API_VERSION,
    .framework_reserve = dv_framework_reserve,
    .framework_release = dv_framework_release,
    .framework_evict = dv_framework_evict,
    .device_get_stats = dv_device_get_stats,
    .graph_alloc = dv_graph_alloc,
    .graph_free = dv_graph_free,
};

PyObject *dvpy_interpose_api(PyObject *mod, PyObject *unused) {
    (void)mod;
    (void)unused;
    return PyLong_FromVoidPtr((void *)&dvpy_api);
}

static PyMethodDef dvpy_methods[] = {
    {"result_name", dvpy_result_name, METH_O, "Symbolic name of a result code."},
    {"last_error", dvpy_last_error, METH_NOARGS,
     "dv_last_error() of the calling thread."},
    {"backends", dvpy_backends, METH_NOARGS,
     "Probe every built-in backend: list of dicts."},
    {"set_log_handler", dvpy_set_log_handler, METH_O,
     "Route library messages to handler(level, msg); None = stderr."},
    {"flush_log", dvpy_flush_log, METH_NOARGS,
     "Emit messages queued by threads that did not hold the GIL."},
    {"set_log_level", dvpy_set_log_level, METH_O, "dv_log_set_level."},
    {"get_log_level", dvpy_get_log_level, METH_NOARGS, "dv_log_get_level."},
    {"dlpack_capsule", dvpy_dlpack_capsule, METH_VARARGS,
     "dlpack_capsule(vbar, offset, nbytes, device_type, device_id): a "
     "'dltensor' capsule of nbytes uint8 at vbar.base + offset, an export "
     "of the VBAR until its deleter runs."},
    {"interpose_api", dvpy_interpose_api, METH_NOARGS,
     "Address of the dv_interpose_api_t of this extension's dynvram."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef dvpy_module = {
    PyModuleDef_HEAD_INIT, "_native",
    "Native core of the dynvram package (CPython stable ABI).", -1,
    dvpy_methods, NULL, NULL, NULL, NULL,
};

static int dvpy_add_int(PyObject *m, const char *name, long v) {
    return PyModule_AddIntConstant(m, name, v);
}

/* Every result code, by its C name. */
static const struct dvpy_result_const {
    const char *name;
    long value;
} dvpy_result_consts[] = {
#define DVPY_RESULT_CONST(name, value, text) {#name, (long)(value)},
    DV_RESULT_LIST(DVPY_RESULT_CONST)
#undef DVPY_RESULT_CONST
};

static int dvpy_add_constants(PyObject *m) {
    /* The module's names drop the C prefix: DV_ERROR_BUSY is
     * dynvram._native.ERROR_BUSY. */
    static const char prefix[] = "DV_";
    const size_t plen = sizeof(prefix) - 1;
    size_t n = sizeof(dvpy_result_consts) / sizeof(dvpy_result_consts[0]);
    for (size_t i = 0; i < n; i++) {
        const char *name = dvpy_result_consts[i].name;
        if (strncmp(name, prefix, plen) == 0) {
            name += plen;
        }
        if (dvpy_add_int(m, name, dvpy_result_consts[i].value) < 0) {
            return -1;
        }
    }
    if (dvpy_add_int(m, "PAGE_RESIDENT", DV_PAGE_RESIDENT) < 0 ||
        dvpy_add_int(m, "PAGE_PINNED", DV_PAGE_PINNED) < 0 ||
        dvpy_add_int(m, "CAP_FENCES", DV_CAP_FENCES) < 0 ||
        dvpy_add_int(m, "CAP_ASYNC_COPY", DV_CAP_ASYNC_COPY) < 0 ||
        dvpy_add_int(m, "CAP_HOST_REGISTER", DV_CAP_HOST_REGISTER) < 0 ||
        dvpy_add_int(m, "CAP_HOST_ACCESSIBLE", DV_CAP_HOST_ACCESSIBLE) < 0 ||
        dvpy_add_int(m, "VERSION_MAJOR", DV_VERSION_MAJOR) < 0 ||
        dvpy_add_int(m, "VERSION_MINOR", DV_VERSION_MINOR) < 0 ||
        dvpy_add_int(m, "VERSION_PATCH", DV_VERSION_PATCH) < 0 ||
        dvpy_add_int(m, "PLACEMENT_SPREAD", DV_PLACEMENT_SPREAD) < 0 ||
        dvpy_add_int(m, "PLACEMENT_PREFIX", DV_PLACEMENT_PREFIX) < 0 ||
        dvpy_add_int(m, "RANGE_PREFER_RESIDENT", DV_RANGE_PREFER_RESIDENT) < 0 ||
        dvpy_add_int(m, "USE_PLANNED_RESIDENT", DV_USE_PLANNED_RESIDENT) < 0 ||
        dvpy_add_int(m, "USE_RESIDENT", DV_USE_RESIDENT) < 0) {
        return -1;
    }
    return 0;
}

static int dvpy_add_object(PyObject *m, const char *name, PyObject *o) {
    Py_INCREF(o);
    if (PyModule_AddObject(m, name, o) < 0) {
        Py_DECREF(o);
        return -1;
    }
    return 0;
}

PyMODINIT_FUNC PyInit__native(void);

PyMODINIT_FUNC PyInit__native(void) {
    PyObject *m = PyModule_Create(&dvpy_module);
    if (!m) {
        return NULL;
    }
    PyObject *bases = NULL;
    dvpy_error = PyErr_NewException("dynvram.Error", PyExc_RuntimeError, NULL);
    if (!dvpy_error) {
        goto fail;
    }
    bases = PyTuple_Pack(2, dvpy_error, PyExc_ValueError);
    if (!bases) {
        goto fail;
    }
    dvpy_value_error = PyErr_NewException("dynvram.InvalidArgumentError",
                                          bases, NULL);
    Py_CLEAR(bases);
    if (!dvpy_value_error) {
        goto fail;
    }
    bases = PyTuple_Pack(2, dvpy_error, PyExc_MemoryError);
    if (!bases) {
        goto fail;
    }
    dvpy_memory_error = PyErr_NewException("dynvram.OutOfMemoryError", bases,
                                           NULL);
    Py_CLEAR(bases);
    if (!dvpy_memory_error) {
        goto fail;
    }
    dvpy_graph_break_error =
        PyErr_NewException("dynvram.GraphBreakError", dvpy_error, NULL);
    if (!dvpy_graph_break_error) {
        goto fail;
    }
    dvpy_device_type = (PyTypeObject *)PyType_FromSpec(&dvpy_device_spec);
    if (!dvpy_device_type) {
        goto fail;
    }
    dvpy_vbar_type = (PyTypeObject *)PyType_FromSpec(&dvpy_vbar_spec);
    if (!dvpy_vbar_type) {
        goto fail;
    }
    dvpy_graph_type = (PyTypeObject *)PyType_FromSpec(&dvpy_graph_spec);
    if (!dvpy_graph_type) {
        goto fail;
    }
    dvpy_schedule_type = (PyTypeObject *)PyType_FromSpec(&dvpy_schedule_spec);
    if (!dvpy_schedule_type) {
        goto fail;
    }
    if (dvpy_add_object(m, "Error", dvpy_error) < 0 ||
        dvpy_add_object(m, "InvalidArgumentError", dvpy_value_error) < 0 ||
        dvpy_add_object(m, "OutOfMemoryError", dvpy_memory_error) < 0 ||
        dvpy_add_object(m, "Device", (PyObject *)dvpy_device_type) < 0 ||
        dvpy_add_object(m, "VBAR", (PyObject *)dvpy_vbar_type) < 0 ||
        dvpy_add_object(m, "Graph", (PyObject *)dvpy_graph_type) < 0 ||
        dvpy_add_object(m, "GraphBreakError", dvpy_graph_break_error) < 0 ||
        dvpy_add_object(m, "Schedule", (PyObject *)dvpy_schedule_type) < 0 ||
        dvpy_add_constants(m) < 0 ||
        PyModule_AddFunctions(m, dvpy_hostio_methods) < 0 ||
        dvpy_hostio_add_constants(m) < 0 ||
        PyModule_AddIntConstant(m, "DEFAULT_PAGE_SIZE",
                                (long)DV_DEFAULT_PAGE_SIZE) < 0) {
        goto fail;
    }
    return m;
fail:
    Py_XDECREF(bases);
    Py_DECREF(m);
    return NULL;
}
