/*
 * test_io_inject.c - host I/O under the fault-injecting HAL wrapper:
 *  - every HAL call of an I/O scenario (host buffer growth, registration,
 *    split, reads to host and device memory, stream-ordered reads, device
 *    buffers, copies, teardown) fails in turn, with a driver error and with
 *    out-of-memory, also with asynchronous copies and pending fences
 *    simulated: no crash, invariants hold after every call, the failing
 *    call's message carries the injected op's reason, nothing leaks
 *    (mappings, reservations, handles, registrations, fences, streams);
 *  - a read held in flight (its fence wait blocked) makes every destroy,
 *    close, truncate and shrink that would cut it short refuse with
 *    DV_ERROR_BUSY, and completes intact once released;
 *  - a split whose re-registration fails restores the registration.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "inject.h"
#include "iotest.h"

#define P TD_PAGE
#define CHUNK (64u << 10)

static dv_result_t injected;
static dv_device_t *dev;
static int fired_before;

static dv_result_t expect(const char *what, dv_result_t r) {
    cr_assert_neq(r, DV_ERROR_INVARIANT, "%s: %s", what, dv_last_error());
    const td_inject_state_t *s = td_inject_state();
    if (r < 0 && s->fired && !fired_before) {
        char want[64];
        snprintf(want, sizeof(want), "injected failure of %s", s->op);
        cr_assert(strstr(dv_last_error(), want) != NULL,
                  "%s -> %s: message '%s' lacks '%s'", what, dv_result_name(r),
                  dv_last_error(), want);
    }
    fired_before = s->fired;
    if (injected == DV_ERROR_OUT_OF_DEVICE_MEMORY) {
        cr_assert_neq(r, DV_ERROR_BACKEND,
                      "%s: injected OOM reported as %s (%s)", what,
                      dv_result_name(r), dv_last_error());
    }
    if (dev) {
        td_check(dev);
    }
    return r;
}

#define CALL(expr)                                                             \
    (fired_before = td_inject_state()->fired, expect(#expr, (expr)))

/* Retry a teardown call once (the injection fires once). */
#define TEARDOWN(expr)                                                         \
    do {                                                                       \
        if (CALL(expr) != DV_OK) {                                             \
            CALL(expr);                                                        \
        }                                                                      \
    } while (0)

static const char *path;
static dv_file_t *file;

static void reads(dv_reader_t *rd, dv_hostbuf_t *hb, void *stream) {
    uint64_t g;
    dv_vbar_t *v = NULL;
    if (CALL(dv_vbar_create(dev, 2 * P, &v)) != DV_OK) {
        return;
    }
    dv_vbar_info_t vi;
    dv_vbar_get_info(dev, v, &vi);
    if (hb) {
        CALL(dv_read_to_host(dev, rd, file, 100, 3 * CHUNK + 5, hb, 7, 0));
    }
    if (CALL(dv_fault(dev, v, 0, 2 * P, &g)) == DV_OK) {
        CALL(dv_read_to_device(dev, rd, file, 3, 3 * CHUNK, vi.base + 9, NULL,
                               0));
        CALL(
            dv_read_to_device(dev, rd, file, 0, 2 * CHUNK, vi.base, stream, 0));
        if (hb) {
            CALL(dv_hostbuf_copy_h2d(dev, hb, 0, CHUNK, vi.base, stream));
        }
        TEARDOWN(dv_unpin(dev, v, 0, 2 * P, NULL));
    }
    dv_devbuf_t *db = NULL;
    if (CALL(dv_devbuf_create(dev, 4 * P, &db)) == DV_OK) {
        if (CALL(dv_devbuf_resize(dev, db, 2 * P)) == DV_OK) {
            dv_devbuf_info_t di;
            dv_devbuf_get_info(dev, db, &di);
            CALL(dv_read_to_device(dev, rd, file, 0, 2 * CHUNK, di.base, stream,
                                   0));
            CALL(dv_devbuf_resize(dev, db, P));
        }
        TEARDOWN(dv_devbuf_destroy(dev, db));
    }
    TEARDOWN(dv_vbar_destroy(dev, v));
}

static void scenario(uint32_t caps) {
    dv_device_options_t o;
    td_options(&o, 8);
    dev = NULL;
    dv_device_t *d = NULL;
    td_inject_add_caps(caps);
    td_inject_fences_pending(caps != 0);
    if (CALL(dv_device_open_hal(td_inject_ops(), &o, &d)) != DV_OK) {
        return;
    }
    dev = d;
    int reg = tio_can_register(dev);
    dv_hostbuf_t *hb = NULL;
    if (CALL(dv_hostbuf_create(dev, 8 * P, &hb)) == DV_OK) {
        uint32_t f = reg ? DV_HOSTBUF_REGISTER : 0;
        CALL(dv_hostbuf_extend(dev, hb, P, f, NULL));
        CALL(dv_hostbuf_extend(dev, hb, 2 * P, f, NULL));
        if (reg) {
            CALL(dv_hostbuf_truncate(dev, hb, P + 4096 * 3 + 1,
                                     DV_HOSTBUF_UNREGISTER));
            CALL(dv_hostbuf_unregister(dev, hb, 0));
            CALL(dv_hostbuf_register(dev, hb, 0, 4096));
        }
    }
    void *stream = NULL;
    if (CALL(dv_stream_create(dev, &stream)) != DV_OK) {
        stream = NULL;
    }
    dv_reader_options_t ro;
    dv_reader_options_init(&ro);
    ro.threads = 1; /* one worker: HAL calls in a reproducible order */
    ro.slots = 2;
    ro.chunk_size = CHUNK;
    dv_reader_t *rd = NULL;
    if (CALL(dv_reader_create(dev, &ro, &rd)) == DV_OK) {
        reads(rd, hb, stream);
        TEARDOWN(dv_reader_destroy(dev, rd));
    }
    if (hb) {
        TEARDOWN(dv_hostbuf_destroy(dev, hb));
    }
    if (stream) {
        TEARDOWN(dv_stream_destroy(dev, stream));
    }
    dv_device_stats_t st;
    if (CALL(dv_device_get_stats(dev, &st)) != DV_OK) {
        CALL(dv_device_get_stats(dev, &st));
    }
    cr_assert_eq(st.devbuf_bytes, 0);
    TD_OK(dv_device_close(dev));
    dev = NULL;
}

static void leaks(long n) {
    const td_inject_state_t *s = td_inject_state();
    const char *op = s->op ? s->op : "-";
    cr_assert_eq(s->live_maps, 0, "call %ld (%s): %ld mappings leaked", n, op,
                 s->live_maps);
    cr_assert_eq(s->live_res, 0, "call %ld (%s): reservations leaked", n, op);
    cr_assert_eq(s->live_mem, 0, "call %ld (%s): handles leaked", n, op);
    cr_assert_eq(s->live_regs, 0, "call %ld (%s): %ld registrations leaked", n,
                 op, s->live_regs);
    cr_assert_eq(s->live_fences, 0, "call %ld (%s): %ld fences leaked", n, op,
                 s->live_fences);
    cr_assert_eq(s->live_streams, 0, "call %ld (%s): streams leaked", n, op);
}

static void sweep(dv_result_t err, uint32_t caps) {
    injected = err;
    path = tio_file("inject.bin", 8 * CHUNK);
    TD_OK(dv_file_open(path, &file));
    uint64_t regs0 = tio_host_regs();
    long n;
    for (n = 1; n < 20000; n++) {
        td_inject_arm(td_hal(), n, err);
        scenario(caps);
        leaks(n);
        cr_assert_eq(tio_host_regs(), regs0, "call %ld: host registrations", n);
        if (!td_inject_state()->fired) {
            break;
        }
    }
    long least = err == DV_ERROR_OUT_OF_DEVICE_MEMORY ? 10 : 40;
    cr_assert_gt(n, least, "the scenario made only %ld HAL calls", n);
    cr_log_info("%s: %ld calls failed in turn", dv_result_name(err), n - 1);
    TD_OK(dv_file_close(file));
}

Test(io_inject, every_call_fails_with_a_driver_error) {
    sweep(DV_ERROR_BACKEND, 0);
}

Test(io_inject, every_allocating_call_fails_with_oom) {
    sweep(DV_ERROR_OUT_OF_DEVICE_MEMORY, 0);
}

Test(io_inject, async_copies_every_call_fails) {
    sweep(DV_ERROR_BACKEND, DV_CAP_ASYNC_COPY);
}

/* ---- a read held in flight ---- */

typedef struct bg {
    dv_reader_t *rd;
    dv_hostbuf_t *hb;
    uint64_t dst;
    dv_result_t r;
} bg_t;

static void *bg_device(void *arg) {
    bg_t *b = arg;
    b->r = dv_read_to_device(dev, b->rd, file, 0, 4 * CHUNK, b->dst, NULL, 0);
    return NULL;
}

static void *bg_host(void *arg) {
    bg_t *b = arg;
    b->r = dv_read_to_host(dev, b->rd, file, CHUNK, 2 * CHUNK, b->hb, 100, 0);
    return NULL;
}

Test(io_inject, a_read_in_flight_blocks_what_would_cut_it_short) {
    td_inject_arm(td_hal(), 0, DV_OK);
    td_inject_add_caps(DV_CAP_ASYNC_COPY);
    td_inject_fences_pending(1);
    dv_device_options_t o;
    td_options(&o, 16);
    TD_OK(dv_device_open_hal(td_inject_ops(), &o, &dev));
    TD_OK(dv_file_open(tio_file("busy.bin", 8 * CHUNK), &file));
    dv_reader_options_t ro;
    dv_reader_options_init(&ro);
    ro.threads = 1;
    ro.slots = 1; /* the second chunk waits for the first one's fence */
    ro.chunk_size = CHUNK;
    bg_t b = {0};
    TD_OK(dv_reader_create(dev, &ro, &b.rd));
    dv_devbuf_t *db = NULL;
    TD_OK(dv_devbuf_create(dev, 2 * P, &db));
    TD_OK(dv_devbuf_resize(dev, db, 2 * P));
    dv_devbuf_info_t di;
    TD_OK(dv_devbuf_get_info(dev, db, &di));
    b.dst = di.base + 5;
    TD_OK(dv_hostbuf_create(dev, P, &b.hb));
    TD_OK(dv_hostbuf_extend(dev, b.hb, P, 0, NULL));

    td_inject_block_next("fence_query");
    pthread_t t1, t2;
    pthread_create(&t1, NULL, bg_device, &b);
    td_inject_wait_blocked(); /* the only worker is stuck in a fence wait */
    bg_t h = b;
    pthread_create(&t2, NULL, bg_host, &h);
    dv_hostbuf_info_t hi = {0};
    while (hi.reads_in_flight == 0) {
        TD_OK(dv_hostbuf_get_info(dev, b.hb, &hi));
    }
    TIO_BAD(dv_reader_destroy(dev, b.rd), DV_ERROR_BUSY, "in use");
    TIO_BAD(dv_file_close(file), DV_ERROR_BUSY, "in use");
    TIO_BAD(dv_devbuf_destroy(dev, db), DV_ERROR_BUSY, "in use");
    TIO_BAD(dv_devbuf_resize(dev, db, 4096), DV_ERROR_BUSY, "read in flight");
    TIO_BAD(dv_hostbuf_destroy(dev, b.hb), DV_ERROR_BUSY, "in use");
    TIO_BAD(dv_hostbuf_truncate(dev, b.hb, 200, 0), DV_ERROR_BUSY,
            "read in flight");
    TIO_BAD(dv_device_close(dev), DV_ERROR_BUSY, "host I/O");
    TD_OK(dv_hostbuf_truncate(dev, b.hb, 100 + 2 * CHUNK, 0));
    td_check(dev);
    td_inject_release();
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    cr_assert_eq(b.r, DV_OK, "device read: %s", dv_result_name(b.r));
    cr_assert_eq(h.r, DV_OK, "host read: %s", dv_result_name(h.r));
    cr_assert_eq(tio_device_mismatch(dev, b.dst, 4 * CHUNK, 0), -1);
    TD_OK(dv_hostbuf_get_info(dev, b.hb, &hi));
    cr_assert_eq(tio_mismatch((uint8_t *)hi.base + 100, 2 * CHUNK, CHUNK), -1);
    dv_reader_info_t ri;
    TD_OK(dv_reader_get_info(dev, b.rd, &ri));
    cr_assert_geq(ri.fence_waits, 1, "the slot was reused before its copy");
    /* Now everything gives way. */
    TD_OK(dv_devbuf_resize(dev, db, P));
    TD_OK(dv_devbuf_destroy(dev, db));
    TD_OK(dv_hostbuf_destroy(dev, b.hb));
    TD_OK(dv_reader_destroy(dev, b.rd));
    TD_OK(dv_file_close(file));
    td_check(dev);
    TD_OK(dv_device_close(dev));
    dev = NULL;
    leaks(0);
}

Test(io_inject, a_failed_split_restores_the_registration) {
    td_inject_arm(td_hal(), 0, DV_OK);
    dv_device_options_t o;
    td_options(&o, 0);
    TD_OK(dv_device_open_hal(td_inject_ops(), &o, &dev));
    if (!tio_can_register(dev)) {
        TD_OK(dv_device_close(dev));
        cr_skip_test("backend %s cannot register host memory", td_backend());
    }
    dv_hostbuf_t *hb = NULL;
    TD_OK(dv_hostbuf_create(dev, 8 * P, &hb));
    TD_OK(dv_hostbuf_extend(dev, hb, 4 * P, DV_HOSTBUF_REGISTER, NULL));
    td_inject_fail_next("host_register", DV_ERROR_OUT_OF_HOST_MEMORY);
    TIO_BAD(dv_hostbuf_truncate(dev, hb, P, DV_HOSTBUF_UNREGISTER),
            DV_ERROR_OUT_OF_HOST_MEMORY, "could not split");
    tio_msg_has("injected failure of host_register");
    dv_hostbuf_range_t r[2];
    uint32_t n = 0;
    TD_OK(dv_hostbuf_registrations(dev, hb, r, 2, &n));
    cr_assert_eq(n, 1);
    cr_assert_eq(r[0].offset, 0);
    cr_assert_eq(r[0].size, 4 * P, "the registration was not restored");
    dv_hostbuf_info_t hi;
    TD_OK(dv_hostbuf_get_info(dev, hb, &hi));
    cr_assert_eq(hi.size, 4 * P, "the failed truncate changed the size");
    cr_assert_eq(td_inject_state()->live_regs, 1);
    TD_OK(dv_hostbuf_truncate(dev, hb, P, DV_HOSTBUF_UNREGISTER));
    TD_OK(dv_hostbuf_registrations(dev, hb, r, 2, &n));
    cr_assert_eq(r[0].size, P);
    TD_OK(dv_hostbuf_destroy(dev, hb));
    TD_OK(dv_device_close(dev));
    dev = NULL;
    leaks(0);
}

Test(io_inject, stream_reads_wait_on_the_gpu_and_fall_back_on_the_host) {
    if (!td_hal()->stream_wait) {
        cr_skip_test("backend %s has no stream_wait", td_backend());
    }
    td_inject_arm(td_hal(), 0, DV_OK);
    td_inject_add_caps(DV_CAP_ASYNC_COPY);
    dv_device_options_t o;
    td_options(&o, 0);
    TD_OK(dv_device_open_hal(td_inject_ops(), &o, &dev));
    TD_OK(dv_file_open(tio_file("order.bin", 4 * CHUNK), &file));
    dv_reader_t *rd = NULL;
    TD_OK(dv_reader_create(dev, NULL, &rd));
    dv_vbar_t *v = NULL;
    TD_OK(dv_vbar_create(dev, P, &v));
    uint64_t g;
    TD_OK(dv_fault(dev, v, 0, P, &g));
    dv_vbar_info_t vi;
    TD_OK(dv_vbar_get_info(dev, v, &vi));
    void *s = NULL;
    TD_OK(dv_stream_create(dev, &s));
    td_inject_fail_next("stream_wait", DV_ERROR_BACKEND);
    TD_OK(dv_read_to_device(dev, rd, file, 0, 4 * CHUNK, vi.base, NULL, 0));
    cr_assert(!td_inject_state()->fired, "a synchronous read used stream_wait");
    /* Ordered on s: stream_wait is asked; when it fails the read waits on
     * the host instead and still succeeds. */
    TD_OK(dv_read_to_device(dev, rd, file, CHUNK, CHUNK, vi.base, s, 0));
    cr_assert(td_inject_state()->fired, "stream_wait was not used");
    cr_assert_str_eq(td_inject_state()->op, "stream_wait");
    TD_OK(dv_read_to_device(dev, rd, file, 2 * CHUNK, CHUNK, vi.base + CHUNK, s,
                            0));
    TD_OK(dv_stream_synchronize(dev, s));
    cr_assert_eq(tio_device_mismatch(dev, vi.base, 2 * CHUNK, CHUNK), -1);
    TD_OK(dv_stream_destroy(dev, s));
    TD_OK(dv_unpin(dev, v, 0, P, NULL));
    TD_OK(dv_vbar_destroy(dev, v));
    TD_OK(dv_reader_destroy(dev, rd));
    TD_OK(dv_file_close(file));
    TD_OK(dv_device_close(dev));
    dev = NULL;
    leaks(0);
}
