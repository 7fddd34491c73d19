# SPDX-License-Identifier: Apache-2.0
"""dynvram.pluggable (bindings/interpose/pluggable.c): the
CUDAPluggableAllocator pair on the CUDA driver API, against the simulated
libcuda (tests/cuda/fake_cuda.c, with cuMemAllocAsync): allocations counted
in the budget and evicting weight pages, refusal when nothing is
evictable, evict-and-retry after a real out-of-memory, pass-through for
devices never attached, bad arguments, a missing driver; and the
comfy_aimdo route that uses it (DYNVRAM_COMFY_PRESSURE=pluggable, the
Windows default). Each case runs in a child process (the simulated driver
is process-wide)."""
import os

import pytest

from comfy_fixtures import MIB, run_fresh


def _env(**extra):
    fake = os.environ.get("DV_FAKE_CUDA")
    if not fake or not os.path.exists(fake):
        pytest.skip("the simulated libcuda is not built (run through ctest)")
    env = {"DYNVRAM_BACKEND": "cuda", "DYNVRAM_CUDA_LIBRARY": fake}
    env.update(extra)
    return env


PRELUDE = """
import ctypes
import dynvram
from dynvram import pluggable as pl
lib = pl.load()
dev = dynvram.Device("cuda", page_size=2 << 20, vram_limit=16 << 20,
                     pool_limit=0)
vbar = dynvram.VBAR(dev, 32 << 20)
for i in range(8):
    assert vbar.fault(i << 21, 2 << 20) is not None
    vbar.unpin(i << 21, 2 << 20)
"""


def test_allocations_evict_weights_and_are_released():
    rep, _ = run_fresh(PRELUDE + """
pl.attach(dev)
report("attached", list(pl.attached()))
report("driver", pl.driver_loaded())
p = lib.dv_pluggable_alloc(6 << 20, 0, None)
report("ptr", bool(p))
st = dev.stats()
report("framework", st.framework_bytes)
report("resident", st.resident_bytes)
report("stats", pl.stats(0))
ctypes.memset(p, 7, 6 << 20)  # the memory is there
lib.dv_pluggable_free(p, 6 << 20, 0, None)
report("after", dev.stats().framework_bytes)
report("stats_after", pl.stats(0))
lib.dv_pluggable_free(None, 0, 0, None)       # tolerated
lib.dv_pluggable_free(12345, 16, 0, None)     # unknown: tolerated
vbar.close()
dev.close()
report("detached", pl.attached())
""", env=_env())
    assert rep["attached"] == [0] and rep["driver"] == [True, ""]
    assert rep["ptr"] is True
    assert rep["framework"] == 6 * MIB
    assert rep["resident"] == 10 * MIB  # three pages went for torch
    assert rep["stats"]["allocs"] == 1 and rep["stats"]["live_bytes"] == 6 * MIB
    assert rep["after"] == 0
    assert rep["stats_after"]["frees"] == 1
    assert rep["stats_after"]["live_bytes"] == 0
    assert rep["detached"] == {}


def test_refused_when_nothing_is_evictable_and_retry_after_oom():
    rep, _ = run_fresh(PRELUDE + """
pl.attach(dev)
assert vbar.fault(0, 16 << 20) is not None        # everything pinned
report("refused", lib.dv_pluggable_alloc(2 << 20, 0, None))
vbar.unpin(0, 16 << 20)
st = pl.stats(0)
report("refusals", st["budget_refusals"])
# The driver answers out of memory once (the budget did not know):
# evict more, retry.
p = lib.dv_pluggable_alloc(2 << 20, 0, None)
report("retried", bool(p))
report("stats", pl.stats(0))
lib.dv_pluggable_free(p, 2 << 20, 0, None)
""", env=_env(DV_FAKE_CUDA_FAIL="cuMemAllocAsync:1"))
    assert rep["refused"] is None and rep["refusals"] == 1
    assert rep["retried"] is True
    assert rep["stats"]["oom_retries"] == 1
    assert rep["stats"]["oom_evicted"] >= 2 * MIB


def test_unattached_devices_pass_through_and_bad_arguments():
    rep, _ = run_fresh(PRELUDE + """
p = lib.dv_pluggable_alloc(4 << 20, 0, None)    # device 0 not attached
report("ptr", bool(p))
report("framework", dev.stats().framework_bytes)
lib.dv_pluggable_free(p, 4 << 20, 0, None)
report("zero", lib.dv_pluggable_alloc(0, 0, None))
report("bad_attach", [lib.dv_pluggable_attach(-1, dev.handle, 0),
                      lib.dv_pluggable_attach(64, dev.handle, 0),
                      lib.dv_pluggable_attach(0, None, 0),
                      lib.dv_pluggable_attach(0, dev.handle, None)])
report("bad_detach", lib.dv_pluggable_detach(99))
report("bad_stats", attempt(pl.stats, 99))
dev2 = dynvram.Device("cuda")
pl.attach(dev2, 5)
report("attached", sorted(pl.attached()))
pl.detach(5)
report("left", sorted(pl.attached()))
""", env=_env())
    assert rep["ptr"] is True and rep["framework"] == 0
    assert rep["zero"] is None
    assert all(r == -1 for r in rep["bad_attach"])  # INVALID_ARGUMENT
    assert rep["bad_detach"] == -1
    assert rep["bad_stats"][0] == "ValueError"
    assert rep["attached"] == [5] and rep["left"] == []


def test_a_missing_driver_is_reported():
    rep, _ = run_fresh("""
from dynvram import pluggable as pl
report("loaded", pl.driver_loaded())
report("alloc", pl.load().dv_pluggable_alloc(1 << 20, 0, None))
""", env={"DYNVRAM_CUDA_LIBRARY": "/nonexistent/libcuda.so.1"})
    ok, why = rep["loaded"]
    assert ok is False and "/nonexistent/libcuda.so.1" in why
    assert rep["alloc"] is None


def test_comfy_pluggable_route():
    rep, _ = run_fresh("""
import comfy_aimdo.control as c
import comfy_aimdo.model_vbar as mv
report("init", c.init(simple_vram_headroom=0))
report("route", c.pressure_status())
report("devices", c.init_devices([0]))
from dynvram import pluggable as pl
report("attached", list(pl.attached()))
# torch < 2.0 (Debian's) has no CUDAPluggableAllocator: the route says so.
report("after_install", c.pressure_status()[0])
v = mv.ModelVBAR(32 << 20, 0)
allocs = [v.alloc(2 << 20) for _ in range(8)]
for a in allocs:
    assert mv.vbar_fault(a) is not None
    mv.vbar_unpin(a)
p = pl.load().dv_pluggable_alloc(4 << 20, 0, None)
report("loaded", v.loaded_size())
pl.load().dv_pluggable_free(p, 4 << 20, 0, None)
c.deinit()
report("detached", pl.attached())
""", env=_env(DYNVRAM_COMFY_PRESSURE="pluggable",
              DYNVRAM_COMFY_PAGE_SIZE="2M", DYNVRAM_COMFY_VRAM_LIMIT="16M"))
    assert rep["init"] is True
    assert rep["route"] == ["pluggable", ""]
    assert rep["devices"] is True and rep["attached"] == [0]
    assert rep["after_install"] in ("pluggable", None)
    assert rep["loaded"] == 12 * MIB  # torch's 4 MiB took two pages
    assert rep["detached"] == {}
