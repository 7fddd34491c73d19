# SPDX-License-Identifier: Apache-2.0
"""comfy_aimdo.vram_buffer: growable GPU buffers at a fixed address.

``VRAMBuffer(max_size, device)`` is a dynvram.DeviceBuffer: ``max_size``
bytes of address space on an initialised device, mapped in whole pages as
it grows. Its memory is counted in the device's budget like torch's own
allocations, so growing it evicts weight pages (lowest priority first)
instead of failing. ``get(size, offset=0)`` grows it to cover
[offset, offset + size) and returns ``(self, address, size)``, the shape
of a ModelVBAR allocation (comfy_aimdo.torch.aimdo_to_tensor takes both);
``size()`` is its current size. Failures raise RuntimeError. Needs
dynvram's host I/O (device buffers).
"""
import operator

from . import control
from ._missing import as_runtime_error, dynvram_attr

__all__ = ["VRAMBuffer"]


class VRAMBuffer:
    """VRAMBuffer(max_size, device): see the module."""

    def __init__(self, max_size, device):
        cls = dynvram_attr("DeviceBuffer", "host I/O (device buffers)",
                           "VRAMBuffer")
        ctx = control.get_devctx(device)
        try:
            self._buf = cls(ctx.device, operator.index(max_size))
        except (ValueError, MemoryError, RuntimeError, TypeError) as exc:
            raise as_runtime_error("VRAMBuffer(%r)" % (max_size,),
                                   exc) from exc
        self.device = ctx.device_id
        self.max_size = self._buf.max_size
        self.base_addr = self._buf.address
        self._backend = ctx.backend
        ctx.track(self)

    def get(self, size, offset=0):
        """Grow to cover [offset, offset + size); (self, address, size)."""
        try:
            size, offset = operator.index(size), operator.index(offset)
            if size < 0 or offset < 0:
                raise ValueError("negative size or offset")
            addr = self._buf.get(size, offset) if size else \
                self.base_addr + offset
        except (ValueError, MemoryError, RuntimeError, TypeError) as exc:
            raise as_runtime_error("VRAMBuffer.get(%r, %r)" % (size, offset),
                                   exc) from exc
        return (self, addr, size)

    def size(self):
        """Bytes the buffer covers now."""
        try:
            return self._buf.size
        except (ValueError, RuntimeError) as exc:
            raise as_runtime_error("VRAMBuffer.size", exc) from exc

    def _release(self):
        self._buf.close()

    def _describe(self):
        if self._buf.closed:
            return "VRAMBuffer 0x%x: released" % self.base_addr
        return "VRAMBuffer 0x%x: %d MiB of %d" % (
            self.base_addr, self._buf.size >> 20, self.max_size >> 20)

    def __repr__(self):
        return "<comfy_aimdo VRAMBuffer device=%d base=0x%x max_size=%d>" % (
            self.device, self.base_addr, self.max_size)
