/*
 * bench_io.h - benchmark F1's parameters and figures, shared by the
 * measurements (bench_io.c) and the command line and report
 * (bench_io_main.c).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef DV_BENCH_IO_H
#define DV_BENCH_IO_H

#include <stdint.h>

#define MIB (1ull << 20)
#define GIB (1ull << 30)

typedef struct args {
    const char *backend, *dir, *json, *machine;
    uint64_t size, chunk, reg_total, reg_step, h2d;
    uint32_t threads, slots;
    int runs, keep, check;
} args_t;

/* GB/s (1e9 B/s) unless named otherwise; -1 = not measured. */
typedef struct results {
    double mt_warm, mt_cold, one_warm, one_cold, h2d, dyn_warm, dyn_cold;
    double reg_hostbuf, reg_plain; /* seconds per GiB */
    uint64_t rss_delta, staging;   /* bytes */
    int cold_ok;                   /* the OS dropped the cache for cold runs */
    char device[192];
} results_t;

/* Write `size` random bytes to `path`, flushed and out of the cache. */
void bench_io_write_file(const char *path, uint64_t size);
/* Every measurement, in one run on one device. Exits on a failure. */
void bench_io_run(const args_t *a, const char *path, results_t *res);

#endif
