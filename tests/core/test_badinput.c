/*
 * test_badinput.c - bad input gets a clear error code and message and
 * leaves state untouched.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Streams (issue 9): junk values, destroyed streams and a double destroy
 * are refused by every call that takes a stream, on every backend; the
 * stream of another device is in test_multidev.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testdev.h"

#define P TD_PAGE

/* Snapshot of everything observable about one VBAR and its device. */
typedef struct snap {
    dv_device_stats_t st;
    dv_vbar_info_t info;
    uint8_t flags[8];
} snap_t;

static snap_t take(dv_device_t *dev, dv_vbar_t *v) {
    snap_t s;
    memset(&s, 0, sizeof(s));
    TD_OK(dv_device_get_stats(dev, &s.st));
    TD_OK(dv_vbar_get_info(dev, v, &s.info));
    uint64_t n = s.info.page_count < 8 ? s.info.page_count : 8;
    TD_OK(dv_vbar_residency(dev, v, 0, n, s.flags));
    return s;
}

static void same(const snap_t *a, const snap_t *b) {
    cr_assert_eq(memcmp(&a->info, &b->info, sizeof(a->info)), 0, "VBAR changed");
    cr_assert_eq(memcmp(a->flags, b->flags, sizeof(a->flags)), 0, "pages changed");
    cr_assert_eq(a->st.resident_bytes, b->st.resident_bytes);
    cr_assert_eq(a->st.pinned_bytes, b->st.pinned_bytes);
    cr_assert_eq(a->st.evictions, b->st.evictions);
    cr_assert_eq(a->st.pages_populated, b->st.pages_populated);
}

/* The call fails with `want`, says something, and changes nothing. */
#define BAD(dev, v, call, want)                                                \
    do {                                                                       \
        snap_t before_ = take(dev, v);                                         \
        TD_IS(call, want);                                                     \
        cr_assert_neq(strlen(dv_last_error()), 0, "no message for %s", #call); \
        cr_assert(strstr(dv_last_error(), dv_result_name(want)) != NULL,       \
                  "message '%s' lacks the code", dv_last_error());             \
        snap_t after_ = take(dev, v);                                          \
        same(&before_, &after_);                                               \
        td_check(dev);                                                         \
    } while (0)

Test(badinput, null_and_dead_handles) {
    dv_device_t *dev = td_open(0);
    dv_vbar_t *v = NULL;
    TD_OK(dv_vbar_create(dev, 8 * P, &v));
    uint64_t g;
    TD_IS(dv_fault(NULL, v, 0, P, &g), DV_ERROR_INVALID_ARGUMENT);
    BAD(dev, v, dv_fault(dev, NULL, 0, P, &g), DV_ERROR_INVALID_ARGUMENT);
    BAD(dev, v, dv_unpin(dev, NULL, 0, P, NULL), DV_ERROR_INVALID_ARGUMENT);
    BAD(dev, v, dv_vbar_prioritize(dev, NULL), DV_ERROR_INVALID_ARGUMENT);
    BAD(dev, v, dv_vbar_create(dev, P, NULL), DV_ERROR_INVALID_ARGUMENT);
    BAD(dev, v, dv_device_get_stats(dev, NULL), DV_ERROR_INVALID_ARGUMENT);
    BAD(dev, v, dv_vbar_get_info(dev, v, NULL), DV_ERROR_INVALID_ARGUMENT);
    BAD(dev, v, dv_vbar_residency(dev, v, 0, 1, NULL), DV_ERROR_INVALID_ARGUMENT);
    TD_IS(dv_device_close(NULL), DV_ERROR_INVALID_ARGUMENT);
    TD_IS(dv_device_open(NULL, NULL), DV_ERROR_INVALID_ARGUMENT);
    /* A VBAR handle that is not one. */
    uint64_t junk[16] = {0};
    BAD(dev, v, dv_fault(dev, (dv_vbar_t *)junk, 0, P, &g),
        DV_ERROR_INVALID_ARGUMENT);
    TD_OK(dv_vbar_destroy(dev, v));
    TD_OK(dv_device_close(dev));
}

Test(badinput, ranges) {
    dv_device_t *dev = td_open(0);
    dv_vbar_t *v = NULL;
    TD_OK(dv_vbar_create(dev, 8 * P, &v));
    uint64_t g;
    TD_OK(dv_fault(dev, v, 0, P, &g)); /* some state to keep */
    BAD(dev, v, dv_fault(dev, v, 0, 0, &g), DV_ERROR_INVALID_ARGUMENT);
    BAD(dev, v, dv_fault(dev, v, 8 * P, 1, &g), DV_ERROR_OUT_OF_RANGE);
    BAD(dev, v, dv_fault(dev, v, 7 * P, P + 1, &g), DV_ERROR_OUT_OF_RANGE);
    BAD(dev, v, dv_fault(dev, v, UINT64_MAX, 2, &g), DV_ERROR_OUT_OF_RANGE);
    BAD(dev, v, dv_fault(dev, v, P, UINT64_MAX, &g), DV_ERROR_OUT_OF_RANGE);
    BAD(dev, v, dv_unpin(dev, v, UINT64_MAX - 1, 4, NULL), DV_ERROR_OUT_OF_RANGE);
    BAD(dev, v, dv_unpin(dev, v, 0, 0, NULL), DV_ERROR_INVALID_ARGUMENT);
    BAD(dev, v, dv_vbar_residency(dev, v, 7, 2, (uint8_t[2]){0}),
        DV_ERROR_OUT_OF_RANGE);
    BAD(dev, v, dv_vbar_residency(dev, v, UINT64_MAX, 2, (uint8_t[2]){0}),
        DV_ERROR_OUT_OF_RANGE);
    uint64_t gens[1];
    BAD(dev, v, dv_vbar_generations(dev, v, 0, 2 * P, gens, 1),
        DV_ERROR_INVALID_ARGUMENT);
    dv_vbar_t *w = NULL;
    BAD(dev, v, dv_vbar_create(dev, 0, &w), DV_ERROR_INVALID_ARGUMENT);
    BAD(dev, v, dv_vbar_create(dev, UINT64_MAX, &w), DV_ERROR_INVALID_ARGUMENT);
    BAD(dev, v, dv_vbar_create(dev, UINT64_MAX - P / 2, &w),
        DV_ERROR_INVALID_ARGUMENT);
    cr_assert_null(w);
    TD_OK(dv_unpin(dev, v, 0, P, NULL));
    TD_OK(dv_vbar_destroy(dev, v));
    TD_OK(dv_device_close(dev));
}

Test(badinput, wrong_order) {
    dv_device_t *dev = td_open(0);
    dv_vbar_t *v = NULL;
    TD_OK(dv_vbar_create(dev, 8 * P, &v));
    uint64_t g;
    /* Unpin of an unpinned range, including a partly pinned one. */
    BAD(dev, v, dv_unpin(dev, v, 0, P, NULL), DV_ERROR_NOT_PINNED);
    TD_OK(dv_fault(dev, v, 0, P, &g));
    BAD(dev, v, dv_unpin(dev, v, 0, 2 * P, NULL), DV_ERROR_NOT_PINNED);
    /* Destroy with pinned pages; close with live VBARs. */
    BAD(dev, v, dv_vbar_destroy(dev, v), DV_ERROR_BUSY);
    BAD(dev, v, dv_device_close(dev), DV_ERROR_BUSY);
    BAD(dev, v, dv_framework_release(dev, 1), DV_ERROR_INVALID_ARGUMENT);
    TD_OK(dv_unpin(dev, v, 0, P, NULL));
    TD_OK(dv_vbar_destroy(dev, v));
    TD_OK(dv_device_close(dev));
}

Test(badinput, vbar_of_another_device) {
    dv_device_options_t o;
    td_options(&o, 0);
    dv_device_t *d0 = td_open_opts(&o);
    o.ordinal = 1;
    dv_device_t *d1 = NULL;
    if (dv_device_open(&o, &d1) != DV_OK) {
        /* One device on this backend: a second handle on ordinal 0. */
        o.ordinal = 0;
        d1 = td_open_opts(&o);
    }
    dv_vbar_t *v0 = NULL, *v1 = NULL;
    TD_OK(dv_vbar_create(d0, 4 * P, &v0));
    TD_OK(dv_vbar_create(d1, 4 * P, &v1));
    uint64_t g;
    BAD(d0, v0, dv_fault(d1, v0, 0, P, &g), DV_ERROR_WRONG_DEVICE);
    BAD(d1, v1, dv_fault(d0, v1, 0, P, &g), DV_ERROR_WRONG_DEVICE);
    BAD(d0, v0, dv_vbar_destroy(d1, v0), DV_ERROR_WRONG_DEVICE);
    BAD(d0, v0, dv_vbar_prioritize(d1, v0), DV_ERROR_WRONG_DEVICE);
    BAD(d0, v0, dv_vbar_evict(d1, v0, P, &g), DV_ERROR_WRONG_DEVICE);
    BAD(d0, v0, dv_unpin(d1, v0, 0, P, NULL), DV_ERROR_WRONG_DEVICE);
    /* Each device's work stays its own. */
    TD_OK(dv_fault(d0, v0, 0, 2 * P, &g));
    cr_assert_eq(td_stats(d1).resident_bytes, 0);
    TD_OK(dv_unpin(d0, v0, 0, 2 * P, NULL));
    TD_OK(dv_vbar_destroy(d0, v0));
    TD_OK(dv_vbar_destroy(d1, v1));
    TD_OK(dv_device_close(d0));
    TD_OK(dv_device_close(d1));
}

Test(badinput, bad_options) {
    dv_device_options_t o;
    td_options(&o, 0);
    dv_device_t *dev = (dv_device_t *)0x1;
    o.backend = "no-such-backend";
    TD_IS(dv_device_open(&o, &dev), DV_ERROR_INVALID_ARGUMENT);
    cr_assert_null(dev);
    cr_assert(strstr(dv_last_error(), "no-such-backend"));
    td_options(&o, 0);
    o.ordinal = -1;
    TD_IS(dv_device_open(&o, &dev), DV_ERROR_INVALID_ARGUMENT);
    o.ordinal = 1000;
    dv_result_t r = dv_device_open(&o, &dev);
    cr_assert(r == DV_ERROR_DEVICE_NOT_FOUND || r == DV_ERROR_BACKEND,
              "%s", dv_last_error());
    TD_IS(dv_device_open_hal(NULL, NULL, &dev), DV_ERROR_INVALID_ARGUMENT);
    TD_IS(dv_log_set_level((dv_log_level_t)99), DV_ERROR_INVALID_ARGUMENT);
}

/* ---- streams (issue 9) ------------------------------------------------- */

/* The backend under test drives a real GPU driver (not a simulated one):
 * there a destroyed stream's address may come back from the driver for a
 * new stream, which then is that live stream. The host backend and the
 * simulated drivers never reuse a dead stream's address. A backend this
 * file does not know says so through DV_TEST_REAL_DRIVER (testdev.h). */
static int real_driver(void) {
    const char *b = td_backend_name();
    const char *lib = NULL;
    const char *said = getenv("DV_TEST_REAL_DRIVER");
    if (said && *said) {
        return strcmp(said, "0") != 0;
    }
    if (strcmp(b, "cuda") == 0) {
        lib = getenv("DYNVRAM_CUDA_LIBRARY");
    } else if (strcmp(b, "hip") == 0) {
        lib = getenv("DYNVRAM_HIP_LIBRARY");
    } else if (strcmp(b, "levelzero") == 0) {
        lib = getenv("ZE_ENABLE_ALT_DRIVERS");
    } else {
        return 0;
    }
    return !lib || !*lib;
}

/* Can the backend under test tell a foreign junk value (a stack address,
 * freed memory) from a stream? Only if its driver validates handles: the
 * host backend, ROCm (it looks streams up) and the simulated drivers do;
 * the real CUDA driver (seen: SIGSEGV in every stream call on driver
 * 580.159.04) and Level Zero drivers read through the handle. There, a
 * backend can only recognise values below 64 KiB and the streams it made
 * itself, the last few it destroyed included (tests/cuda/test_cuda.c runs
 * the foreign cases in child processes). A real driver this file does not
 * know is assumed to read through handles too. */
static int foreign_junk_checked(void) {
    return !real_driver() || strcmp(td_backend_name(), "hip") == 0;
}

/* How many of its most recently destroyed streams a backend is sure to
 * recognise without asking its driver (the smallest window in tree: Level
 * Zero's DV__ZE_PARKED). On a simulated driver, every dead one. */
#define RECENT_DEAD 32

/* The message of the last failure names the stream. */
static void names_stream(void *s, const char *call) {
    char p[32];
    snprintf(p, sizeof(p), "%p", s);
    cr_assert(strstr(dv_last_error(), p) != NULL,
              "%s: the message does not name stream %s: '%s'", call, p,
              dv_last_error());
}

/* BAD() for a call taking stream `s`: the message also names `s` (checked
 * before the snapshot, whose successful calls clear the message). */
#define BAD_STREAM(dev, v, call, want, s)                                      \
    do {                                                                       \
        snap_t before_ = take(dev, v);                                         \
        TD_IS(call, want);                                                     \
        cr_assert(strstr(dv_last_error(), dv_result_name(want)) != NULL,       \
                  "message '%s' lacks the code", dv_last_error());             \
        names_stream(s, #call);                                                \
        snap_t after_ = take(dev, v);                                          \
        same(&before_, &after_);                                               \
        td_check(dev);                                                         \
    } while (0)

/* Every call that takes a stream refuses `s` with `want` (destroy: with
 * DV_ERROR_INVALID_ARGUMENT, as only streams made on that device may be
 * destroyed), names it and changes nothing. Page 0 of v is pinned and
 * resident, so each call would succeed with a good stream. */
static void refused_everywhere(dv_device_t *dev, dv_vbar_t *v, void *s,
                               dv_result_t want) {
    dv_vbar_info_t info;
    uint8_t buf[4096];
    memset(buf, 0x5a, sizeof(buf));
    TD_OK(dv_vbar_get_info(dev, v, &info));
    if (td_hal()->fence_record) {
        /* (Without fences unpin never looks at its stream.) */
        BAD_STREAM(dev, v, dv_unpin(dev, v, 0, P, s), want, s);
    }
    BAD_STREAM(dev, v, dv_copy_h2d(dev, info.base, buf, sizeof(buf), s), want,
               s);
    BAD_STREAM(dev, v, dv_copy_d2h(dev, buf, info.base, sizeof(buf), s), want,
               s);
    BAD_STREAM(dev, v, dv_stream_synchronize(dev, s), want, s);
    BAD_STREAM(dev, v, dv_stream_destroy(dev, s), DV_ERROR_INVALID_ARGUMENT, s);
    cr_assert(td_page_flags(dev, v, 0) & DV_PAGE_PINNED, "page 0 unpinned");
}

/* A device with a VBAR whose page 0 is faulted (pinned). */
static dv_device_t *open_pinned(dv_vbar_t **v) {
    dv_device_t *dev = td_open(0);
    uint64_t g;
    TD_OK(dv_vbar_create(dev, 4 * P, v));
    TD_OK(dv_fault(dev, *v, 0, P, &g));
    return dev;
}

static void close_pinned(dv_device_t *dev, dv_vbar_t *v) {
    TD_OK(dv_unpin(dev, v, 0, P, NULL));
    TD_OK(dv_vbar_destroy(dev, v));
    TD_OK(dv_device_close(dev));
}

Test(badinput, junk_streams) {
    dv_vbar_t *v = NULL;
    dv_device_t *dev = open_pinned(&v);
    int local = 0;
    void *p = malloc(256);
    cr_assert(p != NULL);
    volatile uintptr_t freed = (uintptr_t)p; /* only the address is kept */
    free(p);
    void *junk[] = {(void *)(uintptr_t)0x10, &local, (void *)freed};
    size_t n = foreign_junk_checked() ? sizeof(junk) / sizeof(junk[0]) : 1;
    for (size_t i = 0; i < n; i++) {
        refused_everywhere(dev, v, junk[i], DV_ERROR_INVALID_ARGUMENT);
        /* Refused again: a refused stream is not remembered as good. */
        refused_everywhere(dev, v, junk[i], DV_ERROR_INVALID_ARGUMENT);
    }
    close_pinned(dev, v);
}

Test(badinput, dead_stream_and_double_destroy) {
    dv_vbar_t *v = NULL;
    dv_device_t *dev = open_pinned(&v);
    dv_vbar_info_t info;
    uint8_t buf[4096] = {0};
    void *s = NULL;
    TD_OK(dv_vbar_get_info(dev, v, &info));
    TD_OK(dv_stream_create(dev, &s));
    TD_OK(dv_copy_h2d(dev, info.base, buf, sizeof(buf), s));
    TD_OK(dv_stream_synchronize(dev, s));
    TD_OK(dv_stream_destroy(dev, s));
    refused_everywhere(dev, v, s, DV_ERROR_INVALID_ARGUMENT);
    /* The default stream is no stream to destroy. */
    BAD(dev, v, dv_stream_destroy(dev, NULL), DV_ERROR_INVALID_ARGUMENT);
    /* A stream unpinned on, then destroyed, is gone too. */
    void *s2 = NULL;
    uint64_t g;
    TD_OK(dv_stream_create(dev, &s2));
    TD_OK(dv_fault(dev, v, P, P, &g));
    TD_OK(dv_unpin(dev, v, P, P, s2));
    TD_OK(dv_stream_destroy(dev, s2));
    if (!real_driver() || s2 != s) {
        refused_everywhere(dev, v, s2, DV_ERROR_INVALID_ARGUMENT);
    }
    td_check(dev);
    close_pinned(dev, v);
}

/* Many create/destroy cycles, every dead handle kept: each stays refused
 * however many streams come after it, while the live ones keep working. */
Test(badinput, dead_streams_stay_dead_over_many_cycles, .timeout = 120) {
    enum { CYCLES = 200, KEEP = 3 };
    dv_vbar_t *v = NULL;
    dv_device_t *dev = open_pinned(&v);
    dv_vbar_info_t info;
    uint8_t buf[512] = {0};
    static void *dead[CYCLES];
    void *live[KEEP];
    TD_OK(dv_vbar_get_info(dev, v, &info));
    for (int k = 0; k < KEEP; k++) {
        TD_OK(dv_stream_create(dev, &live[k]));
    }
    for (int i = 0; i < CYCLES; i++) {
        TD_OK(dv_stream_create(dev, &dead[i]));
        TD_OK(dv_copy_h2d(dev, info.base, buf, sizeof(buf), dead[i]));
        TD_OK(dv_stream_synchronize(dev, dead[i]));
        TD_OK(dv_stream_destroy(dev, dead[i]));
    }
    int aliases = 0;
    for (int i = 0; i < CYCLES; i++) {
        int alias = 0;
        for (int k = 0; k < KEEP; k++) {
            alias |= dead[i] == live[k];
        }
        for (int j = 0; j < CYCLES; j++) {
            alias |= j != i && dead[j] == dead[i];
        }
        if (alias) {
            /* Only a real driver may hand a dead address out again; the
             * handle is then that live stream (or one dead again). */
            aliases++;
            cr_assert(real_driver(), "stream %d's address %p was reused", i,
                      dead[i]);
            continue;
        }
        if (real_driver() && i < CYCLES - RECENT_DEAD) {
            continue; /* forgotten by the backend, unknown to the driver */
        }
        TD_IS(dv_stream_synchronize(dev, dead[i]), DV_ERROR_INVALID_ARGUMENT);
        names_stream(dead[i], "dv_stream_synchronize");
        TD_IS(dv_copy_h2d(dev, info.base, buf, sizeof(buf), dead[i]),
              DV_ERROR_INVALID_ARGUMENT);
        TD_IS(dv_stream_destroy(dev, dead[i]), DV_ERROR_INVALID_ARGUMENT);
    }
    if (aliases) {
        cr_log_info("%d of %d dead stream addresses were reused by the driver",
                    aliases, CYCLES);
    }
    for (int k = 0; k < KEEP; k++) {
        TD_OK(dv_copy_h2d(dev, info.base, buf, sizeof(buf), live[k]));
        TD_OK(dv_stream_synchronize(dev, live[k]));
        TD_OK(dv_stream_destroy(dev, live[k]));
    }
    td_check(dev);
    close_pinned(dev, v);
}

/* The core asks the backend about a stream only when it has not seen it,
 * never about the default (NULL) stream, and never again about one the
 * backend accepted. A wrapper around the backend's stream_check counts. */
#define SC_MAX 16
static const dv_hal_ops_t *sc_real;
static int sc_null_calls, sc_repeat_calls, sc_calls;
static void *sc_accepted[SC_MAX];
static int sc_naccepted;

static dv_result_t sc_wrap(void *ctx, void *stream) {
    sc_calls++;
    if (!stream) {
        sc_null_calls++;
    }
    for (int i = 0; i < sc_naccepted; i++) {
        sc_repeat_calls += sc_accepted[i] == stream;
    }
    dv_result_t r = sc_real->stream_check(ctx, stream);
    if (r == DV_OK && sc_naccepted < SC_MAX) {
        sc_accepted[sc_naccepted++] = stream;
    }
    return r;
}

Test(badinput, stream_check_is_asked_once_and_never_about_null) {
    sc_real = td_hal();
    if (!sc_real->stream_check) {
        cr_skip_test("backend %s has no stream_check", td_backend());
    }
    static dv_hal_ops_t ops;
    ops = *sc_real;
    ops.stream_check = sc_wrap;
    dv_device_options_t o;
    td_options(&o, 0);
    dv_device_t *dev = NULL, *other = NULL;
    TD_OK(dv_device_open_hal(&ops, &o, &dev));
    TD_OK(dv_device_open_hal(&ops, &o, &other)); /* a second handle */
    dv_vbar_t *v = NULL;
    dv_vbar_info_t info;
    uint8_t buf[512] = {0};
    uint64_t g;
    void *s = NULL, *t = NULL;
    TD_OK(dv_vbar_create(dev, 4 * P, &v));
    TD_OK(dv_vbar_get_info(dev, v, &info));
    TD_OK(dv_stream_create(dev, &s));
    TD_OK(dv_stream_create(other, &t));
    for (int i = 0; i < 3; i++) {
        TD_OK(dv_fault(dev, v, 0, P, &g));
        TD_OK(dv_copy_h2d(dev, info.base, buf, sizeof(buf), NULL));
        TD_OK(dv_copy_d2h(dev, buf, info.base, sizeof(buf), s));
        TD_OK(dv_stream_synchronize(dev, NULL));
        TD_OK(dv_stream_synchronize(dev, s));
        TD_OK(dv_unpin(dev, v, 0, P, i == 1 ? s : NULL));
    }
    cr_assert_eq(sc_calls, 0, "asked about NULL or an own stream");
    /* A stream of another device handle: asked about, each time it is
     * refused, once if it is accepted (the same GPU on some backends). */
    for (int i = 0; i < 3; i++) {
        dv_result_t r = dv_stream_synchronize(dev, t);
        cr_assert(r == DV_OK || r == DV_ERROR_WRONG_DEVICE, "%s",
                  dv_last_error());
    }
    cr_assert_geq(sc_calls, 1);
    TD_IS(dv_stream_synchronize(dev, (void *)(uintptr_t)0x10),
          DV_ERROR_INVALID_ARGUMENT);
    cr_assert_eq(sc_null_calls, 0, "stream_check was asked about NULL");
    cr_assert_eq(sc_repeat_calls, 0, "an accepted stream was checked again");
    TD_OK(dv_stream_destroy(dev, s));
    TD_OK(dv_stream_destroy(other, t));
    TD_OK(dv_vbar_destroy(dev, v));
    TD_OK(dv_device_close(dev));
    TD_OK(dv_device_close(other));
}
