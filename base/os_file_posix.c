/*
 * os_file_posix.c - core/os_file.h on POSIX (Linux first).
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Reserved address space is an anonymous PROT_NONE, MAP_NORESERVE mapping;
 * commit makes a range readable and writable (the kernel hands out zero
 * pages on first touch); decommit maps fresh PROT_NONE memory over the
 * range, which drops its pages at once and keeps the reservation.
 * File mappings are MAP_SHARED and read-only, so bouncing them with
 * MADV_DONTNEED only forgets clean page-cache pages: the next access maps
 * them again from the cache (or the disk).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/os_file.h"

void dv__os_strerror(int code, char *buf, size_t len) {
    if (code == DV__OS_UNSUPPORTED) {
        snprintf(buf, len, "not supported on this system");
        return;
    }
    snprintf(buf, len, "%s (errno %d)", strerror(code), code);
}

int dv__os_is_oom(int code) { return code == ENOMEM; }

static int err(void) { return errno ? errno : EIO; }

/* 0 when fd is a regular file open for reading, else the error: a
 * directory, a pipe or a device opens fine but is no model file, and a
 * write-only descriptor can be neither read nor mapped. */
static int readable_regular(int fd) {
    struct stat st;
    if (fstat(fd, &st) != 0) {
        return err();
    }
    if (!S_ISREG(st.st_mode)) {
        return S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0) {
        return err();
    }
    return (fl & O_ACCMODE) == O_WRONLY ? EBADF : 0;
}

int dv__file_open(const char *path, dv__osfile_t *out) {
    int fd;
    do {
        fd = open(path, O_RDONLY | O_CLOEXEC);
    } while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        return err();
    }
    int e = readable_regular(fd);
    if (e) {
        close(fd);
        return e;
    }
    out->h = fd;
    return 0;
}

int dv__file_dup(int64_t native, dv__osfile_t *out) {
    if (native < 0 || native > INT32_MAX) {
        return EBADF;
    }
    int fd = fcntl((int)native, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
        return err();
    }
    /* The same checks as a path's: a handle is no easier way in. */
    int e = readable_regular(fd);
    if (e) {
        close(fd);
        return e;
    }
    out->h = fd;
    return 0;
}

void dv__file_close(dv__osfile_t *f) {
    if (f->h >= 0) {
        close((int)f->h);
    }
    f->h = -1;
}

int dv__file_size(dv__osfile_t f, uint64_t *size) {
    struct stat st;
    if (fstat((int)f.h, &st) != 0) {
        return err();
    }
    *size = (uint64_t)st.st_size;
    return 0;
}

int64_t dv__file_native(dv__osfile_t f) { return (int64_t)f.h; }

int dv__file_pread(dv__osfile_t f, void *buf, size_t len, uint64_t off,
                   size_t *got) {
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread((int)f.h, (char *)buf + done, len - done,
                          (off_t)(off + done));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            *got = done;
            return err();
        }
        if (n == 0) {
            break; /* end of file */
        }
        done += (size_t)n;
    }
    *got = done;
    return 0;
}

int dv__file_drop_cache(dv__osfile_t f, uint64_t off, uint64_t len) {
#ifdef POSIX_FADV_DONTNEED
    return posix_fadvise((int)f.h, (off_t)off, (off_t)len, POSIX_FADV_DONTNEED);
#else
    (void)f;
    (void)off;
    (void)len;
    return DV__OS_UNSUPPORTED;
#endif
}

uint64_t dv__vm_page(void) {
    long pg = sysconf(_SC_PAGESIZE);
    return pg > 0 ? (uint64_t)pg : 4096u;
}

static uint64_t round_page(uint64_t n) {
    uint64_t pg = dv__vm_page();
    return (n + pg - 1) / pg * pg;
}

int dv__map_file(dv__osfile_t f, uint64_t size, dv__filemap_t *m) {
    memset(m, 0, sizeof(*m));
    if (size == 0 || size > SIZE_MAX) {
        return EINVAL;
    }
    void *p = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, (int)f.h, 0);
    if (p == MAP_FAILED) {
        return err();
    }
    m->addr = p;
    m->size = size;
    m->span = round_page(size);
    return 0;
}

int dv__map_bounce(dv__filemap_t *m) {
    if (!m->addr) {
        return 0;
    }
    return madvise(m->addr, (size_t)m->span, MADV_DONTNEED) == 0 ? 0 : err();
}

void dv__map_close(dv__filemap_t *m) {
    if (m->addr) {
        munmap(m->addr, (size_t)m->span);
    }
    memset(m, 0, sizeof(*m));
}

int dv__vm_reserve(uint64_t size, void **addr) {
    if (size == 0 || size > SIZE_MAX) {
        return EINVAL;
    }
    void *p = mmap(NULL, (size_t)size, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        return err();
    }
    *addr = p;
    return 0;
}

int dv__vm_commit(void *addr, uint64_t size) {
    return mprotect(addr, (size_t)size, PROT_READ | PROT_WRITE) == 0 ? 0
                                                                     : err();
}

int dv__vm_decommit(void *addr, uint64_t size) {
    void *p =
        mmap(addr, (size_t)size, PROT_NONE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
    return p == MAP_FAILED ? err() : 0;
}

void dv__vm_release(void *addr, uint64_t size) {
    if (addr) {
        munmap(addr, (size_t)size);
    }
}

int dv__vm_populate(void *addr, uint64_t size) {
#ifdef MADV_POPULATE_WRITE
    if (madvise(addr, (size_t)size, MADV_POPULATE_WRITE) == 0) {
        return 0;
    }
    /* EINVAL: a kernel older than 5.14 does not know the advice. */
    return errno == EINVAL ? DV__OS_UNSUPPORTED : err();
#else
    (void)addr;
    (void)size;
    return DV__OS_UNSUPPORTED;
#endif
}
