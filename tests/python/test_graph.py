# SPDX-License-Identifier: Apache-2.0
"""dynvram.Graph on the host backend: scopes as context managers, replayed
addresses, stats, pause and streams, assert_no_breaks, attribute
assignment, bad input, and torch-like allocations routed through the CUDA
interposer (against the libcudart test double)."""
import ctypes
import threading

import pytest

import child
import dynvram
from conftest import MIB


@pytest.fixture
def graph(dev):
    g = dynvram.Graph(dev)
    yield g
    g.abort()
    if not g.closed:
        g.close()


def block(g, sizes=(3 * MIB, 5 * MIB, MIB)):
    """A block's temporaries: each freed once the next one exists."""
    got, prev = [], None
    for n in sizes:
        p = g.alloc(n)
        assert p is not None
        got.append(p)
        if prev is not None:
            assert g.free(prev) is True
        prev = p
    g.free(prev)
    return got


def test_a_scope_replays_its_addresses(graph):
    with graph.scope("block3") as s:
        a = block(graph)
    assert s.changed is True  # the first pass records
    for _ in range(3):
        with graph.scope("block3") as s:
            b = block(graph)
        assert s.changed is False
        assert a == b
    st = graph.stats()
    assert st.records == 1 and st.replays == 3 and st.breaks == 0
    assert graph.replays == 3 and graph.breaks == 0
    assert graph.peak_used == 8 * MIB
    assert 8 * MIB <= graph.physical_bytes < 9 * MIB + st.page_size
    assert graph.virtual_bytes >= st.mapped_bytes > 0
    assert graph.device.stats().graph_bytes == graph.physical_bytes


def test_push_pop_iterate_abort_and_depth(graph):
    graph.push("outer")
    graph.push()
    assert graph.depth == 2
    p = graph.alloc(MIB)  # left alive: a rogue when its scope closes
    assert graph.iterate("outer") is True
    assert graph.depth == 1
    assert graph.rogue_count == 1
    graph.push("inner")
    graph.abort()
    assert graph.depth == 0 and graph.stats().depth == 0
    with pytest.raises(ValueError, match="no scope is open"):
        graph.pop()
    assert graph.free(p) is True


def test_an_exception_in_a_scope_aborts_and_propagates(graph):
    got = []
    with pytest.raises(KeyError):
        with graph.scope("outer"):
            with graph.scope("inner"):
                got.append(graph.alloc(MIB))
                raise KeyError("boom")
    assert graph.depth == 0
    st = graph.stats()
    assert st.rogues == 1 and st.records == 0 and st.breaks == 0
    graph.free(got[0])


def test_changed_sequences_break_and_assert_raises(dev):
    g = dynvram.Graph(dev, assert_no_breaks=True)
    with g.scope("b"):
        block(g)
    with pytest.raises(dynvram.GraphBreakError, match="graph break") as ei:
        with g.scope("b"):
            block(g, (3 * MIB, 4 * MIB, MIB))
    assert ei.value.name == "DV_ERROR_GRAPH_BREAK"
    assert isinstance(ei.value, dynvram.Error)
    assert g.depth == 0 and g.breaks == 1
    with g.scope("b") as s:  # the new variant replays
        block(g, (3 * MIB, 4 * MIB, MIB))
    assert s.changed is False
    g.close()


def test_paused_allocations_bypass_the_graph(graph):
    with graph.scope("s"):
        with graph.paused(sync=True):
            assert graph.stats().paused == 1
            assert graph.alloc(MIB) is None
        p = graph.alloc(MIB)
        assert p is not None
        graph.pause()
        assert graph.free(p) is True  # frees still release graph memory
        graph.resume()
    with pytest.raises(ValueError, match="not paused"):
        graph.resume()
    assert graph.alloc(MIB) is None  # no scope open
    assert graph.stats().bypassed == 2


def test_streams_and_use_stream(dev):
    s1, s2 = dev.stream_create(), dev.stream_create()
    g = dynvram.Graph(dev, stream=s1)
    assert g.stream == s1
    with g.scope("s"):
        assert g.alloc(MIB, stream=s2) is None
        with g.use_stream(s2):
            assert g.stream == s2
            p = g.alloc(MIB, stream=s2)
            assert p is not None and g.alloc(MIB, stream=s1) is None
            g.free(p)
        assert g.stream == s1
    g.close()
    dev.stream_destroy(s1)
    dev.stream_destroy(s2)


def test_unknown_and_double_frees(graph):
    with graph.scope("s"):
        assert graph.free(0x1000) is False  # not the graph's: tolerated
        p = graph.alloc(MIB)
        graph.free(p)
        with pytest.raises(ValueError, match="freed twice"):
            graph.free(p)
    assert graph.stats().unknown_frees == 1


def test_trace_and_recording_show_the_sequences(dev, graph):
    with pytest.raises(ValueError):
        graph.recording("nothing")
    with graph.scope("b"):
        a = block(graph)
    rec = graph.recording("b")
    assert [e["kind"] for e in rec] == ["alloc", "alloc", "free", "alloc",
                                        "free", "free", "pop"]
    assert [e["size"] for e in rec if e["kind"] == "alloc"] == \
        [3 * MIB, 5 * MIB, MIB]
    assert [e["ptr"] for e in rec if e["kind"] == "alloc"] == a
    assert rec[2]["serial"] == rec[0]["serial"]  # the free names its range
    assert rec[-1]["ends"] and all(e["variants"] == 1 for e in rec[:-1])
    assert graph.trace_events() == []  # off by default
    graph.trace(16)
    with graph.scope("b") as sc:
        graph.alloc(MIB, stream=12345)  # another stream: bypassed
        b = block(graph)
    assert sc.changed is False and a == b
    ev = graph.trace_events()
    assert [e["kind"] for e in ev] == ["push", "alloc", "alloc", "alloc",
                                       "free", "alloc", "free", "free", "pop"]
    assert ev[1]["outcome"] == "bypassed" and ev[1]["stream"] == 12345
    assert all(e["outcome"] == "replayed" for e in ev[2:])
    assert all(e["scope"] == "b" and not e["capturing"] for e in ev)
    assert [e["seq"] for e in ev] == list(range(9))
    assert graph.stats().capture_skips == 0
    graph.trace(0)
    assert graph.trace_events() == []



def test_debug_calls_refuse_bad_input(dev):
    g = dynvram.Graph(dev)
    for cap in (-1, 2 ** 33, 2 ** 20 + 1):
        with pytest.raises((ValueError, OverflowError)):
            g.trace(cap)
    with pytest.raises(TypeError):
        g.trace("many")
    with pytest.raises(TypeError):
        g.recording(123)
    with pytest.raises(ValueError):
        g.recording("n" * 300)  # longer than a scope name may be
    with pytest.raises(ValueError):
        g.recording("never-pushed")
    g.note_capture()  # no scope open: nothing changes
    assert g.stats().capture_skips == 0 and g.trace_events() == []
    g.trace(4)
    with g.scope("x"):
        pass
    assert [e["kind"] for e in g.trace_events()] == ["push", "pop"]
    g.close()
    for call in (lambda: g.trace(4), g.trace_events, g.note_capture,
                 lambda: g.recording("x")):
        with pytest.raises(ValueError, match="closed"):
            call()

def test_attributes_can_be_assigned(graph):
    graph._comfy_active = True
    graph.anything = [1, 2]
    assert graph._comfy_active is True and graph.anything == [1, 2]
    s = graph.scope("x")
    with pytest.raises(AttributeError):
        s.other = 1  # the scope object is slotted


def test_bad_input(dev, graph):
    with pytest.raises(TypeError):
        dynvram.Graph("not a device")
    with pytest.raises(ValueError):
        dynvram.Graph(dev, page_size=-1)
    with pytest.raises(ValueError, match="max_variants"):
        dynvram.Graph(dev, max_variants=65)
    with pytest.raises(ValueError, match="not a live stream"):
        dynvram.Graph(dev, stream=0x5678)
    with pytest.raises(ValueError, match="at most 255"):
        graph.push("n" * 300)
    with pytest.raises(ValueError, match="no open scope"):
        graph.iterate("nope")
    with graph.scope("s"):
        with pytest.raises(ValueError, match="size"):
            graph.alloc(0)
        with pytest.raises(ValueError):
            graph.alloc(-1)
        with pytest.raises(TypeError):
            graph.alloc("1")
    assert graph.depth == 0


def test_close_refuses_while_busy_and_is_idempotent(dev):
    g = dynvram.Graph(dev)
    g.push("s")
    with pytest.raises(dynvram.Error, match="scope"):
        g.close()
    p = g.alloc(MIB)
    g.pop()
    with pytest.raises(dynvram.Error, match="alive"):
        g.close()
    with pytest.raises(dynvram.Error):
        dev.close()  # the graph still exists
    g.free(p)
    g.close()
    g.close()
    assert g.closed and g.handle == 0
    with pytest.raises(ValueError, match="closed"):
        g.push("x")


# ---- through the CUDA interposer --------------------------------------------


@pytest.fixture
def ip(fake_cudart, monkeypatch):
    monkeypatch.setenv("DYNVRAM_CUDART", fake_cudart)
    from dynvram import interpose
    lib = interpose.load()
    assert interpose.cudart_loaded()[0]
    fake = ctypes.CDLL(fake_cudart)
    fake.dv_fake_cudart_async_calls.restype = ctypes.c_uint64
    lib.cudaMallocAsync.argtypes = [ctypes.POINTER(ctypes.c_void_p),
                                    ctypes.c_size_t, ctypes.c_void_p]
    lib.cudaMallocAsync.restype = ctypes.c_int
    lib.cudaFreeAsync.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    lib.cudaFreeAsync.restype = ctypes.c_int
    yield interpose, lib, fake
    interpose.unbind_graph()
    interpose.detach_all()


def malloc_async(lib, size, stream):
    p = ctypes.c_void_p()
    assert lib.cudaMallocAsync(ctypes.byref(p), size, stream) == 0
    return p.value


def torch_like_block(lib, stream):
    a = malloc_async(lib, 3 * MIB, stream)
    b = malloc_async(lib, 5 * MIB, stream)
    assert lib.cudaFreeAsync(a, stream) == 0
    c = malloc_async(lib, MIB, stream)
    assert lib.cudaFreeAsync(b, stream) == 0
    assert lib.cudaFreeAsync(c, stream) == 0
    return [a, b, c]


def test_torch_like_allocations_go_to_the_bound_graph(ip, dev):
    interpose, lib, fake = ip
    import dynvram.torch as dvt
    s = dev.stream_create()
    g = dynvram.Graph(dev, stream=s)
    assert dvt.bind_graph(g)
    assert interpose.bound_graph() is g
    calls = fake.dv_fake_cudart_async_calls()
    with g.scope("block"):
        a = torch_like_block(lib, s)
    with g.scope("block"):
        b = torch_like_block(lib, s)
    assert a == b
    assert fake.dv_fake_cudart_async_calls() == calls, "libcudart saw them"
    st = interpose.stats(0)
    assert st["graph_allocs"] == 6 and st["graph_frees"] == 6
    assert st["driver_allocs"] == 0
    # Another stream, and everything after unbinding, takes the normal path.
    with g.scope("block"):
        p = malloc_async(lib, MIB, None)
        assert lib.cudaFreeAsync(p, None) == 0
    dvt.unbind_graph()
    assert interpose.bound_graph() is None
    with g.scope("block"):
        p = malloc_async(lib, MIB, s)
        assert lib.cudaFreeAsync(p, s) == 0
    assert interpose.stats(0)["driver_allocs"] == 2
    assert g.stats().allocs == 6
    g.close()
    dev.stream_destroy(s)


def test_a_bound_graph_serves_its_own_thread_only(ip, dev):
    interpose, lib, fake = ip
    s = dev.stream_create()
    g = dynvram.Graph(dev, stream=s)
    interpose.attach(dev)
    interpose.bind_graph(g)
    g.push("b")
    out = {}
    t = threading.Thread(target=lambda: out.update(p=malloc_async(lib, MIB, s)))
    t.start()
    t.join()
    assert interpose.stats(0)["driver_allocs"] == 1  # the other thread's
    assert lib.cudaFreeAsync(out["p"], s) == 0
    g.pop()
    g.close()
    dev.stream_destroy(s)


def _capturing(fake, stream, on):
    """A CUDA graph capture of `stream` begins or ends, for libcudart's
    test double and for dynvram's host backend."""
    fake.dv_fake_cudart_set_capturing(ctypes.c_void_p(stream), int(on))
    native = ctypes.CDLL(dynvram._native.__file__)
    assert native.dv_host_stream_set_capturing(ctypes.c_void_p(stream),
                                               int(on)) == 0


class FakeCUDAGraph:
    """torch.cuda.CUDAGraph's capture_begin as torch 2.x runs it: the
    first capture registers the default CUDA generator, which allocates its
    graph state (two 8-byte tensors) on the capture stream, and then the
    stream capture begins."""
    lib = fake = stream = None

    def capture_begin(self, pool=None, capture_error_mode="global"):
        self.state = [malloc_async(self.lib, 8, self.stream) for _ in range(2)]
        _capturing(self.fake, self.stream, True)


def test_torchs_capture_begin_does_not_break_the_scope(ip, dev):
    interpose, lib, fake = ip
    import dynvram.torch as dvt
    fake.dv_fake_cudart_set_capturing.argtypes = [ctypes.c_void_p,
                                                   ctypes.c_int]
    s = dev.stream_create()
    g = dynvram.Graph(dev, stream=s)
    assert dvt.bind_graph(g)
    FakeCUDAGraph.lib, FakeCUDAGraph.fake, FakeCUDAGraph.stream = lib, fake, s
    for _ in range(2):
        with g.scope("block"):
            eager = torch_like_block(lib, s)

    def captured_pass():
        cg = FakeCUDAGraph()
        with g.scope("block") as sc:
            cg.capture_begin()
            got = torch_like_block(lib, s)
            _capturing(fake, s, False)
        for p in cg.state:
            assert lib.cudaFreeAsync(p, s) == 0
        return sc.changed, got

    # Unguarded, the generator's tensors break the pass before the capture,
    # and a pass that left its recording cannot replay inside it.
    changed, got = captured_pass()
    assert changed is True and got != eager
    with g.scope("block"):  # a complete pass again after the lost one
        assert torch_like_block(lib, s) == eager
    assert dvt.guard_capture_begin(FakeCUDAGraph) is True
    assert dvt.guard_capture_begin(FakeCUDAGraph) is False  # once
    st0, bypassed0 = interpose.stats(0), g.stats().bypassed
    changed, got = captured_pass()
    assert changed is False and got == eager, "the capture did not replay"
    st = interpose.stats(0)
    assert st["driver_allocs"] - st0["driver_allocs"] == 2  # the state
    assert st["capture_allocs"] == st0["capture_allocs"]
    assert g.stats().bypassed - bypassed0 == 2  # paused, not in the capture
    # No bound graph or no open scope: capture_begin runs as it was.
    cg = FakeCUDAGraph()
    cg.capture_begin()
    _capturing(fake, s, False)
    for p in cg.state:
        assert lib.cudaFreeAsync(p, s) == 0
    assert g.stats().paused == 0
    dvt.unbind_graph()
    g.close()
    dev.stream_destroy(s)


def test_bind_graph_guards_torchs_capture_begin(ip, dev, monkeypatch):
    import sys
    import types
    import dynvram.torch as dvt

    class CUDAGraph:
        def capture_begin(self):
            return "begun"

    fake_torch = types.ModuleType("torch")
    fake_torch.cuda = types.SimpleNamespace(CUDAGraph=CUDAGraph)
    monkeypatch.setitem(sys.modules, "torch", fake_torch)
    s = dev.stream_create()
    g = dynvram.Graph(dev, stream=s)
    assert dvt.bind_graph(g)
    assert getattr(CUDAGraph.capture_begin, "_dynvram_guard", False)
    with g.scope("x"):
        assert CUDAGraph().capture_begin() == "begun"
    dvt.unbind_graph()
    g.close()
    dev.stream_destroy(s)


def test_bind_graph_refuses_an_unattached_device(ip, dev, graph):
    interpose, lib, fake = ip
    with pytest.raises(ValueError, match="attached"):
        interpose.bind_graph(graph)


# ---- junk in a child process -------------------------------------------------


def test_junk_graphs_never_crash():
    r = child.run("""
g = dynvram.Graph(dev)
report("bad_device", attempt(lambda: dynvram.Graph(vbar)))
report("bad_stream", attempt(lambda: dynvram.Graph(dev, stream=12345)))
g.close()
for name, call in [("push", lambda: g.push("x")), ("pop", g.pop),
                   ("alloc", lambda: g.alloc(16)), ("free", lambda: g.free(16)),
                   ("stats", g.stats), ("abort", g.abort),
                   ("set_stream", lambda: g.set_stream(0))]:
    report(name, attempt(call))
uninit = dynvram._native.Graph.__new__(dynvram._native.Graph)
report("uninit", attempt(lambda: uninit.push("x")))
report("uninit_close", attempt(uninit.close))
from dynvram import interpose
import os
if os.environ.get("DV_FAKE_CUDART"):
    os.environ["DYNVRAM_CUDART"] = os.environ["DV_FAKE_CUDART"]
    lib = interpose.load()
    interpose.attach(dev)
    # A dead graph's handle and a junk value bound to the thread: the
    # interposer hands them to the library, which refuses them.
    report("bind_dead", lib.dv_interpose_graph_bind(0, 0xd80000000000dead))
    import ctypes
    lib.cudaMallocAsync.argtypes = [ctypes.POINTER(ctypes.c_void_p),
                                    ctypes.c_size_t, ctypes.c_void_p]
    p = ctypes.c_void_p()
    report("alloc_rc", lib.cudaMallocAsync(ctypes.byref(p), 4096, None))
    lib.cudaFreeAsync.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    report("free_rc", lib.cudaFreeAsync(p, None))
    interpose.detach_all()
vbar.close()
dev.close()
report("done", True)
""")
    child.assert_raised(r["bad_device"], "TypeError", "dynvram.Device")
    child.assert_invalid(r["bad_stream"], "not a live stream")
    for name in ("push", "pop", "alloc", "free", "stats", "abort",
                 "set_stream", "uninit"):
        child.assert_invalid(r[name], "closed")
    assert r["uninit_close"] is None
    if "bind_dead" in r:
        assert r["bind_dead"] == 0
        assert r["alloc_rc"] == 0 and r["free_rc"] == 0
    assert r["done"] is True
