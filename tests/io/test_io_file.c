/*
 * test_io_file.c - model files on the real file system and page cache
 * (host backend, Linux): a mapping whose RSS falls on bounce while every
 * address stays valid, mark cold dropping the file's cached pages (seen
 * with mincore on a mapping of our own), UTF-8 paths, empty files, native
 * handles that are no readable regular file (refused as their paths are),
 * and the host backend's registration table as strict as the CUDA
 * driver's.
 * SPDX-License-Identifier: Apache-2.0
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dynvram_host.h"
#include "iotest.h"

#define MIB (1ull << 20)

/* RssFile of this process, in bytes. */
static uint64_t rss_file(void) {
    FILE *f = fopen("/proc/self/status", "r");
    cr_assert_not_null(f);
    char line[256];
    unsigned long long kb = 0;
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "RssFile: %llu kB", &kb) == 1) {
            break;
        }
    }
    fclose(f);
    return kb << 10;
}

/* Bytes of `path` in the page cache (mincore on a fresh mapping). */
static uint64_t cached(const char *path, uint64_t size) {
    int fd = open(path, O_RDONLY);
    cr_assert_geq(fd, 0);
    void *p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
    cr_assert_neq(p, MAP_FAILED);
    uint64_t pg = (uint64_t)sysconf(_SC_PAGESIZE), pages = (size + pg - 1) / pg;
    unsigned char *v = malloc(pages);
    cr_assert_eq(mincore(p, size, v), 0);
    uint64_t n = 0;
    for (uint64_t i = 0; i < pages; i++) {
        n += v[i] & 1;
    }
    free(v);
    munmap(p, size);
    close(fd);
    return n * pg;
}

static uint64_t touch(const volatile uint8_t *p, uint64_t n) {
    uint64_t sum = 0;
    for (uint64_t i = 0; i < n; i += 4096) {
        sum += p[i];
    }
    return sum;
}

Test(io_file, bounce_drops_resident_pages_and_keeps_the_mapping) {
    uint64_t size = 32 * MIB;
    dv_file_t *f = NULL;
    TD_OK(dv_file_open(tio_file("bounce.bin", size), &f));
    const void *m = NULL, *again = NULL;
    TD_OK(dv_file_map(f, &m));
    cr_assert_not_null(m);
    TD_OK(dv_file_map(f, &again));
    cr_assert_eq(m, again, "a second map moved the mapping");
    uint64_t r0 = rss_file();
    uint64_t sum = touch(m, size);
    uint64_t r1 = rss_file();
    cr_assert_geq(r1, r0 + size - 2 * MIB,
                  "touching did not raise RSS "
                  "(%llu -> %llu)",
                  (unsigned long long)r0, (unsigned long long)r1);
    TD_OK(dv_file_bounce(f));
    uint64_t r2 = rss_file();
    cr_assert_leq(r2 + size - 2 * MIB, r1,
                  "bounce did not lower RSS (%llu -> "
                  "%llu)",
                  (unsigned long long)r1, (unsigned long long)r2);
    /* Every address is still valid and reads the file. */
    cr_assert_eq(tio_mismatch(m, size, 0), -1, "the mapping changed");
    cr_assert_eq(touch(m, size), sum);
    dv_file_info_t fi;
    TD_OK(dv_file_get_info(f, &fi));
    cr_assert_eq(fi.map, m);
    cr_assert_eq(fi.bounces, 1);
    TD_OK(dv_file_close(f));
}

Test(io_file, mark_cold_drops_the_page_cache) {
    uint64_t size = 8 * MIB;
    const char *p = tio_file("cold.bin", size);
    dv_file_t *f = NULL;
    TD_OK(dv_file_open(p, &f));
    dv_device_t *d = td_open(0);
    dv_reader_options_t o;
    dv_reader_options_init(&o);
    o.threads = 2;
    o.chunk_size = MIB;
    dv_reader_t *r = NULL;
    TD_OK(dv_reader_create(d, &o, &r));
    dv_hostbuf_t *hb = NULL;
    TD_OK(dv_hostbuf_create(d, size, &hb));
    TD_OK(dv_hostbuf_extend(d, hb, size, 0, NULL));
    TD_OK(dv_read_to_host(d, r, f, 0, size, hb, 0, 0));
    cr_assert_geq(cached(p, size), size - MIB,
                  "a plain read left the cache "
                  "cold");
    TD_OK(dv_file_mark_cold(f, 0, size));
    cr_assert_leq(cached(p, size), MIB, "mark cold kept %llu bytes cached",
                  (unsigned long long)cached(p, size));
    TD_OK(dv_read_to_host(d, r, f, 0, size, hb, 0, 0));
    cr_assert_geq(cached(p, size), size - MIB);
    TD_OK(dv_file_mark_cold(f, 0, size));
    TD_OK(dv_read_to_host(d, r, f, 0, size, hb, 0, DV_READ_MARK_COLD));
    cr_assert_leq(cached(p, size), MIB, "DV_READ_MARK_COLD kept the pages");
    dv_hostbuf_info_t hi;
    TD_OK(dv_hostbuf_get_info(d, hb, &hi));
    cr_assert_eq(tio_mismatch(hi.base, size, 0), -1);
    TIO_BAD(dv_file_mark_cold(f, 0, 0), DV_ERROR_INVALID_ARGUMENT, "size is 0");
    TIO_BAD(dv_file_mark_cold(f, 1, size), DV_ERROR_OUT_OF_RANGE, "outside");
    TD_OK(dv_reader_destroy(d, r));
    TD_OK(dv_hostbuf_destroy(d, hb));
    TD_OK(dv_device_close(d));
    TD_OK(dv_file_close(f));
}

Test(io_file, utf8_paths_and_empty_files) {
    const char *p =
        tio_file("mod\xc3\xa8le-\xe6\xa8\xa1\xe5\x9e\x8b.bin", 4096);
    dv_file_t *f = NULL;
    TD_OK(dv_file_open(p, &f));
    const void *m = NULL;
    TD_OK(dv_file_map(f, &m));
    cr_assert_eq(tio_mismatch(m, 4096, 0), -1);
    TD_OK(dv_file_close(f));
    TD_OK(dv_file_open(tio_file("empty.bin", 0), &f));
    m = (const void *)1;
    TD_OK(dv_file_map(f, &m));
    cr_assert_null(m, "an empty file maps to NULL");
    TD_OK(dv_file_bounce(f));
    dv_file_info_t fi;
    TD_OK(dv_file_get_info(f, &fi));
    cr_assert_eq(fi.size, 0);
    cr_assert_eq(fi.bounces, 0);
    TIO_BAD(dv_file_mark_cold(f, 0, 1), DV_ERROR_OUT_OF_RANGE, "outside");
    TIO_BAD(dv_file_map(f, NULL), DV_ERROR_INVALID_ARGUMENT, "addr");
    TIO_BAD(dv_file_get_info(f, NULL), DV_ERROR_INVALID_ARGUMENT, "info");
    TD_OK(dv_file_close(f));
    TIO_BAD(dv_file_bounce(f), DV_ERROR_INVALID_ARGUMENT, "not a live file");
    TIO_BAD(dv_file_map(NULL, &m), DV_ERROR_INVALID_ARGUMENT, "file is NULL");
}

/* Found by the model-based tester (tests/model/model_file.c): a pipe, a
 * directory or a write-only descriptor was accepted by
 * dv_file_open_native (a pipe as an empty file, a directory as a file of
 * 4096 bytes that no read or map could use), though dv_file_open refuses
 * a directory by path and the header promises DV_ERROR_IO for what is no
 * open regular file. */
Test(io_file, native_handles_must_be_readable_regular_files) {
    const char *p = tio_file("native.bin", 8192);
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    int dir = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int wo = open(p, O_WRONLY | O_CLOEXEC);
    cr_assert(dir >= 0 && wo >= 0);
    dv_file_t *f = (dv_file_t *)(uintptr_t)1;
    TIO_BAD(dv_file_open_native(fds[0], &f), DV_ERROR_IO, "regular file");
    cr_assert_null(f, "a refused open left a handle");
    TIO_BAD(dv_file_open_native(fds[1], &f), DV_ERROR_IO, "regular file");
    TIO_BAD(dv_file_open_native(dir, &f), DV_ERROR_IO, "Is a directory");
    TIO_BAD(dv_file_open_native(wo, &f), DV_ERROR_IO, "regular file");
    TIO_BAD(dv_file_open("/", &f), DV_ERROR_IO, "Is a directory");
    /* A live descriptor in the low 32 bits of a larger value is no handle. */
    TIO_BAD(dv_file_open_native(((int64_t)1 << 32) | wo, &f), DV_ERROR_IO,
            "native handle");
    close(fds[0]);
    close(fds[1]);
    close(dir);
    close(wo);
    /* A read-only descriptor works, and keeps working once the caller
     * closes its own: the file holds a duplicate. */
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    TD_OK(dv_file_open_native(fd, &f));
    dv_file_info_t fi;
    TD_OK(dv_file_get_info(f, &fi));
    cr_assert_neq(fi.native, fd, "the caller's descriptor was kept");
    close(fd);
    const void *m = NULL;
    TD_OK(dv_file_map(f, &m));
    cr_assert_eq(tio_mismatch(m, 8192, 0), -1);
    TD_OK(dv_file_close(f));
}

Test(io_file, host_registrations_are_as_strict_as_a_driver) {
    dv_device_t *d = td_open(0);
    uint64_t n0 = 0, b0 = 0, n = 0, b = 0;
    dv_host_registrations(&n0, &b0);
    uint8_t *mem = aligned_alloc(4096, 1 << 20);
    TD_OK(dv_host_register(d, mem, 65536));
    TD_OK(dv_host_register(d, mem + 65536, 4096));
    dv_host_registrations(&n, &b);
    cr_assert_eq(n, n0 + 2);
    cr_assert_eq(b, b0 + 65536 + 4096);
    TIO_BAD(dv_host_register(d, mem + 100, 10), DV_ERROR_INVALID_ARGUMENT,
            "already registered");
    TIO_BAD(dv_host_register(d, mem + 65536 + 4095, 2),
            DV_ERROR_INVALID_ARGUMENT, "already registered");
    /* Registrations are process-wide, like CUDA's portable ones. */
    dv_device_options_t o;
    td_options(&o, 0);
    o.ordinal = 1;
    dv_device_t *d1 = td_open_opts(&o);
    TIO_BAD(dv_host_register(d1, mem, 4096), DV_ERROR_INVALID_ARGUMENT,
            "already registered");
    TIO_BAD(dv_host_unregister(d, mem + 4096), DV_ERROR_INVALID_ARGUMENT,
            "inside a registration");
    TIO_BAD(dv_host_unregister(d, mem + 200000), DV_ERROR_INVALID_ARGUMENT,
            "not registered");
    TD_OK(dv_host_unregister(d1, mem + 65536));
    TD_OK(dv_host_unregister(d, mem));
    TIO_BAD(dv_host_unregister(d, mem), DV_ERROR_INVALID_ARGUMENT,
            "not registered");
    dv_host_registrations(&n, &b);
    cr_assert_eq(n, n0);
    cr_assert_eq(b, b0);
    free(mem);
    TD_OK(dv_device_close(d1));
    TD_OK(dv_device_close(d));
}
