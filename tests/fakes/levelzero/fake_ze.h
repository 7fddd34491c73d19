/*
 * fake_ze.h - internals of the simulated Level Zero driver (libdv_fake_ze).
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * The simulation is a Level Zero *driver*: the real loader (libze_loader)
 * opens it through ZE_ENABLE_ALT_DRIVERS=/path/libdv_fake_ze.so and asks
 * it for its DDI tables, so every call the backend makes goes through the
 * loader (and its validation layer when ZE_ENABLE_VALIDATION_LAYER=1).
 * Device memory is host memory: reservations are PROT_NONE mappings,
 * physical allocations are memfd-backed shared pages mapped with
 * mremap(old_size = 0), which maps the same pages again at a fixed
 * address. Linux only.
 *
 * Configuration (read at zeInit):
 *   DVSIM_ZE_DEVICES      number of GPU devices, 1..4 (default 1)
 *   DVSIM_ZE_CAPACITY     bytes of device memory per device; K/M/G suffix
 *                         allowed (default 4G). zePhysicalMemCreate past it
 *                         returns ZE_RESULT_ERROR_OUT_OF_DEVICE_MEMORY.
 *   DVSIM_ZE_EVENT_DELAY  a signaled event reports NOT_READY to this many
 *                         zeEventQueryStatus calls first (default 0), to
 *                         exercise the caller's not-ready path.
 *   DVSIM_ZE_STRICT=1     zeContextDestroy aborts when the context still
 *                         owns objects (leak check for the tests).
 *   ZES_ENABLE_SYSMAN=1   as on real drivers: Sysman calls accept core
 *                         device handles; otherwise they fail with
 *                         ZE_RESULT_ERROR_UNINITIALIZED.
 *
 * Page size (zeVirtualMemQueryPageSize): 64 KiB for requests below 2 MiB,
 * 2 MiB from 2 MiB up. Physical sizes, map sizes and map addresses must be
 * multiples of the page size for their size, as on real hardware.
 * Everything is guarded by one lock; copies are synchronous. Command lists
 * are looked up by address and never freed once destroyed, so junk and
 * dead list handles get an error, never a crash, and never alias a new
 * list (fake_ze_queue.c); dvsim_ze_list_barriers(list) counts the barriers
 * appended to a live list (a test hook).
 */
#ifndef DV_TESTS_FAKE_ZE_H
#define DV_TESTS_FAKE_ZE_H

#include <level_zero/ze_api.h>
#include <level_zero/ze_ddi.h>
#include <level_zero/zes_api.h>
#include <level_zero/zes_ddi.h>
#include <level_zero/zet_ddi.h>

#include <pthread.h>
#include <stdint.h>

#define DVSIM_ZE_MAX_DEVICES 4
#define DVSIM_ZE_SMALL_PAGE (64u << 10)
#define DVSIM_ZE_LARGE_PAGE (2u << 20)

enum {
    DVSIM_ZE_MAGIC_DRIVER = 0x7a736472,
    DVSIM_ZE_MAGIC_DEVICE,
    DVSIM_ZE_MAGIC_CONTEXT,
    DVSIM_ZE_MAGIC_LIST,
    DVSIM_ZE_MAGIC_POOL,
    DVSIM_ZE_MAGIC_EVENT,
    DVSIM_ZE_MAGIC_PHYS,
    DVSIM_ZE_MAGIC_MEMMOD,
    DVSIM_ZE_MAGIC_DEAD = 0x64656164
};

struct _ze_driver_handle_t {
    uint32_t magic;
};

struct _zes_mem_handle_t {
    uint32_t magic;
    struct _ze_device_handle_t *device;
};

struct _ze_device_handle_t {
    uint32_t magic;
    int index;
    uint64_t capacity;
    uint64_t used; /* bytes of live physical allocations */
    struct _zes_mem_handle_t memmod;
};

struct _ze_context_handle_t {
    uint32_t magic;
    long live; /* lists, pools, physical allocations, reservations */
};

struct _ze_command_list_handle_t {
    uint32_t magic;
    ze_context_handle_t context;
    ze_device_handle_t device;
    struct _ze_command_list_handle_t *next; /* live or graveyard list */
    uint64_t barriers; /* zeCommandListAppendBarrier calls */
};

struct _ze_event_pool_handle_t {
    uint32_t magic;
    ze_context_handle_t context;
    uint32_t count;
    uint32_t flags;
    uint32_t live_events;
    uint8_t *used; /* count flags */
};

struct _ze_event_handle_t {
    uint32_t magic;
    ze_event_pool_handle_t pool;
    uint32_t index;
    int signaled;
    int pending; /* NOT_READY answers left before a signal shows */
};

struct _ze_physical_mem_handle_t {
    uint32_t magic;
    ze_context_handle_t context;
    ze_device_handle_t device;
    void *backing; /* a shared view of the pages, never handed out */
    size_t size;
    long maps;
};

/* Shared state, guarded by dvsim_ze.lock. */
typedef struct dvsim_ze_state {
    pthread_mutex_t lock;
    int initialized;
    int sysman;
    int strict;
    int event_delay;
    int device_count;
    struct _ze_driver_handle_t driver;
    struct _ze_device_handle_t devices[DVSIM_ZE_MAX_DEVICES];
} dvsim_ze_state_t;

extern dvsim_ze_state_t dvsim_ze;

static inline int dvsim_ze_device_ok(ze_device_handle_t d) {
    return d && d->magic == DVSIM_ZE_MAGIC_DEVICE;
}

/* Memory half (fake_ze_mem.c). Callers hold no lock. */
size_t dvsim_ze_page_size(size_t size);
/* 1 when [p, p + size) touches a reservation where nothing is mapped (a
 * copy there would fault), else 0. Caller holds the lock. */
int dvsim_ze_unmapped_locked(const void *p, size_t size);
/* Queue half (fake_ze_queue.c). */
void dvsim_ze_fill_command_list(ze_command_list_dditable_t *t);
void dvsim_ze_fill_event_pool(ze_event_pool_dditable_t *t);
void dvsim_ze_fill_event(ze_event_dditable_t *t);
/* Memory half, continued. */
void dvsim_ze_fill_virtual_mem(ze_virtual_mem_dditable_t *t);
void dvsim_ze_fill_physical_mem(ze_physical_mem_dditable_t *t);
void dvsim_ze_fill_sysman_device(zes_device_dditable_t *t);
void dvsim_ze_fill_sysman_memory(zes_memory_dditable_t *t);

#endif /* DV_TESTS_FAKE_ZE_H */
