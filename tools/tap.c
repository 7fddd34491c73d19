/*
 * tap.c - reading a Criterion TAP report (tap.h).
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Appends text to the case's detail, truncating quietly. */
static void detail_add(dv_tap_case_t *c, const char *text, size_t n) {
    size_t len = strlen(c->detail);
    if (len + 1 >= sizeof(c->detail)) {
        return;
    }
    if (n > sizeof(c->detail) - 1 - len) {
        n = sizeof(c->detail) - 1 - len;
    }
    memcpy(c->detail + len, text, n);
    c->detail[len + n] = '\0';
}

static void chomp(char *line) {
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) {
        line[--n] = '\0';
    }
}

static dv_tap_case_t *new_case(dv_tap_t *t) {
    if (t->count == t->cap) {
        int cap = t->cap ? 2 * t->cap : 32;
        dv_tap_case_t *p = realloc(t->cases, (size_t)cap * sizeof(*p));
        if (!p) {
            return NULL;
        }
        t->cases = p;
        t->cap = cap;
    }
    dv_tap_case_t *c = &t->cases[t->count++];
    memset(c, 0, sizeof(*c));
    return c;
}

/* "ok - NAME REST" / "not ok - NAME REST": the case, its status and note. */
static int result_line(dv_tap_t *t, const char *line, dv_tap_case_t **cur) {
    int ok = strncmp(line, "ok - ", 5) == 0;
    if (!ok && strncmp(line, "not ok - ", 9) != 0) {
        return 0;
    }
    const char *name = line + (ok ? 5 : 9);
    size_t n = strcspn(name, " ");
    dv_tap_case_t *c = new_case(t);
    *cur = c;
    if (!c) {
        return -1;
    }
    snprintf(c->name, sizeof(c->name), "%.*s", (int)n, name);
    const char *rest = name + n;
    rest += strspn(rest, " ");
    const char *skip = strstr(rest, "# SKIP");
    if (ok && skip) {
        c->status = DV_TAP_SKIP;
        skip += 6;
        skip += strspn(skip, " ");
        detail_add(c, skip, strlen(skip));
    } else if (ok) {
        c->status = DV_TAP_PASS;
    } else {
        c->status = DV_TAP_FAIL;
        /* "timed out (1.0s)", "unexpected signal after x.c:7": keep. */
        if (*rest && *rest != '(') {
            detail_add(c, rest, strlen(rest));
        }
    }
    return 1;
}

int dv_tap_read(const char *path, dv_tap_t *out) {
    memset(out, 0, sizeof(*out));
    out->plan = -1;
    FILE *f = fopen(path, "r");
    if (!f) {
        return -1;
    }
    char line[2048];
    dv_tap_case_t *cur = NULL; /* the case whose block follows */
    int rc = 0;
    while (fgets(line, sizeof(line), f)) {
        chomp(line);
        int r = result_line(out, line, &cur);
        if (r < 0) {
            rc = -1;
            break;
        }
        if (r > 0) {
            continue;
        }
        if (strncmp(line, "1..", 3) == 0) {
            out->plan = atoi(line + 3);
        } else if (cur && cur->status == DV_TAP_FAIL &&
                   strncmp(line, "  - ", 4) == 0) {
            /* "  - file.c:12: |+": where the next message comes from. */
            const char *at = line + 4;
            size_t n = strcspn(at, " ");
            if (n && at[n - 1] == ':') {
                n--;
            }
            if (cur->detail[0]) {
                detail_add(cur, "\n", 1);
            }
            detail_add(cur, at, n);
            detail_add(cur, ":", 1);
        } else if (cur && cur->status == DV_TAP_FAIL &&
                   strncmp(line, "      ", 6) == 0) {
            detail_add(cur, " ", 1);
            detail_add(cur, line + 6, strlen(line + 6));
        } else if (strncmp(line, "  ...", 5) == 0) {
            cur = NULL;
        }
    }
    fclose(f);
    if (rc != 0) {
        dv_tap_free(out);
    }
    return rc;
}

void dv_tap_free(dv_tap_t *t) {
    free(t->cases);
    t->cases = NULL;
    t->count = t->cap = 0;
}
