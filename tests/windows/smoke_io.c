/*
 * smoke_io.c - the host I/O OS layer on Windows (or Wine): base/os_file_win.c
 * (a UTF-8 path with non-ASCII characters opened through the W API,
 * positional overlapped reads from several threads at once, end of file, a
 * duplicated handle, a read-only mapping and its bounce, committed and
 * decommitted address space) and base/os_thread_win.c (threads, condition
 * variables). Links the static library to reach the internal dv__ functions.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <windows.h>

#include <stdlib.h>
#include <string.h>

#include "base/os_file.h"
#include "base/os_thread.h"
#include "check.h"

#define SIZE (3u << 20)
#define THREADS 4

static unsigned char pattern(uint64_t off) {
    return (unsigned char)((off * 2654435761u) >> 13);
}

/* "dvio-modèle-模型.bin" in the temporary folder, as UTF-8 and UTF-16. */
static void paths(char *utf8, size_t n8, wchar_t *wide, size_t nw) {
    wchar_t dir[MAX_PATH];
    GetTempPathW(MAX_PATH, dir);
    _snwprintf(wide, nw, L"%lsdvio-mod\u00e8le-\u6a21\u578b.bin", dir);
    WideCharToMultiByte(CP_UTF8, 0, wide, -1, utf8, (int)n8, NULL, NULL);
}

static void write_file(const wchar_t *w) {
    HANDLE h = CreateFileW(w, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS,
                           FILE_ATTRIBUTE_NORMAL, NULL);
    CHECK(h != INVALID_HANDLE_VALUE);
    unsigned char *buf = malloc(SIZE);
    for (uint64_t i = 0; i < SIZE; i++) {
        buf[i] = pattern(i);
    }
    DWORD n = 0;
    CHECK(WriteFile(h, buf, SIZE, &n, NULL) && n == SIZE);
    CloseHandle(h);
    free(buf);
}

typedef struct reader_arg {
    dv__osfile_t f;
    int k;
    int bad;
} reader_arg_t;

static dv__mutex_t mu;
static dv__cond_t cv;
static int done;

static void read_part(void *p) {
    reader_arg_t *a = p;
    unsigned char buf[65536];
    for (uint64_t off = a->k * 65536u; off < SIZE; off += THREADS * 65536u) {
        size_t got = 0;
        if (dv__file_pread(a->f, buf, sizeof(buf), off, &got) != 0 ||
            got != sizeof(buf)) {
            a->bad++;
            continue;
        }
        for (size_t i = 0; i < got; i++) {
            a->bad += buf[i] != pattern(off + i);
        }
    }
    dv__mutex_lock(&mu);
    done++;
    dv__cond_broadcast(&cv);
    dv__mutex_unlock(&mu);
}

static void test_files(void) {
    char utf8[4 * MAX_PATH];
    wchar_t wide[MAX_PATH];
    paths(utf8, sizeof(utf8), wide, MAX_PATH);
    write_file(wide);
    dv__osfile_t f;
    CHECK(dv__file_open(utf8, &f) == 0);
    uint64_t size = 0;
    CHECK(dv__file_size(f, &size) == 0 && size == SIZE);
    CHECK(dv__mutex_init(&mu) == 0 && dv__cond_init(&cv) == 0);
    dv__thread_t t[THREADS];
    reader_arg_t args[THREADS];
    for (int k = 0; k < THREADS; k++) {
        args[k] = (reader_arg_t){f, k, 0};
        CHECK(dv__thread_start(&t[k], read_part, &args[k]) == 0);
    }
    dv__mutex_lock(&mu);
    while (done < THREADS) {
        dv__cond_wait(&cv, &mu);
    }
    dv__mutex_unlock(&mu);
    for (int k = 0; k < THREADS; k++) {
        dv__thread_join(&t[k]);
        CHECK(args[k].bad == 0);
    }
    unsigned char tail[100];
    size_t got = 99;
    CHECK(dv__file_pread(f, tail, sizeof(tail), SIZE - 10, &got) == 0);
    CHECK(got == 10 && tail[9] == pattern(SIZE - 1));
    CHECK(dv__file_pread(f, tail, sizeof(tail), SIZE + 10, &got) == 0);
    CHECK(got == 0);
    dv__osfile_t g;
    CHECK(dv__file_dup(dv__file_native(f), &g) == 0);
    CHECK(dv__file_pread(g, tail, 4, 1000, &got) == 0 && got == 4 &&
          tail[0] == pattern(1000));
    dv__file_close(&g);

    dv__filemap_t m;
    CHECK(dv__map_file(f, SIZE, &m) == 0);
    const unsigned char *p = m.addr;
    CHECK(p && p[12345] == pattern(12345));
    CHECK(dv__map_bounce(&m) == 0);
    CHECK(m.addr == p && p[SIZE - 1] == pattern(SIZE - 1));
    printf("mapping with placeholders: %s\n", m.placeholder ? "yes" : "no");
    dv__map_close(&m);
    CHECK(dv__file_drop_cache(f, 0, SIZE) == DV__OS_UNSUPPORTED);
    dv__file_close(&f);
    CHECK(dv__file_open("Z:\\no\\such\\dir\\file.bin", &f) != 0);
    DeleteFileW(wide);
}

static void test_vm(void) {
    uint64_t pg = dv__vm_page();
    void *p = NULL;
    CHECK(dv__vm_reserve(64 * pg, &p) == 0 && p);
    CHECK(dv__vm_commit(p, 8 * pg) == 0);
    unsigned char *b = p;
    b[0] = 1;
    b[8 * pg - 1] = 2;
    CHECK(dv__vm_decommit(b + 4 * pg, 4 * pg) == 0);
    CHECK(dv__vm_commit(b + 4 * pg, 4 * pg) == 0);
    CHECK(b[0] == 1 && b[8 * pg - 1] == 0); /* decommitted: zero again */
    CHECK(dv__vm_populate(p, pg) == DV__OS_UNSUPPORTED);
    dv__vm_release(p, 64 * pg);
    CHECK(dv__cpu_count() >= 1);
}

int main(void) {
    test_files();
    test_vm();
    return check_report();
}
