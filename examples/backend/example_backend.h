/*
 * example_backend.h - what the files of the template backend share.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * The template is a whole dynvram backend built outside dynvram's tree
 * against the installed headers only (dynvram.h, dynvram_hal.h). Its
 * "device" is host memory: a physical allocation is a memfd, a reservation
 * an inaccessible anonymous mapping, a mapping the memfd mapped over part
 * of a reservation (so a page that is not mapped really faults). Capacity
 * is simulated, streams run their work synchronously. Copy it, keep the
 * shape (one file per concern, a contract per op), and replace the system
 * calls by your driver's.
 *
 * Files:
 *   example_backend.c  the ops table and dv_hal_entry(), probe, init, fini,
 *                      caps, memory info, options, the native error record
 *   example_mem.c      reserve, unreserve, create, release, map, unmap,
 *                      copies (they need the mapping table)
 *   example_stream.c   streams, fences, stream_check / wait / is_capturing
 *
 * Names: everything here is exb_ (static or cross-file); the library
 * exports dv_hal_entry() and nothing else.
 *
 * Threads: dynvram calls the ops of one device under that device's lock, so
 * an exb_dev_t needs no lock; two devices may call at once, so what they
 * share (the stream registry) has its own.
 */
#ifndef EXAMPLE_BACKEND_H
#define EXAMPLE_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include <dynvram_hal.h>

#if defined(__GNUC__)
#define EXB_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define EXB_PRINTF(a, b)
#endif

/* Mapping and allocation unit, and the alignment of reservations. */
#define EXB_GRANULARITY (64u << 10)
/* Simulated devices: two, so the two-device suite runs. */
#define EXB_DEVICES 2
/* Simulated capacity of each device unless the option capacity= says. */
#define EXB_DEFAULT_CAPACITY (1ull << 30)

/* Deliberate defects, for showing that conformance fails (never in real
 * use): DV_EXAMPLE_BREAK=map makes map report success without mapping
 * anything; DV_EXAMPLE_BREAK=oom reports running out of capacity as
 * DV_ERROR_BACKEND instead of DV_ERROR_OUT_OF_DEVICE_MEMORY. */
#define EXB_BREAK_MAP 0x1u
#define EXB_BREAK_OOM 0x2u

/* A physical allocation. */
typedef struct exb_mem {
    int fd;
    uint64_t size;
    uint32_t maps; /* live mappings of it */
    struct exb_mem *next;
} exb_mem_t;

/* A reservation. */
typedef struct exb_res {
    uint64_t va, size;
    struct exb_res *next;
} exb_res_t;

/* A mapping; the table is kept sorted by va. */
typedef struct exb_map {
    uint64_t va, size;
    exb_mem_t *mem;
} exb_map_t;

typedef struct exb_dev {
    int ordinal;
    uint32_t broken; /* EXB_BREAK_* */
    uint64_t capacity;
    uint64_t allocated;
    exb_mem_t *mems;
    exb_res_t *res;
    exb_map_t *maps;
    size_t map_count, map_cap;
    /* Host registrations (start, size), kept so that, like a real driver,
     * a second registration of the same memory or an unregister of
     * memory never registered is refused. */
    struct exb_reg {
        uintptr_t start;
        uint64_t size;
    } *regs;
    size_t reg_count, reg_cap;
} exb_dev_t;

/* ---- the native error record (example_backend.c) ---- */

/* Record why an op failed (code: the "driver's" code, here errno or 0)
 * for last_native_error on this thread, and return r. Every failing op
 * goes through it: dynvram builds its message from the record. */
dv_result_t exb_fail(dv_result_t r, int64_t code, const char *fmt, ...)
    EXB_PRINTF(3, 4);
/* The same with errno as the code and its text appended. */
dv_result_t exb_fail_errno(dv_result_t r, const char *call);
void exb_last_native_error(int64_t *code, char *text, size_t len);

/* ---- memory (example_mem.c) ---- */

dv_result_t exb_reserve(void *ctx, uint64_t size, uint64_t *va);
dv_result_t exb_unreserve(void *ctx, uint64_t va, uint64_t size);
dv_result_t exb_create(void *ctx, uint64_t size, dv_hal_mem_t *mem);
dv_result_t exb_release(void *ctx, dv_hal_mem_t mem);
dv_result_t exb_map(void *ctx, uint64_t va, uint64_t size, dv_hal_mem_t mem);
dv_result_t exb_unmap(void *ctx, uint64_t va, uint64_t size);
dv_result_t exb_copy_h2d(void *ctx, uint64_t dst, const void *src,
                         uint64_t size, void *stream);
dv_result_t exb_copy_d2h(void *ctx, void *dst, uint64_t src, uint64_t size,
                         void *stream);
/* At fini: whatever the caller left (nothing, normally). */
void exb_mem_fini(exb_dev_t *d);

/* ---- streams and fences (example_stream.c) ---- */

dv_result_t exb_stream_create(void *ctx, void **stream);
dv_result_t exb_stream_destroy(void *ctx, void *stream);
dv_result_t exb_stream_synchronize(void *ctx, void *stream);
dv_result_t exb_stream_check(void *ctx, void *stream);
dv_result_t exb_stream_wait(void *ctx, void *stream, dv_hal_fence_t fence);
dv_result_t exb_stream_is_capturing(void *ctx, void *stream, int *capturing);
dv_result_t exb_fence_record(void *ctx, void *stream, dv_hal_fence_t *fence);
dv_result_t exb_fence_query(void *ctx, dv_hal_fence_t fence);
dv_result_t exb_fence_wait(void *ctx, dv_hal_fence_t fence);
void exb_fence_destroy(void *ctx, dv_hal_fence_t fence);
/* At fini: the streams the caller did not destroy die with the device. */
void exb_streams_fini(exb_dev_t *d);

#endif /* EXAMPLE_BACKEND_H */
