# SPDX-License-Identifier: Apache-2.0
"""comfy_aimdo.host_buffer, model_mmap and vram_buffer on the host backend
over dynvram's host I/O: ModelMMAP (bytes, handle, bounce), pinned
HostBuffer growth / truncation / registration, read_file_slice (also on to
a device address), read_file_to_device from every kind of file argument,
VRAMBuffer growth that evicts weight pages, their error cases, and the
spec's driver loading through ModelMMAP. Where this dynvram has no host I/O,
the one test that runs checks that every entry point says so with
RuntimeError."""
import os

import pytest

import dynvram
from comfy_fixtures import MIB

HAVE_IO = hasattr(dynvram, "HostBuffer")
needs_io = pytest.mark.skipif(not HAVE_IO, reason="this dynvram has no host "
                              "I/O (its branch is not merged)")


def test_without_host_io_every_entry_point_says_so(comfy):
    if HAVE_IO:
        pytest.skip("this dynvram has host I/O")
    comfy.start()
    from comfy_aimdo import host_buffer, model_mmap, vram_buffer
    for call in (lambda: host_buffer.HostBuffer(MIB),
                 lambda: model_mmap.ModelMMAP(__file__),
                 lambda: vram_buffer.VRAMBuffer(MIB, 0),
                 lambda: host_buffer.read_file_to_device(0, 0, 1, 0, 0, 0)):
        with pytest.raises(RuntimeError, match="does not have yet"):
            call()
    assert host_buffer.cleanup_file_reader() is None


@pytest.fixture
def blob(tmp_path):
    data = bytes((i * 7 + 3) % 251 for i in range(3 * MIB + 123))
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    return str(path), data


def _read_back(addr, n):
    import ctypes
    return ctypes.string_at(addr, n)


@needs_io
def test_model_mmap(blob):
    from comfy_aimdo.model_mmap import ModelMMAP
    path, data = blob
    mm = ModelMMAP(path)
    assert mm.size == len(data)
    assert _read_back(mm.get(), len(data)) == data
    h = mm.get_file_handle()
    assert isinstance(h, int) and os.pread(h, 16, 100) == data[100:116]
    assert mm.bounce() is True
    assert _read_back(mm.get() + MIB, 64) == data[MIB:MIB + 64]  # still valid
    for bad in (path + ".missing", os.path.dirname(path), "", 12):
        with pytest.raises(RuntimeError):
            ModelMMAP(bad)


@needs_io
def test_host_buffer_growth_truncate_registration(comfy):
    from comfy_aimdo.host_buffer import HostBuffer
    comfy.start()
    hb = HostBuffer(2 * MIB, prewarm=1, max_grow_size=4 * MIB)
    base = hb.get_raw_address()
    assert hb.size == 2 * MIB and hb.max_size >= 6 * MIB
    new = hb.extend(MIB)
    assert new == base + 2 * MIB and hb.size == 3 * MIB
    assert hb.get_raw_address() == base  # never moves
    assert hb.extend(MIB, register=False) == base + 3 * MIB
    with pytest.raises(RuntimeError):
        hb.extend(8 * MIB)  # past the maximum
    assert hb.size == 4 * MIB
    hb.truncate(MIB)
    assert hb.size == MIB
    hb.unregister(0) if hb._buf.registrations() else None
    hb.register(0, MIB)
    assert (0, MIB) in hb._buf.registrations()
    with pytest.raises(RuntimeError):
        hb.register(0, MIB)  # overlaps
    hb.truncate(0)
    with pytest.raises(RuntimeError):
        HostBuffer(-1)


@needs_io
def test_read_file_slice_and_on_to_the_device(comfy, blob):
    from comfy_aimdo.host_buffer import HostBuffer
    from comfy_aimdo.model_mmap import ModelMMAP
    c = comfy.start()
    path, data = blob
    hb = HostBuffer(2 * MIB)
    with open(path, "rb") as f:
        hb.read_file_slice(f.fileno(), 1000, MIB, offset=4096)
    base = hb.get_raw_address()
    assert _read_back(base + 4096, MIB) == data[1000:1000 + MIB]
    # ... and on to device memory (a faulted ModelVBAR range).
    v = c.mv.ModelVBAR(8 * MIB, 0)
    a = v.alloc(MIB)
    assert c.mv.vbar_fault(a) is not None
    mm = ModelMMAP(path)
    hb.read_file_slice(mm, 2 * MIB, 777, offset=0, stream=0,
                       device_ptr=a[1], device=0)
    assert _read_back(a[1], 777) == data[2 * MIB:2 * MIB + 777]
    c.mv.vbar_unpin(a)
    for bad in ((mm, len(data) - 10, 100),      # past the end of the file
                (mm, 0, 3 * MIB),               # past the buffer
                (-1, 0, 10),                    # a bad handle
                (mm, 2 ** 63, 10)):
        with pytest.raises(RuntimeError):
            hb.read_file_slice(*bad)


@needs_io
def test_read_file_to_device_every_file_kind(comfy, blob):
    from comfy_aimdo.host_buffer import cleanup_file_reader, \
        read_file_to_device
    from comfy_aimdo.model_mmap import ModelMMAP
    c = comfy.start()
    path, data = blob
    v = c.mv.ModelVBAR(8 * MIB, 0)
    a = v.alloc(3 * MIB)
    assert c.mv.vbar_fault(a) is not None
    with open(path, "rb") as f:
        for i, file in enumerate((f.fileno(), f, ModelMMAP(path))):
            off = 4096 * (i + 1)
            read_file_to_device(file, off, 2 * MIB + 5, 0, a[1], 0)
            assert _read_back(a[1], 2 * MIB + 5) == data[off:off + 2 * MIB + 5]
            cleanup_file_reader()  # made again at the next read
        for bad in ((f.fileno(), len(data), 1, 0, a[1], 0),
                    (f.fileno(), 0, 10, 0, a[1], 7),   # no such device
                    (f.fileno(), 0, 10, 0, 0, 0),      # a null address
                    (-5, 0, 10, 0, a[1], 0)):
            with pytest.raises(RuntimeError):
                read_file_to_device(*bad)
    c.mv.vbar_unpin(a)


@needs_io
def test_vram_buffer_growth_evicts_weights(comfy):
    pytest.importorskip("torch")
    from comfy_aimdo.torch import aimdo_to_tensor
    from comfy_aimdo.vram_buffer import VRAMBuffer
    c = comfy.start(limit_mib=12)
    v = c.mv.ModelVBAR(32 * MIB, 0)
    allocs = [v.alloc(MIB) for _ in range(10)]
    for a in allocs:
        assert c.mv.vbar_fault(a) is not None
        c.mv.vbar_unpin(a)
    vb = VRAMBuffer(64 * MIB, 0)
    assert vb.size() == 0
    got = vb.get(5 * MIB)
    assert got[0] is vb and got[2] == 5 * MIB and vb.size() >= 5 * MIB
    assert v.loaded_size() <= 7 * MIB  # weights made room
    t = aimdo_to_tensor(got, "cpu")
    assert t.numel() == 5 * MIB
    t[-1] = 9
    assert aimdo_to_tensor(vb.get(MIB, 4 * MIB), "cpu")[-1] == 9
    assert vb.get(MIB, 0)[1] == got[1]  # a fixed address
    with pytest.raises(RuntimeError):
        vb.get(65 * MIB)  # past max_size
    # Every page pinned: no room left to grow.
    for a in allocs[:7]:
        c.mv.vbar_fault(a)
    with pytest.raises(RuntimeError):
        vb.get(12 * MIB)
    for a in allocs[:7]:
        c.mv.vbar_unpin(a)
    with pytest.raises(RuntimeError):
        vb.get(-1)
    with pytest.raises(RuntimeError):
        VRAMBuffer(0, 0)


@needs_io
def test_deinit_releases_host_io_objects(comfy):
    from comfy_aimdo.host_buffer import HostBuffer
    from comfy_aimdo.vram_buffer import VRAMBuffer
    c = comfy.start()
    hb = HostBuffer(MIB)
    vb = VRAMBuffer(8 * MIB, 0)
    vb.get(MIB)
    c.control.deinit()
    with pytest.raises(RuntimeError):
        vb.get(MIB)
    with pytest.raises(RuntimeError):
        hb.extend(MIB)
