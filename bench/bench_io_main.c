/*
 * bench_io_main.c - dv_bench_io's command line, table and JSON (the
 * measurements are bench_io.c's; the figures are described there).
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * The table goes to stdout, the JSON to --json PATH (default
 * io-YYYYMMDD.json in the current directory, never into the source tree).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_io.h"

static void usage(FILE *to) {
    fprintf(to,
            "usage: dv_bench_io [--backend NAME] [--dir DIR] [--size-mib N]\n"
            "         [--threads N] [--chunk-mib N] [--slots N] [--runs N]\n"
            "         [--reg-total-mib N] [--reg-step-mib N] [--h2d-mib N]\n"
            "         [--json PATH] [--machine TEXT] [--keep] [--check]\n"
            "defaults: 8192 MiB file in the current directory, 8 threads,\n"
            "8 MiB chunks, 16 slots, 3 runs, registration of 8192 MiB in\n"
            "512 MiB steps, 1024 MiB pinned copy; --check: exit 1 when a\n"
            "target is missed\n");
}

static uint64_t number(const char *flag, const char *v, uint64_t lo,
                       uint64_t hi) {
    char *end = NULL;
    errno = 0;
    unsigned long long n = v ? strtoull(v, &end, 10) : 0;
    if (!v || !*v || *end || errno || n < lo || n > hi || v[0] == '-') {
        fprintf(stderr,
                "dv_bench_io: %s needs a whole number in [%llu, %llu]\n", flag,
                (unsigned long long)lo, (unsigned long long)hi);
        exit(2);
    }
    return n;
}

static void parse(int argc, char **argv, args_t *a) {
    *a = (args_t){.dir = ".",
                  .size = 8192 * MIB,
                  .chunk = 8 * MIB,
                  .reg_total = 8192 * MIB,
                  .reg_step = 512 * MIB,
                  .h2d = 1024 * MIB,
                  .threads = 8,
                  .slots = 16,
                  .runs = 3};
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = 1;
        if (!strcmp(f, "--backend")) {
            a->backend = v;
        } else if (!strcmp(f, "--dir")) {
            a->dir = v;
        } else if (!strcmp(f, "--json")) {
            a->json = v;
        } else if (!strcmp(f, "--machine")) {
            a->machine = v;
        } else if (!strcmp(f, "--size-mib")) {
            a->size = number(f, v, 1, 1u << 24) * MIB;
        } else if (!strcmp(f, "--chunk-mib")) {
            a->chunk = number(f, v, 1, 1024) * MIB;
        } else if (!strcmp(f, "--reg-total-mib")) {
            a->reg_total = number(f, v, 1, 1u << 24) * MIB;
        } else if (!strcmp(f, "--reg-step-mib")) {
            a->reg_step = number(f, v, 1, 1u << 24) * MIB;
        } else if (!strcmp(f, "--h2d-mib")) {
            a->h2d = number(f, v, 1, 1u << 24) * MIB;
        } else if (!strcmp(f, "--threads")) {
            a->threads = (uint32_t)number(f, v, 1, 64);
        } else if (!strcmp(f, "--slots")) {
            a->slots = (uint32_t)number(f, v, 1, 256);
        } else if (!strcmp(f, "--runs")) {
            a->runs = (int)number(f, v, 1, 100);
        } else {
            takes = 0;
            if (!strcmp(f, "--keep")) {
                a->keep = 1;
            } else if (!strcmp(f, "--check")) {
                a->check = 1;
            } else if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
                usage(stdout);
                exit(0);
            } else {
                fprintf(stderr, "dv_bench_io: unknown option %s\n", f);
                usage(stderr);
                exit(2);
            }
        }
        if (takes && !v) {
            fprintf(stderr, "dv_bench_io: %s needs a value\n", f);
            exit(2);
        }
        i += takes;
    }
}

static double min2(double a, double b) { return a < b ? a : b; }

typedef struct verdict {
    double warm, cold;
    int warm_ok, cold_ok, rss_ok;
} verdict_t;

static verdict_t judge(const results_t *r) {
    verdict_t v;
    double floor_warm = min2(r->mt_warm, r->h2d);
    v.warm = floor_warm > 0 ? r->dyn_warm / floor_warm : 0;
    v.cold = r->mt_cold > 0 ? r->dyn_cold / r->mt_cold : 0;
    v.warm_ok = v.warm >= 0.9;
    v.cold_ok = v.cold >= 0.95;
    v.rss_ok = r->rss_delta <= r->staging + 64 * MIB;
    return v;
}

static void table(const args_t *a, const results_t *r, const verdict_t *v) {
    printf("F1: file to device on %s\n", r->device);
    printf("  file %llu MiB, %u threads, %llu MiB chunks, %u slots, best of "
           "%d\n\n",
           (unsigned long long)(a->size / MIB), a->threads,
           (unsigned long long)(a->chunk / MIB), a->slots, a->runs);
    printf("  %-34s %10s %10s\n", "figure", "warm GB/s", "cold GB/s");
    printf("  %-34s %10.2f %10.2f\n", "dynvram read_to_device", r->dyn_warm,
           r->dyn_cold);
    printf("  %-34s %10.2f %10.2f\n", "host read, same threads", r->mt_warm,
           r->mt_cold);
    printf("  %-34s %10.2f %10.2f\n", "host read, one thread (pread loop)",
           r->one_warm, r->one_cold);
    printf("  %-34s %10.2f %10s\n", "pinned host to device", r->h2d, "");
    if (!r->cold_ok) {
        printf("  (the OS could not drop the file's cache: cold = warm)\n");
    }
    printf("\n  warm / min(host read, pinned H2D) = %.3f  (target >= 0.90: "
           "%s)\n",
           v->warm, v->warm_ok ? "met" : "MISSED");
    printf("  cold / cold host read              = %.3f  (target >= 0.95: "
           "%s)\n",
           v->cold, v->cold_ok ? "met" : "MISSED");
    printf("  peak RSS during the transfer: +%.1f MiB (staging ring %.1f MiB, "
           "file %.1f MiB: %s)\n",
           (double)r->rss_delta / MIB, (double)r->staging / MIB,
           (double)a->size / MIB,
           v->rss_ok ? "bounded by the ring" : "NOT bounded by the ring");
    if (r->reg_hostbuf >= 0) {
        printf(
            "  register %llu MiB: host buffer in %llu MiB steps %.3f ms/GiB, "
            "one plain allocation %.3f ms/GiB (ratio %.2f)\n",
            (unsigned long long)(a->reg_total / MIB),
            (unsigned long long)(a->reg_step / MIB), r->reg_hostbuf * 1e3,
            r->reg_plain * 1e3,
            r->reg_plain > 0 ? r->reg_hostbuf / r->reg_plain : 0);
    } else {
        printf("  registration: the backend cannot register host memory\n");
    }
}

static void json(const args_t *a, const results_t *r, const verdict_t *v,
                 const char *date) {
    char def[64];
    const char *path = a->json;
    if (!path) {
        snprintf(def, sizeof(def), "io-%s.json", date);
        path = def;
    }
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        exit(1);
    }
    fprintf(f,
            "{\n  \"benchmark\": \"F1 file to device\",\n  \"date\": \"%s\",\n"
            "  \"machine\": \"%s\",\n  \"device\": \"%s\",\n"
            "  \"params\": {\"file_bytes\": %llu, \"threads\": %u, "
            "\"chunk_bytes\": %llu, \"slots\": %u, \"runs\": %d, "
            "\"reg_total_bytes\": %llu, \"reg_step_bytes\": %llu},\n",
            date, a->machine ? a->machine : "", r->device,
            (unsigned long long)a->size, a->threads,
            (unsigned long long)a->chunk, a->slots, a->runs,
            (unsigned long long)a->reg_total, (unsigned long long)a->reg_step);
    fprintf(f,
            "  \"gbps\": {\"file_to_device_warm\": %.4f, "
            "\"file_to_device_cold\": %.4f, \"mt_read_warm\": %.4f, "
            "\"mt_read_cold\": %.4f, \"pread_1t_warm\": %.4f, "
            "\"pread_1t_cold\": %.4f, \"h2d_pinned\": %.4f},\n",
            r->dyn_warm, r->dyn_cold, r->mt_warm, r->mt_cold, r->one_warm,
            r->one_cold, r->h2d);
    fprintf(
        f,
        "  \"cold_cache_dropped\": %s,\n  \"peak_rss_delta_bytes\": %llu,\n"
        "  \"staging_bytes\": %llu,\n"
        "  \"registration_ms_per_gib\": {\"hostbuf_steps\": %.6f, "
        "\"plain\": %.6f},\n"
        "  \"ratios\": {\"warm\": %.4f, \"warm_target\": 0.9, \"warm_met\": "
        "%s, \"cold\": %.4f, \"cold_target\": 0.95, \"cold_met\": %s, "
        "\"rss_bounded\": %s}\n}\n",
        r->cold_ok ? "true" : "false", (unsigned long long)r->rss_delta,
        (unsigned long long)r->staging, r->reg_hostbuf * 1e3,
        r->reg_plain * 1e3, v->warm, v->warm_ok ? "true" : "false", v->cold,
        v->cold_ok ? "true" : "false", v->rss_ok ? "true" : "false");
    fclose(f);
    printf("\n  JSON: %s\n", path);
}

int main(int argc, char **argv) {
    args_t a;
    parse(argc, argv, &a);
    if (a.reg_step > a.reg_total) {
        a.reg_step = a.reg_total;
    }
    char path[4096];
    /* The pid keeps two runs in one folder (CTest's) apart. */
    snprintf(path, sizeof(path), "%s/dv_bench_io-%llu-%ld.bin", a.dir,
             (unsigned long long)a.size, (long)getpid());
    bench_io_write_file(path, a.size);
    results_t r;
    memset(&r, 0, sizeof(r));
    bench_io_run(&a, path, &r);
    if (!a.keep) {
        unlink(path);
    }
    char date[32];
    time_t now = time(NULL);
    strftime(date, sizeof(date), "%Y%m%d", gmtime(&now));
    verdict_t v = judge(&r);
    table(&a, &r, &v);
    json(&a, &r, &v, date);
    return a.check && !(v.warm_ok && v.cold_ok && v.rss_ok) ? 1 : 0;
}
