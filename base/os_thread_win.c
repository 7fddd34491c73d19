/*
 * os_thread_win.c - core/os_thread.h on Win32 threads.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * dv__cond_t stores a CONDITION_VARIABLE (one pointer, zero-initialised)
 * and waits on the SRWLOCK that os_win.c keeps inside dv__mutex_t.
 */
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

#include <stdlib.h>

#include "base/os_thread.h"

_Static_assert(sizeof(CONDITION_VARIABLE) == sizeof(((dv__cond_t *)0)->cv),
               "dv__cond_t must hold a CONDITION_VARIABLE");

static CONDITION_VARIABLE *win_cv(dv__cond_t *c) {
    return (CONDITION_VARIABLE *)(void *)&c->cv;
}

int dv__cond_init(dv__cond_t *c) {
    InitializeConditionVariable(win_cv(c));
    return 0;
}

/* A CONDITION_VARIABLE owns no kernel object. */
void dv__cond_destroy(dv__cond_t *c) { (void)c; }

void dv__cond_wait(dv__cond_t *c, dv__mutex_t *m) {
    SleepConditionVariableSRW(win_cv(c), (SRWLOCK *)(void *)&m->srw, INFINITE,
                              0);
}

void dv__cond_signal(dv__cond_t *c) { WakeConditionVariable(win_cv(c)); }
void dv__cond_broadcast(dv__cond_t *c) { WakeAllConditionVariable(win_cv(c)); }

typedef struct box {
    void (*fn)(void *);
    void *arg;
} box_t;

static DWORD WINAPI trampoline(LPVOID p) {
    box_t b = *(box_t *)p;
    free(p);
    b.fn(b.arg);
    return 0;
}

int dv__thread_start(dv__thread_t *t, void (*fn)(void *), void *arg) {
    box_t *b = malloc(sizeof(*b));
    if (!b) {
        return (int)ERROR_NOT_ENOUGH_MEMORY;
    }
    b->fn = fn;
    b->arg = arg;
    HANDLE h = CreateThread(NULL, 0, trampoline, b, 0, NULL);
    if (!h) {
        int code = (int)GetLastError();
        free(b);
        return code ? code : (int)ERROR_NOT_ENOUGH_MEMORY;
    }
    t->h = h;
    return 0;
}

void dv__thread_join(dv__thread_t *t) {
    WaitForSingleObject((HANDLE)t->h, INFINITE);
    CloseHandle((HANDLE)t->h);
    t->h = NULL;
}

uint32_t dv__cpu_count(void) {
    SYSTEM_INFO si;
    GetSystemInfo(&si);
    return si.dwNumberOfProcessors ? (uint32_t)si.dwNumberOfProcessors : 1u;
}
