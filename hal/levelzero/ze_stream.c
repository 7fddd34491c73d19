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
 */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/native.h"
#include "hal/levelzero/ze_internal.h"

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

/* ---- streams and copies ---------------------------------------------- */

dv_result_t dv__ze_stream_create(void *ctx, void **stream) {
    dv_ze_command_list_handle_t list = NULL;
    dv_result_t res = dv__ze_list_create(ctx, &list);
    if (res == DV_OK) {
        *stream = list;
    }
    return res;
}

dv_result_t dv__ze_stream_destroy(void *ctx, void *stream) {
    dv__ze_ctx_t *c = ctx;
    if (!stream || stream == (void *)c->list) {
        return dv__native_fail(DV_ERROR_INVALID_ARGUMENT, 0, "levelzero: cannot destroy the default stream");
    }
    dv_ze_result_t r = dv__ze.zeCommandListDestroy(stream);
    return r == DV_ZE_RESULT_SUCCESS ? DV_OK
                                     : dv__ze_fail(r, "zeCommandListDestroy");
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
