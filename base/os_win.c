/*
 * os_win.c - core/os.h on Windows (Win32 API, Windows 7 and later).
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * os.h stores the Win32 primitives as pointer-sized placeholders so that it
 * need not include <windows.h>: SRWLOCK and INIT_ONCE are each exactly one
 * pointer, and both are initialised by zero (SRWLOCK_INIT, INIT_ONCE_STATIC_INIT),
 * which is what DV__ONCE_INIT and dv__mutex_init give them. The static
 * asserts below keep that true.
 */
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/os.h"

_Static_assert(sizeof(SRWLOCK) == sizeof(((dv__mutex_t *)0)->srw),
               "dv__mutex_t must hold an SRWLOCK");
_Static_assert(sizeof(INIT_ONCE) == sizeof(((dv__once_t *)0)->ptr),
               "dv__once_t must hold an INIT_ONCE");

static SRWLOCK *win_srw(dv__mutex_t *m) { return (SRWLOCK *)(void *)&m->srw; }

int dv__mutex_init(dv__mutex_t *m) {
    InitializeSRWLock(win_srw(m));
    return 0;
}

/* An SRWLOCK owns no kernel object: nothing to free. */
void dv__mutex_destroy(dv__mutex_t *m) { (void)m; }

void dv__mutex_lock(dv__mutex_t *m) { AcquireSRWLockExclusive(win_srw(m)); }

void dv__mutex_unlock(dv__mutex_t *m) { ReleaseSRWLockExclusive(win_srw(m)); }

/* InitOnceExecuteOnce passes a data pointer, not a function pointer: box
 * the function so no function/object pointer cast is needed. */
typedef struct win_once_box {
    void (*fn)(void);
} win_once_box_t;

static BOOL CALLBACK win_once_thunk(PINIT_ONCE once, PVOID param, PVOID *ctx) {
    (void)once;
    (void)ctx;
    ((win_once_box_t *)param)->fn();
    return TRUE;
}

void dv__once(dv__once_t *flag, void (*fn)(void)) {
    win_once_box_t box = {fn};
    /* Fails only if the callback returns FALSE, which ours never does. */
    InitOnceExecuteOnce((PINIT_ONCE)(void *)&flag->ptr, win_once_thunk, &box,
                        NULL);
}

/* The system's text for `code`, without the trailing CR/LF, into buf. */
static void win_format_error(DWORD code, char *buf, size_t len) {
    char text[256];
    DWORD n = FormatMessageA(
        FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL,
        code, 0, text, (DWORD)sizeof(text), NULL);
    while (n > 0 && (text[n - 1] == '\r' || text[n - 1] == '\n' ||
                     text[n - 1] == ' ' || text[n - 1] == '.')) {
        n--;
    }
    text[n] = '\0';
    if (n == 0) {
        snprintf(text, sizeof(text), "unknown error");
    }
    snprintf(buf, len, "%s (Win32 error %lu)", text, (unsigned long)code);
}

void *dv__lib_open(const char *name, char *err, size_t err_len) {
    if (!name) {
        if (err && err_len) {
            snprintf(err, err_len, "no library name");
        }
        return NULL;
    }
    /* A missing DLL must come back as NULL with a message, never as a
     * "cannot find DLL" dialog box stalling a headless process. */
    DWORD old_mode = 0;
    BOOL mode_set = SetThreadErrorMode(
        SEM_FAILCRITICALERRORS | SEM_NOOPENFILEERRORBOX, &old_mode);
    HMODULE lib = LoadLibraryA(name);
    DWORD code = lib ? 0 : GetLastError();
    if (mode_set) {
        SetThreadErrorMode(old_mode, NULL);
    }
    if (!lib && err && err_len) {
        char text[320];
        win_format_error(code, text, sizeof(text));
        snprintf(err, err_len, "LoadLibrary(%s): %s", name, text);
    }
    return (void *)lib;
}

void *dv__lib_sym(void *lib, const char *sym) {
    if (!lib || !sym) {
        return NULL;
    }
    FARPROC p = GetProcAddress((HMODULE)lib, sym);
    /* The caller casts the result back to the symbol's real type; going
     * through an integer avoids a direct function/object pointer cast. */
    return (void *)(uintptr_t)p;
}

void dv__lib_close(void *lib) {
    if (lib) {
        FreeLibrary((HMODULE)lib);
    }
}

uint64_t dv__now_ns(void) {
    /* The frequency is fixed at boot; a racing first call computes the
     * same value, so a plain static is enough. */
    static volatile LONGLONG freq;
    LARGE_INTEGER f, c;
    if (freq == 0) {
        if (!QueryPerformanceFrequency(&f) || f.QuadPart <= 0) {
            return (uint64_t)GetTickCount64() * 1000000ull;
        }
        freq = f.QuadPart;
    }
    QueryPerformanceCounter(&c);
    uint64_t ticks = (uint64_t)c.QuadPart;
    uint64_t hz = (uint64_t)freq;
    /* Split to avoid overflowing ticks * 1e9 after a few hours. */
    return (ticks / hz) * 1000000000ull + (ticks % hz) * 1000000000ull / hz;
}

#if defined(_MSC_VER)
/* getenv is what the contract asks for; MSVC flags it as unsafe only
 * because of its (documented) lack of thread safety against putenv. */
#pragma warning(suppress : 4996)
#endif
const char *dv__getenv(const char *name) { return getenv(name); }
