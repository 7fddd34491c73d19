/*
 * graph_scope.c - an allocation graph's scopes: push, pop, iterate, abort,
 * pause and resume (contract: include/dynvram_graph.h; data model:
 * core/graph.h).
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Scopes are a stack of frames, one per open scope pass. Closing a frame
 * judges the pass (replay, record or break: the stats and pop's `changed`)
 * and turns the allocations it made that are still alive into rogues:
 * their owner becomes 0 and they leave the pattern, keeping their bytes
 * until freed.
 */
#include <stdlib.h>
#include <string.h>

#include "core/graph.h"

#define PATH_SEED 0xcbf29ce484222325ull

/* ---- scopes ---------------------------------------------------------------- */

/* A nested pass inherits the enclosing one's loss and capture (the capture
 * it runs in is the enclosing pass's). */
static void frame_open(dv__graph_t *g, dv__gev_t *root, const char *name,
                       int lost) {
    const dv__gframe_t *up = g->depth ? &g->frames[g->depth - 1] : NULL;
    uint8_t inherit_lost = up ? up->lost : 0;
    uint8_t captured = up ? up->captured : 0;
    dv__gframe_t *f = &g->frames[g->depth++];
    memset(f, 0, sizeof(*f));
    f->lost = (uint8_t)(inherit_lost || lost);
    f->captured = captured;
    f->root = root;
    f->pos = root;
    f->name = name;
    f->serial = ++g->serial;
    f->path = PATH_SEED;
}

/* Close the innermost frame. `judge` (pop, iterate) ends the pass and
 * counts it; abort does not. Returns 1 when the assertion fails (the
 * message is in f->why). */
static int frame_close(dv__dev_t *dev, dv__graph_t *g, int judge,
                       int *changed) {
    dv__gframe_t *f = &g->frames[g->depth - 1];
    if (judge) {
        dv__grec_end(dev, g, f);
    } else {
        f->root->path_known = 0; /* the next pass cannot be compared */
    }
    for (dv__grange_t *r = g->live; r; r = r->lnext) {
        if (r->owner == f->serial) {
            r->owner = 0;
            g->st.rogues++;
            g->st.rogue_bytes += r->size;
        }
    }
    if (judge) {
        if (f->broke) {
            g->st.breaks++;
        } else if (f->recording || f->lost) {
            g->st.records++;
        } else {
            g->st.replays++;
        }
    }
    if (g->depth > 1) {
        g->frames[g->depth - 2].changed |= f->changed;
    }
    *changed = f->changed;
    if (g->trace) {
        dv_graph_event_t ev;
        memset(&ev, 0, sizeof(ev));
        ev.kind = DV_GRAPH_EV_POP;
        ev.outcome = f->changed ? DV_GRAPH_OUT_RECORDED : DV_GRAPH_OUT_REPLAYED;
        ev.flags = (f->captured ? DV_GRAPH_EVF_CAPTURING : 0) |
                   (f->broke ? DV_GRAPH_EVF_BROKE : 0);
        dv__gtrace(dev, g, &ev);
    }
    g->depth--;
    return judge && f->broke && (g->flags & DV_GRAPH_ASSERT_NO_BREAKS);
}

static dv_result_t check_name(const char *name, const char *fn) {
    if (name && strlen(name) > DV__G_MAX_NAME) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "%s: scope name of %zu bytes (at most %u)", fn,
                        strlen(name), DV__G_MAX_NAME);
    }
    return DV_OK;
}

dv_result_t dv_graph_push(dv_device_t *dh, dv_graph_t *gh, const char *name) {
    static const char fn[] = "dv_graph_push";
    dv__dev_t *dev = NULL;
    dv__graph_t *g = NULL;
    dv_result_t r = dv__graph_get(dh, gh, fn, &dev, &g);
    if (r == DV_OK) {
        r = check_name(name, fn);
    }
    if (r != DV_OK) {
        return r;
    }
    dv__mutex_lock(&dev->lock);
    if (g->depth >= DV__G_MAX_DEPTH) {
        dv__mutex_unlock(&dev->lock);
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "%s: %u scopes are open already (the most)", fn,
                        g->depth);
    }
    if (g->depth == g->fcap) {
        uint32_t cap = g->fcap ? g->fcap * 2 : 8;
        dv__gframe_t *f = realloc(g->frames, cap * sizeof(*f));
        if (!f) {
            dv__mutex_unlock(&dev->lock);
            return dv__fail(DV_ERROR_OUT_OF_HOST_MEMORY, "%s: scope stack",
                            fn);
        }
        g->frames = f;
        g->fcap = cap;
    }
    dv__gev_t *root = NULL;
    const char *stored = NULL;
    int lost = 0;
    r = dv__grec_push(dev, g, g->depth ? &g->frames[g->depth - 1] : NULL,
                      name ? name : "", &root, &stored, &lost);
    if (r == DV_OK) {
        frame_open(g, root, stored, lost);
    }
    if (g->trace) {
        dv_graph_event_t ev;
        memset(&ev, 0, sizeof(ev));
        ev.kind = DV_GRAPH_EV_PUSH;
        ev.outcome = r != DV_OK ? DV_GRAPH_OUT_FAILED
                     : lost    ? DV_GRAPH_OUT_BYPASSED
                               : DV_GRAPH_OUT_REPLAYED;
        dv__gtrace(dev, g, &ev);
    }
    dv__mutex_unlock(&dev->lock);
    return r == DV_OK ? dv__ok() : r;
}

static dv_result_t broke_result(const char *why) {
    return dv__fail(DV_ERROR_GRAPH_BREAK, "%s", why);
}

dv_result_t dv_graph_pop(dv_device_t *dh, dv_graph_t *gh, int *changed) {
    static const char fn[] = "dv_graph_pop";
    dv__dev_t *dev = NULL;
    dv__graph_t *g = NULL;
    dv_result_t r = dv__graph_get(dh, gh, fn, &dev, &g);
    if (r != DV_OK) {
        return r;
    }
    dv__mutex_lock(&dev->lock);
    if (!g->depth) {
        dv__mutex_unlock(&dev->lock);
        return dv__fail(DV_ERROR_INVALID_ARGUMENT, "%s: no scope is open", fn);
    }
    char why[sizeof(g->frames[0].why)] = "";
    int ch = 0;
    int failed = frame_close(dev, g, 1, &ch);
    if (failed) { /* the closed frame is still in the stack's memory */
        memcpy(why, g->frames[g->depth].why, sizeof(why));
    }
    dv__mutex_unlock(&dev->lock);
    if (changed) {
        *changed = ch;
    }
    return failed ? broke_result(why) : dv__ok();
}

dv_result_t dv_graph_iterate(dv_device_t *dh, dv_graph_t *gh, const char *name,
                             int *changed) {
    static const char fn[] = "dv_graph_iterate";
    dv__dev_t *dev = NULL;
    dv__graph_t *g = NULL;
    dv_result_t r = dv__graph_get(dh, gh, fn, &dev, &g);
    if (r != DV_OK) {
        return r;
    }
    dv__mutex_lock(&dev->lock);
    uint32_t k = g->depth;
    while (k > 0 && name && strcmp(g->frames[k - 1].name, name) != 0) {
        k--;
    }
    if (k == 0) {
        uint32_t depth = g->depth;
        dv__mutex_unlock(&dev->lock);
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "%s: no open scope is named '%s' (%u open)", fn,
                        name ? name : "(any)", depth);
    }
    k--;
    dv__gev_t *root = g->frames[k].root;
    const char *stored = g->frames[k].name;
    char why[sizeof(g->frames[0].why)] = "";
    int ch = 0, failed = 0;
    while (g->depth > k) {
        if (frame_close(dev, g, 1, &ch) && !failed) {
            failed = 1;
            memcpy(why, g->frames[g->depth].why, sizeof(why));
        }
    }
    frame_open(g, root, stored, 0); /* the stack had room for it */
    dv__mutex_unlock(&dev->lock);
    if (changed) {
        *changed = ch;
    }
    return failed ? broke_result(why) : dv__ok();
}

dv_result_t dv_graph_abort(dv_device_t *dh, dv_graph_t *gh) {
    dv__dev_t *dev = NULL;
    dv__graph_t *g = NULL;
    dv_result_t r = dv__graph_get(dh, gh, "dv_graph_abort", &dev, &g);
    if (r != DV_OK) {
        return r;
    }
    dv__mutex_lock(&dev->lock);
    int ch;
    while (g->depth) {
        frame_close(dev, g, 0, &ch);
    }
    dv__mutex_unlock(&dev->lock);
    return dv__ok();
}

dv_result_t dv_graph_note_capture(dv_device_t *dh, dv_graph_t *gh) {
    dv__dev_t *dev = NULL;
    dv__graph_t *g = NULL;
    dv_result_t r = dv__graph_get(dh, gh, "dv_graph_note_capture", &dev, &g);
    if (r != DV_OK) {
        return r;
    }
    dv__mutex_lock(&dev->lock);
    for (uint32_t k = 0; k < g->depth; k++) {
        g->frames[k].captured = 1;
    }
    dv__mutex_unlock(&dev->lock);
    return dv__ok();
}

/* pause / resume: `dir` +1 or -1. */
static dv_result_t pause_step(dv_device_t *dh, dv_graph_t *gh, int sync,
                              int dir, const char *fn) {
    dv__dev_t *dev = NULL;
    dv__graph_t *g = NULL;
    dv_result_t r = dv__graph_get(dh, gh, fn, &dev, &g);
    if (r != DV_OK) {
        return r;
    }
    dv__mutex_lock(&dev->lock);
    if (dir < 0 && !g->paused) {
        r = dv__fail(DV_ERROR_INVALID_ARGUMENT, "%s: the graph is not paused",
                     fn);
    } else if (dir > 0 && g->paused == UINT32_MAX) {
        r = dv__fail(DV_ERROR_INVALID_ARGUMENT, "%s: paused too deep", fn);
    }
    uint32_t slot;
    /* A stream destroyed under the graph has nothing left to finish. */
    if (r == DV_OK && sync && dev->hal.fence_record &&
        dv__stream_slot_locked(dev, g->stream, fn, &slot) == DV_OK) {
        r = dv__stream_sync_locked(dev, slot);
    }
    if (r == DV_OK) {
        g->paused = dir > 0 ? g->paused + 1 : g->paused - 1;
    }
    dv__mutex_unlock(&dev->lock);
    return r == DV_OK ? dv__ok() : r;
}

dv_result_t dv_graph_pause(dv_device_t *dh, dv_graph_t *gh, int sync) {
    return pause_step(dh, gh, sync, 1, "dv_graph_pause");
}

dv_result_t dv_graph_resume(dv_device_t *dh, dv_graph_t *gh, int sync) {
    return pause_step(dh, gh, sync, -1, "dv_graph_resume");
}
