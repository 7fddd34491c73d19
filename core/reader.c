/*
 * reader.c - the read pool: threads doing positional reads of file ranges
 * into host buffers or, through the staging ring, into device memory
 * (public contract in dynvram_io.h, model in reader.h).
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * A read call validates everything first (handles, ranges, the caller's
 * stream, the destination), then queues one job and waits for its chunks.
 * A failing chunk records the job's first error and message (messages are
 * per thread, so the text is carried back to the caller); the chunks still
 * queued behind it are skipped. Before a failed device read returns, every
 * copy it issued has finished, so the caller may free the destination.
 * Device reads end in dv__ring_finish: the caller's stream waits for the
 * copies (stream mode) or the call waits for them (synchronous).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/reader.h"

/* ---- the worker threads -------------------------------------------------- */

static void job_fail(dv__reader_t *rd, dv__job_t *job, dv_result_t r) {
    dv__mutex_lock(&rd->lock);
    if (job->err == DV_OK) {
        job->err = r;
        snprintf(job->msg, sizeof(job->msg), "%s",
                 dv__io_msg_body(dv_last_error()));
    }
    dv__mutex_unlock(&rd->lock);
}

/* pread all of [off, off + n) of the job's file range into buf. */
static dv_result_t read_exact(dv__job_t *job, uint64_t off, uint8_t *buf,
                              uint64_t n) {
    size_t got = 0;
    uint64_t at = job->foff + off;
    int e = dv__file_pread(job->file, buf, (size_t)n, at, &got);
    if (e) {
        char what[96];
        snprintf(what, sizeof(what), "read of [%llu, +%llu) of the file",
                 (unsigned long long)at, (unsigned long long)n);
        return dv__io_os_fail(DV_ERROR_IO, e, job->fn, what);
    }
    if (got < n) {
        return dv__fail(DV_ERROR_IO,
                        "%s: the file ended at offset %llu, before %llu: it "
                        "shrank after it was opened",
                        job->fn, (unsigned long long)(at + got),
                        (unsigned long long)(at + n));
    }
    if (job->flags & DV_READ_MARK_COLD) {
        dv__file_drop_cache(job->file, at, n); /* a hint: errors ignored */
    }
    return DV_OK;
}

static dv_result_t run_chunk(dv__reader_t *rd, dv__job_t *job, uint64_t off,
                             uint64_t n) {
    if (job->host) {
        return read_exact(job, off, job->host + off, n);
    }
    dv__slot_t *slot = NULL;
    dv_result_t r = dv__ring_take(rd, job->dev, job->fn, &slot);
    if (r != DV_OK) {
        return r;
    }
    dv_hal_fence_t f = NULL;
    r = read_exact(job, off, slot->buf, n);
    if (r == DV_OK) {
        r = dv__ring_copy(rd, job->dev, slot, n, job->dst + off, job->fn, &f);
    }
    dv__ring_give(rd, slot, f);
    return r;
}

static void worker(void *arg) {
    dv__reader_t *rd = arg;
    dv__mutex_lock(&rd->lock);
    for (;;) {
        while (!rd->stop && !rd->head) {
            dv__cond_wait(&rd->work, &rd->lock);
        }
        if (!rd->head) {
            break; /* stop, and nothing queued */
        }
        dv__job_t *job = rd->head;
        uint64_t off = job->handed;
        uint64_t n = job->size - off < rd->chunk ? job->size - off : rd->chunk;
        job->handed += n;
        if (job->handed == job->size) {
            rd->head = job->next;
            if (!rd->head) {
                rd->tail = NULL;
            }
        }
        int skip = job->err != DV_OK;
        if (!skip) {
            rd->chunks++;
        }
        dv__mutex_unlock(&rd->lock);
        dv_result_t r = skip ? DV_OK : run_chunk(rd, job, off, n);
        if (r != DV_OK) {
            job_fail(rd, job, r);
        }
        dv__mutex_lock(&rd->lock);
        if (r == DV_OK && !skip) {
            rd->bytes_read += n;
        }
        if (--job->left == 0) {
            dv__cond_broadcast(&rd->done);
        }
    }
    dv__mutex_unlock(&rd->lock);
}

/* Queue the job and wait for its chunks. */
static dv_result_t run_job(dv__reader_t *rd, dv__job_t *job) {
    job->left = job->size / rd->chunk + (job->size % rd->chunk != 0);
    dv__mutex_lock(&rd->lock);
    if (rd->tail) {
        rd->tail->next = job;
    } else {
        rd->head = job;
    }
    rd->tail = job;
    dv__cond_broadcast(&rd->work);
    while (job->left) {
        dv__cond_wait(&rd->done, &rd->lock);
    }
    dv__mutex_unlock(&rd->lock);
    return job->err;
}

/* ---- create, destroy, info ----------------------------------------------- */

void dv_reader_options_init(dv_reader_options_t *o) {
    if (o) {
        memset(o, 0, sizeof(*o));
    }
}

static dv_result_t options(const dv_reader_options_t *o, dv__reader_t *rd,
                           const char *fn) {
    uint32_t cpus = dv__cpu_count();
    rd->threads = o->threads ? o->threads
                  : cpus < DV_READER_DEFAULT_THREADS
                      ? cpus
                      : DV_READER_DEFAULT_THREADS;
    rd->nslots = o->slots ? o->slots : 2 * rd->threads;
    uint64_t page = dv__vm_page();
    uint64_t chunk = o->chunk_size ? o->chunk_size : DV_READER_DEFAULT_CHUNK;
    if (rd->threads > DV__READER_MAX_THREADS ||
        rd->nslots > DV__READER_MAX_SLOTS || chunk > DV__READER_MAX_CHUNK) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT,
                        "%s: threads %u (at most %u), slots %u (at most %u) or "
                        "chunk_size %llu (at most %llu) out of range",
                        fn, rd->threads, DV__READER_MAX_THREADS, rd->nslots,
                        DV__READER_MAX_SLOTS, (unsigned long long)chunk,
                        (unsigned long long)DV__READER_MAX_CHUNK);
    }
    rd->chunk = (chunk + page - 1) / page * page;
    return DV_OK;
}

static void stop_threads(dv__reader_t *rd) {
    dv__mutex_lock(&rd->lock);
    rd->stop = 1;
    dv__cond_broadcast(&rd->work);
    dv__mutex_unlock(&rd->lock);
    for (uint32_t i = 0; i < rd->started; i++) {
        dv__thread_join(&rd->tid[i]);
    }
    rd->started = 0;
}

static void reader_free(dv__reader_t *rd) {
    dv__cond_destroy(&rd->work);
    dv__cond_destroy(&rd->done);
    dv__cond_destroy(&rd->freed);
    dv__mutex_destroy(&rd->lock);
    free(rd);
}

dv_result_t dv_reader_create(dv_device_t *h, const dv_reader_options_t *opts,
                             dv_reader_t **out) {
    static const char fn[] = "dv_reader_create";
    dv__dev_t *dev = NULL;
    dv_result_t r = dv__dev_get(h, fn, &dev);
    if (r != DV_OK) {
        return r;
    }
    if (!out) {
        return dv__fail(DV_ERROR_INVALID_ARGUMENT, "%s: out is NULL", fn);
    }
    *out = NULL;
    dv_reader_options_t defaults;
    dv_reader_options_init(&defaults);
    dv__reader_t *rd = calloc(1, sizeof(*rd));
    if (!rd) {
        return dv__fail(DV_ERROR_OUT_OF_HOST_MEMORY, "%s", fn);
    }
    r = options(opts ? opts : &defaults, rd, fn);
    if (r != DV_OK) {
        free(rd);
        return r;
    }
    dv__mutex_init(&rd->lock);
    dv__cond_init(&rd->work);
    dv__cond_init(&rd->done);
    dv__cond_init(&rd->freed);
    for (; rd->started < rd->threads; rd->started++) {
        int e = dv__thread_start(&rd->tid[rd->started], worker, rd);
        if (e) {
            stop_threads(rd);
            reader_free(rd);
            return dv__io_os_fail(DV_ERROR_OUT_OF_HOST_MEMORY, e, fn,
                                  "starting a thread");
        }
    }
    r = dv__io_publish(rd, DV__HK_READER, dev, fn);
    if (r != DV_OK) {
        stop_threads(rd);
        reader_free(rd);
        return r;
    }
    *out = (dv_reader_t *)(uintptr_t)rd->io.handle;
    return dv__ok();
}

dv_result_t dv_reader_destroy(dv_device_t *h, dv_reader_t *rh) {
    static const char fn[] = "dv_reader_destroy";
    dv__dev_t *dev = NULL;
    dv__reader_t *rd = NULL;
    dv_result_t r =
        dv__io_acquire(h, rh, DV__HK_READER, fn, &dev, (void **)&rd);
    if (r != DV_OK) {
        return r;
    }
    r = dv__io_retire(rd, fn);
    if (r != DV_OK) {
        dv__io_release(rd);
        return r;
    }
    stop_threads(rd);
    dv__ring_free(rd, dev);
    dv__io_unpublish(rd);
    reader_free(rd);
    return dv__ok();
}

dv_result_t dv_reader_get_info(dv_device_t *h, dv_reader_t *rh,
                               dv_reader_info_t *info) {
    static const char fn[] = "dv_reader_get_info";
    dv__dev_t *dev = NULL;
    dv__reader_t *rd = NULL;
    dv_result_t r =
        dv__io_acquire(h, rh, DV__HK_READER, fn, &dev, (void **)&rd);
    if (r != DV_OK) {
        return r;
    }
    if (!info) {
        dv__io_release(rd);
        return dv__fail(DV_ERROR_INVALID_ARGUMENT, "%s: info is NULL", fn);
    }
    dv__mutex_lock(&rd->lock);
    memset(info, 0, sizeof(*info));
    info->threads = rd->threads;
    info->slots = rd->nslots;
    info->chunk_size = rd->chunk;
    info->staging_bytes = rd->ring == RING_READY ? rd->stage_bytes : 0;
    info->staging_pinned = (uint32_t)rd->pinned;
    info->reads_in_flight = rd->reads;
    info->bytes_read = rd->bytes_read;
    info->chunks = rd->chunks;
    info->slot_waits = rd->slot_waits;
    info->fence_waits = rd->fence_waits;
    dv__mutex_unlock(&rd->lock);
    dv__io_release(rd);
    return dv__ok();
}

/* ---- reads ----------------------------------------------------------------
 */

/* What both reads hold while they run. */
typedef struct read_ctx {
    dv__dev_t *dev;
    dv__reader_t *rd;
    dv__file_t *file;
} read_ctx_t;

static dv_result_t read_begin(dv_device_t *h, dv_reader_t *rh, dv_file_t *fh,
                              uint32_t flags, const char *fn, read_ctx_t *c) {
    memset(c, 0, sizeof(*c));
    dv_result_t r =
        dv__io_acquire(h, rh, DV__HK_READER, fn, &c->dev, (void **)&c->rd);
    if (r != DV_OK) {
        return r;
    }
    r = dv__io_acquire(NULL, fh, DV__HK_FILE, fn, NULL, (void **)&c->file);
    if (r == DV_OK && (flags & ~(uint32_t)DV_READ_MARK_COLD)) {
        dv__io_release(c->file);
        r = dv__fail(DV_ERROR_INVALID_ARGUMENT, "%s: flags 0x%x unknown", fn,
                     flags);
    }
    if (r != DV_OK) {
        dv__io_release(c->rd);
        return r;
    }
    dv__mutex_lock(&c->rd->lock);
    c->rd->reads++;
    dv__mutex_unlock(&c->rd->lock);
    return DV_OK;
}

static void read_end(read_ctx_t *c) {
    dv__mutex_lock(&c->rd->lock);
    c->rd->reads--;
    dv__mutex_unlock(&c->rd->lock);
    dv__io_release(c->file);
    dv__io_release(c->rd);
}

/* The job's outcome as the calling thread's result and message. */
static dv_result_t job_result(const dv__job_t *job) {
    return job->err == DV_OK ? dv__ok() : dv__fail(job->err, "%s", job->msg);
}

dv_result_t dv_read_to_host(dv_device_t *h, dv_reader_t *rh, dv_file_t *fh,
                            uint64_t file_offset, uint64_t size,
                            dv_hostbuf_t *bh, uint64_t offset, uint32_t flags) {
    static const char fn[] = "dv_read_to_host";
    read_ctx_t c;
    dv_result_t r = read_begin(h, rh, fh, flags, fn, &c);
    if (r != DV_OK) {
        return r;
    }
    dv__hostbuf_t *hb = NULL;
    r = dv__io_acquire(h, bh, DV__HK_HOSTBUF, fn, NULL, (void **)&hb);
    dv__job_t job;
    memset(&job, 0, sizeof(job));
    if (r == DV_OK) {
        r = dv__file_range(c.file, file_offset, size, fn, &job.file);
        uint64_t ticket = 0;
        if (r == DV_OK) {
            r = dv__hostbuf_io_begin(hb, offset, size, fn, &job.host, &ticket);
        }
        if (r == DV_OK) {
            job = (dv__job_t){.dev = c.dev,
                              .fn = fn,
                              .file = job.file,
                              .foff = file_offset,
                              .size = size,
                              .host = job.host,
                              .flags = flags};
            run_job(c.rd, &job);
            r = job_result(&job);
            dv__hostbuf_io_end(hb, ticket);
        }
        dv__io_release(hb);
    }
    read_end(&c);
    return r;
}

/* The caller's stream is one of the device's, not being captured. */
static dv_result_t stream_ok_locked(dv__dev_t *dev, void *stream,
                                    const char *fn) {
    if (!stream) {
        return DV_OK;
    }
    uint32_t slot;
    dv_result_t r = dv__stream_slot_locked(dev, stream, fn, &slot);
    int capturing = 0;
    if (r == DV_OK && dev->hal.stream_is_capturing &&
        dev->hal.stream_is_capturing(dev->ctx, stream, &capturing) == DV_OK &&
        capturing) {
        r = dv__fail(DV_ERROR_NOT_SUPPORTED,
                     "%s: stream %p is being captured into a graph; a read "
                     "cannot be ordered into a capture",
                     fn, stream);
    }
    return r;
}

static dv_result_t device_job(read_ctx_t *c, dv__job_t *job, void *stream) {
    const char *fn = job->fn;
    dv__devbuf_t *db = NULL;
    uint64_t ticket = 0;
    dv__mutex_lock(&c->dev->lock);
    dv_result_t r = stream_ok_locked(c->dev, stream, fn);
    if (r == DV_OK) {
        r = dv__io_dst_begin_locked(c->dev, job->dst, job->size, fn, &db,
                                    &ticket);
    }
    dv__mutex_unlock(&c->dev->lock);
    if (r == DV_OK) {
        r = dv__ring_ready(c->rd, c->dev, fn);
    }
    if (r == DV_OK) {
        run_job(c->rd, job);
        dv_hal_fence_t keep = NULL;
        r = dv__ring_finish(c->rd, c->dev, stream, job->err != DV_OK, fn,
                            db ? &keep : NULL);
        r = job->err != DV_OK ? job_result(job) : r == DV_OK ? dv__ok() : r;
        if (db) {
            dv__mutex_lock(&c->dev->lock);
            dv__devbuf_io_end_locked(c->dev, db, ticket, keep);
            dv__mutex_unlock(&c->dev->lock);
            db = NULL;
        }
    }
    if (db) {
        dv__mutex_lock(&c->dev->lock);
        dv__devbuf_io_end_locked(c->dev, db, ticket, NULL);
        dv__mutex_unlock(&c->dev->lock);
    }
    return r;
}

dv_result_t dv_read_to_device(dv_device_t *h, dv_reader_t *rh, dv_file_t *fh,
                              uint64_t file_offset, uint64_t size, uint64_t dst,
                              void *stream, uint32_t flags) {
    static const char fn[] = "dv_read_to_device";
    read_ctx_t c;
    dv_result_t r = read_begin(h, rh, fh, flags, fn, &c);
    if (r != DV_OK) {
        return r;
    }
    dv__job_t job = {.dev = c.dev,
                     .fn = fn,
                     .foff = file_offset,
                     .size = size,
                     .dst = dst,
                     .flags = flags};
    r = dv__file_range(c.file, file_offset, size, fn, &job.file);
    if (r == DV_OK && !c.dev->hal.copy_h2d) {
        r = dv__fail(DV_ERROR_NOT_SUPPORTED, "%s: backend %s has no copies", fn,
                     c.dev->hal.name);
    }
    if (r == DV_OK) {
        r = device_job(&c, &job, stream);
    }
    read_end(&c);
    return r;
}
