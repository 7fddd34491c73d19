/*
 * fake_cudart.c - a test double of the CUDA runtime's allocation entry
 * points, over malloc with a byte capacity. Used to test the interposer
 * without a GPU (tests point DYNVRAM_CUDART at it or link it after the
 * interposer).
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Capacity: DV_FAKE_CUDART_CAPACITY bytes (default 1 GiB) or
 * dv_fake_cudart_set_capacity(). dv_fake_cudart_fail_next(n) makes the next
 * n allocations fail with cudaErrorMemoryAllocation whatever the capacity
 * (a real GPU short of memory for reasons the budget did not see). Like the
 * real runtime, a failure is also recorded as the thread's last error.
 * dv_fake_cudart_async_calls() counts cudaMallocAsync and cudaFreeAsync
 * calls and dv_fake_cudart_last_stream() tells the stream of the last one,
 * so a test sees which allocations reached the runtime and on what stream.
 *
 * Stream capture, as CUDA graphs have it: dv_fake_cudart_set_capturing(s,
 * 1) makes cudaStreamIsCapturing(s) report an active capture, and a
 * cudaMallocAsync on s then belongs to the graph being captured (an
 * allocation node). A cudaFreeAsync of it on a capturing stream is a free
 * node of that graph (fine); outside a capture, freeing it before the
 * graph is launched (dv_fake_cudart_launch, which stands for launching
 * every graph captured so far) fails with cudaErrorInvalidValue and frees
 * nothing, as the real runtime does; dv_fake_cudart_graphs_destroy()
 * releases what no launch made real (the graphs' memory goes with them).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "cudart_abi.h"

#define FAKE_EXPORT __attribute__((visibility("default")))

FAKE_EXPORT cudaError_t cudaGetDevice(int *device);
FAKE_EXPORT cudaError_t cudaSetDevice(int device);
FAKE_EXPORT cudaError_t cudaGetLastError(void);
FAKE_EXPORT void dv_fake_cudart_set_capacity(uint64_t bytes);
FAKE_EXPORT void dv_fake_cudart_fail_next(int n);
FAKE_EXPORT uint64_t dv_fake_cudart_used(void);
FAKE_EXPORT uint64_t dv_fake_cudart_alloc_calls(void);
FAKE_EXPORT uint64_t dv_fake_cudart_async_calls(void);
FAKE_EXPORT void *dv_fake_cudart_last_stream(void);

FAKE_EXPORT cudaError_t cudaStreamIsCapturing(cudaStream_t stream,
                                              int *status);
FAKE_EXPORT void dv_fake_cudart_set_capturing(cudaStream_t stream, int on);
FAKE_EXPORT void dv_fake_cudart_launch(void);
FAKE_EXPORT void dv_fake_cudart_graphs_destroy(void);

/* 48 bytes: the pointer handed out after it stays 16-byte aligned. */
typedef struct fake_hdr {
    uint64_t size;
    uint64_t magic;
    struct fake_hdr *cnext; /* captured: the list of graph allocations */
    uint64_t launch;        /* captured: launches before it was allocated */
    uint64_t captured;
    uint64_t pad;
} fake_hdr;

#define FAKE_MAGIC 0x66616b6563756461ull
#define FAKE_TOTAL (80ull << 30)

static pthread_mutex_t fake_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t fake_capacity;
static int fake_capacity_set;
static uint64_t fake_used;
static uint64_t fake_calls;
static int fake_fail;
static uint64_t fake_async;
static cudaStream_t fake_last_stream;
static _Thread_local int fake_device;
static _Thread_local cudaError_t fake_last;

#define FAKE_MAX_CAPTURES 16
static cudaStream_t fake_capturing[FAKE_MAX_CAPTURES]; /* under fake_mu */
static fake_hdr *fake_captured;                        /* under fake_mu */
static uint64_t fake_launches;                         /* under fake_mu */

static int fake_is_capturing_locked(cudaStream_t s) {
    for (int i = 0; i < FAKE_MAX_CAPTURES; i++) {
        if (s && fake_capturing[i] == s) {
            return 1;
        }
    }
    return 0;
}

static uint64_t fake_cap_locked(void) {
    if (!fake_capacity_set) {
        const char *s = getenv("DV_FAKE_CUDART_CAPACITY");
        fake_capacity = s && s[0] ? strtoull(s, NULL, 0) : (1ull << 30);
        fake_capacity_set = 1;
    }
    return fake_capacity;
}

static cudaError_t fake_set(cudaError_t e) {
    if (e != DV_CUDA_SUCCESS) {
        fake_last = e;
    }
    return e;
}

/* The exported entry points call these, never each other: a call from one
 * exported function to another would go through the PLT and reach the
 * interposer again, which the real runtime never does. */
static cudaError_t fake_malloc(void **ptr, size_t size, cudaStream_t stream) {
    if (!ptr) {
        return fake_set(DV_CUDA_ERROR_INVALID_VALUE);
    }
    pthread_mutex_lock(&fake_mu);
    fake_calls++;
    uint64_t cap = fake_cap_locked();
    if (fake_fail > 0 || size > cap || fake_used > cap - size) {
        if (fake_fail > 0) {
            fake_fail--;
        }
        pthread_mutex_unlock(&fake_mu);
        *ptr = NULL;
        return fake_set(DV_CUDA_ERROR_MEMORY_ALLOCATION);
    }
    fake_used += size;
    pthread_mutex_unlock(&fake_mu);
    fake_hdr *h = malloc(sizeof(*h) + (size ? size : 1));
    if (!h) {
        pthread_mutex_lock(&fake_mu);
        fake_used -= size;
        pthread_mutex_unlock(&fake_mu);
        return fake_set(DV_CUDA_ERROR_MEMORY_ALLOCATION);
    }
    h->size = size;
    h->magic = FAKE_MAGIC;
    h->cnext = NULL;
    h->captured = 0;
    h->launch = 0;
    pthread_mutex_lock(&fake_mu);
    if (fake_is_capturing_locked(stream)) {
        h->captured = 1;
        h->launch = fake_launches;
        h->cnext = fake_captured;
        fake_captured = h;
    }
    pthread_mutex_unlock(&fake_mu);
    *ptr = h + 1;
    return DV_CUDA_SUCCESS;
}

/* Take h off the list of graph allocations. fake_mu held. */
static void fake_uncapture_locked(fake_hdr *h) {
    for (fake_hdr **pp = &fake_captured; *pp; pp = &(*pp)->cnext) {
        if (*pp == h) {
            *pp = h->cnext;
            return;
        }
    }
}

static cudaError_t fake_free(void *ptr, cudaStream_t stream) {
    if (!ptr) {
        return DV_CUDA_SUCCESS;
    }
    fake_hdr *h = (fake_hdr *)ptr - 1;
    if (h->magic != FAKE_MAGIC) {
        return fake_set(DV_CUDA_ERROR_INVALID_VALUE);
    }
    pthread_mutex_lock(&fake_mu);
    if (h->captured) {
        /* Freed inside the capture (a free node of the same graph), or
         * after a launch made it real: fine. Else its graph never ran and
         * there is nothing to free yet. */
        if (!fake_is_capturing_locked(stream) && fake_launches <= h->launch) {
            pthread_mutex_unlock(&fake_mu);
            return fake_set(DV_CUDA_ERROR_INVALID_VALUE);
        }
        fake_uncapture_locked(h);
    }
    h->magic = 0;
    fake_used -= h->size;
    pthread_mutex_unlock(&fake_mu);
    free(h);
    return DV_CUDA_SUCCESS;
}

FAKE_EXPORT cudaError_t cudaMalloc(void **ptr, size_t size) {
    return fake_malloc(ptr, size, NULL);
}

FAKE_EXPORT cudaError_t cudaFree(void *ptr) { return fake_free(ptr, NULL); }

static void fake_note_async(cudaStream_t stream) {
    pthread_mutex_lock(&fake_mu);
    fake_async++;
    fake_last_stream = stream;
    pthread_mutex_unlock(&fake_mu);
}

FAKE_EXPORT cudaError_t cudaMallocAsync(void **ptr, size_t size,
                                        cudaStream_t stream) {
    fake_note_async(stream);
    return fake_malloc(ptr, size, stream);
}

FAKE_EXPORT cudaError_t cudaFreeAsync(void *ptr, cudaStream_t stream) {
    fake_note_async(stream);
    return fake_free(ptr, stream);
}

FAKE_EXPORT cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes) {
    pthread_mutex_lock(&fake_mu);
    uint64_t cap = fake_cap_locked();
    uint64_t f = cap > fake_used ? cap - fake_used : 0;
    pthread_mutex_unlock(&fake_mu);
    if (free_bytes) {
        *free_bytes = (size_t)f;
    }
    if (total_bytes) {
        *total_bytes = (size_t)FAKE_TOTAL;
    }
    return DV_CUDA_SUCCESS;
}

FAKE_EXPORT cudaError_t cudaGetDevice(int *device) {
    if (!device) {
        return fake_set(DV_CUDA_ERROR_INVALID_VALUE);
    }
    *device = fake_device;
    return DV_CUDA_SUCCESS;
}

FAKE_EXPORT cudaError_t cudaSetDevice(int device) {
    if (device < 0 || device > 7) {
        return fake_set(DV_CUDA_ERROR_INVALID_VALUE);
    }
    fake_device = device;
    return DV_CUDA_SUCCESS;
}

FAKE_EXPORT cudaError_t cudaGetLastError(void) {
    cudaError_t e = fake_last;
    fake_last = DV_CUDA_SUCCESS;
    return e;
}

FAKE_EXPORT void dv_fake_cudart_set_capacity(uint64_t bytes) {
    pthread_mutex_lock(&fake_mu);
    fake_capacity = bytes;
    fake_capacity_set = 1;
    pthread_mutex_unlock(&fake_mu);
}

FAKE_EXPORT void dv_fake_cudart_fail_next(int n) {
    pthread_mutex_lock(&fake_mu);
    fake_fail = n;
    pthread_mutex_unlock(&fake_mu);
}

FAKE_EXPORT uint64_t dv_fake_cudart_used(void) {
    pthread_mutex_lock(&fake_mu);
    uint64_t u = fake_used;
    pthread_mutex_unlock(&fake_mu);
    return u;
}

FAKE_EXPORT uint64_t dv_fake_cudart_alloc_calls(void) {
    pthread_mutex_lock(&fake_mu);
    uint64_t c = fake_calls;
    pthread_mutex_unlock(&fake_mu);
    return c;
}

FAKE_EXPORT uint64_t dv_fake_cudart_async_calls(void) {
    pthread_mutex_lock(&fake_mu);
    uint64_t c = fake_async;
    pthread_mutex_unlock(&fake_mu);
    return c;
}

FAKE_EXPORT void *dv_fake_cudart_last_stream(void) {
    pthread_mutex_lock(&fake_mu);
    void *s = fake_last_stream;
    pthread_mutex_unlock(&fake_mu);
    return s;
}

FAKE_EXPORT cudaError_t cudaStreamIsCapturing(cudaStream_t stream,
                                              int *status) {
    if (!status) {
        return fake_set(DV_CUDA_ERROR_INVALID_VALUE);
    }
    pthread_mutex_lock(&fake_mu);
    *status = fake_is_capturing_locked(stream);
    pthread_mutex_unlock(&fake_mu);
    return DV_CUDA_SUCCESS;
}

FAKE_EXPORT void dv_fake_cudart_set_capturing(cudaStream_t stream, int on) {
    pthread_mutex_lock(&fake_mu);
    for (int i = 0; i < FAKE_MAX_CAPTURES; i++) {
        if (fake_capturing[i] == stream) {
            fake_capturing[i] = NULL;
        }
    }
    for (int i = 0; on && stream && i < FAKE_MAX_CAPTURES; i++) {
        if (!fake_capturing[i]) {
            fake_capturing[i] = stream;
            break;
        }
    }
    pthread_mutex_unlock(&fake_mu);
}

FAKE_EXPORT void dv_fake_cudart_launch(void) {
    pthread_mutex_lock(&fake_mu);
    fake_launches++;
    pthread_mutex_unlock(&fake_mu);
}

FAKE_EXPORT void dv_fake_cudart_graphs_destroy(void) {
    pthread_mutex_lock(&fake_mu);
    fake_hdr **pp = &fake_captured;
    while (*pp) {
        fake_hdr *h = *pp;
        if (fake_launches > h->launch) {
            pp = &h->cnext; /* made real by a launch: the program frees it */
            continue;
        }
        *pp = h->cnext;
        h->magic = 0;
        fake_used -= h->size;
        free(h);
    }
    pthread_mutex_unlock(&fake_mu);
}
