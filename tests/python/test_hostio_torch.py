# SPDX-License-Identifier: Apache-2.0
"""dynvram.torch's host I/O helpers with CPU torch on the host backend: a
CPU tensor over a HostBuffer, and safetensors files (written here from the
format, with Python's json) loaded into a pinned host buffer and into a
VBAR by the read pool; malformed files refused with ValueError."""
import json
import os
import struct

import pytest

import dynvram
from conftest import PAGE

if os.environ.get("DV_TEST_NO_TORCH"):
    pytest.skip("torch tests are off in sanitizer builds", allow_module_level=True)
torch = pytest.importorskip("torch")
import dynvram.torch as dvt  # noqa: E402
from dynvram.safetensors import read_header  # noqa: E402

_NAMES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
          torch.int64: "I64", torch.int8: "I8", torch.uint8: "U8",
          torch.bool: "BOOL", torch.float64: "F64", torch.int32: "I32"}


def write_safetensors(path, tensors, meta=None, pad=0):
    """A safetensors file of `tensors` (name -> CPU tensor), in dict order."""
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        raw = t.contiguous().view(-1).view(torch.uint8).numpy().tobytes() \
            if t.numel() else b""
        header[name] = {"dtype": _NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    if meta is not None:
        header["__metadata__"] = meta
    h = json.dumps(header).encode()
    h += b" " * (pad or (-len(h) % 8))
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def _model(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        "embed.weight": torch.randn(300, 64, generator=g),
        "layer.0.w": torch.randn(128, 96, generator=g).to(torch.bfloat16),
        "layer.0.b": torch.randn(96, generator=g).to(torch.float16),
        "layer.1.w": torch.randint(-100, 100, (513,), generator=g).to(torch.int8),
        "mask": torch.rand(17, generator=g) > 0.5,
        "empty": torch.zeros(0, 4),
        "steps": torch.arange(1000, dtype=torch.int64),
    }


def test_hostbuf_tensor_is_a_view(dev):
    hb = dynvram.HostBuffer(dev, 1 << 20, size=4096)
    t = dvt.hostbuf_tensor(hb, 0, 4096, dtype=torch.float32, shape=(32, 32))
    t.fill_(2.5)
    u = dvt.hostbuf_tensor(hb)
    assert u.dtype == torch.uint8 and u.numel() == 4096
    assert bool((dvt.hostbuf_tensor(hb, 0, 4096, torch.float32) == 2.5).all())
    with pytest.raises(BufferError):
        hb.truncate(0)
    del t, u
    hb.truncate(0)
    hb.close()


def test_safetensors_to_host(dev, tmp_path):
    m = _model()
    p = tmp_path / "m.safetensors"
    write_safetensors(p, m, meta={"format": "pt"})
    infos, meta, start = read_header(p)
    assert meta == {"format": "pt"} and [i.name for i in infos] == list(m)
    out, hb = dvt.load_safetensors_to_host(str(p), dev)
    assert list(out) == list(m)
    for k, t in m.items():
        assert out[k].dtype == t.dtype and out[k].shape == t.shape, k
        assert torch.equal(out[k], t), k
    assert hb.registrations(), "the host buffer is pinned"
    assert dev.reader().info()["bytes_read"] >= sum(
        t.numel() * t.element_size() for t in m.values())
    del out
    hb.close()


def test_safetensors_to_vbar(dev, tmp_path):
    m = _model(1)
    p = tmp_path / "v.safetensors"
    write_safetensors(p, m)
    v = dynvram.VBAR(dev, 4 * PAGE)
    placed = dvt.load_safetensors_to_vbar(str(p), v)
    offs = [placed[k].allocation.offset for k in m]
    assert offs == sorted(offs), "file order gives the lowest offsets first"
    for k, t in m.items():
        e = placed[k]
        gen = v.fault(e.allocation.offset, e.allocation.size)
        assert gen == e.generation, "the bytes are still there"
        if t.numel():
            assert torch.equal(e.tensor(), t), k
        v.unpin(e.allocation.offset, e.allocation.size)
    v.close()


def _hdr(obj):
    h = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return struct.pack("<Q", len(h)) + h


@pytest.mark.parametrize("bad, why", [
    (b"\x01\x00", "shorter than 8"),
    (struct.pack("<Q", 1 << 40) + b"{}", "header length"),
    (_hdr(b"nope") + b"\0" * 8, "not JSON"),
    (_hdr(b"[]") + b"\0" * 8, "not a JSON object"),
    (_hdr({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}})
     + b"\0" * 8, "4 bytes for shape"),
    (_hdr({"a": {"dtype": "Q9", "shape": [1], "data_offsets": [0, 4]}})
     + b"\0" * 8, "unknown dtype"),
    (_hdr({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 400]}})
     + b"\0" * 8, "outside"),
    (_hdr({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})
     + b"\0" * 8, "bad shape"),
    (_hdr({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0]}})
     + b"\0" * 8, "bad data_offsets"),
    (_hdr({"__metadata__": [1]}), "__metadata__"),
])
def test_malformed_files_are_refused(dev, tmp_path, bad, why):
    p = tmp_path / "bad.safetensors"
    p.write_bytes(bad)
    with pytest.raises(ValueError, match=why):
        dvt.load_safetensors_to_host(str(p), dev)


def test_overlapping_tensors_are_refused(tmp_path):
    h = json.dumps({"a": {"dtype": "U8", "shape": [8], "data_offsets": [0, 8]},
                    "b": {"dtype": "U8", "shape": [8],
                          "data_offsets": [4, 12]}}).encode()
    p = tmp_path / "o.safetensors"
    p.write_bytes(struct.pack("<Q", len(h)) + h + b"\0" * 12)
    with pytest.raises(ValueError, match="overlap"):
        read_header(p)
