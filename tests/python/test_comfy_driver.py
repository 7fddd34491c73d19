# SPDX-License-Identifier: Apache-2.0
"""The spec's "How ComfyUI drives it" on the host backend with CPU torch:
models of nn.Linear layers whose weights come from a real safetensors file
(written by comfy_driver.write_safetensors), driven through the drop-in
exactly as ComfyUI does (comfy_driver.ComfyModel). Outputs are compared
with the same stack computed from the file directly; a content check
compares every weight a signature said was still in VRAM with its source
bytes, so a signature that misses a re-populated page fails the test.

Model: layers of 512x512 fp32 (1 MiB weight + 2 KiB bias), 1 MiB pages, so
a layer's weight straddles two pages and budgets are exact."""
import os

import pytest

if os.environ.get("DV_TEST_NO_TORCH"):
    pytest.skip("torch tests are off in sanitizer builds",
                allow_module_level=True)
torch = pytest.importorskip("torch")

import comfy_driver as cd  # noqa: E402
from comfy_fixtures import MIB  # noqa: E402

DIM = 512


def _x(seed=3):
    return torch.randn(4, DIM, generator=torch.Generator().manual_seed(seed))


@pytest.fixture
def files(tmp_path):
    """Two model files: A (8 layers), B (6 layers)."""
    out = {}
    for name, layers, seed in (("a", 8, 1), ("b", 6, 2)):
        path = str(tmp_path / ("%s.safetensors" % name))
        names = cd.make_linear_stack(path, layers, DIM, seed=seed)
        out[name] = (path, names)
    return out


def _model(files, which, **kw):
    path, names = files[which]
    st = cd.SafetensorsFile(path)
    m = cd.ComfyModel(st, names, 0, "cpu", **kw)
    ref = cd.reference_forward(st, names, _x())
    return m, ref


def test_safetensors_writer_round_trip(tmp_path):
    path = str(tmp_path / "t.safetensors")
    tensors = {"w": torch.arange(12, dtype=torch.float32).view(3, 4),
               "h": torch.tensor([1.5, -2.0], dtype=torch.bfloat16),
               "i": torch.arange(5, dtype=torch.int64)}
    cd.write_safetensors(path, tensors, {"format": "pt"})
    with open(path, "rb") as f:
        raw = f.read()
    n = int.from_bytes(raw[:8], "little")
    assert (8 + n) % 8 == 0 and raw[8:9] == b"{"
    st = cd.SafetensorsFile(path, use_model_mmap=False)
    assert st.names() == ["w", "h", "i"]
    for k, t in tensors.items():
        assert torch.equal(st.tensor(k), t), k
    assert len(raw) == 8 + n + 48 + 4 + 40


def test_larger_than_budget_settles_into_a_resident_prefix(comfy, files):
    c = comfy.start(limit_mib=6)
    m, ref = _model(files, "a", content_check=True)
    m.load()
    resident, copies, streamed = [], [], []
    with torch.no_grad():
        for step in range(4):
            m.c.reset()
            y = m.step(_x())
            assert torch.equal(y, ref), step
            resident.append(m.resident_layers())
            copies.append(m.c.copies)
            streamed.append(m.c.streamed)
    assert resident[0] == [0, 1, 2, 3, 4]  # pages 0..5 of 6
    assert all(r == resident[0] for r in resident)
    assert copies[0] == 10 and copies[1:] == [0, 0, 0]
    assert streamed == [6] * 4  # layers 5..7, weight and bias
    assert m.c.corrupt == 0 and m.c.checked == 10
    assert m.vbar.loaded_size() == 6 * MIB
    assert c.dev.stats().evictions == 0


def test_second_model_evicts_the_first_and_prioritize_takes_back(comfy,
                                                                  files):
    c = comfy.start(limit_mib=12)
    a, ref_a = _model(files, "a", content_check=True)
    b, ref_b = _model(files, "b", content_check=True)
    mv = c.mv
    with torch.no_grad():
        a.load()
        for _ in range(2):
            assert torch.equal(a.step(_x()), ref_a)
        assert a.resident_layers() == list(range(8))  # 9 pages of 12
        b.load()  # prioritized: on top
        for _ in range(2):
            assert torch.equal(b.step(_x()), ref_b)
        assert b.resident_layers() == list(range(6))  # 7 pages
        # A lost its top four pages (8..5) and its watermark fell to them.
        assert a.vbar.get_residency()[:9] == [1] * 5 + [0] * 4
        assert a.vbar.get_watermark() == 5
        a.c.reset()
        assert torch.equal(a.step(_x()), ref_a)
        assert a.resident_layers() == [0, 1, 2, 3]
        assert a.c.copies == 0 and a.c.streamed == 8
        a.vbar.prioritize()  # A takes its pages back from B's top
        a.c.reset()
        assert torch.equal(a.step(_x()), ref_a)
        assert a.resident_layers() == list(range(8))
        assert a.c.copies == 8  # layers 4..7 copied again
        b.c.reset()
        assert torch.equal(b.step(_x()), ref_b)
        assert b.resident_layers() == [0, 1]
        assert mv.vbars_analyze() == \
            a.vbar.loaded_size() + b.vbar.loaded_size() == 12 * MIB
    for m in (a, b):
        assert m.c.corrupt == 0 and m.c.checked > 0


def _taking_turns(files, rounds=3):
    a, ref_a = _model(files, "a", content_check=True)
    b, ref_b = _model(files, "b", content_check=True)
    with torch.no_grad():
        a.load()
        b.load()
        for _ in range(rounds):
            for m, ref in ((a, ref_a), (b, ref_b)):
                m.vbar.prioritize()
                for _ in range(2):
                    assert torch.equal(m.step(_x()), ref)
    return a, b


def test_signatures_catch_every_repopulated_page(comfy, files):
    """Models taking turns under a budget smaller than both: pages are
    evicted and re-populated (from the pool, so with the other model's
    bytes in them) over and over. Every weight whose signature compared
    equal still held its bytes."""
    c = comfy.start(limit_mib=10)
    a, b = _taking_turns(files)
    st = c.dev.stats()
    assert st.evictions > 0 and st.pool_reuses > 0
    for m in (a, b):
        assert m.c.corrupt == 0
        assert m.c.checked > 0 and m.c.copies > 0


def test_a_signature_that_misses_repopulation_is_caught(comfy, files,
                                                        monkeypatch):
    """The content check has teeth: with signatures that never change
    after the first fault (what a cache keyed on the range alone would
    give), stale bytes are found."""
    c = comfy.start(limit_mib=10)
    mv = c.mv
    first = {}
    real = mv.vbar_fault

    def stale_fault(alloc):
        s = real(alloc)
        if s is None:
            return None
        return first.setdefault((id(alloc[0]), alloc[1], alloc[2]), s)

    monkeypatch.setattr(mv, "vbar_fault", stale_fault)
    a, ref_a = _model(files, "a", content_check=True)
    b, ref_b = _model(files, "b", content_check=True)
    with torch.no_grad():
        a.load()
        b.load()
        wrong = 0
        for _ in range(3):
            for m, ref in ((a, ref_a), (b, ref_b)):
                m.vbar.prioritize()
                wrong += not torch.equal(m.step(_x()), ref)
    assert a.c.corrupt + b.c.corrupt > 0
    assert wrong > 0


def test_whole_block_fault_every_step_and_replay(comfy, files):
    """ComfyUI's per-block range: faulted every step; when its signature
    equals the one saved after the block last ran resident, the block's
    recorded output is replayed (the GPU test replays a CUDA graph)."""
    comfy.start(limit_mib=12)
    a, ref_a = _model(files, "a", blocks=True, content_check=True)
    captured = {}

    def capture(layer, x_in, x_out):
        captured[layer.name] = (x_in.clone(), x_out.clone())

    def replay(layer, x):
        rec = captured.get(layer.name)
        if rec is None or not torch.equal(rec[0], x):
            return None
        return rec[1].clone()

    with torch.no_grad():
        a.load()
        a.c.reset()
        assert torch.equal(a.step(_x(), replay, capture), ref_a)
        assert a.c.block_hits == 0 and len(captured) == 8
        for _ in range(3):
            a.c.reset()
            assert torch.equal(a.step(_x(), replay, capture), ref_a)
            assert a.c.block_hits == 8 and a.c.copies == 0
            assert a.c.hits == 0  # every layer replayed
        # Another model evicts A's top: those blocks' signatures change.
        b, ref_b = _model(files, "b")
        b.load()
        assert torch.equal(b.step(_x()), ref_b)
        a.vbar.prioritize()
        a.c.reset()
        assert torch.equal(a.step(_x(), replay, capture), ref_a)
        assert a.c.block_hits == 4  # layers 0..3 kept every page
        assert a.c.copies == 8  # layers 4..7 copied again
        a.c.reset()
        assert torch.equal(a.step(_x(), replay, capture), ref_a)
        assert a.c.block_hits == 8
    assert a.c.corrupt == 0


def test_partial_unload_and_watermark_limits(comfy, files):
    c = comfy.start(limit_mib=12)
    mv = c.mv
    a, ref_a = _model(files, "a", content_check=True)
    with torch.no_grad():
        a.load()
        a.step(_x())
        assert a.vbar.loaded_size() == 9 * MIB
        a.vbar.set_watermark_limit(7 * MIB)
        assert a.vbar.free_memory(4 * MIB) == 2 * MIB  # the limit holds
        mv.vbars_reset_watermark_limits()
        assert a.vbar.free_memory(3 * MIB) == 3 * MIB
        assert a.vbar.loaded_size() == 4 * MIB
        assert mv.vbars_analyze() == 4 * MIB
        a.c.reset()
        assert torch.equal(a.step(_x()), ref_a)
        assert a.resident_layers() == [0, 1, 2]
        assert a.c.corrupt == 0


def test_weights_come_through_model_mmap(files):
    from comfy_aimdo.model_mmap import ModelMMAP
    path, names = files["a"]
    try:
        ModelMMAP(path)
    except RuntimeError as exc:
        if "does not have yet" in str(exc):
            pytest.skip("ModelMMAP is not wired in this build: %s" % exc)
        raise
    st = cd.SafetensorsFile(path)
    assert st.via == "ModelMMAP"
    ref = cd.SafetensorsFile(path, use_model_mmap=False)
    for n in names:
        assert torch.equal(st.tensor(n + ".weight"), ref.tensor(n + ".weight"))


# ---- comfy_aimdo.torch ------------------------------------------------------

def test_aimdo_to_tensor_is_a_writable_view(comfy):
    import comfy_aimdo.torch as ct
    c = comfy.start()
    v = c.mv.ModelVBAR(8 * MIB, 0)
    a = v.alloc(3000)
    assert c.mv.vbar_fault(a) is not None
    t = ct.aimdo_to_tensor(a, torch.device("cpu"))
    assert t.dtype == torch.uint8 and t.shape == (3000,) and t.device.type \
        == "cpu"
    t.fill_(7)
    t[10] = 200
    u = ct.aimdo_to_tensor(a, "cpu")
    assert int(u[10]) == 200 and int(u.sum()) == 7 * 2999 + 200
    assert ct.aimdo_to_tensor(v.alloc(0), "cpu").numel() == 0
    c.mv.vbar_unpin(a)
    with pytest.raises(RuntimeError):
        ct.aimdo_to_tensor((v, v.base_addr + 16 * MIB, 10), "cpu")


def test_hostbuf_and_raw_pointer_tensors():
    import ctypes

    import comfy_aimdo.torch as ct
    buf = (ctypes.c_uint8 * 4096)()

    class FakeHostBuffer:  # the shape of comfy_aimdo's HostBuffer
        size = 4096

        def get_raw_address(self):
            return ctypes.addressof(buf)

    hb = FakeHostBuffer()
    t = ct.hostbuf_to_tensor(hb)
    assert t.dtype == torch.uint8 and t.numel() == 4096
    t[5] = 9
    assert buf[5] == 9
    r = ct.get_tensor_from_raw_ptr(ctypes.addressof(buf) + 8, 16, "cpu")
    r.fill_(3)
    assert list(buf[8:24]) == [3] * 16 and buf[7] == 0 and buf[24] == 0
    assert ct.get_tensor_from_raw_ptr(0, 0, "cpu").numel() == 0
    with pytest.raises(ValueError):
        ct.get_tensor_from_raw_ptr(-1, 4, "cpu")


def test_torch_allocator_and_class(comfy):
    import comfy_aimdo.torch as ct
    comfy.start()
    assert ct.get_torch_allocator() is None  # host backend: no CUDA
    cls = getattr(torch.cuda.memory, "CUDAPluggableAllocator", None)
    if cls is not None:
        assert ct.CUDAPluggableAllocator is cls
    else:  # torch < 2.0 (Debian 12's 1.13)
        with pytest.raises(AttributeError, match="torch >= 2.0"):
            ct.CUDAPluggableAllocator
    with pytest.raises(AttributeError):
        ct.no_such_name


def test_safetensors_header_longer_than_4_kib(tmp_path):
    # Seen on the GPU: a model of many tensors has a header past the first
    # 4 KiB, which the reader once parsed from a fixed 4 KiB prefix.
    path = str(tmp_path / "many.safetensors")
    tensors = {"block.%03d.a_long_weight_name" % i: torch.randn(2, 2)
               for i in range(200)}
    cd.write_safetensors(path, tensors)
    for via_mmap in (True, False):
        st = cd.SafetensorsFile(path, use_model_mmap=via_mmap)
        assert st.data_start > 4096
        assert set(st.header) == set(tensors)
