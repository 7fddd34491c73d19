# SPDX-License-Identifier: Apache-2.0
"""dynvram: GPU memory for model weights through virtual memory.

Each model's weights live in a VBAR, a reserved range of device virtual
address space that costs no memory. ``VBAR.fault(offset, size)`` maps memory
under a range just before it is used and returns a *generation*; when memory
is short it returns ``None`` (offloaded) and the caller streams that weight
instead. ``VBAR.unpin`` ends the use. The project's README.md explains the
terms ("Concepts") and the residency rules ("The policy, exactly").

Errors: invalid arguments raise ``ValueError`` (``InvalidArgumentError``),
out of memory raises ``MemoryError`` (``OutOfMemoryError``), any other
failure raises ``dynvram.Error`` (a ``RuntimeError``). All three carry
``.code``, ``.name`` and ``.message`` (the library's last-error text).

``Graph(device, stream)`` is an allocation graph: the framework allocations
made on `stream` inside its scopes (``with graph.scope("block"):``) are
recorded once and replayed at the same addresses with no driver call
(``dynvram.torch.bind_graph`` routes torch's allocations into it).

Library messages go to the ``logging`` logger named ``"dynvram"``.
"""

import atexit as _atexit
import logging as _logging
import operator as _operator
import sys as _sys
import threading as _threading
import types as _types
from typing import NamedTuple as _NamedTuple

from . import _native
from ._graph import Graph, GraphBreakError
from ._views import CudaArrayView, DLPackView

Error = _native.Error
InvalidArgumentError = _native.InvalidArgumentError
OutOfMemoryError = _native.OutOfMemoryError

PAGE_RESIDENT = _native.PAGE_RESIDENT
USE_PLANNED_RESIDENT = _native.USE_PLANNED_RESIDENT
USE_RESIDENT = _native.USE_RESIDENT
RANGE_PREFER_RESIDENT = _native.RANGE_PREFER_RESIDENT
PAGE_PINNED = _native.PAGE_PINNED
DEFAULT_PAGE_SIZE = _native.DEFAULT_PAGE_SIZE

__version__ = "%d.%d.%d" % (
    _native.VERSION_MAJOR,
    _native.VERSION_MINOR,
    _native.VERSION_PATCH,
)

__all__ = [
    "Allocation",
    "CudaArrayView",
    "DLPackView",
    "Device",
    "DeviceBuffer",
    "HostBuffer",
    "ModelFile",
    "Reader",
    "Error",
    "Graph",
    "GraphBreakError",
    "InvalidArgumentError",
    "OutOfMemoryError",
    "Schedule",
    "VBAR",
    "backends",
    "flush_log",
    "get_log_level",
    "last_error",
    "read_file",
    "set_log_level",
]

# ---- logging ----------------------------------------------------------------

logger = _logging.getLogger("dynvram")

# dynvram level -> logging level (VERBOSE sits below DEBUG).
_LEVELS = {1: _logging.CRITICAL, 2: _logging.ERROR, 3: _logging.WARNING,
           4: _logging.INFO, 5: _logging.DEBUG, 6: 5}
_LEVEL_NAMES = {"none": 0, "critical": 1, "error": 2, "warning": 3, "info": 4,
                "debug": 5, "verbose": 6}


def _log_handler(level, message):
    logger.log(_LEVELS.get(level, _logging.INFO), "%s", message)


def set_log_level(level):
    """Set the library's level: a name (none, critical, error, warning, info,
    debug, verbose) or its number 0..6. Messages below it are never formatted.
    The logger "dynvram" filters again on its own level."""
    if isinstance(level, str):
        try:
            level = _LEVEL_NAMES[level.lower()]
        except KeyError:
            raise ValueError("unknown log level %r" % (level,)) from None
    _native.set_log_level(int(level))


def get_log_level():
    """The library's level as a name."""
    n = _native.get_log_level()
    for name, v in _LEVEL_NAMES.items():
        if v == n:
            return name
    return str(n)


def flush_log():
    """Emit messages logged by threads that did not hold the GIL (they are
    otherwise emitted by the main thread at its next opportunity)."""
    _native.flush_log()


_native.set_log_handler(_log_handler)


@_atexit.register
def _detach_log():
    # After interpreter shutdown nobody may drain the queue: go back to
    # stderr for whatever the library still logs.
    _native.flush_log()
    _native.set_log_handler(None)


def last_error():
    """The library's last error message on this thread."""
    return _native.last_error()


def backends():
    """Probe the built-in backends: a list of dicts (name, available,
    device_count, reason)."""
    return _native.backends()


# ---- devices ----------------------------------------------------------------


class Device(_native.Device):
    """An opened GPU (or the simulated host device).

    Device(backend=None, ordinal=0, vram_limit=0, headroom=0, page_size=0,
           host_capacity=0, pool_limit=None, fence_interval=0,
           backend_options=None, watermark_recovery=None)

    backend: "cuda", "hip", "levelzero", "host" or None for automatic
    selection (DYNVRAM_BACKEND, else the first available). vram_limit caps
    what dynvram may hold (simulates a smaller GPU); headroom is free memory
    it never uses; page_size is the residency unit (0 = 32 MiB, rounded up to
    the backend's granularity); host_capacity sizes the host backend's
    simulated memory; backend_options is the backend's "key=value,..."
    string (host: capacity=6G; cuda: nvml=1, free memory from NVML);
    watermark_recovery True/False turns watermark recovery on or off
    (None: the default, on unless DYNVRAM_WATERMARK_RECOVERY=0).
    set_headroom() changes the headroom later. Usable as a context manager
    (closes on exit).
    """

    def __init__(self, backend=None, ordinal=0, vram_limit=0, headroom=0,
                 page_size=0, host_capacity=0, pool_limit=None,
                 fence_interval=0, backend_options=None,
                 watermark_recovery=None):
        super().__init__(backend, ordinal, vram_limit, headroom, page_size,
                         host_capacity, pool_limit, fence_interval,
                         backend_options, watermark_recovery)

    @property
    def headroom(self):
        """Bytes of free device memory never used (set_headroom changes
        it)."""
        return self.get_headroom()

    def caps(self):
        """Capabilities: backend, name, ordinal, flags, granularity,
        va_alignment, page_size, total_memory and the flag booleans fences,
        async_copy, host_register, host_accessible."""
        return _types.SimpleNamespace(**super().caps())

    def stats(self):
        """Counters and budget (budget, used, resident_bytes, pinned_bytes,
        pool_bytes, framework_bytes, faults_*, evictions, ...)."""
        return _types.SimpleNamespace(**super().stats())

    @property
    def backend(self):
        return super().caps()["backend"]

    def close(self):
        """Close the device (every VBAR must be closed first). Detaches it
        from the CUDA allocation interposer and the pluggable allocator
        first, if it was attached, and closes its default reader."""
        for route in ("interpose", "pluggable"):
            mod = _sys.modules.get(__name__ + "." + route)
            if mod is not None and not self.closed:
                mod.detach_device(self)
        if not self.closed:
            hostio.close_default_reader(self)
        super().close()

    def reader(self):
        """The device's shared read pool (a dynvram.Reader made on first
        use; Device.close closes it)."""
        return hostio.default_reader(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        if self.closed:
            return "<dynvram.Device closed>"
        c = super().caps()
        return "<dynvram.Device %s:%d %r page_size=%d>" % (
            c["backend"], c["ordinal"], c["name"], c["page_size"])


# ---- host I/O (dynvram/hostio.py) ------------------------------------------

# Device.close and Device.reader use it; it imports nothing from here.
from . import hostio  # noqa: E402
from .hostio import (DeviceBuffer, HostBuffer, ModelFile, Reader,  # noqa: E402
                     read_file)


# ---- VBARs ------------------------------------------------------------------


class Allocation(_NamedTuple):
    """A placement inside a VBAR: byte offset, size and device address."""
    offset: int
    size: int
    address: int


class _Pinned:
    """The context manager of VBAR.pinned (a plain class: several times
    cheaper than a generator-based one)."""

    __slots__ = ("vbar", "offset", "size", "stream", "gen")

    def __init__(self, vbar, offset, size, stream):
        self.vbar = vbar
        self.offset = offset
        self.size = size
        self.stream = stream
        self.gen = None

    def __enter__(self):
        self.gen = self.vbar.fault(self.offset, self.size)
        return self.gen

    def __exit__(self, *exc):
        if self.gen is not None:
            self.gen = None
            self.vbar.unpin(self.offset, self.size, self.stream)
        return False


class VBAR(_native.VBAR):
    """A reserved virtual range on `device` for one model's weights.

    Costs address space only; `size` is rounded up to whole pages. The new
    VBAR is on top of the device's priority list. Lower offsets are kept
    resident in preference to higher ones, so place the weights that should
    stay on the GPU first (alloc() is a bump allocator).

    The fast path is ``gen = vbar.fault(offset, size)`` (None when
    offloaded) and ``vbar.unpin(offset, size, stream)``; ``pinned()`` wraps
    the pair as a context manager.

    ``close()`` (also at the end of a ``with`` block) gives the pages and
    the address range back at once, unless views of the VBAR (``dlpack()``,
    ``cuda_array()``) or arrays made from them are still alive: then the
    VBAR is closed for every call at once, moved to the bottom of the
    priority list, and given back when the last of them is gone
    (``exports``, ``released``). Reading a view outside a fault..unpin
    window is undefined (see dynvram._views).
    """

    def __init__(self, device, size):
        super().__init__(device, size)
        self._bump = 0
        self._bump_lock = _threading.Lock()

    # -- placement --

    @property
    def allocated(self):
        """Bytes handed out by alloc() so far (the bump pointer)."""
        return self._bump

    def alloc(self, nbytes, align=512):
        """Place `nbytes` at the next offset aligned to `align` (a power of
        two). Returns Allocation(offset, size, address). Uses no memory.
        Raises MemoryError when the VBAR is full, ValueError on bad input
        or when the VBAR is closed."""
        nbytes = _operator.index(nbytes)
        align = _operator.index(align)
        if self.closed:
            raise ValueError("VBAR is closed")
        if nbytes <= 0:
            raise ValueError("nbytes must be positive")
        if align <= 0 or align & (align - 1):
            raise ValueError("align must be a power of two")
        with self._bump_lock:
            off = (self._bump + align - 1) & ~(align - 1)
            if off + nbytes > self.size:
                raise MemoryError(
                    "VBAR full: %d bytes at offset %d exceed its %d bytes"
                    % (nbytes, off, self.size))
            self._bump = off + nbytes
        return Allocation(off, nbytes, self.base + off)

    def reset_allocations(self):
        """Forget every placement (the bump pointer returns to 0)."""
        with self._bump_lock:
            self._bump = 0

    # -- residency --

    def pinned(self, offset, size, stream=0):
        """``with vbar.pinned(off, n) as gen:`` faults on entry (gen is None
        when offloaded) and unpins on exit (only when the fault pinned),
        also when the body raises."""
        return _Pinned(self, offset, size, stream)

    @property
    def watermark(self):
        """In pages: faults at or above it are offloaded."""
        return self.info()["watermark"]

    @property
    def watermark_limit(self):
        """In pages: eviction never goes below it."""
        return self.info()["watermark_limit"]

    @property
    def resident_bytes(self):
        return self.info()["resident_bytes"]

    @property
    def priority_rank(self):
        """0 = top of the device's priority list."""
        return self.info()["priority_rank"]

    def residency(self, first_page=0, count=None, as_bytes=False):
        """Per-page flags (PAGE_RESIDENT | PAGE_PINNED): a list of ints, or
        bytes with as_bytes=True."""
        flags = super().residency(first_page, count)
        return flags if as_bytes else list(flags)

    # -- views --

    def dlpack(self, offset, nbytes):
        """A DLPack producer over the range (torch.from_dlpack, numpy
        .from_dlpack on the host backend): 1-D uint8, writable. The bytes
        are defined only while the range is faulted and pinned. ValueError
        for a closed VBAR or a range outside it."""
        return DLPackView(self, offset, nbytes)

    def cuda_array(self, offset, nbytes):
        """An object with __cuda_array_interface__ over the range (same
        rules as dlpack())."""
        return CudaArrayView(self, offset, nbytes)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        if self.closed:
            return "<dynvram.VBAR closed>"
        return "<dynvram.VBAR base=0x%x size=%d pages=%d>" % (
            self.base, self.size, self.page_count)


# ---- streaming ----------------------------------------------------------------

_PLACEMENTS = {"spread": _native.PLACEMENT_SPREAD,
               "prefix": _native.PLACEMENT_PREFIX}


class Schedule(_native.Schedule):
    """A streaming schedule over a VBAR (C: include/dynvram_stream.h).

    Schedule(vbar, ranges, ring_slots=0, slot_size=0, activation_reserve=0,
             placement="spread", keep=None)

    ranges: the uses of one step in order, each (offset, size, src_address)
    or (offset, size, src_address, flags); a range may be used more than
    once (a tied weight). src_address points at the range's bytes in host
    memory (pinned for speed), which must stay valid and unchanged: pass
    the objects owning them as `keep` and the schedule holds them.
    ring_slots (default 2) slots of slot_size bytes (default the largest
    range) are device memory counted in the budget. placement "spread"
    keeps resident ranges spread through the step (so a 2-slot ring keeps
    the copy engine busy), "prefix" keeps the first ones.

    Per use i, in order (after the last comes use 0 of the next step):
    ``addr = s.acquire(i, stream)`` gives the device address holding its
    bytes (its VBAR address when resident, else a ring slot), with `stream`
    ordered after the copy that brought them, or None when it can be
    neither (larger than a slot, or every slot held: copy it yourself, and
    do not release it); ``s.release(i, stream)`` after launching the work
    that reads it. The VBAR cannot be closed while the schedule lives.
    """

    def __init__(self, vbar, ranges, ring_slots=0, slot_size=0,
                 activation_reserve=0, placement="spread", keep=None):
        p = _PLACEMENTS.get(placement, placement)
        super().__init__(vbar, ranges, ring_slots, slot_size,
                         activation_reserve, p, keep)

    def info(self):
        """Counters and sizes (dv_schedule_info_t): count, ranges,
        ring_base, slot_stride, slot_size, ring_slots, placement, steps,
        capacity_bytes, planned_bytes, planned_ranges, replans, acquires,
        resident_hits, streamed, offloaded, copies, copied_bytes, refills,
        deferred, host_waits."""
        return _types.SimpleNamespace(**super().info())

    def plan(self, as_bytes=False):
        """Per use: USE_PLANNED_RESIDENT | USE_RESIDENT flags."""
        flags = super().plan()
        return flags if as_bytes else list(flags)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        if self.closed:
            return "<dynvram.Schedule closed>"
        return "<dynvram.Schedule %d uses ring=0x%x+%d>" % (
            self.count, self.ring_base, self.ring_bytes)
