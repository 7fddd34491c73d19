# SPDX-License-Identifier: Apache-2.0
"""PyTorch integration: tensor views over VBAR ranges, one-call model
offload, and torch's own allocations under the dynvram budget.

torch is imported lazily (importing this module does not import it), so
``dynvram.torch.install_interposer()`` can run before ``import torch``.

Views
    ``tensor(vbar, offset, shape, dtype)``: a CUDA tensor of any dtype and
    shape over ``vbar`` bytes [offset, offset + nbytes), zero-copy and
    writable, on the VBAR's device. Valid while the range is pinned.

Offload
    ``offload(module, device="cuda:0", vram_limit=...)``: inference of a
    module larger than the budget; learns which module call reads which
    parameter on the first forward, then streams the weights with prefetch
    (a dynvram Schedule). See dynvram._offload.

Allocation pressure
    ``install_interposer()`` before torch is imported, then
    ``attach_allocator(device)`` (offload() does it): torch's cudaMalloc /
    cudaFree go through dynvram's interposer, which evicts weight pages when
    torch needs memory. ``pluggable_allocator()`` is the alternative route
    (see dynvram.interpose for what each supports).
"""

import sys
import warnings

from . import VBAR
from . import interpose as _interpose

__all__ = ["Offloaded", "attach_allocator", "install_interposer", "offload",
           "pluggable_allocator", "tensor"]


def _torch():
    import torch
    return torch


# ---- views --------------------------------------------------------------------


def _element_size(torch, dtype):
    return torch.empty((), dtype=dtype).element_size()


def tensor(vbar, offset, shape, dtype, via="dlpack"):
    """A tensor of `shape` and `dtype` over `vbar` at byte `offset`.

    via="dlpack" (default) builds it from a DLPack capsule that names the
    device explicitly, so it works whether or not the pages are mapped at
    that moment; via="cai" goes through __cuda_array_interface__ instead
    (torch asks the driver about the pointer, so the range must be
    mapped). Either way the result is a view: writes land in the VBAR,
    and it keeps the VBAR's address range reserved past ``vbar.close()``
    until it is freed (see dynvram._views; reading it outside a
    fault..unpin window is undefined).
    """
    torch = _torch()
    if isinstance(shape, int):
        shape = (shape,)
    shape = tuple(int(s) for s in shape)
    numel = 1
    for s in shape:
        numel *= s
    nbytes = numel * _element_size(torch, dtype)
    if nbytes == 0:
        return torch.empty(shape, dtype=dtype, device=_torch_device(vbar))
    if via == "dlpack":
        raw = torch.from_dlpack(vbar.dlpack(offset, nbytes))
    elif via == "cai":
        raw = torch.as_tensor(vbar.cuda_array(offset, nbytes),
                              device=_torch_device(vbar))
    else:
        raise ValueError("via must be 'dlpack' or 'cai'")
    return raw.view(dtype).view(shape)


def _torch_device(vbar_or_device):
    dev = vbar_or_device.device if isinstance(vbar_or_device, VBAR) \
        else vbar_or_device
    backend = dev.caps().backend
    if backend in ("cuda", "hip"):  # ROCm torch calls its devices "cuda"
        return "cuda:%d" % dev.ordinal
    if backend == "levelzero":
        return "xpu:%d" % dev.ordinal
    return "cpu"


# ---- allocation pressure --------------------------------------------------------


def install_interposer():
    """Load the CUDA allocation interposer into the global symbol scope.
    Must run before torch is imported; returns True when torch's allocations
    will go through it."""
    if "torch" in sys.modules:
        warnings.warn("dynvram: torch was imported before the interposer was "
                      "loaded; torch's cudaMalloc may already be bound to "
                      "libcudart (load it first, or use pluggable_allocator)",
                      RuntimeWarning, stacklevel=2)
    _interpose.load()
    return _interpose.is_active()


def attach_allocator(device, cuda_device=None):
    """Route torch's allocations on `cuda_device` (default: the device's
    ordinal) to `device`'s budget. Returns False when the interposer was not
    installed (nothing is routed then)."""
    if not _interpose.is_loaded():
        return False
    _interpose.attach(device, cuda_device)
    return True


def pluggable_allocator():
    """torch.cuda.memory.CUDAPluggableAllocator over the interposer's
    alloc/free pair; pass it to torch.cuda.memory.change_current_allocator
    before the first CUDA allocation, then attach_allocator(device)."""
    _interpose.load()
    return _interpose.pluggable_allocator()


# ---- offload --------------------------------------------------------------------

# The machinery lives in dynvram._offload (one concern per file).
from ._offload import Offloaded, offload  # noqa: E402,F401
