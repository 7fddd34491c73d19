/*
 * fake_hip_stream.c - simulated HIP runtime: streams, events, copies and
 * host registration. Copies are synchronous; an event completes after
 * DVSIM_HIP_EVENT_DELAY queries, or when it or its stream is synchronized.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * The simulator checks what a real runtime would reject and a careless
 * backend might get wrong: an event recorded on a stream of another device
 * (the caller forgot to bind its device), copies to or from device ranges
 * that are not mapped with the needed access (a missing hipMemSetAccess).
 *
 * Stream and event handles are checked as ROCm checks streams
 * (hip::isValid): looked up by address among the live ones before anything
 * is read through them, so junk (0x10, a stack address, freed memory) and
 * destroyed handles get an error, never a crash. Destroyed ones move to a
 * graveyard that is never freed, so a new stream or event never reuses a
 * dead one's address. The codes are ROCm's: hipErrorContextIsDestroyed for
 * a stream that is not live (what hipStreamGetDevice, hipStreamSynchronize
 * and hipStreamDestroy answer where ROCm checks), hipErrorInvalidHandle for
 * destroying the NULL stream and for a bad event.
 */
#define _GNU_SOURCE

#include <stdlib.h>
#include <string.h>

#include "tests/fakes/hip/fake_hip_internal.h"

struct dv_hip_stream_opaque {
    struct dv_hip_stream_opaque *next;
    int device;
    unsigned int flags;
};

struct dv_hip_event_opaque {
    struct dv_hip_event_opaque *next;
    int device;
    int pending; /* queries left before it completes; 0 = complete */
    dv_hip_stream_t stream;
};

/* Live streams and events, and the destroyed ones (kept, never reused). */
static struct dv_hip_stream_opaque *sim_streams, *sim_dead_streams;
static struct dv_hip_event_opaque *sim_events, *sim_dead_events;

typedef struct sim_host_reg {
    void *ptr;
    size_t size;
} sim_host_reg_t;

static sim_host_reg_t sim_host[256];
static int sim_host_count;

/* Is `s` NULL (the current device's default stream) or a live stream? By
 * address only. Caller holds the lock. */
static int sim_stream_live(dv_hip_stream_t s) {
    if (!s) {
        return 1;
    }
    for (dv_hip_stream_t k = sim_streams; k; k = k->next) {
        if (k == s) {
            return 1;
        }
    }
    return 0;
}

static int sim_event_live(dv_hip_event_t e) {
    for (dv_hip_event_t k = sim_events; e && k; k = k->next) {
        if (k == e) {
            return 1;
        }
    }
    return 0;
}

/* The device a live stream (or NULL) runs on. Caller holds the lock. */
static int sim_stream_device(dv_hip_stream_t s) {
    return s ? s->device : dvsim__hip_current_device();
}

DVSIM_EXPORT dv_hip_error_t hipStreamCreate(dv_hip_stream_t *stream) {
    if (!stream) {
        return DV_HIP_ERROR_INVALID_VALUE;
    }
    dv_hip_stream_t s = calloc(1, sizeof(*s));
    if (!s) {
        return DV_HIP_ERROR_OUT_OF_MEMORY;
    }
    s->device = dvsim__hip_current_device();
    pthread_mutex_lock(&dvsim__hip_lock);
    s->next = sim_streams;
    sim_streams = s;
    pthread_mutex_unlock(&dvsim__hip_lock);
    *stream = s;
    return DV_HIP_SUCCESS;
}

/* Completes every event recorded on `stream` (NULL: on the current
 * device's default stream). Caller holds the lock. */
static void sim_complete_stream(dv_hip_stream_t stream) {
    int dev = sim_stream_device(stream);
    for (struct dv_hip_event_opaque *e = sim_events; e; e = e->next) {
        if (e->stream == stream && e->device == dev) {
            e->pending = 0;
        }
    }
}

DVSIM_EXPORT dv_hip_error_t hipStreamDestroy(dv_hip_stream_t stream) {
    if (!stream) {
        return DV_HIP_ERROR_INVALID_HANDLE;
    }
    dv_hip_error_t r = DV_HIP_ERROR_CONTEXT_IS_DESTROYED;
    pthread_mutex_lock(&dvsim__hip_lock);
    for (dv_hip_stream_t *p = &sim_streams; *p; p = &(*p)->next) {
        if (*p == stream) {
            sim_complete_stream(stream);
            for (dv_hip_event_t e = sim_events; e; e = e->next) {
                if (e->stream == stream) {
                    e->stream = NULL;
                }
            }
            *p = stream->next;
            stream->next = sim_dead_streams;
            sim_dead_streams = stream;
            r = DV_HIP_SUCCESS;
            break;
        }
    }
    pthread_mutex_unlock(&dvsim__hip_lock);
    return r;
}

DVSIM_EXPORT dv_hip_error_t hipStreamSynchronize(dv_hip_stream_t stream) {
    dv_hip_error_t r = DV_HIP_ERROR_CONTEXT_IS_DESTROYED;
    pthread_mutex_lock(&dvsim__hip_lock);
    if (sim_stream_live(stream)) {
        sim_complete_stream(stream);
        r = DV_HIP_SUCCESS;
    }
    pthread_mutex_unlock(&dvsim__hip_lock);
    return r;
}

/* As ROCm: NULL asks for the current device; a stream that is not live is
 * hipErrorContextIsDestroyed. */
DVSIM_EXPORT dv_hip_error_t hipStreamGetDevice(dv_hip_stream_t stream,
                                               dv_hip_device_t *device) {
    if (!device) {
        return DV_HIP_ERROR_INVALID_VALUE;
    }
    dv_hip_error_t r = DV_HIP_ERROR_CONTEXT_IS_DESTROYED;
    pthread_mutex_lock(&dvsim__hip_lock);
    if (sim_stream_live(stream)) {
        *device = sim_stream_device(stream);
        r = DV_HIP_SUCCESS;
    }
    pthread_mutex_unlock(&dvsim__hip_lock);
    return r;
}

/* As ROCm 5: the NULL stream has no flags to report. */
DVSIM_EXPORT dv_hip_error_t hipStreamGetFlags(dv_hip_stream_t stream,
                                              unsigned int *flags) {
    if (!stream || !flags) {
        return DV_HIP_ERROR_INVALID_VALUE;
    }
    dv_hip_error_t r = DV_HIP_ERROR_CONTEXT_IS_DESTROYED;
    pthread_mutex_lock(&dvsim__hip_lock);
    if (sim_stream_live(stream)) {
        *flags = stream->flags;
        r = DV_HIP_SUCCESS;
    }
    pthread_mutex_unlock(&dvsim__hip_lock);
    return r;
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
    dv_hip_error_t r = DV_HIP_SUCCESS;
    pthread_mutex_lock(&dvsim__hip_lock);
    if (!sim_event_live(event)) {
        r = DV_HIP_ERROR_INVALID_HANDLE;
    } else if (!sim_stream_live(stream)) {
        r = DV_HIP_ERROR_CONTEXT_IS_DESTROYED;
    } else if (sim_stream_device(stream) != event->device) {
        /* Event and stream of different devices: the real runtime refuses
         * this too. */
        r = DV_HIP_ERROR_INVALID_HANDLE;
    } else {
        event->stream = stream;
        event->pending = dvsim__hip_config()->event_delay;
    }
    pthread_mutex_unlock(&dvsim__hip_lock);
    return r;
}

DVSIM_EXPORT dv_hip_error_t hipEventQuery(dv_hip_event_t event) {
    dv_hip_error_t r = DV_HIP_SUCCESS;
    pthread_mutex_lock(&dvsim__hip_lock);
    if (!sim_event_live(event)) {
        r = DV_HIP_ERROR_INVALID_HANDLE;
    } else if (event->pending > 0) {
        event->pending--;
        r = DV_HIP_ERROR_NOT_READY;
    }
    pthread_mutex_unlock(&dvsim__hip_lock);
    return r;
}

DVSIM_EXPORT dv_hip_error_t hipEventSynchronize(dv_hip_event_t event) {
    dv_hip_error_t r = DV_HIP_ERROR_INVALID_HANDLE;
    pthread_mutex_lock(&dvsim__hip_lock);
    if (sim_event_live(event)) {
        event->pending = 0;
        r = DV_HIP_SUCCESS;
    }
    pthread_mutex_unlock(&dvsim__hip_lock);
    return r;
}

DVSIM_EXPORT dv_hip_error_t hipEventDestroy(dv_hip_event_t event) {
    dv_hip_error_t r = DV_HIP_ERROR_INVALID_HANDLE;
    pthread_mutex_lock(&dvsim__hip_lock);
    for (dv_hip_event_t *p = &sim_events; *p; p = &(*p)->next) {
        if (*p == event) {
            *p = event->next;
            event->next = sim_dead_events;
            sim_dead_events = event;
            r = DV_HIP_SUCCESS;
            break;
        }
    }
    pthread_mutex_unlock(&dvsim__hip_lock);
    return r;
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
    pthread_mutex_lock(&dvsim__hip_lock);
    dv_hip_error_t r = DV_HIP_ERROR_ILLEGAL_ADDRESS;
    if (!sim_stream_live(stream)) {
        r = DV_HIP_ERROR_CONTEXT_IS_DESTROYED;
    } else if (size == 0) {
        r = DV_HIP_SUCCESS;
    } else if (!dst || !src) {
        r = DV_HIP_ERROR_INVALID_VALUE;
    } else if (dev_addr + size > dev_addr &&
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
