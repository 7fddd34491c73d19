/*
 * reader_ring.c - a reader's staging ring: pinned slots, each owned by one
 * chunk at a time and reused only after the fence of its last copy (the
 * model is in reader.h).
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * The ring is one reservation of slots * chunk_size bytes, committed and
 * registered with the backend as one range (an unpinned ring where the
 * backend cannot register host memory: copies are then slower, not wrong).
 * Copies go on a stream of the reader's own, so they never queue behind
 * the caller's work. On a backend whose copies are synchronous
 * (DV_CAP_ASYNC_COPY unset) a slot is free again as soon as its copy
 * returns, and no fence is recorded.
 */
#include <stdio.h>
#include <string.h>

#include "core/reader.h"

static int async_copies(const dv__dev_t *dev) {
    return (dev->caps.flags & DV_CAP_ASYNC_COPY) != 0;
}

/* Wait for a fence (no lock held) and destroy it (device lock). */
static dv_result_t wait_drop(dv__reader_t *rd, dv__dev_t *dev, dv_hal_fence_t f,
                             int count) {
    dv_result_t r = dev->hal.fence_query(dev->ctx, f);
    if (r == DV_NOT_READY) {
        if (count) {
            dv__mutex_lock(&rd->lock);
            rd->fence_waits++;
            dv__mutex_unlock(&rd->lock);
        }
        r = dev->hal.fence_wait(dev->ctx, f);
    }
    if (r != DV_OK) {
        dv__hal_fail(dev, r, "fence wait (staging copy)");
    }
    dv__mutex_lock(&dev->lock);
    if (dev->hal.fence_destroy) {
        dev->hal.fence_destroy(dev->ctx, f);
    }
    dv__mutex_unlock(&dev->lock);
    return r;
}

static dv_result_t ring_make(dv__reader_t *rd, dv__dev_t *dev, const char *fn) {
    uint64_t bytes = (uint64_t)rd->nslots * rd->chunk;
    void *p = NULL;
    int e = dv__vm_reserve(bytes, &p);
    if (!e) {
        e = dv__vm_commit(p, bytes);
        if (e) {
            dv__vm_release(p, bytes);
        }
    }
    if (e) {
        return dv__io_os_fail(DV_ERROR_OUT_OF_HOST_MEMORY, e, fn,
                              "staging ring");
    }
    int pinned = 0;
    dv_result_t r = DV_OK;
    if (dev->hal.host_register && (dev->caps.flags & DV_CAP_HOST_REGISTER)) {
        r = dev->hal.host_register(dev->ctx, p, bytes);
        pinned = r == DV_OK;
        if (r != DV_OK && r != DV_ERROR_NOT_SUPPORTED) {
            dv__hal_fail(dev, r, "host_register (staging ring)");
            dv__vm_release(p, bytes);
            return r;
        }
    }
    void *s = NULL;
    if (dev->hal.stream_create) {
        dv__mutex_lock(&dev->lock);
        r = dev->hal.stream_create(dev->ctx, &s);
        if (r != DV_OK) {
            dv__hal_fail(dev, r, "stream_create (reader)");
        }
        dv__mutex_unlock(&dev->lock);
        if (r != DV_OK) {
            if (pinned) {
                dev->hal.host_unregister(dev->ctx, p);
            }
            dv__vm_release(p, bytes);
            return r;
        }
    }
    rd->stage = p;
    rd->stage_bytes = bytes;
    rd->pinned = pinned;
    rd->stream = s;
    rd->own_stream = dev->hal.stream_create != NULL;
    for (uint32_t i = 0; i < rd->nslots; i++) {
        rd->slots[i] = (dv__slot_t){rd->stage + i * rd->chunk, NULL, 0};
    }
    if (!pinned) {
        dv__log(DV_LOG_INFO,
                "%s: backend %s cannot register host memory; "
                "the staging ring is not pinned",
                fn, dev->hal.name);
    }
    return DV_OK;
}

dv_result_t dv__ring_ready(dv__reader_t *rd, dv__dev_t *dev, const char *fn) {
    dv__mutex_lock(&rd->lock);
    while (rd->ring == RING_MAKING) {
        dv__cond_wait(&rd->freed, &rd->lock);
    }
    if (rd->ring == RING_READY) {
        dv__mutex_unlock(&rd->lock);
        return DV_OK;
    }
    rd->ring = RING_MAKING;
    dv__mutex_unlock(&rd->lock);
    dv_result_t r = ring_make(rd, dev, fn);
    dv__mutex_lock(&rd->lock);
    rd->ring = r == DV_OK ? RING_READY : RING_NONE;
    dv__cond_broadcast(&rd->freed);
    dv__mutex_unlock(&rd->lock);
    return r;
}

/* A free slot, preferring one with no copy behind it; NULL if none. */
static dv__slot_t *pick(dv__reader_t *rd) {
    dv__slot_t *fenced = NULL;
    for (uint32_t i = 0; i < rd->nslots; i++) {
        dv__slot_t *s = &rd->slots[i];
        if (!s->busy && !s->fence) {
            return s;
        }
        if (!s->busy && !fenced) {
            fenced = s;
        }
    }
    return fenced;
}

dv_result_t dv__ring_take(dv__reader_t *rd, dv__dev_t *dev, const char *fn,
                          dv__slot_t **slot) {
    dv__mutex_lock(&rd->lock);
    dv__slot_t *s = pick(rd);
    if (!s) {
        rd->slot_waits++;
        while (!(s = pick(rd))) {
            dv__cond_wait(&rd->freed, &rd->lock);
        }
    }
    s->busy = 1;
    dv_hal_fence_t f = s->fence;
    s->fence = NULL;
    dv__mutex_unlock(&rd->lock);
    if (f && wait_drop(rd, dev, f, 1) != DV_OK) {
        dv__ring_give(rd, s, NULL);
        return dv__fail(DV_ERROR_BACKEND, "%s: %s", fn,
                        dv__io_msg_body(dv_last_error()));
    }
    *slot = s;
    return DV_OK;
}

void dv__ring_give(dv__reader_t *rd, dv__slot_t *slot, dv_hal_fence_t fence) {
    dv__mutex_lock(&rd->lock);
    slot->fence = fence;
    slot->busy = 0;
    dv__cond_broadcast(&rd->freed);
    dv__mutex_unlock(&rd->lock);
}

dv_result_t dv__ring_copy(dv__reader_t *rd, dv__dev_t *dev, dv__slot_t *slot,
                          uint64_t n, uint64_t dst, const char *fn,
                          dv_hal_fence_t *fence) {
    *fence = NULL;
    dv__mutex_lock(&dev->lock);
    dv_result_t r = dev->hal.copy_h2d(dev->ctx, dst, slot->buf, n, rd->stream);
    if (r != DV_OK) {
        char what[96];
        snprintf(what, sizeof(what), "%s: copy_h2d of %llu bytes to 0x%llx", fn,
                 (unsigned long long)n, (unsigned long long)dst);
        dv__hal_fail(dev, r, what);
    } else if (async_copies(dev)) {
        dv_result_t fr =
            dev->hal.fence_record
                ? dev->hal.fence_record(dev->ctx, rd->stream, fence)
                : DV_ERROR_NOT_SUPPORTED;
        if (fr != DV_OK) {
            /* No fence: finish the copy before the slot is reused. */
            *fence = NULL;
            r = dev->hal.stream_synchronize
                    ? dev->hal.stream_synchronize(dev->ctx, rd->stream)
                    : DV_ERROR_NOT_SUPPORTED;
            if (r != DV_OK) {
                dv__hal_fail(dev, DV_ERROR_BACKEND,
                             "fence_record and stream_synchronize (reader)");
                r = DV_ERROR_BACKEND;
            }
        }
    }
    dv__mutex_unlock(&dev->lock);
    return r;
}

dv_result_t dv__ring_finish(dv__reader_t *rd, dv__dev_t *dev, void *stream,
                            int failed, const char *fn, dv_hal_fence_t *keep) {
    if (!async_copies(dev)) {
        return DV_OK; /* every copy finished when it returned */
    }
    dv_hal_fence_t f = NULL;
    dv__mutex_lock(&dev->lock);
    dv_result_t r = dev->hal.fence_record
                        ? dev->hal.fence_record(dev->ctx, rd->stream, &f)
                        : DV_ERROR_NOT_SUPPORTED;
    if (r != DV_OK) {
        /* Finish the reader's stream instead: correct, only blocking. */
        r = dev->hal.stream_synchronize
                ? dev->hal.stream_synchronize(dev->ctx, rd->stream)
                : DV_ERROR_NOT_SUPPORTED;
        if (r != DV_OK) {
            dv__hal_fail(dev, DV_ERROR_BACKEND,
                         "fence_record and stream_synchronize (reader)");
            r = DV_ERROR_BACKEND;
        }
        dv__mutex_unlock(&dev->lock);
        return r;
    }
    if (!failed && stream && dev->hal.stream_wait) {
        r = dev->hal.stream_wait(dev->ctx, stream, f);
        if (r == DV_OK) {
            /* Kept until it passes: a backend may not reuse a fence that a
             * stream still waits for. */
            if (keep) {
                *keep = f;
            } else if (dv__fenceset_add_locked(dev, &rd->pending, f) != DV_OK) {
                dv__log(DV_LOG_WARNING, "%s", dv_last_error());
            }
            dv__mutex_unlock(&dev->lock);
            return DV_OK;
        }
        dv__hal_fail(dev, r, "stream_wait");
        dv__log(DV_LOG_WARNING, "%s: %s; waiting on the host instead", fn,
                dv_last_error());
    }
    dv__mutex_unlock(&dev->lock);
    r = wait_drop(rd, dev, f, 0);
    return r == DV_OK ? DV_OK : DV_ERROR_BACKEND;
}

void dv__ring_free(dv__reader_t *rd, dv__dev_t *dev) {
    dv__mutex_lock(&dev->lock);
    if (dv__fenceset_drain_locked(dev, &rd->pending) != DV_OK) {
        dv__log(DV_LOG_ERROR, "reader: %s", dv_last_error());
        dv__fenceset_forget_locked(dev, &rd->pending);
    }
    dv__mutex_unlock(&dev->lock);
    for (uint32_t i = 0; i < rd->nslots; i++) {
        if (rd->slots[i].fence) {
            if (wait_drop(rd, dev, rd->slots[i].fence, 0) != DV_OK) {
                dv__log(DV_LOG_ERROR, "reader: %s", dv_last_error());
            }
            rd->slots[i].fence = NULL;
        }
    }
    if (rd->pinned && dev->hal.host_unregister(dev->ctx, rd->stage) != DV_OK &&
        dev->hal.host_unregister(dev->ctx, rd->stage) != DV_OK) {
        dv__hal_fail(dev, DV_ERROR_BACKEND, "host_unregister (staging ring)");
        dv__log(DV_LOG_ERROR, "%s", dv_last_error());
    }
    if (rd->stage) {
        dv__vm_release(rd->stage, rd->stage_bytes);
    }
    if (rd->own_stream) {
        dv__mutex_lock(&dev->lock);
        if (dev->hal.stream_destroy(dev->ctx, rd->stream) != DV_OK) {
            dv__hal_fail(dev, DV_ERROR_BACKEND, "stream_destroy (reader)");
            dv__log(DV_LOG_ERROR, "%s", dv_last_error());
        }
        dv__mutex_unlock(&dev->lock);
    }
    rd->stage = NULL;
    rd->pinned = 0;
    rd->own_stream = 0;
    rd->ring = RING_NONE;
}
