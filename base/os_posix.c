/*
 * os_posix.c - core/os.h on POSIX systems.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/os.h"

int dv__mutex_init(dv__mutex_t *m) { return pthread_mutex_init(&m->m, NULL); }
void dv__mutex_destroy(dv__mutex_t *m) { pthread_mutex_destroy(&m->m); }
void dv__mutex_lock(dv__mutex_t *m) { pthread_mutex_lock(&m->m); }
void dv__mutex_unlock(dv__mutex_t *m) { pthread_mutex_unlock(&m->m); }

void dv__once(dv__once_t *flag, void (*fn)(void)) { pthread_once(&flag->o, fn); }

void *dv__lib_open(const char *name, char *err, size_t err_len) {
    void *lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (!lib && err && err_len) {
        const char *e = dlerror();
        snprintf(err, err_len, "%s", e ? e : "unknown dlopen error");
    }
    return lib;
}

void *dv__lib_sym(void *lib, const char *sym) {
    return lib ? dlsym(lib, sym) : NULL;
}

void dv__lib_close(void *lib) {
    if (lib) {
        dlclose(lib);
    }
}

uint64_t dv__now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

const char *dv__getenv(const char *name) { return getenv(name); }
