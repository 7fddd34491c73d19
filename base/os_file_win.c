/*
 * os_file_win.c - core/os_file.h on Windows.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Files: UTF-8 paths are converted to UTF-16 and opened with CreateFileW,
 * FILE_FLAG_OVERLAPPED, so that several threads can read one handle at
 * once: a synchronous handle serializes every read on its file object.
 * A read passes its offset in an OVERLAPPED with its own event, which also
 * works on a synchronous handle the caller gave (dv__file_dup).
 *
 * Mappings: a read-only section of the file, viewed inside a placeholder
 * (VirtualAlloc2 MEM_RESERVE_PLACEHOLDER, MapViewOfFile3
 * MEM_REPLACE_PLACEHOLDER). Bounce unmaps the view back into its
 * placeholder (UnmapViewOfFile2 MEM_PRESERVE_PLACEHOLDER), which takes its
 * pages out of the working set, and maps it again at the same address: no
 * other allocation can take the range in between. Where placeholders are
 * missing (before Windows 10 1803, Wine) the view is an ordinary one and
 * bounce trims it from the working set with VirtualUnlock, which the
 * documentation describes for pages that are not locked.
 *
 * Address space: VirtualAlloc MEM_RESERVE, then MEM_COMMIT / MEM_DECOMMIT
 * in pages, VirtualFree MEM_RELEASE.
 *
 * Not run on a real Windows machine yet: cross-compiled in CI.
 */
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/os.h"
#include "base/os_file.h"

/* Values of the 10.0.17134 SDK, which older headers lack. */
#define WIN_MEM_RESERVE_PLACEHOLDER 0x00040000u
#define WIN_MEM_REPLACE_PLACEHOLDER 0x00004000u
#define WIN_MEM_PRESERVE_PLACEHOLDER 0x00000002u

typedef PVOID(WINAPI *win_virtual_alloc2_fn)(HANDLE, PVOID, SIZE_T, ULONG,
                                             ULONG, void *, ULONG);
typedef PVOID(WINAPI *win_map_view3_fn)(HANDLE, HANDLE, PVOID, ULONG64, SIZE_T,
                                        ULONG, ULONG, void *, ULONG);
typedef BOOL(WINAPI *win_unmap_view2_fn)(HANDLE, PVOID, ULONG);

static struct {
    win_virtual_alloc2_fn virtual_alloc2;
    win_map_view3_fn map_view3;
    win_unmap_view2_fn unmap_view2;
} win_api;
static dv__once_t win_api_once = DV__ONCE_INIT;

static void win_api_load(void) {
    HMODULE kb = GetModuleHandleW(L"kernelbase.dll");
    if (!kb) {
        return;
    }
    win_api.virtual_alloc2 =
        (win_virtual_alloc2_fn)(void (*)(void))GetProcAddress(kb,
                                                              "VirtualAlloc2");
    win_api.map_view3 =
        (win_map_view3_fn)(void (*)(void))GetProcAddress(kb, "MapViewOfFile3");
    win_api.unmap_view2 = (win_unmap_view2_fn)(void (*)(void))GetProcAddress(
        kb, "UnmapViewOfFile2");
}

static int win_err(void) {
    DWORD e = GetLastError();
    return e ? (int)e : (int)ERROR_GEN_FAILURE;
}

void dv__os_strerror(int code, char *buf, size_t len) {
    if (code == DV__OS_UNSUPPORTED) {
        snprintf(buf, len, "not supported on this system");
        return;
    }
    char text[256];
    DWORD n = FormatMessageA(
        FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL,
        (DWORD)code, 0, text, (DWORD)sizeof(text), NULL);
    while (n > 0 && (text[n - 1] == '\r' || text[n - 1] == '\n' ||
                     text[n - 1] == ' ' || text[n - 1] == '.')) {
        n--;
    }
    text[n] = '\0';
    snprintf(buf, len, "%s (Win32 error %d)", n ? text : "unknown error", code);
}

int dv__os_is_oom(int code) {
    return code == (int)ERROR_NOT_ENOUGH_MEMORY ||
           code == (int)ERROR_OUTOFMEMORY ||
           code == (int)ERROR_COMMITMENT_LIMIT;
}

/* ---- files ------------------------------------------------------------- */

int dv__file_open(const char *path, dv__osfile_t *out) {
    int n =
        MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path, -1, NULL, 0);
    if (n <= 0) {
        return win_err();
    }
    wchar_t *w = malloc((size_t)n * sizeof(*w));
    if (!w) {
        return (int)ERROR_NOT_ENOUGH_MEMORY;
    }
    MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path, -1, w, n);
    HANDLE h = CreateFileW(
        w, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
        NULL, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL | FILE_FLAG_OVERLAPPED,
        NULL);
    int e = h == INVALID_HANDLE_VALUE ? win_err() : 0;
    free(w);
    if (e) {
        return e;
    }
    out->h = (intptr_t)h;
    return 0;
}

/* 0 when h is a file on disk that is no directory (a pipe, a console or a
 * directory is no model file), else the error. */
static int regular_file(HANDLE h) {
    if (GetFileType(h) != FILE_TYPE_DISK) {
        return (int)ERROR_INVALID_HANDLE;
    }
    BY_HANDLE_FILE_INFORMATION fi;
    if (!GetFileInformationByHandle(h, &fi)) {
        return win_err();
    }
    return (fi.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY)
               ? (int)ERROR_DIRECTORY
               : 0;
}

int dv__file_dup(int64_t native, dv__osfile_t *out) {
    HANDLE h = NULL;
    if (!DuplicateHandle(GetCurrentProcess(), (HANDLE)(intptr_t)native,
                         GetCurrentProcess(), &h, 0, FALSE,
                         DUPLICATE_SAME_ACCESS)) {
        return win_err();
    }
    int e = regular_file(h);
    if (e) {
        CloseHandle(h);
        return e;
    }
    out->h = (intptr_t)h;
    return 0;
}

void dv__file_close(dv__osfile_t *f) {
    if (f->h && (HANDLE)f->h != INVALID_HANDLE_VALUE) {
        CloseHandle((HANDLE)f->h);
    }
    f->h = (intptr_t)INVALID_HANDLE_VALUE;
}

int dv__file_size(dv__osfile_t f, uint64_t *size) {
    LARGE_INTEGER li;
    if (!GetFileSizeEx((HANDLE)f.h, &li)) {
        return win_err();
    }
    *size = (uint64_t)li.QuadPart;
    return 0;
}

int64_t dv__file_native(dv__osfile_t f) { return (int64_t)f.h; }

/* One ReadFile of at most 1 GiB at `off`; *n bytes came back. */
static int read_at(HANDLE h, HANDLE ev, char *buf, DWORD len, uint64_t off,
                   DWORD *n) {
    OVERLAPPED ov;
    memset(&ov, 0, sizeof(ov));
    ov.Offset = (DWORD)off;
    ov.OffsetHigh = (DWORD)(off >> 32);
    ov.hEvent = ev;
    *n = 0;
    if (ReadFile(h, buf, len, NULL, &ov) ||
        GetLastError() == ERROR_IO_PENDING) {
        if (GetOverlappedResult(h, &ov, n, TRUE)) {
            return 0;
        }
    }
    DWORD e = GetLastError();
    return e == ERROR_HANDLE_EOF ? 0 : (int)e;
}

int dv__file_pread(dv__osfile_t f, void *buf, size_t len, uint64_t off,
                   size_t *got) {
    HANDLE ev = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (!ev) {
        *got = 0;
        return win_err();
    }
    size_t done = 0;
    int e = 0;
    while (done < len) {
        size_t want = len - done;
        DWORD n = 0;
        e = read_at((HANDLE)f.h, ev, (char *)buf + done,
                    (DWORD)(want > (1u << 30) ? (1u << 30) : want), off + done,
                    &n);
        if (e || n == 0) {
            break;
        }
        done += n;
    }
    CloseHandle(ev);
    *got = done;
    return e;
}

/* Windows has no per-range cache hint. */
int dv__file_drop_cache(dv__osfile_t f, uint64_t off, uint64_t len) {
    (void)f;
    (void)off;
    (void)len;
    return DV__OS_UNSUPPORTED;
}

/* ---- address space ----------------------------------------------------- */

uint64_t dv__vm_page(void) {
    SYSTEM_INFO si;
    GetSystemInfo(&si);
    return si.dwPageSize ? (uint64_t)si.dwPageSize : 4096u;
}

int dv__vm_reserve(uint64_t size, void **addr) {
    void *p = VirtualAlloc(NULL, (SIZE_T)size, MEM_RESERVE, PAGE_NOACCESS);
    if (!p) {
        return win_err();
    }
    *addr = p;
    return 0;
}

int dv__vm_commit(void *addr, uint64_t size) {
    return VirtualAlloc(addr, (SIZE_T)size, MEM_COMMIT, PAGE_READWRITE)
               ? 0
               : win_err();
}

int dv__vm_decommit(void *addr, uint64_t size) {
    return VirtualFree(addr, (SIZE_T)size, MEM_DECOMMIT) ? 0 : win_err();
}

void dv__vm_release(void *addr, uint64_t size) {
    (void)size;
    if (addr) {
        VirtualFree(addr, 0, MEM_RELEASE);
    }
}

/* Committed private pages have no prefetch call: the caller touches them. */
int dv__vm_populate(void *addr, uint64_t size) {
    (void)addr;
    (void)size;
    return DV__OS_UNSUPPORTED;
}

/* ---- mappings ---------------------------------------------------------- */

static uint64_t round_page(uint64_t n) {
    uint64_t pg = dv__vm_page();
    return (n + pg - 1) / pg * pg;
}

/* A view of the section replacing a placeholder at m->addr. */
static int view_into_placeholder(dv__filemap_t *m) {
    void *v = win_api.map_view3(
        (HANDLE)m->section, GetCurrentProcess(), m->addr, 0, (SIZE_T)m->span,
        WIN_MEM_REPLACE_PLACEHOLDER, PAGE_READONLY, NULL, 0);
    return v ? 0 : win_err();
}

static int map_placeholder(dv__filemap_t *m) {
    void *p = win_api.virtual_alloc2(GetCurrentProcess(), NULL, (SIZE_T)m->span,
                                     MEM_RESERVE | WIN_MEM_RESERVE_PLACEHOLDER,
                                     PAGE_NOACCESS, NULL, 0);
    if (!p) {
        return win_err();
    }
    m->addr = p;
    int e = view_into_placeholder(m);
    if (e) {
        VirtualFree(p, 0, MEM_RELEASE);
        m->addr = NULL;
        return e;
    }
    m->placeholder = 1;
    return 0;
}

int dv__map_file(dv__osfile_t f, uint64_t size, dv__filemap_t *m) {
    memset(m, 0, sizeof(*m));
    if (size == 0 || size > (uint64_t)SIZE_MAX) {
        return (int)ERROR_INVALID_PARAMETER;
    }
    dv__once(&win_api_once, win_api_load);
    HANDLE s = CreateFileMappingW((HANDLE)f.h, NULL, PAGE_READONLY,
                                  (DWORD)(size >> 32), (DWORD)size, NULL);
    if (!s) {
        return win_err();
    }
    m->section = (intptr_t)s;
    m->size = size;
    m->span = round_page(size);
    if (win_api.virtual_alloc2 && win_api.map_view3 && win_api.unmap_view2 &&
        map_placeholder(m) == 0) {
        return 0;
    }
    /* No placeholders here: an ordinary view. */
    void *p = MapViewOfFile(s, FILE_MAP_READ, 0, 0, (SIZE_T)size);
    if (!p) {
        int e = win_err();
        CloseHandle(s);
        memset(m, 0, sizeof(*m));
        return e;
    }
    m->addr = p;
    return 0;
}

int dv__map_bounce(dv__filemap_t *m) {
    if (!m->addr) {
        return 0;
    }
    if (!m->placeholder) {
        /* Pages that are not locked leave the working set; the call then
         * reports ERROR_NOT_LOCKED, which is the expected outcome. */
        if (!VirtualUnlock(m->addr, (SIZE_T)m->span) &&
            GetLastError() != ERROR_NOT_LOCKED) {
            return win_err();
        }
        return 0;
    }
    if (!win_api.unmap_view2(GetCurrentProcess(), m->addr,
                             WIN_MEM_PRESERVE_PLACEHOLDER)) {
        return win_err();
    }
    /* The placeholder keeps the range ours: mapping again can only fail
     * for lack of resources, and a later bounce retries it. */
    return view_into_placeholder(m);
}

void dv__map_close(dv__filemap_t *m) {
    if (m->addr) {
        if (m->placeholder) {
            /* Whole view back to a placeholder (fails harmlessly if a
             * failed bounce left only the placeholder), then release. */
            win_api.unmap_view2(GetCurrentProcess(), m->addr,
                                WIN_MEM_PRESERVE_PLACEHOLDER);
            VirtualFree(m->addr, 0, MEM_RELEASE);
        } else {
            UnmapViewOfFile(m->addr);
        }
    }
    if (m->section) {
        CloseHandle((HANDLE)m->section);
    }
    memset(m, 0, sizeof(*m));
}
