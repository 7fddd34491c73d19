/*
 * model_steps.c - the tester's longer patterns of use, made of checked
 * calls (every fault, unpin, prioritize and evict is predicted and compared
 * like a single op):
 *  - walk: one step of a model, each page (or pair of pages) in order,
 *    faulted then unpinned, as README's C example does; it makes the
 *    passes that watermark recovery counts;
 *  - squeeze: a model walked twice, then partly unloaded (dv_vbar_evict of
 *    its top pages), four times over, on a device with recovery on: the
 *    pattern in which a rise, its loss and the backoff that follows become
 *    observable (a second loss of recovered pages doubles the wait beyond
 *    the two passes a loss always costs).
 * SPDX-License-Identifier: Apache-2.0
 */
#include "model.h"

static void walk(mt_world_t *w, mt_dev_t *d, mt_vbar_t *v, void *stream,
                 uint32_t sid, uint64_t step) {
    for (uint64_t i = 0; i < v->pages && v->h; i += step) {
        uint64_t n = i + step <= v->pages ? step : v->pages - i;
        mt_pre_call(w);
        if (mt_fault_range(w, d, v, i * d->ps, n * d->ps) == DV_OK) {
            mt_pre_call(w);
            mt_unpin_range(w, d, v, i * d->ps, n * d->ps, stream, sid);
        }
    }
}

static void op_walk(mt_world_t *w) {
    mt_dev_t *d = mt_any_dev(w);
    mt_vbar_t *v = d ? mt_any_vbar(w, d) : NULL;
    if (!v) {
        return;
    }
    uint32_t sid;
    void *stream = mt_pick_stream(w, d, &sid);
    uint64_t step = 1 + mt_pick(&w->src, 2);
    if (mt_chance(&w->src, 30)) {
        mt_prioritize(w, d, v, 1); /* the caller's step starts with it */
    }
    walk(w, d, v, stream, sid, step);
}

static void op_squeeze(mt_world_t *w) {
    mt_dev_t *d = mt_any_dev(w);
    mt_vbar_t *v = d && d->recovery ? mt_any_vbar(w, d) : NULL;
    if (!v) {
        return;
    }
    mt_unpin_all(w, d);
    mt_prioritize(w, d, v, 1);
    uint64_t unload = 1 + mt_pick(&w->src, v->pages < 3 ? v->pages : 3);
    for (int round = 0; round < 4 && v->h; round++) {
        walk(w, d, v, NULL, MT_NULL_STREAM, 1);
        walk(w, d, v, NULL, MT_NULL_STREAM, 1);
        mt_pre_call(w);
        mt_evict_bytes(w, d, v, unload * d->ps);
    }
}

const mt_op_t mt_step_ops[] = {
    {"walk", op_walk, 3},
    {"squeeze", op_squeeze, 1},
};
const int mt_step_op_count = sizeof(mt_step_ops) / sizeof(mt_step_ops[0]);
