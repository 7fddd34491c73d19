/*
 * os_thread_posix.c - core/os_thread.h on POSIX threads.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/os_thread.h"

int dv__cond_init(dv__cond_t *c) { return pthread_cond_init(&c->c, NULL); }
void dv__cond_destroy(dv__cond_t *c) { pthread_cond_destroy(&c->c); }
void dv__cond_wait(dv__cond_t *c, dv__mutex_t *m) {
    pthread_cond_wait(&c->c, &m->m);
}
void dv__cond_signal(dv__cond_t *c) { pthread_cond_signal(&c->c); }
void dv__cond_broadcast(dv__cond_t *c) { pthread_cond_broadcast(&c->c); }

/* pthread wants void *(*)(void *): box the caller's function. */
typedef struct box {
    void (*fn)(void *);
    void *arg;
} box_t;

static void *trampoline(void *p) {
    box_t b = *(box_t *)p;
    free(p);
    b.fn(b.arg);
    return NULL;
}

int dv__thread_start(dv__thread_t *t, void (*fn)(void *), void *arg) {
    box_t *b = malloc(sizeof(*b));
    if (!b) {
        return ENOMEM;
    }
    b->fn = fn;
    b->arg = arg;
    int rc = pthread_create(&t->t, NULL, trampoline, b);
    if (rc != 0) {
        free(b);
    }
    return rc;
}

void dv__thread_join(dv__thread_t *t) { pthread_join(t->t, NULL); }

uint32_t dv__cpu_count(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (uint32_t)n : 1u;
}
