/*
 * graph_space.c - an allocation graph's address space: arenas of reserved
 * virtual pages, the mapping of a range onto its physical pages, deferred
 * unmapping of dropped ranges (zombies) and teardown. Data model:
 * core/graph.h.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Address space is cheap, so every recorded range gets virtual pages of its
 * own; an arena's free runs are kept sorted and coalesced (first fit). An
 * arena is reserved when no run is long enough and given back only at
 * teardown. A range's virtual pages are unmapped only once the GPU is done
 * with them: a dropped range waits, as a zombie, for a sequence number of
 * the graph's stream (the fences of fence.c), which is never waited on
 * while that stream is being captured.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/graph.h"

/* ---- free runs ------------------------------------------------------------ */

/* Room for one more run: a free never fails. The runs are separated by
 * ranges, so there are at most (ranges in the arena) + 1 of them. */
static int ext_reserve(dv__garena_t *a, uint32_t want) {
    if (want <= a->cap) {
        return 1;
    }
    uint32_t cap = a->cap ? a->cap * 2 : 16;
    while (cap < want) {
        cap *= 2;
    }
    dv__gext_t *e = realloc(a->ext, cap * sizeof(*e));
    if (!e) {
        return 0;
    }
    a->ext = e;
    a->cap = cap;
    return 1;
}

/* Take n pages from the first run long enough; UINT64_MAX if none. */
static uint64_t ext_take(dv__garena_t *a, uint64_t n) {
    for (uint32_t k = 0; k < a->next; k++) {
        dv__gext_t *e = &a->ext[k];
        if (e->n >= n) {
            uint64_t at = e->at;
            e->at += n;
            e->n -= n;
            if (e->n == 0) {
                memmove(e, e + 1, (a->next - k - 1) * sizeof(*e));
                a->next--;
            }
            return at;
        }
    }
    return UINT64_MAX;
}

static void ext_give(dv__garena_t *a, uint64_t at, uint64_t n) {
    uint32_t k = 0;
    while (k < a->next && a->ext[k].at < at) {
        k++;
    }
    int join_prev = k > 0 && a->ext[k - 1].at + a->ext[k - 1].n == at;
    int join_next = k < a->next && at + n == a->ext[k].at;
    if (join_prev && join_next) {
        a->ext[k - 1].n += n + a->ext[k].n;
        memmove(&a->ext[k], &a->ext[k + 1], (a->next - k - 1) * sizeof(*a->ext));
        a->next--;
    } else if (join_prev) {
        a->ext[k - 1].n += n;
    } else if (join_next) {
        a->ext[k].at = at;
        a->ext[k].n += n;
    } else {
        /* ext_reserve at allocation time left room for this run. */
        memmove(&a->ext[k + 1], &a->ext[k], (a->next - k) * sizeof(*a->ext));
        a->ext[k] = (dv__gext_t){at, n};
        a->next++;
    }
}

static dv_result_t arena_new(dv__dev_t *dev, dv__graph_t *g, uint64_t pages) {
    if (g->narenas == g->acap) {
        uint32_t cap = g->acap ? g->acap * 2 : 2;
        dv__garena_t *a = realloc(g->arenas, cap * sizeof(*a));
        if (!a) {
            return dv__fail(DV_ERROR_OUT_OF_HOST_MEMORY, "graph: arena table");
        }
        g->arenas = a;
        g->acap = cap;
    }
    dv__garena_t a = {0};
    a.pages = pages;
    a.first = calloc((size_t)pages, sizeof(*a.first));
    if (!a.first || !ext_reserve(&a, 16)) {
        free(a.first);
        free(a.ext);
        return dv__fail(DV_ERROR_OUT_OF_HOST_MEMORY,
                        "graph: page map of an arena of %llu pages",
                        (unsigned long long)pages);
    }
    g->st.backend_calls++;
    dv_result_t r = dev->hal.reserve(dev->ctx, pages * g->page_size, &a.base);
    if (r != DV_OK) {
        free(a.first);
        free(a.ext);
        if (r == DV_ERROR_OUT_OF_DEVICE_MEMORY ||
            r == DV_ERROR_OUT_OF_HOST_MEMORY) {
            r = DV_ERROR_ADDRESS_SPACE;
        }
        return dv__hal_fail(dev, r, "reserve (graph arena)");
    }
    a.ext[0] = (dv__gext_t){0, pages};
    a.next = 1;
    g->arenas[g->narenas++] = a;
    return DV_OK;
}

dv_result_t dv__gspace_alloc(dv__dev_t *dev, dv__graph_t *g, dv__grange_t *r) {
    for (int fresh = 0; fresh < 2; fresh++) {
        for (uint32_t k = 0; k < g->narenas; k++) {
            dv__garena_t *a = &g->arenas[k];
            if (!a->pages || !ext_reserve(a, a->nranges + 2)) {
                continue;
            }
            uint64_t at = ext_take(a, r->npages);
            if (at != UINT64_MAX) {
                r->arena = k;
                r->first = at;
                a->first[at] = r;
                a->nranges++;
                return DV_OK;
            }
        }
        if (fresh) {
            break;
        }
        uint64_t pages =
            r->npages > g->arena_pages ? r->npages : g->arena_pages;
        dv_result_t e = arena_new(dev, g, pages);
        if (e != DV_OK) {
            return e;
        }
    }
    return dv__fail(DV_ERROR_OUT_OF_HOST_MEMORY, "graph: free-run table");
}

uint64_t dv__gspace_page_va(const dv__graph_t *g, const dv__grange_t *r,
                            uint32_t i) {
    return g->arenas[r->arena].base + (r->first + i) * g->page_size;
}

/* ---- mapping -------------------------------------------------------------- */

dv_result_t dv__gspace_map(dv__dev_t *dev, dv__graph_t *g, dv__grange_t *r) {
    uint64_t ps = g->page_size;
    while (r->mapped < r->npages) {
        dv__gpage_t *p = &g->pages[r->pages[r->mapped]];
        g->st.backend_calls++;
        dv_result_t e =
            dev->hal.map(dev->ctx, dv__gspace_page_va(g, r, r->mapped), ps,
                         p->mem);
        if (e == DV_OK) {
            p->maps++;
            r->mapped++;
            g->mapped_pages++;
            continue;
        }
        e = dv__hal_fail(dev, e, "map (graph range)");
        if (e != DV_ERROR_OUT_OF_DEVICE_MEMORY) {
            return e;
        }
        /* Page tables are device memory too: make room and retry. */
        char why[512];
        snprintf(why, sizeof(why), "%s", dv_last_error());
        uint64_t freed = 0;
        dv_result_t rr = dv__reclaim_locked(dev, ps, &freed);
        if (rr != DV_OK) {
            return rr;
        }
        if (!freed) {
            return dv__fail(DV_ERROR_OUT_OF_DEVICE_MEMORY,
                            "%s; nothing left to evict", why);
        }
        dev->st.oom_retries++;
    }
    return DV_OK;
}

dv_result_t dv__gspace_unmap(dv__dev_t *dev, dv__graph_t *g, dv__grange_t *r) {
    while (r->mapped > 0) {
        uint32_t i = r->mapped - 1;
        g->st.backend_calls++;
        dv_result_t e = dev->hal.unmap(dev->ctx, dv__gspace_page_va(g, r, i),
                                       g->page_size);
        if (e != DV_OK) {
            return dv__hal_fail(dev, e, "unmap (graph range)");
        }
        g->pages[r->pages[i]].maps--;
        r->mapped = i;
        g->mapped_pages--;
    }
    return DV_OK;
}

void dv__gspace_give(dv__graph_t *g, dv__grange_t *r) {
    if (!r->npages) {
        return;
    }
    dv__garena_t *a = &g->arenas[r->arena];
    if (a->first[r->first] == r) {
        a->first[r->first] = NULL;
    }
    ext_give(a, r->first, r->npages);
    a->nranges--;
    r->npages = 0;
}

/* ---- the list of ranges ---------------------------------------------------- */

void dv__gspace_link(dv__graph_t *g, dv__grange_t *r) {
    r->aprev = NULL;
    r->anext = g->all;
    if (g->all) {
        g->all->aprev = r;
    }
    g->all = r;
}

/* Forget r: address space given back, struct freed. Mapped pages none. */
static void range_free(dv__graph_t *g, dv__grange_t *r) {
    dv__gspace_give(g, r);
    if (r->aprev) {
        r->aprev->anext = r->anext;
    } else {
        g->all = r->anext;
    }
    if (r->anext) {
        r->anext->aprev = r->aprev;
    }
    if (r->zombie) {
        g->nzombies--;
    }
    free(r->pages);
    free(r);
}

void dv__gspace_discard(dv__graph_t *g, dv__grange_t *r) { range_free(g, r); }

/* ---- zombies -------------------------------------------------------------- */

static void make_zombie(dv__dev_t *dev, dv__graph_t *g, dv__grange_t *r) {
    r->zombie = 1;
    g->nzombies++;
    r->zslot = DV__NO_STREAM;
    r->zseq = 0;
    if (!dev->hal.fence_record) {
        return; /* no asynchronous work: idle at once */
    }
    uint32_t slot;
    if (dv__stream_slot_locked(dev, g->stream, "graph", &slot) != DV_OK) {
        r->zseq = DV__G_NO_SEQ; /* unknown: only teardown unmaps it */
        return;
    }
    r->zslot = slot;
    r->zseq = dv__stream_mark_locked(dev, slot);
}

void dv__gspace_drop(dv__dev_t *dev, dv__graph_t *g, dv__grange_t *r) {
    if (r->ev) {
        g->st.ranges--;
    }
    r->ev = NULL;
    if (!r->live) {
        make_zombie(dev, g, r);
    }
}

void dv__gspace_orphan_freed(dv__dev_t *dev, dv__graph_t *g, dv__grange_t *r) {
    if (!r->ev && !r->zombie) {
        make_zombie(dev, g, r);
    }
}

void dv__gspace_reap(dv__dev_t *dev, dv__graph_t *g) {
    dv__grange_t *next;
    for (dv__grange_t *r = g->all; r && g->nzombies; r = next) {
        next = r->anext;
        if (!r->zombie || r->zseq == DV__G_NO_SEQ) {
            continue;
        }
        dv__page_t pg;
        memset(&pg, 0, sizeof(pg));
        pg.stream = r->zslot;
        pg.unpin_seq = r->zseq;
        if (r->zslot != DV__NO_STREAM &&
            (r->zslot >= dev->stream_count || !dev->streams[r->zslot].live)) {
            pg.stream = DV__NO_STREAM; /* its stream was synchronized away */
        }
        if (!dv__page_try_idle_locked(dev, &pg) ||
            dv__gspace_unmap(dev, g, r) != DV_OK) {
            continue; /* not done yet, or the unmap failed: later */
        }
        range_free(g, r);
    }
}

/* ---- quiesce and teardown ------------------------------------------------- */

dv_result_t dv__gspace_quiesce(dv__dev_t *dev, dv__graph_t *g) {
    if (!dev->hal.fence_record) {
        return DV_OK;
    }
    uint32_t slot;
    if (dv__stream_slot_locked(dev, g->stream, "dv_graph_destroy", &slot) !=
        DV_OK) {
        /* The stream was destroyed under the graph: nothing is left queued
         * on it to wait for (dv_stream_destroy finishes its work). */
        dv__log(DV_LOG_DEBUG, "%s", dv_last_error());
        return DV_OK;
    }
    dv__page_t pg;
    memset(&pg, 0, sizeof(pg));
    pg.stream = slot;
    pg.unpin_seq = dv__stream_mark_locked(dev, slot);
    return dv__page_wait_locked(dev, &pg);
}

dv_result_t dv__gspace_teardown(dv__dev_t *dev, dv__graph_t *g) {
    while (g->all) {
        dv_result_t r = dv__gspace_unmap(dev, g, g->all);
        if (r != DV_OK) {
            return r;
        }
        range_free(g, g->all);
    }
    while (g->npages) {
        dv__gpage_t *p = &g->pages[--g->npages];
        g->st.backend_calls++;
        dv_result_t r = dev->hal.release(dev->ctx, p->mem);
        if (r != DV_OK) {
            /* The handle is gone from our books either way (pool trim does
             * the same): report it and go on. */
            dv__hal_fail(dev, r, "release (graph page)");
            dv__log(DV_LOG_ERROR, "%s", dv_last_error());
        }
        dev->graph_bytes -= g->page_size;
        free(p->span);
    }
    for (uint32_t k = 0; k < g->narenas; k++) {
        dv__garena_t *a = &g->arenas[k];
        if (!a->pages) {
            continue;
        }
        g->st.backend_calls++;
        dv_result_t r =
            dev->hal.unreserve(dev->ctx, a->base, a->pages * g->page_size);
        if (r != DV_OK) {
            return dv__hal_fail(dev, r, "unreserve (graph arena)");
        }
        a->pages = 0;
    }
    return DV_OK;
}

void dv__gspace_sizes(const dv__graph_t *g, uint64_t *mapped,
                    uint64_t *reserved) {
    uint64_t v = 0;
    for (uint32_t k = 0; k < g->narenas; k++) {
        v += g->arenas[k].pages;
    }
    *mapped = g->mapped_pages * g->page_size;
    *reserved = v * g->page_size;
}
