/*
 * cuda_stream_registry.c - the CUDA backend's own streams: made, destroyed and
 * checked without trusting the driver with a handle that may be dead.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Why: the CUDA driver does not validate stream handles. Seen on driver
 * 580.159.04 (H200): cuStreamGetCtx, cuStreamGetFlags, cuStreamQuery and
 * cuEventRecord all end in SIGSEGV for (CUstream)0x10, 0x1000, a stack
 * address, freed heap memory and a destroyed stream; and cuStreamCreate
 * hands out a destroyed stream's address again at once. So:
 *  - Every stream stream_create makes is recorded in one process-wide
 *    registry with its device. stream_check answers for those from the
 *    registry (live: DV_OK, or DV_ERROR_WRONG_DEVICE for another device's;
 *    destroyed: DV_ERROR_INVALID_ARGUMENT), with no driver call.
 *  - stream_destroy does not destroy at once: the stream is parked (kept
 *    alive, idle: the core finished its work) in a per-device window of
 *    DV__CU_PARKED streams, so the driver cannot give its address to a new
 *    stream while it is remembered as dead; otherwise a dead handle could
 *    not be told from a new stream (the caller's, say) at the same address.
 *    When the window is full the oldest parked stream is destroyed for real
 *    and forgotten: a handle destroyed that long ago is a foreign value
 *    again (see below).
 *  - Values below 64 KiB other than CU_STREAM_LEGACY / CU_STREAM_PER_THREAD
 *    are refused outright: no object lives there (neither Linux, whose
 *    vm.mmap_min_addr keeps it unmapped, nor Windows maps that range).
 *  - Anything else is a foreign stream (the framework's own) and is asked
 *    of the driver (cuda_stream.c): fine for a live one, fatal, in the
 *    driver, for a dead or junk one, exactly as passing it to the copy or
 *    record that follows would be. CUDA offers no safe way to ask.
 * fini destroys the device's parked streams and the ones the caller left.
 */
#include <stdint.h>
#include <stdlib.h>

#include "base/os.h"
#include "cuda_internal.h"

typedef struct cu_stream_rec {
    dv_cu_stream stream;
    const dv__cu_dev_t *owner;
    int ordinal; /* the owner's, readable while the record exists */
    int dead;    /* destroyed by the caller, parked until evicted */
} cu_stream_rec_t;

static dv__once_t cu_reg_once = DV__ONCE_INIT;
static dv__mutex_t cu_reg_lock;
static cu_stream_rec_t *cu_reg;
static size_t cu_reg_count, cu_reg_cap;

static void cu_reg_init(void) { dv__mutex_init(&cu_reg_lock); }

static void cu_reg_lock_(void) {
    dv__once(&cu_reg_once, cu_reg_init);
    dv__mutex_lock(&cu_reg_lock);
}

/* Caller holds the lock. */
static cu_stream_rec_t *cu_reg_find(const void *s) {
    for (size_t i = 0; i < cu_reg_count; i++) {
        if ((const void *)cu_reg[i].stream == s) {
            return &cu_reg[i];
        }
    }
    return NULL;
}

/* Caller holds the lock. */
static void cu_reg_remove(cu_stream_rec_t *rec) {
    *rec = cu_reg[--cu_reg_count];
}

static dv_result_t cu_reg_add(const dv__cu_dev_t *d, dv_cu_stream s) {
    dv_result_t r = DV_OK;
    cu_reg_lock_();
    cu_stream_rec_t *rec = cu_reg_find(s);
    if (!rec && cu_reg_count == cu_reg_cap) {
        size_t cap = cu_reg_cap ? cu_reg_cap * 2 : 16;
        cu_stream_rec_t *grown = realloc(cu_reg, cap * sizeof(*grown));
        if (grown) {
            cu_reg = grown;
            cu_reg_cap = cap;
        }
    }
    if (!rec && cu_reg_count < cu_reg_cap) {
        rec = &cu_reg[cu_reg_count++];
    }
    if (rec) {
        rec->stream = s;
        rec->owner = d;
        rec->ordinal = d->ordinal;
        rec->dead = 0;
    } else {
        r = dv__native_fail(DV_ERROR_OUT_OF_HOST_MEMORY, 0,
                            "cuda: stream registry");
    }
    dv__mutex_unlock(&cu_reg_lock);
    return r;
}

dv_result_t dv__cu_stream_create(void *ctx, void **stream) {
    dv__cu_dev_t *d = ctx;
    dv_cu_stream s = NULL;
    if (!stream) {
        return dv__native_fail(DV_ERROR_INVALID_ARGUMENT, 0,
                               "cuda stream_create: NULL");
    }
    dv_result_t r = dv__cu_enter(d);
    if (r != DV_OK) {
        return r;
    }
    dv_cu_result rc = dv__cu.cuStreamCreate(&s, DV_CU_STREAM_NON_BLOCKING);
    if (rc != DV_CU_SUCCESS) {
        dv__cu_leave(d);
        return dv__cu_fail_as(rc, DV_ERROR_BACKEND,
                              "cuStreamCreate(NON_BLOCKING)");
    }
    r = cu_reg_add(d, s);
    if (r != DV_OK) {
        (void)dv__cu.cuStreamDestroy(s);
    }
    dv__cu_leave(d);
    if (r == DV_OK) {
        *stream = s;
    }
    return r;
}

/* Destroy for real (context pushed); failures are only logged: the stream
 * is forgotten either way. */
static void cu_destroy_now(const dv__cu_dev_t *d, dv_cu_stream s) {
    dv_cu_result rc = dv__cu.cuStreamDestroy(s);
    if (rc != DV_CU_SUCCESS) {
        dv__log(DV_LOG_WARNING,
                "cuda: cuStreamDestroy(%p) on device %d returned %d", (void *)s,
                d->ordinal, rc);
    }
}

dv_result_t dv__cu_stream_destroy(void *ctx, void *stream) {
    dv__cu_dev_t *d = ctx;
    if (!stream) {
        return dv__native_fail(DV_ERROR_INVALID_ARGUMENT, 0,
                               "cuda stream_destroy: the default stream cannot "
                               "be destroyed");
    }
    cu_reg_lock_();
    cu_stream_rec_t *rec = cu_reg_find(stream);
    int ours = rec && rec->owner == d && !rec->dead;
    if (ours) {
        rec->dead = 1;
    }
    dv__mutex_unlock(&cu_reg_lock);
    if (!ours) {
        return dv__native_fail(DV_ERROR_INVALID_ARGUMENT, 0,
                               "cuda stream_destroy: %p is not a live stream "
                               "made by device %d",
                               stream, d->ordinal);
    }
    /* Parked; the oldest parked one makes room (the core serializes this
     * device's ops, so the window needs no lock of its own). */
    if (d->parked_count == DV__CU_PARKED) {
        dv_cu_stream old = d->parked[d->parked_head];
        d->parked_head = (d->parked_head + 1) % DV__CU_PARKED;
        d->parked_count--;
        cu_reg_lock_();
        rec = cu_reg_find(old);
        if (rec) {
            cu_reg_remove(rec);
        }
        dv__mutex_unlock(&cu_reg_lock);
        if (dv__cu_enter(d) == DV_OK) {
            cu_destroy_now(d, old);
            dv__cu_leave(d);
        }
    }
    d->parked[(d->parked_head + d->parked_count) % DV__CU_PARKED] = stream;
    d->parked_count++;
    return DV_OK;
}

int dv__cu_stream_known(const dv__cu_dev_t *d, void *stream, dv_result_t *r) {
    uintptr_t v = (uintptr_t)stream;
    if (v < 0x10000u && stream != (void *)DV_CU_STREAM_LEGACY &&
        stream != (void *)DV_CU_STREAM_PER_THREAD) {
        *r = dv__native_fail(DV_ERROR_INVALID_ARGUMENT, 0,
                             "cuda stream_check: %p is no stream (nothing "
                             "lives in the first 64 KiB)",
                             stream);
        return 1;
    }
    cu_reg_lock_();
    cu_stream_rec_t *rec = cu_reg_find(stream);
    int known = rec != NULL;
    int dead = rec && rec->dead;
    int mine = rec && rec->owner == d;
    int other = rec ? rec->ordinal : -1;
    dv__mutex_unlock(&cu_reg_lock);
    if (!known) {
        return 0; /* foreign: for the driver to answer */
    }
    if (dead) {
        *r = dv__native_fail(DV_ERROR_INVALID_ARGUMENT, 0,
                             "cuda stream_check: stream %p was destroyed",
                             stream);
    } else if (!mine) {
        *r = dv__native_fail(DV_ERROR_WRONG_DEVICE, 0,
                             "cuda stream_check: stream %p belongs to device "
                             "%d, not to device %d",
                             stream, other, d->ordinal);
    } else {
        *r = DV_OK;
    }
    return 1;
}

void dv__cu_streams_release(dv__cu_dev_t *d, int destroy) {
    cu_reg_lock_();
    for (size_t i = 0; i < cu_reg_count;) {
        if (cu_reg[i].owner == d) {
            if (destroy) {
                cu_destroy_now(d, cu_reg[i].stream); /* parked or left */
            }
            cu_reg_remove(&cu_reg[i]);
        } else {
            i++;
        }
    }
    dv__mutex_unlock(&cu_reg_lock);
    d->parked_count = 0;
    d->parked_head = 0;
}
