/*
 * test_dynlib.c - base/dynlib.h, the one loader of vendor libraries:
 * required and optional symbols, candidates in order, the environment and
 * path overrides, the resolver and step hooks, the reasons, loading once.
 * Uses the C library's libm.so.6 as the "vendor" library (Linux).
 * SPDX-License-Identifier: Apache-2.0
 */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/dynlib.h"

typedef double (*math_fn)(double);

typedef struct table {
    math_fn cos;
    math_fn sin;
    math_fn dv_no_such_function;
} table_t;

static const dv__dynlib_sym_t syms_opt[] = {
    DV__DYNLIB_SYM(table_t, cos, 1),
    DV__DYNLIB_SYM(table_t, sin, 1),
    DV__DYNLIB_SYM(table_t, dv_no_such_function, 0),
};

static const dv__dynlib_sym_t syms_req[] = {
    DV__DYNLIB_SYM(table_t, cos, 1),
    DV__DYNLIB_SYM(table_t, dv_no_such_function, 1),
    DV__DYNLIB_SYM(table_t, sin, 1),
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static table_t tab;

static dv__dynlib_spec_t spec_of(const dv__dynlib_sym_t *syms, size_t n) {
    dv__dynlib_spec_t s;
    memset(&s, 0, sizeof(s));
    s.syms = syms;
    s.sym_count = n;
    s.table = &tab;
    s.table_size = sizeof(tab);
    return s;
}

static const char *const libm_only[] = {"libm.so.6", NULL};

Test(dynlib, optional_symbols_may_be_missing) {
    dv__dynlib_spec_t s = spec_of(syms_opt, N(syms_opt));
    s.names = libm_only;
    dv__dynlib_t dl;
    dv__dynlib_open(&s, &dl);
    cr_assert_eq(dl.result, DV_OK, "%s", dl.reason);
    cr_assert_not_null(dl.lib);
    cr_assert_not_null(tab.cos);
    cr_assert_float_eq(tab.cos(0.0), 1.0, 1e-12);
    cr_assert_null(tab.dv_no_such_function);
    cr_assert_str_eq(dl.name, "libm.so.6");
    cr_assert_str_eq(dl.reason, "libm.so.6", "no note: the name");
    cr_assert_str_eq(dl.missing, "");
    dv__lib_close(dl.lib);
}

Test(dynlib, a_missing_required_symbol_rejects_the_library) {
    dv__dynlib_spec_t s = spec_of(syms_req, N(syms_req));
    s.names = libm_only;
    s.hint = "too old?";
    dv__dynlib_t dl;
    dv__dynlib_open(&s, &dl);
    cr_assert_eq(dl.result, DV_ERROR_BACKEND_UNAVAILABLE);
    cr_assert_null(dl.lib);
    cr_assert_str_eq(dl.missing, "dv_no_such_function");
    cr_assert_str_eq(dl.reason,
                     "libm.so.6: lacks dv_no_such_function (too old?)");
    cr_assert_null(tab.cos, "the table is zeroed again");
}

Test(dynlib, candidates_are_tried_in_order_and_reasons_joined) {
    static const char *const names[] = {"/nonexistent/dv-a.so",
                                        "/nonexistent/dv-b.so", NULL};
    dv__dynlib_spec_t s = spec_of(syms_opt, N(syms_opt));
    s.names = names;
    dv__dynlib_t dl;
    dv__dynlib_open(&s, &dl);
    cr_assert_eq(dl.result, DV_ERROR_BACKEND_UNAVAILABLE);
    cr_assert(strstr(dl.reason, "cannot load /nonexistent/dv-a.so: ") ==
                  dl.reason,
              "%s", dl.reason);
    cr_assert(strstr(dl.reason, "; cannot load /nonexistent/dv-b.so: "), "%s",
              dl.reason);
    cr_assert_str_eq(dl.name, "/nonexistent/dv-b.so", "the last one tried");

    static const char *const then_libm[] = {"/nonexistent/dv-a.so", "libm.so.6",
                                            NULL};
    s.names = then_libm;
    dv__dynlib_open(&s, &dl);
    cr_assert_eq(dl.result, DV_OK, "%s", dl.reason);
    cr_assert_str_eq(dl.name, "libm.so.6");
    cr_assert_str_eq(dl.reason, "libm.so.6", "success replaces the reasons");
    dv__lib_close(dl.lib);
}

Test(dynlib, environment_then_path_override_the_candidates) {
    dv__dynlib_spec_t s = spec_of(syms_opt, N(syms_opt));
    s.names = libm_only;
    s.env = "DV_TEST_DYNLIB_LIBRARY";
    setenv("DV_TEST_DYNLIB_LIBRARY", "/nonexistent/dv-env.so", 1);
    dv__dynlib_t dl;
    dv__dynlib_open(&s, &dl);
    cr_assert_eq(dl.result, DV_ERROR_BACKEND_UNAVAILABLE);
    cr_assert(strstr(dl.reason, "/nonexistent/dv-env.so"), "%s", dl.reason);
    cr_assert_null(strstr(dl.reason, "libm"), "only the variable's library");

    s.path = "libm.so.6";
    dv__dynlib_open(&s, &dl);
    cr_assert_eq(dl.result, DV_OK, "the path beats the variable: %s",
                 dl.reason);
    dv__lib_close(dl.lib);

    s.path = NULL;
    setenv("DV_TEST_DYNLIB_LIBRARY", "", 1);
    dv__dynlib_open(&s, &dl);
    cr_assert_eq(dl.result, DV_OK, "an empty variable is unset: %s", dl.reason);
    dv__lib_close(dl.lib);
}

Test(dynlib, no_candidate_at_all) {
    dv__dynlib_spec_t s = spec_of(syms_opt, N(syms_opt));
    dv__dynlib_t dl;
    dv__dynlib_open(&s, &dl);
    cr_assert_eq(dl.result, DV_ERROR_BACKEND_UNAVAILABLE);
    cr_assert_str_eq(dl.reason, "no library to load");
}

/* A resolver of the CUDA kind: names looked up another way ("dv_X" means
 * the library's "X"), and a reason for a miss. */
static void *prefixed(const dv__dynlib_spec_t *spec, void *lib,
                      const char *name, char *why, size_t len) {
    int *calls = spec->arg;
    (*calls)++;
    if (strcmp(name, "cos") == 0 || strcmp(name, "sin") == 0) {
        return dv__lib_sym(lib, name);
    }
    snprintf(why, len, "lookup(%s) said no", name);
    return NULL;
}

Test(dynlib, the_resolver_is_used_and_its_reason_kept) {
    int calls = 0;
    dv__dynlib_spec_t s = spec_of(syms_req, N(syms_req));
    s.names = libm_only;
    s.resolve = prefixed;
    s.arg = &calls;
    s.hint = "not shown: the resolver said why";
    dv__dynlib_t dl;
    dv__dynlib_open(&s, &dl);
    cr_assert_eq(dl.result, DV_ERROR_BACKEND_UNAVAILABLE);
    cr_assert_eq(calls, 2, "stops at the first missing required symbol");
    cr_assert_str_eq(dl.reason, "libm.so.6: lacks dv_no_such_function: "
                                "lookup(dv_no_such_function) said no");
}

static int reject_prepare(const dv__dynlib_spec_t *spec, const char *name,
                          void *lib, char *why, size_t len) {
    (void)spec;
    (void)lib;
    snprintf(why, len, "%s is the wrong kind", name);
    return -1;
}

static int finish_calls;
static int finish_ok(const dv__dynlib_spec_t *spec, const char *name, void *lib,
                     char *why, size_t len) {
    (void)spec;
    (void)lib;
    __atomic_fetch_add(&finish_calls, 1, __ATOMIC_SEQ_CST);
    /* The table is complete when finish runs. */
    if (!tab.cos || tab.cos(0.0) != 1.0) {
        snprintf(why, len, "table incomplete");
        return -1;
    }
    snprintf(why, len, "%s (version 7)", name);
    return 0;
}

static int finish_fails(const dv__dynlib_spec_t *spec, const char *name,
                        void *lib, char *why, size_t len) {
    (void)spec;
    (void)lib;
    snprintf(why, len, "%s: init failed (3)", name);
    return -1;
}

Test(dynlib, prepare_and_finish_steps) {
    dv__dynlib_spec_t s = spec_of(syms_opt, N(syms_opt));
    s.names = libm_only;
    s.prepare = reject_prepare;
    dv__dynlib_t dl;
    dv__dynlib_open(&s, &dl);
    cr_assert_eq(dl.result, DV_ERROR_BACKEND_UNAVAILABLE);
    cr_assert_str_eq(dl.reason, "libm.so.6 is the wrong kind");

    s.prepare = NULL;
    s.finish = finish_fails;
    dv__dynlib_open(&s, &dl);
    cr_assert_eq(dl.result, DV_ERROR_BACKEND_UNAVAILABLE);
    cr_assert_str_eq(dl.reason, "libm.so.6: init failed (3)");
    cr_assert_null(tab.cos, "zeroed after a failed finish");

    s.finish = finish_ok;
    dv__dynlib_open(&s, &dl);
    cr_assert_eq(dl.result, DV_OK, "%s", dl.reason);
    cr_assert_str_eq(dl.reason, "libm.so.6 (version 7)", "finish's note");
    dv__lib_close(dl.lib);
}

static dv__dynlib_t once_dl = DV__DYNLIB_INIT;
static dv__dynlib_spec_t once_spec;

static void *load_racer(void *arg) {
    (void)arg;
    return (void *)(intptr_t)dv__dynlib_load(&once_dl, &once_spec);
}

Test(dynlib, loads_once_under_a_race) {
    once_spec = spec_of(syms_opt, N(syms_opt));
    once_spec.names = libm_only;
    once_spec.finish = finish_ok;
    finish_calls = 0;
    pthread_t t[8];
    for (int i = 0; i < 8; i++) {
        cr_assert_eq(pthread_create(&t[i], NULL, load_racer, NULL), 0);
    }
    for (int i = 0; i < 8; i++) {
        void *r = NULL;
        pthread_join(t[i], &r);
        cr_assert_eq((dv_result_t)(intptr_t)r, DV_OK, "%s", once_dl.reason);
    }
    cr_assert_eq(finish_calls, 1);
    cr_assert(dv__dynlib_done(&once_dl));
    /* Later calls return the first outcome, whatever the spec says now. */
    once_spec.names = NULL;
    cr_assert_eq(dv__dynlib_load(&once_dl, &once_spec), DV_OK);
    cr_assert_eq(finish_calls, 1);
    cr_assert_str_eq(once_dl.reason, "libm.so.6 (version 7)");
}
