/*
 * os_thread.h - threads and condition variables of the OS layer, for the
 * host I/O pieces (the read pool, parallel prewarm).
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * One implementation per platform, chosen by the build: os_thread_posix.c
 * (pthreads) and os_thread_win.c (Win32 threads, CONDITION_VARIABLE over the
 * SRWLOCK of dv__mutex_t). Nothing above this layer tests a platform macro.
 *
 * Contract:
 *  - dv__cond_*: a condition variable used with a dv__mutex_t (os.h). init
 *    returns 0 on success. wait releases the mutex, sleeps until signalled
 *    (or spuriously) and takes the mutex again: callers loop on their
 *    predicate. signal wakes one waiter, broadcast all.
 *  - dv__thread_start: runs fn(arg) on a new thread; 0 on success, else the
 *    native error code (nothing started). dv__thread_join waits for it and
 *    frees what the thread held; each started thread is joined once.
 *  - dv__cpu_count: processors available to the process, at least 1.
 */
#ifndef DV_BASE_OS_THREAD_H
#define DV_BASE_OS_THREAD_H

#include <stdint.h>

#include "base/os.h"

#if defined(_WIN32)
typedef struct dv__cond {
    void *cv; /* CONDITION_VARIABLE */
} dv__cond_t;
typedef struct dv__thread {
    void *h; /* HANDLE */
} dv__thread_t;
#else
#include <pthread.h>
typedef struct dv__cond {
    pthread_cond_t c;
} dv__cond_t;
typedef struct dv__thread {
    pthread_t t;
} dv__thread_t;
#endif

int dv__cond_init(dv__cond_t *c);
void dv__cond_destroy(dv__cond_t *c);
void dv__cond_wait(dv__cond_t *c, dv__mutex_t *m);
void dv__cond_signal(dv__cond_t *c);
void dv__cond_broadcast(dv__cond_t *c);

int dv__thread_start(dv__thread_t *t, void (*fn)(void *), void *arg);
void dv__thread_join(dv__thread_t *t);

uint32_t dv__cpu_count(void);

#endif /* DV_BASE_OS_THREAD_H */
