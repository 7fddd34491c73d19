/*
 * test_graph.c - allocation graphs through the C API: record and replay of
 * scripted passes, addresses, backend calls, aliasing, breaks and variants,
 * rogues, scopes, pause, abort and streams. Runs on every backend
 * (DYNVRAM_BACKEND); the content marks need CPU-visible addresses.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <string.h>

#include "dynvram_host.h"
#include "graph_util.h"

#define M TG_MIB

/* A transformer-like block: q, k, v, scores, attention out, MLP hidden and
 * out, two small buffers; everything freed inside. Live peak: 18 MiB. */
static const tg_op_t block[] = {
    TG_P("block"), TG_A(0, 3 * M), TG_A(1, 3 * M), TG_A(2, 3 * M),
    TG_A(3, 6 * M), TG_F(0), TG_F(1), TG_A(4, 3 * M), TG_F(3), TG_F(2),
    TG_A(5, 12 * M), TG_A(6, 3 * M), TG_F(5), TG_F(4), TG_A(7, 1000),
    TG_A(8, 70000), TG_F(7), TG_F(8), TG_F(6), TG_O(),
};
#define BLOCK_PEAK (18 * M)
#define BLOCK_ALLOCS 9

static void same_addresses(const tg_run_t *a, const tg_run_t *b, int n) {
    for (int s = 0; s < n; s++) {
        cr_assert_eq(a->addr[s], b->addr[s], "slot %d: 0x%llx then 0x%llx", s,
                     (unsigned long long)a->addr[s],
                     (unsigned long long)b->addr[s]);
    }
}

Test(graph, record_then_replay_returns_the_same_addresses) {
    dv_device_t *dev = td_open(0);
    dv_graph_t *g = tg_graph(dev, NULL, 0, 0);
    tg_run_t r1, r2, r3;
    tg_script(dev, g, block, TG_LEN(block), &r1);
    cr_assert_eq(r1.changed[0], 1, "the first pass records");
    tg_script(dev, g, block, TG_LEN(block), &r2);
    tg_script(dev, g, block, TG_LEN(block), &r3);
    cr_assert_eq(r2.changed[0], 0, "an identical pass replays");
    cr_assert_eq(r3.changed[0], 0);
    same_addresses(&r1, &r2, BLOCK_ALLOCS);
    same_addresses(&r1, &r3, BLOCK_ALLOCS);
    dv_graph_stats_t st = tg_stats(dev, g);
    cr_assert_eq(st.records, 1);
    cr_assert_eq(st.replays, 2);
    cr_assert_eq(st.breaks, 0);
    cr_assert_eq(st.allocs, 3 * BLOCK_ALLOCS);
    cr_assert_eq(st.replayed_allocs, 2 * BLOCK_ALLOCS);
    cr_assert_eq(st.frees, 3 * BLOCK_ALLOCS);
    cr_assert_eq(st.used, 0);
    cr_assert_eq(st.ranges, BLOCK_ALLOCS);
    cr_assert_eq(st.depth, 0);
    TD_OK(dv_graph_destroy(dev, g));
    cr_assert_eq(td_stats(dev).graph_bytes, 0);
    TD_OK(dv_device_close(dev));
}

Test(graph, replay_makes_no_backend_call) {
    dv_device_t *dev = tg_open_counted(0);
    dv_graph_t *g = tg_graph(dev, NULL, 0, 0);
    tg_run_t r1, r2;
    long before = tg_calls();
    tg_script(dev, g, block, TG_LEN(block), &r1);
    long recorded = tg_calls();
    cr_assert_gt(recorded, before, "recording creates and maps memory");
    uint64_t bc = tg_stats(dev, g).backend_calls;
    for (int pass = 0; pass < 4; pass++) {
        tg_script(dev, g, block, TG_LEN(block), &r2);
        same_addresses(&r1, &r2, BLOCK_ALLOCS);
    }
    cr_assert_eq(tg_calls(), recorded, "%ld backend calls in 4 replays",
                 tg_calls() - recorded);
    cr_assert_eq(tg_stats(dev, g).backend_calls, bc);
    TD_OK(dv_graph_destroy(dev, g));
    TD_OK(dv_device_close(dev));
}

Test(graph, aliasing_keeps_physical_at_the_logical_peak) {
    dv_device_t *dev = td_open(0);
    dv_graph_t *g = tg_graph(dev, NULL, 0, 0);
    tg_run_t r;
    tg_script(dev, g, block, TG_LEN(block), &r);
    dv_graph_stats_t st = tg_stats(dev, g);
    uint64_t ps = st.page_size;
    uint64_t peak = (st.peak_used + ps - 1) / ps * ps;
    cr_assert_eq(st.peak_used, BLOCK_PEAK);
    cr_assert_leq(st.physical_bytes, peak + ps,
                  "physical %llu for a live peak of %llu (page %llu)",
                  (unsigned long long)st.physical_bytes,
                  (unsigned long long)st.peak_used, (unsigned long long)ps);
    /* Aliasing is real: 33 MiB were handed out through 18-20 MiB. */
    cr_assert_lt(st.physical_bytes, 33 * M);
    cr_assert_geq(st.mapped_bytes, 33 * M);
    cr_assert_eq(td_stats(dev).graph_bytes, st.physical_bytes);
    TD_OK(dv_graph_destroy(dev, g));
    TD_OK(dv_device_close(dev));
}

/* A LIFO pattern (each allocation freed before its parent) packs exactly:
 * one page beyond the peak at most, whatever the sizes. */
Test(graph, stack_pattern_packs_into_the_peak) {
    dv_device_t *dev = td_open(0);
    dv_graph_t *g = tg_graph(dev, NULL, 0, 0);
    uint64_t ps = tg_stats(dev, g).page_size;
    TD_OK(dv_graph_push(dev, g, "stack"));
    uint64_t sizes[6] = {ps / 3, 5 * ps / 2, 7 * ps / 4, ps + 512, 3 * ps, 4096};
    uint64_t p[6];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 6; i++) {
            p[i] = tg_alloc(dev, g, sizes[(i + round) % 6]);
        }
        for (int i = 5; i >= 0; i--) {
            tg_free(dev, g, p[i], sizes[(i + round) % 6]);
        }
    }
    tg_pop(dev, g);
    dv_graph_stats_t st = tg_stats(dev, g);
    uint64_t peak = (st.peak_used + ps - 1) / ps * ps;
    cr_assert_leq(st.physical_bytes, peak + ps, "physical %llu, peak %llu",
                  (unsigned long long)st.physical_bytes,
                  (unsigned long long)st.peak_used);
    td_check(dev);
    TD_OK(dv_graph_destroy(dev, g));
    TD_OK(dv_device_close(dev));
}

Test(graph, a_changed_size_breaks_once_then_both_variants_replay) {
    dv_device_t *dev = td_open(0);
    dv_graph_t *g = tg_graph(dev, NULL, 0, 0);
    tg_op_t other[TG_LEN(block)];
    memcpy(other, block, sizeof(block));
    other[10].size = 10 * M; /* the MLP hidden buffer: a shorter sequence */
    tg_run_t a1, b1, b2, a2;
    tg_script(dev, g, block, TG_LEN(block), &a1);
    tg_script(dev, g, other, TG_LEN(other), &b1);
    cr_assert_eq(b1.changed[0], 1);
    dv_graph_stats_t st = tg_stats(dev, g);
    cr_assert_eq(st.breaks, 1);
    same_addresses(&a1, &b1, 5); /* before the difference: replayed */
    tg_script(dev, g, other, TG_LEN(other), &b2);
    cr_assert_eq(b2.changed[0], 0, "the new variant replays");
    same_addresses(&b1, &b2, BLOCK_ALLOCS);
    tg_script(dev, g, block, TG_LEN(block), &a2);
    same_addresses(&a1, &a2, BLOCK_ALLOCS);
    cr_assert_eq(a2.changed[0], 1, "other addresses than the pass before");
    st = tg_stats(dev, g);
    cr_assert_eq(st.breaks, 1, "the old variant was kept");
    cr_assert_eq(st.replays, 2);
    cr_assert_eq(st.records, 1);
    TD_OK(dv_graph_destroy(dev, g));
    TD_OK(dv_device_close(dev));
}

Test(graph, asserting_no_breaks_reports_the_first_difference) {
    dv_device_t *dev = td_open(0);
    dv_graph_t *g = tg_graph(dev, NULL, 0, DV_GRAPH_ASSERT_NO_BREAKS);
    tg_run_t r;
    tg_script(dev, g, block, TG_LEN(block), &r); /* a first pass: fine */
    tg_script(dev, g, block, TG_LEN(block), &r);
    tg_op_t other[TG_LEN(block)];
    memcpy(other, block, sizeof(block));
    other[10].size = 10 * M;
    /* Run all but the pop, which reports the break. */
    tg_script(dev, g, other, TG_LEN(other) - 1, &r);
    int changed = -1;
    TD_IS(dv_graph_pop(dev, g, &changed), DV_ERROR_GRAPH_BREAK);
    cr_assert_eq(changed, 1);
    cr_assert(strstr(dv_last_error(), "scope 'block'") != NULL &&
                  strstr(dv_last_error(), "10485760 bytes") != NULL &&
                  strstr(dv_last_error(), "12582912 bytes") != NULL,
              "%s", dv_last_error());
    dv_graph_stats_t st = tg_stats(dev, g);
    cr_assert_eq(st.depth, 0, "the scope is closed all the same");
    cr_assert_eq(st.breaks, 1);
    tg_script(dev, g, other, TG_LEN(other), &r); /* recorded: replays */
    cr_assert_eq(r.changed[0], 0);
    /* iterate reports it too, and reopens the scope. */
    TD_OK(dv_graph_push(dev, g, "loop"));
    uint64_t p = tg_alloc(dev, g, M);
    tg_free(dev, g, p, M);
    TD_OK(dv_graph_iterate(dev, g, "loop", NULL));
    p = tg_alloc(dev, g, 2 * M);
    tg_free(dev, g, p, 2 * M);
    TD_IS(dv_graph_iterate(dev, g, "loop", NULL), DV_ERROR_GRAPH_BREAK);
    cr_assert_eq(tg_stats(dev, g).depth, 1);
    TD_OK(dv_graph_abort(dev, g));
    TD_OK(dv_graph_destroy(dev, g));
    TD_OK(dv_device_close(dev));
}

Test(graph, a_changed_order_of_frees_breaks) {
    dv_device_t *dev = td_open(0);
    dv_graph_t *g = tg_graph(dev, NULL, 0, 0);
    tg_op_t other[TG_LEN(block)];
    memcpy(other, block, sizeof(block));
    other[5] = (tg_op_t)TG_F(1); /* free k before q */
    other[6] = (tg_op_t)TG_F(0);
    tg_run_t a, b;
    tg_script(dev, g, block, TG_LEN(block), &a);
    tg_script(dev, g, other, TG_LEN(other), &b);
    cr_assert_eq(tg_stats(dev, g).breaks, 1);
    same_addresses(&a, &b, 4);
    tg_script(dev, g, other, TG_LEN(other), &b);
    cr_assert_eq(b.changed[0], 0);
    cr_assert_eq(tg_stats(dev, g).breaks, 1);
    TD_OK(dv_graph_destroy(dev, g));
    TD_OK(dv_device_close(dev));
}

Test(graph, a_shorter_or_longer_pass_breaks) {
    dv_device_t *dev = td_open(0);
    dv_graph_t *g = tg_graph(dev, NULL, 0, 0);
    const tg_op_t two[] = {TG_P("s"), TG_A(0, M), TG_A(1, M), TG_F(0),
                           TG_F(1), TG_O()};
    const tg_op_t one[] = {TG_P("s"), TG_A(0, M), TG_F(0), TG_O()};
    tg_run_t r;
    tg_script(dev, g, two, TG_LEN(two), &r);
    tg_script(dev, g, one, TG_LEN(one), &r); /* diverges at its free */
    cr_assert_eq(tg_stats(dev, g).breaks, 1);
    const tg_op_t prefix[] = {TG_P("s"), TG_A(0, M), TG_A(1, M), TG_F(0),
                              TG_O()};
    tg_script(dev, g, prefix, TG_LEN(prefix), &r); /* ends early */
    cr_assert_eq(tg_stats(dev, g).breaks, 2);
    cr_assert_eq(r.changed[0], 1);
    TD_OK(dv_graph_free(dev, g, r.addr[1], NULL)); /* the rogue */
    tg_script(dev, g, two, TG_LEN(two), &r);
    tg_script(dev, g, one, TG_LEN(one), &r);
    cr_assert_eq(tg_stats(dev, g).breaks, 2, "three variants, all replay");
    TD_OK(dv_graph_destroy(dev, g));
    TD_OK(dv_device_close(dev));
}

Test(graph, rogues_are_counted_and_replays_avoid_their_bytes) {
    dv_device_t *dev = td_open(0);
    dv_graph_t *g = tg_graph(dev, NULL, 0, 0);
    /* The block's output (slot 1) outlives its scope, as a block output
     * does until the next block has read it. */
    const tg_op_t out[] = {TG_P("b"), TG_A(0, 4 * M), TG_A(1, 3 * M),
                           TG_F(0), TG_O()};
    tg_run_t r1, r2, r3, r4;
    tg_script(dev, g, out, TG_LEN(out), &r1);
    dv_graph_stats_t st = tg_stats(dev, g);
    cr_assert_eq(st.rogues, 1);
    cr_assert_eq(st.rogue_bytes, 3 * M);
    cr_assert_eq(st.used, 3 * M);
    /* Next step while the last output still lives: its range cannot be
     * handed out again, and nothing may land on its bytes. */
    tg_script(dev, g, out, TG_LEN(out), &r2);
    cr_assert_neq(r2.addr[1], r1.addr[1]);
    cr_assert(tg_marked(r1.addr[1], 3 * M, r1.addr[1] ^ (3 * M)),
              "the rogue's bytes were reused while it lived");
    tg_free(dev, g, r1.addr[1], 3 * M); /* read by the next block: freed */
    /* From now on the two outputs take turns (ping-pong): no more breaks. */
    uint64_t breaks = tg_stats(dev, g).breaks;
    cr_assert_leq(breaks, 1);
    tg_script(dev, g, out, TG_LEN(out), &r3);
    tg_free(dev, g, r2.addr[1], 3 * M);
    tg_script(dev, g, out, TG_LEN(out), &r4);
    tg_free(dev, g, r3.addr[1], 3 * M);
    cr_assert_eq(r3.addr[1], r1.addr[1]);
    cr_assert_eq(r4.addr[1], r2.addr[1]);
    st = tg_stats(dev, g);
    cr_assert_eq(st.breaks, breaks);
    cr_assert_eq(st.rogues, 4);
    cr_assert_eq(st.rogue_bytes, 3 * M);
    tg_free(dev, g, r4.addr[1], 3 * M); /* out of any scope */
    st = tg_stats(dev, g);
    cr_assert_eq(st.rogue_bytes, 0);
    cr_assert_eq(st.used, 0);
    TD_OK(dv_graph_destroy(dev, g));
    TD_OK(dv_device_close(dev));
}

Test(graph, a_replay_never_hands_out_bytes_of_a_live_rogue) {
    dv_device_t *dev = td_open(0);
    dv_graph_t *g = tg_graph(dev, NULL, 0, 0);
    const tg_op_t a[] = {TG_P("a"), TG_A(0, 4 * M), TG_O()};
    const tg_op_t b[] = {TG_P("b"), TG_A(0, 4 * M), TG_F(0), TG_O()};
    tg_run_t ra, rb, ra2, rb2;
    /* Step 1: a's output dies before b runs, so b's buffer takes its
     * bytes. */
    tg_script(dev, g, a, TG_LEN(a), &ra);
    tg_free(dev, g, ra.addr[0], 4 * M);
    tg_script(dev, g, b, TG_LEN(b), &rb);
    cr_assert_eq(tg_stats(dev, g).physical_bytes, 4 * M, "b aliased a");
    /* Step 2: a's output lives on through b: b must not replay onto it. */
    tg_script(dev, g, a, TG_LEN(a), &ra2);
    cr_assert_eq(ra2.addr[0], ra.addr[0]);
    tg_script(dev, g, b, TG_LEN(b), &rb2);
    cr_assert_eq(tg_stats(dev, g).breaks, 1, "b broke around the rogue");
    cr_assert_neq(rb2.addr[0], rb.addr[0]);
    tg_free(dev, g, ra2.addr[0], 4 * M); /* its marks must be intact */
    TD_OK(dv_graph_destroy(dev, g));
    TD_OK(dv_device_close(dev));
}

Test(graph, frees_of_unknown_pointers_are_tolerated) {
    dv_device_t *dev = td_open(0);
    dv_graph_t *g = tg_graph(dev, NULL, 0, 0);
    const tg_op_t s[] = {TG_P("s"), TG_A(0, M), TG_F(0), TG_O()};
    tg_run_t r;
    tg_script(dev, g, s, TG_LEN(s), &r);
    TD_OK(dv_graph_push(dev, g, "s"));
    uint64_t p = tg_alloc(dev, g, M);
    TD_IS(dv_graph_free(dev, g, 0x1000, NULL), DV_OFFLOADED);
    TD_IS(dv_graph_free(dev, g, 0, NULL), DV_OFFLOADED);
    tg_free(dev, g, p, M);
    cr_assert_eq(tg_pop(dev, g), 0, "unknown frees are not part of the pass");
    TD_IS(dv_graph_free(dev, g, 0x2000, NULL), DV_OFFLOADED);
    dv_graph_stats_t st = tg_stats(dev, g);
    cr_assert_eq(st.unknown_frees, 3);
    cr_assert_eq(st.breaks, 0);
    TD_OK(dv_graph_destroy(dev, g));
    TD_OK(dv_device_close(dev));
}

Test(graph, nested_scopes_are_part_of_the_sequence) {
    dv_device_t *dev = td_open(0);
    dv_graph_t *g = tg_graph(dev, NULL, 0, 0);
    const tg_op_t model[] = {
        TG_P("model"), TG_A(0, 2 * M), TG_P("b0"), TG_A(1, M), TG_F(1),
        TG_O(), TG_P("b1"), TG_A(2, 3 * M), TG_F(2), TG_O(), TG_F(0), TG_O(),
    };
    tg_run_t a, b;
    tg_script(dev, g, model, TG_LEN(model), &a);
    cr_assert_eq(a.changed[2], 1);
    tg_script(dev, g, model, TG_LEN(model), &b);
    cr_assert_eq(b.changed[0] + b.changed[1] + b.changed[2], 0);
    same_addresses(&a, &b, 3);
    /* A renamed inner scope is a break of the outer one. */
    tg_op_t renamed[TG_LEN(model)];
    memcpy(renamed, model, sizeof(model));
    renamed[6].name = "b1-renamed";
    tg_script(dev, g, renamed, TG_LEN(renamed), &b);
    cr_assert_eq(b.changed[2], 1, "the outer pass changed");
    cr_assert_eq(b.addr[0], a.addr[0]);
    dv_graph_stats_t st = tg_stats(dev, g);
    cr_assert_eq(st.breaks, 1);
    TD_OK(dv_graph_destroy(dev, g));
    TD_OK(dv_device_close(dev));
}

Test(graph, outermost_scopes_are_told_apart_by_name) {
    dv_device_t *dev = td_open(0);
    dv_graph_t *g = tg_graph(dev, NULL, 0, 0);
    const tg_op_t b0[] = {TG_P("b0"), TG_A(0, 2 * M), TG_F(0), TG_O()};
    const tg_op_t b1[] = {TG_P("b1"), TG_A(0, 5 * M), TG_F(0), TG_O()};
    tg_run_t r0, r1, s0, s1;
    tg_script(dev, g, b0, TG_LEN(b0), &r0);
    tg_script(dev, g, b1, TG_LEN(b1), &r1);
    for (int step = 0; step < 3; step++) {
        tg_script(dev, g, b0, TG_LEN(b0), &s0);
        tg_script(dev, g, b1, TG_LEN(b1), &s1);
        cr_assert_eq(s0.changed[0] + s1.changed[0], 0);
        cr_assert_eq(s0.addr[0], r0.addr[0]);
        cr_assert_eq(s1.addr[0], r1.addr[0]);
    }
    cr_assert_eq(tg_stats(dev, g).replays, 6);
    TD_OK(dv_graph_destroy(dev, g));
    TD_OK(dv_device_close(dev));
}

Test(graph, iterate_replays_the_loop_body) {
    dv_device_t *dev = tg_open_counted(0);
    dv_graph_t *g = tg_graph(dev, NULL, 0, 0);
    TD_OK(dv_graph_push(dev, g, "outer"));
    uint64_t state = tg_alloc(dev, g, 2 * M); /* carried across iterations */
    TD_OK(dv_graph_push(dev, g, "step"));
    uint64_t first = 0;
    long calls = 0;
    for (int i = 0; i < 6; i++) {
        uint64_t t = tg_alloc(dev, g, 3 * M);
        uint64_t u = tg_alloc(dev, g, 700);
        tg_free(dev, g, t, 3 * M);
        tg_free(dev, g, u, 700);
        if (i == 0) {
            first = t;
        }
        cr_assert_eq(t, first, "iteration %d", i);
        if (i == 1) {
            calls = tg_calls();
        }
        int changed = -1;
        TD_OK(dv_graph_iterate(dev, g, "step", &changed));
        cr_assert_eq(changed, i == 0, "iteration %d: changed %d", i, changed);
    }
    cr_assert_eq(tg_calls(), calls, "iterations from the second on replay");
    cr_assert(tg_marked(state, 2 * M, state ^ (2 * M)));
    dv_graph_stats_t st = tg_stats(dev, g);
    cr_assert_eq(st.depth, 2);
    cr_assert_eq(st.breaks, 0);
    cr_assert_eq(st.replays, 5);
    /* iterate(NULL) takes the innermost scope; an unknown name fails and
     * changes nothing. */
    TD_OK(dv_graph_iterate(dev, g, NULL, NULL));
    TD_IS(dv_graph_iterate(dev, g, "nope", NULL), DV_ERROR_INVALID_ARGUMENT);
    cr_assert_eq(tg_stats(dev, g).depth, 2);
    /* iterate("outer") closes "step" too and reopens "outer" alone. */
    TD_OK(dv_graph_iterate(dev, g, "outer", NULL));
    cr_assert_eq(tg_stats(dev, g).depth, 1);
    tg_free(dev, g, state, 2 * M); /* a rogue of the first outer pass */
    tg_pop(dev, g);
    TD_OK(dv_graph_destroy(dev, g));
    TD_OK(dv_device_close(dev));
}

Test(graph, a_ping_pong_loop_settles_on_two_variants) {
    dv_device_t *dev = tg_open_counted(0);
    dv_graph_t *g = tg_graph(dev, NULL, 0, 0);
    TD_OK(dv_graph_push(dev, g, "step"));
    uint64_t prev = 0, seen[2] = {0, 0};
    long calls = 0;
    for (int i = 0; i < 8; i++) {
        uint64_t h = tg_alloc(dev, g, M);
        uint64_t out = tg_alloc(dev, g, 2 * M); /* next iteration reads it */
        if (prev) {
            tg_free(dev, g, prev, 2 * M);
        }
        tg_free(dev, g, h, M);
        prev = out;
        if (i >= 2) {
            cr_assert_eq(out, seen[i % 2], "iteration %d", i);
        } else {
            seen[i] = out;
        }
        if (i == 3) {
            calls = tg_calls();
        }
        TD_OK(dv_graph_iterate(dev, g, "step", NULL));
    }
    cr_assert_neq(seen[0], seen[1]);
    cr_assert_eq(tg_calls(), calls, "steady ping-pong makes no backend call");
    cr_assert_leq(tg_stats(dev, g).breaks, 2);
    tg_free(dev, g, prev, 2 * M);
    tg_pop(dev, g);
    TD_OK(dv_graph_destroy(dev, g));
    TD_OK(dv_device_close(dev));
}

Test(graph, paused_allocations_bypass_and_frees_still_release) {
    dv_device_t *dev = td_open(0);
    dv_graph_t *g = tg_graph(dev, NULL, 0, 0);
    const tg_op_t s[] = {TG_P("s"), TG_A(0, M), TG_F(0), TG_O()};
    tg_run_t r;
    tg_script(dev, g, s, TG_LEN(s), &r);
    TD_OK(dv_graph_push(dev, g, "s"));
    uint64_t p = tg_alloc(dev, g, M);
    TD_OK(dv_graph_pause(dev, g, 0));
    TD_OK(dv_graph_pause(dev, g, 1)); /* nested, with a synchronize */
    uint64_t q = 1;
    TD_IS(dv_graph_alloc(dev, g, M, NULL, &q), DV_OFFLOADED);
    cr_assert_eq(q, 0);
    cr_assert_eq(tg_stats(dev, g).paused, 2);
    tg_free(dev, g, p, M); /* released, but not part of the pass */
    TD_OK(dv_graph_resume(dev, g, 0));
    TD_IS(dv_graph_alloc(dev, g, M, NULL, &q), DV_OFFLOADED);
    TD_OK(dv_graph_resume(dev, g, 1));
    TD_IS(dv_graph_resume(dev, g, 0), DV_ERROR_INVALID_ARGUMENT);
    dv_graph_stats_t st = tg_stats(dev, g);
    cr_assert_eq(st.bypassed, 2);
    cr_assert_eq(st.used, 0);
    /* The pass went: alloc, (paused free), end: not the recording. */
    tg_pop(dev, g);
    cr_assert_eq(tg_stats(dev, g).breaks, 1);
    /* Out of any scope the graph takes nothing either. */
    TD_IS(dv_graph_alloc(dev, g, M, NULL, &q), DV_OFFLOADED);
    cr_assert_eq(tg_stats(dev, g).bypassed, 3);
    TD_OK(dv_graph_destroy(dev, g));
    TD_OK(dv_device_close(dev));
}

Test(graph, abort_mid_scope_keeps_what_was_recorded) {
    dv_device_t *dev = td_open(0);
    dv_graph_t *g = tg_graph(dev, NULL, 0, 0);
    TD_OK(dv_graph_push(dev, g, "outer"));
    TD_OK(dv_graph_push(dev, g, "inner"));
    uint64_t a = tg_alloc(dev, g, M);
    TD_OK(dv_graph_abort(dev, g));
    dv_graph_stats_t st = tg_stats(dev, g);
    cr_assert_eq(st.depth, 0);
    cr_assert_eq(st.rogues, 1, "what the aborted scopes left alive");
    cr_assert_eq(st.records + st.replays + st.breaks, 0, "nothing judged");
    tg_free(dev, g, a, M);
    TD_OK(dv_graph_abort(dev, g)); /* none open: fine */
    /* The next pass replays the kept prefix and records the rest without a
     * break: the aborted pass never ended anywhere. */
    const tg_op_t full[] = {TG_P("outer"), TG_P("inner"), TG_A(0, M),
                            TG_A(1, 2 * M), TG_F(0), TG_F(1), TG_O(), TG_O()};
    tg_run_t r;
    tg_script(dev, g, full, TG_LEN(full), &r);
    cr_assert_eq(r.addr[0], a);
    st = tg_stats(dev, g);
    cr_assert_eq(st.breaks, 0);
    tg_script(dev, g, full, TG_LEN(full), &r);
    cr_assert_eq(r.changed[0] + r.changed[1], 0);
    TD_OK(dv_graph_destroy(dev, g));
    TD_OK(dv_device_close(dev));
}

Test(graph, other_streams_bypass_and_set_stream_retargets) {
    dv_device_t *dev = td_open(0);
    void *s1 = NULL, *s2 = NULL;
    if (dv_stream_create(dev, &s1) != DV_OK) {
        TD_OK(dv_device_close(dev));
        cr_skip_test("backend %s has no streams", td_backend());
    }
    TD_OK(dv_stream_create(dev, &s2));
    dv_graph_t *g = tg_graph(dev, s1, 0, 0);
    TD_OK(dv_graph_push(dev, g, "s"));
    uint64_t p = 0;
    TD_IS(dv_graph_alloc(dev, g, M, s2, &p), DV_OFFLOADED);
    TD_IS(dv_graph_alloc(dev, g, M, NULL, &p), DV_OFFLOADED);
    TD_OK(dv_graph_alloc(dev, g, M, s1, &p));
    int host = strcmp(td_backend(), "host") == 0;
    uint64_t sub = 0, done = 0;
    if (host) {
        TD_OK(dv_host_stream_submit(s1)); /* work that uses p */
    }
    TD_OK(dv_graph_free(dev, g, p, s1));
    TD_OK(dv_graph_set_stream(dev, g, s2));
    if (host) {
        /* s2 waits for s1's work before it may reuse p's bytes. */
        TD_OK(dv_host_stream_counts(s1, &sub, &done));
        cr_assert_eq(done, sub);
    }
    cr_assert_eq(tg_stats(dev, g).stream, s2);
    TD_IS(dv_graph_alloc(dev, g, M, s1, &p), DV_OFFLOADED);
    TD_OK(dv_graph_alloc(dev, g, M, s2, &p));
    TD_OK(dv_graph_free(dev, g, p, s2));
    TD_OK(dv_graph_set_stream(dev, g, s2)); /* the same: nothing to do */
    tg_pop(dev, g);
    TD_OK(dv_graph_destroy(dev, g));
    TD_OK(dv_stream_destroy(dev, s1));
    TD_OK(dv_stream_destroy(dev, s2));
    TD_OK(dv_device_close(dev));
}

Test(graph, the_variant_limit_drops_the_least_recently_used) {
    dv_device_t *dev = td_open(0);
    dv_graph_options_t o;
    dv_graph_options_init(&o);
    o.max_variants = 2;
    dv_graph_t *g = NULL;
    TD_OK(dv_graph_create(dev, &o, &g));
    uint64_t ps = tg_stats(dev, g).page_size;
    uint64_t mapped = 0;
    for (int i = 0; i < 12; i++) {
        TD_OK(dv_graph_push(dev, g, "s"));
        uint64_t sz = (uint64_t)(1 + i % 5) * ps; /* five patterns */
        uint64_t p = tg_alloc(dev, g, sz);
        tg_free(dev, g, p, sz);
        tg_pop(dev, g);
        if (i == 4) {
            mapped = tg_stats(dev, g).mapped_bytes;
        }
        td_check(dev);
    }
    dv_graph_stats_t st = tg_stats(dev, g);
    cr_assert_eq(st.variants_dropped, 10);
    cr_assert_leq(st.ranges, 2);
    /* Without unmapping the dropped ranges 33 pages would be mapped: two
     * recorded variants and at most one zombie are left. */
    cr_assert_leq(st.mapped_bytes, 15 * ps, "mapped %llu",
                  (unsigned long long)st.mapped_bytes);
    cr_assert_geq(mapped, st.ranges * ps);
    TD_OK(dv_graph_destroy(dev, g));
    TD_OK(dv_device_close(dev));
}

Test(graph, graphs_share_the_device_budget) {
    dv_device_t *dev = td_open(0);
    dv_graph_t *a = tg_graph(dev, NULL, 0, 0);
    dv_graph_t *b = tg_graph(dev, NULL, 0, 0);
    tg_run_t r;
    tg_script(dev, a, block, TG_LEN(block), &r);
    tg_script(dev, b, block, TG_LEN(block), &r);
    uint64_t pa = tg_stats(dev, a).physical_bytes;
    uint64_t pb = tg_stats(dev, b).physical_bytes;
    dv_device_stats_t st = td_stats(dev);
    cr_assert_eq(st.graph_bytes, pa + pb);
    cr_assert_geq(st.used, pa + pb);
    TD_IS(dv_device_close(dev), DV_ERROR_BUSY);
    TD_OK(dv_graph_destroy(dev, a));
    cr_assert_eq(td_stats(dev).graph_bytes, pb);
    TD_OK(dv_graph_destroy(dev, b));
    cr_assert_eq(td_stats(dev).graph_bytes, 0);
    TD_OK(dv_device_close(dev));
}

Test(graph, destroy_waits_for_scopes_and_live_allocations) {
    dv_device_t *dev = td_open(0);
    dv_graph_t *g = tg_graph(dev, NULL, 0, 0);
    TD_OK(dv_graph_push(dev, g, "s"));
    TD_IS(dv_graph_destroy(dev, g), DV_ERROR_BUSY);
    uint64_t p = tg_alloc(dev, g, M);
    tg_pop(dev, g);
    TD_IS(dv_graph_destroy(dev, g), DV_ERROR_BUSY);
    tg_free(dev, g, p, M);
    TD_OK(dv_graph_destroy(dev, g));
    TD_IS(dv_graph_destroy(dev, g), DV_ERROR_INVALID_ARGUMENT);
    TD_OK(dv_device_close(dev));
}
