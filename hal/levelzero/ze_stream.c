/*
 * ze_stream.c - streams (immediate command lists), fences (events) and
 * copies of the Level Zero backend. See ze.c for how they map onto Level
 * Zero and ze_internal.h for the shared device state.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Fences come from host-visible event pools of DV__ZE_POOL_EVENTS events,
 * grown on demand and recycled through a free list under fence_lock; an
 * event is created on its slot's first use and reset on each reuse.
 *
 * Streams are immediate command lists. Every list this backend makes (each
 * device's default list and every stream_create) is recorded in one
 * process-wide registry with the device that owns it. stream_check answers
 * from the registry for those: live and ours -> DV_OK, live and another
 * device's -> DV_ERROR_WRONG_DEVICE, destroyed -> DV_ERROR_INVALID_ARGUMENT,
 * without any driver call. stream_destroy parks the list (kept alive, idle:
 * the core finished its work) in a per-device window of DV__ZE_PARKED, so
 * the driver cannot give its address to a new list while it is remembered
 * as dead (a dead handle could not be told from a new list, the caller's
 * say, at the same address); when the window is full the oldest is
 * destroyed for real and forgotten.
 *
 * A list is a handle that every Level Zero call (the loader's intercept
 * layer included) reads through, and the API we target (1.4, the loader in
 * Debian 12) has no query on a command list at all:
 * zeCommandListGetDeviceHandle only came with spec 1.9, and it too would
 * read a junk handle. So values below 64 KiB are refused outright (no
 * object lives there), and any other foreign list (the framework's own) is
 * probed with the mildest command there is, an empty barrier (no events):
 * on a live list it only orders later work after earlier work, once per
 * stream (the core checks each stream once); a driver or layer that
 * validates handles (the validation layer's handle-lifetime checks, the
 * simulated driver) refuses a dead or junk one, which then reads as
 * DV_ERROR_INVALID_ARGUMENT. On a driver that does not validate (Intel's),
 * a junk list crashes there as it would in the copy that follows; a live
 * list of another device cannot be told and passes.
 */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/native.h"
#include "ze_internal.h"

dv_result_t dv__ze_list_create(dv__ze_ctx_t *c,
                               dv_ze_command_list_handle_t *list) {
    dv_ze_command_queue_desc_t desc;
    memset(&desc, 0, sizeof(desc));
    desc.stype = DV_ZE_STRUCTURE_TYPE_COMMAND_QUEUE_DESC;
    desc.ordinal = 0;
    desc.index = 0;
    desc.mode = DV_ZE_COMMAND_QUEUE_MODE_ASYNCHRONOUS;
    desc.priority = DV_ZE_COMMAND_QUEUE_PRIORITY_NORMAL;
    dv_ze_result_t r =
        dv__ze.zeCommandListCreateImmediate(c->context, c->device, &desc, list);
    if (r != DV_ZE_RESULT_SUCCESS) {
        *list = NULL;
        return dv__ze_fail(r, "zeCommandListCreateImmediate");
    }
    return DV_OK;
}

static dv_result_t ze_pool_grow(dv__ze_ctx_t *c) {
    dv__ze_pool_t *p = calloc(1, sizeof(*p));
    if (!p) {
        return dv__native_fail(DV_ERROR_OUT_OF_HOST_MEMORY, 0, "levelzero: event pool");
    }
    dv_ze_event_pool_desc_t desc;
    memset(&desc, 0, sizeof(desc));
    desc.stype = DV_ZE_STRUCTURE_TYPE_EVENT_POOL_DESC;
    desc.flags = DV_ZE_EVENT_POOL_FLAG_HOST_VISIBLE;
    desc.count = DV__ZE_POOL_EVENTS;
    dv_ze_result_t r =
        dv__ze.zeEventPoolCreate(c->context, &desc, 1, &c->device, &p->handle);
    if (r != DV_ZE_RESULT_SUCCESS) {
        free(p);
        return dv__ze_fail(r, "zeEventPoolCreate");
    }
    for (uint32_t i = 0; i < DV__ZE_POOL_EVENTS; i++) {
        p->fences[i].index = i;
        p->fences[i].pool = p;
        p->fences[i].next_free =
            i + 1 < DV__ZE_POOL_EVENTS ? &p->fences[i + 1] : c->free_fences;
    }
    c->free_fences = &p->fences[0];
    p->next = c->pools;
    c->pools = p;
    return DV_OK;
}

/* Takes a free fence whose event is created and unsignaled. */
static dv_result_t ze_fence_take(dv__ze_ctx_t *c, dv__ze_fence_t **out) {
    dv_result_t res = DV_OK;
    dv__mutex_lock(&c->fence_lock);
    if (!c->free_fences) {
        res = ze_pool_grow(c);
        if (res != DV_OK) {
            goto out;
        }
    }
    dv__ze_fence_t *f = c->free_fences;
    dv_ze_result_t r;
    if (!f->event) {
        dv_ze_event_desc_t desc;
        memset(&desc, 0, sizeof(desc));
        desc.stype = DV_ZE_STRUCTURE_TYPE_EVENT_DESC;
        desc.index = f->index;
        desc.signal = DV_ZE_EVENT_SCOPE_FLAG_HOST;
        desc.wait = DV_ZE_EVENT_SCOPE_FLAG_HOST;
        r = dv__ze.zeEventCreate(f->pool->handle, &desc, &f->event);
        if (r != DV_ZE_RESULT_SUCCESS) {
            f->event = NULL;
            res = dv__ze_fail(r, "zeEventCreate");
            goto out;
        }
    } else {
        r = dv__ze.zeEventHostReset(f->event);
        if (r != DV_ZE_RESULT_SUCCESS) {
            res = dv__ze_fail(r, "zeEventHostReset");
            goto out;
        }
    }
    c->free_fences = f->next_free;
    f->next_free = NULL;
    *out = f;
out:
    dv__mutex_unlock(&c->fence_lock);
    return res;
}

static void ze_fence_put(dv__ze_ctx_t *c, dv__ze_fence_t *f) {
    dv__mutex_lock(&c->fence_lock);
    f->next_free = c->free_fences;
    c->free_fences = f;
    dv__mutex_unlock(&c->fence_lock);
}

dv_result_t dv__ze_fence_record(void *ctx, void *stream,
                                dv_hal_fence_t *fence) {
    dv__ze_ctx_t *c = ctx;
    dv_ze_command_list_handle_t list = stream ? stream : c->list;
    dv__ze_fence_t *f = NULL;
    dv_result_t res = ze_fence_take(c, &f);
    if (res != DV_OK) {
        return res;
    }
    dv_ze_result_t r = dv__ze.zeCommandListAppendSignalEvent(list, f->event);
    if (r != DV_ZE_RESULT_SUCCESS) {
        ze_fence_put(c, f);
        return dv__ze_fail(r, "zeCommandListAppendSignalEvent");
    }
    *fence = f;
    return DV_OK;
}

dv_result_t dv__ze_fence_query(void *ctx, dv_hal_fence_t fence) {
    dv__ze_fence_t *f = fence;
    dv_ze_result_t r = dv__ze.zeEventQueryStatus(f->event);
    if (r == DV_ZE_RESULT_SUCCESS) {
        return DV_OK;
    }
    if (r == DV_ZE_RESULT_NOT_READY) {
        return DV_NOT_READY;
    }
    return dv__ze_fail(r, "zeEventQueryStatus");
}

dv_result_t dv__ze_fence_wait(void *ctx, dv_hal_fence_t fence) {
    dv__ze_fence_t *f = fence;
    dv_ze_result_t r = dv__ze.zeEventHostSynchronize(f->event, UINT64_MAX);
    return r == DV_ZE_RESULT_SUCCESS ? DV_OK
                                     : dv__ze_fail(r, "zeEventHostSynchronize");
}

void dv__ze_fence_destroy(void *ctx, dv_hal_fence_t fence) {
    if (fence) {
        ze_fence_put(ctx, fence);
    }
}

void dv__ze_fences_free(dv__ze_ctx_t *c) {
    /* Destroy failures are ignored: nothing useful can be done with them. */
    for (dv__ze_pool_t *p = c->pools; p;) {
        dv__ze_pool_t *next = p->next;
        for (uint32_t i = 0; i < DV__ZE_POOL_EVENTS; i++) {
            if (p->fences[i].event) {
                (void)dv__ze.zeEventDestroy(p->fences[i].event);
            }
        }
        (void)dv__ze.zeEventPoolDestroy(p->handle);
        free(p);
        p = next;
    }
    c->pools = NULL;
    c->free_fences = NULL;
}

/* ---- the registry of this backend's command lists --------------------- */

typedef struct ze_list_rec {
    dv_ze_command_list_handle_t list;
    dv__ze_ctx_t *owner; /* the device that made it */
    int ordinal;         /* the owner's, readable while the record exists */
    int dead;            /* destroyed by the caller, parked until evicted */
    int is_default;      /* a device's default stream, never destroyed */
} ze_list_rec_t;

static dv__once_t ze_reg_once = DV__ONCE_INIT;
static dv__mutex_t ze_reg_lock;
static ze_list_rec_t *ze_reg;
static size_t ze_reg_count, ze_reg_cap;

static void ze_reg_init(void) { dv__mutex_init(&ze_reg_lock); }

static void ze_reg_lock_(void) {
    dv__once(&ze_reg_once, ze_reg_init);
    dv__mutex_lock(&ze_reg_lock);
}

/* The record of `list` (live or dead), or NULL. Caller holds the lock. */
static ze_list_rec_t *ze_reg_find(const void *list) {
    for (size_t i = 0; i < ze_reg_count; i++) {
        if ((const void *)ze_reg[i].list == list) {
            return &ze_reg[i];
        }
    }
    return NULL;
}

/* Caller holds the lock. */
static void ze_reg_remove(ze_list_rec_t *rec) { *rec = ze_reg[--ze_reg_count]; }

/* Record a list the driver just made for c. (No record can hold its
 * address: recorded lists are alive.) */
static dv_result_t ze_reg_add(dv__ze_ctx_t *c, dv_ze_command_list_handle_t l,
                              int is_default) {
    dv_result_t res = DV_OK;
    ze_reg_lock_();
    ze_list_rec_t *rec = ze_reg_find(l);
    if (!rec && ze_reg_count == ze_reg_cap) {
        size_t cap = ze_reg_cap ? ze_reg_cap * 2 : 16;
        ze_list_rec_t *grown = realloc(ze_reg, cap * sizeof(*grown));
        if (grown) {
            ze_reg = grown;
            ze_reg_cap = cap;
        }
    }
    if (!rec && ze_reg_count < ze_reg_cap) {
        rec = &ze_reg[ze_reg_count++];
    }
    if (rec) {
        rec->list = l;
        rec->owner = c;
        rec->ordinal = c->ordinal;
        rec->dead = 0;
        rec->is_default = is_default;
    } else {
        res = dv__native_fail(DV_ERROR_OUT_OF_HOST_MEMORY, 0,
                              "levelzero: stream registry");
    }
    dv__mutex_unlock(&ze_reg_lock);
    return res;
}

dv_result_t dv__ze_lists_adopt_default(dv__ze_ctx_t *c) {
    return ze_reg_add(c, c->list, 1);
}

void dv__ze_lists_release(dv__ze_ctx_t *c) {
    ze_reg_lock_();
    for (size_t i = 0; i < ze_reg_count;) {
        ze_list_rec_t *rec = &ze_reg[i];
        if (rec->owner != c) {
            i++;
            continue;
        }
        if (!rec->is_default) {
            /* Made by stream_create, parked or never destroyed: the device
             * owns it. A failure is ignored, as the other destroys at fini. */
            (void)dv__ze.zeCommandListDestroy(rec->list);
        }
        ze_reg_remove(rec);
    }
    dv__mutex_unlock(&ze_reg_lock);
    c->parked_count = 0;
    c->parked_head = 0;
}

/* ---- streams and copies ---------------------------------------------- */

dv_result_t dv__ze_stream_create(void *ctx, void **stream) {
    dv__ze_ctx_t *c = ctx;
    dv_ze_command_list_handle_t list = NULL;
    dv_result_t res = dv__ze_list_create(c, &list);
    if (res == DV_OK) {
        res = ze_reg_add(c, list, 0);
        if (res != DV_OK) {
            (void)dv__ze.zeCommandListDestroy(list);
        }
    }
    if (res == DV_OK) {
        *stream = list;
    }
    return res;
}

dv_result_t dv__ze_stream_destroy(void *ctx, void *stream) {
    dv__ze_ctx_t *c = ctx;
    if (!stream || stream == (void *)c->list) {
        return dv__native_fail(DV_ERROR_INVALID_ARGUMENT, 0,
                               "levelzero: cannot destroy the default stream");
    }
    ze_reg_lock_();
    ze_list_rec_t *rec = ze_reg_find(stream);
    int ours = rec && rec->owner == c && !rec->dead && !rec->is_default;
    if (ours) {
        rec->dead = 1;
    }
    dv_ze_command_list_handle_t old = NULL;
    if (ours && c->parked_count == DV__ZE_PARKED) {
        /* The oldest parked list makes room: destroyed for real and
         * forgotten (its address may come back from the driver). */
        old = c->parked[c->parked_head];
        c->parked_head = (c->parked_head + 1) % DV__ZE_PARKED;
        c->parked_count--;
        ze_list_rec_t *orec = ze_reg_find(old);
        if (orec) {
            ze_reg_remove(orec);
        }
    }
    if (ours) {
        c->parked[(c->parked_head + c->parked_count) % DV__ZE_PARKED] = stream;
        c->parked_count++;
    }
    dv__mutex_unlock(&ze_reg_lock);
    if (!ours) {
        return dv__native_fail(DV_ERROR_INVALID_ARGUMENT, 0,
                               "levelzero: stream_destroy: %p is not a live "
                               "stream made by this device",
                               stream);
    }
    if (old) {
        /* Already forgotten: a failure is only worth a warning. */
        dv_ze_result_t r = dv__ze.zeCommandListDestroy(old);
        if (r != DV_ZE_RESULT_SUCCESS) {
            dv__log(DV_LOG_WARNING,
                    "levelzero: zeCommandListDestroy(%p) returned 0x%08x",
                    (void *)old, (unsigned)r);
        }
    }
    return DV_OK;
}

dv_result_t dv__ze_stream_check(void *ctx, void *stream) {
    dv__ze_ctx_t *c = ctx;
    if (!stream) {
        return DV_OK; /* the default stream; the core never asks */
    }
    if ((uintptr_t)stream < 0x10000u) {
        return dv__native_fail(DV_ERROR_INVALID_ARGUMENT, 0,
                               "levelzero: %p is no command list (nothing "
                               "lives in the first 64 KiB)",
                               stream);
    }
    ze_reg_lock_();
    ze_list_rec_t *rec = ze_reg_find(stream);
    int known = rec != NULL;
    int dead = rec && rec->dead;
    int mine = rec && rec->owner == c;
    int other = rec ? rec->ordinal : -1;
    dv__mutex_unlock(&ze_reg_lock);
    if (known && dead) {
        return dv__native_fail(DV_ERROR_INVALID_ARGUMENT, 0,
                               "levelzero: stream %p was destroyed", stream);
    }
    if (known && mine) {
        return DV_OK;
    }
    if (known) {
        return dv__native_fail(DV_ERROR_WRONG_DEVICE, 0,
                               "levelzero: stream %p belongs to device %d, "
                               "not to device %d",
                               stream, other, c->ordinal);
    }
    dv_ze_result_t r = dv__ze.zeCommandListAppendBarrier(stream, NULL, 0, NULL);
    if (r != DV_ZE_RESULT_SUCCESS) {
        return dv__native_fail(DV_ERROR_INVALID_ARGUMENT, (int64_t)(uint32_t)r,
                               "levelzero: zeCommandListAppendBarrier(%p): "
                               "%s (0x%08x): not a live command list",
                               stream, dv__ze_result_name(r), (unsigned)r);
    }
    return DV_OK;
}

dv_result_t dv__ze_stream_synchronize(void *ctx, void *stream) {
    dv_hal_fence_t f = NULL;
    dv_result_t res = dv__ze_fence_record(ctx, stream, &f);
    if (res != DV_OK) {
        return res;
    }
    res = dv__ze_fence_wait(ctx, f);
    dv__ze_fence_destroy(ctx, f);
    return res;
}

static dv_result_t ze_copy(dv__ze_ctx_t *c, void *dst, const void *src,
                           uint64_t size, void *stream) {
    dv_ze_command_list_handle_t list = stream ? stream : c->list;
    dv_ze_result_t r = dv__ze.zeCommandListAppendMemoryCopy(
        list, dst, src, (size_t)size, NULL, 0, NULL);
    return r == DV_ZE_RESULT_SUCCESS
               ? DV_OK
               : dv__ze_fail(r, "zeCommandListAppendMemoryCopy");
}

dv_result_t dv__ze_copy_h2d(void *ctx, uint64_t dst, const void *src,
                            uint64_t size, void *stream) {
    return ze_copy(ctx, (void *)(uintptr_t)dst, src, size, stream);
}

dv_result_t dv__ze_copy_d2h(void *ctx, void *dst, uint64_t src, uint64_t size,
                            void *stream) {
    return ze_copy(ctx, dst, (const void *)(uintptr_t)src, size, stream);
}

dv_result_t dv__ze_host_register(void *ctx, void *ptr, uint64_t size) {
    return dv__native_fail(DV_ERROR_NOT_SUPPORTED, 0, "levelzero: host memory registration is not supported "
                    "by Level Zero");
}

dv_result_t dv__ze_host_unregister(void *ctx, void *ptr) {
    return dv__native_fail(DV_ERROR_NOT_SUPPORTED, 0, "levelzero: host memory registration is not supported "
                    "by Level Zero");
}
