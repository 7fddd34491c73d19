/*
 * test_graph_badinput.c - every allocation-graph call given bad input: a
 * clear code, a message that says why (naming the kind of handle passed),
 * and nothing changed. Every backend.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <string.h>

#include "dynvram_host.h"
#include "graph_util.h"

#define M TG_MIB

typedef struct snap {
    dv_graph_stats_t g;
    dv_device_stats_t d;
} snap_t;

static snap_t take(dv_device_t *dev, dv_graph_t *g) {
    snap_t s;
    memset(&s, 0, sizeof(s));
    TD_OK(dv_graph_get_stats(dev, g, &s.g));
    TD_OK(dv_device_get_stats(dev, &s.d));
    return s;
}

static void same(const snap_t *a, const snap_t *b) {
    cr_assert_eq(memcmp(&a->g, &b->g, sizeof(a->g)), 0, "graph changed");
    cr_assert_eq(a->d.used, b->d.used);
    cr_assert_eq(a->d.graph_bytes, b->d.graph_bytes);
    cr_assert_eq(a->d.evictions, b->d.evictions);
}

/* `call` fails with `want`, its message has `text`, nothing changed. */
#define BAD(dev, g, call, want, text)                                          \
    do {                                                                       \
        snap_t before_ = take(dev, g);                                         \
        TD_IS(call, want);                                                     \
        cr_assert(strstr(dv_last_error(), dv_result_name(want)) != NULL,       \
                  "message '%s' lacks the code", dv_last_error());             \
        cr_assert(strstr(dv_last_error(), text) != NULL,                       \
                  "%s: message '%s' lacks '%s'", #call, dv_last_error(),       \
                  text);                                                       \
        snap_t after_ = take(dev, g);                                          \
        same(&before_, &after_);                                               \
        td_check(dev);                                                         \
    } while (0)

/* Every call that takes a graph, given `bad` for it. */
static void every_call(dv_device_t *dev, dv_graph_t *g, dv_graph_t *bad,
                       dv_result_t want, const char *text) {
    uint64_t p = 0;
    int ch = 0;
    dv_graph_stats_t st;
    BAD(dev, g, dv_graph_destroy(dev, bad), want, text);
    BAD(dev, g, dv_graph_set_stream(dev, bad, NULL), want, text);
    BAD(dev, g, dv_graph_push(dev, bad, "x"), want, text);
    BAD(dev, g, dv_graph_pop(dev, bad, &ch), want, text);
    BAD(dev, g, dv_graph_iterate(dev, bad, NULL, &ch), want, text);
    BAD(dev, g, dv_graph_abort(dev, bad), want, text);
    BAD(dev, g, dv_graph_pause(dev, bad, 0), want, text);
    BAD(dev, g, dv_graph_resume(dev, bad, 0), want, text);
    BAD(dev, g, dv_graph_alloc(dev, bad, M, NULL, &p), want, text);
    BAD(dev, g, dv_graph_free(dev, bad, 0x1000, NULL), want, text);
    BAD(dev, g, dv_graph_get_stats(dev, bad, &st), want, text);
    dv_graph_event_t ev[2];
    uint32_t n = 0;
    BAD(dev, g, dv_graph_note_capture(dev, bad), want, text);
    BAD(dev, g, dv_graph_trace(dev, bad, 16), want, text);
    BAD(dev, g, dv_graph_get_trace(dev, bad, ev, 2, &n), want, text);
    BAD(dev, g, dv_graph_get_recording(dev, bad, "x", ev, 2, &n), want, text);
}

Test(graph_badinput, handles_of_the_wrong_kind_dead_or_junk) {
    dv_device_t *dev = td_open(0);
    dv_graph_t *g = tg_graph(dev, NULL, 0, 0);
    dv_graph_t *dead = tg_graph(dev, NULL, 0, 0);
    TD_OK(dv_graph_destroy(dev, dead));
    dv_vbar_t *v = NULL;
    TD_OK(dv_vbar_create(dev, TD_PAGE, &v));
    every_call(dev, g, NULL, DV_ERROR_INVALID_ARGUMENT, "graph is NULL");
    every_call(dev, g, dead, DV_ERROR_INVALID_ARGUMENT, "not a live graph");
    every_call(dev, g, (dv_graph_t *)(uintptr_t)0x1234, DV_ERROR_INVALID_ARGUMENT,
               "not a live graph");
    every_call(dev, g, (dv_graph_t *)v, DV_ERROR_INVALID_ARGUMENT,
               "a VBAR handle, not a graph");
    every_call(dev, g, (dv_graph_t *)dev, DV_ERROR_INVALID_ARGUMENT,
               "a device handle, not a graph");
    /* The graph where a device or a VBAR is expected. */
    uint64_t gen;
    BAD(dev, g, dv_graph_push((dv_device_t *)g, g, "x"),
        DV_ERROR_INVALID_ARGUMENT, "graph handle, not a device");
    BAD(dev, g, dv_fault(dev, (dv_vbar_t *)g, 0, TD_PAGE, &gen),
        DV_ERROR_INVALID_ARGUMENT, "graph handle, not a VBAR");
    TD_IS(dv_graph_push(NULL, g, "x"), DV_ERROR_INVALID_ARGUMENT);
    TD_OK(dv_vbar_destroy(dev, v));
    TD_OK(dv_graph_destroy(dev, g));
    TD_OK(dv_device_close(dev));
}

Test(graph_badinput, a_graph_of_another_device) {
    dv_device_t *a = td_open(0);
    dv_device_options_t o;
    td_options(&o, 0);
    o.ordinal = 1;
    dv_device_t *b = NULL;
    if (dv_device_open(&o, &b) != DV_OK) {
        TD_OK(dv_device_close(a));
        cr_skip_test("no second %s device", td_backend());
    }
    dv_graph_t *ga = tg_graph(a, NULL, 0, 0);
    dv_graph_t *gb = tg_graph(b, NULL, 0, 0);
    every_call(a, ga, gb, DV_ERROR_WRONG_DEVICE, "belongs to device");
    TD_OK(dv_graph_destroy(b, gb));
    TD_OK(dv_graph_destroy(a, ga));
    TD_OK(dv_device_close(b));
    TD_OK(dv_device_close(a));
}

Test(graph_badinput, create_refuses_bad_options) {
    dv_device_t *dev = td_open(0);
    dv_graph_t *g = tg_graph(dev, NULL, 0, 0); /* for the snapshots */
    dv_graph_t *out = (dv_graph_t *)(uintptr_t)1;
    dv_graph_options_t o;
    dv_graph_options_init(NULL); /* harmless */
    dv_graph_options_init(&o);
    BAD(dev, g, dv_graph_create(dev, &o, NULL), DV_ERROR_INVALID_ARGUMENT,
        "out is NULL");
    o.page_size = (1ull << 30) + 1;
    BAD(dev, g, dv_graph_create(dev, &o, &out), DV_ERROR_INVALID_ARGUMENT,
        "page_size");
    cr_assert_null(out);
    dv_graph_options_init(&o);
    o.max_variants = 65;
    BAD(dev, g, dv_graph_create(dev, &o, &out), DV_ERROR_INVALID_ARGUMENT,
        "max_variants");
    dv_graph_options_init(&o);
    o.flags = 0x80;
    BAD(dev, g, dv_graph_create(dev, &o, &out), DV_ERROR_INVALID_ARGUMENT,
        "flags");
    dv_graph_options_init(&o);
    o.arena_size = UINT64_MAX;
    BAD(dev, g, dv_graph_create(dev, &o, &out), DV_ERROR_INVALID_ARGUMENT,
        "arena_size");
    TD_IS(dv_graph_create(NULL, &o, &out), DV_ERROR_INVALID_ARGUMENT);
    if (strcmp(td_backend(), "host") == 0) {
        /* A junk stream and a dead one: the host backend can tell. */
        dv_graph_options_init(&o);
        o.stream = (void *)(uintptr_t)0x5678;
        BAD(dev, g, dv_graph_create(dev, &o, &out), DV_ERROR_INVALID_ARGUMENT,
            "not a live stream");
        void *s = NULL;
        TD_OK(dv_stream_create(dev, &s));
        TD_OK(dv_stream_destroy(dev, s));
        o.stream = s;
        BAD(dev, g, dv_graph_create(dev, &o, &out), DV_ERROR_INVALID_ARGUMENT,
            "not a live stream");
        BAD(dev, g, dv_graph_set_stream(dev, g, s), DV_ERROR_INVALID_ARGUMENT,
            "not a live stream");
    }
    TD_OK(dv_graph_destroy(dev, g));
    cr_assert_eq(td_stats(dev).graph_bytes, 0);
    TD_OK(dv_device_close(dev));
}

Test(graph_badinput, calls_in_the_wrong_order) {
    dv_device_t *dev = td_open(0);
    dv_graph_t *g = tg_graph(dev, NULL, 0, 0);
    int ch = 7;
    BAD(dev, g, dv_graph_pop(dev, g, &ch), DV_ERROR_INVALID_ARGUMENT,
        "no scope is open");
    cr_assert_eq(ch, 7, "an [out] of a failed call is left alone");
    BAD(dev, g, dv_graph_iterate(dev, g, NULL, &ch), DV_ERROR_INVALID_ARGUMENT,
        "no open scope");
    BAD(dev, g, dv_graph_resume(dev, g, 0), DV_ERROR_INVALID_ARGUMENT,
        "not paused");
    TD_OK(dv_graph_push(dev, g, "a"));
    BAD(dev, g, dv_graph_iterate(dev, g, "b", &ch), DV_ERROR_INVALID_ARGUMENT,
        "no open scope is named 'b'");
    char longname[300];
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    BAD(dev, g, dv_graph_push(dev, g, longname), DV_ERROR_INVALID_ARGUMENT,
        "at most 255");
    for (int i = 1; i < 1024; i++) {
        TD_OK(dv_graph_push(dev, g, NULL));
    }
    BAD(dev, g, dv_graph_push(dev, g, NULL), DV_ERROR_INVALID_ARGUMENT,
        "1024 scopes are open");
    TD_OK(dv_graph_abort(dev, g));
    TD_OK(dv_graph_destroy(dev, g));
    TD_OK(dv_device_close(dev));
}

Test(graph_badinput, bad_allocations_and_frees) {
    dv_device_t *dev = td_open(0);
    dv_graph_t *g = tg_graph(dev, NULL, 0, 0);
    TD_OK(dv_graph_push(dev, g, "s"));
    uint64_t p = 0;
    BAD(dev, g, dv_graph_alloc(dev, g, M, NULL, NULL), DV_ERROR_INVALID_ARGUMENT,
        "ptr NULL");
    BAD(dev, g, dv_graph_alloc(dev, g, 0, NULL, &p), DV_ERROR_INVALID_ARGUMENT,
        "size 0");
    BAD(dev, g, dv_graph_alloc(dev, g, 1ull << 49, NULL, &p),
        DV_ERROR_INVALID_ARGUMENT, "too large");
    dv_graph_stats_t st;
    BAD(dev, g, dv_graph_get_stats(dev, g, NULL), DV_ERROR_INVALID_ARGUMENT,
        "st is NULL");
    p = tg_alloc(dev, g, 2 * M);
    BAD(dev, g, dv_graph_free(dev, g, p + 512, NULL), DV_ERROR_INVALID_ARGUMENT,
        "not a live allocation");
    tg_free(dev, g, p, 2 * M);
    BAD(dev, g, dv_graph_free(dev, g, p, NULL), DV_ERROR_INVALID_ARGUMENT,
        "freed twice");
    TD_OK(dv_graph_get_stats(dev, g, &st));
    cr_assert_eq(st.frees, 1);
    tg_pop(dev, g);
    BAD(dev, g, dv_graph_free(dev, g, p, NULL), DV_ERROR_INVALID_ARGUMENT,
        "freed twice");
    TD_OK(dv_graph_destroy(dev, g));
    TD_OK(dv_device_close(dev));
}

Test(graph_badinput, busy_graphs_and_devices) {
    dv_device_t *dev = td_open(0);
    dv_graph_t *g = tg_graph(dev, NULL, 0, 0);
    BAD(dev, g, dv_device_close(dev), DV_ERROR_BUSY, "1 graph(s)");
    TD_OK(dv_graph_push(dev, g, "s"));
    BAD(dev, g, dv_graph_destroy(dev, g), DV_ERROR_BUSY, "scope(s) open");
    uint64_t p = tg_alloc(dev, g, M);
    TD_OK(dv_graph_abort(dev, g));
    BAD(dev, g, dv_graph_destroy(dev, g), DV_ERROR_BUSY, "still alive");
    tg_free(dev, g, p, M);
    TD_OK(dv_graph_destroy(dev, g));
    TD_OK(dv_device_close(dev));
}
