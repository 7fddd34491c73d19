/*
 * handle.h - opaque handles that are validated before anything is
 * dereferenced, and that never alias a live object once dead.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * A handle is a 64-bit value, not an address:
 *
 *     bits 63..56  tag: DV__HANDLE_TAG | kind  (junk pointers fail here)
 *     bits 55..20  generation of the slot (36 bits)
 *     bits 19..0   slot index in a process-wide table
 *
 * The table is made of chunks that are allocated on first use and never
 * freed or moved, so a lookup is two loads and a compare and never touches
 * freed memory, whatever value it is given. A slot's generation grows each
 * time it is reused; freed slots are reused oldest-first, and a slot whose
 * generation would wrap is retired for good. So a dead handle can never
 * equal a live one: a destroyed VBAR's handle stays dead even after
 * millions of create/destroy cycles.
 *
 * Contract:
 *  - dv__handle_new: a fresh handle of `kind` for `obj` (non-NULL), or 0 when
 *    the table is full (1M live objects) or host memory is short.
 *  - dv__handle_get: the object of a live handle of that kind, else NULL.
 *    Lock-free; safe against concurrent new/free of other handles. Freeing
 *    a handle while another thread still uses its object is the caller's
 *    error (as with free), but even then no lookup reads freed memory.
 *  - dv__handle_free: kills a live handle (1), or does nothing (0) for a dead
 *    or junk one. Later lookups of it return NULL.
 *  - Every function is thread-safe.
 */
#ifndef DV_CORE_HANDLE_H
#define DV_CORE_HANDLE_H

#include <stddef.h>
#include <stdint.h>

#include "base/os.h"

typedef enum dv__handle_kind {
    DV__HK_DEVICE = 1,
    DV__HK_VBAR = 2,
    DV__HK_HOST_STREAM = 3, /* the host backend's simulated streams */
    DV__HK_HOSTBUF = 4,     /* host I/O (core/io.h) */
    DV__HK_FILE = 5,
    DV__HK_READER = 6,
    DV__HK_DEVBUF = 7,
    DV__HK_GRAPH = 8,       /* allocation graphs (core/graph.c) */
    DV__HK_SCHEDULE = 9,    /* streaming schedules (core/schedule.c) */
    DV__HK_COUNT_ = 16      /* kinds fit the low 4 bits of the tag */
} dv__handle_kind_t;

#define DV__HANDLE_TAG 0xd0u
#define DV__HANDLE_INDEX_BITS 20
#define DV__HANDLE_GEN_BITS 36
#define DV__HANDLE_CHUNK_BITS 10
#define DV__HANDLE_CHUNK (1u << DV__HANDLE_CHUNK_BITS)
#define DV__HANDLE_CHUNKS (1u << (DV__HANDLE_INDEX_BITS - DV__HANDLE_CHUNK_BITS))

typedef struct dv__handle_slot {
    volatile uint64_t key; /* the live handle, 0 while free */
    void *obj;             /* written before key is published */
    uint64_t gen;          /* last generation handed out (under the lock) */
    uint32_t next_free;    /* free-list link (under the lock) */
    uint32_t retired;      /* generation exhausted: never reused */
} dv__handle_slot_t;

/* The table's chunks; a NULL entry has never been used. */
extern dv__handle_slot_t *volatile dv__handle_chunks[DV__HANDLE_CHUNKS];

uint64_t dv__handle_new(dv__handle_kind_t kind, void *obj);
int dv__handle_free(uint64_t handle, dv__handle_kind_t kind);

static inline void *dv__handle_get(uint64_t h, dv__handle_kind_t kind) {
    if ((h >> 56) != (uint64_t)(DV__HANDLE_TAG | (unsigned)kind)) {
        return NULL;
    }
    uint32_t idx = (uint32_t)(h & ((1u << DV__HANDLE_INDEX_BITS) - 1));
    dv__handle_slot_t *chunk = (dv__handle_slot_t *)dv__atomic_load_ptr(
        (void *const volatile *)&dv__handle_chunks[idx >> DV__HANDLE_CHUNK_BITS]);
    if (!chunk) {
        return NULL;
    }
    dv__handle_slot_t *s = &chunk[idx & (DV__HANDLE_CHUNK - 1)];
    return dv__atomic_load_u64(&s->key) == h ? s->obj : NULL;
}

/* Handles travel through the public API as pointers. */
static inline uint64_t dv__handle_of(const void *p) {
    return (uint64_t)(uintptr_t)p;
}

#endif /* DV_CORE_HANDLE_H */
