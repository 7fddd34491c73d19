/*
 * hip_sim_stream.c - simulated HIP runtime: streams, events, copies and
 * host registration. Copies are synchronous; an event completes after
 * DVSIM_HIP_EVENT_DELAY queries, or when it or its stream is synchronized.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * The simulator checks what a real runtime would reject and a careless
 * backend might get wrong: an event recorded on a stream of another device
 * (the caller forgot to bind its device), copies to or from device ranges
 * that are not mapped with the needed access (a missing hipMemSetAccess).
 */
#define _GNU_SOURCE

#include <stdlib.h>
#include <string.h>

#include "tests/sim/hip_sim_internal.h"

#define SIM_STREAM_MAGIC 0x5354524du
#define SIM_EVENT_MAGIC 0x4556454eu

struct dv_hip_stream_opaque {
    uint32_t magic;
    int device;
};

struct dv_hip_event_opaque {
    uint32_t magic;
    int device;
    int pending; /* queries left before it completes; 0 = complete */
    dv_hip_stream_t stream;
    struct dv_hip_event_opaque *next;
};

static struct dv_hip_event_opaque *sim_events; /* every live event */

typedef struct sim_host_reg {
    void *ptr;
    size_t size;
} sim_host_reg_t;

static sim_host_reg_t sim_host[256];
static int sim_host_count;

static int sim_stream_ok(dv_hip_stream_t s) {
    return !s || s->magic == SIM_STREAM_MAGIC;
}

static int sim_event_ok(dv_hip_event_t e) {
    return e && e->magic == SIM_EVENT_MAGIC;
}

DVSIM_EXPORT dv_hip_error_t hipStreamCreate(dv_hip_stream_t *stream) {
    if (!stream) {
        return DV_HIP_ERROR_INVALID_VALUE;
    }
    dv_hip_stream_t s = calloc(1, sizeof(*s));
    if (!s) {
        return DV_HIP_ERROR_OUT_OF_MEMORY;
    }
    s->magic = SIM_STREAM_MAGIC;
    s->device = dvsim__hip_current_device();
    *stream = s;
    return DV_HIP_SUCCESS;
}

/* Completes every event recorded on `stream` (NULL: on the current
 * device's default stream). Caller holds the lock. */
static void sim_complete_stream(dv_hip_stream_t stream) {
    int dev = stream ? stream->device : dvsim__hip_current_device();
    for (struct dv_hip_event_opaque *e = sim_events; e; e = e->next) {
        if (e->stream == stream && e->device == dev) {
            e->pending = 0;
        }
    }
}

DVSIM_EXPORT dv_hip_error_t hipStreamDestroy(dv_hip_stream_t stream) {
    if (!stream || !sim_stream_ok(stream)) {
        return DV_HIP_ERROR_INVALID_HANDLE;
    }
    pthread_mutex_lock(&dvsim__hip_lock);
    sim_complete_stream(stream);
    for (struct dv_hip_event_opaque *e = sim_events; e; e = e->next) {
        if (e->stream == stream) {
            e->stream = NULL;
        }
    }
    pthread_mutex_unlock(&dvsim__hip_lock);
    stream->magic = 0;
    free(stream);
    return DV_HIP_SUCCESS;
}

DVSIM_EXPORT dv_hip_error_t hipStreamSynchronize(dv_hip_stream_t stream) {
    if (!sim_stream_ok(stream)) {
        return DV_HIP_ERROR_INVALID_HANDLE;
    }
    pthread_mutex_lock(&dvsim__hip_lock);
    sim_complete_stream(stream);
    pthread_mutex_unlock(&dvsim__hip_lock);
    return DV_HIP_SUCCESS;
}

DVSIM_EXPORT dv_hip_error_t hipEventCreateWithFlags(dv_hip_event_t *event,
                                                    unsigned flags) {
    if (!event || (flags & ~0xfu) != 0) {
        return DV_HIP_ERROR_INVALID_VALUE;
    }
    dv_hip_event_t e = calloc(1, sizeof(*e));
    if (!e) {
        return DV_HIP_ERROR_OUT_OF_MEMORY;
    }
    e->magic = SIM_EVENT_MAGIC;
    e->device = dvsim__hip_current_device();
    pthread_mutex_lock(&dvsim__hip_lock);
    e->next = sim_events;
    sim_events = e;
    pthread_mutex_unlock(&dvsim__hip_lock);
    *event = e;
    return DV_HIP_SUCCESS;
}

DVSIM_EXPORT dv_hip_error_t hipEventRecord(dv_hip_event_t event,
                                           dv_hip_stream_t stream) {
    if (!sim_event_ok(event) || !sim_stream_ok(stream)) {
        return DV_HIP_ERROR_INVALID_HANDLE;
    }
    int dev = stream ? stream->device : dvsim__hip_current_device();
    if (dev != event->device) {
        /* Event and stream of different devices: the real runtime refuses
         * this too. */
        return DV_HIP_ERROR_INVALID_HANDLE;
    }
    pthread_mutex_lock(&dvsim__hip_lock);
    event->stream = stream;
    event->pending = dvsim__hip_config()->event_delay;
    pthread_mutex_unlock(&dvsim__hip_lock);
    return DV_HIP_SUCCESS;
}

DVSIM_EXPORT dv_hip_error_t hipEventQuery(dv_hip_event_t event) {
    if (!sim_event_ok(event)) {
        return DV_HIP_ERROR_INVALID_HANDLE;
    }
    dv_hip_error_t r = DV_HIP_SUCCESS;
    pthread_mutex_lock(&dvsim__hip_lock);
    if (event->pending > 0) {
        event->pending--;
        r = DV_HIP_ERROR_NOT_READY;
    }
    pthread_mutex_unlock(&dvsim__hip_lock);
    return r;
}

DVSIM_EXPORT dv_hip_error_t hipEventSynchronize(dv_hip_event_t event) {
    if (!sim_event_ok(event)) {
        return DV_HIP_ERROR_INVALID_HANDLE;
    }
    pthread_mutex_lock(&dvsim__hip_lock);
    event->pending = 0;
    pthread_mutex_unlock(&dvsim__hip_lock);
    return DV_HIP_SUCCESS;
}

DVSIM_EXPORT dv_hip_error_t hipEventDestroy(dv_hip_event_t event) {
    if (!sim_event_ok(event)) {
        return DV_HIP_ERROR_INVALID_HANDLE;
    }
    pthread_mutex_lock(&dvsim__hip_lock);
    struct dv_hip_event_opaque **pp = &sim_events;
    while (*pp && *pp != event) {
        pp = &(*pp)->next;
    }
    if (*pp) {
        *pp = event->next;
    }
    pthread_mutex_unlock(&dvsim__hip_lock);
    event->magic = 0;
    free(event);
    return DV_HIP_SUCCESS;
}

DVSIM_EXPORT int dvsim_hip_pending_events(void) {
    int n = 0;
    pthread_mutex_lock(&dvsim__hip_lock);
    for (struct dv_hip_event_opaque *e = sim_events; e; e = e->next) {
        n += e->pending > 0;
    }
    pthread_mutex_unlock(&dvsim__hip_lock);
    return n;
}

/* ---- copies ------------------------------------------------------------------- */

static dv_hip_error_t sim_copy(void *dst, const void *src, size_t size,
                               uintptr_t dev_addr, int need,
                               dv_hip_stream_t stream) {
    if (!sim_stream_ok(stream)) {
        return DV_HIP_ERROR_INVALID_HANDLE;
    }
    if (size == 0) {
        return DV_HIP_SUCCESS;
    }
    if (!dst || !src) {
        return DV_HIP_ERROR_INVALID_VALUE;
    }
    pthread_mutex_lock(&dvsim__hip_lock);
    dv_hip_error_t r = DV_HIP_ERROR_ILLEGAL_ADDRESS;
    if (dev_addr + size > dev_addr &&
        dvsim__hip_accessible(dev_addr, size, need)) {
        memcpy(dst, src, size);
        r = DV_HIP_SUCCESS;
    }
    pthread_mutex_unlock(&dvsim__hip_lock);
    return r;
}

DVSIM_EXPORT dv_hip_error_t hipMemcpyHtoDAsync(dv_hip_deviceptr_t dst,
                                               void *src, size_t size,
                                               dv_hip_stream_t stream) {
    return sim_copy(dst, src, size, (uintptr_t)dst,
                    DV_HIP_MEM_ACCESS_FLAGS_PROT_READ_WRITE, stream);
}

DVSIM_EXPORT dv_hip_error_t hipMemcpyDtoHAsync(void *dst,
                                               dv_hip_deviceptr_t src,
                                               size_t size,
                                               dv_hip_stream_t stream) {
    return sim_copy(dst, src, size, (uintptr_t)src,
                    DV_HIP_MEM_ACCESS_FLAGS_PROT_READ, stream);
}

/* ---- host registration ---------------------------------------------------------- */

DVSIM_EXPORT dv_hip_error_t hipHostRegister(void *ptr, size_t size,
                                            unsigned flags) {
    if (!ptr || size == 0 || (flags & ~0xfu) != 0) {
        return DV_HIP_ERROR_INVALID_VALUE;
    }
    dv_hip_error_t r = DV_HIP_SUCCESS;
    pthread_mutex_lock(&dvsim__hip_lock);
    for (int i = 0; i < sim_host_count; i++) {
        char *a = sim_host[i].ptr;
        if ((char *)ptr < a + sim_host[i].size && a < (char *)ptr + size) {
            r = DV_HIP_ERROR_HOST_MEMORY_ALREADY_REGISTERED;
        }
    }
    if (r == DV_HIP_SUCCESS) {
        if (sim_host_count == (int)(sizeof(sim_host) / sizeof(sim_host[0]))) {
            r = DV_HIP_ERROR_OUT_OF_MEMORY;
        } else {
            sim_host[sim_host_count++] = (sim_host_reg_t){ptr, size};
        }
    }
    pthread_mutex_unlock(&dvsim__hip_lock);
    return r;
}

DVSIM_EXPORT dv_hip_error_t hipHostUnregister(void *ptr) {
    dv_hip_error_t r = DV_HIP_ERROR_HOST_MEMORY_NOT_REGISTERED;
    pthread_mutex_lock(&dvsim__hip_lock);
    for (int i = 0; i < sim_host_count; i++) {
        if (sim_host[i].ptr == ptr) {
            sim_host[i] = sim_host[--sim_host_count];
            r = DV_HIP_SUCCESS;
            break;
        }
    }
    pthread_mutex_unlock(&dvsim__hip_lock);
    return r;
}
