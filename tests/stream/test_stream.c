/*
 * test_stream.c - streaming schedules on every backend: the bytes at every
 * acquired address equal their source over many steps (resident and
 * streamed, with framework pressure in the middle of a step), placement
 * (spread, prefix, tied ranges), the plan under a shrinking, growing and
 * oscillating budget, the ring in the budget, wrap-around prefetch, skips,
 * ranges larger than a slot, and the watermark kept out of scheduled VBARs.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <string.h>

#include "stream_util.h"

#define P TD_PAGE

/* 16 ranges of one page on a device of 12 pages: ring 2, plan 10. */
static dv_device_t *open_model(ts_model_t *m, uint64_t limit_pages,
                               uint32_t placement) {
    dv_device_t *dev = td_open(limit_pages);
    ts_model_init(m, dev, 16, P, P);
    dv_schedule_options_t o;
    dv_schedule_options_init(&o);
    o.placement = placement;
    TD_OK(ts_create(m, &o));
    td_check(dev);
    return dev;
}

static void close_model(ts_model_t *m) {
    dv_device_t *dev = m->dev;
    ts_model_fini(m);
    td_check(dev);
    cr_assert_eq(td_stats(dev).ring_bytes, 0);
    TD_OK(dv_device_close(dev));
}

/* Longest run of `c` in s. */
static int longest_run(const char *s, char c) {
    int best = 0, run = 0;
    for (; *s; s++) {
        run = *s == c ? run + 1 : 0;
        best = run > best ? run : best;
    }
    return best;
}

Test(stream, bytes_equal_source_over_many_steps) {
    ts_model_t m;
    open_model(&m, 12, DV_PLACEMENT_SPREAD);
    dv_schedule_info_t in = ts_info(&m);
    cr_assert_eq(in.count, 16);
    cr_assert_eq(in.ranges, 16);
    cr_assert_eq(in.ring_slots, 2);
    cr_assert_eq(in.slot_size, P);
    cr_assert_eq(in.planned_ranges, 10, "capacity 12 - 2 ring pages");
    for (int step = 0; step < 20; step++) {
        uint64_t copies = ts_info(&m).copies;
        ts_count_t c = ts_step(&m);
        cr_assert_eq(c.resident, 10, "step %d", step);
        cr_assert_eq(c.streamed, 6, "step %d", step);
        cr_assert_eq(c.offloaded, 0);
        if (step >= 1) {
            /* Steady: only the streamed ranges are copied. */
            cr_assert_eq(ts_info(&m).copies - copies, 6, "step %d", step);
        }
    }
    in = ts_info(&m);
    cr_assert_eq(in.steps, 20);
    cr_assert_eq(in.refills, 10, "each resident range copied once");
    cr_assert_eq(in.resident_hits + in.refills, 200);
    cr_assert_eq(in.streamed, 120);
    cr_assert_eq(in.replans, 0, "a steady budget keeps its plan");
    close_model(&m);
}

Test(stream, spread_placement_alternates) {
    ts_model_t m;
    open_model(&m, 12, DV_PLACEMENT_SPREAD);
    char plan[17];
    ts_plan_string(&m, plan);
    cr_assert_eq(longest_run(plan, '.'), 1, "streamed ranges isolated: %s", plan);
    cr_assert_leq(longest_run(plan, 'R'), 2, "resident runs short: %s", plan);
    cr_assert_eq(strlen(plan), 16);
    close_model(&m);
}

Test(stream, prefix_placement_keeps_the_first_ranges) {
    ts_model_t m;
    open_model(&m, 12, DV_PLACEMENT_PREFIX);
    char plan[17];
    ts_plan_string(&m, plan);
    cr_assert_str_eq(plan, "RRRRRRRRRR......");
    for (int step = 0; step < 3; step++) {
        ts_count_t c = ts_step(&m);
        cr_assert_eq(c.streamed, 6);
    }
    close_model(&m);
}

Test(stream, framework_pressure_mid_step_then_back) {
    ts_model_t m;
    dv_device_t *dev = open_model(&m, 12, DV_PLACEMENT_SPREAD);
    ts_step(&m);
    ts_step(&m);
    /* Activations take 4 pages in the middle of a step: the walk evicts
     * resident weight pages; the step goes on with the right bytes. */
    ts_count_t c = {0, 0, 0};
    for (uint64_t i = 0; i < 8; i++) {
        ts_use(&m, i, &c);
    }
    TD_OK(dv_framework_reserve(dev, 4 * P));
    td_check(dev);
    for (uint64_t i = 8; i < 16; i++) {
        ts_use(&m, i, &c);
    }
    cr_assert_eq(c.offloaded, 0);
    cr_assert_gt(c.streamed, 6, "lost ranges were streamed this step");
    /* The plan shrinks to what is left: 12 - 2 ring - 4 framework. */
    ts_step(&m);
    ts_step(&m);
    cr_assert_eq(ts_info(&m).planned_ranges, 6);
    cr_assert_leq(td_stats(dev).used, td_stats(dev).budget);
    for (int step = 0; step < 3; step++) {
        c = ts_step(&m);
        cr_assert_eq(c.resident, 6);
        cr_assert_eq(c.streamed, 10);
    }
    /* The memory comes back: the plan grows back, once. */
    TD_OK(dv_framework_release(dev, 4 * P));
    int back = -1;
    for (int step = 0; step < 8; step++) {
        c = ts_step(&m);
        if (back < 0 && c.resident == 10) {
            back = step;
        }
    }
    cr_assert_geq(back, 1, "growth waits for the room to last");
    cr_assert_leq(back, 5, "growth comes within a few steps");
    dv_schedule_info_t in = ts_info(&m);
    cr_assert_eq(in.planned_ranges, 10);
    cr_assert_leq(in.replans, 2, "one shrink and one growth: %llu",
                  (unsigned long long)in.replans);
    close_model(&m);
}

Test(stream, oscillating_budget_does_not_thrash) {
    ts_model_t m;
    dv_device_t *dev = open_model(&m, 12, DV_PLACEMENT_SPREAD);
    ts_step(&m);
    uint64_t copies[40];
    for (int step = 0; step < 40; step++) {
        /* Activations come and go every other step. */
        if (step % 2 == 0) {
            TD_OK(dv_framework_reserve(dev, 4 * P));
        }
        uint64_t before = ts_info(&m).copies;
        ts_step(&m);
        copies[step] = ts_info(&m).copies - before;
        if (step % 2 == 0) {
            TD_OK(dv_framework_release(dev, 4 * P));
        }
    }
    dv_schedule_info_t in = ts_info(&m);
    cr_assert_leq(in.replans, 2, "plan changed %llu times",
                  (unsigned long long)in.replans);
    for (int step = 10; step < 40; step++) {
        cr_assert_eq(copies[step], copies[9], "step %d copied %llu, not %llu",
                     step, (unsigned long long)copies[step],
                     (unsigned long long)copies[9]);
    }
    close_model(&m);
}

Test(stream, ring_is_counted_in_the_budget) {
    dv_device_t *dev = td_open(12);
    /* A lower-priority model holds the whole budget. */
    dv_vbar_t *other = NULL;
    TD_OK(dv_vbar_create(dev, 12 * P, &other));
    uint64_t g;
    for (uint64_t i = 0; i < 12; i++) {
        TD_OK(dv_fault(dev, other, i * P, P, &g));
        TD_OK(dv_unpin(dev, other, i * P, P, NULL));
    }
    ts_model_t m;
    ts_model_init(&m, dev, 16, P, P); /* newer: higher priority */
    dv_device_stats_t before = td_stats(dev);
    TD_OK(ts_create(&m, NULL));
    dv_device_stats_t st = td_stats(dev);
    cr_assert_eq(st.ring_bytes, 2 * P);
    cr_assert_eq(st.used, st.resident_bytes + st.pool_bytes +
                              st.framework_bytes + st.ring_bytes);
    cr_assert_leq(st.used, st.budget);
    cr_assert_geq(st.evictions - before.evictions, 2,
                  "the ring took its room from the lower-priority VBAR");
    cr_assert_eq(td_resident_pages(dev, other), 10);
    /* The first step takes the rest of the other model's memory. */
    ts_step(&m);
    ts_step(&m);
    cr_assert_eq(td_resident_pages(dev, m.vbar), 10);
    cr_assert_eq(td_resident_pages(dev, other), 0);
    ts_model_fini(&m);
    TD_OK(dv_vbar_destroy(dev, other));
    cr_assert_eq(td_stats(dev).ring_bytes, 0);
    TD_OK(dv_device_close(dev));
}

Test(stream, a_ring_that_does_not_fit_fails_cleanly) {
    dv_device_t *dev = td_open(3);
    ts_model_t m;
    ts_model_init(&m, dev, 4, 2 * P, 2 * P);
    dv_device_stats_t before = td_stats(dev);
    TD_IS(ts_create(&m, NULL), DV_ERROR_OUT_OF_DEVICE_MEMORY);
    cr_assert_null(m.sched);
    dv_device_stats_t st = td_stats(dev);
    cr_assert_eq(st.ring_bytes, 0);
    cr_assert_eq(st.used, before.used);
    td_check(dev);
    /* Smaller slots fit, and the VBAR was never marked scheduled. */
    dv_schedule_options_t o;
    dv_schedule_options_init(&o);
    o.slot_size = P;
    TD_OK(ts_create(&m, &o));
    ts_count_t c = ts_step(&m);
    cr_assert_eq(c.offloaded, 4, "ranges of two pages do not fit one-page slots");
    close_model(&m);
}

Test(stream, next_step_is_prefetched_during_this_one) {
    ts_model_t m;
    open_model(&m, 12, DV_PLACEMENT_SPREAD);
    ts_step(&m);
    ts_step(&m);
    char plan[17];
    ts_plan_string(&m, plan);
    uint64_t first = (uint64_t)(strchr(plan, '.') - plan);
    /* Everything of the last step is released: the first streamed range of
     * the next step is in a slot already. */
    uint64_t copies = ts_info(&m).copies;
    for (uint64_t i = 0; i < first; i++) {
        ts_use(&m, i, NULL);
    }
    uint64_t addr = 0;
    TD_OK(dv_schedule_acquire(m.dev, m.sched, first, m.stream, &addr));
    cr_assert(ts_in_ring(&m, addr));
    cr_assert_eq(ts_info(&m).copies, copies, "no copy when it was needed");
    cr_assert_eq(ts_info(&m).host_waits, 0);
    ts_verify(&m, first, addr);
    TD_OK(dv_schedule_release(m.dev, m.sched, first, m.stream));
    close_model(&m);
}

Test(stream, tied_ranges_stay_resident_first) {
    dv_device_t *dev = td_open(3); /* ring 2, one page of plan */
    ts_model_t m;
    ts_model_init(&m, dev, 4, P, P);
    uint64_t order[] = {0, 1, 2, 3, 0}; /* range 0 used twice: tied */
    ts_model_uses(&m, order, 5);
    TD_OK(ts_create(&m, NULL));
    dv_schedule_info_t in = ts_info(&m);
    cr_assert_eq(in.ranges, 4);
    cr_assert_eq(in.count, 5);
    char plan[6];
    ts_plan_string(&m, plan);
    cr_assert_str_eq(plan, "R...R");
    for (int step = 0; step < 5; step++) {
        ts_count_t c = ts_step(&m);
        cr_assert_eq(c.resident, 2);
        cr_assert_eq(c.streamed, 3);
    }
    close_model(&m);
}

Test(stream, duplicates_must_agree) {
    dv_device_t *dev = td_open(0);
    ts_model_t m;
    ts_model_init(&m, dev, 4, P, P);
    dv_schedule_range_t rg[3] = {m.rg[0], m.rg[1], m.rg[0]};
    rg[2].src = m.rg[2].src; /* same range, other bytes */
    TD_IS(dv_schedule_create(dev, m.vbar, rg, 3, NULL, &m.sched),
          DV_ERROR_INVALID_ARGUMENT);
    rg[2] = m.rg[0];
    rg[2].offset += 4096; /* overlaps range 0 without being it */
    TD_IS(dv_schedule_create(dev, m.vbar, rg, 3, NULL, &m.sched),
          DV_ERROR_INVALID_ARGUMENT);
    cr_assert_null(m.sched);
    close_model(&m);
}

Test(stream, every_slot_held_offloads) {
    dv_device_t *dev = td_open(2); /* one slot, one page of plan */
    ts_model_t m;
    ts_model_init(&m, dev, 4, P, P);
    dv_schedule_options_t o;
    dv_schedule_options_init(&o);
    o.ring_slots = 1;
    o.placement = DV_PLACEMENT_PREFIX;
    TD_OK(ts_create(&m, &o));
    uint64_t a0, a1, a2;
    TD_OK(dv_schedule_acquire(dev, m.sched, 0, NULL, &a0)); /* resident */
    TD_OK(dv_schedule_acquire(dev, m.sched, 1, NULL, &a1)); /* the slot */
    cr_assert(ts_in_ring(&m, a1));
    /* A parent holding the slot: the next streamed use cannot have it. */
    TD_IS(dv_schedule_acquire(dev, m.sched, 2, NULL, &a2), DV_OFFLOADED);
    TD_IS(dv_schedule_release(dev, m.sched, 2, NULL), DV_ERROR_NOT_PINNED);
    cr_assert_eq(ts_info(&m).offloaded, 1);
    ts_verify(&m, 1, a1);
    TD_OK(dv_schedule_release(dev, m.sched, 1, NULL));
    TD_OK(dv_schedule_release(dev, m.sched, 0, NULL));
    td_check(dev);
    ts_count_t c = ts_step(&m);
    cr_assert_eq(c.offloaded, 0);
    cr_assert_eq(c.streamed, 3);
    close_model(&m);
}

Test(stream, skipped_and_reordered_uses) {
    ts_model_t m;
    dv_device_t *dev = open_model(&m, 12, DV_PLACEMENT_SPREAD);
    ts_step(&m);
    /* A step that ends early, one that skips, one that starts late. */
    uint64_t seq[] = {0, 1, 2, 3, 0, 1, 9, 10, 15, 4, 5, 6, 7, 8, 12, 0, 1};
    for (size_t k = 0; k < sizeof(seq) / sizeof(seq[0]); k++) {
        cr_assert_eq(ts_use(&m, seq[k], NULL), DV_OK, "use %llu",
                     (unsigned long long)seq[k]);
        td_check(dev);
    }
    for (int step = 0; step < 3; step++) {
        ts_count_t c = ts_step(&m);
        cr_assert_eq(c.resident + c.streamed, 16);
    }
    close_model(&m);
}

Test(stream, shared_pages_between_ranges) {
    /* Ranges of 3/4 page packed back to back share pages. */
    dv_device_t *dev = td_open(9);
    ts_model_t m;
    ts_model_init(&m, dev, 12, 3 * P / 4, 3 * P / 4);
    TD_OK(ts_create(&m, NULL));
    dv_schedule_info_t in = ts_info(&m);
    cr_assert_leq(in.planned_bytes, in.capacity_bytes);
    cr_assert_gt(in.planned_ranges, 0);
    for (int step = 0; step < 6; step++) {
        ts_count_t c = ts_step(&m);
        cr_assert_eq(c.resident, in.planned_ranges);
    }
    close_model(&m);
}

Test(stream, eviction_never_lowers_a_scheduled_watermark) {
    ts_model_t m;
    dv_device_t *dev = open_model(&m, 14, DV_PLACEMENT_SPREAD);
    /* An unscheduled VBAR below it, with pages. */
    dv_vbar_t *plain = NULL;
    TD_OK(dv_vbar_create(dev, 4 * P, &plain));
    TD_OK(dv_vbar_deprioritize(dev, plain));
    uint64_t g;
    for (uint64_t i = 0; i < 2; i++) {
        TD_OK(dv_fault(dev, plain, i * P, P, &g));
        TD_OK(dv_unpin(dev, plain, i * P, P, NULL));
    }
    ts_step(&m);
    ts_step(&m);
    TD_OK(dv_framework_reserve(dev, 8 * P));
    cr_assert_lt(td_watermark(dev, plain), 4, "plain VBAR: sticky as ever");
    cr_assert_eq(td_watermark(dev, m.vbar), 16, "scheduled VBAR: untouched");
    ts_step(&m);
    TD_OK(dv_framework_release(dev, 8 * P));
    cr_assert_eq(td_watermark(dev, m.vbar), 16);
    TD_OK(dv_vbar_destroy(dev, plain));
    close_model(&m);
}

Test(stream, the_fault_api_works_on_a_scheduled_vbar) {
    ts_model_t m;
    dv_device_t *dev = open_model(&m, 12, DV_PLACEMENT_PREFIX);
    ts_step(&m);
    ts_step(&m);
    /* A prefetched range is a fault that already happened: a hit. */
    dv_device_stats_t before = td_stats(dev);
    uint64_t g = 0;
    TD_OK(dv_fault(dev, m.vbar, 0, P, &g));
    cr_assert_eq(td_stats(dev).faults_hit, before.faults_hit + 1);
    uint64_t gens[1];
    TD_OK(dv_vbar_generations(dev, m.vbar, 0, P, gens, 1));
    cr_assert_eq(g, gens[0]);
    TD_OK(dv_unpin(dev, m.vbar, 0, P, NULL));
    ts_step(&m);
    close_model(&m);
}

Test(stream, lifetime_rules) {
    ts_model_t m;
    dv_device_t *dev = open_model(&m, 12, DV_PLACEMENT_SPREAD);
    TD_IS(dv_vbar_destroy(dev, m.vbar), DV_ERROR_BUSY);
    dv_schedule_t *second = NULL;
    TD_IS(dv_schedule_create(dev, m.vbar, m.rg, m.n, NULL, &second),
          DV_ERROR_BUSY);
    cr_assert_null(second);
    uint64_t addr;
    TD_OK(dv_schedule_acquire(dev, m.sched, 0, NULL, &addr));
    TD_IS(dv_schedule_destroy(dev, m.sched), DV_ERROR_BUSY);
    TD_OK(dv_schedule_release(dev, m.sched, 0, NULL));
    ts_step(&m);
    uint64_t resident = td_resident_pages(dev, m.vbar);
    TD_OK(dv_schedule_destroy(dev, m.sched));
    TD_IS(dv_schedule_destroy(dev, m.sched), DV_ERROR_INVALID_ARGUMENT);
    m.sched = NULL;
    cr_assert_eq(td_resident_pages(dev, m.vbar), resident,
                 "resident pages stay resident");
    cr_assert_eq(td_stats(dev).ring_bytes, 0);
    td_check(dev);
    close_model(&m);
}

/* Pressure in the middle of a step takes ranges the prefetcher had
 * prepared as resident; they are streamed through slots taken from later
 * preparations. Afterwards every copy is used: none is made for a slot
 * that is given up again (a hole behind the prefetcher would make each
 * later use steal a slot in turn, for ever). */
static void no_wasted_copies_after_pressure(uint32_t placement) {
    ts_model_t m;
    dv_device_t *dev = open_model(&m, 12, placement);
    ts_step(&m);
    ts_step(&m);
    for (uint64_t i = 0; i < 16; i++) {
        if (i == 8) {
            TD_OK(dv_framework_reserve(dev, 4 * P));
        }
        ts_use(&m, i, NULL);
    }
    TD_OK(dv_framework_release(dev, 4 * P));
    for (int step = 0; step < 12; step++) {
        dv_schedule_info_t a = ts_info(&m);
        ts_step(&m);
        dv_schedule_info_t b = ts_info(&m);
        int64_t made = (int64_t)(b.copies - a.copies);
        int64_t used = (int64_t)(b.refills - a.refills + b.streamed - a.streamed);
        cr_assert_leq(made - used, 2, "step %d: %lld copies, %lld used",
                      step, (long long)made, (long long)used);
        cr_assert_geq(made - used, -2, "step %d", step);
    }
    close_model(&m);
}

Test(stream, pressure_wastes_no_copies_afterwards_spread) {
    no_wasted_copies_after_pressure(DV_PLACEMENT_SPREAD);
}

Test(stream, pressure_wastes_no_copies_afterwards_prefix) {
    no_wasted_copies_after_pressure(DV_PLACEMENT_PREFIX);
}

Test(stream, a_model_that_fits_holds_no_ring) {
    /* 16 pages of ranges on a device of 20: everything resident, no ring;
     * activations squeeze it: the ring comes when something streams, and
     * goes once a step streamed nothing again. */
    ts_model_t m;
    dv_device_t *dev = open_model(&m, 20, DV_PLACEMENT_SPREAD);
    cr_assert_eq(ts_info(&m).planned_ranges, 16);
    cr_assert_eq(td_stats(dev).ring_bytes, 0, "nothing to stream, no ring");
    for (int step = 0; step < 3; step++) {
        ts_count_t c = ts_step(&m);
        cr_assert_eq(c.resident, 16);
    }
    cr_assert_eq(td_stats(dev).ring_bytes, 0);
    TD_OK(dv_framework_reserve(dev, 8 * P));
    uint64_t peak_ring = 0;
    for (int step = 0; step < 4; step++) {
        ts_step(&m);
        uint64_t rb = td_stats(dev).ring_bytes;
        peak_ring = rb > peak_ring ? rb : peak_ring;
        cr_assert_leq(td_stats(dev).used, td_stats(dev).budget);
    }
    cr_assert_eq(peak_ring, 2 * P, "streaming needs the ring");
    cr_assert_eq(ts_info(&m).ring_mapped_bytes, 2 * P);
    cr_assert_lt(ts_info(&m).planned_ranges, 16);
    TD_OK(dv_framework_release(dev, 8 * P));
    int gone = -1;
    for (int step = 0; step < 10; step++) {
        ts_step(&m);
        if (gone < 0 && td_stats(dev).ring_bytes == 0) {
            gone = step;
        }
    }
    cr_assert_geq(gone, 0, "the ring went back when nothing streamed");
    cr_assert_eq(ts_info(&m).planned_ranges, 16);
    ts_count_t c = ts_step(&m);
    cr_assert_eq(c.resident, 16);
    cr_assert_eq(c.streamed, 0);
    close_model(&m);
}
