/*
 * dynvram_io.h - host I/O: pinned growable host buffers, model files,
 * threaded file reads to host or device memory, growable device buffers.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * Loading a model of tens of gigabytes needs four pieces beside the VBARs:
 *  - a host buffer (dv_hostbuf_t): address space reserved for a maximum
 *    size, committed as it grows, each part optionally registered (pinned)
 *    with the device's backend; its address never moves;
 *  - a model file (dv_file_t): a file opened read-only by UTF-8 path,
 *    optionally mapped whole, whose resident pages can be dropped
 *    ("bounced") while the mapping stays valid;
 *  - a reader (dv_reader_t): a pool of positional-read threads that reads
 *    a file range into a host buffer, or straight into device memory
 *    through a small ring of pinned staging slots so that disk reads
 *    overlap host-to-device copies;
 *  - a device buffer (dv_devbuf_t): device memory at a fixed address that
 *    grows and shrinks, counted in the device's budget like framework
 *    memory, so growing it evicts weight pages instead of failing.
 *
 * Contract common to every function here (as in dynvram.h):
 *  - Every function returns a dv_result_t with a message in dv_last_error()
 *    on failure; invalid arguments change nothing.
 *  - Handles are validated before use: NULL, dead (destroyed) or junk
 *    handles give DV_ERROR_INVALID_ARGUMENT with a message naming the kind
 *    of handle expected; a host buffer, reader or device buffer of another
 *    device gives DV_ERROR_WRONG_DEVICE.
 *  - Every function is safe from any thread. An object being used by a
 *    call on another thread cannot be destroyed: its destroy (or close)
 *    returns DV_ERROR_BUSY and changes nothing, and so does a truncate or
 *    shrink below a range a read in flight is using.
 *  - Host buffers, readers and device buffers belong to one device; the
 *    device cannot be closed while any exists (dv_device_close ->
 *    DV_ERROR_BUSY). Files belong to no device.
 *  - Failures of the operating system (open, read, map, commit) are
 *    DV_ERROR_IO with the system's own text, except running out of memory
 *    (DV_ERROR_OUT_OF_HOST_MEMORY). Ranges beyond an object, or whose end
 *    overflows 64 bits, are DV_ERROR_OUT_OF_RANGE; a size of 0 is
 *    DV_ERROR_INVALID_ARGUMENT.
 *  - [in], [out] and [optional] mark parameters; optional means NULL is
 *    accepted.
 */
#ifndef DYNVRAM_IO_H
#define DYNVRAM_IO_H

#include "dynvram.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dv_hostbuf dv_hostbuf_t;
typedef struct dv_file dv_file_t;
typedef struct dv_reader dv_reader_t;
typedef struct dv_devbuf dv_devbuf_t;

/* ------------------------------------------------------------------------ */
/* Host buffers                                                              */
/* ------------------------------------------------------------------------ */

/* dv_hostbuf_extend: register (pin) the new part with the backend. */
#define DV_HOSTBUF_REGISTER 0x1u
/* dv_hostbuf_extend: make the new part resident now, touching its pages
 * on a few threads, so first use does not page-fault. */
#define DV_HOSTBUF_PREWARM 0x2u
/* dv_hostbuf_truncate: unregister (or split) the registrations the cut
 * reaches; without it such a truncate is refused. */
#define DV_HOSTBUF_UNREGISTER 0x4u

/*
 * Reserve address space for a host buffer of up to `max_size` bytes (rounded
 * up to the OS page). It starts empty: size 0, nothing committed, nothing
 * registered. Its base address is fixed for its lifetime.
 * [in]  dev       the device whose backend registers its parts.
 * [out] out       the buffer.
 * Results: DV_OK; DV_ERROR_INVALID_ARGUMENT (NULL, max_size 0 or too
 * large); DV_ERROR_ADDRESS_SPACE (the reservation failed);
 * DV_ERROR_OUT_OF_HOST_MEMORY.
 */
DV_API dv_result_t dv_hostbuf_create(dv_device_t *dev, uint64_t max_size,
                                     dv_hostbuf_t **out);

/*
 * Unregister every registration, wait for copies made from the buffer
 * (dv_hostbuf_copy_h2d) and release its address space. Pointers into it
 * become invalid.
 * Results: DV_OK; DV_ERROR_INVALID_ARGUMENT; DV_ERROR_WRONG_DEVICE;
 * DV_ERROR_BUSY (a call on another thread, e.g. a read into it, is using it;
 * nothing changed); DV_ERROR_BACKEND (an unregistration or a fence wait
 * failed; the buffer is freed anyway and the message says what failed).
 */
DV_API dv_result_t dv_hostbuf_destroy(dv_device_t *dev, dv_hostbuf_t *hb);

/*
 * Grow the buffer by `bytes`: commit the new part (zero-filled) and, with
 * DV_HOSTBUF_REGISTER, register it. Registrations cover whole OS pages: the
 * part registered is [old size rounded up to a page, new size rounded up to
 * a page), so the first bytes of the new part that share a page with the
 * old end are pinned only if that page already was.
 * [in]  flags      DV_HOSTBUF_REGISTER and/or DV_HOSTBUF_PREWARM (0 = none).
 * [out][optional] offset  the offset of the new part (the old size).
 * Results: DV_OK; DV_ERROR_INVALID_ARGUMENT (bytes 0, unknown flags);
 * DV_ERROR_OUT_OF_RANGE (the new size passes max_size or overflows);
 * DV_ERROR_OUT_OF_HOST_MEMORY (commit failed); DV_ERROR_NOT_SUPPORTED
 * (DV_HOSTBUF_REGISTER on a backend without host registration); any error
 * of the backend's host_register. On failure nothing changed.
 */
DV_API dv_result_t dv_hostbuf_extend(dv_device_t *dev, dv_hostbuf_t *hb,
                                     uint64_t bytes, uint32_t flags,
                                     uint64_t *offset);

/*
 * Shrink the buffer to `size` bytes and decommit every page above it (its
 * contents are gone; the address space stays reserved for later growth).
 * Registrations:
 *  - one starting at or above `size` is unregistered;
 *  - one starting below `size` and reaching past the last committed page
 *    (`size` rounded up to a page) is split: it is unregistered and its
 *    lower part registered again. If that fails, the original registration
 *    is restored and the truncate fails with nothing changed;
 *  - one ending at or below the last committed page stays as it is.
 * Without DV_HOSTBUF_UNREGISTER a truncate that would unregister or split
 * anything is refused (DV_ERROR_BUSY) so that a pinned range is never
 * dropped by surprise. Copies made from the buffer are waited for first.
 * [in] flags  0 or DV_HOSTBUF_UNREGISTER.
 * Results: DV_OK; DV_ERROR_INVALID_ARGUMENT; DV_ERROR_WRONG_DEVICE;
 * DV_ERROR_OUT_OF_RANGE (size above the current size); DV_ERROR_BUSY (a
 * read in flight writes above `size`, or registrations in the way without
 * DV_HOSTBUF_UNREGISTER; nothing changed); DV_ERROR_BACKEND (an
 * unregistration failed: the registrations handled before it are gone,
 * the size is unchanged).
 */
DV_API dv_result_t dv_hostbuf_truncate(dv_device_t *dev, dv_hostbuf_t *hb,
                                       uint64_t size, uint32_t flags);

/*
 * Register (pin) [offset, offset + size), which must lie inside the buffer's
 * size and overlap no registration of it.
 * Results: DV_OK; DV_ERROR_INVALID_ARGUMENT (size 0, or the range overlaps
 * a registration: the message names it); DV_ERROR_OUT_OF_RANGE;
 * DV_ERROR_NOT_SUPPORTED (the backend has no host registration); the
 * backend's failure (DV_ERROR_OUT_OF_HOST_MEMORY, DV_ERROR_BACKEND).
 */
DV_API dv_result_t dv_hostbuf_register(dv_device_t *dev, dv_hostbuf_t *hb,
                                       uint64_t offset, uint64_t size);

/*
 * Unregister the registration that starts at `offset`. Copies made from
 * the buffer are waited for first.
 * Results: DV_OK; DV_ERROR_INVALID_ARGUMENT (no registration starts there);
 * DV_ERROR_WRONG_DEVICE; DV_ERROR_BACKEND (the backend refused; the
 * registration is kept).
 */
DV_API dv_result_t dv_hostbuf_unregister(dv_device_t *dev, dv_hostbuf_t *hb,
                                         uint64_t offset);

/*
 * Make [offset, offset + size) resident for writing without changing its
 * contents, splitting the range over `threads` threads (0 = a default of
 * up to 4). Safe while other threads write the buffer.
 * Results: DV_OK; DV_ERROR_INVALID_ARGUMENT (size 0); DV_ERROR_OUT_OF_RANGE;
 * DV_ERROR_WRONG_DEVICE.
 */
DV_API dv_result_t dv_hostbuf_prewarm(dv_device_t *dev, dv_hostbuf_t *hb,
                                      uint64_t offset, uint64_t size,
                                      uint32_t threads);

typedef struct dv_hostbuf_info {
    void *base;                /* fixed address of offset 0 */
    uint64_t size;             /* bytes usable now */
    uint64_t max_size;         /* reserved bytes */
    uint64_t committed;        /* size rounded up to the OS page */
    uint64_t registered_bytes; /* bytes covered by registrations */
    uint32_t registrations;    /* live registrations */
    uint32_t reads_in_flight;  /* reads writing into the buffer now */
} dv_hostbuf_info_t;

/* Results: DV_OK; DV_ERROR_INVALID_ARGUMENT; DV_ERROR_WRONG_DEVICE. */
DV_API dv_result_t dv_hostbuf_get_info(dv_device_t *dev, dv_hostbuf_t *hb,
                                       dv_hostbuf_info_t *info);

typedef struct dv_hostbuf_range {
    uint64_t offset;
    uint64_t size;
} dv_hostbuf_range_t;

/*
 * The live registrations in offset order: up to `cap` of them into `out`
 * [out][optional when cap is 0], their total number into *count [out].
 * Results: DV_OK; DV_ERROR_INVALID_ARGUMENT; DV_ERROR_WRONG_DEVICE.
 */
DV_API dv_result_t dv_hostbuf_registrations(dv_device_t *dev, dv_hostbuf_t *hb,
                                            dv_hostbuf_range_t *out,
                                            uint32_t cap, uint32_t *count);

/*
 * Copy [offset, offset + size) of the buffer to device address `dst`
 * (dv_copy_h2d's rules for `stream`: asynchronous on it where the backend's
 * copies are). The buffer remembers the copy: truncate, unregister and
 * destroy wait for it before they take memory away.
 * Results: DV_OK; DV_ERROR_INVALID_ARGUMENT (size 0, dst 0, a stream that
 * is not a live stream of the device); DV_ERROR_OUT_OF_RANGE;
 * DV_ERROR_WRONG_DEVICE; DV_ERROR_NOT_SUPPORTED (no copies, or `stream` is
 * being captured into a graph); DV_ERROR_BACKEND.
 */
DV_API dv_result_t dv_hostbuf_copy_h2d(dv_device_t *dev, dv_hostbuf_t *hb,
                                       uint64_t offset, uint64_t size,
                                       uint64_t dst, void *stream);

/* ------------------------------------------------------------------------ */
/* Model files                                                               */
/* ------------------------------------------------------------------------ */

/*
 * Open a regular file read-only. `path` is UTF-8 on every platform
 * (Windows: converted to UTF-16 and opened with the W API). The size is
 * read once, here: reads check their ranges against it.
 * Results: DV_OK; DV_ERROR_INVALID_ARGUMENT (NULL); DV_ERROR_IO (missing,
 * unreadable, a directory; the message has the system's text and the
 * path); DV_ERROR_OUT_OF_HOST_MEMORY.
 */
DV_API dv_result_t dv_file_open(const char *path, dv_file_t **out);

/*
 * Open a file from a native handle the caller keeps (a file descriptor; on
 * Windows a HANDLE value): the file gets its own duplicate of it.
 * Results: as dv_file_open; DV_ERROR_IO for a handle that is not an open
 * regular file, or (POSIX) one opened write-only: a directory, a pipe or a
 * device is refused here as dv_file_open refuses it by path.
 */
DV_API dv_result_t dv_file_open_native(int64_t native, dv_file_t **out);

/*
 * Unmap and close the file.
 * Results: DV_OK; DV_ERROR_INVALID_ARGUMENT; DV_ERROR_BUSY (a read of it is
 * in flight on another thread; nothing changed).
 */
DV_API dv_result_t dv_file_close(dv_file_t *file);

typedef struct dv_file_info {
    uint64_t size;    /* bytes, as of open */
    int64_t native;   /* the file's own descriptor / HANDLE (do not close) */
    const void *map;  /* the read-only mapping, or NULL before dv_file_map */
    uint64_t bounces; /* dv_file_bounce calls that dropped pages */
} dv_file_info_t;

/* Results: DV_OK; DV_ERROR_INVALID_ARGUMENT. */
DV_API dv_result_t dv_file_get_info(dv_file_t *file, dv_file_info_t *info);

/*
 * Map the whole file read-only (once; later calls return the same
 * address). An empty file maps to NULL. The mapping lives until
 * dv_file_close. Touching it after the file shrank on disk raises SIGBUS
 * (POSIX) as any mapping does.
 * [out] addr  the first byte of the file.
 * Results: DV_OK; DV_ERROR_INVALID_ARGUMENT; DV_ERROR_IO;
 * DV_ERROR_OUT_OF_HOST_MEMORY.
 */
DV_API dv_result_t dv_file_map(dv_file_t *file, const void **addr);

/*
 * Drop the mapping's resident pages, so the process's resident memory
 * falls, while every address stays valid: the next access reads the page
 * again from the OS cache or the disk. A file that is not mapped has
 * nothing to drop (DV_OK). POSIX: madvise(MADV_DONTNEED), safe while other
 * threads read the mapping. Windows: the view is unmapped into its
 * placeholder and mapped again at the same address; no thread may read the
 * mapping during the call.
 * Results: DV_OK; DV_ERROR_INVALID_ARGUMENT; DV_ERROR_IO.
 */
DV_API dv_result_t dv_file_bounce(dv_file_t *file);

/*
 * Ask the OS to drop its cached pages of [offset, offset + size) of the
 * file (POSIX_FADV_DONTNEED), e.g. to measure a cold read.
 * Results: DV_OK; DV_ERROR_INVALID_ARGUMENT (size 0); DV_ERROR_OUT_OF_RANGE;
 * DV_ERROR_NOT_SUPPORTED (Windows has no such hint); DV_ERROR_IO.
 */
DV_API dv_result_t dv_file_mark_cold(dv_file_t *file, uint64_t offset,
                                     uint64_t size);

/* ------------------------------------------------------------------------ */
/* Readers                                                                   */
/* ------------------------------------------------------------------------ */

#define DV_READER_DEFAULT_THREADS 8u         /* capped at the CPU count */
#define DV_READER_DEFAULT_CHUNK (8ull << 20) /* bytes per positional read */

typedef struct dv_reader_options {
    /* Reading threads. 0 = min(DV_READER_DEFAULT_THREADS, CPUs); at most 64. */
    uint32_t threads;
    /* Pinned staging slots for reads to device memory. 0 = 2 per thread;
     * at most 256. */
    uint32_t slots;
    /* Bytes per read and per staging slot, rounded up to the OS page.
     * 0 = DV_READER_DEFAULT_CHUNK; at most 1 GiB. */
    uint64_t chunk_size;
} dv_reader_options_t;

/* Fill `opts` with defaults (all 0). */
DV_API void dv_reader_options_init(dv_reader_options_t *opts);

/*
 * Start a reader of `dev`: its threads, and (on the first read to device
 * memory) its staging ring of slots x chunk_size bytes, registered with the
 * backend when it can register host memory, and one backend stream for the
 * copies. Several threads may read through one reader at once: each chunk
 * owns its staging slot from the read until its copy's fence has passed.
 * [in][optional] opts  NULL = defaults.
 * Results: DV_OK; DV_ERROR_INVALID_ARGUMENT (options out of range);
 * DV_ERROR_OUT_OF_HOST_MEMORY (threads could not start).
 */
DV_API dv_result_t dv_reader_create(dv_device_t *dev,
                                    const dv_reader_options_t *opts,
                                    dv_reader_t **out);

/*
 * Stop the threads, wait for the ring's copies, unregister and free it.
 * Results: DV_OK; DV_ERROR_INVALID_ARGUMENT; DV_ERROR_WRONG_DEVICE;
 * DV_ERROR_BUSY (a read is in flight on another thread; nothing changed).
 */
DV_API dv_result_t dv_reader_destroy(dv_device_t *dev, dv_reader_t *reader);

typedef struct dv_reader_info {
    uint32_t threads;
    uint32_t slots;
    uint64_t chunk_size;
    uint64_t staging_bytes;  /* 0 until the first read to device memory */
    uint32_t staging_pinned; /* the ring is registered with the backend */
    uint32_t reads_in_flight;
    uint64_t bytes_read;  /* by every read so far */
    uint64_t chunks;      /* positional reads issued */
    uint64_t slot_waits;  /* chunks that waited for a free slot */
    uint64_t fence_waits; /* slots reused before their copy had finished */
} dv_reader_info_t;

/* Results: DV_OK; DV_ERROR_INVALID_ARGUMENT; DV_ERROR_WRONG_DEVICE. */
DV_API dv_result_t dv_reader_get_info(dv_device_t *dev, dv_reader_t *reader,
                                      dv_reader_info_t *info);

/* After each chunk is read, drop the file's cached pages of it (a hint;
 * ignored where the OS has none). */
#define DV_READ_MARK_COLD 0x1u

/*
 * Read [file_offset, file_offset + size) of `file` into the host buffer at
 * [offset, offset + size), in chunk_size pieces on the reader's threads.
 * Returns when every byte is there. The host buffer cannot be truncated
 * below the range or destroyed while the read runs.
 * [in] flags  0 or DV_READ_MARK_COLD.
 * Results: DV_OK; DV_ERROR_INVALID_ARGUMENT (NULL/dead handles, size 0,
 * unknown flags); DV_ERROR_WRONG_DEVICE; DV_ERROR_OUT_OF_RANGE (beyond the
 * file's size or the buffer's size, or overflowing); DV_ERROR_IO (the read
 * failed, or the file ended early: it shrank since it was opened). On
 * failure the buffer's range holds part of the data.
 */
DV_API dv_result_t dv_read_to_host(dv_device_t *dev, dv_reader_t *reader,
                                   dv_file_t *file, uint64_t file_offset,
                                   uint64_t size, dv_hostbuf_t *hb,
                                   uint64_t offset, uint32_t flags);

/*
 * Read [file_offset, file_offset + size) of `file` into device memory at
 * `dst`: each chunk is read into a staging slot and copied from there on
 * the reader's stream, so reads and copies overlap.
 * `dst` may be any device address of `dev`; one inside a VBAR must lie in
 * it with every page under it faulted and pinned (DV_ERROR_NOT_PINNED
 * otherwise), one inside a device buffer must lie inside its size (the
 * buffer cannot shrink below it while the read runs).
 * [in][optional] stream  NULL: synchronous, the call returns when the bytes
 *   are in device memory. Otherwise a live stream of the device: the call
 *   returns once every copy is queued, and work queued on `stream` after
 *   it sees the bytes (the backend's stream_wait; a backend without it
 *   makes the call synchronous instead). Unlike the rest of the API, NULL
 *   does not mean "the default stream" here.
 * [in] flags  0 or DV_READ_MARK_COLD.
 * Results: DV_OK; DV_ERROR_INVALID_ARGUMENT (NULL/dead handles, size 0, dst
 * 0, unknown flags, a stream that is not the device's); DV_ERROR_WRONG_DEVICE;
 * DV_ERROR_OUT_OF_RANGE (beyond the file, a VBAR or a device buffer, or
 * overflowing); DV_ERROR_NOT_PINNED; DV_ERROR_NOT_SUPPORTED (the backend
 * has no copies, or `stream` is being captured into a graph);
 * DV_ERROR_IO; DV_ERROR_OUT_OF_HOST_MEMORY (the staging ring);
 * DV_ERROR_BACKEND (a copy or fence failed). On failure every copy issued
 * has finished before the call returns; the destination holds part of the
 * data.
 */
DV_API dv_result_t dv_read_to_device(dv_device_t *dev, dv_reader_t *reader,
                                     dv_file_t *file, uint64_t file_offset,
                                     uint64_t size, uint64_t dst, void *stream,
                                     uint32_t flags);

/* ------------------------------------------------------------------------ */
/* Device buffers                                                            */
/* ------------------------------------------------------------------------ */

/*
 * Reserve device address space for up to `max_size` bytes (rounded up to
 * the device's page size) at a fixed address. Costs no memory until it
 * grows.
 * Results: DV_OK; DV_ERROR_INVALID_ARGUMENT (NULL, max_size 0 or too
 * large); DV_ERROR_ADDRESS_SPACE; DV_ERROR_OUT_OF_HOST_MEMORY.
 */
DV_API dv_result_t dv_devbuf_create(dv_device_t *dev, uint64_t max_size,
                                    dv_devbuf_t **out);

/*
 * Unmap everything (after the reads into it have finished) and free the
 * address range. Work the caller queued on its streams using the buffer
 * must have finished.
 * Results: DV_OK; DV_ERROR_INVALID_ARGUMENT; DV_ERROR_WRONG_DEVICE;
 * DV_ERROR_BUSY (a call on another thread uses it; nothing changed).
 */
DV_API dv_result_t dv_devbuf_destroy(dv_device_t *dev, dv_devbuf_t *db);

/*
 * Make the first `size` bytes usable (mapped in whole pages of the device's
 * page size). Growing counts the new pages in the device's budget like
 * framework memory: pooled pages are used first, then weight pages are
 * evicted in eviction order (lowest priority first, never pinned, never
 * below a watermark limit) until the growth fits; a backend out-of-memory
 * evicts one more page and retries. Shrinking unmaps the pages above the
 * new size into the pool (or releases them); reads into that part are
 * waited for, and work the caller queued on it must have finished.
 * Results: DV_OK; DV_ERROR_INVALID_ARGUMENT; DV_ERROR_WRONG_DEVICE;
 * DV_ERROR_OUT_OF_RANGE (above max_size); DV_ERROR_OUT_OF_DEVICE_MEMORY
 * (cannot fit even after evicting everything evictable: the size is
 * unchanged, evictions done stay done); DV_ERROR_BUSY (a read in flight
 * writes above the new size); DV_ERROR_BACKEND.
 */
DV_API dv_result_t dv_devbuf_resize(dv_device_t *dev, dv_devbuf_t *db,
                                    uint64_t size);

typedef struct dv_devbuf_info {
    uint64_t base;     /* device address of offset 0, fixed */
    uint64_t size;     /* bytes usable (the last resize) */
    uint64_t mapped;   /* bytes mapped: size rounded up to whole pages */
    uint64_t max_size; /* reserved bytes */
} dv_devbuf_info_t;

/* Results: DV_OK; DV_ERROR_INVALID_ARGUMENT; DV_ERROR_WRONG_DEVICE. */
DV_API dv_result_t dv_devbuf_get_info(dv_device_t *dev, dv_devbuf_t *db,
                                      dv_devbuf_info_t *info);

#ifdef __cplusplus
}
#endif

#endif /* DYNVRAM_IO_H */
