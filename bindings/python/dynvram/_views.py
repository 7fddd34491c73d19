# SPDX-License-Identifier: Apache-2.0
"""Zero-copy views of a VBAR range for array libraries.

``DLPackView`` implements the DLPack protocol (``__dlpack__`` and
``__dlpack_device__``): ``torch.from_dlpack(view)`` or
``numpy.from_dlpack(view)`` (host backend) give a writable 1-D uint8 array
over the range. The consumer takes the device from the DLPack struct rather
than by asking the driver about the pointer, so a view can be made while the
pages are not mapped. ``CudaArrayView`` exposes ``__cuda_array_interface__``
(version 3) for consumers that prefer it (CuPy, Numba, torch.as_tensor).

A view holds a reference to its VBAR, so the address range outlives it. The
bytes are only valid while the range is faulted and pinned (between
``fault`` and ``unpin``); using a view outside that window reads unmapped or
stale memory, exactly as with a raw pointer.
"""

from . import _native

# DLPack device types.
DL_CPU = 1
DL_CUDA = 2
DL_ROCM = 10
DL_ONEAPI = 14

_BACKEND_DL = {"cuda": DL_CUDA, "hip": DL_ROCM, "levelzero": DL_ONEAPI,
               "host": DL_CPU}


def _check_range(vbar, offset, nbytes):
    offset = int(offset)
    nbytes = int(nbytes)
    if offset < 0 or nbytes <= 0 or offset + nbytes > vbar.size:
        raise ValueError("range [%d, +%d) outside the VBAR's %d bytes"
                         % (offset, nbytes, vbar.size))
    return offset, nbytes


class DLPackView:
    """DLPack producer over ``nbytes`` bytes at ``offset`` of ``vbar``."""

    __slots__ = ("vbar", "offset", "nbytes", "address", "_device")

    def __init__(self, vbar, offset, nbytes):
        self.vbar = vbar
        self.offset, self.nbytes = _check_range(vbar, offset, nbytes)
        self.address = vbar.base + self.offset
        backend = vbar.device.caps().backend
        dl_type = _BACKEND_DL.get(backend, DL_CPU)
        ordinal = vbar.device.ordinal if dl_type != DL_CPU else 0
        self._device = (dl_type, ordinal)

    def __dlpack_device__(self):
        return self._device

    def __dlpack__(self, stream=None, max_version=None, dl_device=None,
                   copy=None, **future):
        # The memory is ordered by the caller's own fault/unpin protocol, so
        # there is no producer stream to synchronize with. A legacy
        # ("dltensor") capsule is a valid answer to any max_version.
        if copy:
            raise BufferError("dynvram views are zero-copy")
        return _native.dlpack_capsule(self.address, self.nbytes,
                                      self._device[0], self._device[1],
                                      self.vbar)


class CudaArrayView:
    """``__cuda_array_interface__`` over a VBAR range (uint8, 1-D)."""

    __slots__ = ("vbar", "offset", "nbytes", "address")

    def __init__(self, vbar, offset, nbytes):
        self.vbar = vbar
        self.offset, self.nbytes = _check_range(vbar, offset, nbytes)
        self.address = vbar.base + self.offset

    @property
    def __cuda_array_interface__(self):
        return {
            "shape": (self.nbytes,),
            "typestr": "|u1",
            "data": (self.address, False),  # writable
            "strides": None,
            "version": 3,
            "stream": None,  # no producer stream: nothing to wait for
        }
