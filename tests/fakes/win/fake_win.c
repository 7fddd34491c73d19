/*
 * fake_win.c - a strict fake of the Win32 memory manager calls host_vm_win.c
 * makes, on Linux mmap and memfd, for tests only.
 *
 * Regions are placeholders or views, one table entry each, like Windows'
 * VADs. The rules enforced are those Windows documents for placeholders,
 * read narrowly (a backend that passes here does only what is surely
 * allowed there):
 *   - VirtualAlloc2(MEM_RESERVE | MEM_RESERVE_PLACEHOLDER, PAGE_NOACCESS)
 *     creates one placeholder, 64 KiB aligned;
 *   - VirtualFree(p, n, MEM_RELEASE | MEM_PRESERVE_PLACEHOLDER) splits a
 *     placeholder that starts at p into [p, p + n) and the rest: 0 < n <
 *     its size, n a multiple of 64 KiB;
 *   - VirtualFree(p, n, MEM_RELEASE | MEM_COALESCE_PLACEHOLDERS) merges two
 *     or more adjacent placeholders of one reservation covering exactly
 *     [p, p + n);
 *   - VirtualFree(p, 0, MEM_RELEASE) frees the placeholder starting at p;
 *   - MapViewOfFile3(MEM_REPLACE_PLACEHOLDER, PAGE_READWRITE) replaces a
 *     placeholder of exactly the view's size;
 *   - UnmapViewOfFile2(MEM_PRESERVE_PLACEHOLDER) turns a view back into a
 *     placeholder;
 *   - a section lives while its handle or a view of it does, and its size
 *     counts against the commit limit meanwhile.
 * Everything else fails with ERROR_INVALID_PARAMETER. Not thread-safe: the
 * tests drive it from one thread.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <windows.h>

#include "fake_win.h"

#define FW_MAX 8192
#define FW_RESERVE_PLACEHOLDER 0x00040000u
#define FW_REPLACE_PLACEHOLDER 0x00004000u
#define FW_PRESERVE_PLACEHOLDER 0x00000002u
#define FW_COALESCE_PLACEHOLDERS 0x00000001u
#define FW_SECTION_MAGIC 0x46575345u

typedef struct fw_section {
    uint32_t magic;
    int fd;
    uint64_t size;
    int refs;        /* the handle (while open) + views */
    int handle_open;
} fw_section_t;

typedef struct fw_region {
    uintptr_t base;
    uintptr_t size;
    int resv; /* reservation it came from */
    fw_section_t *sec; /* NULL: placeholder */
} fw_region_t;

static fw_region_t fw_regs[FW_MAX];
static int fw_nregs;
static int fw_next_resv;
static int fw_live_sections;
static uint64_t fw_commit_used, fw_commit_max;
static int fw_placeholders_ok = 1;
static char fw_hidden[64];
static char fw_fail_fn[32];
static int fw_fail_nth;
static DWORD fw_fail_code;
static _Thread_local DWORD fw_last_error;

static const char *const fw_names[] = {
    "VirtualAlloc2",        "MapViewOfFile3",      "UnmapViewOfFile2",
    "VirtualFree.split",    "VirtualFree.coalesce", "VirtualFree.release",
    "CreateFileMappingW",
};
#define FW_NAMES ((int)(sizeof(fw_names) / sizeof(fw_names[0])))
static int fw_counts[FW_NAMES];

/* Count a call of fn; 1 if an armed failure fires on it. */
static int fw_enter(const char *fn) {
    for (int i = 0; i < FW_NAMES; i++) {
        if (strcmp(fw_names[i], fn) == 0) {
            fw_counts[i]++;
        }
    }
    if (fw_fail_nth > 0 && strcmp(fn, fw_fail_fn) == 0 && --fw_fail_nth == 0) {
        fw_last_error = fw_fail_code;
        return 1;
    }
    return 0;
}

static BOOL fw_bad(void) {
    fw_last_error = ERROR_INVALID_PARAMETER;
    return FALSE;
}

static int fw_find(uintptr_t base) {
    for (int i = 0; i < fw_nregs; i++) {
        if (fw_regs[i].base == base) {
            return i;
        }
    }
    return -1;
}

static void fw_insert(int at, fw_region_t r) {
    memmove(&fw_regs[at + 1], &fw_regs[at], (size_t)(fw_nregs - at) * sizeof(r));
    fw_regs[at] = r;
    fw_nregs++;
}

static void fw_remove(int at, int n) {
    memmove(&fw_regs[at], &fw_regs[at + n],
            (size_t)(fw_nregs - at - n) * sizeof(fw_region_t));
    fw_nregs -= n;
}

static void fw_unref(fw_section_t *s) {
    if (--s->refs == 0) {
        close(s->fd);
        fw_commit_used -= s->size;
        fw_live_sections--;
        s->magic = 0;
        free(s);
    }
}

static int fw_granule_ok(uintptr_t v) { return v % FW_GRANULE == 0; }

static int fw_is_process(HANDLE p) {
    return p == NULL || p == GetCurrentProcess();
}

/* ---- the kernelbase exports ---- */

static PVOID WINAPI fw_VirtualAlloc2(HANDLE process, PVOID base, SIZE_T size,
                                     ULONG type, ULONG protect, void *ext,
                                     ULONG ext_count) {
    if (fw_enter("VirtualAlloc2")) {
        return NULL;
    }
    if (!fw_is_process(process) || base || ext || ext_count ||
        type != (MEM_RESERVE | FW_RESERVE_PLACEHOLDER) || !fw_placeholders_ok ||
        protect != PAGE_NOACCESS || size == 0 || !fw_granule_ok(size) ||
        fw_nregs == FW_MAX) {
        fw_bad();
        return NULL;
    }
    /* Over-reserve to place it on a 64 KiB boundary, as Windows does. */
    char *p = mmap(NULL, size + FW_GRANULE, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        fw_last_error = ERROR_NOT_ENOUGH_MEMORY;
        return NULL;
    }
    uintptr_t b = ((uintptr_t)p + FW_GRANULE - 1) & ~(uintptr_t)(FW_GRANULE - 1);
    if (b > (uintptr_t)p) {
        munmap(p, b - (uintptr_t)p);
    }
    munmap((void *)(b + size), (uintptr_t)p + size + FW_GRANULE - (b + size));
    int at = 0;
    while (at < fw_nregs && fw_regs[at].base < b) {
        at++;
    }
    fw_insert(at, (fw_region_t){b, size, ++fw_next_resv, NULL});
    return (PVOID)b;
}

static PVOID WINAPI fw_MapViewOfFile3(HANDLE section, HANDLE process,
                                      PVOID base, ULONG64 offset, SIZE_T size,
                                      ULONG type, ULONG protect, void *ext,
                                      ULONG ext_count) {
    if (fw_enter("MapViewOfFile3")) {
        return NULL;
    }
    fw_section_t *s = section;
    int i = fw_find((uintptr_t)base);
    if (!s || s->magic != FW_SECTION_MAGIC || !fw_is_process(process) ||
        offset != 0 || type != FW_REPLACE_PLACEHOLDER ||
        protect != PAGE_READWRITE || ext || ext_count || i < 0 ||
        fw_regs[i].sec || fw_regs[i].size != size || size > s->size) {
        fw_bad();
        return NULL;
    }
    if (mmap(base, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, s->fd,
             0) == MAP_FAILED) {
        fw_last_error = ERROR_NOT_ENOUGH_MEMORY;
        return NULL;
    }
    fw_regs[i].sec = s;
    s->refs++;
    return base;
}

static BOOL WINAPI fw_UnmapViewOfFile2(HANDLE process, PVOID base,
                                       ULONG flags) {
    if (fw_enter("UnmapViewOfFile2")) {
        return FALSE;
    }
    int i = fw_find((uintptr_t)base);
    if (!fw_is_process(process) || flags != FW_PRESERVE_PLACEHOLDER || i < 0 ||
        !fw_regs[i].sec) {
        return fw_bad();
    }
    if (mmap(base, fw_regs[i].size, PROT_NONE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1,
             0) == MAP_FAILED) {
        fw_last_error = ERROR_NOT_ENOUGH_MEMORY;
        return FALSE;
    }
    fw_unref(fw_regs[i].sec);
    fw_regs[i].sec = NULL;
    return TRUE;
}

BOOL VirtualFree(PVOID addr, SIZE_T size, DWORD type) {
    int i = fw_find((uintptr_t)addr);
    if (type == (MEM_RELEASE | FW_PRESERVE_PLACEHOLDER)) {
        if (fw_enter("VirtualFree.split")) {
            return FALSE;
        }
        if (i < 0 || fw_regs[i].sec || size == 0 || size >= fw_regs[i].size ||
            !fw_granule_ok(size) || fw_nregs == FW_MAX) {
            return fw_bad();
        }
        fw_region_t r = fw_regs[i];
        fw_regs[i].size = size;
        fw_insert(i + 1, (fw_region_t){r.base + size, r.size - size, r.resv,
                                       NULL});
        return TRUE;
    }
    if (type == (MEM_RELEASE | FW_COALESCE_PLACEHOLDERS)) {
        if (fw_enter("VirtualFree.coalesce")) {
            return FALSE;
        }
        if (i < 0 || fw_regs[i].sec) {
            return fw_bad();
        }
        uintptr_t end = fw_regs[i].base + fw_regs[i].size;
        int j = i;
        while (end < (uintptr_t)addr + size && j + 1 < fw_nregs &&
               fw_regs[j + 1].base == end && !fw_regs[j + 1].sec &&
               fw_regs[j + 1].resv == fw_regs[i].resv) {
            j++;
            end += fw_regs[j].size;
        }
        if (j == i || end != (uintptr_t)addr + size) {
            return fw_bad();
        }
        fw_regs[i].size = end - fw_regs[i].base;
        fw_remove(i + 1, j - i);
        return TRUE;
    }
    if (type == MEM_RELEASE) {
        if (fw_enter("VirtualFree.release")) {
            return FALSE;
        }
        if (i < 0 || fw_regs[i].sec || size != 0) {
            return fw_bad();
        }
        munmap(addr, fw_regs[i].size);
        fw_remove(i, 1);
        return TRUE;
    }
    return fw_bad();
}

HANDLE CreateFileMappingW(HANDLE file, void *attrs, DWORD protect,
                          DWORD size_high, DWORD size_low, LPCWSTR name) {
    if (fw_enter("CreateFileMappingW")) {
        return NULL;
    }
    uint64_t size = ((uint64_t)size_high << 32) | size_low;
    if (file != INVALID_HANDLE_VALUE || attrs || name || size == 0 ||
        protect != (PAGE_READWRITE | SEC_COMMIT)) {
        fw_bad();
        return NULL;
    }
    if (fw_commit_max && fw_commit_used + size > fw_commit_max) {
        fw_last_error = ERROR_COMMITMENT_LIMIT;
        return NULL;
    }
    fw_section_t *s = calloc(1, sizeof(*s));
    if (!s) {
        fw_last_error = ERROR_NOT_ENOUGH_MEMORY;
        return NULL;
    }
    s->fd = memfd_create("fakewin-section", MFD_CLOEXEC);
    if (s->fd < 0 || ftruncate(s->fd, (off_t)size) != 0) {
        if (s->fd >= 0) {
            close(s->fd);
        }
        free(s);
        fw_last_error = ERROR_NOT_ENOUGH_MEMORY;
        return NULL;
    }
    s->magic = FW_SECTION_MAGIC;
    s->size = size;
    s->refs = 1;
    s->handle_open = 1;
    fw_commit_used += size;
    fw_live_sections++;
    return s;
}

BOOL CloseHandle(HANDLE h) {
    fw_section_t *s = h;
    if (!s || s->magic != FW_SECTION_MAGIC || !s->handle_open) {
        fw_last_error = 6; /* ERROR_INVALID_HANDLE */
        return FALSE;
    }
    s->handle_open = 0;
    fw_unref(s);
    return TRUE;
}

/* ---- the rest of the slice ---- */

DWORD GetLastError(void) { return fw_last_error; }
void SetLastError(DWORD code) { fw_last_error = code; }

DWORD FormatMessageA(DWORD flags, const void *source, DWORD code, DWORD lang,
                     char *buf, DWORD size, void *args) {
    int n = snprintf(buf, size, "fake Win32 error %u.\r\n", (unsigned)code);
    return n > 0 && (DWORD)n < size ? (DWORD)n : 0;
}

void GetSystemInfo(SYSTEM_INFO *si) {
    si->dwPageSize = 4096;
    si->dwAllocationGranularity = FW_GRANULE;
}

HANDLE GetCurrentProcess(void) { return (HANDLE)(intptr_t)-1; }

static int fw_module;

HMODULE GetModuleHandleW(LPCWSTR name) {
    if (name && wcscmp(name, L"kernelbase.dll") == 0) {
        return &fw_module;
    }
    fw_last_error = 126; /* ERROR_MOD_NOT_FOUND */
    return NULL;
}

FARPROC GetProcAddress(HMODULE mod, const char *name) {
    FARPROC p = NULL;
    if (mod == &fw_module && strcmp(name, fw_hidden) != 0) {
        if (strcmp(name, "VirtualAlloc2") == 0) {
            p = (FARPROC)fw_VirtualAlloc2;
        } else if (strcmp(name, "MapViewOfFile3") == 0) {
            p = (FARPROC)fw_MapViewOfFile3;
        } else if (strcmp(name, "UnmapViewOfFile2") == 0) {
            p = (FARPROC)fw_UnmapViewOfFile2;
        }
    }
    if (!p) {
        fw_last_error = 127; /* ERROR_PROC_NOT_FOUND */
    }
    return p;
}

/* ---- controls ---- */

int fw_regions(void) { return fw_nregs; }

int fw_placeholders(void) {
    int n = 0;
    for (int i = 0; i < fw_nregs; i++) {
        n += fw_regs[i].sec == NULL;
    }
    return n;
}

int fw_views(void) { return fw_nregs - fw_placeholders(); }

int fw_sections(void) { return fw_live_sections; }

int fw_check(void) {
    for (int i = 0; i < fw_nregs; i++) {
        const fw_region_t *r = &fw_regs[i];
        if (!fw_granule_ok(r->base) || !fw_granule_ok(r->size) || !r->size) {
            return -1;
        }
        if (i > 0 && fw_regs[i - 1].base + fw_regs[i - 1].size > r->base) {
            return -2;
        }
        if (r->sec && (r->sec->magic != FW_SECTION_MAGIC || r->sec->refs < 1)) {
            return -3;
        }
    }
    return 0;
}

void fw_fail(const char *fn, int nth, uint32_t code) {
    snprintf(fw_fail_fn, sizeof(fw_fail_fn), "%s", fn);
    fw_fail_nth = nth;
    fw_fail_code = code;
}

void fw_no_placeholders(void) { fw_placeholders_ok = 0; }

void fw_hide_export(const char *name) {
    snprintf(fw_hidden, sizeof(fw_hidden), "%s", name);
}

void fw_commit_limit(uint64_t bytes) { fw_commit_max = bytes; }

int fw_calls(const char *fn) {
    for (int i = 0; i < FW_NAMES; i++) {
        if (strcmp(fw_names[i], fn) == 0) {
            return fw_counts[i];
        }
    }
    return -1;
}
