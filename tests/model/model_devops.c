/*
 * model_devops.c - the tester's valid device-level calls: framework
 * allocations, pool, stats, caps, streams and their simulated work, copies'
 * host registration, opening and closing devices, backend probing, logging.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Same shape as model_ops.c: predict in the model, call, check the result;
 * the sequence compares everything after the op.
 */
#include <stdio.h>
#include <string.h>

#include "model.h"

/* ---- framework allocations ---- */

static uint64_t pick_size(mt_world_t *w, const mt_dev_t *d) {
    switch (mt_pick(&w->src, 8)) {
    case 0:
        return 0;
    case 1:
        return UINT64_MAX - mt_pick(&w->src, 3);
    case 2:
        return mt_budget(d) + mt_pick(&w->src, 3 * d->ps);
    case 3:
        return 1 + mt_pick(&w->src, d->ps);
    default:
        return (1 + mt_pick(&w->src, 4)) * d->ps - mt_pick(&w->src, 2) * 100;
    }
}

static void op_fw_reserve(mt_world_t *w) {
    mt_dev_t *d = mt_any_dev(w);
    if (!d) {
        return;
    }
    uint64_t size = pick_size(w, d);
    uint64_t budget = mt_budget(d), used = mt_used(d);
    dv_result_t want = DV_OK;
    if (size > UINT64_MAX - used) {
        want = DV_ERROR_INVALID_ARGUMENT;
    } else if (used + size > budget) {
        mt_reclaim(d, used + size - budget);
        if (mt_used(d) + size > budget) {
            want = DV_ERROR_OUT_OF_DEVICE_MEMORY; /* evictions stay done */
        }
    }
    if (want == DV_OK) {
        d->fw += size;
        mt_rec_note_framework(d);
    }
    mt_call(w, "dv_framework_reserve(d%d, %llu)", d->name,
            (unsigned long long)size);
    dv_result_t r = dv_framework_reserve(d->h, size);
    mt_ret(w, r);
    mt_expect(w, MT_FN_FW_RESERVE, r, want);
    mt_check_all(w);
}

static void op_fw_release(mt_world_t *w) {
    mt_dev_t *d = mt_any_dev(w);
    if (!d) {
        return;
    }
    uint64_t size = mt_pick(&w->src, d->fw + 1);
    if (mt_chance(&w->src, 30)) {
        size = d->fw;
    } else if (mt_chance(&w->src, 10)) {
        size = d->fw + 1 + mt_pick(&w->src, d->ps);
    }
    dv_result_t want = size > d->fw ? DV_ERROR_INVALID_ARGUMENT : DV_OK;
    if (want == DV_OK) {
        d->fw -= size;
    }
    mt_call(w, "dv_framework_release(d%d, %llu)", d->name,
            (unsigned long long)size);
    dv_result_t r = dv_framework_release(d->h, size);
    mt_ret(w, r);
    mt_expect(w, MT_FN_FW_RELEASE, r, want);
    mt_check_all(w);
}

static void op_fw_evict(mt_world_t *w) {
    mt_dev_t *d = mt_any_dev(w);
    if (!d) {
        return;
    }
    uint64_t size = mt_pick(&w->src, 4 * d->ps);
    uint64_t want_freed = mt_reclaim(d, size ? size : 1);
    dv_result_t want = want_freed ? DV_OK : DV_ERROR_OUT_OF_DEVICE_MEMORY;
    uint64_t freed = 0xdead;
    mt_call(w, "dv_framework_evict(d%d, %llu)", d->name,
            (unsigned long long)size);
    dv_result_t r = dv_framework_evict(d->h, size, &freed);
    mt_ret(w, r);
    mt_expect(w, MT_FN_FW_EVICT, r, want);
    if (freed != want_freed) {
        mt_fail(w, "framework", "dv_framework_evict freed %llu, the model %llu",
                (unsigned long long)freed, (unsigned long long)want_freed);
    }
    mt_check_all(w);
}

static void op_trim(mt_world_t *w) {
    mt_dev_t *d = mt_any_dev(w);
    if (!d) {
        return;
    }
    d->pool = 0;
    mt_call(w, "dv_device_trim_pool(d%d)", d->name);
    dv_result_t r = dv_device_trim_pool(d->h);
    mt_ret(w, r);
    mt_expect(w, MT_FN_DEV_SIMPLE, r, DV_OK);
    mt_check_all(w);
}

/* The headroom changed at run time (dv_device_set_headroom): the budget
 * follows at once; a value above 2^60 is refused and changes nothing. A
 * headroom may leave the budget below what is held: the next fault or
 * framework reservation pays for it (the pool first). */
static void op_headroom(mt_world_t *w) {
    mt_dev_t *d = mt_any_dev(w);
    if (!d) {
        return;
    }
    int bad = mt_pick(&w->src, 8) == 0;
    uint64_t h = bad ? (1ull << 60) + 1 + mt_pick(&w->src, 1000)
                     : mt_pick(&w->src, 3 * d->ps);
    mt_call(w, "dv_device_set_headroom(d%d, %llu)", d->name,
            (unsigned long long)h);
    dv_result_t r = dv_device_set_headroom(d->h, h);
    mt_ret(w, r);
    mt_expect(w, MT_FN_DEV_SIMPLE, r,
              bad ? DV_ERROR_INVALID_ARGUMENT : DV_OK);
    if (!bad) {
        d->o.headroom = h;
    }
    uint64_t got = 0;
    mt_call(w, "dv_device_get_headroom(d%d)", d->name);
    r = dv_device_get_headroom(d->h, &got);
    mt_ret(w, r);
    mt_expect(w, MT_FN_DEV_SIMPLE, r, DV_OK);
    if (got != d->o.headroom) {
        mt_fail(w, "headroom", "d%d headroom is %llu, the model says %llu",
                d->name, (unsigned long long)got,
                (unsigned long long)d->o.headroom);
    }
    mt_check_all(w);
}

/* ---- queries ---- */

static void op_query(mt_world_t *w) {
    mt_dev_t *d = mt_any_dev(w);
    if (!d) {
        return;
    }
    dv_device_caps_t caps;
    mt_call(w, "dv_device_get_caps(d%d)", d->name);
    dv_result_t r = dv_device_get_caps(d->h, &caps);
    mt_ret(w, r);
    mt_expect(w, MT_FN_DEV_CAPS, r, DV_OK);
    uint32_t need =
        DV_CAP_FENCES | DV_CAP_HOST_ACCESSIBLE | DV_CAP_HOST_REGISTER;
    if (strcmp(caps.backend, "host") != 0 || caps.page_size != d->ps ||
        caps.granularity != 4096 || caps.total_memory != d->cap ||
        caps.ordinal != d->o.ordinal || (caps.flags & need) != need) {
        mt_fail(w, "caps",
                "d%d caps: backend %s page %llu granularity %llu "
                "total %llu ordinal %d flags 0x%x",
                d->name, caps.backend, (unsigned long long)caps.page_size,
                (unsigned long long)caps.granularity,
                (unsigned long long)caps.total_memory, caps.ordinal,
                caps.flags);
    }
    mt_call(w, "dv_device_check(d%d)", d->name);
    r = dv_device_check(d->h);
    mt_ret(w, r);
    mt_expect(w, MT_FN_DEV_CHECK, r, DV_OK);
    mt_call(w, "dv_device_get_stats(d%d)", d->name);
    dv_device_stats_t st;
    r = dv_device_get_stats(d->h, &st);
    mt_ret(w, r);
    mt_expect(w, MT_FN_DEV_STATS, r, DV_OK);
    mt_check_all(w);
}

typedef struct log_seen {
    int calls;
    int named; /* a message named the failing function */
} log_seen_t;

static void on_log(dv_log_level_t level, const char *msg, void *user) {
    log_seen_t *s = user;
    s->calls++;
    s->named |= strstr(msg, "dv_device_check") != NULL;
    (void)level;
}

/* Route the log to a callback, make a call fail at debug level, restore. */
static void log_round_trip(mt_world_t *w) {
    log_seen_t seen = {0, 0};
    dv_log_level_t lv = dv_log_get_level();
    mt_call(w, "dv_log_set_callback(counter) + level debug");
    dv_result_t r = dv_log_set_callback(on_log, &seen);
    mt_ret(w, r);
    mt_expect(w, MT_FN_PROBE, r, DV_OK);
    mt_expect(w, MT_FN_PROBE, dv_log_set_level(DV_LOG_DEBUG), DV_OK);
    mt_call(w, "dv_device_check(NULL)");
    r = dv_device_check(NULL);
    mt_ret(w, r);
    mt_expect(w, MT_FN_DEV_CHECK, r, DV_ERROR_INVALID_ARGUMENT);
    mt_expect(w, MT_FN_PROBE, dv_log_set_level(lv), DV_OK);
    mt_call(w, "dv_log_set_callback(NULL)");
    r = dv_log_set_callback(NULL, NULL);
    mt_ret(w, r);
    mt_expect(w, MT_FN_PROBE, r, DV_OK);
    if (seen.calls < 1 || !seen.named) {
        mt_fail(w, "log",
                "the log callback saw %d message(s)%s at debug "
                "level for a failing dv_device_check",
                seen.calls, seen.named ? "" : ", none naming it");
    }
}

static void op_probe(mt_world_t *w) {
    int n = dv_backend_count();
    int host = -1;
    for (int k = 0; k < n; k++) {
        dv_backend_info_t bi;
        mt_call(w, "dv_backend_probe(%d)", k);
        dv_result_t r = dv_backend_probe(k, &bi);
        mt_ret(w, r);
        mt_expect(w, MT_FN_PROBE, r, DV_OK);
        if (strcmp(bi.name, "host") == 0) {
            host = k;
            if (!bi.available || bi.device_count != mt_host_devices()) {
                mt_fail(w, "probe", "host backend: available %d, %d devices",
                        bi.available, bi.device_count);
            }
        }
    }
    if (host < 0) {
        mt_fail(w, "probe", "no host backend among %d", n);
    }
    dv_result_t any = (dv_result_t)((int)mt_pick(&w->src, 40) - 20);
    if (!dv_result_name(any) || !dv_result_str(any)) {
        mt_fail(w, "result-names", "NULL name or text for %d", (int)any);
    }
    dv_log_level_t lv = dv_log_get_level();
    mt_call(w, "dv_log_set_level(%d)", (int)lv);
    dv_result_t r = dv_log_set_level(lv);
    mt_ret(w, r);
    mt_expect(w, MT_FN_PROBE, r, DV_OK);
    if (mt_chance(&w->src, 30)) {
        log_round_trip(w);
    }
    mt_check_all(w);
}

/* ---- streams and their simulated work ---- */

static void op_stream(mt_world_t *w) {
    mt_dev_t *d = mt_any_dev(w);
    if (!d) {
        return;
    }
    int k = (int)mt_pick(&w->src, MT_STREAMS);
    mt_stream_t *s = &d->s[k];
    unsigned what = (unsigned)mt_pick(&w->src, 10);
    dv_result_t r;
    if (!s->h) {
        void *h = NULL;
        uint32_t id = ++w->next_stream;
        mt_call(w, "dv_stream_create(d%d) = s%u", d->name, id);
        r = dv_stream_create(d->h, &h);
        mt_ret(w, r);
        mt_expect(w, MT_FN_STREAM, r, DV_OK);
        s->h = h;
        s->id = id;
    } else if (what < 4) {
        mt_call(w, "dv_host_stream_submit(s%u)", s->id);
        r = dv_host_stream_submit(s->h);
        mt_ret(w, r);
        mt_expect(w, MT_FN_HOST_HOOK, r, DV_OK);
    } else if (what < 7) {
        mt_call(w, "dv_host_stream_complete(s%u)", s->id);
        r = dv_host_stream_complete(s->h);
        mt_ret(w, r);
        mt_expect(w, MT_FN_HOST_HOOK, r, DV_OK);
        /* A capture that begins and ends between two calls. */
        mt_call(w, "dv_host_stream_set_capturing(s%u, 1 then 0)", s->id);
        r = dv_host_stream_set_capturing(s->h, 1);
        if (r == DV_OK) {
            r = dv_host_stream_set_capturing(s->h, 0);
        }
        mt_ret(w, r);
        mt_expect(w, MT_FN_HOST_HOOK, r, DV_OK);
    } else if (what < 9) {
        mt_call(w, "dv_stream_synchronize(d%d, s%u)", d->name, s->id);
        r = dv_stream_synchronize(d->h, s->h);
        mt_ret(w, r);
        mt_expect(w, MT_FN_STREAM, r, DV_OK);
        uint64_t sub = 0, done = 1;
        dv_host_stream_counts(s->h, &sub, &done);
        if (sub != done) {
            mt_fail(w, "stream", "s%u has pending work after synchronize",
                    s->id);
        }
    } else {
        mt_call(w, "dv_stream_destroy(d%d, s%u)", d->name, s->id);
        r = dv_stream_destroy(d->h, s->h);
        mt_ret(w, r);
        mt_expect(w, MT_FN_STREAM, r, DV_OK);
        mt_grave_stream(w, s->h);
        s->h = NULL; /* its pages' unpins are settled: idle */
    }
    mt_check_all(w);
}

static void op_host_register(mt_world_t *w) {
    mt_dev_t *d = mt_any_dev(w);
    if (!d) {
        return;
    }
    uint64_t size = 1 + mt_pick(&w->src, sizeof(w->buf));
    uint64_t n0 = 0, b0 = 0, n1 = 0, b1 = 0;
    dv_host_registrations(&n0, &b0);
    mt_call(w, "dv_host_register(d%d, buf, %llu)", d->name,
            (unsigned long long)size);
    dv_result_t r = dv_host_register(d->h, w->buf, size);
    mt_ret(w, r);
    mt_expect(w, MT_FN_HOST_REG, r, DV_OK);
    int no_bytes = mt_chance(&w->src, 20); /* either output is optional */
    mt_call(w, "dv_host_registrations(count, %s)", no_bytes ? "NULL" : "bytes");
    r = dv_host_registrations(&n1, no_bytes ? NULL : &b1);
    mt_ret(w, r);
    mt_expect(w, MT_FN_HOST_HOOK, r, DV_OK);
    if (n1 != n0 + 1 || (!no_bytes && b1 != b0 + size)) {
        mt_fail(w, "host-registrations",
                "after dv_host_register of %llu bytes: %llu registrations of "
                "%llu bytes, were %llu of %llu",
                (unsigned long long)size, (unsigned long long)n1,
                (unsigned long long)b1, (unsigned long long)n0,
                (unsigned long long)b0);
    }
    /* Wrong order, refused as a driver refuses it (dynvram_host.h): a
     * registration overlapping a live one, an unregistration of an address
     * inside one, not its start. */
    uint64_t in = mt_pick(&w->src, size);
    if (mt_chance(&w->src, 50)) {
        mt_call(w, "dv_host_register(d%d, buf + %llu, 8): overlaps", d->name,
                (unsigned long long)in);
        r = dv_host_register(d->h, (char *)w->buf + in, 8);
        mt_ret(w, r);
        mt_expect(w, MT_FN_HOST_REG, r, DV_ERROR_INVALID_ARGUMENT);
    } else if (in) {
        mt_call(w, "dv_host_unregister(d%d, buf + %llu): not a start",
                d->name, (unsigned long long)in);
        r = dv_host_unregister(d->h, (char *)w->buf + in);
        mt_ret(w, r);
        mt_expect(w, MT_FN_HOST_REG, r, DV_ERROR_INVALID_ARGUMENT);
    }
    mt_call(w, "dv_host_unregister(d%d, buf)", d->name);
    r = dv_host_unregister(d->h, w->buf);
    mt_ret(w, r);
    mt_expect(w, MT_FN_HOST_REG, r, DV_OK);
    if (mt_chance(&w->src, 30)) {
        mt_call(w, "dv_host_unregister(d%d, buf): again", d->name);
        r = dv_host_unregister(d->h, w->buf);
        mt_ret(w, r);
        mt_expect(w, MT_FN_HOST_REG, r, DV_ERROR_INVALID_ARGUMENT);
    }
    mt_check_all(w); /* the registrations are back to the model's */
}

/* ---- devices ---- */

static void op_device(mt_world_t *w) {
    int k = (int)mt_pick(&w->src, MT_DEVS);
    mt_dev_t *d = &w->d[k];
    if (!d->h) {
        mt_open_device(w, k);
        mt_check_all(w);
        return;
    }
    int open = 0;
    for (int j = 0; j < MT_DEVS; j++) {
        open += w->d[j].h != NULL;
    }
    if (open == 1 && mt_chance(&w->src, 70)) {
        return; /* keep something to work on */
    }
    if (d->nvb && mt_chance(&w->src, 30)) {
        mt_close_device(w, d, 1); /* BUSY, nothing changes */
        return;
    }
    mt_unpin_all(w, d);
    mt_graphs_teardown(w, d);
    while (d->nvb) {
        mt_destroy_vbar(w, d, &d->vb[d->order[0]]);
    }
    mt_close_device(w, d, 0);
}

const mt_op_t mt_dev_ops[] = {
    {"fw_reserve", op_fw_reserve, 4}, {"fw_release", op_fw_release, 3},
    {"fw_evict", op_fw_evict, 2},     {"trim", op_trim, 1},
    {"query", op_query, 1},           {"probe", op_probe, 1},
    {"stream", op_stream, 8},         {"host_register", op_host_register, 1},
    {"device", op_device, 1},         {"headroom", op_headroom, 1},
};
const int mt_dev_op_count = sizeof(mt_dev_ops) / sizeof(mt_dev_ops[0]);
