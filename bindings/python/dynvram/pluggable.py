# SPDX-License-Identifier: Apache-2.0
"""torch's allocations under a dynvram budget through
torch.cuda.memory.CUDAPluggableAllocator, on the CUDA driver API
(bindings/interpose/dv_pluggable.h).

The route for PyTorch builds that the interposer (dynvram.interpose)
cannot reach: PyTorch's CUDA 13 builds for Windows link the CUDA runtime
statically. It works on Linux too. torch's caching allocator is replaced:
each tensor is a cuMemAllocAsync on its stream (the driver's pool caches
freed blocks), counted in the attached device's budget, evicting weight
pages before it would fail. It must be installed before torch's first CUDA
allocation (torch refuses to swap an allocator already in use)::

    import dynvram, dynvram.pluggable as pl
    dev = dynvram.Device("cuda")
    pl.attach(dev)                 # CUDA ordinal -> dynvram device
    pl.install()                   # torch.cuda.memory.change_current_allocator

``library_path()`` names the shared library (``_pluggable`` next to this
file, or DYNVRAM_PLUGGABLE_LIB).
"""
import ctypes
import glob
import os
import threading

from . import _native
from ._routes import Routes as _Routes

__all__ = ["allocator", "attach", "attached", "detach", "detach_device",
           "driver_loaded", "install", "library_path", "load", "stats"]

_lock = threading.Lock()
_lib = None
_allocator = None


class PluggableStats(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint64) for n in (
        "allocs", "frees", "live_bytes", "live_count", "budget_refusals",
        "oom_retries", "oom_evicted", "failures")]


def library_path():
    """DYNVRAM_PLUGGABLE_LIB, else the library shipped in this package; None
    when there is none."""
    env = os.environ.get("DYNVRAM_PLUGGABLE_LIB")
    if env:
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    for pat in ("_pluggable*.so", "_pluggable*.pyd", "_pluggable*.dll"):
        found = sorted(glob.glob(os.path.join(here, pat)))
        if found:
            return found[0]
    return None


def load():
    """Load the library (once); returns the ctypes handle. OSError when it
    is not there."""
    global _lib
    with _lock:
        if _lib is not None:
            return _lib
        path = library_path()
        if not path:
            raise OSError("dynvram's pluggable allocator library is not in "
                          "%s" % os.path.dirname(os.path.abspath(__file__)))
        lib = ctypes.CDLL(path)
        lib.dv_pluggable_attach.argtypes = [ctypes.c_int, ctypes.c_void_p,
                                            ctypes.c_void_p]
        lib.dv_pluggable_attach.restype = ctypes.c_int
        lib.dv_pluggable_detach.argtypes = [ctypes.c_int]
        lib.dv_pluggable_detach.restype = ctypes.c_int
        lib.dv_pluggable_get_stats.argtypes = [
            ctypes.c_int, ctypes.POINTER(PluggableStats)]
        lib.dv_pluggable_get_stats.restype = ctypes.c_int
        lib.dv_pluggable_driver_loaded.argtypes = [ctypes.c_char_p,
                                                   ctypes.c_size_t]
        lib.dv_pluggable_driver_loaded.restype = ctypes.c_int
        lib.dv_pluggable_alloc.argtypes = [ctypes.c_size_t, ctypes.c_int,
                                           ctypes.c_void_p]
        lib.dv_pluggable_alloc.restype = ctypes.c_void_p
        lib.dv_pluggable_free.argtypes = [ctypes.c_void_p, ctypes.c_size_t,
                                          ctypes.c_int, ctypes.c_void_p]
        lib.dv_pluggable_free.restype = None
        _lib = lib
        return lib


_routes = _Routes('dv_pluggable', load, lambda: _lib)


def is_loaded():
    return _lib is not None


def driver_loaded():
    """(True, "") when the CUDA driver was opened, else (False, reason)."""
    lib = load()
    buf = ctypes.create_string_buffer(512)
    ok = lib.dv_pluggable_driver_loaded(buf, len(buf))
    return bool(ok), buf.value.decode(errors="replace")


def attach(device, cuda_device=None):
    """Count allocations on CUDA ordinal `cuda_device` (default: the
    device's ordinal) in `device`'s budget."""
    _routes.attach(device, cuda_device)


def detach(cuda_device):
    _routes.detach(cuda_device)


def detach_device(device):
    """Detach every ordinal routed to `device`."""
    _routes.detach_device(device)


def attached():
    """{cuda ordinal: Device} currently routed."""
    return _routes.attached()


def stats(cuda_device=0):
    lib = load()
    st = PluggableStats()
    if lib.dv_pluggable_get_stats(int(cuda_device), ctypes.byref(st)) != 0:
        raise ValueError("bad cuda device %r" % (cuda_device,))
    return {n: getattr(st, n) for n, _ in PluggableStats._fields_}


def allocator():
    """torch.cuda.memory.CUDAPluggableAllocator over the library (made
    once). Imports torch; AttributeError on a torch without it (< 2.0)."""
    global _allocator
    import torch  # noqa: deferred: torch is optional
    with _lock:
        if _allocator is None:
            path = library_path()
            if not path:
                raise OSError("dynvram's pluggable allocator library is "
                              "missing")
            _allocator = torch.cuda.memory.CUDAPluggableAllocator(
                path, "dv_pluggable_alloc", "dv_pluggable_free")
        return _allocator


def install():
    """Make it torch's CUDA allocator (before torch's first CUDA
    allocation). RuntimeError from torch when it is too late."""
    import torch  # noqa: deferred
    torch.cuda.memory.change_current_allocator(allocator())
