/*
 * model_file.c - the tester's model files (include/dynvram_io.h): up to
 * MT_FILES files of no device, each the process's model file
 * (MT_IO_FILE_SIZE bytes, model_io.c) or an empty one, opened by UTF-8
 * path or from a native handle that the tester closes right after (the
 * file keeps its own duplicate). The model predicts every result:
 *  - dv_file_map: DV_OK, the same address every time, NULL for an empty
 *    file; the mapping holds the file's bytes, also after a bounce;
 *  - dv_file_bounce: DV_OK; `bounces` counts only the calls that had a
 *    mapping to drop (an empty or unmapped file has none);
 *  - dv_file_mark_cold: size 0 is DV_ERROR_INVALID_ARGUMENT, a range past
 *    the file or wrapping DV_ERROR_OUT_OF_RANGE, else DV_OK;
 *  - dv_file_get_info, after every op: the size as of open, the mapping,
 *    the bounces, a native handle of the same file that is not the one
 *    the tester passed;
 *  - reads through any of them (dv_read_to_host), their bytes verified;
 *  - dv_file_close: DV_OK, then the handle is dead: every call with it is
 *    DV_ERROR_INVALID_ARGUMENT, also once a new file is open (no alias);
 *  - bad input: NULL paths, handles and outputs, a missing path, a
 *    directory, native handles that are negative, too large, closed, a
 *    pipe, a directory or write-only (DV_ERROR_IO: not an open readable
 *    regular file), junk pointers and handles of other kinds (a VBAR, a
 *    host buffer, a reader, a device) as files and files as other kinds.
 * Errors must leave a message and change nothing: the comparison after
 * each op proves it.
 * SPDX-License-Identifier: Apache-2.0
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model.h"

#define INV DV_ERROR_INVALID_ARGUMENT

/* ---- the empty file of the process ---- */

static char empty_path[64];

static void empty_gone(void) {
    if (empty_path[0]) {
        unlink(empty_path);
    }
}

static const char *empty_file(mt_world_t *w) {
    if (empty_path[0]) {
        return empty_path;
    }
    snprintf(empty_path, sizeof(empty_path), "/tmp/dv-model-empty-XXXXXX");
    int fd = mkstemp(empty_path);
    if (fd < 0) {
        mt_fail(w, "setup", "cannot make the empty file %s", empty_path);
    }
    close(fd);
    atexit(empty_gone);
    return empty_path;
}

static void grave_file(mt_world_t *w, dv_file_t *h) {
    w->dead_file[w->n_dead_file++ % MT_GRAVE] = h;
}

static dv_file_t *any_dead_file(mt_world_t *w) {
    uint64_t n = w->n_dead_file < MT_GRAVE ? (uint64_t)w->n_dead_file
                                           : MT_GRAVE;
    return n ? w->dead_file[mt_pick(&w->src, n)] : NULL;
}

static mt_file_t *any_live_file(mt_world_t *w) {
    int k = (int)mt_pick(&w->src, MT_FILES);
    for (int n = 0; n < MT_FILES; n++) {
        mt_file_t *f = &w->f[(k + n) % MT_FILES];
        if (f->h) {
            return f;
        }
    }
    return NULL;
}

static void expect(mt_world_t *w, dv_result_t r, dv_result_t want) {
    mt_ret(w, r);
    mt_expect(w, MT_FN_FILE, r, want);
    if (r != DV_OK) {
        w->n_errors_checked++;
    }
}

/* ---- checks ---- */

/* The model file's bytes, made once. */
static const uint8_t *file_bytes(mt_world_t *w) {
    static uint8_t *b;
    if (!b) {
        b = malloc(MT_IO_FILE_SIZE);
        if (!b) {
            mt_fail(w, "setup", "out of host memory");
        }
        for (uint64_t i = 0; i < MT_IO_FILE_SIZE; i++) {
            b[i] = mt_io_fbyte(i);
        }
    }
    return b;
}

/* The mapping holds the file's bytes (all of them, or a few). */
static void check_map(mt_world_t *w, const mt_file_t *f, int full) {
    if (!f->map) {
        return;
    }
    const uint8_t *p = f->map;
    uint64_t probe[4] = {0, f->size - 1, f->size / 2,
                         (w->calls * 977) % f->size};
    if (full && memcmp(p, file_bytes(w), (size_t)f->size) == 0) {
        w->n_verified_pages++;
        return;
    }
    for (uint64_t k = 0; k < (full ? f->size : 4); k++) {
        uint64_t at = full ? k : probe[k];
        if (p[at] != mt_io_fbyte(at)) {
            mt_fail(w, "file-map",
                    "f%d: byte %llu of the mapping is 0x%02x, the file's is "
                    "0x%02x",
                    f->name, (unsigned long long)at, p[at], mt_io_fbyte(at));
        }
    }
    w->n_verified_pages++;
}

void mt_files_check(mt_world_t *w) {
    for (int k = 0; k < MT_FILES; k++) {
        const mt_file_t *f = &w->f[k];
        if (!f->h) {
            continue;
        }
        dv_file_info_t in;
        memset(&in, 0xa5, sizeof(in));
        dv_result_t r = dv_file_get_info(f->h, &in);
        if (r != DV_OK) {
            mt_fail(w, "probe", "dv_file_get_info(f%d): %s", f->name,
                    dv_last_error());
        }
        struct stat st;
        if (in.size != f->size || in.map != f->map ||
            in.bounces != f->bounces) {
            mt_fail(w, "file-info",
                    "f%d: size %llu, map %p, bounces %llu; the model says "
                    "%llu, %p, %llu",
                    f->name, (unsigned long long)in.size, in.map,
                    (unsigned long long)in.bounces,
                    (unsigned long long)f->size, f->map,
                    (unsigned long long)f->bounces);
        }
        /* The descriptor (a system call to look at): now and then. */
        if (in.native < 0 || in.native > INT32_MAX ||
            (w->calls % 61 == 0 &&
             (fstat((int)in.native, &st) != 0 ||
              (uint64_t)st.st_ino != f->ino ||
              (uint64_t)st.st_dev != f->devno))) {
            mt_fail(w, "file-info",
                    "f%d: native handle %lld is not a descriptor of the file",
                    f->name, (long long)in.native);
        }
        check_map(w, f, 0);
    }
}

/* ---- opening and closing ---- */

static void open_file(mt_world_t *w, mt_file_t *f) {
    memset(f, 0, sizeof(*f));
    f->empty = mt_chance(&w->src, 20);
    f->native = mt_chance(&w->src, 40);
    f->size = f->empty ? 0 : MT_IO_FILE_SIZE;
    f->name = w->next_name++;
    const char *path = f->empty ? empty_file(w) : mt_io_path(w);
    struct stat st;
    if (stat(path, &st) != 0) {
        mt_fail(w, "setup", "stat %s failed", path);
    }
    f->ino = (uint64_t)st.st_ino;
    f->devno = (uint64_t)st.st_dev;
    dv_file_t *h = NULL;
    dv_result_t r;
    if (!f->native) {
        mt_call(w, "dv_file_open(%s) = f%d", f->empty ? "empty" : "model",
                f->name);
        r = dv_file_open(path, &h);
        expect(w, r, DV_OK);
    } else {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            mt_fail(w, "setup", "open %s failed", path);
        }
        mt_call(w, "dv_file_open_native(fd %d of %s) = f%d", fd,
                f->empty ? "empty" : "model", f->name);
        r = dv_file_open_native(fd, &h);
        expect(w, r, DV_OK);
        dv_file_info_t in;
        if (dv_file_get_info(h, &in) != DV_OK || in.native == fd) {
            mt_fail(w, "file-info",
                    "f%d: dv_file_open_native(%d) kept the caller's "
                    "descriptor instead of a duplicate",
                    f->name, fd);
        }
        close(fd); /* the file's own duplicate stays open */
    }
    f->h = h;
    dv_file_info_t in;
    if (dv_file_get_info(h, &in) != DV_OK || in.native < 0 ||
        in.native > INT32_MAX || fstat((int)in.native, &st) != 0 ||
        (uint64_t)st.st_ino != f->ino || (uint64_t)st.st_dev != f->devno) {
        mt_fail(w, "file-info",
                "f%d: native handle %lld is not a descriptor of the file",
                f->name, (long long)in.native);
    }
}

/* A call with a handle that must be refused (dead, junk, another kind's). */
static void refused_file_call(mt_world_t *w, dv_file_t *h, const char *what) {
    const void *addr = (const void *)(uintptr_t)1;
    dv_file_info_t in;
    dv_result_t r;
    switch (mt_pick(&w->src, 6)) {
    case 0:
        mt_call(w, "dv_file_get_info(%s)", what);
        r = dv_file_get_info(h, &in);
        break;
    case 1:
        mt_call(w, "dv_file_map(%s)", what);
        r = dv_file_map(h, &addr);
        if (addr != (const void *)(uintptr_t)1) {
            mt_fail(w, "file-map", "a refused dv_file_map wrote its address");
        }
        break;
    case 2:
        mt_call(w, "dv_file_bounce(%s)", what);
        r = dv_file_bounce(h);
        break;
    case 3:
        mt_call(w, "dv_file_mark_cold(%s, 0, 1)", what);
        r = dv_file_mark_cold(h, 0, 1);
        break;
    case 4: {
        mt_dev_t *d = mt_any_dev(w);
        if (d && d->io.rd && d->io.hb) {
            mt_call(w, "dv_read_to_host(d%d, file %s)", d->name, what);
            r = dv_read_to_host(d->h, d->io.rd, h, 0, 1, d->io.hb, 0, 0);
            mt_ret(w, r);
            mt_expect(w, MT_FN_READ, r, INV);
            w->n_errors_checked++;
            return;
        }
    }
    /* fall through */
    default:
        mt_call(w, "dv_file_close(%s)", what);
        r = dv_file_close(h);
        break;
    }
    expect(w, r, INV);
}

static void close_file(mt_world_t *w, mt_file_t *f) {
    mt_call(w, "dv_file_close(f%d)", f->name);
    dv_result_t r = dv_file_close(f->h);
    expect(w, r, DV_OK);
    grave_file(w, f->h);
    f->h = NULL;
}

void mt_files_teardown(mt_world_t *w) {
    for (int k = 0; k < MT_FILES; k++) {
        if (w->f[k].h) {
            close_file(w, &w->f[k]);
        }
    }
    mt_check_all(w);
}

/* ---- the op ---- */

static void mark_cold(mt_world_t *w, mt_file_t *f) {
    uint64_t off, size;
    switch (mt_pick(&w->src, 8)) {
    case 0:
        off = mt_pick(&w->src, f->size + 1), size = 0;
        break;
    case 1: /* starts past the end */
        off = f->size + 1 + mt_pick(&w->src, 4096), size = 1;
        break;
    case 2: /* ends just past the end */
        off = mt_pick(&w->src, f->size + 1);
        size = f->size - off + 1 + mt_pick(&w->src, 100);
        break;
    case 3: /* wraps */
        off = 1 + mt_pick(&w->src, f->size + 1);
        size = UINT64_MAX - mt_pick(&w->src, 3);
        break;
    case 4:
        off = UINT64_MAX - mt_pick(&w->src, 4096), size = 4096;
        break;
    default: /* inside, when there is an inside */
        size = 1 + mt_pick(&w->src, f->size ? f->size : 1);
        off = f->size >= size ? mt_pick(&w->src, f->size - size + 1) : 0;
        break;
    }
    dv_result_t want = DV_OK;
    if (size == 0) {
        want = INV;
    } else if (off > f->size || size > f->size - off) {
        want = DV_ERROR_OUT_OF_RANGE;
    }
    mt_call(w, "dv_file_mark_cold(f%d, %llu, %llu)", f->name,
            (unsigned long long)off, (unsigned long long)size);
    expect(w, dv_file_mark_cold(f->h, off, size), want);
}

void mt_op_file(mt_world_t *w) {
    mt_file_t *f = &w->f[mt_pick(&w->src, MT_FILES)];
    if (!f->h) {
        open_file(w, f);
        mt_check_all(w);
        return;
    }
    dv_result_t r;
    uint64_t x = mt_pick(&w->src, 100);
    if (x < 25) {
        const void *addr = NULL;
        mt_call(w, "dv_file_map(f%d)", f->name);
        r = dv_file_map(f->h, &addr);
        expect(w, r, DV_OK);
        if (f->empty ? addr != NULL : !addr || (f->map && addr != f->map)) {
            mt_fail(w, "file-map",
                    "f%d: dv_file_map gave %p (before: %p, %s file)", f->name,
                    addr, f->map, f->empty ? "an empty" : "a non-empty");
        }
        int first = !f->mapped;
        f->map = addr;
        f->mapped = 1;
        check_map(w, f, first || mt_chance(&w->src, 20));
    } else if (x < 45) {
        mt_call(w, "dv_file_bounce(f%d)", f->name);
        r = dv_file_bounce(f->h);
        expect(w, r, DV_OK);
        f->bounces += f->map != NULL; /* only a mapping has pages to drop */
        check_map(w, f, mt_chance(&w->src, 30)); /* read back after it */
    } else if (x < 65) {
        mark_cold(w, f);
    } else if (x < 80) {
        mt_io_read_file(w, f->h, f->size);
    } else if (x < 85) {
        mt_call(w, "dv_file_get_info(f%d, NULL)", f->name);
        expect(w, dv_file_get_info(f->h, NULL), INV);
        mt_call(w, "dv_file_map(f%d, NULL)", f->name);
        expect(w, dv_file_map(f->h, NULL), INV);
    } else {
        dv_file_t *h = f->h;
        close_file(w, f);
        if (w->dead_handles && mt_chance(&w->src, 50)) {
            refused_file_call(w, h, "just closed");
        }
    }
    mt_check_all(w);
}

/* ---- bad input ---- */

/* dv_file_open_native with descriptors that are no readable regular file:
 * each is DV_ERROR_IO, and nothing is opened. */
static void bad_native(mt_world_t *w) {
    int fd = -1, extra = -1;
    int64_t native;
    const char *what;
    int p[2];
    switch (mt_pick(&w->src, 7)) {
    case 0:
        native = -1 - (int64_t)mt_pick(&w->src, 3), what = "negative";
        break;
    case 1:
        native = INT64_MIN, what = "INT64_MIN";
        break;
    case 2: /* a live descriptor in its low 32 bits */
        fd = open(mt_io_path(w), O_RDONLY | O_CLOEXEC);
        native = ((int64_t)1 << 32) | fd, what = "2^32 + a live descriptor";
        break;
    case 3: /* closed: nothing else opens descriptors meanwhile */
        fd = open(mt_io_path(w), O_RDONLY | O_CLOEXEC);
        close(fd);
        native = fd, fd = -1, what = "a closed descriptor";
        break;
    case 4:
        if (pipe(p) != 0) {
            return;
        }
        fd = p[0], extra = p[1], native = fd, what = "a pipe";
        break;
    case 5:
        fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        native = fd, what = "a directory";
        break;
    default:
        fd = open(mt_io_path(w), O_WRONLY | O_CLOEXEC);
        native = fd, what = "a write-only descriptor";
        break;
    }
    dv_file_t *h = NULL;
    mt_call(w, "dv_file_open_native(%s: %lld)", what, (long long)native);
    dv_result_t r = dv_file_open_native(native, &h);
    if (r == DV_OK) {
        dv_file_close(h); /* reported below; no descriptor leaks */
    }
    expect(w, r, DV_ERROR_IO);
    if (fd >= 0) {
        close(fd);
    }
    if (extra >= 0) {
        close(extra);
    }
}

static void bad_null(mt_world_t *w) {
    mt_file_t *f = any_live_file(w);
    dv_file_t *h = (dv_file_t *)(uintptr_t)1;
    const void *addr = NULL;
    dv_file_info_t in;
    dv_result_t r;
    switch (mt_pick(&w->src, 9)) {
    case 0:
        mt_call(w, "dv_file_open(NULL path)");
        r = dv_file_open(NULL, &h);
        break;
    case 1:
        mt_call(w, "dv_file_open(model, NULL out)");
        r = dv_file_open(mt_io_path(w), NULL);
        break;
    case 2: {
        int fd = open(mt_io_path(w), O_RDONLY | O_CLOEXEC);
        mt_call(w, "dv_file_open_native(fd %d, NULL out)", fd);
        r = dv_file_open_native(fd, NULL);
        close(fd);
        break;
    }
    case 3:
        mt_call(w, "dv_file_get_info(NULL)");
        r = dv_file_get_info(NULL, &in);
        break;
    case 4:
        mt_call(w, "dv_file_map(NULL)");
        r = dv_file_map(NULL, &addr);
        break;
    case 5:
        mt_call(w, "dv_file_bounce(NULL)");
        r = dv_file_bounce(NULL);
        break;
    case 6:
        mt_call(w, "dv_file_mark_cold(NULL, 0, 1)");
        r = dv_file_mark_cold(NULL, 0, 1);
        break;
    case 7:
        if (f) {
            mt_call(w, "dv_file_get_info(f%d, NULL)", f->name);
            r = dv_file_get_info(f->h, NULL);
            break;
        }
        /* fall through */
    default:
        mt_call(w, "dv_file_close(NULL)");
        r = dv_file_close(NULL);
        break;
    }
    expect(w, r, INV);
}

static void bad_path(mt_world_t *w) {
    char missing[96];
    const char *path;
    switch (mt_pick(&w->src, 3)) {
    case 0:
        snprintf(missing, sizeof(missing), "%s.missing", mt_io_path(w));
        path = missing;
        break;
    case 1:
        path = "/";
        break;
    default:
        path = "";
        break;
    }
    dv_file_t *h = NULL;
    mt_call(w, "dv_file_open('%s')", path);
    dv_result_t r = dv_file_open(path, &h);
    expect(w, r, DV_ERROR_IO);
}

/* Junk pointers, dead files and handles of other kinds as files; files as
 * other kinds. */
static void bad_handles(mt_world_t *w) {
    mt_dev_t *d = mt_any_dev(w);
    mt_file_t *f = any_live_file(w);
    dv_file_t *dead = any_dead_file(w);
    switch (mt_pick(&w->src, 6)) {
    case 0:
        if (dead) {
            refused_file_call(w, dead, "closed file");
            return;
        }
        /* fall through */
    case 1:
        refused_file_call(w, mt_chance(&w->src, 50)
                                 ? (dv_file_t *)(uintptr_t)0x40
                                 : (dv_file_t *)(void *)w->buf,
                          "junk pointer");
        return;
    case 2:
        if (d && d->nvb) {
            refused_file_call(w, (dv_file_t *)(void *)d->vb[d->order[0]].h,
                              "a VBAR");
        } else if (d) {
            refused_file_call(w, (dv_file_t *)(void *)d->h, "a device");
        }
        return;
    case 3:
        if (d && d->io.hb) {
            refused_file_call(w, (dv_file_t *)(void *)d->io.hb,
                              "a host buffer");
        } else if (d && d->io.rd) {
            refused_file_call(w, (dv_file_t *)(void *)d->io.rd, "a reader");
        }
        return;
    default:
        break;
    }
    if (!f || !d) {
        return;
    }
    dv_result_t r;
    if (mt_chance(&w->src, 50)) {
        dv_hostbuf_info_t hi;
        mt_call(w, "dv_hostbuf_get_info(d%d, f%d as a host buffer)", d->name,
                f->name);
        r = dv_hostbuf_get_info(d->h, (dv_hostbuf_t *)(void *)f->h, &hi);
        mt_ret(w, r);
        mt_expect(w, MT_FN_HOSTBUF, r, INV);
    } else if (d->io.hb) {
        mt_call(w, "dv_read_to_host(d%d, f%d as the reader)", d->name,
                f->name);
        r = dv_read_to_host(d->h, (dv_reader_t *)(void *)f->h, f->h, 0, 1,
                            d->io.hb, 0, 0);
        mt_ret(w, r);
        mt_expect(w, MT_FN_READ, r, INV);
    } else {
        dv_devbuf_info_t di;
        mt_call(w, "dv_devbuf_get_info(d%d, f%d as a device buffer)", d->name,
                f->name);
        r = dv_devbuf_get_info(d->h, (dv_devbuf_t *)(void *)f->h, &di);
        mt_ret(w, r);
        mt_expect(w, MT_FN_DEVBUF, r, INV);
    }
    w->n_errors_checked++;
}

void mt_op_file_bad(mt_world_t *w) {
    switch (mt_pick(&w->src, 4)) {
    case 0:
        bad_null(w);
        break;
    case 1:
        bad_path(w);
        break;
    case 2:
        bad_native(w);
        break;
    default:
        if (w->dead_handles) {
            bad_handles(w);
        }
        break;
    }
    mt_check_all(w);
}
