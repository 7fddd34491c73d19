/*
 * model_core.c - the tester's choice source, call trace, failure report and
 * the documented result set of every entry point.
 * SPDX-License-Identifier: Apache-2.0
 *
 * Choices come from splitmix64 (a seed reproduces a sequence) or from the
 * bytes of a fuzzer input (one or two bytes per choice; when they run out
 * every choice is 0 and the sequence ends). The trace keeps the last 64
 * calls; a failure prints the seed, the check that broke, the call number
 * and the trace, then exits 1 (abort() under the fuzzer, so libFuzzer keeps
 * the input). A crash (SIGSEGV, SIGBUS, SIGABRT, or a sanitizer report)
 * prints the same trace before the process dies.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define MT_SANITIZER 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define MT_SANITIZER 1
#endif
#ifdef MT_SANITIZER
#include <sanitizer/common_interface_defs.h>
#endif

/* ---- choice source ---- */

static uint64_t splitmix(uint64_t *x);

void mt_src_seed(mt_src_t *s, uint64_t seed) {
    memset(s, 0, sizeof(*s));
    /* Scrambled: splitmix64 steps its state by the constant it would add
     * here, so seed * constant made the streams of seeds S and S + 1 the
     * same stream one step apart (correlated sequences). */
    uint64_t x = seed ^ 0x632be59bd9b4e019ull;
    s->state = splitmix(&x);
}

void mt_src_bytes(mt_src_t *s, const uint8_t *data, size_t size) {
    memset(s, 0, sizeof(*s));
    s->data = data;
    s->size = size;
}

static uint64_t splitmix(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void mt_src_record(mt_src_t *s) { s->recording = 1; }

/* Append the bytes mt_pick reads from an input to choose v of n. */
static void record(mt_src_t *s, uint64_t v, uint64_t n) {
    if (s->rec_len + 2 > s->rec_cap) {
        size_t cap = s->rec_cap ? s->rec_cap * 2 : 4096;
        uint8_t *p = realloc(s->rec, cap);
        if (!p) {
            fprintf(stderr, "dv_model: out of memory recording choices\n");
            exit(2);
        }
        s->rec = p;
        s->rec_cap = cap;
    }
    if (n > 256) {
        s->rec[s->rec_len++] = (uint8_t)(v >> 8);
    }
    s->rec[s->rec_len++] = (uint8_t)v;
}

uint64_t mt_pick(mt_src_t *s, uint64_t n) {
    if (n <= 1) {
        return 0;
    }
    if (!s->data && s->recording) {
        uint64_t v = splitmix(&s->state) % (n > 65536 ? 65536 : n);
        record(s, v, n);
        return v;
    }
    if (!s->data) {
        return splitmix(&s->state) % n;
    }
    uint64_t v = 0;
    int bytes = n > 256 ? 2 : 1;
    for (int k = 0; k < bytes; k++) {
        if (s->pos >= s->size) {
            s->exhausted = 1;
            return 0;
        }
        v = v << 8 | s->data[s->pos++];
    }
    return v % n;
}

int mt_chance(mt_src_t *s, unsigned pct) { return mt_pick(s, 100) < pct; }

/* ---- trace ---- */

static pthread_mutex_t print_lock = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local mt_world_t *crash_world;

void mt_call(mt_world_t *w, const char *fmt, ...) {
    va_list ap;
    int n = snprintf(w->pending, sizeof(w->pending), "#%llu ",
                     (unsigned long long)w->calls);
    va_start(ap, fmt);
    vsnprintf(w->pending + n, sizeof(w->pending) - (size_t)n, fmt, ap);
    va_end(ap);
    w->calls++;
    crash_world = w;
}

void mt_ret(mt_world_t *w, dv_result_t r) {
    char *line = w->trace[w->trace_n % 64];
    /* The call's text is cut to leave room for the result. */
    snprintf(line, MT_LINE, "%.160s -> %s", w->pending, dv_result_name(r));
    w->trace_n++;
    w->pending[0] = '\0';
    if (w->verbose) {
        fprintf(stderr, "%s\n", line);
    }
}

void mt_print_trace(const mt_world_t *w) {
    uint64_t n = w->trace_n;
    uint64_t keep = (uint64_t)(w->trace_lines > 64 ? 64 : w->trace_lines);
    uint64_t from = n > keep ? n - keep : 0;
    fprintf(stderr, "last %llu calls:\n", (unsigned long long)(n - from));
    for (uint64_t k = from; k < n; k++) {
        fprintf(stderr, "  %s\n", w->trace[k % 64]);
    }
    if (w->pending[0]) {
        fprintf(stderr, "  %s -> (in progress)\n", w->pending);
    }
}

static void report_header(const mt_world_t *w, const char *check) {
    fprintf(stderr, "dv_model: FAIL check=%s seed=%llu call=%llu", check,
            (unsigned long long)w->seed,
            (unsigned long long)(w->calls ? w->calls - 1 : 0));
    if (w->thread >= 0) {
        fprintf(stderr, " thread=%d", w->thread);
    }
    fprintf(stderr, "\n");
}

void mt_fail(mt_world_t *w, const char *check, const char *fmt, ...) {
    pthread_mutex_lock(&print_lock);
    report_header(w, check);
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "  ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n  last error: %s\n", dv_last_error());
    if (w->repro[0]) {
        fprintf(stderr, "reproduce: %s\n", w->repro);
    }
    mt_print_trace(w);
    fflush(stderr);
    if (w->fuzz) {
        abort();
    }
    _exit(1);
}

static void crash_report(const char *what) {
    mt_world_t *w = crash_world;
    if (!w) {
        return;
    }
    crash_world = NULL; /* once */
    report_header(w, what);
    if (w->repro[0]) {
        fprintf(stderr, "reproduce: %s\n", w->repro);
    }
    mt_print_trace(w);
    fflush(stderr);
}

static void on_signal(int sig) {
    crash_report(sig == SIGABRT  ? "crash(SIGABRT)"
                 : sig == SIGBUS ? "crash(SIGBUS)"
                                 : "crash(SIGSEGV)");
    signal(sig, SIG_DFL);
    raise(sig);
}

#ifdef MT_SANITIZER
static void on_sanitizer_death(void) { crash_report("sanitizer"); }
#endif

static void install_handlers(void) {
#ifdef MT_SANITIZER
    __sanitizer_set_death_callback(on_sanitizer_death);
#else
    signal(SIGSEGV, on_signal);
    signal(SIGBUS, on_signal);
#endif
    signal(SIGABRT, on_signal);
}

void mt_install_crash_report(mt_world_t *w) {
    crash_world = w;
    if (w->fuzz) {
        return; /* libFuzzer's own handlers save the input */
    }
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, install_handlers);
}

/* ---- documented results ---- */

#define R(x) (1u << ((x) + 16))
#define ROK R(DV_OK)
#define RINV R(DV_ERROR_INVALID_ARGUMENT)
#define RRANGE R(DV_ERROR_OUT_OF_RANGE)
#define RWRONG R(DV_ERROR_WRONG_DEVICE)
#define RBACK R(DV_ERROR_BACKEND)

/* From include/dynvram.h, entry by entry. */
static const uint32_t allowed[MT_FN_COUNT] = {
    [MT_FN_FAULT] = ROK | R(DV_OFFLOADED) | RINV | RRANGE | RWRONG | RBACK,
    [MT_FN_UNPIN] =
        ROK | RINV | RRANGE | RWRONG | R(DV_ERROR_NOT_PINNED) | RBACK,
    [MT_FN_VBAR_CREATE] = ROK | RINV | R(DV_ERROR_ADDRESS_SPACE) |
                          R(DV_ERROR_OUT_OF_HOST_MEMORY) | RBACK,
    [MT_FN_VBAR_DESTROY] = ROK | RINV | RWRONG | R(DV_ERROR_BUSY),
    [MT_FN_VBAR_INFO] = ROK | RINV | RWRONG,
    [MT_FN_VBAR_PRIO] = ROK | RINV | RWRONG,
    [MT_FN_VBAR_WM] = ROK | RINV | RWRONG,
    [MT_FN_VBAR_EVICT] = ROK | RINV | RWRONG | RBACK,
    [MT_FN_VBAR_RESIDENCY] = ROK | RINV | RRANGE | RWRONG,
    [MT_FN_VBAR_GENS] = ROK | RINV | RRANGE | RWRONG,
    [MT_FN_FW_RESERVE] = ROK | R(DV_ERROR_OUT_OF_DEVICE_MEMORY) | RINV,
    [MT_FN_FW_RELEASE] = ROK | RINV,
    [MT_FN_FW_EVICT] = ROK | R(DV_ERROR_OUT_OF_DEVICE_MEMORY) | RINV,
    [MT_FN_DEV_SIMPLE] = ROK | RINV,
    [MT_FN_DEV_STATS] = ROK | RINV | RBACK,
    [MT_FN_DEV_CHECK] = ROK | RINV,
    [MT_FN_DEV_OPEN] = ROK | RINV | R(DV_ERROR_BACKEND_UNAVAILABLE) |
                       R(DV_ERROR_DEVICE_NOT_FOUND) |
                       R(DV_ERROR_NOT_SUPPORTED) | RBACK |
                       R(DV_ERROR_OUT_OF_HOST_MEMORY),
    [MT_FN_DEV_CLOSE] = ROK | RINV | R(DV_ERROR_BUSY),
    [MT_FN_DEV_CAPS] = ROK | RINV,
    [MT_FN_STREAM] = ROK | R(DV_ERROR_NOT_SUPPORTED) | RBACK | RINV,
    [MT_FN_COPY] = ROK | R(DV_ERROR_NOT_SUPPORTED) | RBACK | RINV,
    [MT_FN_HOST_REG] = ROK | R(DV_ERROR_NOT_SUPPORTED) | RBACK | RINV,
    [MT_FN_PROBE] = ROK | RINV,
    [MT_FN_HOST_HOOK] = ROK | RINV,
    /* From include/dynvram_io.h. */
    [MT_FN_HOSTBUF] = ROK | RINV | RRANGE | RWRONG | R(DV_ERROR_BUSY) |
                      R(DV_ERROR_NOT_SUPPORTED) | R(DV_ERROR_ADDRESS_SPACE) |
                      R(DV_ERROR_OUT_OF_HOST_MEMORY) | RBACK,
    [MT_FN_DEVBUF] = ROK | RINV | RRANGE | RWRONG | R(DV_ERROR_BUSY) |
                     R(DV_ERROR_OUT_OF_DEVICE_MEMORY) |
                     R(DV_ERROR_ADDRESS_SPACE) |
                     R(DV_ERROR_OUT_OF_HOST_MEMORY) | RBACK,
    [MT_FN_READER] = ROK | RINV | RWRONG | R(DV_ERROR_BUSY) |
                     R(DV_ERROR_OUT_OF_HOST_MEMORY),
    [MT_FN_READ] = ROK | RINV | RRANGE | RWRONG | R(DV_ERROR_NOT_PINNED) |
                   R(DV_ERROR_NOT_SUPPORTED) | R(DV_ERROR_IO) |
                   R(DV_ERROR_OUT_OF_HOST_MEMORY) | RBACK,
    /* include/dynvram_graph.h */
    [MT_FN_GRAPH_CREATE] = ROK | RINV | RWRONG | R(DV_ERROR_OUT_OF_HOST_MEMORY),
    [MT_FN_GRAPH_DESTROY] = ROK | RINV | RWRONG | R(DV_ERROR_BUSY) | RBACK,
    [MT_FN_GRAPH_SCOPE] = ROK | RINV | RWRONG | R(DV_ERROR_OUT_OF_HOST_MEMORY),
    [MT_FN_GRAPH_POP] = ROK | RINV | RWRONG | R(DV_ERROR_GRAPH_BREAK),
    [MT_FN_GRAPH_PAUSE] = ROK | RINV | RWRONG | R(DV_ERROR_BUSY) | RBACK,
    [MT_FN_GRAPH_STREAM] = ROK | RINV | RWRONG | R(DV_ERROR_BUSY) | RBACK,
    [MT_FN_GRAPH_ALLOC] = ROK | R(DV_OFFLOADED) | RINV | RWRONG |
                          R(DV_ERROR_OUT_OF_DEVICE_MEMORY) |
                          R(DV_ERROR_ADDRESS_SPACE) |
                          R(DV_ERROR_OUT_OF_HOST_MEMORY) | RBACK,
    [MT_FN_GRAPH_FREE] = ROK | R(DV_OFFLOADED) | RINV | RWRONG |
                         R(DV_ERROR_OUT_OF_HOST_MEMORY),
    [MT_FN_GRAPH_STATS] = ROK | RINV | RWRONG,
    /* dv_graph_trace, get_trace, get_recording, note_capture */
    [MT_FN_GRAPH_DEBUG] = ROK | RINV | RWRONG | R(DV_ERROR_OUT_OF_HOST_MEMORY),
    /* From include/dynvram_stream.h (every schedule call). */
    [MT_FN_SCHED] = ROK | R(DV_OFFLOADED) | RINV | RRANGE | RWRONG |
                    R(DV_ERROR_BUSY) | R(DV_ERROR_NOT_PINNED) |
                    R(DV_ERROR_NOT_SUPPORTED) |
                    R(DV_ERROR_OUT_OF_DEVICE_MEMORY) |
                    R(DV_ERROR_OUT_OF_HOST_MEMORY) |
                    R(DV_ERROR_ADDRESS_SPACE) | RBACK,
    /* Model files of include/dynvram_io.h (every dv_file_* call). */
    [MT_FN_FILE] = ROK | RINV | RRANGE | R(DV_ERROR_BUSY) | R(DV_ERROR_IO) |
                   R(DV_ERROR_OUT_OF_HOST_MEMORY) | R(DV_ERROR_NOT_SUPPORTED),
};

static const char *fn_names[MT_FN_COUNT] = {
#define MT_FN_NAME(n) #n,
    MT_FN_LIST(MT_FN_NAME)
#undef MT_FN_NAME
};

void mt_check_result(mt_world_t *w, mt_fn_t fn, dv_result_t r) {
    if (r < -16 || r > 15 || !(allowed[fn] & R(r))) {
        mt_fail(w, "result-documented",
                "%s returned %s (%d), not a result "
                "include/dynvram.h documents for it",
                fn_names[fn], dv_result_name(r), (int)r);
    }
    const char *msg = dv_last_error();
    if (msg == NULL) {
        mt_fail(w, "error-message", "dv_last_error() returned NULL");
    }
    if (r < 0 && !msg[0]) {
        mt_fail(w, "error-message", "%s failed with %s but left no message",
                fn_names[fn], dv_result_name(r));
    }
    if (r == DV_OK && w->clear_check && msg[0]) {
        mt_fail(w, "error-message",
                "%s succeeded but dv_last_error() is "
                "'%s' (a success must clear it)",
                fn_names[fn], msg);
    }
}

void mt_expect(mt_world_t *w, mt_fn_t fn, dv_result_t r, dv_result_t want) {
    mt_check_result(w, fn, r);
    if (r != want) {
        mt_fail(w, "result-model", "%s returned %s, the model predicts %s",
                fn_names[fn], dv_result_name(r), dv_result_name(want));
    }
}
