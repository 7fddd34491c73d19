/*
 * proc_win.c - proc.h on Windows: not available yet. The generic suites
 * are Criterion programs built on POSIX systems only, so there is nothing
 * for `dynvram conformance` to run here; every call says so.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdio.h>

#include "proc.h"

static const char not_here[] =
    "dynvram conformance is not available on Windows yet (the suites are "
    "built on POSIX systems only)";

int dv_tool_can_run(char *why, size_t why_len) {
    snprintf(why, why_len, "%s", not_here);
    return 0;
}

int dv_tool_run(const char *const *argv, const char *const *env,
                const char *out_path, int timeout_s, int *status, char *why,
                size_t why_len) {
    (void)argv;
    (void)env;
    (void)out_path;
    (void)timeout_s;
    (void)status;
    snprintf(why, why_len, "%s", not_here);
    return -1;
}

int dv_tool_self_dir(const char *argv0, char *buf, size_t len) {
    (void)argv0;
    snprintf(buf, len, "%s", not_here);
    return -1;
}

int dv_tool_abspath(const char *path, char *buf, size_t len) {
    (void)path;
    (void)buf;
    (void)len;
    return -1;
}

int dv_tool_is_file(const char *path) {
    (void)path;
    return 0;
}

int dv_tool_tempdir(char *buf, size_t len) {
    snprintf(buf, len, "%s", not_here);
    return -1;
}

void dv_tool_remove_tree(const char *dir) { (void)dir; }

double dv_tool_now_ms(void) { return 0.0; }
