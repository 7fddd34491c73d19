/*
 * dlpack.c - DLPack capsules over a range of device (or host) memory.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * torch.from_dlpack() takes the device from the DLPack struct instead of
 * asking the driver about the pointer, so it works for a VBAR range whose
 * pages are not mapped at the moment the view is made. The structs below
 * follow the DLPack 0.x ABI ("dltensor" capsules, DLManagedTensor); only
 * the fields used here are named.
 *
 * Ownership: the managed tensor is an export of its VBAR (vbar.c): it holds
 * a strong reference to the VBAR object and keeps the address range
 * reserved, even across VBAR.close(), until the consumer calls the deleter.
 * The deleter may run on any thread (a framework freeing the tensor), so it
 * takes the GIL to release the export.
 */
#include "native.h"

#include <stdlib.h>

enum {
    DVPY_DL_CPU = 1,
    DVPY_DL_CUDA = 2,
    DVPY_DL_CUDA_HOST = 3,
    DVPY_DL_ROCM = 10,
    DVPY_DL_ONEAPI = 14,
    DVPY_DL_UINT = 1,
};

typedef struct dvpy_dl_device {
    int32_t device_type;
    int32_t device_id;
} dvpy_dl_device;

typedef struct dvpy_dl_dtype {
    uint8_t code;
    uint8_t bits;
    uint16_t lanes;
} dvpy_dl_dtype;

typedef struct dvpy_dl_tensor {
    void *data;
    dvpy_dl_device device;
    int32_t ndim;
    dvpy_dl_dtype dtype;
    int64_t *shape;
    int64_t *strides; /* NULL = compact row-major */
    uint64_t byte_offset;
} dvpy_dl_tensor;

typedef struct dvpy_dl_managed {
    dvpy_dl_tensor dl_tensor;
    void *manager_ctx;
    void (*deleter)(struct dvpy_dl_managed *self);
} dvpy_dl_managed;

/* One allocation holds the managed tensor and its shape. */
typedef struct dvpy_dl_block {
    dvpy_dl_managed m;
    int64_t shape[1];
    dvpy_vbar *owner; /* a VBAR export, or NULL: */
    PyObject *keep;   /* a strong reference (host buffer views) */
} dvpy_dl_block;

static void dvpy_dl_deleter(dvpy_dl_managed *m) {
    dvpy_dl_block *b = (dvpy_dl_block *)m;
    if (Py_IsInitialized()) {
        PyGILState_STATE st = PyGILState_Ensure();
        if (b->owner) {
            dvpy_vbar_export_release(b->owner);
        }
        Py_XDECREF(b->keep);
        PyGILState_Release(st);
    }
    free(b);
}

static void dvpy_dl_capsule_destructor(PyObject *cap) {
    /* Renamed to "used_dltensor" once a consumer took ownership (its
     * deleter is then the consumer's to call). IsValid sets no exception,
     * and one already pending (the capsule freed while it propagates) must
     * survive. */
    if (PyCapsule_IsValid(cap, "dltensor")) {
        dvpy_dl_managed *m = PyCapsule_GetPointer(cap, "dltensor");
        if (m && m->deleter) {
            m->deleter(m);
        }
    }
}

static void dvpy_dl_fill(dvpy_dl_block *b, uint64_t addr, uint64_t n,
                         int dtype, int did);

/* dlpack_capsule(vbar, offset, nbytes, device_type, device_id) */
PyObject *dvpy_dlpack_capsule(PyObject *mod, PyObject *args) {
    (void)mod;
    PyObject *vobj, *offobj, *nobj;
    int dtype, did;
    if (!PyArg_ParseTuple(args, "OOOii", &vobj, &offobj, &nobj, &dtype, &did)) {
        return NULL;
    }
    if (!PyObject_TypeCheck(vobj, dvpy_vbar_type)) {
        PyErr_SetString(PyExc_TypeError, "vbar must be a dynvram.VBAR");
        return NULL;
    }
    dvpy_vbar *v = (dvpy_vbar *)vobj;
    uint64_t off, n;
    if (dvpy_u64(offobj, "offset", &off) < 0 ||
        dvpy_u64(nobj, "nbytes", &n) < 0) {
        return NULL;
    }
    if (n == 0 || off > v->size || n > v->size - off) {
        char msg[160];
        snprintf(msg, sizeof(msg),
                 "dlpack_capsule: range [%llu, +%llu) is empty or outside the "
                 "VBAR's %llu bytes",
                 (unsigned long long)off, (unsigned long long)n,
                 (unsigned long long)v->size);
        return dvpy_raise_msg(
            n == 0 ? DV_ERROR_INVALID_ARGUMENT : DV_ERROR_OUT_OF_RANGE, msg);
    }
    dvpy_dl_block *b = calloc(1, sizeof(*b));
    if (!b) {
        return PyErr_NoMemory();
    }
    if (dvpy_vbar_export_acquire(v) < 0) {
        free(b);
        return NULL;
    }
    b->owner = v;
    dvpy_dl_fill(b, v->base + off, n, dtype, did);
    PyObject *cap = PyCapsule_New(&b->m, "dltensor", dvpy_dl_capsule_destructor);
    if (!cap) {
        dvpy_vbar_export_release(v);
        free(b);
        return NULL;
    }
    return cap;
}

static void dvpy_dl_fill(dvpy_dl_block *b, uint64_t addr, uint64_t n,
                         int dtype, int did) {
    b->shape[0] = (int64_t)n; /* n < 2^63: a VBAR's or a host buffer's size */
    b->m.dl_tensor.data = (void *)(uintptr_t)addr;
    b->m.dl_tensor.device.device_type = dtype;
    b->m.dl_tensor.device.device_id = did;
    b->m.dl_tensor.ndim = 1;
    b->m.dl_tensor.dtype.code = DVPY_DL_UINT;
    b->m.dl_tensor.dtype.bits = 8;
    b->m.dl_tensor.dtype.lanes = 1;
    b->m.dl_tensor.shape = b->shape;
    b->m.dl_tensor.strides = NULL;
    b->m.dl_tensor.byte_offset = 0;
    b->m.manager_ctx = b;
    b->m.deleter = dvpy_dl_deleter;
}

/* dlpack_host_capsule(address, nbytes, owner): CPU memory the caller
 * vouches for (a host buffer range); `owner` stays referenced until the
 * consumer's deleter runs. */
PyObject *dvpy_dlpack_host_capsule(PyObject *mod, PyObject *args) {
    (void)mod;
    PyObject *aobj, *nobj, *owner;
    if (!PyArg_ParseTuple(args, "OOO", &aobj, &nobj, &owner)) {
        return NULL;
    }
    uint64_t addr, n;
    if (dvpy_u64(aobj, "address", &addr) < 0 ||
        dvpy_u64(nobj, "nbytes", &n) < 0) {
        return NULL;
    }
    if (!addr || n == 0 || n >> 62) {
        return dvpy_raise_msg(DV_ERROR_INVALID_ARGUMENT,
                              "dlpack_host_capsule: address 0 or a size of 0 "
                              "or above 2^62");
    }
    dvpy_dl_block *b = calloc(1, sizeof(*b));
    if (!b) {
        return PyErr_NoMemory();
    }
    Py_INCREF(owner);
    b->keep = owner;
    dvpy_dl_fill(b, addr, n, DVPY_DL_CPU, 0);
    PyObject *cap = PyCapsule_New(&b->m, "dltensor", dvpy_dl_capsule_destructor);
    if (!cap) {
        Py_DECREF(owner);
        free(b);
    }
    return cap;
}
