/*
 * test_interpose_graph.c - torch-like cudaMallocAsync / cudaFreeAsync
 * through the interposer with an allocation graph bound to the thread: on
 * the graph's stream inside a scope they go to the graph (the fake
 * libcudart never sees them, and a second pass replays the same addresses
 * with no backend call); other streams, paused scopes, allocations out of
 * scopes, synchronous cudaMalloc and unbound threads take the normal path.
 *
 * SPDX-License-Identifier: Apache-2.0
 *
 * The dynvram device is a host device; the graph's stream is a host stream
 * of it, passed to cudaMallocAsync as the cudaStream_t (a real run passes
 * torch's CUstream, which the CUDA backend knows).
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <pthread.h>
#include <string.h>

#include "cudart_abi.h"
#include "dv_interpose.h"
#include "dynvram.h"
#include "dynvram_graph.h"
#include "dynvram_host.h"

cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetLastError(void);
uint64_t dv_fake_cudart_used(void);
uint64_t dv_fake_cudart_async_calls(void);
void *dv_fake_cudart_last_stream(void);
void dv_fake_cudart_set_capacity(uint64_t bytes);
void dv_fake_cudart_set_capturing(cudaStream_t stream, int on);
void dv_fake_cudart_launch(void);
void dv_fake_cudart_graphs_destroy(void);

#define MIB (1ull << 20)

#define OK(call)                                                               \
    do {                                                                       \
        dv_result_t r_ = (call);                                               \
        cr_assert_eq(r_, DV_OK, "%s -> %s (%s)", #call, dv_result_name(r_),    \
                     dv_last_error());                                         \
    } while (0)

static dv_device_t *dev;
static dv_graph_t *graph;
static void *gs;    /* the graph's stream */
static void *other; /* another stream */

static const dv_interpose_api_t api = {
    .version = DV_INTERPOSE_API_VERSION,
    .framework_reserve = dv_framework_reserve,
    .framework_release = dv_framework_release,
    .framework_evict = dv_framework_evict,
    .device_get_stats = dv_device_get_stats,
    .graph_alloc = dv_graph_alloc,
    .graph_free = dv_graph_free,
};

static void setup(void) {
    dv_device_options_t o;
    dv_device_options_init(&o);
    o.backend = "host";
    o.page_size = 2 * MIB;
    o.vram_limit = 64 * MIB;
    OK(dv_device_open(&o, &dev));
    OK(dv_stream_create(dev, &gs));
    OK(dv_stream_create(dev, &other));
    dv_graph_options_t go;
    dv_graph_options_init(&go);
    go.stream = gs;
    OK(dv_graph_create(dev, &go, &graph));
    dv_fake_cudart_set_capacity(1ull << 30);
    cudaSetDevice(0);
    OK(dv_interpose_attach(0, dev, &api));
    OK(dv_interpose_graph_bind(0, graph));
}

static void teardown(void) {
    dv_interpose_graph_bind(0, NULL);
    dv_interpose_detach(0);
    dv_graph_abort(dev, graph);
    dv_graph_destroy(dev, graph);
    dv_stream_destroy(dev, gs);
    dv_stream_destroy(dev, other);
    dv_device_close(dev);
}

static dv_interpose_stats_t ipstats(void) {
    dv_interpose_stats_t st;
    OK(dv_interpose_get_stats(0, &st));
    return st;
}

static dv_graph_stats_t gstats(void) {
    dv_graph_stats_t st;
    OK(dv_graph_get_stats(dev, graph, &st));
    return st;
}

TestSuite(interpose_graph, .init = setup, .fini = teardown);

/* A block as torch runs it: three temporaries on the graph's stream. */
static void block(void *addr[3]) {
    OK(dv_graph_push(dev, graph, "block"));
    cr_assert_eq(cudaMallocAsync(&addr[0], 3 * MIB, gs), DV_CUDA_SUCCESS);
    cr_assert_eq(cudaMallocAsync(&addr[1], 5 * MIB, gs), DV_CUDA_SUCCESS);
    cr_assert_eq(cudaFreeAsync(addr[0], gs), DV_CUDA_SUCCESS);
    cr_assert_eq(cudaMallocAsync(&addr[2], MIB, gs), DV_CUDA_SUCCESS);
    cr_assert_eq(cudaFreeAsync(addr[1], gs), DV_CUDA_SUCCESS);
    cr_assert_eq(cudaFreeAsync(addr[2], gs), DV_CUDA_SUCCESS);
    OK(dv_graph_pop(dev, graph, NULL));
}

Test(interpose_graph, allocations_on_the_graph_stream_go_to_the_graph) {
    uint64_t calls = dv_fake_cudart_async_calls();
    void *a[3], *b[3];
    block(a);
    cr_assert_eq(dv_fake_cudart_async_calls(), calls,
                 "libcudart saw graph allocations");
    cr_assert_eq(dv_fake_cudart_used(), 0);
    dv_graph_stats_t st = gstats();
    cr_assert_eq(st.allocs, 3);
    cr_assert_eq(st.frees, 3);
    uint64_t backend = st.backend_calls;
    block(b);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(a[i], b[i], "pass 2 replays the addresses");
    }
    st = gstats();
    cr_assert_eq(st.backend_calls, backend, "a replay calls no driver");
    cr_assert_eq(st.replays, 1);
    dv_interpose_stats_t is = ipstats();
    cr_assert_eq(is.graph_allocs, 6);
    cr_assert_eq(is.graph_frees, 6);
    cr_assert_eq(is.driver_allocs, 0);
    cr_assert_eq(is.driver_frees, 0);
    /* The graph's pages are in the budget, not framework bytes. */
    dv_device_stats_t ds;
    OK(dv_device_get_stats(dev, &ds));
    cr_assert_eq(ds.framework_bytes, 0);
    cr_assert_eq(ds.graph_bytes, st.physical_bytes);
}

Test(interpose_graph, other_streams_paused_scopes_and_sync_calls_bypass) {
    OK(dv_graph_push(dev, graph, "s"));
    void *p = NULL, *q = NULL, *r = NULL, *s = NULL;
    uint64_t calls = dv_fake_cudart_async_calls();
    cr_assert_eq(cudaMallocAsync(&p, 2 * MIB, other), DV_CUDA_SUCCESS);
    cr_assert_eq(dv_fake_cudart_async_calls(), calls + 1);
    cr_assert_eq(dv_fake_cudart_last_stream(), other, "passed on as it came");
    cr_assert_eq(cudaMalloc(&q, 2 * MIB), DV_CUDA_SUCCESS);
    OK(dv_graph_pause(dev, graph, 0));
    cr_assert_eq(cudaMallocAsync(&r, 2 * MIB, gs), DV_CUDA_SUCCESS);
    OK(dv_graph_resume(dev, graph, 0));
    cr_assert_eq(dv_fake_cudart_used(), 6 * MIB);
    cr_assert_eq(gstats().allocs, 0);
    cr_assert_eq(gstats().bypassed, 2);
    dv_device_stats_t ds;
    OK(dv_device_get_stats(dev, &ds));
    cr_assert_eq(ds.framework_bytes, 6 * MIB, "the normal path budgets them");
    cr_assert_eq(cudaFreeAsync(p, other), DV_CUDA_SUCCESS);
    cr_assert_eq(cudaFree(q), DV_CUDA_SUCCESS);
    cr_assert_eq(cudaFreeAsync(r, gs), DV_CUDA_SUCCESS);
    cr_assert_eq(dv_fake_cudart_used(), 0);
    cr_assert_eq(gstats().unknown_frees, 0, "their frees never reach it");
    OK(dv_graph_pop(dev, graph, NULL));
    /* Out of any scope the graph takes nothing either. */
    cr_assert_eq(cudaMallocAsync(&s, MIB, gs), DV_CUDA_SUCCESS);
    cr_assert_eq(dv_fake_cudart_used(), MIB);
    cr_assert_eq(cudaFreeAsync(s, gs), DV_CUDA_SUCCESS);
    dv_interpose_stats_t is = ipstats();
    cr_assert_eq(is.driver_allocs, 4);
    cr_assert_eq(is.driver_frees, 4);
    cr_assert_eq(is.graph_allocs, 0);
}

static void *free_elsewhere(void *p) {
    /* No graph bound here: the pointer still goes back to its graph. */
    return (void *)(intptr_t)cudaFreeAsync(p, gs);
}

Test(interpose_graph, a_rogue_freed_on_another_thread_goes_back_to_the_graph) {
    void *out = NULL;
    uint64_t calls = dv_fake_cudart_async_calls();
    OK(dv_graph_push(dev, graph, "s"));
    cr_assert_eq(cudaMallocAsync(&out, 3 * MIB, gs), DV_CUDA_SUCCESS);
    OK(dv_graph_pop(dev, graph, NULL));
    cr_assert_eq(gstats().rogues, 1);
    pthread_t t;
    void *ret = (void *)1;
    cr_assert_eq(pthread_create(&t, NULL, free_elsewhere, out), 0);
    pthread_join(t, &ret);
    cr_assert_eq((intptr_t)ret, DV_CUDA_SUCCESS);
    dv_graph_stats_t st = gstats();
    cr_assert_eq(st.used, 0);
    cr_assert_eq(st.rogue_bytes, 0);
    cr_assert_eq(dv_fake_cudart_async_calls(), calls);
}

static void *alloc_unbound(void *arg) {
    void **p = arg;
    return (void *)(intptr_t)cudaMallocAsync(p, MIB, gs);
}

Test(interpose_graph, unbound_threads_and_unbinding_take_the_normal_path) {
    OK(dv_graph_push(dev, graph, "s"));
    void *p = NULL, *q = NULL;
    pthread_t t;
    void *ret = (void *)1;
    cr_assert_eq(pthread_create(&t, NULL, alloc_unbound, &p), 0);
    pthread_join(t, &ret);
    cr_assert_eq((intptr_t)ret, DV_CUDA_SUCCESS);
    cr_assert_eq(dv_fake_cudart_used(), MIB, "one graph per thread");
    OK(dv_interpose_graph_bind(0, NULL));
    cr_assert_eq(cudaMallocAsync(&q, MIB, gs), DV_CUDA_SUCCESS);
    cr_assert_eq(dv_fake_cudart_used(), 2 * MIB);
    cr_assert_eq(gstats().allocs, 0);
    cr_assert_eq(cudaFreeAsync(p, gs), DV_CUDA_SUCCESS);
    cr_assert_eq(cudaFreeAsync(q, gs), DV_CUDA_SUCCESS);
    OK(dv_graph_pop(dev, graph, NULL));
}

Test(interpose_graph, out_of_memory_in_the_graph_answers_like_the_gpu) {
    dv_vbar_t *v = NULL;
    OK(dv_vbar_create(dev, 64 * MIB, &v));
    OK(dv_fault(dev, v, 0, 64 * MIB, NULL)); /* all of the limit, pinned */
    OK(dv_graph_push(dev, graph, "s"));
    void *p = (void *)1;
    cr_assert_eq(cudaMallocAsync(&p, 4 * MIB, gs),
                 DV_CUDA_ERROR_MEMORY_ALLOCATION);
    cr_assert_eq(ipstats().failures, 1);
    cr_assert_eq(dv_fake_cudart_used(), 0, "not passed on to libcudart");
    OK(dv_graph_abort(dev, graph));
    OK(dv_unpin(dev, v, 0, 64 * MIB, NULL));
    OK(dv_vbar_destroy(dev, v));
}

Test(interpose_graph, binding_needs_an_attached_device_and_api_2) {
    cr_assert_eq(dv_interpose_graph_bind(-1, graph), DV_ERROR_INVALID_ARGUMENT);
    cr_assert_eq(dv_interpose_graph_bind(3, graph), DV_ERROR_INVALID_ARGUMENT);
    dv_interpose_api_t v1 = api;
    v1.version = 1; /* a caller built against version 1 */
    OK(dv_interpose_attach(0, dev, &v1));
    cr_assert_eq(dv_interpose_graph_bind(0, graph), DV_ERROR_NOT_SUPPORTED);
    /* The attach ended the old binding: allocations take the normal path. */
    OK(dv_graph_push(dev, graph, "s"));
    void *p = NULL;
    cr_assert_eq(cudaMallocAsync(&p, MIB, gs), DV_CUDA_SUCCESS);
    cr_assert_eq(dv_fake_cudart_used(), MIB);
    cr_assert_eq(cudaFreeAsync(p, gs), DV_CUDA_SUCCESS);
    OK(dv_graph_pop(dev, graph, NULL));
    /* NULL api: dv_graph_alloc and dv_graph_free of libdynvram.so. */
    OK(dv_interpose_attach(0, dev, NULL));
    OK(dv_interpose_graph_bind(0, graph));
}

/* ---- captures, as torch makes them ----------------------------------------- */

/* A CUDA graph capture of the graph's stream begins or ends: libcudart and
 * dynvram's backend both see it. */
static void capture(int on) {
    dv_fake_cudart_set_capturing(gs, on);
    OK(dv_host_stream_set_capturing(gs, on));
}

static void *amalloc(size_t size) {
    void *p = NULL;
    cr_assert_eq(cudaMallocAsync(&p, size, gs), DV_CUDA_SUCCESS);
    return p;
}

static void afree(void *p) {
    cr_assert_eq(cudaFreeAsync(p, gs), DV_CUDA_SUCCESS, "free of %p", p);
}

/* `x = block(x)`: three temporaries, an output that outlives the scope,
 * and the previous output freed last (the old x, when x is rebound). In a
 * capture torch's cudaMallocAsync backend does not free the old x (it was
 * allocated before the capture): it defers that free to the next
 * allocation after the capture. */
static void *torch_block(void *prev, void *addr[4], int captured) {
    addr[0] = amalloc(3 * MIB);
    addr[1] = amalloc(5 * MIB);
    afree(addr[0]);
    addr[2] = amalloc(MIB);
    afree(addr[1]);
    addr[3] = amalloc(2 * MIB); /* the output */
    afree(addr[2]);
    if (prev && !captured) {
        afree(prev);
    }
    return addr[3];
}

/* One step of a two-block model: b0 reads the step's input (allocated
 * once, outside the scopes, like a captured graph's static input), b1 frees
 * b0's output last; the step's output is used, then freed, outside. */
static void torch_step(void *addr[2][4], int step0) {
    for (int b = 0; b < 2; b++) {
        OK(dv_graph_push(dev, graph, b ? "b1" : "b0"));
        void *out = torch_block(b ? addr[0][3] : NULL, addr[b], 0);
        (void)out;
        int changed = 1;
        OK(dv_graph_pop(dev, graph, &changed));
        cr_assert_eq(changed, step0, "block %d", b);
    }
    afree(addr[1][3]);
}

Test(interpose_graph, a_capture_in_a_scope_replays_torchs_eager_sequence) {
    void *inp = amalloc(2 * MIB); /* out of any scope: libcudart's */
    void *eager[2][4], *cap[4], *b0[4];
    torch_step(eager, 1);
    torch_step(eager, 0);
    /* The next step captures b1 inside its scope (b0 runs eagerly). */
    OK(dv_graph_push(dev, graph, "b0"));
    void *prev = torch_block(NULL, b0, 0);
    OK(dv_graph_pop(dev, graph, NULL));
    uint64_t calls = dv_fake_cudart_async_calls();
    dv_interpose_stats_t is0 = ipstats();
    OK(dv_graph_push(dev, graph, "b1"));
    OK(dv_graph_pause(dev, graph, 0)); /* dynvram.torch: capture_begin */
    void *seed = amalloc(8), *offset = amalloc(8); /* the RNG's state */
    OK(dv_graph_resume(dev, graph, 0));
    capture(1);
    OK(dv_graph_note_capture(dev, graph));
    void *out = torch_block(prev, cap, 1);
    capture(0);
    int changed = 1;
    OK(dv_graph_pop(dev, graph, &changed));
    cr_assert_eq(changed, 0, "the capture did not replay");
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(cap[i], eager[1][i], "allocation %d moved", i);
    }
    dv_interpose_stats_t is = ipstats();
    cr_assert_eq(is.driver_allocs - is0.driver_allocs, 2, "only the prologue");
    cr_assert_eq(is.capture_allocs, 0, "libcudart allocated in the capture");
    cr_assert_eq(dv_fake_cudart_async_calls(), calls + 2);
    afree(out);
    /* torch's next allocation after the capture first frees what it
     * deferred: the old x, inside the next step's first scope. */
    OK(dv_graph_push(dev, graph, "b0"));
    afree(prev);
    void *again[4];
    prev = torch_block(NULL, again, 0);
    OK(dv_graph_pop(dev, graph, &changed));
    cr_assert_eq(changed, 0, "the deferred free broke the next scope");
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(again[i], eager[0][i]);
    }
    OK(dv_graph_push(dev, graph, "b1"));
    void *b1[4];
    out = torch_block(prev, b1, 0);
    OK(dv_graph_pop(dev, graph, &changed));
    cr_assert_eq(changed, 0);
    afree(out);
    afree(seed);
    afree(offset);
    afree(inp);
    dv_graph_stats_t st = gstats();
    cr_assert_eq(st.breaks, 0);
    cr_assert_eq(st.used, 0);
    cr_assert_eq(dv_fake_cudart_used(), 0);
}

Test(interpose_graph, an_allocation_new_to_a_capture_goes_to_libcudart_alone) {
    void *eager[4], *cap[4];
    for (int pass = 0; pass < 2; pass++) {
        OK(dv_graph_push(dev, graph, "b"));
        afree(torch_block(NULL, eager, 0));
        OK(dv_graph_pop(dev, graph, NULL));
    }
    dv_interpose_stats_t is0 = ipstats();
    OK(dv_graph_push(dev, graph, "b"));
    capture(1);
    /* Something only the capture allocates, first: libcudart serves it
     * inside the capture; the block after it still replays. */
    void *extra = amalloc(16);
    cr_assert_eq(ipstats().capture_allocs, is0.capture_allocs + 1);
    afree(torch_block(NULL, cap, 1)); /* allocated in the capture: freed */
    afree(extra); /* a free node of the same capture */
    capture(0);
    int changed = 0;
    OK(dv_graph_pop(dev, graph, &changed));
    cr_assert_eq(changed, 1, "an address came from libcudart");
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(cap[i], eager[i], "allocation %d moved", i);
    }
    dv_graph_stats_t st = gstats();
    cr_assert_eq(st.capture_skips, 1);
    cr_assert_eq(st.bypassed, 1);
    cr_assert_eq(dv_fake_cudart_used(), 0);
}

Test(interpose_graph, frees_of_a_never_launched_captures_memory_succeed) {
    /* A pass with no recording cannot record inside a capture: torch's
     * allocations go to libcudart, as the CUDA graph's allocation nodes. */
    OK(dv_graph_push(dev, graph, "s"));
    capture(1);
    void *a = amalloc(MIB);
    capture(0);
    OK(dv_graph_pop(dev, graph, NULL));
    cr_assert_eq(ipstats().capture_allocs, 1);
    dv_device_stats_t ds;
    OK(dv_device_get_stats(dev, &ds));
    cr_assert_eq(ds.framework_bytes, MIB);
    /* The capture's output dropped before the graph ever ran (torch frees
     * it when a failed check drops the CUDAGraph and its outputs): libcudart
     * refuses, the interposer answers cudaSuccess and clears the error. */
    cr_assert_eq(cudaFreeAsync(a, gs), DV_CUDA_SUCCESS);
    cr_assert_eq(cudaGetLastError(), DV_CUDA_SUCCESS, "error left behind");
    dv_interpose_stats_t is = ipstats();
    cr_assert_eq(is.absorbed_frees, 1);
    cr_assert_eq(is.live_count, 0);
    OK(dv_device_get_stats(dev, &ds));
    cr_assert_eq(ds.framework_bytes, 0, "released from the budget");
    dv_fake_cudart_graphs_destroy(); /* a's memory goes with its graph */
    /* Once a launch made it real, such memory is freed as usual. */
    OK(dv_graph_push(dev, graph, "s"));
    capture(1);
    void *b = amalloc(2 * MIB);
    capture(0);
    OK(dv_graph_pop(dev, graph, NULL));
    dv_fake_cudart_launch();
    cr_assert_eq(cudaFreeAsync(b, gs), DV_CUDA_SUCCESS);
    is = ipstats();
    cr_assert_eq(is.absorbed_frees, 1);
    cr_assert_eq(is.driver_frees, 2);
    cr_assert_eq(dv_fake_cudart_used(), 0);
}

Test(interpose_graph, pointers_it_did_not_hand_out_get_libcudarts_answer) {
    /* Straight from libcudart, behind the interposer's back. */
    void *lib = dlopen("libdv_fake_cudart.so", RTLD_NOW | RTLD_NOLOAD);
    cr_assert_not_null(lib);
    dv_cudaMallocAsync_fn real_malloc =
        (dv_cudaMallocAsync_fn)dlsym(lib, "cudaMallocAsync");
    cr_assert_not_null(real_malloc);
    void *p = NULL;
    cr_assert_eq(real_malloc(&p, MIB, gs), DV_CUDA_SUCCESS);
    OK(dv_graph_push(dev, graph, "s"));
    cr_assert_eq(cudaFreeAsync(p, gs), DV_CUDA_SUCCESS);
    cr_assert_eq(dv_fake_cudart_used(), 0, "passed on to libcudart");
    /* Junk with room for the header the test double looks for before it. */
    static uint64_t junk[32];
    cr_assert_eq(cudaFreeAsync(&junk[16], gs), DV_CUDA_ERROR_INVALID_VALUE,
                 "libcudart's own answer");
    (void)cudaGetLastError();
    OK(dv_graph_pop(dev, graph, NULL));
    cr_assert_eq(gstats().unknown_frees, 0, "never offered to the graph");
    dlclose(lib);
}
