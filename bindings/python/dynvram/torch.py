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
    module larger than the budget. See ``Offloaded``.

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
"""

import sys
import threading
import warnings

from . import VBAR, Device
from . import interpose as _interpose

__all__ = ["Offloaded", "VBARTensor", "attach_allocator", "hostbuf_tensor",
           "install_interposer", "load_safetensors_to_device",
           "load_safetensors_to_host", "load_safetensors_to_vbar", "offload",
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


class _Entry:
    """One submodule whose own parameters dynvram manages."""

    __slots__ = ("module", "names", "host", "offsets", "offset", "size",
                 "gen", "views", "hooks", "inflight")

    def __init__(self, module, names, host):
        self.module = module
        self.names = names      # parameter names (direct children only)
        self.host = host        # pinned host copies, same order
        self.offsets = None     # per parameter, inside the VBAR
        self.offset = None      # the range covering them all
        self.size = 0
        self.gen = None         # generation saved after the last copy
        self.views = None       # VBAR tensors, same order
        self.hooks = []
        self.inflight = []      # fault results of calls in progress


class Offloaded:
    """The state of an offloaded module (returned by offload()).

    Protocol, per submodule that owns parameters, wrapped around its
    forward:
      1. on its first call, place its parameters in the VBAR (so the VBAR
         is laid out in the order the forward pass first uses them: the
         first layers get the low offsets that stay resident);
      2. ``gen = vbar.fault(range)``; if not None and ``gen`` differs from
         the generation saved after the last copy, copy the pinned host
         parameters in (async, on the current stream) and save ``gen``;
         point the parameters at the VBAR views;
      3. if None (offloaded), copy the parameters into a reusable staging
         buffer on the current stream and point them there;
      4. after forward returns (its kernels launched), ``vbar.unpin(range,
         current stream)``: the pages become evictable once that work has
         finished, and the parameters go back to empty placeholders so
         nothing outside the protocol reads unmapped memory.

    For inference (no autograd: saved tensors would outlive the window).
    Parameters used outside their own module's forward are not covered.
    One module must not run forward in two threads at once (its parameters
    are swapped in place).
    """

    def __init__(self, module, dev, vbar, entries, torch_device):
        self.module = module
        self.device = dev
        self.vbar = vbar
        self.torch_device = torch_device
        self._cuda = torch_device.startswith("cuda")
        self._grad_warned = False
        self._entries = entries
        self._lock = threading.Lock()
        self._staging = None
        self._placeholders = {}
        self.copies = 0           # weight copies into the VBAR
        self.copied_bytes = 0
        self.streamed = 0         # submodule calls that streamed
        self.streamed_bytes = 0

    # -- bookkeeping --

    def stats(self):
        s = vars(self.device.stats())
        s.update(copies=self.copies, copied_bytes=self.copied_bytes,
                 streamed=self.streamed, streamed_bytes=self.streamed_bytes,
                 vbar_resident_bytes=self.vbar.resident_bytes,
                 vbar_placed_bytes=self.vbar.allocated)
        return s

    def host_bytes(self):
        """Pinned host memory held: parameter copies + staging buffer."""
        n = sum(h.numel() * h.element_size()
                for e in self._entries for h in e.host)
        return n

    def remove(self):
        """Remove the hooks and put the parameters back on the host (their
        pinned copies). The VBAR and device are closed."""
        torch = _torch()
        for e in self._entries:
            for h in e.hooks:
                h.remove()
            # A forward that raised on a torch without always_call hooks
            # left its range pinned.
            while e.inflight:
                gen = e.inflight.pop()
                if gen is not None:
                    self.vbar.unpin(e.offset, e.size, 0)
            for name, host in zip(e.names, e.host):
                getattr(e.module, name).data = host
        if self._cuda:
            torch.cuda.synchronize()
        self._entries = []
        self._staging = None
        self.vbar.close()
        if _interpose.is_loaded():
            _interpose.detach_device(self.device)
        self.device.close()

    # -- the wrapper --

    def _placeholder(self, torch, dtype):
        t = self._placeholders.get(dtype)
        if t is None:
            t = torch.empty(0, dtype=dtype, device=self.torch_device)
            self._placeholders[dtype] = t
        return t

    def _place(self, torch, e):
        offsets = []
        end = 0
        for h in e.host:
            nbytes = max(h.numel() * h.element_size(), 1)
            a = self.vbar.alloc(nbytes, align=512)
            offsets.append(a.offset)
            end = a.offset + nbytes
        e.offsets = offsets
        e.offset = offsets[0]
        e.size = end - offsets[0]
        e.views = [tensor(self.vbar, off, h.shape, h.dtype)
                   for off, h in zip(offsets, e.host)]

    def _staging_views(self, torch, e):
        need = e.size
        if self._staging is None or self._staging.numel() < need:
            self._staging = torch.empty(need, dtype=torch.uint8,
                                        device=self.torch_device)
        views = []
        for off, h in zip(e.offsets, e.host):
            nbytes = h.numel() * h.element_size()
            rel = off - e.offset
            views.append(self._staging[rel:rel + nbytes]
                         .view(h.dtype).view(h.shape))
        return views

    def _pre(self, e):
        torch = _torch()
        if not self._grad_warned and torch.is_grad_enabled():
            self._grad_warned = True
            warnings.warn("dynvram.torch.offload is for inference: run the "
                          "module under torch.no_grad() or "
                          "torch.inference_mode()", RuntimeWarning,
                          stacklevel=3)
        if e.offset is None:
            with self._lock:
                if e.offset is None:
                    self._place(torch, e)
        gen = self.vbar.fault(e.offset, e.size)
        if gen is not None:
            if gen != e.gen:
                for v, h in zip(e.views, e.host):
                    v.copy_(h, non_blocking=True)
                e.gen = gen
                self.copies += 1
                self.copied_bytes += e.size
            targets = e.views
        else:
            targets = self._staging_views(torch, e)
            for v, h in zip(targets, e.host):
                v.copy_(h, non_blocking=True)
            self.streamed += 1
            self.streamed_bytes += e.size
        for name, t in zip(e.names, targets):
            getattr(e.module, name).data = t
        return gen

    def _post(self, e, gen):
        torch = _torch()
        for name, h in zip(e.names, e.host):
            getattr(e.module, name).data = self._placeholder(torch, h.dtype)
        if gen is not None:
            stream = torch.cuda.current_stream().cuda_stream \
                if self._cuda else 0
            self.vbar.unpin(e.offset, e.size, stream)


def offload(module, device=None, vram_limit=0, headroom=0, page_size=0,
            dv_device=None, backend="cuda"):
    """Run `module` with its parameters managed by dynvram.

    module     a torch.nn.Module (its parameters may be on the CPU or GPU;
               they end up in pinned host memory).
    device     torch device, default "cuda:0" (ordinal of the GPU).
    vram_limit bytes dynvram may use for weights + torch's own allocations
               (0 = the GPU's free memory less `headroom`).
    dv_device  an already-open dynvram.Device to use instead of opening one
               (a host-backend device runs the same protocol on the CPU,
               which is how the CI tests it without a GPU).

    Buffers (running stats, ...) move to the GPU as they are. Returns an
    Offloaded; call its remove() to undo. Outputs equal those of the same
    module run fully on the GPU: the same kernels read the same bytes.
    """
    torch = _torch()
    tdev = torch.device(device if device is not None else "cuda:0")
    ordinal = tdev.index if tdev.index is not None else 0
    if dv_device is None:
        dv_device = Device(backend, ordinal=ordinal, vram_limit=vram_limit,
                           headroom=headroom, page_size=page_size)
    torch_device = _torch_device(dv_device)
    pin = torch_device.startswith("cuda")

    entries = []
    total = 0
    seen = set()
    for mod in module.modules():
        names, host = [], []
        for name, p in mod.named_parameters(recurse=False):
            if id(p) in seen:
                continue  # tied: managed by the first module that owns it
            seen.add(id(p))
            h = p.detach().to("cpu", copy=True).contiguous()
            if pin:
                h = h.pin_memory()
            p.data = torch.empty(0, dtype=p.dtype, device=torch_device)
            p.requires_grad_(False)
            names.append(name)
            host.append(h)
            total += ((h.numel() * h.element_size() + 511) // 512) * 512
        for bname, b in list(mod._buffers.items()):
            if b is not None:
                mod._buffers[bname] = b.to(torch_device)
        if names:
            entries.append(_Entry(mod, names, host))
    vbar = VBAR(dv_device, max(total, 1))
    vbar.prioritize()
    off = Offloaded(module, dv_device, vbar, entries, torch_device)
    for e in entries:
        def pre(mod, args, _e=e):
            _e.inflight.append(off._pre(_e))

        def post(mod, args, out, _e=e):
            if _e.inflight:
                off._post(_e, _e.inflight.pop())

        e.hooks.append(e.module.register_forward_pre_hook(pre))
        try:
            # always_call (torch >= 2.1): unpin even when forward raises.
            e.hooks.append(e.module.register_forward_hook(post,
                                                          always_call=True))
        except TypeError:
            e.hooks.append(e.module.register_forward_hook(post))
    if pin:
        attach_allocator(dv_device, dv_device.ordinal)
    return off



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
