/*
 * host_vm_posix.c - host_vm.h on POSIX virtual memory.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 *   reserve   mmap(PROT_NONE, MAP_NORESERVE) of the range
 *   create    a memfd of the allocation's size
 *   map       mmap(MAP_FIXED | MAP_SHARED, PROT_READ | PROT_WRITE) of it
 *   unmap     mmap(MAP_FIXED, PROT_NONE) over the range: back to reserved
 *   release   close the memfd
 * Memory written through a mapping is really there, and touching an
 * unmapped page really faults (SIGSEGV). The device needs no OS state.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/native.h"
#include "host_vm.h"

struct dv__host_vm_mem {
    int fd;
};

/* A failed system call: errno is the native code. */
static dv_result_t posix_fail(const char *op, dv_result_t r) {
    int e = errno;
    return dv__native_fail(r, e, "%s: %s", op, strerror(e));
}

static dv_result_t posix_available(char *why, size_t len) {
    (void)why;
    (void)len;
    return DV_OK;
}

static uint64_t posix_granularity(void) {
    long pg = sysconf(_SC_PAGESIZE);
    return pg > 0 ? (uint64_t)pg : 4096;
}

/* Nothing per device: a non-NULL token stands for the state. */
static dv__host_vm_t *const posix_vm = (dv__host_vm_t *)(uintptr_t)1;

static dv_result_t posix_open(dv__host_vm_t **vm) {
    *vm = posix_vm;
    return DV_OK;
}

static void posix_close(dv__host_vm_t *vm) { (void)vm; }

static dv_result_t posix_reserve(dv__host_vm_t *vm, uint64_t size,
                                 uint64_t *va) {
    void *p = mmap(NULL, (size_t)size, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        return posix_fail("mmap(PROT_NONE)", DV_ERROR_ADDRESS_SPACE);
    }
    *va = (uint64_t)(uintptr_t)p;
    return DV_OK;
}

static dv_result_t posix_unreserve(dv__host_vm_t *vm, uint64_t va,
                                   uint64_t size) {
    if (munmap((void *)(uintptr_t)va, (size_t)size) != 0) {
        return posix_fail("munmap", DV_ERROR_BACKEND);
    }
    return DV_OK;
}

static dv_result_t posix_create(dv__host_vm_t *vm, uint64_t size,
                                dv__host_vm_mem_t **mem) {
    dv__host_vm_mem_t *m = malloc(sizeof(*m));
    if (!m) {
        return dv__native_fail(DV_ERROR_OUT_OF_HOST_MEMORY, 0,
                               "host create: malloc");
    }
    m->fd = memfd_create("dynvram-page", MFD_CLOEXEC);
    if (m->fd < 0) {
        free(m);
        return posix_fail("memfd_create", DV_ERROR_BACKEND);
    }
    if (ftruncate(m->fd, (off_t)size) != 0) {
        dv_result_t r = posix_fail("ftruncate", errno == ENOMEM
                                                    ? DV_ERROR_OUT_OF_HOST_MEMORY
                                                    : DV_ERROR_BACKEND);
        close(m->fd);
        free(m);
        return r;
    }
    *mem = m;
    return DV_OK;
}

static void posix_release(dv__host_vm_t *vm, dv__host_vm_mem_t *mem) {
    close(mem->fd);
    free(mem);
}

static dv_result_t posix_map(dv__host_vm_t *vm, uint64_t va, uint64_t size,
                             dv__host_vm_mem_t *mem) {
    void *p = mmap((void *)(uintptr_t)va, (size_t)size, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_FIXED, mem->fd, 0);
    if (p == MAP_FAILED) {
        return posix_fail("mmap(MAP_FIXED)", errno == ENOMEM
                                                 ? DV_ERROR_OUT_OF_HOST_MEMORY
                                                 : DV_ERROR_BACKEND);
    }
    return DV_OK;
}

static dv_result_t posix_unmap(dv__host_vm_t *vm, uint64_t va, uint64_t size) {
    void *p = mmap((void *)(uintptr_t)va, (size_t)size, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1,
                   0);
    if (p == MAP_FAILED) {
        return posix_fail("mmap(PROT_NONE)", DV_ERROR_BACKEND);
    }
    return DV_OK;
}

const dv__host_vm_ops_t dv__host_vm_ops = {
    .available = posix_available,
    .granularity = posix_granularity,
    .open = posix_open,
    .close = posix_close,
    .reserve = posix_reserve,
    .unreserve = posix_unreserve,
    .create = posix_create,
    .release = posix_release,
    .map = posix_map,
    .unmap = posix_unmap,
};
