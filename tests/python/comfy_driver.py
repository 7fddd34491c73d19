# SPDX-License-Identifier: Apache-2.0
"""A driver of the comfy_aimdo drop-in, written from the spec's "How ComfyUI
drives it" (../../shared/spec/comfy_aimdo.md), never from ComfyUI's code.

Used by the CI tests on the host backend (tests/python/test_comfy_*.py),
the GPU test (tests/gpu/comfy_test.py) and the benchmark
(bench/comfy_bench.py), so the three drive the package the same way.

Pieces:
  write_safetensors / read_safetensors_header   a safetensors writer and
      header reader of our own (8-byte little-endian header length, JSON
      header, data)
  SafetensorsFile   a file's tensors as torch.frombuffer views over
      ModelMMAP(path).get() (or over Python's mmap where the drop-in has no
      ModelMMAP in this build: `via` says which)
  ComfyModel        a stack of nn.Linear layers (+ ReLU) whose weights live
      in a ModelVBAR: per layer, fault each weight; None -> stream it
      through a temporary buffer; a signature that differs from the saved
      one -> copy the weight into aimdo_to_tensor(alloc) and save it; after
      the layer's work is launched, unpin. Optional per-block allocations
      covering each layer's weights, faulted every step (ComfyUI's
      `_v_block`), and a content check that compares every weight the
      signature said was still there with its source bytes.
  NativeModel       the same protocol over dynvram's own VBAR (generation
      compare), for the side-by-side benchmark.
  reference_forward the same computation straight from the file's tensors.
"""
import json
import mmap
import os
import struct

import torch
import torch.nn.functional as F

DTYPE_NAMES = {torch.float32: "F32", torch.float16: "F16",
               torch.bfloat16: "BF16", torch.float64: "F64",
               torch.int64: "I64", torch.int32: "I32", torch.uint8: "U8"}
NAME_DTYPES = {v: k for k, v in DTYPE_NAMES.items()}
PAD = 1024  # ComfyUI pads weight sizes to 1024 bytes


def _raw_bytes(t):
    t = t.detach().contiguous().cpu().reshape(-1)
    if t.numel() == 0:
        return b""
    return t.view(torch.uint8).numpy().tobytes()


def write_safetensors(path, tensors, metadata=None):
    """Write `tensors` ({name: tensor}, in order) as a safetensors file."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, t in tensors.items():
        raw = _raw_bytes(t)
        header[name] = {"dtype": DTYPE_NAMES[t.dtype],
                        "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    js = json.dumps(header, separators=(",", ":")).encode()
    js += b" " * (-len(js) % 8)  # data starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(js)))
        f.write(js)
        for raw in blobs:
            f.write(raw)


def read_safetensors_header(mem):
    """(header dict, data start) from a file's first bytes (any buffer)."""
    (n,) = struct.unpack_from("<Q", mem, 0)
    header = json.loads(bytes(memoryview(mem)[8:8 + n]))
    header.pop("__metadata__", None)
    return header, 8 + n


class SafetensorsFile:
    """Tensors of a safetensors file, zero-copy views of its mapping."""

    def __init__(self, path, use_model_mmap=True):
        self.path = path
        self.size = os.path.getsize(path)
        self.via = None
        self._keep = None
        flat = None
        if use_model_mmap:
            try:
                flat = self._via_model_mmap()
            except RuntimeError as exc:
                self.mmap_error = str(exc)
        if flat is None:
            self._file = open(path, "rb")
            self._keep = mmap.mmap(self._file.fileno(), 0,
                                   access=mmap.ACCESS_COPY)
            flat = torch.frombuffer(self._keep, dtype=torch.uint8)
            self.via = "python-mmap"
        self.flat = flat
        # The header's length first: headers of real models run past any
        # fixed prefix (a GPU-sized model's header is over 4 KiB).
        (n,) = struct.unpack_from("<Q", flat[:8].numpy(), 0)
        if n > self.size - 8:
            raise ValueError("%s: header of %d bytes in a %d-byte file"
                             % (path, n, self.size))
        header, start = read_safetensors_header(flat[:8 + n].numpy())
        self.header = header
        self.data_start = start

    def _via_model_mmap(self):
        import ctypes

        from comfy_aimdo.model_mmap import ModelMMAP
        self.mm = ModelMMAP(self.path)
        buf = (ctypes.c_uint8 * self.size).from_address(self.mm.get())
        self._keep = buf
        self.via = "ModelMMAP"
        return torch.frombuffer(buf, dtype=torch.uint8)

    def names(self):
        return sorted(self.header, key=lambda n: self.header[n]
                      ["data_offsets"][0])

    def raw(self, name):
        """The tensor's bytes (uint8 view)."""
        b, e = self.header[name]["data_offsets"]
        return self.flat[self.data_start + b:self.data_start + e]

    def tensor(self, name):
        """The tensor, a view of the mapping (a copy where the format left
        it unaligned for its dtype)."""
        h = self.header[name]
        dtype = NAME_DTYPES[h["dtype"]]
        raw = self.raw(name)
        if self.file_offset(name) % torch.empty((), dtype=dtype) \
                .element_size():
            raw = raw.clone()
        return raw.view(dtype).view(h["shape"])

    def file_offset(self, name):
        return self.data_start + self.header[name]["data_offsets"][0]


def make_linear_stack(path, layers, dim, seed=0, dtype=torch.float32):
    """Write a model of `layers` nn.Linear(dim, dim) layers to `path`;
    returns the layer names in order."""
    g = torch.Generator().manual_seed(seed)
    tensors, names = {}, []
    for i in range(layers):
        w = (torch.randn(dim, dim, generator=g) / dim ** 0.5).to(dtype)
        b = torch.randn(dim, generator=g).to(dtype)
        tensors["layers.%d.weight" % i] = w
        tensors["layers.%d.bias" % i] = b
        names.append("layers.%d" % i)
    write_safetensors(path, tensors, {"format": "pt"})
    return names


def reference_forward(st, layer_names, x):
    """The stack computed from the file's tensors directly."""
    for name in layer_names:
        w = st.tensor(name + ".weight").to(x.device)
        b = st.tensor(name + ".bias").to(x.device)
        x = torch.relu(F.linear(x, w, b))
    return x


def _pad(n):
    return (n + PAD - 1) // PAD * PAD


class _Weight:
    __slots__ = ("name", "src", "nbytes", "dtype", "shape", "alloc", "saved",
                 "view", "raw_view", "offset")

    def __init__(self, name, src):
        self.name = name
        self.src = src              # host tensor (the file's view)
        self.nbytes = src.numel() * src.element_size()
        self.dtype = src.dtype
        self.shape = tuple(src.shape)
        self.alloc = None
        self.saved = None           # signature / generation of the copy
        self.view = None            # typed tensor over the VBAR bytes
        self.raw_view = None
        self.offset = None


class _Layer:
    __slots__ = ("name", "weights", "block", "block_saved")

    def __init__(self, name, weights):
        self.name = name
        self.weights = weights
        self.block = None
        self.block_saved = None


class Counters:
    def __init__(self):
        self.reset()

    def reset(self):
        self.copies = 0          # weights copied into VRAM (new signature)
        self.copied_bytes = 0
        self.streamed = 0        # weights streamed (fault returned None)
        self.streamed_bytes = 0
        self.hits = 0            # weights whose bytes were still there
        self.checked = 0         # hits verified against the source bytes
        self.corrupt = 0         # hits whose bytes differed (a bug)
        self.block_hits = 0      # whole-block faults with an equal signature
        self.block_faults = 0

    def as_dict(self):
        return dict(vars(self))


class ComfyModel:
    """A layer stack driven through comfy_aimdo (see the module)."""

    def __init__(self, st, layer_names, device_index, torch_device,
                 blocks=False, content_check=False, host_source=None):
        from comfy_aimdo import model_vbar
        self.mv = model_vbar
        self.st = st
        self.torch_device = torch.device(torch_device)
        self.device_index = device_index
        self.content_check = content_check
        self.blocks = blocks
        self.c = Counters()
        self.layers = []
        for name in layer_names:
            ws = []
            for part in ("weight", "bias"):
                src = st.tensor("%s.%s" % (name, part))
                if host_source is not None:
                    src = host_source(name + "." + part, src)
                ws.append(_Weight(name + "." + part, src))
            self.layers.append(_Layer(name, ws))
        self.model_size = sum(_pad(w.nbytes) for l in self.layers
                              for w in l.weights)
        self.vbar = None
        self._tmp = None

    # -- loading --

    def load(self):
        """ModelVBAR(model_size * 10), prioritize, one alloc per weight in
        load order (a block alloc covering each layer's weights first when
        blocks=True)."""
        mv = self.mv
        self.vbar = mv.ModelVBAR(self.model_size * 10, self.device_index)
        self.vbar.prioritize()
        for layer in self.layers:
            if self.blocks:
                size = sum(_pad(w.nbytes) for w in layer.weights)
                layer.block = self.vbar.alloc(size)
                # The block's own weights lie inside it: back to its start.
                self.vbar.offset = layer.block[1] - self.vbar.base_addr
            for w in layer.weights:
                w.alloc = self.vbar.alloc(_pad(w.nbytes))
                w.offset = w.alloc[1] - self.vbar.base_addr
                w.saved = None
                w.view = None
            layer.block_saved = None
        return self

    def unload(self):
        for layer in self.layers:
            layer.block = None
            for w in layer.weights:
                w.alloc = w.view = w.raw_view = w.saved = None
        self.vbar = None

    # -- one step --

    def _vbar_view(self, w):
        if w.view is None:
            from comfy_aimdo.torch import aimdo_to_tensor
            raw = aimdo_to_tensor(w.alloc, self.torch_device)[:w.nbytes]
            w.raw_view = raw
            w.view = raw.view(w.dtype).view(w.shape)
        return w.view

    def _stream(self, w):
        t = torch.empty(w.shape, dtype=w.dtype, device=self.torch_device)
        t.copy_(w.src, non_blocking=True)
        self.c.streamed += 1
        self.c.streamed_bytes += w.nbytes
        return t

    def _take(self, w):
        """The weight as a tensor on the device; True when it is pinned."""
        mv = self.mv
        sig = mv.vbar_fault(w.alloc)
        if sig is None:
            return self._stream(w), False
        view = self._vbar_view(w)
        if not mv.vbar_signature_compare(sig, w.saved):
            view.copy_(w.src, non_blocking=True)
            w.saved = sig
            self.c.copies += 1
            self.c.copied_bytes += w.nbytes
        else:
            self.c.hits += 1
            if self.content_check:
                self.c.checked += 1
                if not torch.equal(view.cpu(), w.src.cpu()):
                    self.c.corrupt += 1
        return view, True

    def step(self, x, replay=None, capture=None):
        """One forward pass.

        With blocks=True each layer first faults its whole block. When the
        block's signature equals the one saved after the layer last ran
        fully resident, `replay(layer, x)` may return the layer's output
        (the GPU test replays a CUDA graph captured for it) and the layer's
        own work is skipped; after a full run `capture(layer, x_in, x_out)`
        is told about it."""
        mv = self.mv
        for layer in self.layers:
            x_in = x
            bsig = None
            if self.blocks:
                self.c.block_faults += 1
                bsig = mv.vbar_fault(layer.block)
                if bsig is not None and mv.vbar_signature_compare(
                        bsig, layer.block_saved):
                    self.c.block_hits += 1
                    y = replay(layer, x) if replay is not None else None
                    if y is not None:
                        mv.vbar_unpin(layer.block)
                        x = y
                        continue
            pinned = []
            args = []
            for w in layer.weights:
                t, p = self._take(w)
                args.append(t)
                if p:
                    pinned.append(w.alloc)
            x = torch.relu(F.linear(x, args[0], args[1]))
            for a in pinned:
                mv.vbar_unpin(a)
            if self.blocks:
                # The block's pages were resident and pinned the whole
                # time, so its signature is the one of the bytes just
                # (re)filled.
                layer.block_saved = bsig
                if bsig is not None:
                    if capture is not None:
                        capture(layer, x_in, x)
                    mv.vbar_unpin(layer.block)
        return x

    # -- what is resident --

    def resident_layers(self):
        """Indices of the layers whose every page is resident."""
        res = self.vbar.get_residency()
        ps = self.vbar.page_size
        out = []
        for i, layer in enumerate(self.layers):
            ok = True
            for w in layer.weights:
                first = w.offset // ps
                last = (w.offset + w.nbytes - 1) // ps
                ok &= all(res[p] & 1 for p in range(first, last + 1))
            if ok:
                out.append(i)
        return out


class NativeModel:
    """The same protocol over dynvram's native VBAR: fault -> generation (or
    None), copy when it differs from the saved one, unpin on the current
    stream."""

    def __init__(self, st, layer_names, device, torch_device):
        import dynvram
        self.dynvram = dynvram
        self.st = st
        self.dev = device
        self.torch_device = torch.device(torch_device)
        self.c = Counters()
        self.layers = []
        for name in layer_names:
            ws = [_Weight(name + "." + p, st.tensor("%s.%s" % (name, p)))
                  for p in ("weight", "bias")]
            self.layers.append(_Layer(name, ws))
        self.model_size = sum(_pad(w.nbytes) for l in self.layers
                              for w in l.weights)
        self.vbar = None

    def load(self):
        import dynvram.torch as dvt
        self.vbar = self.dynvram.VBAR(self.dev, self.model_size * 10)
        self.vbar.prioritize()
        for layer in self.layers:
            for w in layer.weights:
                a = self.vbar.alloc(_pad(w.nbytes), align=512)
                w.offset = a.offset
                w.view = dvt.tensor(self.vbar, a.offset, w.shape, w.dtype)
        return self

    def _stream_id(self):
        if self.torch_device.type == "cuda":
            return torch.cuda.current_stream(self.torch_device).cuda_stream
        return 0

    def step(self, x):
        vbar = self.vbar
        stream = self._stream_id()
        for layer in self.layers:
            args, pinned = [], []
            for w in layer.weights:
                gen = vbar.fault(w.offset, w.nbytes)
                if gen is None:
                    t = torch.empty(w.shape, dtype=w.dtype,
                                    device=self.torch_device)
                    t.copy_(w.src, non_blocking=True)
                    self.c.streamed += 1
                    self.c.streamed_bytes += w.nbytes
                    args.append(t)
                    continue
                if gen != w.saved:
                    w.view.copy_(w.src, non_blocking=True)
                    w.saved = gen
                    self.c.copies += 1
                    self.c.copied_bytes += w.nbytes
                else:
                    self.c.hits += 1
                args.append(w.view)
                pinned.append(w)
            x = torch.relu(F.linear(x, args[0], args[1]))
            for w in pinned:
                vbar.unpin(w.offset, w.nbytes, stream)
        return x
