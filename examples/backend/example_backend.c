/*
 * example_backend.c - the template backend's ops table, its entry point,
 * and the ops that concern a device as a whole (example_backend.h).
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Load it with options.backend = "/path/libdv_example_backend.so" or
 * DYNVRAM_BACKEND=/path/libdv_example_backend.so. Backend options
 * (dv_device_options_t.backend_options): "capacity=SIZE" with an optional
 * K, M, G or T suffix (default 1G). Any other key is refused.
 */
#define _GNU_SOURCE /* memfd_create */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "example_backend.h"

/* ---- the native error record ----------------------------------------------
 */

/* One per thread: the core asks right after the op failed, on the thread
 * that called it. */
static _Thread_local int64_t exb_code;
static _Thread_local char exb_text[256];

dv_result_t exb_fail(dv_result_t r, int64_t code, const char *fmt, ...) {
    char text[sizeof(exb_text)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    exb_code = code;
    memcpy(exb_text, text, sizeof(text));
    return r;
}

dv_result_t exb_fail_errno(dv_result_t r, const char *call) {
    int e = errno;
    return exb_fail(r, e, "example: %s: %s", call, strerror(e));
}

void exb_last_native_error(int64_t *code, char *text, size_t len) {
    if (code) {
        *code = exb_code;
    }
    if (text && len) {
        snprintf(text, len, "%s", exb_text);
    }
}

/* ---- options
 * ------------------------------------------------------------------ */

/* "512M", "1G", "4096": 0 on success. */
static int parse_size(const char *s, size_t n, uint64_t *out) {
    uint64_t v = 0;
    size_t i = 0;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return -1;
        }
        v = v * 10 + d;
    }
    if (i == 0) {
        return -1;
    }
    unsigned shift = 0;
    if (i + 1 == n) {
        const char *units = "KMGT";
        const char *u = strchr(units, s[i] & ~0x20); /* either case */
        if (!u || !*u) {
            return -1;
        }
        shift = 10u * (unsigned)(u - units + 1);
    } else if (i != n) {
        return -1;
    }
    if (shift && v > (UINT64_MAX >> shift)) {
        return -1;
    }
    *out = v << shift;
    return 0;
}

/* "key=value,key=value": the keys this backend knows, every other refused
 * (a misspelt option must not be ignored silently). */
static dv_result_t parse_options(const char *opts, exb_dev_t *d) {
    const char *p = opts ? opts : "";
    while (*p) {
        size_t len = strcspn(p, ",");
        const char *eq = memchr(p, '=', len);
        size_t klen = eq ? (size_t)(eq - p) : len;
        if (klen == 8 && strncmp(p, "capacity", 8) == 0 && eq) {
            size_t vlen = len - klen - 1;
            if (parse_size(eq + 1, vlen, &d->capacity) != 0 ||
                d->capacity < EXB_GRANULARITY) {
                return exb_fail(DV_ERROR_INVALID_ARGUMENT, 0,
                                "example: capacity '%.*s' is not a size of "
                                "at least 64K",
                                (int)vlen, eq + 1);
            }
        } else if (len > 0) {
            return exb_fail(DV_ERROR_INVALID_ARGUMENT, 0,
                            "example: unknown option '%.*s' (known: "
                            "capacity=SIZE)",
                            (int)len, p);
        }
        p += len + (p[len] == ',');
    }
    return DV_OK;
}

/* ---- probe, init, fini, caps, mem_info --------------------------------------
 */

/* Can this machine give us memfds? Ask once per probe: it is cheap. */
static dv_result_t exb_probe(int *device_count, char *reason, size_t len) {
    int fd = memfd_create("dv-example-probe", MFD_CLOEXEC);
    if (fd < 0) {
        *device_count = 0;
        if (reason && len) {
            snprintf(reason, len, "example: memfd_create: %s", strerror(errno));
        }
        return DV_ERROR_BACKEND_UNAVAILABLE;
    }
    close(fd);
    *device_count = EXB_DEVICES;
    if (reason && len) {
        snprintf(reason, len, "example backend: %d simulated devices",
                 EXB_DEVICES);
    }
    return DV_OK;
}

static uint32_t broken_from_env(void) {
    const char *e = getenv("DV_EXAMPLE_BREAK");
    uint32_t bits = 0;
    if (e && strstr(e, "map")) {
        bits |= EXB_BREAK_MAP;
    }
    if (e && strstr(e, "oom")) {
        bits |= EXB_BREAK_OOM;
    }
    return bits;
}

static dv_result_t exb_init(const dv_hal_init_args_t *args, void **ctx) {
    if (args->ordinal < 0 || args->ordinal >= EXB_DEVICES) {
        return exb_fail(DV_ERROR_DEVICE_NOT_FOUND, 0,
                        "example: no device %d (there are %d)", args->ordinal,
                        EXB_DEVICES);
    }
    exb_dev_t *d = calloc(1, sizeof(*d));
    if (!d) {
        return exb_fail(DV_ERROR_OUT_OF_HOST_MEMORY, 0, "example: init");
    }
    d->ordinal = args->ordinal;
    d->capacity = EXB_DEFAULT_CAPACITY;
    d->broken = broken_from_env();
    /* size is 0 when a caller predates version 2's fields: no options. */
    const char *opts =
        args->size >= offsetof(dv_hal_init_args_t, options) + sizeof(char *)
            ? args->options
            : NULL;
    dv_result_t r = parse_options(opts, d);
    if (r != DV_OK) {
        free(d);
        return r;
    }
    *ctx = d;
    return DV_OK;
}

static void exb_fini(void *ctx) {
    exb_dev_t *d = ctx;
    exb_streams_fini(d);
    exb_mem_fini(d);
    free(d->regs);
    free(d);
}

static dv_result_t exb_get_caps(void *ctx, dv_hal_caps_t *caps) {
    exb_dev_t *d = ctx;
    memset(caps, 0, sizeof(*caps));
    snprintf(caps->name, sizeof(caps->name),
             "example device %d (%llu MiB simulated)", d->ordinal,
             (unsigned long long)(d->capacity >> 20));
    caps->granularity = EXB_GRANULARITY;
    caps->va_alignment = EXB_GRANULARITY;
    caps->total_memory = d->capacity;
    /* Fences are real objects (the core records and waits on them); copies
     * are plain memcpy, so synchronous; registering host memory is
     * accepted and costs nothing; device addresses are CPU addresses. */
    caps->flags = DV_CAP_FENCES | DV_CAP_HOST_REGISTER | DV_CAP_HOST_ACCESSIBLE;
    return DV_OK;
}

static dv_result_t exb_mem_info(void *ctx, uint64_t *free_bytes,
                                uint64_t *total_bytes) {
    exb_dev_t *d = ctx;
    *free_bytes = d->capacity - d->allocated;
    *total_bytes = d->capacity;
    return DV_OK;
}

/* Host memory needs no pinning for memcpy; a real backend page-locks here.
 * The record makes it as strict as a driver: overlapping registrations and
 * unregistering what was never registered fail. */
static dv_result_t exb_host_register(void *ctx, void *ptr, uint64_t size) {
    exb_dev_t *d = ctx;
    uintptr_t a = (uintptr_t)ptr;
    for (size_t k = 0; k < d->reg_count; k++) {
        if (a < d->regs[k].start + d->regs[k].size &&
            d->regs[k].start < a + size) {
            return exb_fail(DV_ERROR_INVALID_ARGUMENT, 0,
                            "example host_register: %p +%llu overlaps a "
                            "registration",
                            ptr, (unsigned long long)size);
        }
    }
    if (d->reg_count == d->reg_cap) {
        size_t cap = d->reg_cap ? 2 * d->reg_cap : 16;
        struct exb_reg *r = realloc(d->regs, cap * sizeof(*r));
        if (!r) {
            return exb_fail(DV_ERROR_OUT_OF_HOST_MEMORY, 0,
                            "example host_register: table");
        }
        d->regs = r;
        d->reg_cap = cap;
    }
    d->regs[d->reg_count].start = a;
    d->regs[d->reg_count++].size = size;
    return DV_OK;
}

static dv_result_t exb_host_unregister(void *ctx, void *ptr) {
    exb_dev_t *d = ctx;
    for (size_t k = 0; k < d->reg_count; k++) {
        if (d->regs[k].start == (uintptr_t)ptr) {
            d->regs[k] = d->regs[--d->reg_count];
            return DV_OK;
        }
    }
    return exb_fail(DV_ERROR_INVALID_ARGUMENT, 0,
                    "example host_unregister: %p is not registered", ptr);
}

/* ---- the ops table and the entry point -------------------------------------
 */

static const dv_hal_ops_t exb_ops = {
    .version = DV_HAL_VERSION,
    .name = "example",
    .probe = exb_probe,
    .init = exb_init,
    .fini = exb_fini,
    .get_caps = exb_get_caps,
    .mem_info = exb_mem_info,
    .reserve = exb_reserve,
    .unreserve = exb_unreserve,
    .create = exb_create,
    .release = exb_release,
    .map = exb_map,
    .unmap = exb_unmap,
    .fence_record = exb_fence_record,
    .fence_query = exb_fence_query,
    .fence_wait = exb_fence_wait,
    .fence_destroy = exb_fence_destroy,
    .stream_create = exb_stream_create,
    .stream_destroy = exb_stream_destroy,
    .stream_synchronize = exb_stream_synchronize,
    .copy_h2d = exb_copy_h2d,
    .copy_d2h = exb_copy_d2h,
    .host_register = exb_host_register,
    .host_unregister = exb_host_unregister,
    .last_native_error = exb_last_native_error,
    .stream_check = exb_stream_check,
    .stream_wait = exb_stream_wait,
    .stream_is_capturing = exb_stream_is_capturing,
};

/* What dynvram looks up after loading the library. The only exported
 * symbol: the build hides everything else. */
__attribute__((visibility("default"))) const dv_hal_ops_t *dv_hal_entry(void);
const dv_hal_ops_t *dv_hal_entry(void) { return &exb_ops; }
