/*
 * test_fake_cuda.c - the simulated CUDA driver's own contract, as the
 * backend's tests rely on it: stream, event and context handles are looked
 * up, never read through, so junk and dead ones get an error; dead ones are
 * never handed out again; a live stream of another context is
 * CUDA_ERROR_INVALID_CONTEXT; the entry points loaded for later work
 * (cuStreamWaitEvent, cuStreamIsCapturing, cuMemcpyDtoDAsync) and the ones
 * stream_check uses (cuStreamGetCtx, cuCtxGetDevice) behave as documented.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Registered as cuda-fake.driver (DYNVRAM_CUDA_LIBRARY names the fake).
 * Calls go through a table loaded with dv__cu_load, not through dynvram.
 * Criterion runs each test in a fresh process, so a test may set the fake's
 * environment before it loads.
 */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hal/cuda/cuda_load.h"

#define MIB (1ull << 20)
#define CYCLES 500

static dv__cu_api_t raw;

#define RC(call, want)                                                         \
    do {                                                                       \
        dv_cu_result rc_ = (call);                                             \
        cr_assert_eq(rc_, (want), "%s -> %d, expected %d", #call, rc_,         \
                     (want));                                                  \
    } while (0)
#define OK(call) RC(call, DV_CU_SUCCESS)

/* Load the fake and make device 0's primary context current. */
static dv_cu_context setup(void) {
    const char *lib = getenv("DYNVRAM_CUDA_LIBRARY");
    char reason[256];
    dv_cu_device d = 0;
    dv_cu_context pc = NULL;
    if (!lib || !*lib) {
        cr_skip_test("DYNVRAM_CUDA_LIBRARY not set: no simulated driver");
    }
    cr_assert_eq(dv__cu_load(lib, &raw, reason, sizeof(reason)), DV_OK, "%s",
                 reason);
    OK(raw.cuDeviceGet(&d, 0));
    OK(raw.cuDevicePrimaryCtxRetain(&pc, d));
    OK(raw.cuCtxPushCurrent(pc));
    return pc;
}

/* Values that are no handle at all: small, on the stack, freed memory. */
static void junk_values(void *out[3], int *local) {
    void *p = malloc(128);
    cr_assert(p != NULL);
    /* Only the address is kept (volatile: the compiler need not follow). */
    volatile uintptr_t freed = (uintptr_t)p;
    free(p);
    out[0] = (void *)(uintptr_t)0x10;
    out[1] = local;
    out[2] = (void *)freed;
}

Test(fake_driver, junk_streams_and_events_are_invalid_handles) {
    setup();
    int local = 0;
    void *junk[3];
    dv_cu_context c = NULL;
    dv_cu_stream_capture_status st = DV_CU_STREAM_CAPTURE_STATUS_NONE;
    junk_values(junk, &local);
    for (int i = 0; i < 3; i++) {
        dv_cu_stream s = (dv_cu_stream)junk[i];
        dv_cu_event e = (dv_cu_event)junk[i];
        RC(raw.cuStreamSynchronize(s), DV_CU_ERROR_INVALID_HANDLE);
        RC(raw.cuStreamQuery(s), DV_CU_ERROR_INVALID_HANDLE);
        RC(raw.cuStreamDestroy(s), DV_CU_ERROR_INVALID_HANDLE);
        RC(raw.cuStreamGetCtx(s, &c), DV_CU_ERROR_INVALID_HANDLE);
        RC(raw.cuStreamIsCapturing(s, &st), DV_CU_ERROR_INVALID_HANDLE);
        RC(raw.cuMemcpyHtoDAsync(0, &local, 0, s), DV_CU_ERROR_INVALID_HANDLE);
        RC(raw.cuEventQuery(e), DV_CU_ERROR_INVALID_HANDLE);
        RC(raw.cuEventSynchronize(e), DV_CU_ERROR_INVALID_HANDLE);
        RC(raw.cuEventRecord(e, NULL), DV_CU_ERROR_INVALID_HANDLE);
        RC(raw.cuEventDestroy(e), DV_CU_ERROR_INVALID_HANDLE);
        RC(raw.cuCtxPushCurrent((dv_cu_context)junk[i]),
           DV_CU_ERROR_INVALID_CONTEXT);
    }
    /* A stream is no event and an event no stream. */
    dv_cu_stream s = NULL;
    dv_cu_event e = NULL;
    OK(raw.cuStreamCreate(&s, DV_CU_STREAM_NON_BLOCKING));
    OK(raw.cuEventCreate(&e, DV_CU_EVENT_DISABLE_TIMING));
    RC(raw.cuEventQuery((dv_cu_event)s), DV_CU_ERROR_INVALID_HANDLE);
    RC(raw.cuStreamSynchronize((dv_cu_stream)e), DV_CU_ERROR_INVALID_HANDLE);
    OK(raw.cuEventRecord(e, s));
    OK(raw.cuEventDestroy(e));
    OK(raw.cuStreamDestroy(s));
}

/* Streams and events die for good: every later use is an error, however
 * many new ones are made, and no new one gets a dead one's address. */
Test(fake_driver, dead_handles_stay_dead_and_are_never_reused) {
    setup();
    static dv_cu_stream ds[CYCLES];
    static dv_cu_event de[CYCLES];
    for (int i = 0; i < CYCLES; i++) {
        OK(raw.cuStreamCreate(&ds[i], 0));
        OK(raw.cuEventCreate(&de[i], 0));
        for (int j = 0; j < i; j++) {
            cr_assert_neq((void *)ds[i], (void *)ds[j],
                          "stream %d reuses dead stream %d's address", i, j);
            cr_assert_neq((void *)de[i], (void *)de[j],
                          "event %d reuses dead event %d's address", i, j);
        }
        OK(raw.cuEventRecord(de[i], ds[i]));
        OK(raw.cuEventDestroy(de[i]));
        OK(raw.cuStreamDestroy(ds[i]));
    }
    for (int i = 0; i < CYCLES; i++) {
        RC(raw.cuStreamSynchronize(ds[i]), DV_CU_ERROR_INVALID_HANDLE);
        RC(raw.cuStreamDestroy(ds[i]), DV_CU_ERROR_INVALID_HANDLE);
        RC(raw.cuEventQuery(de[i]), DV_CU_ERROR_INVALID_HANDLE);
        RC(raw.cuEventDestroy(de[i]), DV_CU_ERROR_INVALID_HANDLE);
    }
}

/* A stream belongs to the context current at its creation: used with
 * another context current it is CUDA_ERROR_INVALID_CONTEXT; cuStreamGetCtx
 * names its context whatever is current; destroying the context kills it. */
Test(fake_driver, streams_belong_to_their_context) {
    dv_cu_context pc = setup();
    dv_cu_context own = NULL, got = NULL, popped = NULL;
    dv_cu_device d = -1;
    dv_cu_stream s = NULL;
    OK(raw.cuCtxCreate(&own, NULL, 0, 0, 0));
    OK(raw.cuStreamCreate(&s, 0));
    OK(raw.cuStreamSynchronize(s));
    OK(raw.cuCtxPopCurrent(&popped));
    cr_assert_eq(popped, own);
    RC(raw.cuStreamSynchronize(s), DV_CU_ERROR_INVALID_CONTEXT);
    RC(raw.cuMemsetD8Async(0, 0, 0, s), DV_CU_ERROR_INVALID_CONTEXT);
    RC(raw.cuStreamDestroy(s), DV_CU_ERROR_INVALID_CONTEXT);
    OK(raw.cuStreamGetCtx(s, &got));
    cr_assert_eq(got, own);
    OK(raw.cuCtxPopCurrent(&popped)); /* none current */
    OK(raw.cuStreamGetCtx(s, &got));
    cr_assert_eq(got, own, "cuStreamGetCtx needs no current context");
    RC(raw.cuStreamGetCtx(NULL, &got), DV_CU_ERROR_INVALID_CONTEXT);
    RC(raw.cuCtxGetDevice(&d), DV_CU_ERROR_INVALID_CONTEXT);
    OK(raw.cuCtxPushCurrent(pc));
    OK(raw.cuStreamGetCtx(NULL, &got));
    cr_assert_eq(got, pc, "the NULL stream is the current context's");
    OK(raw.cuStreamGetCtx(DV_CU_STREAM_PER_THREAD, &got));
    cr_assert_eq(got, pc);
    OK(raw.cuCtxGetDevice(&d));
    cr_assert_eq(d, 0);
    OK(raw.cuCtxDestroy(own));
    RC(raw.cuStreamGetCtx(s, &got), DV_CU_ERROR_INVALID_HANDLE);
    RC(raw.cuCtxPushCurrent(own), DV_CU_ERROR_INVALID_CONTEXT);
    RC(raw.cuCtxDestroy(own), DV_CU_ERROR_INVALID_CONTEXT);
    RC(raw.cuCtxDestroy(pc), DV_CU_ERROR_INVALID_CONTEXT); /* primary */
}

Test(fake_driver, wait_event_capture_and_device_to_device_copies) {
    setup();
    dv_cu_stream s = NULL;
    dv_cu_event e = NULL;
    dv_cu_deviceptr a = 0, b = 0;
    dv_cu_stream_capture_status st = DV_CU_STREAM_CAPTURE_STATUS_ACTIVE;
    OK(raw.cuStreamCreate(&s, DV_CU_STREAM_NON_BLOCKING));
    OK(raw.cuEventCreate(&e, DV_CU_EVENT_DISABLE_TIMING));
    OK(raw.cuEventRecord(e, NULL));
    OK(raw.cuStreamWaitEvent(s, e, DV_CU_EVENT_WAIT_DEFAULT));
    OK(raw.cuStreamWaitEvent(NULL, e, DV_CU_EVENT_WAIT_DEFAULT));
    RC(raw.cuStreamWaitEvent(s, e, 0x4), DV_CU_ERROR_INVALID_VALUE);
    RC(raw.cuStreamWaitEvent(s, (dv_cu_event)(uintptr_t)0x10, 0),
       DV_CU_ERROR_INVALID_HANDLE);
    OK(raw.cuStreamIsCapturing(s, &st));
    cr_assert_eq(st, DV_CU_STREAM_CAPTURE_STATUS_NONE);
    RC(raw.cuStreamIsCapturing(s, NULL), DV_CU_ERROR_INVALID_VALUE);

    uint8_t src[4096], back[4096];
    for (size_t i = 0; i < sizeof(src); i++) {
        src[i] = (uint8_t)(i * 7 + 3);
    }
    OK(raw.cuMemAlloc(&a, sizeof(src)));
    OK(raw.cuMemAlloc(&b, sizeof(src)));
    OK(raw.cuMemcpyHtoDAsync(a, src, sizeof(src), s));
    OK(raw.cuMemcpyDtoDAsync(b, a, sizeof(src), s));
    memset(back, 0, sizeof(back));
    OK(raw.cuMemcpyDtoHAsync(back, b, sizeof(back), s));
    OK(raw.cuStreamSynchronize(s));
    cr_assert(memcmp(src, back, sizeof(src)) == 0, "DtoD copy lost data");
    /* Either end outside anything mapped is refused. */
    RC(raw.cuMemcpyDtoDAsync(b, 1ull << 44, 16, s), DV_CU_ERROR_INVALID_VALUE);
    RC(raw.cuMemcpyDtoDAsync(1ull << 44, a, 16, s), DV_CU_ERROR_INVALID_VALUE);
    RC(raw.cuMemcpyDtoDAsync(b, a, 16, (dv_cu_stream)(uintptr_t)0x10),
       DV_CU_ERROR_INVALID_HANDLE);
    OK(raw.cuMemFree(a));
    OK(raw.cuMemFree(b));
    OK(raw.cuEventDestroy(e));
    OK(raw.cuStreamDestroy(s));
}

/* DV_FAKE_CUDA_CAPTURING=1: created streams report an active capture (for
 * allocation-graph tests); the default streams never capture. */
Test(fake_driver, capture_switch) {
    setenv("DV_FAKE_CUDA_CAPTURING", "1", 1);
    setup();
    dv_cu_stream s = NULL;
    dv_cu_stream_capture_status st = DV_CU_STREAM_CAPTURE_STATUS_NONE;
    OK(raw.cuStreamCreate(&s, 0));
    OK(raw.cuStreamIsCapturing(s, &st));
    cr_assert_eq(st, DV_CU_STREAM_CAPTURE_STATUS_ACTIVE);
    OK(raw.cuStreamIsCapturing(NULL, &st));
    cr_assert_eq(st, DV_CU_STREAM_CAPTURE_STATUS_NONE);
    OK(raw.cuStreamDestroy(s));
}
