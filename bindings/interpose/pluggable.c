/*
 * pluggable.c - torch.cuda.memory.CUDAPluggableAllocator entry points on
 * the CUDA driver API, for builds of PyTorch that symbol interposition
 * cannot reach (Windows: PyTorch's CUDA 13 builds link the runtime
 * statically). Contract: dv_pluggable.h.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Why the driver API: a statically linked runtime has no cudaMallocAsync
 * for us to call from outside, but the driver (nvcuda.dll, libcuda.so.1)
 * is one per machine and its stream-ordered allocator (cuMemAllocAsync)
 * hands out memory the runtime inside torch uses as its own (the same
 * primary context, the same streams: a cudaStream_t is a CUstream).
 *
 * Layout: the driver's entry points (pl_cu), resolved once through
 * cuGetProcAddress; the device bindings and the pointer -> size table
 * (pl_slots, pl_tab) under pl_mu; the allocation and free paths. dynvram is
 * called outside pl_mu, as in interpose.c.
 */
#include "dv_pluggable.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(_WIN32)
#include <windows.h>
typedef SRWLOCK pl_mutex_t;
#define PL_MUTEX_INIT SRWLOCK_INIT
static void pl_lock(pl_mutex_t *m) { AcquireSRWLockExclusive(m); }
static void pl_unlock(pl_mutex_t *m) { ReleaseSRWLockExclusive(m); }
static void *pl_open(const char *name) { return (void *)LoadLibraryA(name); }
static void *pl_sym(void *lib, const char *name) {
    return (void *)(uintptr_t)GetProcAddress((HMODULE)lib, name);
}
#define PL_DEFAULT_DRIVER "nvcuda.dll"
#define PL_API __stdcall
#else
#include <dlfcn.h>
#include <pthread.h>
typedef pthread_mutex_t pl_mutex_t;
#define PL_MUTEX_INIT PTHREAD_MUTEX_INITIALIZER
static void pl_lock(pl_mutex_t *m) { pthread_mutex_lock(m); }
static void pl_unlock(pl_mutex_t *m) { pthread_mutex_unlock(m); }
static void *pl_open(const char *name) {
    return dlopen(name, RTLD_NOW | RTLD_LOCAL);
}
static void *pl_sym(void *lib, const char *name) { return dlsym(lib, name); }
#define PL_DEFAULT_DRIVER "libcuda.so.1"
#define PL_API
#endif

/* Evict-and-retry rounds after a real out-of-memory before giving up. */
#define PL_MAX_RETRIES 64

/* ---- the driver ----------------------------------------------------------- */

/* The slice of the driver ABI used here (cuda.h, CUDA 12.0 ABI). */
typedef int pl_cu_result;
typedef unsigned long long pl_cu_ptr;
typedef int pl_cu_device;
typedef void *pl_cu_context;
typedef void *pl_cu_stream;
#define PL_CU_SUCCESS 0
#define PL_CU_ERROR_OUT_OF_MEMORY 2
#define PL_CU_ABI_VERSION 12000
#define PL_CU_LEGACY_STREAM 1ull /* CU_GET_PROC_ADDRESS_LEGACY_STREAM */

typedef pl_cu_result(PL_API *pl_gpa2_fn)(const char *, void **, int,
                                         unsigned long long, int *);
typedef pl_cu_result(PL_API *pl_gpa1_fn)(const char *, void **, int,
                                         unsigned long long);

typedef struct pl_driver {
    pl_cu_result(PL_API *init)(unsigned int flags);
    pl_cu_result(PL_API *mem_alloc_async)(pl_cu_ptr *ptr, size_t size,
                                          pl_cu_stream stream);
    pl_cu_result(PL_API *mem_free_async)(pl_cu_ptr ptr, pl_cu_stream stream);
    pl_cu_result(PL_API *ctx_get_current)(pl_cu_context *ctx);
    pl_cu_result(PL_API *ctx_set_current)(pl_cu_context ctx);
    pl_cu_result(PL_API *device_get)(pl_cu_device *dev, int ordinal);
    pl_cu_result(PL_API *primary_retain)(pl_cu_context *ctx,
                                         pl_cu_device dev);
} pl_driver;

static pl_driver pl_cu;
static int pl_loaded; /* 1 ok, -1 failed (reason in pl_reason) */
static char pl_reason[512];
static pl_mutex_t pl_load_mu = PL_MUTEX_INIT;

static void *pl_resolve(pl_gpa2_fn gpa2, pl_gpa1_fn gpa1, const char *name) {
    void *fn = NULL;
    int status = 0;
    pl_cu_result rc = gpa2 ? gpa2(name, &fn, PL_CU_ABI_VERSION,
                                  PL_CU_LEGACY_STREAM, &status)
                           : gpa1(name, &fn, PL_CU_ABI_VERSION,
                                  PL_CU_LEGACY_STREAM);
    return rc == PL_CU_SUCCESS && status == 0 ? fn : NULL;
}

/* Open the driver once: DYNVRAM_CUDA_LIBRARY, else the default name. */
static int pl_load(void) {
    pl_lock(&pl_load_mu);
    if (pl_loaded) {
        int ok = pl_loaded > 0;
        pl_unlock(&pl_load_mu);
        return ok;
    }
    const char *name = getenv("DYNVRAM_CUDA_LIBRARY");
    if (!name || !name[0]) {
        name = PL_DEFAULT_DRIVER;
    }
    void *lib = pl_open(name);
    pl_gpa2_fn gpa2 = lib ? (pl_gpa2_fn)pl_sym(lib, "cuGetProcAddress_v2")
                          : NULL;
    pl_gpa1_fn gpa1 = lib ? (pl_gpa1_fn)pl_sym(lib, "cuGetProcAddress") : NULL;
    pl_driver d;
    memset(&d, 0, sizeof(d));
    if (!lib) {
        snprintf(pl_reason, sizeof(pl_reason), "cannot load %s", name);
    } else if (!gpa2 && !gpa1) {
        snprintf(pl_reason, sizeof(pl_reason),
                 "%s has no cuGetProcAddress (not a CUDA 12 driver)", name);
    } else {
        d.init = (pl_cu_result(PL_API *)(unsigned int))pl_resolve(
            gpa2, gpa1, "cuInit");
        d.mem_alloc_async =
            (pl_cu_result(PL_API *)(pl_cu_ptr *, size_t, pl_cu_stream))
                pl_resolve(gpa2, gpa1, "cuMemAllocAsync");
        d.mem_free_async = (pl_cu_result(PL_API *)(pl_cu_ptr, pl_cu_stream))
            pl_resolve(gpa2, gpa1, "cuMemFreeAsync");
        d.ctx_get_current = (pl_cu_result(PL_API *)(pl_cu_context *))
            pl_resolve(gpa2, gpa1, "cuCtxGetCurrent");
        d.ctx_set_current = (pl_cu_result(PL_API *)(pl_cu_context))pl_resolve(
            gpa2, gpa1, "cuCtxSetCurrent");
        d.device_get = (pl_cu_result(PL_API *)(pl_cu_device *, int))
            pl_resolve(gpa2, gpa1, "cuDeviceGet");
        d.primary_retain =
            (pl_cu_result(PL_API *)(pl_cu_context *, pl_cu_device))pl_resolve(
                gpa2, gpa1, "cuDevicePrimaryCtxRetain");
        if (!d.init || !d.mem_alloc_async || !d.mem_free_async ||
            !d.ctx_get_current || !d.ctx_set_current || !d.device_get ||
            !d.primary_retain) {
            snprintf(pl_reason, sizeof(pl_reason),
                     "%s lacks cuMemAllocAsync, cuMemFreeAsync or a context "
                     "call at the CUDA 12.0 ABI",
                     name);
        } else if (d.init(0) != PL_CU_SUCCESS) {
            snprintf(pl_reason, sizeof(pl_reason), "cuInit failed (%s)", name);
        } else {
            pl_cu = d;
            pl_loaded = 1;
            pl_reason[0] = '\0';
            pl_unlock(&pl_load_mu);
            return 1;
        }
    }
    pl_loaded = -1;
    pl_unlock(&pl_load_mu);
    return 0;
}

DV_PLUGGABLE_EXPORT int dv_pluggable_driver_loaded(char *reason,
                                                   size_t reason_len) {
    int ok = pl_load();
    if (reason && reason_len) {
        pl_lock(&pl_load_mu);
        snprintf(reason, reason_len, "%s", ok ? "" : pl_reason);
        pl_unlock(&pl_load_mu);
    }
    return ok;
}

/* torch calls with its device current; bind the primary context if not. */
static void pl_bind_context(int device) {
    pl_cu_context ctx = NULL;
    if (pl_cu.ctx_get_current(&ctx) == PL_CU_SUCCESS && ctx) {
        return;
    }
    pl_cu_device dev = 0;
    if (pl_cu.device_get(&dev, device) == PL_CU_SUCCESS &&
        pl_cu.primary_retain(&ctx, dev) == PL_CU_SUCCESS) {
        pl_cu.ctx_set_current(ctx); /* the reference stays with the thread */
    }
}

/* ---- bindings and the pointer table -------------------------------------- */

typedef struct pl_slot {
    dv_device_t *dev; /* NULL = not attached */
    dv_pluggable_api_t api;
    uint64_t epoch;
    dv_pluggable_stats_t st;
} pl_slot;

typedef struct pl_entry {
    struct pl_entry *next;
    uintptr_t ptr;
    uint64_t size;
    uint64_t epoch;
    int device;
} pl_entry;

#define PL_BUCKETS 4096

static pl_mutex_t pl_mu = PL_MUTEX_INIT;
static pl_slot pl_slots[DV_PLUGGABLE_MAX_DEVICES];
static uint64_t pl_epochs;
static pl_entry *pl_tab[PL_BUCKETS];

static size_t pl_hash(uintptr_t p) {
    uint64_t x = (uint64_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 29;
    return (size_t)(x & (PL_BUCKETS - 1));
}

/* Remove `ptr`; returns its entry (the caller frees it) or NULL. */
static pl_entry *pl_take_locked(uintptr_t ptr) {
    pl_entry **pp = &pl_tab[pl_hash(ptr)];
    for (; *pp; pp = &(*pp)->next) {
        if ((*pp)->ptr == ptr) {
            pl_entry *e = *pp;
            *pp = e->next;
            return e;
        }
    }
    return NULL;
}

DV_PLUGGABLE_EXPORT dv_result_t
dv_pluggable_attach(int cuda_device, dv_device_t *dev,
                    const dv_pluggable_api_t *api) {
    if (cuda_device < 0 || cuda_device >= DV_PLUGGABLE_MAX_DEVICES || !dev ||
        !api || api->version < 1 || !api->framework_reserve ||
        !api->framework_release || !api->framework_evict) {
        return DV_ERROR_INVALID_ARGUMENT;
    }
    pl_lock(&pl_mu);
    pl_slot *s = &pl_slots[cuda_device];
    s->dev = dev;
    memset(&s->api, 0, sizeof(s->api));
    s->api = *api; /* the leading fields of a dv_interpose_api_t */
    s->epoch = ++pl_epochs;
    memset(&s->st, 0, sizeof(s->st));
    pl_unlock(&pl_mu);
    return DV_OK;
}

DV_PLUGGABLE_EXPORT dv_result_t dv_pluggable_detach(int cuda_device) {
    if (cuda_device < 0 || cuda_device >= DV_PLUGGABLE_MAX_DEVICES) {
        return DV_ERROR_INVALID_ARGUMENT;
    }
    pl_lock(&pl_mu);
    pl_slots[cuda_device].dev = NULL;
    pl_slots[cuda_device].epoch = ++pl_epochs;
    pl_unlock(&pl_mu);
    return DV_OK;
}

DV_PLUGGABLE_EXPORT dv_result_t
dv_pluggable_get_stats(int cuda_device, dv_pluggable_stats_t *st) {
    if (cuda_device < 0 || cuda_device >= DV_PLUGGABLE_MAX_DEVICES || !st) {
        return DV_ERROR_INVALID_ARGUMENT;
    }
    pl_lock(&pl_mu);
    *st = pl_slots[cuda_device].st;
    pl_unlock(&pl_mu);
    return DV_OK;
}

/* A consistent copy of a binding; 0 when the device is not attached. */
static int pl_binding(int device, pl_slot *out) {
    if (device < 0 || device >= DV_PLUGGABLE_MAX_DEVICES) {
        return 0;
    }
    pl_lock(&pl_mu);
    *out = pl_slots[device];
    pl_unlock(&pl_mu);
    return out->dev != NULL;
}

/* Add to a slot's counters if it still belongs to `epoch`. */
static void pl_count(int device, uint64_t epoch, int refused, int failed,
                     int retried, uint64_t evicted) {
    pl_lock(&pl_mu);
    pl_slot *s = &pl_slots[device];
    if (s->epoch == epoch) {
        s->st.budget_refusals += refused ? 1 : 0;
        s->st.failures += failed ? 1 : 0;
        s->st.oom_retries += retried ? 1 : 0;
        s->st.oom_evicted += evicted;
    }
    pl_unlock(&pl_mu);
}

/* ---- the allocator pair ---------------------------------------------------- */

DV_PLUGGABLE_EXPORT void *dv_pluggable_alloc(size_t size, int device,
                                             void *stream) {
    if (size == 0 || !pl_load()) {
        return NULL;
    }
    pl_bind_context(device);
    pl_slot b;
    int attached = pl_binding(device, &b);
    int counted = 0;
    if (attached) {
        dv_result_t r = b.api.framework_reserve(b.dev, size);
        if (r == DV_ERROR_OUT_OF_DEVICE_MEMORY) {
            /* Nothing evictable is left: torch reports out of memory. */
            pl_count(device, b.epoch, 1, 1, 0, 0);
            return NULL;
        }
        counted = r == DV_OK;
    }
    pl_cu_ptr p = 0;
    pl_cu_result rc = pl_cu.mem_alloc_async(&p, size, stream);
    for (int i = 0; attached && rc == PL_CU_ERROR_OUT_OF_MEMORY &&
                    i < PL_MAX_RETRIES;
         i++) {
        uint64_t freed = 0;
        if (b.api.framework_evict(b.dev, size, &freed) != DV_OK || !freed) {
            break;
        }
        pl_count(device, b.epoch, 0, 0, 1, freed);
        rc = pl_cu.mem_alloc_async(&p, size, stream);
    }
    if (rc != PL_CU_SUCCESS || !p) {
        if (counted) {
            b.api.framework_release(b.dev, size);
        }
        if (attached) {
            pl_count(device, b.epoch, 0, 1, 0, 0);
        }
        return NULL;
    }
    if (counted) {
        pl_entry *e = malloc(sizeof(*e));
        if (!e) {
            /* No host memory for the table: keep it, uncounted. */
            b.api.framework_release(b.dev, size);
        } else {
            e->ptr = (uintptr_t)p;
            e->size = size;
            e->epoch = b.epoch;
            e->device = device;
            pl_lock(&pl_mu);
            size_t h = pl_hash(e->ptr);
            e->next = pl_tab[h];
            pl_tab[h] = e;
            pl_slot *s = &pl_slots[device];
            if (s->epoch == b.epoch) {
                s->st.allocs++;
                s->st.live_bytes += size;
                s->st.live_count++;
            }
            pl_unlock(&pl_mu);
        }
    }
    return (void *)(uintptr_t)p;
}

DV_PLUGGABLE_EXPORT void dv_pluggable_free(void *ptr, size_t size, int device,
                                           void *stream) {
    (void)size;
    (void)device;
    if (!ptr || !pl_load()) {
        return;
    }
    /* Out of the table before the free: the address may be handed out
     * again at once, to another thread. */
    pl_lock(&pl_mu);
    pl_entry *e = pl_take_locked((uintptr_t)ptr);
    pl_unlock(&pl_mu);
    pl_cu_result rc = pl_cu.mem_free_async((pl_cu_ptr)(uintptr_t)ptr, stream);
    if (!e) {
        return;
    }
    if (rc != PL_CU_SUCCESS) {
        /* The driver kept it: so does the table (still counted). */
        pl_lock(&pl_mu);
        size_t h = pl_hash(e->ptr);
        e->next = pl_tab[h];
        pl_tab[h] = e;
        pl_unlock(&pl_mu);
        return;
    }
    pl_slot b;
    if (pl_binding(e->device, &b) && b.epoch == e->epoch) {
        b.api.framework_release(b.dev, e->size);
        pl_lock(&pl_mu);
        pl_slot *s = &pl_slots[e->device];
        if (s->epoch == e->epoch) {
            s->st.frees++;
            s->st.live_bytes -= e->size;
            s->st.live_count--;
        }
        pl_unlock(&pl_mu);
    }
    free(e);
}

#if defined(__GNUC__) && !defined(_WIN32)
/* dv_pluggable_api_t is the head of dv_interpose_api_t: the Python
 * extension hands the same struct to both libraries. */
#include <stddef.h>

#include "dv_interpose.h"
#define PL_SAME(f)                                                             \
    _Static_assert(offsetof(dv_pluggable_api_t, f) ==                          \
                       offsetof(dv_interpose_api_t, f),                        \
                   "dv_pluggable_api_t." #f)
PL_SAME(version);
PL_SAME(framework_reserve);
PL_SAME(framework_release);
PL_SAME(framework_evict);
PL_SAME(device_get_stats);
#endif
