/*
 * interpose.c - CUDA runtime allocation entry points that put framework
 * allocations under a dynvram device's budget. Contract: dv_interpose.h.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Layout: the real runtime's entry points (ip_real), resolved lazily; the
 * device bindings (ip_slots) and the pointer -> size table (ip_tab), both
 * under ip_mu; each thread's allocation graph (ip_tl_graph, thread-local:
 * a graph's scopes belong to the thread that runs them); the allocation
 * and free paths shared by the interposed symbols and the
 * CUDAPluggableAllocator pair. A pointer a graph handed out is in ip_tab
 * too, with its graph, so its free goes back to the graph from any thread.
 *
 * dynvram is called outside ip_mu (it has its own locks and may evict,
 * which can wait for GPU work). ip_mu only guards the small tables.
 *
 * The exported cuda* names cannot carry the dv_ prefix: interposing them is
 * the point of this library, which is why it is a separate shared object.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cudart_abi.h"
#include "dv_interpose.h"

#define IP_EXPORT __attribute__((visibility("default")))

/* Evict-and-retry rounds after a real out-of-memory before giving up. */
#define IP_MAX_RETRIES 64

/* ---- the real runtime ------------------------------------------------------ */

typedef struct ip_real {
    dv_cudaMalloc_fn malloc_fn;
    dv_cudaFree_fn free_fn;
    dv_cudaMallocAsync_fn malloc_async_fn; /* optional */
    dv_cudaFreeAsync_fn free_async_fn;     /* optional */
    dv_cudaMemGetInfo_fn mem_get_info_fn;
    dv_cudaGetDevice_fn get_device_fn;
    dv_cudaGetLastError_fn get_last_error_fn; /* optional */
    dv_cudaStreamIsCapturing_fn is_capturing_fn; /* optional */
} ip_real;

static ip_real ip_fn;
static int ip_resolved; /* read with acquire, set with release */
static char ip_reason[512];
static pthread_mutex_t ip_resolve_mu = PTHREAD_MUTEX_INITIALIZER;

static void *ip_lookup_sym(void *lib, const char *name) {
    void *fn = lib ? dlsym(lib, name) : dlsym(RTLD_NEXT, name);
    /* Never resolve to ourselves (a library loaded twice under two names). */
    void *self = dlsym(RTLD_DEFAULT, "dv_interpose_attach");
    Dl_info a, b;
    if (fn && self && dladdr(fn, &a) && dladdr(self, &b) &&
        a.dli_fbase == b.dli_fbase) {
        return NULL;
    }
    return fn;
}

/* Find the real libcudart: DYNVRAM_CUDART when set, else the next
 * definition in the lookup order (LD_PRELOAD), else a loaded library by
 * soname, else load it. Not cached on failure: the framework may load the
 * runtime after our first call. */
static int ip_resolve(void) {
    if (__atomic_load_n(&ip_resolved, __ATOMIC_ACQUIRE)) {
        return 1;
    }
    pthread_mutex_lock(&ip_resolve_mu);
    if (ip_resolved) {
        pthread_mutex_unlock(&ip_resolve_mu);
        return 1;
    }
    const char *name = getenv("DYNVRAM_CUDART");
    void *lib = NULL;
    int explicit_name = name && name[0];
    if (!explicit_name) {
        name = DV_CUDART_SONAME;
    }
    if (explicit_name || !ip_lookup_sym(NULL, "cudaMalloc")) {
        lib = dlopen(name, RTLD_LAZY | RTLD_NOLOAD);
        if (!lib) {
            lib = dlopen(name, RTLD_LAZY | RTLD_LOCAL);
        }
        if (!lib) {
            const char *err = dlerror();
            snprintf(ip_reason, sizeof(ip_reason), "cannot load %s: %s", name,
                     err ? err : "unknown error");
            pthread_mutex_unlock(&ip_resolve_mu);
            return 0;
        }
    }
    ip_real f;
    memset(&f, 0, sizeof(f));
    f.malloc_fn = (dv_cudaMalloc_fn)ip_lookup_sym(lib, "cudaMalloc");
    f.free_fn = (dv_cudaFree_fn)ip_lookup_sym(lib, "cudaFree");
    f.malloc_async_fn =
        (dv_cudaMallocAsync_fn)ip_lookup_sym(lib, "cudaMallocAsync");
    f.free_async_fn = (dv_cudaFreeAsync_fn)ip_lookup_sym(lib, "cudaFreeAsync");
    f.mem_get_info_fn =
        (dv_cudaMemGetInfo_fn)ip_lookup_sym(lib, "cudaMemGetInfo");
    f.get_device_fn = (dv_cudaGetDevice_fn)ip_lookup_sym(lib, "cudaGetDevice");
    f.get_last_error_fn =
        (dv_cudaGetLastError_fn)ip_lookup_sym(lib, "cudaGetLastError");
    f.is_capturing_fn = (dv_cudaStreamIsCapturing_fn)ip_lookup_sym(
        lib, "cudaStreamIsCapturing");
    if (!f.malloc_fn || !f.free_fn || !f.mem_get_info_fn || !f.get_device_fn) {
        snprintf(ip_reason, sizeof(ip_reason),
                 "%s lacks cudaMalloc, cudaFree, cudaMemGetInfo or "
                 "cudaGetDevice",
                 lib ? name : "the next library in the lookup order");
        pthread_mutex_unlock(&ip_resolve_mu);
        return 0;
    }
    ip_fn = f;
    ip_reason[0] = '\0';
    __atomic_store_n(&ip_resolved, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&ip_resolve_mu);
    return 1;
}

IP_EXPORT int dv_interpose_cudart_loaded(char *reason, size_t reason_len) {
    int ok = ip_resolve();
    if (reason && reason_len) {
        pthread_mutex_lock(&ip_resolve_mu);
        snprintf(reason, reason_len, "%s", ok ? "" : ip_reason);
        pthread_mutex_unlock(&ip_resolve_mu);
    }
    return ok;
}

/* ---- device bindings and the pointer table ------------------------------- */

typedef struct ip_slot {
    dv_device_t *dev; /* NULL = not attached */
    dv_interpose_api_t api;
    uint64_t epoch; /* changes on every attach, so stale pointers are known */
    dv_interpose_stats_t st;
} ip_slot;

typedef struct ip_entry {
    uintptr_t key; /* 0 = empty */
    uint64_t size;
    uint64_t epoch;
    int32_t device;
    /* libcudart allocated it while its stream was being captured: the CUDA
     * graph owns it, and freeing it before that graph ever ran fails. */
    uint8_t captured;
    /* A graph's pointer: freed back to it, never to libcudart. */
    dv_graph_t *graph;
    dv_device_t *gdev;
    dv_result_t (*graph_free)(dv_device_t *, dv_graph_t *, uint64_t, void *);
} ip_entry;

/* The calling thread's graph (dv_interpose_graph_bind). */
typedef struct ip_graph_binding {
    dv_graph_t *graph; /* NULL = none */
    int device;
    uint64_t epoch; /* of the device slot when bound */
} ip_graph_binding;

static __thread ip_graph_binding ip_tl_graph;

static pthread_mutex_t ip_mu = PTHREAD_MUTEX_INITIALIZER;
static ip_slot ip_slots[DV_INTERPOSE_MAX_DEVICES];
static uint64_t ip_epoch_counter;
static ip_entry *ip_tab;
static size_t ip_cap; /* a power of two, or 0 */
static size_t ip_count;

static size_t ip_hash(uintptr_t k) {
    uint64_t x = (uint64_t)k;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return (size_t)x;
}

/* Linear probing; the table is at most half full. ip_mu held. */
static int ip_tab_grow_locked(void) {
    size_t ncap = ip_cap ? ip_cap * 2 : 1024;
    ip_entry *nt = calloc(ncap, sizeof(*nt));
    if (!nt) {
        return -1;
    }
    for (size_t i = 0; i < ip_cap; i++) {
        if (ip_tab[i].key) {
            size_t j = ip_hash(ip_tab[i].key) & (ncap - 1);
            while (nt[j].key) {
                j = (j + 1) & (ncap - 1);
            }
            nt[j] = ip_tab[i];
        }
    }
    free(ip_tab);
    ip_tab = nt;
    ip_cap = ncap;
    return 0;
}

static int ip_tab_insert_locked(const ip_entry *e) {
    if ((ip_count + 1) * 2 > ip_cap && ip_tab_grow_locked() < 0) {
        return -1;
    }
    size_t i = ip_hash(e->key) & (ip_cap - 1);
    while (ip_tab[i].key && ip_tab[i].key != e->key) {
        i = (i + 1) & (ip_cap - 1);
    }
    if (!ip_tab[i].key) {
        ip_count++;
    }
    ip_tab[i] = *e;
    return 0;
}

/* Remove `key`, shifting later entries of its probe run back. */
static int ip_tab_remove_locked(uintptr_t key, ip_entry *out) {
    if (!ip_cap) {
        return 0;
    }
    size_t mask = ip_cap - 1;
    size_t i = ip_hash(key) & mask;
    while (ip_tab[i].key && ip_tab[i].key != key) {
        i = (i + 1) & mask;
    }
    if (!ip_tab[i].key) {
        return 0;
    }
    *out = ip_tab[i];
    size_t hole = i;
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!ip_tab[j].key) {
            break;
        }
        size_t home = ip_hash(ip_tab[j].key) & mask;
        /* Move j into the hole unless its home lies cyclically in
         * (hole, j]. */
        int stays = hole <= j ? (home > hole && home <= j)
                              : (home > hole || home <= j);
        if (!stays) {
            ip_tab[hole] = ip_tab[j];
            hole = j;
        }
    }
    ip_tab[hole].key = 0;
    ip_count--;
    return 1;
}

/* A consistent copy of one binding, taken under ip_mu. */
typedef struct ip_binding {
    dv_device_t *dev;
    dv_interpose_api_t api;
    uint64_t epoch;
} ip_binding;

static int ip_binding_get(int device, ip_binding *b) {
    if (device < 0 || device >= DV_INTERPOSE_MAX_DEVICES) {
        return 0;
    }
    pthread_mutex_lock(&ip_mu);
    ip_slot *s = &ip_slots[device];
    int ok = s->dev != NULL;
    if (ok) {
        b->dev = s->dev;
        b->api = s->api;
        b->epoch = s->epoch;
    }
    pthread_mutex_unlock(&ip_mu);
    return ok;
}

IP_EXPORT dv_result_t dv_interpose_attach(int cuda_device, dv_device_t *dev,
                                          const dv_interpose_api_t *api) {
    if (cuda_device < 0 || cuda_device >= DV_INTERPOSE_MAX_DEVICES || !dev) {
        return DV_ERROR_INVALID_ARGUMENT;
    }
    dv_interpose_api_t a;
    memset(&a, 0, sizeof(a));
    if (api) {
        if (api->version < 1 || api->version > DV_INTERPOSE_API_VERSION ||
            !api->framework_reserve || !api->framework_release ||
            !api->framework_evict || !api->device_get_stats) {
            return DV_ERROR_INVALID_ARGUMENT;
        }
        /* A version 1 struct ends before the graph entry points. */
        memcpy(&a, api, api->version >= 2 ? sizeof(a)
                                           : offsetof(dv_interpose_api_t,
                                                      graph_alloc));
        if (a.version >= 2 && (!a.graph_alloc || !a.graph_free)) {
            return DV_ERROR_INVALID_ARGUMENT;
        }
    } else {
        a.version = DV_INTERPOSE_API_VERSION;
        a.framework_reserve = (dv_result_t(*)(dv_device_t *, uint64_t))dlsym(
            RTLD_DEFAULT, "dv_framework_reserve");
        a.framework_release = (dv_result_t(*)(dv_device_t *, uint64_t))dlsym(
            RTLD_DEFAULT, "dv_framework_release");
        a.framework_evict = (dv_result_t(*)(dv_device_t *, uint64_t,
                                            uint64_t *))dlsym(
            RTLD_DEFAULT, "dv_framework_evict");
        a.device_get_stats = (dv_result_t(*)(dv_device_t *,
                                             dv_device_stats_t *))dlsym(
            RTLD_DEFAULT, "dv_device_get_stats");
        if (!a.framework_reserve || !a.framework_release ||
            !a.framework_evict || !a.device_get_stats) {
            return DV_ERROR_BACKEND_UNAVAILABLE;
        }
        a.graph_alloc = (dv_result_t(*)(dv_device_t *, dv_graph_t *, uint64_t,
                                        void *, uint64_t *))dlsym(
            RTLD_DEFAULT, "dv_graph_alloc");
        a.graph_free = (dv_result_t(*)(dv_device_t *, dv_graph_t *, uint64_t,
                                       void *))dlsym(RTLD_DEFAULT,
                                                     "dv_graph_free");
        if (!a.graph_alloc || !a.graph_free) {
            a.version = 1; /* a dynvram without graphs */
            a.graph_alloc = NULL;
            a.graph_free = NULL;
        }
    }
    pthread_mutex_lock(&ip_mu);
    ip_slot *s = &ip_slots[cuda_device];
    s->dev = dev;
    s->api = a;
    s->epoch = ++ip_epoch_counter;
    memset(&s->st, 0, sizeof(s->st));
    pthread_mutex_unlock(&ip_mu);
    return DV_OK;
}

IP_EXPORT dv_result_t dv_interpose_detach(int cuda_device) {
    if (cuda_device < 0 || cuda_device >= DV_INTERPOSE_MAX_DEVICES) {
        return DV_ERROR_INVALID_ARGUMENT;
    }
    pthread_mutex_lock(&ip_mu);
    ip_slots[cuda_device].dev = NULL;
    ip_slots[cuda_device].epoch = ++ip_epoch_counter;
    pthread_mutex_unlock(&ip_mu);
    return DV_OK;
}

IP_EXPORT dv_result_t dv_interpose_graph_bind(int cuda_device,
                                              dv_graph_t *graph) {
    if (cuda_device < 0 || cuda_device >= DV_INTERPOSE_MAX_DEVICES) {
        return DV_ERROR_INVALID_ARGUMENT;
    }
    if (!graph) {
        memset(&ip_tl_graph, 0, sizeof(ip_tl_graph));
        return DV_OK;
    }
    pthread_mutex_lock(&ip_mu);
    ip_slot *s = &ip_slots[cuda_device];
    dv_result_t r = !s->dev                ? DV_ERROR_INVALID_ARGUMENT
                    : s->api.version < 2 ? DV_ERROR_NOT_SUPPORTED
                                         : DV_OK;
    uint64_t epoch = s->epoch;
    pthread_mutex_unlock(&ip_mu);
    if (r == DV_OK) {
        ip_tl_graph.graph = graph;
        ip_tl_graph.device = cuda_device;
        ip_tl_graph.epoch = epoch;
    }
    return r;
}

IP_EXPORT dv_result_t dv_interpose_get_stats(int cuda_device,
                                             dv_interpose_stats_t *st) {
    if (cuda_device < 0 || cuda_device >= DV_INTERPOSE_MAX_DEVICES || !st) {
        return DV_ERROR_INVALID_ARGUMENT;
    }
    pthread_mutex_lock(&ip_mu);
    *st = ip_slots[cuda_device].st;
    pthread_mutex_unlock(&ip_mu);
    return DV_OK;
}

/* Count a failed allocation on the slot, if it still belongs to `epoch`. */
static void ip_count_failure(int device, uint64_t epoch, int refused) {
    pthread_mutex_lock(&ip_mu);
    ip_slot *s = &ip_slots[device];
    if (s->epoch == epoch) {
        s->st.failures++;
        s->st.budget_refusals += refused ? 1 : 0;
    }
    pthread_mutex_unlock(&ip_mu);
}

/* ---- allocation paths --------------------------------------------------- */

/* Add to a counter of the slot, if it still belongs to `epoch`. */
static void ip_stat_add(int device, uint64_t epoch, size_t field, uint64_t n) {
    pthread_mutex_lock(&ip_mu);
    ip_slot *s = &ip_slots[device];
    if (s->epoch == epoch) {
        *(uint64_t *)((char *)&s->st + field) += n;
    }
    pthread_mutex_unlock(&ip_mu);
}

#define IP_COUNT(dev, epoch, name)                                             \
    ip_stat_add((dev), (epoch), offsetof(dv_interpose_stats_t, name), 1)

/* Offer an allocation to the calling thread's graph. 1: taken (or failed
 * for want of memory, *e says which); 0: take the normal path. */
static int ip_graph_alloc(void **ptr, size_t size, cudaStream_t stream,
                          int device, const ip_binding *b, cudaError_t *e) {
    ip_graph_binding t = ip_tl_graph;
    if (!t.graph || t.device != device || t.epoch != b->epoch ||
        b->api.version < 2) {
        return 0;
    }
    uint64_t addr = 0;
    dv_result_t r = b->api.graph_alloc(b->dev, t.graph, size, stream, &addr);
    if (r == DV_ERROR_OUT_OF_DEVICE_MEMORY) {
        ip_count_failure(device, b->epoch, 0);
        *e = DV_CUDA_ERROR_MEMORY_ALLOCATION;
        return 1;
    }
    if (r != DV_OK) {
        return 0; /* not for the graph (or a graph gone): the normal path */
    }
    ip_entry ent = {.key = (uintptr_t)addr, .size = size, .epoch = b->epoch,
                    .device = device, .graph = t.graph, .gdev = b->dev,
                    .graph_free = b->api.graph_free};
    pthread_mutex_lock(&ip_mu);
    int ins = ip_tab_insert_locked(&ent);
    pthread_mutex_unlock(&ip_mu);
    if (ins < 0) {
        /* Without an entry its free would miss the graph: give it back. */
        b->api.graph_free(b->dev, t.graph, addr, stream);
        ip_count_failure(device, b->epoch, 0);
        *e = DV_CUDA_ERROR_MEMORY_ALLOCATION;
        return 1;
    }
    IP_COUNT(device, b->epoch, graph_allocs);
    *ptr = (void *)(uintptr_t)addr;
    *e = DV_CUDA_SUCCESS;
    return 1;
}

static cudaError_t ip_real_alloc(void **ptr, size_t size, cudaStream_t stream,
                                 int async) {
    if (async && ip_fn.malloc_async_fn) {
        return ip_fn.malloc_async_fn(ptr, size, stream);
    }
    return ip_fn.malloc_fn(ptr, size);
}

static cudaError_t ip_real_free(void *ptr, cudaStream_t stream, int async) {
    if (async && ip_fn.free_async_fn) {
        return ip_fn.free_async_fn(ptr, stream);
    }
    return ip_fn.free_fn(ptr);
}

/* Is `stream` being captured (so an allocation on it belongs to the CUDA
 * graph being captured)? The legacy default stream is not asked: it cannot
 * be captured, and queries of it interact with other streams' captures. */
static int ip_capturing(cudaStream_t stream) {
    int status = 0;
    if (!stream || stream == DV_CUDA_STREAM_LEGACY || !ip_fn.is_capturing_fn ||
        ip_fn.is_capturing_fn(stream, &status) != DV_CUDA_SUCCESS) {
        return 0;
    }
    return status != 0;
}

static cudaError_t ip_alloc(void **ptr, size_t size, cudaStream_t stream,
                            int async, int device) {
    if (!ip_resolve()) {
        return DV_CUDA_ERROR_INITIALIZATION;
    }
    if (device < 0 && ip_fn.get_device_fn(&device) != DV_CUDA_SUCCESS) {
        device = -1;
    }
    ip_binding b;
    if (!ptr || size == 0 || !ip_binding_get(device, &b)) {
        return ip_real_alloc(ptr, size, stream, async);
    }
    cudaError_t ge;
    if (async && ip_graph_alloc(ptr, size, stream, device, &b, &ge)) {
        return ge;
    }
    dv_result_t r = b.api.framework_reserve(b.dev, size);
    if (r == DV_ERROR_OUT_OF_DEVICE_MEMORY) {
        /* Even evicting every evictable page leaves no room in the budget:
         * answer as the GPU would, so the framework frees its cache. */
        ip_count_failure(device, b.epoch, 1);
        return DV_CUDA_ERROR_MEMORY_ALLOCATION;
    }
    int counted = r == DV_OK;
    IP_COUNT(device, b.epoch, driver_allocs);
    cudaError_t e = ip_real_alloc(ptr, size, stream, async);
    int retried = 0;
    for (int i = 0; e == DV_CUDA_ERROR_MEMORY_ALLOCATION && i < IP_MAX_RETRIES;
         i++) {
        uint64_t freed = 0;
        if (b.api.framework_evict(b.dev, size, &freed) != DV_OK || !freed) {
            break;
        }
        pthread_mutex_lock(&ip_mu);
        if (ip_slots[device].epoch == b.epoch) {
            ip_slots[device].st.oom_retries++;
            ip_slots[device].st.oom_evicted += freed;
        }
        pthread_mutex_unlock(&ip_mu);
        retried = 1;
        IP_COUNT(device, b.epoch, driver_allocs);
        e = ip_real_alloc(ptr, size, stream, async);
    }
    if (retried && e == DV_CUDA_SUCCESS && ip_fn.get_last_error_fn) {
        /* The failed attempt left cudaErrorMemoryAllocation as the thread's
         * last error; a framework checking cudaGetLastError() after its next
         * kernel launch would take it for a launch failure. */
        (void)ip_fn.get_last_error_fn();
    }
    if (e != DV_CUDA_SUCCESS) {
        if (counted) {
            b.api.framework_release(b.dev, size);
        }
        ip_count_failure(device, b.epoch, 0);
        return e;
    }
    if (counted) {
        ip_entry ent = {.key = (uintptr_t)*ptr, .size = size,
                        .epoch = b.epoch, .device = device,
                        .captured = (uint8_t)(async && ip_capturing(stream))};
        pthread_mutex_lock(&ip_mu);
        int ins = ip_tab_insert_locked(&ent);
        ip_slot *s = &ip_slots[device];
        if (ins >= 0 && s->epoch == b.epoch) {
            s->st.allocs++;
            s->st.live_bytes += size;
            s->st.live_count++;
            s->st.capture_allocs += ent.captured;
        }
        pthread_mutex_unlock(&ip_mu);
        if (ins < 0) {
            /* No host memory for the table: keep the allocation, uncounted. */
            b.api.framework_release(b.dev, size);
        }
    }
    return e;
}

static cudaError_t ip_free(void *ptr, cudaStream_t stream, int async) {
    if (!ip_resolve()) {
        return DV_CUDA_ERROR_INITIALIZATION;
    }
    ip_entry ent;
    int found = 0;
    if (ptr) {
        /* Remove before the real free: once freed, the address may be handed
         * to another thread's allocation, whose entry we must not drop. */
        pthread_mutex_lock(&ip_mu);
        found = ip_tab_remove_locked((uintptr_t)ptr, &ent);
        pthread_mutex_unlock(&ip_mu);
    }
    if (found && ent.graph) {
        /* Graph memory goes back to its graph, never to libcudart. A free
         * of a live graph allocation always succeeds; one the graph refuses
         * (the graph or its device is gone: nothing is left to free) is
         * answered cudaSuccess all the same, as the framework's free was
         * legitimate: it got the pointer from us. */
        dv_result_t r = ent.graph_free(ent.gdev, ent.graph, (uint64_t)ent.key,
                                       stream);
        if (r == DV_OK) {
            IP_COUNT(ent.device, ent.epoch, graph_frees);
        } else {
            IP_COUNT(ent.device, ent.epoch, absorbed_frees);
        }
        return DV_CUDA_SUCCESS;
    }
    cudaError_t e = ip_real_free(ptr, stream, async);
    if (!found) {
        return e; /* not ours: libcudart's answer */
    }
    IP_COUNT(ent.device, ent.epoch, driver_frees);
    if (e == DV_CUDA_ERROR_INVALID_VALUE && ent.captured) {
        /* Memory of a CUDA graph's allocation node that never ran (the
         * graph was never launched): there is nothing to free. Torch frees
         * such tensors when a capture's outputs are dropped unreplayed, and
         * would abort on the error (its deleters cannot throw). Clear the
         * error libcudart recorded for the thread, and count it. */
        if (ip_fn.get_last_error_fn) {
            (void)ip_fn.get_last_error_fn();
        }
        IP_COUNT(ent.device, ent.epoch, absorbed_frees);
        e = DV_CUDA_SUCCESS;
    }
    if (e != DV_CUDA_SUCCESS) {
        pthread_mutex_lock(&ip_mu);
        (void)ip_tab_insert_locked(&ent);
        pthread_mutex_unlock(&ip_mu);
        return e;
    }
    ip_binding b;
    if (ip_binding_get(ent.device, &b) && b.epoch == ent.epoch) {
        b.api.framework_release(b.dev, ent.size);
        pthread_mutex_lock(&ip_mu);
        ip_slot *s = &ip_slots[ent.device];
        if (s->epoch == ent.epoch) {
            s->st.frees++;
            s->st.live_bytes -= ent.size;
            s->st.live_count--;
        }
        pthread_mutex_unlock(&ip_mu);
    }
    return e;
}

/* ---- interposed entry points -------------------------------------------- */

IP_EXPORT cudaError_t cudaMalloc(void **ptr, size_t size) {
    return ip_alloc(ptr, size, NULL, 0, -1);
}

IP_EXPORT cudaError_t cudaFree(void *ptr) { return ip_free(ptr, NULL, 0); }

IP_EXPORT cudaError_t cudaMallocAsync(void **ptr, size_t size,
                                      cudaStream_t stream) {
    if (ip_resolve() && !ip_fn.malloc_async_fn) {
        return DV_CUDA_ERROR_INITIALIZATION;
    }
    return ip_alloc(ptr, size, stream, 1, -1);
}

IP_EXPORT cudaError_t cudaFreeAsync(void *ptr, cudaStream_t stream) {
    if (ip_resolve() && !ip_fn.free_async_fn) {
        return DV_CUDA_ERROR_INITIALIZATION;
    }
    return ip_free(ptr, stream, 1);
}

IP_EXPORT cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes) {
    if (!ip_resolve()) {
        return DV_CUDA_ERROR_INITIALIZATION;
    }
    cudaError_t e = ip_fn.mem_get_info_fn(free_bytes, total_bytes);
    int device = -1;
    ip_binding b;
    if (e != DV_CUDA_SUCCESS || !free_bytes ||
        ip_fn.get_device_fn(&device) != DV_CUDA_SUCCESS ||
        !ip_binding_get(device, &b)) {
        return e;
    }
    dv_device_stats_t st;
    if (b.api.device_get_stats(b.dev, &st) != DV_OK) {
        return e;
    }
    /* What a framework allocation could get: the budget less what cannot be
     * evicted for it (its own bytes and pinned pages), and no more than the
     * GPU has free plus what eviction would give back. */
    uint64_t fixed = st.framework_bytes + st.pinned_bytes;
    uint64_t budget_left = st.budget > fixed ? st.budget - fixed : 0;
    uint64_t reclaim = st.used > fixed ? st.used - fixed : 0;
    uint64_t real_free = (uint64_t)*free_bytes + reclaim;
    uint64_t avail = budget_left < real_free ? budget_left : real_free;
    *free_bytes = (size_t)avail;
    return e;
}

/* ---- CUDAPluggableAllocator pair ------------------------------------------ */

IP_EXPORT void *dv_interpose_alloc(size_t size, int device, void *stream) {
    void *p = NULL;
    if (ip_alloc(&p, size, (cudaStream_t)stream, 1, device) !=
        DV_CUDA_SUCCESS) {
        return NULL;
    }
    return p;
}

IP_EXPORT void dv_interpose_free(void *ptr, size_t size, int device,
                                 void *stream) {
    (void)size;
    (void)device;
    (void)ip_free(ptr, (cudaStream_t)stream, 1);
}
