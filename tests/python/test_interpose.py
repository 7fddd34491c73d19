# SPDX-License-Identifier: Apache-2.0
"""The CUDA allocation interposer driven from Python, against the libcudart
test double (DV_FAKE_CUDART) and a host device."""
import ctypes
import logging
import os

import pytest

import dynvram
from conftest import LIMIT_PAGES, MIB, PAGE


@pytest.fixture
def ip(fake_cudart, monkeypatch):
    monkeypatch.setenv("DYNVRAM_CUDART", fake_cudart)
    from dynvram import interpose
    lib = interpose.load()
    ok, reason = interpose.cudart_loaded()
    assert ok, reason
    fake = ctypes.CDLL(fake_cudart)
    fake.dv_fake_cudart_set_capacity(ctypes.c_uint64(1 << 30))
    fake.dv_fake_cudart_fail_next(0)
    lib.cudaMalloc.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_size_t]
    lib.cudaMalloc.restype = ctypes.c_int
    lib.cudaFree.argtypes = [ctypes.c_void_p]
    lib.cudaFree.restype = ctypes.c_int
    lib.cudaMemGetInfo.argtypes = [ctypes.POINTER(ctypes.c_size_t)] * 2
    lib.cudaMemGetInfo.restype = ctypes.c_int
    yield interpose, lib, fake
    interpose.detach_all()


def malloc(lib, size):
    p = ctypes.c_void_p()
    rc = lib.cudaMalloc(ctypes.byref(p), size)
    return rc, p.value


def test_library_is_shipped_with_the_package():
    from dynvram import interpose
    assert interpose.library_path() and os.path.exists(interpose.library_path())


def test_allocations_evict_weights_instead_of_failing(ip, dev, vbar):
    interpose, lib, fake = ip
    interpose.attach(dev)
    assert interpose.attached() == {0: dev}
    assert interpose.is_active()  # RTLD_GLOBAL: cudaMalloc is ours
    for i in range(LIMIT_PAGES):
        vbar.fault(i * PAGE, PAGE)
        vbar.unpin(i * PAGE, PAGE)
    g_top = vbar.generations((LIMIT_PAGES - 1) * PAGE, PAGE)[0]
    rc, p = malloc(lib, 10 * MIB)
    assert rc == 0 and p
    s = dev.stats()
    assert s.framework_bytes == 10 * MIB
    assert s.resident_bytes == (LIMIT_PAGES - 10) * PAGE
    assert interpose.stats(0)["live_bytes"] == 10 * MIB
    free, total = ctypes.c_size_t(), ctypes.c_size_t()
    assert lib.cudaMemGetInfo(ctypes.byref(free), ctypes.byref(total)) == 0
    assert free.value == (LIMIT_PAGES - 10) * PAGE
    assert lib.cudaFree(p) == 0
    assert dev.stats().framework_bytes == 0
    # The weights come back with a new generation: copy them again.
    vbar.prioritize()
    g = vbar.fault((LIMIT_PAGES - 1) * PAGE, PAGE)
    assert g is not None and g != g_top
    vbar.unpin((LIMIT_PAGES - 1) * PAGE, PAGE)


def test_refused_when_nothing_is_evictable(ip, dev, vbar):
    interpose, lib, fake = ip
    interpose.attach(dev)
    vbar.fault(0, LIMIT_PAGES * PAGE)  # everything pinned
    rc, _ = malloc(lib, PAGE)
    assert rc == 2  # cudaErrorMemoryAllocation
    assert interpose.stats(0)["budget_refusals"] == 1
    vbar.unpin(0, LIMIT_PAGES * PAGE)


def test_close_detaches(ip):
    interpose, lib, fake = ip
    d = dynvram.Device("host", page_size=PAGE, vram_limit=4 * PAGE)
    interpose.attach(d, cuda_device=3)
    assert 3 in interpose.attached()
    d.close()
    assert 3 not in interpose.attached()


def test_logs_from_allocating_threads_reach_logging(ip, dev, vbar, caplog):
    """ctypes calls run without the GIL: messages are queued, then emitted
    by flush_log (or the main thread's pending-call hook)."""
    interpose, lib, fake = ip
    old = dynvram.get_log_level()
    dynvram.set_log_level("debug")
    caplog.set_level(logging.DEBUG, logger="dynvram")
    try:
        interpose.attach(dev)
        vbar.fault(0, LIMIT_PAGES * PAGE)  # all pinned: the budget refuses
        caplog.clear()
        rc, _ = malloc(lib, 4 * MIB)  # dv_framework_reserve fails and logs
        assert rc == 2
        vbar.unpin(0, LIMIT_PAGES * PAGE)
        dynvram.flush_log()
        msgs = [r.getMessage() for r in caplog.records if r.name == "dynvram"]
        assert any("framework_reserve" in m for m in msgs), msgs
    finally:
        dynvram.set_log_level(old)
