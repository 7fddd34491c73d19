/*
 * hostio.c - dynvram._native's host I/O functions: a flat layer over
 * include/dynvram_io.h that dynvram/hostio.py wraps in classes.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Objects cross this layer as the library's handles, passed as ints. That
 * is safe by construction: the library validates every handle before use,
 * so a dead or junk one raises ValueError (DV_ERROR_INVALID_ARGUMENT)
 * instead of touching freed memory. Functions taking a device take the
 * Device object, whose `busy` count keeps close() from freeing it while a
 * call runs with the GIL released (every call here releases it: reads and
 * registrations take milliseconds to seconds).
 */
#include "native.h"

#include "dynvram_io.h"

/* The open device of a Device object, or NULL with an exception set. */
static dvpy_device *dvpy_io_device(PyObject *o) {
    if (!PyObject_TypeCheck(o, dvpy_device_type)) {
        PyErr_SetString(PyExc_TypeError, "device must be a dynvram.Device");
        return NULL;
    }
    dvpy_device *d = (dvpy_device *)o;
    if (!d->dev) {
        dvpy_raise_msg(DV_ERROR_INVALID_ARGUMENT, "device is closed");
        return NULL;
    }
    return d;
}

static int dvpy_io_u32(PyObject *o, const char *what, uint32_t *out) {
    uint64_t v;
    if (dvpy_u64(o, what, &v) < 0) {
        return -1;
    }
    if (v > UINT32_MAX) {
        PyErr_Format(PyExc_ValueError, "%s is too large", what);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

#define U64(o, name, var)                                                      \
    uint64_t var;                                                              \
    if (dvpy_u64((o), name, &var) < 0) {                                       \
        return NULL;                                                           \
    }

#define HANDLE(o, type, var)                                                   \
    U64(o, "handle", var##_v);                                                 \
    type *var = (type *)(uintptr_t)var##_v;

#define DEVICE(o, var)                                                         \
    dvpy_device *var = dvpy_io_device(o);                                      \
    if (!var) {                                                                \
        return NULL;                                                           \
    }

static PyObject *dvpy_io_done(dv_result_t r) {
    if (r != DV_OK) {
        return dvpy_raise(r);
    }
    Py_RETURN_NONE;
}

/* Run a call on device d with the GIL released. */
#define DEV_CALL(d, expr, r) DVPY_CALL(d, expr, r)

/* A call without a device (files). */
#define FREE_CALL(expr, r)                                                     \
    do {                                                                       \
        PyThreadState *dvpy_ts_ = PyEval_SaveThread();                         \
        (r) = (expr);                                                          \
        PyEval_RestoreThread(dvpy_ts_);                                        \
        dvpy_log_poll();                                                       \
    } while (0)

static int dvpy_nargs(Py_ssize_t n, Py_ssize_t want, const char *sig) {
    if (n != want) {
        PyErr_Format(PyExc_TypeError, "%s takes %zd arguments", sig, want);
        return -1;
    }
    return 0;
}

#define ARGS(n, sig)                                                           \
    if (dvpy_nargs(nargs, n, sig) < 0) {                                       \
        return NULL;                                                           \
    }

/* ---- host buffers -------------------------------------------------------- */

static PyObject *hb_create(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    ARGS(2, "hostbuf_create(device, max_size)");
    DEVICE(a[0], d);
    U64(a[1], "max_size", max);
    dv_hostbuf_t *hb = NULL;
    dv_result_t r;
    DEV_CALL(d, dv_hostbuf_create(d->dev, max, &hb), r);
    return r == DV_OK ? PyLong_FromVoidPtr(hb) : dvpy_raise(r);
}

static PyObject *hb_destroy(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    ARGS(2, "hostbuf_destroy(device, handle)");
    DEVICE(a[0], d);
    HANDLE(a[1], dv_hostbuf_t, hb);
    dv_result_t r;
    DEV_CALL(d, dv_hostbuf_destroy(d->dev, hb), r);
    return dvpy_io_done(r);
}

static PyObject *hb_extend(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    ARGS(4, "hostbuf_extend(device, handle, nbytes, flags)");
    DEVICE(a[0], d);
    HANDLE(a[1], dv_hostbuf_t, hb);
    U64(a[2], "nbytes", n);
    uint32_t flags;
    if (dvpy_io_u32(a[3], "flags", &flags) < 0) {
        return NULL;
    }
    uint64_t off = 0;
    dv_result_t r;
    DEV_CALL(d, dv_hostbuf_extend(d->dev, hb, n, flags, &off), r);
    return r == DV_OK ? PyLong_FromUnsignedLongLong(off) : dvpy_raise(r);
}

static PyObject *hb_truncate(PyObject *m, PyObject *const *a,
                             Py_ssize_t nargs) {
    ARGS(4, "hostbuf_truncate(device, handle, size, flags)");
    DEVICE(a[0], d);
    HANDLE(a[1], dv_hostbuf_t, hb);
    U64(a[2], "size", size);
    uint32_t flags;
    if (dvpy_io_u32(a[3], "flags", &flags) < 0) {
        return NULL;
    }
    dv_result_t r;
    DEV_CALL(d, dv_hostbuf_truncate(d->dev, hb, size, flags), r);
    return dvpy_io_done(r);
}

static PyObject *hb_register(PyObject *m, PyObject *const *a,
                             Py_ssize_t nargs) {
    ARGS(4, "hostbuf_register(device, handle, offset, size)");
    DEVICE(a[0], d);
    HANDLE(a[1], dv_hostbuf_t, hb);
    U64(a[2], "offset", off);
    U64(a[3], "size", size);
    dv_result_t r;
    DEV_CALL(d, dv_hostbuf_register(d->dev, hb, off, size), r);
    return dvpy_io_done(r);
}

static PyObject *hb_unregister(PyObject *m, PyObject *const *a,
                               Py_ssize_t nargs) {
    ARGS(3, "hostbuf_unregister(device, handle, offset)");
    DEVICE(a[0], d);
    HANDLE(a[1], dv_hostbuf_t, hb);
    U64(a[2], "offset", off);
    dv_result_t r;
    DEV_CALL(d, dv_hostbuf_unregister(d->dev, hb, off), r);
    return dvpy_io_done(r);
}

static PyObject *hb_prewarm(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    ARGS(5, "hostbuf_prewarm(device, handle, offset, size, threads)");
    DEVICE(a[0], d);
    HANDLE(a[1], dv_hostbuf_t, hb);
    U64(a[2], "offset", off);
    U64(a[3], "size", size);
    uint32_t threads;
    if (dvpy_io_u32(a[4], "threads", &threads) < 0) {
        return NULL;
    }
    dv_result_t r;
    DEV_CALL(d, dv_hostbuf_prewarm(d->dev, hb, off, size, threads), r);
    return dvpy_io_done(r);
}

static PyObject *hb_info(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    ARGS(2, "hostbuf_info(device, handle)");
    DEVICE(a[0], d);
    HANDLE(a[1], dv_hostbuf_t, hb);
    dv_hostbuf_info_t i;
    dv_result_t r;
    DEV_CALL(d, dv_hostbuf_get_info(d->dev, hb, &i), r);
    if (r != DV_OK) {
        return dvpy_raise(r);
    }
    return Py_BuildValue("{s:K,s:K,s:K,s:K,s:K,s:I,s:I}", "address",
                         (unsigned long long)(uintptr_t)i.base, "size",
                         (unsigned long long)i.size, "max_size",
                         (unsigned long long)i.max_size, "committed",
                         (unsigned long long)i.committed, "registered_bytes",
                         (unsigned long long)i.registered_bytes,
                         "registrations", (unsigned)i.registrations,
                         "reads_in_flight", (unsigned)i.reads_in_flight);
}

static PyObject *hb_registrations(PyObject *m, PyObject *const *a,
                                  Py_ssize_t nargs) {
    ARGS(2, "hostbuf_registrations(device, handle)");
    DEVICE(a[0], d);
    HANDLE(a[1], dv_hostbuf_t, hb);
    dv_hostbuf_range_t ranges[256];
    uint32_t n = 0;
    dv_result_t r;
    DEV_CALL(d, dv_hostbuf_registrations(d->dev, hb, ranges, 256, &n), r);
    if (r != DV_OK) {
        return dvpy_raise(r);
    }
    PyObject *list = PyList_New(0);
    for (uint32_t i = 0; list && i < n && i < 256; i++) {
        PyObject *t =
            Py_BuildValue("(KK)", (unsigned long long)ranges[i].offset,
                          (unsigned long long)ranges[i].size);
        if (!t || PyList_Append(list, t) < 0) {
            Py_XDECREF(t);
            Py_CLEAR(list);
            break;
        }
        Py_DECREF(t);
    }
    return list;
}

static void *dvpy_stream(uint64_t s) { return (void *)(uintptr_t)s; }

static PyObject *hb_copy(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    ARGS(6, "hostbuf_copy_h2d(device, handle, offset, size, dst, stream)");
    DEVICE(a[0], d);
    HANDLE(a[1], dv_hostbuf_t, hb);
    U64(a[2], "offset", off);
    U64(a[3], "size", size);
    U64(a[4], "dst", dst);
    U64(a[5], "stream", stream);
    dv_result_t r;
    DEV_CALL(
        d, dv_hostbuf_copy_h2d(d->dev, hb, off, size, dst, dvpy_stream(stream)),
        r);
    return dvpy_io_done(r);
}

/* ---- files --------------------------------------------------------------- */

static PyObject *f_open(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    ARGS(1, "file_open(path: bytes)");
    /* bytes: os.fsencode on POSIX, UTF-8 on Windows (hostio.py) */
    const char *path = PyBytes_AsString(a[0]);
    if (!path) {
        return NULL;
    }
    dv_file_t *f = NULL;
    dv_result_t r;
    FREE_CALL(dv_file_open(path, &f), r);
    return r == DV_OK ? PyLong_FromVoidPtr(f) : dvpy_raise(r);
}

static PyObject *f_open_native(PyObject *m, PyObject *const *a,
                               Py_ssize_t nargs) {
    ARGS(1, "file_open_native(handle)");
    long long native = PyLong_AsLongLong(a[0]);
    if (native == -1 && PyErr_Occurred()) {
        return NULL;
    }
    dv_file_t *f = NULL;
    dv_result_t r;
    FREE_CALL(dv_file_open_native((int64_t)native, &f), r);
    return r == DV_OK ? PyLong_FromVoidPtr(f) : dvpy_raise(r);
}

static PyObject *f_close(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    ARGS(1, "file_close(handle)");
    HANDLE(a[0], dv_file_t, f);
    dv_result_t r;
    FREE_CALL(dv_file_close(f), r);
    return dvpy_io_done(r);
}

static PyObject *f_info(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    ARGS(1, "file_info(handle)");
    HANDLE(a[0], dv_file_t, f);
    dv_file_info_t i;
    dv_result_t r;
    FREE_CALL(dv_file_get_info(f, &i), r);
    if (r != DV_OK) {
        return dvpy_raise(r);
    }
    return Py_BuildValue(
        "{s:K,s:L,s:K,s:K}", "size", (unsigned long long)i.size, "native",
        (long long)i.native, "address", (unsigned long long)(uintptr_t)i.map,
        "bounces", (unsigned long long)i.bounces);
}

static PyObject *f_map(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    ARGS(1, "file_map(handle)");
    HANDLE(a[0], dv_file_t, f);
    const void *p = NULL;
    dv_result_t r;
    FREE_CALL(dv_file_map(f, &p), r);
    return r == DV_OK ? PyLong_FromUnsignedLongLong((uintptr_t)p)
                      : dvpy_raise(r);
}

static PyObject *f_bounce(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    ARGS(1, "file_bounce(handle)");
    HANDLE(a[0], dv_file_t, f);
    dv_result_t r;
    FREE_CALL(dv_file_bounce(f), r);
    return dvpy_io_done(r);
}

static PyObject *f_cold(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    ARGS(3, "file_mark_cold(handle, offset, size)");
    HANDLE(a[0], dv_file_t, f);
    U64(a[1], "offset", off);
    U64(a[2], "size", size);
    dv_result_t r;
    FREE_CALL(dv_file_mark_cold(f, off, size), r);
    return dvpy_io_done(r);
}

/* ---- readers ------------------------------------------------------------- */

static PyObject *rd_create(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    ARGS(4, "reader_create(device, threads, slots, chunk_size)");
    DEVICE(a[0], d);
    dv_reader_options_t o;
    dv_reader_options_init(&o);
    if (dvpy_io_u32(a[1], "threads", &o.threads) < 0 ||
        dvpy_io_u32(a[2], "slots", &o.slots) < 0 ||
        dvpy_u64(a[3], "chunk_size", &o.chunk_size) < 0) {
        return NULL;
    }
    dv_reader_t *rd = NULL;
    dv_result_t r;
    DEV_CALL(d, dv_reader_create(d->dev, &o, &rd), r);
    return r == DV_OK ? PyLong_FromVoidPtr(rd) : dvpy_raise(r);
}

static PyObject *rd_destroy(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    ARGS(2, "reader_destroy(device, handle)");
    DEVICE(a[0], d);
    HANDLE(a[1], dv_reader_t, rd);
    dv_result_t r;
    DEV_CALL(d, dv_reader_destroy(d->dev, rd), r);
    return dvpy_io_done(r);
}

static PyObject *rd_info(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    ARGS(2, "reader_info(device, handle)");
    DEVICE(a[0], d);
    HANDLE(a[1], dv_reader_t, rd);
    dv_reader_info_t i;
    dv_result_t r;
    DEV_CALL(d, dv_reader_get_info(d->dev, rd, &i), r);
    if (r != DV_OK) {
        return dvpy_raise(r);
    }
    return Py_BuildValue(
        "{s:I,s:I,s:K,s:K,s:O,s:I,s:K,s:K,s:K,s:K}", "threads", i.threads,
        "slots", i.slots, "chunk_size", (unsigned long long)i.chunk_size,
        "staging_bytes", (unsigned long long)i.staging_bytes, "staging_pinned",
        i.staging_pinned ? Py_True : Py_False, "reads_in_flight",
        i.reads_in_flight, "bytes_read", (unsigned long long)i.bytes_read,
        "chunks", (unsigned long long)i.chunks, "slot_waits",
        (unsigned long long)i.slot_waits, "fence_waits",
        (unsigned long long)i.fence_waits);
}

static PyObject *rd_to_host(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    ARGS(8, "read_to_host(device, reader, file, file_offset, size, hostbuf, "
            "offset, flags)");
    DEVICE(a[0], d);
    HANDLE(a[1], dv_reader_t, rd);
    HANDLE(a[2], dv_file_t, f);
    U64(a[3], "file_offset", foff);
    U64(a[4], "size", size);
    HANDLE(a[5], dv_hostbuf_t, hb);
    U64(a[6], "offset", off);
    uint32_t flags;
    if (dvpy_io_u32(a[7], "flags", &flags) < 0) {
        return NULL;
    }
    dv_result_t r;
    DEV_CALL(d, dv_read_to_host(d->dev, rd, f, foff, size, hb, off, flags), r);
    return dvpy_io_done(r);
}

static PyObject *rd_to_device(PyObject *m, PyObject *const *a,
                              Py_ssize_t nargs) {
    ARGS(8, "read_to_device(device, reader, file, file_offset, size, dst, "
            "stream, flags)");
    DEVICE(a[0], d);
    HANDLE(a[1], dv_reader_t, rd);
    HANDLE(a[2], dv_file_t, f);
    U64(a[3], "file_offset", foff);
    U64(a[4], "size", size);
    U64(a[5], "dst", dst);
    U64(a[6], "stream", stream);
    uint32_t flags;
    if (dvpy_io_u32(a[7], "flags", &flags) < 0) {
        return NULL;
    }
    dv_result_t r;
    DEV_CALL(d,
             dv_read_to_device(d->dev, rd, f, foff, size, dst,
                               dvpy_stream(stream), flags),
             r);
    return dvpy_io_done(r);
}

/* ---- device buffers ------------------------------------------------------ */

static PyObject *db_create(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    ARGS(2, "devbuf_create(device, max_size)");
    DEVICE(a[0], d);
    U64(a[1], "max_size", max);
    dv_devbuf_t *db = NULL;
    dv_result_t r;
    DEV_CALL(d, dv_devbuf_create(d->dev, max, &db), r);
    return r == DV_OK ? PyLong_FromVoidPtr(db) : dvpy_raise(r);
}

static PyObject *db_destroy(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    ARGS(2, "devbuf_destroy(device, handle)");
    DEVICE(a[0], d);
    HANDLE(a[1], dv_devbuf_t, db);
    dv_result_t r;
    DEV_CALL(d, dv_devbuf_destroy(d->dev, db), r);
    return dvpy_io_done(r);
}

static PyObject *db_resize(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    ARGS(3, "devbuf_resize(device, handle, size)");
    DEVICE(a[0], d);
    HANDLE(a[1], dv_devbuf_t, db);
    U64(a[2], "size", size);
    dv_result_t r;
    DEV_CALL(d, dv_devbuf_resize(d->dev, db, size), r);
    return dvpy_io_done(r);
}

static PyObject *db_info(PyObject *m, PyObject *const *a, Py_ssize_t nargs) {
    ARGS(2, "devbuf_info(device, handle)");
    DEVICE(a[0], d);
    HANDLE(a[1], dv_devbuf_t, db);
    dv_devbuf_info_t i;
    dv_result_t r;
    DEV_CALL(d, dv_devbuf_get_info(d->dev, db, &i), r);
    if (r != DV_OK) {
        return dvpy_raise(r);
    }
    return Py_BuildValue(
        "{s:K,s:K,s:K,s:K}", "address", (unsigned long long)i.base, "size",
        (unsigned long long)i.size, "mapped", (unsigned long long)i.mapped,
        "max_size", (unsigned long long)i.max_size);
}

#define FAST(name, fn, doc)                                                    \
    { name, (PyCFunction)(void (*)(void))fn, METH_FASTCALL, doc }

PyMethodDef dvpy_hostio_methods[] = {
    FAST("hostbuf_create", hb_create, "dv_hostbuf_create -> handle"),
    FAST("hostbuf_destroy", hb_destroy, "dv_hostbuf_destroy"),
    FAST("hostbuf_extend", hb_extend, "dv_hostbuf_extend -> offset"),
    FAST("hostbuf_truncate", hb_truncate, "dv_hostbuf_truncate"),
    FAST("hostbuf_register", hb_register, "dv_hostbuf_register"),
    FAST("hostbuf_unregister", hb_unregister, "dv_hostbuf_unregister"),
    FAST("hostbuf_prewarm", hb_prewarm, "dv_hostbuf_prewarm"),
    FAST("hostbuf_info", hb_info, "dv_hostbuf_get_info -> dict"),
    FAST("hostbuf_registrations", hb_registrations,
         "dv_hostbuf_registrations -> [(offset, size)]"),
    FAST("hostbuf_copy_h2d", hb_copy, "dv_hostbuf_copy_h2d"),
    FAST("file_open", f_open, "dv_file_open -> handle"),
    FAST("file_open_native", f_open_native, "dv_file_open_native -> handle"),
    FAST("file_close", f_close, "dv_file_close"),
    FAST("file_info", f_info, "dv_file_get_info -> dict"),
    FAST("file_map", f_map, "dv_file_map -> address"),
    FAST("file_bounce", f_bounce, "dv_file_bounce"),
    FAST("file_mark_cold", f_cold, "dv_file_mark_cold"),
    FAST("reader_create", rd_create, "dv_reader_create -> handle"),
    FAST("reader_destroy", rd_destroy, "dv_reader_destroy"),
    FAST("reader_info", rd_info, "dv_reader_get_info -> dict"),
    FAST("read_to_host", rd_to_host, "dv_read_to_host"),
    FAST("read_to_device", rd_to_device, "dv_read_to_device"),
    FAST("devbuf_create", db_create, "dv_devbuf_create -> handle"),
    FAST("devbuf_destroy", db_destroy, "dv_devbuf_destroy"),
    FAST("devbuf_resize", db_resize, "dv_devbuf_resize"),
    FAST("devbuf_info", db_info, "dv_devbuf_get_info -> dict"),
    {"dlpack_host_capsule", dvpy_dlpack_host_capsule, METH_VARARGS,
     "dlpack_host_capsule(address, nbytes, owner): a 'dltensor' capsule of "
     "CPU uint8 keeping owner alive until the consumer's deleter runs."},
    {NULL, NULL, 0, NULL},
};

int dvpy_hostio_add_constants(PyObject *m) {
    return PyModule_AddIntConstant(m, "HOSTBUF_REGISTER", DV_HOSTBUF_REGISTER) |
           PyModule_AddIntConstant(m, "HOSTBUF_PREWARM", DV_HOSTBUF_PREWARM) |
           PyModule_AddIntConstant(m, "HOSTBUF_UNREGISTER",
                                   DV_HOSTBUF_UNREGISTER) |
           PyModule_AddIntConstant(m, "READ_MARK_COLD", DV_READ_MARK_COLD);
}
