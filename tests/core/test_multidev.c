/*
 * test_multidev.c - two devices in one process are independent (issue 6).
 * SPDX-License-Identifier: Apache-2.0
 *
 * Devices 0 and 1 of the backend under test are opened side by side, each
 * with its own vram_limit. What must hold:
 *  - pressure on one device (faults of a new VBAR, framework reservations,
 *    evictions, pool trims) leaves the other's residency, generations,
 *    VBAR info, stats and memory contents bit for bit unchanged, and the
 *    generation counter is per device;
 *  - a VBAR passed with the other device is refused with
 *    DV_ERROR_WRONG_DEVICE by every (dev, vbar) entry point, with a message
 *    naming the VBAR and both devices, and nothing changes;
 *  - each device has its own lock: a driver call stuck inside device 0's
 *    lock does not stop device 1; threads on both devices and one crossing
 *    between them leave both devices' invariants intact;
 *  - a stream of one device is refused by the other: DV_ERROR_WRONG_DEVICE
 *    for unpin, copies and synchronize, DV_ERROR_INVALID_ARGUMENT for
 *    destroy, with nothing changed;
 *  - closing one device leaves the other working.
 * Every test skips when the backend has fewer than two devices. The
 * simulated drivers expose one device unless told otherwise, so this binary
 * asks them for two (see md_sim_devices); a real driver ignores those
 * variables.
 */
#define _POSIX_C_SOURCE 200809L /* setenv, clock_gettime */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testdev.h"

#define P TD_PAGE
#define MD_MAX_VBARS 4
#define MD_MAX_PAGES 16

/* Before main (and so before testdev.c's probe loads any driver): ask the
 * simulated drivers for two devices unless the environment already says. */
__attribute__((constructor)) static void md_sim_devices(void) {
    setenv("DVSIM_HIP_DEVICES", "2", 0);
    setenv("DVSIM_ZE_DEVICES", "2", 0);
    setenv("DV_FAKE_CUDA_DEVICES", "2", 0);
}

/* Skip unless the backend under test has two devices. */
static void need_two(void) {
    int count = 0;
    char reason[256] = "";
    const dv_hal_ops_t *ops = td_hal();
    cr_assert(ops != NULL);
    if (ops->probe(&count, reason, sizeof(reason)) != DV_OK || count < 2) {
        cr_skip_test("backend %s has %d device(s); two are needed", td_backend(),
                     count);
    }
}

static dv_device_t *open_ordinal(int ordinal, uint64_t limit_pages) {
    dv_device_options_t o;
    td_options(&o, limit_pages);
    o.ordinal = ordinal;
    return td_open_opts(&o);
}

/* ---- snapshots: everything observable about a device and its VBARs ---- */

typedef struct md_snap {
    dv_device_stats_t st;
    uint32_t nv;
    dv_vbar_info_t info[MD_MAX_VBARS];
    uint8_t flags[MD_MAX_VBARS][MD_MAX_PAGES];
    uint64_t gens[MD_MAX_VBARS][MD_MAX_PAGES];
} md_snap_t;

static void snap(dv_device_t *d, dv_vbar_t *const *v, uint32_t nv,
                 md_snap_t *s) {
    memset(s, 0, sizeof(*s));
    cr_assert_leq(nv, MD_MAX_VBARS);
    s->st = td_stats(d);
    s->nv = nv;
    for (uint32_t k = 0; k < nv; k++) {
        TD_OK(dv_vbar_get_info(d, v[k], &s->info[k]));
        uint64_t n = s->info[k].page_count;
        cr_assert_leq(n, MD_MAX_PAGES);
        TD_OK(dv_vbar_residency(d, v[k], 0, n, s->flags[k]));
        TD_OK(dv_vbar_generations(d, v[k], 0, n * P, s->gens[k], n));
    }
}

#define SAME(field)                                                            \
    cr_assert_eq(a->field, b->field, "%s: %s changed from %llu to %llu", what, \
                 #field, (unsigned long long)a->field,                        \
                 (unsigned long long)b->field)

static void same(const md_snap_t *a, const md_snap_t *b, const char *what) {
    SAME(st.budget);
    SAME(st.used);
    SAME(st.resident_bytes);
    SAME(st.pinned_bytes);
    SAME(st.pool_bytes);
    SAME(st.framework_bytes);
    SAME(st.faults_hit);
    SAME(st.faults_populated);
    SAME(st.faults_offloaded);
    SAME(st.pages_populated);
    SAME(st.pool_reuses);
    SAME(st.evictions);
    SAME(st.evicted_bytes);
    SAME(st.fence_waits);
    SAME(st.oom_retries);
    SAME(st.vbar_count);
    cr_assert_eq(a->nv, b->nv);
    for (uint32_t k = 0; k < a->nv; k++) {
        SAME(info[k].base);
        SAME(info[k].resident_bytes);
        SAME(info[k].watermark);
        SAME(info[k].watermark_limit);
        SAME(info[k].priority_rank);
        for (uint64_t i = 0; i < a->info[k].page_count; i++) {
            SAME(flags[k][i]);
            SAME(gens[k][i]);
        }
    }
    /* Whatever the fields above miss (padding aside, all of it). */
    cr_assert(memcmp(&a->st, &b->st, sizeof(a->st)) == 0,
              "%s: device stats differ", what);
}

/* ---- contents: a pattern per (device, page), checked through copies ---- */

static uint8_t *page_buf(void) {
    uint8_t *p = malloc(P);
    cr_assert(p != NULL);
    return p;
}

static void pattern(uint8_t *p, uint32_t seed) {
    uint32_t x = seed * 2654435761u + 7;
    for (uint64_t i = 0; i < P; i += 64) {
        x = x * 1103515245u + 12345u;
        memset(p + i, (int)(x >> 16), 64);
    }
}

static void write_page(dv_device_t *d, dv_vbar_t *v, uint64_t i, uint32_t seed) {
    dv_vbar_info_t info;
    uint8_t *src = page_buf();
    TD_OK(dv_vbar_get_info(d, v, &info));
    pattern(src, seed);
    TD_OK(dv_copy_h2d(d, info.base + i * P, src, P, NULL));
    TD_OK(dv_stream_synchronize(d, NULL));
    free(src);
}

static void check_page(dv_device_t *d, dv_vbar_t *v, uint64_t i, uint32_t seed,
                       const char *what) {
    dv_vbar_info_t info;
    uint8_t *want = page_buf();
    uint8_t *got = page_buf();
    TD_OK(dv_vbar_get_info(d, v, &info));
    pattern(want, seed);
    memset(got, 0, P);
    TD_OK(dv_copy_d2h(d, got, info.base + i * P, P, NULL));
    TD_OK(dv_stream_synchronize(d, NULL));
    cr_assert(memcmp(want, got, P) == 0, "%s: page %llu lost its contents",
              what, (unsigned long long)i);
    free(want);
    free(got);
}

/* Fault pages [0, n) of v one at a time, fill each with seed + i, unpin.
 * Returns the generation of the last page populated. */
static uint64_t fill(dv_device_t *d, dv_vbar_t *v, uint64_t n, uint32_t seed) {
    uint64_t g = 0;
    for (uint64_t i = 0; i < n; i++) {
        TD_OK(dv_fault(d, v, i * P, P, &g));
        write_page(d, v, i, seed + (uint32_t)i);
        TD_OK(dv_unpin(d, v, i * P, P, NULL));
    }
    return g;
}

/* ---- pressure on one device leaves the other alone ---- */

/* Everything that makes memory move on `d` (its `limit` pages in use, some
 * by `old`, which has `limit` pages): a new VBAR on top faulted to the
 * limit, framework reservations up to and past the budget, framework and
 * VBAR evictions, a pool trim, a refill of `old`, a stream. */
static void pressure(dv_device_t *d, dv_vbar_t *old, uint64_t limit) {
    dv_vbar_t *vn = NULL;
    uint64_t g, freed = 0;
    uint64_t ev0 = td_stats(d).evictions;
    uint64_t had = td_resident_pages(d, old);
    cr_assert_geq(limit, 3);
    TD_OK(dv_vbar_create(d, limit * P, &vn));
    for (uint64_t i = 0; i < limit; i++) {
        TD_OK(dv_fault(d, vn, i * P, P, &g));
        TD_OK(dv_unpin(d, vn, i * P, P, NULL));
    }
    cr_assert_eq(td_resident_pages(d, old), 0, "the new VBAR on top took all");
    cr_assert_geq(td_stats(d).evictions, ev0 + had);
    TD_OK(dv_framework_reserve(d, 2 * P));
    TD_OK(dv_framework_evict(d, P, &freed));
    cr_assert_geq(freed, P);
    TD_IS(dv_framework_reserve(d, (limit + 1) * P), DV_ERROR_OUT_OF_DEVICE_MEMORY);
    TD_OK(dv_framework_release(d, 2 * P));
    TD_OK(dv_vbar_evict(d, vn, UINT64_MAX, &freed));
    TD_OK(dv_device_trim_pool(d));
    TD_OK(dv_vbar_prioritize(d, old));
    TD_OK(dv_vbar_set_watermark_limit(d, old, P));
    TD_OK(dv_device_reset_watermark_limits(d));
    fill(d, old, limit, 900);
    void *s = NULL;
    dv_result_t r = dv_stream_create(d, &s);
    if (r == DV_OK) {
        TD_OK(dv_stream_destroy(d, s));
    } else {
        cr_assert_eq(r, DV_ERROR_NOT_SUPPORTED, "%s", dv_last_error());
    }
    TD_OK(dv_vbar_destroy(d, vn));
    td_check(d);
}

/* `quiet` is filled to its limit and snapshotted; `busy` goes through
 * pressure(); quiet must not have noticed, and its next fresh page gets the
 * stamp right after its own last one. */
static void isolation(dv_device_t *quiet, uint64_t qlim, dv_device_t *busy,
                      uint64_t blim) {
    dv_vbar_t *vq = NULL, *vb = NULL, *vq2 = NULL;
    TD_OK(dv_vbar_create(quiet, qlim * P, &vq));
    TD_OK(dv_vbar_create(busy, blim * P, &vb));
    uint64_t qgen = fill(quiet, vq, qlim, 100);
    fill(busy, vb, blim, 200);
    cr_assert_eq(td_stats(quiet).budget, qlim * P, "own vram_limit");
    cr_assert_eq(td_stats(busy).budget, blim * P, "own vram_limit");

    md_snap_t before, after;
    snap(quiet, &vq, 1, &before);
    pressure(busy, vb, blim);
    snap(quiet, &vq, 1, &after);
    same(&before, &after, "quiet device after pressure on the other");
    for (uint64_t i = 0; i < qlim; i++) {
        check_page(quiet, vq, i, 100 + (uint32_t)i, "quiet device");
    }
    /* The busy device populated pages meanwhile; a shared counter would
     * show here as a skipped stamp. */
    uint64_t g = 0;
    TD_OK(dv_vbar_create(quiet, P, &vq2));
    TD_OK(dv_fault(quiet, vq2, 0, P, &g));
    cr_assert_eq(g, qgen + 1, "generation %llu after %llu: the counter is "
                 "shared between devices", (unsigned long long)g,
                 (unsigned long long)qgen);
    TD_OK(dv_unpin(quiet, vq2, 0, P, NULL));
    td_check(quiet);
    td_check(busy);
    TD_OK(dv_vbar_destroy(quiet, vq2));
    TD_OK(dv_vbar_destroy(quiet, vq));
    TD_OK(dv_vbar_destroy(busy, vb));
}

Test(multidev, pressure_on_device_1_leaves_device_0_alone) {
    need_two();
    dv_device_t *d0 = open_ordinal(0, 6);
    dv_device_t *d1 = open_ordinal(1, 4);
    isolation(d0, 6, d1, 4);
    TD_OK(dv_device_close(d0));
    TD_OK(dv_device_close(d1));
}

Test(multidev, pressure_on_device_0_leaves_device_1_alone) {
    need_two();
    dv_device_t *d0 = open_ordinal(0, 3);
    dv_device_t *d1 = open_ordinal(1, 5);
    isolation(d1, 5, d0, 3);
    TD_OK(dv_device_close(d0));
    TD_OK(dv_device_close(d1));
}

/* ---- a VBAR with the wrong device ---- */

#define MD_APIS 11
#define SENTINEL 0x5a5a5a5a5a5a5a5aull

/* Call (dev, vbar) entry point k; out parameters start as sentinels and
 * must come back untouched. */
static dv_result_t call_api(int k, dv_device_t *d, dv_vbar_t *v,
                            const char **name) {
    dv_vbar_info_t info;
    uint64_t out = SENTINEL, gens[2] = {SENTINEL, SENTINEL};
    uint8_t flags[2] = {0xa5, 0xa5};
    dv_result_t r = DV_OK;
    memset(&info, 0xa5, sizeof(info));
    switch (k) {
    case 0: *name = "dv_vbar_destroy"; r = dv_vbar_destroy(d, v); break;
    case 1: *name = "dv_vbar_get_info"; r = dv_vbar_get_info(d, v, &info); break;
    case 2: *name = "dv_fault"; r = dv_fault(d, v, 0, P, &out); break;
    case 3: *name = "dv_unpin"; r = dv_unpin(d, v, 0, P, NULL); break;
    case 4: *name = "dv_vbar_prioritize"; r = dv_vbar_prioritize(d, v); break;
    case 5: *name = "dv_vbar_deprioritize"; r = dv_vbar_deprioritize(d, v); break;
    case 6: *name = "dv_vbar_set_watermark"; r = dv_vbar_set_watermark(d, v, P); break;
    case 7:
        *name = "dv_vbar_set_watermark_limit";
        r = dv_vbar_set_watermark_limit(d, v, 2 * P);
        break;
    case 8: *name = "dv_vbar_evict"; r = dv_vbar_evict(d, v, UINT64_MAX, &out); break;
    case 9: *name = "dv_vbar_residency"; r = dv_vbar_residency(d, v, 0, 2, flags); break;
    default:
        *name = "dv_vbar_generations";
        r = dv_vbar_generations(d, v, 0, 2 * P, gens, 2);
        break;
    }
    const uint8_t *ib = (const uint8_t *)&info;
    for (size_t i = 0; i < sizeof(info); i++) {
        cr_assert_eq(ib[i], 0xa5, "%s wrote its output on failure", *name);
    }
    cr_assert(out == SENTINEL && gens[0] == SENTINEL && gens[1] == SENTINEL &&
                  flags[0] == 0xa5 && flags[1] == 0xa5,
              "%s wrote its output on failure", *name);
    return r;
}

static void expect_wrong(dv_device_t *with, dv_vbar_t *v, dv_device_t *owner) {
    char vs[32], ws[32], os[32], tag[48];
    dv_device_caps_t oc;
    TD_OK(dv_device_get_caps(owner, &oc));
    snprintf(vs, sizeof(vs), "%p", (void *)v);
    snprintf(ws, sizeof(ws), "%p", (void *)with);
    snprintf(os, sizeof(os), "%p", (void *)owner);
    snprintf(tag, sizeof(tag), "%s:%d", oc.backend, oc.ordinal);
    for (int k = 0; k < MD_APIS; k++) {
        const char *name = "";
        dv_result_t r = call_api(k, with, v, &name);
        const char *msg = dv_last_error();
        cr_assert_eq(r, DV_ERROR_WRONG_DEVICE, "%s(other device, vbar) -> %s (%s)",
                     name, dv_result_name(r), msg);
        cr_assert(strstr(msg, name) && strstr(msg, vs) && strstr(msg, ws) &&
                      strstr(msg, os) && strstr(msg, tag),
                  "%s: the message must name the function, the VBAR (%s), "
                  "its device (%s, %s) and the device passed (%s): \"%s\"",
                  name, vs, os, tag, ws, msg);
    }
}

Test(multidev, vbar_of_the_other_device_is_refused_everywhere) {
    need_two();
    dv_device_t *d0 = open_ordinal(0, 8);
    dv_device_t *d1 = open_ordinal(1, 8);
    dv_vbar_t *v0[2] = {NULL, NULL}, *v1[2] = {NULL, NULL};
    uint64_t g;
    for (int k = 0; k < 2; k++) {
        TD_OK(dv_vbar_create(d0, 4 * P, &v0[k]));
        TD_OK(dv_vbar_create(d1, 4 * P, &v1[k]));
    }
    /* State a wrongly accepted call would change: pinned and unpinned pages,
     * an order, a watermark. */
    fill(d0, v0[0], 3, 1);
    fill(d1, v1[0], 2, 2);
    TD_OK(dv_fault(d0, v0[0], 0, P, &g));
    TD_OK(dv_fault(d1, v1[0], 0, P, &g));
    TD_OK(dv_vbar_set_watermark(d1, v1[1], 3 * P));

    md_snap_t b0, b1, a0, a1;
    snap(d0, v0, 2, &b0);
    snap(d1, v1, 2, &b1);
    expect_wrong(d1, v0[0], d0);
    expect_wrong(d0, v1[0], d1);
    expect_wrong(d0, v1[1], d1);
    snap(d0, v0, 2, &a0);
    snap(d1, v1, 2, &a1);
    same(&b0, &a0, "device 0 after refused calls");
    same(&b1, &a1, "device 1 after refused calls");
    td_check(d0);
    td_check(d1);

    TD_OK(dv_unpin(d0, v0[0], 0, P, NULL));
    TD_OK(dv_unpin(d1, v1[0], 0, P, NULL));
    for (int k = 0; k < 2; k++) {
        TD_OK(dv_vbar_destroy(d0, v0[k]));
        TD_OK(dv_vbar_destroy(d1, v1[k]));
    }
    TD_OK(dv_device_close(d0));
    TD_OK(dv_device_close(d1));
}

/* ---- a stream of the other device ---- */

/* Every call that takes a stream refuses device 1's stream on device 0
 * with DV_ERROR_WRONG_DEVICE (destroy: DV_ERROR_INVALID_ARGUMENT, as only
 * streams made on that device may be destroyed there), naming the stream;
 * neither device changes, and the stream still works on its own device. */
static void stream_refused(void *s, dv_result_t got, dv_result_t want,
                           const char *name) {
    char sp[32];
    snprintf(sp, sizeof(sp), "%p", s);
    cr_assert_eq(got, want, "%s(device 0, stream of device 1) -> %s (%s)", name,
                 dv_result_name(got), dv_last_error());
    cr_assert(strstr(dv_last_error(), sp) && strstr(dv_last_error(), name),
              "%s: the message must name the call and the stream %s: \"%s\"",
              name, sp, dv_last_error());
}

Test(multidev, stream_of_the_other_device_is_refused) {
    need_two();
    dv_device_t *d0 = open_ordinal(0, 8);
    dv_device_t *d1 = open_ordinal(1, 8);
    dv_vbar_t *v0 = NULL, *v1 = NULL;
    void *s1 = NULL;
    uint64_t g;
    TD_OK(dv_vbar_create(d0, 4 * P, &v0));
    TD_OK(dv_vbar_create(d1, 4 * P, &v1));
    fill(d0, v0, 2, 11);
    fill(d1, v1, 2, 12);
    TD_OK(dv_fault(d0, v0, 0, P, &g)); /* pinned: unpin would succeed */
    TD_OK(dv_stream_create(d1, &s1));
    dv_vbar_info_t info;
    TD_OK(dv_vbar_get_info(d0, v0, &info));
    uint8_t *buf = page_buf();
    memset(buf, 0x77, P);

    md_snap_t b0, b1, a0, a1;
    snap(d0, &v0, 1, &b0);
    snap(d1, &v1, 1, &b1);
    for (int round = 0; round < 2; round++) { /* refused again, not cached */
        if (td_hal()->fence_record) {
            stream_refused(s1, dv_unpin(d0, v0, 0, P, s1),
                           DV_ERROR_WRONG_DEVICE, "dv_unpin");
        }
        stream_refused(s1, dv_copy_h2d(d0, info.base, buf, P, s1),
                       DV_ERROR_WRONG_DEVICE, "dv_copy_h2d");
        stream_refused(s1, dv_copy_d2h(d0, buf, info.base, P, s1),
                       DV_ERROR_WRONG_DEVICE, "dv_copy_d2h");
        stream_refused(s1, dv_stream_synchronize(d0, s1), DV_ERROR_WRONG_DEVICE,
                       "dv_stream_synchronize");
        stream_refused(s1, dv_stream_destroy(d0, s1), DV_ERROR_INVALID_ARGUMENT,
                       "dv_stream_destroy");
    }
    snap(d0, &v0, 1, &a0);
    snap(d1, &v1, 1, &a1);
    same(&b0, &a0, "device 0 after refused stream calls");
    same(&b1, &a1, "device 1 after refused stream calls");
    check_page(d0, v0, 1, 11 + 1, "device 0");
    td_check(d0);
    td_check(d1);

    /* Still device 1's good stream. */
    TD_OK(dv_vbar_get_info(d1, v1, &info));
    TD_OK(dv_fault(d1, v1, 0, P, &g));
    TD_OK(dv_copy_d2h(d1, buf, info.base, P, s1));
    TD_OK(dv_stream_synchronize(d1, s1));
    TD_OK(dv_unpin(d1, v1, 0, P, s1));
    TD_OK(dv_stream_destroy(d1, s1));
    check_page(d1, v1, 0, 12, "device 1");
    free(buf);

    TD_OK(dv_unpin(d0, v0, 0, P, NULL));
    TD_OK(dv_vbar_destroy(d0, v0));
    TD_OK(dv_vbar_destroy(d1, v1));
    TD_OK(dv_device_close(d0));
    TD_OK(dv_device_close(d1));
}

/* ---- concurrency: one thread per device and one crossing between ---- */

#define TH_VBARS 2
#define TH_PAGES 6
#define TH_ITERS 2000

static dv_device_t *th_dev[2];
static dv_vbar_t *th_vb[2][TH_VBARS];

typedef struct th_worker {
    int dev; /* 0 or 1; -1 = both, alternating, plus wrong pairs */
    unsigned seed;
    long ok, errors, wrong;
    char first[256]; /* the first unexpected result, for the message */
} th_worker_t;

static unsigned rnd(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return (*s >> 16) & 0x7fff;
}

static void th_bad(th_worker_t *w, const char *what, dv_result_t r) {
    if (w->errors++ == 0) {
        snprintf(w->first, sizeof(w->first), "%s -> %s (%s)", what,
                 dv_result_name(r), dv_last_error());
    }
}

static void th_op(th_worker_t *w, int di) {
    dv_device_t *d = th_dev[di];
    dv_vbar_t *v = th_vb[di][rnd(&w->seed) % TH_VBARS];
    unsigned op = rnd(&w->seed) % 16;
    uint64_t first = rnd(&w->seed) % TH_PAGES;
    uint64_t n = first + 2 <= TH_PAGES ? 1 + rnd(&w->seed) % 2 : 1;
    uint64_t g;
    dv_result_t r = DV_OK;
    if (op == 0) {
        r = dv_vbar_prioritize(d, v);
    } else if (op == 1) {
        r = dv_vbar_deprioritize(d, v);
    } else if (op == 2) {
        r = dv_vbar_evict(d, v, P, &g);
    } else if (op == 3) {
        if (dv_framework_reserve(d, P) == DV_OK) {
            r = dv_framework_release(d, P);
        }
    } else {
        r = dv_fault(d, v, first * P, n * P, &g);
        if (r == DV_OK) {
            w->ok++;
            r = dv_unpin(d, v, first * P, n * P, NULL);
        } else if (r == DV_OFFLOADED) {
            r = DV_OK;
        }
    }
    if (r != DV_OK) {
        th_bad(w, "op", r);
    }
}

static void *th_run(void *arg) {
    th_worker_t *w = arg;
    for (int it = 0; it < TH_ITERS; it++) {
        int di = w->dev >= 0 ? w->dev : (it & 1);
        th_op(w, di);
        if (w->dev < 0 && it % 4 == 0) {
            uint64_t g;
            dv_result_t r = dv_fault(th_dev[1 - di], th_vb[di][it % TH_VBARS],
                                     0, P, &g);
            if (r == DV_ERROR_WRONG_DEVICE) {
                w->wrong++;
            } else {
                th_bad(w, "wrong pair", r);
            }
        }
    }
    return NULL;
}

Test(multidev, threads_on_both_devices, .timeout = 120) {
    need_two();
    const uint64_t lim[2] = {6, 4};
    pthread_t t[3];
    th_worker_t w[3];
    memset(w, 0, sizeof(w));
    for (int di = 0; di < 2; di++) {
        th_dev[di] = open_ordinal(di, lim[di]);
        for (int k = 0; k < TH_VBARS; k++) {
            TD_OK(dv_vbar_create(th_dev[di], TH_PAGES * P, &th_vb[di][k]));
        }
    }
    for (int k = 0; k < 3; k++) {
        w[k].dev = k < 2 ? k : -1;
        w[k].seed = 77u + (unsigned)k * 7919u;
        cr_assert_eq(pthread_create(&t[k], NULL, th_run, &w[k]), 0);
    }
    for (int k = 0; k < 3; k++) {
        pthread_join(t[k], NULL);
    }
    for (int k = 0; k < 3; k++) {
        cr_assert_eq(w[k].errors, 0, "thread %d: %ld unexpected results, first: %s",
                     k, w[k].errors, w[k].first);
    }
    cr_assert_eq(w[2].wrong, TH_ITERS / 4, "every wrong pair was refused");
    for (int di = 0; di < 2; di++) {
        dv_device_t *d = th_dev[di];
        td_check(d);
        dv_device_stats_t st = td_stats(d);
        cr_assert_eq(st.pinned_bytes, 0, "device %d: every pin was undone", di);
        cr_assert_eq(st.framework_bytes, 0, "device %d", di);
        cr_assert_leq(st.used, lim[di] * P, "device %d held its own budget", di);
        cr_assert_eq(st.vbar_count, TH_VBARS, "device %d", di);
        cr_assert_gt(st.faults_populated, 0, "device %d saw work", di);
        cr_assert_gt(st.evictions, 0, "device %d saw pressure", di);
        for (int k = 0; k < TH_VBARS; k++) {
            TD_OK(dv_vbar_destroy(d, th_vb[di][k]));
        }
        TD_OK(dv_device_close(d));
    }
    cr_assert_gt(w[0].ok + w[2].ok, 0);
    cr_assert_gt(w[1].ok + w[2].ok, 0);
}

/* ---- one lock per device: a call stuck inside device 0 ---- */

/* A HAL wrapper whose create blocks on device 0 while the gate is armed,
 * inside the core's device lock (dv_fault holds it around create). */
static dv_hal_ops_t gate_ops;
static const dv_hal_ops_t *gate_inner;
static void *gate_ctx;
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int gate_armed, gate_entered, gate_open, b_done, c_done;
static dv_result_t a_result, b_result;
static char b_msg[256];

static dv_result_t gate_init(const dv_hal_init_args_t *a, void **ctx) {
    dv_result_t r = gate_inner->init(a, ctx);
    if (r == DV_OK && a->ordinal == 0) {
        gate_ctx = *ctx;
    }
    return r;
}

static dv_result_t gate_create(void *ctx, uint64_t size, dv_hal_mem_t *mem) {
    pthread_mutex_lock(&gate_mu);
    if (gate_armed && ctx == gate_ctx) {
        gate_armed = 0;
        gate_entered = 1;
        pthread_cond_broadcast(&gate_cv);
        while (!gate_open) {
            pthread_cond_wait(&gate_cv, &gate_mu);
        }
    }
    pthread_mutex_unlock(&gate_mu);
    return gate_inner->create(ctx, size, mem);
}

static void gate_set(int *flag) {
    pthread_mutex_lock(&gate_mu);
    *flag = 1;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
}

/* Wait up to `secs` for *flag; returns its value. */
static int gate_wait(int *flag, int secs) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += secs;
    pthread_mutex_lock(&gate_mu);
    while (!*flag &&
           pthread_cond_timedwait(&gate_cv, &gate_mu, &until) == 0) {
    }
    int v = *flag;
    pthread_mutex_unlock(&gate_mu);
    return v;
}

static dv_device_t *g_dev[2];
static dv_vbar_t *g_vb[2];

static void *gate_a(void *arg) { /* stuck in device 0's create */
    uint64_t g;
    (void)arg;
    a_result = dv_fault(g_dev[0], g_vb[0], 0, P, &g);
    return NULL;
}

static void *gate_b(void *arg) { /* a full cycle on device 1 */
    dv_device_t *d = g_dev[1];
    dv_vbar_t *v = NULL;
    dv_device_stats_t st;
    uint64_t g, freed;
    dv_result_t r;
    (void)arg;
    if ((r = dv_vbar_create(d, 3 * P, &v)) != DV_OK ||
        (r = dv_fault(d, v, 0, 3 * P, &g)) != DV_OK ||
        (r = dv_unpin(d, v, 0, 3 * P, NULL)) != DV_OK ||
        (r = dv_framework_reserve(d, P)) != DV_OK ||
        (r = dv_framework_release(d, P)) != DV_OK ||
        (r = dv_vbar_evict(d, v, UINT64_MAX, &freed)) != DV_OK ||
        (r = dv_device_get_stats(d, &st)) != DV_OK ||
        (r = dv_device_check(d)) != DV_OK ||
        (r = dv_vbar_destroy(d, v)) != DV_OK) {
        snprintf(b_msg, sizeof(b_msg), "%s", dv_last_error());
    }
    b_result = r;
    gate_set(&b_done);
    return NULL;
}

static void *gate_c(void *arg) { /* needs device 0's lock */
    dv_device_stats_t st;
    (void)arg;
    dv_device_get_stats(g_dev[0], &st);
    gate_set(&c_done);
    return NULL;
}

Test(multidev, each_device_has_its_own_lock, .timeout = 60) {
    need_two();
    gate_inner = td_hal();
    gate_ops = *gate_inner;
    gate_ops.init = gate_init;
    gate_ops.create = gate_create;
    dv_device_options_t o;
    for (int di = 0; di < 2; di++) {
        td_options(&o, 8);
        o.ordinal = di;
        TD_OK(dv_device_open_hal(&gate_ops, &o, &g_dev[di]));
        TD_OK(dv_vbar_create(g_dev[di], 4 * P, &g_vb[di]));
    }
    cr_assert(gate_ctx != NULL);
    pthread_t a, b, c;
    gate_armed = 1;
    cr_assert_eq(pthread_create(&a, NULL, gate_a, NULL), 0);
    int entered = gate_wait(&gate_entered, 10);
    int b_ok = 0, c_held = 0;
    if (entered) {
        cr_assert_eq(pthread_create(&c, NULL, gate_c, NULL), 0);
        cr_assert_eq(pthread_create(&b, NULL, gate_b, NULL), 0);
        b_ok = gate_wait(&b_done, 20);
        pthread_mutex_lock(&gate_mu);
        c_held = !c_done;
        pthread_mutex_unlock(&gate_mu);
    }
    gate_set(&gate_open); /* let everything finish before asserting */
    pthread_join(a, NULL);
    if (entered) {
        pthread_join(b, NULL);
        pthread_join(c, NULL);
    }
    cr_assert(entered, "device 0's fault never reached the driver's create");
    cr_assert(c_held, "device 0's lock was not held during its create: the "
              "test proves nothing");
    cr_assert(b_ok, "device 1 made no progress while device 0's lock was held");
    cr_assert_eq(b_result, DV_OK, "device 1: %s", b_msg);
    cr_assert_eq(a_result, DV_OK);
    TD_OK(dv_unpin(g_dev[0], g_vb[0], 0, P, NULL));
    for (int di = 0; di < 2; di++) {
        td_check(g_dev[di]);
        TD_OK(dv_vbar_destroy(g_dev[di], g_vb[di]));
        TD_OK(dv_device_close(g_dev[di]));
    }
}

/* ---- closing one device while the other keeps working ---- */

static void close_one(int victim) {
    const uint64_t lim = 5;
    int keep = 1 - victim;
    dv_device_t *d[2] = {open_ordinal(0, lim), open_ordinal(1, lim)};
    dv_vbar_t *v[2] = {NULL, NULL};
    for (int k = 0; k < 2; k++) {
        TD_OK(dv_vbar_create(d[k], lim * P, &v[k]));
        fill(d[k], v[k], 3, 10u * (uint32_t)k + 10);
    }
    md_snap_t b, a;
    snap(d[keep], &v[keep], 1, &b);
    TD_IS(dv_device_close(d[victim]), DV_ERROR_BUSY);
    cr_assert_eq(td_resident_pages(d[victim], v[victim]), 3);
    TD_OK(dv_vbar_destroy(d[victim], v[victim]));
    TD_OK(dv_device_close(d[victim]));
    snap(d[keep], &v[keep], 1, &a);
    same(&b, &a, "the device left open");
    for (uint64_t i = 0; i < 3; i++) {
        check_page(d[keep], v[keep], i, 10u * (uint32_t)keep + 10 + (uint32_t)i,
                   "the device left open");
    }
    pressure(d[keep], v[keep], lim);
    for (uint64_t i = 0; i < lim; i++) {
        check_page(d[keep], v[keep], i, 900 + (uint32_t)i, "after pressure");
    }
    /* The closed ordinal opens again, fresh, beside the one that stayed. */
    dv_device_t *re = open_ordinal(victim, 2);
    dv_device_stats_t st = td_stats(re);
    cr_assert_eq(st.vbar_count, 0);
    cr_assert_eq(st.resident_bytes, 0);
    cr_assert_eq(st.budget, 2 * P);
    dv_vbar_t *rv = NULL;
    TD_OK(dv_vbar_create(re, 2 * P, &rv));
    fill(re, rv, 2, 500);
    check_page(re, rv, 1, 501, "reopened device");
    td_check(re);
    td_check(d[keep]);
    TD_OK(dv_vbar_destroy(re, rv));
    TD_OK(dv_device_close(re));
    TD_OK(dv_vbar_destroy(d[keep], v[keep]));
    TD_OK(dv_device_close(d[keep]));
}

Test(multidev, closing_device_1_leaves_device_0_working) {
    need_two();
    close_one(1);
}

Test(multidev, closing_device_0_leaves_device_1_working) {
    need_two();
    close_one(0);
}
