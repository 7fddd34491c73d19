/*
 * example_mem.c - the template backend's address space, physical memory,
 * mappings and copies (example_backend.h).
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * What dynvram needs from these ops (docs/porting.md says it op by op):
 *  - reserve costs no memory; create is the only op that spends capacity,
 *    and running out is DV_ERROR_OUT_OF_DEVICE_MEMORY and nothing else;
 *  - a failed op changes nothing;
 *  - handles and ranges are checked against this device's own records, so
 *    a bad argument is refused, never followed into memory;
 *  - every failure says why (exb_fail).
 */
#define _GNU_SOURCE /* memfd_create, MAP_NORESERVE */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "example_backend.h"

static int aligned(uint64_t v) { return v % EXB_GRANULARITY == 0; }

static void *ptr_of(uint64_t va) { return (void *)(uintptr_t)va; }

/* The reservation holding all of [va, va + size), or NULL. */
static exb_res_t *res_holding(exb_dev_t *d, uint64_t va, uint64_t size) {
    for (exb_res_t *r = d->res; r; r = r->next) {
        if (va >= r->va && size <= r->size && va - r->va <= r->size - size) {
            return r;
        }
    }
    return NULL;
}

/* The allocation behind a handle of this device, or NULL. The handle is
 * compared, never followed: junk is refused without reading it. */
static exb_mem_t *mem_of(exb_dev_t *d, dv_hal_mem_t h) {
    for (exb_mem_t *m = d->mems; m; m = m->next) {
        if ((dv_hal_mem_t)(uintptr_t)m == h) {
            return m;
        }
    }
    return NULL;
}

/* Index of the first mapping whose end lies above va (binary search). */
static size_t map_lower(const exb_dev_t *d, uint64_t va) {
    size_t lo = 0, hi = d->map_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const exb_map_t *m = &d->maps[mid];
        if (m->va + m->size <= va) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* ---- address space --------------------------------------------------------
 */

dv_result_t exb_reserve(void *ctx, uint64_t size, uint64_t *va) {
    exb_dev_t *d = ctx;
    if (size == 0 || !aligned(size) || size > UINT64_MAX / 2) {
        return exb_fail(DV_ERROR_INVALID_ARGUMENT, 0,
                        "example reserve: size %llu is not a positive "
                        "multiple of the granularity",
                        (unsigned long long)size);
    }
    exb_res_t *r = malloc(sizeof(*r));
    if (!r) {
        return exb_fail(DV_ERROR_OUT_OF_HOST_MEMORY, 0, "example reserve");
    }
    /* Over-reserve by one granule, then trim both ends to the alignment. */
    size_t span = (size_t)(size + EXB_GRANULARITY);
    void *p = mmap(NULL, span, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        free(r);
        return exb_fail_errno(DV_ERROR_ADDRESS_SPACE, "reserve: mmap");
    }
    uintptr_t base = (uintptr_t)p;
    uintptr_t start =
        (base + EXB_GRANULARITY - 1) & ~(uintptr_t)(EXB_GRANULARITY - 1);
    if (start > base) {
        munmap(p, start - base);
    }
    if (base + span > start + size) {
        munmap((void *)(start + (uintptr_t)size),
               base + span - start - (uintptr_t)size);
    }
    r->va = start;
    r->size = size;
    r->next = d->res;
    d->res = r;
    *va = start;
    return DV_OK;
}

dv_result_t exb_unreserve(void *ctx, uint64_t va, uint64_t size) {
    exb_dev_t *d = ctx;
    exb_res_t **link = &d->res;
    while (*link && ((*link)->va != va || (*link)->size != size)) {
        link = &(*link)->next;
    }
    if (!*link) {
        return exb_fail(DV_ERROR_INVALID_ARGUMENT, 0,
                        "example unreserve: 0x%llx +%llu is not a "
                        "reservation of device %d",
                        (unsigned long long)va, (unsigned long long)size,
                        d->ordinal);
    }
    size_t k = map_lower(d, va);
    if (k < d->map_count && d->maps[k].va < va + size) {
        return exb_fail(DV_ERROR_BUSY, 0,
                        "example unreserve: 0x%llx is still mapped (unmap "
                        "first)",
                        (unsigned long long)d->maps[k].va);
    }
    if (munmap(ptr_of(va), (size_t)size) != 0) {
        return exb_fail_errno(DV_ERROR_BACKEND, "unreserve: munmap");
    }
    exb_res_t *r = *link;
    *link = r->next;
    free(r);
    return DV_OK;
}

/* ---- physical memory ------------------------------------------------------
 */

dv_result_t exb_create(void *ctx, uint64_t size, dv_hal_mem_t *mem) {
    exb_dev_t *d = ctx;
    if (size == 0 || !aligned(size)) {
        return exb_fail(DV_ERROR_INVALID_ARGUMENT, 0,
                        "example create: size %llu is not a positive "
                        "multiple of the granularity",
                        (unsigned long long)size);
    }
    if (size > d->capacity - d->allocated) {
        /* The one result eviction listens for. */
        dv_result_t r = d->broken & EXB_BREAK_OOM
                            ? DV_ERROR_BACKEND
                            : DV_ERROR_OUT_OF_DEVICE_MEMORY;
        return exb_fail(r, 0,
                        "example create: %llu bytes do not fit (%llu of %llu "
                        "in use)",
                        (unsigned long long)size,
                        (unsigned long long)d->allocated,
                        (unsigned long long)d->capacity);
    }
    exb_mem_t *m = calloc(1, sizeof(*m));
    if (!m) {
        return exb_fail(DV_ERROR_OUT_OF_HOST_MEMORY, 0, "example create");
    }
    m->fd = memfd_create("dv-example-mem", MFD_CLOEXEC);
    if (m->fd < 0) {
        free(m);
        return exb_fail_errno(DV_ERROR_BACKEND, "create: memfd_create");
    }
    if (ftruncate(m->fd, (off_t)size) != 0) {
        dv_result_t r =
            exb_fail_errno(DV_ERROR_OUT_OF_HOST_MEMORY, "create: ftruncate");
        close(m->fd);
        free(m);
        return r;
    }
    m->size = size;
    m->next = d->mems;
    d->mems = m;
    d->allocated += size;
    *mem = (dv_hal_mem_t)(uintptr_t)m;
    return DV_OK;
}

dv_result_t exb_release(void *ctx, dv_hal_mem_t mem) {
    exb_dev_t *d = ctx;
    exb_mem_t *m = mem_of(d, mem);
    if (!m) {
        return exb_fail(DV_ERROR_INVALID_ARGUMENT, 0,
                        "example release: 0x%llx is not an allocation of "
                        "device %d",
                        (unsigned long long)mem, d->ordinal);
    }
    if (m->maps) {
        return exb_fail(DV_ERROR_BUSY, 0,
                        "example release: still mapped %u time(s)", m->maps);
    }
    exb_mem_t **link = &d->mems;
    while (*link != m) {
        link = &(*link)->next;
    }
    *link = m->next;
    close(m->fd);
    d->allocated -= m->size;
    free(m);
    return DV_OK;
}

/* ---- mappings
 * ---------------------------------------------------------------- */

dv_result_t exb_map(void *ctx, uint64_t va, uint64_t size, dv_hal_mem_t mem) {
    exb_dev_t *d = ctx;
    exb_mem_t *m = mem_of(d, mem);
    if (!m || size != m->size || !aligned(va) || !res_holding(d, va, size)) {
        return exb_fail(DV_ERROR_INVALID_ARGUMENT, 0,
                        "example map: 0x%llx +%llu: not an allocation of "
                        "this device, not its size, or not inside a "
                        "reservation",
                        (unsigned long long)va, (unsigned long long)size);
    }
    size_t k = map_lower(d, va);
    if (k < d->map_count && d->maps[k].va < va + size) {
        return exb_fail(DV_ERROR_INVALID_ARGUMENT, 0,
                        "example map: 0x%llx +%llu overlaps a mapping",
                        (unsigned long long)va, (unsigned long long)size);
    }
    if (d->broken & EXB_BREAK_MAP) {
        return DV_OK; /* the deliberate lie: nothing is mapped */
    }
    if (d->map_count == d->map_cap) {
        size_t cap = d->map_cap ? 2 * d->map_cap : 64;
        exb_map_t *t = realloc(d->maps, cap * sizeof(*t));
        if (!t) {
            return exb_fail(DV_ERROR_OUT_OF_HOST_MEMORY, 0,
                            "example map: mapping table");
        }
        d->maps = t;
        d->map_cap = cap;
    }
    void *p = mmap(ptr_of(va), (size_t)size, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_FIXED, m->fd, 0);
    if (p == MAP_FAILED) {
        /* MAP_FIXED failed: the kernel left the reservation as it was. */
        return exb_fail_errno(errno == ENOMEM ? DV_ERROR_OUT_OF_HOST_MEMORY
                                              : DV_ERROR_BACKEND,
                              "map: mmap");
    }
    memmove(&d->maps[k + 1], &d->maps[k],
            (d->map_count - k) * sizeof(*d->maps));
    d->maps[k] = (exb_map_t){va, size, m};
    d->map_count++;
    m->maps++;
    return DV_OK;
}

dv_result_t exb_unmap(void *ctx, uint64_t va, uint64_t size) {
    exb_dev_t *d = ctx;
    if (size == 0 || !aligned(va) || !aligned(size) ||
        !res_holding(d, va, size)) {
        return exb_fail(DV_ERROR_INVALID_ARGUMENT, 0,
                        "example unmap: 0x%llx +%llu is not a granular "
                        "range of a reservation",
                        (unsigned long long)va, (unsigned long long)size);
    }
    /* Whole mappings only: the first and last ones touched must lie inside
     * the range. */
    size_t first = map_lower(d, va), last = first;
    while (last < d->map_count && d->maps[last].va < va + size) {
        const exb_map_t *e = &d->maps[last];
        if (e->va < va || e->va + e->size > va + size) {
            return exb_fail(DV_ERROR_INVALID_ARGUMENT, 0,
                            "example unmap: 0x%llx +%llu cuts the mapping "
                            "at 0x%llx",
                            (unsigned long long)va, (unsigned long long)size,
                            (unsigned long long)e->va);
        }
        last++;
    }
    /* Put the reservation back (inaccessible, costing nothing). */
    void *p =
        mmap(ptr_of(va), (size_t)size, PROT_NONE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
    if (p == MAP_FAILED) {
        return exb_fail_errno(DV_ERROR_BACKEND, "unmap: mmap");
    }
    for (size_t k = first; k < last; k++) {
        d->maps[k].mem->maps--;
    }
    memmove(&d->maps[first], &d->maps[last],
            (d->map_count - last) * sizeof(*d->maps));
    d->map_count -= last - first;
    return DV_OK;
}

/* ---- copies ----------------------------------------------------------------
 */

/* Is all of [va, va + size) mapped on this device? The core does not know
 * which device addresses are backed, so a copy is checked here rather
 * than left to fault. */
static int mapped(const exb_dev_t *d, uint64_t va, uint64_t size) {
    if (size == 0 || va + size < va) {
        return size == 0;
    }
    size_t k = map_lower(d, va);
    uint64_t at = va;
    while (at < va + size) {
        if (k == d->map_count || d->maps[k].va > at) {
            return 0;
        }
        at = d->maps[k].va + d->maps[k].size;
        k++;
    }
    return 1;
}

/* Streams run synchronously, so a copy is complete when it returns. */
dv_result_t exb_copy_h2d(void *ctx, uint64_t dst, const void *src,
                         uint64_t size, void *stream) {
    exb_dev_t *d = ctx;
    (void)stream;
    if (!mapped(d, dst, size)) {
        return exb_fail(DV_ERROR_INVALID_ARGUMENT, 0,
                        "example copy: destination 0x%llx +%llu is not "
                        "mapped",
                        (unsigned long long)dst, (unsigned long long)size);
    }
    memcpy(ptr_of(dst), src, (size_t)size);
    return DV_OK;
}

dv_result_t exb_copy_d2h(void *ctx, void *dst, uint64_t src, uint64_t size,
                         void *stream) {
    exb_dev_t *d = ctx;
    (void)stream;
    if (!mapped(d, src, size)) {
        return exb_fail(DV_ERROR_INVALID_ARGUMENT, 0,
                        "example copy: source 0x%llx +%llu is not mapped",
                        (unsigned long long)src, (unsigned long long)size);
    }
    memcpy(dst, ptr_of(src), (size_t)size);
    return DV_OK;
}

void exb_mem_fini(exb_dev_t *d) {
    while (d->res) {
        exb_res_t *r = d->res;
        d->res = r->next;
        munmap(ptr_of(r->va), (size_t)r->size); /* its mappings go too */
        free(r);
    }
    while (d->mems) {
        exb_mem_t *m = d->mems;
        d->mems = m->next;
        close(m->fd);
        free(m);
    }
    free(d->maps);
    d->maps = NULL;
    d->map_count = d->map_cap = 0;
    d->allocated = 0;
}
