/*
 * fake_cuda.h - shared state of the simulated CUDA driver (fake_cuda.c:
 * init, devices, contexts, symbol table; fake_cuda_stream.c: streams and
 * events; fake_cuda_mem.c: address space, physical memory, copies, host
 * registration).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef DV_TESTS_FAKE_CUDA_H
#define DV_TESTS_FAKE_CUDA_H

#include <pthread.h>
#include <stdint.h>

#include "hal/cuda/cuda_abi.h"

#define FK_EXPORT __attribute__((visibility("default")))
#define FK_GRAN (2ull << 20)
#define FK_MAX_DEV 8
#define FK_ERROR_UNKNOWN 999
#define FK_ERROR_ALREADY_REGISTERED 712
#define FK_ERROR_NOT_REGISTERED 713

/* A context: one of fk_primary[], or made by cuCtxCreate (then on a list
 * of fake_cuda.c, looked up by address). */
typedef struct fk_ctx {
    struct fk_ctx *next;
    int dev;
} fk_ctx_t;

/* Streams, events and physical allocations stay on a driver-wide list
 * until destroyed, as a real driver tracks them: a handle the caller drops
 * (after an injected failure, say) is not a leak of the caller's. A stream
 * or event handle is the address of its fk_obj_t, found on fk_objs by
 * pointer equality before anything reads it; a destroyed one moves to the
 * graveyard and is never freed, so its address is never handed out again. */
typedef enum fk_kind { FK_STREAM = 1, FK_EVENT = 2 } fk_kind_t;

typedef struct fk_obj { /* streams and events */
    struct fk_obj *next;
    fk_kind_t kind;
    fk_ctx_t *ctx; /* the context current when it was created */
} fk_obj_t;

typedef struct fk_range { /* reservations, mappings, allocations, pins */
    struct fk_range *next;
    uint64_t va;
    uint64_t size;
    void *mem;  /* mapping: its fk_mem_t */
    int access; /* mapping: cuMemSetAccess done */
    int access_dev; /* mapping: the device cuMemSetAccess granted */
} fk_range_t;

typedef struct fk_mem {
    struct fk_mem *next;
    uint32_t magic;
    int fd;
    int dev;
    int released;
    int maps;
    uint64_t size;
} fk_mem_t;

#define FK_MEM_MAGIC 0x3e3u

extern pthread_mutex_t fk_lock;
extern int fk_inited;
extern int fk_devices;
extern uint64_t fk_capacity;
extern uint64_t fk_used[FK_MAX_DEV];
extern int fk_primary_refs[FK_MAX_DEV];
extern fk_range_t *fk_reserved, *fk_mapped, *fk_allocs, *fk_pinned;
extern fk_ctx_t fk_primary[FK_MAX_DEV];
extern int fk_capturing; /* DV_FAKE_CUDA_CAPTURING */
extern fk_mem_t *fk_mems;
extern char fk_fail_name[64];
extern long fk_fail_nth;
extern long fk_fail_seen;
extern _Thread_local fk_ctx_t *fk_stack[16];
extern _Thread_local int fk_depth;

fk_ctx_t *fk_current(void);
int fk_inject(const char *name);
fk_range_t *fk_find(fk_range_t *list, uint64_t va, uint64_t size);
fk_range_t *fk_overlap(fk_range_t *list, uint64_t va, uint64_t size);
int fk_push_range(fk_range_t **list, uint64_t va, uint64_t size, void *mem);
void fk_unlink(fk_range_t **list, fk_range_t *victim);
int fk_accessible(uint64_t va, uint64_t size);
int fk_ready(void);
int fk_env_int(const char *name, int dflt);
/* Is `s` usable as a stream in the current context? CUDA_SUCCESS for NULL,
 * CU_STREAM_LEGACY, CU_STREAM_PER_THREAD (the current context's default
 * streams) and live streams of the current context;
 * CUDA_ERROR_INVALID_CONTEXT for a live stream of another context;
 * CUDA_ERROR_INVALID_HANDLE for anything else (destroyed, junk). */
dv_cu_result fk_stream_arg(dv_cu_stream s);
/* Context `c` is destroyed: its streams and events go to the graveyard. */
void fk_bury_objects_of(const fk_ctx_t *c);

#define NEED_INIT()                                                            \
    do {                                                                       \
        if (!fk_ready()) {                                                     \
            return DV_CU_ERROR_NOT_INITIALIZED;                                \
        }                                                                      \
    } while (0)

#define NEED_CTX()                                                             \
    do {                                                                       \
        NEED_INIT();                                                           \
        if (!fk_current()) {                                                   \
            return DV_CU_ERROR_INVALID_CONTEXT;                                \
        }                                                                      \
    } while (0)

#define NEED_DEV(d)                                                            \
    do {                                                                       \
        NEED_INIT();                                                           \
        if ((d) < 0 || (d) >= fk_devices) {                                    \
            return DV_CU_ERROR_INVALID_DEVICE;                                 \
        }                                                                      \
    } while (0)

/* Streams and events (fake_cuda_stream.c). Streams run synchronously:
 * every command is done when it returns, so events are always complete. */
dv_cu_result fk_event_create(dv_cu_event *e, unsigned int flags);
dv_cu_result fk_event_record(dv_cu_event e, dv_cu_stream s);
dv_cu_result fk_event_check(dv_cu_event e); /* query and synchronize */
dv_cu_result fk_event_destroy(dv_cu_event e);
dv_cu_result fk_stream_create(dv_cu_stream *s, unsigned int flags);
dv_cu_result fk_stream_check(dv_cu_stream s); /* query and synchronize */
dv_cu_result fk_stream_destroy(dv_cu_stream s);
dv_cu_result fk_stream_get_ctx(dv_cu_stream s, dv_cu_context *ctx);
dv_cu_result fk_stream_wait_event(dv_cu_stream s, dv_cu_event e,
                                  unsigned int flags);
dv_cu_result fk_stream_is_capturing(dv_cu_stream s,
                                    dv_cu_stream_capture_status *status);

dv_cu_result fk_mem_get_info(size_t *free_b, size_t *total_b);
dv_cu_result fk_granularity(size_t *g, const dv_cu_mem_allocation_prop *prop,
                            dv_cu_granularity_flags option);
dv_cu_result fk_address_reserve(dv_cu_deviceptr *ptr, size_t size, size_t align,
                                dv_cu_deviceptr addr, unsigned long long flags);
dv_cu_result fk_address_free(dv_cu_deviceptr ptr, size_t size);
dv_cu_result fk_mem_create(dv_cu_mem_handle *h, size_t size,
                           const dv_cu_mem_allocation_prop *prop,
                           unsigned long long flags);
dv_cu_result fk_mem_release(dv_cu_mem_handle h);
dv_cu_result fk_mem_map(dv_cu_deviceptr va, size_t size, size_t offset,
                        dv_cu_mem_handle h, unsigned long long flags);
dv_cu_result fk_mem_set_access(dv_cu_deviceptr va, size_t size,
                               const dv_cu_mem_access_desc *desc, size_t count);
dv_cu_result fk_mem_unmap(dv_cu_deviceptr va, size_t size);
dv_cu_result fk_mem_alloc(dv_cu_deviceptr *p, size_t size);
dv_cu_result fk_mem_free(dv_cu_deviceptr p);
dv_cu_result fk_mem_alloc_async(dv_cu_deviceptr *p, size_t size,
                                dv_cu_stream s);
dv_cu_result fk_mem_free_async(dv_cu_deviceptr p, dv_cu_stream s);
dv_cu_result fk_copy_check(uint64_t dev_va, size_t n, dv_cu_stream s);
dv_cu_result fk_memcpy_htod(dv_cu_deviceptr dst, const void *src, size_t n,
                            dv_cu_stream s);
dv_cu_result fk_memcpy_dtoh(void *dst, dv_cu_deviceptr src, size_t n,
                            dv_cu_stream s);
dv_cu_result fk_memcpy_dtod(dv_cu_deviceptr dst, dv_cu_deviceptr src, size_t n,
                            dv_cu_stream s);
dv_cu_result fk_memset_d8(dv_cu_deviceptr dst, unsigned char v, size_t n,
                          dv_cu_stream s);
dv_cu_result fk_host_register(void *p, size_t n, unsigned int flags);
dv_cu_result fk_host_unregister(void *p);
/* cuPointerGetAttribute, for the tests only (not in cuda_abi.h): answers
 * FK_POINTER_ATTRIBUTE_DEVICE_ORDINAL for addresses under a mapping, with
 * the device the mapped allocation was created on. */
#define FK_POINTER_ATTRIBUTE_DEVICE_ORDINAL 9
dv_cu_result fk_pointer_get_attribute(void *data, int attribute,
                                      dv_cu_deviceptr ptr);

#endif /* DV_TESTS_FAKE_CUDA_H */
