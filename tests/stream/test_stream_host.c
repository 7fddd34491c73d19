/*
 * test_stream_host.c - streaming against host streams with pending work,
 * which model a GPU queue (include/dynvram_host.h), through a spying HAL
 * (spy.h):
 *  - synchronous copies (the host backend as it is): a slot whose reader
 *    still has work queued is never overwritten; the refill is deferred,
 *    and the bytes every use reads are its own;
 *  - asynchronous copies (the spy pretends: copies stay pending on the copy
 *    stream): the consumer stream waits on exactly one fence per streamed
 *    range, the one recorded after the copy into its slot; the copy stream
 *    waits on the slot's last reader before it refills it; the host never
 *    waits and never synchronizes the copy stream;
 *  - one fence is recorded per release of a streamed range.
 * SPDX-License-Identifier: Apache-2.0
 */
#include <string.h>

#include "spy.h"
#include "stream_util.h"

#define P TD_PAGE

static dv_device_t *open_spy(int async, uint64_t limit_pages) {
    spy_reset(async);
    dv_device_options_t o;
    td_options(&o, limit_pages);
    dv_device_t *dev = NULL;
    TD_OK(dv_device_open_hal(spy_ops(), &o, &dev));
    return dev;
}

/* 16 ranges of a page, a device of 12 pages, the consumer on a host
 * stream: the schedule's copy stream is made after it. */
static void setup(ts_model_t *m, int async) {
    dv_device_t *dev = open_spy(async, 12);
    ts_model_init(m, dev, 16, P, P);
    TD_OK(dv_stream_create(dev, &m->stream));
    spy_state()->consumer = m->stream;
    TD_OK(ts_create(m, NULL));
    cr_assert_not_null(spy_state()->copy_stream, "the schedule has its own");
    cr_assert_neq(spy_state()->copy_stream, m->stream);
}

static void teardown(ts_model_t *m) {
    dv_device_t *dev = m->dev;
    TD_OK(dv_host_stream_complete(m->stream));
    void *s = m->stream;
    ts_model_fini(m);
    TD_OK(dv_stream_destroy(dev, s));
    td_check(dev);
    TD_OK(dv_device_close(dev));
}

/* Acquire use i, read its bytes, queue a "kernel" reading them on the
 * consumer stream, release: the slot is guarded until that kernel ran. */
static uint64_t use_pending(ts_model_t *m, uint64_t i, int *streamed) {
    uint64_t addr = 0;
    TD_OK(dv_schedule_acquire(m->dev, m->sched, i, m->stream, &addr));
    /* Host-accessible: read the bytes where the kernel would. */
    cr_assert_eq(memcmp((const void *)(uintptr_t)addr, m->rg[i].src,
                        m->rg[i].size),
                 0, "use %llu reads bytes that are not its own",
                 (unsigned long long)i);
    TD_OK(dv_host_stream_submit(m->stream));
    TD_OK(dv_schedule_release(m->dev, m->sched, i, m->stream));
    *streamed = ts_in_ring(m, addr);
    if (*streamed) {
        uint64_t sub = 0;
        TD_OK(dv_host_stream_counts(m->stream, &sub, NULL));
        spy_guard(addr, m->rg[i].size, m->stream, sub);
    }
    return addr;
}

Test(stream_host, sync_copies_never_overwrite_a_slot_being_read) {
    ts_model_t m;
    setup(&m, 0);
    int streamed;
    for (int step = 0; step < 12; step++) {
        for (uint64_t i = 0; i < m.n; i++) {
            use_pending(&m, i, &streamed);
            /* The simulated GPU catches up only now and then. */
            if ((i + (uint64_t)step) % 5 == 4) {
                TD_OK(dv_host_stream_complete(m.stream));
            }
            cr_assert_eq(spy_state()->violations, 0,
                         "step %d use %llu: a slot was refilled while its "
                         "reader had work queued",
                         step, (unsigned long long)i);
        }
        td_check(m.dev);
    }
    dv_schedule_info_t in = ts_info(&m);
    cr_assert_gt(in.deferred, 0, "refills were put off for pending readers");
    cr_assert_eq(in.streamed, 12 * 6);
    cr_assert_eq(spy_state()->stream_waits, 0,
                 "synchronous copies need no GPU-side waits");
    teardown(&m);
}

Test(stream_host, one_fence_per_range_and_no_host_waits_when_async) {
    ts_model_t m;
    setup(&m, 1);
    spy_state_t *sp = spy_state();
    int streamed;
    for (int step = 0; step < 10; step++) {
        for (uint64_t i = 0; i < m.n; i++) {
            long waits = sp->nwaits;
            long fences = sp->consumer_fences;
            uint64_t addr = 0;
            TD_OK(dv_schedule_acquire(m.dev, m.sched, i, m.stream, &addr));
            /* The waits this acquire made on the consumer stream. */
            long mine = 0;
            dv_hal_fence_t want = spy_copy_fence(addr);
            for (long k = waits; k < sp->nwaits; k++) {
                if (sp->waits[k].stream == m.stream) {
                    mine++;
                    cr_assert_eq(sp->waits[k].fence, want,
                                 "use %llu waited on a fence other than its "
                                 "copy's",
                                 (unsigned long long)i);
                }
            }
            streamed = ts_in_ring(&m, addr);
            if (streamed || step == 0) {
                /* Its copy was still pending: exactly one wait. */
                cr_assert_eq(mine, 1, "step %d use %llu: %ld waits", step,
                             (unsigned long long)i, mine);
            } else {
                cr_assert_eq(mine, 0, "a current resident range waits for "
                             "nothing");
            }
            cr_assert_eq(memcmp((const void *)(uintptr_t)addr, m.rg[i].src,
                                m.rg[i].size),
                         0);
            TD_OK(dv_host_stream_submit(m.stream));
            TD_OK(dv_schedule_release(m.dev, m.sched, i, m.stream));
            if (streamed) {
                cr_assert_eq(sp->consumer_fences, fences + 1,
                             "one fence per streamed release");
                uint64_t sub = 0;
                TD_OK(dv_host_stream_counts(m.stream, &sub, NULL));
                spy_guard(addr, m.rg[i].size, m.stream, sub);
            }
            cr_assert_eq(sp->violations, 0, "step %d use %llu", step,
                         (unsigned long long)i);
        }
    }
    /* The copy stream waited (GPU-side) on slot readers; the host never. */
    int copy_waits = 0;
    for (long k = 0; k < sp->nwaits; k++) {
        copy_waits += sp->waits[k].stream == sp->copy_stream;
    }
    cr_assert_gt(copy_waits, 0);
    cr_assert_eq(sp->fence_waits, 0, "the host waited on a fence");
    cr_assert_eq(sp->stream_syncs_copy, 0, "the copy stream was synchronized");
    dv_schedule_info_t in = ts_info(&m);
    cr_assert_eq(in.host_waits, 0);
    cr_assert_eq(in.deferred, 0, "GPU ordering defers nothing");
    teardown(&m);
}

Test(stream_host, a_pending_reader_is_waited_for_only_when_needed) {
    /* One slot: the next streamed use needs the slot its predecessor's
     * kernel still reads. The host waits for that kernel (and no more)
     * only when the use is acquired. */
    dv_device_t *dev = open_spy(0, 2);
    ts_model_t m;
    ts_model_init(&m, dev, 4, P, P);
    TD_OK(dv_stream_create(dev, &m.stream));
    spy_state()->consumer = m.stream;
    dv_schedule_options_t o;
    dv_schedule_options_init(&o);
    o.ring_slots = 1;
    o.placement = DV_PLACEMENT_PREFIX;
    TD_OK(ts_create(&m, &o)); /* range 0 resident, 1..3 streamed */
    int streamed;
    use_pending(&m, 0, &streamed);
    use_pending(&m, 1, &streamed);
    cr_assert(streamed);
    uint64_t sub = 0, done = 0;
    TD_OK(dv_host_stream_counts(m.stream, &sub, &done));
    cr_assert_lt(done, sub, "the reader of range 1 is still queued");
    cr_assert_gt(ts_info(&m).deferred, 0);
    use_pending(&m, 2, &streamed);
    cr_assert_eq(spy_state()->violations, 0);
    cr_assert_eq(ts_info(&m).host_waits, 1);
    TD_OK(dv_host_stream_counts(m.stream, NULL, &done));
    cr_assert_lt(done, sub + 1, "only the work before the fence was waited");
    teardown(&m);
}
