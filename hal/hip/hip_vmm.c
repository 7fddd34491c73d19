/*
 * hip_vmm.c - every HIP virtual-memory call, and the workarounds for the
 * ROCm VMM defects. The core never hears of these; it sees only the caps.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * The defects, each handled here:
 *
 * (a) Linux: hipMemUnmap does not give the memory back. ROCr maps the
 *     DRM buffer of a physical allocation into the CPU address space at the
 *     device address as well (ROCm mirrors device ranges in the process);
 *     hipMemUnmap drops ROCr's record of the mapping but leaves that CPU
 *     mapping in place, so the kernel keeps the buffer referenced and KFD
 *     keeps counting it until the whole address range is freed
 *     (ROCm/legacy-rocm-build#6021; fixed in ROCr by rocm-systems#4363, not
 *     in released runtimes). Setting the access to none does not help: the
 *     mapping is what holds the reference. Projects hit by it free and
 *     re-reserve the whole range, which dynvram cannot do for one page of a
 *     live VBAR. So, after each hipMemUnmap, the backend replaces the CPU
 *     mapping of the unmapped range by the anonymous inaccessible mapping a
 *     fresh reservation has (what the ROCr fix itself does), which drops the
 *     reference at once (DV__HIP_WA_REPROTECT; hip_os_posix.c).
 * (b) hipMemUnmap of a range spanning several mappings is unreliable: ROCr
 *     leaves use counts behind and a later hipMemAddressFree fails
 *     (ROCm/ROCR-Runtime#285). The backend keeps its own sorted record of
 *     mappings and unmaps one mapping per call, whatever range it is given.
 * (c) Windows: repeated reserve/free of address ranges corrupts the
 *     runtime's state. Freed reservations are kept and handed out again for
 *     a later reserve that fits (DV__HIP_WA_REUSE_VA).
 * (d) concurrent VMM calls are not thread-safe on some releases: all of
 *     them, for every device of the process, run under one mutex. The core
 *     serializes per device only.
 * (e) the granularity differs between devices and releases (4 KiB and
 *     64 KiB are both seen): it is always queried, never assumed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/native.h"
#include "base/os.h"
#include "hip_internal.h"

typedef struct hip_reservation {
    uint64_t va;
    uint64_t size; /* as reserved from the driver */
    int live;      /* 0: freed by the core, kept for reuse */
} hip_reservation_t;

typedef struct hip_mapping {
    uint64_t va;
    uint64_t size;
} hip_mapping_t;

/* All of this is guarded by hip_vmm_lock. */
static dv__mutex_t hip_vmm_lock = DV__MUTEX_INIT;
static hip_reservation_t *hip_res;
static size_t hip_res_count, hip_res_cap;
static hip_mapping_t *hip_maps; /* sorted by va, never overlapping */
static size_t hip_map_count, hip_map_cap;
static dv__hip_vmm_stats_t hip_stats;

static void *hip_ptr(uint64_t va) { return (void *)(uintptr_t)va; }

/* Makes room for one more element; 0 on success. */
static int hip_grow(void **arr, size_t *cap, size_t count, size_t elem) {
    if (count < *cap) {
        return 0;
    }
    size_t ncap = *cap ? *cap * 2 : 64;
    void *p = realloc(*arr, ncap * elem);
    if (!p) {
        return -1;
    }
    *arr = p;
    *cap = ncap;
    return 0;
}

/* Index of the first mapping whose end is above `va`. */
static size_t hip_map_lower(uint64_t va) {
    size_t lo = 0, hi = hip_map_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (hip_maps[mid].va + hip_maps[mid].size <= va) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static hip_reservation_t *hip_res_containing(uint64_t va, uint64_t size) {
    for (size_t i = 0; i < hip_res_count; i++) {
        hip_reservation_t *r = &hip_res[i];
        if (r->live && va >= r->va && size <= r->size &&
            va - r->va <= r->size - size) {
            return r;
        }
    }
    return NULL;
}

/* ---- reservations ---------------------------------------------------------- */

dv_result_t dv__hip_vmm_reserve(uint64_t size, uint64_t alignment,
                                uint64_t *va) {
    dv_result_t r = DV_OK;
    if (alignment == 0) {
        alignment = 1;
    }
    dv__mutex_lock(&hip_vmm_lock);
    if (dv__hip_workarounds() & DV__HIP_WA_REUSE_VA) {
        /* Workaround (c): best fit among the kept reservations. */
        hip_reservation_t *best = NULL;
        for (size_t i = 0; i < hip_res_count; i++) {
            hip_reservation_t *k = &hip_res[i];
            if (!k->live && k->size >= size && (k->va % alignment) == 0 &&
                (!best || k->size < best->size)) {
                best = k;
            }
        }
        if (best) {
            best->live = 1;
            *va = best->va;
            hip_stats.reservations_kept--;
            hip_stats.reservations_live++;
            hip_stats.reservations_reused++;
            goto out;
        }
    }
    if (hip_grow((void **)&hip_res, &hip_res_cap, hip_res_count,
                 sizeof(*hip_res)) != 0) {
        r = dv__native_fail(DV_ERROR_OUT_OF_HOST_MEMORY, 0, "hip: reserve: no memory");
        goto out;
    }
    void *p = NULL;
    dv_hip_error_t e =
        dv__hip.hipMemAddressReserve(&p, (size_t)size, (size_t)alignment,
                                     NULL, 0);
    if (e != DV_HIP_SUCCESS) {
        /* Out of memory here is out of address space, not device memory. */
        char detail[96];
        snprintf(detail, sizeof(detail), "size=%llu, alignment=%llu",
                 (unsigned long long)size, (unsigned long long)alignment);
        r = dv__hip_fail_as(e == DV_HIP_ERROR_OUT_OF_MEMORY
                                ? DV_ERROR_ADDRESS_SPACE
                                : DV_ERROR_BACKEND,
                            e, "hipMemAddressReserve", detail);
        goto out;
    }
    hip_res[hip_res_count++] =
        (hip_reservation_t){.va = (uint64_t)(uintptr_t)p, .size = size,
                            .live = 1};
    hip_stats.reservations_live++;
    *va = (uint64_t)(uintptr_t)p;
out:
    dv__mutex_unlock(&hip_vmm_lock);
    return r;
}

dv_result_t dv__hip_vmm_unreserve(uint64_t va, uint64_t size) {
    dv_result_t r = DV_OK;
    dv__mutex_lock(&hip_vmm_lock);
    size_t i = 0;
    while (i < hip_res_count && !(hip_res[i].live && hip_res[i].va == va)) {
        i++;
    }
    if (i == hip_res_count || size > hip_res[i].size) {
        r = dv__native_fail(DV_ERROR_INVALID_ARGUMENT, 0, "hip: unreserve(%#llx, %llu): not a reservation",
                     (unsigned long long)va, (unsigned long long)size);
        goto out;
    }
    hip_reservation_t *res = &hip_res[i];
    size_t m = hip_map_lower(res->va);
    if (m < hip_map_count && hip_maps[m].va < res->va + res->size) {
        r = dv__native_fail(DV_ERROR_BUSY, 0, "hip: unreserve(%#llx): %#llx is still mapped",
                     (unsigned long long)va,
                     (unsigned long long)hip_maps[m].va);
        goto out;
    }
    if (dv__hip_workarounds() & DV__HIP_WA_REUSE_VA) {
        res->live = 0; /* workaround (c): keep it for a later reserve */
        hip_stats.reservations_live--;
        hip_stats.reservations_kept++;
        goto out;
    }
    dv_hip_error_t e =
        dv__hip.hipMemAddressFree(hip_ptr(res->va), (size_t)res->size);
    if (e != DV_HIP_SUCCESS) {
        r = dv__hip_fail(e, "hipMemAddressFree", "%#llx, %llu",
                         (unsigned long long)res->va,
                         (unsigned long long)res->size);
        goto out;
    }
    hip_res[i] = hip_res[--hip_res_count];
    hip_stats.reservations_live--;
out:
    dv__mutex_unlock(&hip_vmm_lock);
    return r;
}

/* ---- physical memory -------------------------------------------------------- */

dv_result_t dv__hip_vmm_create(const void *prop, uint64_t size,
                               dv_hip_mem_handle_t *handle) {
    dv__mutex_lock(&hip_vmm_lock);
    dv_hip_mem_handle_t h = NULL;
    dv_hip_error_t e = dv__hip.hipMemCreate(&h, (size_t)size, prop, 0);
    dv__mutex_unlock(&hip_vmm_lock);
    if (e != DV_HIP_SUCCESS) {
        return dv__hip_fail(e, "hipMemCreate", "size=%llu",
                            (unsigned long long)size);
    }
    *handle = h;
    return DV_OK;
}

dv_result_t dv__hip_vmm_release(dv_hip_mem_handle_t handle) {
    dv__mutex_lock(&hip_vmm_lock);
    dv_hip_error_t e = dv__hip.hipMemRelease(handle);
    dv__mutex_unlock(&hip_vmm_lock);
    if (e != DV_HIP_SUCCESS) {
        return dv__hip_fail(e, "hipMemRelease", "%p", (void *)handle);
    }
    return DV_OK;
}

dv_result_t dv__hip_vmm_granularity(const void *prop, uint64_t *minimum,
                                    uint64_t *recommended) {
    size_t gmin = 0, grec = 0;
    dv__mutex_lock(&hip_vmm_lock);
    dv_hip_error_t e = dv__hip.hipMemGetAllocationGranularity(
        &gmin, prop, DV_HIP_MEM_ALLOC_GRANULARITY_MINIMUM);
    if (e == DV_HIP_SUCCESS) {
        e = dv__hip.hipMemGetAllocationGranularity(
            &grec, prop, DV_HIP_MEM_ALLOC_GRANULARITY_RECOMMENDED);
        if (e != DV_HIP_SUCCESS) {
            grec = gmin; /* the recommendation is only a hint */
            e = DV_HIP_SUCCESS;
        }
    }
    dv__mutex_unlock(&hip_vmm_lock);
    if (e != DV_HIP_SUCCESS) {
        return dv__hip_fail(e, "hipMemGetAllocationGranularity", "minimum");
    }
    /* A granularity must be a power of two for the core's arithmetic. */
    if (gmin == 0 || (gmin & (gmin - 1)) != 0) {
        return dv__native_fail(DV_ERROR_BACKEND, 0, "hip: driver reports granularity %zu, not a power of "
                        "two",
                        gmin);
    }
    if (grec < gmin || grec % gmin != 0) {
        grec = gmin;
    }
    *minimum = gmin;
    *recommended = grec;
    return DV_OK;
}

/* ---- mapping --------------------------------------------------------------- */

/* Unmaps one recorded mapping (workaround (b): one per call) and applies
 * workaround (a). Caller holds the lock. */
static dv_result_t hip_unmap_one(const hip_mapping_t *m) {
    dv_hip_error_t e = dv__hip.hipMemUnmap(hip_ptr(m->va), (size_t)m->size);
    if (e != DV_HIP_SUCCESS) {
        return dv__hip_fail(e, "hipMemUnmap", "%#llx, %llu",
                            (unsigned long long)m->va,
                            (unsigned long long)m->size);
    }
    if (dv__hip_workarounds() & DV__HIP_WA_REPROTECT) {
        char why[128] = "";
        if (dv__hip_os_reprotect(m->va, m->size, why, sizeof(why)) != 0) {
            /* The unmap itself worked; only the memory may stay counted. */
            hip_stats.reprotect_failures++;
            dv__log(DV_LOG_WARNING,
                    "hip: re-protecting %#llx+%llu after unmap failed (%s); "
                    "the driver may keep counting this memory",
                    (unsigned long long)m->va, (unsigned long long)m->size,
                    why);
        } else {
            hip_stats.reprotects++;
        }
    }
    return DV_OK;
}

dv_result_t dv__hip_vmm_map(uint64_t va, uint64_t size,
                            dv_hip_mem_handle_t handle, int ordinal) {
    dv_result_t r = DV_OK;
    dv__mutex_lock(&hip_vmm_lock);
    if (!hip_res_containing(va, size)) {
        r = dv__native_fail(DV_ERROR_INVALID_ARGUMENT, 0, "hip: map(%#llx, %llu): outside every reservation",
                     (unsigned long long)va, (unsigned long long)size);
        goto out;
    }
    size_t pos = hip_map_lower(va);
    if (pos < hip_map_count && hip_maps[pos].va < va + size) {
        r = dv__native_fail(DV_ERROR_INVALID_ARGUMENT, 0, "hip: map(%#llx, %llu): overlaps the mapping at %#llx",
                     (unsigned long long)va, (unsigned long long)size,
                     (unsigned long long)hip_maps[pos].va);
        goto out;
    }
    if (hip_grow((void **)&hip_maps, &hip_map_cap, hip_map_count,
                 sizeof(*hip_maps)) != 0) {
        r = dv__native_fail(DV_ERROR_OUT_OF_HOST_MEMORY, 0, "hip: map: no memory");
        goto out;
    }
    dv_hip_error_t e =
        dv__hip.hipMemMap(hip_ptr(va), (size_t)size, 0, handle, 0);
    if (e != DV_HIP_SUCCESS) {
        r = dv__hip_fail(e, "hipMemMap", "%#llx, %llu",
                         (unsigned long long)va, (unsigned long long)size);
        goto out;
    }
    dv_hip_mem_access_desc_t desc = {
        .location = {.type = DV_HIP_MEM_LOCATION_TYPE_DEVICE, .id = ordinal},
        .flags = DV_HIP_MEM_ACCESS_FLAGS_PROT_READ_WRITE,
    };
    e = dv__hip.hipMemSetAccess(hip_ptr(va), (size_t)size, &desc, 1);
    if (e != DV_HIP_SUCCESS) {
        r = dv__hip_fail(e, "hipMemSetAccess", "%#llx, %llu, device %d",
                         (unsigned long long)va, (unsigned long long)size,
                         ordinal);
        /* Leave nothing behind; the first failure is the one reported. */
        hip_mapping_t m = {.va = va, .size = size};
        int64_t code = 0;
        char keep[384];
        dv__native_get(&code, keep, sizeof(keep));
        if (hip_unmap_one(&m) != DV_OK) {
            dv__log(DV_LOG_ERROR, "hip: cannot undo the mapping at %#llx",
                    (unsigned long long)va);
        }
        r = dv__native_fail(r, code, "%s", keep);
        goto out;
    }
    memmove(&hip_maps[pos + 1], &hip_maps[pos],
            (hip_map_count - pos) * sizeof(*hip_maps));
    hip_maps[pos] = (hip_mapping_t){.va = va, .size = size};
    hip_map_count++;
    hip_stats.mappings = hip_map_count;
out:
    dv__mutex_unlock(&hip_vmm_lock);
    return r;
}

dv_result_t dv__hip_vmm_unmap(uint64_t va, uint64_t size) {
    dv_result_t r = DV_OK;
    dv__mutex_lock(&hip_vmm_lock);
    size_t first = hip_map_lower(va);
    size_t last = first;
    while (last < hip_map_count && hip_maps[last].va < va + size) {
        last++;
    }
    /* Mappings [first, last) intersect the range; each must lie inside it:
     * HIP cannot unmap part of a mapping. */
    if (first == last) {
        r = dv__native_fail(DV_ERROR_INVALID_ARGUMENT, 0, "hip: unmap(%#llx, %llu): nothing is mapped there",
                     (unsigned long long)va, (unsigned long long)size);
        goto out;
    }
    if (hip_maps[first].va < va ||
        hip_maps[last - 1].va + hip_maps[last - 1].size > va + size) {
        r = dv__native_fail(DV_ERROR_INVALID_ARGUMENT, 0, "hip: unmap(%#llx, %llu): splits a mapping",
                     (unsigned long long)va, (unsigned long long)size);
        goto out;
    }
    if (last - first > 1) {
        hip_stats.split_unmaps++;
    }
    size_t done = first;
    for (; done < last; done++) {
        r = hip_unmap_one(&hip_maps[done]);
        if (r != DV_OK) {
            break;
        }
    }
    /* Forget what was unmapped, even when a later one failed. */
    memmove(&hip_maps[first], &hip_maps[done],
            (hip_map_count - done) * sizeof(*hip_maps));
    hip_map_count -= done - first;
    hip_stats.mappings = hip_map_count;
out:
    dv__mutex_unlock(&hip_vmm_lock);
    return r;
}

void dv__hip_vmm_get_stats(dv__hip_vmm_stats_t *st) {
    dv__mutex_lock(&hip_vmm_lock);
    *st = hip_stats;
    dv__mutex_unlock(&hip_vmm_lock);
}
