/*
 * smoke_os.c - core/os_win.c checked on Windows (or Wine): mutex (also
 * statically initialised), once, atomic ints, library loading and its error
 * text, clock, environment. Links the static library to reach the internal
 * dv__ functions.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <windows.h>

#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "base/os.h"

#define THREADS 4
#define ROUNDS 200000

static dv__mutex_t mtx;
static volatile uint64_t counter;
static dv__once_t once = DV__ONCE_INIT;
static volatile LONG once_runs;
static volatile LONG once_seen_late; /* threads that returned before fn ran */

static void once_fn(void) {
    Sleep(50); /* make the other threads arrive while it runs */
    InterlockedIncrement(&once_runs);
}

static DWORD WINAPI worker(LPVOID arg) {
    (void)arg;
    dv__once(&once, once_fn);
    if (once_runs != 1) {
        InterlockedIncrement(&once_seen_late);
    }
    for (int i = 0; i < ROUNDS; i++) {
        dv__mutex_lock(&mtx);
        counter = counter + 1; /* not atomic: only the lock makes it exact */
        dv__mutex_unlock(&mtx);
    }
    return 0;
}

static void test_mutex_once(void) {
    CHECK(dv__mutex_init(&mtx) == 0);
    HANDLE t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        t[i] = CreateThread(NULL, 0, worker, NULL, 0, NULL);
        CHECK(t[i] != NULL);
    }
    for (int i = 0; i < THREADS; i++) {
        if (t[i]) {
            WaitForSingleObject(t[i], INFINITE);
            CloseHandle(t[i]);
        }
    }
    CHECK(counter == (uint64_t)THREADS * ROUNDS);
    CHECK(once_runs == 1);
    CHECK(once_seen_late == 0);
    dv__once(&once, once_fn);
    CHECK(once_runs == 1);
    dv__mutex_destroy(&mtx);
}

/* DV__MUTEX_INIT (no init call) and atomic ints, as the Python
 * extension uses them. */
static dv__mutex_t static_mtx = DV__MUTEX_INIT;
static volatile uint64_t static_counter;
static volatile int go;
static volatile int done;

static DWORD WINAPI static_worker(LPVOID arg) {
    (void)arg;
    while (!dv__atomic_load_int(&go)) {
        /* spin until the main thread's store is visible */
    }
    for (int i = 0; i < ROUNDS; i++) {
        dv__mutex_lock(&static_mtx);
        static_counter = static_counter + 1;
        dv__mutex_unlock(&static_mtx);
    }
    dv__mutex_lock(&static_mtx);
    dv__atomic_store_int(&done, dv__atomic_load_int(&done) + 1);
    dv__mutex_unlock(&static_mtx);
    return 0;
}

static void test_static_mutex_atomic(void) {
    CHECK(dv__atomic_load_int(&go) == 0);
    dv__atomic_store_int(&go, -7);
    CHECK(dv__atomic_load_int(&go) == -7);
    dv__atomic_store_int(&go, 0);
    HANDLE t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        t[i] = CreateThread(NULL, 0, static_worker, NULL, 0, NULL);
        CHECK(t[i] != NULL);
    }
    dv__atomic_store_int(&go, 1);
    for (int i = 0; i < THREADS; i++) {
        if (t[i]) {
            WaitForSingleObject(t[i], INFINITE);
            CloseHandle(t[i]);
        }
    }
    CHECK(static_counter == (uint64_t)THREADS * ROUNDS);
    CHECK(dv__atomic_load_int(&done) == THREADS);
}

static void test_lib(void) {
    char err[256] = "";
    void *k = dv__lib_open("kernel32.dll", err, sizeof(err));
    CHECK(k != NULL);
    CHECK(dv__lib_sym(k, "GetTickCount64") != NULL);
    CHECK(dv__lib_sym(k, "dv_no_such_symbol") == NULL);
    CHECK(dv__lib_sym(NULL, "GetTickCount64") == NULL);
    dv__lib_close(k);
    dv__lib_close(NULL);

    void *none = dv__lib_open("dv_no_such_library.dll", err, sizeof(err));
    CHECK(none == NULL);
    /* The message names the library and carries the system's code
     * (126 = ERROR_MOD_NOT_FOUND). */
    CHECK(strstr(err, "dv_no_such_library.dll") != NULL);
    CHECK(strstr(err, "126") != NULL);
    printf("missing library message: %s\n", err);
    CHECK(dv__lib_open("dv_no_such_library.dll", NULL, 0) == NULL);
    CHECK(dv__lib_open(NULL, err, sizeof(err)) == NULL);
}

static void test_clock(void) {
    uint64_t a = dv__now_ns();
    Sleep(30);
    uint64_t b = dv__now_ns();
    CHECK(b > a);
    CHECK(b - a >= 20000000ull);     /* at least 20 ms of a 30 ms sleep */
    CHECK(b - a < 5000000000ull);    /* and not wildly off */
    uint64_t prev = dv__now_ns();
    int monotonic = 1;
    for (int i = 0; i < 100000; i++) {
        uint64_t now = dv__now_ns();
        monotonic &= now >= prev;
        prev = now;
    }
    CHECK(monotonic);
}

static void test_env(void) {
    CHECK(_putenv("DV_SMOKE_VAR=abc") == 0);
    const char *v = dv__getenv("DV_SMOKE_VAR");
    CHECK(v != NULL && strcmp(v, "abc") == 0);
    CHECK(dv__getenv("DV_SMOKE_SURELY_UNSET_VAR") == NULL);
}

int main(void) {
    test_mutex_once();
    test_static_mutex_atomic();
    test_lib();
    test_clock();
    test_env();
    return check_report();
}
