/*
 * crshim.c - the runner of the in-process Criterion stand-in (criterion.h).
 * SPDX-License-Identifier: Apache-2.0
 *
 *   dv_crshim_<suite> [--filter GLOB] [--exclude GLOB]... [--list] [--jobs N]
 *                     [-jN] [--verbose]
 *
 * Runs the PRE_ALL hooks, then every registered test in turn in this
 * process (sorted by suite and name), each with its .init / .fini, and
 * prints one line per test. --filter takes a glob over "suite/name",
 * --exclude (up to 8 times) leaves matching tests out;
 * --jobs is accepted (and ignored) so CTest's command lines for Criterion
 * work unchanged. A test with .timeout gets SIGALRM after timeout *
 * CRSHIM_TIMEOUT_SCALE seconds (default 20: sanitizers and valgrind are
 * slow), which ends the process. Exit status: 0 when no test failed
 * (skips are fine), 1 otherwise, 2 for bad usage.
 */
#define _GNU_SOURCE
#include <fnmatch.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "criterion/criterion.h"

#define MAX_TESTS 256

typedef struct entry {
    const char *suite, *name;
    void (*fn)(void);
    const crshim_opts_t *opts;
} entry_t;

static entry_t tests[MAX_TESTS];
static int n_tests;
static void (*pre_all[4])(struct criterion_test_set *);
static int n_pre_all;

static pthread_t runner;
static jmp_buf jump;
static int outcome; /* 0 pass, 1 fail, 2 skip */
static const char *current = "";

void crshim_register(const char *suite, const char *name, void (*fn)(void),
                     const crshim_opts_t *opts) {
    if (n_tests == MAX_TESTS) {
        fprintf(stderr, "crshim: more than %d tests\n", MAX_TESTS);
        exit(2);
    }
    tests[n_tests++] = (entry_t){suite, name, fn, opts};
}

void crshim_register_pre_all(void (*fn)(struct criterion_test_set *)) {
    if (n_pre_all < 4) {
        pre_all[n_pre_all++] = fn;
    }
}

static void vmessage(const char *fmt, va_list ap) {
    if (fmt && fmt[0]) {
        fprintf(stderr, ": ");
        vfprintf(stderr, fmt, ap);
    }
    fprintf(stderr, "\n");
}

void crshim_fail(const char *file, int line, const char *expr, const char *fmt,
                 ...) {
    fprintf(stderr, "%s:%d: %s: assertion failed: %s", file, line, current,
            expr);
    va_list ap;
    va_start(ap, fmt);
    vmessage(fmt, ap);
    va_end(ap);
    fflush(stderr);
    if (!pthread_equal(pthread_self(), runner)) {
        _exit(1); /* another thread of the test: no way to unwind it */
    }
    outcome = 1;
    longjmp(jump, 1);
}

void crshim_skip(const char *fmt, ...) {
    fprintf(stderr, "%s: skipped", current);
    va_list ap;
    va_start(ap, fmt);
    vmessage(fmt, ap);
    va_end(ap);
    if (!pthread_equal(pthread_self(), runner)) {
        _exit(1);
    }
    outcome = 2;
    longjmp(jump, 1);
}

void crshim_log(const char *fmt, ...) {
    fprintf(stderr, "%s: ", current);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
}

static void on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "crshim: test timed out\n";
    ssize_t n = write(2, msg, sizeof(msg) - 1);
    (void)n;
    _exit(1);
}

/* One test, with its init and fini; its outcome. */
static int run_one(const entry_t *t, double scale) {
    outcome = 0;
    if (t->opts->timeout > 0) {
        alarm((unsigned)(t->opts->timeout * scale) + 1);
    }
    if (setjmp(jump) == 0) {
        if (t->opts->init) {
            t->opts->init();
        }
        t->fn();
        if (t->opts->fini) {
            t->opts->fini();
        }
    }
    alarm(0);
    return outcome;
}

static int by_name(const void *a, const void *b) {
    const entry_t *x = a, *y = b;
    int c = strcmp(x->suite, y->suite);
    return c ? c : strcmp(x->name, y->name);
}

int main(int argc, char **argv) {
    const char *filter = NULL, *exclude[8];
    int list = 0, verbose = 0, n_exclude = 0;
    for (int k = 1; k < argc; k++) {
        if (!strcmp(argv[k], "--filter") && k + 1 < argc) {
            filter = argv[++k];
        } else if (!strcmp(argv[k], "--exclude") && k + 1 < argc &&
                   n_exclude < 8) {
            exclude[n_exclude++] = argv[++k];
        } else if (!strcmp(argv[k], "--jobs") && k + 1 < argc) {
            k++;
        } else if (!strncmp(argv[k], "-j", 2) || !strcmp(argv[k], "--ascii")) {
            continue;
        } else if (!strcmp(argv[k], "--list") || !strcmp(argv[k], "-l")) {
            list = 1;
        } else if (!strcmp(argv[k], "--verbose")) {
            verbose = 1;
        } else {
            fprintf(stderr,
                    "usage: %s [--filter GLOB] [--list] [--jobs N] "
                    "[--verbose]\n",
                    argv[0]);
            return 2;
        }
    }
    qsort(tests, (size_t)n_tests, sizeof(tests[0]), by_name);
    double scale = 20;
    const char *s = getenv("CRSHIM_TIMEOUT_SCALE");
    if (s && atof(s) > 0) {
        scale = atof(s);
    }
    runner = pthread_self();
    signal(SIGALRM, on_alarm);
    for (int k = 0; k < n_pre_all; k++) {
        pre_all[k](NULL);
    }
    int passed = 0, failed = 0, skipped = 0;
    char full[256];
    for (int k = 0; k < n_tests; k++) {
        const entry_t *t = &tests[k];
        snprintf(full, sizeof(full), "%s/%s", t->suite, t->name);
        int left_out = filter && fnmatch(filter, full, 0) != 0;
        for (int e = 0; e < n_exclude; e++) {
            left_out |= fnmatch(exclude[e], full, 0) == 0;
        }
        if (left_out) {
            continue;
        }
        if (list) {
            printf("%s\n", full);
            continue;
        }
        if (t->opts->disabled) {
            skipped++;
            continue;
        }
        current = full;
        if (verbose) {
            fprintf(stderr, "[RUN ] %s\n", full);
        }
        int got = run_one(t, scale);
        const char *word = got == 0 ? "PASS" : got == 1 ? "FAIL" : "SKIP";
        fprintf(stderr, "[%s] %s\n", word, full);
        passed += got == 0;
        failed += got == 1;
        skipped += got == 2;
    }
    if (!list) {
        fprintf(stderr, "crshim: %d passed, %d failed, %d skipped\n", passed,
                failed, skipped);
    }
    return failed ? 1 : 0;
}
