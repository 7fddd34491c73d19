/*
 * dynvram_tool.c - the `dynvram` command: `info` and `demo`.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demo.h"
#include "dynvram.h"

static int cmd_info(void) {
    printf("dynvram %d.%d.%d\n\nbackends (probe order):\n", DV_VERSION_MAJOR,
           DV_VERSION_MINOR, DV_VERSION_PATCH);
    int any = 0;
    for (int i = 0; i < dv_backend_count(); i++) {
        dv_backend_info_t bi;
        if (dv_backend_probe(i, &bi) != DV_OK) {
            continue;
        }
        printf("  %-10s %-12s %d device(s)  %s\n", bi.name,
               bi.available ? "available" : "unavailable", bi.device_count,
               bi.reason);
        if (!bi.available) {
            continue;
        }
        int n = bi.device_count < 4 ? bi.device_count : 4;
        for (int d = 0; d < n; d++) {
            dv_device_options_t o;
            dv_device_options_init(&o);
            o.backend = bi.name;
            o.ordinal = d;
            dv_device_t *dev = NULL;
            if (dv_device_open(&o, &dev) != DV_OK) {
                printf("    [%d] cannot open: %s\n", d, dv_last_error());
                continue;
            }
            dv_device_caps_t c;
            dv_device_stats_t s;
            dv_device_get_caps(dev, &c);
            dv_result_t r = dv_device_get_stats(dev, &s);
            printf("    [%d] %s\n        total %llu MiB, budget %s%llu MiB, "
                   "granularity %llu KiB, page %llu MiB\n        caps:%s%s%s%s\n",
                   d, c.name, (unsigned long long)(c.total_memory >> 20),
                   r == DV_OK ? "" : "unknown ",
                   (unsigned long long)(s.budget >> 20),
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
            any = 1;
        }
    }
    return any ? 0 : 1;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: dynvram info\n"
            "       dynvram demo [--backend NAME] [--steps N] [--layers N]\n"
            "                    [--layer-mib N] [--budget-mib N] [--quiet]\n"
            "\n"
            "info  lists backends, devices, capabilities and budgets.\n"
            "demo  runs a model larger than the budget for several steps\n"
            "      through fault / stream / unpin, then a second model that\n"
            "      takes priority, then the first again, and prints a table.\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "info")) {
        return cmd_info();
    }
    if (!strcmp(argv[1], "demo")) {
        dv_demo_opts_t o = {0};
        o.steps = 4;
        for (int i = 2; i < argc; i++) {
            const char *a = argv[i];
            const char *val = i + 1 < argc ? argv[i + 1] : NULL;
            if (!strcmp(a, "--quiet")) {
                o.quiet = 1;
                continue;
            }
            if (!val) {
                fprintf(stderr, "dynvram demo: %s needs a value\n", a);
                return 2;
            }
            i++;
            if (!strcmp(a, "--backend")) {
                o.backend = val;
            } else if (!strcmp(a, "--steps")) {
                o.steps = atoi(val);
            } else if (!strcmp(a, "--layers")) {
                o.layers = atoi(val);
            } else if (!strcmp(a, "--layer-mib")) {
                o.layer_mib = strtoull(val, NULL, 10);
            } else if (!strcmp(a, "--budget-mib")) {
                o.budget_mib = strtoull(val, NULL, 10);
            } else {
                fprintf(stderr, "dynvram demo: unknown option %s\n", a);
                usage(stderr);
                return 2;
            }
        }
        if (o.steps < 1 || o.steps > 1000) {
            fprintf(stderr, "dynvram demo: --steps must be 1..1000\n");
            return 2;
        }
        return dv_demo_run(&o);
    }
    fprintf(stderr, "dynvram: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
