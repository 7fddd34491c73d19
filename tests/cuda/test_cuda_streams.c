/*
 * test_cuda_streams.c - the CUDA backend's stream_check and its own streams
 * (issue 9), on the real driver or the simulated one: live streams of this
 * GPU are accepted, destroyed ones refused and their addresses kept out of
 * the driver's hands, junk refused where anything can tell.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Linked into dv_test_cuda (testdev.c's main skips the binary without a
 * driver). Cases that could crash a real driver run in child processes.
 * The stream of another GPU is checked in test_cuda_multi.c.
 */
#define _POSIX_C_SOURCE 200809L /* fork, pipe, waitpid */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hal/cuda/cuda_internal.h"
#include "hal/cuda/cuda_load.h"
#include "testdev.h"
#include "tests/support/hal_text.h"

static dv__cu_api_t raw;

static void raw_load(void) {
    char reason[256];
    dv_result_t r = dv__cu_load(NULL, &raw, reason, sizeof(reason));
    cr_assert_eq(r, DV_OK, "raw libcuda load: %s", reason);
}

#define RAW_OK(call)                                                           \
    do {                                                                       \
        dv_cu_result raw_rc_ = (call);                                         \
        char raw_d_[192];                                                      \
        dv__cu_describe(&raw, raw_rc_, raw_d_, sizeof(raw_d_));                \
        cr_assert_eq(raw_rc_, DV_CU_SUCCESS, "%s -> %s", #call, raw_d_);       \
    } while (0)

static dv_cu_context raw_current(void) {
    dv_cu_context c = (dv_cu_context)(uintptr_t)0x1;
    RAW_OK(raw.cuCtxGetCurrent(&c));
    return c;
}

static void raw_clear_current(void) {
    dv_cu_context c = NULL;
    while (raw_current() != NULL) {
        RAW_OK(raw.cuCtxPopCurrent(&c));
    }
}

/* Streams the backend's stream_check must accept: its own, the default
 * stream's stand-ins, and one of a context the caller made on this GPU. */
Test(cuda, stream_check_accepts_live_streams_of_this_device) {
    const dv_hal_ops_t *ops = dv_hal_cuda();
    dv_hal_init_args_t a = {.ordinal = 0};
    void *ctx = NULL;
    cr_assert_not_null(ops->stream_check);
    TD_OK(ops->init(&a, &ctx));
    void *s = NULL;
    TD_OK(ops->stream_create(ctx, &s));
    TD_OK(ops->stream_check(ctx, s));
    TD_OK(ops->stream_check(ctx, (void *)DV_CU_STREAM_LEGACY));
    TD_OK(ops->stream_check(ctx, (void *)DV_CU_STREAM_PER_THREAD));

    raw_load();
    raw_clear_current();
    dv_cu_device d0 = 0;
    dv_cu_context own = NULL;
    dv_cu_stream os = NULL;
    RAW_OK(raw.cuDeviceGet(&d0, 0));
    RAW_OK(raw.cuCtxCreate(&own, NULL, 0, 0, d0));
    RAW_OK(raw.cuStreamCreate(&os, DV_CU_STREAM_NON_BLOCKING));
    dv_cu_context popped = NULL;
    RAW_OK(raw.cuCtxPopCurrent(&popped));
    cr_assert_eq(popped, own);
    /* Checked with no context current, and with the created one current:
     * either way the stream's context is on device 0. */
    TD_OK(ops->stream_check(ctx, os));
    RAW_OK(raw.cuCtxPushCurrent(own));
    TD_OK(ops->stream_check(ctx, os));
    cr_assert_eq(raw_current(), own, "stream_check changed the context");
    RAW_OK(raw.cuStreamDestroy(os));
    RAW_OK(raw.cuCtxDestroy(own));

    TD_OK(ops->stream_destroy(ctx, s));
    ops->fini(ctx);
}

/* Destroyed streams stay refused, and their addresses stay out of the
 * driver's hands while the backend remembers them: a new stream never
 * equals a recently destroyed one (the real driver, left alone, hands the
 * very same address out again at once). No dead handle reaches the driver
 * here, so this runs in-process on a GPU too. */
Test(cuda, destroyed_streams_keep_their_addresses) {
    const dv_hal_ops_t *ops = dv_hal_cuda();
    dv_hal_init_args_t a = {.ordinal = 0};
    void *ctx = NULL;
    void *dead[8];
    TD_OK(ops->init(&a, &ctx));
    for (int i = 0; i < 8; i++) {
        TD_OK(ops->stream_create(ctx, &dead[i]));
        for (int j = 0; j < i; j++) {
            cr_assert_neq(dead[i], dead[j],
                          "stream %d took dead stream %d's address", i, j);
        }
        TD_OK(ops->stream_check(ctx, dead[i]));
        TD_OK(ops->stream_destroy(ctx, dead[i]));
    }
    for (int i = 0; i < 8; i++) {
        TD_IS(ops->stream_check(ctx, dead[i]), DV_ERROR_INVALID_ARGUMENT);
        cr_assert(strstr(td_hal_text(ops), "destroyed"), "%s",
                  td_hal_text(ops));
        TD_IS(ops->stream_destroy(ctx, dead[i]), DV_ERROR_INVALID_ARGUMENT);
    }
    ops->fini(ctx);
}

/*
 * Junk and dead streams, each checked in a child process of its own, so a
 * crash inside libcuda fails the test and names the case instead of taking
 * the suite down. No CUDA call is made before the fork (a CUDA context does
 * not survive one): each child loads and opens the backend itself and
 * reports the answer through a pipe; the parent prints it. Two kinds:
 *  - values the backend answers itself, with no driver call (native code
 *    0): below 64 KiB, and its own destroyed streams. Refused on every
 *    driver.
 *  - foreign values only the driver could judge: a stack address, freed
 *    memory, a stream the caller made and destroyed itself. The simulated
 *    driver refuses them with its code; the CUDA driver does not validate
 *    stream handles (driver 580.159.04 on an H200 dies with SIGSEGV in
 *    cuStreamGetCtx, cuStreamQuery, cuEventRecord... for each), so on a GPU
 *    the test reports what the driver did and skips when it crashed.
 */
enum {
    JUNK_SMALL,
    JUNK_LOW_PAGE,
    JUNK_DEAD_OWN,
    JUNK_STACK,
    JUNK_FREED,
    JUNK_DEAD_FOREIGN,
    JUNK_CASES
};

static const char *junk_name(int k) {
    static const char *const names[] = {
        "(void *)0x10",          "(void *)0xf000",
        "a stream it destroyed", "a stack address",
        "freed heap memory",     "a stream the caller destroyed"};
    return names[k];
}

/* In the child: 0 when stream_check refused case k with
 * DV_ERROR_INVALID_ARGUMENT, 1 otherwise, 2 when the setup failed. `msg`
 * gets the result and the native code and text. */
static int junk_child(int k, char *msg, size_t len) {
    const dv_hal_ops_t *ops = dv_hal_cuda();
    dv_hal_init_args_t a = {.ordinal = 0};
    void *ctx = NULL;
    int local = 0;
    void *s = NULL;
    if (ops->init(&a, &ctx) != DV_OK) {
        snprintf(msg, len, "init: %s", td_hal_text(ops));
        return 2;
    }
    if (k == JUNK_SMALL) {
        s = (void *)(uintptr_t)0x10;
    } else if (k == JUNK_LOW_PAGE) {
        s = (void *)(uintptr_t)0xf000;
    } else if (k == JUNK_STACK) {
        s = &local;
    } else if (k == JUNK_FREED) {
        void *p = malloc(256);
        /* Only the address is kept (volatile: the compiler need not see). */
        volatile uintptr_t freed = (uintptr_t)p;
        free(p);
        s = (void *)freed;
    } else if (k == JUNK_DEAD_OWN) {
        if (ops->stream_create(ctx, &s) != DV_OK ||
            ops->stream_destroy(ctx, s) != DV_OK) {
            snprintf(msg, len, "stream create/destroy: %s", td_hal_text(ops));
            return 2;
        }
    } else {
        dv_cu_context pc = NULL, popped = NULL;
        dv_cu_stream fs = NULL;
        raw_load();
        if (raw.cuDevicePrimaryCtxRetain(&pc, 0) != DV_CU_SUCCESS ||
            raw.cuCtxPushCurrent(pc) != DV_CU_SUCCESS ||
            raw.cuStreamCreate(&fs, 0) != DV_CU_SUCCESS ||
            raw.cuStreamDestroy(fs) != DV_CU_SUCCESS ||
            raw.cuCtxPopCurrent(&popped) != DV_CU_SUCCESS) {
            snprintf(msg, len, "raw stream create/destroy failed");
            return 2;
        }
        s = fs;
    }
    dv_result_t r = ops->stream_check(ctx, s);
    int64_t code = 0;
    char text[256] = "";
    ops->last_native_error(&code, text, sizeof(text));
    snprintf(msg, len, "%s (native %lld: %s)", dv_result_name(r),
             (long long)code, r == DV_OK ? "" : text);
    ops->fini(ctx);
    return r == DV_ERROR_INVALID_ARGUMENT ? 0 : 1;
}

typedef struct junk_outcome {
    int crashed, signal, status;
    char msg[512];
} junk_outcome_t;

static junk_outcome_t junk_run(int k) {
    junk_outcome_t o;
    int fds[2];
    memset(&o, 0, sizeof(o));
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert_neq(pid, -1, "fork");
    if (pid == 0) {
        char msg[512] = "";
        close(fds[0]);
        int rc = junk_child(k, msg, sizeof(msg));
        ssize_t w = write(fds[1], msg, strlen(msg));
        (void)w;
        _exit(rc);
    }
    close(fds[1]);
    size_t n = 0;
    ssize_t m;
    while (n + 1 < sizeof(o.msg) &&
           (m = read(fds[0], o.msg + n, sizeof(o.msg) - 1 - n)) > 0) {
        n += (size_t)m;
    }
    o.msg[n] = '\0';
    close(fds[0]);
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    o.crashed = WIFSIGNALED(status);
    o.signal = o.crashed ? WTERMSIG(status) : 0;
    o.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    fprintf(stderr, "stream_check(%s): %s\n", junk_name(k),
            o.crashed ? "CRASHED" : o.msg);
    return o;
}

Test(cuda, stream_check_refuses_what_the_backend_knows_in_a_child) {
    for (int k = JUNK_SMALL; k <= JUNK_DEAD_OWN; k++) {
        junk_outcome_t o = junk_run(k);
        cr_assert_not(o.crashed,
                      "stream_check(%s) crashed (signal %d): it "
                      "reached the driver",
                      junk_name(k), o.signal);
        cr_assert_eq(o.status, 0,
                     "stream_check(%s) -> %s; expected "
                     "DV_ERROR_INVALID_ARGUMENT",
                     junk_name(k), o.msg);
        cr_assert(strstr(o.msg, "(native 0:"),
                  "stream_check(%s) asked the driver: %s", junk_name(k), o.msg);
    }
}

Test(cuda, stream_check_on_foreign_junk_in_a_child) {
    const char *lib = getenv("DYNVRAM_CUDA_LIBRARY");
    int fake = lib && strstr(lib, "fake");
    int crashes = 0;
    char first[160] = "";
    for (int k = JUNK_STACK; k < JUNK_CASES; k++) {
        junk_outcome_t o = junk_run(k);
        if (o.crashed && !fake) {
            if (crashes++ == 0) {
                snprintf(first, sizeof(first), "%s (signal %d)", junk_name(k),
                         o.signal);
            }
            continue;
        }
        cr_assert_not(o.crashed,
                      "stream_check(%s) crashed the simulated "
                      "driver (signal %d)",
                      junk_name(k), o.signal);
        cr_assert_eq(o.status, 0,
                     "stream_check(%s) -> %s; expected "
                     "DV_ERROR_INVALID_ARGUMENT",
                     junk_name(k), o.msg);
        cr_assert(!strstr(o.msg, "(native 0:"), "no driver code: %s", o.msg);
    }
    if (crashes) {
        cr_skip_test("the CUDA driver does not validate stream handles: %d of "
                     "3 foreign junk values crashed it, first %s",
                     crashes, first);
    }
}

/* Past DV__CU_PARKED destroys the oldest destroyed stream is destroyed for
 * real and forgotten: the backend then asks the driver about it. Only on
 * the simulated driver, which refuses it (a real one would crash). */
Test(cuda, the_parking_window_forgets_the_oldest) {
    const char *lib = getenv("DYNVRAM_CUDA_LIBRARY");
    if (!lib || !strstr(lib, "fake")) {
        cr_skip_test("needs the simulated driver (a real one does not "
                     "validate forgotten streams)");
    }
    const dv_hal_ops_t *ops = dv_hal_cuda();
    dv_hal_init_args_t a = {.ordinal = 0};
    void *ctx = NULL;
    static void *dead[DV__CU_PARKED + 2];
    TD_OK(ops->init(&a, &ctx));
    for (int i = 0; i < DV__CU_PARKED + 2; i++) {
        TD_OK(ops->stream_create(ctx, &dead[i]));
        TD_OK(ops->stream_destroy(ctx, dead[i]));
    }
    for (int i = 0; i < DV__CU_PARKED + 2; i++) {
        TD_IS(ops->stream_check(ctx, dead[i]), DV_ERROR_INVALID_ARGUMENT);
        int64_t code = -1;
        ops->last_native_error(&code, NULL, 0);
        /* The two oldest were forgotten: the driver's code; the rest are
         * still parked: the backend's own answer. */
        cr_assert_eq(code, i < 2 ? DV_CU_ERROR_INVALID_HANDLE : 0,
                     "stream %d: native %lld (%s)", i, (long long)code,
                     td_hal_text(ops));
    }
    ops->fini(ctx);
}
