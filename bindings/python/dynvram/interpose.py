# SPDX-License-Identifier: Apache-2.0
"""The CUDA allocation interposer, from Python.

Two routes put a framework's own GPU allocations (PyTorch's activations and
caches) under a dynvram device's budget, so that they evict weight pages
instead of running out of memory:

1. Interposition (``load()`` before ``import torch``, or LD_PRELOAD of
   ``library_path()``): the library defines cudaMalloc, cudaFree,
   cudaMallocAsync, cudaFreeAsync and cudaMemGetInfo in the global symbol
   scope, so torch's libc10_cuda binds to them instead of libcudart's.
   Torch keeps its caching allocator (fast, and everything works: CUDA
   graphs, memory stats, expandable segments off). What dynvram sees is the
   caching allocator's segments, not individual tensors; torch's cache is
   counted as used until torch frees it (torch.cuda.empty_cache(), or
   torch's own retry after an out-of-memory answer). cudaMemGetInfo reports
   what the budget has left. Must be loaded before torch; has no effect
   on a torch build that links libcudart statically.

2. ``CUDAPluggableAllocator`` (``pluggable_allocator()`` then
   ``torch.cuda.memory.change_current_allocator``): no load-order
   constraint, but torch's caching allocator is replaced: every tensor is a
   cudaMallocAsync on its stream (CUDA's stream-ordered pool caches it),
   torch.cuda memory statistics and empty_cache are unavailable, and the
   allocator must be chosen before the first CUDA allocation.

In both routes a CUDA device ordinal is routed to a dynvram Device with
``attach(device)``; devices never attached pass straight through.

Allocation graphs: ``bind_graph(graph)`` binds a dynvram.Graph to the
calling thread; its cudaMallocAsync calls (torch's cudaMallocAsync backend,
or the pluggable allocator) on the graph's stream inside the graph's scopes
then go to the graph, and the pointers it handed out are freed back to it.

Frees the interposer owes an answer to never get cudaErrorInvalidValue: a
graph pointer's free succeeds, and memory libcudart allocated inside a CUDA
graph capture that is freed before that graph ever ran (libcudart refuses:
nothing was allocated yet) is answered cudaSuccess, counted in
``stats()["absorbed_frees"]``; ``capture_allocs`` counts allocations
libcudart made inside captures.
"""

import atexit
import ctypes
import glob
import os
import sys
import threading

from . import _native
from ._routes import Routes as _Routes

_lock = threading.Lock()
_lib = None


class InterposeStats(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint64) for n in (
        "allocs", "frees", "live_bytes", "live_count", "budget_refusals",
        "oom_retries", "oom_evicted", "failures", "graph_allocs",
        "graph_frees", "driver_allocs", "driver_frees", "capture_allocs",
        "absorbed_frees")]


def library_path():
    """Path of the interposer library: DYNVRAM_INTERPOSE_LIB, else the one
    shipped in this package. None when there is none (not Linux)."""
    env = os.environ.get("DYNVRAM_INTERPOSE_LIB")
    if env:
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    found = sorted(glob.glob(os.path.join(here, "_interpose*.so")))
    return found[0] if found else None


def load():
    """Load the interposer into the global symbol scope (RTLD_GLOBAL), once.
    Call before importing torch. Returns the ctypes library."""
    global _lib
    with _lock:
        if _lib is not None:
            return _lib
        if not sys.platform.startswith("linux"):
            raise OSError("the CUDA allocation interposer is Linux-only")
        path = library_path()
        if not path:
            raise OSError("dynvram interposer library not found in %s"
                          % os.path.dirname(os.path.abspath(__file__)))
        mode = getattr(os, "RTLD_GLOBAL", 0x100) | getattr(os, "RTLD_NOW", 2)
        lib = ctypes.CDLL(path, mode=mode)
        lib.dv_interpose_attach.argtypes = [ctypes.c_int, ctypes.c_void_p,
                                            ctypes.c_void_p]
        lib.dv_interpose_attach.restype = ctypes.c_int
        lib.dv_interpose_detach.argtypes = [ctypes.c_int]
        lib.dv_interpose_detach.restype = ctypes.c_int
        lib.dv_interpose_get_stats.argtypes = [
            ctypes.c_int, ctypes.POINTER(InterposeStats)]
        lib.dv_interpose_get_stats.restype = ctypes.c_int
        lib.dv_interpose_cudart_loaded.argtypes = [ctypes.c_char_p,
                                                   ctypes.c_size_t]
        lib.dv_interpose_cudart_loaded.restype = ctypes.c_int
        lib.dv_interpose_graph_bind.argtypes = [ctypes.c_int, ctypes.c_void_p]
        lib.dv_interpose_graph_bind.restype = ctypes.c_int
        _lib = lib
        atexit.register(detach_all)
        return lib


_routes = _Routes('dv_interpose', load, lambda: _lib)


def is_loaded():
    return _lib is not None


def is_active():
    """True when cudaMalloc in the global scope is the interposer's (so a
    framework loaded now or later binds to it)."""
    if _lib is None:
        return False
    try:
        glob_sym = ctypes.CDLL(None).cudaMalloc
    except AttributeError:
        return False
    return (ctypes.cast(glob_sym, ctypes.c_void_p).value
            == ctypes.cast(_lib.cudaMalloc, ctypes.c_void_p).value)


def cudart_loaded():
    """(True, "") when the real libcudart was found, else (False, reason)."""
    lib = load()
    buf = ctypes.create_string_buffer(512)
    ok = lib.dv_interpose_cudart_loaded(buf, len(buf))
    return bool(ok), buf.value.decode(errors="replace")


def attach(device, cuda_device=None):
    """Route allocations made on CUDA device `cuda_device` (default: the
    device's ordinal) to `device`'s budget."""
    _routes.attach(device, cuda_device)


def detach(cuda_device):
    """Stop routing `cuda_device`."""
    _routes.detach(cuda_device)


def detach_device(device):
    """Detach every ordinal routed to `device` (called by Device.close)."""
    _routes.detach_device(device)


def detach_all():
    _routes.detach_all()


def attached():
    """{cuda ordinal: Device} currently routed."""
    return _routes.attached()


_bound = threading.local()  # this thread's graph, kept alive while bound


def bind_graph(graph, cuda_device=None):
    """Bind `graph` (a dynvram.Graph) to the calling thread: cudaMallocAsync
    calls of this thread on CUDA device `cuda_device` (default: the graph's
    device's ordinal) are offered to it first. The device must be attached.
    One graph per thread; binding another replaces it."""
    lib = load()
    if graph.closed:
        raise ValueError("graph is closed")
    dev = graph.device
    ordinal = dev.ordinal if cuda_device is None else int(cuda_device)
    r = lib.dv_interpose_graph_bind(ordinal, graph.handle)
    if r != 0:
        raise ValueError("dv_interpose_graph_bind(%d) failed: %s (is the "
                         "device attached?)"
                         % (ordinal, _native.result_name(r)))
    _bound.graph = (ordinal, graph)


def unbind_graph():
    """Undo bind_graph on the calling thread (no-op when none is bound)."""
    cur = getattr(_bound, "graph", None)
    if _lib is None or cur is None:
        return
    _lib.dv_interpose_graph_bind(cur[0], None)
    _bound.graph = None


def bound_graph():
    """The graph bound to the calling thread, or None."""
    cur = getattr(_bound, "graph", None)
    return cur[1] if cur else None


def stats(cuda_device=0):
    """The interposer's counters for `cuda_device` as a dict."""
    lib = load()
    st = InterposeStats()
    r = lib.dv_interpose_get_stats(int(cuda_device), ctypes.byref(st))
    if r != 0:
        raise ValueError("bad cuda device %r" % (cuda_device,))
    return {n: getattr(st, n) for n, _ in InterposeStats._fields_}


def pluggable_allocator():
    """A torch CUDAPluggableAllocator over the interposer's alloc/free pair
    (route 2). Imports torch."""
    import torch  # noqa: deferred: torch is optional
    path = library_path()
    if not path:
        raise OSError("dynvram interposer library not found")
    return torch.cuda.memory.CUDAPluggableAllocator(
        path, "dv_interpose_alloc", "dv_interpose_free")
