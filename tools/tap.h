/*
 * tap.h - reading the TAP report a Criterion test program writes
 * (`--tap=FILE`), for `dynvram conformance`.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * What Criterion 2.4 writes, and what is taken from it:
 *     1..N                                   the plan: N cases
 *     ok - suite::case  (0.01s)              passed
 *     ok - suite::case  # SKIP reason        skipped, with its reason
 *     not ok - suite::case  (0.00s)          failed; then its assertions:
 *       ---
 *       failures:
 *       - test_x.c:12: |+
 *           Assertion failed: message        (indented message lines)
 *       ...
 *     not ok - suite::case timed out (1.0s)  failed, the note kept
 * Anything else is ignored.
 *
 * Contract: dv_tap_read fills *out (zeroed first) and returns 0, or -1 when
 * the file cannot be read or host memory runs out. Failure details are
 * "file:line: message" per failed assertion, joined by newlines, at most
 * DV_TAP_DETAIL bytes. dv_tap_free releases what dv_tap_read allocated.
 */
#ifndef DV_TOOL_TAP_H
#define DV_TOOL_TAP_H

#define DV_TAP_DETAIL 1024

typedef enum dv_tap_status {
    DV_TAP_PASS,
    DV_TAP_FAIL,
    DV_TAP_SKIP
} dv_tap_status_t;

typedef struct dv_tap_case {
    char name[160]; /* "suite::case" */
    dv_tap_status_t status;
    char detail[DV_TAP_DETAIL]; /* skip reason or failure messages */
} dv_tap_case_t;

typedef struct dv_tap {
    int plan; /* cases announced, -1 without a plan line */
    dv_tap_case_t *cases;
    int count, cap;
} dv_tap_t;

int dv_tap_read(const char *path, dv_tap_t *out);
void dv_tap_free(dv_tap_t *t);

#endif /* DV_TOOL_TAP_H */
