/*
 * bench_io.c - benchmark F1 (../shared/spec/benchmarks.md): a file read into
 * device memory by dynvram's read pool, warm and cold, against the host
 * read rates of the same file and the pinned host-to-device bandwidth, all
 * measured in the same run; peak host RSS during the transfer; host buffer
 * growth + registration against registering one plain allocation.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 *   dv_bench_io [--backend NAME] [--dir DIR] [--size-mib N] [--threads N]
 *               [--chunk-mib N] [--slots N] [--runs N] [--reg-total-mib N]
 *               [--reg-step-mib N] [--h2d-mib N] [--json PATH]
 *               [--machine TEXT] [--keep] [--check]
 *
 * Defaults are the GPU run's: an 8 GiB file of random bytes written (and
 * fsync'ed) under --dir (default: the current directory), 8 threads, 8 MiB
 * chunks, 16 slots, registration of 8 GiB in 512 MiB steps. The destination
 * is a dynvram device buffer of the file's size. Figures (GB/s = 1e9 B/s):
 *   mt_read_{warm,cold}   best of --runs: --threads threads pread the file in
 *                         chunk pieces into private buffers (the host rate)
 *   pread_1t_{warm,cold}  one thread's plain pread loop
 *   h2d_pinned            dv_hostbuf_copy_h2d from a registered host buffer
 *   file_to_device_{warm,cold}  dv_read_to_device of the whole file
 *   peak_rss_delta        the most host RSS (RssAnon + RssFile, sampled
 *                         every ms) during the warm transfers, above the
 *                         RSS before them (the staging ring is made then)
 *   reg_hostbuf / reg_plain  time per GiB (ms): extend+register in steps,
 *                         against malloc + dv_host_register of the total
 * Ratios and targets: warm >= 0.9 x min(mt_read_warm, h2d_pinned), cold >=
 * 0.95 x mt_read_cold, peak RSS <= staging ring + 64 MiB. --check makes a
 * missed target the exit status (never in the host smoke test: this VM's
 * figures are not a GPU's). Cold runs drop the file's cached pages first
 * (posix_fadvise DONTNEED); where the OS cannot, they are reported warm.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/os.h"
#include "base/os_file.h"
#include "base/os_thread.h"
#include "dynvram.h"
#include "dynvram_io.h"

#include "bench_io.h"

#define CHECK(call)                                                            \
    do {                                                                       \
        dv_result_t ck_r_ = (call);                                            \
        if (ck_r_ != DV_OK) {                                                  \
            fprintf(stderr, "bench_io: %s -> %s: %s\n", #call,                 \
                    dv_result_name(ck_r_), dv_last_error());                   \
            exit(1);                                                           \
        }                                                                      \
    } while (0)

static double secs(uint64_t t0) { return (double)(dv__now_ns() - t0) / 1e9; }
static double gbps(uint64_t bytes, double s) { return (double)bytes / s / 1e9; }

/* ---- the file ---------------------------------------------------------- */

void bench_io_write_file(const char *path, uint64_t size) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    uint64_t x = 0x9e3779b97f4a7c15ull;
    uint64_t *buf = malloc(MIB);
    for (uint64_t done = 0; done < size; done += MIB) {
        for (size_t i = 0; i < MIB / 8; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64: random */
            buf[i] = x;
        }
        size_t n = size - done < MIB ? (size_t)(size - done) : MIB;
        if (fwrite(buf, 1, n, f) != n) {
            perror("write");
            exit(1);
        }
    }
    free(buf);
    /* On disk and clean, so that the cache can drop it for cold runs. */
    if (fflush(f) != 0 || fclose(f) != 0) {
        perror("close");
        exit(1);
    }
    dv__osfile_t o;
    if (dv__file_open(path, &o) == 0) {
        dv__file_drop_cache(o, 0, size);
        dv__file_close(&o);
    }
}

/* ---- host read baselines ---------------------------------------------- */

typedef struct part {
    dv__osfile_t f;
    uint64_t size, chunk, next, *cursor;
    dv__mutex_t *mu;
    int bad;
} part_t;

/* Take chunks from a shared cursor, as the read pool does. */
static void host_reader(void *p) {
    part_t *a = p;
    uint8_t *buf = malloc(a->chunk);
    for (;;) {
        dv__mutex_lock(a->mu);
        uint64_t off = *a->cursor;
        *a->cursor += a->chunk;
        dv__mutex_unlock(a->mu);
        if (off >= a->size) {
            break;
        }
        uint64_t n = a->size - off < a->chunk ? a->size - off : a->chunk;
        size_t got = 0;
        a->bad +=
            dv__file_pread(a->f, buf, (size_t)n, off, &got) != 0 || got != n;
    }
    free(buf);
}

static double host_read(const char *path, const args_t *a, uint32_t threads) {
    dv__osfile_t f;
    if (dv__file_open(path, &f) != 0) {
        exit(1);
    }
    dv__mutex_t mu;
    dv__mutex_init(&mu);
    uint64_t cursor = 0;
    part_t parts[64];
    dv__thread_t t[64];
    uint64_t t0 = dv__now_ns();
    for (uint32_t k = 0; k < threads; k++) {
        parts[k] = (part_t){f, a->size, a->chunk, 0, &cursor, &mu, 0};
        if (dv__thread_start(&t[k], host_reader, &parts[k]) != 0) {
            exit(1);
        }
    }
    int bad = 0;
    for (uint32_t k = 0; k < threads; k++) {
        dv__thread_join(&t[k]);
        bad += parts[k].bad;
    }
    double s = secs(t0);
    dv__file_close(&f);
    dv__mutex_destroy(&mu);
    if (bad) {
        fprintf(stderr, "bench_io: %d host reads failed\n", bad);
        exit(1);
    }
    return gbps(a->size, s);
}

/* Drop the file's cached pages; 0 when the OS cannot. */
static int make_cold(dv_file_t *f, uint64_t size) {
    return dv_file_mark_cold(f, 0, size) == DV_OK;
}

/* ---- peak RSS ---------------------------------------------------------- */

static uint64_t status_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long long kb = 0;
    size_t n = strlen(key);
    while (f && fgets(line, sizeof(line), f)) {
        if (strncmp(line, key, n) == 0) {
            sscanf(line + n, " %llu", &kb);
            break;
        }
    }
    if (f) {
        fclose(f);
    }
    return (uint64_t)kb << 10;
}

/* Host RSS that is the process's own: anonymous and file-backed pages. The
 * shared-memory part is left out, because the host backend's "device"
 * memory is shared memory (on a GPU it is not host memory at all). */
static uint64_t host_rss(void) {
    return status_kb("RssAnon:") + status_kb("RssFile:");
}

/* Samples host_rss() every millisecond while a transfer runs. */
typedef struct sampler {
    volatile int stop;
    uint64_t peak;
    dv__thread_t t;
} sampler_t;

static void sample(void *p) {
    sampler_t *s = p;
    while (!dv__atomic_load_int(&s->stop)) {
        uint64_t r = host_rss();
        s->peak = r > s->peak ? r : s->peak;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

static void sampler_start(sampler_t *s) {
    s->stop = 0;
    s->peak = host_rss();
    if (dv__thread_start(&s->t, sample, s) != 0) {
        exit(1);
    }
}

static uint64_t sampler_stop(sampler_t *s) {
    dv__atomic_store_int(&s->stop, 1);
    dv__thread_join(&s->t);
    return s->peak;
}

/* ---- dynvram ----------------------------------------------------------- */

static double dyn_read(dv_device_t *d, dv_reader_t *r, dv_file_t *f,
                       uint64_t dst, uint64_t size) {
    uint64_t t0 = dv__now_ns();
    CHECK(dv_read_to_device(d, r, f, 0, size, dst, NULL, 0));
    return gbps(size, secs(t0));
}

static double pinned_h2d(dv_device_t *d, uint64_t dst, uint64_t size,
                         int runs) {
    dv_hostbuf_t *hb = NULL;
    CHECK(dv_hostbuf_create(d, size, &hb));
    dv_device_caps_t c;
    CHECK(dv_device_get_caps(d, &c));
    uint32_t reg = (c.flags & DV_CAP_HOST_REGISTER) ? DV_HOSTBUF_REGISTER : 0;
    CHECK(dv_hostbuf_extend(d, hb, size, reg | DV_HOSTBUF_PREWARM, NULL));
    void *s = NULL;
    CHECK(dv_stream_create(d, &s));
    double best = 0;
    for (int i = 0; i < runs + 1; i++) { /* the first one warms up */
        uint64_t t0 = dv__now_ns();
        CHECK(dv_hostbuf_copy_h2d(d, hb, 0, size, dst, s));
        CHECK(dv_stream_synchronize(d, s));
        double g = gbps(size, secs(t0));
        best = i && g > best ? g : best;
    }
    CHECK(dv_stream_destroy(d, s));
    CHECK(dv_hostbuf_destroy(d, hb));
    return best;
}

/* Seconds per GiB: a host buffer grown by `step` to `total`, each part
 * registered; then one plain allocation of `total` registered at once. */
static void registration(dv_device_t *d, const args_t *a, results_t *res) {
    dv_device_caps_t c;
    CHECK(dv_device_get_caps(d, &c));
    if (!(c.flags & DV_CAP_HOST_REGISTER)) {
        res->reg_hostbuf = res->reg_plain = -1;
        return;
    }
    double gib = (double)a->reg_total / (double)GIB;
    dv_hostbuf_t *hb = NULL;
    CHECK(dv_hostbuf_create(d, a->reg_total, &hb));
    uint64_t t0 = dv__now_ns();
    for (uint64_t done = 0; done < a->reg_total; done += a->reg_step) {
        uint64_t n = a->reg_total - done < a->reg_step ? a->reg_total - done
                                                       : a->reg_step;
        CHECK(dv_hostbuf_extend(d, hb, n, DV_HOSTBUF_REGISTER, NULL));
    }
    res->reg_hostbuf = secs(t0) / gib;
    CHECK(dv_hostbuf_destroy(d, hb));
    void *p = aligned_alloc(4096, (size_t)a->reg_total);
    if (!p) {
        res->reg_plain = -1;
        return;
    }
    t0 = dv__now_ns();
    CHECK(dv_host_register(d, p, a->reg_total));
    res->reg_plain = secs(t0) / gib;
    CHECK(dv_host_unregister(d, p));
    free(p);
}

void bench_io_run(const args_t *a, const char *path, results_t *res) {
    dv_device_options_t o;
    dv_device_options_init(&o);
    o.backend = a->backend;
    char bopts[64];
    if (a->backend && strcmp(a->backend, "host") == 0) {
        /* The host device must hold the file and the copy buffer. */
        snprintf(bopts, sizeof(bopts), "capacity=%llu",
                 (unsigned long long)(a->size + a->h2d + 256 * MIB));
        o.backend_options = bopts;
    }
    dv_device_t *d = NULL;
    CHECK(dv_device_open(&o, &d));
    dv_device_caps_t caps;
    CHECK(dv_device_get_caps(d, &caps));
    snprintf(res->device, sizeof(res->device), "%s:%d %s", caps.backend,
             caps.ordinal, caps.name);
    dv_devbuf_t *db = NULL;
    CHECK(dv_devbuf_create(d, a->size, &db));
    CHECK(dv_devbuf_resize(d, db, a->size));
    dv_devbuf_info_t di;
    CHECK(dv_devbuf_get_info(d, db, &di));
    dv_reader_options_t ro;
    dv_reader_options_init(&ro);
    ro.threads = a->threads;
    ro.slots = a->slots;
    ro.chunk_size = a->chunk;
    dv_reader_t *r = NULL;
    CHECK(dv_reader_create(d, &ro, &r));
    dv_file_t *f = NULL;
    CHECK(dv_file_open(path, &f));

    res->h2d =
        pinned_h2d(d, di.base, a->h2d < a->size ? a->h2d : a->size, a->runs);
    /* Warm: the cache holds the file after the first host read. */
    for (int i = 0; i < a->runs + 1; i++) {
        double g = host_read(path, a, a->threads);
        res->mt_warm = i && g > res->mt_warm ? g : res->mt_warm;
    }
    res->one_warm = host_read(path, a, 1);
    /* The peak counts the staging ring, made by the first (untimed) read. */
    uint64_t rss0 = host_rss();
    sampler_t smp;
    sampler_start(&smp);
    dyn_read(d, r, f, di.base, a->size);
    for (int i = 0; i < a->runs; i++) {
        double g = dyn_read(d, r, f, di.base, a->size);
        res->dyn_warm = g > res->dyn_warm ? g : res->dyn_warm;
    }
    uint64_t peak = sampler_stop(&smp);
    res->rss_delta = peak > rss0 ? peak - rss0 : 0;
    dv_reader_info_t ri;
    CHECK(dv_reader_get_info(d, r, &ri));
    res->staging = ri.staging_bytes;
    /* Cold: each run after dropping the file from the cache. */
    res->cold_ok = make_cold(f, a->size);
    for (int i = 0; i < a->runs; i++) {
        make_cold(f, a->size);
        double g = host_read(path, a, a->threads);
        res->mt_cold = g > res->mt_cold ? g : res->mt_cold;
        make_cold(f, a->size);
        g = dyn_read(d, r, f, di.base, a->size);
        res->dyn_cold = g > res->dyn_cold ? g : res->dyn_cold;
    }
    make_cold(f, a->size);
    res->one_cold = host_read(path, a, 1);
    registration(d, a, res);
    CHECK(dv_file_close(f));
    CHECK(dv_reader_destroy(d, r));
    CHECK(dv_devbuf_destroy(d, db));
    CHECK(dv_device_close(d));
}
