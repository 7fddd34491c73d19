/*
 * model.h - the model-based random API-sequence tester of dynvram (issue 9).
 * SPDX-License-Identifier: Apache-2.0
 *
 * Contract. A sequence drives every public call of dynvram.h on the host
 * backend (real virtual memory, simulated capacity of a few pages, tiny
 * pages including a size that is not a power of two) from one choice source:
 * a seeded PRNG (dv_model) or the bytes of a fuzzer input (dv_model_fuzz),
 * so a seed or an input reproduces the same calls. The tester keeps a model
 * of what the library must hold (residency, pins, generations, watermarks,
 * priority order, pool, framework bytes, counters) and after every call
 * checks that:
 *  - dv_device_check() is DV_OK on every open device;
 *  - the result is in the set include/dynvram.h documents for that call,
 *    and equals the model's prediction where the policy makes it exact;
 *  - an error changed nothing observable and left a message;
 *  - observed state (dv_vbar_get_info, dv_vbar_residency,
 *    dv_vbar_generations, dv_device_get_stats) equals the model, exactly
 *    where README's "The policy, exactly" makes it checkable and within
 *    bounds (mt_loose_fault) where it depends on fence timing;
 *  - pinned pages are never evicted, and pages whose generation did not
 *    change still hold the bytes written after their last population.
 * A broken check prints the seed, the check's name, the call number and the
 * last calls, and ends the process with status 1 (abort() under the fuzzer).
 *
 * Cross-file names of the tester start with mt_; everything else is static.
 */
#ifndef DV_MODEL_H
#define DV_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "dynvram.h"
#include "dynvram_graph.h"
#include "dynvram_host.h"
#include "dynvram_io.h"
#include "dynvram_stream.h"

#define MT_DEVS 3         /* device slots of one sequence */
#define MT_VBARS 4        /* VBAR slots per device */
#define MT_PAGES 12       /* most pages in one VBAR */
#define MT_STREAMS 2      /* created-stream slots per device */
#define MT_GRAVE 6        /* dead handles remembered per kind */
#define MT_LINE 200       /* one trace line */
#define MT_PAGE_MAX 16384 /* largest page size a sequence uses */
#define MT_GRAPHS 2       /* allocation-graph slots per device */
#define MT_GLIVE 12       /* live allocations tracked per graph */
#define MT_GDEPTH 3       /* scopes a graph's sequence opens at most */
#define MT_REGS 8         /* registrations of a host buffer the model keeps */
#define MT_FILES 3        /* model-file slots of a sequence (no device's) */

/* ---- choice source (model_core.c) ---- */
typedef struct mt_src {
    uint64_t state;      /* PRNG state (splitmix64) when data is NULL */
    const uint8_t *data; /* fuzzer input, or NULL */
    size_t size, pos;
    int exhausted; /* the input ran out: the sequence ends */
    /* Recording (dv_model --record): every choice of the PRNG, as the bytes
     * a fuzzer input needs to make the same choice; NULL when off. */
    uint8_t *rec;
    size_t rec_len, rec_cap;
    int recording;
} mt_src_t;

void mt_src_seed(mt_src_t *s, uint64_t seed);
/* Start recording the choices of a seeded source (a choice of n > 65536
 * values is then drawn from the first 65536, as an input can give). */
void mt_src_record(mt_src_t *s);
void mt_src_bytes(mt_src_t *s, const uint8_t *data, size_t size);
/* A value in [0, n); n >= 1. */
uint64_t mt_pick(mt_src_t *s, uint64_t n);
/* 1 with probability pct / 100. */
int mt_chance(mt_src_t *s, unsigned pct);

/* ---- the model ---- */

/* Stream ids: what a page's last unpin was queued on. */
#define MT_NO_STREAM 0u   /* never unpinned since population */
#define MT_NULL_STREAM 1u /* the NULL stream: never pending */

typedef struct mt_page {
    uint8_t resident;
    uint32_t pins;   /* the tester's own pins: exact */
    uint64_t gen;    /* population stamp, 0 when absent */
    uint64_t token;  /* content written after the last population, 0 none */
    uint32_t stream; /* id of the stream of the last unpin */
} mt_page_t;

typedef struct mt_vbar {
    dv_vbar_t *h; /* NULL: free slot */
    int name;     /* for the trace: v<name> */
    uint64_t base, size, pages;
    uint64_t wm, limit; /* in pages */
    mt_page_t pg[MT_PAGES];
    /* watermark recovery (model_recovery.c) */
    uint64_t pass, cursor, lost_pass, rise_after, risen_from;
    uint64_t fw_peak_cur, fw_peak_prev;
    uint32_t backoff;
    uint8_t wm_explicit;
    uint8_t unsure, unsure_reset; /* see model_recovery.c */
    uint64_t unsure_pass;
} mt_vbar_t;

typedef struct mt_stream {
    void *h; /* NULL: free slot */
    uint32_t id;
} mt_stream_t;

/* The host I/O objects of one device (model_io.c): at most one of each. */
typedef struct mt_io {
    dv_devbuf_t *db;          /* NULL: none */
    uint64_t db_max, db_size; /* bytes (max rounded up to pages) */
    uint64_t db_pages;        /* mapped pages, counted in `used` */
    dv_hostbuf_t *hb;         /* NULL: none */
    uint64_t hb_max, hb_size, hb_committed;
    uint32_t nregs; /* registrations, sorted by offset */
    uint64_t reg_off[MT_REGS], reg_size[MT_REGS];
    dv_reader_t *rd; /* NULL: none */
    uint64_t rd_ring; /* bytes of its staging ring (registered with the host
                         backend), made by its first read to device memory;
                         0 before */
    uint64_t rd_ring_want; /* slots x chunk: what that ring will be */
} mt_io_t;

/* A model file (model_file.c): files belong to no device. Either the
 * process's model file (MT_IO_FILE_SIZE bytes) or an empty one, opened by
 * path or from a native handle the tester closes right after. */
typedef struct mt_file {
    dv_file_t *h; /* NULL: free slot */
    int name;     /* for the trace: f<name> */
    int empty;    /* the empty file */
    int native;   /* opened with dv_file_open_native */
    uint64_t size;
    const void *map; /* dv_file_map's address (NULL before, or empty) */
    int mapped;      /* dv_file_map succeeded once */
    uint64_t bounces;
    uint64_t ino, devno; /* the file on disk, to check info.native */
} mt_file_t;

/* An allocation graph (model_graph.c). Its logical state is exact; which
 * physical pages a recording creates is observed (placement is not
 * modelled) and each page is then charged to the model's budget the way the
 * core does it, so the device's counters stay exact. */
typedef struct mt_galloc {
    uint64_t ptr, size, owner, token;
} mt_galloc_t;

typedef struct mt_graph {
    dv_graph_t *h; /* NULL: free slot */
    int name;
    void *stream;
    uint32_t sid;
    uint64_t ps;
    int depth;
    int names[MT_GDEPTH];      /* 0 unnamed, 1 "a", 2 "b" */
    uint64_t serial[MT_GDEPTH]; /* the pass of each open scope */
    uint32_t paused;
    mt_galloc_t live[MT_GLIVE];
    int nlive;
    uint64_t dead[4]; /* addresses freed, not handed out again since */
    uint64_t allocs, frees, bypassed, unknown, rogues, rogue_bytes, used, peak;
    uint64_t judged; /* passes closed by pop or iterate */
    uint64_t phys;   /* physical bytes, as observed */
    uint64_t next_serial;
    uint8_t tops_seen; /* bit n: an outermost scope names[n] was opened */
} mt_graph_t;

/* What the model knows of the core's count of pages waiting to be reaped
 * (unpinned above a lowered watermark while their stream was busy). */
enum { MT_REAP_ZERO, MT_REAP_POSITIVE, MT_REAP_UNKNOWN };

typedef struct mt_dev {
    dv_device_t *h; /* NULL: free slot */
    int name;
    dv_device_options_t o;
    char bopts[48]; /* o.backend_options: the simulated capacity */
    uint64_t ps, cap, pool_limit; /* page size, capacity, pool limit (pages) */
    mt_vbar_t vb[MT_VBARS];
    int order[MT_VBARS]; /* priority list: order[0] is the top, slot indices */
    int nvb;
    uint64_t gen;         /* last population stamp handed out */
    uint64_t pool;        /* pooled pages */
    uint64_t fw;          /* framework bytes */
    dv_device_stats_t st; /* expected counters (sizes are derived) */
    int reap;
    int recovery; /* watermark recovery on */
    mt_stream_t s[MT_STREAMS];
    mt_io_t io;
    mt_graph_t g[MT_GRAPHS];
    uint64_t graph_bytes; /* physical pages of its graphs */
    /* set before each call (mt_pre_call) */
    int busy;                  /* a stream of the device had pending work */
    uint64_t evictions_before; /* expected evictions counter then */
} mt_dev_t;

/* Streaming schedules (model_sched.c): a device of their own, checked by
 * rules (see that file). */
#define MT_SUSES 12  /* uses of a schedule */
#define MT_SRANGES 8 /* distinct ranges */
typedef struct mt_sworld {
    dv_device_t *dev; /* NULL until the first schedule op */
    char bopts[48];
    int name;
    dv_vbar_t *vbar, *low; /* the scheduled VBAR, a lower-priority one */
    uint64_t vbase;        /* the scheduled VBAR's address */
    dv_schedule_t *s;      /* NULL: none now */
    uint64_t count, next;  /* uses; the next one in order */
    dv_schedule_range_t rg[MT_SUSES];
    uint8_t held[MT_SUSES]; /* 0 free, 1 held in a ring slot, 2 resident */
    uint8_t *src;          /* the ranges' bytes */
    void *stream;          /* a host stream, or NULL */
    uint64_t fw;           /* framework bytes reserved */
    dv_schedule_t *dead[4];
    int n_dead;
} mt_sworld_t;

typedef struct mt_world {
    mt_src_t src;
    uint64_t seed;
    uint64_t calls, max_calls;
    int dead_handles; /* use dead / junk handles (needs the handle registry) */
    int clear_check;  /* a successful call leaves dv_last_error() empty */
    int fuzz;         /* failures abort() */
    int trace_lines;
    int verbose;
    int thread; /* -1 single-threaded, else thread index */
    mt_dev_t d[MT_DEVS];
    mt_sworld_t sw;
    int next_name;
    uint32_t next_stream;
    dv_vbar_t *dead_vbar[MT_GRAVE];
    dv_device_t *dead_dev[MT_GRAVE];
    void *dead_stream[MT_GRAVE];
    int n_dead_vbar, n_dead_dev, n_dead_stream;
    mt_file_t f[MT_FILES];
    dv_file_t *dead_file[MT_GRAVE];
    int n_dead_file;
    /* Process-wide counters of the host backend (dynvram_host.h), as they
     * were when the sequence began and before the current op. */
    uint64_t reg_count0, reg_bytes0; /* dv_host_registrations at the start */
    uint64_t hfw0;      /* dv_host_fence_waits() before the op */
    uint64_t hpending0; /* units pending on the devices' streams then */
    uint64_t dfw0;      /* the devices' fence_waits counters then, summed */
    /* per-call slack, set by the op before mt_check_all */
    uint64_t fence_slack;
    /* statistics of the run */
    uint64_t n_strict, n_loose, n_errors_checked, n_verified_pages;
    uint64_t n_at_wm, n_slow_ok, n_slow_off, n_slow_evicting, n_rises;
    uint64_t op_count[64];
    dv_device_stats_t seen; /* counters of closed devices, summed */
    /* the trace ring */
    char trace[64][MT_LINE];
    uint64_t trace_n;
    char pending[MT_LINE]; /* the call being made */
    char repro[MT_LINE];   /* how to run this sequence again */
    uint64_t token_seq;    /* content tokens (not drawn from the source) */
    /* reap candidates whose stream was busy when a fault began */
    uint8_t reap_busy[MT_VBARS][MT_PAGES];
    uint64_t buf[MT_PAGE_MAX / 8];
} mt_world_t;

/* ---- trace and failures (model_core.c) ---- */
/* Describe the call about to be made (printf-style); it enters the trace. */
void mt_call(mt_world_t *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Append the result to the current call's trace line. */
void mt_ret(mt_world_t *w, dv_result_t r);
/* A broken check: report and end the process. Never returns. */
void mt_fail(mt_world_t *w, const char *check, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));
/* Install crash handlers that print the trace of the current world. */
void mt_install_crash_report(mt_world_t *w);
void mt_print_trace(const mt_world_t *w);

/* The documented results of each entry point. */
typedef enum mt_fn {
/* clang-format off */
#define MT_FN_LIST(X)                                                          \
    X(FAULT) X(UNPIN) X(VBAR_CREATE) X(VBAR_DESTROY) X(VBAR_INFO)              \
    X(VBAR_PRIO) X(VBAR_WM) X(VBAR_EVICT) X(VBAR_RESIDENCY) X(VBAR_GENS)       \
    X(FW_RESERVE) X(FW_RELEASE) X(FW_EVICT) X(DEV_SIMPLE) X(DEV_STATS)         \
    X(DEV_CHECK) X(DEV_OPEN) X(DEV_CLOSE) X(DEV_CAPS) X(STREAM) X(COPY)        \
    X(HOST_REG) X(PROBE) X(HOST_HOOK) X(HOSTBUF) X(DEVBUF) X(READER)          \
    X(READ) X(GRAPH_CREATE) X(GRAPH_DESTROY) X(GRAPH_SCOPE) X(GRAPH_POP)       \
    X(GRAPH_PAUSE) X(GRAPH_STREAM) X(GRAPH_ALLOC) X(GRAPH_FREE) X(GRAPH_STATS) \
    X(GRAPH_DEBUG) X(SCHED) X(FILE)
/* clang-format on */
#define MT_FN_ENUM(n) MT_FN_##n,
    MT_FN_LIST(MT_FN_ENUM)
#undef MT_FN_ENUM
        MT_FN_COUNT
} mt_fn_t;
/* Fails unless r is documented for fn; errors must leave a message and
 * (with clear_check) a success must leave none. */
void mt_check_result(mt_world_t *w, mt_fn_t fn, dv_result_t r);
/* mt_check_result, then r must equal the model's prediction. */
void mt_expect(mt_world_t *w, mt_fn_t fn, dv_result_t r, dv_result_t want);

/* ---- observation and comparison (model_observe.c) ---- */
/* The budget the library must report for the model's state. */
uint64_t mt_budget(const mt_dev_t *d);
uint64_t mt_resident_pages(const mt_dev_t *d);
uint64_t mt_used(const mt_dev_t *d);
/* Framework and device-buffer bytes: what watermark recovery plans for. */
uint64_t mt_outside(const mt_dev_t *d);
/* Before each call: note which devices have busy streams. */
void mt_pre_call(mt_world_t *w);
/* Compare everything observable of every open device with the model
 * (exactly), check invariants and sampled contents. */
void mt_check_all(mt_world_t *w);
/* Compare one device with the model, then (full) verify every resident
 * page's content. */
void mt_check_dev(mt_world_t *w, mt_dev_t *d, int full);
/* Read the library's per-page state of one VBAR. */
void mt_read_pages(mt_world_t *w, mt_dev_t *d, mt_vbar_t *v, uint8_t *flags,
                   uint64_t *gens);
/* Fill page i with a fresh pattern (direct stores or dv_copy_h2d). */
void mt_write_page(mt_world_t *w, mt_dev_t *d, mt_vbar_t *v, uint64_t i);
/* Verify page i's content against its token (all of it or samples). */
void mt_verify_page(mt_world_t *w, mt_dev_t *d, mt_vbar_t *v, uint64_t i,
                    int full);
uint64_t mt_pattern_word(uint64_t token, uint64_t word);
/* Pending work on a stream (by id): 0 for the NULL stream and dead ones. */
int mt_stream_busy(mt_world_t *w, mt_dev_t *d, uint32_t id);

/* ---- the reference policy (model_policy.c) ---- */
typedef struct mt_pref {
    int v;      /* VBAR slot */
    uint64_t i; /* page */
} mt_pref_t;
/* Eviction order (README "The policy, exactly"): VBARs from the bottom of
 * the list up to `self` (excluded), then self's pages >= floor; top-down,
 * never pinned, never below the watermark limit. self -1: every VBAR. */
int mt_victims(const mt_dev_t *d, int self, uint64_t floor, mt_pref_t *out,
               int max);
/* Evict page (v, i) in the model: to the pool or released. */
void mt_evict_page(mt_dev_t *d, int v, uint64_t i, int to_pool,
                   int lower_watermark);
/* Release pooled pages while pool > keep or used > budget. */
void mt_pool_trim(mt_dev_t *d, uint64_t budget, uint64_t keep);
/* Is (v, i) resident, unpinned, at or above its watermark: a page the core
 * may reap in a populating fault? */
int mt_reap_candidate(const mt_dev_t *d, int v, uint64_t i);
/* Predict a populating fault of pages [first, last] of slot v (may_evict 0:
 * a recovery rise, which never evicts). Returns the predicted result and
 * updates the model; *exact is 0 when fence timing makes the prediction
 * uncertain (the model is then unchanged and mt_loose_fault checks the
 * observation instead). */
dv_result_t mt_predict_fault_slow(mt_world_t *w, mt_dev_t *d, int v,
                                  uint64_t first, uint64_t last, int may_evict,
                                  int *exact);
/* Check an uncertain populating fault against the rules and adopt what was
 * observed. `before` is the model before the call; may_evict 0 allows no
 * victims; reap_ran 0 when the core may not have reached its reap. */
void mt_loose_fault(mt_world_t *w, mt_dev_t *d, const mt_dev_t *before, int v,
                    uint64_t first, uint64_t last, dv_result_t r, int may_evict,
                    int reap_ran);
/* Before a fault: note which reap candidates have a busy stream. */
void mt_note_reap_busy(mt_world_t *w, mt_dev_t *d);
/* Framework reclaim of `need` bytes in the model; returns bytes freed. */
uint64_t mt_reclaim(mt_dev_t *d, uint64_t need);

/* ---- watermark recovery (model_recovery.c) ---- */
/* How many devices the host backend has (DYNVRAM_HOST_DEVICES, default 4). */
int mt_host_devices(void);
/* DYNVRAM_WATERMARK_RECOVERY's default, as the core reads it. */
int mt_recovery_default(void);
void mt_rec_init(mt_vbar_t *v);
/* Every fault with a valid range: a fault below the last starts a pass. */
void mt_rec_note_fault(mt_dev_t *d, mt_vbar_t *v, uint64_t first);
/* Pressure or dv_vbar_evict took page i. */
void mt_rec_note_loss(mt_vbar_t *v, uint64_t i);
/* The model cannot tell whether v lost a page: check v by the rules. */
void mt_rec_unsure(mt_vbar_t *v);
/* dv_framework_reserve counted more framework bytes. */
void mt_rec_note_framework(mt_dev_t *d);
/* prioritize (0) or set_watermark (1). */
void mt_rec_reset(mt_vbar_t *v, int explicit_watermark);
/* A fault of [first, last] at or above the watermark of slot s. */
dv_result_t mt_rec_predict(mt_world_t *w, mt_dev_t *d, int s, uint64_t first,
                           uint64_t last, int *exact);
/* Check such a fault by the rules when the prediction was not exact. */
void mt_rec_loose(mt_world_t *w, mt_dev_t *d, const mt_dev_t *before, int s,
                  uint64_t first, uint64_t last, dv_result_t r, int tried);

/* ---- operations (model_ops.c, model_devops.c, model_bad.c) ---- */
typedef void (*mt_op_fn)(mt_world_t *w);
typedef struct mt_op {
    const char *name;
    mt_op_fn fn;
    unsigned weight;
} mt_op_t;
extern const mt_op_t mt_vbar_ops[], mt_dev_ops[], mt_bad_ops[], mt_step_ops[],
    mt_io_ops[], mt_graph_ops[], mt_sched_ops[];
extern const int mt_vbar_op_count, mt_dev_op_count, mt_bad_op_count,
    mt_step_op_count, mt_io_op_count, mt_graph_op_count, mt_sched_op_count;
/* Free every graph of d (abort, free, destroy), checked. */
void mt_graphs_teardown(mt_world_t *w, mt_dev_t *d);
/* Compare a graph's counters and live allocations with the model. */
void mt_check_graphs(mt_world_t *w, mt_dev_t *d);
/* Destroy the schedule device's objects, checked (end of a sequence). */
void mt_sched_teardown(mt_world_t *w);
/* Name of op `index` of the op tables in order (NULL past the end). */
const char *mt_op_name(int index);

/* Helpers shared by the op files. */
mt_dev_t *mt_any_dev(mt_world_t *w);                /* an open device or NULL */
mt_vbar_t *mt_any_vbar(mt_world_t *w, mt_dev_t *d); /* a live VBAR or NULL */
int mt_vslot(const mt_dev_t *d, const mt_vbar_t *v);
int mt_rank(const mt_dev_t *d, int slot);
void mt_list_remove(mt_dev_t *d, int slot);
void mt_list_push(mt_dev_t *d, int slot, int top);
/* A byte range over pages of v, mostly page-aligned, sometimes ragged. */
void mt_pick_range(mt_world_t *w, const mt_dev_t *d, const mt_vbar_t *v,
                   uint64_t *off, uint64_t *size);
void mt_page_span(const mt_dev_t *d, uint64_t off, uint64_t size,
                  uint64_t *first, uint64_t *last);
mt_stream_t *mt_find_stream(mt_dev_t *d, uint32_t id);
/* A stream for a call: NULL, or one of the device's created streams. */
void *mt_pick_stream(mt_world_t *w, mt_dev_t *d, uint32_t *id);
void mt_open_device(mt_world_t *w, int slot);
void mt_close_device(mt_world_t *w, mt_dev_t *d, int expect_busy);
void mt_destroy_vbar(mt_world_t *w, mt_dev_t *d, mt_vbar_t *v);
void mt_create_vbar(mt_world_t *w, mt_dev_t *d);
/* Checked calls the step patterns (model_steps.c) are made of. */
dv_result_t mt_fault_range(mt_world_t *w, mt_dev_t *d, mt_vbar_t *v,
                           uint64_t off, uint64_t size);
void mt_unpin_range(mt_world_t *w, mt_dev_t *d, mt_vbar_t *v, uint64_t off,
                    uint64_t size, void *stream, uint32_t sid);
void mt_prioritize(mt_world_t *w, mt_dev_t *d, mt_vbar_t *v, int top);
void mt_evict_bytes(mt_world_t *w, mt_dev_t *d, mt_vbar_t *v, uint64_t bytes);
void mt_unpin_all(mt_world_t *w, mt_dev_t *d);
void mt_grave_vbar(mt_world_t *w, dv_vbar_t *h);
void mt_grave_dev(mt_world_t *w, dv_device_t *h);
void mt_grave_stream(mt_world_t *w, void *h);
/* Destroy d's host I/O objects, checked (before closing d). */
void mt_io_teardown(mt_world_t *w, mt_dev_t *d);
/* Compare d's host I/O objects with the model. */
void mt_io_check(mt_world_t *w, mt_dev_t *d);
/* The file of the process that reads come from (made on first use) and
 * its byte at each offset (model_io.c). */
#define MT_IO_FILE_SIZE (3u * 16384u + 777u)
dv_file_t *mt_io_file(mt_world_t *w);
uint8_t mt_io_fbyte(uint64_t off);
/* The path of that file. */
const char *mt_io_path(mt_world_t *w);
/* Reads and bad host I/O calls (model_ioread.c). */
void mt_op_io_read(mt_world_t *w);
void mt_op_io_bad(mt_world_t *w);
/* A read of `file` (`size` bytes, the model file's bytes when not 0) into
 * a host buffer of some device, predicted and its bytes verified; nothing
 * when no device has a host buffer. */
void mt_io_read_file(mt_world_t *w, dv_file_t *file, uint64_t size);
/* Model files (model_file.c): opening by path and native handle, map,
 * bounce, mark cold, info, close, and their bad input. */
void mt_op_file(mt_world_t *w);
void mt_op_file_bad(mt_world_t *w);
/* Compare every live model file with the model. */
void mt_files_check(mt_world_t *w);
/* Close every model file, checked (end of a sequence). */
void mt_files_teardown(mt_world_t *w);
/* The process-wide host counters (registrations, fence waits) against
 * the model: after every op's checks; rebase after calls the model does
 * not count (the schedule device's). */
void mt_host_counters_check(mt_world_t *w);
void mt_host_counters_rebase(mt_world_t *w);

/* ---- sequences (model_seq.c) ---- */
void mt_world_init(mt_world_t *w, uint64_t seed);
/* Run one single-threaded sequence; returns the calls made. */
uint64_t mt_run_sequence(mt_world_t *w);

/* ---- threads (model_threads.c) ---- */
typedef struct mt_thread_opts {
    uint64_t seed;
    uint64_t calls; /* per thread */
    int threads;
    int dead_handles;
    int log_calls;   /* threads also set the (global) log level */
    int clear_check; /* a success leaves dv_last_error() empty */
    int trace_lines;
} mt_thread_opts_t;
/* Run one multi-threaded sequence; returns the calls made by all threads. */
uint64_t mt_run_threads(const mt_thread_opts_t *o);

#endif
