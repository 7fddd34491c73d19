/*
 * model_sched.c - streaming schedules (include/dynvram_stream.h) in the
 * tester's sequences, and so in the fuzzer's.
 * SPDX-License-Identifier: Apache-2.0
 *
 * A schedule owns its VBAR's residency and its prefetch evicts
 * lower-priority VBARs ahead of use, which the exact model of
 * model_policy.c does not predict. So schedules live on a device of their
 * own (w->sw, opened by the first schedule op, never one of w->d[]), and
 * are checked by rules after every call:
 *  - the result is one the header documents for the call, and the exact
 *    one where the rules fix it (BUSY for a use held twice, NOT_PINNED for
 *    a release of a use not held, OUT_OF_RANGE, INVALID_ARGUMENT for dead
 *    and junk handles and bad ranges);
 *  - every acquire that succeeds hands out the range's own bytes;
 *  - dv_device_check holds; the ring's memory is what the device counts;
 *    `used` never exceeds the budget; a refused call changes nothing
 *    observable (schedule info and device counters);
 *  - at the end, with every use released and the schedule destroyed,
 *    nothing is pinned, no ring is counted, and the device closes.
 * Sequences mix in-order steps, skips, held (nested) uses, host streams
 * with pending work, framework pressure, dv_vbar_evict of the scheduled
 * VBAR, plain faults on it and priority changes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

#define SPS 4096u
#define SPAGES (MT_SRANGES * 4u) /* pages of the scheduled VBAR */

static int same_range(const dv_schedule_range_t *a,
                      const dv_schedule_range_t *b) {
    return a->offset == b->offset && a->size == b->size && a->src == b->src;
}

/* dv_schedule_plan, by the rules: only DV_USE_* bits; the uses of one
 * range agree; the ranges planned resident are info.planned_ranges and
 * their pages info.planned_bytes; a range said resident has every page
 * resident; a use held at its VBAR address is resident; a slice of the
 * plan is the same as the whole one's. */
static void s_plan_check(mt_world_t *w, const dv_schedule_info_t *in,
                         const char *what) {
    mt_sworld_t *sw = &w->sw;
    uint8_t fl[MT_SUSES], part[MT_SUSES], res[SPAGES], pages[SPAGES];
    memset(fl, 0xee, sizeof(fl));
    dv_result_t r = dv_schedule_plan(sw->dev, sw->s, 0, sw->count, fl);
    if (r != DV_OK) {
        mt_fail(w, "sched-plan", "%s: dv_schedule_plan of every use: %s", what,
                dv_last_error());
    }
    uint64_t first = w->calls % sw->count;
    r = dv_schedule_plan(sw->dev, sw->s, first, sw->count - first, part);
    if (r != DV_OK ||
        memcmp(part, fl + first, (size_t)(sw->count - first)) != 0) {
        mt_fail(w, "sched-plan", "%s: the plan of uses %llu.. is not the "
                "whole plan's (%s)", what, (unsigned long long)first,
                dv_result_name(r));
    }
    if (dv_vbar_residency(sw->dev, sw->vbar, 0, SPAGES, res) != DV_OK) {
        mt_fail(w, "sched-plan", "%s: dv_vbar_residency: %s", what,
                dv_last_error());
    }
    memset(pages, 0, sizeof(pages));
    uint64_t ranges = 0, planned = 0;
    for (uint64_t i = 0; i < sw->count; i++) {
        const dv_schedule_range_t *g = &sw->rg[i];
        uint64_t p0 = g->offset / SPS, p1 = (g->offset + g->size - 1) / SPS;
        if (fl[i] & ~(uint8_t)(DV_USE_PLANNED_RESIDENT | DV_USE_RESIDENT)) {
            mt_fail(w, "sched-plan", "%s: use %llu has flags 0x%x", what,
                    (unsigned long long)i, fl[i]);
        }
        int dup = 0;
        for (uint64_t j = 0; j < i && !dup; j++) {
            if (same_range(&sw->rg[j], g)) {
                dup = 1;
                if (fl[j] != fl[i]) {
                    mt_fail(w, "sched-plan", "%s: uses %llu and %llu of one "
                            "range have flags 0x%x and 0x%x", what,
                            (unsigned long long)j, (unsigned long long)i,
                            fl[j], fl[i]);
                }
            }
        }
        if ((fl[i] & DV_USE_PLANNED_RESIDENT) && !dup) {
            ranges++;
            for (uint64_t p = p0; p <= p1; p++) {
                planned += !pages[p];
                pages[p] = 1;
            }
        }
        for (uint64_t p = p0; p <= p1 && (fl[i] & DV_USE_RESIDENT); p++) {
            if (!(res[p] & DV_PAGE_RESIDENT)) {
                mt_fail(w, "sched-plan", "%s: use %llu is said resident but "
                        "page %llu is not", what, (unsigned long long)i,
                        (unsigned long long)p);
            }
        }
        if (sw->held[i] == 2 && !(fl[i] & DV_USE_RESIDENT)) {
            mt_fail(w, "sched-plan", "%s: use %llu is held at its VBAR "
                    "address but not said resident (flags 0x%x)", what,
                    (unsigned long long)i, fl[i]);
        }
    }
    if (ranges != in->planned_ranges || planned * SPS != in->planned_bytes) {
        mt_fail(w, "sched-plan", "%s: the plan marks %llu ranges of %llu "
                "pages, the info says %llu ranges of %llu bytes", what,
                (unsigned long long)ranges, (unsigned long long)planned,
                (unsigned long long)in->planned_ranges,
                (unsigned long long)in->planned_bytes);
    }
}

static void s_check(mt_world_t *w, const char *what) {
    mt_sworld_t *sw = &w->sw;
    dv_result_t r = dv_device_check(sw->dev);
    if (r != DV_OK) {
        mt_fail(w, "sched-invariant", "%s: %s", what, dv_last_error());
    }
    dv_device_stats_t st;
    if (dv_device_get_stats(sw->dev, &st) != DV_OK) {
        mt_fail(w, "sched-stats", "%s: %s", what, dv_last_error());
    }
    uint64_t ring = 0;
    if (sw->s) {
        dv_schedule_info_t in;
        if (dv_schedule_get_info(sw->dev, sw->s, &in) != DV_OK) {
            mt_fail(w, "sched-info", "%s: %s", what, dv_last_error());
        }
        ring = in.ring_mapped_bytes;
        s_plan_check(w, &in, what);
    }
    if (st.ring_bytes != ring) {
        mt_fail(w, "sched-ring", "%s: the device counts %llu ring bytes, the "
                "schedule maps %llu", what, (unsigned long long)st.ring_bytes,
                (unsigned long long)ring);
    }
    if (st.used > st.budget) {
        mt_fail(w, "sched-budget", "%s: used %llu over the budget %llu", what,
                (unsigned long long)st.used, (unsigned long long)st.budget);
    }
    /* Its fence waits are not the model devices' to count. */
    mt_host_counters_rebase(w);
}

/* Everything a refused call must leave as it was. */
typedef struct s_snap {
    dv_schedule_info_t in;
    dv_device_stats_t st;
} s_snap_t;

static s_snap_t s_take(mt_world_t *w) {
    s_snap_t n;
    memset(&n, 0, sizeof(n));
    dv_device_get_stats(w->sw.dev, &n.st);
    if (w->sw.s) {
        dv_schedule_get_info(w->sw.dev, w->sw.s, &n.in);
    }
    return n;
}

static void s_same(mt_world_t *w, const s_snap_t *a, const char *what) {
    s_snap_t b = s_take(w);
    if (memcmp(&a->in, &b.in, sizeof(a->in)) != 0 ||
        a->st.resident_bytes != b.st.resident_bytes ||
        a->st.pinned_bytes != b.st.pinned_bytes ||
        a->st.ring_bytes != b.st.ring_bytes ||
        a->st.evictions != b.st.evictions) {
        mt_fail(w, "sched-unchanged", "%s was refused but changed state", what);
    }
}

static void s_open(mt_world_t *w) {
    mt_sworld_t *sw = &w->sw;
    dv_device_options_t o;
    dv_device_options_init(&o);
    o.backend = "host";
    o.page_size = SPS;
    uint64_t cap = (6 + mt_pick(&w->src, 18)) * SPS;
    snprintf(sw->bopts, sizeof(sw->bopts), "capacity=%llu",
             (unsigned long long)cap);
    o.backend_options = sw->bopts;
    if (mt_chance(&w->src, 40)) {
        o.vram_limit = (4 + mt_pick(&w->src, 14)) * SPS;
    }
    sw->name = w->next_name++;
    mt_call(w, "dv_device_open(host page 4096 cap %llu limit %llu) = S%d",
            (unsigned long long)cap, (unsigned long long)o.vram_limit,
            sw->name);
    dv_result_t r = dv_device_open(&o, &sw->dev);
    mt_ret(w, r);
    mt_expect(w, MT_FN_DEV_OPEN, r, DV_OK);
    sw->src = malloc(MT_SRANGES * 4 * SPS);
    if (!sw->src) {
        mt_fail(w, "sched-setup", "out of host memory");
    }
    for (size_t k = 0; k < MT_SRANGES * 4 * SPS; k++) {
        sw->src[k] = (uint8_t)(k * 29 + k / SPS * 7 + 3);
    }
    r = dv_vbar_create(sw->dev, 4 * SPS, &sw->low);
    mt_expect(w, MT_FN_VBAR_CREATE, r, DV_OK);
    for (uint64_t i = 0; i < 3; i++) {
        uint64_t g;
        if (dv_fault(sw->dev, sw->low, i * SPS, SPS, &g) == DV_OK) {
            dv_unpin(sw->dev, sw->low, i * SPS, SPS, NULL);
        }
    }
    r = dv_vbar_create(sw->dev, SPAGES * SPS, &sw->vbar);
    mt_expect(w, MT_FN_VBAR_CREATE, r, DV_OK);
    dv_vbar_info_t vi;
    r = dv_vbar_get_info(sw->dev, sw->vbar, &vi);
    mt_expect(w, MT_FN_VBAR_INFO, r, DV_OK);
    sw->vbase = vi.base;
    if (mt_chance(&w->src, 50)) {
        r = dv_stream_create(sw->dev, &sw->stream);
        mt_expect(w, MT_FN_STREAM, r, DV_OK);
    }
}

/* Random ranges (packed, with gaps, of 1 byte to 2.5 pages) and uses
 * (duplicates included), then the schedule. */
static void s_create(mt_world_t *w) {
    mt_sworld_t *sw = &w->sw;
    uint64_t nr = 1 + mt_pick(&w->src, MT_SRANGES);
    dv_schedule_range_t r8[MT_SRANGES] = {{0}}; /* gcc -O3: maybe-uninitialized */
    uint64_t off = 0;
    for (uint64_t k = 0; k < nr; k++) {
        off += mt_chance(&w->src, 30) ? mt_pick(&w->src, SPS) : 0;
        uint64_t size = mt_chance(&w->src, 10) ? 1 + mt_pick(&w->src, 64)
                                               : 1 + mt_pick(&w->src, 5 * SPS / 2);
        memset(&r8[k], 0, sizeof(r8[k]));
        r8[k].offset = off;
        r8[k].size = size;
        r8[k].src = sw->src + off;
        r8[k].flags = mt_chance(&w->src, 10) ? DV_RANGE_PREFER_RESIDENT : 0;
        off += size;
    }
    sw->count = nr + mt_pick(&w->src, MT_SUSES - nr + 1);
    for (uint64_t i = 0; i < sw->count; i++) {
        sw->rg[i] = r8[i < nr ? i : mt_pick(&w->src, nr)];
        sw->held[i] = 0;
    }
    dv_schedule_options_t o;
    dv_schedule_options_init(&o);
    o.ring_slots = (uint32_t)mt_pick(&w->src, 4);
    o.placement = mt_chance(&w->src, 30) ? DV_PLACEMENT_PREFIX
                                         : DV_PLACEMENT_SPREAD;
    if (mt_chance(&w->src, 20)) {
        o.slot_size = SPS + mt_pick(&w->src, SPS);
    }
    if (mt_chance(&w->src, 20)) {
        o.activation_reserve = mt_pick(&w->src, 4) * SPS;
    }
    sw->next = 0;
    mt_call(w, "dv_schedule_create(S%d, %llu uses of %llu ranges, slots %u, "
            "placement %u, slot %llu)", sw->name,
            (unsigned long long)sw->count, (unsigned long long)nr,
            o.ring_slots, o.placement, (unsigned long long)o.slot_size);
    dv_result_t r = dv_schedule_create(sw->dev, sw->vbar, sw->rg, sw->count,
                                       &o, &sw->s);
    mt_ret(w, r);
    mt_check_result(w, MT_FN_SCHED, r);
    if (r != DV_OK) {
        sw->s = NULL;
        if (r != DV_ERROR_OUT_OF_DEVICE_MEMORY) {
            mt_fail(w, "sched-create", "valid ranges refused: %s",
                    dv_last_error());
        }
    }
    s_check(w, "create");
}

static void s_release(mt_world_t *w, uint64_t i) {
    mt_sworld_t *sw = &w->sw;
    mt_call(w, "dv_schedule_release(S%d, %llu)", sw->name,
            (unsigned long long)i);
    dv_result_t r = dv_schedule_release(sw->dev, sw->s, i, sw->stream);
    mt_ret(w, r);
    mt_expect(w, MT_FN_SCHED, r, sw->held[i] ? DV_OK : DV_ERROR_NOT_PINNED);
    sw->held[i] = 0;
    s_check(w, "release");
}

static void s_release_all(mt_world_t *w) {
    for (uint64_t i = 0; i < w->sw.count; i++) {
        if (w->sw.held[i]) {
            s_release(w, i);
        }
    }
}

static void s_acquire(mt_world_t *w, uint64_t i, int hold) {
    mt_sworld_t *sw = &w->sw;
    uint64_t addr = 0;
    mt_call(w, "dv_schedule_acquire(S%d, %llu)", sw->name,
            (unsigned long long)i);
    dv_result_t r = dv_schedule_acquire(sw->dev, sw->s, i, sw->stream, &addr);
    mt_ret(w, r);
    mt_check_result(w, MT_FN_SCHED, r);
    if (sw->held[i] && r != DV_ERROR_BUSY) {
        mt_fail(w, "sched-held", "use %llu acquired twice: %s",
                (unsigned long long)i, dv_result_name(r));
    }
    if (r == DV_OK) {
        if (memcmp((const void *)(uintptr_t)addr, sw->rg[i].src,
                   (size_t)sw->rg[i].size) != 0) {
            mt_fail(w, "sched-bytes", "use %llu at 0x%llx holds bytes that "
                    "are not its range's", (unsigned long long)i,
                    (unsigned long long)addr);
        }
        w->n_verified_pages++;
        if (sw->stream && mt_chance(&w->src, 40)) {
            dv_host_stream_submit(sw->stream); /* its reader, still queued */
        }
        sw->held[i] = addr == sw->vbase + sw->rg[i].offset ? 2 : 1;
        uint8_t f = 0xee;
        if (sw->held[i] == 2 &&
            (dv_schedule_plan(sw->dev, sw->s, i, 1, &f) != DV_OK ||
             !(f & DV_USE_RESIDENT))) {
            mt_fail(w, "sched-plan", "use %llu acquired at its VBAR address "
                    "is not said resident (flags 0x%x)", (unsigned long long)i,
                    f);
        }
        if (!hold) {
            s_release(w, i);
        }
    } else if (r != DV_OFFLOADED && r != DV_ERROR_BUSY) {
        mt_fail(w, "sched-acquire", "use %llu: %s", (unsigned long long)i,
                dv_last_error());
    }
    s_check(w, "acquire");
}

static void s_pressure(mt_world_t *w) {
    mt_sworld_t *sw = &w->sw;
    dv_result_t r;
    switch (mt_pick(&w->src, 6)) {
    case 0: {
        uint64_t n = (1 + mt_pick(&w->src, 4)) * SPS;
        mt_call(w, "dv_framework_reserve(S%d, %llu)", sw->name,
                (unsigned long long)n);
        r = dv_framework_reserve(sw->dev, n);
        mt_ret(w, r);
        mt_check_result(w, MT_FN_FW_RESERVE, r);
        sw->fw += r == DV_OK ? n : 0;
        break;
    }
    case 1:
        mt_call(w, "dv_framework_release(S%d, %llu)", sw->name,
                (unsigned long long)sw->fw);
        r = dv_framework_release(sw->dev, sw->fw);
        mt_ret(w, r);
        mt_expect(w, MT_FN_FW_RELEASE, r, DV_OK);
        sw->fw = 0;
        break;
    case 2: {
        uint64_t freed = 0;
        mt_call(w, "dv_vbar_evict(S%d, scheduled)", sw->name);
        r = dv_vbar_evict(sw->dev, sw->vbar, mt_pick(&w->src, 4) * SPS, &freed);
        mt_ret(w, r);
        mt_expect(w, MT_FN_VBAR_EVICT, r, DV_OK);
        break;
    }
    case 3: {
        uint64_t g, off = mt_pick(&w->src, MT_SRANGES * 2) * SPS;
        mt_call(w, "dv_fault(S%d, scheduled, %llu)", sw->name,
                (unsigned long long)off);
        r = dv_fault(sw->dev, sw->vbar, off, SPS, &g);
        mt_ret(w, r);
        mt_check_result(w, MT_FN_FAULT, r);
        if (r == DV_OK) {
            r = dv_unpin(sw->dev, sw->vbar, off, SPS, NULL);
            mt_expect(w, MT_FN_UNPIN, r, DV_OK);
        }
        break;
    }
    case 4:
        mt_call(w, "dv_vbar_%sprioritize(S%d, low)",
                mt_chance(&w->src, 50) ? "" : "de", sw->name);
        r = mt_chance(&w->src, 50) ? dv_vbar_prioritize(sw->dev, sw->low)
                                   : dv_vbar_deprioritize(sw->dev, sw->low);
        mt_ret(w, r);
        mt_expect(w, MT_FN_VBAR_PRIO, r, DV_OK);
        break;
    default:
        if (sw->stream) {
            mt_call(w, "dv_host_stream_complete(S%d)", sw->name);
            r = dv_host_stream_complete(sw->stream);
            mt_ret(w, r);
            mt_expect(w, MT_FN_HOST_HOOK, r, DV_OK);
        }
        break;
    }
    s_check(w, "pressure");
}

static void s_destroy(mt_world_t *w) {
    mt_sworld_t *sw = &w->sw;
    s_release_all(w);
    mt_call(w, "dv_schedule_destroy(S%d)", sw->name);
    dv_result_t r = dv_schedule_destroy(sw->dev, sw->s);
    mt_ret(w, r);
    mt_expect(w, MT_FN_SCHED, r, DV_OK);
    sw->dead[sw->n_dead++ % 4] = sw->s;
    sw->s = NULL;
    s_check(w, "destroy");
}

static void op_sched(mt_world_t *w) {
    mt_sworld_t *sw = &w->sw;
    if (!sw->dev) {
        s_open(w);
    }
    if (!sw->s) {
        s_create(w);
        return;
    }
    uint64_t x = mt_pick(&w->src, 100);
    if (x < 55) {
        /* A stretch of the step: in order, sometimes a skip, sometimes a
         * use held while later ones run (a parent module's weight). */
        uint64_t n = 1 + mt_pick(&w->src, 2 * sw->count);
        for (uint64_t k = 0; k < n; k++) {
            uint64_t i = mt_chance(&w->src, 10) ? mt_pick(&w->src, sw->count)
                                                : sw->next;
            sw->next = (i + 1) % sw->count;
            int held = 0;
            for (uint64_t j = 0; j < sw->count; j++) {
                held += sw->held[j] != 0;
            }
            s_acquire(w, i, held < 2 && mt_chance(&w->src, 8));
        }
    } else if (x < 62) {
        s_release_all(w);
    } else if (x < 94) {
        s_pressure(w);
    } else {
        s_destroy(w);
    }
}

/* dv_schedule_plan with uses out of range, overflowing, or flags NULL: the
 * documented error, nothing written; n = 0 with flags NULL is fine. */
static void s_plan_bad(mt_world_t *w) {
    mt_sworld_t *sw = &w->sw;
    uint64_t first, n;
    dv_result_t want = DV_ERROR_OUT_OF_RANGE;
    int null_flags = 0;
    switch (mt_pick(&w->src, 5)) {
    case 0: /* first past the end */
        first = sw->count + 1 + mt_pick(&w->src, 3), n = 0;
        break;
    case 1: /* first + n wraps */
        first = 1 + mt_pick(&w->src, sw->count);
        n = UINT64_MAX - mt_pick(&w->src, 3);
        break;
    case 2: /* ends past the last use */
        first = mt_pick(&w->src, sw->count + 1);
        n = sw->count - first + 1 + mt_pick(&w->src, 3);
        break;
    case 3: /* no flags for n > 0 uses */
        first = mt_pick(&w->src, sw->count);
        n = 1 + mt_pick(&w->src, sw->count - first);
        null_flags = 1, want = DV_ERROR_INVALID_ARGUMENT;
        break;
    default: /* nothing asked: nothing needed, up to the end included */
        first = mt_pick(&w->src, sw->count + 1), n = 0;
        null_flags = mt_chance(&w->src, 50), want = DV_OK;
        break;
    }
    uint8_t fl[MT_SUSES + 4];
    memset(fl, 0xee, sizeof(fl));
    mt_call(w, "dv_schedule_plan(S%d, %llu, %llu, %s)", sw->name,
            (unsigned long long)first, (unsigned long long)n,
            null_flags ? "NULL" : "flags");
    dv_result_t r =
        dv_schedule_plan(sw->dev, sw->s, first, n, null_flags ? NULL : fl);
    mt_ret(w, r);
    mt_expect(w, MT_FN_SCHED, r, want);
    for (size_t k = 0; k < sizeof(fl); k++) {
        if (fl[k] != 0xee) {
            mt_fail(w, "sched-plan", "dv_schedule_plan(%llu, %llu) -> %s "
                    "wrote flags[%zu]", (unsigned long long)first,
                    (unsigned long long)n, dv_result_name(r), k);
        }
    }
}

/* dv_schedule_plan and dv_schedule_get_info with NULL, dead, junk,
 * wrong-kind and other-device handles. */
static void s_plan_handles(mt_world_t *w) {
    mt_sworld_t *sw = &w->sw;
    dv_schedule_t *sched = sw->s;
    dv_device_t *dev = sw->dev;
    dv_result_t want = DV_ERROR_INVALID_ARGUMENT;
    const char *what;
    mt_dev_t *other = NULL;
    for (int k = 0; k < MT_DEVS && !other; k++) {
        other = w->d[k].h ? &w->d[k] : NULL;
    }
    switch (mt_pick(&w->src, 6)) {
    case 0:
        dev = NULL, what = "NULL device";
        break;
    case 1:
        sched = NULL, what = "NULL schedule";
        break;
    case 2:
        if (!other) {
            return;
        }
        dev = other->h, what = "a device that is not the schedule's";
        want = DV_ERROR_WRONG_DEVICE;
        break;
    case 3:
        if (!w->dead_handles) {
            return;
        }
        sched = sw->n_dead ? sw->dead[mt_pick(&w->src, sw->n_dead < 4
                                                           ? sw->n_dead
                                                           : 4)]
                           : (dv_schedule_t *)(uintptr_t)0x40;
        what = "destroyed schedule";
        break;
    case 4:
        if (!w->dead_handles) {
            return;
        }
        sched = (dv_schedule_t *)(void *)w->buf, what = "junk pointer";
        break;
    default:
        sched = (dv_schedule_t *)(void *)sw->vbar, what = "a VBAR handle";
        break;
    }
    uint8_t fl[MT_SUSES];
    memset(fl, 0xee, sizeof(fl));
    dv_schedule_info_t in;
    int info = mt_chance(&w->src, 30);
    mt_call(w, "%s(S%d, %s)",
            info ? "dv_schedule_get_info" : "dv_schedule_plan", sw->name,
            what);
    dv_result_t r = info ? dv_schedule_get_info(dev, sched, &in)
                         : dv_schedule_plan(dev, sched, 0, 1, fl);
    mt_ret(w, r);
    mt_expect(w, MT_FN_SCHED, r, want);
    if (fl[0] != 0xee) {
        mt_fail(w, "sched-plan", "a refused dv_schedule_plan wrote its flags");
    }
}

static void op_sched_bad(mt_world_t *w) {
    mt_sworld_t *sw = &w->sw;
    if (!sw->dev || !sw->s) {
        return;
    }
    s_snap_t before = s_take(w);
    uint64_t addr;
    dv_result_t r;
    uint64_t i = mt_pick(&w->src, sw->count);
    switch (mt_pick(&w->src, 8)) {
    case 6:
        s_plan_bad(w);
        break;
    case 7:
        s_plan_handles(w);
        break;
    case 0:
        mt_call(w, "dv_schedule_acquire(S%d, %llu): out of range", sw->name,
                (unsigned long long)(sw->count + i));
        r = dv_schedule_acquire(sw->dev, sw->s, sw->count + i, NULL, &addr);
        mt_ret(w, r);
        mt_expect(w, MT_FN_SCHED, r, DV_ERROR_OUT_OF_RANGE);
        break;
    case 1:
        mt_call(w, "dv_schedule_acquire(S%d, %llu, addr NULL)", sw->name,
                (unsigned long long)i);
        r = dv_schedule_acquire(sw->dev, sw->s, i, NULL, NULL);
        mt_ret(w, r);
        mt_expect(w, MT_FN_SCHED, r, DV_ERROR_INVALID_ARGUMENT);
        break;
    case 2:
        if (sw->held[i]) {
            return;
        }
        mt_call(w, "dv_schedule_release(S%d, %llu): not held", sw->name,
                (unsigned long long)i);
        r = dv_schedule_release(sw->dev, sw->s, i, NULL);
        mt_ret(w, r);
        mt_expect(w, MT_FN_SCHED, r, DV_ERROR_NOT_PINNED);
        break;
    case 3: {
        if (!w->dead_handles) {
            return;
        }
        uint64_t nd = sw->n_dead < 4 ? (uint64_t)sw->n_dead : 4;
        dv_schedule_t *dead = nd ? sw->dead[mt_pick(&w->src, nd)]
                                 : (dv_schedule_t *)(uintptr_t)0x40;
        mt_call(w, "dv_schedule_acquire(S%d, dead %p)", sw->name, (void *)dead);
        r = dv_schedule_acquire(sw->dev, dead, 0, NULL, &addr);
        mt_ret(w, r);
        mt_expect(w, MT_FN_SCHED, r, DV_ERROR_INVALID_ARGUMENT);
        break;
    }
    case 4: {
        /* Two uses overlapping without being the same range. */
        dv_schedule_range_t rg[2];
        memset(rg, 0, sizeof(rg));
        rg[0].size = rg[1].size = SPS;
        rg[1].offset = 1 + mt_pick(&w->src, SPS - 1);
        rg[0].src = rg[1].src = sw->src;
        dv_schedule_t *s2 = NULL;
        mt_call(w, "dv_schedule_create(S%d, overlapping)", sw->name);
        r = dv_schedule_create(sw->dev, sw->low, rg, 2, NULL, &s2);
        mt_ret(w, r);
        mt_expect(w, MT_FN_SCHED, r, DV_ERROR_INVALID_ARGUMENT);
        break;
    }
    default: {
        dv_schedule_t *s2 = NULL;
        mt_call(w, "dv_schedule_create(S%d): the VBAR has one", sw->name);
        r = dv_schedule_create(sw->dev, sw->vbar, sw->rg, sw->count, NULL, &s2);
        mt_ret(w, r);
        mt_expect(w, MT_FN_SCHED, r, DV_ERROR_BUSY);
        break;
    }
    }
    s_same(w, &before, "a bad schedule call");
    s_check(w, "bad input");
}

void mt_sched_teardown(mt_world_t *w) {
    mt_sworld_t *sw = &w->sw;
    if (!sw->dev) {
        return;
    }
    if (sw->s) {
        s_destroy(w);
    }
    dv_result_t r = dv_framework_release(sw->dev, sw->fw);
    mt_expect(w, MT_FN_FW_RELEASE, r, DV_OK);
    r = dv_vbar_destroy(sw->dev, sw->vbar);
    mt_expect(w, MT_FN_VBAR_DESTROY, r, DV_OK);
    r = dv_vbar_destroy(sw->dev, sw->low);
    mt_expect(w, MT_FN_VBAR_DESTROY, r, DV_OK);
    if (sw->stream) {
        dv_host_stream_complete(sw->stream);
        r = dv_stream_destroy(sw->dev, sw->stream);
        mt_expect(w, MT_FN_STREAM, r, DV_OK);
    }
    dv_device_stats_t st;
    dv_device_get_stats(sw->dev, &st);
    if (st.pinned_bytes || st.ring_bytes || st.resident_bytes) {
        mt_fail(w, "sched-teardown", "left behind: pinned %llu, ring %llu, "
                "resident %llu", (unsigned long long)st.pinned_bytes,
                (unsigned long long)st.ring_bytes,
                (unsigned long long)st.resident_bytes);
    }
    mt_call(w, "dv_device_close(S%d)", sw->name);
    r = dv_device_close(sw->dev);
    mt_ret(w, r);
    mt_expect(w, MT_FN_DEV_CLOSE, r, DV_OK);
    free(sw->src);
    memset(sw, 0, sizeof(*sw));
    mt_host_counters_rebase(w);
}

const mt_op_t mt_sched_ops[] = {
    {"schedule", op_sched, 5},
    {"schedule_bad", op_sched_bad, 1},
};
const int mt_sched_op_count = sizeof(mt_sched_ops) / sizeof(mt_sched_ops[0]);
