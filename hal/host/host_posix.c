/*
 * host_posix.c - the host backend on POSIX virtual memory.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * A real backend, not a mock: memory written through a mapping is really
 * there, and touching an unmapped page really faults (SIGSEGV).
 *   reserve   mmap(PROT_NONE, MAP_NORESERVE) of the range
 *   create    a memfd of the page's size (counted against the capacity)
 *   map       mmap(MAP_FIXED | MAP_SHARED, PROT_READ | PROT_WRITE) of the memfd
 *   unmap     mmap(MAP_FIXED, PROT_NONE) over the range: back to reserved
 *   release   close the memfd
 * The capacity is simulated (option host_capacity, else DYNVRAM_HOST_CAPACITY,
 * else 4 GiB), so out-of-memory and eviction happen on any machine.
 *
 * Streams and fences are simulated for tests (host_stream.h): work
 * "submitted" to a host stream stays pending until the test completes it or
 * a fence wait forces it. The NULL stream is always complete.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/native.h"
#include "core/os.h"
#include "hal/host/host_env.h"
#include "hal/host/host_stream.h"

#define HOST_DEFAULT_CAPACITY (4ull << 30)

typedef struct host_mem {
    int fd;
    uint64_t size;
} host_mem_t;

typedef struct host_map {
    uint64_t va, size;
} host_map_t;

typedef struct host_ctx {
    int ordinal;
    uint64_t capacity;
    uint64_t allocated;
    uint64_t granularity;
    host_map_t *maps; /* live mappings, for copy validation */
    size_t map_count, map_cap;
} host_ctx_t;

/* A failed system call: errno is the native code. */
static dv_result_t host_os_fail(const char *op, dv_result_t r) {
    int e = errno;
    return dv__native_fail(r, e, "%s: %s", op, strerror(e));
}

static dv_result_t host_probe(int *count, char *reason, size_t len) {
    return dv__host_env_probe(count, reason, len);
}

static uint64_t host_env_capacity(void) {
    const char *s = dv__getenv("DYNVRAM_HOST_CAPACITY");
    if (!s || !*s) {
        return 0;
    }
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 0);
    uint64_t mult = 1;
    if (end && (*end == 'k' || *end == 'K')) {
        mult = 1ull << 10;
    } else if (end && (*end == 'm' || *end == 'M')) {
        mult = 1ull << 20;
    } else if (end && (*end == 'g' || *end == 'G')) {
        mult = 1ull << 30;
    }
    return (uint64_t)v * mult;
}

static dv_result_t host_init(const dv_hal_init_args_t *args, void **ctx) {
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
    c->capacity = args->host_capacity;
    if (!c->capacity) {
        c->capacity = host_env_capacity();
    }
    if (!c->capacity) {
        c->capacity = HOST_DEFAULT_CAPACITY;
    }
    long pg = sysconf(_SC_PAGESIZE);
    c->granularity = pg > 0 ? (uint64_t)pg : 4096;
    *ctx = c;
    return DV_OK;
}

static void host_fini(void *ctx) {
    host_ctx_t *c = ctx;
    free(c->maps);
    free(c);
}

static dv_result_t host_get_caps(void *ctx, dv_hal_caps_t *caps) {
    host_ctx_t *c = ctx;
    memset(caps, 0, sizeof(*caps));
    snprintf(caps->name, sizeof(caps->name), "host memory %d (%llu MiB simulated)",
             c->ordinal, (unsigned long long)(c->capacity >> 20));
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

static dv_result_t host_reserve(void *ctx, uint64_t size, uint64_t *va) {
    void *p = mmap(NULL, (size_t)size, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        return host_os_fail("mmap(PROT_NONE)", DV_ERROR_ADDRESS_SPACE);
    }
    *va = (uint64_t)(uintptr_t)p;
    return DV_OK;
}

static dv_result_t host_unreserve(void *ctx, uint64_t va, uint64_t size) {
    if (munmap((void *)(uintptr_t)va, (size_t)size) != 0) {
        return host_os_fail("munmap", DV_ERROR_BACKEND);
    }
    return DV_OK;
}

static dv_result_t host_create(void *ctx, uint64_t size, dv_hal_mem_t *mem) {
    host_ctx_t *c = ctx;
    if (c->allocated > c->capacity || size > c->capacity - c->allocated) {
        errno = ENOMEM;
        return host_os_fail("create (simulated capacity)",
                            DV_ERROR_OUT_OF_DEVICE_MEMORY);
    }
    host_mem_t *m = malloc(sizeof(*m));
    if (!m) {
        return dv__native_fail(DV_ERROR_OUT_OF_HOST_MEMORY, 0,
                               "host create: malloc");
    }
    m->fd = memfd_create("dynvram-page", MFD_CLOEXEC);
    if (m->fd < 0) {
        free(m);
        return host_os_fail("memfd_create", DV_ERROR_BACKEND);
    }
    if (ftruncate(m->fd, (off_t)size) != 0) {
        dv_result_t r = host_os_fail("ftruncate", errno == ENOMEM
                                                      ? DV_ERROR_OUT_OF_HOST_MEMORY
                                                      : DV_ERROR_BACKEND);
        close(m->fd);
        free(m);
        return r;
    }
    m->size = size;
    c->allocated += size;
    *mem = (dv_hal_mem_t)(uintptr_t)m;
    return DV_OK;
}

static dv_result_t host_release(void *ctx, dv_hal_mem_t mem) {
    host_ctx_t *c = ctx;
    host_mem_t *m = (host_mem_t *)(uintptr_t)mem;
    c->allocated -= m->size;
    close(m->fd);
    free(m);
    return DV_OK;
}

static dv_result_t host_map(void *ctx, uint64_t va, uint64_t size,
                            dv_hal_mem_t mem) {
    host_ctx_t *c = ctx;
    host_mem_t *m = (host_mem_t *)(uintptr_t)mem;
    if (size > m->size) {
        return dv__native_fail(DV_ERROR_INVALID_ARGUMENT, 0,
                               "host map: %llu bytes of a %llu-byte handle",
                               (unsigned long long)size,
                               (unsigned long long)m->size);
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
    void *p = mmap((void *)(uintptr_t)va, (size_t)size, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_FIXED, m->fd, 0);
    if (p == MAP_FAILED) {
        return host_os_fail("mmap(MAP_FIXED)", errno == ENOMEM
                                                   ? DV_ERROR_OUT_OF_HOST_MEMORY
                                                   : DV_ERROR_BACKEND);
    }
    c->maps[c->map_count++] = (host_map_t){va, size};
    return DV_OK;
}

static dv_result_t host_unmap(void *ctx, uint64_t va, uint64_t size) {
    host_ctx_t *c = ctx;
    void *p = mmap((void *)(uintptr_t)va, (size_t)size, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        return host_os_fail("mmap(PROT_NONE)", DV_ERROR_BACKEND);
    }
    for (size_t k = 0; k < c->map_count; k++) {
        if (c->maps[k].va == va) {
            c->maps[k] = c->maps[--c->map_count];
            break;
        }
    }
    return DV_OK;
}

/* Is [va, va + size) covered by live mappings? Mappings are page-sized and
 * unordered; walk the range one mapping at a time. */
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

static dv_result_t host_register(void *ctx, void *ptr, uint64_t size) {
    return DV_OK; /* host memory needs no page-locking for host copies */
}

static dv_result_t host_unregister(void *ctx, void *ptr) { return DV_OK; }

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
