/*
 * dynvram_graph.h - allocation graphs: a block's framework allocations
 * recorded once and replayed at the same addresses with no driver call, so
 * that CUDA graphs can be captured over models that do not fit in memory.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * A graph belongs to one device and takes the framework allocations made on
 * one stream (its stream, which can be retargeted) while a scope is open.
 *
 *  - Scopes nest: dv_graph_push (optionally named), dv_graph_pop,
 *    dv_graph_iterate (close the scope of that name and open it again, for
 *    loops), dv_graph_abort (close them all), dv_graph_pause / resume
 *    (allocations made while paused bypass the graph).
 *  - Recording: each allocation taken by the graph gets a fresh virtual
 *    range from the graph's own address space, mapped onto physical pages
 *    that hold no live allocation at that moment. A free makes its bytes
 *    free again but keeps the range mapped, so later ranges alias the same
 *    physical memory: the graph's physical memory follows the peak of its
 *    live bytes, not their sum, and cannot fragment (a range is contiguous
 *    in address space whatever pages back it).
 *  - Replay: a scope pass that makes the same sequence as a recorded pass
 *    of that scope (allocation sizes, which allocation each free frees,
 *    nested scope names, in order) gets the recorded addresses back, with
 *    no call to the backend at all.
 *  - A pass that differs is a graph break: from the first difference on,
 *    the pass is recorded as a new variant of the scope, kept next to the
 *    old one (up to max_variants per point of difference; the least
 *    recently used is dropped beyond that). So a scope whose pattern
 *    alternates (two sequence lengths, a ping-pong buffer) replays both
 *    variants without further breaks. A recorded allocation is handed out
 *    again only if none of its bytes is live at that moment; otherwise the
 *    pass breaks there and records around the live bytes.
 *  - Rogues: an allocation still alive when its scope closes leaves the
 *    graph's pattern and becomes an ordinary allocation: its bytes stay
 *    reserved until it is freed (at any time, in or out of a scope, on any
 *    thread), no replay hands them out meanwhile, and it is counted
 *    (dv_graph_stats_t.rogues).
 *  - Physical memory comes out of the device's one budget
 *    (dv_device_stats_t.graph_bytes, part of `used`): like framework
 *    allocations it releases the pool and then evicts weight pages (lowest
 *    priority first) before it would fail, so it never runs out while
 *    evictable pages exist. The graph keeps its pages until it is
 *    destroyed.
 *  - A stream being captured into a CUDA graph is never synchronized or
 *    waited on, by the graph or by eviction (dynvram_hal.h,
 *    stream_is_capturing), and no pass records (calls the driver) inside
 *    a capture of the graph's stream. A pass that meets such a capture is
 *    a capture pass and follows its recording tolerantly instead of
 *    breaking, because a framework allocates differently while it
 *    captures: frees it defers until the capture ends (torch's
 *    cudaMallocAsync backend does, for memory allocated before the
 *    capture) and recorded frees of memory already free are stepped over,
 *    frees that match nothing are taken out of sequence, and an allocation
 *    that matches nothing is left to the framework's allocator while the
 *    pass goes on replaying (see dv_graph_alloc, dv_graph_free and
 *    dv_graph_note_capture). A pass that had left its recording before the
 *    capture began cannot replay inside it: its remaining allocations go
 *    to the framework's allocator. So allocations a framework makes to
 *    set up a capture (torch's capture_begin allocates the CUDA RNG's
 *    graph state the first time) must bypass the graph (dv_graph_pause;
 *    dynvram.torch does it for torch).
 *
 * Frees are taken in the order of the graph's stream: memory freed on
 * another stream may be reused by the graph's stream at once, so such work
 * must be ordered before the graph's stream by the caller.
 *
 * Thread-safety: every function is safe from any thread (the device's lock
 * guards the graph). A graph's scopes are one stack, so one graph serves
 * one thread at a time (several models run by that thread may share it).
 *
 * Common results of every function below: DV_ERROR_INVALID_ARGUMENT for a
 * NULL, closed or junk device, for a NULL, destroyed or junk graph (the
 * message names the kind of handle that was passed), and
 * DV_ERROR_WRONG_DEVICE for a graph of another device. Failing calls change
 * nothing unless they say otherwise.
 */
#ifndef DYNVRAM_GRAPH_H
#define DYNVRAM_GRAPH_H

#include "dynvram.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dv_graph dv_graph_t;

/* With it, dv_graph_pop and dv_graph_iterate report a pass that broke from
 * its recording as DV_ERROR_GRAPH_BREAK. */
#define DV_GRAPH_ASSERT_NO_BREAKS 0x1u

/* Addresses handed out are aligned to this many bytes. */
#define DV_GRAPH_ALIGNMENT 512u

typedef struct dv_graph_options {
    /* The native stream whose allocations the graph takes (NULL = the
     * default stream). */
    void *stream;
    /* Physical unit of the graph, rounded up to a power of two and to the
     * backend's granularity. 0 = 2 MiB. At most 1 GiB. Smaller pages waste
     * less at the ends of ranges; larger ones cost fewer driver calls when
     * recording. */
    uint64_t page_size;
    /* Address space reserved at a time (more is reserved when it runs
     * out). 0 = 32768 pages (64 GiB with 2 MiB pages). */
    uint64_t arena_size;
    /* DV_GRAPH_* flags. */
    uint32_t flags;
    /* Recorded variants kept at one point of a scope where passes
     * differed; 0 = 4. At most 64. */
    uint32_t max_variants;
} dv_graph_options_t;

/* Fill `opts` with defaults. */
DV_API void dv_graph_options_init(dv_graph_options_t *opts);

/*
 * Create a graph on `dev`. Costs no memory until something is recorded.
 * [in][optional] opts  NULL = defaults (the default stream).
 * [out] out            receives the graph.
 * Results: DV_OK; DV_ERROR_INVALID_ARGUMENT (out NULL, an option out of
 * range, opts->stream not a live stream of this device where the backend
 * can tell); DV_ERROR_WRONG_DEVICE (a stream of another device);
 * DV_ERROR_OUT_OF_HOST_MEMORY.
 */
DV_API dv_result_t dv_graph_create(dv_device_t *dev,
                                   const dv_graph_options_t *opts,
                                   dv_graph_t **out);

/*
 * Destroy a graph: waits for the work queued on its stream (a fence, never
 * the whole device; a stream destroyed under the graph has nothing left to
 * wait for), then unmaps and releases all its memory. The handle is dead
 * afterwards.
 * Results: DV_OK; DV_ERROR_BUSY (a scope is open, an allocation of the
 * graph is still alive, or its stream is being captured: nothing changed);
 * DV_ERROR_BACKEND (a driver call failed; what was released stays released
 * and the call can be repeated).
 */
DV_API dv_result_t dv_graph_destroy(dv_device_t *dev, dv_graph_t *graph);

/*
 * Retarget the graph to `stream` (NULL = the default stream). Work queued on
 * the new stream from now on waits, on the device, for the work queued so
 * far on the old one (stream_wait; without it the old stream is
 * synchronized), so memory freed on the old stream is safe to reuse.
 * Results: DV_OK; DV_ERROR_INVALID_ARGUMENT (not a live stream of this
 * device, where the backend can tell); DV_ERROR_WRONG_DEVICE; DV_ERROR_BUSY
 * (either stream is being captured); DV_ERROR_BACKEND.
 */
DV_API dv_result_t dv_graph_set_stream(dv_device_t *dev, dv_graph_t *graph,
                                       void *stream);

/*
 * Open a scope. Nested scopes are part of the enclosing scope's sequence:
 * the n-th event of a pass is compared with the n-th of its recordings.
 * Outermost scopes are told apart by name: each name has its own
 * recording, so per-block scopes with distinct names replay step after
 * step.
 * [in][optional] name  NULL or "" = unnamed; at most 255 bytes.
 * Results: DV_OK; DV_ERROR_INVALID_ARGUMENT (name too long, more than 1024
 * scopes open); DV_ERROR_OUT_OF_HOST_MEMORY.
 */
DV_API dv_result_t dv_graph_push(dv_device_t *dev, dv_graph_t *graph,
                                 const char *name);

/*
 * Close the innermost scope. Its allocations still alive become rogues.
 * [out][optional] changed  1 when this pass of the scope (nested scopes
 *   included) did not replay a recording exactly: it recorded (the first
 *   pass, or a break) so an address handed out in it may differ from the
 *   previous pass's; 0 when every address was a replay.
 * Results: DV_OK; DV_ERROR_INVALID_ARGUMENT (no scope is open);
 * DV_ERROR_GRAPH_BREAK (DV_GRAPH_ASSERT_NO_BREAKS and this scope's own
 * sequence broke from its recording: the scope is closed all the same and
 * the new variant recorded; dv_last_error() names the first difference).
 */
DV_API dv_result_t dv_graph_pop(dv_device_t *dev, dv_graph_t *graph,
                                int *changed);

/*
 * Close the innermost open scope named `name` (and every scope inside it)
 * and open it again on the same recording: the next pass of a loop body.
 * [in][optional] name      NULL = the innermost scope, whatever its name.
 * [out][optional] changed  as for dv_graph_pop, for the pass just closed.
 * Results: DV_OK; DV_ERROR_INVALID_ARGUMENT (no open scope has that name:
 * nothing changed); DV_ERROR_GRAPH_BREAK (as for dv_graph_pop: the scope is
 * open again).
 */
DV_API dv_result_t dv_graph_iterate(dv_device_t *dev, dv_graph_t *graph,
                                    const char *name, int *changed);

/*
 * Close every open scope without judging the passes (for an exception in
 * the middle of a block). Allocations still alive become rogues; what the
 * passes recorded so far is kept. Results: DV_OK (also with no scope open).
 */
DV_API dv_result_t dv_graph_abort(dv_device_t *dev, dv_graph_t *graph);

/*
 * Pause: until the matching dv_graph_resume, allocations bypass the graph
 * (dv_graph_alloc returns DV_OFFLOADED) and frees of graph memory release it
 * without being part of the sequence. Pauses nest.
 * [in] sync  non-zero: synchronize the graph's stream first (nothing when
 *            that stream was destroyed meanwhile).
 * Results: DV_OK; DV_ERROR_BUSY (sync on a stream being captured: nothing
 * changed); DV_ERROR_BACKEND (the synchronize failed: nothing changed).
 */
DV_API dv_result_t dv_graph_pause(dv_device_t *dev, dv_graph_t *graph,
                                  int sync);
/* Undo one dv_graph_pause (sync as for pause). Results: DV_OK;
 * DV_ERROR_INVALID_ARGUMENT (not paused); DV_ERROR_BUSY; DV_ERROR_BACKEND. */
DV_API dv_result_t dv_graph_resume(dv_device_t *dev, dv_graph_t *graph,
                                   int sync);

/*
 * A framework allocation of `size` bytes on `stream` (the allocator entry
 * point: bindings/interpose calls it for torch's cudaMallocAsync).
 * [out] ptr  the device address (DV_GRAPH_ALIGNMENT-aligned) on DV_OK, 0
 *            otherwise.
 * Results:
 *   DV_OK          the graph took it: a replayed address (no backend call)
 *                  or a newly recorded range.
 *   DV_OFFLOADED   the graph does not take it: no scope is open, the graph
 *                  is paused, `stream` is not the graph's stream, or it
 *                  would have to be recorded (new memory, driver calls)
 *                  while the graph's stream is being captured. A pass that
 *                  was replaying stays on its recording then (a recorded
 *                  allocation of the same size whose range is not free is
 *                  stepped over) and counts as changed; a pass that had
 *                  left its recording before the capture leaves every
 *                  later allocation to the normal path too. Either way the
 *                  recording stays as it was. Allocate it the normal way.
 *   DV_ERROR_OUT_OF_DEVICE_MEMORY  no room in the budget even after
 *                  evicting every evictable weight page (evictions done
 *                  stay done).
 *   DV_ERROR_INVALID_ARGUMENT (ptr NULL, size 0 or above 2^48);
 *   DV_ERROR_ADDRESS_SPACE; DV_ERROR_OUT_OF_HOST_MEMORY; DV_ERROR_BACKEND.
 */
DV_API dv_result_t dv_graph_alloc(dv_device_t *dev, dv_graph_t *graph,
                                  uint64_t size, void *stream, uint64_t *ptr);

/*
 * A framework free of `ptr` (on `stream`, taken in the graph stream's order;
 * see above). Works in and out of scopes, paused or not, from any thread,
 * also long after the pass that allocated it (a rogue, or a free the
 * framework deferred past a capture). A capture pass takes a free that
 * does not match its recording out of sequence, and a free whose recorded
 * place a capture pass stepped over is out of every sequence.
 * Results: DV_OK (a live allocation of the graph: its bytes are free for
 * later ranges; this never fails: if recording the free runs out of host
 * memory, the pass is lost from there, as in a capture, and the recording
 * kept as it was); DV_OFFLOADED (not an address of this graph: free it the
 * normal way); DV_ERROR_INVALID_ARGUMENT (inside the graph's address space
 * but not a live allocation: freed twice, or not its first byte).
 */
DV_API dv_result_t dv_graph_free(dv_device_t *dev, dv_graph_t *graph,
                                 uint64_t ptr, void *stream);

typedef struct dv_graph_stats {
    uint64_t used;           /* bytes of live allocations, as requested */
    uint64_t peak_used;      /* the most `used` has been */
    uint64_t virtual_bytes;  /* address space reserved */
    uint64_t mapped_bytes;   /* address space mapped under recorded ranges */
    uint64_t physical_bytes; /* physical memory held (in the device budget) */
    uint64_t page_size;      /* the graph's physical unit */
    uint64_t allocs;         /* allocations taken */
    uint64_t replayed_allocs; /* ... of them at a recorded address */
    uint64_t frees;          /* frees of graph allocations */
    uint64_t bypassed;       /* allocations not taken (DV_OFFLOADED) */
    uint64_t unknown_frees;  /* frees of addresses not the graph's */
    uint64_t rogues;         /* allocations alive when their scope closed */
    uint64_t rogue_bytes;    /* bytes of rogues alive now */
    uint64_t breaks;         /* passes that broke from their recording */
    uint64_t replays;        /* passes that replayed exactly */
    uint64_t records;        /* passes that recorded without a break */
    uint64_t backend_calls;  /* memory calls to the backend (reserve,
                                create, map, unmap, release, unreserve) */
    uint64_t ranges;         /* recorded ranges */
    uint64_t variants_dropped; /* recorded variants dropped (max_variants) */
    void *stream;            /* the graph's stream */
    uint32_t depth;          /* scopes open */
    uint32_t paused;         /* pause depth */
    uint64_t capture_skips;  /* events of capture passes taken out of their
                                recording's order: recorded frees stepped
                                over, frees out of sequence, allocations
                                left to the framework with the pass kept on
                                its recording */
} dv_graph_stats_t;

/* Snapshot of the graph's counters. Results: DV_OK;
 * DV_ERROR_INVALID_ARGUMENT (st NULL). */
DV_API dv_result_t dv_graph_get_stats(dv_device_t *dev, dv_graph_t *graph,
                                      dv_graph_stats_t *st);

/*
 * Tell the graph that its stream is being captured, or is about to be, in
 * the scope passes open now: they become capture passes (see above) from
 * here to their end, which matters for the events that come after the
 * capture ended (a framework's deferred frees are missing from the end of
 * the pass; pop would otherwise call that a break). Optional: a pass also
 * becomes a capture pass when an event that does not match its recording
 * finds the stream capturing. dynvram.torch calls it when torch's
 * capture_begin returns. Results: DV_OK (also with no scope open: then
 * nothing changes).
 */
DV_API dv_result_t dv_graph_note_capture(dv_device_t *dev, dv_graph_t *graph);

/* ---- debugging: the event trace and a scope's recording ------------------ */

/* dv_graph_event_t.kind */
#define DV_GRAPH_EV_ALLOC 1u
#define DV_GRAPH_EV_FREE 2u
#define DV_GRAPH_EV_PUSH 3u /* a scope opened (recording: a nested scope) */
#define DV_GRAPH_EV_POP 4u  /* a scope closed (recording: its end) */

/* dv_graph_event_t.outcome (trace only) */
#define DV_GRAPH_OUT_REPLAYED 1u  /* alloc: a recorded range; free, push:
                                     matched the recording; pop: the pass
                                     replayed */
#define DV_GRAPH_OUT_RECORDED 2u  /* appended to the recording (alloc: a new
                                     range; pop: the pass changed) */
#define DV_GRAPH_OUT_BYPASSED 3u  /* alloc: not taken (DV_OFFLOADED) */
#define DV_GRAPH_OUT_SKIPPED 4u   /* a capture pass took it out of its
                                     recording's order (alloc: left to the
                                     framework; free: out of sequence) */
#define DV_GRAPH_OUT_UNSEQUENCED 5u /* free: in no sequence (no scope open,
                                       paused, a lost pass, or a free a
                                       capture stepped over) */
#define DV_GRAPH_OUT_UNKNOWN 6u   /* free: not an address of the graph */
#define DV_GRAPH_OUT_FAILED 7u    /* the call failed (out of memory, ...) */

/* dv_graph_event_t.flags */
#define DV_GRAPH_EVF_CAPTURING 0x1u   /* trace, alloc and free: the graph's
                                         stream was being captured (pop:
                                         the pass was a capture pass) */
#define DV_GRAPH_EVF_ENDS 0x2u        /* recording: a pass ended here */
#define DV_GRAPH_EVF_BROKE 0x4u       /* trace, pop: the pass broke */
#define DV_GRAPH_EVF_CAPTURE_PASS 0x8u /* trace: the innermost pass was a
                                          capture pass */

typedef struct dv_graph_event {
    uint64_t seq;     /* trace: number of the event since tracing began */
    uint64_t size;    /* alloc: bytes asked; free: the range's bytes */
    uint64_t ptr;     /* alloc: address handed out (0: none); free: the
                         address; recording: the range's address */
    uint64_t serial;  /* the range (alloc) or the range freed (free): serials
                         are never reused, so a recorded free names its
                         allocation by it; 0 = none */
    void *stream;     /* trace: the stream passed */
    uint32_t kind;    /* DV_GRAPH_EV_* */
    uint32_t outcome; /* trace: DV_GRAPH_OUT_* */
    uint32_t depth;   /* trace: scopes open; recording: nesting level */
    uint32_t flags;   /* DV_GRAPH_EVF_* */
    uint32_t variants; /* recording: variants recorded at this point */
    uint32_t reserved;
    char scope[64];   /* trace: the innermost open scope (truncated);
                         recording, push: the nested scope's name */
} dv_graph_event_t;

/*
 * Debug trace: keep the last `capacity` allocation, free, push and pop
 * calls of the graph (0 = off, the default; at most 1 << 20), bypassed
 * ones included. Enabling or resizing clears what was kept. Tracing costs
 * a copy per call and a stream query (stream_is_capturing) per traced
 * allocation or free.
 * Results: DV_OK; DV_ERROR_INVALID_ARGUMENT (capacity too large);
 * DV_ERROR_OUT_OF_HOST_MEMORY.
 */
DV_API dv_result_t dv_graph_trace(dv_device_t *dev, dv_graph_t *graph,
                                  uint32_t capacity);

/*
 * The traced events, oldest first: the newest min(max, kept) of them.
 * [out] out    room for `max` events (NULL with max 0: count only)
 * [out] count  events written (with max 0: events kept)
 * Results: DV_OK; DV_ERROR_INVALID_ARGUMENT (count NULL, or out NULL with
 * max > 0).
 */
DV_API dv_result_t dv_graph_get_trace(dv_device_t *dev, dv_graph_t *graph,
                                      dv_graph_event_t *out, uint32_t max,
                                      uint32_t *count);

/*
 * The recording of outermost scope `name` ("" or NULL = unnamed) along its
 * most recently used path (the variant taken last at each point), nested
 * scopes inlined between a PUSH and a POP event, ending with the POP of
 * the scope itself when a pass ended there: what the next pass is compared
 * with. Compare it with the trace of a pass that did not replay.
 * [out] out    room for `max` events (NULL with max 0: count only)
 * [out] count  events on the path (all of them, even beyond max)
 * Results: DV_OK; DV_ERROR_INVALID_ARGUMENT (count NULL, out NULL with
 * max > 0, name too long, or no outermost scope of that name).
 */
DV_API dv_result_t dv_graph_get_recording(dv_device_t *dev, dv_graph_t *graph,
                                          const char *name,
                                          dv_graph_event_t *out, uint32_t max,
                                          uint32_t *count);

#ifdef __cplusplus
}
#endif

#endif /* DYNVRAM_GRAPH_H */
