/*
 * fake_cuda.c - a simulated CUDA driver on host memory, with libcuda's C ABI
 * for the entry points in hal/cuda/cuda_abi.h. The CUDA backend is pointed
 * at it with DYNVRAM_CUDA_LIBRARY so the backend's logic, and the generic
 * suites on top of it, run in CI without a GPU.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * It is strict where the backend's contract matters and a lenient fake
 * would hide bugs:
 *  - every call that needs a context fails with CUDA_ERROR_INVALID_CONTEXT
 *    when the calling thread has none current (the backend must bind its
 *    own), and streams and events must belong to the current context;
 *  - contexts, streams and events are looked up in the driver's lists by
 *    address, never read through, so junk and dead handles get an error
 *    (CUDA_ERROR_INVALID_CONTEXT / CUDA_ERROR_INVALID_HANDLE), never a
 *    crash; destroyed ones are kept (not freed) until exit, so a new object
 *    never takes a dead one's address (fake_cuda_stream.c);
 *  - mapping checks the range is reserved and not mapped yet; memory is
 *    readable only after cuMemSetAccess; copies and memsets check that the
 *    whole device range is mapped and accessible from the current
 *    context's device;
 *  - device memory is limited (DV_FAKE_CUDA_MEMORY bytes, default 1 GiB) and
 *    cuMemCreate beyond it returns CUDA_ERROR_OUT_OF_MEMORY.
 * Streams run synchronously: every copy is done when it returns and events
 * are always complete.
 *
 * Environment: DV_FAKE_CUDA_DEVICES (default 1; 0 makes cuInit fail with
 * CUDA_ERROR_NO_DEVICE), DV_FAKE_CUDA_MEMORY, DV_FAKE_CUDA_VERSION (default
 * 12080), DV_FAKE_CUDA_NO_VMM (device lacks VMM), DV_FAKE_CUDA_FAIL=name:n
 * (the n-th call of entry point `name` fails with CUDA_ERROR_UNKNOWN, or
 * CUDA_ERROR_OUT_OF_MEMORY for cuMemCreate/cuMemMap/cuMemAllocAsync),
 * Devices sit on PCI bus 1 + ordinal (domain 0, device 0), as fake_nvml.c
 * expects. DV_FAKE_CUDA_CAPTURING=1 (every created stream reports an active capture
 * to cuStreamIsCapturing), DV_FAKE_CUDA_HIDE=name (cuGetProcAddress does
 * not know entry point `name`, like an older driver).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_cuda.h"

pthread_mutex_t fk_lock = PTHREAD_MUTEX_INITIALIZER;
int fk_inited;
int fk_devices = 1;
uint64_t fk_capacity = 1ull << 30;
uint64_t fk_used[FK_MAX_DEV];
int fk_primary_refs[FK_MAX_DEV];
fk_range_t *fk_reserved, *fk_mapped, *fk_allocs, *fk_pinned;
fk_mem_t *fk_mems;
char fk_fail_name[64];
long fk_fail_nth;
long fk_fail_seen;

_Thread_local fk_ctx_t *fk_stack[16];
_Thread_local int fk_depth;

fk_ctx_t *fk_current(void) {
    return fk_depth > 0 ? fk_stack[fk_depth - 1] : NULL;
}

int fk_env_int(const char *name, int dflt) {
    const char *v = getenv(name);
    return v && *v ? atoi(v) : dflt;
}

/* DV_FAKE_CUDA_FAIL: does this call fail? */
int fk_inject(const char *name) {
    int hit = 0;
    pthread_mutex_lock(&fk_lock);
    if (fk_fail_name[0] && strcmp(fk_fail_name, name) == 0) {
        hit = ++fk_fail_seen == fk_fail_nth;
    }
    pthread_mutex_unlock(&fk_lock);
    return hit;
}

int fk_ready(void) { return fk_inited; }

fk_range_t *fk_find(fk_range_t *list, uint64_t va, uint64_t size) {
    for (fk_range_t *r = list; r; r = r->next) {
        if (va >= r->va && size <= r->size && va - r->va <= r->size - size) {
            return r;
        }
    }
    return NULL;
}

fk_range_t *fk_overlap(fk_range_t *list, uint64_t va, uint64_t size) {
    for (fk_range_t *r = list; r; r = r->next) {
        if (va < r->va + r->size && r->va < va + size) {
            return r;
        }
    }
    return NULL;
}

int fk_push_range(fk_range_t **list, uint64_t va, uint64_t size, void *mem) {
    fk_range_t *r = calloc(1, sizeof(*r));
    if (!r) {
        return 0;
    }
    r->va = va;
    r->size = size;
    r->mem = mem;
    r->next = *list;
    *list = r;
    return 1;
}

void fk_unlink(fk_range_t **list, fk_range_t *victim) {
    for (fk_range_t **p = list; *p; p = &(*p)->next) {
        if (*p == victim) {
            *p = victim->next;
            free(victim);
            return;
        }
    }
}

/* Is [va, va+size) entirely covered by mappings accessible from the
 * current context's device (cuMemSetAccess grants one device; a copy runs
 * on the device of the context it is issued in)? */
int fk_accessible(uint64_t va, uint64_t size) {
    fk_ctx_t *cur = fk_current();
    while (size > 0) {
        fk_range_t *m = fk_find(fk_mapped, va, 1);
        if (!m || !m->access || !cur || m->access_dev != cur->dev) {
            m = fk_find(fk_allocs, va, 1);
            if (!m) {
                return 0;
            }
        }
        uint64_t take = m->va + m->size - va;
        take = take < size ? take : size;
        va += take;
        size -= take;
    }
    return 1;
}

/* ---- errors, init, devices ---- */

static dv_cu_result fk_get_error_name(dv_cu_result e, const char **s) {
    switch (e) {
    case 0: *s = "CUDA_SUCCESS"; break;
    case 1: *s = "CUDA_ERROR_INVALID_VALUE"; break;
    case 2: *s = "CUDA_ERROR_OUT_OF_MEMORY"; break;
    case 3: *s = "CUDA_ERROR_NOT_INITIALIZED"; break;
    case 100: *s = "CUDA_ERROR_NO_DEVICE"; break;
    case 101: *s = "CUDA_ERROR_INVALID_DEVICE"; break;
    case 201: *s = "CUDA_ERROR_INVALID_CONTEXT"; break;
    case 400: *s = "CUDA_ERROR_INVALID_HANDLE"; break;
    case 500: *s = "CUDA_ERROR_NOT_FOUND"; break;
    case 600: *s = "CUDA_ERROR_NOT_READY"; break;
    case 712: *s = "CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED"; break;
    case 713: *s = "CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED"; break;
    case 999: *s = "CUDA_ERROR_UNKNOWN"; break;
    default: *s = NULL; return DV_CU_ERROR_INVALID_VALUE;
    }
    return DV_CU_SUCCESS;
}

static dv_cu_result fk_get_error_string(dv_cu_result e, const char **s) {
    const char *n = NULL;
    if (fk_get_error_name(e, &n) != DV_CU_SUCCESS) {
        *s = NULL;
        return DV_CU_ERROR_INVALID_VALUE;
    }
    *s = "(fake driver)";
    return DV_CU_SUCCESS;
}

int fk_capturing;
fk_ctx_t fk_primary[FK_MAX_DEV];
/* Contexts made by cuCtxCreate; destroyed ones move to fk_dead_ctxs and
 * stay allocated, so a new context never reuses a dead one's address. */
static fk_ctx_t *fk_ctxs, *fk_dead_ctxs;

static dv_cu_result fk_init(unsigned int flags) {
    const char *fail = getenv("DV_FAKE_CUDA_FAIL");
    const char *mem = getenv("DV_FAKE_CUDA_MEMORY");
    if (flags != 0) {
        return DV_CU_ERROR_INVALID_VALUE;
    }
    pthread_mutex_lock(&fk_lock);
    fk_devices = fk_env_int("DV_FAKE_CUDA_DEVICES", 1);
    fk_devices = fk_devices > FK_MAX_DEV ? FK_MAX_DEV : fk_devices;
    if (mem && *mem) {
        fk_capacity = strtoull(mem, NULL, 0);
    }
    if (fail && *fail) {
        const char *colon = strchr(fail, ':');
        size_t n = colon ? (size_t)(colon - fail) : strlen(fail);
        n = n < sizeof(fk_fail_name) - 1 ? n : sizeof(fk_fail_name) - 1;
        memcpy(fk_fail_name, fail, n);
        fk_fail_name[n] = '\0';
        fk_fail_nth = colon ? atol(colon + 1) : 1;
    }
    for (int i = 0; i < FK_MAX_DEV; i++) {
        fk_primary[i].dev = i;
    }
    fk_capturing = fk_env_int("DV_FAKE_CUDA_CAPTURING", 0);
    fk_inited = fk_devices > 0;
    pthread_mutex_unlock(&fk_lock);
    return fk_devices > 0 ? DV_CU_SUCCESS : DV_CU_ERROR_NO_DEVICE;
}

static dv_cu_result fk_driver_get_version(int *v) {
    if (!v) {
        return DV_CU_ERROR_INVALID_VALUE;
    }
    *v = fk_env_int("DV_FAKE_CUDA_VERSION", 12080);
    return DV_CU_SUCCESS;
}

static dv_cu_result fk_device_get_count(int *n) {
    NEED_INIT();
    *n = fk_devices;
    return DV_CU_SUCCESS;
}

static dv_cu_result fk_device_get(dv_cu_device *d, int ordinal) {
    NEED_INIT();
    if (ordinal < 0 || ordinal >= fk_devices) {
        return DV_CU_ERROR_INVALID_DEVICE;
    }
    *d = ordinal;
    return DV_CU_SUCCESS;
}

static dv_cu_result fk_device_get_name(char *name, int len, dv_cu_device d) {
    NEED_DEV(d);
    snprintf(name, (size_t)len, "dynvram fake CUDA device %d", d);
    return DV_CU_SUCCESS;
}

static dv_cu_result fk_device_total_mem(size_t *bytes, dv_cu_device d) {
    NEED_DEV(d);
    *bytes = fk_capacity;
    return DV_CU_SUCCESS;
}

static dv_cu_result fk_device_get_attribute(int *v, dv_cu_device_attribute a,
                                            dv_cu_device d) {
    NEED_DEV(d);
    /* PCI location: domain 0, bus 1 + ordinal, device 0 (fake_nvml.c
     * answers the same bus ids). */
    switch (a) {
    case DV_CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED:
        *v = getenv("DV_FAKE_CUDA_NO_VMM") ? 0 : 1;
        return DV_CU_SUCCESS;
    case DV_CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID:
    case DV_CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID:
        *v = 0;
        return DV_CU_SUCCESS;
    case DV_CU_DEVICE_ATTRIBUTE_PCI_BUS_ID:
        *v = 1 + (int)d;
        return DV_CU_SUCCESS;
    default:
        return DV_CU_ERROR_INVALID_VALUE;
    }
}

/* ---- contexts ---- */

/* Is `c` a live context (a primary one or one made by cuCtxCreate)? By
 * address only: `c` is not read. */
static int fk_is_ctx(const fk_ctx_t *c) {
    int found = 0;
    for (int i = 0; i < FK_MAX_DEV; i++) {
        found |= c == &fk_primary[i];
    }
    pthread_mutex_lock(&fk_lock);
    for (fk_ctx_t *k = fk_ctxs; k && !found; k = k->next) {
        found = k == c;
    }
    pthread_mutex_unlock(&fk_lock);
    return found;
}

static dv_cu_result fk_primary_retain(dv_cu_context *ctx, dv_cu_device d) {
    NEED_DEV(d);
    pthread_mutex_lock(&fk_lock);
    fk_primary_refs[d]++;
    pthread_mutex_unlock(&fk_lock);
    *ctx = (dv_cu_context)&fk_primary[d];
    return DV_CU_SUCCESS;
}

static dv_cu_result fk_primary_release(dv_cu_device d) {
    dv_cu_result rc = DV_CU_SUCCESS;
    NEED_DEV(d);
    pthread_mutex_lock(&fk_lock);
    if (fk_primary_refs[d] > 0) {
        fk_primary_refs[d]--;
    } else {
        rc = DV_CU_ERROR_INVALID_CONTEXT;
    }
    pthread_mutex_unlock(&fk_lock);
    return rc;
}

static dv_cu_result fk_ctx_push(dv_cu_context ctx) {
    fk_ctx_t *c = (fk_ctx_t *)ctx;
    NEED_INIT();
    if (!fk_is_ctx(c)) {
        return DV_CU_ERROR_INVALID_CONTEXT;
    }
    if (fk_depth == (int)(sizeof(fk_stack) / sizeof(fk_stack[0]))) {
        return DV_CU_ERROR_OUT_OF_MEMORY;
    }
    fk_stack[fk_depth++] = c;
    return DV_CU_SUCCESS;
}

static dv_cu_result fk_ctx_pop(dv_cu_context *ctx) {
    NEED_INIT();
    if (fk_depth == 0) {
        return DV_CU_ERROR_INVALID_CONTEXT;
    }
    fk_ctx_t *c = fk_stack[--fk_depth];
    if (ctx) {
        *ctx = (dv_cu_context)c;
    }
    return DV_CU_SUCCESS;
}

static dv_cu_result fk_ctx_get_current(dv_cu_context *ctx) {
    NEED_INIT();
    *ctx = (dv_cu_context)fk_current();
    return DV_CU_SUCCESS;
}

static dv_cu_result fk_ctx_set_current(dv_cu_context ctx) {
    fk_ctx_t *c = (fk_ctx_t *)ctx;
    NEED_INIT();
    if (!c) {
        if (fk_depth > 0) {
            fk_depth--;
        }
        return DV_CU_SUCCESS;
    }
    if (!fk_is_ctx(c)) {
        return DV_CU_ERROR_INVALID_CONTEXT;
    }
    if (fk_depth == 0) {
        fk_depth = 1;
    }
    fk_stack[fk_depth - 1] = c;
    return DV_CU_SUCCESS;
}

static dv_cu_result fk_ctx_create(dv_cu_context *ctx,
                                  dv_cu_exec_affinity_param *p, int np,
                                  unsigned int flags, dv_cu_device d) {
    NEED_DEV(d);
    if (p || np) {
        return DV_CU_ERROR_INVALID_VALUE;
    }
    if (!ctx) {
        return DV_CU_ERROR_INVALID_VALUE;
    }
    if (fk_depth == (int)(sizeof(fk_stack) / sizeof(fk_stack[0]))) {
        return DV_CU_ERROR_OUT_OF_MEMORY;
    }
    fk_ctx_t *c = calloc(1, sizeof(*c));
    if (!c) {
        return DV_CU_ERROR_OUT_OF_MEMORY;
    }
    c->dev = d;
    pthread_mutex_lock(&fk_lock);
    c->next = fk_ctxs;
    fk_ctxs = c;
    pthread_mutex_unlock(&fk_lock);
    fk_stack[fk_depth++] = c; /* cuCtxCreate makes it current */
    *ctx = (dv_cu_context)c;
    return DV_CU_SUCCESS;
}

static dv_cu_result fk_ctx_destroy(dv_cu_context ctx) {
    fk_ctx_t *c = (fk_ctx_t *)ctx;
    int found = 0;
    NEED_INIT();
    pthread_mutex_lock(&fk_lock);
    for (fk_ctx_t **p = &fk_ctxs; *p; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            c->next = fk_dead_ctxs;
            fk_dead_ctxs = c;
            found = 1;
            break;
        }
    }
    pthread_mutex_unlock(&fk_lock);
    if (!found) {
        return DV_CU_ERROR_INVALID_CONTEXT; /* junk, dead or primary */
    }
    /* Its streams and events die with it, as in the driver. */
    fk_bury_objects_of(c);
    if (fk_current() == c) {
        fk_depth--;
    }
    return DV_CU_SUCCESS;
}

static dv_cu_result fk_ctx_get_device(dv_cu_device *d) {
    NEED_CTX();
    if (!d) {
        return DV_CU_ERROR_INVALID_VALUE;
    }
    *d = fk_current()->dev;
    return DV_CU_SUCCESS;
}

static dv_cu_result fk_ctx_synchronize(void) {
    NEED_CTX();
    return DV_CU_SUCCESS;
}

/* ---- symbol lookup ---- */

#define FK_LIST(X)                                                             \
    X(cuGetErrorName, fk_get_error_name)                                       \
    X(cuGetErrorString, fk_get_error_string)                                   \
    X(cuInit, fk_init)                                                         \
    X(cuDriverGetVersion, fk_driver_get_version)                               \
    X(cuDeviceGetCount, fk_device_get_count)                                   \
    X(cuDeviceGet, fk_device_get)                                              \
    X(cuDeviceGetName, fk_device_get_name)                                     \
    X(cuDeviceTotalMem, fk_device_total_mem)                                   \
    X(cuDeviceGetAttribute, fk_device_get_attribute)                           \
    X(cuDevicePrimaryCtxRetain, fk_primary_retain)                             \
    X(cuDevicePrimaryCtxRelease, fk_primary_release)                           \
    X(cuCtxPushCurrent, fk_ctx_push)                                           \
    X(cuCtxPopCurrent, fk_ctx_pop)                                             \
    X(cuCtxGetCurrent, fk_ctx_get_current)                                     \
    X(cuCtxSetCurrent, fk_ctx_set_current)                                     \
    X(cuCtxCreate, fk_ctx_create)                                              \
    X(cuCtxDestroy, fk_ctx_destroy)                                            \
    X(cuCtxSynchronize, fk_ctx_synchronize)                                    \
    X(cuCtxGetDevice, fk_ctx_get_device)                                       \
    X(cuMemGetInfo, fk_mem_get_info)                                           \
    X(cuMemGetAllocationGranularity, fk_granularity)                           \
    X(cuMemAddressReserve, fk_address_reserve)                                 \
    X(cuMemAddressFree, fk_address_free)                                       \
    X(cuMemCreate, fk_mem_create)                                              \
    X(cuMemRelease, fk_mem_release)                                            \
    X(cuMemMap, fk_mem_map)                                                    \
    X(cuMemUnmap, fk_mem_unmap)                                                \
    X(cuMemSetAccess, fk_mem_set_access)                                       \
    X(cuEventCreate, fk_event_create)                                          \
    X(cuEventRecord, fk_event_record)                                          \
    X(cuEventQuery, fk_event_check)                                            \
    X(cuEventSynchronize, fk_event_check)                                      \
    X(cuEventDestroy, fk_event_destroy)                                        \
    X(cuStreamCreate, fk_stream_create)                                        \
    X(cuStreamDestroy, fk_stream_destroy)                                      \
    X(cuStreamSynchronize, fk_stream_check)                                    \
    X(cuStreamQuery, fk_stream_check)                                          \
    X(cuStreamGetCtx, fk_stream_get_ctx)                                       \
    X(cuStreamWaitEvent, fk_stream_wait_event)                                 \
    X(cuStreamIsCapturing, fk_stream_is_capturing)                             \
    X(cuMemcpyHtoDAsync, fk_memcpy_htod)                                       \
    X(cuMemcpyDtoHAsync, fk_memcpy_dtoh)                                       \
    X(cuMemcpyDtoDAsync, fk_memcpy_dtod)                                       \
    X(cuMemsetD8Async, fk_memset_d8)                                           \
    X(cuMemAlloc, fk_mem_alloc)                                                \
    X(cuMemFree, fk_mem_free)                                                  \
    X(cuMemHostRegister, fk_host_register)                                     \
    X(cuMemHostUnregister, fk_host_unregister)

/* The typedefs in cuda_abi.h are the contract: every fake must match. */
#define FK_ASSERT(name, fn)                                                    \
    _Static_assert(                                                            \
        __builtin_types_compatible_p(__typeof__(&fn), dv_cu_pfn_##name),       \
        #fn " does not match " #name);
FK_LIST(FK_ASSERT)
#undef FK_ASSERT

static const struct {
    const char *name;
    void *fn;
} fk_symbols[] = {
#define FK_ENTRY(name, fn) {#name, (void *)fn},
    FK_LIST(FK_ENTRY)
#undef FK_ENTRY
    /* Used by tests/cuda/test_cuda_multi.c only, so not in FK_LIST (which
     * checks against cuda_abi.h); same ABI as the driver's since CUDA 4.0. */
    {"cuPointerGetAttribute", (void *)fk_pointer_get_attribute},
    /* Used by bindings/interpose/pluggable.c, which declares its own
     * prototypes (the CUDA 11.2 ABI, unchanged since). */
    {"cuMemAllocAsync", (void *)fk_mem_alloc_async},
    {"cuMemFreeAsync", (void *)fk_mem_free_async},
};

FK_EXPORT dv_cu_result cuGetProcAddress_v2(const char *symbol, void **pfn,
                                           int version, dv_cu_uint64 flags,
                                           dv_cu_proc_query_result *status);
FK_EXPORT dv_cu_result cuGetProcAddress(const char *symbol, void **pfn,
                                        int version, dv_cu_uint64 flags);
FK_EXPORT dv_cu_result cuDriverGetVersion(int *version);

FK_EXPORT dv_cu_result cuGetProcAddress_v2(const char *symbol, void **pfn,
                                           int version, dv_cu_uint64 flags,
                                           dv_cu_proc_query_result *status) {
    if (!symbol || !pfn) {
        return DV_CU_ERROR_INVALID_VALUE;
    }
    *pfn = NULL;
    if (status) {
        *status = 1; /* CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND */
    }
    /* The fake implements the 12.0 ABI of each symbol only. */
    if (version != DV_CU_ABI_VERSION ||
        flags != DV_CU_GET_PROC_ADDRESS_LEGACY_STREAM) {
        return DV_CU_ERROR_NOT_FOUND;
    }
    const char *hide = getenv("DV_FAKE_CUDA_HIDE");
    if (hide && strcmp(hide, symbol) == 0) {
        return DV_CU_ERROR_NOT_FOUND; /* as a driver predating it */
    }
    for (size_t i = 0; i < sizeof(fk_symbols) / sizeof(fk_symbols[0]); i++) {
        if (strcmp(fk_symbols[i].name, symbol) == 0) {
            *pfn = fk_symbols[i].fn;
            if (status) {
                *status = DV_CU_GET_PROC_ADDRESS_SUCCESS;
            }
            return DV_CU_SUCCESS;
        }
    }
    return DV_CU_ERROR_NOT_FOUND;
}

FK_EXPORT dv_cu_result cuGetProcAddress(const char *symbol, void **pfn,
                                        int version, dv_cu_uint64 flags) {
    return cuGetProcAddress_v2(symbol, pfn, version, flags, NULL);
}

FK_EXPORT dv_cu_result cuDriverGetVersion(int *version) {
    return fk_driver_get_version(version);
}
