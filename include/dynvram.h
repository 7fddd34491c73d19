/*
 * dynvram.h - public C API of dynvram.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * dynvram lets an application run models larger than its GPU memory. Each
 * model's weights live in a VBAR: a reserved range of device virtual address
 * space that costs no memory. Physical memory is mapped under a range just
 * before it is used (dv_fault). When memory is short the fault fails softly
 * (DV_OFFLOADED) and the caller streams that weight instead. What was mapped
 * stays mapped across steps until something with higher priority needs it.
 *
 * Contract common to every function here:
 *  - Every function returns a dv_result_t. DV_OK and the other non-negative
 *    values are outcomes; negative values are errors.
 *  - Invalid arguments (NULL handles, ranges out of bounds, overflowing
 *    sizes, calls in the wrong order) return an error and leave all state
 *    untouched. The thread-local message from dv_last_error() says why.
 *  - Every function is safe to call from any thread. Each device has one
 *    lock; operations on different devices never contend. A handle must not
 *    be destroyed while another thread is still using it.
 *  - [in], [out] and [optional] mark parameters; "optional" means NULL is
 *    accepted.
 */
#ifndef DYNVRAM_H
#define DYNVRAM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(DYNVRAM_SHARED)
#if defined(DYNVRAM_BUILDING)
#define DV_API __declspec(dllexport)
#else
#define DV_API __declspec(dllimport)
#endif
#elif defined(__GNUC__)
#define DV_API __attribute__((visibility("default")))
#else
#define DV_API
#endif

#define DV_VERSION_MAJOR 0
#define DV_VERSION_MINOR 1
#define DV_VERSION_PATCH 0

/* ------------------------------------------------------------------------ */
/* Results                                                                   */
/* ------------------------------------------------------------------------ */

/*
 * X(name, value, description). Non-negative values are outcomes, negative
 * values are errors. DV_ERROR_OUT_OF_DEVICE_MEMORY is never used for any
 * other failure: eviction depends on telling it apart.
 */
#define DV_RESULT_LIST(X)                                                      \
    X(DV_OK, 0, "success")                                                     \
    X(DV_OFFLOADED, 1, "range not made resident; stream the data instead")     \
    X(DV_NOT_READY, 2, "work has not finished yet")                            \
    X(DV_ERROR_INVALID_ARGUMENT, -1, "invalid argument")                       \
    X(DV_ERROR_OUT_OF_RANGE, -2, "offset or size outside the object")          \
    X(DV_ERROR_OUT_OF_DEVICE_MEMORY, -3, "out of device memory")               \
    X(DV_ERROR_OUT_OF_HOST_MEMORY, -4, "out of host memory")                   \
    X(DV_ERROR_NOT_SUPPORTED, -5, "operation not supported by this backend")   \
    X(DV_ERROR_BACKEND_UNAVAILABLE, -6, "backend library or driver unavailable") \
    X(DV_ERROR_DEVICE_NOT_FOUND, -7, "no device with that ordinal")            \
    X(DV_ERROR_WRONG_DEVICE, -8, "handle belongs to another device")           \
    X(DV_ERROR_BUSY, -9, "object has pinned pages or live children")           \
    X(DV_ERROR_NOT_PINNED, -10, "range is not pinned")                         \
    X(DV_ERROR_BACKEND, -11, "backend (driver) call failed")                   \
    X(DV_ERROR_INVARIANT, -12, "internal consistency check failed")            \
    X(DV_ERROR_ADDRESS_SPACE, -13, "out of virtual address space")             \
    X(DV_ERROR_IO, -14, "file or operating-system call failed")                \
    X(DV_ERROR_GRAPH_BREAK, -15,                                               \
      "allocation sequence differs from the graph's recording")

typedef enum dv_result {
#define DV__RESULT_ENUM(name, value, text) name = value,
    DV_RESULT_LIST(DV__RESULT_ENUM)
#undef DV__RESULT_ENUM
    DV_RESULT_FORCE_INT32 = 0x7fffffff
} dv_result_t;

/* Static English description of a result ("unknown result" if invalid).
 * Never NULL. Thread-safe. */
DV_API const char *dv_result_str(dv_result_t r);

/* Symbolic name of a result, e.g. "DV_ERROR_BUSY". Never NULL. */
DV_API const char *dv_result_name(dv_result_t r);

/*
 * Message describing the last error returned on the calling thread, with
 * context (function, arguments, native driver code when there was one).
 * Valid until the next dynvram call on this thread. Never NULL; "" when the
 * last call succeeded or none was made.
 */
DV_API const char *dv_last_error(void);

/* ------------------------------------------------------------------------ */
/* Logging                                                                   */
/* ------------------------------------------------------------------------ */

typedef enum dv_log_level {
    DV_LOG_NONE = 0,
    DV_LOG_CRITICAL = 1,
    DV_LOG_ERROR = 2,
    DV_LOG_WARNING = 3,
    DV_LOG_INFO = 4,
    DV_LOG_DEBUG = 5,
    DV_LOG_VERBOSE = 6,
    DV_LOG_FORCE_UINT32 = 0x7fffffff
} dv_log_level_t;

/* Receives each message at or below the current level. Called on the thread
 * that logs, possibly with a device lock held: it must not call back into
 * dynvram. `msg` has no trailing newline. */
typedef void (*dv_log_fn)(dv_log_level_t level, const char *msg, void *user);

/* Set the global level. The initial level comes from DYNVRAM_LOG (a number
 * or a name: none, critical, error, warning, info, debug, verbose), default
 * warning. Returns DV_ERROR_INVALID_ARGUMENT for an unknown level. */
DV_API dv_result_t dv_log_set_level(dv_log_level_t level);
DV_API dv_log_level_t dv_log_get_level(void);

/* Route messages to `fn` (NULL restores the default: stderr). */
DV_API dv_result_t dv_log_set_callback(dv_log_fn fn, void *user);

/* ------------------------------------------------------------------------ */
/* Devices                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct dv_device dv_device_t;
typedef struct dv_vbar dv_vbar_t;
struct dv_hal_ops; /* dynvram_hal.h */

#define DV_DEFAULT_PAGE_SIZE (32ull << 20)

/*
 * Options of dv_device_open. The struct can grow: dv_device_options_init
 * sets `size` to the size this header declares, and the library reads only
 * the fields a caller's `size` covers, taking defaults for the rest. So a
 * program built against an older header keeps working with a newer
 * library. New fields are only ever added at the end.
 */
typedef struct dv_device_options {
    /* sizeof(dv_device_options_t) as the caller was built: set by
     * dv_device_options_init. 0 is refused (the struct was not initialised). */
    uint32_t size;
    /* Unpins on one stream share one fence per this many calls (1 = a fence
     * per unpin). A larger interval makes unpin cheaper; eviction of a page
     * may then wait for work queued after its unpin on the same stream, but
     * never for another stream. 0 = default (32). */
    uint32_t fence_interval;
    /* Backend name: "cuda", "hip", "levelzero", "host"; or the path of a
     * shared library holding an out-of-tree backend (a name with a '/' or
     * '\\', or ending in .so / .dll: its dv_hal_entry() gives the ops, see
     * docs/porting.md); NULL for automatic selection (DYNVRAM_BACKEND if
     * set, else the first available in the order cuda, hip, levelzero,
     * host). */
    const char *backend;
    /* Device ordinal within the backend. Default 0. */
    int ordinal;
    /* Watermark recovery (README, "The policy, exactly"): a lowered
     * watermark rises again when memory frees up. DV_RECOVERY_DEFAULT = on
     * unless DYNVRAM_WATERMARK_RECOVERY=0 (or off). */
    uint32_t watermark_recovery;
    /* Residency unit in bytes; rounded up to the backend's granularity.
     * 0 = DV_DEFAULT_PAGE_SIZE. */
    uint64_t page_size;
    /* Bytes of free device memory never used for pages. Default 0. */
    uint64_t headroom;
    /* Cap on pages + pooled memory + framework allocations, for simulating a
     * smaller GPU. 0 = no cap. */
    uint64_t vram_limit;
    /* Most bytes of evicted physical memory kept for reuse.
     * UINT64_MAX = default (8 pages). 0 disables the pool. */
    uint64_t pool_limit;
    /* Settings of one backend, "key=value" pairs separated by commas, passed
     * to it untouched (NULL or "" = none). The host backend knows
     * capacity=<bytes> (suffixes K, M, G: its simulated memory; default
     * DYNVRAM_HOST_CAPACITY, else 4 GiB). A backend refuses keys it does not
     * know (DV_ERROR_INVALID_ARGUMENT). */
    const char *backend_options;
} dv_device_options_t;

#define DV_RECOVERY_DEFAULT 0u
#define DV_RECOVERY_ON 1u
#define DV_RECOVERY_OFF 2u

/* Fill `opts` with defaults, `size` included. */
DV_API void dv_device_options_init(dv_device_options_t *opts);

/*
 * Open a device.
 * [in][optional] opts  NULL = defaults.
 * [out] out            receives the device.
 * Results: DV_OK; DV_ERROR_INVALID_ARGUMENT (out NULL, options not
 * initialised (size 0), unknown backend name, negative ordinal, page size
 * or limits inconsistent, a backend option the backend does not know);
 * DV_ERROR_NOT_SUPPORTED (options from a newer header that set fields this
 * library does not know); DV_ERROR_BACKEND_UNAVAILABLE
 * (library or driver missing; automatic selection falls through to the
 * next backend); DV_ERROR_DEVICE_NOT_FOUND; DV_ERROR_NOT_SUPPORTED (device
 * lacks virtual memory management); DV_ERROR_BACKEND; DV_ERROR_OUT_OF_HOST_MEMORY.
 */
DV_API dv_result_t dv_device_open(const dv_device_options_t *opts,
                                  dv_device_t **out);

/* Open a device on a caller-provided HAL (out-of-tree backends, test
 * wrappers). `ops` is copied; opts->backend is ignored. */
DV_API dv_result_t dv_device_open_hal(const struct dv_hal_ops *ops,
                                      const dv_device_options_t *opts,
                                      dv_device_t **out);

/*
 * Close a device, releasing every pooled handle.
 * Results: DV_OK; DV_ERROR_INVALID_ARGUMENT (NULL or not a device);
 * DV_ERROR_BUSY (VBARs, allocation graphs or host I/O objects of
 * dynvram_io.h still exist: host buffers, readers, device buffers; destroy
 * them first; nothing changed). A read in flight holds its reader, so a
 * close never cuts one short: it is refused until the reader is destroyed.
 */
DV_API dv_result_t dv_device_close(dv_device_t *dev);

typedef enum dv_cap_flags {
    DV_CAP_FENCES = 1u << 0,          /* unpin records real fences */
    DV_CAP_ASYNC_COPY = 1u << 1,      /* dv_copy_h2d is asynchronous */
    DV_CAP_HOST_REGISTER = 1u << 2,   /* dv_host_register pins host memory */
    DV_CAP_HOST_ACCESSIBLE = 1u << 3, /* VBAR addresses are CPU pointers */
    DV_CAP_FORCE_UINT32 = 0x7fffffff
} dv_cap_flags_t;

typedef struct dv_device_caps {
    char backend[16];      /* "cuda", "host", ... */
    char name[128];        /* device name as the backend reports it */
    int ordinal;
    uint32_t flags;        /* dv_cap_flags_t bits */
    uint64_t granularity;  /* physical allocation / mapping granularity */
    uint64_t va_alignment; /* VBAR base alignment */
    uint64_t page_size;    /* this device's residency unit */
    uint64_t total_memory; /* device memory as the backend reports it */
} dv_device_caps_t;

/* Results: DV_OK; DV_ERROR_INVALID_ARGUMENT. */
DV_API dv_result_t dv_device_get_caps(dv_device_t *dev, dv_device_caps_t *caps);

typedef struct dv_device_stats {
    uint64_t budget;          /* what pages + pool + framework + devbuf +
                                 graph + ring may hold now */
    uint64_t used;            /* resident + pooled + framework + devbuf
                                 + graph + ring bytes */
    uint64_t resident_bytes;  /* bytes of resident pages, all VBARs */
    uint64_t pinned_bytes;    /* bytes of pinned pages */
    uint64_t pool_bytes;      /* evicted physical memory kept for reuse */
    uint64_t framework_bytes; /* dv_framework_reserve'd bytes */
    uint64_t faults_hit;       /* faults whose pages were all resident */
    uint64_t faults_populated; /* faults that mapped at least one page */
    uint64_t faults_offloaded; /* faults that returned DV_OFFLOADED */
    uint64_t pages_populated;  /* pages given fresh memory */
    uint64_t pool_reuses;      /* pages populated from the pool */
    uint64_t evictions;        /* pages evicted */
    uint64_t evicted_bytes;
    uint64_t fence_waits;      /* evictions that had to wait for a fence */
    uint64_t oom_retries;      /* backend OOMs answered by evict-and-retry */
    uint32_t vbar_count;
    uint32_t reserved0;
    uint64_t watermark_rises;  /* faults that raised a watermark (recovery) */
    uint64_t devbuf_bytes;     /* mapped by device buffers (dynvram_io.h) */
    uint64_t graph_bytes;      /* physical memory of allocation graphs
                                  (dynvram_graph.h), part of `used` */
    uint64_t ring_bytes;       /* streaming ring slots (dynvram_stream.h),
                                  counted in `used` */
} dv_device_stats_t;

/* Snapshot of the device's counters and budget. The budget is queried from
 * the backend (free memory) at this call.
 * Results: DV_OK; DV_ERROR_INVALID_ARGUMENT; DV_ERROR_BACKEND. */
DV_API dv_result_t dv_device_get_stats(dv_device_t *dev, dv_device_stats_t *st);

/* Check every internal invariant of the device (accounting, priority list,
 * page states, pool). Results: DV_OK; DV_ERROR_INVALID_ARGUMENT;
 * DV_ERROR_INVARIANT (dv_last_error() names the first broken one). */
DV_API dv_result_t dv_device_check(dv_device_t *dev);

/* Release every pooled physical handle to the backend. */
DV_API dv_result_t dv_device_trim_pool(dv_device_t *dev);

/* Reset the watermark limit of every VBAR on the device to 0. */
DV_API dv_result_t dv_device_reset_watermark_limits(dv_device_t *dev);

/*
 * Change the headroom (dv_device_options_t.headroom: bytes of free device
 * memory never used) of an open device. It takes effect at the next budget
 * reading: the next populating fault, framework allocation or stats call. A
 * larger headroom does not evict by itself; the next fault or framework
 * allocation that needs room evicts as usual.
 * Results: DV_OK; DV_ERROR_INVALID_ARGUMENT (NULL or dead device, or a
 * headroom above 2^60 bytes; nothing changed).
 */
DV_API dv_result_t dv_device_set_headroom(dv_device_t *dev, uint64_t headroom);

/* The device's current headroom in bytes.
 * Results: DV_OK; DV_ERROR_INVALID_ARGUMENT (NULL device or out). */
DV_API dv_result_t dv_device_get_headroom(dv_device_t *dev,
                                          uint64_t *headroom);

/* ------------------------------------------------------------------------ */
/* VBARs                                                                     */
/* ------------------------------------------------------------------------ */

/*
 * Reserve a VBAR of `size` bytes (rounded up to whole pages). Costs address
 * space only. The new VBAR is on top of the device's priority list.
 * Results: DV_OK; DV_ERROR_INVALID_ARGUMENT (NULL, size 0, size overflows);
 * DV_ERROR_ADDRESS_SPACE; DV_ERROR_OUT_OF_HOST_MEMORY; DV_ERROR_BACKEND.
 */
DV_API dv_result_t dv_vbar_create(dv_device_t *dev, uint64_t size,
                                  dv_vbar_t **out);

/*
 * Unmap and release every page and free the address range.
 * Results: DV_OK; DV_ERROR_INVALID_ARGUMENT; DV_ERROR_WRONG_DEVICE;
 * DV_ERROR_BUSY (pages still pinned, or a page's last use is queued on a
 * stream being captured into a graph; the pages before it are released,
 * the call can be repeated). Waits for the fences of recently unpinned
 * pages.
 */
DV_API dv_result_t dv_vbar_destroy(dv_device_t *dev, dv_vbar_t *vbar);

typedef struct dv_vbar_info {
    uint64_t base;       /* device virtual address of offset 0 */
    uint64_t size;       /* bytes, a multiple of page_size */
    uint64_t page_size;
    uint64_t page_count;
    uint64_t resident_bytes;
    uint64_t watermark;       /* in pages: faults at or above are offloaded */
    uint64_t watermark_limit; /* in pages: eviction never goes below */
    uint32_t priority_rank;   /* 0 = top of the device's list */
    uint32_t reserved0;
} dv_vbar_info_t;

/* Results: DV_OK; DV_ERROR_INVALID_ARGUMENT; DV_ERROR_WRONG_DEVICE. */
DV_API dv_result_t dv_vbar_get_info(dv_device_t *dev, dv_vbar_t *vbar,
                                    dv_vbar_info_t *info);

/*
 * Make every page under [offset, offset + size) resident and pin it.
 * [out][optional] generation  on DV_OK: the largest population stamp of the
 *   pages under the range. If it equals the value saved after the caller last
 *   filled the range, the content is still there; otherwise copy it again.
 * Results:
 *   DV_OK          all pages resident and pinned (pin counts nest).
 *   DV_OFFLOADED   nothing pinned: the range reaches the watermark, or it
 *                  cannot fit without evicting pages of higher priority.
 *                  Pages it populated before running out stay resident,
 *                  unpinned. Never an out-of-memory error.
 *   DV_ERROR_INVALID_ARGUMENT (NULL, size 0), DV_ERROR_OUT_OF_RANGE
 *   (beyond the VBAR or overflowing), DV_ERROR_WRONG_DEVICE,
 *   DV_ERROR_BACKEND (driver failure other than out of memory; pages
 *   populated before it stay resident, unpinned).
 * The all-resident path takes the device lock briefly and calls no driver.
 */
DV_API dv_result_t dv_fault(dv_device_t *dev, dv_vbar_t *vbar, uint64_t offset,
                            uint64_t size, uint64_t *generation);

/*
 * The caller has finished launching work that reads the range on `stream`
 * (a native stream handle; NULL = the backend's default stream). Each page's
 * pin count drops; a page at zero becomes evictable once the work queued on
 * `stream` before this call has finished (a fence), never by synchronizing
 * the device. A page above a lowered watermark is evicted here.
 * Results: DV_OK; DV_ERROR_INVALID_ARGUMENT; DV_ERROR_OUT_OF_RANGE;
 * DV_ERROR_WRONG_DEVICE; DV_ERROR_NOT_PINNED (some page under the range is
 * not pinned; nothing changed); DV_ERROR_BACKEND (no fence could be recorded
 * and synchronizing the stream failed too; nothing changed). When only the
 * fence fails, the stream is synchronized instead and the call succeeds.
 * DV_ERROR_BUSY (nothing changed) when that fallback, or the wait for a
 * page last unpinned on another stream, would block on a stream being
 * captured into a graph. While `stream` is being captured its periodic
 * fence is put off to a later unpin (dynvram_hal.h, stream_is_capturing).
 */
DV_API dv_result_t dv_unpin(dv_device_t *dev, dv_vbar_t *vbar, uint64_t offset,
                            uint64_t size, void *stream);

/* Move the VBAR to the top of the priority list and reset its watermark to
 * the page count. Results: DV_OK; DV_ERROR_INVALID_ARGUMENT; DV_ERROR_WRONG_DEVICE. */
DV_API dv_result_t dv_vbar_prioritize(dv_device_t *dev, dv_vbar_t *vbar);

/* Move the VBAR to the bottom of the priority list (evicted first). */
DV_API dv_result_t dv_vbar_deprioritize(dv_device_t *dev, dv_vbar_t *vbar);

/* Set the watermark to ceil(bytes / page_size) pages (clamped to the page
 * count). Faults at or above it return DV_OFFLOADED. Resident pages above it
 * stay until pressure evicts them (they are the first candidates).
 * Results: DV_OK; DV_ERROR_INVALID_ARGUMENT; DV_ERROR_WRONG_DEVICE. */
DV_API dv_result_t dv_vbar_set_watermark(dv_device_t *dev, dv_vbar_t *vbar,
                                         uint64_t bytes);

/* Set the watermark limit to ceil(bytes / page_size) pages (clamped to the
 * page count): pages below it are never evicted by pressure or dv_vbar_evict. */
DV_API dv_result_t dv_vbar_set_watermark_limit(dv_device_t *dev,
                                               dv_vbar_t *vbar, uint64_t bytes);

/*
 * Evict unpinned pages of this VBAR from the top down (never below its
 * watermark limit) until at least `bytes` were freed or none is left; the
 * memory is released to the backend. The watermark drops to the lowest page
 * evicted. [out][optional] freed: bytes evicted.
 * Results: DV_OK (also when fewer bytes could be freed); DV_ERROR_INVALID_ARGUMENT;
 * DV_ERROR_WRONG_DEVICE; DV_ERROR_BACKEND.
 */
DV_API dv_result_t dv_vbar_evict(dv_device_t *dev, dv_vbar_t *vbar,
                                 uint64_t bytes, uint64_t *freed);

#define DV_PAGE_RESIDENT 0x1u
#define DV_PAGE_PINNED 0x2u

/*
 * Per-page state, one byte per page (DV_PAGE_* bits), for pages
 * [first_page, first_page + count). Results: DV_OK; DV_ERROR_INVALID_ARGUMENT;
 * DV_ERROR_OUT_OF_RANGE; DV_ERROR_WRONG_DEVICE.
 */
DV_API dv_result_t dv_vbar_residency(dv_device_t *dev, dv_vbar_t *vbar,
                                     uint64_t first_page, uint64_t count,
                                     uint8_t *flags);

/* Population stamp of each page under [offset, offset + size) (0 for an
 * absent page). `count` must equal the number of pages under the range. */
DV_API dv_result_t dv_vbar_generations(dv_device_t *dev, dv_vbar_t *vbar,
                                       uint64_t offset, uint64_t size,
                                       uint64_t *gens, uint64_t count);

/* ------------------------------------------------------------------------ */
/* Framework allocations (activations, scratch)                              */
/* ------------------------------------------------------------------------ */

/*
 * About to allocate `size` bytes outside dynvram (a framework allocator).
 * Evicts pooled memory, then weight pages (lowest priority first, never
 * pinned, never below a watermark limit, never one whose last use is still
 * queued on a stream being captured) until the allocation fits the
 * budget, then counts it in the device's usage.
 * Results: DV_OK (counted); DV_ERROR_OUT_OF_DEVICE_MEMORY (cannot fit even
 * after evicting everything evictable; nothing counted, evictions done stay
 * done); DV_ERROR_INVALID_ARGUMENT.
 */
DV_API dv_result_t dv_framework_reserve(dv_device_t *dev, uint64_t size);

/* The framework freed `size` bytes it had reserved. Results: DV_OK;
 * DV_ERROR_INVALID_ARGUMENT (more than is counted; nothing changed). */
DV_API dv_result_t dv_framework_release(dv_device_t *dev, uint64_t size);

/* A framework allocation of `size` bytes failed with out-of-memory: evict
 * evictable memory (pool first, then weight pages) until at least `size`
 * bytes went back to the backend. [out][optional] freed.
 * Results: DV_OK when something was freed, DV_ERROR_OUT_OF_DEVICE_MEMORY when
 * nothing could be. */
DV_API dv_result_t dv_framework_evict(dv_device_t *dev, uint64_t size,
                                      uint64_t *freed);

/* ------------------------------------------------------------------------ */
/* Streams, copies and host memory (thin wrappers over the backend)          */
/* ------------------------------------------------------------------------ */

/* Results: DV_OK; DV_ERROR_NOT_SUPPORTED; DV_ERROR_BACKEND;
 * dv_stream_synchronize and dv_stream_destroy: DV_ERROR_BUSY while the
 * stream is being captured into a graph (nothing done). */
DV_API dv_result_t dv_stream_create(dv_device_t *dev, void **stream);
DV_API dv_result_t dv_stream_destroy(dv_device_t *dev, void *stream);
DV_API dv_result_t dv_stream_synchronize(dv_device_t *dev, void *stream);

/* Copy host -> device (asynchronous on `stream` when DV_CAP_ASYNC_COPY). */
DV_API dv_result_t dv_copy_h2d(dv_device_t *dev, uint64_t dst, const void *src,
                               uint64_t size, void *stream);
/* Copy device -> host (same stream rules). */
DV_API dv_result_t dv_copy_d2h(dv_device_t *dev, void *dst, uint64_t src,
                               uint64_t size, void *stream);

/* Page-lock host memory for fast copies. DV_ERROR_NOT_SUPPORTED when the
 * backend has no such notion (the host backend accepts and does nothing). */
DV_API dv_result_t dv_host_register(dv_device_t *dev, void *ptr, uint64_t size);
DV_API dv_result_t dv_host_unregister(dv_device_t *dev, void *ptr);

/* ------------------------------------------------------------------------ */
/* Backends                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct dv_backend_info {
    char name[16];
    int available;    /* 1 if the library loaded and a device was found */
    int device_count;
    char reason[256]; /* why it is unavailable, or the library it loaded */
} dv_backend_info_t;

/* Probe backend `index` (0..dv_backend_count()-1) in the probe order.
 * Results: DV_OK; DV_ERROR_INVALID_ARGUMENT. */
DV_API int dv_backend_count(void);
DV_API dv_result_t dv_backend_probe(int index, dv_backend_info_t *info);

#ifdef __cplusplus
}
#endif

#endif /* DYNVRAM_H */
