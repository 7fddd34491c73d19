/*
 * criterion/criterion.h - a minimal in-process stand-in for Criterion, so
 * the Criterion suites of tests/core run under ThreadSanitizer and valgrind.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Criterion runs every test in a forked worker. Under ThreadSanitizer its
 * runner cannot even start (its shared-memory arena collides with TSan's
 * shadow memory: "Could not initialize inheritable arena"), and under
 * valgrind an error inside a worker does not change the exit status. This
 * header gives the same macros the suites use (Test with .timeout, .init,
 * .fini and .disabled; cr_assert and its _eq, _neq, _lt, _leq, _gt, _geq,
 * _null, _not_null and _str_eq forms; cr_skip_test; cr_log_info;
 * ReportHook(PRE_ALL)), and crshim.c runs the tests one after another in
 * the calling process. A failed assertion ends its test (longjmp) on the
 * test's own thread and the whole process on any other thread. Messages
 * must be string literals, as they are in the suites.
 *
 * The tests are compiled against this header when crshim's folder comes
 * first on the include path (tests/model/tests.cmake: dv_crshim_*).
 */
#ifndef DV_CRSHIM_CRITERION_H
#define DV_CRSHIM_CRITERION_H

#include <stddef.h>
#include <string.h>

struct criterion_test_set; /* report hooks receive NULL */

typedef struct crshim_opts {
    int crshim_zero_;
    double timeout; /* seconds, scaled by CRSHIM_TIMEOUT_SCALE (default 20) */
    void (*init)(void);
    void (*fini)(void);
    int disabled;
    const char *description;
} crshim_opts_t;

void crshim_register(const char *suite, const char *name, void (*fn)(void),
                     const crshim_opts_t *opts);
void crshim_register_pre_all(void (*fn)(struct criterion_test_set *));
/* `fmt` is "" or the caller's message (a literal), printf-style. */
void crshim_fail(const char *file, int line, const char *expr, const char *fmt,
                 ...) __attribute__((noreturn));
void crshim_skip(const char *fmt, ...) __attribute__((noreturn));
void crshim_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define Test(suite, name, ...)                                                 \
    static void suite##_##name##_impl(void);                                   \
    static const crshim_opts_t suite##_##name##_opts = {.crshim_zero_ = 0,     \
                                                        __VA_ARGS__};          \
    __attribute__((constructor)) static void suite##_##name##_reg(void) {      \
        crshim_register(#suite, #name, suite##_##name##_impl,                  \
                        &suite##_##name##_opts);                               \
    }                                                                          \
    static void suite##_##name##_impl(void)

#define CRSHIM_CHECK(cond, text, ...)                                          \
    do {                                                                       \
        if (!(cond)) {                                                         \
            crshim_fail(__FILE__, __LINE__, text, "" __VA_ARGS__);             \
        }                                                                      \
    } while (0)

#define cr_assert(cond, ...) CRSHIM_CHECK(cond, #cond, __VA_ARGS__)
#define cr_assert_eq(a, b, ...)                                                \
    CRSHIM_CHECK((a) == (b), #a " == " #b, __VA_ARGS__)
#define cr_assert_neq(a, b, ...)                                               \
    CRSHIM_CHECK((a) != (b), #a " != " #b, __VA_ARGS__)
#define cr_assert_lt(a, b, ...)                                                \
    CRSHIM_CHECK((a) < (b), #a " < " #b, __VA_ARGS__)
#define cr_assert_leq(a, b, ...)                                               \
    CRSHIM_CHECK((a) <= (b), #a " <= " #b, __VA_ARGS__)
#define cr_assert_gt(a, b, ...)                                                \
    CRSHIM_CHECK((a) > (b), #a " > " #b, __VA_ARGS__)
#define cr_assert_geq(a, b, ...)                                               \
    CRSHIM_CHECK((a) >= (b), #a " >= " #b, __VA_ARGS__)
#define cr_assert_null(p, ...)                                                 \
    CRSHIM_CHECK((p) == NULL, #p " == NULL", __VA_ARGS__)
#define cr_assert_not_null(p, ...)                                             \
    CRSHIM_CHECK((p) != NULL, #p " != NULL", __VA_ARGS__)
#define cr_assert_str_eq(a, b, ...)                                            \
    CRSHIM_CHECK(strcmp((a), (b)) == 0, #a " equals " #b, __VA_ARGS__)
#define cr_skip_test(...) crshim_skip("" __VA_ARGS__)
#define cr_log_info(...) crshim_log(__VA_ARGS__)

#endif
