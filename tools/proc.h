/*
 * proc.h - the few operating-system services the dynvram tool needs beyond
 * the library: running a program with extra environment and a deadline,
 * where the tool itself lives, temporary files.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * One implementation per platform, chosen by the build: proc_posix.c and
 * proc_win.c (where `dynvram conformance` is not available yet: the
 * suites are built on POSIX systems only, so every call there fails with
 * a reason).
 *
 * Contract:
 *  - dv_tool_can_run: 1 when this platform can run the suites, else 0 with
 *    the reason in why.
 *  - dv_tool_run: runs argv[0] (a path) with argv, this process's
 *    environment plus the "NAME=value" entries of env (NULL-terminated,
 *    overriding), stdout and stderr both to the file out_path. Waits at most
 *    timeout_s seconds, then kills it and everything it started. Returns 0
 *    when the program ran, with *status its exit code (0..255), -N when
 *    signal N ended it, or DV_TOOL_TIMED_OUT; -1 when it could not be
 *    started (why says so).
 *  - dv_tool_self_dir: the folder of the running program (argv0 helps where
 *    the system cannot say). 0 or -1.
 *  - dv_tool_abspath: `path` made absolute (the file must exist). 0 or -1.
 *  - dv_tool_is_file: 1 when `path` is an existing regular file.
 *  - dv_tool_tempdir: a fresh private folder; dv_tool_remove_tree removes it
 *    and the plain files in it.
 *  - dv_tool_now_ms: a monotonic clock in milliseconds.
 */
#ifndef DV_TOOL_PROC_H
#define DV_TOOL_PROC_H

#include <stddef.h>

#define DV_TOOL_TIMED_OUT (-1000)

int dv_tool_can_run(char *why, size_t why_len);
int dv_tool_run(const char *const *argv, const char *const *env,
                const char *out_path, int timeout_s, int *status, char *why,
                size_t why_len);
int dv_tool_self_dir(const char *argv0, char *buf, size_t len);
int dv_tool_abspath(const char *path, char *buf, size_t len);
int dv_tool_is_file(const char *path);
int dv_tool_tempdir(char *buf, size_t len);
void dv_tool_remove_tree(const char *dir);
double dv_tool_now_ms(void);

#endif /* DV_TOOL_PROC_H */
