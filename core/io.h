/*
 * io.h - what the host I/O files of core/ share: the common head of their
 * objects, validation and in-use counting of their handles, fence sets and
 * in-flight ranges.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Files: io.c (this header's helpers), hostbuf.c, modelfile.c, reader.c,
 * reader_ring.c (the staging ring), devbuf.c. The public contract is
 * include/dynvram_io.h.
 *
 * Lifetime. Every host I/O object starts with a dv__ioobj_t and is a handle
 * of core/handle.h's table. A call uses an object between dv__io_acquire
 * (the handle is validated and the object's `users` count raised, both
 * under one process-wide lock) and dv__io_release. A destroy acquires the
 * object too and then retires it: DV_ERROR_BUSY when another call holds it,
 * else the handle dies under the same lock, so no later acquire can find
 * it and the destroy may free it. Thus a destroy racing a read on another
 * thread is refused instead of freeing memory under it.
 *
 * Lock order: an object's own lock (a host buffer's, a reader's) before the
 * device lock; the process-wide I/O lock is a leaf, taken with either held
 * and never held while taking another.
 */
#ifndef DV_CORE_IO_H
#define DV_CORE_IO_H

#include "dynvram_io.h"

#include "base/os_file.h"
#include "base/os_thread.h"
#include "core/internal.h"

typedef struct dv__ioobj {
    uint64_t handle; /* the public handle value */
    dv__dev_t *dev;  /* owner; NULL for files */
    uint32_t kind;   /* dv__handle_kind_t */
    uint32_t users;  /* calls using it now (under the I/O lock) */
} dv__ioobj_t;

typedef struct dv__hostbuf dv__hostbuf_t;
typedef struct dv__file dv__file_t;
typedef struct dv__reader dv__reader_t;
typedef struct dv__devbuf dv__devbuf_t;

/* ---- handles (io.c) ---- */

/* Validate `oh` as a live object of `kind` (of device `dh` unless kind is
 * a file, whose dh is ignored) and count the caller as a user. *dev gets
 * the device (NULL for files). DV_ERROR_INVALID_ARGUMENT names the kind
 * expected (and the kind given when it is another object's handle);
 * DV_ERROR_WRONG_DEVICE when the object is another device's. */
dv_result_t dv__io_acquire(dv_device_t *dh, const void *oh,
                           dv__handle_kind_t kind, const char *fn,
                           dv__dev_t **dev, void **obj);
void dv__io_release(void *obj);
/* Raise the users of an object already held through another path. */
void dv__io_hold(void *obj);
/* Called by a destroy that acquired `obj`: DV_ERROR_BUSY if any other call
 * uses it (its handle stays live); else the handle is dead from here on. */
dv_result_t dv__io_retire(void *obj, const char *fn);
/* Give a new object its handle and count it on its device (dev may be
 * NULL). DV_ERROR_OUT_OF_HOST_MEMORY when the table is full. */
dv_result_t dv__io_publish(void *obj, dv__handle_kind_t kind, dv__dev_t *dev,
                           const char *fn);
/* Undo the device count of a retired object. */
void dv__io_unpublish(void *obj);
/* "host buffer", "file", ... */
const char *dv__io_kind_name(uint32_t kind);

/* ---- OS failures (io.c) ---- */

/* DV_ERROR_OUT_OF_HOST_MEMORY for OOM codes, else `r`, with the system's
 * text after `fn: what`. */
dv_result_t dv__io_os_fail(dv_result_t r, int code, const char *fn,
                           const char *what);

/* The text of a dv_last_error() message after its "DV_...: " prefix, to
 * carry a message from one thread to another. */
const char *dv__io_msg_body(const char *msg);

/* ---- fence sets (io.c): copies an object must outlive ---- */

#define DV__FENCESET_MAX 32

typedef struct dv__fenceset {
    dv_hal_fence_t f[DV__FENCESET_MAX];
    uint32_t n;
} dv__fenceset_t;

/* Keep `f` (device lock held); the set owns it from here on, whatever the
 * result. Finished fences are dropped first; a set still full waits for
 * its oldest: a failed wait drops that one anyway and is reported. */
dv_result_t dv__fenceset_add_locked(dv__dev_t *dev, dv__fenceset_t *s,
                                    dv_hal_fence_t f);
/* Wait for every fence and drop it (device lock held). On a failed wait
 * the fences not yet waited for are kept. */
dv_result_t dv__fenceset_drain_locked(dv__dev_t *dev, dv__fenceset_t *s);
/* Drop every fence without waiting (teardown after a failed drain). */
void dv__fenceset_forget_locked(dv__dev_t *dev, dv__fenceset_t *s);

/* ---- in-flight ranges (io.c) ---- */

typedef struct dv__range_ent {
    uint64_t lo, hi, id;
} dv__range_ent_t;

typedef struct dv__ranges {
    dv__range_ent_t *r;
    uint32_t n, cap;
    uint64_t next_id;
} dv__ranges_t;

/* 0, or -1 when the list cannot grow. */
int dv__ranges_add(dv__ranges_t *rs, uint64_t lo, uint64_t hi, uint64_t *id);
void dv__ranges_remove(dv__ranges_t *rs, uint64_t id);
/* The highest end of a range in flight, 0 if none. */
uint64_t dv__ranges_max_end(const dv__ranges_t *rs);
void dv__ranges_free(dv__ranges_t *rs);

/* ---- what the reader needs of the other objects ---- */

/* hostbuf.c: [off, off + size) of hb is written by a read from now until
 * dv__hostbuf_io_end(ticket); *ptr is its address. */
dv_result_t dv__hostbuf_io_begin(dv__hostbuf_t *hb, uint64_t off, uint64_t size,
                                 const char *fn, uint8_t **ptr,
                                 uint64_t *ticket);
void dv__hostbuf_io_end(dv__hostbuf_t *hb, uint64_t ticket);

/* modelfile.c: the OS file behind `f`, once [off, off + size) is checked
 * against its size. */
dv_result_t dv__file_range(dv__file_t *f, uint64_t off, uint64_t size,
                           const char *fn, dv__osfile_t *os);

/* devbuf.c, device lock held: check a device destination against the
 * device's VBARs (inside one, every page pinned) and device buffers
 * (inside one's size). A device buffer's range is marked in flight and the
 * buffer held (*db, *ticket) until dv__devbuf_io_end_locked, which keeps
 * `pending` (optional: a fence covering the copies) for its shrink. */
dv_result_t dv__io_dst_begin_locked(dv__dev_t *dev, uint64_t dst, uint64_t size,
                                    const char *fn, dv__devbuf_t **db,
                                    uint64_t *ticket);
void dv__devbuf_io_end_locked(dv__dev_t *dev, dv__devbuf_t *db, uint64_t ticket,
                              dv_hal_fence_t pending);
/* devbuf.c: the accounting invariants of device buffers (check.c). */
dv_result_t dv__devbuf_check_locked(dv__dev_t *dev);

#endif /* DV_CORE_IO_H */
