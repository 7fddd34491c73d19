/*
 * host.c - the host backend: a simulated device on host virtual memory, the
 * same on every platform. The operating system's part (reserve, create,
 * map, ...) is host_vm.h's, implemented by host_vm_posix.c and
 * host_vm_win.c; streams and fences are host_stream.c's; the environment's
 * settings are host_env.c's.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * A real backend, not a mock: memory written through a mapping is really
 * there, and touching an unmapped page really faults. What this file adds
 * over the OS:
 *  - a simulated capacity (backend option capacity=, else
 *    DYNVRAM_HOST_CAPACITY, else 4 GiB): create beyond it is out of device
 *    memory, so eviction happens on any machine;
 *  - argument checks a driver makes (granularity, handles of this device,
 *    no release while mapped);
 *  - the table of live mappings, so copies to or from memory that is not
 *    mapped fail with a reason instead of faulting.
 * The core serializes calls per device (HAL contract): a ctx needs no lock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dynvram_hal.h"

#include "base/native.h"
#include "base/os.h"
#include "host_env.h"
#include "host_reg.h"
#include "host_stream.h"
#include "host_vm.h"

typedef struct host_ctx host_ctx_t;

/* A "physical" allocation of one device. */
typedef struct host_mem {
    host_ctx_t *owner;
    dv__host_vm_mem_t *os;
    uint64_t size;
    uint32_t maps; /* live mappings of it */
} host_mem_t;

typedef struct host_map {
    uint64_t va, size;
    host_mem_t *mem;
} host_map_t;

struct host_ctx {
    int ordinal;
    uint64_t capacity;
    uint64_t allocated;
    uint64_t granularity;
    dv__host_vm_t *vm;
    host_map_t *maps; /* live mappings, unordered */
    size_t map_count, map_cap;
};

#define VM (&dv__host_vm_ops)

static int aligned(const host_ctx_t *c, uint64_t v) {
    return v % c->granularity == 0;
}

/* ---- probe, init, caps ------------------------------------------------------ */

static dv_result_t host_probe(int *count, char *reason, size_t len) {
    char why[256] = "";
    if (VM->available(why, sizeof(why)) != DV_OK) {
        *count = 0;
        if (reason && len) {
            snprintf(reason, len, "%s", why);
        }
        return DV_ERROR_BACKEND_UNAVAILABLE;
    }
    return dv__host_env_probe(count, reason, len);
}

static dv_result_t host_init(const dv_hal_init_args_t *args, void **ctx) {
    char why[256] = "";
    if (VM->available(why, sizeof(why)) != DV_OK) {
        return dv__native_fail(DV_ERROR_BACKEND_UNAVAILABLE, 0,
                               "host backend: %s", why);
    }
    dv_result_t r = dv__host_env_check_ordinal(args->ordinal);
    if (r != DV_OK) {
        return r;
    }
    host_ctx_t *c = calloc(1, sizeof(*c));
    if (!c) {
        return dv__native_fail(DV_ERROR_OUT_OF_HOST_MEMORY, 0,
                               "host init: calloc");
    }
    c->ordinal = args->ordinal;
    c->granularity = VM->granularity();
    r = dv__host_env_capacity(args->size ? args->options : NULL, &c->capacity);
    if (r == DV_OK) {
        r = VM->open(&c->vm);
    }
    if (r != DV_OK) {
        free(c);
        return r;
    }
    *ctx = c;
    return DV_OK;
}

static void host_fini(void *ctx) {
    host_ctx_t *c = ctx;
    VM->close(c->vm);
    free(c->maps);
    free(c);
}

static dv_result_t host_get_caps(void *ctx, dv_hal_caps_t *caps) {
    host_ctx_t *c = ctx;
    memset(caps, 0, sizeof(*caps));
    snprintf(caps->name, sizeof(caps->name),
             "host memory %d (%llu MiB simulated)", c->ordinal,
             (unsigned long long)(c->capacity >> 20));
    caps->granularity = c->granularity;
    caps->va_alignment = c->granularity;
    caps->total_memory = c->capacity;
    caps->flags = DV_CAP_FENCES | DV_CAP_HOST_ACCESSIBLE | DV_CAP_HOST_REGISTER;
    return DV_OK;
}

static dv_result_t host_mem_info(void *ctx, uint64_t *free_b, uint64_t *total) {
    host_ctx_t *c = ctx;
    *free_b = c->capacity > c->allocated ? c->capacity - c->allocated : 0;
    *total = c->capacity;
    return DV_OK;
}

/* ---- address space and memory ------------------------------------------------ */

static dv_result_t bad_size(const char *op, const host_ctx_t *c,
                            uint64_t size) {
    return dv__native_fail(DV_ERROR_INVALID_ARGUMENT, 0,
                           "host %s: size %llu is not a positive multiple of "
                           "%llu",
                           op, (unsigned long long)size,
                           (unsigned long long)c->granularity);
}

static dv_result_t host_reserve(void *ctx, uint64_t size, uint64_t *va) {
    host_ctx_t *c = ctx;
    if (size == 0 || !aligned(c, size)) {
        return bad_size("reserve", c, size);
    }
    return VM->reserve(c->vm, size, va);
}

/* Forget the mappings that lie in [va, va + size). */
static void drop_maps(host_ctx_t *c, uint64_t va, uint64_t size) {
    for (size_t k = 0; k < c->map_count;) {
        host_map_t *e = &c->maps[k];
        if (e->va >= va && e->va - va < size) {
            e->mem->maps--;
            *e = c->maps[--c->map_count];
        } else {
            k++;
        }
    }
}

/* Unreserving drops the mappings still in the range, as munmap does. */
static dv_result_t host_unreserve(void *ctx, uint64_t va, uint64_t size) {
    host_ctx_t *c = ctx;
    dv_result_t r = VM->unreserve(c->vm, va, size);
    if (r == DV_OK) {
        drop_maps(c, va, size);
    }
    return r;
}

static dv_result_t host_create(void *ctx, uint64_t size, dv_hal_mem_t *mem) {
    host_ctx_t *c = ctx;
    if (size == 0 || !aligned(c, size)) {
        return bad_size("create", c, size);
    }
    if (c->allocated > c->capacity || size > c->capacity - c->allocated) {
        return dv__native_fail(DV_ERROR_OUT_OF_DEVICE_MEMORY, 0,
                               "host create: %llu bytes past the simulated "
                               "capacity (%llu of %llu in use)",
                               (unsigned long long)size,
                               (unsigned long long)c->allocated,
                               (unsigned long long)c->capacity);
    }
    host_mem_t *m = calloc(1, sizeof(*m));
    if (!m) {
        return dv__native_fail(DV_ERROR_OUT_OF_HOST_MEMORY, 0,
                               "host create: calloc");
    }
    dv_result_t r = VM->create(c->vm, size, &m->os);
    if (r != DV_OK) {
        free(m);
        return r;
    }
    m->owner = c;
    m->size = size;
    c->allocated += size;
    *mem = (dv_hal_mem_t)(uintptr_t)m;
    return DV_OK;
}

/* A handle this device made, or NULL. */
static host_mem_t *mem_of(host_ctx_t *c, dv_hal_mem_t mem) {
    host_mem_t *m = (host_mem_t *)(uintptr_t)mem;
    return m && m->owner == c ? m : NULL;
}

static dv_result_t host_release(void *ctx, dv_hal_mem_t mem) {
    host_ctx_t *c = ctx;
    host_mem_t *m = mem_of(c, mem);
    if (!m) {
        return dv__native_fail(DV_ERROR_INVALID_ARGUMENT, 0,
                               "host release: not a handle of this device");
    }
    if (m->maps) {
        return dv__native_fail(DV_ERROR_BUSY, 0,
                               "host release: handle still mapped %u time(s)",
                               m->maps);
    }
    VM->release(c->vm, m->os);
    c->allocated -= m->size;
    m->owner = NULL;
    free(m);
    return DV_OK;
}

static dv_result_t host_map(void *ctx, uint64_t va, uint64_t size,
                            dv_hal_mem_t mem) {
    host_ctx_t *c = ctx;
    host_mem_t *m = mem_of(c, mem);
    if (!m || size == 0 || size > m->size || !aligned(c, size) ||
        !aligned(c, va)) {
        return dv__native_fail(DV_ERROR_INVALID_ARGUMENT, 0,
                               "host map: bad handle, size or alignment at "
                               "0x%llx +%llu",
                               (unsigned long long)va,
                               (unsigned long long)size);
    }
    if (c->map_count == c->map_cap) {
        size_t cap = c->map_cap ? c->map_cap * 2 : 64;
        host_map_t *p = realloc(c->maps, cap * sizeof(*p));
        if (!p) {
            return dv__native_fail(DV_ERROR_OUT_OF_HOST_MEMORY, 0,
                                   "host map: mapping table");
        }
        c->maps = p;
        c->map_cap = cap;
    }
    dv_result_t r = VM->map(c->vm, va, size, m->os);
    if (r != DV_OK) {
        return r;
    }
    c->maps[c->map_count++] = (host_map_t){va, size, m};
    m->maps++;
    return DV_OK;
}

static dv_result_t host_unmap(void *ctx, uint64_t va, uint64_t size) {
    host_ctx_t *c = ctx;
    dv_result_t r = VM->unmap(c->vm, va, size);
    if (r != DV_OK) {
        return r;
    }
    /* The OS layer refused to cut a mapping: whole ones are gone. */
    drop_maps(c, va, size);
    return DV_OK;
}

/* ---- copies and host memory ---------------------------------------------------- */

/* Is [va, va + size) covered by live mappings? Walk it one mapping at a
 * time. */
static int host_mapped(const host_ctx_t *c, uint64_t va, uint64_t size) {
    uint64_t end = va + size;
    if (end < va) {
        return 0;
    }
    while (va < end) {
        size_t k = 0;
        while (k < c->map_count &&
               !(c->maps[k].va <= va && va - c->maps[k].va < c->maps[k].size)) {
            k++;
        }
        if (k == c->map_count) {
            return 0;
        }
        va = c->maps[k].va + c->maps[k].size;
    }
    return 1;
}

static dv_result_t host_copy_h2d(void *ctx, uint64_t dst, const void *src,
                                 uint64_t size, void *stream) {
    if (!host_mapped(ctx, dst, size)) {
        return dv__native_fail(DV_ERROR_INVALID_ARGUMENT, 0,
                               "host copy: destination 0x%llx +%llu is not "
                               "mapped",
                               (unsigned long long)dst,
                               (unsigned long long)size);
    }
    memcpy((void *)(uintptr_t)dst, src, (size_t)size);
    return DV_OK;
}

static dv_result_t host_copy_d2h(void *ctx, void *dst, uint64_t src,
                                 uint64_t size, void *stream) {
    if (!host_mapped(ctx, src, size)) {
        return dv__native_fail(DV_ERROR_INVALID_ARGUMENT, 0,
                               "host copy: source 0x%llx +%llu is not mapped",
                               (unsigned long long)src,
                               (unsigned long long)size);
    }
    memcpy(dst, (const void *)(uintptr_t)src, (size_t)size);
    return DV_OK;
}

/* Host memory needs no page-locking for host copies, but registrations are
 * tracked as strictly as a GPU driver tracks them (host_reg.h). */
static dv_result_t host_register(void *ctx, void *ptr, uint64_t size) {
    return dv__host_reg_add(ctx, ptr, size);
}

static dv_result_t host_unregister(void *ctx, void *ptr) {
    return dv__host_reg_remove(ctx, ptr);
}

static const dv_hal_ops_t host_ops = {
    .version = DV_HAL_VERSION,
    .name = "host",
    .probe = host_probe,
    .init = host_init,
    .fini = host_fini,
    .get_caps = host_get_caps,
    .mem_info = host_mem_info,
    .reserve = host_reserve,
    .unreserve = host_unreserve,
    .create = host_create,
    .release = host_release,
    .map = host_map,
    .unmap = host_unmap,
    .fence_record = dv__host_fence_record,
    .fence_query = dv__host_fence_query,
    .fence_wait = dv__host_fence_wait,
    .fence_destroy = dv__host_fence_destroy,
    .stream_create = dv__host_stream_create,
    .stream_destroy = dv__host_stream_destroy,
    .stream_synchronize = dv__host_stream_synchronize,
    .copy_h2d = host_copy_h2d,
    .copy_d2h = host_copy_d2h,
    .host_register = host_register,
    .host_unregister = host_unregister,
    .last_native_error = dv__native_get,
    .stream_check = dv__host_stream_check,
    .stream_wait = dv__host_stream_wait,
    .stream_is_capturing = dv__host_stream_is_capturing,
};

const dv_hal_ops_t *dv_hal_host(void) { return &host_ops; }
