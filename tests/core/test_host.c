/*
 * test_host.c - the host backend is real memory: data written through a
 * mapping is there, an evicted page really faults, the simulated capacity
 * holds; and its simulated streams prove that eviction waits only for the
 * evicted page's own fence.
 * SPDX-License-Identifier: Apache-2.0
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dynvram_host.h"
#include "inject.h"
#include "testdev.h"

#define P TD_PAGE

static dv_device_t *host_dev(uint64_t limit_pages) {
    dv_device_options_t o;
    td_options(&o, limit_pages);
    o.backend = "host";
    return td_open_opts(&o);
}

Test(host, writes_through_mapping_are_real) {
    dv_device_t *dev = host_dev(0);
    dv_vbar_t *v = NULL;
    TD_OK(dv_vbar_create(dev, 2 * P, &v));
    dv_vbar_info_t info;
    TD_OK(dv_vbar_get_info(dev, v, &info));
    uint64_t g;
    TD_OK(dv_fault(dev, v, 0, 2 * P, &g));
    unsigned char *p = (unsigned char *)(uintptr_t)info.base;
    for (size_t i = 0; i < 2 * P; i += 4096) {
        p[i] = (unsigned char)(i >> 12);
    }
    unsigned char back[8];
    TD_OK(dv_copy_d2h(dev, back, info.base + P, 1, NULL));
    cr_assert_eq(back[0], (unsigned char)(P >> 12));
    TD_OK(dv_unpin(dev, v, 0, 2 * P, NULL));
    TD_OK(dv_vbar_destroy(dev, v));
    TD_OK(dv_device_close(dev));
}

Test(host, evicted_page_really_faults) {
    dv_device_t *dev = host_dev(0);
    dv_vbar_t *v = NULL;
    TD_OK(dv_vbar_create(dev, 2 * P, &v));
    dv_vbar_info_t info;
    TD_OK(dv_vbar_get_info(dev, v, &info));
    uint64_t g, freed;
    TD_OK(dv_fault(dev, v, 0, 2 * P, &g));
    TD_OK(dv_unpin(dev, v, 0, 2 * P, NULL));
    TD_OK(dv_vbar_evict(dev, v, P, &freed)); /* page 1 goes */
    cr_assert_eq(freed, P);
    volatile unsigned char *p = (unsigned char *)(uintptr_t)info.base;
    p[0] = 1; /* page 0 still mapped */
    /* Copies into an unmapped page are refused, not a crash. */
    unsigned char b = 0;
    TD_IS(dv_copy_h2d(dev, info.base + P, &b, 1, NULL), DV_ERROR_INVALID_ARGUMENT);
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        signal(SIGSEGV, SIG_DFL); /* sanitizers install their own handler */
        p[P] = 1;                 /* must die here */
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV,
              "touching an evicted page did not fault (status %d)", status);
    TD_OK(dv_vbar_destroy(dev, v));
    TD_OK(dv_device_close(dev));
}

Test(host, capacity_from_environment) {
    setenv("DYNVRAM_HOST_CAPACITY", "6M", 1);
    dv_device_options_t o;
    td_options(&o, 0);
    o.backend = "host";
    o.backend_options = NULL;
    dv_device_t *dev = td_open_opts(&o);
    unsetenv("DYNVRAM_HOST_CAPACITY");
    dv_device_caps_t caps;
    TD_OK(dv_device_get_caps(dev, &caps));
    cr_assert_eq(caps.total_memory, 6u << 20);
    dv_vbar_t *v = NULL;
    TD_OK(dv_vbar_create(dev, 5 * P, &v));
    uint64_t g, ok = 0;
    for (uint64_t i = 0; i < 5; i++) {
        dv_result_t r = dv_fault(dev, v, i * P, P, &g);
        cr_assert(r == DV_OK || r == DV_OFFLOADED);
        ok += r == DV_OK;
    }
    cr_assert_eq(ok, 3, "6 MiB holds three 2 MiB pages");
    TD_OK(dv_unpin(dev, v, 0, 3 * P, NULL));
    TD_OK(dv_vbar_destroy(dev, v));
    TD_OK(dv_device_close(dev));
}

static int probe_host(dv_backend_info_t *bi) {
    for (int i = 0; i < dv_backend_count(); i++) {
        TD_OK(dv_backend_probe(i, bi));
        if (!strcmp(bi->name, "host")) {
            return 1;
        }
    }
    return 0;
}

static dv_result_t open_host_ordinal(int ordinal) {
    dv_device_options_t o;
    dv_device_options_init(&o);
    o.backend = "host";
    o.ordinal = ordinal;
    o.vram_limit = 64u << 20;
    dv_device_t *dev = NULL;
    dv_result_t r = dv_device_open(&o, &dev);
    if (r == DV_OK) {
        TD_OK(dv_device_close(dev));
    }
    return r;
}

Test(host, device_count_from_environment) {
    dv_backend_info_t bi;
    unsetenv("DYNVRAM_HOST_DEVICES");
    cr_assert(probe_host(&bi));
    cr_assert(bi.available);
    cr_assert_eq(bi.device_count, 4, "4 devices by default");
    cr_assert(strstr(bi.reason, "DYNVRAM_HOST_DEVICES"), "%s", bi.reason);

    setenv("DYNVRAM_HOST_DEVICES", "2", 1);
    cr_assert(probe_host(&bi));
    cr_assert(bi.available);
    cr_assert_eq(bi.device_count, 2);
    cr_assert_eq(open_host_ordinal(1), DV_OK);
    cr_assert_eq(open_host_ordinal(2), DV_ERROR_DEVICE_NOT_FOUND);
    cr_assert(strstr(dv_last_error(), "ordinal 2 of 2"), "%s", dv_last_error());

    setenv("DYNVRAM_HOST_DEVICES", "64", 1);
    cr_assert(probe_host(&bi));
    cr_assert_eq(bi.device_count, 64);
    cr_assert_eq(open_host_ordinal(63), DV_OK);

    /* Anything but a whole number 1..64 makes the backend unavailable (and
     * says why) instead of silently using some other count. */
    const char *bad[] = {"0", "65", "-1", "abc", "2x", " 2", "99999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setenv("DYNVRAM_HOST_DEVICES", bad[i], 1);
        cr_assert(probe_host(&bi));
        cr_assert(!bi.available, "'%s' accepted", bad[i]);
        cr_assert_eq(bi.device_count, 0);
        cr_assert(strstr(bi.reason, "DYNVRAM_HOST_DEVICES"), "%s", bi.reason);
        cr_assert_eq(open_host_ordinal(0), DV_ERROR_BACKEND_UNAVAILABLE, "'%s'", bad[i]);
    }
    unsetenv("DYNVRAM_HOST_DEVICES");
    cr_assert_eq(open_host_ordinal(3), DV_OK);
}

Test(host, eviction_waits_only_for_the_pages_own_fence) {
    dv_device_options_t o;
    td_options(&o, 2);
    o.backend = "host";
    o.fence_interval = 1;
    dv_device_t *dev = td_open_opts(&o);
    void *busy = NULL, *idle = NULL;
    TD_OK(dv_stream_create(dev, &busy));
    TD_OK(dv_stream_create(dev, &idle));
    dv_vbar_t *a = NULL, *b = NULL;
    TD_OK(dv_vbar_create(dev, 2 * P, &a));
    uint64_t g;
    /* Page 0 is read by long work on `busy`; page 1 by finished work. */
    TD_OK(dv_fault(dev, a, 0, 2 * P, &g));
    TD_OK(dv_host_stream_submit(busy));
    TD_OK(dv_unpin(dev, a, 0, P, busy));
    TD_OK(dv_host_stream_submit(idle));
    TD_OK(dv_unpin(dev, a, P, P, idle));
    TD_OK(dv_host_stream_complete(idle));
    TD_OK(dv_host_stream_submit(busy)); /* more unrelated work later */
    TD_OK(dv_vbar_create(dev, 2 * P, &b));
    uint64_t waits = dv_host_fence_waits();
    /* B takes one page: page 1 (top) goes, with no wait at all. */
    TD_OK(dv_fault(dev, b, 0, P, &g));
    cr_assert_eq(dv_host_fence_waits(), waits, "waited for another stream");
    uint64_t sub, done;
    TD_OK(dv_host_stream_counts(busy, &sub, &done));
    cr_assert_eq(done, 0, "busy stream untouched");
    /* B takes page 0 too: now it must wait, for page 0's fence only. */
    TD_OK(dv_fault(dev, b, P, P, &g));
    cr_assert_eq(dv_host_fence_waits(), waits + 1);
    TD_OK(dv_host_stream_counts(busy, &sub, &done));
    cr_assert_eq(done, 1, "only the work before page 0's unpin was awaited");
    cr_assert_eq(sub, 2);
    cr_assert_eq(td_stats(dev).fence_waits, 1);
    TD_OK(dv_unpin(dev, b, 0, 2 * P, NULL));
    TD_OK(dv_vbar_destroy(dev, a));
    TD_OK(dv_vbar_destroy(dev, b));
    TD_OK(dv_stream_destroy(dev, busy));
    TD_OK(dv_stream_destroy(dev, idle));
    TD_OK(dv_device_close(dev));
}

Test(host, batched_fences_cover_unpins) {
    /* With one fence per 4 unpins, a page whose unpin no fence covers yet
     * gets one recorded on demand at eviction. */
    dv_device_options_t o;
    td_options(&o, 1);
    o.backend = "host";
    o.fence_interval = 4;
    dv_device_t *dev = td_open_opts(&o);
    void *s = NULL;
    TD_OK(dv_stream_create(dev, &s));
    dv_vbar_t *a = NULL, *b = NULL;
    TD_OK(dv_vbar_create(dev, P, &a));
    uint64_t g;
    TD_OK(dv_fault(dev, a, 0, P, &g));
    TD_OK(dv_host_stream_submit(s));
    TD_OK(dv_unpin(dev, a, 0, P, s)); /* 1st unpin: no fence yet */
    TD_OK(dv_vbar_create(dev, P, &b));
    uint64_t waits = dv_host_fence_waits();
    TD_OK(dv_fault(dev, b, 0, P, &g));
    cr_assert_eq(dv_host_fence_waits(), waits + 1);
    uint64_t sub, done;
    TD_OK(dv_host_stream_counts(s, &sub, &done));
    cr_assert_eq(done, sub);
    TD_OK(dv_unpin(dev, b, 0, P, s));
    TD_OK(dv_vbar_destroy(dev, a));
    TD_OK(dv_vbar_destroy(dev, b));
    TD_OK(dv_stream_destroy(dev, s));
    TD_OK(dv_device_close(dev));
}

Test(host, destroying_a_stream_settles_its_unfenced_unpins) {
    dv_device_options_t o;
    td_options(&o, 0);
    o.backend = "host";
    o.fence_interval = 64; /* the unpin below records no fence */
    dv_device_t *dev = td_open_opts(&o);
    void *s = NULL;
    TD_OK(dv_stream_create(dev, &s));
    dv_vbar_t *v = NULL;
    TD_OK(dv_vbar_create(dev, P, &v));
    uint64_t g;
    TD_OK(dv_fault(dev, v, 0, P, &g));
    TD_OK(dv_host_stream_submit(s));
    TD_OK(dv_unpin(dev, v, 0, P, s));
    TD_OK(dv_stream_destroy(dev, s)); /* before the VBAR: no fence needed later */
    TD_OK(dv_vbar_destroy(dev, v));
    td_check(dev);
    TD_OK(dv_device_close(dev));
}

/* ---- messages carry the failing op's own reason ------------------------ */

Test(host, a_failed_copy_keeps_the_backend_reason_and_no_stale_one) {
    /* An earlier failure on this thread leaves a native error behind: a
     * reservation larger than the address space (1 GiB pages keep its
     * page table small). */
    dv_device_options_t o;
    td_options(&o, 0);
    o.backend = "host";
    o.page_size = 1ull << 30;
    dv_device_t *big = td_open_opts(&o);
    dv_vbar_t *huge = NULL;
    TD_IS(dv_vbar_create(big, 1ull << 52, &huge), DV_ERROR_ADDRESS_SPACE);
    cr_assert(strstr(dv_last_error(), "Cannot allocate") != NULL, "%s",
              dv_last_error());
    TD_OK(dv_device_close(big));
    dv_device_t *dev = host_dev(0);
    dv_vbar_t *v = NULL;
    TD_OK(dv_vbar_create(dev, 2 * P, &v));
    dv_vbar_info_t info;
    TD_OK(dv_vbar_get_info(dev, v, &info));
    char buf[64] = {0};
    /* Page 1 was never faulted: the copy must fail with the host
     * backend's own words, not a generic text and not the mmap error. */
    TD_IS(dv_copy_h2d(dev, info.base + P, buf, sizeof(buf), NULL),
          DV_ERROR_INVALID_ARGUMENT);
    cr_assert(strstr(dv_last_error(), "is not mapped") != NULL, "%s",
              dv_last_error());
    cr_assert(strstr(dv_last_error(), "Cannot allocate") == NULL,
              "stale native error: %s", dv_last_error());
    TD_IS(dv_copy_d2h(dev, buf, info.base + P, sizeof(buf), NULL),
          DV_ERROR_INVALID_ARGUMENT);
    cr_assert(strstr(dv_last_error(), "source") != NULL, "%s", dv_last_error());
    TD_OK(dv_vbar_destroy(dev, v));
    TD_OK(dv_device_close(dev));
}

/* An out-of-tree backend whose init fails, with no native error at all. */
static dv_result_t oot_probe(int *count, char *reason, size_t len) {
    *count = 1;
    return DV_OK;
}
static dv_result_t oot_init(const dv_hal_init_args_t *a, void **ctx) {
    return DV_ERROR_BACKEND;
}
static void oot_fini(void *ctx) {}
static dv_result_t oot_nop(void) { return DV_ERROR_NOT_SUPPORTED; }

Test(host, an_out_of_tree_init_failure_reports_itself) {
    /* Leave an unrelated message on this thread first. */
    TD_IS(dv_fault(NULL, NULL, 0, 1, NULL), DV_ERROR_INVALID_ARGUMENT);
    dv_hal_ops_t ops = *dv_hal_host();
    ops.name = "oot";
    ops.probe = oot_probe;
    ops.init = oot_init;
    ops.fini = oot_fini;
    ops.last_native_error = NULL;
    (void)oot_nop;
    dv_device_t *dev = NULL;
    TD_IS(dv_device_open_hal(&ops, NULL, &dev), DV_ERROR_BACKEND);
    cr_assert(strstr(dv_last_error(), "init failed on oot:0") != NULL, "%s",
              dv_last_error());
    cr_assert(strstr(dv_last_error(), "dv_fault") == NULL,
              "an earlier message leaked: %s", dv_last_error());
    cr_assert_null(dev);
}

Test(host, a_version_1_backend_still_opens) {
    /* A backend built against HAL version 1 fills the struct only up to
     * last_native_error: give the core exactly that many bytes (ASan
     * catches a read past them). */
    size_t v1 = offsetof(dv_hal_ops_t, stream_check);
    unsigned char *buf = malloc(v1);
    cr_assert(buf);
    memcpy(buf, dv_hal_host(), v1);
    const dv_hal_ops_t *ops = (const dv_hal_ops_t *)(void *)buf;
    uint32_t version = 1;
    memcpy(buf + offsetof(dv_hal_ops_t, version), &version, sizeof(version));
    dv_device_t *dev_none = NULL;
    dv_device_options_t o;
    td_options(&o, 0);
    /* Version 1 had no backend options: asking for some is refused. */
    TD_IS(dv_device_open_hal(ops, &o, &dev_none), DV_ERROR_NOT_SUPPORTED);
    o.backend_options = NULL;
    dv_device_t *dev = NULL;
    TD_OK(dv_device_open_hal(ops, &o, &dev));
    dv_vbar_t *v = NULL;
    TD_OK(dv_vbar_create(dev, 2 * P, &v));
    void *s = NULL;
    TD_OK(dv_stream_create(dev, &s));
    uint64_t g;
    TD_OK(dv_fault(dev, v, 0, P, &g));
    TD_OK(dv_unpin(dev, v, 0, P, s));
    TD_OK(dv_stream_destroy(dev, s));
    TD_OK(dv_vbar_destroy(dev, v));
    TD_OK(dv_device_close(dev));
    /* Version 0 and a version from the future are refused. */
    version = 0;
    memcpy(buf + offsetof(dv_hal_ops_t, version), &version, sizeof(version));
    TD_IS(dv_device_open_hal(ops, &o, &dev), DV_ERROR_INVALID_ARGUMENT);
    version = DV_HAL_VERSION + 1;
    memcpy(buf + offsetof(dv_hal_ops_t, version), &version, sizeof(version));
    TD_IS(dv_device_open_hal(ops, &o, &dev), DV_ERROR_INVALID_ARGUMENT);
    free(buf);
}

Test(host, unpin_that_cannot_wait_for_another_stream_changes_nothing) {
    td_inject_arm(dv_hal_host(), 0, DV_OK);
    dv_device_options_t o;
    td_options(&o, 0);
    dv_device_t *dev = NULL;
    TD_OK(dv_device_open_hal(td_inject_ops(), &o, &dev));
    dv_vbar_t *v = NULL;
    TD_OK(dv_vbar_create(dev, 2 * P, &v));
    void *a = NULL, *b = NULL;
    TD_OK(dv_stream_create(dev, &a));
    TD_OK(dv_stream_create(dev, &b));
    uint64_t g;
    /* The page is read by work still pending on stream a... */
    TD_OK(dv_fault(dev, v, 0, P, &g));
    TD_OK(dv_host_stream_submit(a));
    TD_OK(dv_unpin(dev, v, 0, P, a));
    /* ...and pinned again, then unpinned on b: b's unpin must first wait
     * for a's work, and that wait fails. */
    TD_OK(dv_fault(dev, v, 0, P, &g));
    dv_device_stats_t before = td_stats(dev);
    td_inject_fail_next("fence_wait", DV_ERROR_BACKEND);
    TD_IS(dv_unpin(dev, v, 0, P, b), DV_ERROR_BACKEND);
    cr_assert(td_inject_state()->fired, "the wait was never attempted");
    cr_assert(strstr(dv_last_error(), "injected failure of fence_wait"), "%s",
              dv_last_error());
    cr_assert_eq(td_page_flags(dev, v, 0), DV_PAGE_RESIDENT | DV_PAGE_PINNED,
                 "the failed unpin unpinned the page");
    cr_assert_eq(td_stats(dev).pinned_bytes, before.pinned_bytes);
    td_check(dev);
    /* Once a's work is done the same unpin succeeds. */
    TD_OK(dv_host_stream_complete(a));
    TD_OK(dv_unpin(dev, v, 0, P, b));
    cr_assert_eq(td_page_flags(dev, v, 0), DV_PAGE_RESIDENT);
    TD_OK(dv_stream_destroy(dev, a));
    TD_OK(dv_stream_destroy(dev, b));
    TD_OK(dv_vbar_destroy(dev, v));
    TD_OK(dv_device_close(dev));
}
