/*
 * graph.h - the allocation graph's data model (public contract:
 * include/dynvram_graph.h), shared by its three files:
 *
 *   graph.c         handles, validation, lifetime, streams, allocations,
 *                   stats and invariants (the public entry points)
 *   graph_scope.c   scopes: push, pop, iterate, abort, pause
 *   graph_record.c  recordings: a scope's passes as a trie of events, the
 *                   matching of a pass against it, variants and their limit
 *   graph_mem.c     address space (arenas), physical pages, which bytes of
 *                   them are live, placement of new ranges, the budget,
 *                   deferred unmapping and teardown
 *
 * graph_scope.c calls graph.c; graph.c calls graph_record.c, which calls
 * graph_mem.c, which calls graph_space.c; never the reverse. Everything is protected by the owning device's lock.
 *
 * Memory model. A graph owns physical pages of page_size bytes (its own
 * unit, not the device's residency page) and reserves address space in
 * arenas. A range is one allocation's recording: npages consecutive
 * virtual pages of an arena, page i mapped onto physical page pages[i],
 * the address handed out at offset `off` of the first. Its bytes in
 * physical page pages[i] form one span (graph_mem.c, range_piece). Ranges
 * stay mapped while recorded, so different ranges share physical pages at
 * different times: aliasing. Each physical page keeps the spans of its
 * live ranges, sorted; a range may be handed out only when none of its
 * spans overlaps a live one.
 *
 * Recording model. A scope's recording is a trie whose root is a ROOT
 * event: an event's `next` is the first of the events that followed it in
 * some pass, `alt` links the variants at one point (most recently used
 * first). A pass walks it from the root; an event that matches none of the
 * variants at its point starts a new variant there (a break when the point
 * had variants or was where a pass ended). `ends` marks the points where a
 * pass of the scope ended. A PUSH event holds the nested scope's own trie
 * (child). Outermost scopes are recordings of their own, found by name
 * (dv__gtop_t).
 *
 * Capture. Recording calls the driver (create, map), which must not happen
 * while the graph's stream is being captured into a CUDA graph. A capture
 * pass is a pass that met the capture (an event that did not match found
 * the graph's stream capturing, or dv_graph_note_capture said so); it is
 * tolerant (graph_record.c, "Capture tolerance") instead of recording:
 *  - a recorded FREE whose range is still live (the framework deferred the
 *    free until the capture ends, as torch's cudaMallocAsync backend does
 *    for memory allocated before the capture) or already free (freed out
 *    of order) may be stepped over; a live one is marked `unseq`: its free,
 *    whenever it comes, is in no pass's sequence;
 *  - a free that matches nothing there releases its bytes out of sequence;
 *  - inside the capture, an allocation that matches nothing there is left
 *    to the framework's allocator (DV_OFFLOADED, the pass changed) and the
 *    pass stays on its recording (stepping over a recorded allocation of
 *    the same size whose range is not free), so later events still replay;
 *    a nested scope that matches nothing is lost (below).
 * A pass that had left its recording before the capture (it was recording)
 * cannot record inside it: it is "lost": that allocation and every later
 * one of the pass (and of the scopes nested in it) bypass the graph
 * (DV_OFFLOADED: the framework's own stream-ordered allocator serves them,
 * which a capture supports), and the pass counts as changed. Neither kind
 * changes the recording during the capture.
 *
 * Lifetimes. A range belongs to its ALLOC event (`ev`). When the event is
 * dropped (the variant limit) a range that is not live becomes a zombie: it
 * stays mapped until the work queued on the graph's stream before the drop
 * has finished (a sequence number on that stream, fence.c), then its
 * address space is unmapped and reused. A live range dropped that way is an
 * orphan until it is freed, then a zombie. Every range is on the graph's
 * `all` list until its address space is given back.
 */
#ifndef DV_CORE_GRAPH_H
#define DV_CORE_GRAPH_H

#include "dynvram_graph.h"

#include "core/internal.h"

#define DV__G_ALIGN DV_GRAPH_ALIGNMENT
#define DV__G_MAX_DEPTH 1024u
#define DV__G_MAX_NAME 255u
#define DV__G_MAX_VARIANTS 64u
#define DV__G_DEFAULT_VARIANTS 4u
#define DV__G_DEFAULT_PAGE (2ull << 20)
#define DV__G_MAX_PAGE (1ull << 30)
#define DV__G_DEFAULT_ARENA_PAGES 32768ull
#define DV__G_MAX_SIZE (1ull << 48)
#define DV__G_NO_SEQ UINT64_MAX

typedef struct dv__gev dv__gev_t;

/* Live bytes [a, b) of one range in one physical page. */
typedef struct dv__gspan {
    uint32_t a, b;
} dv__gspan_t;

typedef struct dv__gpage {
    dv_hal_mem_t mem;
    uint32_t maps;     /* virtual pages mapped onto it */
    uint32_t n, cap;   /* live spans */
    dv__gspan_t *span; /* sorted by a, disjoint */
} dv__gpage_t;

/* A free run of virtual pages in an arena. */
typedef struct dv__gext {
    uint64_t at, n;
} dv__gext_t;

typedef struct dv__garena {
    uint64_t base;
    uint64_t pages;             /* virtual pages; 0 once unreserved */
    struct dv__grange **first;  /* the range whose first page is i */
    dv__gext_t *ext;            /* free runs, sorted by `at` */
    uint32_t next, cap;
    uint32_t nranges;           /* ranges holding pages of it */
} dv__garena_t;

typedef struct dv__grange {
    uint64_t va;      /* the address handed out */
    uint64_t size;    /* bytes requested */
    uint64_t bytes;   /* size rounded up to DV__G_ALIGN: what it occupies */
    uint64_t serial;  /* never reused: FREE events name ranges by it */
    uint64_t owner;   /* serial of the scope pass holding it; 0 = rogue */
    uint64_t first;   /* its first virtual page in the arena */
    uint64_t zseq;    /* zombie: done once this seq of zslot is */
    uint32_t zslot;   /* zombie: stream slot, or DV__NO_STREAM */
    uint32_t arena;
    uint32_t npages;
    uint32_t mapped;  /* leading virtual pages mapped */
    uint32_t off;     /* va - address of its first virtual page */
    uint32_t *pages;  /* physical page of each virtual page */
    dv__gev_t *ev;    /* its ALLOC event; NULL when dropped */
    struct dv__grange *lprev, *lnext; /* live list */
    struct dv__grange *aprev, *anext; /* every range of the graph */
    uint8_t live;
    uint8_t zombie;
    uint8_t unseq;    /* live, and its free is in no pass's sequence: a
                         capture stepped over its recorded free */
} dv__grange_t;

enum { DV__GEV_ROOT, DV__GEV_ALLOC, DV__GEV_FREE, DV__GEV_PUSH };

struct dv__gev {
    dv__gev_t *next;     /* first event that followed this one */
    dv__gev_t *alt;      /* next variant at the same point */
    uint64_t used;       /* graph clock at the last match (for the limit) */
    uint64_t size;       /* ALLOC: bytes requested */
    uint64_t serial;     /* FREE: the range freed */
    uint64_t path;       /* ROOT: path hash of the scope's last pass */
    dv__grange_t *range; /* ALLOC */
    char *name;          /* PUSH: the nested scope's name ("" = unnamed) */
    dv__gev_t *child;    /* PUSH: the nested scope's ROOT */
    uint8_t kind;
    uint8_t ends;        /* a pass ended right after this event */
    uint8_t path_known;  /* ROOT: `path` is from a pass that completed */
};

/* An outermost scope's recording. */
typedef struct dv__gtop {
    char *name;
    dv__gev_t *root;
} dv__gtop_t;

/* One open scope: the pass in progress. */
typedef struct dv__gframe {
    dv__gev_t *root;
    dv__gev_t *pos;     /* the last event matched or recorded */
    const char *name;   /* owned by the PUSH event or the dv__gtop_t */
    uint64_t serial;    /* owner of the allocations it makes */
    uint64_t path;      /* hash of the events it went through */
    uint8_t recording;  /* it left its recording: events are appended */
    uint8_t broke;      /* ... at a point that had a recording */
    uint8_t changed;    /* it or a nested pass recorded, or took another path */
    uint8_t lost;       /* it needed to record inside a capture of the
                           graph's stream: the rest of it bypasses the graph
                           and leaves the recording as it was */
    uint8_t captured;   /* a capture pass: tolerant (see "Capture") */
    char why[512];      /* the first difference, for DV_ERROR_GRAPH_BREAK */
} dv__gframe_t;

struct dv__graph {
    uint64_t handle; /* the public dv_graph_t * value */
    dv__dev_t *dev;
    dv__graph_t *gnext; /* the device's list */
    void *stream;
    uint64_t page_size;
    uint32_t page_shift;
    uint32_t flags;
    uint32_t max_variants;
    uint32_t paused;
    uint64_t arena_pages;

    dv__gpage_t *pages;
    uint32_t npages, pcap;
    dv__garena_t *arenas;
    uint32_t narenas, acap;

    dv__gtop_t *tops;
    uint32_t ntops, tcap;
    dv__gev_t *orphans; /* scopes pushed by lost passes (linked by alt) */
    dv__gframe_t *frames;
    uint32_t depth, fcap;

    dv__grange_t *live;    /* live ranges, newest first */
    dv__grange_t *all;     /* every range (recorded, orphans, zombies) */
    uint64_t nzombies;     /* dropped ranges awaiting their unmap */
    uint64_t mapped_pages; /* virtual pages mapped, all ranges */
    uint64_t clock;        /* bumps at every match (variant recency) */
    uint64_t serial;       /* last serial handed out (ranges, passes) */
    dv_graph_stats_t st;   /* counters; sizes are filled on query */

    /* The debug trace (dv_graph_trace): a ring of the last trcap events. */
    dv_graph_event_t *trace;
    uint32_t trcap, trlen, trhead; /* capacity, events held, next slot */
    uint64_t trseq;                /* events traced since it was enabled */
};

/* ---- graph.c ---- */
/* Both handles resolved and the graph on that device (two table lookups),
 * else the error naming the kind of handle passed. */
dv_result_t dv__graph_get(dv_device_t *dh, dv_graph_t *gh, const char *fn,
                          dv__dev_t **dev, dv__graph_t **graph);
/* Append ev to the debug trace, if on (seq, depth, scope and the capture
 * flags are filled here). */
void dv__gtrace(dv__dev_t *dev, dv__graph_t *g, dv_graph_event_t *ev);

/* ---- graph_mem.c: physical pages, live bytes, placement ---- */
/* A new range of `size` bytes placed on physical bytes that are not live
 * (creating pages within the budget, evicting weight pages if need be),
 * mapped, and live. On failure nothing changed. */
dv_result_t dv__gmem_place(dv__dev_t *dev, dv__graph_t *g, uint64_t size,
                           dv__grange_t **out);
/* May recorded range r be handed out now (no byte of it live)? */
int dv__gmem_fits(const dv__graph_t *g, const dv__grange_t *r);
/* Make r live (its spans, the live list). DV_ERROR_OUT_OF_HOST_MEMORY
 * leaves it as it was. */
dv_result_t dv__gmem_take(dv__graph_t *g, dv__grange_t *r);
/* r is freed: its bytes are free again. An orphan becomes a zombie. */
void dv__gmem_release(dv__dev_t *dev, dv__graph_t *g, dv__grange_t *r);
/* The range handed out at `ptr` (live or not), or NULL; *inside tells
 * whether ptr lies in the graph's address space at all. */
dv__grange_t *dv__gmem_find(const dv__graph_t *g, uint64_t ptr, int *inside);
dv_result_t dv__gmem_check(const dv__dev_t *dev, const dv__graph_t *g);
/* Free the host memory of the model (after teardown). */
void dv__gmem_free(dv__graph_t *g);

/* ---- graph_space.c: address space, mapping, zombies, teardown ---- */
/* Virtual pages for r->npages (r->arena, r->first), reserving an arena
 * when none has room. */
dv_result_t dv__gspace_alloc(dv__dev_t *dev, dv__graph_t *g, dv__grange_t *r);
/* Give r's virtual pages back (none mapped). */
void dv__gspace_give(dv__graph_t *g, dv__grange_t *r);
/* Address of r's virtual page i. */
uint64_t dv__gspace_page_va(const dv__graph_t *g, const dv__grange_t *r,
                            uint32_t i);
/* Map r's pages from r->mapped on (evict-and-retry on out of memory);
 * unmap them from the top down. Both can be resumed after a failure. */
dv_result_t dv__gspace_map(dv__dev_t *dev, dv__graph_t *g, dv__grange_t *r);
dv_result_t dv__gspace_unmap(dv__dev_t *dev, dv__graph_t *g, dv__grange_t *r);
/* Put r on / take it off (freeing it) the graph's list of ranges. */
void dv__gspace_link(dv__graph_t *g, dv__grange_t *r);
void dv__gspace_discard(dv__graph_t *g, dv__grange_t *r);
/* r's ALLOC event is gone: a zombie now, or an orphan while live. */
void dv__gspace_drop(dv__dev_t *dev, dv__graph_t *g, dv__grange_t *r);
/* An orphan was freed: a zombie now. */
void dv__gspace_orphan_freed(dv__dev_t *dev, dv__graph_t *g, dv__grange_t *r);
/* Unmap the zombies whose work has finished (may record and query a
 * fence, never waits). */
void dv__gspace_reap(dv__dev_t *dev, dv__graph_t *g);
/* Refuse (DV_ERROR_BUSY) while the graph's stream is being captured,
 * else wait for the work queued on it so far. */
dv_result_t dv__gspace_quiesce(dv__dev_t *dev, dv__graph_t *g);
/* After dv__gspace_quiesce and with every recording dropped: unmap,
 * release and unreserve everything. Can be repeated after a failure. */
dv_result_t dv__gspace_teardown(dv__dev_t *dev, dv__graph_t *g);
/* Bytes mapped and reserved, for the stats. */
void dv__gspace_sizes(const dv__graph_t *g, uint64_t *mapped,
                      uint64_t *reserved);

/* ---- graph_record.c ---- */
/* The scope entered by a push named `name` from frame f (NULL: outermost):
 * *root is its recording; *lost is set when the nested pass must bypass
 * the graph (f is lost, or a capture pass met a scope it has no recording
 * of). */
dv_result_t dv__grec_push(dv__dev_t *dev, dv__graph_t *g, dv__gframe_t *f,
                          const char *name, dv__gev_t **root,
                          const char **stored_name, int *lost);
/* An allocation in frame f: a replay or a new range (*outcome:
 * DV_GRAPH_OUT_REPLAYED or _RECORDED), or DV_OFFLOADED inside a capture
 * (*outcome: _SKIPPED, the pass goes on replaying, or _BYPASSED, it is
 * lost). */
dv_result_t dv__grec_alloc(dv__dev_t *dev, dv__graph_t *g, dv__gframe_t *f,
                           uint64_t size, dv__grange_t **out,
                           uint32_t *outcome);
/* A free of r in frame f (r stays live: the caller releases it). Always
 * DV_OK; *outcome: DV_GRAPH_OUT_REPLAYED (it matched), _RECORDED, _SKIPPED
 * (a capture pass took it out of sequence) or _UNSEQUENCED (no host memory
 * to record it: the pass is lost). */
dv_result_t dv__grec_free(dv__dev_t *dev, dv__graph_t *g, dv__gframe_t *f,
                          const dv__grange_t *r, uint32_t *outcome);
/* The pass of f ends here. */
void dv__grec_end(dv__dev_t *dev, dv__graph_t *g, dv__gframe_t *f);
/* Is the graph's stream being captured (recording must not call the
 * driver)? One backend query (stream_is_capturing). */
int dv__grec_capturing(dv__dev_t *dev, const dv__graph_t *g);
/* The most recently used path of the recording under `root` (nested
 * scopes followed), as events; returns how many there are (at most `max`
 * are written). */
uint32_t dv__grec_describe(const dv__gev_t *root, dv_graph_event_t *out,
                           uint32_t max);
/* Drop every recording of the graph (its ranges become zombies). */
void dv__grec_drop_all(dv__dev_t *dev, dv__graph_t *g);

#endif /* DV_CORE_GRAPH_H */
