# SPDX-License-Identifier: Apache-2.0
"""Host I/O: pinned growable host buffers, model files, the read pool and
growable device buffers (the C API of include/dynvram_io.h).

``HostBuffer(device, max_size)``
    Address space for up to ``max_size`` bytes at a fixed address, committed
    as it grows (``extend``), each part registered (pinned) with the
    device's backend by default; ``truncate``, ``register``/``unregister``,
    ``prewarm``, ``copy_to_device``; zero-copy views through DLPack
    (``numpy.from_dlpack(buf.view())``, ``dynvram.torch.hostbuf_tensor``).
``ModelFile(path_or_fd)``
    A file opened read-only and mapped whole (``address``); ``bounce()``
    drops the mapping's resident pages while every address stays valid.
``Reader(device, threads=0, slots=0, chunk_size=0)``
    A pool of positional-read threads with a small ring of pinned staging
    slots; ``Device.reader()`` is the device's default one.
``read_file(file, file_offset, size, dst, offset=0, stream=0, ...)``
    Read a file range into a HostBuffer, a DeviceBuffer, a VBAR range or a
    device address: reads overlap host-to-device copies. ``stream`` 0 (or
    None) is synchronous; a stream (an int or an object with
    ``cuda_stream``) gets the data ordered before its later work.
``DeviceBuffer(device, max_size)``
    Device memory at a fixed address that grows (``resize``, ``get``) in the
    device's budget: growing evicts weight pages instead of failing.

Every object is a context manager and is closed on garbage collection;
errors raise ValueError (bad arguments), MemoryError or dynvram.Error
(RuntimeError) with the library's message. Handles are validated by the
library, so a closed object raises instead of crashing.
"""

import os
import sys
import threading
import weakref

from . import _native
from ._views import DL_CPU

__all__ = ["DeviceBuffer", "HostBuffer", "ModelFile", "Reader",
           "close_default_reader", "read_file"]

_IS_WIN = sys.platform == "win32"


def _stream_int(stream):
    if stream is None:
        return 0
    s = getattr(stream, "cuda_stream", stream)
    return int(s)


class _Closable:
    """A library handle owned by this object, closed once."""

    _handle = None

    def _live(self):
        h = self._handle
        if h is None:
            raise ValueError("%s is closed" % type(self).__name__)
        return h

    @property
    def closed(self):
        return self._handle is None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        try:
            if self._handle is not None:
                self.close()
        except Exception:  # never raise from a finalizer
            pass


# ---- host buffers -----------------------------------------------------------


class _HostView:
    """A DLPack producer over part of a HostBuffer (1-D uint8, CPU). While a
    consumer (a numpy array, a torch tensor) holds it, the buffer refuses to
    truncate below it or to close."""

    __slots__ = ("buffer", "offset", "nbytes", "address", "__weakref__")

    def __init__(self, buffer, offset, nbytes):
        self.buffer = buffer
        self.offset = offset
        self.nbytes = nbytes
        self.address = buffer.address + offset

    def __dlpack_device__(self):
        return (DL_CPU, 0)

    def __dlpack__(self, stream=None, max_version=None, dl_device=None,
                   copy=None, **future):
        if copy:
            raise BufferError("dynvram views are zero-copy")
        self.buffer._live()
        return _native.dlpack_host_capsule(self.address, self.nbytes, self)


class HostBuffer(_Closable):
    """A growable host buffer of `device` whose address never moves.

    HostBuffer(device, max_size, size=0, register=True, prewarm=False):
    reserves `max_size` bytes of address space (no memory), then extends by
    `size` if given. `register` pins each part it grows by with the
    backend (ignored where the backend cannot); `prewarm` touches new pages
    on a few threads so first use does not page-fault.
    """

    def __init__(self, device, max_size, size=0, register=True,
                 prewarm=False):
        self.device = device
        self._views = weakref.WeakSet()
        self._lock = threading.Lock()
        self._handle = _native.hostbuf_create(device, int(max_size))
        self._register = bool(register) and device.caps().host_register
        self._prewarm = bool(prewarm)
        self.address = self.info()["address"]
        if size:
            self.extend(size)

    def info(self):
        """address, size, max_size, committed, registered_bytes,
        registrations, reads_in_flight."""
        return _native.hostbuf_info(self.device, self._live())

    @property
    def size(self):
        return self.info()["size"]

    @property
    def max_size(self):
        return self.info()["max_size"]

    def extend(self, nbytes, register=None, prewarm=None):
        """Grow by `nbytes` (zero-filled); returns the offset of the new part.
        `register`/`prewarm` default to the constructor's choice."""
        reg = self._register if register is None else bool(register)
        warm = self._prewarm if prewarm is None else bool(prewarm)
        flags = ((_native.HOSTBUF_REGISTER if reg else 0) |
                 (_native.HOSTBUF_PREWARM if warm else 0))
        return _native.hostbuf_extend(self.device, self._live(), int(nbytes),
                                      flags)

    def _check_views(self, size):
        for v in list(self._views):
            if v.offset + v.nbytes > size:
                raise BufferError(
                    "a view of [%d, +%d) is still alive: truncating to %d "
                    "would free memory under it" % (v.offset, v.nbytes, size))

    def truncate(self, size, unregister=True):
        """Shrink to `size` bytes; pages above it are decommitted. With
        `unregister` (default) registrations the cut reaches are unregistered
        (or split); without it such a truncate raises dynvram.Error
        (DV_ERROR_BUSY)."""
        with self._lock:
            self._check_views(int(size))
            flags = _native.HOSTBUF_UNREGISTER if unregister else 0
            _native.hostbuf_truncate(self.device, self._live(), int(size),
                                     flags)

    def register(self, offset, size):
        """Pin [offset, offset + size) (must overlap no registration)."""
        _native.hostbuf_register(self.device, self._live(), int(offset),
                                 int(size))

    def unregister(self, offset):
        """Unpin the registration that starts at `offset`."""
        _native.hostbuf_unregister(self.device, self._live(), int(offset))

    def registrations(self):
        """The live registrations: a list of (offset, size)."""
        return _native.hostbuf_registrations(self.device, self._live())

    def prewarm(self, offset=0, size=None, threads=0):
        """Make a range resident without changing its contents."""
        size = self.size - offset if size is None else size
        _native.hostbuf_prewarm(self.device, self._live(), int(offset),
                                int(size), int(threads))

    def copy_to_device(self, dst, offset=0, size=None, stream=0):
        """Copy [offset, offset + size) to the device address `dst`
        (asynchronous on `stream` where the backend's copies are)."""
        size = self.size - offset if size is None else size
        _native.hostbuf_copy_h2d(self.device, self._live(), int(offset),
                                 int(size), int(dst), _stream_int(stream))

    def read_file(self, file, file_offset, size, offset=0, mark_cold=False,
                  reader=None):
        """Read a file range into the buffer at `offset` (the read pool)."""
        read_file(file, file_offset, size, self, offset=offset,
                  mark_cold=mark_cold, reader=reader)

    def view(self, offset=0, size=None):
        """A DLPack producer (1-D uint8, CPU) over [offset, offset + size)."""
        cur = self.size
        size = cur - offset if size is None else int(size)
        offset = int(offset)
        if offset < 0 or size <= 0 or offset + size > cur:
            raise ValueError("view [%d, +%d) outside the buffer's %d bytes"
                             % (offset, size, cur))
        v = _HostView(self, offset, size)
        with self._lock:
            self._views.add(v)
        return v

    def __dlpack_device__(self):
        return (DL_CPU, 0)

    def __dlpack__(self, **kw):
        return self.view().__dlpack__(**kw)

    def close(self):
        """Unregister everything and release the address space."""
        if self._handle is None:
            return
        with self._lock:
            if len(self._views):
                raise BufferError("views of the host buffer are still alive")
            _native.hostbuf_destroy(self.device, self._handle)
            self._handle = None

    def __repr__(self):
        if self.closed:
            return "<dynvram.HostBuffer closed>"
        i = self.info()
        return "<dynvram.HostBuffer address=0x%x size=%d max_size=%d>" % (
            i["address"], i["size"], i["max_size"])


# ---- files -------------------------------------------------------------------


def _path_bytes(path):
    if _IS_WIN:
        return os.fspath(path).encode("utf-8")
    return os.fsencode(path)


class ModelFile(_Closable):
    """A file opened read-only and, by default, mapped whole.

    ModelFile(path_or_fd, map=True): `path_or_fd` is a path (str, bytes,
    os.PathLike), an int file descriptor (Windows: a HANDLE value) or an
    object with fileno(); a descriptor is duplicated, the caller keeps its
    own.
    """

    def __init__(self, path_or_fd, map=True):
        src = path_or_fd
        if hasattr(src, "fileno") and not isinstance(src, (str, bytes)):
            src = src.fileno()
        if isinstance(src, int):
            if _IS_WIN:
                import msvcrt
                src = msvcrt.get_osfhandle(src)
            self._handle = _native.file_open_native(src)
            self.path = None
        else:
            self._handle = _native.file_open(_path_bytes(src))
            self.path = os.fspath(src)
        info = _native.file_info(self._handle)
        self.size = info["size"]
        self.address = _native.file_map(self._handle) if map else 0

    def get(self):
        """The mapping's address (maps on first use)."""
        if not self.address:
            self.address = _native.file_map(self._live())
        return self.address

    def bounce(self):
        """Drop the mapping's resident pages (RSS falls); addresses stay
        valid. Returns True."""
        _native.file_bounce(self._live())
        return True

    def mark_cold(self, offset=0, size=None):
        """Drop the OS's cached pages of a range of the file."""
        size = self.size - offset if size is None else size
        _native.file_mark_cold(self._live(), int(offset), int(size))

    def fileno(self):
        """The file's own descriptor (HANDLE on Windows); do not close it."""
        return _native.file_info(self._live())["native"]

    def info(self):
        return _native.file_info(self._live())

    def close(self):
        if self._handle is not None:
            _native.file_close(self._handle)
            self._handle = None
            self.address = 0

    def __repr__(self):
        if self.closed:
            return "<dynvram.ModelFile closed>"
        return "<dynvram.ModelFile %r size=%d>" % (self.path, self.size)


# ---- readers -----------------------------------------------------------------


class Reader(_Closable):
    """A read pool of `device`: `threads` positional-read threads (0 =
    min(8, CPUs)), `slots` pinned staging slots for reads to device memory
    (0 = 2 per thread) of `chunk_size` bytes (0 = 8 MiB)."""

    def __init__(self, device, threads=0, slots=0, chunk_size=0):
        self.device = device
        self._handle = _native.reader_create(device, int(threads), int(slots),
                                             int(chunk_size))

    def info(self):
        """threads, slots, chunk_size, staging_bytes, staging_pinned,
        reads_in_flight, bytes_read, chunks, slot_waits, fence_waits."""
        return _native.reader_info(self.device, self._live())

    def close(self):
        if self._handle is not None:
            _native.reader_destroy(self.device, self._handle)
            self._handle = None


_default_readers = weakref.WeakKeyDictionary()
_default_lock = threading.Lock()


def default_reader(device):
    """The device's shared Reader (made on first use, default options)."""
    with _default_lock:
        r = _default_readers.get(device)
        if r is None or r.closed:
            r = Reader(device)
            _default_readers[device] = r
        return r


def close_default_reader(device):
    """Close the device's default reader, if it has one (Device.close does
    this first)."""
    with _default_lock:
        r = _default_readers.pop(device, None)
    if r is not None:
        r.close()


# ---- device buffers ----------------------------------------------------------


class DeviceBuffer(_Closable):
    """Device memory of `device` at a fixed address, up to `max_size` bytes,
    mapped in whole pages as it grows, counted in the device's budget."""

    def __init__(self, device, max_size):
        self.device = device
        self._handle = _native.devbuf_create(device, int(max_size))
        i = self.info()
        self.address = i["address"]
        self.max_size = i["max_size"]

    def info(self):
        """address, size, mapped, max_size."""
        return _native.devbuf_info(self.device, self._live())

    @property
    def size(self):
        return self.info()["size"]

    def resize(self, size):
        """Grow (evicting weight pages if needed) or shrink to `size`."""
        _native.devbuf_resize(self.device, self._live(), int(size))

    def get(self, size, offset=0):
        """Grow to at least offset + size; returns the address of offset."""
        end = int(offset) + int(size)
        if end > self.size:
            self.resize(end)
        return self.address + int(offset)

    def close(self):
        if self._handle is not None:
            _native.devbuf_destroy(self.device, self._handle)
            self._handle = None


# ---- reads -------------------------------------------------------------------


def _device_of(dst, device, reader):
    for d in (device, getattr(reader, "device", None),
              getattr(dst, "device", None)):
        if d is not None:
            return d
    raise ValueError("read_file to a device address needs device= or reader=")


def read_file(file, file_offset, size, dst, offset=0, stream=0,
              reader=None, mark_cold=False, device=None):
    """Read `size` bytes at `file_offset` of `file` into `dst` at `offset`.

    file: a ModelFile, a path, or an int descriptor / object with fileno().
    dst: a HostBuffer (read into host memory), a DeviceBuffer or a VBAR
    (device memory at its address + offset; a VBAR range must be faulted),
    or an int device address (needs device= or reader=).
    stream: 0/None synchronous, else the data is ordered before the work
    queued on that stream afterwards. reader: default `device`'s shared one.
    """
    own = None
    if not isinstance(file, ModelFile):
        own = file = ModelFile(file, map=False)
    try:
        flags = _native.READ_MARK_COLD if mark_cold else 0
        if isinstance(dst, HostBuffer):
            dev = dst.device
            rd = reader if reader is not None else default_reader(dev)
            _native.read_to_host(dev, rd._live(), file._live(),
                                 int(file_offset), int(size), dst._live(),
                                 int(offset), flags)
            return
        dev = _device_of(dst, device, reader)
        if isinstance(dst, int):
            addr = dst + int(offset)
        elif isinstance(dst, DeviceBuffer):
            addr = dst.address + int(offset)
        elif hasattr(dst, "base"):  # a VBAR
            addr = dst.base + int(offset)
        else:
            raise TypeError("dst must be a HostBuffer, DeviceBuffer, VBAR or "
                            "an int address")
        rd = reader if reader is not None else default_reader(dev)
        _native.read_to_device(dev, rd._live(), file._live(),
                               int(file_offset), int(size), addr,
                               _stream_int(stream), flags)
    finally:
        if own is not None:
            own.close()
