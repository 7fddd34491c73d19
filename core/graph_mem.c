/*
 * graph_mem.c - an allocation graph's physical pages: which of their bytes
 * are live, placement of new ranges on bytes that are not, and the budget
 * those pages are charged to. Data model: core/graph.h.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Live bytes are kept per physical page as sorted spans, one per live range
 * touching the page, so "may this recorded range be handed out now?" costs
 * a binary search per page of the range and no driver call.
 *
 * Placement of a new range of B bytes (B rounded up to DV__G_ALIGN), best
 * first:
 *  1. B fits a hole of a page that holds live bytes: the smallest such
 *     hole (one page, no new memory).
 *  2. Else the range is stitched from pieces, which virtual mapping allows
 *     in any order: the largest free tail of a partly live page, then whole
 *     pages with nothing live, then the smallest free head of another
 *     partly live page that holds the rest. Unless that needs whole pages
 *     while a single page would do (B <= page), then one free page.
 * Whole free pages are the graph's pages with nothing live (lowest index
 * first), then new pages. So the graph's pages never exceed what its live
 * bytes need plus the holes left between them, and a new page is created
 * only when the free bytes cannot hold the range.
 *
 * A new page is charged to the device's budget before it is created: when
 * the budget is short the pool is released and weight pages are evicted
 * (dv__reclaim_locked, the same walk as framework allocations), and an
 * out-of-memory answer from the backend evicts more and retries.
 */
#include <stdlib.h>
#include <string.h>

#include "core/graph.h"

#define NEW_PAGE UINT32_MAX

/* ---- spans -------------------------------------------------------------- */

/* The bytes [*a, *b) of r in the physical page of its virtual page i. */
static void range_piece(const dv__graph_t *g, const dv__grange_t *r,
                        uint32_t i, uint32_t *a, uint32_t *b) {
    uint64_t ps = g->page_size;
    uint64_t lo = (uint64_t)i * ps;
    uint64_t s = r->off, e = r->off + r->bytes;
    *a = (uint32_t)(s > lo ? s - lo : 0);
    *b = (uint32_t)(e - lo < ps ? e - lo : ps);
}

/* Index of the first span that ends after `a`. */
static uint32_t span_lower(const dv__gpage_t *p, uint32_t a) {
    uint32_t lo = 0, hi = p->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (p->span[mid].b <= a) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static int span_overlaps(const dv__gpage_t *p, uint32_t a, uint32_t b) {
    uint32_t k = span_lower(p, a);
    return k < p->n && p->span[k].a < b;
}

static int span_insert(dv__gpage_t *p, uint32_t a, uint32_t b) {
    if (p->n == p->cap) {
        uint32_t cap = p->cap ? p->cap * 2 : 4;
        dv__gspan_t *s = realloc(p->span, cap * sizeof(*s));
        if (!s) {
            return 0;
        }
        p->span = s;
        p->cap = cap;
    }
    uint32_t k = span_lower(p, a);
    memmove(&p->span[k + 1], &p->span[k], (p->n - k) * sizeof(*p->span));
    p->span[k] = (dv__gspan_t){a, b};
    p->n++;
    return 1;
}

static void span_remove(dv__gpage_t *p, uint32_t a) {
    uint32_t k = span_lower(p, a);
    if (k < p->n && p->span[k].a == a) {
        memmove(&p->span[k], &p->span[k + 1], (p->n - k - 1) * sizeof(*p->span));
        p->n--;
    }
}

/* ---- live ranges ---------------------------------------------------------- */

int dv__gmem_fits(const dv__graph_t *g, const dv__grange_t *r) {
    if (r->live) {
        return 0;
    }
    for (uint32_t i = 0; i < r->npages; i++) {
        uint32_t a, b;
        range_piece(g, r, i, &a, &b);
        if (span_overlaps(&g->pages[r->pages[i]], a, b)) {
            return 0;
        }
    }
    return 1;
}

dv_result_t dv__gmem_take(dv__graph_t *g, dv__grange_t *r) {
    for (uint32_t i = 0; i < r->npages; i++) {
        uint32_t a, b;
        range_piece(g, r, i, &a, &b);
        if (!span_insert(&g->pages[r->pages[i]], a, b)) {
            while (i-- > 0) {
                range_piece(g, r, i, &a, &b);
                span_remove(&g->pages[r->pages[i]], a);
            }
            return dv__fail(DV_ERROR_OUT_OF_HOST_MEMORY,
                            "dv_graph_alloc: span table of a graph page");
        }
    }
    r->live = 1;
    r->lprev = NULL;
    r->lnext = g->live;
    if (g->live) {
        g->live->lprev = r;
    }
    g->live = r;
    return DV_OK;
}

void dv__gmem_release(dv__dev_t *dev, dv__graph_t *g, dv__grange_t *r) {
    for (uint32_t i = 0; i < r->npages; i++) {
        uint32_t a, b;
        range_piece(g, r, i, &a, &b);
        span_remove(&g->pages[r->pages[i]], a);
    }
    if (r->lprev) {
        r->lprev->lnext = r->lnext;
    } else {
        g->live = r->lnext;
    }
    if (r->lnext) {
        r->lnext->lprev = r->lprev;
    }
    r->live = 0;
    dv__gspace_orphan_freed(dev, g, r);
}

dv__grange_t *dv__gmem_find(const dv__graph_t *g, uint64_t ptr, int *inside) {
    *inside = 0;
    for (uint32_t k = 0; k < g->narenas; k++) {
        const dv__garena_t *a = &g->arenas[k];
        uint64_t span = a->pages * g->page_size;
        if (a->pages && ptr >= a->base && ptr - a->base < span) {
            *inside = 1;
            dv__grange_t *r = a->first[(ptr - a->base) >> g->page_shift];
            return r && r->va == ptr ? r : NULL;
        }
    }
    return NULL;
}

/* ---- placement ------------------------------------------------------------ */

typedef struct plan {
    uint32_t off;    /* offset of the range in its first page */
    uint32_t n;      /* pages */
    uint32_t first;  /* partly live page whose tail starts it, or NEW_PAGE */
    uint32_t last;   /* partly live page whose head ends it, or NEW_PAGE */
} plan_t;

/* The smallest hole of at least `bytes` in a partly live page. */
static int best_hole(const dv__graph_t *g, uint64_t bytes, uint32_t *page,
                     uint32_t *at) {
    uint64_t best = UINT64_MAX;
    for (uint32_t k = 0; k < g->npages; k++) {
        const dv__gpage_t *p = &g->pages[k];
        uint32_t prev = 0;
        for (uint32_t s = 0; s <= p->n && p->n; s++) {
            uint32_t end = s < p->n ? p->span[s].a : (uint32_t)g->page_size;
            uint64_t len = end - prev;
            if (len >= bytes && len < best) {
                best = len;
                *page = k;
                *at = prev;
            }
            if (s < p->n) {
                prev = p->span[s].b;
            }
        }
    }
    return best != UINT64_MAX;
}

static void make_plan(const dv__graph_t *g, uint64_t bytes, plan_t *pl) {
    uint64_t ps = g->page_size;
    uint32_t page = 0, at = 0; /* set by the fit search when it succeeds */
    pl->first = pl->last = NEW_PAGE;
    if (bytes <= ps && best_hole(g, bytes, &page, &at)) {
        pl->off = at;
        pl->n = 1;
        pl->first = page;
        return;
    }
    uint64_t tail = 0, head = UINT64_MAX;
    for (uint32_t k = 0; k < g->npages; k++) {
        const dv__gpage_t *p = &g->pages[k];
        uint64_t t = p->n ? ps - p->span[p->n - 1].b : 0;
        if (t > tail) {
            tail = t;
            pl->first = k;
        }
    }
    uint64_t rest = (bytes - tail) % ps;
    uint64_t whole = (bytes - tail) / ps;
    for (uint32_t k = 0; rest && k < g->npages; k++) {
        const dv__gpage_t *p = &g->pages[k];
        if (p->n && k != pl->first && p->span[0].a >= rest &&
            p->span[0].a < head) {
            head = p->span[0].a;
            pl->last = k;
        }
    }
    uint64_t fresh = whole + (rest && pl->last == NEW_PAGE);
    if (bytes <= ps && fresh > 0) {
        /* One free page beats pieces that need one anyway. */
        pl->first = pl->last = NEW_PAGE;
        pl->off = 0;
        pl->n = 1;
        return;
    }
    pl->off = pl->first == NEW_PAGE ? 0 : (uint32_t)(ps - tail);
    pl->n = (uint32_t)((pl->first != NEW_PAGE) + whole + (rest != 0));
}

/* Room in the budget for `bytes` more, evicting if need be. */
static dv_result_t make_room(dv__dev_t *dev, uint64_t bytes) {
    uint64_t budget = 0, freed = 0;
    dv_result_t r = dv__budget_locked(dev, 0, &budget);
    if (r != DV_OK) {
        return r;
    }
    uint64_t used = dv__used_locked(dev);
    if (used <= budget && bytes <= budget - used) {
        return DV_OK;
    }
    r = dv__reclaim_locked(dev, used + bytes - budget, &freed);
    if (r != DV_OK) {
        return r;
    }
    used = dv__used_locked(dev);
    if (used <= budget && bytes <= budget - used) {
        return DV_OK;
    }
    return dv__fail(DV_ERROR_OUT_OF_DEVICE_MEMORY,
                    "dv_graph_alloc: a graph page of %llu bytes does not fit: "
                    "budget %llu, in use %llu after evicting %llu",
                    (unsigned long long)bytes, (unsigned long long)budget,
                    (unsigned long long)used, (unsigned long long)freed);
}

/* Append a new physical page to the graph. */
static dv_result_t page_create(dv__dev_t *dev, dv__graph_t *g) {
    uint64_t ps = g->page_size;
    if (g->npages == g->pcap) {
        uint32_t cap = g->pcap ? g->pcap * 2 : 16;
        dv__gpage_t *p = realloc(g->pages, cap * sizeof(*p));
        if (!p) {
            return dv__fail(DV_ERROR_OUT_OF_HOST_MEMORY, "graph: page table");
        }
        g->pages = p;
        g->pcap = cap;
    }
    dv_result_t r = make_room(dev, ps);
    dv_hal_mem_t m = 0;
    for (;;) {
        if (r != DV_OK) {
            return r;
        }
        g->st.backend_calls++;
        r = dev->hal.create(dev->ctx, ps, &m);
        if (r == DV_OK) {
            break;
        }
        r = dv__hal_fail(dev, r, "create (graph page)");
        if (r != DV_ERROR_OUT_OF_DEVICE_MEMORY) {
            return r;
        }
        /* The budget was optimistic (another process): evict, retry. */
        uint64_t freed = 0;
        dv_result_t e = dv__reclaim_locked(dev, ps, &freed);
        if (e != DV_OK || !freed) {
            return e != DV_OK ? e : r;
        }
        dev->st.oom_retries++;
        r = DV_OK;
    }
    memset(&g->pages[g->npages], 0, sizeof(*g->pages));
    g->pages[g->npages++].mem = m;
    dev->graph_bytes += ps;
    return DV_OK;
}

/* Undo the pages created since there were `keep`. */
static void pages_shrink(dv__dev_t *dev, dv__graph_t *g, uint32_t keep) {
    while (g->npages > keep) {
        dv__gpage_t *p = &g->pages[--g->npages];
        g->st.backend_calls++;
        if (dev->hal.release(dev->ctx, p->mem) != DV_OK) {
            dv__log(DV_LOG_ERROR, "graph: release of an unused page failed");
        }
        dev->graph_bytes -= g->page_size;
        free(p->span);
    }
}

/* Fill the plan's pages: its partly live ends, free pages in between
 * (lowest first), new pages for the rest. */
static dv_result_t fill_pages(dv__dev_t *dev, dv__graph_t *g,
                              const plan_t *pl, uint32_t *pages) {
    uint32_t k = 0, n = pl->n, scan = 0;
    uint32_t lo = pl->first != NEW_PAGE ? 1 : 0;
    uint32_t hi = pl->last != NEW_PAGE ? n - 1 : n;
    if (lo) {
        pages[0] = pl->first;
    }
    if (hi < n) {
        pages[n - 1] = pl->last;
    }
    for (k = lo; k < hi; k++) {
        while (scan < g->npages && g->pages[scan].n) {
            scan++;
        }
        if (scan == g->npages) {
            dv_result_t r = page_create(dev, g);
            if (r != DV_OK) {
                return r;
            }
        }
        pages[k] = scan++;
    }
    return DV_OK;
}

dv_result_t dv__gmem_place(dv__dev_t *dev, dv__graph_t *g, uint64_t size,
                           dv__grange_t **out) {
    uint64_t bytes = (size + DV__G_ALIGN - 1) / DV__G_ALIGN * DV__G_ALIGN;
    plan_t pl;
    make_plan(g, bytes, &pl);
    uint32_t keep = g->npages;
    dv__grange_t *r = calloc(1, sizeof(*r));
    uint32_t *pages = calloc(pl.n, sizeof(*pages));
    if (!r || !pages) {
        free(r);
        free(pages);
        return dv__fail(DV_ERROR_OUT_OF_HOST_MEMORY,
                        "dv_graph_alloc: range of %u pages", pl.n);
    }
    r->size = size;
    r->bytes = bytes;
    r->off = pl.off;
    r->pages = pages;
    dv_result_t e = fill_pages(dev, g, &pl, pages);
    if (e == DV_OK) {
        r->npages = pl.n;
        e = dv__gspace_alloc(dev, g, r);
        if (e != DV_OK) {
            r->npages = 0;
        }
    }
    if (e == DV_OK) {
        r->va = dv__gspace_page_va(g, r, 0) + r->off;
        e = dv__gspace_map(dev, g, r);
        if (e == DV_OK) {
            e = dv__gmem_take(g, r);
        }
        if (e != DV_OK && dv__gspace_unmap(dev, g, r) != DV_OK) {
            /* Cannot even undo the mapping: keep the range as a zombie so
             * teardown unmaps the rest; nothing else refers to it. */
            dv__gspace_link(g, r);
            dv__gspace_drop(dev, g, r);
            return e;
        }
        if (e != DV_OK) {
            dv__gspace_give(g, r);
        }
    }
    if (e != DV_OK) {
        pages_shrink(dev, g, keep);
        free(pages);
        free(r);
        return e;
    }
    r->serial = ++g->serial;
    dv__gspace_link(g, r);
    *out = r;
    return DV_OK;
}

/* ---- invariants and freeing -------------------------------------------- */

#define BROKEN(...) return dv__fail(DV_ERROR_INVARIANT, __VA_ARGS__)

static dv_result_t check_pages(const dv__graph_t *g, uint64_t *spans,
                               uint64_t *maps) {
    for (uint32_t k = 0; k < g->npages; k++) {
        const dv__gpage_t *p = &g->pages[k];
        for (uint32_t s = 0; s < p->n; s++) {
            const dv__gspan_t *x = &p->span[s];
            if (x->a >= x->b || x->b > g->page_size || x->a % DV__G_ALIGN ||
                (s && p->span[s - 1].b > x->a)) {
                BROKEN("graph page %u: span %u [%u, %u) out of order", k, s,
                       x->a, x->b);
            }
        }
        *spans += p->n;
        *maps += p->maps;
    }
    return DV_OK;
}

static dv_result_t check_range(const dv__graph_t *g, const dv__grange_t *r) {
    if (r->npages && (r->arena >= g->narenas ||
                      g->arenas[r->arena].first[r->first] != r)) {
        BROKEN("graph range %p: not in its arena's page map", (const void *)r);
    }
    if (r->mapped > r->npages || (r->ev && (r->ev->range != r ||
                                            r->mapped != r->npages))) {
        BROKEN("graph range %p: %u of %u pages mapped, event %p",
               (const void *)r, r->mapped, r->npages, (const void *)r->ev);
    }
    if ((r->zombie && (r->live || r->ev)) || (r->live && !r->mapped)) {
        BROKEN("graph range %p: zombie %u live %u recorded %d",
               (const void *)r, r->zombie, r->live, r->ev != NULL);
    }
    for (uint32_t i = 0; i < r->npages; i++) {
        if (r->pages[i] >= g->npages) {
            BROKEN("graph range %p: page %u beyond %u", (const void *)r,
                   r->pages[i], g->npages);
        }
        uint32_t a, b;
        range_piece(g, r, i, &a, &b);
        const dv__gpage_t *p = &g->pages[r->pages[i]];
        uint32_t k = span_lower(p, a);
        /* A live range's pieces are spans of its pages; a range that is
         * not live may alias a live one's bytes exactly, so no check. */
        if (r->live && !(k < p->n && p->span[k].a == a && p->span[k].b == b)) {
            BROKEN("graph range %p: piece %u [%u, %u) missing from its "
                   "page's spans",
                   (const void *)r, i, a, b);
        }
    }
    return DV_OK;
}

dv_result_t dv__gmem_check(const dv__dev_t *dev, const dv__graph_t *g) {
    (void)dev;
    uint64_t spans = 0, maps = 0, pieces = 0, mapped = 0, used = 0;
    uint64_t zombies = 0, nlive = 0, recorded = 0;
    dv_result_t e = check_pages(g, &spans, &maps);
    if (e != DV_OK) {
        return e;
    }
    for (const dv__grange_t *r = g->all; r; r = r->anext) {
        e = check_range(g, r);
        if (e != DV_OK) {
            return e;
        }
        pieces += r->live ? r->npages : 0;
        mapped += r->mapped;
        used += r->live ? r->size : 0;
        zombies += r->zombie;
        nlive += r->live;
        recorded += r->ev != NULL;
    }
    uint64_t listed = 0;
    for (const dv__grange_t *r = g->live; r; r = r->lnext) {
        if (!r->live || ++listed > nlive) {
            BROKEN("graph live list holds a range that is not live");
        }
    }
    if (listed != nlive) {
        BROKEN("graph live list has %llu of %llu live ranges",
               (unsigned long long)listed, (unsigned long long)nlive);
    }
    if (recorded != g->st.ranges || mapped != g->mapped_pages) {
        BROKEN("graph: %llu recorded ranges counted %llu, %llu mapped pages "
               "counted %llu",
               (unsigned long long)recorded, (unsigned long long)g->st.ranges,
               (unsigned long long)mapped,
               (unsigned long long)g->mapped_pages);
    }
    if (spans != pieces || maps != mapped || used != g->st.used ||
        zombies != g->nzombies) {
        BROKEN("graph: %llu spans for %llu live pieces, %llu page maps for "
               "%llu mapped pages, used %llu recorded %llu, zombies %llu/%llu",
               (unsigned long long)spans, (unsigned long long)pieces,
               (unsigned long long)maps, (unsigned long long)mapped,
               (unsigned long long)used, (unsigned long long)g->st.used,
               (unsigned long long)zombies, (unsigned long long)g->nzombies);
    }
    return DV_OK;
}

void dv__gmem_free(dv__graph_t *g) {
    for (uint32_t k = 0; k < g->npages; k++) {
        free(g->pages[k].span);
    }
    free(g->pages);
    for (uint32_t k = 0; k < g->narenas; k++) {
        free(g->arenas[k].first);
        free(g->arenas[k].ext);
    }
    free(g->arenas);
    free(g->tops);
    free(g->frames);
}
