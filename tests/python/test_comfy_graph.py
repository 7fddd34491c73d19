# SPDX-License-Identifier: Apache-2.0
"""comfy_aimdo.malloc_graph on the host backend over dynvram's allocation
graphs: record() per thread and device, scopes (push / pop / iterate /
abort), replayed addresses, graph breaks (and assert_graph_breaks),
pause / resume, use_stream, rogues, the counters, attribute assignment,
physical pages from the budget (they evict weights), control.record, and
deinit. The host backend has no interposer, so the allocations a scope sees
are made with the graph's own alloc / free (what dynvram's interposer does
for torch's cudaMallocAsync on a GPU; tests/gpu/comfy_test.py runs torch
there). Where this dynvram has no allocation graphs, the one test that
runs checks that record() says so with RuntimeError."""
import threading

import pytest

import dynvram
from comfy_fixtures import MIB

HAVE_GRAPH = hasattr(dynvram, "Graph")
needs_graph = pytest.mark.skipif(not HAVE_GRAPH, reason="this dynvram has no "
                                 "allocation graphs (its branch is not "
                                 "merged)")


def test_without_graphs_record_says_so(comfy):
    if HAVE_GRAPH:
        pytest.skip("this dynvram has allocation graphs")
    c = comfy.start()
    from comfy_aimdo import malloc_graph
    for call in (lambda: malloc_graph.record(0),
                 lambda: c.control.record(0, assert_graph_breaks=True)):
        with pytest.raises(RuntimeError, match="does not have yet"):
            call()


def _block(g, sizes=(3 * MIB, 5 * MIB, MIB)):
    """A block's temporaries, each freed once the next one exists."""
    got, prev = [], None
    for n in sizes:
        p = g._g.alloc(n)
        assert p is not None
        got.append(p)
        if prev is not None:
            g._g.free(prev)
        prev = p
    g._g.free(prev)
    return got


class _Stream:  # the shape of a torch.cuda.Stream
    def __init__(self, handle, index):
        self.cuda_stream = handle

        class D:
            pass
        self.device = D()
        self.device.index = index


@needs_graph
def test_record_scopes_replay_and_breaks(comfy):
    comfy.start(limit_mib=64)
    from comfy_aimdo import malloc_graph
    g = malloc_graph.record(0)
    assert isinstance(g, malloc_graph.MallocGraph)
    g._comfy_active = True  # ComfyUI sets attributes of its own
    assert g._comfy_active is True
    assert malloc_graph.record(0) is g  # one graph per thread and device
    g.push("block0")
    first = _block(g)
    assert g.pop() is True  # recorded
    for _ in range(3):
        g.push("block0")
        assert _block(g) == first  # replayed at the same addresses
        assert g.pop() is False
    assert g.replays == 3 and g.breaks == 0
    assert g.peak_used == 8 * MIB
    assert 8 * MIB <= g.physical_bytes < 12 * MIB  # aliasing: the peak
    assert g.virtual_bytes >= g.physical_bytes
    g.push("block0")
    _block(g, (3 * MIB, 6 * MIB))  # a different pattern: a graph break
    assert g.pop() is True
    assert g.breaks == 1
    # Scopes of other names have their own recordings.
    g.push("block1")
    other = _block(g, (MIB,))
    assert g.pop() is True
    g.push("block1")
    assert _block(g, (MIB,)) == other
    assert g.pop() is False


@needs_graph
def test_assert_graph_breaks_raises_after_closing(comfy):
    comfy.start()
    from comfy_aimdo import malloc_graph
    g = malloc_graph.record(0, assert_graph_breaks=True)
    g.push("b")
    _block(g)
    assert g.pop() is True  # the first pass records: no break
    g.push("b")
    _block(g, (7 * MIB,))
    with pytest.raises(RuntimeError) as err:
        g.pop()
    assert isinstance(err.value, dynvram.GraphBreakError)
    assert g.depth == 0  # the scope is closed all the same
    assert malloc_graph.record(0) is g and not g.assert_graph_breaks
    g.push("b")
    _block(g, (2 * MIB,))
    assert g.pop() is True  # a break, not raised any more


@needs_graph
def test_iterate_abort_pause_resume_use_stream(comfy):
    c = comfy.start()
    from comfy_aimdo import malloc_graph
    g = c.control.record(0)  # the shortcut
    assert malloc_graph.record(0) is g
    g.push("loop")
    a = _block(g, (MIB,))
    assert g.iterate("loop") is True
    assert _block(g, (MIB,)) == a
    assert g.iterate() is False
    g.push("inner")
    g.abort()
    assert g.depth == 0
    g.push("p")
    g.pause()
    assert g._g.alloc(MIB) is None  # bypasses the graph
    g.resume()
    assert g._g.alloc(MIB) is not None
    g.pop()  # alive at the close: a rogue
    assert g.rogue_count == 1
    with pytest.raises(RuntimeError):
        g.pop()  # nothing open
    with pytest.raises(RuntimeError):
        g.resume()  # not paused
    s = c.dev.stream_create()
    try:
        with g.use_stream(s) as same:
            assert same is g and g._g.stream == s
            g.push("other-stream")
            assert g._g.alloc(MIB, stream=s) is not None
            g.abort()
        assert g._g.stream == 0
    finally:
        c.dev.stream_destroy(s)


@needs_graph
def test_one_graph_per_thread_and_torch_style_streams(comfy):
    comfy.start(devices=[0, 1])
    from comfy_aimdo import malloc_graph
    mine = malloc_graph.record(_Stream(0, 1))
    assert mine.device == 1
    assert malloc_graph.record(_Stream(0, 0)).device == 0
    theirs = []
    t = threading.Thread(target=lambda: theirs.append(
        malloc_graph.record(_Stream(0, 1))))
    t.start()
    t.join()
    assert theirs[0] is not mine and theirs[0].device == 1
    with pytest.raises(RuntimeError):
        malloc_graph.record(_Stream(0, 3))  # not initialised


@needs_graph
def test_graph_pages_evict_weights(comfy):
    c = comfy.start(limit_mib=12)
    v = c.mv.ModelVBAR(32 * MIB, 0)
    allocs = [v.alloc(MIB) for _ in range(12)]
    for a in allocs:
        assert c.mv.vbar_fault(a) is not None
        c.mv.vbar_unpin(a)
    from comfy_aimdo import malloc_graph
    g = malloc_graph.record(0)
    g.push("b")
    _block(g, (4 * MIB,))
    g.pop()
    assert v.loaded_size() <= 8 * MIB
    assert c.dev.stats().graph_bytes == g.physical_bytes > 0


@needs_graph
def test_deinit_releases_the_graph(comfy):
    c = comfy.start()
    from comfy_aimdo import malloc_graph
    g = malloc_graph.record(0)
    g.push("b")
    _block(g)
    g.pop()
    c.control.deinit()
    assert g._g.closed
    with pytest.raises(RuntimeError):
        g.push("b")
    assert c.control.init_devices([0])
    g2 = malloc_graph.record(0)
    assert g2 is not g


@needs_graph
def test_torch_style_allocations_reach_the_graph_through_the_interposer():
    """On CUDA (the simulated driver and runtime): record() binds the graph
    to this thread in the interposer, so cudaMallocAsync calls on the
    graph's stream inside a scope (what torch's cudaMallocAsync backend
    makes) are the graph's: the same addresses pass after pass, none of
    them reaching the runtime."""
    import os
    from comfy_fixtures import run_fresh
    need = [os.environ.get(k) for k in ("DV_FAKE_CUDA", "DV_FAKE_CUDART")]
    if not all(need) or not all(map(os.path.exists, need)):
        pytest.skip("the simulated CUDA libraries are not built")
    rep, _ = run_fresh("""
        import ctypes
        import comfy_aimdo.control as c
        from comfy_aimdo import malloc_graph
        from dynvram import interpose
        assert c.init(simple_vram_headroom=0) and c.init_devices([0])
        g = malloc_graph.record(0)
        rt = ctypes.CDLL(None)
        rt.cudaMallocAsync.argtypes = [ctypes.POINTER(ctypes.c_void_p),
                                       ctypes.c_size_t, ctypes.c_void_p]
        rt.cudaFreeAsync.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        passes = []
        for _ in range(3):
            g.push("block")
            ptrs = []
            for n in (3 << 20, 1 << 20):
                p = ctypes.c_void_p()
                assert rt.cudaMallocAsync(ctypes.byref(p), n, None) == 0
                ptrs.append(p.value)
            for p in ptrs:
                assert rt.cudaFreeAsync(p, None) == 0
            passes.append([g.pop(), ptrs])
        report("passes", passes)
        report("stats", interpose.stats(0))
        report("replays", g.replays)
        c.deinit()
    """, env={"DYNVRAM_BACKEND": "cuda", "DYNVRAM_CUDA_LIBRARY": need[0],
              "DYNVRAM_CUDART": need[1], "DYNVRAM_COMFY_PAGE_SIZE": "2M"})
    (c0, a0), (c1, a1), (c2, a2) = rep["passes"]
    assert c0 is True and c1 is False and c2 is False
    assert a0 == a1 == a2
    assert rep["replays"] == 2
    st = rep["stats"]
    assert st["graph_allocs"] == 6 and st["driver_allocs"] == 0, st
