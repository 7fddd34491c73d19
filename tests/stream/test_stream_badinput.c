/*
 * test_stream_badinput.c - every call of dynvram_stream.h refuses bad
 * input with a clear code and message and leaves everything as it was:
 * NULL, junk and dead handles, another device's schedule or VBAR, indices
 * out of range, release without acquire, a second acquire, bad ranges and
 * options, junk streams, a stream under graph capture (host backend).
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdlib.h>
#include <string.h>

#include "dynvram_host.h"
#include "stream_util.h"

#define P TD_PAGE

/* Everything observable about a model. */
typedef struct snap {
    dv_device_stats_t st;
    dv_schedule_info_t in;
    uint8_t plan[16];
    uint8_t pages[16];
} snap_t;

static snap_t take(ts_model_t *m) {
    snap_t s;
    memset(&s, 0, sizeof(s));
    TD_OK(dv_device_get_stats(m->dev, &s.st));
    if (m->sched) {
        TD_OK(dv_schedule_get_info(m->dev, m->sched, &s.in));
        TD_OK(dv_schedule_plan(m->dev, m->sched, 0, m->n < 16 ? m->n : 16,
                               s.plan));
    }
    dv_vbar_info_t vi;
    TD_OK(dv_vbar_get_info(m->dev, m->vbar, &vi));
    TD_OK(dv_vbar_residency(m->dev, m->vbar, 0,
                            vi.page_count < 16 ? vi.page_count : 16, s.pages));
    return s;
}

static void same(const snap_t *a, const snap_t *b) {
    cr_assert_eq(memcmp(&a->in, &b->in, sizeof(a->in)), 0, "schedule changed");
    cr_assert_eq(memcmp(a->plan, b->plan, sizeof(a->plan)), 0, "plan changed");
    cr_assert_eq(memcmp(a->pages, b->pages, sizeof(a->pages)), 0,
                 "pages changed");
    cr_assert_eq(a->st.resident_bytes, b->st.resident_bytes);
    cr_assert_eq(a->st.pinned_bytes, b->st.pinned_bytes);
    cr_assert_eq(a->st.ring_bytes, b->st.ring_bytes);
    cr_assert_eq(a->st.evictions, b->st.evictions);
    cr_assert_eq(a->st.pages_populated, b->st.pages_populated);
}

#define BAD(m, call, want)                                                     \
    do {                                                                       \
        snap_t before_ = take(m);                                              \
        TD_IS(call, want);                                                     \
        cr_assert_neq(strlen(dv_last_error()), 0, "no message for %s", #call); \
        cr_assert(strstr(dv_last_error(), dv_result_name(want)) != NULL,       \
                  "message '%s' lacks the code", dv_last_error());             \
        snap_t after_ = take(m);                                               \
        same(&before_, &after_);                                               \
        td_check((m)->dev);                                                    \
    } while (0)

/* A model of 8 ranges, one step run, on a device of 8 pages. */
static void setup(ts_model_t *m) {
    dv_device_t *dev = td_open(8);
    ts_model_init(m, dev, 8, P, P);
    TD_OK(ts_create(m, NULL));
    ts_step(m);
}

static void teardown(ts_model_t *m) {
    dv_device_t *dev = m->dev;
    ts_model_fini(m);
    TD_OK(dv_device_close(dev));
}

Test(stream_badinput, handles) {
    ts_model_t m;
    setup(&m);
    dv_device_t *dev = m.dev;
    dv_schedule_t *s = m.sched;
    dv_schedule_t *junk = (dv_schedule_t *)(uintptr_t)0x10;
    uint64_t a;
    dv_schedule_info_t in;
    uint8_t f[2];
    /* NULL and junk devices and schedules. */
    BAD(&m, dv_schedule_acquire(NULL, s, 0, NULL, &a), DV_ERROR_INVALID_ARGUMENT);
    BAD(&m, dv_schedule_acquire(dev, NULL, 0, NULL, &a),
        DV_ERROR_INVALID_ARGUMENT);
    BAD(&m, dv_schedule_acquire(dev, junk, 0, NULL, &a),
        DV_ERROR_INVALID_ARGUMENT);
    BAD(&m, dv_schedule_acquire(dev, (dv_schedule_t *)m.vbar, 0, NULL, &a),
        DV_ERROR_INVALID_ARGUMENT);
    BAD(&m, dv_schedule_acquire((dv_device_t *)s, s, 0, NULL, &a),
        DV_ERROR_INVALID_ARGUMENT);
    BAD(&m, dv_schedule_release(dev, junk, 0, NULL), DV_ERROR_INVALID_ARGUMENT);
    BAD(&m, dv_schedule_release(NULL, s, 0, NULL), DV_ERROR_INVALID_ARGUMENT);
    BAD(&m, dv_schedule_destroy(dev, junk), DV_ERROR_INVALID_ARGUMENT);
    BAD(&m, dv_schedule_destroy(NULL, s), DV_ERROR_INVALID_ARGUMENT);
    BAD(&m, dv_schedule_get_info(dev, junk, &in), DV_ERROR_INVALID_ARGUMENT);
    BAD(&m, dv_schedule_get_info(dev, s, NULL), DV_ERROR_INVALID_ARGUMENT);
    BAD(&m, dv_schedule_plan(dev, junk, 0, 1, f), DV_ERROR_INVALID_ARGUMENT);
    BAD(&m, dv_schedule_plan(dev, s, 0, 1, NULL), DV_ERROR_INVALID_ARGUMENT);
    BAD(&m, dv_schedule_plan(dev, s, 8, 1, f), DV_ERROR_OUT_OF_RANGE);
    BAD(&m, dv_schedule_plan(dev, s, UINT64_MAX, 2, f), DV_ERROR_OUT_OF_RANGE);
    TD_OK(dv_schedule_plan(dev, s, 8, 0, NULL)); /* empty is fine */
    /* A dead schedule stays dead, even after a new one is made. */
    ts_model_t m2;
    ts_model_init(&m2, dev, 2, P, P);
    TD_OK(ts_create(&m2, NULL));
    dv_schedule_t *dead = m2.sched;
    TD_OK(dv_schedule_destroy(dev, dead));
    m2.sched = NULL;
    TD_OK(ts_create(&m2, NULL));
    BAD(&m, dv_schedule_acquire(dev, dead, 0, NULL, &a),
        DV_ERROR_INVALID_ARGUMENT);
    BAD(&m, dv_schedule_destroy(dev, dead), DV_ERROR_INVALID_ARGUMENT);
    ts_model_fini(&m2);
    teardown(&m);
}

Test(stream_badinput, another_devices_schedule) {
    ts_model_t m;
    setup(&m);
    dv_device_options_t o;
    td_options(&o, 8);
    o.ordinal = 1;
    dv_device_t *other = NULL;
    if (dv_device_open(&o, &other) != DV_OK) {
        cr_skip_test("a second device of %s is not available", td_backend());
    }
    uint64_t a;
    dv_schedule_info_t in;
    BAD(&m, dv_schedule_acquire(other, m.sched, 0, NULL, &a),
        DV_ERROR_WRONG_DEVICE);
    BAD(&m, dv_schedule_release(other, m.sched, 0, NULL), DV_ERROR_WRONG_DEVICE);
    BAD(&m, dv_schedule_destroy(other, m.sched), DV_ERROR_WRONG_DEVICE);
    BAD(&m, dv_schedule_get_info(other, m.sched, &in), DV_ERROR_WRONG_DEVICE);
    dv_schedule_t *s2 = NULL;
    BAD(&m, dv_schedule_create(other, m.vbar, m.rg, m.n, NULL, &s2),
        DV_ERROR_WRONG_DEVICE);
    cr_assert_null(s2);
    TD_OK(dv_device_close(other));
    teardown(&m);
}

Test(stream_badinput, indices_and_order) {
    ts_model_t m;
    setup(&m);
    dv_device_t *dev = m.dev;
    uint64_t a, b;
    BAD(&m, dv_schedule_acquire(dev, m.sched, 8, NULL, &a), DV_ERROR_OUT_OF_RANGE);
    BAD(&m, dv_schedule_acquire(dev, m.sched, UINT64_MAX, NULL, &a),
        DV_ERROR_OUT_OF_RANGE);
    BAD(&m, dv_schedule_acquire(dev, m.sched, 0, NULL, NULL),
        DV_ERROR_INVALID_ARGUMENT);
    BAD(&m, dv_schedule_release(dev, m.sched, 8, NULL), DV_ERROR_OUT_OF_RANGE);
    BAD(&m, dv_schedule_release(dev, m.sched, 3, NULL), DV_ERROR_NOT_PINNED);
    TD_OK(dv_schedule_acquire(dev, m.sched, 0, NULL, &a));
    BAD(&m, dv_schedule_acquire(dev, m.sched, 0, NULL, &b), DV_ERROR_BUSY);
    BAD(&m, dv_schedule_destroy(dev, m.sched), DV_ERROR_BUSY);
    TD_OK(dv_schedule_release(dev, m.sched, 0, NULL));
    BAD(&m, dv_schedule_release(dev, m.sched, 0, NULL), DV_ERROR_NOT_PINNED);
    teardown(&m);
}

Test(stream_badinput, junk_streams) {
    ts_model_t m;
    setup(&m);
    dv_device_t *dev = m.dev;
    void *s = NULL;
    if (dv_stream_create(dev, &s) != DV_OK) {
        cr_skip_test("no streams on %s", td_backend());
    }
    TD_OK(dv_stream_destroy(dev, s)); /* a dead stream */
    const dv_hal_ops_t *ops = td_hal();
    if (ops->version < 2 || !ops->stream_check) {
        teardown(&m);
        cr_skip_test("backend %s cannot tell a dead stream (no stream_check)",
                     td_backend());
    }
    uint64_t a;
    BAD(&m, dv_schedule_acquire(dev, m.sched, 0, s, &a),
        DV_ERROR_INVALID_ARGUMENT);
    TD_OK(dv_schedule_acquire(dev, m.sched, 0, NULL, &a));
    BAD(&m, dv_schedule_release(dev, m.sched, 0, s), DV_ERROR_INVALID_ARGUMENT);
    TD_OK(dv_schedule_release(dev, m.sched, 0, NULL));
    teardown(&m);
}

Test(stream_badinput, a_capturing_stream_is_refused) {
    if (strcmp(td_backend(), "host") != 0) {
        cr_skip_test("capture is simulated on the host backend only");
    }
    ts_model_t m;
    setup(&m);
    void *s = NULL;
    TD_OK(dv_stream_create(m.dev, &s));
    TD_OK(dv_host_stream_set_capturing(s, 1));
    uint64_t a;
    BAD(&m, dv_schedule_acquire(m.dev, m.sched, 0, s, &a),
        DV_ERROR_NOT_SUPPORTED);
    TD_OK(dv_host_stream_set_capturing(s, 0));
    TD_OK(dv_schedule_acquire(m.dev, m.sched, 0, s, &a));
    TD_OK(dv_schedule_release(m.dev, m.sched, 0, s));
    dv_device_t *dev = m.dev;
    ts_model_fini(&m);
    TD_OK(dv_stream_destroy(dev, s));
    TD_OK(dv_device_close(dev));
}

Test(stream_badinput, ranges_and_options) {
    dv_device_t *dev = td_open(8);
    ts_model_t m;
    ts_model_init(&m, dev, 4, P, P);
    dv_schedule_t *s = NULL;
    dv_schedule_range_t rg[4];
#define RESET() memcpy(rg, m.rg, sizeof(rg))
#define BADC(ranges, count, opts, want)                                        \
    do {                                                                       \
        BAD(&m, dv_schedule_create(dev, m.vbar, ranges, count, opts, &s),      \
            want);                                                             \
        cr_assert_null(s);                                                     \
    } while (0)
    RESET();
    BAD(&m, dv_schedule_create(NULL, m.vbar, rg, 4, NULL, &s),
        DV_ERROR_INVALID_ARGUMENT);
    BAD(&m, dv_schedule_create(dev, NULL, rg, 4, NULL, &s),
        DV_ERROR_INVALID_ARGUMENT);
    BAD(&m, dv_schedule_create(dev, m.vbar, rg, 4, NULL, NULL),
        DV_ERROR_INVALID_ARGUMENT);
    BADC(NULL, 4, NULL, DV_ERROR_INVALID_ARGUMENT);
    BADC(rg, 0, NULL, DV_ERROR_INVALID_ARGUMENT);
    rg[1].size = 0;
    BADC(rg, 4, NULL, DV_ERROR_INVALID_ARGUMENT);
    RESET();
    rg[2].src = NULL;
    BADC(rg, 4, NULL, DV_ERROR_INVALID_ARGUMENT);
    RESET();
    rg[0].flags = 0x80;
    BADC(rg, 4, NULL, DV_ERROR_INVALID_ARGUMENT);
    RESET();
    rg[0].reserved0 = 1;
    BADC(rg, 4, NULL, DV_ERROR_INVALID_ARGUMENT);
    RESET();
    rg[3].offset = 4 * P;
    BADC(rg, 4, NULL, DV_ERROR_OUT_OF_RANGE);
    RESET();
    rg[3].offset = UINT64_MAX - 8;
    BADC(rg, 4, NULL, DV_ERROR_OUT_OF_RANGE);
    RESET();
    rg[3].size = UINT64_MAX;
    BADC(rg, 4, NULL, DV_ERROR_OUT_OF_RANGE);
    RESET();
    rg[1].offset = P / 2; /* overlaps range 0 */
    BADC(rg, 4, NULL, DV_ERROR_INVALID_ARGUMENT);
    RESET();
    dv_schedule_options_t o;
    dv_schedule_options_init(&o);
    o.size = 8;
    BADC(rg, 4, &o, DV_ERROR_INVALID_ARGUMENT);
    dv_schedule_options_init(&o);
    o.ring_slots = DV_SCHEDULE_MAX_SLOTS + 1;
    BADC(rg, 4, &o, DV_ERROR_INVALID_ARGUMENT);
    dv_schedule_options_init(&o);
    o.placement = 7;
    BADC(rg, 4, &o, DV_ERROR_INVALID_ARGUMENT);
    dv_schedule_options_init(&o);
    o.reserved0 = 1;
    BADC(rg, 4, &o, DV_ERROR_INVALID_ARGUMENT);
    dv_schedule_options_init(&o);
    o.slot_size = UINT64_MAX;
    BADC(rg, 4, &o, DV_ERROR_INVALID_ARGUMENT);
    /* Options of a newer header: unknown fields set are refused, zero is
     * fine. */
    struct {
        dv_schedule_options_t o;
        uint64_t future;
    } big;
    memset(&big, 0, sizeof(big));
    dv_schedule_options_init(&big.o);
    big.o.size = sizeof(big);
    big.future = 1;
    BADC(rg, 4, &big.o, DV_ERROR_INVALID_ARGUMENT);
    big.future = 0;
    TD_OK(dv_schedule_create(dev, m.vbar, rg, 4, &big.o, &s));
    TD_OK(dv_schedule_destroy(dev, s));
    s = NULL;
    /* A dead VBAR. */
    dv_vbar_t *dead = NULL;
    TD_OK(dv_vbar_create(dev, 4 * P, &dead));
    TD_OK(dv_vbar_destroy(dev, dead));
    BAD(&m, dv_schedule_create(dev, dead, rg, 4, NULL, &s),
        DV_ERROR_INVALID_ARGUMENT);
    cr_assert_eq(td_stats(dev).ring_bytes, 0);
    ts_model_fini(&m);
    TD_OK(dv_device_close(dev));
}
