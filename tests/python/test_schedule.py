# SPDX-License-Identifier: Apache-2.0
"""dynvram.Schedule (the C streaming schedule) from Python, on the host
backend: the bytes at every acquired address are the range's own over many
steps, placement names, offloaded uses, errors for bad use, and lifetimes
(the VBAR is held, arrays over the ring block close())."""
import ctypes
import gc

import pytest

import dynvram
from conftest import MIB


def _sources(n, size):
    bufs = []
    for i in range(n):
        b = ctypes.create_string_buffer(size)
        ctypes.memset(b, 0x11 * (i + 1) & 0xff, size)
        b[0] = i  # every range's first byte says which it is
        bufs.append(b)
    return bufs


def _model(dev, n=8, size=MIB, **kw):
    v = dynvram.VBAR(dev, n * size)
    bufs = _sources(n, size)
    ranges = [(i * size, size, ctypes.addressof(b)) for i, b in enumerate(bufs)]
    s = dynvram.Schedule(v, ranges, keep=bufs, **kw)
    return v, bufs, s


def _step(s, bufs, size=MIB):
    kinds = []
    for i, b in enumerate(bufs):
        addr = s.acquire(i)
        assert addr is not None
        assert ctypes.string_at(addr, size) == b.raw, "use %d" % i
        kinds.append(s.ring_base <= addr < s.ring_base + s.ring_bytes)
        s.release(i)
    return kinds


def test_bytes_over_many_steps(dev):
    # dev: 16 pages of 1 MiB; ring 2 pages; plan 8 of 8 would fit, so ask
    # for a smaller budget through a bigger model.
    v, bufs, s = _model(dev, n=20)
    info = s.info()
    assert info.count == 20 and info.ring_slots == 2
    assert info.planned_ranges == 14  # 16 pages - 2 for the ring
    for _ in range(6):
        kinds = _step(s, bufs)
        assert kinds.count(True) == 6
    info = s.info()
    assert info.steps == 6 and info.offloaded == 0
    plan = s.plan()
    assert sum(bool(f & dynvram.USE_PLANNED_RESIDENT) for f in plan) == 14
    assert dev.stats().ring_bytes == 2 * MIB
    dev.check()
    s.close()
    assert s.closed and dev.stats().ring_bytes == 0
    v.close()


def test_prefix_placement_by_name(dev):
    v, bufs, s = _model(dev, n=20, placement="prefix")
    flags = s.plan()
    assert [bool(f & dynvram.USE_PLANNED_RESIDENT) for f in flags] == \
        [True] * 14 + [False] * 6
    s.close()
    v.close()


def test_offloaded_use_returns_none(dev):
    v, bufs, s = _model(dev, n=20, size=MIB, slot_size=MIB // 2)
    # Ranges of 1 MiB, slots of half that: what is not resident is offloaded.
    nones = 0
    for i in range(20):
        addr = s.acquire(i)
        if addr is None:
            nones += 1
            with pytest.raises(dynvram.Error):
                s.release(i)  # nothing to release
        else:
            s.release(i)
    assert nones > 0 and s.info().offloaded == nones
    s.close()
    v.close()


def test_bad_use(dev):
    v, bufs, s = _model(dev)
    with pytest.raises(ValueError):
        s.acquire(8)  # out of range
    with pytest.raises(dynvram.Error) as e:
        s.release(0)  # not acquired
    assert e.value.name == "DV_ERROR_NOT_PINNED"
    s.acquire(0)
    with pytest.raises(dynvram.Error) as e:
        s.acquire(0)
    assert e.value.name == "DV_ERROR_BUSY"
    with pytest.raises(dynvram.Error) as e:
        s.close()  # a use is held
    assert e.value.name == "DV_ERROR_BUSY" and not s.closed
    with pytest.raises(dynvram.Error):
        v.close()  # the VBAR is scheduled
    s.release(0)
    with pytest.raises(TypeError):
        dynvram.Schedule(v, [(0, 1)])
    with pytest.raises(ValueError):
        dynvram.Schedule(v, [(0, 0, 1)])  # size 0
    with pytest.raises(ValueError):
        dynvram.Schedule(v, [(0, MIB, ctypes.addressof(bufs[0]))],
                         placement=9)
    s.close()
    with pytest.raises(ValueError):
        s.acquire(0)  # closed
    v.close()


def test_ring_arrays_hold_the_schedule_open(dev):
    np = pytest.importorskip("numpy")
    v, bufs, s = _model(dev, n=20)
    _step(s, bufs)
    cap = s.ring_capsule(1, 0)  # DLPack on the CPU (host backend)

    class Holder:
        def __init__(self, c):
            self.c = c

        def __dlpack__(self, stream=None):
            return self.c

        def __dlpack_device__(self):
            return (1, 0)

    arr = np.from_dlpack(Holder(cap))
    assert arr.nbytes == s.ring_bytes and s.exports == 1
    del cap
    with pytest.raises(dynvram.Error) as e:
        s.close()
    assert e.value.name == "DV_ERROR_BUSY"
    del arr
    gc.collect()
    assert s.exports == 0
    s.close()
    v.close()
