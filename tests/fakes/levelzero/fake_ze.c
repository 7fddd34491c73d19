/*
 * fake_ze.c - the simulated Level Zero driver: initialization, driver,
 * device, context, and the DDI table getters the loader calls. Command
 * lists and events live in fake_ze_queue.c, memory in fake_ze_mem.c. See
 * fake_ze.h.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Every getter the loader may look up is exported. Tables are zeroed first
 * and only the entries simulated are filled; the loader's API layer answers
 * ZE_RESULT_ERROR_UNINITIALIZED for a NULL entry, so an unsimulated call
 * fails cleanly instead of crashing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_ze.h"

dvsim_ze_state_t dvsim_ze = {.lock = PTHREAD_MUTEX_INITIALIZER};

static uint64_t zsim_env_u64(const char *name, uint64_t dflt) {
    const char *v = getenv(name);
    if (!v || !*v) {
        return dflt;
    }
    char *end = NULL;
    unsigned long long n = strtoull(v, &end, 0);
    switch (end ? *end : '\0') {
    case 'k':
    case 'K':
        n <<= 10;
        break;
    case 'm':
    case 'M':
        n <<= 20;
        break;
    case 'g':
    case 'G':
        n <<= 30;
        break;
    default:
        break;
    }
    return n;
}

/* ---- global, driver, device ------------------------------------------ */

static ze_result_t ZE_APICALL zsim_init(ze_init_flags_t flags) {
    if (flags != 0 && !(flags & ZE_INIT_FLAG_GPU_ONLY)) {
        return ZE_RESULT_ERROR_UNINITIALIZED; /* no VPU here */
    }
    pthread_mutex_lock(&dvsim_ze.lock);
    if (!dvsim_ze.initialized) {
        uint64_t n = zsim_env_u64("DVSIM_ZE_DEVICES", 1);
        uint64_t cap = zsim_env_u64("DVSIM_ZE_CAPACITY", 4ull << 30);
        if (n < 1) {
            n = 1;
        }
        if (n > DVSIM_ZE_MAX_DEVICES) {
            n = DVSIM_ZE_MAX_DEVICES;
        }
        dvsim_ze.device_count = (int)n;
        dvsim_ze.event_delay = (int)zsim_env_u64("DVSIM_ZE_EVENT_DELAY", 0);
        dvsim_ze.strict = zsim_env_u64("DVSIM_ZE_STRICT", 0) != 0;
        dvsim_ze.sysman = zsim_env_u64("ZES_ENABLE_SYSMAN", 0) != 0;
        dvsim_ze.driver.magic = DVSIM_ZE_MAGIC_DRIVER;
        for (int i = 0; i < dvsim_ze.device_count; i++) {
            ze_device_handle_t d = &dvsim_ze.devices[i];
            d->magic = DVSIM_ZE_MAGIC_DEVICE;
            d->index = i;
            d->capacity = cap;
            d->used = 0;
            d->memmod.magic = DVSIM_ZE_MAGIC_MEMMOD;
            d->memmod.device = d;
        }
        dvsim_ze.initialized = 1;
    }
    pthread_mutex_unlock(&dvsim_ze.lock);
    return ZE_RESULT_SUCCESS;
}

/* The usual two-call count protocol of Level Zero getters. */
static void zsim_fill_count(uint32_t *count, void **out, void *const *items,
                            uint32_t n) {
    if (*count == 0 || !out) {
        *count = n;
        return;
    }
    if (*count > n) {
        *count = n;
    }
    for (uint32_t i = 0; i < *count; i++) {
        out[i] = items[i];
    }
}

static ze_result_t ZE_APICALL zsim_driver_get(uint32_t *count,
                                              ze_driver_handle_t *drivers) {
    if (!dvsim_ze.initialized) {
        return ZE_RESULT_ERROR_UNINITIALIZED;
    }
    if (!count) {
        return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    }
    void *items[1] = {&dvsim_ze.driver};
    zsim_fill_count(count, (void **)drivers, items, 1);
    return ZE_RESULT_SUCCESS;
}

static ze_result_t ZE_APICALL zsim_driver_api_version(ze_driver_handle_t drv,
                                                      ze_api_version_t *v) {
    if (!drv || !v) {
        return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    }
    *v = ZE_API_VERSION_CURRENT;
    return ZE_RESULT_SUCCESS;
}

static ze_result_t ZE_APICALL zsim_driver_props(ze_driver_handle_t drv,
                                                ze_driver_properties_t *p) {
    if (!drv || drv->magic != DVSIM_ZE_MAGIC_DRIVER) {
        return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    }
    if (!p) {
        return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    }
    memset(p->uuid.id, 0x5a, sizeof(p->uuid.id));
    p->driverVersion = 1;
    return ZE_RESULT_SUCCESS;
}

static ze_result_t ZE_APICALL zsim_device_get(ze_driver_handle_t drv,
                                              uint32_t *count,
                                              ze_device_handle_t *devices) {
    if (!drv || drv->magic != DVSIM_ZE_MAGIC_DRIVER) {
        return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    }
    if (!count) {
        return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    }
    void *items[DVSIM_ZE_MAX_DEVICES];
    for (int i = 0; i < dvsim_ze.device_count; i++) {
        items[i] = &dvsim_ze.devices[i];
    }
    zsim_fill_count(count, (void **)devices, items,
                    (uint32_t)dvsim_ze.device_count);
    return ZE_RESULT_SUCCESS;
}

static ze_result_t ZE_APICALL zsim_device_sub(ze_device_handle_t dev,
                                              uint32_t *count,
                                              ze_device_handle_t *subs) {
    if (!dvsim_ze_device_ok(dev)) {
        return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    }
    if (!count) {
        return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    }
    *count = 0;
    return ZE_RESULT_SUCCESS;
}

static ze_result_t ZE_APICALL zsim_device_props(ze_device_handle_t dev,
                                                ze_device_properties_t *p) {
    if (!dvsim_ze_device_ok(dev)) {
        return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    }
    if (!p) {
        return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    }
    if (p->stype != ZE_STRUCTURE_TYPE_DEVICE_PROPERTIES) {
        return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    }
    void *next = p->pNext;
    memset(p, 0, sizeof(*p));
    p->stype = ZE_STRUCTURE_TYPE_DEVICE_PROPERTIES;
    p->pNext = next;
    p->type = ZE_DEVICE_TYPE_GPU;
    p->vendorId = 0x8086;
    p->deviceId = 0xd5a0 + (uint32_t)dev->index;
    p->maxMemAllocSize = dev->capacity;
    p->maxHardwareContexts = 64;
    p->numThreadsPerEU = 8;
    p->physicalEUSimdWidth = 8;
    p->numEUsPerSubslice = 8;
    p->numSubslicesPerSlice = 4;
    p->numSlices = 1;
    p->timerResolution = 1;
    p->timestampValidBits = 64;
    p->kernelTimestampValidBits = 64;
    memset(p->uuid.id, 0xd5, sizeof(p->uuid.id));
    p->uuid.id[0] = (uint8_t)dev->index;
    snprintf(p->name, sizeof(p->name), "dynvram simulated Level Zero GPU %d",
             dev->index);
    return ZE_RESULT_SUCCESS;
}

static ze_result_t ZE_APICALL zsim_device_mem_props(
    ze_device_handle_t dev, uint32_t *count, ze_device_memory_properties_t *p) {
    if (!dvsim_ze_device_ok(dev)) {
        return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    }
    if (!count) {
        return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    }
    if (*count == 0 || !p) {
        *count = 1;
        return ZE_RESULT_SUCCESS;
    }
    if (p[0].stype != ZE_STRUCTURE_TYPE_DEVICE_MEMORY_PROPERTIES) {
        return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    }
    *count = 1;
    p[0].flags = 0;
    p[0].maxClockRate = 1000;
    p[0].maxBusWidth = 4096;
    p[0].totalSize = dev->capacity;
    snprintf(p[0].name, sizeof(p[0].name), "HBM");
    return ZE_RESULT_SUCCESS;
}

static ze_result_t ZE_APICALL
zsim_device_queue_groups(ze_device_handle_t dev, uint32_t *count,
                         ze_command_queue_group_properties_t *p) {
    if (!dvsim_ze_device_ok(dev)) {
        return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    }
    if (!count) {
        return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    }
    if (*count == 0 || !p) {
        *count = 1;
        return ZE_RESULT_SUCCESS;
    }
    *count = 1;
    p[0].flags = ZE_COMMAND_QUEUE_GROUP_PROPERTY_FLAG_COMPUTE |
                 ZE_COMMAND_QUEUE_GROUP_PROPERTY_FLAG_COPY;
    p[0].maxMemoryFillPatternSize = 16;
    p[0].numQueues = 1;
    return ZE_RESULT_SUCCESS;
}

/* ---- context ---------------------------------------------------------- */

static ze_result_t ZE_APICALL zsim_context_create(ze_driver_handle_t drv,
                                                  const ze_context_desc_t *desc,
                                                  ze_context_handle_t *out) {
    if (!drv || drv->magic != DVSIM_ZE_MAGIC_DRIVER) {
        return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    }
    if (!desc || !out) {
        return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    }
    if (desc->stype != ZE_STRUCTURE_TYPE_CONTEXT_DESC) {
        return ZE_RESULT_ERROR_INVALID_ARGUMENT;
    }
    ze_context_handle_t c = calloc(1, sizeof(*c));
    if (!c) {
        return ZE_RESULT_ERROR_OUT_OF_HOST_MEMORY;
    }
    c->magic = DVSIM_ZE_MAGIC_CONTEXT;
    *out = c;
    return ZE_RESULT_SUCCESS;
}

static ze_result_t ZE_APICALL zsim_context_destroy(ze_context_handle_t c) {
    if (!c || c->magic != DVSIM_ZE_MAGIC_CONTEXT) {
        return ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
    }
    pthread_mutex_lock(&dvsim_ze.lock);
    long live = c->live;
    pthread_mutex_unlock(&dvsim_ze.lock);
    if (live != 0) {
        fprintf(stderr,
                "dvsim_ze: zeContextDestroy with %ld live objects "
                "(lists, event pools, physical allocations, reservations)\n",
                live);
        if (dvsim_ze.strict) {
            abort();
        }
        return ZE_RESULT_ERROR_HANDLE_OBJECT_IN_USE;
    }
    c->magic = DVSIM_ZE_MAGIC_DEAD;
    free(c);
    return ZE_RESULT_SUCCESS;
}

static ze_result_t ZE_APICALL zsim_context_status(ze_context_handle_t c) {
    return c && c->magic == DVSIM_ZE_MAGIC_CONTEXT
               ? ZE_RESULT_SUCCESS
               : ZE_RESULT_ERROR_INVALID_NULL_HANDLE;
}

/* ---- DDI table getters --------------------------------------------------- */

static ze_result_t zsim_table(ze_api_version_t version, void *table,
                              size_t size) {
    if (!table) {
        return ZE_RESULT_ERROR_INVALID_NULL_POINTER;
    }
    if (ZE_MAJOR_VERSION(version) != ZE_MAJOR_VERSION(ZE_API_VERSION_CURRENT)) {
        return ZE_RESULT_ERROR_UNSUPPORTED_VERSION;
    }
    memset(table, 0, size);
    return ZE_RESULT_SUCCESS;
}

#define ZSIM_GETTER(fn, type, fill)                                            \
    ZE_DLLEXPORT ze_result_t ZE_APICALL fn(ze_api_version_t version,           \
                                           type *t) {                          \
        ze_result_t r = zsim_table(version, t, sizeof(*t));                    \
        if (r == ZE_RESULT_SUCCESS) {                                          \
            fill;                                                              \
        }                                                                      \
        return r;                                                              \
    }
#define ZSIM_EMPTY (void)0

ZSIM_GETTER(zeGetGlobalProcAddrTable, ze_global_dditable_t,
            t->pfnInit = zsim_init)
ZSIM_GETTER(zeGetDriverProcAddrTable, ze_driver_dditable_t, {
    t->pfnGet = zsim_driver_get;
    t->pfnGetApiVersion = zsim_driver_api_version;
    t->pfnGetProperties = zsim_driver_props;
})
ZSIM_GETTER(zeGetDeviceProcAddrTable, ze_device_dditable_t, {
    t->pfnGet = zsim_device_get;
    t->pfnGetSubDevices = zsim_device_sub;
    t->pfnGetProperties = zsim_device_props;
    t->pfnGetMemoryProperties = zsim_device_mem_props;
    t->pfnGetCommandQueueGroupProperties = zsim_device_queue_groups;
})
ZSIM_GETTER(zeGetContextProcAddrTable, ze_context_dditable_t, {
    t->pfnCreate = zsim_context_create;
    t->pfnDestroy = zsim_context_destroy;
    t->pfnGetStatus = zsim_context_status;
})
ZSIM_GETTER(zeGetCommandListProcAddrTable, ze_command_list_dditable_t,
            dvsim_ze_fill_command_list(t))
ZSIM_GETTER(zeGetEventPoolProcAddrTable, ze_event_pool_dditable_t,
            dvsim_ze_fill_event_pool(t))
ZSIM_GETTER(zeGetEventProcAddrTable, ze_event_dditable_t,
            dvsim_ze_fill_event(t))
ZSIM_GETTER(zeGetVirtualMemProcAddrTable, ze_virtual_mem_dditable_t,
            dvsim_ze_fill_virtual_mem(t))
ZSIM_GETTER(zeGetPhysicalMemProcAddrTable, ze_physical_mem_dditable_t,
            dvsim_ze_fill_physical_mem(t))
ZSIM_GETTER(zesGetDeviceProcAddrTable, zes_device_dditable_t,
            dvsim_ze_fill_sysman_device(t))
ZSIM_GETTER(zesGetMemoryProcAddrTable, zes_memory_dditable_t,
            dvsim_ze_fill_sysman_memory(t))

/* Not simulated: empty tables. */
ZSIM_GETTER(zeGetDeviceExpProcAddrTable, ze_device_exp_dditable_t, ZSIM_EMPTY)
ZSIM_GETTER(zeGetCommandQueueProcAddrTable, ze_command_queue_dditable_t,
            ZSIM_EMPTY)
ZSIM_GETTER(zeGetImageProcAddrTable, ze_image_dditable_t, ZSIM_EMPTY)
ZSIM_GETTER(zeGetImageExpProcAddrTable, ze_image_exp_dditable_t, ZSIM_EMPTY)
ZSIM_GETTER(zeGetFenceProcAddrTable, ze_fence_dditable_t, ZSIM_EMPTY)
ZSIM_GETTER(zeGetEventExpProcAddrTable, ze_event_exp_dditable_t, ZSIM_EMPTY)
ZSIM_GETTER(zeGetModuleProcAddrTable, ze_module_dditable_t, ZSIM_EMPTY)
ZSIM_GETTER(zeGetModuleBuildLogProcAddrTable, ze_module_build_log_dditable_t,
            ZSIM_EMPTY)
ZSIM_GETTER(zeGetKernelProcAddrTable, ze_kernel_dditable_t, ZSIM_EMPTY)
ZSIM_GETTER(zeGetKernelExpProcAddrTable, ze_kernel_exp_dditable_t, ZSIM_EMPTY)
ZSIM_GETTER(zeGetSamplerProcAddrTable, ze_sampler_dditable_t, ZSIM_EMPTY)
ZSIM_GETTER(zeGetMemProcAddrTable, ze_mem_dditable_t, ZSIM_EMPTY)
ZSIM_GETTER(zeGetFabricVertexExpProcAddrTable, ze_fabric_vertex_exp_dditable_t,
            ZSIM_EMPTY)
ZSIM_GETTER(zeGetFabricEdgeExpProcAddrTable, ze_fabric_edge_exp_dditable_t,
            ZSIM_EMPTY)
ZSIM_GETTER(zesGetDriverProcAddrTable, zes_driver_dditable_t, ZSIM_EMPTY)
ZSIM_GETTER(zesGetSchedulerProcAddrTable, zes_scheduler_dditable_t, ZSIM_EMPTY)
ZSIM_GETTER(zesGetPerformanceFactorProcAddrTable,
            zes_performance_factor_dditable_t, ZSIM_EMPTY)
ZSIM_GETTER(zesGetPowerProcAddrTable, zes_power_dditable_t, ZSIM_EMPTY)
ZSIM_GETTER(zesGetFrequencyProcAddrTable, zes_frequency_dditable_t, ZSIM_EMPTY)
ZSIM_GETTER(zesGetEngineProcAddrTable, zes_engine_dditable_t, ZSIM_EMPTY)
ZSIM_GETTER(zesGetStandbyProcAddrTable, zes_standby_dditable_t, ZSIM_EMPTY)
ZSIM_GETTER(zesGetFirmwareProcAddrTable, zes_firmware_dditable_t, ZSIM_EMPTY)
ZSIM_GETTER(zesGetFabricPortProcAddrTable, zes_fabric_port_dditable_t,
            ZSIM_EMPTY)
ZSIM_GETTER(zesGetTemperatureProcAddrTable, zes_temperature_dditable_t,
            ZSIM_EMPTY)
ZSIM_GETTER(zesGetPsuProcAddrTable, zes_psu_dditable_t, ZSIM_EMPTY)
ZSIM_GETTER(zesGetFanProcAddrTable, zes_fan_dditable_t, ZSIM_EMPTY)
ZSIM_GETTER(zesGetLedProcAddrTable, zes_led_dditable_t, ZSIM_EMPTY)
ZSIM_GETTER(zesGetRasProcAddrTable, zes_ras_dditable_t, ZSIM_EMPTY)
ZSIM_GETTER(zesGetDiagnosticsProcAddrTable, zes_diagnostics_dditable_t,
            ZSIM_EMPTY)
ZSIM_GETTER(zetGetDeviceProcAddrTable, zet_device_dditable_t, ZSIM_EMPTY)
ZSIM_GETTER(zetGetContextProcAddrTable, zet_context_dditable_t, ZSIM_EMPTY)
ZSIM_GETTER(zetGetCommandListProcAddrTable, zet_command_list_dditable_t,
            ZSIM_EMPTY)
ZSIM_GETTER(zetGetModuleProcAddrTable, zet_module_dditable_t, ZSIM_EMPTY)
ZSIM_GETTER(zetGetKernelProcAddrTable, zet_kernel_dditable_t, ZSIM_EMPTY)
ZSIM_GETTER(zetGetMetricGroupProcAddrTable, zet_metric_group_dditable_t,
            ZSIM_EMPTY)
ZSIM_GETTER(zetGetMetricGroupExpProcAddrTable, zet_metric_group_exp_dditable_t,
            ZSIM_EMPTY)
ZSIM_GETTER(zetGetMetricProcAddrTable, zet_metric_dditable_t, ZSIM_EMPTY)
ZSIM_GETTER(zetGetMetricStreamerProcAddrTable, zet_metric_streamer_dditable_t,
            ZSIM_EMPTY)
ZSIM_GETTER(zetGetMetricQueryPoolProcAddrTable,
            zet_metric_query_pool_dditable_t, ZSIM_EMPTY)
ZSIM_GETTER(zetGetMetricQueryProcAddrTable, zet_metric_query_dditable_t,
            ZSIM_EMPTY)
ZSIM_GETTER(zetGetTracerExpProcAddrTable, zet_tracer_exp_dditable_t, ZSIM_EMPTY)
ZSIM_GETTER(zetGetDebugProcAddrTable, zet_debug_dditable_t, ZSIM_EMPTY)
