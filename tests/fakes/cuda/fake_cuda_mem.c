/*
 * fake_cuda_mem.c - the simulated CUDA driver's address space, physical
 * memory, copies and host registration (see fake_cuda.c for the contract).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fake_cuda.h"

/* ---- memory ---- */

dv_cu_result fk_mem_get_info(size_t *free_b, size_t *total_b) {
    NEED_CTX();
    int d = fk_current()->dev;
    pthread_mutex_lock(&fk_lock);
    *free_b = fk_capacity - fk_used[d];
    *total_b = fk_capacity;
    pthread_mutex_unlock(&fk_lock);
    return DV_CU_SUCCESS;
}

dv_cu_result fk_granularity(size_t *g, const dv_cu_mem_allocation_prop *prop,
                            dv_cu_granularity_flags option) {
    NEED_INIT();
    if (!g || !prop || prop->type != DV_CU_MEM_ALLOCATION_TYPE_PINNED ||
        prop->location.type != DV_CU_MEM_LOCATION_TYPE_DEVICE ||
        prop->location.id < 0 || prop->location.id >= fk_devices ||
        (option != DV_CU_MEM_ALLOC_GRANULARITY_MINIMUM &&
         option != DV_CU_MEM_ALLOC_GRANULARITY_RECOMMENDED)) {
        return DV_CU_ERROR_INVALID_VALUE;
    }
    *g = FK_GRAN;
    return DV_CU_SUCCESS;
}

dv_cu_result fk_address_reserve(dv_cu_deviceptr *ptr, size_t size, size_t align,
                                dv_cu_deviceptr addr,
                                unsigned long long flags) {
    NEED_CTX();
    if (!ptr || size == 0 || size % FK_GRAN || addr || flags ||
        (align && (align & (align - 1)))) {
        return DV_CU_ERROR_INVALID_VALUE;
    }
    size_t a = align > FK_GRAN ? align : FK_GRAN;
    uint8_t *p = mmap(NULL, size + a, PROT_NONE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        return DV_CU_ERROR_OUT_OF_MEMORY;
    }
    uintptr_t base = ((uintptr_t)p + a - 1) & ~(uintptr_t)(a - 1);
    if (base > (uintptr_t)p) {
        munmap(p, base - (uintptr_t)p);
    }
    uintptr_t end = (uintptr_t)p + size + a;
    if (end > base + size) {
        munmap((void *)(base + size), end - (base + size));
    }
    pthread_mutex_lock(&fk_lock);
    int ok = fk_push_range(&fk_reserved, base, size, NULL);
    pthread_mutex_unlock(&fk_lock);
    if (!ok) {
        munmap((void *)base, size);
        return DV_CU_ERROR_OUT_OF_MEMORY;
    }
    *ptr = base;
    return DV_CU_SUCCESS;
}

dv_cu_result fk_address_free(dv_cu_deviceptr ptr, size_t size) {
    dv_cu_result rc = DV_CU_SUCCESS;
    NEED_CTX();
    pthread_mutex_lock(&fk_lock);
    fk_range_t *r = fk_find(fk_reserved, ptr, size);
    if (!r || r->va != ptr || r->size != size) {
        rc = DV_CU_ERROR_INVALID_VALUE;
    } else if (fk_overlap(fk_mapped, ptr, size)) {
        rc = DV_CU_ERROR_INVALID_VALUE; /* still mapped */
    } else {
        munmap((void *)(uintptr_t)ptr, size);
        fk_unlink(&fk_reserved, r);
    }
    pthread_mutex_unlock(&fk_lock);
    return rc;
}

dv_cu_result fk_mem_create(dv_cu_mem_handle *h, size_t size,
                           const dv_cu_mem_allocation_prop *prop,
                           unsigned long long flags) {
    NEED_CTX();
    if (!h || !prop || size == 0 || size % FK_GRAN || flags ||
        prop->type != DV_CU_MEM_ALLOCATION_TYPE_PINNED ||
        prop->location.type != DV_CU_MEM_LOCATION_TYPE_DEVICE ||
        prop->location.id < 0 || prop->location.id >= fk_devices) {
        return DV_CU_ERROR_INVALID_VALUE;
    }
    if (fk_inject("cuMemCreate")) {
        return DV_CU_ERROR_OUT_OF_MEMORY;
    }
    int d = prop->location.id;
    pthread_mutex_lock(&fk_lock);
    if (fk_used[d] + size > fk_capacity) {
        pthread_mutex_unlock(&fk_lock);
        return DV_CU_ERROR_OUT_OF_MEMORY;
    }
    fk_used[d] += size;
    pthread_mutex_unlock(&fk_lock);
    fk_mem_t *m = calloc(1, sizeof(*m));
    int fd = memfd_create("dv_fake_cuda", MFD_CLOEXEC);
    if (!m || fd < 0 || ftruncate(fd, (off_t)size) != 0) {
        if (fd >= 0) {
            close(fd);
        }
        free(m);
        pthread_mutex_lock(&fk_lock);
        fk_used[d] -= size;
        pthread_mutex_unlock(&fk_lock);
        return DV_CU_ERROR_OUT_OF_MEMORY;
    }
    m->magic = FK_MEM_MAGIC;
    m->fd = fd;
    m->dev = d;
    m->size = size;
    pthread_mutex_lock(&fk_lock);
    m->next = fk_mems;
    fk_mems = m;
    pthread_mutex_unlock(&fk_lock);
    *h = (dv_cu_mem_handle)(uintptr_t)m;
    return DV_CU_SUCCESS;
}

/* Called with fk_lock held: free a released handle once nothing maps it. */
static void fk_mem_maybe_free(fk_mem_t *m) {
    if (m->released && m->maps == 0) {
        fk_used[m->dev] -= m->size;
        close(m->fd);
        m->magic = 0;
        for (fk_mem_t **p = &fk_mems; *p; p = &(*p)->next) {
            if (*p == m) {
                *p = m->next;
                break;
            }
        }
        free(m);
    }
}

dv_cu_result fk_mem_release(dv_cu_mem_handle h) {
    fk_mem_t *m = (fk_mem_t *)(uintptr_t)h;
    NEED_CTX();
    if (!m || m->magic != FK_MEM_MAGIC || m->released) {
        return DV_CU_ERROR_INVALID_VALUE;
    }
    pthread_mutex_lock(&fk_lock);
    m->released = 1;
    fk_mem_maybe_free(m); /* like CUDA: freed when the last mapping goes */
    pthread_mutex_unlock(&fk_lock);
    return DV_CU_SUCCESS;
}

dv_cu_result fk_mem_map(dv_cu_deviceptr va, size_t size, size_t offset,
                        dv_cu_mem_handle h, unsigned long long flags) {
    fk_mem_t *m = (fk_mem_t *)(uintptr_t)h;
    dv_cu_result rc = DV_CU_SUCCESS;
    NEED_CTX();
    if (!m || m->magic != FK_MEM_MAGIC || m->released || offset || flags ||
        size != m->size || va % FK_GRAN) {
        return DV_CU_ERROR_INVALID_VALUE;
    }
    if (fk_inject("cuMemMap")) {
        return DV_CU_ERROR_OUT_OF_MEMORY;
    }
    pthread_mutex_lock(&fk_lock);
    if (!fk_find(fk_reserved, va, size) || fk_overlap(fk_mapped, va, size)) {
        rc = DV_CU_ERROR_INVALID_VALUE;
    } else if (mmap((void *)(uintptr_t)va, size, PROT_NONE,
                    MAP_SHARED | MAP_FIXED, m->fd, 0) == MAP_FAILED) {
        rc = DV_CU_ERROR_OUT_OF_MEMORY;
    } else if (!fk_push_range(&fk_mapped, va, size, m)) {
        rc = DV_CU_ERROR_OUT_OF_MEMORY;
    } else {
        m->maps++;
    }
    pthread_mutex_unlock(&fk_lock);
    return rc;
}

dv_cu_result fk_mem_set_access(dv_cu_deviceptr va, size_t size,
                               const dv_cu_mem_access_desc *desc,
                               size_t count) {
    dv_cu_result rc = DV_CU_SUCCESS;
    NEED_CTX();
    if (!desc || count != 1 ||
        desc->location.type != DV_CU_MEM_LOCATION_TYPE_DEVICE ||
        desc->location.id < 0 || desc->location.id >= fk_devices ||
        desc->flags != DV_CU_MEM_ACCESS_FLAGS_PROT_READWRITE) {
        return DV_CU_ERROR_INVALID_VALUE;
    }
    if (fk_inject("cuMemSetAccess")) {
        return FK_ERROR_UNKNOWN;
    }
    pthread_mutex_lock(&fk_lock);
    fk_range_t *r = fk_find(fk_mapped, va, size);
    if (!r || r->va != va || r->size != size) {
        rc = DV_CU_ERROR_INVALID_VALUE;
    } else if (mprotect((void *)(uintptr_t)va, size, PROT_READ | PROT_WRITE) !=
               0) {
        rc = FK_ERROR_UNKNOWN;
    } else {
        r->access = 1;
        r->access_dev = desc->location.id;
    }
    pthread_mutex_unlock(&fk_lock);
    return rc;
}

dv_cu_result fk_mem_unmap(dv_cu_deviceptr va, size_t size) {
    dv_cu_result rc = DV_CU_SUCCESS;
    NEED_CTX();
    if (fk_inject("cuMemUnmap")) {
        return FK_ERROR_UNKNOWN;
    }
    pthread_mutex_lock(&fk_lock);
    fk_range_t *r = fk_find(fk_mapped, va, size);
    if (!r || r->va != va || r->size != size) {
        rc = DV_CU_ERROR_INVALID_VALUE;
    } else if (mmap((void *)(uintptr_t)va, size, PROT_NONE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1,
                    0) == MAP_FAILED) {
        rc = FK_ERROR_UNKNOWN;
    } else {
        fk_mem_t *m = r->mem;
        fk_unlink(&fk_mapped, r);
        m->maps--;
        fk_mem_maybe_free(m);
    }
    pthread_mutex_unlock(&fk_lock);
    return rc;
}

dv_cu_result fk_mem_alloc(dv_cu_deviceptr *p, size_t size) {
    NEED_CTX();
    if (!p || size == 0) {
        return DV_CU_ERROR_INVALID_VALUE;
    }
    void *m = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
        return DV_CU_ERROR_OUT_OF_MEMORY;
    }
    pthread_mutex_lock(&fk_lock);
    int ok = fk_push_range(&fk_allocs, (uintptr_t)m, size, NULL);
    pthread_mutex_unlock(&fk_lock);
    if (!ok) {
        munmap(m, size);
        return DV_CU_ERROR_OUT_OF_MEMORY;
    }
    *p = (uintptr_t)m;
    return DV_CU_SUCCESS;
}

dv_cu_result fk_mem_free(dv_cu_deviceptr p) {
    dv_cu_result rc = DV_CU_SUCCESS;
    NEED_CTX();
    pthread_mutex_lock(&fk_lock);
    fk_range_t *r = fk_find(fk_allocs, p, 1);
    if (!r || r->va != p) {
        rc = DV_CU_ERROR_INVALID_VALUE;
    } else {
        munmap((void *)(uintptr_t)p, r->size);
        fk_unlink(&fk_allocs, r);
    }
    pthread_mutex_unlock(&fk_lock);
    return rc;
}

/* Stream-ordered allocations (cuMemAllocAsync, used by the pluggable
 * allocator of bindings/interpose/pluggable.c): synchronous here, like
 * every stream of this driver; the stream must be usable in the current
 * context. DV_FAKE_CUDA_FAIL=cuMemAllocAsync:n makes the n-th one fail
 * with CUDA_ERROR_OUT_OF_MEMORY. */
dv_cu_result fk_mem_alloc_async(dv_cu_deviceptr *p, size_t size,
                                dv_cu_stream s) {
    NEED_CTX();
    dv_cu_result rc = fk_stream_arg(s);
    if (rc != DV_CU_SUCCESS) {
        return rc;
    }
    if (fk_inject("cuMemAllocAsync")) {
        return DV_CU_ERROR_OUT_OF_MEMORY;
    }
    return fk_mem_alloc(p, size);
}

dv_cu_result fk_mem_free_async(dv_cu_deviceptr p, dv_cu_stream s) {
    NEED_CTX();
    dv_cu_result rc = fk_stream_arg(s);
    if (rc != DV_CU_SUCCESS) {
        return rc;
    }
    return fk_mem_free(p);
}

/* ---- copies ---- */

dv_cu_result fk_copy_check(uint64_t dev_va, size_t n, dv_cu_stream s) {
    NEED_CTX();
    dv_cu_result rc = fk_stream_arg(s);
    if (rc != DV_CU_SUCCESS) {
        return rc;
    }
    pthread_mutex_lock(&fk_lock);
    int ok = fk_accessible(dev_va, n);
    pthread_mutex_unlock(&fk_lock);
    return ok ? DV_CU_SUCCESS : DV_CU_ERROR_INVALID_VALUE;
}

dv_cu_result fk_memcpy_htod(dv_cu_deviceptr dst, const void *src, size_t n,
                            dv_cu_stream s) {
    dv_cu_result rc = fk_copy_check(dst, n, s);
    if (rc == DV_CU_SUCCESS && n) {
        memcpy((void *)(uintptr_t)dst, src, n);
    }
    return rc;
}

dv_cu_result fk_memcpy_dtoh(void *dst, dv_cu_deviceptr src, size_t n,
                            dv_cu_stream s) {
    dv_cu_result rc = fk_copy_check(src, n, s);
    if (rc == DV_CU_SUCCESS && n) {
        memcpy(dst, (const void *)(uintptr_t)src, n);
    }
    return rc;
}

/* Both ranges must be mapped and accessible from the current context's
 * device; they may overlap (the copy is a memmove). */
dv_cu_result fk_memcpy_dtod(dv_cu_deviceptr dst, dv_cu_deviceptr src, size_t n,
                            dv_cu_stream s) {
    dv_cu_result rc = fk_copy_check(dst, n, s);
    if (rc == DV_CU_SUCCESS) {
        rc = fk_copy_check(src, n, s);
    }
    if (rc == DV_CU_SUCCESS && n) {
        memmove((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, n);
    }
    return rc;
}

dv_cu_result fk_memset_d8(dv_cu_deviceptr dst, unsigned char v, size_t n,
                          dv_cu_stream s) {
    dv_cu_result rc = fk_copy_check(dst, n, s);
    if (rc == DV_CU_SUCCESS && n) {
        memset((void *)(uintptr_t)dst, v, n);
    }
    return rc;
}

dv_cu_result fk_host_register(void *p, size_t n, unsigned int flags) {
    dv_cu_result rc = DV_CU_SUCCESS;
    NEED_CTX();
    if (!p || n == 0 || (flags & ~(unsigned)DV_CU_MEMHOSTREGISTER_PORTABLE)) {
        return DV_CU_ERROR_INVALID_VALUE;
    }
    pthread_mutex_lock(&fk_lock);
    if (fk_overlap(fk_pinned, (uintptr_t)p, n)) {
        rc = FK_ERROR_ALREADY_REGISTERED;
    } else if (!fk_push_range(&fk_pinned, (uintptr_t)p, n, NULL)) {
        rc = DV_CU_ERROR_OUT_OF_MEMORY;
    }
    pthread_mutex_unlock(&fk_lock);
    return rc;
}

dv_cu_result fk_host_unregister(void *p) {
    dv_cu_result rc = DV_CU_SUCCESS;
    NEED_CTX();
    pthread_mutex_lock(&fk_lock);
    fk_range_t *r = fk_find(fk_pinned, (uintptr_t)p, 1);
    if (!r || r->va != (uintptr_t)p) {
        rc = FK_ERROR_NOT_REGISTERED;
    } else {
        fk_unlink(&fk_pinned, r);
    }
    pthread_mutex_unlock(&fk_lock);
    return rc;
}

/* Like the driver, no context is needed: the address says which device. */
dv_cu_result fk_pointer_get_attribute(void *data, int attribute,
                                      dv_cu_deviceptr ptr) {
    dv_cu_result rc = DV_CU_ERROR_INVALID_VALUE;
    NEED_INIT();
    if (!data || attribute != FK_POINTER_ATTRIBUTE_DEVICE_ORDINAL) {
        return DV_CU_ERROR_INVALID_VALUE;
    }
    pthread_mutex_lock(&fk_lock);
    fk_range_t *r = fk_find(fk_mapped, ptr, 1);
    if (r) {
        *(int *)data = ((fk_mem_t *)r->mem)->dev;
        rc = DV_CU_SUCCESS;
    }
    pthread_mutex_unlock(&fk_lock);
    return rc;
}
