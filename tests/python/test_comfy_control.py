# SPDX-License-Identifier: Apache-2.0
"""comfy_aimdo.control and the package itself: metadata, import order,
init / init_devices and their error cases, headroom, logging, deinit and
re-init; the CUDA path (interposer, nvml_pressure) against the simulated
libcuda, libcudart and NVML. Host backend, no GPU."""
import importlib.metadata
import logging
import os
import warnings

import pytest

import dynvram
from comfy_fixtures import MIB, run_fresh

ALL_MODULES = ("control", "model_vbar", "torch", "host_buffer", "model_mmap",
               "vram_buffer", "malloc_graph", "storage")


# ---- the package ------------------------------------------------------------

def test_distribution_metadata_and_implementation():
    import comfy_aimdo
    v = importlib.metadata.version("comfy-aimdo")
    assert v == comfy_aimdo.__version__
    assert "+dynvram." in v
    assert comfy_aimdo.IMPLEMENTATION == "dynvram"
    api, _, local = v.partition("+")
    assert tuple(int(x) for x in api.split(".")) >= (0, 5, 5)


def test_every_module_imports_before_init_without_torch():
    rep, _ = run_fresh("""
        import importlib, sys
        mods = %r
        for m in mods:
            importlib.import_module("comfy_aimdo." + m)
        import comfy_aimdo.control as c
        report("torch", "torch" in sys.modules)
        report("lib", c.lib is None)
        report("init", c.init())
        report("lib_after", c.lib is not None)
        # Imported before init, working after it.
        import comfy_aimdo.model_vbar as mv, comfy_aimdo.storage as st
        assert c.init_devices([0])
        v = mv.ModelVBAR(1 << 26, 0)
        a = v.alloc(4096)
        assert mv.vbar_fault(a) is not None
        mv.vbar_unpin(a)
        st.fast_disk("/")
        report("torch_after", "torch" in sys.modules)
    """ % (ALL_MODULES,), env={"DYNVRAM_BACKEND": "host"})
    assert rep == {"torch": False, "lib": True, "init": True,
                   "lib_after": True, "torch_after": False}


def test_shadowed_original_is_reported(tmp_path):
    other = tmp_path / "site" / "comfy_aimdo"
    other.mkdir(parents=True)
    (other / "__init__.py").write_text("raise ImportError('the original')\n")
    rep, p = run_fresh("""
        import sys, warnings
        sys.path.append(%r)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            import comfy_aimdo
        report("impl", comfy_aimdo.IMPLEMENTATION)
        report("shadowed", comfy_aimdo.shadowed())
        report("warned", [str(x.message) for x in w])
    """ % str(tmp_path / "site"))
    assert rep["impl"] == "dynvram"
    assert rep["shadowed"] == [str(other)]
    assert any(str(other) in m and "hidden" in m for m in rep["warned"])


# ---- init -------------------------------------------------------------------

def _gpu_present():
    return any(b["available"] and b["name"] != "host"
               for b in dynvram.backends())


def test_init_returns_false_when_unsupported_and_never_raises():
    if _gpu_present():
        pytest.skip("a GPU backend is available here")
    rep, _ = run_fresh("""
        import comfy_aimdo.control as c
        report("auto", c.init())
        report("devices", c.init_devices([0]))
        report("lib", c.lib is None)
    """, unset=("DYNVRAM_BACKEND",))
    assert rep == {"auto": False, "devices": False, "lib": True}
    for env, kw in (({"DYNVRAM_BACKEND": "bogus"}, ""),
                    ({"DYNVRAM_BACKEND": "hip"}, ""),
                    ({}, "implementation='no-such-thing'"),
                    ({}, "implementation=12")):
        rep, _ = run_fresh("""
            import comfy_aimdo.control as c
            report("r", c.init(%s))
            report("d", c.init_devices([(0, 0)]))
        """ % kw, env=env, unset=("DYNVRAM_BACKEND",) if not env else ())
        assert rep == {"r": False, "d": False}, (env, kw)


def test_init_without_dynvram_returns_false(tmp_path):
    # A broken install: dynvram not importable.
    (tmp_path / "dynvram").mkdir()
    (tmp_path / "dynvram" / "__init__.py").write_text(
        "raise ImportError('broken dynvram')\n")
    rep, _ = run_fresh("""
        import sys
        sys.path.insert(0, %r)
        import comfy_aimdo.control as c
        report("r", c.init())
        report("lib", c.lib is None)
    """ % str(tmp_path), env={"DYNVRAM_BACKEND": "host"})
    assert rep == {"r": False, "lib": True}


def test_defaults_and_setter_before_init():
    rep, _ = run_fresh("""
        import comfy_aimdo.control as c
        report("before", attempt(c.set_simple_vram_headroom, 1 << 20))
        report("bad_before", attempt(c.set_simple_vram_headroom, -1))
        report("default", c.get_simple_vram_headroom())
        report("init", c.init())
        report("after", c.get_simple_vram_headroom())
        report("nvml", c.init(nvml_pressure=True))
        report("nvml_h", c.get_simple_vram_headroom())
        report("explicit", c.init(simple_vram_headroom=5 << 20,
                                  nvml_pressure=True))
        report("explicit_h", c.get_simple_vram_headroom())
    """, env={"DYNVRAM_BACKEND": "host"})
    assert rep["before"][0] == "RuntimeError"
    assert rep["bad_before"][0] == "ValueError"
    assert rep["default"] == rep["after"] == 256 * MIB
    assert rep["nvml"] is True and rep["nvml_h"] == 512 * MIB
    assert rep["explicit"] is True and rep["explicit_h"] == 5 * MIB


def test_init_is_idempotent_and_updates_the_headroom(comfy):
    c = comfy.start(limit_mib=0, devices=[(0, 3 * MIB)])
    ctl = c.control
    assert ctl.init(unknown_flag=1, another=None) is True
    assert ctl.init(simple_vram_headroom=7 * MIB) is True
    assert ctl.get_simple_vram_headroom() == 7 * MIB
    assert c.dev.headroom == 10 * MIB  # simple + the device's extra
    ctl.set_simple_vram_headroom(1 << 30)
    assert c.dev.headroom == (1 << 30) + 3 * MIB
    ctl.set_simple_vram_headroom(2048.0)  # an integral float is fine
    assert ctl.get_simple_vram_headroom() == 2048
    ctl.set_simple_vram_headroom(1 << 60)
    for bad in (-1, (1 << 60) + 1, "1", True, 1.5, None):
        with pytest.raises(ValueError):
            ctl.set_simple_vram_headroom(bad)
    assert ctl.get_simple_vram_headroom() == 1 << 60
    # A bad headroom in a repeat init is reported, not raised.
    assert ctl.init(simple_vram_headroom=-5) is False
    assert ctl.get_simple_vram_headroom() == 1 << 60


def test_headroom_takes_effect_at_the_next_fault(comfy):
    c = comfy.start(limit_mib=0)
    total = c.dev.caps().total_memory
    v = c.mv.ModelVBAR(64 * MIB, 0)
    allocs = [v.alloc(MIB) for _ in range(8)]
    # Leave 4.5 pages: the fifth fault is offloaded.
    c.control.set_simple_vram_headroom(total - 4 * MIB - MIB // 2)
    got = [c.mv.vbar_fault(a) is not None for a in allocs]
    assert got == [True] * 4 + [False] * 4
    for a in allocs:
        c.mv.vbar_unpin(a)


# ---- devices ----------------------------------------------------------------

def test_init_devices_generator_of_pairs_and_ints(comfy):
    c = comfy.start(devices=(x for x in [(0, 2 * MIB), 1]))
    ctl = c.control
    assert [d.device_id for d in ctl.devctxs] == [0, 1]
    assert ctl.get_devctx(1).extra_vram_headroom == 0
    assert ctl.get_devctx(0).device.headroom == 2 * MIB
    assert ctl.get_devctx(0).backend == "host"
    with pytest.warns(RuntimeWarning, match="devices are already initialized"):
        assert ctl.init_devices([2]) is False
    assert [d.device_id for d in ctl.devctxs] == [0, 1]
    with pytest.raises(RuntimeError):
        ctl.get_devctx(2)


@pytest.mark.parametrize("entries", [
    [(0,)], [(0, 1, 2)], [(0, -1)], ["0"], [-1], [True], [(0, 1.5)],
    [(0, None)], None, 5, "0", [0, 0], [(0, 0), 0], [[0, 2 ** 61]]])
def test_init_devices_malformed_entries(comfy, entries):
    comfy.mp.setenv("DYNVRAM_COMFY_PAGE_SIZE", "1M")
    assert comfy.control.init(simple_vram_headroom=0)
    with pytest.raises(ValueError):
        comfy.control.init_devices(entries)
    assert comfy.control.devctxs == []


def test_init_devices_cannot_start(comfy):
    ctl = comfy.control
    assert ctl.init()
    assert ctl.init_devices([]) is False
    assert ctl.init_devices([99]) is False  # the host backend has 4
    assert ctl.init_devices([0, 99]) is False
    assert ctl.devctxs == []  # device 0 was closed again
    assert ctl.init_devices([0]) is True


def test_init_device_one_at_a_time(comfy):
    ctl = comfy.control
    assert ctl.init(simple_vram_headroom=0)
    assert ctl.init_device(0) is True
    with pytest.warns(RuntimeWarning, match="already initialized"):
        assert ctl.init_device(0) is False
    assert ctl.init_device(1, 4 * MIB) is True
    assert ctl.get_devctx(1).device.headroom == 4 * MIB
    assert ctl.init_device(99) is False
    with pytest.raises(ValueError):
        ctl.init_device(2, -1)
    assert [d.device_id for d in ctl.devctxs] == [0, 1]


def test_get_devctx_accepts_torch_style_devices(comfy):
    c = comfy.start(devices=[0, 1])
    assert c.control.get_devctx("cuda:1").device_id == 1
    assert c.control.get_devctx(0) is c.control.devctxs[0]

    class Dev:  # torch.device's shape
        type, index = "cuda", 1
    assert c.control.get_devctx(Dev()).device_id == 1


def test_deinit_closes_everything_and_reinit_works(comfy):
    c = comfy.start()
    v = c.mv.ModelVBAR(16 * MIB, 0)
    a = v.alloc(MIB)
    assert c.mv.vbar_fault(a) is not None
    c.mv.vbar_unpin(a)
    c.control.deinit()
    assert c.control.devctxs == []
    with pytest.raises(RuntimeError):
        c.mv.vbar_fault(a)
    with pytest.raises(RuntimeError):
        v.free_memory(MIB)
    with pytest.raises(RuntimeError):
        c.mv.ModelVBAR(MIB, 0)
    assert c.control.init_devices([0]) is True
    w = c.mv.ModelVBAR(16 * MIB, 0)
    b = w.alloc(MIB)
    assert c.mv.vbar_fault(b) is not None
    c.mv.vbar_unpin(b)


def test_deinit_with_pinned_pages_reports_instead_of_raising(comfy, caplog):
    c = comfy.start()
    v = c.mv.ModelVBAR(16 * MIB, 0)
    a = v.alloc(MIB)
    assert c.mv.vbar_fault(a) is not None
    dev = c.dev
    caplog.set_level(logging.ERROR, logger="comfy_aimdo")
    c.control.deinit()
    assert any("not released" in r.getMessage() for r in caplog.records)
    assert c.control.devctxs == []
    # Nothing was freed under the pin: the VBAR still works, and once
    # unpinned it and its device can go.
    assert not v._vbar.closed and not dev.closed
    c.mv.vbar_unpin(a)
    v._release()
    dev.close()


def test_usage_report(comfy):
    c = comfy.start(limit_mib=8)
    v = c.mv.ModelVBAR(16 * MIB, 0)
    allocs = [v.alloc(MIB) for _ in range(3)]
    for a in allocs:
        assert c.mv.vbar_fault(a) is not None
        c.mv.vbar_unpin(a)
    assert c.control.get_total_vram_usage() == c.dev.stats().resident_bytes
    assert c.control.get_total_vram_usage() == v.loaded_size() > 0
    text = c.control.analyze()
    assert "device 0 (host)" in text and "ModelVBAR" in text
    assert c.control.pressure_status()[0] is None  # host: torch on the CPU


# ---- logging ----------------------------------------------------------------

def test_log_levels(comfy):
    ctl = comfy.control
    expect = {"none": (0, logging.CRITICAL + 10), "critical": (1, 50),
              "error": (2, 40), "warning": (3, 30), "info": (4, 20),
              "detail": (4, 15), "debug": (5, 10), "verbose": (6, 5),
              "vverbose": (6, 1)}
    try:
        for name, (native, level) in expect.items():
            getattr(ctl, "set_log_" + name)()
            assert dynvram._native.get_log_level() == native, name
            assert logging.getLogger("comfy_aimdo").level == level
            assert logging.getLogger("dynvram").level == level
        assert logging.INFO > ctl.DETAIL > logging.DEBUG
        assert logging.getLevelName(ctl.DETAIL) == "DETAIL"
    finally:
        ctl.set_log_warning()


def test_native_log_reaches_logging_and_detail_sits_between(comfy, caplog):
    ctl = comfy.control
    caplog.set_level(1)
    try:
        ctl.set_log_detail()
        comfy.start()
        names = {(r.name, r.levelno) for r in caplog.records}
        assert ("dynvram", logging.INFO) in names  # "opened host:0 ..."
        assert ("comfy_aimdo", ctl.DETAIL) in names  # per-device summary
        ctl.deinit()
        caplog.clear()
        ctl.set_log_info()
        assert ctl.init_devices([0])
        assert ("comfy_aimdo", ctl.DETAIL) not in {
            (r.name, r.levelno) for r in caplog.records}
        assert any(r.name == "dynvram" for r in caplog.records)
    finally:
        ctl.set_log_warning()


# ---- the CUDA path, on the simulated driver, runtime and NVML ---------------

def _fakes():
    need = {k: os.environ.get(k) for k in
            ("DV_FAKE_CUDA", "DV_FAKE_NVML_LIB", "DV_FAKE_CUDART")}
    if not all(need.values()) or not all(map(os.path.exists, need.values())):
        pytest.skip("the simulated CUDA libraries are not built (run through "
                    "ctest)")
    return need


def test_cuda_init_loads_the_interposer_and_torch_allocations_evict(tmp_path):
    f = _fakes()
    rep, _ = run_fresh("""
        import ctypes, sys
        import comfy_aimdo.control as c
        import comfy_aimdo.model_vbar as mv
        report("init", c.init(simple_vram_headroom=0))
        report("route", c.pressure_status()[0])
        report("torch", "torch" in sys.modules)
        report("devices", c.init_devices([0]))
        from dynvram import interpose
        report("active", interpose.is_active())
        v = mv.ModelVBAR(64 << 20, 0)
        allocs = [v.alloc(2 << 20) for _ in range(8)]
        for a in allocs:
            assert mv.vbar_fault(a) is not None
            mv.vbar_unpin(a)
        report("loaded", v.loaded_size())
        # What torch's allocator does: cudaMalloc from the global scope.
        g = ctypes.CDLL(None)
        g.cudaMalloc.argtypes = [ctypes.POINTER(ctypes.c_void_p),
                                 ctypes.c_size_t]
        p = ctypes.c_void_p()
        report("rc", g.cudaMalloc(ctypes.byref(p), 6 << 20))
        report("loaded_after", v.loaded_size())
        report("framework", c.get_devctx(0).device.stats().framework_bytes)
        report("usage", c.get_total_vram_usage())
        sig = mv.vbar_fault(allocs[-1])
        report("top_back", sig is not None)
        mv.vbar_unpin(allocs[-1]) if sig is not None else None
        g.cudaFree.argtypes = [ctypes.c_void_p]
        report("free", g.cudaFree(p))
        c.deinit()
        report("detached", interpose.attached())
    """, env={"DYNVRAM_BACKEND": "cuda", "DYNVRAM_CUDA_LIBRARY": f["DV_FAKE_CUDA"],
              "DYNVRAM_CUDART": f["DV_FAKE_CUDART"],
              "DYNVRAM_COMFY_PAGE_SIZE": "2M",
              "DYNVRAM_COMFY_VRAM_LIMIT": "16M"})
    assert rep["init"] is True and rep["route"] == "interposer"
    assert rep["torch"] is False and rep["devices"] is True
    assert rep["active"] is True
    assert rep["loaded"] == 16 << 20
    assert rep["rc"] == 0
    assert rep["framework"] == 6 << 20
    assert rep["loaded_after"] == 10 << 20  # three pages evicted for torch
    assert rep["usage"] == 10 << 20  # torch's own bytes are not counted
    assert rep["top_back"] is False  # the evicted top waits (watermark)
    assert rep["free"] == 0
    assert rep["detached"] == {}


def test_nvml_pressure_takes_free_memory_from_nvml():
    f = _fakes()
    code = """
        import comfy_aimdo.control as c
        assert c.init(simple_vram_headroom=0, nvml_pressure=%s)
        assert c.init_devices([0])
        report("budget", c.get_devctx(0).device.stats().budget)
    """
    env = {"DYNVRAM_BACKEND": "cuda", "DYNVRAM_CUDA_LIBRARY": f["DV_FAKE_CUDA"],
           "DYNVRAM_CUDART": f["DV_FAKE_CUDART"],
           "DYNVRAM_NVML_LIBRARY": f["DV_FAKE_NVML_LIB"],
           "DV_FAKE_NVML_FREE": "256M"}
    on, _ = run_fresh(code % "True", env=env)
    off, _ = run_fresh(code % "False", env=env)
    assert on["budget"] == 256 * MIB
    assert off["budget"] == 1 << 30  # the simulated driver's 1 GiB
    # Where NVML does not exist it is ignored.
    env["DYNVRAM_NVML_LIBRARY"] = "/nonexistent/libnvidia-ml.so.1"
    gone, p = run_fresh(code % "True", env=env)
    assert gone["budget"] == 1 << 30


def test_init_after_torch_warns_that_pressure_may_be_missing():
    f = _fakes()
    pytest.importorskip("torch")
    rep, p = run_fresh("""
        import torch
        import logging
        logging.basicConfig(level=logging.WARNING)
        import comfy_aimdo.control as c
        report("init", c.init())
    """, env={"DYNVRAM_BACKEND": "cuda", "DYNVRAM_CUDA_LIBRARY": f["DV_FAKE_CUDA"],
              "DYNVRAM_CUDART": f["DV_FAKE_CUDART"]})
    assert rep["init"] is True
    assert "torch was imported before control.init()" in p.stderr


def test_warnings_module_is_not_left_in_error_mode():
    # The package's import-time check must not change the warning filters.
    import importlib

    import comfy_aimdo
    before = list(warnings.filters)
    importlib.reload(comfy_aimdo)
    assert list(warnings.filters) == before
