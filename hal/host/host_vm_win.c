/*
 * host_vm_win.c - host_vm.h on Windows: pagefile-backed sections mapped
 * into placeholder reservations.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 *   reserve    VirtualAlloc2(MEM_RESERVE | MEM_RESERVE_PLACEHOLDER): one
 *              placeholder covering the whole range, no memory.
 *   create     CreateFileMapping(pagefile, SEC_COMMIT) of `size` bytes.
 *   map        split the placeholder around [va, va + size) (VirtualFree
 *              MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER) and replace that
 *              piece with a view (MapViewOfFile3 MEM_REPLACE_PLACEHOLDER).
 *   unmap      UnmapViewOfFile2(MEM_PRESERVE_PLACEHOLDER) turns each view
 *              back into a placeholder; neighbouring placeholders are then
 *              coalesced so a reservation returns to few pieces.
 *   unreserve  unmap what is left, coalesce, VirtualFree(MEM_RELEASE).
 *
 * Windows will not tell which pieces of a reservation are placeholders
 * (VirtualQuery does not distinguish them), and splitting or replacing must
 * name a placeholder exactly, so each reservation keeps its own sorted list
 * of pieces. The list is changed only after the system call that changes
 * the real layout succeeded, so it never disagrees with the system.
 *
 * VirtualAlloc2, MapViewOfFile3 and UnmapViewOfFile2 exist from Windows 10
 * 1803 (kernelbase.dll). They are resolved at run time so that dynvram.dll
 * loads on older systems; there, and wherever placeholders do not work (a
 * trial reservation checks it, Wine 8 fails it), `available` says why.
 */
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/native.h"
#include "base/os.h"
#include "host_vm.h"

/* Placeholder flags (winnt.h of the 10.0.17134 SDK); older headers lack
 * them, and their values are ABI. */
#define HOST_MEM_RESERVE_PLACEHOLDER 0x00040000u
#define HOST_MEM_REPLACE_PLACEHOLDER 0x00004000u
#define HOST_MEM_PRESERVE_PLACEHOLDER 0x00000002u
#define HOST_MEM_COALESCE_PLACEHOLDERS 0x00000001u


/* The extended-parameter arrays are never used: void * stands for
 * MEM_EXTENDED_PARAMETER * so no new SDK header is needed. */
typedef PVOID(WINAPI *host_virtual_alloc2_fn)(HANDLE process, PVOID base,
                                              SIZE_T size, ULONG type,
                                              ULONG protect, void *ext,
                                              ULONG ext_count);
typedef PVOID(WINAPI *host_map_view3_fn)(HANDLE section, HANDLE process,
                                         PVOID base, ULONG64 offset,
                                         SIZE_T size, ULONG type,
                                         ULONG protect, void *ext,
                                         ULONG ext_count);
typedef BOOL(WINAPI *host_unmap_view2_fn)(HANDLE process, PVOID base,
                                          ULONG flags);

static struct {
    host_virtual_alloc2_fn virtual_alloc2;
    host_map_view3_fn map_view3;
    host_unmap_view2_fn unmap_view2;
    uint64_t granularity; /* dwAllocationGranularity */
    int available;
    char reason[256];
} host_api;
static dv__once_t host_api_once = DV__ONCE_INIT;

/* ---- native errors ------------------------------------------------------ */

/* A failed Win32 call: GetLastError() is the native code, with the
 * system's text; returns r. */
static dv_result_t win_fail(dv_result_t r, const char *what) {
    DWORD code = GetLastError();
    char sys[200];
    DWORD n = FormatMessageA(
        FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL,
        code, 0, sys, (DWORD)sizeof(sys), NULL);
    while (n > 0 && (sys[n - 1] == '\r' || sys[n - 1] == '\n' ||
                     sys[n - 1] == ' ' || sys[n - 1] == '.')) {
        n--;
    }
    sys[n] = '\0';
    return dv__native_fail(r, (int64_t)code, "%s: %s", what,
                           n ? sys : "unknown error");
}

/* Out of memory as the memory manager reports it. */
static int host_is_oom(DWORD code) {
    return code == ERROR_NOT_ENOUGH_MEMORY || code == ERROR_OUTOFMEMORY ||
           code == ERROR_COMMITMENT_LIMIT;
}

/* ---- run-time API resolution --------------------------------------------- */

static FARPROC host_sym(HMODULE mod, const char *name) {
    FARPROC p = mod ? GetProcAddress(mod, name) : NULL;
    if (!p && !host_api.reason[0]) {
        snprintf(host_api.reason, sizeof(host_api.reason),
                 "kernelbase.dll has no %s (needs Windows 10 1803 or later)",
                 name);
    }
    return p;
}

/* Reserve two granules as one placeholder, split, coalesce, release: the
 * sequence every VBAR goes through. Some systems export the functions but
 * refuse placeholders (Wine 8 answers ERROR_INVALID_PARAMETER). */
static int host_trial_placeholders(void) {
    SIZE_T g = (SIZE_T)host_api.granularity;
    char *p = host_api.virtual_alloc2(
        NULL, NULL, 2 * g, MEM_RESERVE | HOST_MEM_RESERVE_PLACEHOLDER,
        PAGE_NOACCESS, NULL, 0);
    const char *step = "VirtualAlloc2(MEM_RESERVE_PLACEHOLDER)";
    if (!p) {
        goto fail;
    }
    step = "VirtualFree(MEM_PRESERVE_PLACEHOLDER)";
    if (!VirtualFree(p, g, MEM_RELEASE | HOST_MEM_PRESERVE_PLACEHOLDER)) {
        goto fail_release;
    }
    step = "VirtualFree(MEM_COALESCE_PLACEHOLDERS)";
    if (!VirtualFree(p, 2 * g, MEM_RELEASE | HOST_MEM_COALESCE_PLACEHOLDERS)) {
        VirtualFree(p + g, 0, MEM_RELEASE);
        goto fail_release;
    }
    VirtualFree(p, 0, MEM_RELEASE);
    return 1;

fail_release:
    win_fail(DV_ERROR_BACKEND, step);
    VirtualFree(p, 0, MEM_RELEASE);
    goto report;
fail:
    win_fail(DV_ERROR_BACKEND, step);
report:;
    char text[256];
    dv__native_get(NULL, text, sizeof(text));
    snprintf(host_api.reason, sizeof(host_api.reason),
             "placeholder reservations do not work here (%.200s)", text);
    return 0;
}

static void host_api_load(void) {
    SYSTEM_INFO si;
    GetSystemInfo(&si);
    host_api.granularity = si.dwAllocationGranularity;
    if (host_api.granularity == 0 ||
        (host_api.granularity & (host_api.granularity - 1)) != 0) {
        host_api.granularity = 64u << 10;
    }
    /* kernelbase.dll is loaded in every process from Windows 7 on. */
    HMODULE kb = GetModuleHandleW(L"kernelbase.dll");
    if (!kb) {
        win_fail(DV_ERROR_BACKEND, "GetModuleHandle(kernelbase.dll)");
        dv__native_get(NULL, host_api.reason, sizeof(host_api.reason));
        return;
    }
    /* Through void (*)(void), the one function type any other converts
     * to without a warning. */
    host_api.virtual_alloc2 = (host_virtual_alloc2_fn)(void (*)(void))host_sym(
        kb, "VirtualAlloc2");
    host_api.map_view3 =
        (host_map_view3_fn)(void (*)(void))host_sym(kb, "MapViewOfFile3");
    host_api.unmap_view2 =
        (host_unmap_view2_fn)(void (*)(void))host_sym(kb, "UnmapViewOfFile2");
    if (!host_api.virtual_alloc2 || !host_api.map_view3 ||
        !host_api.unmap_view2) {
        return;
    }
    host_api.available = host_trial_placeholders();
}

static dv_result_t win_available(char *why, size_t len) {
    dv__once(&host_api_once, host_api_load);
    if (!host_api.available) {
        if (why && len) {
            snprintf(why, len, "%s", host_api.reason);
        }
        return DV_ERROR_BACKEND_UNAVAILABLE;
    }
    return DV_OK;
}

static uint64_t win_granularity(void) {
    dv__once(&host_api_once, host_api_load);
    return host_api.granularity;
}

/* ---- per-device state ------------------------------------------------------ */

/* A "physical" allocation: a pagefile-backed section. */
struct dv__host_vm_mem {
    HANDLE section;
    uint64_t size;
    uint32_t views; /* live views of it */
};
typedef struct dv__host_vm_mem host_mem_t;

/* A piece of a reservation: a placeholder (mem == NULL) or a view of mem. */
typedef struct host_piece {
    uint64_t off;
    uint64_t size;
    host_mem_t *mem;
} host_piece_t;

typedef struct host_resv {
    uint64_t base;
    uint64_t size;
    host_piece_t *pieces; /* sorted by off, contiguous, covering [0, size) */
    uint32_t count;
    uint32_t cap;
} host_resv_t;

struct dv__host_vm {
    host_resv_t *resv;
    uint32_t resv_count;
    uint32_t resv_cap;
};

/* ---- reservation pieces ---------------------------------------------------- */

/* The reservation holding all of [va, va + size), or NULL. */
static host_resv_t *host_resv_find(dv__host_vm_t *ctx, uint64_t va,
                                   uint64_t size) {
    for (uint32_t i = 0; i < ctx->resv_count; i++) {
        host_resv_t *r = &ctx->resv[i];
        if (va >= r->base && va - r->base < r->size &&
            size <= r->size - (va - r->base)) {
            return r;
        }
    }
    return NULL;
}

/* Index of the piece that holds offset `off` (< r->size). */
static uint32_t host_piece_at(const host_resv_t *r, uint64_t off) {
    uint32_t lo = 0, hi = r->count - 1;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo + 1) / 2;
        if (r->pieces[mid].off <= off) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    return lo;
}

/* Room for `extra` more pieces, allocated before any system call so a
 * split never has to be undone for lack of memory. */
static int host_pieces_grow(host_resv_t *r, uint32_t extra) {
    if (r->count + extra <= r->cap) {
        return 0;
    }
    uint32_t cap = r->cap ? r->cap * 2 : 4;
    while (cap < r->count + extra) {
        cap *= 2;
    }
    host_piece_t *p = realloc(r->pieces, cap * sizeof(*p));
    if (!p) {
        return -1;
    }
    r->pieces = p;
    r->cap = cap;
    return 0;
}

/* Split piece i (a placeholder) at offset `at` inside it: i keeps the
 * lower part, a new piece i + 1 the upper. Needs one free slot. */
static dv_result_t host_split(host_resv_t *r, uint32_t i, uint64_t at) {
    host_piece_t *p = &r->pieces[i];
    uint64_t low = at - p->off;
    if (!VirtualFree((void *)(uintptr_t)(r->base + p->off), (SIZE_T)low,
                     MEM_RELEASE | HOST_MEM_PRESERVE_PLACEHOLDER)) {
        return win_fail(DV_ERROR_BACKEND,
                                "VirtualFree(MEM_PRESERVE_PLACEHOLDER)");
    }
    memmove(&r->pieces[i + 2], &r->pieces[i + 1],
            (r->count - i - 1) * sizeof(*p));
    r->pieces[i + 1] = (host_piece_t){at, p->off + p->size - at, NULL};
    p->size = low;
    r->count++;
    return DV_OK;
}

/* Merge the run of placeholders around piece i into one. Best effort: on
 * failure the pieces stay split, which the list still describes, and
 * unreserve releases them one by one. */
static void host_coalesce(host_resv_t *r, uint32_t i) {
    uint32_t lo = i, hi = i;
    if (r->pieces[i].mem) {
        return;
    }
    while (lo > 0 && !r->pieces[lo - 1].mem) {
        lo--;
    }
    while (hi + 1 < r->count && !r->pieces[hi + 1].mem) {
        hi++;
    }
    if (lo == hi) {
        return;
    }
    uint64_t off = r->pieces[lo].off;
    uint64_t end = r->pieces[hi].off + r->pieces[hi].size;
    if (!VirtualFree((void *)(uintptr_t)(r->base + off), (SIZE_T)(end - off),
                     MEM_RELEASE | HOST_MEM_COALESCE_PLACEHOLDERS)) {
        dv__log(DV_LOG_DEBUG,
                "host: coalescing placeholders at 0x%llx failed (Win32 error "
                "%lu); left split",
                (unsigned long long)(r->base + off),
                (unsigned long)GetLastError());
        return;
    }
    r->pieces[lo].size = end - off;
    memmove(&r->pieces[lo + 1], &r->pieces[hi + 1],
            (r->count - hi - 1) * sizeof(host_piece_t));
    r->count -= hi - lo;
}

/* Turn view piece i back into a placeholder. */
static dv_result_t host_unmap_piece(host_resv_t *r, uint32_t i) {
    host_piece_t *p = &r->pieces[i];
    if (!host_api.unmap_view2(GetCurrentProcess(),
                              (void *)(uintptr_t)(r->base + p->off),
                              HOST_MEM_PRESERVE_PLACEHOLDER)) {
        return win_fail(DV_ERROR_BACKEND,
                                "UnmapViewOfFile2(MEM_PRESERVE_PLACEHOLDER)");
    }
    p->mem->views--;
    p->mem = NULL;
    return DV_OK;
}

/* Unmap every view of r and release its placeholders. On failure r is
 * still tracked and describes what is left. */
static dv_result_t host_resv_release(host_resv_t *r) {
    for (uint32_t i = 0; i < r->count; i++) {
        if (r->pieces[i].mem) {
            dv_result_t res = host_unmap_piece(r, i);
            if (res != DV_OK) {
                return res;
            }
        }
    }
    host_coalesce(r, 0);
    /* Normally one piece is left; if coalescing failed each placeholder
     * is its own allocation and is released on its own. */
    while (r->count > 0) {
        host_piece_t *p = &r->pieces[r->count - 1];
        if (!VirtualFree((void *)(uintptr_t)(r->base + p->off), 0,
                         MEM_RELEASE)) {
            return win_fail(DV_ERROR_BACKEND,
                                    "VirtualFree(MEM_RELEASE)");
        }
        r->count--;
    }
    free(r->pieces);
    r->pieces = NULL;
    r->cap = 0;
    return DV_OK;
}

/* ---- ops --------------------------------------------------------------------- */

static dv_result_t win_open(dv__host_vm_t **vm) {
    *vm = calloc(1, sizeof(**vm));
    return *vm ? DV_OK
               : dv__native_fail(DV_ERROR_OUT_OF_HOST_MEMORY, 0,
                                 "host init: calloc");
}

/* The core destroys its VBARs first; whatever a misbehaving caller left is
 * given back here so nothing leaks. */
static void win_close(dv__host_vm_t *c) {
    if (!c) {
        return;
    }
    for (uint32_t i = 0; i < c->resv_count; i++) {
        if (host_resv_release(&c->resv[i]) != DV_OK) {
            dv__log(DV_LOG_WARNING, "host: leaking reservation 0x%llx",
                    (unsigned long long)c->resv[i].base);
        }
    }
    free(c->resv);
    free(c);
}

static dv_result_t win_reserve(dv__host_vm_t *c, uint64_t size, uint64_t *va) {
    if (size > (uint64_t)SIZE_MAX) {
        return dv__native_fail(DV_ERROR_ADDRESS_SPACE, 0,
                               "host reserve: %llu bytes", (unsigned long long)size);
    }
    if (c->resv_count == c->resv_cap) {
        uint32_t cap = c->resv_cap ? c->resv_cap * 2 : 8;
        host_resv_t *p = realloc(c->resv, cap * sizeof(*p));
        if (!p) {
            return dv__native_fail(DV_ERROR_OUT_OF_HOST_MEMORY, 0,
                                   "host reserve: reservation table");
        }
        c->resv = p;
        c->resv_cap = cap;
    }
    host_resv_t r = {0};
    if (host_pieces_grow(&r, 1) != 0) {
        return dv__native_fail(DV_ERROR_OUT_OF_HOST_MEMORY, 0,
                               "host reserve: piece table");
    }
    void *p = host_api.virtual_alloc2(
        NULL, NULL, (SIZE_T)size, MEM_RESERVE | HOST_MEM_RESERVE_PLACEHOLDER,
        PAGE_NOACCESS, NULL, 0);
    if (!p) {
        free(r.pieces);
        return win_fail(DV_ERROR_ADDRESS_SPACE,
                        "VirtualAlloc2(MEM_RESERVE_PLACEHOLDER)");
    }
    r.base = (uint64_t)(uintptr_t)p;
    r.size = size;
    r.pieces[0] = (host_piece_t){0, size, NULL};
    r.count = 1;
    c->resv[c->resv_count++] = r;
    *va = r.base;
    return DV_OK;
}

static dv_result_t win_unreserve(dv__host_vm_t *c, uint64_t va,
                                 uint64_t size) {
    uint32_t i = 0;
    while (i < c->resv_count &&
           !(c->resv[i].base == va && c->resv[i].size == size)) {
        i++;
    }
    if (i == c->resv_count) {
        return dv__native_fail(DV_ERROR_INVALID_ARGUMENT, 0,
                               "host unreserve: 0x%llx +%llu is not a "
                               "reservation",
                               (unsigned long long)va,
                               (unsigned long long)size);
    }
    dv_result_t r = host_resv_release(&c->resv[i]);
    if (r != DV_OK) {
        return r;
    }
    c->resv[i] = c->resv[--c->resv_count];
    return DV_OK;
}

static dv_result_t win_create(dv__host_vm_t *c, uint64_t size,
                              dv__host_vm_mem_t **mem) {
    dv__host_vm_mem_t *m = calloc(1, sizeof(*m));
    if (!m) {
        return dv__native_fail(DV_ERROR_OUT_OF_HOST_MEMORY, 0,
                               "host create: calloc");
    }
    /* SEC_COMMIT charges the whole section to the commit limit now, like
     * device memory that is really allocated at create. */
    m->section = CreateFileMappingW(INVALID_HANDLE_VALUE, NULL,
                                    PAGE_READWRITE | SEC_COMMIT,
                                    (DWORD)(size >> 32), (DWORD)size, NULL);
    if (!m->section) {
        /* The commit limit is host memory, as ftruncate's ENOMEM on POSIX:
         * the simulated device's own limit is host.c's capacity. */
        dv_result_t r = win_fail(host_is_oom(GetLastError())
                                     ? DV_ERROR_OUT_OF_HOST_MEMORY
                                     : DV_ERROR_BACKEND,
                                 "CreateFileMapping(SEC_COMMIT)");
        free(m);
        return r;
    }
    m->size = size;
    *mem = m;
    return DV_OK;
}

/* host.c never releases a mapped allocation; the piece lists point at m. */
static void win_release(dv__host_vm_t *c, dv__host_vm_mem_t *m) {
    CloseHandle(m->section);
    free(m);
}

static dv_result_t win_map(dv__host_vm_t *c, uint64_t va, uint64_t size,
                           dv__host_vm_mem_t *m) {
    host_resv_t *r = host_resv_find(c, va, size);
    uint64_t off = r ? va - r->base : 0;
    uint32_t i = r ? host_piece_at(r, off) : 0;
    if (!r || r->pieces[i].mem ||
        off + size > r->pieces[i].off + r->pieces[i].size) {
        return dv__native_fail(DV_ERROR_INVALID_ARGUMENT, 0,
                               "host map: 0x%llx +%llu is not free reserved "
                               "space",
                               (unsigned long long)va,
                               (unsigned long long)size);
    }
    if (host_pieces_grow(r, 2) != 0) {
        return dv__native_fail(DV_ERROR_OUT_OF_HOST_MEMORY, 0,
                               "host map: piece table");
    }
    dv_result_t res = DV_OK;
    if (r->pieces[i].off < off) {
        res = host_split(r, i, off);
        if (res != DV_OK) {
            goto undo;
        }
        i++;
    }
    if (off + size < r->pieces[i].off + r->pieces[i].size) {
        res = host_split(r, i, off + size);
        if (res != DV_OK) {
            goto undo;
        }
    }
    void *v = host_api.map_view3(m->section, GetCurrentProcess(),
                                 (void *)(uintptr_t)va, 0, (SIZE_T)size,
                                 HOST_MEM_REPLACE_PLACEHOLDER, PAGE_READWRITE,
                                 NULL, 0);
    if (!v) {
        res = win_fail(host_is_oom(GetLastError())
                                   ? DV_ERROR_OUT_OF_HOST_MEMORY
                                   : DV_ERROR_BACKEND,
                               "MapViewOfFile3(MEM_REPLACE_PLACEHOLDER)");
        goto undo;
    }
    r->pieces[i].mem = m;
    m->views++;
    return DV_OK;

undo:
    /* Put the placeholder back in one piece: a failed map leaves the
     * reservation as it found it (or, if even that fails, still whole and
     * correctly described). */
    host_coalesce(r, i);
    return res;
}

static dv_result_t win_unmap(dv__host_vm_t *c, uint64_t va, uint64_t size) {
    host_resv_t *r = size ? host_resv_find(c, va, size) : NULL;
    if (!r) {
        return dv__native_fail(DV_ERROR_INVALID_ARGUMENT, 0,
                               "host unmap: 0x%llx +%llu is not reserved "
                               "space",
                               (unsigned long long)va,
                               (unsigned long long)size);
    }
    uint64_t off = va - r->base, end = off + size;
    uint32_t first = host_piece_at(r, off), last = host_piece_at(r, end - 1);
    /* A view is unmapped whole or not at all: check before touching any. */
    for (uint32_t i = first; i <= last; i++) {
        const host_piece_t *p = &r->pieces[i];
        if (p->mem && (p->off < off || p->off + p->size > end)) {
            return dv__native_fail(DV_ERROR_INVALID_ARGUMENT, 0,
                                   "host unmap: 0x%llx +%llu cuts a mapping",
                                   (unsigned long long)va,
                                   (unsigned long long)size);
        }
    }
    dv_result_t res = DV_OK;
    for (uint32_t i = first; i <= last && res == DV_OK; i++) {
        if (r->pieces[i].mem) {
            res = host_unmap_piece(r, i);
        }
    }
    host_coalesce(r, first);
    return res;
}

const dv__host_vm_ops_t dv__host_vm_ops = {
    .available = win_available,
    .granularity = win_granularity,
    .open = win_open,
    .close = win_close,
    .reserve = win_reserve,
    .unreserve = win_unreserve,
    .create = win_create,
    .release = win_release,
    .map = win_map,
    .unmap = win_unmap,
};
