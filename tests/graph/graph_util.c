/*
 * graph_util.c - see graph_util.h.
 * SPDX-License-Identifier: Apache-2.0
 */
#include "graph_util.h"

#include <string.h>

#include "inject.h"

static int tg_cpu = -1; /* addresses are CPU pointers (set by tg_graph) */

int tg_host_accessible(dv_device_t *dev) {
    dv_device_caps_t c;
    TD_OK(dv_device_get_caps(dev, &c));
    return (c.flags & DV_CAP_HOST_ACCESSIBLE) != 0;
}

dv_graph_t *tg_graph(dv_device_t *dev, void *stream, uint64_t page,
                     uint32_t flags) {
    dv_graph_options_t o;
    dv_graph_options_init(&o);
    o.stream = stream;
    o.page_size = page;
    o.flags = flags;
    dv_graph_t *g = NULL;
    TD_OK(dv_graph_create(dev, &o, &g));
    cr_assert_not_null(g);
    tg_cpu = tg_host_accessible(dev);
    return g;
}

dv_graph_stats_t tg_stats(dv_device_t *dev, dv_graph_t *g) {
    dv_graph_stats_t st;
    TD_OK(dv_graph_get_stats(dev, g, &st));
    return st;
}

static uint64_t mark_word(uint64_t tag, uint64_t off) {
    return (tag * 0x9e3779b97f4a7c15ull) ^ (off + 1);
}

/* Unaligned-safe accesses: a mark may sit at any byte of an allocation. */
static void put(uint64_t at, uint64_t v) {
    memcpy((void *)(uintptr_t)at, &v, sizeof(v));
}

static uint64_t get(uint64_t at) {
    uint64_t v;
    memcpy(&v, (const void *)(uintptr_t)at, sizeof(v));
    return v;
}

void tg_mark(uint64_t ptr, uint64_t size, uint64_t tag) {
    if (tg_cpu != 1 || size < 8) {
        return;
    }
    for (uint64_t off = 0; off + 8 <= size; off += 4096) {
        put(ptr + off, mark_word(tag, off));
    }
    put(ptr + size - 8, mark_word(tag, size));
}

int tg_marked(uint64_t ptr, uint64_t size, uint64_t tag) {
    if (tg_cpu != 1 || size < 8) {
        return 1;
    }
    for (uint64_t off = 0; off + 8 <= size; off += 4096) {
        if (get(ptr + off) != mark_word(tag, off)) {
            return 0;
        }
    }
    return get(ptr + size - 8) == mark_word(tag, size);
}

uint64_t tg_alloc(dv_device_t *dev, dv_graph_t *g, uint64_t size) {
    uint64_t p = 0;
    dv_graph_stats_t st = tg_stats(dev, g);
    TD_OK(dv_graph_alloc(dev, g, size, st.stream, &p));
    cr_assert_neq(p, 0);
    cr_assert_eq(p % DV_GRAPH_ALIGNMENT, 0, "address 0x%llx not aligned",
                 (unsigned long long)p);
    tg_mark(p, size, p ^ size);
    return p;
}

void tg_free(dv_device_t *dev, dv_graph_t *g, uint64_t ptr, uint64_t size) {
    cr_assert(tg_marked(ptr, size, ptr ^ size),
              "allocation 0x%llx of %llu bytes was overwritten while live",
              (unsigned long long)ptr, (unsigned long long)size);
    TD_OK(dv_graph_free(dev, g, ptr, NULL));
}

int tg_pop(dv_device_t *dev, dv_graph_t *g) {
    int changed = -1;
    TD_OK(dv_graph_pop(dev, g, &changed));
    cr_assert(changed == 0 || changed == 1);
    return changed;
}

void tg_script(dv_device_t *dev, dv_graph_t *g, const tg_op_t *ops, int n,
               tg_run_t *run) {
    memset(run, 0, sizeof(*run));
    for (int i = 0; i < n; i++) {
        const tg_op_t *o = &ops[i];
        int ch = -1;
        switch (o->op) {
        case 'A':
            run->addr[o->slot] = tg_alloc(dev, g, o->size);
            run->size[o->slot] = o->size;
            break;
        case 'F':
            tg_free(dev, g, run->addr[o->slot], run->size[o->slot]);
            break;
        case 'P':
            TD_OK(dv_graph_push(dev, g, o->name));
            break;
        case 'O':
            run->changed[run->pops++ % 16] = tg_pop(dev, g);
            break;
        case 'I':
            TD_OK(dv_graph_iterate(dev, g, o->name, &ch));
            run->changed[run->pops++ % 16] = ch;
            break;
        default:
            cr_assert_fail("bad script op %c", o->op);
        }
    }
    td_check(dev);
}

dv_device_t *tg_open_counted(uint64_t limit_pages) {
    td_inject_arm(td_hal(), 0, DV_ERROR_BACKEND); /* never fails, counts */
    dv_device_options_t o;
    td_options(&o, limit_pages);
    dv_device_t *dev = NULL;
    TD_OK(dv_device_open_hal(td_inject_ops(), &o, &dev));
    return dev;
}

long tg_calls(void) { return td_inject_calls(NULL); }
