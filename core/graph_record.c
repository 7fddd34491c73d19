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
 * Capture tolerance (core/graph.h, "Capture"): a capture pass that meets
 * an event matching nothing at its point looks past the recorded frees
 * that follow (the most recently used variant at each point, at most
 * SKIP_MAX of them) for a match, steps over those frees if it finds one,
 * and otherwise takes the event out of sequence: a free releases its
 * bytes, an allocation inside the capture goes to the framework's
 * allocator. It never appends to the recording.
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

/* Recorded frees a capture pass may step over in a row. */
#define SKIP_MAX 256

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
 * captured, and it had left its recording already: give up on it (graph.h,
 * "Capture"). */
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

/* A capture pass takes `what` out of its recording's order at f's point
 * and goes on replaying (graph.h, "Capture"). */
static void tolerate(dv__gframe_t *f, const char *what) {
    f->changed = 1;
    const dv__gev_t *p = f->pos;
    if (f->broke || !(p->next || p->ends)) {
        return; /* the first difference is the one reported */
    }
    char had[96];
    describe(p->next, had, sizeof(had));
    f->broke = 1;
    snprintf(f->why, sizeof(f->why),
             "graph break in scope '%s' during a capture: %s where the "
             "recording has %s; left to the normal allocator, the pass goes "
             "on replaying",
             f->name, what, had);
}

int dv__grec_capturing(dv__dev_t *dev, const dv__graph_t *g) {
    uint32_t slot;
    return dev->hal.stream_is_capturing &&
           dv__stream_slot_locked(dev, g->stream, "dv_graph_alloc", &slot) ==
               DV_OK &&
           dv__stream_capturing_locked(dev, slot);
}

/* Is f a capture pass (asking the backend once, on a mismatch)? */
static int capture_pass(dv__dev_t *dev, const dv__graph_t *g,
                        dv__gframe_t *f) {
    if (!f->captured && dv__grec_capturing(dev, g)) {
        f->captured = 1;
    }
    return f->captured;
}

/* The point after the recorded free that follows q on its most recently
 * used variant, or NULL when no free follows. A capture pass may step over
 * any recorded free: its range is still live (the framework deferred the
 * free) or free already (freed out of order); either way no byte the
 * pass hands out later can be live, since every replayed range is checked
 * (dv__gmem_fits). */
static dv__gev_t *free_after(const dv__gev_t *q) {
    dv__gev_t *n = q->next;
    return n && n->kind == DV__GEV_FREE ? n : NULL;
}

static dv__grange_t *live_range(const dv__graph_t *g, uint64_t serial) {
    for (dv__grange_t *r = g->live; r; r = r->lnext) {
        if (r->serial == serial) {
            return r;
        }
    }
    return NULL;
}

/* Move f over the recorded frees up to point q (reached from f->pos by
 * free_after). A range still live has its free taken out of sequence. */
static void step_over(dv__graph_t *g, dv__gframe_t *f, const dv__gev_t *q) {
    while (f->pos != q) {
        dv__gev_t *e = f->pos->next;
        dv__grange_t *r = live_range(g, e->serial);
        if (r) {
            r->unseq = 1;
        }
        advance(g, f, e);
        g->st.capture_skips++;
    }
}

/* The variant at point q that an allocation of `size` replays (its range
 * has no live byte), or NULL; *same, if given, receives a variant of that
 * size whose range is not free. */
static dv__gev_t *match_alloc(const dv__graph_t *g, const dv__gev_t *q,
                              uint64_t size, dv__gev_t **same) {
    for (dv__gev_t *a = q->next; a; a = a->alt) {
        if (a->kind != DV__GEV_ALLOC || a->size != size) {
            continue;
        }
        if (dv__gmem_fits(g, a->range)) {
            return a;
        }
        if (same && !*same) {
            *same = a;
        }
    }
    return NULL;
}

static dv__gev_t *match_free(const dv__gev_t *q, uint64_t serial) {
    for (dv__gev_t *a = q->next; a; a = a->alt) {
        if (a->kind == DV__GEV_FREE && a->serial == serial) {
            return a;
        }
    }
    return NULL;
}

static dv__gev_t *match_push(const dv__gev_t *q, const char *name) {
    for (dv__gev_t *a = q->next; a; a = a->alt) {
        if (a->kind == DV__GEV_PUSH && strcmp(a->name, name) == 0) {
            return a;
        }
    }
    return NULL;
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

/* A nested scope pass that bypasses the graph: its PUSH hangs nowhere in
 * f's recording (freed with the graph). */
static dv_result_t push_orphan(dv__graph_t *g, const char *name,
                               dv__gev_t **root, const char **stored) {
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
    e->alt = g->orphans;
    g->orphans = e;
    *root = r;
    *stored = nm;
    return DV_OK;
}

dv_result_t dv__grec_push(dv__dev_t *dev, dv__graph_t *g, dv__gframe_t *f,
                          const char *name, dv__gev_t **root,
                          const char **stored, int *lost) {
    *lost = 0;
    if (!f) {
        return push_top(g, name, root, stored);
    }
    dv__gev_t *a = f->recording ? NULL : match_push(f->pos, name);
    if (a) {
        if (!f->lost) {
            advance(g, f, a);
        }
        *root = a->child;
        *stored = a->name;
        return DV_OK;
    }
    if (f->lost) {
        /* Keep the scope's own recording as it was: the nested pass runs
         * on a scope that hangs nowhere, freed when the graph is. */
        return push_orphan(g, name, root, stored);
    }
    char what[DV__G_MAX_NAME + 16];
    snprintf(what, sizeof(what), "scope '%s'", name);
    if (!f->recording && capture_pass(dev, g, f)) {
        const dv__gev_t *q = f->pos;
        for (int n = 0; n < SKIP_MAX && (q = free_after(q)); n++) {
            if ((a = match_push(q, name)) != NULL) {
                step_over(g, f, q);
                advance(g, f, a);
                *root = a->child;
                *stored = a->name;
                return DV_OK;
            }
        }
        if (dv__grec_capturing(dev, g)) {
            /* A scope this pass has no recording of, inside the capture:
             * the nested pass bypasses the graph, this one goes on. */
            dv_result_t r = push_orphan(g, name, root, stored);
            if (r == DV_OK) {
                tolerate(f, what);
                *lost = 1;
            }
            return r;
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
    leave(f, what);
    append(g->dev, g, f, e);
    *root = r;
    *stored = nm;
    return DV_OK;
}

/* Hand out the range of recorded allocation `a`, after the frees up to
 * point q (f->pos: none) were stepped over. */
static dv_result_t replay(dv__graph_t *g, dv__gframe_t *f, const dv__gev_t *q,
                          dv__gev_t *a, dv__grange_t **out,
                          uint32_t *outcome) {
    dv_result_t r = dv__gmem_take(g, a->range);
    if (r != DV_OK) {
        return r;
    }
    step_over(g, f, q);
    advance(g, f, a);
    a->range->unseq = 0;
    *out = a->range;
    *outcome = DV_GRAPH_OUT_REPLAYED;
    return DV_OK;
}

dv_result_t dv__grec_alloc(dv__dev_t *dev, dv__graph_t *g, dv__gframe_t *f,
                           uint64_t size, dv__grange_t **out,
                           uint32_t *outcome) {
    dv__gev_t *a = f->recording ? NULL : match_alloc(g, f->pos, size, NULL);
    if (a) {
        return replay(g, f, f->pos, a, out, outcome);
    }
    char what[64];
    snprintf(what, sizeof(what), "an allocation of %llu bytes",
             (unsigned long long)size);
    int capturing = dv__grec_capturing(dev, g);
    if (capturing && !f->recording) {
        f->captured = 1;
    }
    if (f->captured && !f->recording) {
        /* Capture tolerance: look past the recorded frees. */
        dv__gev_t *same = NULL;
        const dv__gev_t *q = f->pos, *same_at = f->pos;
        (void)match_alloc(g, q, size, &same);
        for (int n = 0; n < SKIP_MAX && (q = free_after(q)); n++) {
            dv__gev_t *s = NULL;
            if ((a = match_alloc(g, q, size, &s)) != NULL) {
                return replay(g, f, q, a, out, outcome);
            }
            if (s && !same) {
                same = s;
                same_at = q;
            }
        }
        if (capturing) {
            tolerate(f, what);
            if (same) {
                /* The recording's allocation of this size, whose range is
                 * not free: this one stands for it. */
                step_over(g, f, same_at);
                advance(g, f, same);
            }
            g->st.capture_skips++;
            *outcome = DV_GRAPH_OUT_SKIPPED;
            return DV_OFFLOADED;
        }
        /* After the capture: record, as any pass does. */
    }
    if (capturing) {
        lose(f, what);
        *outcome = DV_GRAPH_OUT_BYPASSED;
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
    *outcome = DV_GRAPH_OUT_RECORDED;
    return DV_OK;
}

dv_result_t dv__grec_free(dv__dev_t *dev, dv__graph_t *g, dv__gframe_t *f,
                          const dv__grange_t *r, uint32_t *outcome) {
    *outcome = DV_GRAPH_OUT_REPLAYED;
    dv__gev_t *a = f->recording ? NULL : match_free(f->pos, r->serial);
    if (a) {
        advance(g, f, a);
        return DV_OK;
    }
    if (!f->recording && capture_pass(dev, g, f)) {
        const dv__gev_t *q = f->pos;
        for (int n = 0; n < SKIP_MAX && (q = free_after(q)); n++) {
            if ((a = match_free(q, r->serial)) != NULL) {
                step_over(g, f, q);
                advance(g, f, a);
                return DV_OK;
            }
        }
        /* Out of sequence: its recorded free, if any, is stepped over
         * later (the range is free by then). */
        g->st.capture_skips++;
        *outcome = DV_GRAPH_OUT_SKIPPED;
        return DV_OK;
    }
    dv__gev_t *e = ev_new(DV__GEV_FREE);
    if (!e) {
        /* The free happens all the same; the rest of the pass bypasses the
         * graph and the recording stays as it was (as in a capture). */
        dv__log(DV_LOG_WARNING,
                "dv_graph_free: no host memory to record a free in scope "
                "'%s': the rest of the pass bypasses the graph",
                f->name);
        f->lost = 1;
        f->changed = 1;
        *outcome = DV_GRAPH_OUT_UNSEQUENCED;
        return DV_OK;
    }
    e->serial = r->serial;
    char what[64];
    snprintf(what, sizeof(what), "a free of range #%llu",
             (unsigned long long)r->serial);
    leave(f, what);
    append(dev, g, f, e);
    *outcome = DV_GRAPH_OUT_RECORDED;
    return DV_OK;
}

void dv__grec_end(dv__dev_t *dev, dv__graph_t *g, dv__gframe_t *f) {
    if (f->lost) {
        f->root->path_known = 0; /* the pass was not followed to its end */
        f->changed = 1;
        return;
    }
    dv__gev_t *p = f->pos;
    if (!p->ends && !f->recording && capture_pass(dev, g, f)) {
        /* The frees the framework deferred past the capture are the last
         * events of the recording: step over them to its end. */
        const dv__gev_t *q = p;
        for (int n = 0; n < SKIP_MAX && (q = free_after(q)); n++) {
            if (q->ends) {
                step_over(g, f, q);
                break;
            }
        }
        p = f->pos;
        if (!p->ends) {
            tolerate(f, "the end of the scope");
            f->root->path_known = 0;
            return; /* the recording stays as it was */
        }
    }
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

/* ---- describing a recording ------------------------------------------------ */

static void emit(dv_graph_event_t *out, uint32_t max, uint32_t *n,
                 const dv_graph_event_t *ev) {
    if (*n < max) {
        out[*n] = *ev;
    }
    (*n)++;
}

uint32_t dv__grec_describe(const dv__gev_t *root, dv_graph_event_t *out,
                           uint32_t max) {
    const dv__gev_t *stack[DV__G_MAX_DEPTH];
    uint32_t depth = 0, n = 0;
    const dv__gev_t *p = root;
    for (;;) {
        dv_graph_event_t ev;
        memset(&ev, 0, sizeof(ev));
        ev.depth = depth;
        const dv__gev_t *e = p->next;
        if (!e) {
            ev.kind = DV_GRAPH_EV_POP;
            ev.flags = p->ends ? DV_GRAPH_EVF_ENDS : 0;
            emit(out, max, &n, &ev);
            if (depth == 0) {
                return n;
            }
            p = stack[--depth]; /* the PUSH in the enclosing scope */
            continue;
        }
        for (const dv__gev_t *v = e; v; v = v->alt) {
            ev.variants++;
        }
        ev.flags = e->ends ? DV_GRAPH_EVF_ENDS : 0;
        if (e->kind == DV__GEV_ALLOC) {
            ev.kind = DV_GRAPH_EV_ALLOC;
            ev.size = e->size;
            if (e->range) {
                ev.ptr = e->range->va;
                ev.serial = e->range->serial;
            }
        } else if (e->kind == DV__GEV_FREE) {
            ev.kind = DV_GRAPH_EV_FREE;
            ev.serial = e->serial;
        } else {
            ev.kind = DV_GRAPH_EV_PUSH;
            snprintf(ev.scope, sizeof(ev.scope), "%s", e->name);
        }
        emit(out, max, &n, &ev);
        if (e->kind == DV__GEV_PUSH && e->child && depth < DV__G_MAX_DEPTH) {
            stack[depth++] = e;
            p = e->child;
            continue;
        }
        p = e;
    }
}
