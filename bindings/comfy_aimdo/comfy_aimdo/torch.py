# SPDX-License-Identifier: Apache-2.0
"""comfy_aimdo.torch: torch tensors over dynvram memory.

torch is imported when a function here is first called, never at import,
so importing this module before ``control.init()`` keeps the interposer's
load order intact.

* ``aimdo_to_tensor(alloc, device)``: a writable 1-D uint8 tensor over a
  ModelVBAR allocation's bytes: a CUDA tensor on a GPU, a CPU tensor on
  dynvram's host backend (DYNVRAM_BACKEND=host). Zero-copy (DLPack); it
  keeps the VBAR's address range reserved while it lives. Its bytes are
  defined only while the allocation is faulted and pinned.
* ``hostbuf_to_tensor(hostbuf)``: a CPU uint8 tensor over a HostBuffer's
  ``size`` bytes (it keeps the buffer alive).
* ``get_tensor_from_raw_ptr(ptr, size, device)``: uint8 tensor over raw
  memory: device memory on a CUDA/ROCm device, host memory for "cpu".
* ``get_torch_allocator()``: dynvram's torch.cuda.memory
  .CUDAPluggableAllocator (stream-ordered cudaMallocAsync under the
  budget), for builds where symbol interposition cannot reach torch (the
  route for Windows: see the README). None where it is not available.
* ``CUDAPluggableAllocator``: torch's class (torch.cuda.memory
  .CUDAPluggableAllocator).
"""
import ctypes
import threading

__all__ = ["CUDAPluggableAllocator", "aimdo_to_tensor", "get_torch_allocator",
           "get_tensor_from_raw_ptr", "hostbuf_to_tensor"]

_lock = threading.Lock()
_allocator = None


def _torch():
    import torch
    return torch


def aimdo_to_tensor(alloc, device=None):
    """Writable 1-D uint8 tensor over the bytes of `alloc`: a tuple from
    ModelVBAR.alloc or VRAMBuffer.get. `device` is accepted for
    compatibility: the tensor is on the allocation's own device."""
    torch = _torch()
    from dynvram import torch as dvtorch
    vbar, address, size = alloc
    if not hasattr(vbar, "_vbar"):  # a VRAMBuffer: plain device memory
        return _buffer_tensor(torch, vbar, address, size)
    if size == 0:
        return torch.empty(0, dtype=torch.uint8,
                           device=dvtorch._torch_device(vbar._vbar))
    try:
        return dvtorch.tensor(vbar._vbar, address - vbar.base_addr, (size,),
                              torch.uint8)
    except ValueError as exc:
        raise RuntimeError("aimdo_to_tensor: %s" % exc) from exc


def _buffer_tensor(torch, buf, address, size):
    """uint8 tensor over [address, +size) of a VRAMBuffer, keeping it
    alive."""
    if address < buf.base_addr or address + size > buf.base_addr + \
            buf.max_size or size < 0:
        raise RuntimeError("aimdo_to_tensor: [0x%x, +%d) is outside the "
                           "VRAMBuffer" % (address, size))
    if buf._backend == "host":
        if size == 0:
            return torch.empty(0, dtype=torch.uint8)
        return torch.frombuffer(_host_array(address, size, buf),
                                dtype=torch.uint8)
    dev = torch.device("cuda", buf.device)
    if size == 0:
        return torch.empty(0, dtype=torch.uint8, device=dev)
    return torch.as_tensor(_RawCuda(address, size, buf), device=dev)


def _host_array(address, size, owner):
    """A ctypes uint8 array at `address` that keeps `owner` alive."""
    base = ctypes.c_uint8 * size

    class _Bytes(base):
        pass

    arr = _Bytes.from_address(address)
    arr._owner = owner
    return arr


def hostbuf_to_tensor(hostbuf):
    """CPU uint8 tensor over ``hostbuf.size`` bytes of a HostBuffer (its
    committed part). The tensor keeps the buffer alive; truncating the
    buffer under it is the caller's error, as with any raw pointer."""
    torch = _torch()
    size = int(hostbuf.size)
    if size == 0:
        return torch.empty(0, dtype=torch.uint8)
    arr = _host_array(hostbuf.get_raw_address(), size, hostbuf)
    return torch.frombuffer(arr, dtype=torch.uint8)


class _RawCuda:
    """__cuda_array_interface__ over raw device memory (uint8, 1-D)."""

    def __init__(self, ptr, size, owner=None):
        self.owner = owner  # kept alive with the tensor
        self.__cuda_array_interface__ = {
            "shape": (size,), "typestr": "|u1", "data": (ptr, False),
            "strides": None, "version": 3, "stream": None}


def get_tensor_from_raw_ptr(ptr, size, device):
    """uint8 tensor of `size` bytes at `ptr` on `device` (a torch device or
    its name; "cpu" for host memory). The memory must stay valid while the
    tensor lives."""
    torch = _torch()
    dev = torch.device(device)
    ptr, size = int(ptr), int(size)
    if size < 0 or ptr < 0:
        raise ValueError("get_tensor_from_raw_ptr: bad pointer or size")
    if size == 0:
        return torch.empty(0, dtype=torch.uint8, device=dev)
    if dev.type == "cpu":
        return torch.frombuffer(_host_array(ptr, size, None),
                                dtype=torch.uint8)
    return torch.as_tensor(_RawCuda(ptr, size), device=dev)


def get_torch_allocator():
    """dynvram's torch.cuda.memory.CUDAPluggableAllocator, made once: the
    driver-API pair of dynvram.pluggable where that is the pressure route
    (Windows; init_devices has installed it into torch already), else the
    interposer's stream-ordered pair. Either way its allocations are
    counted in the device budget and evict weight pages. None where there
    is none (no CUDA, torch < 2.0, no library)."""
    global _allocator
    with _lock:
        if _allocator is None:
            from . import control
            if control.lib is None or control._state.backend != "cuda":
                return None
            try:
                if control.pressure_status()[0] == "pluggable":
                    from dynvram import pluggable
                    _allocator = pluggable.allocator()
                else:
                    from dynvram import torch as dvtorch
                    _allocator = dvtorch.pluggable_allocator()
            except (OSError, AttributeError, RuntimeError) as exc:
                control.logger.info("comfy_aimdo: no pluggable allocator: "
                                    "%s", exc)
                return None
        return _allocator


def __getattr__(name):
    # PEP 562: torch's class, resolved only when asked for.
    if name == "CUDAPluggableAllocator":
        torch = _torch()
        cls = getattr(torch.cuda.memory, "CUDAPluggableAllocator", None)
        if cls is None:
            raise AttributeError("CUDAPluggableAllocator: torch %s has none "
                                 "(torch >= 2.0 has it)" % torch.__version__)
        return cls
    raise AttributeError("module %r has no attribute %r" % (__name__, name))

