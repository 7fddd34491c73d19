/*
 * demo.c - `dynvram demo`: two models larger than the budget taking turns.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Each model is `layers` weights of `layer_mib` MiB in host memory. A step
 * runs every layer through the fault protocol: fault; if resident, copy the
 * weight in only when the generation changed; if offloaded, stream it
 * through a scratch buffer; unpin. On a host-accessible backend every
 * resident layer whose generation did not change is checked byte for byte,
 * so the demo also proves the generation contract.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demo.h"
#include "dynvram.h"

#if defined(_WIN32)
/* msvcrt-based mingw-w64 has no timespec_get (only the UCRT does). */
#define WIN32_LEAN_AND_MEAN
#include <windows.h>

static uint64_t now_ns(void) {
    LARGE_INTEGER f, c;
    QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&c);
    uint64_t hz = (uint64_t)f.QuadPart, t = (uint64_t)c.QuadPart;
    return t / hz * 1000000000ull + t % hz * 1000000000ull / hz;
}
#else
#include <time.h>

static uint64_t now_ns(void) {
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
#endif

typedef struct model {
    char name;
    dv_vbar_t *v;
    unsigned char *host;
    uint64_t *saved;
} model_t;

typedef struct step_stat {
    double ms;
    int resident;
    uint64_t copied, streamed;
} step_stat_t;

typedef struct demo {
    dv_device_t *dev;
    dv_vbar_t *scratch;
    uint64_t scratch_base;
    int layers;
    uint64_t layer;
    int host_visible;
    int quiet;
    long verified, corrupt;
} demo_t;

/* Errors are written after stdout is flushed, so a redirected run keeps
 * the header and the progress lines before them. */
static int fail(const char *what) {
    fflush(stdout);
    fprintf(stderr, "dynvram demo: %s: %s\n", what, dv_last_error());
    return 1;
}

static int run_step(demo_t *d, model_t *m, step_stat_t *out) {
    uint64_t base = 0;
    dv_vbar_info_t info;
    if (dv_vbar_get_info(d->dev, m->v, &info) != DV_OK) {
        return fail("vbar info");
    }
    base = info.base;
    memset(out, 0, sizeof(*out));
    uint64_t t0 = now_ns();
    for (int i = 0; i < d->layers; i++) {
        uint64_t off = (uint64_t)i * d->layer, gen = 0;
        const unsigned char *src = m->host + off;
        dv_result_t r = dv_fault(d->dev, m->v, off, d->layer, &gen);
        if (r == DV_OK) {
            out->resident++;
            if (gen != m->saved[i]) {
                if (dv_copy_h2d(d->dev, base + off, src, d->layer, NULL) != DV_OK) {
                    return fail("copy");
                }
                m->saved[i] = gen;
                out->copied += d->layer;
            } else if (d->host_visible) {
                const unsigned char *dst = (const unsigned char *)(uintptr_t)(base + off);
                d->verified++;
                d->corrupt += memcmp(dst, src, 4096) != 0 ||
                              memcmp(dst + d->layer - 4096, src + d->layer - 4096, 4096) != 0;
            }
            /* (a real program launches the layer's work here) */
            if (dv_unpin(d->dev, m->v, off, d->layer, NULL) != DV_OK) {
                return fail("unpin");
            }
        } else if (r == DV_OFFLOADED) {
            if (dv_copy_h2d(d->dev, d->scratch_base, src, d->layer, NULL) != DV_OK) {
                return fail("stream copy");
            }
            out->streamed += d->layer;
        } else {
            return fail("fault");
        }
    }
    if (dv_stream_synchronize(d->dev, NULL) != DV_OK) {
        return fail("synchronize");
    }
    out->ms = (double)(now_ns() - t0) / 1e6;
    return 0;
}

static int make_model(demo_t *d, model_t *m, char name) {
    uint64_t bytes = (uint64_t)d->layers * d->layer;
    m->name = name;
    m->host = malloc((size_t)bytes);
    m->saved = calloc((size_t)d->layers, sizeof(uint64_t));
    if (!m->host || !m->saved) {
        fflush(stdout);
        fprintf(stderr, "dynvram demo: cannot allocate %llu MiB of host memory\n",
                (unsigned long long)(bytes >> 20));
        return 1;
    }
    uint32_t x = (uint32_t)name * 2654435761u;
    for (uint64_t k = 0; k < bytes; k += 4) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        memcpy(m->host + k, &x, 4);
    }
    /* Pinned host memory makes GPU copies fast; not every backend has it. */
    dv_host_register(d->dev, m->host, bytes);
    if (dv_vbar_create(d->dev, bytes, &m->v) != DV_OK) {
        return fail("vbar create");
    }
    return 0;
}

static void free_model(demo_t *d, model_t *m) {
    if (m->v) {
        dv_vbar_destroy(d->dev, m->v);
    }
    if (m->host) {
        dv_host_unregister(d->dev, m->host);
    }
    free(m->host);
    free(m->saved);
}

typedef struct phase {
    const char *title;
    model_t *m;
    step_stat_t first, last;
    uint64_t evictions;
} phase_t;

static int run_phase(demo_t *d, phase_t *ph, int steps) {
    dv_device_stats_t s0, s1;
    dv_device_get_stats(d->dev, &s0);
    if (dv_vbar_prioritize(d->dev, ph->m->v) != DV_OK) {
        return fail("prioritize");
    }
    for (int s = 0; s < steps; s++) {
        step_stat_t st;
        if (run_step(d, ph->m, &st)) {
            return 1;
        }
        if (s == 0) {
            ph->first = st;
        }
        ph->last = st;
        if (!d->quiet) {
            printf("  %-22s step %d/%d: %2d/%d layers resident, copied %5llu MiB, "
                   "streamed %5llu MiB, %8.1f ms\n",
                   ph->title, s + 1, steps, st.resident, d->layers,
                   (unsigned long long)(st.copied >> 20),
                   (unsigned long long)(st.streamed >> 20), st.ms);
        }
    }
    dv_device_get_stats(d->dev, &s1);
    ph->evictions = s1.evictions - s0.evictions;
    return 0;
}

int dv_demo_run(const dv_demo_opts_t *o) {
    demo_t d = {0};
    d.quiet = o->quiet;
    d.layers = o->layers > 0 ? o->layers : 24;
    uint64_t layer_mib = o->layer_mib ? o->layer_mib : 32;
    d.layer = layer_mib << 20;
    uint64_t model_mib = (uint64_t)d.layers * layer_mib;
    uint64_t budget_mib = o->budget_mib ? o->budget_mib : model_mib * 2 / 3 + layer_mib;

    dv_device_options_t opt;
    dv_device_options_init(&opt);
    opt.backend = o->backend;
    opt.page_size = d.layer;
    opt.vram_limit = budget_mib << 20;
    if (dv_device_open(&opt, &d.dev) != DV_OK) {
        return fail("open device");
    }
    dv_device_caps_t caps;
    dv_device_get_caps(d.dev, &caps);
    d.host_visible = (caps.flags & DV_CAP_HOST_ACCESSIBLE) != 0;
    printf("dynvram demo on %s:%d (%s)\n", caps.backend, caps.ordinal, caps.name);
    printf("  two models of %d x %llu MiB = %llu MiB each, budget %llu MiB "
           "(page %llu MiB)\n\n",
           d.layers, (unsigned long long)layer_mib, (unsigned long long)model_mib,
           (unsigned long long)budget_mib, (unsigned long long)(caps.page_size >> 20));

    model_t a = {0}, b = {0};
    int rc = 1;
    /* The scratch buffer for streamed layers: one page, pinned throughout. */
    uint64_t g;
    dv_vbar_info_t si;
    dv_result_t r = dv_vbar_create(d.dev, d.layer, &d.scratch);
    if (r == DV_OK) {
        r = dv_fault(d.dev, d.scratch, 0, d.layer, &g);
    }
    if (r == DV_OFFLOADED) {
        /* Not an error of the library: the budget cannot hold one page. */
        dv_device_stats_t bs;
        dv_device_get_stats(d.dev, &bs);
        fflush(stdout);
        fprintf(stderr,
                "dynvram demo: scratch buffer: the device's budget (%llu MiB) "
                "cannot hold one page (%llu MiB); use a larger --budget-mib or "
                "a smaller --layer-mib\n",
                (unsigned long long)(bs.budget >> 20),
                (unsigned long long)(caps.page_size >> 20));
        dv_vbar_destroy(d.dev, d.scratch);
        d.scratch = NULL;
        goto out;
    }
    if (r != DV_OK || dv_vbar_get_info(d.dev, d.scratch, &si) != DV_OK) {
        fail("scratch buffer");
        goto out;
    }
    d.scratch_base = si.base;
    if (make_model(&d, &a, 'A') || make_model(&d, &b, 'B')) {
        goto out;
    }
    phase_t ph[3] = {
        {.title = "model A", .m = &a},
        {.title = "model B (takes over)", .m = &b},
        {.title = "model A (again)", .m = &a},
    };
    for (int p = 0; p < 3; p++) {
        if (run_phase(&d, &ph[p], o->steps)) {
            goto out;
        }
    }
    dv_device_stats_t st;
    dv_device_get_stats(d.dev, &st);
    printf("\n  %-22s %9s %9s %10s %14s %14s %10s\n", "phase", "resident",
           "first ms", "steady ms", "copied first", "copied steady", "evictions");
    for (int p = 0; p < 3; p++) {
        /* Steady = the last step; with one step there is none ("-"). */
        char steady_ms[32] = "-", steady_copied[32] = "-";
        if (o->steps > 1) {
            snprintf(steady_ms, sizeof(steady_ms), "%.1f", ph[p].last.ms);
            snprintf(steady_copied, sizeof(steady_copied), "%llu MiB",
                     (unsigned long long)(ph[p].last.copied >> 20));
        }
        printf("  %-22s %8.0f%% %9.1f %10s %10llu MiB %14s %10llu\n", ph[p].title,
               100.0 * ph[p].last.resident / d.layers, ph[p].first.ms, steady_ms,
               (unsigned long long)(ph[p].first.copied >> 20), steady_copied,
               (unsigned long long)ph[p].evictions);
    }
    printf("\n  faults: %llu hit, %llu populated, %llu offloaded; %llu pages "
           "populated (%llu from the pool); %llu evictions\n",
           (unsigned long long)st.faults_hit, (unsigned long long)st.faults_populated,
           (unsigned long long)st.faults_offloaded,
           (unsigned long long)st.pages_populated, (unsigned long long)st.pool_reuses,
           (unsigned long long)st.evictions);
    if (d.host_visible) {
        printf("  content check: %ld resident layers verified unchanged, %ld corrupt\n",
               d.verified, d.corrupt);
    }
    rc = d.corrupt ? 1 : 0;
    if (dv_device_check(d.dev) != DV_OK) {
        rc = fail("invariants");
    }
out:
    free_model(&d, &a);
    free_model(&d, &b);
    if (d.scratch) {
        dv_unpin(d.dev, d.scratch, 0, d.layer, NULL);
        dv_vbar_destroy(d.dev, d.scratch);
    }
    dv_device_close(d.dev);
    return rc;
}
