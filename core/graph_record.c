/*
 * graph_record.c - the recordings of an allocation graph's scopes, and
 * the matching of a pass against them. Data model: core/graph.h.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * A scope's recording is a trie of events (ALLOC with its size and range,
 * FREE naming a range by serial, PUSH naming a nested scope). A pass starts
 * at the root; at each point the next event of the pass is compared with
 * the variants recorded there, most recently used first:
 *  - ALLOC matches a variant of the same size whose range has no live byte
 *    now (so a range still alive from an earlier pass, a rogue, is never
 *    handed out twice, and a ping-pong pattern settles on two variants);
 *  - FREE matches a variant freeing the same range;
 *  - PUSH matches a variant of the same name, whose own trie the nested
 *    pass then walks.
 * The first event that matches nothing makes the pass leave its recording:
 * from there on events are appended (a new variant at that point, then a
 * chain after it). Leaving a point where passes had gone on before, or
 * ended, is a break; leaving an empty point is just recording (a first
 * pass, or one that goes past where an aborted pass stopped).
 *
 * Each point keeps at most max_variants; beyond that the least recently
 * used is dropped with everything after it. A dropped range that is not
 * live becomes a zombie (graph_space.c), one that is live an orphan.
 *
 * Dropping walks a subtree without recursion (the chains are as long as
 * the passes): next/alt form a binary tree that is rotated into a list as
 * it is freed, and nested scopes' roots wait on a list threaded through
 * their unused `alt`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/graph.h"

#define PATH_MUL 0x100000001b3ull

static char *str_dup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) {
        memcpy(d, s, n);
    }
    return d;
}

static dv__gev_t *ev_new(uint8_t kind) {
    dv__gev_t *e = calloc(1, sizeof(*e));
    if (e) {
        e->kind = kind;
    }
    return e;
}

/* ---- dropping ------------------------------------------------------------- */

static void drop_tree(dv__dev_t *dev, dv__graph_t *g, dv__gev_t *t) {
    dv__gev_t *pending = NULL;
    while (t || pending) {
        if (!t) {
            t = pending;
            pending = t->alt;
            t->alt = NULL;
        }
        if (t->next) {
            /* Rotate: the first follower becomes the parent. */
            dv__gev_t *l = t->next;
            t->next = l->alt;
            l->alt = t;
            t = l;
            continue;
        }
        dv__gev_t *after = t->alt;
        if (t->kind == DV__GEV_PUSH && t->child) {
            t->child->alt = pending;
            pending = t->child;
        }
        if (t->kind == DV__GEV_ALLOC && t->range) {
            dv__gspace_drop(dev, g, t->range);
        }
        free(t->name);
        free(t);
        t = after;
    }
}

void dv__grec_drop_all(dv__dev_t *dev, dv__graph_t *g) {
    for (uint32_t k = 0; k < g->ntops; k++) {
        drop_tree(dev, g, g->tops[k].root);
        free(g->tops[k].name);
    }
    g->ntops = 0;
    while (g->orphans) {
        dv__gev_t *e = g->orphans;
        g->orphans = e->alt;
        e->alt = NULL;
        drop_tree(dev, g, e);
    }
}

/* ---- the pass's position -------------------------------------------------- */

static void path_step(dv__gframe_t *f, const dv__gev_t *e) {
    f->path = (f->path ^ (uint64_t)(uintptr_t)e) * PATH_MUL;
    f->path ^= f->path >> 29;
}

/* Variant `a` at f's point matched: move to it (and to the front). */
static void advance(dv__graph_t *g, dv__gframe_t *f, dv__gev_t *a) {
    dv__gev_t *p = f->pos;
    if (p->next != a) {
        dv__gev_t **pp = &p->next;
        while (*pp != a) {
            pp = &(*pp)->alt;
        }
        *pp = a->alt;
        a->alt = p->next;
        p->next = a;
    }
    a->used = ++g->clock;
    f->pos = a;
    path_step(f, a);
}

static void describe(const dv__gev_t *e, char *buf, size_t len) {
    if (!e) {
        snprintf(buf, len, "the end of the scope");
    } else if (e->kind == DV__GEV_ALLOC) {
        snprintf(buf, len, "an allocation of %llu bytes",
                 (unsigned long long)e->size);
    } else if (e->kind == DV__GEV_FREE) {
        snprintf(buf, len, "a free of range #%llu",
                 (unsigned long long)e->serial);
    } else {
        snprintf(buf, len, "scope '%s'", e->name);
    }
}

/* The pass leaves its recording at f's point, with `what` (not appended
 * yet: call before append). */
static void leave(dv__gframe_t *f, const char *what) {
    f->changed = 1;
    if (f->recording) {
        return;
    }
    f->recording = 1;
    const dv__gev_t *p = f->pos;
    if (p->next || p->ends) {
        char had[96];
        describe(p->next, had, sizeof(had));
        f->broke = 1;
        snprintf(f->why, sizeof(f->why),
                 "graph break in scope '%s': %s where the recording has %s%s",
                 f->name, what, had, p->next && p->next->alt ? " (or another "
                 "variant)" : "");
    }
}

/* The pass needs to record at f's point while the graph's stream is being
 * captured: give up on it (graph.h, "Capture"). */
static void lose(dv__gframe_t *f, const char *what) {
    const dv__gev_t *p = f->pos;
    if (!f->recording && (p->next || p->ends)) {
        char had[96];
        describe(p->next, had, sizeof(had));
        f->broke = 1;
        snprintf(f->why, sizeof(f->why),
                 "graph break in scope '%s' during a capture: %s where the "
                 "recording has %s; left to the normal allocator",
                 f->name, what, had);
    }
    f->lost = 1;
    f->changed = 1;
}

/* Is the graph's stream being captured (so recording must not call the
 * driver)? */
static int graph_capturing(dv__dev_t *dev, const dv__graph_t *g) {
    uint32_t slot;
    return dev->hal.stream_is_capturing &&
           dv__stream_slot_locked(dev, g->stream, "dv_graph_alloc", &slot) ==
               DV_OK &&
           dv__stream_capturing_locked(dev, slot);
}

/* Record e as the newest variant at f's point and move to it. */
static void append(dv__dev_t *dev, dv__graph_t *g, dv__gframe_t *f,
                   dv__gev_t *e) {
    dv__gev_t *p = f->pos;
    e->alt = p->next;
    p->next = e;
    e->used = ++g->clock;
    uint32_t n = 1;
    dv__gev_t **lru = NULL;
    for (dv__gev_t **pp = &e->alt; *pp; pp = &(*pp)->alt) {
        n++;
        if (!lru || (*pp)->used < (*lru)->used) {
            lru = pp;
        }
    }
    if (n > g->max_variants && lru) {
        dv__gev_t *victim = *lru;
        *lru = victim->alt;
        victim->alt = NULL;
        drop_tree(dev, g, victim);
        g->st.variants_dropped++;
    }
    f->pos = e;
    path_step(f, e);
}

/* ---- events --------------------------------------------------------------- */

static dv_result_t push_top(dv__graph_t *g, const char *name, dv__gev_t **root,
                            const char **stored) {
    for (uint32_t k = 0; k < g->ntops; k++) {
        if (strcmp(g->tops[k].name, name) == 0) {
            *root = g->tops[k].root;
            *stored = g->tops[k].name;
            return DV_OK;
        }
    }
    if (g->ntops == g->tcap) {
        uint32_t cap = g->tcap ? g->tcap * 2 : 8;
        dv__gtop_t *t = realloc(g->tops, cap * sizeof(*t));
        if (!t) {
            return dv__fail(DV_ERROR_OUT_OF_HOST_MEMORY, "dv_graph_push");
        }
        g->tops = t;
        g->tcap = cap;
    }
    char *nm = str_dup(name);
    dv__gev_t *r = ev_new(DV__GEV_ROOT);
    if (!nm || !r) {
        free(nm);
        free(r);
        return dv__fail(DV_ERROR_OUT_OF_HOST_MEMORY, "dv_graph_push");
    }
    g->tops[g->ntops++] = (dv__gtop_t){nm, r};
    *root = r;
    *stored = nm;
    return DV_OK;
}

dv_result_t dv__grec_push(dv__graph_t *g, dv__gframe_t *f, const char *name,
                          dv__gev_t **root, const char **stored) {
    if (!f) {
        return push_top(g, name, root, stored);
    }
    for (dv__gev_t *a = f->recording ? NULL : f->pos->next; a; a = a->alt) {
        if (a->kind == DV__GEV_PUSH && strcmp(a->name, name) == 0) {
            if (!f->lost) {
                advance(g, f, a);
            }
            *root = a->child;
            *stored = a->name;
            return DV_OK;
        }
    }
    dv__gev_t *e = ev_new(DV__GEV_PUSH);
    char *nm = str_dup(name);
    dv__gev_t *r = ev_new(DV__GEV_ROOT);
    if (!e || !nm || !r) {
        free(e);
        free(nm);
        free(r);
        return dv__fail(DV_ERROR_OUT_OF_HOST_MEMORY, "dv_graph_push");
    }
    e->name = nm;
    e->child = r;
    if (f->lost) {
        /* Keep the scope's own recording as it was: the nested pass runs
         * on a scope that hangs nowhere, freed when the graph is. */
        e->alt = g->orphans;
        g->orphans = e;
    } else {
        char what[DV__G_MAX_NAME + 16];
        snprintf(what, sizeof(what), "scope '%s'", name);
        leave(f, what);
        append(g->dev, g, f, e);
    }
    *root = r;
    *stored = nm;
    return DV_OK;
}

dv_result_t dv__grec_alloc(dv__dev_t *dev, dv__graph_t *g, dv__gframe_t *f,
                           uint64_t size, dv__grange_t **out, int *replayed) {
    for (dv__gev_t *a = f->recording ? NULL : f->pos->next; a; a = a->alt) {
        if (a->kind == DV__GEV_ALLOC && a->size == size &&
            dv__gmem_fits(g, a->range)) {
            dv_result_t r = dv__gmem_take(g, a->range);
            if (r != DV_OK) {
                return r;
            }
            advance(g, f, a);
            *out = a->range;
            *replayed = 1;
            return DV_OK;
        }
    }
    char what[64];
    snprintf(what, sizeof(what), "an allocation of %llu bytes",
             (unsigned long long)size);
    if (graph_capturing(dev, g)) {
        lose(f, what);
        return DV_OFFLOADED;
    }
    if (g->nzombies) {
        dv__gspace_reap(dev, g); /* recording calls the driver anyway */
    }
    dv__gev_t *e = ev_new(DV__GEV_ALLOC);
    if (!e) {
        return dv__fail(DV_ERROR_OUT_OF_HOST_MEMORY, "dv_graph_alloc");
    }
    dv__grange_t *r = NULL;
    dv_result_t rc = dv__gmem_place(dev, g, size, &r);
    if (rc != DV_OK) {
        free(e);
        return rc;
    }
    e->size = size;
    e->range = r;
    r->ev = e;
    g->st.ranges++;
    leave(f, what);
    append(dev, g, f, e);
    *out = r;
    *replayed = 0;
    return DV_OK;
}

dv_result_t dv__grec_free(dv__dev_t *dev, dv__graph_t *g, dv__gframe_t *f,
                          const dv__grange_t *r) {
    for (dv__gev_t *a = f->recording ? NULL : f->pos->next; a; a = a->alt) {
        if (a->kind == DV__GEV_FREE && a->serial == r->serial) {
            advance(g, f, a);
            return DV_OK;
        }
    }
    dv__gev_t *e = ev_new(DV__GEV_FREE);
    if (!e) {
        return dv__fail(DV_ERROR_OUT_OF_HOST_MEMORY, "dv_graph_free");
    }
    e->serial = r->serial;
    char what[64];
    snprintf(what, sizeof(what), "a free of range #%llu",
             (unsigned long long)r->serial);
    leave(f, what);
    append(dev, g, f, e);
    return DV_OK;
}

void dv__grec_end(dv__graph_t *g, dv__gframe_t *f) {
    (void)g;
    if (f->lost) {
        f->root->path_known = 0; /* the pass was not followed to its end */
        f->changed = 1;
        return;
    }
    dv__gev_t *p = f->pos;
    if (!p->ends) {
        if (!f->recording && p->next) {
            char had[96];
            describe(p->next, had, sizeof(had));
            f->broke = 1;
            snprintf(f->why, sizeof(f->why),
                     "graph break in scope '%s': the end of the scope where "
                     "the recording has %s",
                     f->name, had);
        }
        p->ends = 1;
        f->recording = 1; /* the recording changed: not a replay */
    }
    dv__gev_t *root = f->root;
    if (!root->path_known || root->path != f->path) {
        f->changed = 1; /* another path than last time: other addresses */
    }
    root->path = f->path;
    root->path_known = 1;
}
