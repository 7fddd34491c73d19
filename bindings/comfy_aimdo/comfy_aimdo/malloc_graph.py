# SPDX-License-Identifier: Apache-2.0
"""comfy_aimdo.malloc_graph: the memory compiler for torch's allocations.

``record(stream, assert_graph_breaks=False)`` gives this thread's
``MallocGraph`` for the stream's device, bound to ``stream`` (a
torch.cuda.Stream: its ``cuda_stream`` and ``device.index``; an int stream
handle means device 0 or the only initialised device). It is a
dynvram.Graph (allocation graphs, include/dynvram_graph.h): while one of
its scopes is open, each allocation torch makes on the graph's stream
(torch's cudaMallocAsync backend, through dynvram's interposer) gets a
fresh virtual range over physical pages not live at that moment; a free
keeps the range mapped, so later ranges alias the same memory (physical
peak = logical peak). The same sequence (sizes, order of allocations and
frees, scope names) replays at the same addresses with no driver call,
which CUDA graph capture inside the scope needs; a different sequence is a
graph break, recorded from there (or raised, with assert_graph_breaks).
Allocations alive when their scope closes become ordinary ("rogues",
counted); frees of pointers the graph does not know are tolerated. Its
pages come out of the device's one budget (they evict weight pages), and
nothing synchronizes a stream that is being captured.

One graph per thread and device: a second ``record`` on the same thread
returns the same graph, retargeted to the new stream (its recordings are
kept), so several models run by one thread share it.

MallocGraph: ``push(name=None)``, ``pop() -> bool`` (True: this pass did
not replay the recording exactly: the first pass, or a graph break, which
is re-recorded), ``iterate(name=None) -> bool``, ``abort()``,
``pause(sync=False)`` / ``resume(sync=False)`` (allocations while paused
bypass the graph), ``use_stream(stream)`` (a context manager retargeting
the graph), the properties ``peak_used``, ``virtual_bytes``,
``physical_bytes``, ``rogue_count`` (and ``breaks``, ``replays``), and any
attribute of your own. Errors raise RuntimeError (a GraphBreakError, a
RuntimeError too, with assert_graph_breaks). Needs dynvram's allocation
graphs; ComfyUI's --disable-comfy-compiler skips all of it.
"""
import threading

from . import control
from ._missing import as_runtime_error, dynvram_attr

__all__ = ["MallocGraph", "record"]

_FEATURE = "allocation graphs"
_tls = threading.local()


def _stream_and_device(stream):
    """(native stream int, device index) of a torch stream or an int."""
    if stream is None:
        return 0, _default_device()
    raw = getattr(stream, "cuda_stream", None)
    if raw is None:
        return int(stream), _default_device()
    dev = getattr(stream, "device", None)
    index = getattr(dev, "index", None)
    return int(raw), index if index is not None else _default_device()


def _default_device():
    if not control.devctxs:
        raise RuntimeError("malloc_graph: no device is initialized")
    return control.devctxs[0].device_id


class MallocGraph:
    """This thread's allocation graph on one device (see the module)."""

    def __init__(self, ctx, stream_int, assert_graph_breaks):
        cls = dynvram_attr("Graph", _FEATURE, "MallocGraph")
        try:
            self._g = cls(ctx.device, stream_int)
        except (ValueError, MemoryError, RuntimeError) as exc:
            raise as_runtime_error("malloc_graph.record", exc) from exc
        # Checked here rather than by the library, so a later record() on
        # this thread can change it.
        self.assert_graph_breaks = bool(assert_graph_breaks)
        self.device = ctx.device_id
        self._ctx = ctx
        self._bound = False
        ctx.track(self)

    def _bind(self):
        """Route this thread's torch allocations into the graph (CUDA, with
        the interposer); False where torch's allocations cannot reach it
        (the host backend, no interposer)."""
        if control.pressure_status()[0] != "interposer":
            return False
        from dynvram import torch as dvtorch
        self._bound = dvtorch.bind_graph(self._g, self.device)
        return self._bound

    def _call(self, what, fn, *args):
        try:
            return fn(*args)
        except (ValueError, MemoryError, RuntimeError) as exc:
            raise as_runtime_error("MallocGraph.%s" % what, exc) from exc

    def _judged(self, what, fn, *args):
        """pop / iterate: with assert_graph_breaks, a pass that broke from
        its recording raises dynvram.GraphBreakError (a RuntimeError) once
        the scope is closed (and re-recorded)."""
        if not self.assert_graph_breaks:
            return bool(self._call(what, fn, *args))
        before = self._g.breaks
        changed = bool(self._call(what, fn, *args))
        if self._g.breaks != before:
            raise control.dynvram.GraphBreakError(
                "malloc_graph: graph break in %s (assert_graph_breaks)" % what)
        return changed

    # -- scopes --

    def push(self, name=None):
        """Open a scope (named scopes record and replay separately)."""
        self._call("push", self._g.push, name)

    def pop(self):
        """Close the innermost scope: True when this pass was not an exact
        replay (the first pass, or a graph break: re-recorded)."""
        return self._judged("pop", self._g.pop)

    def iterate(self, name=None):
        """Pop the scope named `name` (None: the innermost) and push it
        again; what pop() would return for the pass just closed."""
        return self._judged("iterate", self._g.iterate, name)

    def abort(self):
        """Close every open scope without judging the passes."""
        self._call("abort", self._g.abort)

    def pause(self, sync=False):
        """Allocations bypass the graph until resume() (pauses nest)."""
        self._call("pause", self._g.pause, bool(sync))

    def resume(self, sync=False):
        self._call("resume", self._g.resume, bool(sync))

    def use_stream(self, stream):
        """``with g.use_stream(s):`` the graph takes `s`'s allocations in
        the body, then its own stream's again."""
        return _UseStream(self, stream)

    def set_stream(self, stream):
        s, _ = _stream_and_device(stream)
        self._call("set_stream", self._g.set_stream, s)

    # -- counters --

    @property
    def peak_used(self):
        return self._g.peak_used

    @property
    def virtual_bytes(self):
        return self._g.virtual_bytes

    @property
    def physical_bytes(self):
        return self._g.physical_bytes

    @property
    def rogue_count(self):
        return self._g.rogue_count

    @property
    def breaks(self):
        return self._g.breaks

    @property
    def replays(self):
        return self._g.replays

    @property
    def depth(self):
        return self._g.depth

    def stats(self):
        return self._g.stats()

    def _release(self):
        if self._bound:
            from dynvram import interpose
            if interpose.bound_graph() is self._g:
                interpose.unbind_graph()
            self._bound = False
        self._g.close()

    def _describe(self):
        if self._g.closed:
            return "MallocGraph: released"
        s = self._g.stats()
        return ("MallocGraph on device %d: %d MiB physical, peak %d MiB, "
                "%d breaks, %d replays, %d rogues" % (
                    self.device, s.physical_bytes >> 20, s.peak_used >> 20,
                    s.breaks, s.replays, s.rogues))

    def __repr__(self):
        return "<comfy_aimdo MallocGraph device=%d>" % self.device


class _UseStream:
    __slots__ = ("graph", "stream", "old")

    def __init__(self, graph, stream):
        self.graph = graph
        self.stream = stream
        self.old = None

    def __enter__(self):
        self.old = self.graph._g.stream
        self.graph.set_stream(self.stream)
        return self.graph

    def __exit__(self, *exc):
        self.graph.set_stream(self.old)
        return False


def record(stream, assert_graph_breaks=False):
    """This thread's MallocGraph for `stream`'s device, bound to `stream`
    (see the module)."""
    dynvram_attr("Graph", _FEATURE, "malloc_graph.record")
    s, index = _stream_and_device(stream)
    ctx = control.get_devctx(index)
    graphs = getattr(_tls, "graphs", None)
    if graphs is None:
        graphs = _tls.graphs = {}
    g = graphs.get(index)
    if g is not None and (g._g.closed or g._ctx is not ctx):
        g = None
    if g is None:
        g = MallocGraph(ctx, s, assert_graph_breaks)
        graphs[index] = g
    else:
        g.set_stream(s)
        g.assert_graph_breaks = bool(assert_graph_breaks)
    g._bind()
    return g
