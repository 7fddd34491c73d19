/*
 * os_file.h - files, read-only file mappings and committed address space:
 * the OS layer under the host I/O pieces (core/hostbuf.c, core/modelfile.c,
 * core/reader.c).
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * One implementation per platform, chosen by the build: os_file_posix.c
 * (open/pread/mmap/madvise/posix_fadvise) and os_file_win.c (CreateFileW,
 * overlapped ReadFile, sections and placeholder views, VirtualAlloc).
 *
 * Contract:
 *  - Every function returning int returns 0 on success, else a native
 *    error code (errno, GetLastError()) or DV__OS_UNSUPPORTED when the
 *    platform has no such operation. Nothing is left half done on failure.
 *    dv__os_strerror gives the text of a code, dv__os_is_oom says whether
 *    it means out of memory.
 *  - Files are opened read-only and may be read by several threads at
 *    once (positional reads only; no shared file pointer).
 *    dv__file_open takes a UTF-8 path (Windows: converted to UTF-16 and
 *    opened with the W API). dv__file_dup makes an independent handle from
 *    a native one (a file descriptor, a HANDLE), which the caller keeps.
 *    Both refuse what is not a regular file open for reading (a
 *    directory, a pipe, a device, a write-only descriptor).
 *  - dv__file_pread reads at most `len` bytes at `off` in one call (EINTR
 *    retried): *got < len only at the end of the file (0 there).
 *  - dv__file_drop_cache asks the OS to drop its cached pages of the range
 *    (POSIX_FADV_DONTNEED); DV__OS_UNSUPPORTED where there is no such hint.
 *  - dv__map_file maps the first `size` (> 0) bytes of a file read-only.
 *    m->addr is valid until dv__map_close. dv__map_bounce drops the
 *    mapping's resident pages from the process (its RSS falls) and leaves
 *    every address valid: POSIX MADV_DONTNEED; Windows unmaps the view into
 *    its placeholder and maps it again at the same address (during that
 *    instant the range must not be read), or, without placeholders,
 *    removes the pages from the working set.
 *  - dv__vm_*: address space reserved without memory, committed (readable,
 *    writable, zero-filled on first touch) and decommitted (contents gone,
 *    access faults) in multiples of dv__vm_page(), and released whole.
 *    dv__vm_populate makes committed pages resident for writing without
 *    changing their contents; DV__OS_UNSUPPORTED if the OS cannot, and the
 *    caller touches the pages itself.
 */
#ifndef DV_BASE_OS_FILE_H
#define DV_BASE_OS_FILE_H

#include <stddef.h>
#include <stdint.h>

#define DV__OS_UNSUPPORTED (-1)

typedef struct dv__osfile {
    intptr_t h; /* file descriptor, or HANDLE */
} dv__osfile_t;

typedef struct dv__filemap {
    void *addr;       /* first byte of the file */
    uint64_t size;    /* bytes of the file that are mapped */
    uint64_t span;    /* bytes of address space taken (size rounded up) */
    intptr_t section; /* Windows: the section HANDLE; POSIX: unused */
    int placeholder;  /* Windows: the view lives in a placeholder */
} dv__filemap_t;

void dv__os_strerror(int code, char *buf, size_t len);
int dv__os_is_oom(int code);

int dv__file_open(const char *utf8_path, dv__osfile_t *out);
int dv__file_dup(int64_t native, dv__osfile_t *out);
void dv__file_close(dv__osfile_t *f);
int dv__file_size(dv__osfile_t f, uint64_t *size);
int64_t dv__file_native(dv__osfile_t f);
int dv__file_pread(dv__osfile_t f, void *buf, size_t len, uint64_t off,
                   size_t *got);
int dv__file_drop_cache(dv__osfile_t f, uint64_t off, uint64_t len);

int dv__map_file(dv__osfile_t f, uint64_t size, dv__filemap_t *m);
int dv__map_bounce(dv__filemap_t *m);
void dv__map_close(dv__filemap_t *m);

uint64_t dv__vm_page(void);
int dv__vm_reserve(uint64_t size, void **addr);
int dv__vm_commit(void *addr, uint64_t size);
int dv__vm_decommit(void *addr, uint64_t size);
void dv__vm_release(void *addr, uint64_t size);
int dv__vm_populate(void *addr, uint64_t size);

#endif /* DV_BASE_OS_FILE_H */
