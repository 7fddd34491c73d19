/*
 * os.h - the thin operating-system layer under the core and the backends.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * One implementation per platform, chosen by the build: os_posix.c (Linux
 * and other POSIX systems) and os_win.c (Windows). Nothing above this layer
 * tests a platform macro.
 *
 * Contract:
 *  - dv__mutex_*: a non-recursive mutex. init returns 0 on success.
 *    DV__MUTEX_INIT initialises a mutex of static storage duration at
 *    compile time instead (no init call, never destroyed), for code that
 *    has no single-threaded start to call init from.
 *  - dv__once: runs fn exactly once per flag, all callers return after it ran.
 *  - dv__lib_open: loads a shared library by name or path; NULL on failure,
 *    with the loader's message in `err` (may be NULL). dv__lib_sym: NULL if
 *    missing. dv__lib_close: NULL-safe.
 *  - dv__now_ns: a monotonic clock in nanoseconds.
 *  - dv__getenv: the variable's value or NULL (not thread-safe against
 *    concurrent setenv, like getenv).
 *  - dv__atomic_*: lock-free loads and stores of naturally aligned values.
 *    Loads acquire, stores release, fetch_add is sequentially consistent:
 *    a store of a pointer or key after filling what it points to publishes
 *    both to a thread whose load sees the new value.
 */
#ifndef DV_CORE_OS_H
#define DV_CORE_OS_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
typedef struct dv__mutex {
    void *srw; /* SRWLOCK */
} dv__mutex_t;
#define DV__MUTEX_INIT {0} /* SRWLOCK_INIT */
typedef struct dv__once {
    void *ptr; /* INIT_ONCE */
} dv__once_t;
#define DV__ONCE_INIT {0}
#else
#include <pthread.h>
typedef struct dv__mutex {
    pthread_mutex_t m;
} dv__mutex_t;
#define DV__MUTEX_INIT {PTHREAD_MUTEX_INITIALIZER}
typedef struct dv__once {
    pthread_once_t o;
} dv__once_t;
#define DV__ONCE_INIT {PTHREAD_ONCE_INIT}
#endif

#if defined(_MSC_VER)
#define DV__THREAD_LOCAL __declspec(thread)
#else
#define DV__THREAD_LOCAL _Thread_local
#endif

/* ---- atomics (inline: they sit on the resident fault path) ---- */
#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
static __forceinline uint64_t dv__atomic_load_u64(const volatile uint64_t *p) {
    /* Interlocked or-with-0 is a full barrier on every Windows target. */
    return (uint64_t)_InterlockedOr64((volatile __int64 *)p, 0);
}
static __forceinline void dv__atomic_store_u64(volatile uint64_t *p,
                                               uint64_t v) {
    _InterlockedExchange64((volatile __int64 *)p, (__int64)v);
}
static __forceinline void *dv__atomic_load_ptr(void *const volatile *p) {
    return (void *)_InterlockedOr64((volatile __int64 *)p, 0);
}
static __forceinline void dv__atomic_store_ptr(void *volatile *p, void *v) {
    _InterlockedExchangePointer((void *volatile *)p, v);
}
static __forceinline int dv__atomic_load_int(const volatile int *p) {
    return (int)_InterlockedOr((volatile long *)p, 0);
}
static __forceinline void dv__atomic_store_int(volatile int *p, int v) {
    _InterlockedExchange((volatile long *)p, (long)v);
}
static __forceinline int dv__atomic_fetch_add_int(volatile int *p, int v) {
    return (int)_InterlockedExchangeAdd((volatile long *)p, (long)v);
}
#else
static inline uint64_t dv__atomic_load_u64(const volatile uint64_t *p) {
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
static inline void dv__atomic_store_u64(volatile uint64_t *p, uint64_t v) {
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}
static inline void *dv__atomic_load_ptr(void *const volatile *p) {
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
static inline void dv__atomic_store_ptr(void *volatile *p, void *v) {
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}
static inline int dv__atomic_load_int(const volatile int *p) {
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
static inline void dv__atomic_store_int(volatile int *p, int v) {
    __atomic_store_n(p, v, __ATOMIC_RELEASE);
}
static inline int dv__atomic_fetch_add_int(volatile int *p, int v) {
    return __atomic_fetch_add(p, v, __ATOMIC_SEQ_CST);
}
#endif

int dv__mutex_init(dv__mutex_t *m);
void dv__mutex_destroy(dv__mutex_t *m);
void dv__mutex_lock(dv__mutex_t *m);
void dv__mutex_unlock(dv__mutex_t *m);

void dv__once(dv__once_t *flag, void (*fn)(void));

void *dv__lib_open(const char *name, char *err, size_t err_len);
void *dv__lib_sym(void *lib, const char *sym);
void dv__lib_close(void *lib);

uint64_t dv__now_ns(void);
const char *dv__getenv(const char *name);

#endif /* DV_CORE_OS_H */
