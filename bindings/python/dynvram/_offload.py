# SPDX-License-Identifier: Apache-2.0
"""dynvram.torch.offload(): a module larger than the GPU, its weights in
pinned host memory, bound to device memory exactly while they are used.

How uses are found. The first forward is a *learning* forward: a
TorchFunctionMode sees every torch function and tensor method call, and
each one that reads a managed parameter is attributed to the innermost
module whose forward is running (global module hooks keep that stack). The
parameter's bytes are copied to the device for that call only. The result
is the list of module *calls* in execution order, each with the parameters
its own code reads (not its children's). That covers what per-module
ownership cannot: one Parameter shared by two modules (tied embeddings:
each module's call binds it), a parameter read in another module's
forward (a parent reading a child's weight, an orphan parameter of the
parent), and parameters read only for their shape or dtype (these need no
bytes: an unbound parameter holds a one-element placeholder expanded to its
shape, on the right device, so metadata reads stay correct).

How they are bound. From then on a forward pre-hook on each module with
calls binds exactly the parameters of its next call (``param.data`` = a
device tensor) and its forward hook unbinds them again after the call's
work was launched. With ``stream=True`` (the default) the bytes come from a
dynvram Schedule over the calls' uses in order (dynvram_stream.h): resident
uses are views of the VBAR, streamed ones are views of a ring slot that the
copy engine filled ahead of time, and the compute stream waits on one event
per use. With ``stream=False`` each use faults its range (the fault
protocol of dynvram.h) and copies it when its generation changed.

Buffers (running statistics, rotary tables, masks) are moved to the device
once, each distinct tensor once, so buffers shared between modules stay
shared; they are not offloaded (they are small and may be written).

Limits: inference only; the forward must use parameters in the same way on
every call after the first (data-independent control flow); a parameter
read outside the root module's forward is not covered. ``check=True``
raises if a forward reads a parameter that is not bound (a use the learning
forward did not see) instead of reading the placeholder.
"""

import gc
import warnings

from . import Device, Schedule, VBAR, RANGE_PREFER_RESIDENT
from . import interpose as _interpose

__all__ = ["Offloaded", "offload"]

# Tensor attributes and methods that read metadata, never the bytes.
_META_GETTERS = frozenset((
    "shape", "dtype", "device", "ndim", "is_cuda", "layout", "requires_grad",
    "is_leaf", "names", "is_sparse", "is_quantized", "is_meta", "grad_fn",
    "is_mkldnn", "itemsize", "nbytes", "is_nested", "is_xpu"))
_META_METHODS = frozenset((
    "size", "dim", "numel", "element_size", "stride", "is_contiguous",
    "is_floating_point", "is_complex", "get_device", "nelement", "ndimension",
    "__len__", "storage_offset", "is_pinned", "__repr__", "__format__"))
_DEFAULT_STREAM_PAGE = 2 << 20


def _torch():
    import torch
    return torch


def _func_name(func):
    name = getattr(func, "__name__", "")
    if name in ("__get__", "__set__"):
        attr = getattr(getattr(func, "__self__", None), "__name__", "")
        return name[2:5] + ":" + attr
    return name


def _is_meta(func):
    """Reads no bytes: metadata, or setting an attribute (binding .data)."""
    name = _func_name(func)
    if name.startswith("get:"):
        return name[4:] in _META_GETTERS
    return name.startswith("set:") or name in _META_METHODS


class _Tensor:
    """A managed parameter: its pinned host copy and where it lives."""

    __slots__ = ("param", "name", "host", "nbytes", "offset", "view", "binds",
                 "proxy", "gen", "shape", "dtype")

    def __init__(self, param, name, host, proxy):
        self.param = param
        self.name = name
        self.host = host
        self.nbytes = host.numel() * host.element_size()
        self.offset = None   # in the VBAR, once placed
        self.view = None     # the VBAR view, made on first use
        self.binds = []      # device tensors bound, innermost last
        self.proxy = proxy   # what param.data is while unbound
        self.gen = None      # fault mode: generation of the last copy
        self.shape = host.shape
        self.dtype = host.dtype


class _Call:
    """One module call of the learned order and the parameters it reads."""

    __slots__ = ("module", "tensors", "children", "first_use")

    def __init__(self, module):
        self.module = module
        self.tensors = []     # _Tensor, in the order first read
        self.children = []    # calls made while this one ran
        self.first_use = 0    # schedule index of its first use


def _make_modes(torch):
    from torch.overrides import TorchFunctionMode
    from torch.utils._pytree import tree_map

    class Learn(TorchFunctionMode):
        def __init__(self, off):
            super().__init__()
            self.off = off

        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if _is_meta(func):
                return func(*args, **kwargs)
            off = self.off

            def sub(x):
                if isinstance(x, torch.nn.Parameter):
                    t = off._by_id.get(id(x))
                    if t is not None:
                        return off._learn_use(t)
                return x
            return func(*tree_map(sub, args), **tree_map(sub, kwargs))

    class Check(TorchFunctionMode):
        def __init__(self, off):
            super().__init__()
            self.off = off

        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if not _is_meta(func):
                for x in list(args) + list(kwargs.values()):
                    t = self.off._by_id.get(id(x))
                    if t is not None and not t.binds:
                        raise RuntimeError(
                            "dynvram.offload: parameter %s read by %s while "
                            "not bound: the learning forward did not see "
                            "this use" % (t.name, _func_name(func)))
            return func(*args, **kwargs)

    return Learn, Check


class Offloaded:
    """The state of an offloaded module (returned by offload()).

    Attributes: module, device (dynvram.Device), vbar, schedule (None in
    fault mode or before the first forward), calls (learned module calls),
    copies / copied_bytes (fault mode: copies into the VBAR), streamed /
    streamed_bytes (uses that were offloaded and copied through a temporary
    by Python). stats() adds the device's and the schedule's counters.
    """

    def __init__(self, module, dev, torch_device, stream, ring_slots,
                 slot_size, activation_reserve, placement, check):
        torch = _torch()
        self.module = module
        self.device = dev
        self.torch_device = torch_device
        self.vbar = None
        self.schedule = None
        self.calls = []
        self.copies = 0
        self.copied_bytes = 0
        self.streamed = 0
        self.streamed_bytes = 0
        self._torch = torch
        self._cuda = torch_device.startswith("cuda")
        self._stream_mode = stream
        self._ring_slots = ring_slots
        self._slot_size = slot_size
        self._reserve = activation_reserve
        self._placement = placement
        self._check = check
        self._tensors = []         # every managed parameter
        self._by_id = {}           # id(Parameter) -> _Tensor
        self._buffers = {}         # id(original buffer) -> device tensor
        self._hooks = []
        self._learned = False
        self._grad_warned = False
        self._orig_forward = None
        self._cursor = 0
        self._calls_of = {}        # id(module) -> [call index]
        self._active = {}          # id(module) -> [(call index, held)]
        self._ring = None          # uint8 tensor over the ring slots
        self._slot_views = {}      # (tensor index, addr) -> view
        self._learn_stack = None
        self._learn_cache = {}
        self._Learn, self._Check = _make_modes(torch)

    # -- setup ----------------------------------------------------------------

    def _take_parameters(self, module):
        torch = self._torch
        pin = self._cuda
        proxies = {}
        for mname, mod in module.named_modules():
            for pname, p in mod.named_parameters(recurse=False):
                if id(p) in self._by_id:
                    continue  # tied: one managed tensor, bound by each use
                h = p.detach().to("cpu", copy=True).contiguous()
                if pin:
                    h = h.pin_memory()
                base = proxies.get(p.dtype)
                if base is None:
                    base = torch.zeros((), dtype=p.dtype,
                                       device=self.torch_device)
                    proxies[p.dtype] = base
                t = _Tensor(p, (mname + "." if mname else "") + pname, h,
                            base.expand(h.shape))
                p.requires_grad_(False)
                p.data = t.proxy
                self._by_id[id(p)] = t
                self._tensors.append(t)
            for bname, b in list(mod._buffers.items()):
                if b is None:
                    continue
                moved = self._buffers.get(id(b))
                if moved is None:
                    moved = b.to(self.torch_device)
                    self._buffers[id(b)] = moved
                mod._buffers[bname] = moved

    def _wrap_forward(self):
        module = self.module
        orig = module.forward
        self._orig_forward = orig

        def forward(*args, **kwargs):
            if not self._learned:
                return self._learn(orig, args, kwargs)
            if self._check:
                with self._Check(self):
                    return orig(*args, **kwargs)
            return orig(*args, **kwargs)

        module.forward = forward

    # -- the learning forward -------------------------------------------------

    def _learn_use(self, t):
        """A read of t during the learning forward: note it for the innermost
        call, and give the op the bytes on the device."""
        c = self._learn_stack[-1]
        if t not in c.tensors:
            c.tensors.append(t)
        d = self._learn_cache.get(id(t))
        if d is None:
            d = t.host.to(self.torch_device, non_blocking=True) \
                if self._cuda else t.host
            self._learn_cache[id(t)] = d
        return d

    def _learn(self, orig, args, kwargs):
        torch = self._torch
        tree = {id(m) for m in self.module.modules()}
        root = _Call(self.module)
        calls = [root]
        self._learn_stack = [root]

        def pre(mod, a):
            if id(mod) in tree and self._learn_stack is not None:
                c = _Call(mod)
                self._learn_stack[-1].children.append(c)
                calls.append(c)
                self._learn_stack.append(c)

        def post(mod, a, out):
            if id(mod) in tree and self._learn_stack is not None:
                self._learn_stack.pop()
                self._learn_cache.clear()

        mm = torch.nn.modules.module
        h1 = mm.register_module_forward_pre_hook(pre)
        h2 = mm.register_module_forward_hook(post)
        try:
            with self._Learn(self):
                out = orig(*args, **kwargs)
        finally:
            h1.remove()
            h2.remove()
            self._learn_stack = None
            self._learn_cache.clear()
        if self._cuda:
            torch.cuda.synchronize()
            torch.cuda.empty_cache()  # the learning copies are gone
        self._build([c for c in calls if c.tensors] if calls else [], root)
        return out

    # -- layout and the schedule -------------------------------------------

    def _build(self, calls, root):
        self.calls = calls
        used = []
        for c in calls:
            for t in c.tensors:
                if t.offset is None and t not in used:
                    used.append(t)
        unused = [t for t in self._tensors if t not in used]
        for t in unused:
            # Never read by the forward: keep its host copy as its data.
            t.param.data = t.host
        ps = self.device.page_size
        if self._stream_mode:
            # Placement is the schedule's: pack the tiny tensors together,
            # so keeping them resident costs a page or two, not one each.
            tiny = [t for t in used if t.nbytes * 4 <= ps]
            used = tiny + [t for t in used if t.nbytes * 4 > ps]
        total = 0
        for t in used:
            t.offset = total
            total += (max(t.nbytes, 1) + 511) // 512 * 512
        self.vbar = VBAR(self.device, max(total, 1))
        self.vbar.prioritize()
        if self._stream_mode and used:
            self._make_schedule(calls, used)
        for i, c in enumerate(calls):
            self._calls_of.setdefault(id(c.module), []).append(i)
        self._learned = True
        self._install_hooks(root)

    def _encloses(self, c):
        return any(k.tensors or self._encloses(k) for k in c.children)

    def _auto_slot(self, used):
        """The smallest slot that the ranges larger than it leave room for:
        those must stay resident, and may take at most half of what the
        budget has after the ring."""
        budget = self.device.stats().budget
        cap = max(budget - self._reserve, 0)
        n = self._ring_slots or 2
        best = max(t.nbytes for t in used)
        for s in sorted({t.nbytes for t in used}, reverse=True):
            big = sum(t.nbytes for t in used if t.nbytes > s)
            if cap < n * s or big * 2 > cap - n * s:
                break
            best = s
        return best

    def _make_schedule(self, calls, used):
        ranges = []
        for c in calls:
            c.first_use = len(ranges)
            flags = RANGE_PREFER_RESIDENT if self._encloses(c) else 0
            for t in c.tensors:
                ranges.append((t.offset, max(t.nbytes, 1), t.host.data_ptr(),
                               flags))
        slot = self._slot_size if self._slot_size else self._auto_slot(used)
        self.schedule = Schedule(self.vbar, ranges,
                                 ring_slots=self._ring_slots,
                                 slot_size=slot,
                                 activation_reserve=self._reserve,
                                 placement=self._placement,
                                 keep=[t.host for t in used])
        dl = 2 if self._cuda else 1
        ordinal = self.device.ordinal if self._cuda else 0
        cap = self.schedule.ring_capsule(dl, ordinal)
        self._ring = self._torch.utils.dlpack.from_dlpack(cap)

    def _install_hooks(self, root):
        mods = {id(c.module): c.module for c in self.calls}
        mods[id(self.module)] = self.module
        for mod in mods.values():
            self._hooks.append(mod.register_forward_pre_hook(self._pre_hook))
            try:
                # always_call (torch >= 2.1): unbind even when forward raises.
                self._hooks.append(mod.register_forward_hook(
                    self._post_hook, always_call=True))
            except TypeError:
                self._hooks.append(mod.register_forward_hook(self._post_hook))

    # -- binding ----------------------------------------------------------

    def _bind(self, t, data):
        t.binds.append(data)
        t.param.data = data

    def _unbind(self, t):
        t.binds.pop()
        t.param.data = t.binds[-1] if t.binds else t.proxy

    def _vbar_view(self, t):
        if t.view is None:
            from .torch import tensor
            t.view = tensor(self.vbar, t.offset, t.shape, t.dtype)
        return t.view

    def _slot_view(self, k, t, addr):
        key = (k, addr)
        v = self._slot_views.get(key)
        if v is None:
            rel = addr - self.schedule.ring_base
            v = self._ring[rel:rel + t.nbytes].view(t.dtype).view(t.shape)
            self._slot_views[key] = v
        return v

    def _staging(self, t):
        """Offloaded: the bytes through a temporary on the current stream."""
        torch = self._torch
        tmp = torch.empty(t.shape, dtype=t.dtype, device=self.torch_device)
        tmp.copy_(t.host, non_blocking=True)
        self.streamed += 1
        self.streamed_bytes += t.nbytes
        return tmp

    def _stream_ptr(self):
        return self._torch.cuda.current_stream().cuda_stream \
            if self._cuda else 0

    def _pre_hook(self, mod, args):
        torch = self._torch
        if not self._learned:
            return
        if mod is self.module:
            self._finish_stale()
            self._cursor = 0
            if not self._grad_warned and torch.is_grad_enabled():
                self._grad_warned = True
                warnings.warn("dynvram.torch.offload is for inference: run "
                              "the module under torch.no_grad() or "
                              "torch.inference_mode()", RuntimeWarning,
                              stacklevel=3)
        idx = self._calls_of.get(id(mod))
        k = None
        if idx:
            for j in idx:
                if j >= self._cursor:
                    k = j
                    break
        held = []
        if k is not None:
            self._cursor = k + 1
            c = self.calls[k]
            stream = self._stream_ptr()
            for n, t in enumerate(c.tensors):
                held.append(self._acquire(c.first_use + n, t, stream))
        self._active.setdefault(id(mod), []).append((k, held))

    def _acquire(self, use, t, stream):
        if self.schedule is not None:
            addr = self.schedule.acquire(use, stream)
            if addr is None:
                data, keep = self._staging(t), False
            elif self.vbar.base <= addr < self.vbar.base + self.vbar.size:
                data, keep = self._vbar_view(t), True
            else:
                data, keep = self._slot_view(use, t, addr), True
        else:
            gen = self.vbar.fault(t.offset, max(t.nbytes, 1))
            if gen is None:
                data, keep = self._staging(t), False
            else:
                data, keep = self._vbar_view(t), True
                if gen != t.gen:
                    data.copy_(t.host, non_blocking=True)
                    t.gen = gen
                    self.copies += 1
                    self.copied_bytes += t.nbytes
        self._bind(t, data)
        return keep

    def _post_hook(self, mod, args, out):
        stack = self._active.get(id(mod))
        if not stack:
            return
        k, held = stack.pop()
        if k is not None:
            self._release(self.calls[k], held, self._stream_ptr())

    def _release(self, c, held, stream):
        for n in range(len(c.tensors) - 1, -1, -1):
            t = c.tensors[n]
            self._unbind(t)
            if n < len(held) and held[n]:
                if self.schedule is not None:
                    self.schedule.release(c.first_use + n, stream)
                else:
                    self.vbar.unpin(t.offset, max(t.nbytes, 1), stream)

    def _finish_stale(self):
        """A forward that raised (torch without always_call) left calls
        bound: end them before the next one."""
        stream = self._stream_ptr()
        for stack in self._active.values():
            while stack:
                k, held = stack.pop()
                if k is not None:
                    self._release(self.calls[k], held, stream)

    # -- reporting and undoing ------------------------------------------------

    def stats(self):
        s = vars(self.device.stats())
        s.update(copies=self.copies, copied_bytes=self.copied_bytes,
                 streamed=self.streamed, streamed_bytes=self.streamed_bytes,
                 calls=len(self.calls),
                 uses=sum(len(c.tensors) for c in self.calls))
        if self.vbar is not None and not self.vbar.closed:
            s.update(vbar_resident_bytes=self.vbar.resident_bytes,
                     vbar_placed_bytes=self.vbar.size)
        if self.schedule is not None and not self.schedule.closed:
            s["schedule"] = vars(self.schedule.info())
        return s

    def host_bytes(self):
        """Pinned host memory held by the parameter copies."""
        return sum(t.nbytes for t in self._tensors)

    def remove(self):
        """Remove the hooks and put the parameters back on the host (their
        pinned copies). The schedule, VBAR and device are closed."""
        torch = self._torch
        self._finish_stale()
        for h in self._hooks:
            h.remove()
        self._hooks = []
        if self._orig_forward is not None:
            try:
                del self.module.forward  # the class's forward again
            except AttributeError:
                pass
        if self._cuda:
            torch.cuda.synchronize()
        for t in self._tensors:
            t.binds = []
            t.view = None
            t.param.data = t.host
        self._slot_views = {}
        self._ring = None
        gc.collect()
        if self.schedule is not None:
            self.schedule.close()
        if self.vbar is not None:
            self.vbar.close()
        if _interpose.is_loaded():
            _interpose.detach_device(self.device)
        self.device.close()


def offload(module, device=None, vram_limit=0, headroom=0, page_size=0,
            dv_device=None, backend="cuda", stream=True, ring_slots=2,
            slot_size=0, activation_reserve=0, placement="spread",
            check=False):
    """Run `module` with its parameters managed by dynvram.

    module     a torch.nn.Module (parameters on the CPU or GPU; they end up
               in pinned host memory).
    device     torch device, default "cuda:0".
    vram_limit bytes dynvram may use for weights + ring + torch's own
               allocations (0 = the GPU's free memory less `headroom`).
    page_size  dynvram's page (0: 2 MiB when streaming, so that small
               tensors waste little; the library default otherwise).
    dv_device  an open dynvram.Device to use instead (a host-backend device
               runs everything on the CPU, which is how CI tests it).
    stream     True: learn the order on the first forward, then stream
               through a dynvram.Schedule with prefetch; False: the fault
               protocol per use.
    ring_slots, slot_size, activation_reserve, placement
               the Schedule's options; slot_size 0 picks the smallest slot
               that the larger ranges (kept resident) leave room for.
    check      raise when a forward reads a parameter that is not bound.

    The first forward learns (and runs at about the speed of copying every
    weight); outputs are equal to those of the module run on the device
    without offload. Returns an Offloaded; remove() undoes it.
    """
    torch = _torch()
    tdev = torch.device(device if device is not None else "cuda:0")
    ordinal = tdev.index if tdev.index is not None else 0
    if dv_device is None:
        if not page_size and stream:
            page_size = _DEFAULT_STREAM_PAGE
        dv_device = Device(backend, ordinal=ordinal, vram_limit=vram_limit,
                           headroom=headroom, page_size=page_size)
    from .torch import _torch_device, attach_allocator
    torch_device = _torch_device(dv_device)
    off = Offloaded(module, dv_device, torch_device, stream, ring_slots,
                    slot_size, activation_reserve, placement, check)
    off._take_parameters(module)
    off._wrap_forward()
    if torch_device.startswith("cuda"):
        attach_allocator(dv_device, dv_device.ordinal)
    return off
