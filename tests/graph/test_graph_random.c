/*
 * test_graph_random.c - random passes against a model: a handful of
 * seeded step scripts (allocations, frees, nested scopes, pauses, rogues
 * that the next step frees) run in a random order many times, so that
 * passes replay, break, add variants and drop them. After every step the
 * device's invariants hold and the graph's live bytes equal the model's;
 * at every free the allocation's marks are intact, so no two live
 * allocations ever shared physical bytes. Every backend.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <string.h>

#include "graph_util.h"

#define M TG_MIB
#define LIVE_MAX 48

typedef struct live {
    uint64_t ptr, size;
} live_t;

typedef struct model {
    dv_device_t *dev;
    dv_graph_t *g;
    live_t live[LIVE_MAX];
    int n;
    uint64_t bytes;
    uint64_t rng;
} model_t;

static uint32_t next(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(*s >> 33);
}

static void take(model_t *m, uint64_t size) {
    if (m->n == LIVE_MAX) {
        return;
    }
    uint64_t p = tg_alloc(m->dev, m->g, size);
    for (int i = 0; i < m->n; i++) {
        cr_assert_neq(m->live[i].ptr, p, "an address handed out twice");
    }
    m->live[m->n++] = (live_t){p, size};
    m->bytes += size;
}

static void give(model_t *m, int i) {
    tg_free(m->dev, m->g, m->live[i].ptr, m->live[i].size);
    m->bytes -= m->live[i].size;
    m->live[i] = m->live[--m->n];
}

/* One step: the script seeded by `script`. What earlier steps left alive
 * (rogues) is freed at random between steps, outside any scope, so the
 * bytes live during a pass change while its sequence does not: a replay
 * must then break around them. */
static void step(model_t *m, uint32_t script, int leave_rogues) {
    static const uint64_t sizes[] = {512, 4096, 100000, M, 3 * M, 5 * M - 512};
    static const char *names[] = {"x", "y"};
    for (int i = m->n - 1; i >= 0; i--) {
        if (next(&m->rng) % 2) {
            give(m, i);
        }
    }
    int first = m->n; /* the script touches only its own allocations */
    TD_OK(dv_graph_push(m->dev, m->g, script % 2 ? "odd" : "even"));
    uint64_t s = 0x1234567ull + script * 7919ull;
    int depth = 0, ops = 8 + (int)(next(&s) % 24);
    for (int k = 0; k < ops; k++) {
        uint32_t r = next(&s) % 100;
        if (r < 45) {
            take(m, sizes[next(&s) % 6]);
        } else if (r < 80 && m->n > first) {
            give(m, first + (int)(next(&s) % (uint32_t)(m->n - first)));
        } else if (r < 88 && depth < 2) {
            TD_OK(dv_graph_push(m->dev, m->g, names[next(&s) % 2]));
            depth++;
        } else if (r < 95 && depth) {
            tg_pop(m->dev, m->g);
            depth--;
        } else if (m->n > first) {
            TD_OK(dv_graph_pause(m->dev, m->g, 0));
            give(m, m->n - 1); /* released while paused: not in the pass */
            TD_OK(dv_graph_resume(m->dev, m->g, 0));
        }
    }
    while (depth--) {
        tg_pop(m->dev, m->g);
    }
    while (!leave_rogues && m->n > first) {
        give(m, m->n - 1);
    }
    tg_pop(m->dev, m->g);
    td_check(m->dev);
    dv_graph_stats_t st = tg_stats(m->dev, m->g);
    cr_assert_eq(st.used, m->bytes);
    cr_assert_eq(st.depth, 0);
}

static void run(uint32_t variants, uint64_t seed) {
    model_t m;
    memset(&m, 0, sizeof(m));
    m.dev = td_open(0);
    dv_graph_options_t o;
    dv_graph_options_init(&o);
    o.max_variants = variants;
    TD_OK(dv_graph_create(m.dev, &o, &m.g));
    m.rng = seed;
    for (int i = 0; i < 150; i++) {
        uint32_t script = next(&m.rng) % 5;
        step(&m, script, (int)(next(&m.rng) % 3 != 0));
    }
    while (m.n) {
        give(&m, 0); /* rogues freed outside any scope */
    }
    dv_graph_stats_t st = tg_stats(m.dev, m.g);
    /* With one variant per point every alternation drops a recording. */
    uint64_t floor = variants == 1 ? 0 : st.allocs / 4;
    cr_assert_gt(st.replayed_allocs, floor, "%llu of %llu replayed",
                 (unsigned long long)st.replayed_allocs,
                 (unsigned long long)st.allocs);
    cr_assert_gt(st.breaks, 0);
    cr_assert_eq(st.used, 0);
    cr_log_info("variants %u: %llu allocs, %llu replayed, %llu breaks, %llu "
                "dropped, %llu MiB physical",
                variants, (unsigned long long)st.allocs,
                (unsigned long long)st.replayed_allocs,
                (unsigned long long)st.breaks,
                (unsigned long long)st.variants_dropped,
                (unsigned long long)(st.physical_bytes >> 20));
    TD_OK(dv_graph_destroy(m.dev, m.g));
    cr_assert_eq(td_stats(m.dev).graph_bytes, 0);
    TD_OK(dv_device_close(m.dev));
}

Test(graph_random, few_variants) { run(1, 42); }
Test(graph_random, default_variants) { run(0, 7); }
Test(graph_random, many_variants) { run(16, 2024); }
