/*
 * conformance.h - `dynvram conformance`: dynvram's generic test suites run
 * against a backend loaded from a shared library, with a report.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * The suites are the programs of tests/core (conformance, policy, ...),
 * installed with the library when tests are built, in
 * <libexecdir>/dynvram/conformance next to a list of their names
 * (dynvram-suites.txt). Each runs once, in its own process, with
 * DYNVRAM_BACKEND set to the library (tests/support/testdev.h), and
 * writes a TAP report the runner reads. docs/porting.md describes the
 * whole porting kit.
 *
 * Contract of dv_conformance_run: prints the report on stdout (problems
 * that stop it on stderr) and returns the exit status: 0 when every case
 * passed or was skipped, 1 when a case failed, a suite could not run or
 * ended early, or the backend cannot open a device, 2 for bad usage (an
 * unknown suite, a library that is not a file).
 */
#ifndef DV_TOOL_CONFORMANCE_H
#define DV_TOOL_CONFORMANCE_H

#define DV_CONFORMANCE_MAX_SUITES 32

typedef struct dv_conformance_opts {
    const char *argv0;
    const char *library;         /* --hal-library, required */
    const char *backend_options; /* --backend-options, or NULL */
    const char *suites_dir;      /* --suites-dir, or NULL: found */
    const char *suites[DV_CONFORMANCE_MAX_SUITES]; /* --suite; none: all */
    int suite_count;
    int real_driver; /* --real-driver */
    int timeout_s;   /* per suite */
    int list;        /* --list: name the suites and stop */
} dv_conformance_opts_t;

int dv_conformance_run(const dv_conformance_opts_t *o);

#endif /* DV_TOOL_CONFORMANCE_H */
