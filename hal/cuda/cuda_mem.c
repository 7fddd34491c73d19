/*
 * cuda_mem.c - the CUDA backend's address space and physical memory ops:
 * cuMemAddressReserve / cuMemAddressFree, cuMemCreate / cuMemRelease,
 * cuMemMap + cuMemSetAccess / cuMemUnmap.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Sizes are multiples of the granularity the device reported (the core
 * guarantees it; a violation is DV_ERROR_INVALID_ARGUMENT before any driver
 * call). A map that fails half-way is undone, so it leaves nothing mapped.
 */
#include <stdint.h>
#include <string.h>

#include "cuda_internal.h"

static dv_result_t cu_check_size(const dv__cu_dev_t *d, const char *op,
                                 uint64_t size) {
    if (size == 0 || size % d->granularity != 0 || size > (uint64_t)SIZE_MAX) {
        return dv__native_fail(DV_ERROR_INVALID_ARGUMENT, 0, "cuda %s: size %llu is not a positive multiple of "
                        "the granularity %llu",
                        op, (unsigned long long)size,
                        (unsigned long long)d->granularity);
    }
    return DV_OK;
}

dv_result_t dv__cu_reserve(void *ctx, uint64_t size, uint64_t *va) {
    dv__cu_dev_t *d = ctx;
    dv_cu_deviceptr p = 0;
    dv_cu_result rc;
    dv_result_t r = cu_check_size(d, "reserve", size);
    if (r != DV_OK) {
        return r;
    }
    r = dv__cu_enter(d);
    if (r != DV_OK) {
        return r;
    }
    rc = dv__cu.cuMemAddressReserve(&p, (size_t)size, (size_t)d->granularity, 0,
                                    0);
    dv__cu_leave(d);
    if (rc != DV_CU_SUCCESS) {
        /* Out of memory here is out of virtual address space. */
        return dv__cu_fail_as(rc, DV_ERROR_ADDRESS_SPACE,
                              "cuMemAddressReserve(%llu bytes)",
                              (unsigned long long)size);
    }
    *va = p;
    return DV_OK;
}

dv_result_t dv__cu_unreserve(void *ctx, uint64_t va, uint64_t size) {
    dv__cu_dev_t *d = ctx;
    dv_cu_result rc;
    dv_result_t r = dv__cu_enter(d);
    if (r != DV_OK) {
        return r;
    }
    rc = dv__cu.cuMemAddressFree(va, (size_t)size);
    dv__cu_leave(d);
    if (rc != DV_CU_SUCCESS) {
        return dv__cu_fail_as(rc, DV_ERROR_BACKEND,
                              "cuMemAddressFree(0x%llx, %llu)",
                              (unsigned long long)va, (unsigned long long)size);
    }
    return DV_OK;
}

dv_result_t dv__cu_create(void *ctx, uint64_t size, dv_hal_mem_t *mem) {
    dv__cu_dev_t *d = ctx;
    dv_cu_mem_allocation_prop prop;
    dv_cu_mem_handle h = 0;
    dv_cu_result rc;
    dv_result_t r = cu_check_size(d, "create", size);
    if (r != DV_OK) {
        return r;
    }
    memset(&prop, 0, sizeof(prop));
    prop.type = DV_CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.requested_handle_types = DV_CU_MEM_HANDLE_TYPE_NONE;
    prop.location.type = DV_CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = d->dev;
    r = dv__cu_enter(d);
    if (r != DV_OK) {
        return r;
    }
    rc = dv__cu.cuMemCreate(&h, (size_t)size, &prop, 0);
    dv__cu_leave(d);
    if (rc != DV_CU_SUCCESS) {
        return dv__cu_fail(rc, "cuMemCreate(%llu bytes, device %d)",
                           (unsigned long long)size, d->ordinal);
    }
    *mem = h;
    return DV_OK;
}

dv_result_t dv__cu_release(void *ctx, dv_hal_mem_t mem) {
    dv__cu_dev_t *d = ctx;
    dv_cu_result rc;
    dv_result_t r = dv__cu_enter(d);
    if (r != DV_OK) {
        return r;
    }
    rc = dv__cu.cuMemRelease(mem);
    dv__cu_leave(d);
    if (rc != DV_CU_SUCCESS) {
        return dv__cu_fail_as(rc, DV_ERROR_BACKEND, "cuMemRelease(0x%llx)",
                              (unsigned long long)mem);
    }
    return DV_OK;
}

dv_result_t dv__cu_map(void *ctx, uint64_t va, uint64_t size,
                       dv_hal_mem_t mem) {
    dv__cu_dev_t *d = ctx;
    dv_cu_mem_access_desc access;
    dv_cu_result rc;
    dv_cu_result rc_undo;
    dv_result_t r = dv__cu_enter(d);
    if (r != DV_OK) {
        return r;
    }
    rc = dv__cu.cuMemMap(va, (size_t)size, 0, mem, 0);
    if (rc != DV_CU_SUCCESS) {
        dv__cu_leave(d);
        return dv__cu_fail(rc, "cuMemMap(0x%llx, %llu)", (unsigned long long)va,
                           (unsigned long long)size);
    }
    memset(&access, 0, sizeof(access));
    access.location.type = DV_CU_MEM_LOCATION_TYPE_DEVICE;
    access.location.id = d->dev;
    access.flags = DV_CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    rc = dv__cu.cuMemSetAccess(va, (size_t)size, &access, 1);
    if (rc != DV_CU_SUCCESS) {
        /* A failed map leaves nothing mapped (HAL contract). */
        rc_undo = dv__cu.cuMemUnmap(va, (size_t)size);
        dv__cu_leave(d);
        if (rc_undo != DV_CU_SUCCESS) {
            dv__log(DV_LOG_ERROR,
                    "cuda: cuMemUnmap(0x%llx) after a failed cuMemSetAccess "
                    "returned %d; the range may stay mapped",
                    (unsigned long long)va, rc_undo);
        }
        return dv__cu_fail(rc, "cuMemSetAccess(0x%llx, %llu, read-write)",
                           (unsigned long long)va, (unsigned long long)size);
    }
    dv__cu_leave(d);
    return DV_OK;
}

dv_result_t dv__cu_unmap(void *ctx, uint64_t va, uint64_t size) {
    dv__cu_dev_t *d = ctx;
    dv_cu_result rc;
    dv_result_t r = dv__cu_enter(d);
    if (r != DV_OK) {
        return r;
    }
    rc = dv__cu.cuMemUnmap(va, (size_t)size);
    dv__cu_leave(d);
    if (rc != DV_CU_SUCCESS) {
        return dv__cu_fail_as(rc, DV_ERROR_BACKEND, "cuMemUnmap(0x%llx, %llu)",
                              (unsigned long long)va, (unsigned long long)size);
    }
    return DV_OK;
}
