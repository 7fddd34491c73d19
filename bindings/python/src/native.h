/*
 * native.h - shared declarations of the dynvram._native extension module.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * The module is built on CPython's stable ABI (Py_LIMITED_API 3.8), so one
 * binary serves every CPython >= 3.8. Its files:
 *   module.c  module init, result -> exception mapping, log routing
 *   device.c  the Device base type
 *   vbar.c    the VBAR base type, including the fault/unpin fast path
 *   dlpack.c  DLPack capsules over device or host memory
 *   graph.c   the Graph base type (allocation graphs)
 *   schedule.c the Schedule base type (dynvram_stream.h), its fast path
 *
 * State is module-global (the module does not support sub-interpreters).
 * Every function here expects the GIL to be held unless it says otherwise.
 */
#ifndef DVPY_NATIVE_H
#define DVPY_NATIVE_H

#ifndef Py_LIMITED_API
#define Py_LIMITED_API 0x03080000
#endif
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>

#include "base/os.h"
#include "dynvram.h"

/* METH_FASTCALL joined the stable ABI in 3.10, unchanged since CPython 3.7
 * introduced it (same flag value, same C signature), and every 3.8 and 3.9
 * interpreter honours it. The fast path needs it; the rest of the module
 * stays within the 3.8 limited API. */
#ifndef METH_FASTCALL
#define METH_FASTCALL 0x0080
#endif

typedef struct dvpy_device {
    PyObject_HEAD
    dv_device_t *dev; /* NULL once closed */
    /* Calls in flight with the GIL released: close() refuses while > 0. */
    int busy;
    int ordinal;
    uint64_t page_size;
    /* Streams made by stream_create and not destroyed yet (a set of ints,
     * NULL until the first): stream_destroy refuses any other value. */
    PyObject *streams;
    /* VBARs of this device closed while views of them were alive: their
     * handles are destroyed when the last view goes (vbar.c). */
    int deferred_vbars;
    /* The handle of a device closed while deferred_vbars > 0: closed when
     * the last of them is destroyed. NULL otherwise. */
    dv_device_t *deferred;
} dvpy_device;

#define DVPY_GEN_CACHE 256

typedef struct dvpy_vbar {
    PyObject_HEAD
    dvpy_device *owner; /* strong reference: the device outlives its VBARs */
    dv_device_t *dev;
    dv_vbar_t *vbar; /* NULL once closed */
    int busy;
    /* Live views (DLPackView, CudaArrayView) and arrays made from them
     * (DLPack capsules until their deleter ran). Each holds a reference to
     * this object; while any is alive the address range stays reserved. */
    int exports;
    /* The handle of a VBAR closed while exports > 0: destroyed when the
     * last export is released. NULL otherwise. */
    dv_vbar_t *deferred;
    uint64_t base;
    uint64_t size;
    uint64_t page_size;
    uint64_t page_count;
    /* Generation ints handed out, indexed by value: the resident fast path
     * returns a cached object instead of allocating a new int. */
    PyObject *gen_obj[DVPY_GEN_CACHE];
    uint64_t gen_val[DVPY_GEN_CACHE];
} dvpy_vbar;

/* Types and exceptions, created by module init. */
extern PyTypeObject *dvpy_device_type;
extern PyTypeObject *dvpy_vbar_type;
extern PyTypeObject *dvpy_graph_type;
extern PyObject *dvpy_error;

/* Raise the exception for result `r` (using dv_last_error()) and return
 * NULL. ValueError for invalid argument / out of range, MemoryError for
 * out of device or host memory, dynvram.Error otherwise; each carries
 * .code, .name and .message; dynvram.GraphBreakError (a dynvram.Error) for
 * DV_ERROR_GRAPH_BREAK. */
PyObject *dvpy_raise(dv_result_t r);
/* Raise dynvram.Error with `code` and a fixed message; returns NULL. */
PyObject *dvpy_raise_msg(dv_result_t code, const char *msg);

/* Convert a non-negative Python int (or __index__ object) to uint64_t.
 * Returns 0 on success, -1 with ValueError/TypeError set. */
int dvpy_u64(PyObject *o, const char *what, uint64_t *out);

/* Queued log messages (module.c). Written under the queue's mutex, read
 * without it: a stale read only delays a message to the next drain. */
extern volatile int dvpy_log_count;
/* Emit queued messages to the Python handler. GIL held; keeps any pending
 * exception. */
void dvpy_log_drain(void);

static inline void dvpy_log_poll(void) {
    if (dv__atomic_load_int(&dvpy_log_count)) {
        dvpy_log_drain();
    }
}

/* Run `expr` into `r` with the GIL released; self->busy counts the call so
 * close() cannot free the handle under it. Queued log messages are emitted
 * after a success only: a Python log handler may call dynvram and replace
 * the thread's dv_last_error(), so after a failure dvpy_raise() copies the
 * message first and then drains the queue. */
#define DVPY_CALL(self, expr, r)                                               \
    do {                                                                       \
        (self)->busy++;                                                        \
        PyThreadState *dvpy_ts_ = PyEval_SaveThread();                         \
        (r) = (expr);                                                          \
        PyEval_RestoreThread(dvpy_ts_);                                        \
        (self)->busy--;                                                        \
        if ((r) >= 0) {                                                        \
            dvpy_log_poll();                                                   \
        }                                                                      \
    } while (0)

/* Type specs, instantiated by module init. */
extern PyType_Spec dvpy_device_spec;
extern PyType_Spec dvpy_vbar_spec;
extern PyType_Spec dvpy_graph_spec;
extern PyType_Spec dvpy_schedule_spec;
extern PyTypeObject *dvpy_schedule_type;

/* Views (vbar.c). acquire: count a new export of `v` and take a reference
 * to it; ValueError (returns -1) when the VBAR is closed. release: drop
 * both; the last release of a closed VBAR destroys its handle (and closes
 * its device if that was closed meanwhile). GIL held; release keeps any
 * pending exception. */
int dvpy_vbar_export_acquire(dvpy_vbar *v);
void dvpy_vbar_export_release(dvpy_vbar *v);

/* A closed device's handle once its last deferred VBAR is gone (device.c). */
void dvpy_device_finish_close(dvpy_device *d);

/* A DLPack capsule over [addr, addr + n) (uint8) of a device of DLPack type
 * `dtype`, whose export of `owner` (taken by the caller) is ended by
 * release(owner) when the consumer is done, or at once on failure. */
PyObject *dvpy_dlpack_owned(uint64_t addr, uint64_t n, int dtype, int did,
                            PyObject *owner, void (*release)(PyObject *));

/* Module-level functions defined outside module.c. */
PyObject *dvpy_dlpack_capsule(PyObject *mod, PyObject *args);
PyObject *dvpy_interpose_api(PyObject *mod, PyObject *unused);

/* hostio.c: the host I/O functions and constants, added at module init. */
extern PyMethodDef dvpy_hostio_methods[];
/* dlpack.c: a capsule over host memory kept alive by a Python owner. */
PyObject *dvpy_dlpack_host_capsule(PyObject *mod, PyObject *args);
int dvpy_hostio_add_constants(PyObject *m);

#endif /* DVPY_NATIVE_H */
