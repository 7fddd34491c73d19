/*
 * ze.c - the Level Zero backend: dv_hal_levelzero().
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * How the HAL maps onto Level Zero:
 *  - device: one GPU root device, one context, and one immediate command
 *    list that serves as the default stream (stream NULL).
 *  - reserve/unreserve: zeVirtualMemReserve/Free. create/release:
 *    zePhysicalMemCreate/Destroy. map/unmap: zeVirtualMemMap (read-write) /
 *    zeVirtualMemUnmap.
 *  - granularity: Level Zero's page size depends on the size asked for
 *    (e.g. 64 KiB below 2 MiB, 2 MiB from 2 MiB up). The core asks the caps
 *    once, before it knows its page size, so we query for a 2 MiB and a
 *    32 MiB request and report the larger: every page size the core may use
 *    (a multiple of it) is then a multiple of what the driver wants for it.
 *    Reservations are checked to come back aligned to it.
 *  - streams: immediate command lists (asynchronous mode, queue group 0).
 *    Copies: zeCommandListAppendMemoryCopy on the stream's list. The source
 *    of an h2d copy must stay valid until the stream has finished it.
 *  - fences: host-visible events from pools of DV__ZE_POOL_EVENTS, recycled
 *    through a free list; record appends a signal on the stream's list,
 *    query is zeEventQueryStatus, wait zeEventHostSynchronize.
 *    stream_synchronize records, waits for and frees one fence.
 *  - stream_check: lists this backend made are known (a registry, see
 *    ze_stream.c); a foreign one is probed with an empty barrier.
 *  - host_register: Level Zero cannot page-lock existing host memory (it
 *    has only its own zeMemAllocHost), so the op returns
 *    DV_ERROR_NOT_SUPPORTED and DV_CAP_HOST_REGISTER is not set.
 *  - mem_info: free memory comes from Sysman (zesDeviceEnumMemoryModules /
 *    zesMemoryGetState over device-local modules), which the driver offers
 *    on a core device handle only when the process runs with
 *    ZES_ENABLE_SYSMAN=1 set before zeInit. Without Sysman, mem_info fills
 *    free = total = the device's memory size and returns
 *    DV_ERROR_NOT_SUPPORTED: the free memory is unknown and the caller must
 *    set an explicit vram_limit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/native.h"
#include "base/os.h"
#include "ze_internal.h"

static dv_result_t ze_probe(int *device_count, char *reason,
                            size_t reason_len) {
    int count = 0;
    if (device_count) {
        *device_count = 0;
    }
    dv_result_t res = dv__ze_load(reason, reason_len);
    if (res != DV_OK) {
        return DV_ERROR_BACKEND_UNAVAILABLE;
    }
    res = dv__ze_find_device(-1, &count, NULL, NULL);
    if (res != DV_OK || count == 0) {
        if (reason && reason_len) {
            snprintf(reason, reason_len, "%s: %s", dv__ze_library(),
                     res != DV_OK ? dv_last_error()
                                  : "no Level Zero GPU device");
        }
        return DV_ERROR_BACKEND_UNAVAILABLE;
    }
    if (device_count) {
        *device_count = count;
    }
    return DV_OK;
}

static dv_result_t ze_query_page(dv__ze_ctx_t *c, size_t size, size_t *page) {
    dv_ze_result_t r =
        dv__ze.zeVirtualMemQueryPageSize(c->context, c->device, size, page);
    if (r != DV_ZE_RESULT_SUCCESS) {
        return dv__ze_fail(r, "zeVirtualMemQueryPageSize");
    }
    if (*page == 0 || (*page & (*page - 1)) != 0) {
        return dv__native_fail(DV_ERROR_BACKEND, 0, "levelzero: page size %zu for a %zu-byte request is "
                        "not a power of two",
                        *page, size);
    }
    return DV_OK;
}

/* Device properties, memory size, granularity and Sysman modules. */
static dv_result_t ze_describe(dv__ze_ctx_t *c) {
    dv_ze_device_properties_t props;
    memset(&props, 0, sizeof(props));
    props.stype = DV_ZE_STRUCTURE_TYPE_DEVICE_PROPERTIES;
    dv_ze_result_t r = dv__ze.zeDeviceGetProperties(c->device, &props);
    if (r != DV_ZE_RESULT_SUCCESS) {
        return dv__ze_fail(r, "zeDeviceGetProperties");
    }
    props.name[sizeof(props.name) - 1] = '\0';
    snprintf(c->name, sizeof(c->name), "%.127s", props.name);

    dv_ze_device_memory_properties_t mp[8];
    uint32_t n = 0;
    r = dv__ze.zeDeviceGetMemoryProperties(c->device, &n, NULL);
    if (r != DV_ZE_RESULT_SUCCESS) {
        return dv__ze_fail(r, "zeDeviceGetMemoryProperties");
    }
    if (n > 8) {
        n = 8;
    }
    memset(mp, 0, sizeof(mp));
    for (uint32_t i = 0; i < n; i++) {
        mp[i].stype = DV_ZE_STRUCTURE_TYPE_DEVICE_MEMORY_PROPERTIES;
    }
    if (n > 0) {
        r = dv__ze.zeDeviceGetMemoryProperties(c->device, &n, mp);
        if (r != DV_ZE_RESULT_SUCCESS) {
            return dv__ze_fail(r, "zeDeviceGetMemoryProperties");
        }
    }
    c->total_memory = 0;
    for (uint32_t i = 0; i < n; i++) {
        c->total_memory += mp[i].totalSize;
    }

    size_t small = 0;
    size_t large = 0;
    dv_result_t res = ze_query_page(c, 2ull << 20, &small);
    if (res == DV_OK) {
        res = ze_query_page(c, (size_t)DV_DEFAULT_PAGE_SIZE, &large);
    }
    if (res != DV_OK) {
        return res;
    }
    c->granularity = small > large ? small : large;

    /* Sysman: usable only if the driver accepts the core device handle. */
    c->mem_module_count = 0;
    if (dv__ze.zesDeviceEnumMemoryModules) {
        uint32_t count = 0;
        dv_zes_mem_handle_t mods[DV__ZE_MAX_MEM_MODULES];
        r = dv__ze.zesDeviceEnumMemoryModules(c->device, &count, NULL);
        if (r == DV_ZE_RESULT_SUCCESS && count > 0) {
            if (count > DV__ZE_MAX_MEM_MODULES) {
                count = DV__ZE_MAX_MEM_MODULES;
            }
            r = dv__ze.zesDeviceEnumMemoryModules(c->device, &count, mods);
        }
        for (uint32_t i = 0; r == DV_ZE_RESULT_SUCCESS && i < count; i++) {
            dv_zes_mem_properties_t p;
            memset(&p, 0, sizeof(p));
            p.stype = DV_ZES_STRUCTURE_TYPE_MEM_PROPERTIES;
            if (dv__ze.zesMemoryGetProperties(mods[i], &p) ==
                    DV_ZE_RESULT_SUCCESS &&
                p.location == DV_ZES_MEM_LOC_DEVICE) {
                c->mem_modules[c->mem_module_count++] = mods[i];
            }
        }
        if (r != DV_ZE_RESULT_SUCCESS) {
            c->mem_module_count = 0;
        }
    }
    dv__log(DV_LOG_DEBUG,
            "levelzero: device %d '%s': %llu bytes, granularity %llu, "
            "Sysman %s",
            c->ordinal, c->name, (unsigned long long)c->total_memory,
            (unsigned long long)c->granularity,
            c->mem_module_count ? "on" : "off (set ZES_ENABLE_SYSMAN=1)");
    return DV_OK;
}

static void ze_fini(void *ctx);

static dv_result_t ze_init(const dv_hal_init_args_t *args, void **out) {
    char reason[256];
    if (!args || !out) {
        return dv__native_fail(DV_ERROR_INVALID_ARGUMENT, 0, "levelzero: init args");
    }
    *out = NULL;
    if (dv__ze_load(reason, sizeof(reason)) != DV_OK) {
        return dv__native_fail(DV_ERROR_BACKEND_UNAVAILABLE, 0, "levelzero: %s", reason);
    }
    dv__ze_ctx_t *c = calloc(1, sizeof(*c));
    if (!c) {
        return dv__native_fail(DV_ERROR_OUT_OF_HOST_MEMORY, 0, "levelzero: device state");
    }
    if (dv__mutex_init(&c->fence_lock) != 0) {
        free(c);
        return dv__native_fail(DV_ERROR_OUT_OF_HOST_MEMORY, 0, "levelzero: mutex");
    }
    c->ordinal = args->ordinal;
    dv_result_t res =
        dv__ze_find_device(args->ordinal, NULL, &c->driver, &c->device);
    if (res != DV_OK) {
        goto fail;
    }
    dv_ze_context_desc_t cd;
    memset(&cd, 0, sizeof(cd));
    cd.stype = DV_ZE_STRUCTURE_TYPE_CONTEXT_DESC;
    dv_ze_result_t r = dv__ze.zeContextCreate(c->driver, &cd, &c->context);
    if (r != DV_ZE_RESULT_SUCCESS) {
        c->context = NULL;
        res = dv__ze_fail(r, "zeContextCreate");
        goto fail;
    }
    res = ze_describe(c);
    if (res != DV_OK) {
        goto fail;
    }
    res = dv__ze_list_create(c, &c->list);
    if (res == DV_OK) {
        res = dv__ze_lists_adopt_default(c);
    }
    if (res != DV_OK) {
        goto fail;
    }
    *out = c;
    return DV_OK;

fail:
    ze_fini(c); /* keeps the message recorded above */
    return res;
}

static void ze_fini(void *ctx) {
    dv__ze_ctx_t *c = ctx;
    if (!c) {
        return;
    }
    /* Destroy failures are ignored: nothing useful can be done with them. */
    dv__ze_fences_free(c);
    dv__ze_lists_release(c);
    if (c->list) {
        (void)dv__ze.zeCommandListDestroy(c->list);
    }
    if (c->context) {
        (void)dv__ze.zeContextDestroy(c->context);
    }
    dv__mutex_destroy(&c->fence_lock);
    free(c);
}

static dv_result_t ze_get_caps(void *ctx, dv_hal_caps_t *caps) {
    dv__ze_ctx_t *c = ctx;
    memset(caps, 0, sizeof(*caps));
    snprintf(caps->name, sizeof(caps->name), "%s", c->name);
    caps->granularity = c->granularity;
    caps->va_alignment = c->granularity;
    caps->total_memory = c->total_memory;
    caps->flags = DV_CAP_FENCES | DV_CAP_ASYNC_COPY;
    return DV_OK;
}

static dv_result_t ze_mem_info(void *ctx, uint64_t *free_bytes,
                               uint64_t *total_bytes) {
    dv__ze_ctx_t *c = ctx;
    if (c->mem_module_count == 0) {
        *free_bytes = c->total_memory;
        *total_bytes = c->total_memory;
        return dv__native_fail(DV_ERROR_NOT_SUPPORTED, 0, "levelzero: free memory unknown without Sysman "
                        "(run with ZES_ENABLE_SYSMAN=1): set vram_limit");
    }
    uint64_t fr = 0;
    uint64_t tot = 0;
    for (uint32_t i = 0; i < c->mem_module_count; i++) {
        dv_zes_mem_state_t st;
        memset(&st, 0, sizeof(st));
        st.stype = DV_ZES_STRUCTURE_TYPE_MEM_STATE;
        dv_ze_result_t r = dv__ze.zesMemoryGetState(c->mem_modules[i], &st);
        if (r != DV_ZE_RESULT_SUCCESS) {
            return dv__ze_fail(r, "zesMemoryGetState");
        }
        fr += st.free;
        tot += st.size;
    }
    *free_bytes = fr;
    *total_bytes = tot;
    return DV_OK;
}

static dv_result_t ze_reserve(void *ctx, uint64_t size, uint64_t *va) {
    dv__ze_ctx_t *c = ctx;
    void *p = NULL;
    dv_ze_result_t r =
        dv__ze.zeVirtualMemReserve(c->context, NULL, (size_t)size, &p);
    if (r == DV_ZE_RESULT_ERROR_INVALID_NULL_POINTER) {
        /* The spec (up to 1.4) says a NULL start lets the driver choose, but
         * also lists it as an invalid null pointer, and validation layers of
         * that era reject it. Retry once with a hint the driver may ignore;
         * the alignment check below still applies. */
        r = dv__ze.zeVirtualMemReserve(c->context,
                                       (const void *)(uintptr_t)c->granularity,
                                       (size_t)size, &p);
    }
    if (r != DV_ZE_RESULT_SUCCESS) {
        return dv__ze_fail(r, "zeVirtualMemReserve");
    }
    if ((uintptr_t)p % c->granularity != 0) {
        (void)dv__ze.zeVirtualMemFree(c->context, p, (size_t)size);
        return dv__native_fail(DV_ERROR_BACKEND, 0, "levelzero: zeVirtualMemReserve returned %p, not "
                        "aligned to %llu",
                        p, (unsigned long long)c->granularity);
    }
    *va = (uint64_t)(uintptr_t)p;
    return DV_OK;
}

static dv_result_t ze_unreserve(void *ctx, uint64_t va, uint64_t size) {
    dv__ze_ctx_t *c = ctx;
    dv_ze_result_t r = dv__ze.zeVirtualMemFree(
        c->context, (const void *)(uintptr_t)va, (size_t)size);
    return r == DV_ZE_RESULT_SUCCESS ? DV_OK
                                     : dv__ze_fail(r, "zeVirtualMemFree");
}

static dv_result_t ze_create(void *ctx, uint64_t size, dv_hal_mem_t *mem) {
    dv__ze_ctx_t *c = ctx;
    dv_ze_physical_mem_desc_t desc;
    memset(&desc, 0, sizeof(desc));
    desc.stype = DV_ZE_STRUCTURE_TYPE_PHYSICAL_MEM_DESC;
    desc.size = (size_t)size;
    dv_ze_physical_mem_handle_t h = NULL;
    dv_ze_result_t r =
        dv__ze.zePhysicalMemCreate(c->context, c->device, &desc, &h);
    if (r != DV_ZE_RESULT_SUCCESS) {
        return dv__ze_fail(r, "zePhysicalMemCreate");
    }
    *mem = (dv_hal_mem_t)(uintptr_t)h;
    return DV_OK;
}

static dv_result_t ze_release(void *ctx, dv_hal_mem_t mem) {
    dv__ze_ctx_t *c = ctx;
    dv_ze_result_t r = dv__ze.zePhysicalMemDestroy(
        c->context, (dv_ze_physical_mem_handle_t)(uintptr_t)mem);
    return r == DV_ZE_RESULT_SUCCESS ? DV_OK
                                     : dv__ze_fail(r, "zePhysicalMemDestroy");
}

static dv_result_t ze_map(void *ctx, uint64_t va, uint64_t size,
                          dv_hal_mem_t mem) {
    dv__ze_ctx_t *c = ctx;
    dv_ze_result_t r = dv__ze.zeVirtualMemMap(
        c->context, (const void *)(uintptr_t)va, (size_t)size,
        (dv_ze_physical_mem_handle_t)(uintptr_t)mem, 0,
        DV_ZE_MEMORY_ACCESS_ATTRIBUTE_READWRITE);
    return r == DV_ZE_RESULT_SUCCESS ? DV_OK
                                     : dv__ze_fail(r, "zeVirtualMemMap");
}

static dv_result_t ze_unmap(void *ctx, uint64_t va, uint64_t size) {
    dv__ze_ctx_t *c = ctx;
    dv_ze_result_t r = dv__ze.zeVirtualMemUnmap(
        c->context, (const void *)(uintptr_t)va, (size_t)size);
    return r == DV_ZE_RESULT_SUCCESS ? DV_OK
                                     : dv__ze_fail(r, "zeVirtualMemUnmap");
}

static const dv_hal_ops_t ze_ops = {
    .version = DV_HAL_VERSION,
    .name = "levelzero",
    .probe = ze_probe,
    .init = ze_init,
    .fini = ze_fini,
    .get_caps = ze_get_caps,
    .mem_info = ze_mem_info,
    .reserve = ze_reserve,
    .unreserve = ze_unreserve,
    .create = ze_create,
    .release = ze_release,
    .map = ze_map,
    .unmap = ze_unmap,
    .fence_record = dv__ze_fence_record,
    .fence_query = dv__ze_fence_query,
    .fence_wait = dv__ze_fence_wait,
    .fence_destroy = dv__ze_fence_destroy,
    .stream_create = dv__ze_stream_create,
    .stream_destroy = dv__ze_stream_destroy,
    .stream_synchronize = dv__ze_stream_synchronize,
    .copy_h2d = dv__ze_copy_h2d,
    .copy_d2h = dv__ze_copy_d2h,
    .host_register = dv__ze_host_register,
    .host_unregister = dv__ze_host_unregister,
    .last_native_error = dv__native_get,
    .stream_check = dv__ze_stream_check,
};

const dv_hal_ops_t *dv_hal_levelzero(void) { return &ze_ops; }
