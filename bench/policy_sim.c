/*
 * policy_sim.c - the policy simulator of the benchmark spec: access traces
 * replayed against dynvram's real policy (the library itself, on the host
 * backend with 4 KiB pages), against LRU and against Belady's MIN, counting
 * the pages each brings in and the bytes each copies.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Policies
 *   dv-fault      dv_fault / dv_unpin per access (watermark recovery on); a
 *                 page is copied when its generation changed, an offloaded
 *                 access is streamed (copied, not kept)
 *   dv-fault-norec  the same with watermark_recovery = DV_RECOVERY_OFF
 *   dv-stream     a dv_schedule per model over one step's accesses (spread
 *                 placement); its ring (2 slots of a page) is in the budget
 *   dv-stream-prefix  the same with DV_PLACEMENT_PREFIX
 *   LRU, MIN      a cache of `budget` pages that brings in every miss
 *   MIN-bypass    Belady with bypass: a miss whose next use is the farthest
 *                 is copied without being kept; the least bytes any policy
 *                 that may stream can copy (a lower bound for all rows)
 * page-ins: pages copied host to device, kept or streamed (what Belady's
 * MIN minimizes: for a cache every miss is one). populations: pages given
 * memory and filled (dynvram: pages_populated; the caches: misses kept),
 * the driver work of map and unmap. Ratios are to MIN.
 *
 * Traces
 *   cyclic        one model of 64 pages, budget 40, 30 steps in order
 *   alternating   two models of 24 pages, budget 32: 4 steps of A, 4 of B,
 *                 three rounds (W2's shape)
 *   random        one model of 64 pages, budget 40: a step of 96 accesses
 *                 by a random walk with locality, the same every step
 *   pressure      cyclic, with framework allocations of 8 pages taken in
 *                 the middle of every 5th step and freed at its end
 *   pressure-alt  cyclic, with the bursts in every 2nd step (the thrash
 *                 pattern: a rise in a free step is taken in the next)
 *   squeeze       cyclic, squeezed once: 8 pages of framework allocations
 *                 in the middle of step 5, freed at its end (a partial
 *                 unload, or one big activation), then 24 steps free
 *
 * Every byte a dynvram policy hands out is checked against its source.
 * --check asserts: MIN <= LRU (populations); MIN-bypass <= every policy
 * (page-ins); watermark recovery raises the page-ins by at most 2% on
 * every trace, and the populations by at most 2% on every trace without
 * framework pressure; under pressure every population recovery adds saves
 * at least one page-in (a rise that pressure takes back before it paid
 * for itself is thrash); after a single squeeze recovery returns to the
 * unsqueezed page-ins per step (less its one page of margin) within 3
 * steps; on the cyclic scan the fault
 * protocol copies exactly the optimum and streaming at most the optimum
 * plus its ring; no corrupt byte. Exit status 1 when one fails.
 *
 *     dv_policy_sim [--json FILE] [--check]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dynvram.h"
#include "dynvram_stream.h"

#define PS 4096u
#define MAXACC 4096

typedef struct access {
    int model;
    uint32_t page;
} access_t;

typedef struct trace {
    const char *name;
    int models;
    uint32_t pages;  /* per model */
    uint32_t budget; /* pages */
    /* steps[k]: accesses of step k, all of one model */
    int nsteps;
    int step_model[64];
    uint32_t step_len[64];
    uint32_t step_first[64]; /* index into acc */
    access_t acc[MAXACC];
    uint32_t nacc;
    /* Framework pressure: every `every`-th step (or only step `every` - 1
     * when `once`) takes `fw_pages` pages at the middle of the step and
     * frees them at its end (every = 0: none). */
    int every;
    int once;
    uint32_t fw_pages;
} trace_t;

typedef struct result {
    const char *policy;
    uint64_t populations; /* pages given memory and filled */
    uint64_t bytes;       /* pages copied host to device: the page-ins */
    uint64_t corrupt;
    int valid;
    uint32_t step_bytes[64]; /* page-ins per step (the dynvram policies) */
} result_t;

static int failed;

#define FAIL(...)                                                              \
    do {                                                                       \
        fprintf(stderr, "policy_sim: " __VA_ARGS__);                           \
        fputc('\n', stderr);                                                   \
        failed = 1;                                                            \
    } while (0)

/* ---- traces --------------------------------------------------------------- */

static void add_step(trace_t *t, int model, const uint32_t *pages, uint32_t n) {
    t->step_model[t->nsteps] = model;
    t->step_first[t->nsteps] = t->nacc;
    t->step_len[t->nsteps] = n;
    for (uint32_t i = 0; i < n; i++) {
        t->acc[t->nacc++] = (access_t){model, pages[i]};
    }
    t->nsteps++;
}

static void make_cyclic(trace_t *t, const char *name, int every) {
    memset(t, 0, sizeof(*t));
    t->name = name;
    t->models = 1;
    t->pages = 64;
    t->budget = 40;
    uint32_t seq[64];
    for (uint32_t i = 0; i < 64; i++) {
        seq[i] = i;
    }
    for (int k = 0; k < 30; k++) {
        add_step(t, 0, seq, 64);
    }
    t->every = every;
    t->fw_pages = every ? 8 : 0;
}

static void make_alternating(trace_t *t) {
    memset(t, 0, sizeof(*t));
    t->name = "alternating";
    t->models = 2;
    t->pages = 24;
    t->budget = 32;
    uint32_t seq[24];
    for (uint32_t i = 0; i < 24; i++) {
        seq[i] = i;
    }
    for (int round = 0; round < 3; round++) {
        for (int m = 0; m < 2; m++) {
            for (int k = 0; k < 4; k++) {
                add_step(t, m, seq, 24);
            }
        }
    }
}

static void make_random(trace_t *t) {
    memset(t, 0, sizeof(*t));
    t->name = "random";
    t->models = 1;
    t->pages = 64;
    t->budget = 40;
    uint32_t seq[96], cur = 0;
    uint64_t x = 0x2545f4914f6cdd1dull;
    for (int i = 0; i < 96; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if (x % 8 == 0) {
            cur = (uint32_t)(x >> 16) % 64; /* a jump */
        } else {
            cur = (cur + (uint32_t)((x >> 8) % 5) + 63) % 64; /* -1..+3 */
        }
        seq[i] = cur;
    }
    for (int k = 0; k < 20; k++) {
        add_step(t, 0, seq, 96);
    }
}

static int pressured(const trace_t *t, int step) {
    if (t->once) {
        return t->every && step == t->every - 1;
    }
    return t->every && step % t->every == t->every - 1;
}

/* ---- the caches ----------------------------------------------------------- */

/* Cache capacity at access a (pressure shrinks it). */
static uint32_t cap_at(const trace_t *t, uint32_t a) {
    for (int k = 0; k < t->nsteps; k++) {
        uint32_t f = t->step_first[k], n = t->step_len[k];
        if (a >= f && a < f + n) {
            return pressured(t, k) && a >= f + n / 2 ? t->budget - t->fw_pages
                                                     : t->budget;
        }
    }
    return t->budget;
}

static uint32_t key(const access_t *a, const trace_t *t) {
    return (uint32_t)a->model * t->pages + a->page;
}

typedef enum { LRU, MIN, MIN_BYPASS } cache_kind_t;

/* LRU: the least recently used; MIN: the one needed farthest ahead. */
static uint32_t pick_victim(const uint8_t *in, const uint64_t *stamp,
                            const uint32_t *nxt, uint32_t keys,
                            cache_kind_t kind) {
    uint32_t v = UINT32_MAX;
    for (uint32_t j = 0; j < keys; j++) {
        if (in[j] && (v == UINT32_MAX || (kind == LRU ? stamp[j] < stamp[v]
                                                        : nxt[j] > nxt[v]))) {
            v = j;
        }
    }
    return v;
}

static result_t run_cache(const trace_t *t, cache_kind_t kind) {
    static uint32_t next_use[MAXACC];
    uint32_t keys = (uint32_t)t->models * t->pages;
    uint32_t *last = calloc(keys, sizeof(*last));
    uint8_t *in = calloc(keys, 1);
    uint64_t *stamp = calloc(keys, sizeof(*stamp));
    uint32_t *nxt = calloc(keys, sizeof(*nxt)); /* next use of a cached key */
    for (uint32_t k = 0; k < keys; k++) {
        last[k] = UINT32_MAX;
    }
    for (uint32_t a = t->nacc; a-- > 0;) {
        uint32_t k = key(&t->acc[a], t);
        next_use[a] = last[k];
        last[k] = a;
    }
    result_t r = {kind == LRU ? "LRU" : kind == MIN ? "MIN" : "MIN-bypass", 0, 0,
                  0, 1, {0}};
    uint32_t count = 0;
    for (uint32_t a = 0; a < t->nacc; a++) {
        uint32_t k = key(&t->acc[a], t), cap = cap_at(t, a);
        uint32_t nu = next_use[a] == UINT32_MAX ? UINT32_MAX - 1 : next_use[a];
        /* Pressure: the cache gives pages back first. */
        while (count > cap) {
            uint32_t v = pick_victim(in, stamp, nxt, keys, kind);
            in[v] = 0;
            count--;
        }
        if (!in[k]) {
            r.bytes++; /* a miss copies the page, kept or not */
            if (cap == 0) {
                continue;
            }
            if (count == cap) {
                uint32_t v = pick_victim(in, stamp, nxt, keys, kind);
                if (kind == MIN_BYPASS && nu >= nxt[v]) {
                    continue; /* needed last of all: stream it */
                }
                in[v] = 0;
                count--;
            }
            in[k] = 1;
            count++;
            r.populations++;
        }
        stamp[k] = a + 1;
        nxt[k] = nu;
    }
    free(last);
    free(in);
    free(stamp);
    free(nxt);
    return r;
}

/* ---- dynvram ---------------------------------------------------------------- */

typedef struct dvrun {
    dv_device_t *dev;
    dv_vbar_t *vbar[2];
    dv_schedule_t *sched[2];
    unsigned char *src[2];
    uint64_t saved[2][64];
} dvrun_t;

static int dv_open(dvrun_t *d, const trace_t *t, uint32_t recovery) {
    memset(d, 0, sizeof(*d));
    dv_device_options_t o;
    dv_device_options_init(&o);
    o.backend = "host";
    o.page_size = PS;
    o.vram_limit = (uint64_t)t->budget * PS;
    o.watermark_recovery = recovery;
    if (dv_device_open(&o, &d->dev) != DV_OK) {
        FAIL("open: %s", dv_last_error());
        return -1;
    }
    for (int m = 0; m < t->models; m++) {
        d->src[m] = malloc((size_t)t->pages * PS);
        for (uint32_t b = 0; b < t->pages * PS; b++) {
            d->src[m][b] = (unsigned char)(b * 7 + b / PS * 13 + m * 101 + 1);
        }
        if (dv_vbar_create(d->dev, (uint64_t)t->pages * PS, &d->vbar[m]) !=
            DV_OK) {
            FAIL("vbar: %s", dv_last_error());
            return -1;
        }
    }
    return 0;
}

static void dv_close(dvrun_t *d, const trace_t *t) {
    for (int m = 0; m < t->models; m++) {
        if (d->sched[m]) {
            dv_schedule_destroy(d->dev, d->sched[m]);
        }
        dv_vbar_destroy(d->dev, d->vbar[m]);
        free(d->src[m]);
    }
    if (dv_device_close(d->dev) != DV_OK) {
        FAIL("close: %s", dv_last_error());
    }
}

static uint64_t populated(dvrun_t *d) {
    dv_device_stats_t st;
    dv_device_get_stats(d->dev, &st);
    return st.pages_populated;
}

/* Framework pressure around access i of step k. */
static void pressure(dvrun_t *d, const trace_t *t, int k, uint32_t i, int end) {
    if (!pressured(t, k)) {
        return;
    }
    uint64_t b = (uint64_t)t->fw_pages * PS;
    if (!end && i == t->step_len[k] / 2 &&
        dv_framework_reserve(d->dev, b) != DV_OK) {
        FAIL("framework_reserve: %s", dv_last_error());
    }
    if (end && dv_framework_release(d->dev, b) != DV_OK) {
        FAIL("framework_release: %s", dv_last_error());
    }
}

static result_t run_fault(const trace_t *t, uint32_t recovery) {
    result_t r = {recovery == DV_RECOVERY_OFF ? "dv-fault-norec" : "dv-fault",
                  0, 0, 0, 1, {0}};
    dvrun_t d;
    if (dv_open(&d, t, recovery) != 0) {
        r.valid = 0;
        return r;
    }
    int cur = -1;
    for (int k = 0; k < t->nsteps; k++) {
        int m = t->step_model[k];
        if (m != cur) {
            dv_vbar_prioritize(d.dev, d.vbar[m]);
            cur = m;
        }
        dv_vbar_info_t vi;
        dv_vbar_get_info(d.dev, d.vbar[m], &vi);
        uint64_t before = r.bytes;
        for (uint32_t i = 0; i < t->step_len[k]; i++) {
            pressure(&d, t, k, i, 0);
            uint32_t p = t->acc[t->step_first[k] + i].page;
            uint64_t gen = 0;
            dv_result_t res = dv_fault(d.dev, d.vbar[m], (uint64_t)p * PS, PS,
                                       &gen);
            if (res == DV_OFFLOADED) {
                r.bytes++;
                continue;
            }
            if (res != DV_OK) {
                FAIL("fault: %s", dv_last_error());
                r.valid = 0;
                break;
            }
            unsigned char *dst = (unsigned char *)(uintptr_t)(vi.base +
                                                              (uint64_t)p * PS);
            if (gen != d.saved[m][p]) {
                memcpy(dst, d.src[m] + (size_t)p * PS, PS);
                d.saved[m][p] = gen;
                r.bytes++;
            }
            r.corrupt += memcmp(dst, d.src[m] + (size_t)p * PS, PS) != 0;
            dv_unpin(d.dev, d.vbar[m], (uint64_t)p * PS, PS, NULL);
        }
        pressure(&d, t, k, 0, 1);
        r.step_bytes[k] = (uint32_t)(r.bytes - before);
    }
    r.populations = populated(&d);
    dv_close(&d, t);
    return r;
}

static result_t run_stream(const trace_t *t, uint32_t placement) {
    result_t r = {placement == DV_PLACEMENT_PREFIX ? "dv-stream-prefix"
                                                   : "dv-stream",
                  0, 0, 0, 1, {0}};
    dvrun_t d;
    if (dv_open(&d, t, DV_RECOVERY_DEFAULT) != 0) {
        r.valid = 0;
        return r;
    }
    dv_schedule_options_t o;
    dv_schedule_options_init(&o);
    o.placement = placement;
    for (int m = 0; m < t->models; m++) {
        int k = 0;
        while (t->step_model[k] != m) {
            k++;
        }
        dv_schedule_range_t rg[MAXACC];
        memset(rg, 0, sizeof(rg));
        for (uint32_t i = 0; i < t->step_len[k]; i++) {
            uint32_t p = t->acc[t->step_first[k] + i].page;
            rg[i].offset = (uint64_t)p * PS;
            rg[i].size = PS;
            rg[i].src = d.src[m] + (size_t)p * PS;
        }
        if (dv_schedule_create(d.dev, d.vbar[m], rg, t->step_len[k], &o,
                               &d.sched[m]) != DV_OK) {
            FAIL("schedule: %s", dv_last_error());
            r.valid = 0;
            dv_close(&d, t);
            return r;
        }
    }
    int cur = -1;
    for (int k = 0; k < t->nsteps; k++) {
        int m = t->step_model[k];
        if (m != cur) {
            dv_vbar_prioritize(d.dev, d.vbar[m]);
            cur = m;
        }
        for (uint32_t i = 0; i < t->step_len[k]; i++) {
            pressure(&d, t, k, i, 0);
            uint32_t p = t->acc[t->step_first[k] + i].page;
            uint64_t addr = 0;
            dv_result_t res =
                dv_schedule_acquire(d.dev, d.sched[m], i, NULL, &addr);
            if (res == DV_OFFLOADED) {
                r.bytes++; /* the caller streams it itself */
                continue;
            }
            if (res != DV_OK) {
                FAIL("acquire: %s", dv_last_error());
                r.valid = 0;
                break;
            }
            r.corrupt += memcmp((const void *)(uintptr_t)addr,
                                d.src[m] + (size_t)p * PS, PS) != 0;
            dv_schedule_release(d.dev, d.sched[m], i, NULL);
        }
        pressure(&d, t, k, 0, 1);
    }
    for (int m = 0; m < t->models; m++) {
        dv_schedule_info_t in;
        dv_schedule_get_info(d.dev, d.sched[m], &in);
        r.bytes += in.copied_bytes / PS;
    }
    r.populations = populated(&d);
    if (dv_device_check(d.dev) != DV_OK) {
        FAIL("check: %s", dv_last_error());
    }
    dv_close(&d, t);
    return r;
}

/* ---- report --------------------------------------------------------------- */

#define NPOL 7
#define NTRACE 6

static void run_trace(const trace_t *t, result_t *res) {
    res[0] = run_fault(t, DV_RECOVERY_ON);
    res[1] = run_fault(t, DV_RECOVERY_OFF);
    res[2] = run_stream(t, DV_PLACEMENT_SPREAD);
    res[3] = run_stream(t, DV_PLACEMENT_PREFIX);
    res[4] = run_cache(t, LRU);
    res[5] = run_cache(t, MIN);
    res[6] = run_cache(t, MIN_BYPASS);
}

static double ratio(uint64_t a, uint64_t b) {
    return b ? (double)a / (double)b : 0.0;
}

/* ref_steady: the fault protocol's page-ins in the last step of the
 * unsqueezed cyclic trace (0 for the cyclic trace itself). */
static void check_trace(const trace_t *t, const result_t *res,
                        uint32_t ref_steady) {
    const result_t *min = &res[5], *bypass = &res[6];
    for (int i = 0; i < NPOL; i++) {
        if (!res[i].valid) {
            FAIL("%s: %s did not run", t->name, res[i].policy);
        }
        if (res[i].corrupt) {
            FAIL("%s: %s handed out %llu corrupt pages", t->name,
                 res[i].policy, (unsigned long long)res[i].corrupt);
        }
        if (res[i].bytes < bypass->bytes) {
            FAIL("%s: %s copied %llu pages, less than the lower bound %llu",
                 t->name, res[i].policy, (unsigned long long)res[i].bytes,
                 (unsigned long long)bypass->bytes);
        }
    }
    if (min->populations > res[4].populations) {
        FAIL("%s: MIN brought in %llu pages, LRU %llu", t->name,
             (unsigned long long)min->populations,
             (unsigned long long)res[4].populations);
    }
    /* Recovery must never cost page-ins; without framework pressure it must
     * not populate pages either; with pressure, bringing the squeezed pages
     * back is its purpose, and each population it adds must save at least
     * one page-in (a rise taken back before it paid for itself is thrash). */
    const result_t *rec = &res[0], *norec = &res[1];
    if (rec->bytes * 100 > norec->bytes * 102) {
        FAIL("%s: recovery raised page-ins from %llu to %llu (> 2%%)", t->name,
             (unsigned long long)norec->bytes,
             (unsigned long long)rec->bytes);
    }
    if (!t->every && rec->populations * 100 > norec->populations * 102) {
        FAIL("%s: recovery raised populations from %llu to %llu (> 2%%)",
             t->name, (unsigned long long)norec->populations,
             (unsigned long long)rec->populations);
    }
    if (t->every && rec->populations > norec->populations &&
        norec->bytes - rec->bytes < rec->populations - norec->populations) {
        FAIL("%s: recovery added %llu populations but saved only %llu "
             "page-ins (thrash)",
             t->name,
             (unsigned long long)(rec->populations - norec->populations),
             (unsigned long long)(norec->bytes > rec->bytes
                                      ? norec->bytes - rec->bytes
                                      : 0));
    }
    if (t->once && ref_steady) {
        /* Squeezed once: back to the unsqueezed step within 3 steps, less
         * the one page of margin a rise leaves free (rule 3 of recovery.c:
         * a model that fills the budget exactly gets back all but one
         * page), and without recovery still squeezed (else the trace tests
         * nothing). */
        for (int k = t->every - 1 + 4; k < t->nsteps; k++) {
            if (rec->step_bytes[k] > ref_steady + 1) {
                FAIL("%s: step %d still copies %u pages after the squeeze "
                     "(unsqueezed: %u)",
                     t->name, k, rec->step_bytes[k], ref_steady);
            }
        }
        if (norec->step_bytes[t->nsteps - 1] <= ref_steady) {
            FAIL("%s: without recovery the last step copies %u pages, not "
                 "more than unsqueezed (%u): the squeeze did not squeeze",
                 t->name, norec->step_bytes[t->nsteps - 1], ref_steady);
        }
    }
    if (t->models == 1 && !t->every && t->pages == t->step_len[0]) {
        /* A cyclic scan: a stable resident set is optimal. The fault
         * protocol reaches the bound; streaming pays only its ring (two
         * pages of the budget each step, and the next step's first two
         * prefetched at the end). */
        if (res[0].bytes != bypass->bytes) {
            FAIL("%s: dv-fault copied %llu pages, the optimum is %llu",
                 t->name, (unsigned long long)res[0].bytes,
                 (unsigned long long)bypass->bytes);
        }
        uint64_t ring = 2;
        for (int i = 2; i <= 3; i++) {
            if (res[i].bytes > bypass->bytes + ring * (uint64_t)t->nsteps + ring) {
                FAIL("%s: %s copied %llu pages, more than the optimum %llu "
                     "plus its ring",
                     t->name, res[i].policy, (unsigned long long)res[i].bytes,
                     (unsigned long long)bypass->bytes);
            }
        }
    }
}

int main(int argc, char **argv) {
    const char *json = NULL;
    int check = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0 && i + 1 < argc) {
            json = argv[++i];
        } else if (strcmp(argv[i], "--check") == 0) {
            check = 1;
        } else {
            fprintf(stderr, "usage: dv_policy_sim [--json FILE] [--check]\n");
            return 2;
        }
    }
    dv_log_set_level(DV_LOG_ERROR);
    static trace_t traces[NTRACE];
    make_cyclic(&traces[0], "cyclic", 0);
    make_alternating(&traces[1]);
    make_random(&traces[2]);
    make_cyclic(&traces[3], "pressure", 5);
    make_cyclic(&traces[4], "squeeze", 5);
    traces[4].once = 1;
    make_cyclic(&traces[5], "pressure-alt", 2);
    uint32_t ref_steady = 0;
    FILE *jf = json ? fopen(json, "w") : NULL;
    if (json && !jf) {
        perror(json);
        return 2;
    }
    if (jf) {
        fprintf(jf, "{\n  \"benchmark\": \"policy_sim\",\n  \"page_bytes\": "
                    "%u,\n  \"traces\": [\n", PS);
    }
    for (int k = 0; k < NTRACE; k++) {
        const trace_t *t = &traces[k];
        result_t res[NPOL];
        run_trace(t, res);
        printf("%s: %d model(s) of %u pages, budget %u pages, %d steps, %u "
               "accesses\n",
               t->name, t->models, t->pages, t->budget, t->nsteps, t->nacc);
        printf("  %-17s %9s %11s %12s %15s\n", "policy", "page-ins",
               "populations", "page-ins/MIN", "populations/MIN");
        for (int i = 0; i < NPOL; i++) {
            printf("  %-17s %9llu %11llu %12.3f %15.3f\n", res[i].policy,
                   (unsigned long long)res[i].bytes,
                   (unsigned long long)res[i].populations,
                   ratio(res[i].bytes, res[5].bytes),
                   ratio(res[i].populations, res[5].populations));
        }
        if (jf) {
            fprintf(jf,
                    "    {\"trace\": \"%s\", \"models\": %d, \"pages\": %u, "
                    "\"budget\": %u, \"steps\": %d, \"accesses\": %u, "
                    "\"policies\": [\n",
                    t->name, t->models, t->pages, t->budget, t->nsteps,
                    t->nacc);
            for (int i = 0; i < NPOL; i++) {
                fprintf(jf,
                        "      {\"policy\": \"%s\", \"page_ins\": %llu, "
                        "\"populations\": %llu, \"page_ins_vs_min\": %.4f, "
                        "\"populations_vs_min\": %.4f, \"corrupt\": %llu}%s\n",
                        res[i].policy, (unsigned long long)res[i].bytes,
                        (unsigned long long)res[i].populations,
                        ratio(res[i].bytes, res[5].bytes),
                        ratio(res[i].populations, res[5].populations),
                        (unsigned long long)res[i].corrupt,
                        i + 1 < NPOL ? "," : "");
            }
            fprintf(jf, "    ]}%s\n", k + 1 < NTRACE ? "," : "");
        }
        if (k == 0) {
            ref_steady = res[0].step_bytes[t->nsteps - 1];
        }
        if (check) {
            check_trace(t, res, k == 0 ? 0 : ref_steady);
        }
    }
    if (jf) {
        fprintf(jf, "  ]\n}\n");
        fclose(jf);
    }
    if (check) {
        printf(failed ? "policy_sim: FAILED\n" : "policy_sim: all checks hold\n");
    }
    return failed ? 1 : 0;
}
