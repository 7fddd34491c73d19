# SPDX-License-Identifier: Apache-2.0
"""DLPack and __cuda_array_interface__ views (host backend: numpy)."""
import sys

import pytest

import dynvram
from conftest import PAGE

np = pytest.importorskip("numpy")


def test_dlpack_view_shares_the_memory(vbar):
    # numpy marks DLPack imports read-only (legacy DLPack has no flag for
    # it); torch's are writable, which tests/gpu/torch_test.py checks.
    import ctypes
    assert vbar.fault(0, 2 * PAGE) is not None
    try:
        view = vbar.dlpack(PAGE, 4096)
        assert view.__dlpack_device__() == (1, 0)  # host backend: CPU
        a = np.from_dlpack(view)
        assert a.dtype == np.uint8 and a.shape == (4096,)
        pattern = bytes(range(256)) * 16
        ctypes.memmove(vbar.base + PAGE, pattern, len(pattern))
        assert a.tobytes() == pattern
        f = np.from_dlpack(vbar.dlpack(PAGE, 16)).view(np.float32)
        assert f.tobytes() == pattern[:16]  # any dtype via .view
        del a, f
    finally:
        vbar.unpin(0, 2 * PAGE)


def test_dlpack_keeps_vbar_alive(dev):
    v = dynvram.VBAR(dev, 4 * PAGE)
    v.fault(0, PAGE)
    before = sys.getrefcount(v)
    a = np.from_dlpack(v.dlpack(0, 64))
    assert sys.getrefcount(v) == before + 1
    del a
    assert sys.getrefcount(v) == before
    cap = v.dlpack(0, 64).__dlpack__()  # never consumed: freed by capsule
    assert sys.getrefcount(v) == before + 1
    del cap
    assert sys.getrefcount(v) == before
    v.unpin(0, PAGE)
    v.close()


def test_view_range_checked(vbar):
    with pytest.raises(ValueError):
        vbar.dlpack(vbar.size - 10, 11)
    with pytest.raises(ValueError):
        vbar.dlpack(0, 0)
    with pytest.raises(ValueError):
        vbar.cuda_array(-1, 10)


def test_cuda_array_interface(vbar):
    cai = vbar.cuda_array(512, 100).__cuda_array_interface__
    assert cai["shape"] == (100,)
    assert cai["typestr"] == "|u1"
    assert cai["data"] == (vbar.base + 512, False)
    assert cai["version"] == 3
