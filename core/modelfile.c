/*
 * modelfile.c - model files: opened read-only by UTF-8 path or from a
 * native handle, mapped whole on demand, bounced (public contract in
 * dynvram_io.h).
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * A file belongs to no device: one file is read into several GPUs. Its size
 * is read at open and every read range is checked against it; a file that
 * shrinks afterwards makes reads fail with DV_ERROR_IO ("ended early")
 * instead of returning short data. The mapping is made once, under the
 * file's lock, and stays at the same address until close; bouncing only
 * drops its resident pages (the OS layer says how on each system).
 * A read holds the file (dv__io_acquire), so close refuses while one runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/io.h"

struct dv__file {
    dv__ioobj_t io;
    dv__mutex_t lock; /* the mapping */
    dv__osfile_t os;
    uint64_t size;
    dv__filemap_t map;
    uint64_t bounces;
};

#define FILE_HANDLE(f) ((dv_file_t *)(uintptr_t)(f)->io.handle)

/* Wrap an open OS file in a published dv__file_t. */
static dv_result_t wrap(dv__osfile_t os, const char *fn, const char *what,
                        dv_file_t **out) {
    uint64_t size = 0;
    int e = dv__file_size(os, &size);
    if (e) {
        dv__file_close(&os);
        return dv__io_os_fail(DV_ERROR_IO, e, fn, what);
    }
    dv__file_t *f = calloc(1, sizeof(*f));
    if (!f || dv__mutex_init(&f->lock) != 0) {
        free(f);
        dv__file_close(&os);
        return dv__fail(DV_ERROR_OUT_OF_HOST_MEMORY, "%s", fn);
    }
    f->os = os;
    f->size = size;
    dv_result_t r = dv__io_publish(f, DV__HK_FILE, NULL, fn);
    if (r != DV_OK) {
        dv__mutex_destroy(&f->lock);
        dv__file_close(&f->os);
        free(f);
        return r;
    }
    *out = FILE_HANDLE(f);
    return dv__ok();
}

dv_result_t dv_file_open(const char *path, dv_file_t **out) {
    static const char fn[] = "dv_file_open";
    if (!path || !out) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT, "%s: path or out is NULL",
                        fn);
    }
    *out = NULL;
    dv__osfile_t os;
    int e = dv__file_open(path, &os);
    char what[320];
    snprintf(what, sizeof(what), "open '%s'", path);
    if (e) {
        return dv__io_os_fail(DV_ERROR_IO, e, fn, what);
    }
    return wrap(os, fn, what, out);
}

dv_result_t dv_file_open_native(int64_t native, dv_file_t **out) {
    static const char fn[] = "dv_file_open_native";
    if (!out) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT, "%s: out is NULL", fn);
    }
    *out = NULL;
    dv__osfile_t os;
    char what[96];
    snprintf(what, sizeof(what),
             "native handle %lld (an open, readable regular file expected)",
             (long long)native);
    int e = dv__file_dup(native, &os);
    if (e) {
        return dv__io_os_fail(DV_ERROR_IO, e, fn, what);
    }
    return wrap(os, fn, what, out);
}

dv_result_t dv_file_close(dv_file_t *h) {
    static const char fn[] = "dv_file_close";
    dv__file_t *f = NULL;
    dv_result_t r = dv__io_acquire(NULL, h, DV__HK_FILE, fn, NULL, (void **)&f);
    if (r != DV_OK) {
        return r;
    }
    r = dv__io_retire(f, fn);
    if (r != DV_OK) {
        dv__io_release(f);
        return r;
    }
    dv__map_close(&f->map);
    dv__file_close(&f->os);
    dv__mutex_destroy(&f->lock);
    free(f);
    return dv__ok();
}

dv_result_t dv_file_get_info(dv_file_t *h, dv_file_info_t *info) {
    static const char fn[] = "dv_file_get_info";
    dv__file_t *f = NULL;
    dv_result_t r = dv__io_acquire(NULL, h, DV__HK_FILE, fn, NULL, (void **)&f);
    if (r != DV_OK) {
        return r;
    }
    if (!info) {
        dv__io_release(f);
        return dv__fail(DV_ERROR_INVALID_ARGUMENT, "%s: info is NULL", fn);
    }
    dv__mutex_lock(&f->lock);
    memset(info, 0, sizeof(*info));
    info->size = f->size;
    info->native = dv__file_native(f->os);
    info->map = f->map.addr;
    info->bounces = f->bounces;
    dv__mutex_unlock(&f->lock);
    dv__io_release(f);
    return dv__ok();
}

dv_result_t dv_file_map(dv_file_t *h, const void **addr) {
    static const char fn[] = "dv_file_map";
    dv__file_t *f = NULL;
    dv_result_t r = dv__io_acquire(NULL, h, DV__HK_FILE, fn, NULL, (void **)&f);
    if (r != DV_OK) {
        return r;
    }
    if (!addr) {
        dv__io_release(f);
        return dv__fail(DV_ERROR_INVALID_ARGUMENT, "%s: addr is NULL", fn);
    }
    dv__mutex_lock(&f->lock);
    if (!f->map.addr && f->size) {
        int e = dv__map_file(f->os, f->size, &f->map);
        if (e) {
            r = dv__io_os_fail(DV_ERROR_IO, e, fn, "map");
        }
    }
    if (r == DV_OK) {
        *addr = f->map.addr;
    }
    dv__mutex_unlock(&f->lock);
    dv__io_release(f);
    return r == DV_OK ? dv__ok() : r;
}

dv_result_t dv_file_bounce(dv_file_t *h) {
    static const char fn[] = "dv_file_bounce";
    dv__file_t *f = NULL;
    dv_result_t r = dv__io_acquire(NULL, h, DV__HK_FILE, fn, NULL, (void **)&f);
    if (r != DV_OK) {
        return r;
    }
    dv__mutex_lock(&f->lock);
    if (f->map.addr) {
        int e = dv__map_bounce(&f->map);
        if (e) {
            r = dv__io_os_fail(DV_ERROR_IO, e, fn, "dropping the pages");
        } else {
            f->bounces++;
        }
    }
    dv__mutex_unlock(&f->lock);
    dv__io_release(f);
    return r == DV_OK ? dv__ok() : r;
}

static dv_result_t range_ok(const dv__file_t *f, uint64_t off, uint64_t size,
                            const char *fn) {
    if (size == 0) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT, "%s: size is 0", fn);
    }
    if (off > f->size || size > f->size - off) {
        return dv__fail(DV_ERROR_OUT_OF_RANGE,
                        "%s: range [%llu, +%llu) is outside the file of %llu "
                        "bytes",
                        fn, (unsigned long long)off, (unsigned long long)size,
                        (unsigned long long)f->size);
    }
    return DV_OK;
}

dv_result_t dv_file_mark_cold(dv_file_t *h, uint64_t offset, uint64_t size) {
    static const char fn[] = "dv_file_mark_cold";
    dv__file_t *f = NULL;
    dv_result_t r = dv__io_acquire(NULL, h, DV__HK_FILE, fn, NULL, (void **)&f);
    if (r != DV_OK) {
        return r;
    }
    r = range_ok(f, offset, size, fn);
    if (r == DV_OK) {
        int e = dv__file_drop_cache(f->os, offset, size);
        if (e) {
            r = dv__io_os_fail(DV_ERROR_IO, e, fn, "dropping cached pages");
        }
    }
    dv__io_release(f);
    return r == DV_OK ? dv__ok() : r;
}

dv_result_t dv__file_range(dv__file_t *f, uint64_t off, uint64_t size,
                           const char *fn, dv__osfile_t *os) {
    dv_result_t r = range_ok(f, off, size, fn);
    if (r == DV_OK) {
        *os = f->os;
    }
    return r;
}
