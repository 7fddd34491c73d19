# SPDX-License-Identifier: Apache-2.0
"""Allocation graphs (include/dynvram_graph.h) from Python.

A Graph records the framework allocations made on its stream inside its
scopes once and replays them at the same addresses with no driver call, so
CUDA graphs can be captured over blocks of a model that does not fit in
memory. Torch's allocations reach it through the CUDA interposer
(``dynvram.torch.bind_graph``); ``alloc`` / ``free`` drive it directly.
"""

import types as _types

from . import _native

GraphBreakError = _native.GraphBreakError


class _Scope:
    """The context manager of Graph.scope: push on enter; on exit pop, or,
    when the body raised, abort (every open scope of the graph: an
    exception leaves the passes unjudged, as the C API's abort does)."""

    __slots__ = ("graph", "name", "depth", "changed")

    def __init__(self, graph, name):
        self.graph = graph
        self.name = name
        self.depth = 0
        self.changed = None

    def __enter__(self):
        self.graph.push(self.name)
        self.depth = self.graph.depth
        return self

    def __exit__(self, exc_type, exc, tb):
        g = self.graph
        if g.depth < self.depth:
            self.changed = True  # closed inside (an abort): nothing to pop
        elif exc_type is not None:
            g.abort()
            self.changed = True
        else:
            while g.depth > self.depth:
                g.pop()  # scopes the body pushed and left open
            self.changed = g.pop()
        return False


class _Paused:
    __slots__ = ("graph", "sync")

    def __init__(self, graph, sync):
        self.graph = graph
        self.sync = sync

    def __enter__(self):
        self.graph.pause(self.sync)
        return self.graph

    def __exit__(self, *exc):
        self.graph.resume(self.sync)
        return False


class _UseStream:
    __slots__ = ("graph", "stream", "old")

    def __init__(self, graph, stream):
        self.graph = graph
        self.stream = stream
        self.old = None

    def __enter__(self):
        self.old = self.graph.stream
        self.graph.set_stream(self.stream)
        return self.graph

    def __exit__(self, *exc):
        self.graph.set_stream(self.old)
        return False


_KINDS = {1: "alloc", 2: "free", 3: "push", 4: "pop"}
_OUTCOMES = {0: None, 1: "replayed", 2: "recorded", 3: "bypassed",
             4: "skipped", 5: "unsequenced", 6: "unknown", 7: "failed"}
_EVF_CAPTURING, _EVF_ENDS, _EVF_BROKE, _EVF_CAPTURE_PASS = 1, 2, 4, 8


def _event(t):
    """A dv_graph_event_t tuple of the extension as a dict."""
    (seq, kind, outcome, size, ptr, serial, stream, depth, flags, variants,
     scope) = t
    return {"seq": seq, "kind": _KINDS.get(kind, kind),
            "outcome": _OUTCOMES.get(outcome, outcome), "size": size,
            "ptr": ptr, "serial": serial, "stream": stream, "depth": depth,
            "capturing": bool(flags & _EVF_CAPTURING),
            "capture_pass": bool(flags & _EVF_CAPTURE_PASS),
            "ends": bool(flags & _EVF_ENDS), "broke": bool(flags & _EVF_BROKE),
            "variants": variants, "scope": scope}


def _stream_int(stream):
    """A native stream as an int: an int, or a torch.cuda.Stream."""
    s = getattr(stream, "cuda_stream", stream)
    return 0 if s is None else int(s)


class Graph(_native.Graph):
    """An allocation graph on `device`, taking the allocations made on
    `stream` while one of its scopes is open.

    Graph(device, stream=0, page_size=0, arena_size=0, max_variants=0,
          assert_no_breaks=False)

    stream: a native stream handle (int; 0 = the default stream) or a
    torch.cuda.Stream. page_size: the graph's physical unit (0 = 2 MiB).
    max_variants: recorded variants kept where passes differed (0 = 4).
    assert_no_breaks: pop() / iterate() raise GraphBreakError (after
    closing the scope) when a pass broke from its recording.

    ``with g.scope("block3"): ...`` opens a scope for the block (push / pop;
    an exception in the body aborts the graph's scopes); the scope object's
    ``changed`` then says whether the pass was not an exact replay.
    ``push`` / ``pop`` / ``iterate`` / ``abort`` / ``pause`` / ``resume``
    are the C calls; ``paused()`` and ``use_stream(s)`` are context
    managers; ``note_capture()`` marks the open passes as capture passes
    (dynvram.torch does it for torch's captures). Counters: ``stats()`` and
    the properties ``peak_used``, ``virtual_bytes``, ``physical_bytes``,
    ``rogue_count``, ``breaks``, ``replays``. Debugging: ``trace(n)`` /
    ``trace_events()`` (the last n calls and what became of each) and
    ``recording(name)`` (what a scope's next pass is compared with).
    Attributes of your own can be set on the object.

    One graph per thread: its scopes are one stack. ``close()`` (or the end
    of a ``with Graph(...)`` block) needs every scope closed and every
    allocation of the graph freed.
    """

    def __init__(self, device, stream=0, page_size=0, arena_size=0,
                 max_variants=0, assert_no_breaks=False):
        super().__init__(device, _stream_int(stream), page_size, arena_size,
                         max_variants, bool(assert_no_breaks))
        self._names = []  # the open scopes, as the library keeps them

    # -- scopes (mirrored here: one graph per thread) --

    @property
    def depth(self):
        """Scopes open."""
        return len(self._names)

    def push(self, name=None):
        """Open a scope (name None or "" = unnamed)."""
        super().push(name)
        self._names.append(name or "")

    def pop(self):
        """Close the innermost scope; True when its pass was not an exact
        replay of the previous one (it recorded, broke, or took another
        variant). With assert_no_breaks a broken pass raises
        GraphBreakError, the scope closed all the same."""
        try:
            changed = super().pop()
        except GraphBreakError:
            self._names.pop()
            raise
        self._names.pop()
        return changed

    def iterate(self, name=None):
        """Close the open scope named `name` (None: the innermost) and the
        scopes inside it, and open it again: the next pass of a loop.
        Returns what pop() would say of the pass just closed."""
        if name is None:
            k = len(self._names) - 1
        else:
            k = max((i for i, n in enumerate(self._names) if n == name),
                    default=-1)
        try:
            changed = super().iterate(name)
        except GraphBreakError:
            del self._names[k + 1:]
            raise
        del self._names[k + 1:]
        return changed

    def abort(self):
        """Close every open scope without judging the passes."""
        super().abort()
        self._names.clear()

    def scope(self, name=None):
        """``with g.scope(name):`` a scope around the body."""
        return _Scope(self, name)

    def paused(self, sync=False):
        """``with g.paused():`` allocations in the body bypass the graph."""
        return _Paused(self, sync)

    # -- streams --

    @property
    def stream(self):
        """The graph's native stream handle (int)."""
        return _native.Graph.stats(self)["stream"]

    def set_stream(self, stream):
        """Retarget the graph (an int or a torch.cuda.Stream)."""
        super().set_stream(_stream_int(stream))

    def use_stream(self, stream):
        """``with g.use_stream(s):`` the graph takes `s`'s allocations in
        the body, then its old stream again."""
        return _UseStream(self, stream)

    # -- counters --

    def stats(self):
        """Counters (used, peak_used, virtual_bytes, mapped_bytes,
        physical_bytes, allocs, replayed_allocs, frees, bypassed,
        unknown_frees, rogues, rogue_bytes, breaks, replays, records,
        backend_calls, ranges, variants_dropped, stream, depth, paused,
        capture_skips)."""
        return _types.SimpleNamespace(**super().stats())

    # -- captures and debugging --

    def note_capture(self):
        """The open scope passes run a capture of the graph's stream
        (dv_graph_note_capture): they follow their recording tolerantly to
        their end, after the capture too. dynvram.torch calls it when
        torch's capture_begin returns."""
        super().note_capture()

    def trace(self, capacity=4096):
        """Keep the last `capacity` alloc / free / push / pop calls (0 =
        off), clearing what was kept (dv_graph_trace)."""
        self.set_trace(capacity)

    def trace_events(self):
        """The traced calls, oldest first, as dicts: seq, kind ("alloc",
        "free", "push", "pop"), outcome ("replayed", "recorded",
        "bypassed", "skipped", "unsequenced", "unknown", "failed"), size,
        ptr, serial (the range allocated or freed), stream, depth, scope
        (the innermost open scope), capturing (the graph's stream was being
        captured), capture_pass, broke (pop)."""
        return [_event(t) for t in super().trace_events()]

    def recording(self, name=None):
        """What the next pass of outermost scope `name` is compared with:
        its most recently used path, as dicts (kind "alloc" with size, ptr
        and serial; "free" with the serial of the range it frees; "push" /
        "pop" around nested scopes, a last "pop" for the scope's end;
        variants recorded at each point; ends: a pass ended after it).
        ValueError when no outermost scope has that name."""
        return [_event(t) for t in super().recording(name)]

    @property
    def peak_used(self):
        return self.stats().peak_used

    @property
    def virtual_bytes(self):
        return self.stats().virtual_bytes

    @property
    def physical_bytes(self):
        return self.stats().physical_bytes

    @property
    def rogue_count(self):
        return self.stats().rogues

    @property
    def breaks(self):
        return self.stats().breaks

    @property
    def replays(self):
        return self.stats().replays

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        if self.closed:
            return "<dynvram.Graph closed>"
        s = super().stats()
        return "<dynvram.Graph stream=0x%x depth=%d physical=%d>" % (
            s["stream"], s["depth"], s["physical_bytes"])
