/*
 * bench_ops.c - microbenchmarks of dynvram's hot operations against the raw
 * driver calls they wrap, timed in the same run on the same device.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 *   dv_bench_ops [--backend cuda|host|...] [--iters N] [--page-mib M]
 *                [--json PATH] [--machine TEXT] [--quick]
 *
 * The table goes to stdout; the JSON to PATH, by default ops-YYYYMMDD.json
 * in the current directory (never into the source tree: committed results
 * under bench/results are copied there by hand).
 *
 * Figures (median of many iterations, nanoseconds):
 *   pair_default / pair_fi1  resident dv_fault + dv_unpin, fence_interval
 *                            default (16) and 1. Target < 100 ns (default).
 *   populate / raw_populate  dv_fault of an absent page with the pool off
 *                            vs cuMemCreate + cuMemMap + cuMemSetAccess.
 *                            Target: ratio within 1.10.
 *   populate_pooled / raw_map  the same from the pool (a kept handle) vs
 *                            cuMemMap + cuMemSetAccess.
 *   evict / raw_evict        dv_vbar_evict of one idle page (pool off) vs
 *                            cuMemUnmap + cuMemRelease.
 *   evict_pooled / raw_unmap  eviction into the pool vs cuMemUnmap.
 * Raw figures exist for the cuda backend only (null elsewhere). The work
 * between timed calls (unpin, evict, prioritize, raw unmap) is not timed.
 * Evictions are timed after the page's fence completed (stream synced), so
 * they measure query + unmap (+ release), not a wait.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/os.h"
#include "dynvram.h"
#include "dynvram_hal.h"
#include "hal/cuda/cuda_load.h"

#define MIB (1ull << 20)
#define PAIR_BATCH 1000

typedef struct bench_args {
    const char *backend;
    const char *json;
    const char *machine;
    int iters;
    uint64_t page;
} bench_args_t;

/* One measured figure: median, min and p90 of its samples in ns. */
typedef struct figure {
    const char *name;
    int have;
    int n;
    double median, min, p90;
} figure_t;

enum {
    F_PAIR_DEFAULT,
    F_PAIR_FI1,
    F_POPULATE,
    F_RAW_POPULATE,
    F_POPULATE_POOLED,
    F_RAW_MAP,
    F_EVICT,
    F_RAW_EVICT,
    F_EVICT_POOLED,
    F_RAW_UNMAP,
    F_COUNT
};

static figure_t figs[F_COUNT] = {
    {"pair_default", 0, 0, 0, 0, 0},    {"pair_fi1", 0, 0, 0, 0, 0},
    {"populate", 0, 0, 0, 0, 0},        {"raw_populate", 0, 0, 0, 0, 0},
    {"populate_pooled", 0, 0, 0, 0, 0}, {"raw_map", 0, 0, 0, 0, 0},
    {"evict", 0, 0, 0, 0, 0},           {"raw_evict", 0, 0, 0, 0, 0},
    {"evict_pooled", 0, 0, 0, 0, 0},    {"raw_unmap", 0, 0, 0, 0, 0},
};

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void summarize(int which, double *s, int n) {
    qsort(s, (size_t)n, sizeof(*s), cmp_double);
    figs[which].have = 1;
    figs[which].n = n;
    figs[which].min = s[0];
    figs[which].median = s[n / 2];
    figs[which].p90 = s[(n * 9) / 10 < n ? (n * 9) / 10 : n - 1];
}

#define CHECK(call)                                                            \
    do {                                                                       \
        dv_result_t ck_r_ = (call);                                            \
        if (ck_r_ != DV_OK) {                                                  \
            fprintf(stderr, "bench: %s -> %s: %s\n", #call,                    \
                    dv_result_name(ck_r_), dv_last_error());                   \
            exit(1);                                                           \
        }                                                                      \
    } while (0)

/* ---- dynvram side ---- */

static dv_device_t *open_dev(const bench_args_t *a, uint32_t fence_interval,
                             uint64_t pool_limit) {
    dv_device_options_t o;
    dv_device_t *dev = NULL;
    dv_device_options_init(&o);
    o.backend = a->backend;
    o.page_size = a->page;
    o.fence_interval = fence_interval;
    o.pool_limit = pool_limit;
    CHECK(dv_device_open(&o, &dev));
    return dev;
}

static void bench_pairs(const bench_args_t *a, uint32_t fi, int which,
                        double *s) {
    dv_device_t *dev = open_dev(a, fi, UINT64_MAX);
    dv_vbar_t *v = NULL;
    void *stream = NULL;
    uint64_t gen = 0;
    int batches = a->iters;
    CHECK(dv_stream_create(dev, &stream));
    CHECK(dv_vbar_create(dev, a->page, &v));
    CHECK(dv_fault(dev, v, 0, a->page, &gen));
    CHECK(dv_unpin(dev, v, 0, a->page, stream));
    for (int b = 0; b < batches; b++) {
        uint64_t t0 = dv__now_ns();
        for (int i = 0; i < PAIR_BATCH; i++) {
            if (dv_fault(dev, v, 0, a->page, &gen) != DV_OK ||
                dv_unpin(dev, v, 0, a->page, stream) != DV_OK) {
                fprintf(stderr, "bench: resident pair failed: %s\n",
                        dv_last_error());
                exit(1);
            }
        }
        s[b] = (double)(dv__now_ns() - t0) / PAIR_BATCH;
    }
    summarize(which, s, batches);
    CHECK(dv_stream_synchronize(dev, stream));
    CHECK(dv_vbar_destroy(dev, v));
    CHECK(dv_stream_destroy(dev, stream));
    CHECK(dv_device_close(dev));
}

/* Populate then evict page 0 `iters` times; time the fault (pop_fig) and
 * the eviction (evict_fig). With the pool on, the first round fills it. */
static void bench_populate_evict(const bench_args_t *a, uint64_t pool_limit,
                                 int pop_fig, int evict_fig, double *sp,
                                 double *se) {
    dv_device_t *dev = open_dev(a, 1, pool_limit);
    dv_vbar_t *v = NULL;
    void *stream = NULL;
    uint64_t gen = 0, freed = 0;
    dv_device_stats_t st;
    int n = 0;
    CHECK(dv_stream_create(dev, &stream));
    CHECK(dv_vbar_create(dev, a->page, &v));
    for (int i = -1; i < a->iters; i++) {
        uint64_t t0 = dv__now_ns();
        dv_result_t r = dv_fault(dev, v, 0, a->page, &gen);
        uint64_t t1 = dv__now_ns();
        if (r != DV_OK) {
            fprintf(stderr, "bench: populating fault -> %s: %s\n",
                    dv_result_name(r), dv_last_error());
            exit(1);
        }
        CHECK(dv_unpin(dev, v, 0, a->page, stream));
        CHECK(dv_stream_synchronize(dev, stream));
        uint64_t t2 = dv__now_ns();
        CHECK(dv_vbar_evict(dev, v, a->page, &freed));
        uint64_t t3 = dv__now_ns();
        if (freed != a->page) {
            fprintf(stderr, "bench: evicted %llu bytes, expected one page\n",
                    (unsigned long long)freed);
            exit(1);
        }
        CHECK(dv_vbar_prioritize(dev, v)); /* eviction lowered the watermark */
        if (i >= 0) { /* round -1 warms up (and the pool) */
            sp[n] = (double)(t1 - t0);
            se[n] = (double)(t3 - t2);
            n++;
        }
    }
    CHECK(dv_device_get_stats(dev, &st));
    if (pool_limit != 0 && st.pool_reuses < (uint64_t)a->iters) {
        fprintf(stderr, "bench: only %llu of %d faults reused the pool\n",
                (unsigned long long)st.pool_reuses, a->iters);
        exit(1);
    }
    summarize(pop_fig, sp, n);
    summarize(evict_fig, se, n);
    CHECK(dv_vbar_destroy(dev, v));
    CHECK(dv_stream_destroy(dev, stream));
    CHECK(dv_device_close(dev));
}

/* ---- raw driver side (cuda) ---- */

typedef struct raw_ctx {
    dv__cu_api_t api;
    dv_cu_device dev;
    dv_cu_context ctx;
    dv_cu_deviceptr va;
    dv_cu_mem_allocation_prop prop;
    dv_cu_mem_access_desc access;
} raw_ctx_t;

#define RAW(call)                                                              \
    do {                                                                       \
        dv_cu_result raw_rc_ = (call);                                         \
        if (raw_rc_ != DV_CU_SUCCESS) {                                        \
            char raw_d_[192];                                                  \
            dv__cu_describe(&r->api, raw_rc_, raw_d_, sizeof(raw_d_));         \
            fprintf(stderr, "bench: %s -> %s\n", #call, raw_d_);               \
            exit(1);                                                           \
        }                                                                      \
    } while (0)

static int raw_open(raw_ctx_t *r, uint64_t page, char *reason, size_t len) {
    memset(r, 0, sizeof(*r));
    if (dv__cu_load(NULL, &r->api, reason, len) != DV_OK) {
        return 0;
    }
    RAW(r->api.cuDeviceGet(&r->dev, 0));
    RAW(r->api.cuDevicePrimaryCtxRetain(&r->ctx, r->dev));
    RAW(r->api.cuCtxSetCurrent(r->ctx));
    r->prop.type = DV_CU_MEM_ALLOCATION_TYPE_PINNED;
    r->prop.requested_handle_types = DV_CU_MEM_HANDLE_TYPE_NONE;
    r->prop.location.type = DV_CU_MEM_LOCATION_TYPE_DEVICE;
    r->prop.location.id = r->dev;
    r->access.location = r->prop.location;
    r->access.flags = DV_CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    RAW(r->api.cuMemAddressReserve(&r->va, page, 0, 0, 0));
    return 1;
}

static void raw_close(raw_ctx_t *r, uint64_t page) {
    RAW(r->api.cuMemAddressFree(r->va, page));
    RAW(r->api.cuCtxSetCurrent(NULL));
    RAW(r->api.cuDevicePrimaryCtxRelease(r->dev));
    dv__cu_unload(&r->api);
}

/* create+map+access / unmap+release, and map+access / unmap of one kept
 * handle, `iters` times each (one warm-up round first). */
static void bench_raw(raw_ctx_t *r, const bench_args_t *a, double *s1,
                      double *s2) {
    const size_t page = (size_t)a->page;
    dv_cu_mem_handle h = 0;
    int n = 0;
    for (int i = -1; i < a->iters; i++) {
        uint64_t t0 = dv__now_ns();
        RAW(r->api.cuMemCreate(&h, page, &r->prop, 0));
        RAW(r->api.cuMemMap(r->va, page, 0, h, 0));
        RAW(r->api.cuMemSetAccess(r->va, page, &r->access, 1));
        uint64_t t1 = dv__now_ns();
        RAW(r->api.cuMemUnmap(r->va, page));
        RAW(r->api.cuMemRelease(h));
        uint64_t t2 = dv__now_ns();
        if (i >= 0) {
            s1[n] = (double)(t1 - t0);
            s2[n] = (double)(t2 - t1);
            n++;
        }
    }
    summarize(F_RAW_POPULATE, s1, n);
    summarize(F_RAW_EVICT, s2, n);

    RAW(r->api.cuMemCreate(&h, page, &r->prop, 0));
    n = 0;
    for (int i = -1; i < a->iters; i++) {
        uint64_t t0 = dv__now_ns();
        RAW(r->api.cuMemMap(r->va, page, 0, h, 0));
        RAW(r->api.cuMemSetAccess(r->va, page, &r->access, 1));
        uint64_t t1 = dv__now_ns();
        RAW(r->api.cuMemUnmap(r->va, page));
        uint64_t t2 = dv__now_ns();
        if (i >= 0) {
            s1[n] = (double)(t1 - t0);
            s2[n] = (double)(t2 - t1);
            n++;
        }
    }
    RAW(r->api.cuMemRelease(h));
    summarize(F_RAW_MAP, s1, n);
    summarize(F_RAW_UNMAP, s2, n);
}

/* ---- output ---- */

static double ratio(int num, int den) {
    if (!figs[num].have || !figs[den].have || figs[den].median <= 0) {
        return -1;
    }
    return figs[num].median / figs[den].median;
}

static void print_ratio(FILE *f, const char *name, int num, int den, int last) {
    double q = ratio(num, den);
    if (q < 0) {
        fprintf(f, "    \"%s\": null%s\n", name, last ? "" : ",");
    } else {
        fprintf(f, "    \"%s\": %.4f%s\n", name, q, last ? "" : ",");
    }
}

static void json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            fprintf(f, "\\%c", c);
        } else if (c < 0x20) {
            fprintf(f, "\\u%04x", c);
        } else {
            fputc(c, f);
        }
    }
    fputc('"', f);
}

static int write_json(const bench_args_t *a, const dv_device_caps_t *caps,
                      int driver_version, const char *date) {
    FILE *f = fopen(a->json, "w");
    if (!f) {
        fprintf(stderr, "bench: cannot write %s\n", a->json);
        return 0;
    }
    fprintf(f, "{\n  \"benchmark\": \"dv_bench_ops\",\n  \"date\": ");
    json_string(f, date);
    fprintf(f, ",\n  \"machine\": ");
    json_string(f, a->machine);
    fprintf(f, ",\n  \"backend\": ");
    json_string(f, caps->backend);
    fprintf(f, ",\n  \"device\": ");
    json_string(f, caps->name);
    if (driver_version > 0) {
        fprintf(f, ",\n  \"driver_version\": %d", driver_version);
    } else {
        fprintf(f, ",\n  \"driver_version\": null");
    }
    fprintf(f,
            ",\n  \"parameters\": {\"iterations\": %d, \"pair_batch\": %d, "
            "\"page_size\": %llu, \"granularity\": %llu, "
            "\"fence_interval_default\": 16},\n",
            a->iters, PAIR_BATCH, (unsigned long long)a->page,
            (unsigned long long)caps->granularity);
    fprintf(f, "  \"figures_ns\": {\n");
    for (int i = 0; i < F_COUNT; i++) {
        const char *sep = i + 1 < F_COUNT ? "," : "";
        if (!figs[i].have) {
            fprintf(f, "    \"%s\": null%s\n", figs[i].name, sep);
            continue;
        }
        fprintf(f,
                "    \"%s\": {\"median\": %.1f, \"min\": %.1f, \"p90\": %.1f, "
                "\"samples\": %d}%s\n",
                figs[i].name, figs[i].median, figs[i].min, figs[i].p90,
                figs[i].n, sep);
    }
    fprintf(f, "  },\n  \"ratios\": {\n");
    print_ratio(f, "populate_vs_raw", F_POPULATE, F_RAW_POPULATE, 0);
    print_ratio(f, "populate_pooled_vs_raw_map", F_POPULATE_POOLED, F_RAW_MAP,
                0);
    print_ratio(f, "evict_vs_raw", F_EVICT, F_RAW_EVICT, 0);
    print_ratio(f, "evict_pooled_vs_raw_unmap", F_EVICT_POOLED, F_RAW_UNMAP, 1);
    fprintf(f, "  },\n  \"targets\": {\"pair_default_ns_max\": 100, "
               "\"populate_vs_raw_max\": 1.10}\n}\n");
    if (fclose(f) != 0) {
        fprintf(stderr, "bench: error writing %s\n", a->json);
        return 0;
    }
    return 1;
}

static void print_row(const char *label, int fig, int raw) {
    if (!figs[fig].have) {
        return;
    }
    printf("%-34s %12.1f", label, figs[fig].median);
    if (raw >= 0 && figs[raw].have) {
        printf(" %12.1f %7.3f\n", figs[raw].median, ratio(fig, raw));
    } else {
        printf(" %12s %7s\n", "-", "-");
    }
}

static void usage(void) {
    fprintf(stderr, "usage: dv_bench_ops [--backend NAME] [--iters N] "
                    "[--page-mib M] [--json PATH] [--machine TEXT] "
                    "[--quick]\n");
}

int main(int argc, char **argv) {
    static char json_default[512];
    char date[32];
    char reason[256] = "";
    bench_args_t a = {NULL, NULL, "", 200, 32 * MIB};
    time_t now = time(NULL);
    struct tm *tm = gmtime(&now);

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(arg, "--quick") == 0) {
            a.iters = 5;
        } else if (val && strcmp(arg, "--backend") == 0) {
            a.backend = val, i++;
        } else if (val && strcmp(arg, "--iters") == 0) {
            a.iters = atoi(val), i++;
        } else if (val && strcmp(arg, "--page-mib") == 0) {
            a.page = strtoull(val, NULL, 10) * MIB, i++;
        } else if (val && strcmp(arg, "--json") == 0) {
            a.json = val, i++;
        } else if (val && strcmp(arg, "--machine") == 0) {
            a.machine = val, i++;
        } else {
            usage();
            return 2;
        }
    }
    if (!a.machine[0] && dv__getenv("HOSTNAME")) {
        a.machine = dv__getenv("HOSTNAME");
    }
    if (a.iters < 1 || a.page == 0) {
        usage();
        return 2;
    }
    if (!tm || !strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", tm)) {
        snprintf(date, sizeof(date), "unknown");
    }
    if (!a.json) {
        char day[16] = "unknown";
        if (tm) {
            strftime(day, sizeof(day), "%Y%m%d", tm);
        }
        snprintf(json_default, sizeof(json_default), "ops-%s.json", day);
        a.json = json_default;
    }

    /* Which device: the caps of a throwaway open say what we are on. */
    dv_device_t *dev = open_dev(&a, 0, UINT64_MAX);
    dv_device_caps_t caps;
    CHECK(dv_device_get_caps(dev, &caps));
    CHECK(dv_device_close(dev));
    a.page = caps.page_size;

    size_t ns = (size_t)a.iters + 1;
    double *s1 = malloc(ns * sizeof(double));
    double *s2 = malloc(ns * sizeof(double));
    if (!s1 || !s2) {
        fprintf(stderr, "bench: out of memory\n");
        return 1;
    }
    bench_pairs(&a, 0, F_PAIR_DEFAULT, s1);
    bench_pairs(&a, 1, F_PAIR_FI1, s1);
    bench_populate_evict(&a, 0, F_POPULATE, F_EVICT, s1, s2);
    bench_populate_evict(&a, UINT64_MAX, F_POPULATE_POOLED, F_EVICT_POOLED, s1,
                         s2);

    int driver_version = 0;
    if (strcmp(caps.backend, "cuda") == 0) {
        raw_ctx_t raw;
        if (!raw_open(&raw, a.page, reason, sizeof(reason))) {
            fprintf(stderr, "bench: raw driver unavailable: %s\n", reason);
            return 1;
        }
        driver_version = raw.api.driver_version;
        bench_raw(&raw, &a, s1, s2);
        raw_close(&raw, a.page);
    }
    free(s1);
    free(s2);

    printf("dv_bench_ops  %s  backend %s  device \"%s\"  page %llu MiB  "
           "iterations %d\n",
           date, caps.backend, caps.name, (unsigned long long)(a.page / MIB),
           a.iters);
    printf("%-34s %12s %12s %7s\n", "operation (median ns)", "dynvram", "raw",
           "ratio");
    print_row("resident fault+unpin (fi=32, default)", F_PAIR_DEFAULT, -1);
    print_row("resident fault+unpin (fi=1)", F_PAIR_FI1, -1);
    print_row("populating fault / create+map+acc", F_POPULATE, F_RAW_POPULATE);
    print_row("pooled fault / map+access", F_POPULATE_POOLED, F_RAW_MAP);
    print_row("evict idle page / unmap+release", F_EVICT, F_RAW_EVICT);
    print_row("evict into pool / unmap", F_EVICT_POOLED, F_RAW_UNMAP);
    if (!write_json(&a, &caps, driver_version, date)) {
        return 1;
    }
    printf("json: %s\n", a.json);
    return 0;
}
