/*
 * model_bad.c - bad input: NULL handles and outputs, out-of-range and
 * overflowing ranges, wrong-device VBARs, bad options and sizes, and (with
 * dead_handles) handles of destroyed VBARs, closed devices, destroyed
 * streams and junk stream pointers.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Every call here must fail with the exact code the header gives for that
 * input (DV_ERROR_INVALID_ARGUMENT, DV_ERROR_OUT_OF_RANGE,
 * DV_ERROR_WRONG_DEVICE, DV_ERROR_DEVICE_NOT_FOUND), leave a message, and
 * change nothing: the model is not touched, so the comparison after the op
 * proves it. Dead and junk handles must never be dereferenced (the
 * sanitizers see it) and never alias a live object.
 */
#include <stdio.h>
#include <string.h>

#include "dynvram_hal.h"
#include "model.h"

#define INV DV_ERROR_INVALID_ARGUMENT

/* The (dev, vbar) entry points, called with harmless arguments. */
static dv_result_t vbar_call(mt_world_t *w, int k, dv_device_t *dev,
                             dv_vbar_t *vb, uint64_t ps, mt_fn_t *fn,
                             const char **name) {
    uint64_t g = 0;
    uint8_t flags[1];
    dv_vbar_info_t in;
    static const char *names[] = {"dv_fault",
                                  "dv_unpin",
                                  "dv_vbar_destroy",
                                  "dv_vbar_get_info",
                                  "dv_vbar_prioritize",
                                  "dv_vbar_deprioritize",
                                  "dv_vbar_set_watermark",
                                  "dv_vbar_set_watermark_limit",
                                  "dv_vbar_evict",
                                  "dv_vbar_residency",
                                  "dv_vbar_generations"};
    static const mt_fn_t fns[] = {
        MT_FN_FAULT,          MT_FN_UNPIN,     MT_FN_VBAR_DESTROY,
        MT_FN_VBAR_INFO,      MT_FN_VBAR_PRIO, MT_FN_VBAR_PRIO,
        MT_FN_VBAR_WM,        MT_FN_VBAR_WM,   MT_FN_VBAR_EVICT,
        MT_FN_VBAR_RESIDENCY, MT_FN_VBAR_GENS};
    (void)w;
    *fn = fns[k];
    *name = names[k];
    switch (k) {
    case 0:
        return dv_fault(dev, vb, 0, ps, &g);
    case 1:
        return dv_unpin(dev, vb, 0, ps, NULL);
    case 2:
        return dv_vbar_destroy(dev, vb);
    case 3:
        return dv_vbar_get_info(dev, vb, &in);
    case 4:
        return dv_vbar_prioritize(dev, vb);
    case 5:
        return dv_vbar_deprioritize(dev, vb);
    case 6:
        return dv_vbar_set_watermark(dev, vb, 0);
    case 7:
        return dv_vbar_set_watermark_limit(dev, vb, 0);
    case 8:
        return dv_vbar_evict(dev, vb, UINT64_MAX, &g);
    case 9:
        return dv_vbar_residency(dev, vb, 0, 1, flags);
    default:
        return dv_vbar_generations(dev, vb, 0, ps, &g, 1);
    }
}
#define VBAR_CALLS 11

/* The device entry points, called with harmless arguments. */
static dv_result_t dev_call(mt_world_t *w, int k, dv_device_t *dev, mt_fn_t *fn,
                            const char **name) {
    dv_device_stats_t st;
    dv_device_caps_t caps;
    dv_vbar_t *vb = (dv_vbar_t *)(uintptr_t)1;
    void *s = (void *)(uintptr_t)1;
    uint64_t f = 0;
    dv_result_t r;
    switch (k) {
    case 0:
        *fn = MT_FN_DEV_STATS, *name = "dv_device_get_stats";
        return dv_device_get_stats(dev, &st);
    case 1:
        *fn = MT_FN_DEV_CHECK, *name = "dv_device_check";
        return dv_device_check(dev);
    case 2:
        *fn = MT_FN_DEV_SIMPLE, *name = "dv_device_trim_pool";
        return dv_device_trim_pool(dev);
    case 3:
        *fn = MT_FN_DEV_SIMPLE, *name = "dv_device_reset_watermark_limits";
        return dv_device_reset_watermark_limits(dev);
    case 4:
        *fn = MT_FN_FW_RESERVE, *name = "dv_framework_reserve";
        return dv_framework_reserve(dev, 1);
    case 5:
        *fn = MT_FN_FW_RELEASE, *name = "dv_framework_release";
        return dv_framework_release(dev, 0);
    case 6:
        *fn = MT_FN_FW_EVICT, *name = "dv_framework_evict";
        return dv_framework_evict(dev, 1, &f);
    case 7:
        *fn = MT_FN_DEV_CAPS, *name = "dv_device_get_caps";
        return dv_device_get_caps(dev, &caps);
    case 8:
        *fn = MT_FN_VBAR_CREATE, *name = "dv_vbar_create";
        r = dv_vbar_create(dev, 4096, &vb);
        return r;
    case 9:
        *fn = MT_FN_STREAM, *name = "dv_stream_create";
        return dv_stream_create(dev, &s);
    case 10:
        *fn = MT_FN_STREAM, *name = "dv_stream_synchronize(NULL stream)";
        return dv_stream_synchronize(dev, NULL);
    case 11:
        *fn = MT_FN_COPY, *name = "dv_copy_h2d";
        return dv_copy_h2d(dev, 4096, w->buf, 8, NULL);
    case 12:
        *fn = MT_FN_HOST_REG, *name = "dv_host_register";
        return dv_host_register(dev, w->buf, 8);
    case 13:
        *fn = MT_FN_DEV_SIMPLE, *name = "dv_device_set_headroom";
        return dv_device_set_headroom(dev, 0);
    case 14:
        *fn = MT_FN_DEV_SIMPLE, *name = "dv_device_get_headroom";
        return dv_device_get_headroom(dev, &f);
    default:
        *fn = MT_FN_DEV_CLOSE, *name = "dv_device_close";
        return dv_device_close(dev);
    }
}
#define DEV_CALLS 16

static void expect_call(mt_world_t *w, mt_fn_t fn, dv_result_t r,
                        dv_result_t want) {
    mt_ret(w, r);
    mt_expect(w, fn, r, want);
    w->n_errors_checked++;
}

/* ---- NULL handles and outputs ---- */

static void bad_null(mt_world_t *w) {
    mt_dev_t *d = mt_any_dev(w);
    mt_vbar_t *v = d ? mt_any_vbar(w, d) : NULL;
    mt_fn_t fn;
    const char *name;
    dv_result_t r;
    unsigned k = (unsigned)mt_pick(&w->src, 4);
    if (k == 0 && v) {
        int c = (int)mt_pick(&w->src, VBAR_CALLS);
        mt_call(w, "vbar call %d(NULL device, v%d)", c, v->name);
        r = vbar_call(w, c, NULL, v->h, d->ps, &fn, &name);
        expect_call(w, fn, r, INV);
    } else if (k == 1 && d) {
        int c = (int)mt_pick(&w->src, VBAR_CALLS);
        mt_call(w, "vbar call %d(d%d, NULL vbar)", c, d->name);
        r = vbar_call(w, c, d->h, NULL, d->ps, &fn, &name);
        expect_call(w, fn, r, INV);
    } else if (k == 2) {
        int c = (int)mt_pick(&w->src, DEV_CALLS);
        mt_call(w, "device call %d(NULL device)", c);
        r = dev_call(w, c, NULL, &fn, &name);
        expect_call(w, fn, r, INV);
    } else if (d) {
        dv_device_options_t o;
        dv_device_options_init(&o);
        o.backend = "host";
        switch (mt_pick(&w->src, 10)) {
        case 8:
            mt_call(w, "dv_device_get_headroom(d%d, NULL)", d->name);
            expect_call(w, MT_FN_DEV_SIMPLE,
                        dv_device_get_headroom(d->h, NULL), INV);
            break;
        case 0:
            mt_call(w, "dv_vbar_create(d%d, 4096, NULL)", d->name);
            expect_call(w, MT_FN_VBAR_CREATE, dv_vbar_create(d->h, 4096, NULL),
                        INV);
            break;
        case 1:
            mt_call(w, "dv_device_get_stats(d%d, NULL)", d->name);
            expect_call(w, MT_FN_DEV_STATS, dv_device_get_stats(d->h, NULL),
                        INV);
            break;
        case 2:
            mt_call(w, "dv_device_get_caps(d%d, NULL)", d->name);
            expect_call(w, MT_FN_DEV_CAPS, dv_device_get_caps(d->h, NULL), INV);
            break;
        case 3:
            mt_call(w, "dv_stream_create(d%d, NULL)", d->name);
            expect_call(w, MT_FN_STREAM, dv_stream_create(d->h, NULL), INV);
            break;
        case 4:
            mt_call(w, "dv_device_open(opts, NULL)");
            expect_call(w, MT_FN_DEV_OPEN, dv_device_open(&o, NULL), INV);
            break;
        case 5:
            mt_call(w, "dv_host_register(d%d, NULL / size 0)", d->name);
            expect_call(w, MT_FN_HOST_REG,
                        mt_chance(&w->src, 50)
                            ? dv_host_register(d->h, NULL, 8)
                            : dv_host_register(d->h, w->buf, 0),
                        INV);
            mt_call(w, "dv_host_unregister(d%d, NULL)", d->name);
            expect_call(w, MT_FN_HOST_REG, dv_host_unregister(d->h, NULL), INV);
            break;
        case 6:
            mt_call(w, "dv_copy_h2d / d2h(d%d) with NULL or size 0", d->name);
            switch (mt_pick(&w->src, 4)) {
            case 0:
                r = dv_copy_h2d(d->h, 0, w->buf, 8, NULL);
                break;
            case 1:
                r = dv_copy_h2d(d->h, 4096, NULL, 8, NULL);
                break;
            case 2:
                r = dv_copy_d2h(d->h, NULL, 4096, 8, NULL);
                break;
            default:
                r = dv_copy_d2h(d->h, w->buf, 4096, 0, NULL);
                break;
            }
            expect_call(w, MT_FN_COPY, r, INV);
            break;
        case 7:
            if (v) {
                mt_call(w, "dv_vbar_get_info(d%d, v%d, NULL)", d->name,
                        v->name);
                expect_call(w, MT_FN_VBAR_INFO,
                            dv_vbar_get_info(d->h, v->h, NULL), INV);
            }
            break;
        default:
            mt_call(w, "dv_host_stream_submit(NULL) / counts(NULL)");
            expect_call(w, MT_FN_HOST_HOOK, dv_host_stream_submit(NULL), INV);
            mt_call(w, "dv_host_stream_counts(NULL)");
            expect_call(w, MT_FN_HOST_HOOK,
                        dv_host_stream_counts(NULL, NULL, NULL), INV);
            break;
        }
    }
    mt_check_all(w);
}

/* ---- ranges ---- */

static void bad_range(mt_world_t *w) {
    mt_dev_t *d = mt_any_dev(w);
    mt_vbar_t *v = d ? mt_any_vbar(w, d) : NULL;
    if (!v) {
        return;
    }
    uint64_t off, size;
    dv_result_t want = DV_ERROR_OUT_OF_RANGE;
    switch (mt_pick(&w->src, 6)) {
    case 0:
        off = mt_pick(&w->src, v->size), size = 0, want = INV;
        break;
    case 1:
        off = v->size + mt_pick(&w->src, 3), size = 1;
        break;
    case 2: /* ends just past the VBAR */
        off = v->size - 1 - mt_pick(&w->src, d->ps);
        size = v->size - off + 1 + mt_pick(&w->src, 100);
        break;
    case 3:
        off = UINT64_MAX - mt_pick(&w->src, 2 * d->ps), size = d->ps;
        break;
    case 4:
        off = d->ps * mt_pick(&w->src, 2),
        size = UINT64_MAX - mt_pick(&w->src, 3);
        break;
    default:
        off = 0, size = v->size + 1 + mt_pick(&w->src, d->ps);
        break;
    }
    uint64_t g[MT_PAGES + 2];
    uint8_t flags[MT_PAGES + 2];
    dv_result_t r;
    mt_fn_t fn;
    unsigned k = (unsigned)mt_pick(&w->src, 4);
    mt_call(w, "%s(d%d, v%d, %llu, %llu)",
            k == 0   ? "dv_fault"
            : k == 1 ? "dv_unpin"
            : k == 2 ? "dv_vbar_generations"
                     : "dv_vbar_residency",
            d->name, v->name, (unsigned long long)off,
            (unsigned long long)size);
    if (k == 0) {
        fn = MT_FN_FAULT;
        r = dv_fault(d->h, v->h, off, size, g);
    } else if (k == 1) {
        fn = MT_FN_UNPIN;
        r = dv_unpin(d->h, v->h, off, size, NULL);
    } else if (k == 2) {
        fn = MT_FN_VBAR_GENS;
        r = dv_vbar_generations(d->h, v->h, off, size, g, 1);
    } else {
        /* In pages: first beyond the end, or a count past it. */
        fn = MT_FN_VBAR_RESIDENCY;
        uint64_t first = off / d->ps, count = size / d->ps + 2;
        if (first <= v->pages && count <= v->pages - first) {
            first = v->pages + 1;
        }
        want = DV_ERROR_OUT_OF_RANGE;
        r = dv_vbar_residency(d->h, v->h, first, count, flags);
    }
    expect_call(w, fn, r, want);
    if (mt_chance(&w->src, 30)) {
        /* A valid range, but the wrong count of generations. */
        mt_call(w, "dv_vbar_generations(d%d, v%d, 0, page, count 2)", d->name,
                v->name);
        expect_call(w, MT_FN_VBAR_GENS,
                    dv_vbar_generations(d->h, v->h, 0, d->ps, g, 2), INV);
    }
    mt_check_all(w);
}

/* ---- another device's VBAR ---- */

static void bad_wrong_device(mt_world_t *w) {
    mt_dev_t *a = mt_any_dev(w), *b = mt_any_dev(w);
    if (!a || !b || a == b) {
        return;
    }
    mt_vbar_t *v = mt_any_vbar(w, b);
    if (!v) {
        return;
    }
    int c = (int)mt_pick(&w->src, VBAR_CALLS);
    mt_fn_t fn;
    const char *name;
    mt_call(w, "vbar call %d(d%d, v%d of d%d)", c, a->name, v->name, b->name);
    dv_result_t r = vbar_call(w, c, a->h, v->h, b->ps, &fn, &name);
    expect_call(w, fn, r, DV_ERROR_WRONG_DEVICE);
    mt_check_all(w);
}

/* ---- sizes and options ---- */

/* Options from a newer header: unknown fields zero are accepted (the
 * device opens and closes), non-zero is DV_ERROR_NOT_SUPPORTED. */
static void newer_header(mt_world_t *w) {
    struct {
        dv_device_options_t o;
        uint64_t later[2];
    } big;
    memset(&big, 0, sizeof(big));
    dv_device_options_init(&big.o);
    big.o.size = (uint32_t)sizeof(big);
    big.o.backend = "host";
    big.o.page_size = 4096;
    big.o.backend_options = "capacity=64K";
    int set = mt_chance(&w->src, 50);
    big.later[1] = set ? 1 + mt_pick(&w->src, 1000) : 0;
    dv_device_t *h = NULL;
    mt_call(w, "dv_device_open(options of a newer header, unknown field %s)",
            set ? "set" : "zero");
    dv_result_t r = dv_device_open(&big.o, &h);
    mt_ret(w, r);
    mt_expect(w, MT_FN_DEV_OPEN, r, set ? DV_ERROR_NOT_SUPPORTED : DV_OK);
    if (r == DV_OK) {
        mt_call(w, "dv_device_close(that device)");
        r = dv_device_close(h);
        mt_ret(w, r);
        mt_expect(w, MT_FN_DEV_CLOSE, r, DV_OK);
    }
}

static void bad_options(mt_world_t *w) {
    mt_dev_t *d = mt_any_dev(w);
    dv_result_t r;
    if (d && mt_chance(&w->src, 50)) {
        static const uint64_t sizes[] = {0, UINT64_MAX, UINT64_MAX - 4095};
        uint64_t size = sizes[mt_pick(&w->src, 3)];
        dv_vbar_t *h = (dv_vbar_t *)(uintptr_t)1;
        mt_call(w, "dv_vbar_create(d%d, %llu)", d->name,
                (unsigned long long)size);
        r = dv_vbar_create(d->h, size, &h);
        expect_call(w, MT_FN_VBAR_CREATE, r, INV);
    } else {
        dv_device_options_t o;
        dv_device_options_init(&o);
        o.backend = "host";
        o.backend_options = "capacity=1M";
        dv_result_t want = INV;
        switch (mt_pick(&w->src, 7)) {
        case 5:
            o.size = 0; /* not initialised */
            break;
        case 6: {
            static const char *bad[] = {"speed=fast", "capacity=12x",
                                        "capacity=0", "=4096",
                                        "capacity=1M,colour=red"};
            o.backend_options = bad[mt_pick(&w->src, 5)];
            break;
        }
        case 0:
            o.ordinal = -1 - (int)mt_pick(&w->src, 5);
            break;
        case 4:
            o.watermark_recovery =
                DV_RECOVERY_OFF + 1 + (uint32_t)mt_pick(&w->src, 0x7fffffff);
            break;
        case 1:
            o.ordinal = mt_host_devices() + (int)mt_pick(&w->src, 100);
            want = DV_ERROR_DEVICE_NOT_FOUND;
            break;
        case 2:
            o.backend = "no-such-backend";
            break;
        default:
            o.page_size = UINT64_MAX - mt_pick(&w->src, 3);
            break;
        }
        dv_device_t *h = (dv_device_t *)(uintptr_t)1;
        mt_call(w, "dv_device_open(%s:%d page %llu size %u options '%s')",
                o.backend, o.ordinal, (unsigned long long)o.page_size, o.size,
                o.backend_options);
        r = dv_device_open(&o, &h);
        expect_call(w, MT_FN_DEV_OPEN, r, want);
        if (want == INV && o.backend[0] == 'h') {
            /* The same options through dv_device_open_hal. */
            mt_call(w, "dv_device_open_hal(host, ordinal %d page %llu)",
                    o.ordinal, (unsigned long long)o.page_size);
            r = dv_device_open_hal(dv_hal_host(), &o, &h);
            expect_call(w, MT_FN_DEV_OPEN, r, want);
        }
        mt_call(w, "dv_device_open_hal(NULL ops)");
        expect_call(w, MT_FN_DEV_OPEN, dv_device_open_hal(NULL, &o, &h), INV);
        dv_device_options_init(NULL); /* documented as harmless */
        newer_header(w);
    }
    if (mt_chance(&w->src, 20)) {
        int n = dv_backend_count();
        dv_backend_info_t bi;
        int idx = mt_chance(&w->src, 50) ? -1 - (int)mt_pick(&w->src, 3)
                                         : n + (int)mt_pick(&w->src, 3);
        mt_call(w, "dv_backend_probe(%d)", idx);
        expect_call(w, MT_FN_PROBE, dv_backend_probe(idx, &bi), INV);
        mt_call(w, "dv_backend_probe(0, NULL)");
        expect_call(w, MT_FN_PROBE, dv_backend_probe(0, NULL), INV);
        dv_log_level_t lv = dv_log_get_level();
        static const int levels[] = {-1, 7, 99, 0x7ffffffe};
        int bad = levels[mt_pick(&w->src, 4)];
        mt_call(w, "dv_log_set_level(%d)", bad);
        expect_call(w, MT_FN_PROBE, dv_log_set_level((dv_log_level_t)bad), INV);
        if (dv_log_get_level() != lv) {
            mt_fail(w, "log-level", "a refused level changed the level");
        }
    }
    mt_check_all(w);
}

/* ---- dead handles and junk streams (dead_handles) ---- */

static void *junk_stream(mt_world_t *w, mt_dev_t *d, char *what, size_t len) {
    switch (mt_pick(&w->src, 4)) {
    case 0:
        snprintf(what, len, "junk 0x10");
        return (void *)(uintptr_t)0x10;
    case 1:
        snprintf(what, len, "junk tester buffer");
        return w->buf;
    case 2:
        if (w->n_dead_stream) {
            snprintf(what, len, "destroyed stream");
            return w->dead_stream[mt_pick(&w->src, w->n_dead_stream < MT_GRAVE
                                                       ? w->n_dead_stream
                                                       : MT_GRAVE)];
        }
        /* fall through */
    default:
        snprintf(what, len, "junk device address");
        return d->nvb ? (void *)(uintptr_t)d->vb[d->order[0]].base
                      : (void *)(uintptr_t)0x1000;
    }
}

static void bad_dead(mt_world_t *w) {
    if (!w->dead_handles) {
        return;
    }
    mt_dev_t *d = mt_any_dev(w);
    mt_fn_t fn;
    const char *name;
    dv_result_t r;
    unsigned k = (unsigned)mt_pick(&w->src, 3);
    uint64_t nv = w->n_dead_vbar < MT_GRAVE ? w->n_dead_vbar : MT_GRAVE;
    uint64_t nd = w->n_dead_dev < MT_GRAVE ? w->n_dead_dev : MT_GRAVE;
    if (k == 0 && d && nv) {
        dv_vbar_t *dead = w->dead_vbar[mt_pick(&w->src, nv)];
        int c = (int)mt_pick(&w->src, VBAR_CALLS);
        mt_call(w, "vbar call %d(d%d, destroyed VBAR)", c, d->name);
        r = vbar_call(w, c, d->h, dead, d->ps, &fn, &name);
        expect_call(w, fn, r, INV);
    } else if (k == 1 && nd) {
        dv_device_t *dead = w->dead_dev[mt_pick(&w->src, nd)];
        int c = (int)mt_pick(&w->src, DEV_CALLS);
        mt_call(w, "device call %d(closed device)", c);
        r = dev_call(w, c, dead, &fn, &name);
        expect_call(w, fn, r, INV);
    } else if (d) {
        char what[64];
        void *junk = junk_stream(w, d, what, sizeof(what));
        mt_vbar_t *v = mt_any_vbar(w, d);
        uint64_t i = v ? mt_pick(&w->src, v->pages) : 0;
        switch (mt_pick(&w->src, 6)) {
        case 0:
            if (v && v->pg[i].pins) {
                mt_call(w, "dv_unpin(d%d, v%d, page %llu, %s)", d->name,
                        v->name, (unsigned long long)i, what);
                r = dv_unpin(d->h, v->h, i * d->ps, d->ps, junk);
                expect_call(w, MT_FN_UNPIN, r, INV);
            }
            break;
        case 1:
            mt_call(w, "dv_stream_destroy(d%d, %s)", d->name, what);
            expect_call(w, MT_FN_STREAM, dv_stream_destroy(d->h, junk), INV);
            break;
        case 2:
            mt_call(w, "dv_stream_synchronize(d%d, %s)", d->name, what);
            expect_call(w, MT_FN_STREAM, dv_stream_synchronize(d->h, junk),
                        INV);
            break;
        case 3:
            if (v && v->pg[i].pins) {
                mt_call(w, "dv_copy_h2d(d%d, v%d page %llu, %s)", d->name,
                        v->name, (unsigned long long)i, what);
                r = dv_copy_h2d(d->h, v->base + i * d->ps, w->buf, 8, junk);
                expect_call(w, MT_FN_COPY, r, INV);
                mt_call(w, "dv_copy_d2h(d%d, v%d page %llu, %s)", d->name,
                        v->name, (unsigned long long)i, what);
                r = dv_copy_d2h(d->h, w->buf, v->base + i * d->ps, 8, junk);
                expect_call(w, MT_FN_COPY, r, INV);
            }
            break;
        case 4:
            mt_call(w, "dv_host_stream_submit(%s)", what);
            expect_call(w, MT_FN_HOST_HOOK, dv_host_stream_submit(junk), INV);
            break;
        default:
            mt_call(w, "dv_host_stream_complete(%s)", what);
            expect_call(w, MT_FN_HOST_HOOK, dv_host_stream_complete(junk), INV);
            mt_call(w, "dv_host_stream_set_capturing(%s, 1)", what);
            expect_call(w, MT_FN_HOST_HOOK,
                        dv_host_stream_set_capturing(junk, 1), INV);
            break;
        }
    }
    mt_check_all(w);
}

const mt_op_t mt_bad_ops[] = {
    {"bad_null", bad_null, 3},
    {"bad_range", bad_range, 3},
    {"bad_wrong_device", bad_wrong_device, 2},
    {"bad_options", bad_options, 1},
    {"bad_dead", bad_dead, 3},
};
const int mt_bad_op_count = sizeof(mt_bad_ops) / sizeof(mt_bad_ops[0]);
