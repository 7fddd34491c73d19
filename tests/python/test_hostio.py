# SPDX-License-Identifier: Apache-2.0
"""dynvram's host I/O classes on the host backend: HostBuffer, ModelFile,
Reader, DeviceBuffer and read_file, with real files; and every call with
bad, junk and dead objects (in a child process where a crash is possible,
so that a crash fails the test instead of the whole run)."""
import ctypes
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import dynvram
from conftest import MIB, PAGE


def _data(n, seed=1):
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8) \
        .tobytes()


@pytest.fixture
def blob(tmp_path):
    data = _data(3 * MIB + 777)
    p = tmp_path / "model.bin"
    p.write_bytes(data)
    return p, data


def _bytes(addr, n):
    return ctypes.string_at(addr, n)


def test_host_buffer_grows_at_a_fixed_address(dev):
    with dynvram.HostBuffer(dev, 16 * MIB) as hb:
        a = hb.address
        assert hb.size == 0 and hb.max_size == 16 * MIB
        assert hb.extend(MIB) == 0
        assert hb.extend(MIB + 5) == MIB
        assert hb.address == a and hb.size == 2 * MIB + 5
        regs = hb.registrations()
        assert len(regs) == 2 and regs[0] == (0, MIB)
        assert hb.info()["registered_bytes"] == sum(s for _, s in regs)
        hb.extend(MIB, register=False)
        assert len(hb.registrations()) == 2
        with pytest.raises(ValueError):
            hb.extend(64 * MIB)
        hb.truncate(MIB)
        assert hb.registrations() == [(0, MIB)]
        with pytest.raises(dynvram.Error) as ei:
            hb.truncate(10, unregister=False)
        assert ei.value.name == "DV_ERROR_BUSY"
        assert hb.size == MIB
        hb.unregister(0)
        hb.register(4096, 4096)
        with pytest.raises(ValueError, match="overlaps"):
            hb.register(0, 8192)
        hb.prewarm(threads=2)
    assert hb.closed
    hb.close()  # twice is fine
    with pytest.raises(ValueError, match="closed"):
        hb.extend(1)


def test_host_buffer_views_block_truncate(dev):
    hb = dynvram.HostBuffer(dev, 4 * MIB, size=MIB)
    arr = np.from_dlpack(hb.view(4096, 4096))  # numpy imports read-only
    ctypes.memset(hb.address + 4096, 7, 4096)
    assert arr.shape == (4096,) and int(arr[100]) == 7
    with pytest.raises(BufferError):
        hb.truncate(5000)
    with pytest.raises(BufferError):
        hb.close()
    hb.truncate(8192)  # the view ends there
    del arr
    hb.truncate(0)
    with pytest.raises(ValueError):
        hb.view(0, 1)
    hb.close()


def test_model_file_maps_bounces_and_opens_fds(blob):
    p, data = blob
    with dynvram.ModelFile(p) as f:
        assert f.size == len(data)
        assert _bytes(f.address, len(data)) == data
        assert f.bounce() is True
        assert _bytes(f.get() + 100, 50) == data[100:150]
        assert f.info()["bounces"] == 1
        f.mark_cold()
        assert f.fileno() >= 0
    with open(p, "rb") as fo:
        with dynvram.ModelFile(fo, map=False) as f2:
            assert f2.address == 0 and f2.size == len(data)
            assert _bytes(f2.get(), 10) == data[:10]
    with dynvram.ModelFile(str(p).encode()) as f3:
        assert f3.size == len(data)
    with pytest.raises(dynvram.Error) as ei:
        dynvram.ModelFile(str(p) + ".missing")
    assert ei.value.name == "DV_ERROR_IO" and "No such file" in ei.value.message
    assert isinstance(ei.value, RuntimeError)


def test_read_file_to_every_destination(dev, blob):
    p, data = blob
    f = dynvram.ModelFile(p, map=False)
    hb = dynvram.HostBuffer(dev, 8 * MIB, size=4 * MIB)
    dynvram.read_file(f, 0, len(data), hb)
    assert _bytes(hb.address, len(data)) == data
    hb.read_file(str(p), 5, 1000, offset=3, mark_cold=True)
    assert _bytes(hb.address + 3, 1000) == data[5:1005]
    v = dynvram.VBAR(dev, 4 * PAGE)
    assert v.fault(0, 4 * PAGE) is not None
    dynvram.read_file(f, 7, 2 * PAGE, v, offset=11)
    assert _bytes(v.base + 11, 2 * PAGE) == data[7:7 + 2 * PAGE]
    dynvram.read_file(f, 0, PAGE, v.base, device=dev)  # an address
    assert _bytes(v.base, PAGE) == data[:PAGE]
    s = dev.stream_create()
    dynvram.read_file(f, PAGE, PAGE, v, stream=s)
    dev.stream_synchronize(s)
    assert _bytes(v.base, PAGE) == data[PAGE:2 * PAGE]
    dev.stream_destroy(s)
    v.unpin(0, 4 * PAGE)
    with pytest.raises(dynvram.Error) as ei:
        dynvram.read_file(f, 0, 10, v)
    assert ei.value.name == "DV_ERROR_NOT_PINNED"
    db = dynvram.DeviceBuffer(dev, 8 * PAGE)
    addr = db.get(2 * PAGE + 1)
    assert addr == db.address and db.info()["mapped"] == 3 * PAGE
    dynvram.read_file(f, 1, 2 * PAGE, db, offset=1)
    assert _bytes(db.address + 1, 2 * PAGE) == data[1:1 + 2 * PAGE]
    with pytest.raises(ValueError):
        dynvram.read_file(f, 0, 3 * PAGE, db)  # beyond its size
    with pytest.raises(ValueError):
        dynvram.read_file(f, len(data) - 1, 2, hb)  # beyond the file
    with pytest.raises(ValueError):
        dynvram.read_file(f, 0, 5 * MIB, hb)  # beyond the buffer
    with pytest.raises(ValueError, match="device"):
        dynvram.read_file(f, 0, 10, v.base)
    with pytest.raises(TypeError):
        dynvram.read_file(f, 0, 10, "nowhere", device=dev)
    info = dev.reader().info()
    assert info["bytes_read"] > 0 and info["reads_in_flight"] == 0
    assert dev.stats().devbuf_bytes == 3 * PAGE
    for o in (db, v, hb, f):
        o.close()
    dev.close()  # closes the default reader too
    assert dev.closed


def test_device_close_refuses_live_io_objects(dev):
    hb = dynvram.HostBuffer(dev, MIB)
    with pytest.raises(dynvram.Error) as ei:
        dev.close()
    assert ei.value.name == "DV_ERROR_BUSY"
    assert not dev.closed
    hb.close()


def test_device_buffer_evicts_weights(dev):
    v = dynvram.VBAR(dev, 16 * PAGE)
    for i in range(16):
        assert v.fault(i * PAGE, PAGE) is not None
        v.unpin(i * PAGE, PAGE)
    before = dev.stats()
    with dynvram.DeviceBuffer(dev, 8 * PAGE) as db:
        db.resize(4 * PAGE)
        after = dev.stats()
        assert after.evictions - before.evictions == 4
        assert after.devbuf_bytes == 4 * PAGE
        assert after.used <= after.budget
        db.resize(0)
        assert db.size == 0
    dev.check()
    v.close()


def test_threads_read_through_one_reader(dev, blob):
    p, data = blob
    f = dynvram.ModelFile(p, map=False)
    r = dynvram.Reader(dev, threads=2, slots=2, chunk_size=64 << 10)
    v = dynvram.VBAR(dev, 8 * PAGE)
    assert v.fault(0, 8 * PAGE) is not None
    errors = []

    def work(k):
        try:
            for it in range(5):
                off = (k * 5 + it) * 4099
                dynvram.read_file(f, off, PAGE, v, offset=k * 2 * PAGE,
                                  reader=r)
                if _bytes(v.base + k * 2 * PAGE, PAGE) != data[off:off + PAGE]:
                    errors.append((k, it))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    ts = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert errors == []
    assert r.info()["bytes_read"] == 20 * PAGE
    r.close()
    v.unpin(0, 8 * PAGE)
    v.close()
    f.close()


CHILD = r"""
import dynvram, sys
from dynvram import _native as n
d = dynvram.Device("host", page_size=1 << 20, vram_limit=16 << 20)
def expect(exc, fn, *a, **kw):
    try:
        fn(*a, **kw)
    except exc as e:
        return str(e)
    raise SystemExit("no %s from %s%r" % (exc.__name__, fn.__name__, a))
"""


def _child(body):
    code = CHILD + textwrap.dedent(body) + "\nprint('child ok')\n"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True,
                       text=True, timeout=120, env=dict(os.environ))
    assert r.returncode == 0 and "child ok" in r.stdout, \
        "child failed (%d):\n%s\n%s" % (r.returncode, r.stdout, r.stderr)
    return r.stdout


def test_junk_and_dead_handles_in_a_child():
    _child("""
    calls = [
        lambda j: n.hostbuf_destroy(d, j),
        lambda j: n.hostbuf_extend(d, j, 1, 0),
        lambda j: n.hostbuf_truncate(d, j, 0, 0),
        lambda j: n.hostbuf_register(d, j, 0, 1),
        lambda j: n.hostbuf_unregister(d, j, 0),
        lambda j: n.hostbuf_prewarm(d, j, 0, 1, 0),
        lambda j: n.hostbuf_info(d, j),
        lambda j: n.hostbuf_registrations(d, j),
        lambda j: n.hostbuf_copy_h2d(d, j, 0, 1, 4096, 0),
        lambda j: n.file_close(j),
        lambda j: n.file_info(j),
        lambda j: n.file_map(j),
        lambda j: n.file_bounce(j),
        lambda j: n.file_mark_cold(j, 0, 1),
        lambda j: n.reader_destroy(d, j),
        lambda j: n.reader_info(d, j),
        lambda j: n.read_to_host(d, j, j, 0, 1, j, 0, 0),
        lambda j: n.read_to_device(d, j, j, 0, 1, 4096, 0, 0),
        lambda j: n.devbuf_destroy(d, j),
        lambda j: n.devbuf_resize(d, j, 1),
        lambda j: n.devbuf_info(d, j),
    ]
    for junk in (0, 1, 0x10, 0xdeadbeef, 2**63, 2**64 - 1, id(d)):
        for c in calls:
            expect(ValueError, c, junk)
    expect(dynvram.Error, n.file_open_native, -1)
    expect(dynvram.Error, n.file_open_native, 123456)
    expect(TypeError, n.hostbuf_copy_h2d, d, 0, 0, 1, "dst", 0)
    expect(ValueError, n.hostbuf_prewarm, d, 0, 0, 1, -3)
    h = n.hostbuf_create(d, 1 << 20)
    n.hostbuf_destroy(d, h)
    m = expect(ValueError, n.hostbuf_extend, d, h, 1, 0)
    assert "not a live host buffer" in m, m
    r = n.reader_create(d, 1, 0, 0)
    m = expect(ValueError, n.hostbuf_info, d, r)
    assert "is a reader handle" in m, m
    n.reader_destroy(d, r)
    expect(ValueError, n.reader_destroy, d, r)
    b = n.devbuf_create(d, 1 << 20)
    n.devbuf_destroy(d, b)
    expect(ValueError, n.devbuf_info, d, b)
    expect(TypeError, n.hostbuf_create, "not a device", 1)
    expect(ValueError, n.hostbuf_create, d, -1)
    expect(ValueError, n.hostbuf_create, d, 2**64)
    expect(TypeError, n.file_open, "str, not bytes")
    expect(TypeError, n.hostbuf_extend, d)
    expect(ValueError, n.reader_create, d, 2**33, 0, 0)
    # Objects of another device.
    d2 = dynvram.Device("host", ordinal=1, page_size=1 << 20)
    h2 = n.hostbuf_create(d2, 1 << 20)
    m = expect(dynvram.Error, n.hostbuf_info, d, h2)
    assert "belongs to" in m, m
    n.hostbuf_destroy(d2, h2)
    d2.close()
    # A closed device.
    d.close()
    expect(ValueError, n.hostbuf_create, d, 1 << 20)
    """)


def test_python_objects_after_close_in_a_child(tmp_path):
    p = tmp_path / "f.bin"
    p.write_bytes(b"x" * 10000)
    _child("""
    p = %r
    hb = dynvram.HostBuffer(d, 1 << 20, size=8192)
    f = dynvram.ModelFile(p)
    r = dynvram.Reader(d)
    db = dynvram.DeviceBuffer(d, 4 << 20)
    for o in (hb, f, r, db):
        o.close()
    expect(ValueError, hb.extend, 1)
    expect(ValueError, hb.view)
    expect(ValueError, f.bounce)
    expect(ValueError, f.fileno)
    expect(ValueError, r.info)
    expect(ValueError, db.resize, 1)
    hb2 = dynvram.HostBuffer(d, 1 << 20, size=8192)
    expect(ValueError, dynvram.read_file, f, 0, 10, hb2)
    expect(ValueError, dynvram.read_file, p, 0, 10, hb2, reader=r)
    f2 = dynvram.ModelFile(p)
    expect(ValueError, dynvram.read_file, f2, 0, 10001, hb2)
    expect(ValueError, dynvram.read_file, f2, 2**64 - 1, 2, hb2)
    expect(ValueError, dynvram.read_file, f2, -1, 2, hb2)
    expect(dynvram.Error, dynvram.ModelFile, "/nonexistent/dir/x.bin")
    expect(ValueError, dynvram.HostBuffer, d, 0)
    expect(ValueError, dynvram.DeviceBuffer, d, 0)
    expect(ValueError, dynvram.Reader, d, threads=1000)
    hb2.close(); f2.close()
    """ % str(p))
