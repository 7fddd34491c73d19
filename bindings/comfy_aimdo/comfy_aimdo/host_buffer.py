# SPDX-License-Identifier: Apache-2.0
"""comfy_aimdo.host_buffer: pinned growable host buffers and file reads.

``HostBuffer(size, prewarm=0, max_grow_size=0, mark_cold=True)`` is a
dynvram.HostBuffer of the first initialised device: address space for
``size + max_grow_size`` bytes reserved at a fixed address, ``size`` of it
committed at once and each part registered (pinned) with the GPU driver as
it grows. Its address never moves. ``prewarm`` (true) touches the initial
pages on a few threads so first use does not page-fault; ``mark_cold``
(true) is the default of the reads below: the file's pages are dropped
from the OS cache after reading (posix_fadvise DONTNEED), so loading a
model does not fill RAM twice.

  extend(size, reallocate=False, register=True) -> address of the new part
  truncate(size, do_unregister=True)   decommit (and unregister) above size
  get_raw_address()                    the buffer's first byte
  register(offset, size) / unregister(offset)
  read_file_slice(file, file_offset, size, offset=0, stream=0,
                  device_ptr=0, device=-1)
      read a file range into the buffer at `offset` through dynvram's read
      pool and, with `device_ptr`, copy it on to the GPU on `stream`

``read_file_to_device(file, file_offset, size, stream, device_ptr, device,
mark_cold=True)`` reads a file range straight to GPU memory through the
device's small pinned staging ring (reads overlap host-to-device copies);
``file`` is an int handle, an object with ``fileno()`` or a ModelMMAP;
stream 0 means synchronous. ``cleanup_file_reader()`` closes the read pools
(they are made again on the next read).

Every failure raises RuntimeError. Needs dynvram's host I/O.
"""
import operator

from . import control
from ._missing import as_runtime_error, dynvram_attr

__all__ = ["HostBuffer", "cleanup_file_reader", "read_file_to_device"]

_FEATURE = "host I/O (host buffers and file reads)"
_ERRORS = (ValueError, MemoryError, RuntimeError, OSError, TypeError,
           BufferError)


def _first_device(what):
    if not control.devctxs:
        raise RuntimeError("%s: no device is initialized (call "
                           "comfy_aimdo.control.init_devices first)" % what)
    return control.devctxs[0]


def _file_arg(file):
    """What dynvram.read_file takes: our ModelMMAP's open file, else the
    handle (an int or an object with fileno())."""
    inner = getattr(file, "_file", None)
    if inner is not None and type(file).__name__ == "ModelMMAP":
        return inner
    return file


class HostBuffer:
    """HostBuffer(size, prewarm=0, max_grow_size=0, mark_cold=True): see
    the module. Attribute ``size``: bytes committed."""

    def __init__(self, size, prewarm=0, max_grow_size=0, mark_cold=True):
        cls = dynvram_attr("HostBuffer", _FEATURE, "HostBuffer")
        ctx = _first_device("HostBuffer")
        try:
            size = operator.index(size)
            grow = operator.index(max_grow_size)
            if size < 0 or grow < 0:
                raise ValueError("negative size")
            self._buf = cls(ctx.device, max(size + grow, 1), size=size,
                            prewarm=bool(prewarm))
        except _ERRORS as exc:
            raise as_runtime_error("HostBuffer(%r)" % (size,), exc) from exc
        self.mark_cold = bool(mark_cold)
        self._ctx = ctx
        self._address = self._buf.address
        ctx.track(self)

    @property
    def size(self):
        """Bytes committed (readable and writable)."""
        try:
            return self._buf.size
        except _ERRORS as exc:
            raise as_runtime_error("HostBuffer.size", exc) from exc

    @property
    def max_size(self):
        return self._buf.max_size

    def get_raw_address(self):
        return self._address

    def extend(self, size, reallocate=False, register=True):
        """Grow by `size` bytes (zero-filled); the address of the new part.
        The buffer never moves, so `reallocate` has nothing to do."""
        try:
            off = self._buf.extend(operator.index(size),
                                   register=bool(register))
        except _ERRORS as exc:
            raise as_runtime_error("HostBuffer.extend(%r)" % (size,),
                                   exc) from exc
        return self._address + off

    def truncate(self, size, do_unregister=True):
        """Shrink to `size` bytes; with `do_unregister` the registrations
        above it are undone (else a registration in the way is an
        error)."""
        try:
            self._buf.truncate(operator.index(size),
                               unregister=bool(do_unregister))
        except _ERRORS as exc:
            raise as_runtime_error("HostBuffer.truncate(%r)" % (size,),
                                   exc) from exc

    def register(self, offset, size):
        try:
            self._buf.register(operator.index(offset), operator.index(size))
        except _ERRORS as exc:
            raise as_runtime_error("HostBuffer.register", exc) from exc

    def unregister(self, offset):
        try:
            self._buf.unregister(operator.index(offset))
        except _ERRORS as exc:
            raise as_runtime_error("HostBuffer.unregister", exc) from exc

    def read_file_slice(self, file, file_offset, size, offset=0, stream=0,
                        device_ptr=0, device=-1):
        """Read `size` bytes at `file_offset` of `file` into the buffer at
        `offset`; with `device_ptr`, then copy them to that device address
        on `stream` (0: synchronously)."""
        read_file = dynvram_attr("read_file", _FEATURE, "read_file_slice")
        try:
            read_file(_file_arg(file), operator.index(file_offset),
                      operator.index(size), self._buf,
                      offset=operator.index(offset),
                      mark_cold=self.mark_cold)
            if device_ptr:
                self._buf.copy_to_device(operator.index(device_ptr),
                                         operator.index(offset),
                                         operator.index(size), stream)
                if not stream:
                    self._ctx.device.stream_synchronize(0)
        except _ERRORS as exc:
            raise as_runtime_error("HostBuffer.read_file_slice", exc) \
                from exc

    def _release(self):
        self._buf.close()

    def _describe(self):
        if self._buf.closed:
            return "HostBuffer 0x%x: released" % self._address
        return "HostBuffer 0x%x: %d MiB of %d" % (
            self._address, self._buf.size >> 20, self._buf.max_size >> 20)

    def __repr__(self):
        return "<comfy_aimdo HostBuffer address=0x%x>" % self._address


def read_file_to_device(file, file_offset, size, stream, device_ptr, device,
                        mark_cold=True):
    """Read a file range straight to the device address `device_ptr` of
    initialised device `device`, through the read pool's pinned ring.
    stream 0: done when this returns; else ordered before the work queued
    on `stream` afterwards."""
    read_file = dynvram_attr("read_file", _FEATURE, "read_file_to_device")
    try:
        ctx = control.get_devctx(device)
        read_file(_file_arg(file), operator.index(file_offset),
                  operator.index(size), operator.index(device_ptr),
                  stream=stream, mark_cold=bool(mark_cold),
                  device=ctx.device)
    except _ERRORS as exc:
        raise as_runtime_error("read_file_to_device", exc) from exc


def cleanup_file_reader():
    """Close the devices' read pools (made again at the next read)."""
    dv = control.dynvram
    close = getattr(getattr(dv, "hostio", None), "close_default_reader", None)
    if close is None:
        return
    for ctx in list(control.devctxs):
        close(ctx.device)
