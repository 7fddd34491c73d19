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

Host I/O
    ``hostbuf_tensor(hostbuf)``: a CPU tensor over a dynvram.HostBuffer.
    ``load_safetensors_to_host / _to_vbar / _to_device``: a safetensors
    file read by the read pool into a pinned host buffer, into a VBAR, or
    into new GPU tensors (header parsed with json, dynvram.safetensors).

Allocation pressure
    ``install_interposer()`` before torch is imported, then
    ``attach_allocator(device)`` (offload() does it): torch's cudaMalloc /
    cudaFree go through dynvram's interposer, which evicts weight pages when
    torch needs memory. ``pluggable_allocator()`` is the alternative route
    (see dynvram.interpose for what each supports).

Allocation graphs
    With torch's cudaMallocAsync backend
    (``PYTORCH_CUDA_ALLOC_CONF=backend:cudaMallocAsync``) and the
    interposer installed, ``bind_graph(graph)`` routes the calling thread's
    allocations on the graph's stream inside its scopes into a
    dynvram.Graph: ``with graph.scope("block3"): y = block(x)`` gets the
    same addresses every step, with no driver call from the second on, so a
    torch.cuda.CUDAGraph captured inside the scope stays valid. bind_graph
    also wraps torch.cuda.CUDAGraph.capture_begin (once, when torch is
    imported): while it runs the thread's bound graph is paused (the first
    capture allocates the CUDA RNG's graph state, which is no part of the
    block), and when it returns the open scope passes are told that they
    run a capture (Graph.note_capture).
"""

import functools
import sys
import threading
import warnings

from . import VBAR
from . import interpose as _interpose

__all__ = ["Offloaded", "VBARTensor", "attach_allocator", "bind_graph",
           "guard_capture_begin", "hostbuf_tensor", "install_interposer",
           "load_safetensors_to_device",
           "load_safetensors_to_host", "load_safetensors_to_vbar", "offload",
           "pluggable_allocator", "tensor", "unbind_graph"]


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


def bind_graph(graph, cuda_device=None):
    """Route the calling thread's torch allocations into `graph` (a
    dynvram.Graph on the stream torch allocates on, e.g.
    ``torch.cuda.current_stream()``): attaches the graph's device to the
    interposer if needed, then binds the graph to this thread. Returns False
    when the interposer was not installed (nothing is routed then). With
    torch imported, also guards torch.cuda.CUDAGraph.capture_begin (see the
    module: the capture's set-up allocations bypass the graph)."""
    if not _interpose.is_loaded():
        return False
    ordinal = graph.device.ordinal if cuda_device is None else int(cuda_device)
    if _interpose.attached().get(ordinal) is not graph.device:
        _interpose.attach(graph.device, ordinal)
    _interpose.bind_graph(graph, ordinal)
    torch = sys.modules.get("torch")
    cls = getattr(getattr(torch, "cuda", None), "CUDAGraph", None)
    if cls is not None:
        guard_capture_begin(cls)
    return True


_guard_lock = threading.Lock()


def guard_capture_begin(cls):
    """Wrap ``cls.capture_begin`` (torch.cuda.CUDAGraph's; bind_graph does
    it) so that, on a thread with a bound graph and a scope open, the graph
    is paused while it runs and told when it returns that the open passes
    run a capture (Graph.note_capture). Why: torch's CUDAGraph::capture_begin
    registers the default CUDA generator with the graph before
    cudaStreamBeginCapture, and the first registration allocates the
    generator's graph state (two 8-byte tensors, seed_extragraph_ and
    offset_extragraph_, CUDAGeneratorState::register_graph) on the capture
    stream. Those live until the last CUDA graph is destroyed and are no
    part of the block: recorded in the scope they would break its pass just
    before the capture, and a pass that left its recording cannot replay
    inside a capture. Once per class; returns True when it wrapped it now."""
    with _guard_lock:
        orig = getattr(cls, "capture_begin")
        if getattr(orig, "_dynvram_guard", False):
            return False

        @functools.wraps(orig)
        def capture_begin(self, *args, **kwargs):
            g = _interpose.bound_graph()
            if g is None or g.closed or not g.depth:
                return orig(self, *args, **kwargs)
            g.pause()
            try:
                out = orig(self, *args, **kwargs)
            finally:
                g.resume()
            g.note_capture()
            return out

        capture_begin._dynvram_guard = True
        setattr(cls, "capture_begin", capture_begin)
        return True


def unbind_graph():
    """Stop routing the calling thread's allocations into its graph."""
    _interpose.unbind_graph()


def pluggable_allocator():
    """torch.cuda.memory.CUDAPluggableAllocator over the interposer's
    alloc/free pair; pass it to torch.cuda.memory.change_current_allocator
    before the first CUDA allocation, then attach_allocator(device)."""
    _interpose.load()
    return _interpose.pluggable_allocator()


# ---- offload --------------------------------------------------------------------

# The machinery lives in dynvram._offload (one concern per file).
from ._offload import Offloaded, offload  # noqa: E402,F401


# ---- host I/O: host buffer views and safetensors files --------------------------

# safetensors dtype -> torch attribute (absent in older torch: refused).
_ST_TORCH = {"F64": "float64", "F32": "float32", "F16": "float16",
             "BF16": "bfloat16", "I64": "int64", "I32": "int32",
             "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool",
             "U16": "uint16", "U32": "uint32", "U64": "uint64",
             "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2"}


def _st_dtype(torch, name):
    dt = getattr(torch, _ST_TORCH.get(name, ""), None)
    if dt is None:
        raise ValueError("safetensors dtype %s has no torch dtype in torch %s"
                         % (name, torch.__version__))
    return dt


def hostbuf_tensor(hostbuf, offset=0, size=None, dtype=None, shape=None):
    """A CPU tensor over `hostbuf` bytes [offset, offset + size) (all of it
    by default): zero-copy, writable, 1-D uint8 unless `dtype`/`shape` say
    otherwise. While it lives the buffer refuses to truncate below it."""
    torch = _torch()
    raw = torch.from_dlpack(hostbuf.view(offset, size))
    if dtype is not None:
        raw = raw.view(dtype)
    return raw.view(tuple(shape)) if shape is not None else raw


def _typed(torch, raw, info):
    return raw.view(_st_dtype(torch, info.dtype)).view(info.shape)


def load_safetensors_to_host(path, device, hostbuf=None, register=True,
                             reader=None, mark_cold=False):
    """Read every tensor of a safetensors file into a (pinned) HostBuffer
    of `device` with one call of the read pool; returns (tensors, hostbuf):
    a dict name -> CPU tensor viewing the buffer (file order kept). A
    `hostbuf` given is extended; else one is made to fit."""
    from .hostio import HostBuffer, ModelFile, read_file
    from .safetensors import read_header
    torch = _torch()
    infos, _meta, _start = read_header(path)
    real = [t for t in infos if t.nbytes]
    first = real[0].begin if real else 0
    span = real[-1].end - first if real else 0
    if hostbuf is None:
        hostbuf = HostBuffer(device, max(span, 1), register=register)
    base = hostbuf.extend(span) if span else hostbuf.size
    if span:
        with ModelFile(path, map=False) as f:
            read_file(f, first, span, hostbuf, offset=base, reader=reader,
                      mark_cold=mark_cold)
    out = {}
    for t in infos:
        if not t.nbytes:
            out[t.name] = torch.empty(t.shape, dtype=_st_dtype(torch, t.dtype))
            continue
        raw = hostbuf_tensor(hostbuf, base + t.begin - first, t.nbytes)
        out[t.name] = _typed(torch, raw, t)
    return out, hostbuf


class VBARTensor:
    """Where load_safetensors_to_vbar put a tensor: its VBAR allocation,
    dtype and shape, and the generation saved after its bytes were read (a
    later fault returning the same generation means they are still there).
    ``tensor()`` views it; valid while the range is faulted and pinned."""

    __slots__ = ("vbar", "allocation", "dtype", "shape", "generation")

    def __init__(self, vbar, allocation, dtype, shape, generation):
        self.vbar = vbar
        self.allocation = allocation
        self.dtype = dtype
        self.shape = shape
        self.generation = generation

    def tensor(self):
        return tensor(self.vbar, self.allocation.offset, self.shape,
                      _st_dtype(_torch(), self.dtype))


def load_safetensors_to_vbar(path, vbar, reader=None, mark_cold=False,
                             stream=0):
    """Place every tensor of a safetensors file in `vbar` (vbar.alloc, file
    order: the file's first tensors get the lowest offsets, which stay
    resident first) and read its bytes there through the read pool: each
    range is faulted, read (staging ring -> device) and unpinned. Returns a
    dict name -> VBARTensor. Raises MemoryError when a tensor's range cannot
    be made resident (the VBAR's device is full of higher-priority data)."""
    from .hostio import ModelFile, read_file
    from .safetensors import read_header
    infos, _meta, _start = read_header(path)
    out = {}
    with ModelFile(path, map=False) as f:
        for t in infos:
            a = vbar.alloc(max(t.nbytes, 1))
            gen = vbar.fault(a.offset, a.size)
            if gen is None:
                raise MemoryError("%s: tensor %r (%d bytes) cannot be made "
                                  "resident in the VBAR" % (path, t.name,
                                                            t.nbytes))
            try:
                if t.nbytes:
                    read_file(f, t.begin, t.nbytes, vbar, offset=a.offset,
                              reader=reader, mark_cold=mark_cold,
                              device=vbar.device, stream=stream)
            finally:
                vbar.unpin(a.offset, a.size, _stream_of(stream))
            out[t.name] = VBARTensor(vbar, a, t.dtype, t.shape, gen)
    return out


def _stream_of(stream):
    return int(getattr(stream, "cuda_stream", stream) or 0)


def load_safetensors_to_device(path, device, torch_device=None, reader=None,
                               mark_cold=False, stream=0):
    """Read every tensor of a safetensors file into new torch tensors on the
    GPU of dynvram Device `device` (torch_device default: its "cuda:N"),
    straight from the read pool's pinned ring: no pageable copy. Returns a
    dict name -> tensor."""
    from .hostio import ModelFile, read_file
    from .safetensors import read_header
    torch = _torch()
    tdev = torch_device or _torch_device(device)
    infos, _meta, _start = read_header(path)
    out = {}
    with ModelFile(path, map=False) as f:
        for t in infos:
            raw = torch.empty(t.nbytes, dtype=torch.uint8, device=tdev)
            if t.nbytes:
                read_file(f, t.begin, t.nbytes, raw.data_ptr(), device=device,
                          reader=reader, mark_cold=mark_cold, stream=stream)
            out[t.name] = _typed(torch, raw, t)
    return out
