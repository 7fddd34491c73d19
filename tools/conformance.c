/*
 * conformance.c - `dynvram conformance` (conformance.h): find the suites,
 * check the backend opens, run each suite on it, print the report.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#include "conformance.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dynvram.h"
#include "proc.h"
#include "tap.h"

/* Where the suites are installed, relative to the tool's own folder (set
 * by the build from the install directories). */
#ifndef DV_TOOL_SUITES_REL
#define DV_TOOL_SUITES_REL "../libexec/dynvram/conformance"
#endif

#define SUITE_LIST "dynvram-suites.txt"
#define PATH_LEN 4096

typedef struct suite_result {
    const char *name;
    int passed, failed, skipped;
    double seconds;
    char problem[512]; /* the suite itself did not run to its end */
} suite_result_t;

#if defined(__MINGW32__)
#define CF_PRINTF(a, b) __attribute__((format(gnu_printf, a, b)))
#elif defined(__GNUC__)
#define CF_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CF_PRINTF(a, b)
#endif

/* snprintf that says whether all of it fit: 0, or -1 when truncated. Paths
 * must fit; messages (say) may be cut. */
static int fits(char *buf, size_t len, const char *fmt, ...) CF_PRINTF(3, 4);
static int fits(char *buf, size_t len, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    return n >= 0 && (size_t)n < len ? 0 : -1;
}

static void say(char *buf, size_t len, const char *fmt, ...) CF_PRINTF(3, 4);
static void say(char *buf, size_t len, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

/* The folder holding the suites: the option, the environment, or the
 * install layout next to this program. */
static int suites_dir(const dv_conformance_opts_t *o, char *dir, size_t len) {
    const char *given = o->suites_dir;
    if (!given || !*given) {
        given = getenv("DYNVRAM_CONFORMANCE_DIR");
    }
    if (given && *given) {
        return fits(dir, len, "%s", given);
    }
    char self[PATH_LEN];
    if (dv_tool_self_dir(o->argv0, self, sizeof(self)) != 0) {
        return -1;
    }
    if (DV_TOOL_SUITES_REL[0] == '/') {
        return fits(dir, len, "%s", DV_TOOL_SUITES_REL);
    }
    return fits(dir, len, "%s/%s", self, DV_TOOL_SUITES_REL);
}

/* The suite names listed in DIR/dynvram-suites.txt (whitespace separated),
 * into names (each malloc'ed). Returns the count, or -1. */
static int read_suite_list(const char *dir, char **names, int max) {
    char path[PATH_LEN];
    FILE *f = fits(path, sizeof(path), "%s/%s", dir, SUITE_LIST) == 0
                  ? fopen(path, "r")
                  : NULL;
    if (!f) {
        return -1;
    }
    int n = 0;
    char word[128];
    while (n < max && fscanf(f, "%127s", word) == 1) {
        names[n] = malloc(strlen(word) + 1);
        if (!names[n]) {
            break;
        }
        strcpy(names[n++], word);
    }
    fclose(f);
    return n;
}

/* Opens device 0 of the backend the way the suites will, and says what it
 * is. 0, or -1 with the reason printed. */
static int backend_opens(const dv_conformance_opts_t *o, const char *lib) {
    dv_device_options_t opts;
    dv_device_options_init(&opts);
    opts.backend = lib;
    opts.backend_options = o->backend_options;
    dv_device_t *dev = NULL;
    dv_result_t r = dv_device_open(&opts, &dev);
    if (r != DV_OK) {
        fflush(stdout);
        fprintf(stderr,
                "dynvram conformance: the backend cannot open device "
                "0: %s\n",
                r == DV_OK ? "?" : dv_last_error());
        return -1;
    }
    dv_device_caps_t c;
    dv_device_get_caps(dev, &c);
    printf("backend:  %s, device 0: %s\n", c.backend, c.name);
    printf("          granularity %llu KiB, memory %llu MiB, caps:%s%s%s%s\n",
           (unsigned long long)(c.granularity >> 10),
           (unsigned long long)(c.total_memory >> 20),
           c.flags & DV_CAP_FENCES ? " fences" : "",
           c.flags & DV_CAP_ASYNC_COPY ? " async-copy" : "",
           c.flags & DV_CAP_HOST_REGISTER ? " host-register" : "",
           c.flags & DV_CAP_HOST_ACCESSIBLE ? " host-accessible" : "");
    dv_device_close(dev);
    return 0;
}

/* The last lines of a file, indented, for a suite that stopped early. */
static void print_tail(const char *path, int lines) {
    FILE *f = fopen(path, "r");
    if (!f) {
        return;
    }
    char ring[16][512];
    int n = 0;
    if (lines > 16) {
        lines = 16;
    }
    while (fgets(ring[n % lines], sizeof(ring[0]), f)) {
        n++;
    }
    fclose(f);
    for (int i = n > lines ? n - lines : 0; i < n; i++) {
        printf("      | %s", ring[i % lines]);
        size_t len = strlen(ring[i % lines]);
        if (len == 0 || ring[i % lines][len - 1] != '\n') {
            putchar('\n');
        }
    }
}

/* The first "SKIP: ..." line of a suite's output (testdev.c writes it when
 * the backend is unavailable), into why. */
static void skip_reason(const char *path, char *why, size_t len) {
    FILE *f = fopen(path, "r");
    char line[512];
    say(why, len, "the suite skipped itself");
    while (f && fgets(line, sizeof(line), f)) {
        if (strncmp(line, "SKIP: ", 6) == 0) {
            line[strcspn(line, "\n")] = '\0';
            say(why, len, "%s", line + 6);
            break;
        }
    }
    if (f) {
        fclose(f);
    }
}

/* Prints each case of one kind with its detail, indented. */
static void print_cases(const dv_tap_t *t, dv_tap_status_t kind) {
    for (int i = 0; i < t->count; i++) {
        const dv_tap_case_t *c = &t->cases[i];
        if (c->status != kind) {
            continue;
        }
        printf("  %s\n", c->name);
        const char *d = c->detail;
        while (*d) {
            size_t n = strcspn(d, "\n");
            printf("      %.*s\n", (int)n, d);
            d += n + (d[n] == '\n');
        }
    }
}

/* Runs one suite; fills res, prints its failures and skips as they come. */
static void run_suite(const dv_conformance_opts_t *o, const char *dir,
                      const char *tmp, const char *lib, suite_result_t *res) {
    char prog[PATH_LEN], tap[PATH_LEN], out[PATH_LEN], tap_arg[PATH_LEN];
    char env_backend[PATH_LEN], env_opts[1024];
    if (fits(prog, sizeof(prog), "%s/dv_test_%s", dir, res->name) ||
        fits(tap, sizeof(tap), "%s/%s.tap", tmp, res->name) ||
        fits(out, sizeof(out), "%s/%s.out", tmp, res->name) ||
        fits(tap_arg, sizeof(tap_arg), "--tap=%s", tap) ||
        fits(env_backend, sizeof(env_backend), "DYNVRAM_BACKEND=%s", lib) ||
        fits(env_opts, sizeof(env_opts), "DV_TEST_BACKEND_OPTIONS=%s",
             o->backend_options ? o->backend_options : "")) {
        say(res->problem, sizeof(res->problem), "paths or options too long");
        return;
    }
    if (!dv_tool_is_file(prog)) {
        say(res->problem, sizeof(res->problem), "%s is missing", prog);
        return;
    }
    const char *env[4];
    int ne = 0;
    env[ne++] = env_backend;
    if (o->backend_options) {
        env[ne++] = env_opts;
    }
    if (o->real_driver) {
        env[ne++] = "DV_TEST_REAL_DRIVER=1";
    }
    env[ne] = NULL;
    /* One job: the suites share process-wide test state (the injecting
     * wrapper), as under CTest. */
    const char *argv[] = {prog,    "--jobs", "1", "--ascii", "--short-filename",
                          tap_arg, NULL};
    int status = 0;
    char why[256] = "";
    double t0 = dv_tool_now_ms();
    int rc =
        dv_tool_run(argv, env, out, o->timeout_s, &status, why, sizeof(why));
    res->seconds = (dv_tool_now_ms() - t0) / 1000.0;
    if (rc != 0) {
        say(res->problem, sizeof(res->problem), "cannot run %s: %s", prog, why);
        return;
    }
    if (status == 77) {
        char reason[400];
        skip_reason(out, reason, sizeof(reason));
        say(res->problem, sizeof(res->problem), "skipped as a whole: %s",
            reason);
        return;
    }
    dv_tap_t t;
    if (dv_tap_read(tap, &t) != 0) {
        t.plan = -1;
        t.count = 0;
        t.cases = NULL;
    }
    for (int i = 0; i < t.count; i++) {
        res->passed += t.cases[i].status == DV_TAP_PASS;
        res->failed += t.cases[i].status == DV_TAP_FAIL;
        res->skipped += t.cases[i].status == DV_TAP_SKIP;
    }
    if (status == DV_TOOL_TIMED_OUT) {
        say(res->problem, sizeof(res->problem),
            "timed out after %d s (--timeout)", o->timeout_s);
    } else if (status < 0) {
        say(res->problem, sizeof(res->problem), "killed by signal %d", -status);
    } else if (t.plan < 0 || t.count < t.plan) {
        say(res->problem, sizeof(res->problem),
            "stopped after %d of %d cases (exit status %d)", t.count, t.plan,
            status);
    } else if (status != 0 && res->failed == 0) {
        say(res->problem, sizeof(res->problem),
            "exit status %d without a failed case", status);
    }
    if (res->failed) {
        printf("\n%s: %d failed\n", res->name, res->failed);
        print_cases(&t, DV_TAP_FAIL);
        for (int i = 0; i < t.count; i++) {
            /* Criterion's filter names a case "suite/case". */
            const char *c = t.cases[i].name, *sep = strstr(c, "::");
            if (t.cases[i].status == DV_TAP_FAIL && sep) {
                printf("  to rerun one: DYNVRAM_BACKEND=%s%s%s%s%s %s "
                       "--verbose --filter '%.*s/%s'\n",
                       lib,
                       o->backend_options ? " DV_TEST_BACKEND_OPTIONS='" : "",
                       o->backend_options ? o->backend_options : "",
                       o->backend_options ? "'" : "",
                       o->real_driver ? " DV_TEST_REAL_DRIVER=1" : "", prog,
                       (int)(sep - c), c, sep + 2);
                break;
            }
        }
    }
    if (res->skipped) {
        printf("\n%s: %d skipped\n", res->name, res->skipped);
        print_cases(&t, DV_TAP_SKIP);
    }
    if (res->problem[0]) {
        printf("\n%s: %s; its last output:\n", res->name, res->problem);
        print_tail(out, 12);
    }
    dv_tap_free(&t);
}

static void print_table(const suite_result_t *res, int n) {
    int p = 0, f = 0, s = 0;
    double secs = 0;
    printf("\n%-14s %7s %7s %8s %8s\n", "suite", "passed", "failed", "skipped",
           "seconds");
    for (int i = 0; i < n; i++) {
        printf("%-14s %7d %7d %8d %8.1f%s\n", res[i].name, res[i].passed,
               res[i].failed, res[i].skipped, res[i].seconds,
               res[i].problem[0] ? "  (did not complete)" : "");
        p += res[i].passed;
        f += res[i].failed;
        s += res[i].skipped;
        secs += res[i].seconds;
    }
    printf("%-14s %7d %7d %8d %8.1f\n", "total", p, f, s, secs);
}

int dv_conformance_run(const dv_conformance_opts_t *o) {
    char where[PATH_LEN], dir[PATH_LEN], lib[PATH_LEN], tmp[PATH_LEN];
    char *known[DV_CONFORMANCE_MAX_SUITES];
    int status = 1;
    if (!dv_tool_can_run(where, sizeof(where))) {
        fprintf(stderr, "dynvram conformance: %s\n", where);
        return 1;
    }
    if (suites_dir(o, where, sizeof(where)) != 0) {
        fprintf(stderr, "dynvram conformance: cannot tell where the suites "
                        "are: give --suites-dir\n");
        return 1;
    }
    if (dv_tool_abspath(where, dir, sizeof(dir)) != 0) {
        memcpy(dir, where, sizeof(dir)); /* reported missing below */
    }
    int n_known = read_suite_list(dir, known, DV_CONFORMANCE_MAX_SUITES);
    if (n_known <= 0) {
        fprintf(stderr,
                "dynvram conformance: no suites in %s (no %s): install "
                "dynvram built with its tests (DV_BUILD_TESTS=ON), or give "
                "--suites-dir\n",
                dir, SUITE_LIST);
        return 1;
    }
    suite_result_t res[DV_CONFORMANCE_MAX_SUITES];
    int n = 0;
    for (int i = 0; i < n_known; i++) {
        int wanted = o->suite_count == 0;
        for (int k = 0; k < o->suite_count; k++) {
            wanted |= strcmp(o->suites[k], known[i]) == 0;
        }
        if (wanted) {
            memset(&res[n], 0, sizeof(res[n]));
            res[n++].name = known[i];
        }
    }
    for (int k = 0; k < o->suite_count; k++) {
        int found = 0;
        for (int i = 0; i < n_known; i++) {
            found |= strcmp(o->suites[k], known[i]) == 0;
        }
        if (!found) {
            fprintf(stderr, "dynvram conformance: --suite '%s': not one of",
                    o->suites[k]);
            for (int i = 0; i < n_known; i++) {
                fprintf(stderr, " %s", known[i]);
            }
            fputc('\n', stderr);
            status = 2;
            goto out;
        }
    }
    if (o->list) {
        printf("suites in %s:\n", dir);
        for (int i = 0; i < n; i++) {
            printf("  %-14s dv_test_%s\n", res[i].name, res[i].name);
        }
        status = 0;
        goto out;
    }
    if (!dv_tool_is_file(o->library) ||
        dv_tool_abspath(o->library, lib, sizeof(lib)) != 0) {
        fprintf(stderr, "dynvram conformance: --hal-library %s: no such file\n",
                o->library);
        status = 2;
        goto out;
    }
    printf("dynvram conformance %d.%d.%d\nlibrary:  %s\nsuites:   %s\n",
           DV_VERSION_MAJOR, DV_VERSION_MINOR, DV_VERSION_PATCH, lib, dir);
    if (backend_opens(o, lib) != 0) {
        goto out;
    }
    if (dv_tool_tempdir(tmp, sizeof(tmp)) != 0) {
        fprintf(stderr, "dynvram conformance: cannot make a temporary "
                        "folder\n");
        goto out;
    }
    int failed = 0, incomplete = 0;
    for (int i = 0; i < n; i++) {
        run_suite(o, dir, tmp, lib, &res[i]);
        failed += res[i].failed;
        incomplete += res[i].problem[0] != '\0';
    }
    dv_tool_remove_tree(tmp);
    print_table(res, n);
    status = failed || incomplete ? 1 : 0;
    if (status) {
        printf("\nresult: FAIL (%d failed case(s), %d suite(s) did not "
               "complete)\n",
               failed, incomplete);
    } else {
        printf("\nresult: PASS\n");
    }
out:
    for (int i = 0; i < n_known; i++) {
        free(known[i]);
    }
    return status;
}
