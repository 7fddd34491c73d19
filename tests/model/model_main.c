/*
 * model_main.c - the command line of the model-based tester (dv_model).
 * SPDX-License-Identifier: Apache-2.0
 *
 *   dv_model [--seed S] [--sequences N] [--calls C] [--threads T]
 *            [--dead-handles 0|1] [--clear-check 0|1] [--log-calls 0|1]
 *            [--trace N] [--time-limit SEC] [--verbose] [--quiet]
 *            [--record FILE]
 *
 * Runs sequences with seeds S, S+1, ..., S+N-1 (C calls each; with
 * --threads T >= 2, T threads of C calls each on shared devices). Exit
 * status 0 when every check held, 1 at the first broken check (the report
 * names the seed and how to run that sequence alone), 2 for bad usage.
 * --dead-handles 1 (the default) also calls with handles of destroyed
 * VBARs, closed devices, destroyed streams and junk stream pointers;
 * --clear-check 1 (the default) also requires dv_last_error() to be empty
 * after every successful call; --log-calls 0 keeps the threads of --threads
 * from setting the global log level.
 * --record FILE (one single-threaded sequence) writes the sequence's
 * choices to FILE as an input of dv_model_fuzz that makes the same calls
 * (with --calls 400, the fuzzer's length; the content tokens then come
 * from seed 0, as the fuzzer's do): how new corpus inputs are made.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int usage(void) {
    fprintf(stderr,
            "usage: dv_model [--seed S] [--sequences N] [--calls C] "
            "[--threads T]\n"
            "                [--dead-handles 0|1] [--clear-check 0|1] "
            "[--log-calls 0|1]\n"
            "                [--trace N] [--time-limit SEC] [--verbose] "
            "[--quiet]\n"
            "                [--record FILE]\n");
    return 2;
}

static int arg_u64(int argc, char **argv, int *k, uint64_t *out) {
    if (*k + 1 >= argc) {
        return 0;
    }
    char *end = NULL;
    *out = strtoull(argv[++*k], &end, 0);
    return end && *end == '\0';
}

int main(int argc, char **argv) {
    uint64_t seed = 1, sequences = 100, calls = 1000, threads = 0;
    uint64_t dead = 1, clear = 1, trace = 40, limit = 0, log_calls = 1;
    int verbose = 0, quiet = 0;
    const char *record = NULL;
    for (int k = 1; k < argc; k++) {
        const char *a = argv[k];
        int ok = 1;
        if (!strcmp(a, "--seed")) {
            ok = arg_u64(argc, argv, &k, &seed);
        } else if (!strcmp(a, "--sequences")) {
            ok = arg_u64(argc, argv, &k, &sequences);
        } else if (!strcmp(a, "--calls")) {
            ok = arg_u64(argc, argv, &k, &calls);
        } else if (!strcmp(a, "--threads")) {
            ok = arg_u64(argc, argv, &k, &threads);
        } else if (!strcmp(a, "--dead-handles")) {
            ok = arg_u64(argc, argv, &k, &dead);
        } else if (!strcmp(a, "--clear-check")) {
            ok = arg_u64(argc, argv, &k, &clear);
        } else if (!strcmp(a, "--log-calls")) {
            ok = arg_u64(argc, argv, &k, &log_calls);
        } else if (!strcmp(a, "--trace")) {
            ok = arg_u64(argc, argv, &k, &trace);
        } else if (!strcmp(a, "--time-limit")) {
            ok = arg_u64(argc, argv, &k, &limit);
        } else if (!strcmp(a, "--verbose")) {
            verbose = 1;
        } else if (!strcmp(a, "--quiet")) {
            quiet = 1;
        } else if (!strcmp(a, "--record") && k + 1 < argc) {
            record = argv[++k];
        } else {
            ok = 0;
        }
        if (!ok) {
            return usage();
        }
    }
    if (threads == 1 || threads > 64 || trace > 64 ||
        (record && (threads || sequences != 1))) {
        return usage();
    }
    double t0 = now_s();
    uint64_t total = 0, done = 0, strict = 0, loose = 0, errors = 0, pages = 0;
    uint64_t at_wm = 0, slow_ok = 0, slow_off = 0, slow_ev = 0, rises = 0;
    uint64_t ops[64] = {0};
    dv_device_stats_t seen = {0};
    static mt_world_t w;
    for (; done < sequences; done++) {
        if (limit && now_s() - t0 > (double)limit) {
            break;
        }
        uint64_t s = seed + done;
        if (threads) {
            mt_thread_opts_t o = {.seed = s,
                                  .calls = calls,
                                  .threads = (int)threads,
                                  .dead_handles = (int)dead,
                                  .log_calls = (int)log_calls,
                                  .clear_check = (int)clear,
                                  .trace_lines = (int)trace};
            total += mt_run_threads(&o);
            continue;
        }
        mt_world_init(&w, s);
        if (record) {
            mt_src_record(&w.src);
            w.seed = 0; /* the fuzzer's content tokens */
        }
        w.max_calls = calls;
        w.dead_handles = (int)dead;
        w.clear_check = (int)clear;
        w.trace_lines = (int)trace;
        w.verbose = verbose;
        snprintf(w.repro, sizeof(w.repro),
                 "dv_model --seed %llu --sequences 1 --calls %llu "
                 "--dead-handles %llu --clear-check %llu",
                 (unsigned long long)s, (unsigned long long)calls,
                 (unsigned long long)dead, (unsigned long long)clear);
        total += mt_run_sequence(&w);
        if (record) {
            FILE *f = fopen(record, "wb");
            if (!f || fwrite(w.src.rec, 1, w.src.rec_len, f) != w.src.rec_len ||
                fclose(f) != 0) {
                fprintf(stderr, "dv_model: cannot write %s\n", record);
                return 2;
            }
            printf("dv_model: recorded seed %llu (%llu calls) as %zu bytes in "
                   "%s\n",
                   (unsigned long long)s, (unsigned long long)w.calls,
                   w.src.rec_len, record);
            free(w.src.rec);
        }
        strict += w.n_strict;
        loose += w.n_loose;
        errors += w.n_errors_checked;
        pages += w.n_verified_pages;
        at_wm += w.n_at_wm;
        slow_ok += w.n_slow_ok;
        slow_off += w.n_slow_off;
        slow_ev += w.n_slow_evicting;
        rises += w.n_rises;
        for (int k = 0; k < 64; k++) {
            ops[k] += w.op_count[k];
        }
        seen.faults_hit += w.seen.faults_hit;
        seen.faults_populated += w.seen.faults_populated;
        seen.faults_offloaded += w.seen.faults_offloaded;
        seen.pages_populated += w.seen.pages_populated;
        seen.pool_reuses += w.seen.pool_reuses;
        seen.evictions += w.seen.evictions;
        seen.fence_waits += w.seen.fence_waits;
        seen.oom_retries += w.seen.oom_retries;
    }
    double dt = now_s() - t0;
    if (!quiet) {
        printf("dv_model: PASS %llu sequences (seeds %llu..%llu), %llu calls"
               "%s%s, %.1f s\n",
               (unsigned long long)done, (unsigned long long)seed,
               (unsigned long long)(seed + (done ? done - 1 : 0)),
               (unsigned long long)total, threads ? " in threaded mode" : "",
               dead ? ", dead handles on" : ", dead handles off", dt);
        if (!threads) {
            printf("  %llu model comparisons (%llu populating faults checked "
                   "by rules, the rest exactly), %llu error cases, %llu page "
                   "contents verified\n",
                   (unsigned long long)strict, (unsigned long long)loose,
                   (unsigned long long)errors, (unsigned long long)pages);
            printf("  faults: %llu hit, %llu populated, %llu offloaded; "
                   "%llu pages populated (%llu from the pool), %llu "
                   "evictions, %llu fence waits, %llu OOM retries\n",
                   (unsigned long long)seen.faults_hit,
                   (unsigned long long)seen.faults_populated,
                   (unsigned long long)seen.faults_offloaded,
                   (unsigned long long)seen.pages_populated,
                   (unsigned long long)seen.pool_reuses,
                   (unsigned long long)seen.evictions,
                   (unsigned long long)seen.fence_waits,
                   (unsigned long long)seen.oom_retries);
            printf("  predicted exactly: %llu faults offloaded at or above "
                   "the watermark, %llu watermark rises (recovery), %llu "
                   "populating faults DV_OK (%llu of them evicting first), "
                   "%llu DV_OFFLOADED for want of room\n",
                   (unsigned long long)at_wm, (unsigned long long)rises,
                   (unsigned long long)slow_ok, (unsigned long long)slow_ev,
                   (unsigned long long)slow_off);
        }
        if (verbose && !threads) {
            for (int k = 0; k < 64 && mt_op_name(k); k++) {
                printf("  op %-18s %llu\n", mt_op_name(k),
                       (unsigned long long)ops[k]);
            }
        }
    }
    return 0;
}
