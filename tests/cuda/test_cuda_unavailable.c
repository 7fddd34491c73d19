/*
 * test_cuda_unavailable.c - the CUDA backend where it cannot work, and its
 * error paths on the simulated driver.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Each Criterion test runs in its own process, so each can point
 * DYNVRAM_CUDA_LIBRARY somewhere else before the backend's one-time load.
 * The simulated-driver cases use DV_FAKE_CUDA_PATH (set by CTest) and are
 * skipped without it; the stub case uses DV_CUDA_STUB_PATH (the SDK's
 * stubs/libcuda.so) likewise.
 */
#define _POSIX_C_SOURCE 200809L /* setenv, unsetenv */

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "dynvram.h"
#include "dynvram_hal.h"
#include "tests/support/hal_text.h"

#define MIB (1ull << 20)

static void use_library(const char *path) {
    cr_assert_eq(setenv("DYNVRAM_CUDA_LIBRARY", path, 1), 0);
}

static void use_fake(void) {
    const char *p = getenv("DV_FAKE_CUDA_PATH");
    if (!p || !*p) {
        cr_skip_test("DV_FAKE_CUDA_PATH not set (no simulated driver built)");
    }
    use_library(p);
}

/* Probe must fail with a reason containing `want`; open must fail too. */
static void expect_unavailable(const char *want) {
    const dv_hal_ops_t *ops = dv_hal_cuda();
    int n = -1;
    char reason[256] = "";
    cr_assert_eq(ops->probe(&n, reason, sizeof(reason)),
                 DV_ERROR_BACKEND_UNAVAILABLE, "probe: %s", reason);
    cr_assert_eq(n, 0);
    cr_assert(strstr(reason, want) != NULL, "reason '%s' lacks '%s'", reason,
              want);

    dv_backend_info_t info;
    int found = 0;
    for (int i = 0; i < dv_backend_count(); i++) {
        cr_assert_eq(dv_backend_probe(i, &info), DV_OK);
        if (strcmp(info.name, "cuda") == 0) {
            found = 1;
            cr_assert_eq(info.available, 0);
            cr_assert(strstr(info.reason, want) != NULL, "info.reason '%s'",
                      info.reason);
        }
    }
    cr_assert(found, "cuda is not among the backends");

    dv_device_options_t o;
    dv_device_t *dev = NULL;
    dv_device_options_init(&o);
    o.backend = "cuda";
    cr_assert_eq(dv_device_open(&o, &dev), DV_ERROR_BACKEND_UNAVAILABLE);
    cr_assert_null(dev);
    cr_assert(strstr(dv_last_error(), want) != NULL, "last error '%s'",
              dv_last_error());
}

Test(unavailable, missing_library) {
    use_library("/nonexistent/dynvram-test/libcuda.so.1");
    expect_unavailable("cannot load /nonexistent/dynvram-test/libcuda.so.1");
}

Test(unavailable, not_a_driver_library) {
    use_library("libm.so.6");
    expect_unavailable("not a usable CUDA driver library");
}

Test(unavailable, sdk_stub_library) {
    const char *p = getenv("DV_CUDA_STUB_PATH");
    if (!p || !*p) {
        cr_skip_test("DV_CUDA_STUB_PATH not set (no CUDA SDK stub found)");
    }
    use_library(p);
    expect_unavailable("STUB");
}

Test(unavailable, automatic_selection_falls_through) {
    use_library("/nonexistent/dynvram-test/libcuda.so.1");
    unsetenv("DYNVRAM_BACKEND");
    dv_device_t *dev = NULL;
    cr_assert_eq(dv_device_open(NULL, &dev), DV_OK, "%s", dv_last_error());
    dv_device_caps_t c;
    cr_assert_eq(dv_device_get_caps(dev, &c), DV_OK);
    cr_assert_str_neq(c.backend, "cuda");
    cr_assert_eq(dv_device_close(dev), DV_OK);
}

Test(fake, driver_too_old) {
    use_fake();
    setenv("DV_FAKE_CUDA_VERSION", "11080", 1);
    expect_unavailable("driver supports CUDA 11.8; dynvram needs 12.0");
}

Test(fake, no_device) {
    use_fake();
    setenv("DV_FAKE_CUDA_DEVICES", "0", 1);
    expect_unavailable("cuInit failed: CUDA_ERROR_NO_DEVICE (100)");
}

/* Every entry point is required: a driver without one (here the stream
 * query stream_check relies on) is refused, and the reason names it. */
Test(fake, missing_entry_point_is_unavailable) {
    use_fake();
    setenv("DV_FAKE_CUDA_HIDE", "cuStreamGetCtx", 1);
    expect_unavailable("cuGetProcAddress(cuStreamGetCtx, 12000) failed");
}

Test(fake, no_virtual_memory_management) {
    use_fake();
    setenv("DV_FAKE_CUDA_NO_VMM", "1", 1);
    dv_device_options_t o;
    dv_device_t *dev = NULL;
    dv_device_options_init(&o);
    o.backend = "cuda";
    cr_assert_eq(dv_device_open(&o, &dev), DV_ERROR_NOT_SUPPORTED, "%s",
                 dv_last_error());
}

Test(fake, ordinals) {
    use_fake();
    setenv("DV_FAKE_CUDA_DEVICES", "2", 1);
    const dv_hal_ops_t *ops = dv_hal_cuda();
    int n = 0;
    char reason[256];
    cr_assert_eq(ops->probe(&n, reason, sizeof(reason)), DV_OK);
    cr_assert_eq(n, 2);
    void *ctx = NULL;
    dv_hal_init_args_t a = {.ordinal = 2};
    cr_assert_eq(ops->init(&a, &ctx), DV_ERROR_DEVICE_NOT_FOUND);
    a.ordinal = -1;
    cr_assert_eq(ops->init(&a, &ctx), DV_ERROR_INVALID_ARGUMENT);
    /* Two devices open at once, each with its own context. */
    void *c0 = NULL, *c1 = NULL;
    a.ordinal = 0;
    cr_assert_eq(ops->init(&a, &c0), DV_OK, "%s", dv_last_error());
    a.ordinal = 1;
    cr_assert_eq(ops->init(&a, &c1), DV_OK, "%s", dv_last_error());
    dv_hal_caps_t caps;
    cr_assert_eq(ops->get_caps(c1, &caps), DV_OK);
    cr_assert_str_eq(caps.name, "dynvram fake CUDA device 1");
    uint64_t va = 0;
    dv_hal_mem_t m = 0;
    cr_assert_eq(ops->reserve(c1, 4 * MIB, &va), DV_OK);
    cr_assert_eq(ops->create(c1, 2 * MIB, &m), DV_OK);
    cr_assert_eq(ops->map(c1, va, 2 * MIB, m), DV_OK, "%s", dv_last_error());
    cr_assert_eq(ops->unmap(c1, va, 2 * MIB), DV_OK);
    cr_assert_eq(ops->release(c1, m), DV_OK);
    cr_assert_eq(ops->unreserve(c1, va, 4 * MIB), DV_OK);
    ops->fini(c0);
    ops->fini(c1);
}

static void *fake_init(void) {
    const dv_hal_ops_t *ops = dv_hal_cuda();
    dv_hal_init_args_t a = {.ordinal = 0};
    void *ctx = NULL;
    cr_assert_eq(ops->init(&a, &ctx), DV_OK, "%s", dv_last_error());
    return ctx;
}

Test(fake, failed_set_access_leaves_nothing_mapped) {
    use_fake();
    setenv("DV_FAKE_CUDA_FAIL", "cuMemSetAccess:1", 1);
    const dv_hal_ops_t *ops = dv_hal_cuda();
    void *ctx = fake_init();
    uint64_t va = 0;
    dv_hal_mem_t m = 0;
    cr_assert_eq(ops->reserve(ctx, 2 * MIB, &va), DV_OK);
    cr_assert_eq(ops->create(ctx, 2 * MIB, &m), DV_OK);
    cr_assert_eq(ops->map(ctx, va, 2 * MIB, m), DV_ERROR_BACKEND);
    cr_assert(strstr(td_hal_text(ops), "cuMemSetAccess") != NULL, "%s",
              td_hal_text(ops));
    int64_t code = 0;
    char text[256];
    ops->last_native_error(&code, text, sizeof(text));
    cr_assert_eq(code, 999, "native code %lld", (long long)code);
    /* The failed map was undone: the range maps again. */
    cr_assert_eq(ops->map(ctx, va, 2 * MIB, m), DV_OK, "%s", dv_last_error());
    cr_assert_eq(ops->unmap(ctx, va, 2 * MIB), DV_OK);
    cr_assert_eq(ops->release(ctx, m), DV_OK);
    cr_assert_eq(ops->unreserve(ctx, va, 2 * MIB), DV_OK);
    ops->fini(ctx);
}

Test(fake, out_of_memory_is_its_own_code) {
    use_fake();
    setenv("DV_FAKE_CUDA_MEMORY", "4194304", 1);
    const dv_hal_ops_t *ops = dv_hal_cuda();
    void *ctx = fake_init();
    dv_hal_mem_t a = 0, b = 0, c = 0;
    cr_assert_eq(ops->create(ctx, 2 * MIB, &a), DV_OK);
    cr_assert_eq(ops->create(ctx, 2 * MIB, &b), DV_OK);
    cr_assert_eq(ops->create(ctx, 2 * MIB, &c), DV_ERROR_OUT_OF_DEVICE_MEMORY);
    cr_assert(strstr(td_hal_text(ops), "CUDA_ERROR_OUT_OF_MEMORY") != NULL, "%s",
              td_hal_text(ops));
    uint64_t f = 1, t = 0;
    cr_assert_eq(ops->mem_info(ctx, &f, &t), DV_OK);
    cr_assert_eq(f, 0);
    cr_assert_eq(t, 4 * MIB);
    cr_assert_eq(ops->release(ctx, a), DV_OK);
    cr_assert_eq(ops->create(ctx, 2 * MIB, &c), DV_OK);
    /* Out of address space is not out of device memory. */
    uint64_t va = 0;
    cr_assert_eq(ops->reserve(ctx, 1ull << 62, &va), DV_ERROR_ADDRESS_SPACE);
    /* Nor are bad arguments or foreign handles. */
    cr_assert_eq(ops->unmap(ctx, 1ull << 40, 2 * MIB),
                 DV_ERROR_INVALID_ARGUMENT);
    cr_assert_eq(ops->create(ctx, 3 * MIB, &a), DV_ERROR_INVALID_ARGUMENT);
    cr_assert_eq(ops->release(ctx, b), DV_OK);
    cr_assert_eq(ops->release(ctx, c), DV_OK);
    ops->fini(ctx);
}

Test(fake, fences_recycle_events) {
    use_fake();
    setenv("DV_FAKE_CUDA_FAIL", "cuEventRecord:2", 1);
    const dv_hal_ops_t *ops = dv_hal_cuda();
    void *ctx = fake_init();
    void *s = NULL;
    dv_hal_fence_t f1 = NULL, f2 = NULL, f3 = NULL;
    cr_assert_eq(ops->stream_create(ctx, &s), DV_OK);
    cr_assert_eq(ops->fence_record(ctx, s, &f1), DV_OK);
    cr_assert_eq(ops->fence_query(ctx, f1), DV_OK);
    cr_assert_eq(ops->fence_wait(ctx, f1), DV_OK);
    ops->fence_destroy(ctx, f1);
    /* The second record fails; the event goes back to the cache. */
    cr_assert_eq(ops->fence_record(ctx, NULL, &f2), DV_ERROR_BACKEND);
    cr_assert(strstr(td_hal_text(ops), "cuEventRecord") != NULL);
    cr_assert_eq(ops->fence_record(ctx, NULL, &f3), DV_OK);
    cr_assert_eq(f3, f1, "the cached event was not reused");
    ops->fence_destroy(ctx, f3);
    cr_assert_eq(ops->stream_destroy(ctx, s), DV_OK);
    ops->fini(ctx);
}
