/*
 * check.h - plain assertions for the Windows smoke programs (Criterion is
 * not available for mingw). A failed CHECK prints the expression and
 * counts; the program prints "N passed, M failed" and exits non-zero if any
 * failed.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef DV_TESTS_WINDOWS_CHECK_H
#define DV_TESTS_WINDOWS_CHECK_H

#include <stdio.h>

static int check_passed, check_failed;

#define CHECK(expr)                                                            \
    do {                                                                       \
        if (expr) {                                                            \
            check_passed++;                                                    \
        } else {                                                               \
            check_failed++;                                                    \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__,   \
                    #expr);                                                    \
        }                                                                      \
    } while (0)

/* A dv_result_t equality, printing both names and dv_last_error(). */
#define CHECK_R(call, expected)                                                \
    do {                                                                       \
        dv_result_t check_r_ = (call);                                         \
        if (check_r_ == (expected)) {                                          \
            check_passed++;                                                    \
        } else {                                                               \
            check_failed++;                                                    \
            fprintf(stderr, "%s:%d: %s returned %s, expected %s (%s)\n",       \
                    __FILE__, __LINE__, #call, dv_result_name(check_r_),       \
                    dv_result_name(expected), dv_last_error());                \
        }                                                                      \
    } while (0)

static int check_report(void) {
    printf("%d passed, %d failed\n", check_passed, check_failed);
    fflush(stdout);
    return check_failed ? 1 : 0;
}

#endif
