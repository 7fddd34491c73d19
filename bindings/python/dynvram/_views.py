# SPDX-License-Identifier: Apache-2.0
"""Zero-copy views of a VBAR range for array libraries.

``DLPackView`` implements the DLPack protocol (``__dlpack__`` and
``__dlpack_device__``): ``torch.from_dlpack(view)`` or
``numpy.from_dlpack(view)`` (host backend) give a writable 1-D uint8 array
over the range. The consumer takes the device from the DLPack struct rather
than by asking the driver about the pointer, so a view can be made while the
pages are not mapped. ``CudaArrayView`` exposes ``__cuda_array_interface__``
(version 3) for consumers that prefer it (CuPy, Numba, torch.as_tensor).

Lifetime. A view, and every array made from it through DLPack, keeps its
VBAR's address range reserved: ``VBAR.close()`` while any of them is alive
closes the VBAR object at once (its calls and new views raise ValueError)
and gives the pages and the range back when the last of them is gone
(``VBAR.exports`` counts them, ``VBAR.released`` says when). So a stale array
never points into memory that was handed to something else.

Reading or writing a view outside a fault..unpin window is undefined: the
range is only guaranteed to be mapped, and to hold the bytes the caller put
there, while it is faulted and pinned. Outside it a page may be absent or
refilled. On the host backend an absent page (never faulted, or evicted) is
inaccessible memory and touching it kills the process with SIGSEGV; on a GPU
it is an illegal address that breaks the CUDA/HIP context. Making a view is
always allowed (before the fault, for instance); using it is the caller's
protocol, exactly as with a raw pointer.
"""

import operator

from . import _native

# DLPack device types.
DL_CPU = 1
DL_CUDA = 2
DL_ROCM = 10
DL_ONEAPI = 14

_BACKEND_DL = {"cuda": DL_CUDA, "hip": DL_ROCM, "levelzero": DL_ONEAPI,
               "host": DL_CPU}


def _check_range(vbar, offset, nbytes):
    if not isinstance(vbar, _native.VBAR):
        raise TypeError("vbar must be a dynvram.VBAR")
    offset = operator.index(offset)
    nbytes = operator.index(nbytes)
    if vbar.closed:
        raise ValueError("VBAR is closed: no new views of it")
    if nbytes <= 0:
        raise ValueError("a view needs a positive size, not %d" % nbytes)
    if offset < 0 or offset + nbytes > vbar.size:
        raise ValueError("range [%d, +%d) outside the VBAR's %d bytes"
                         % (offset, nbytes, vbar.size))
    return offset, nbytes


class DLPackView:
    """DLPack producer over ``nbytes`` bytes at ``offset`` of ``vbar``.

    Counted in ``vbar.exports`` while it lives, like each array made from it
    (see the module's notes on lifetime)."""

    __slots__ = ("vbar", "offset", "nbytes", "address", "_device", "_export")

    def __init__(self, vbar, offset, nbytes):
        self.offset, self.nbytes = _check_range(vbar, offset, nbytes)
        self._export = vbar._export()
        self.vbar = vbar
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
        # ValueError once the VBAR is closed: no new arrays from it.
        return _native.dlpack_capsule(self.vbar, self.offset, self.nbytes,
                                      self._device[0], self._device[1])


class CudaArrayView:
    """``__cuda_array_interface__`` over a VBAR range (uint8, 1-D).

    Consumers keep this object alive as long as their array (the protocol's
    rule), and it is counted in ``vbar.exports`` while it lives."""

    __slots__ = ("vbar", "offset", "nbytes", "address", "_export")

    def __init__(self, vbar, offset, nbytes):
        self.offset, self.nbytes = _check_range(vbar, offset, nbytes)
        self._export = vbar._export()
        self.vbar = vbar
        self.address = vbar.base + self.offset

    @property
    def __cuda_array_interface__(self):
        if self.vbar.closed:
            raise ValueError("VBAR is closed: no new arrays from its views")
        return {
            "shape": (self.nbytes,),
            "typestr": "|u1",
            "data": (self.address, False),  # writable
            "strides": None,
            "version": 3,
            "stream": None,  # no producer stream: nothing to wait for
        }
