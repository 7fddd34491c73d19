/*
 * error.c - result strings, the thread-local last-error message, logging.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/os.h"

#define DV__MSG_LEN 1024

static DV__THREAD_LOCAL char dv_last_msg[DV__MSG_LEN];

const char *dv_result_str(dv_result_t r) {
    switch (r) {
#define DV__RESULT_STR(name, value, text)                                      \
    case name:                                                                 \
        return text;
        DV_RESULT_LIST(DV__RESULT_STR)
#undef DV__RESULT_STR
    default:
        return "unknown result";
    }
}

const char *dv_result_name(dv_result_t r) {
    switch (r) {
#define DV__RESULT_NAME(name, value, text)                                     \
    case name:                                                                 \
        return #name;
        DV_RESULT_LIST(DV__RESULT_NAME)
#undef DV__RESULT_NAME
    default:
        return "DV_RESULT_UNKNOWN";
    }
}

const char *dv_last_error(void) { return dv_last_msg; }

dv_result_t dv__ok(void) {
    dv_last_msg[0] = '\0';
    return DV_OK;
}

dv_result_t dv__outcome(dv_result_t r) {
    dv_last_msg[0] = '\0';
    return r;
}

dv_result_t dv__fail(dv_result_t r, const char *fmt, ...) {
    /* Format into a local first: fmt's arguments may point into the
     * current message (a message that quotes the previous one). */
    char body[DV__MSG_LEN];
    const char *name = dv_result_name(r);
    size_t n = strlen(name);
    memcpy(body, name, n);
    body[n++] = ':';
    body[n++] = ' ';
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body + n, sizeof(body) - n, fmt, ap);
    va_end(ap);
    memcpy(dv_last_msg, body, sizeof(body));
    dv__log(DV_LOG_DEBUG, "%s", dv_last_msg);
    return r;
}

/* ---- logging ----------------------------------------------------------- */

static dv__once_t log_once = DV__ONCE_INIT;
static dv__mutex_t log_lock;
/* Read on every log call from any thread, written by dv_log_set_level. */
static volatile int log_level = DV_LOG_WARNING;
static dv_log_fn log_fn;
static void *log_user;

static const char *const level_names[] = {
    "none", "critical", "error", "warning", "info", "debug", "verbose",
};

static int ieq(const char *a, const char *b) {
    for (; *a && *b; a++, b++) {
        char x = (*a >= 'A' && *a <= 'Z') ? (char)(*a + 32) : *a;
        char y = (*b >= 'A' && *b <= 'Z') ? (char)(*b + 32) : *b;
        if (x != y) {
            return 0;
        }
    }
    return *a == *b;
}

static void log_init(void) {
    dv__mutex_init(&log_lock);
    const char *env = dv__getenv("DYNVRAM_LOG");
    if (!env || !*env) {
        return;
    }
    char *end = NULL;
    long v = strtol(env, &end, 10);
    if (end && *end == '\0' && v >= DV_LOG_NONE && v <= DV_LOG_VERBOSE) {
        dv__atomic_store_int(&log_level, (int)v);
        return;
    }
    for (int i = 0; i <= DV_LOG_VERBOSE; i++) {
        if (ieq(env, level_names[i])) {
            dv__atomic_store_int(&log_level, i);
            return;
        }
    }
}

dv_result_t dv_log_set_level(dv_log_level_t level) {
    dv__once(&log_once, log_init);
    if ((int)level < DV_LOG_NONE || (int)level > DV_LOG_VERBOSE) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "dv_log_set_level: level %d is not a dv_log_level_t",
                        (int)level);
    }
    dv__atomic_store_int(&log_level, (int)level);
    return dv__ok();
}

dv_log_level_t dv_log_get_level(void) {
    dv__once(&log_once, log_init);
    return (dv_log_level_t)dv__atomic_load_int(&log_level);
}

dv_result_t dv_log_set_callback(dv_log_fn fn, void *user) {
    dv__once(&log_once, log_init);
    dv__mutex_lock(&log_lock);
    log_fn = fn;
    log_user = user;
    dv__mutex_unlock(&log_lock);
    return dv__ok();
}

int dv__log_enabled(dv_log_level_t level) {
    dv__once(&log_once, log_init);
    return (int)level <= dv__atomic_load_int(&log_level) &&
           level != DV_LOG_NONE;
}

void dv__log(dv_log_level_t level, const char *fmt, ...) {
    if (!dv__log_enabled(level)) {
        return;
    }
    char msg[DV__MSG_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    dv__mutex_lock(&log_lock);
    dv_log_fn fn = log_fn;
    void *user = log_user;
    dv__mutex_unlock(&log_lock);
    if (fn) {
        fn(level, msg, user);
    } else {
        fprintf(stderr, "dynvram[%s]: %s\n", level_names[level], msg);
    }
}
