/*
 * graph_util.h - helpers of the allocation-graph suites (tests/graph).
 * SPDX-License-Identifier: Apache-2.0
 *
 * Scripts: a pass of a scope written as a list of ops, run against a graph,
 * recording the address each allocation got (per slot) and what each pop
 * said. Marks: on a backend whose addresses are CPU pointers, a live
 * allocation carries a pattern (every 4 KiB and its last 8 bytes) that is
 * checked when it is freed, so two live allocations sharing physical bytes
 * are caught whatever their addresses.
 */
#ifndef DV_TEST_GRAPH_UTIL_H
#define DV_TEST_GRAPH_UTIL_H

#include "dynvram_graph.h"
#include "testdev.h"

#define TG_MIB (1ull << 20)
#define TG_SLOTS 64

typedef struct tg_op {
    char op;          /* 'A' alloc, 'F' free, 'P' push, 'O' pop, 'I' iterate */
    int slot;         /* A, F: which allocation */
    uint64_t size;    /* A */
    const char *name; /* P, I */
} tg_op_t;

#define TG_A(slot, size) {'A', (slot), (size), NULL}
#define TG_F(slot) {'F', (slot), 0, NULL}
#define TG_P(name) {'P', 0, 0, (name)}
#define TG_O() {'O', 0, 0, NULL}
#define TG_I(name) {'I', 0, 0, (name)}

typedef struct tg_run {
    uint64_t addr[TG_SLOTS]; /* address of each slot's last allocation */
    uint64_t size[TG_SLOTS];
    int changed[16];         /* what each pop / iterate said, in order */
    int pops;
} tg_run_t;

/* A graph on `stream` with the given page (0 = default) and flags. */
dv_graph_t *tg_graph(dv_device_t *dev, void *stream, uint64_t page,
                     uint32_t flags);
dv_graph_stats_t tg_stats(dv_device_t *dev, dv_graph_t *g);
/* Allocate on the graph's stream; must be taken (DV_OK). Marks it. */
uint64_t tg_alloc(dv_device_t *dev, dv_graph_t *g, uint64_t size);
/* Check the marks, then free; must succeed. */
void tg_free(dv_device_t *dev, dv_graph_t *g, uint64_t ptr, uint64_t size);
/* Pop; must succeed; returns `changed`. */
int tg_pop(dv_device_t *dev, dv_graph_t *g);
/* Run a script (marks checked at every free); asserts every call. */
void tg_script(dv_device_t *dev, dv_graph_t *g, const tg_op_t *ops, int n,
               tg_run_t *run);
/* Marks (no-ops where addresses are not CPU pointers). */
int tg_host_accessible(dv_device_t *dev);
void tg_mark(uint64_t ptr, uint64_t size, uint64_t tag);
int tg_marked(uint64_t ptr, uint64_t size, uint64_t tag);
/* Every call's backend calls so far, when the device runs on the counting
 * wrapper (tg_open_counted). */
dv_device_t *tg_open_counted(uint64_t limit_pages);
long tg_calls(void);

#define TG_LEN(a) ((int)(sizeof(a) / sizeof((a)[0])))

#endif
