/*
 * fake_ze_queue.c - immediate command lists and events of the simulated
 * Level Zero driver. See fake_ze.h.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Commands run when appended (copies are synchronous memmoves); a signal
 * marks its event, which then answers NOT_READY to DVSIM_ZE_EVENT_DELAY
 * queries before it shows. Host waits and queries need a host-visible
 * pool, as on real drivers.
 *
 * Command list handles are looked up among the live lists by address
 * before anything reads them, so a junk or destroyed handle is
 * ZE_RESULT_ERROR_INVALID_ARGUMENT (NULL: ZE_RESULT_ERROR_INVALID_NULL_HANDLE)
 * and never a crash, as the validation layer's handle-lifetime checks
 * answer; a real driver would read through it. Destroyed lists move to a
 * graveyard that is never freed, so a new list never takes a dead one's
 * address.
 */
#include <stdlib.h>
#include <string.h>

#include "fake_ze.h"

/* Live command lists and destroyed ones (kept), guarded by dvsim_ze.lock. */
static ze_command_list_handle_t zsim_lists, zsim_dead_lists;

/* Is `l` a live command list? ZE_RESULT_SUCCESS, or the error to return. */
static ze_result_t zsim_list_check(ze_command_list_handle_t l) {
    if (!l) {
        return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    }
    ze_result_t r = ZE_RESULT_ERROR_INVALID_ARGUMENT;
    pthread_mutex_lock(&dvsim_ze.lock);
    for (ze_command_list_handle_t k = zsim_lists; k; k = k->next) {
        if (k == l) {
            r = ZE_RESULT_SUCCESS;
            break;
        }
    }
    pthread_mutex_unlock(&dvsim_ze.lock);
    return r;
}

static void zsim_live(ze_context_handle_t c, long delta) {
    pthread_mutex_lock(&dvsim_ze.lock);
    c->live += delta;
    pthread_mutex_unlock(&dvsim_ze.lock);
}

/* ---- immediate command lists ------------------------------------------ */

static ze_result_t ZE_APICALL zsim_list_create_immediate(
    ze_context_handle_t c, ze_device_handle_t dev,
    const ze_command_queue_desc_t *desc, ze_command_list_handle_t *out) {
    if (!c || c->magic != DVSIM_ZE_MAGIC_CONTEXT || !dvsim_ze_device_ok(dev)) {
        return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    }
    if (!desc || !out) {
        return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    }
    if (desc->stype != ZE_STRUCTURE_TYPE_COMMAND_QUEUE_DESC ||
        desc->ordinal != 0 || desc->index != 0) {
        return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    }
    ze_command_list_handle_t l = calloc(1, sizeof(*l));
    if (!l) {
        return ZE_RESULT_ERROR_OUT_OF_HOST_MEMORY;
    }
    l->magic = DVSIM_ZE_MAGIC_LIST;
    l->context = c;
    l->device = dev;
    zsim_live(c, 1);
    pthread_mutex_lock(&dvsim_ze.lock);
    l->next = zsim_lists;
    zsim_lists = l;
    pthread_mutex_unlock(&dvsim_ze.lock);
    *out = l;
    return ZE_RESULT_SUCCESS;
}

static ze_result_t ZE_APICALL zsim_list_destroy(ze_command_list_handle_t l) {
    if (!l) {
        return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    }
    ze_result_t r = ZE_RESULT_ERROR_INVALID_ARGUMENT;
    pthread_mutex_lock(&dvsim_ze.lock);
    for (ze_command_list_handle_t *p = &zsim_lists; *p; p = &(*p)->next) {
        if (*p == l) {
            *p = l->next;
            l->next = zsim_dead_lists;
            zsim_dead_lists = l;
            l->magic = DVSIM_ZE_MAGIC_DEAD;
            l->context->live--;
            r = ZE_RESULT_SUCCESS;
            break;
        }
    }
    pthread_mutex_unlock(&dvsim_ze.lock);
    return r;
}

static int zsim_event_ok(ze_event_handle_t e) {
    return e && e->magic == DVSIM_ZE_MAGIC_EVENT;
}

static void zsim_signal(ze_event_handle_t e) {
    pthread_mutex_lock(&dvsim_ze.lock);
    e->signaled = 1;
    e->pending = dvsim_ze.event_delay;
    pthread_mutex_unlock(&dvsim_ze.lock);
}

static ze_result_t ZE_APICALL zsim_list_copy(
    ze_command_list_handle_t l, void *dst, const void *src, size_t size,
    ze_event_handle_t signal, uint32_t nwait, ze_event_handle_t *waits) {
    ze_result_t lr = zsim_list_check(l);
    if (lr != ZE_RESULT_SUCCESS) {
        return lr;
    }
    if (!dst || !src) {
        return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    }
    if (signal && !zsim_event_ok(signal)) {
        return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    }
    /* Synchronous: a wait on an unsignaled event could never finish. */
    for (uint32_t i = 0; i < nwait; i++) {
        if (!waits || !zsim_event_ok(waits[i]) || !waits[i]->signaled) {
            return ZE_RESULT_ERROR_INVALID_ARGUMENT;
        }
    }
    pthread_mutex_lock(&dvsim_ze.lock);
    int bad = dvsim_ze_unmapped_locked(dst, size) ||
              dvsim_ze_unmapped_locked(src, size);
    pthread_mutex_unlock(&dvsim_ze.lock);
    if (bad) {
        /* A real device would page-fault; report instead of crashing. */
        return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    }
    memmove(dst, src, size);
    if (signal) {
        zsim_signal(signal);
    }
    return ZE_RESULT_SUCCESS;
}

static ze_result_t ZE_APICALL zsim_list_signal(ze_command_list_handle_t l,
                                               ze_event_handle_t e) {
    ze_result_t lr = zsim_list_check(l);
    if (lr != ZE_RESULT_SUCCESS) {
        return lr;
    }
    if (!zsim_event_ok(e)) {
        return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    }
    zsim_signal(e);
    return ZE_RESULT_SUCCESS;
}

static ze_result_t ZE_APICALL zsim_list_barrier(ze_command_list_handle_t l,
                                                ze_event_handle_t signal,
                                                uint32_t nwait,
                                                ze_event_handle_t *waits) {
    ze_result_t lr = zsim_list_check(l);
    if (lr != ZE_RESULT_SUCCESS) {
        return lr;
    }
    if (signal && !zsim_event_ok(signal)) {
        return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    }
    /* Synchronous: everything appended before is done already. */
    for (uint32_t i = 0; i < nwait; i++) {
        if (!waits || !zsim_event_ok(waits[i]) || !waits[i]->signaled) {
            return ZE_RESULT_ERROR_INVALID_ARGUMENT;
        }
    }
    pthread_mutex_lock(&dvsim_ze.lock);
    l->barriers++;
    pthread_mutex_unlock(&dvsim_ze.lock);
    if (signal) {
        zsim_signal(signal);
    }
    return ZE_RESULT_SUCCESS;
}

/* Test hook: barriers appended to live list `l` so far (0 if not live). */
ZE_DLLEXPORT uint64_t dvsim_ze_list_barriers(ze_command_list_handle_t l);
ZE_DLLEXPORT uint64_t dvsim_ze_list_barriers(ze_command_list_handle_t l) {
    uint64_t n = 0;
    pthread_mutex_lock(&dvsim_ze.lock);
    for (ze_command_list_handle_t k = zsim_lists; k; k = k->next) {
        if (k == l) {
            n = k->barriers;
        }
    }
    pthread_mutex_unlock(&dvsim_ze.lock);
    return n;
}

/* ---- events ------------------------------------------------------------ */

static ze_result_t ZE_APICALL zsim_pool_create(ze_context_handle_t c,
                                               const ze_event_pool_desc_t *desc,
                                               uint32_t ndev,
                                               ze_device_handle_t *devs,
                                               ze_event_pool_handle_t *out) {
    if (!c || c->magic != DVSIM_ZE_MAGIC_CONTEXT) {
        return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    }
    if (!desc || !out || (ndev > 0 && !devs)) {
        return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    }
    if (desc->stype != ZE_STRUCTURE_TYPE_EVENT_POOL_DESC || desc->count == 0) {
        return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    }
    ze_event_pool_handle_t p = calloc(1, sizeof(*p));
    uint8_t *used = calloc(desc->count, 1);
    if (!p || !used) {
        free(p);
        free(used);
        return ZE_RESULT_ERROR_OUT_OF_HOST_MEMORY;
    }
    p->magic = DVSIM_ZE_MAGIC_POOL;
    p->context = c;
    p->count = desc->count;
    p->flags = desc->flags;
    p->used = used;
    zsim_live(c, 1);
    *out = p;
    return ZE_RESULT_SUCCESS;
}

static ze_result_t ZE_APICALL zsim_pool_destroy(ze_event_pool_handle_t p) {
    if (!p || p->magic != DVSIM_ZE_MAGIC_POOL) {
        return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    }
    if (p->live_events) {
        return ZE_RESULT_ERROR_HANDLE_OBJECT_IN_USE;
    }
    zsim_live(p->context, -1);
    p->magic = DVSIM_ZE_MAGIC_DEAD;
    free(p->used);
    free(p);
    return ZE_RESULT_SUCCESS;
}

static ze_result_t ZE_APICALL zsim_event_create(ze_event_pool_handle_t p,
                                                const ze_event_desc_t *desc,
                                                ze_event_handle_t *out) {
    if (!p || p->magic != DVSIM_ZE_MAGIC_POOL) {
        return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    }
    if (!desc || !out) {
        return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    }
    if (desc->stype != ZE_STRUCTURE_TYPE_EVENT_DESC ||
        desc->index >= p->count || p->used[desc->index]) {
        return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    }
    ze_event_handle_t e = calloc(1, sizeof(*e));
    if (!e) {
        return ZE_RESULT_ERROR_OUT_OF_HOST_MEMORY;
    }
    e->magic = DVSIM_ZE_MAGIC_EVENT;
    e->pool = p;
    e->index = desc->index;
    p->used[desc->index] = 1;
    p->live_events++;
    *out = e;
    return ZE_RESULT_SUCCESS;
}

static ze_result_t ZE_APICALL zsim_event_destroy(ze_event_handle_t e) {
    if (!zsim_event_ok(e)) {
        return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    }
    e->pool->used[e->index] = 0;
    e->pool->live_events--;
    e->magic = DVSIM_ZE_MAGIC_DEAD;
    free(e);
    return ZE_RESULT_SUCCESS;
}

/* Host waits and queries need a host-visible pool, as on real drivers. */
static ze_result_t zsim_event_host_check(ze_event_handle_t e) {
    if (!zsim_event_ok(e)) {
        return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    }
    if (!(e->pool->flags & ZE_EVENT_POOL_FLAG_HOST_VISIBLE)) {
        return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    }
    return ZE_RESULT_SUCCESS;
}

static ze_result_t ZE_APICALL zsim_event_query(ze_event_handle_t e) {
    ze_result_t r = zsim_event_host_check(e);
    if (r != ZE_RESULT_SUCCESS) {
        return r;
    }
    pthread_mutex_lock(&dvsim_ze.lock);
    if (!e->signaled) {
        r = ZE_RESULT_NOT_READY;
    } else if (e->pending > 0) {
        e->pending--;
        r = ZE_RESULT_NOT_READY;
    }
    pthread_mutex_unlock(&dvsim_ze.lock);
    return r;
}

static ze_result_t ZE_APICALL zsim_event_sync(ze_event_handle_t e,
                                              uint64_t timeout) {
    ze_result_t r = zsim_event_host_check(e);
    if (r != ZE_RESULT_SUCCESS) {
        return r;
    }
    pthread_mutex_lock(&dvsim_ze.lock);
    if (!e->signaled) {
        /* Nothing queued will ever signal it: a real driver would block
         * (until timeout); answer instead of hanging the test. */
        r = ZE_RESULT_NOT_READY;
    } else if (timeout == 0 && e->pending > 0) {
        e->pending--;
        r = ZE_RESULT_NOT_READY;
    } else {
        e->pending = 0;
    }
    pthread_mutex_unlock(&dvsim_ze.lock);
    return r;
}

static ze_result_t ZE_APICALL zsim_event_reset(ze_event_handle_t e) {
    ze_result_t r = zsim_event_host_check(e);
    if (r != ZE_RESULT_SUCCESS) {
        return r;
    }
    pthread_mutex_lock(&dvsim_ze.lock);
    e->signaled = 0;
    e->pending = 0;
    pthread_mutex_unlock(&dvsim_ze.lock);
    return ZE_RESULT_SUCCESS;
}

static ze_result_t ZE_APICALL zsim_event_host_signal(ze_event_handle_t e) {
    ze_result_t r = zsim_event_host_check(e);
    if (r == ZE_RESULT_SUCCESS) {
        zsim_signal(e);
    }
    return r;
}

void dvsim_ze_fill_command_list(ze_command_list_dditable_t *t) {
    t->pfnCreateImmediate = zsim_list_create_immediate;
    t->pfnDestroy = zsim_list_destroy;
    t->pfnAppendMemoryCopy = zsim_list_copy;
    t->pfnAppendSignalEvent = zsim_list_signal;
    t->pfnAppendBarrier = zsim_list_barrier;
}

void dvsim_ze_fill_event_pool(ze_event_pool_dditable_t *t) {
    t->pfnCreate = zsim_pool_create;
    t->pfnDestroy = zsim_pool_destroy;
}

void dvsim_ze_fill_event(ze_event_dditable_t *t) {
    t->pfnCreate = zsim_event_create;
    t->pfnDestroy = zsim_event_destroy;
    t->pfnHostSignal = zsim_event_host_signal;
    t->pfnHostSynchronize = zsim_event_sync;
    t->pfnQueryStatus = zsim_event_query;
    t->pfnHostReset = zsim_event_reset;
}
