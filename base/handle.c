/*
 * handle.c - the process-wide handle table (contract in handle.h).
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Creating and freeing handles is rare (devices, VBARs, streams), so both
 * take one global mutex; lookups take none. Free slots form a FIFO list so
 * that a slot is reused as late as possible.
 */
#include <stdlib.h>

#include "base/handle.h"

_Static_assert(sizeof(void *) == 8, "handles need 64-bit pointers");

#define NO_SLOT UINT32_MAX
#define GEN_MAX ((1ull << DV__HANDLE_GEN_BITS) - 1)

dv__handle_slot_t *volatile dv__handle_chunks[DV__HANDLE_CHUNKS];

static dv__once_t h_once = DV__ONCE_INIT;
static dv__mutex_t h_lock;
static uint32_t h_next_fresh; /* slots below this have been used */
static uint32_t h_free_head = NO_SLOT, h_free_tail = NO_SLOT;

static void h_init(void) { dv__mutex_init(&h_lock); }

static dv__handle_slot_t *slot_at(uint32_t idx) {
    return &dv__handle_chunks[idx >> DV__HANDLE_CHUNK_BITS]
                             [idx & (DV__HANDLE_CHUNK - 1)];
}

/* A slot index to use, or NO_SLOT when the table is full. Lock held. */
static uint32_t take_slot(void) {
    if (h_free_head != NO_SLOT) {
        uint32_t idx = h_free_head;
        h_free_head = slot_at(idx)->next_free;
        if (h_free_head == NO_SLOT) {
            h_free_tail = NO_SLOT;
        }
        return idx;
    }
    if (h_next_fresh >= (1u << DV__HANDLE_INDEX_BITS)) {
        return NO_SLOT;
    }
    uint32_t c = h_next_fresh >> DV__HANDLE_CHUNK_BITS;
    if (!dv__handle_chunks[c]) {
        dv__handle_slot_t *chunk = calloc(DV__HANDLE_CHUNK, sizeof(*chunk));
        if (!chunk) {
            return NO_SLOT;
        }
        dv__atomic_store_ptr((void *volatile *)&dv__handle_chunks[c], chunk);
    }
    return h_next_fresh++;
}

uint64_t dv__handle_new(dv__handle_kind_t kind, void *obj) {
    if (!obj || (unsigned)kind == 0 || (unsigned)kind >= DV__HK_COUNT_) {
        return 0;
    }
    dv__once(&h_once, h_init);
    dv__mutex_lock(&h_lock);
    uint32_t idx = take_slot();
    uint64_t h = 0;
    if (idx != NO_SLOT) {
        dv__handle_slot_t *s = slot_at(idx);
        s->gen++;
        s->obj = obj;
        h = ((uint64_t)(DV__HANDLE_TAG | (unsigned)kind) << 56) |
            (s->gen << DV__HANDLE_INDEX_BITS) | idx;
        dv__atomic_store_u64(&s->key, h);
    }
    dv__mutex_unlock(&h_lock);
    return h;
}

int dv__handle_free(uint64_t h, dv__handle_kind_t kind) {
    if (!dv__handle_get(h, kind)) {
        return 0;
    }
    uint32_t idx = (uint32_t)(h & ((1u << DV__HANDLE_INDEX_BITS) - 1));
    dv__once(&h_once, h_init);
    dv__mutex_lock(&h_lock);
    dv__handle_slot_t *s = slot_at(idx);
    int live = s->key == h;
    if (live) {
        dv__atomic_store_u64(&s->key, 0);
        s->obj = NULL;
        if (s->gen >= GEN_MAX) {
            s->retired = 1; /* its next handle could equal a dead one */
        } else {
            s->next_free = NO_SLOT;
            if (h_free_tail == NO_SLOT) {
                h_free_head = idx;
            } else {
                slot_at(h_free_tail)->next_free = idx;
            }
            h_free_tail = idx;
        }
    }
    dv__mutex_unlock(&h_lock);
    return live;
}
