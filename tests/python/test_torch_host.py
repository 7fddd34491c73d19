# SPDX-License-Identifier: Apache-2.0
"""dynvram.torch on the host backend with CPU torch (Debian's python3-torch):
the offload protocol end to end, without a GPU. Skipped without torch; the
CUDA half is tests/gpu/torch_test.py."""
import pytest

import dynvram
from conftest import MIB

import os  # noqa: E402

if os.environ.get("DV_TEST_NO_TORCH"):
    pytest.skip("torch tests are off in sanitizer builds", allow_module_level=True)
torch = pytest.importorskip("torch")
import dynvram.torch as dvt  # noqa: E402


def test_tensor_view_any_dtype_shape(dev, vbar):
    assert vbar.fault(0, 4 * MIB) is not None
    t = dvt.tensor(vbar, 4096, (16, 32), torch.float32)
    assert t.shape == (16, 32) and t.dtype == torch.float32
    t.fill_(1.25)  # writable
    u = dvt.tensor(vbar, 4096, (16 * 32,), torch.float32)
    assert bool((u == 1.25).all())
    b = dvt.tensor(vbar, 8192 * 4, (8, 8), torch.bfloat16)
    b.copy_(torch.arange(64, dtype=torch.bfloat16).view(8, 8))
    assert dvt.tensor(vbar, 8192 * 4, 64, torch.bfloat16)[63].item() == 63
    vbar.unpin(0, 4 * MIB)


def _stack(n, d, seed=0):
    g = torch.Generator().manual_seed(seed)
    layers = []
    for _ in range(n):
        lin = torch.nn.Linear(d, d, bias=True)
        with torch.no_grad():
            lin.weight.copy_(torch.randn(d, d, generator=g) / d ** 0.5)
            lin.bias.copy_(torch.randn(d, generator=g))
        layers += [lin, torch.nn.ReLU()]
    return torch.nn.Sequential(*layers)


@pytest.mark.parametrize("limit_kib", [65536, 1024, 512])
def test_offload_outputs_equal_resident(limit_kib):
    # 8 layers of 256x256 fp32 (256 KiB + bias each): 9 pages of 256 KiB.
    model = _stack(8, 256)
    x = torch.randn(4, 256, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = model(x).clone()
    dev = dynvram.Device("host", page_size=256 * 1024,
                         vram_limit=limit_kib * 1024)
    off = dvt.offload(model, dv_device=dev)
    with torch.no_grad():
        outs = [model(x) for _ in range(3)]
    for y in outs:
        assert torch.equal(y, ref)
    s = off.stats()
    if limit_kib == 65536:
        # Everything fits: copied once, never streamed.
        assert s["streamed"] == 0
        assert s["copies"] == 8
    else:
        # Part streams every step; the resident prefix is copied only once.
        assert s["streamed"] > 0
        assert s["copies"] < 8 * 3
    assert s["pinned_bytes"] == 0
    # Placed in first-use order: layer 0 at offset 0.
    assert off._entries[0].offset == 0
    dev.check()
    off.remove()
    # No tensor over the VBAR is left: everything was given back at once.
    assert off.vbar.released and off.device.released
    with torch.no_grad():
        assert torch.equal(model(x), ref)  # back on the host, intact


def test_offload_recopies_after_eviction(dev):
    model = _stack(4, 256)
    x = torch.randn(2, 256)
    with torch.no_grad():
        ref = model(x).clone()
    d = dynvram.Device("host", page_size=256 * 1024, vram_limit=64 * MIB)
    off = dvt.offload(model, dv_device=d)
    with torch.no_grad():
        model(x)
        assert off.stats()["copies"] == 4
        model(x)
        assert off.stats()["copies"] == 4  # generations unchanged
        off.vbar.evict(off.vbar.size)       # as torch pressure would
        off.vbar.prioritize()
        y = model(x)
    assert off.stats()["copies"] == 8        # every layer copied again
    assert torch.equal(y, ref)
    off.remove()


def test_offload_unpins_when_forward_raises():
    class Bad(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(16, 16)

        def forward(self, x):
            return self.lin(x)

    m = Bad()
    d = dynvram.Device("host", page_size=64 * 1024, vram_limit=16 * MIB)
    off = dvt.offload(m, dv_device=d)
    with torch.no_grad():
        with pytest.raises(RuntimeError):
            m(torch.randn(2, 5))  # wrong shape: Linear raises
    if "always_call" in torch.nn.Module.register_forward_hook.__code__.co_varnames:
        assert d.stats().pinned_bytes == 0
    off.remove()


def test_tensor_read_after_close_in_child():
    # A torch tensor over a VBAR (through DLPack) keeps the range reserved
    # across vbar.close(); before, reading it after close was a SIGSEGV.
    import child
    r = child.run("""
import ctypes
import torch
import dynvram.torch as dvt
assert vbar.fault(0, PAGE) is not None
t = dvt.tensor(vbar, 256, (4, 2), torch.float32)
t.copy_(torch.arange(8, dtype=torch.float32).view(4, 2))
vbar.unpin(0, PAGE)
vbar.close()
report("state", [vbar.closed, vbar.released, vbar.exports])
report("values", t.flatten().tolist())
u = t[1:]  # a torch view shares the storage: still the one export
del t
report("middle", [vbar.released, vbar.exports, u.sum().item()])
del u
report("after", [vbar.released, dev.stats().vbar_count])
dev.close()
report("dev", dev.released)
""")
    assert r["state"] == [True, False, 1]
    assert r["values"] == [float(i) for i in range(8)]
    assert r["middle"] == [False, 1, float(sum(range(2, 8)))]
    assert r["after"] == [True, 0]
    assert r["dev"] is True
