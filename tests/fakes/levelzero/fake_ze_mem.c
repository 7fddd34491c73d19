/*
 * fake_ze_mem.c - virtual and physical memory, and Sysman memory state, of
 * the simulated Level Zero driver. See fake_ze.h.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Reservations and mappings are kept in two lists so the simulation can be
 * stricter than a lenient driver: a map must land inside one reservation,
 * on no existing mapping; an unmap must cover whole mappings exactly; a
 * reservation cannot be freed with mappings inside; a physical allocation
 * cannot be destroyed while mapped. Each violation is an error code, never
 * a crash.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fake_ze.h"

typedef struct zsim_range {
    uintptr_t base;
    size_t size;
    ze_context_handle_t context;
    ze_physical_mem_handle_t phys; /* mappings only */
    struct zsim_range *next;
} zsim_range_t;

static zsim_range_t *zsim_reservations;
static zsim_range_t *zsim_mappings;

size_t dvsim_ze_page_size(size_t size) {
    return size < DVSIM_ZE_LARGE_PAGE ? DVSIM_ZE_SMALL_PAGE
                                      : DVSIM_ZE_LARGE_PAGE;
}

static int zsim_overlaps(uintptr_t a, size_t asz, uintptr_t b, size_t bsz) {
    return a < b + bsz && b < a + asz;
}

static zsim_range_t *zsim_reservation_of(uintptr_t p, size_t size) {
    for (zsim_range_t *r = zsim_reservations; r; r = r->next) {
        if (p >= r->base && size <= r->size && p - r->base <= r->size - size) {
            return r;
        }
    }
    return NULL;
}

int dvsim_ze_unmapped_locked(const void *ptr, size_t size) {
    uintptr_t p = (uintptr_t)ptr;
    for (zsim_range_t *r = zsim_reservations; r; r = r->next) {
        if (!zsim_overlaps(p, size, r->base, r->size)) {
            continue;
        }
        /* Walk the range; every byte must be under some mapping. */
        uintptr_t at = p;
        while (at < p + size) {
            zsim_range_t *m = zsim_mappings;
            while (m && !(at >= m->base && at < m->base + m->size)) {
                m = m->next;
            }
            if (!m) {
                return 1;
            }
            at = m->base + m->size;
        }
        return 0;
    }
    return 0;
}

static int zsim_context_ok(ze_context_handle_t c) {
    return c && c->magic == DVSIM_ZE_MAGIC_CONTEXT;
}

/* ---- virtual memory -------------------------------------------------- */

static ze_result_t ZE_APICALL zsim_reserve(ze_context_handle_t ctx,
                                           const void *start, size_t size,
                                           void **pptr) {
    if (!zsim_context_ok(ctx)) {
        return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    }
    if (!pptr) {
        return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    }
    if (size == 0 || size % DVSIM_ZE_SMALL_PAGE != 0) {
        return ZE_RESULT_ERROR_UNSUPPORTED_SIZE;
    }
    size_t align = dvsim_ze_page_size(size);
    if (size > SIZE_MAX - align) {
        return ZE_RESULT_ERROR_UNSUPPORTED_SIZE;
    }
    zsim_range_t *r = calloc(1, sizeof(*r));
    if (!r) {
        return ZE_RESULT_ERROR_OUT_OF_HOST_MEMORY;
    }
    /* Over-reserve, then trim to an aligned range. The start hint is
     * ignored, as drivers may. */
    char *raw = mmap(NULL, size + align, PROT_NONE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw == MAP_FAILED) {
        free(r);
        return ZE_RESULT_ERROR_OUT_OF_HOST_MEMORY;
    }
    uintptr_t base = ((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1);
    size_t head = base - (uintptr_t)raw;
    if (head) {
        munmap(raw, head);
    }
    if (align - head) {
        munmap((char *)base + size, align - head);
    }
    (void)start;
    r->base = base;
    r->size = size;
    r->context = ctx;
    pthread_mutex_lock(&dvsim_ze.lock);
    r->next = zsim_reservations;
    zsim_reservations = r;
    ctx->live++;
    pthread_mutex_unlock(&dvsim_ze.lock);
    *pptr = (void *)base;
    return ZE_RESULT_SUCCESS;
}

static ze_result_t ZE_APICALL zsim_free(ze_context_handle_t ctx,
                                        const void *ptr, size_t size) {
    if (!zsim_context_ok(ctx)) {
        return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    }
    if (!ptr) {
        return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    }
    ze_result_t res = ZE_RESULT_ERROR_INVALID_ARGUMENT;
    pthread_mutex_lock(&dvsim_ze.lock);
    for (zsim_range_t **pp = &zsim_reservations; *pp; pp = &(*pp)->next) {
        zsim_range_t *r = *pp;
        if (r->base != (uintptr_t)ptr || r->size != size || r->context != ctx) {
            continue;
        }
        for (zsim_range_t *m = zsim_mappings; m; m = m->next) {
            if (zsim_overlaps(m->base, m->size, r->base, r->size)) {
                res = ZE_RESULT_ERROR_HANDLE_OBJECT_IN_USE;
                goto out;
            }
        }
        *pp = r->next;
        munmap((void *)r->base, r->size);
        ctx->live--;
        free(r);
        res = ZE_RESULT_SUCCESS;
        break;
    }
out:
    pthread_mutex_unlock(&dvsim_ze.lock);
    return res;
}

static ze_result_t ZE_APICALL zsim_query_page_size(ze_context_handle_t ctx,
                                                   ze_device_handle_t dev,
                                                   size_t size,
                                                   size_t *pagesize) {
    if (!zsim_context_ok(ctx) || !dev || dev->magic != DVSIM_ZE_MAGIC_DEVICE) {
        return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    }
    if (!pagesize) {
        return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    }
    *pagesize = dvsim_ze_page_size(size);
    return ZE_RESULT_SUCCESS;
}

static int zsim_prot(ze_memory_access_attribute_t access, int *prot) {
    switch (access) {
    case ZE_MEMORY_ACCESS_ATTRIBUTE_NONE:
        *prot = PROT_NONE;
        return 0;
    case ZE_MEMORY_ACCESS_ATTRIBUTE_READWRITE:
        *prot = PROT_READ | PROT_WRITE;
        return 0;
    case ZE_MEMORY_ACCESS_ATTRIBUTE_READONLY:
        *prot = PROT_READ;
        return 0;
    default:
        return -1;
    }
}

static ze_result_t ZE_APICALL zsim_map(ze_context_handle_t ctx, const void *ptr,
                                       size_t size,
                                       ze_physical_mem_handle_t phys,
                                       size_t offset,
                                       ze_memory_access_attribute_t access) {
    int prot = 0;
    uintptr_t p = (uintptr_t)ptr;
    if (!zsim_context_ok(ctx) || !phys || phys->magic != DVSIM_ZE_MAGIC_PHYS) {
        return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    }
    if (!ptr) {
        return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    }
    if (zsim_prot(access, &prot) != 0) {
        return ZE_RESULT_ERROR_INVALID_ENUMERATION;
    }
    size_t page = dvsim_ze_page_size(size);
    if (size == 0 || size % page != 0 || offset % page != 0 ||
        offset > phys->size || size > phys->size - offset) {
        return ZE_RESULT_ERROR_UNSUPPORTED_SIZE;
    }
    if (p % page != 0) {
        return ZE_RESULT_ERROR_UNSUPPORTED_ALIGNMENT;
    }
    zsim_range_t *m = calloc(1, sizeof(*m));
    if (!m) {
        return ZE_RESULT_ERROR_OUT_OF_HOST_MEMORY;
    }
    ze_result_t res = ZE_RESULT_SUCCESS;
    pthread_mutex_lock(&dvsim_ze.lock);
    zsim_range_t *r = zsim_reservation_of(p, size);
    if (!r || r->context != ctx) {
        res = ZE_RESULT_ERROR_INVALID_ARGUMENT;
        goto out;
    }
    for (zsim_range_t *o = zsim_mappings; o; o = o->next) {
        if (zsim_overlaps(o->base, o->size, p, size)) {
            res = ZE_RESULT_ERROR_INVALID_ARGUMENT;
            goto out;
        }
    }
    /* old_size 0 on a shared mapping: map the same pages again at p,
     * replacing the PROT_NONE placeholder there. */
    void *got = mremap((char *)phys->backing + offset, 0, size,
                       MREMAP_MAYMOVE | MREMAP_FIXED, (void *)p);
    if (got == MAP_FAILED) {
        res = ZE_RESULT_ERROR_OUT_OF_HOST_MEMORY;
        goto out;
    }
    if (prot != (PROT_READ | PROT_WRITE) && mprotect(got, size, prot) != 0) {
        /* Put the placeholder back: a failed map leaves nothing mapped. */
        mmap(got, size, PROT_NONE,
             MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        res = ZE_RESULT_ERROR_UNKNOWN;
        goto out;
    }
    m->base = p;
    m->size = size;
    m->context = ctx;
    m->phys = phys;
    m->next = zsim_mappings;
    zsim_mappings = m;
    m = NULL;
    phys->maps++;
out:
    pthread_mutex_unlock(&dvsim_ze.lock);
    free(m);
    return res;
}

static ze_result_t ZE_APICALL zsim_unmap(ze_context_handle_t ctx,
                                         const void *ptr, size_t size) {
    uintptr_t p = (uintptr_t)ptr;
    if (!zsim_context_ok(ctx)) {
        return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    }
    if (!ptr) {
        return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    }
    ze_result_t res = ZE_RESULT_SUCCESS;
    size_t covered = 0;
    pthread_mutex_lock(&dvsim_ze.lock);
    /* First check: whole mappings only, and they must tile the range. */
    for (zsim_range_t *m = zsim_mappings; m; m = m->next) {
        if (!zsim_overlaps(m->base, m->size, p, size)) {
            continue;
        }
        if (m->base < p || m->base + m->size > p + size || m->context != ctx) {
            res = ZE_RESULT_ERROR_INVALID_ARGUMENT;
            goto out;
        }
        covered += m->size;
    }
    if (size == 0 || covered != size) {
        res = ZE_RESULT_ERROR_INVALID_ARGUMENT;
        goto out;
    }
    if (mmap((void *)p, size, PROT_NONE,
             MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1,
             0) == MAP_FAILED) {
        res = ZE_RESULT_ERROR_OUT_OF_HOST_MEMORY;
        goto out;
    }
    for (zsim_range_t **pp = &zsim_mappings; *pp;) {
        zsim_range_t *m = *pp;
        if (zsim_overlaps(m->base, m->size, p, size)) {
            *pp = m->next;
            m->phys->maps--;
            free(m);
        } else {
            pp = &m->next;
        }
    }
out:
    pthread_mutex_unlock(&dvsim_ze.lock);
    return res;
}

static ze_result_t ZE_APICALL
zsim_set_access(ze_context_handle_t ctx, const void *ptr, size_t size,
                ze_memory_access_attribute_t access) {
    int prot = 0;
    if (!zsim_context_ok(ctx)) {
        return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    }
    if (zsim_prot(access, &prot) != 0) {
        return ZE_RESULT_ERROR_INVALID_ENUMERATION;
    }
    pthread_mutex_lock(&dvsim_ze.lock);
    int bad = dvsim_ze_unmapped_locked(ptr, size) ||
              !zsim_reservation_of((uintptr_t)ptr, size);
    pthread_mutex_unlock(&dvsim_ze.lock);
    if (bad) {
        return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    }
    return mprotect((void *)ptr, size, prot) == 0 ? ZE_RESULT_SUCCESS
                                                  : ZE_RESULT_ERROR_UNKNOWN;
}

void dvsim_ze_fill_virtual_mem(ze_virtual_mem_dditable_t *t) {
    t->pfnReserve = zsim_reserve;
    t->pfnFree = zsim_free;
    t->pfnQueryPageSize = zsim_query_page_size;
    t->pfnMap = zsim_map;
    t->pfnUnmap = zsim_unmap;
    t->pfnSetAccessAttribute = zsim_set_access;
}

/* ---- physical memory ------------------------------------------------- */

static ze_result_t ZE_APICALL zsim_phys_create(ze_context_handle_t ctx,
                                               ze_device_handle_t dev,
                                               ze_physical_mem_desc_t *desc,
                                               ze_physical_mem_handle_t *out) {
    if (!zsim_context_ok(ctx) || !dev || dev->magic != DVSIM_ZE_MAGIC_DEVICE) {
        return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    }
    if (!desc || !out) {
        return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    }
    if (desc->stype != ZE_STRUCTURE_TYPE_PHYSICAL_MEM_DESC) {
        return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    }
    size_t size = desc->size;
    if (size == 0 || size % dvsim_ze_page_size(size) != 0) {
        return ZE_RESULT_ERROR_UNSUPPORTED_SIZE;
    }
    ze_physical_mem_handle_t h = calloc(1, sizeof(*h));
    if (!h) {
        return ZE_RESULT_ERROR_OUT_OF_HOST_MEMORY;
    }
    pthread_mutex_lock(&dvsim_ze.lock);
    int fits = size <= dev->capacity - dev->used;
    if (fits) {
        dev->used += size;
    }
    pthread_mutex_unlock(&dvsim_ze.lock);
    if (!fits) {
        free(h);
        return ZE_RESULT_ERROR_OUT_OF_DEVICE_MEMORY;
    }
    int fd = memfd_create("dvsim_ze", MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, (off_t)size) != 0) {
        goto host_oom;
    }
    h->backing = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (h->backing == MAP_FAILED) {
        goto host_oom;
    }
    close(fd); /* the shared view keeps the pages */
    h->magic = DVSIM_ZE_MAGIC_PHYS;
    h->context = ctx;
    h->device = dev;
    h->size = size;
    pthread_mutex_lock(&dvsim_ze.lock);
    ctx->live++;
    pthread_mutex_unlock(&dvsim_ze.lock);
    *out = h;
    return ZE_RESULT_SUCCESS;

host_oom:
    if (fd >= 0) {
        close(fd);
    }
    free(h);
    pthread_mutex_lock(&dvsim_ze.lock);
    dev->used -= size;
    pthread_mutex_unlock(&dvsim_ze.lock);
    return ZE_RESULT_ERROR_OUT_OF_HOST_MEMORY;
}

static ze_result_t ZE_APICALL zsim_phys_destroy(ze_context_handle_t ctx,
                                                ze_physical_mem_handle_t h) {
    if (!zsim_context_ok(ctx) || !h || h->magic != DVSIM_ZE_MAGIC_PHYS ||
        h->context != ctx) {
        return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    }
    pthread_mutex_lock(&dvsim_ze.lock);
    if (h->maps > 0) {
        pthread_mutex_unlock(&dvsim_ze.lock);
        return ZE_RESULT_ERROR_HANDLE_OBJECT_IN_USE;
    }
    h->device->used -= h->size;
    ctx->live--;
    h->magic = DVSIM_ZE_MAGIC_DEAD;
    pthread_mutex_unlock(&dvsim_ze.lock);
    munmap(h->backing, h->size);
    free(h);
    return ZE_RESULT_SUCCESS;
}

void dvsim_ze_fill_physical_mem(ze_physical_mem_dditable_t *t) {
    t->pfnCreate = zsim_phys_create;
    t->pfnDestroy = zsim_phys_destroy;
}

/* ---- Sysman memory state --------------------------------------------- */

static ze_result_t ZE_APICALL zsim_enum_memory(zes_device_handle_t dev,
                                               uint32_t *count,
                                               zes_mem_handle_t *mems) {
    if (!dvsim_ze.sysman) {
        return ZE_RESULT_ERROR_UNINITIALIZED;
    }
    if (!dev || dev->magic != DVSIM_ZE_MAGIC_DEVICE) {
        return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    }
    if (!count) {
        return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    }
    if (*count > 0 && mems) {
        mems[0] = &dev->memmod;
    }
    *count = 1;
    return ZE_RESULT_SUCCESS;
}

static ze_result_t ZE_APICALL zsim_memory_properties(zes_mem_handle_t m,
                                                     zes_mem_properties_t *p) {
    if (!m || m->magic != DVSIM_ZE_MAGIC_MEMMOD) {
        return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    }
    if (!p) {
        return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    }
    p->type = ZES_MEM_TYPE_HBM;
    p->onSubdevice = 0;
    p->subdeviceId = 0;
    p->location = ZES_MEM_LOC_DEVICE;
    p->physicalSize = m->device->capacity;
    p->busWidth = -1;
    p->numChannels = -1;
    return ZE_RESULT_SUCCESS;
}

static ze_result_t ZE_APICALL zsim_memory_state(zes_mem_handle_t m,
                                                zes_mem_state_t *s) {
    if (!m || m->magic != DVSIM_ZE_MAGIC_MEMMOD) {
        return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    }
    if (!s) {
        return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    }
    pthread_mutex_lock(&dvsim_ze.lock);
    s->health = ZES_MEM_HEALTH_OK;
    s->size = m->device->capacity;
    s->free = m->device->capacity - m->device->used;
    pthread_mutex_unlock(&dvsim_ze.lock);
    return ZE_RESULT_SUCCESS;
}

void dvsim_ze_fill_sysman_device(zes_device_dditable_t *t) {
    t->pfnEnumMemoryModules = zsim_enum_memory;
}

void dvsim_ze_fill_sysman_memory(zes_memory_dditable_t *t) {
    t->pfnGetProperties = zsim_memory_properties;
    t->pfnGetState = zsim_memory_state;
}
