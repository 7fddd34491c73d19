/*
 * dynvram_tool.c - the `dynvram` command: `info`, `demo` and `conformance`
 * (conformance.c runs the generic suites on a backend library).
 * SPDX-License-Identifier: Apache-2.0
 *
 * Command-line contract (tests/newcomer/newcomer.sh checks it):
 *   - `--help` / `-h` after any command prints that command's usage on
 *     stdout and exits 0; `dynvram --version` prints the version.
 *   - An option that is not known is reported as "unknown option" and
 *     exits 2, whether or not a value follows it.
 *   - Numbers are whole decimal numbers inside a stated range: no sign, no
 *     fraction, no suffix, no wrap-around. A bad value is reported with the
 *     option's name and its valid range, exit 2; nothing falls back to a
 *     default silently.
 *   - Errors go to stderr after stdout is flushed, so redirected output
 *     keeps its order.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conformance.h"
#include "demo.h"
#include "dynvram.h"

#define INFO_MAX_DEVICES 4 /* devices opened and described per backend */

/* Limits of the demo's options. Two models of LAYERS x LAYER_MIB are held
 * in host memory, so the product, not each limit, is what a machine can
 * afford; the demo reports it when malloc fails. */
#define STEPS_MAX 1000
#define LAYERS_MAX 1024
#define LAYER_MIB_MAX 1024
#define BUDGET_MIB_MAX (16ull << 20) /* 16 TiB */
#define TIMEOUT_MAX 3600               /* seconds per conformance suite */

#if defined(__MINGW32__)
#define TOOL_PRINTF(a, b) __attribute__((format(gnu_printf, a, b)))
#elif defined(__GNUC__)
#define TOOL_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define TOOL_PRINTF(a, b)
#endif

static void tool_error(const char *cmd, const char *fmt, ...) TOOL_PRINTF(2, 3);

/* "dynvram CMD: message" on stderr, after flushing stdout. */
static void tool_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "dynvram%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void usage_main(FILE *f) {
    fprintf(f,
            "usage: dynvram COMMAND [OPTIONS]\n"
            "       dynvram --version | --help\n"
            "\n"
            "commands:\n"
            "  info          backends in probe order, devices, capabilities,\n"
            "                budgets\n"
            "  demo          two models larger than the budget taking turns\n"
            "  conformance   the generic test suites on a backend library\n"
            "\n"
            "`dynvram COMMAND --help` describes a command's options.\n");
}

static void usage_info(FILE *f) {
    fprintf(
        f,
        "usage: dynvram info\n"
        "\n"
        "Lists every backend in probe order, whether it loaded (and why not),\n"
        "and for each available one its devices (at most %d), capabilities\n"
        "and budget. The host backend simulates devices on host memory:\n"
        "DYNVRAM_HOST_DEVICES (1..64, default 4) sets how many,\n"
        "DYNVRAM_HOST_CAPACITY (e.g. 6G, 512M; default 4G) their size.\n"
        "Exit status: 0 if some device opened, 1 if none, 2 on bad usage.\n",
        INFO_MAX_DEVICES);
}

static void usage_demo(FILE *f) {
    fprintf(
        f,
        "usage: dynvram demo [--backend NAME] [--steps N] [--layers N]\n"
        "                    [--layer-mib N] [--budget-mib N] [--quiet]\n"
        "\n"
        "Runs a model larger than the budget for several steps through\n"
        "fault / stream / unpin, then a second model that takes priority,\n"
        "then the first again, and prints a table.\n"
        "\n"
        "  --backend NAME   cuda, hip, levelzero or host (default: the first\n"
        "                   available in that order)\n"
        "  --steps N        steps per phase, 1..%d (default 4)\n"
        "  --layers N       layers per model, 1..%d (default 24)\n"
        "  --layer-mib N    MiB per layer, also the page size, 1..%d (default "
        "32)\n"
        "  --budget-mib N   device budget in MiB, from one layer up to %llu\n"
        "                   (default: two thirds of a model plus one layer)\n"
        "  --quiet          only the final table\n"
        "  -h, --help       this text\n",
        STEPS_MAX, LAYERS_MAX, LAYER_MIB_MAX,
        (unsigned long long)BUDGET_MIB_MAX);
}

static void usage_conformance(FILE *f) {
    fprintf(
        f,
        "usage: dynvram conformance --hal-library PATH [--suite NAME]...\n"
        "                           [--backend-options S] [--real-driver]\n"
        "                           [--suites-dir DIR] [--timeout S]\n"
        "       dynvram conformance --list [--suites-dir DIR]\n"
        "\n"
        "Runs dynvram's generic test suites (conformance, policy, recovery,\n"
        "inject, badinput, handles, threads, multidev) against the backend in\n"
        "the shared library PATH, which exports\n"
        "`const dv_hal_ops_t *dv_hal_entry(void)`, and prints a report: per\n"
        "suite the cases passed, failed and skipped, then every failure.\n"
        "docs/porting.md describes the contract the suites check.\n"
        "\n"
        "  --hal-library PATH     the backend library (required)\n"
        "  --suite NAME           only this suite (repeatable)\n"
        "  --backend-options S    backend_options for every device opened\n"
        "  --real-driver          the backend drives a real GPU driver, which\n"
        "                         may reuse a destroyed stream's address and\n"
        "                         may not survive junk stream handles\n"
        "  --suites-dir DIR       where the suites are (default:\n"
        "                         $DYNVRAM_CONFORMANCE_DIR, else the\n"
        "                         install's libexec/dynvram/conformance)\n"
        "  --timeout S            seconds per suite, 1..%d (default 600)\n"
        "  --list                 list the suites, run nothing\n"
        "Exit status: 0 if every case passed or was skipped, 1 if one failed\n"
        "or a suite could not run, 2 on bad usage.\n",
        TIMEOUT_MAX);
}

/* A whole decimal number: digits only, so "-5" never wraps to 2^64 - 5 and
 * "2.5" never becomes 2. Too large saturates to ULLONG_MAX. */
static int is_number(const char *val, unsigned long long *out) {
    unsigned long long v = 0;
    if (!*val) {
        return 0;
    }
    for (const char *p = val; *p; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (d > 9) {
            return 0;
        }
        v = v > (ULLONG_MAX - d) / 10 ? ULLONG_MAX : v * 10 + d;
    }
    *out = v;
    return 1;
}

/* A whole number in [min, max] for option `flag`, else a message naming the
 * flag and its range. */
static int parse_number(const char *cmd, const char *flag, const char *val,
                        unsigned long long min, unsigned long long max,
                        unsigned long long *out) {
    unsigned long long v = 0;
    if (!is_number(val, &v) || v < min || v > max) {
        tool_error(cmd, "%s '%s': want a whole number %llu..%llu", flag, val,
                   min, max);
        return 0;
    }
    *out = v;
    return 1;
}

/* One option of a command: its name and whether it takes a value. */
typedef struct tool_opt {
    const char *name;
    int has_value;
} tool_opt_t;

/* Walks argv[first..] of command `cmd`. Returns 1 with *opt (its index in
 * opts) and *val (NULL for a flag) set, 0 at the end, 2 for --help / -h, -1
 * on a usage error (reported). Accepts "--name value" and "--name=value". */
static int next_opt(const char *cmd, const tool_opt_t *opts, int n_opts,
                    int argc, char **argv, int *i, int *opt, const char **val) {
    if (*i >= argc) {
        return 0;
    }
    const char *a = argv[(*i)++];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
        return 2;
    }
    if (a[0] != '-') {
        tool_error(
            cmd,
            "unexpected argument '%s' (dynvram %s --help lists the options)", a,
            cmd);
        return -1;
    }
    const char *eq = strchr(a, '=');
    size_t len = eq ? (size_t)(eq - a) : strlen(a);
    for (int k = 0; k < n_opts; k++) {
        if (strlen(opts[k].name) != len || strncmp(opts[k].name, a, len) != 0) {
            continue;
        }
        *opt = k;
        *val = NULL;
        if (!opts[k].has_value) {
            if (eq) {
                tool_error(cmd, "%s takes no value", opts[k].name);
                return -1;
            }
            return 1;
        }
        if (eq) {
            *val = eq + 1;
        } else if (*i < argc) {
            *val = argv[(*i)++];
        } else {
            tool_error(cmd, "%s needs a value", opts[k].name);
            return -1;
        }
        return 1;
    }
    tool_error(cmd,
               "unknown option '%.*s' (dynvram %s --help lists the options)",
               (int)len, a, cmd);
    return -1;
}

static void print_device(const char *backend, int d) {
    dv_device_options_t o;
    dv_device_options_init(&o);
    o.backend = backend;
    o.ordinal = d;
    dv_device_t *dev = NULL;
    if (dv_device_open(&o, &dev) != DV_OK) {
        printf("    [%d] cannot open: %s\n", d, dv_last_error());
        return;
    }
    dv_device_caps_t c;
    dv_device_stats_t s;
    dv_device_get_caps(dev, &c);
    dv_result_t r = dv_device_get_stats(dev, &s);
    printf("    [%d] %s\n        total %llu MiB, budget %s%llu MiB, "
           "granularity %llu KiB, page %llu MiB\n        caps:%s%s%s%s\n",
           d, c.name, (unsigned long long)(c.total_memory >> 20),
           r == DV_OK ? "" : "unknown ", (unsigned long long)(s.budget >> 20),
           (unsigned long long)(c.granularity >> 10),
           (unsigned long long)(c.page_size >> 20),
           c.flags & DV_CAP_FENCES ? " fences" : "",
           c.flags & DV_CAP_ASYNC_COPY ? " async-copy" : "",
           c.flags & DV_CAP_HOST_REGISTER ? " host-register" : "",
           c.flags & DV_CAP_HOST_ACCESSIBLE ? " host-accessible" : "");
    if (r != DV_OK) {
        printf("        budget: %s\n", dv_last_error());
    }
    dv_device_close(dev);
}

static int cmd_info(int argc, char **argv) {
    int i = 2, opt;
    const char *val;
    int r =
        next_opt("info", NULL, 0, argc, argv, &i, &opt, &val); /* --help only */
    if (r == 2) {
        usage_info(stdout);
        return 0;
    }
    if (r != 0) {
        return 2;
    }
    printf("dynvram %d.%d.%d\n\nbackends (probe order):\n", DV_VERSION_MAJOR,
           DV_VERSION_MINOR, DV_VERSION_PATCH);
    int any = 0;
    for (int b = 0; b < dv_backend_count(); b++) {
        dv_backend_info_t bi;
        if (dv_backend_probe(b, &bi) != DV_OK) {
            continue;
        }
        printf("  %-10s %-12s %d device(s)  %s\n", bi.name,
               bi.available ? "available" : "unavailable", bi.device_count,
               bi.reason);
        if (!bi.available) {
            continue;
        }
        int n = bi.device_count < INFO_MAX_DEVICES ? bi.device_count
                                                   : INFO_MAX_DEVICES;
        for (int d = 0; d < n; d++) {
            print_device(bi.name, d);
            any = 1;
        }
        if (bi.device_count > n) {
            printf("    ... and %d more\n", bi.device_count - n);
        }
    }
    return any ? 0 : 1;
}

enum { D_BACKEND, D_STEPS, D_LAYERS, D_LAYER_MIB, D_BUDGET_MIB, D_QUIET };

static int cmd_demo(int argc, char **argv) {
    static const tool_opt_t opts[] = {
        [D_BACKEND] = {"--backend", 1},
        [D_STEPS] = {"--steps", 1},
        [D_LAYERS] = {"--layers", 1},
        [D_LAYER_MIB] = {"--layer-mib", 1},
        [D_BUDGET_MIB] = {"--budget-mib", 1},
        [D_QUIET] = {"--quiet", 0},
    };
    dv_demo_opts_t o = {0};
    o.steps = 4;
    o.layers = 24;
    o.layer_mib = 32;
    const char *budget = NULL;
    unsigned long long v;
    int i = 2, opt, r;
    const char *val;
    while ((r = next_opt("demo", opts, (int)(sizeof(opts) / sizeof(opts[0])),
                         argc, argv, &i, &opt, &val)) == 1) {
        switch (opt) {
        case D_BACKEND:
            if (!*val) {
                tool_error("demo", "--backend '': want cuda, hip, levelzero "
                                   "or host");
                return 2;
            }
            o.backend = val;
            break;
        case D_STEPS:
            if (!parse_number("demo", "--steps", val, 1, STEPS_MAX, &v)) {
                return 2;
            }
            o.steps = (int)v;
            break;
        case D_LAYERS:
            if (!parse_number("demo", "--layers", val, 1, LAYERS_MAX, &v)) {
                return 2;
            }
            o.layers = (int)v;
            break;
        case D_LAYER_MIB:
            if (!parse_number("demo", "--layer-mib", val, 1, LAYER_MIB_MAX,
                              &v)) {
                return 2;
            }
            o.layer_mib = v;
            break;
        case D_BUDGET_MIB:
            budget = val; /* its range depends on --layer-mib */
            break;
        default:
            o.quiet = 1;
            break;
        }
    }
    if (r == 2) {
        usage_demo(stdout);
        return 0;
    }
    if (r != 0) {
        return 2;
    }
    if (budget) {
        /* At least one page (a layer): the demo's scratch buffer. */
        if (is_number(budget, &v) && v > 0 && v < o.layer_mib) {
            tool_error(
                "demo",
                "--budget-mib %llu is below one page (%llu MiB, the layer "
                "size): the demo needs at least one page for its scratch "
                "buffer (valid: %llu..%llu, or a smaller --layer-mib)",
                v, (unsigned long long)o.layer_mib,
                (unsigned long long)o.layer_mib,
                (unsigned long long)BUDGET_MIB_MAX);
            return 2;
        }
        if (!parse_number("demo", "--budget-mib", budget, o.layer_mib,
                          BUDGET_MIB_MAX, &v)) {
            return 2;
        }
        o.budget_mib = v;
    }
    return dv_demo_run(&o);
}

enum {
    C_LIBRARY,
    C_SUITE,
    C_BACKEND_OPTIONS,
    C_REAL_DRIVER,
    C_SUITES_DIR,
    C_TIMEOUT,
    C_LIST
};

static int cmd_conformance(int argc, char **argv) {
    static const tool_opt_t opts[] = {
        [C_LIBRARY] = {"--hal-library", 1},
        [C_SUITE] = {"--suite", 1},
        [C_BACKEND_OPTIONS] = {"--backend-options", 1},
        [C_REAL_DRIVER] = {"--real-driver", 0},
        [C_SUITES_DIR] = {"--suites-dir", 1},
        [C_TIMEOUT] = {"--timeout", 1},
        [C_LIST] = {"--list", 0},
    };
    static const char cmd[] = "conformance";
    dv_conformance_opts_t o = {0};
    o.argv0 = argv[0];
    o.timeout_s = 600;
    unsigned long long v;
    int i = 2, opt, r;
    const char *val;
    while ((r = next_opt(cmd, opts, (int)(sizeof(opts) / sizeof(opts[0])),
                         argc, argv, &i, &opt, &val)) == 1) {
        switch (opt) {
        case C_LIBRARY:
            o.library = val;
            break;
        case C_SUITE:
            if (o.suite_count == DV_CONFORMANCE_MAX_SUITES) {
                tool_error(cmd, "--suite: at most %d",
                           DV_CONFORMANCE_MAX_SUITES);
                return 2;
            }
            o.suites[o.suite_count++] = val;
            break;
        case C_BACKEND_OPTIONS:
            o.backend_options = val;
            break;
        case C_REAL_DRIVER:
            o.real_driver = 1;
            break;
        case C_SUITES_DIR:
            o.suites_dir = val;
            break;
        case C_TIMEOUT:
            if (!parse_number(cmd, "--timeout", val, 1, TIMEOUT_MAX, &v)) {
                return 2;
            }
            o.timeout_s = (int)v;
            break;
        default:
            o.list = 1;
            break;
        }
    }
    if (r == 2) {
        usage_conformance(stdout);
        return 0;
    }
    if (r != 0) {
        return 2;
    }
    if (!o.list && (!o.library || !*o.library)) {
        tool_error(cmd, "--hal-library PATH is required (dynvram conformance "
                        "--help)");
        return 2;
    }
    return dv_conformance_run(&o);
}

int main(int argc, char **argv) {
    /* Progress lines appear as they happen even through a pipe; errors are
     * written after a flush (tool_error), so the two streams keep their
     * order when both are redirected to one file. */
    setvbuf(stdout, NULL, _IOLBF, BUFSIZ);
    if (argc < 2) {
        usage_main(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        usage_main(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
        printf("dynvram %d.%d.%d\n", DV_VERSION_MAJOR, DV_VERSION_MINOR,
               DV_VERSION_PATCH);
        return 0;
    }
    if (!strcmp(cmd, "info")) {
        return cmd_info(argc, argv);
    }
    if (!strcmp(cmd, "demo")) {
        return cmd_demo(argc, argv);
    }
    if (!strcmp(cmd, "conformance")) {
        return cmd_conformance(argc, argv);
    }
    if (cmd[0] == '-') {
        tool_error(NULL,
                   "unknown option '%s' (dynvram --help lists the commands)",
                   cmd);
    } else {
        tool_error(NULL,
                   "unknown command '%s' (dynvram --help lists the commands)",
                   cmd);
    }
    return 2;
}
