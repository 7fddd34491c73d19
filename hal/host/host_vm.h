/*
 * host_vm.h - the operating system's virtual memory as the host backend
 * uses it. host.c (the backend, the same on every platform) calls only
 * this; host_vm_posix.c (mmap + memfd) and host_vm_win.c (placeholder
 * reservations + pagefile sections) implement it, chosen by the build.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Contract, for each op of dv__host_vm_ops:
 *  - available: DV_OK when this system can do all of the below (checked
 *    once; Windows needs placeholders); else DV_ERROR_BACKEND_UNAVAILABLE
 *    with the reason in `why`.
 *  - granularity: reserve, create and map sizes and addresses are multiples
 *    of it (POSIX: the page size; Windows: the allocation granularity).
 *  - open / close: a device's OS state (Windows tracks its reservations);
 *    close gives back whatever the device left behind.
 *  - reserve: `size` bytes of address space, no memory, inaccessible.
 *    unreserve: exactly a range reserve returned, mappings in it dropped.
 *  - create: `size` bytes of memory not mapped anywhere ("physical");
 *    release: free it (never called while mapped).
 *  - map: all of `mem` at `va`, inside a reservation and not mapped yet,
 *    readable and writable; unmap: [va, va + size), made of whole
 *    mappings, back to reserved and inaccessible (touching it faults).
 *  - Every failure sets the native error record (base/native.h) and
 *    returns DV_ERROR_ADDRESS_SPACE (reserve), DV_ERROR_OUT_OF_HOST_MEMORY
 *    (the system is out of memory), DV_ERROR_INVALID_ARGUMENT or
 *    DV_ERROR_BACKEND. The simulated device capacity is host.c's, not this
 *    layer's.
 *  - Calls on one device are serialized by the core (HAL contract).
 */
#ifndef DV_HAL_HOST_VM_H
#define DV_HAL_HOST_VM_H

#include <stddef.h>
#include <stdint.h>

#include "dynvram.h"

typedef struct dv__host_vm dv__host_vm_t;         /* one device's OS state */
typedef struct dv__host_vm_mem dv__host_vm_mem_t; /* one allocation */

typedef struct dv__host_vm_ops {
    dv_result_t (*available)(char *why, size_t len);
    uint64_t (*granularity)(void);
    dv_result_t (*open)(dv__host_vm_t **vm);
    void (*close)(dv__host_vm_t *vm);
    dv_result_t (*reserve)(dv__host_vm_t *vm, uint64_t size, uint64_t *va);
    dv_result_t (*unreserve)(dv__host_vm_t *vm, uint64_t va, uint64_t size);
    dv_result_t (*create)(dv__host_vm_t *vm, uint64_t size,
                          dv__host_vm_mem_t **mem);
    void (*release)(dv__host_vm_t *vm, dv__host_vm_mem_t *mem);
    dv_result_t (*map)(dv__host_vm_t *vm, uint64_t va, uint64_t size,
                       dv__host_vm_mem_t *mem);
    dv_result_t (*unmap)(dv__host_vm_t *vm, uint64_t va, uint64_t size);
} dv__host_vm_ops_t;

/* This platform's implementation (host_vm_posix.c or host_vm_win.c). */
extern const dv__host_vm_ops_t dv__host_vm_ops;

#endif /* DV_HAL_HOST_VM_H */
