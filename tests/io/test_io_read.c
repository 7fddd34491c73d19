/*
 * test_io_read.c - the reader on every backend: real files read into host
 * buffers and into device memory (a pinned VBAR range, a device buffer),
 * synchronously and ordered on a stream, by several threads at once through
 * one small ring, and every bad input of the issue (missing and short
 * files, offsets past the end, overflowing sizes, freed and too small
 * buffers, dead and foreign handles).
 * SPDX-License-Identifier: Apache-2.0
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "iotest.h"

#define MIB (1ull << 20)
#define P TD_PAGE

static dv_reader_t *reader(dv_device_t *d, uint32_t threads, uint32_t slots,
                           uint64_t chunk) {
    dv_reader_options_t o;
    dv_reader_options_init(&o);
    o.threads = threads;
    o.slots = slots;
    o.chunk_size = chunk;
    dv_reader_t *r = NULL;
    TD_OK(dv_reader_create(d, &o, &r));
    return r;
}

static dv_file_t *open_file(const char *path) {
    dv_file_t *f = NULL;
    TD_OK(dv_file_open(path, &f));
    return f;
}

static dv_reader_info_t rinfo(dv_device_t *d, dv_reader_t *r) {
    dv_reader_info_t i;
    TD_OK(dv_reader_get_info(d, r, &i));
    return i;
}

Test(io_read, file_to_host_buffer_in_every_chunking) {
    dv_device_t *d = td_open(0);
    uint64_t fsize = 5 * MIB + 123;
    dv_file_t *f = open_file(tio_file("host.bin", fsize));
    dv_file_info_t fi;
    TD_OK(dv_file_get_info(f, &fi));
    cr_assert_eq(fi.size, fsize);
    dv_hostbuf_t *hb = NULL;
    TD_OK(dv_hostbuf_create(d, 8 * MIB, &hb));
    TD_OK(dv_hostbuf_extend(d, hb, 6 * MIB, 0, NULL));
    dv_hostbuf_info_t hi;
    TD_OK(dv_hostbuf_get_info(d, hb, &hi));
    uint8_t *b = hi.base;
    static const struct {
        uint32_t threads;
        uint64_t chunk, foff, size, hoff;
    } cases[] = {
        {1, 0, 0, 5 * MIB + 123, 0},       {3, 65536, 0, 5 * MIB + 123, 0},
        {4, 4096, 777, 3 * MIB + 5, 4097}, {2, 65536, 5 * MIB + 122, 1, 17},
        {8, 1 << 20, 1, 5 * MIB, MIB - 1},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        dv_reader_t *r = reader(d, cases[k].threads, 0, cases[k].chunk);
        memset(b, 0, 6 * MIB);
        TD_OK(dv_read_to_host(d, r, f, cases[k].foff, cases[k].size, hb,
                              cases[k].hoff, 0));
        cr_assert_eq(
            tio_mismatch(b + cases[k].hoff, cases[k].size, cases[k].foff), -1,
            "case %zu: wrong bytes", k);
        cr_assert_eq(b[cases[k].hoff + cases[k].size], 0,
                     "case %zu wrote past its range", k);
        dv_reader_info_t ri = rinfo(d, r);
        cr_assert_eq(ri.bytes_read, cases[k].size);
        uint64_t c = ri.chunk_size;
        cr_assert_eq(ri.chunks, (cases[k].size + c - 1) / c);
        cr_assert_eq(ri.staging_bytes, 0, "a host read made a staging ring");
        TD_OK(dv_reader_destroy(d, r));
    }
    TD_OK(dv_hostbuf_destroy(d, hb));
    TD_OK(dv_file_close(f));
    TD_OK(dv_device_close(d));
}

/* A VBAR of `pages` pages, faulted and pinned; its base in *base. */
static dv_vbar_t *pinned_vbar(dv_device_t *d, uint64_t pages, uint64_t *base) {
    dv_vbar_t *v = NULL;
    TD_OK(dv_vbar_create(d, pages * P, &v));
    uint64_t g;
    TD_OK(dv_fault(d, v, 0, pages * P, &g));
    dv_vbar_info_t vi;
    TD_OK(dv_vbar_get_info(d, v, &vi));
    *base = vi.base;
    return v;
}

static void drop_vbar(dv_device_t *d, dv_vbar_t *v, uint64_t pages) {
    TD_OK(dv_unpin(d, v, 0, pages * P, NULL));
    TD_OK(dv_vbar_destroy(d, v));
}

Test(io_read, file_to_a_pinned_vbar_range) {
    dv_device_t *d = td_open(0);
    uint64_t fsize = 3 * P + 999;
    dv_file_t *f = open_file(tio_file("vbar.bin", fsize));
    uint64_t base;
    dv_vbar_t *v = pinned_vbar(d, 4, &base);
    dv_reader_t *r = reader(d, 3, 2, 256 << 10);
    TD_OK(dv_read_to_device(d, r, f, 0, fsize, base, NULL, 0));
    cr_assert_eq(tio_device_mismatch(d, base, fsize, 0), -1);
    TD_OK(dv_read_to_device(d, r, f, 4097, P + 3, base + 3 * P - 5, NULL,
                            DV_READ_MARK_COLD));
    cr_assert_eq(tio_device_mismatch(d, base + 3 * P - 5, P + 3, 4097), -1);
    dv_reader_info_t ri = rinfo(d, r);
    cr_assert_eq(ri.staging_bytes, 2ull * (256 << 10));
    cr_assert_eq(ri.staging_pinned, (uint32_t)tio_can_register(d));
    cr_assert_eq(ri.bytes_read, fsize + P + 3);
    cr_assert_eq(ri.reads_in_flight, 0);
    /* The caller's stream: ordered after the copies. */
    void *s = NULL;
    TD_OK(dv_stream_create(d, &s));
    TD_OK(dv_read_to_device(d, r, f, P, P, base, s, 0));
    TD_OK(dv_stream_synchronize(d, s));
    cr_assert_eq(tio_device_mismatch(d, base, P, P), -1);
    TD_OK(dv_stream_destroy(d, s));
    TD_OK(dv_reader_destroy(d, r));
    drop_vbar(d, v, 4);
    td_check(d);
    TD_OK(dv_file_close(f));
    TD_OK(dv_device_close(d));
}

Test(io_read, device_destinations_are_checked) {
    dv_device_t *d = td_open(0);
    dv_file_t *f = open_file(tio_file("dst.bin", 4 * P));
    dv_reader_t *r = reader(d, 2, 0, 0);
    dv_vbar_t *v = NULL;
    TD_OK(dv_vbar_create(d, 4 * P, &v));
    dv_vbar_info_t vi;
    TD_OK(dv_vbar_get_info(d, v, &vi));
    uint64_t g;
    TD_OK(dv_fault(d, v, 0, 2 * P, &g));
    TIO_BAD(dv_read_to_device(d, r, f, 0, P, vi.base + 2 * P, NULL, 0),
            DV_ERROR_NOT_PINNED, "page 2");
    TIO_BAD(dv_read_to_device(d, r, f, 0, 3 * P, vi.base, NULL, 0),
            DV_ERROR_NOT_PINNED, "not faulted and pinned");
    TIO_BAD(dv_read_to_device(d, r, f, 0, 2 * P, vi.base + 3 * P, NULL, 0),
            DV_ERROR_OUT_OF_RANGE, "straddles the VBAR");
    TD_OK(dv_read_to_device(d, r, f, 0, 2 * P, vi.base, NULL, 0));
    /* A device buffer: inside its size only. */
    dv_devbuf_t *db = NULL;
    TD_OK(dv_devbuf_create(d, 8 * P, &db));
    TD_OK(dv_devbuf_resize(d, db, P + 100));
    dv_devbuf_info_t di;
    TD_OK(dv_devbuf_get_info(d, db, &di));
    TD_OK(dv_read_to_device(d, r, f, 5, P + 100, di.base, NULL, 0));
    cr_assert_eq(tio_device_mismatch(d, di.base, P + 100, 5), -1);
    TIO_BAD(dv_read_to_device(d, r, f, 0, P + 101, di.base, NULL, 0),
            DV_ERROR_OUT_OF_RANGE, "device buffer");
    TIO_BAD(dv_read_to_device(d, r, f, 0, 1, di.base + 7 * P, NULL, 0),
            DV_ERROR_OUT_OF_RANGE, "device buffer");
    TIO_BAD(dv_read_to_device(d, r, f, 0, 1, 0, NULL, 0),
            DV_ERROR_INVALID_ARGUMENT, "destination");
    TIO_BAD(dv_read_to_device(d, r, f, 0, 2, UINT64_MAX, NULL, 0),
            DV_ERROR_OUT_OF_RANGE, "overflows");
    /* Junk below 64 KiB: every backend refuses it itself. */
    TIO_BAD(dv_read_to_device(d, r, f, 0, P, vi.base, (void *)0x10, 0),
            DV_ERROR_INVALID_ARGUMENT, "stream");
    TD_OK(dv_devbuf_destroy(d, db));
    TD_OK(dv_unpin(d, v, 0, 2 * P, NULL));
    TD_OK(dv_vbar_destroy(d, v));
    TD_OK(dv_reader_destroy(d, r));
    TD_OK(dv_file_close(f));
    td_check(d);
    TD_OK(dv_device_close(d));
}

Test(io_read, bad_files_and_ranges) {
    dv_device_t *d = td_open(0);
    dv_file_t *f = NULL;
    char path[700];
    snprintf(path, sizeof(path), "%s/no-such-file.safetensors", tio_dir());
    TIO_BAD(dv_file_open(path, &f), DV_ERROR_IO, "No such file");
    tio_msg_has("no-such-file.safetensors");
    cr_assert_null(f);
    TIO_BAD(dv_file_open(tio_dir(), &f), DV_ERROR_IO, "directory");
    TIO_BAD(dv_file_open(NULL, &f), DV_ERROR_INVALID_ARGUMENT, "NULL");
    TIO_BAD(dv_file_open_native(-1, &f), DV_ERROR_IO, "native handle -1");
    const char *p = tio_file("small.bin", 10000);
    f = open_file(p);
    dv_reader_t *r = reader(d, 2, 0, 4096);
    dv_hostbuf_t *hb = NULL;
    TD_OK(dv_hostbuf_create(d, MIB, &hb));
    TD_OK(dv_hostbuf_extend(d, hb, 8192, 0, NULL));
    TIO_BAD(dv_read_to_host(d, r, f, 9000, 1001, hb, 0, 0),
            DV_ERROR_OUT_OF_RANGE, "outside the file of 10000 bytes");
    TIO_BAD(dv_read_to_host(d, r, f, 10001, 1, hb, 0, 0), DV_ERROR_OUT_OF_RANGE,
            "outside the file");
    TIO_BAD(dv_read_to_host(d, r, f, 1, UINT64_MAX, hb, 0, 0),
            DV_ERROR_OUT_OF_RANGE, "outside the file");
    TIO_BAD(dv_read_to_host(d, r, f, 0, 0, hb, 0, 0), DV_ERROR_INVALID_ARGUMENT,
            "size is 0");
    TIO_BAD(dv_read_to_host(d, r, f, 0, 8193, hb, 0, 0), DV_ERROR_OUT_OF_RANGE,
            "host buffer of 8192 bytes");
    TIO_BAD(dv_read_to_host(d, r, f, 0, 100, hb, UINT64_MAX - 10, 0),
            DV_ERROR_OUT_OF_RANGE, "host buffer");
    TIO_BAD(dv_read_to_host(d, r, f, 0, 100, hb, 0, 0x100),
            DV_ERROR_INVALID_ARGUMENT, "flags");
    TD_OK(dv_read_to_host(d, r, f, 1808, 8192, hb, 0, 0));
    /* A short file: it shrank on disk after it was opened. */
    cr_assert_eq(truncate(p, 5000), 0);
    TIO_BAD(dv_read_to_host(d, r, f, 0, 8192, hb, 0, 0), DV_ERROR_IO, "shrank");
    dv_hostbuf_info_t hi;
    TD_OK(dv_hostbuf_get_info(d, hb, &hi));
    cr_assert_eq(hi.reads_in_flight, 0, "a failed read stayed in flight");
    cr_assert_eq(rinfo(d, r).reads_in_flight, 0);
    /* The reader works again afterwards. */
    TD_OK(dv_read_to_host(d, r, f, 0, 4000, hb, 0, 0));
    cr_assert_eq(tio_mismatch(hi.base, 4000, 0), -1);
    /* A freed host buffer, a closed file, a dead reader. */
    TD_OK(dv_hostbuf_destroy(d, hb));
    TD_OK(dv_hostbuf_create(d, MIB, &hb));
    dv_hostbuf_t *freed = NULL;
    TD_OK(dv_hostbuf_create(d, MIB, &freed));
    TD_OK(dv_hostbuf_destroy(d, freed));
    TIO_BAD(dv_read_to_host(d, r, f, 0, 10, freed, 0, 0),
            DV_ERROR_INVALID_ARGUMENT, "not a live host buffer");
    TIO_BAD(dv_read_to_host(d, r, f, 0, 10, hb, 0, 0), DV_ERROR_OUT_OF_RANGE,
            "host buffer of 0 bytes");
    TIO_BAD(dv_read_to_host(d, r, (dv_file_t *)hb, 0, 10, hb, 0, 0),
            DV_ERROR_INVALID_ARGUMENT, "is a host buffer handle, not a file");
    TD_OK(dv_file_close(f));
    TIO_BAD(dv_read_to_host(d, r, f, 0, 10, hb, 0, 0),
            DV_ERROR_INVALID_ARGUMENT, "not a live file");
    TIO_BAD(dv_file_close(f), DV_ERROR_INVALID_ARGUMENT, "file");
    TD_OK(dv_reader_destroy(d, r));
    f = open_file(p);
    TIO_BAD(dv_read_to_host(d, r, f, 0, 10, hb, 0, 0),
            DV_ERROR_INVALID_ARGUMENT, "not a live reader");
    TIO_BAD(dv_reader_destroy(d, r), DV_ERROR_INVALID_ARGUMENT, "reader");
    dv_reader_options_t o;
    dv_reader_options_init(&o);
    o.threads = 65;
    TIO_BAD(dv_reader_create(d, &o, &r), DV_ERROR_INVALID_ARGUMENT, "threads");
    o.threads = 1;
    o.chunk_size = 2ull << 30;
    TIO_BAD(dv_reader_create(d, &o, &r), DV_ERROR_INVALID_ARGUMENT, "chunk");
    TIO_BAD(dv_reader_create(d, NULL, NULL), DV_ERROR_INVALID_ARGUMENT, "out");
    TD_OK(dv_hostbuf_destroy(d, hb));
    TD_OK(dv_file_close(f));
    td_check(d);
    TD_OK(dv_device_close(d));
}

Test(io_read, objects_of_another_device_and_close) {
    dv_device_options_t o;
    td_options(&o, 0);
    dv_device_t *d0 = td_open_opts(&o);
    o.ordinal = 1;
    dv_device_t *d1 = NULL;
    if (dv_device_open(&o, &d1) != DV_OK) {
        o.ordinal = 0;
        d1 = td_open_opts(&o);
    }
    dv_file_t *f = open_file(tio_file("two.bin", 8192));
    dv_reader_t *r0 = reader(d0, 1, 0, 0), *r1 = reader(d1, 1, 0, 0);
    dv_hostbuf_t *h0 = NULL;
    TD_OK(dv_hostbuf_create(d0, MIB, &h0));
    TD_OK(dv_hostbuf_extend(d0, h0, 8192, 0, NULL));
    TIO_BAD(dv_read_to_host(d0, r1, f, 0, 10, h0, 0, 0), DV_ERROR_WRONG_DEVICE,
            "reader");
    TIO_BAD(dv_read_to_host(d1, r1, f, 0, 10, h0, 0, 0), DV_ERROR_WRONG_DEVICE,
            "host buffer");
    TIO_BAD(dv_reader_destroy(d1, r0), DV_ERROR_WRONG_DEVICE, "belongs to");
    TD_OK(dv_read_to_host(d0, r0, f, 0, 8192, h0, 0, 0));
    /* A file belongs to no device: both read it. */
    dv_hostbuf_t *h1 = NULL;
    TD_OK(dv_hostbuf_create(d1, MIB, &h1));
    TD_OK(dv_hostbuf_extend(d1, h1, 8192, 0, NULL));
    TD_OK(dv_read_to_host(d1, r1, f, 0, 8192, h1, 0, 0));
    TIO_BAD(dv_device_close(d1), DV_ERROR_BUSY, "host I/O");
    TD_OK(dv_hostbuf_destroy(d1, h1));
    TIO_BAD(dv_device_close(d1), DV_ERROR_BUSY, "1 host I/O object");
    TD_OK(dv_reader_destroy(d1, r1));
    TD_OK(dv_device_close(d1));
    TD_OK(dv_hostbuf_destroy(d0, h0));
    TD_OK(dv_reader_destroy(d0, r0));
    TD_OK(dv_file_close(f));
    TD_OK(dv_device_close(d0));
}

/* ---- several threads through one reader ---- */

#define THREADS 4
#define SPAN (P + 4096 * 3 + 17)

typedef struct job {
    dv_device_t *d;
    dv_reader_t *r;
    dv_file_t *f;
    dv_hostbuf_t *hb;
    uint64_t base;
    int k;
    int errors;
} job_t;

static void *reads(void *arg) {
    job_t *j = arg;
    for (int it = 0; it < 6; it++) {
        uint64_t foff = (uint64_t)(j->k * 3 + it) * 4099;
        dv_result_t r =
            (it & 1)
                ? dv_read_to_host(j->d, j->r, j->f, foff, SPAN, j->hb,
                                  (uint64_t)j->k * SPAN, 0)
                : dv_read_to_device(j->d, j->r, j->f, foff, SPAN,
                                    j->base + (uint64_t)j->k * SPAN, NULL, 0);
        if (r != DV_OK) {
            j->errors++;
            continue;
        }
        dv_hostbuf_info_t hi;
        dv_hostbuf_get_info(j->d, j->hb, &hi);
        int64_t m =
            (it & 1)
                ? tio_mismatch((uint8_t *)hi.base + j->k * SPAN, SPAN, foff)
                : tio_device_mismatch(j->d, j->base + j->k * SPAN, SPAN, foff);
        j->errors += m != -1;
    }
    return NULL;
}

Test(io_read, threads_share_one_reader_and_its_ring) {
    dv_device_t *d = td_open(0);
    dv_file_t *f = open_file(tio_file("threads.bin", 4 * P));
    /* Two slots for four threads reading at once: slots are taken in turn,
     * each by one chunk only. */
    dv_reader_t *r = reader(d, 3, 2, 64 << 10);
    uint64_t base;
    uint64_t pages = (THREADS * SPAN + P - 1) / P;
    dv_vbar_t *v = pinned_vbar(d, pages, &base);
    dv_hostbuf_t *hb = NULL;
    TD_OK(dv_hostbuf_create(d, THREADS * SPAN, &hb));
    TD_OK(dv_hostbuf_extend(d, hb, THREADS * SPAN, 0, NULL));
    pthread_t t[THREADS];
    job_t j[THREADS];
    for (int k = 0; k < THREADS; k++) {
        j[k] = (job_t){d, r, f, hb, base, k, 0};
        pthread_create(&t[k], NULL, reads, &j[k]);
    }
    for (int k = 0; k < THREADS; k++) {
        pthread_join(t[k], NULL);
        cr_assert_eq(j[k].errors, 0, "thread %d: %d bad reads", k, j[k].errors);
    }
    dv_reader_info_t ri = rinfo(d, r);
    cr_assert_eq(ri.bytes_read, THREADS * 6ull * SPAN);
    cr_assert_eq(ri.reads_in_flight, 0);
    cr_log_info("%llu chunks, %llu slot waits", (unsigned long long)ri.chunks,
                (unsigned long long)ri.slot_waits);
    TD_OK(dv_reader_destroy(d, r));
    TD_OK(dv_hostbuf_destroy(d, hb));
    drop_vbar(d, v, pages);
    TD_OK(dv_file_close(f));
    td_check(d);
    TD_OK(dv_device_close(d));
}

Test(io_read, native_handles) {
    const char *p = tio_file("native.bin", 50000);
    int fd = open(p, O_RDONLY);
    cr_assert_geq(fd, 0);
    dv_file_t *f = NULL;
    TD_OK(dv_file_open_native(fd, &f));
    close(fd); /* the file keeps its own duplicate */
    dv_file_info_t fi;
    TD_OK(dv_file_get_info(f, &fi));
    cr_assert_eq(fi.size, 50000);
    cr_assert_neq(fi.native, fd);
    dv_device_t *d = td_open(0);
    dv_reader_t *r = reader(d, 2, 0, 8192);
    dv_hostbuf_t *hb = NULL;
    TD_OK(dv_hostbuf_create(d, 65536, &hb));
    TD_OK(dv_hostbuf_extend(d, hb, 50000, 0, NULL));
    TD_OK(dv_read_to_host(d, r, f, 0, 50000, hb, 0, DV_READ_MARK_COLD));
    dv_hostbuf_info_t hi;
    TD_OK(dv_hostbuf_get_info(d, hb, &hi));
    cr_assert_eq(tio_mismatch(hi.base, 50000, 0), -1);
    TD_OK(dv_reader_destroy(d, r));
    TD_OK(dv_hostbuf_destroy(d, hb));
    TD_OK(dv_file_close(f));
    TD_OK(dv_device_close(d));
}
