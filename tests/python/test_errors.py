# SPDX-License-Identifier: Apache-2.0
"""Result codes become exceptions that carry the code, name and message."""
import logging

import pytest

import dynvram
from conftest import PAGE


def test_exception_hierarchy():
    assert issubclass(dynvram.Error, RuntimeError)
    assert issubclass(dynvram.InvalidArgumentError, ValueError)
    assert issubclass(dynvram.InvalidArgumentError, dynvram.Error)
    assert issubclass(dynvram.OutOfMemoryError, MemoryError)
    assert issubclass(dynvram.OutOfMemoryError, dynvram.Error)


def test_unknown_backend_is_value_error():
    with pytest.raises(ValueError) as ei:
        dynvram.Device("no-such-backend")
    e = ei.value
    assert e.code == -1 and e.name == "DV_ERROR_INVALID_ARGUMENT"
    assert "no-such-backend" in e.message or e.message
    assert e.message in str(e)


def test_unavailable_backend_is_error_not_value_error():
    # No CUDA driver on a CI machine; on a GPU machine this opens.
    info = {b["name"]: b for b in dynvram.backends()}["cuda"]
    if info["available"]:
        pytest.skip("CUDA is available here")
    with pytest.raises(dynvram.Error) as ei:
        dynvram.Device("cuda")
    assert not isinstance(ei.value, ValueError)
    assert ei.value.name == "DV_ERROR_BACKEND_UNAVAILABLE"
    assert ei.value.code == dynvram._native.ERROR_BACKEND_UNAVAILABLE


def test_out_of_range_is_value_error(vbar):
    with pytest.raises(ValueError) as ei:
        vbar.fault(vbar.size, 1)
    assert ei.value.name == "DV_ERROR_OUT_OF_RANGE"
    with pytest.raises(ValueError):
        vbar.fault(0, vbar.size + 1)
    with pytest.raises(ValueError):
        vbar.fault(2**64 - 1, 2)  # overflowing end


def test_zero_size_is_value_error(vbar):
    with pytest.raises(ValueError) as ei:
        vbar.fault(0, 0)
    assert ei.value.name == "DV_ERROR_INVALID_ARGUMENT"
    assert "size" in ei.value.message


def test_bad_python_arguments(vbar):
    with pytest.raises(ValueError):
        vbar.fault(-1, 10)
    with pytest.raises(ValueError):
        vbar.fault(0, 2**64)
    with pytest.raises(TypeError):
        vbar.fault("0", 10)
    with pytest.raises(TypeError):
        vbar.fault(0)
    with pytest.raises(TypeError):
        vbar.unpin(0, 1, 0, 0)
    with pytest.raises(TypeError):
        dynvram.VBAR("not a device", PAGE)
    with pytest.raises(ValueError):
        dynvram.Device("host", vram_limit=-1)
    with pytest.raises(ValueError):
        dynvram.set_log_level("loud")


def test_state_untouched_after_error(dev, vbar):
    before = dev.stats()
    with pytest.raises(ValueError):
        vbar.fault(vbar.size, PAGE)
    after = dev.stats()
    assert after.resident_bytes == before.resident_bytes
    dev.check()


def test_last_error_and_result_names():
    with pytest.raises(ValueError):
        dynvram.Device("no-such-backend")
    assert dynvram.last_error() != ""
    assert dynvram._native.result_name(1) == "DV_OFFLOADED"
    assert dynvram._native.result_name(-9) == "DV_ERROR_BUSY"


def test_result_constants_drop_the_c_prefix():
    # Every result code is a module constant named like the C enum without
    # its "DV_" prefix (DV_ERROR_BUSY -> ERROR_BUSY).
    n = dynvram._native
    seen = 0
    for code in range(-64, 64):
        cname = n.result_name(code)
        if cname == "DV_RESULT_UNKNOWN":
            continue
        assert cname.startswith("DV_")
        assert getattr(n, cname[3:]) == code, cname
        seen += 1
    assert seen == 18  # DV_RESULT_LIST in include/dynvram.h
    assert n.OK == 0 and n.OFFLOADED == 1 and n.ERROR_BUSY == -9


# ---- messages: the library's own reason, never a stale one ------------------

def test_exception_carries_the_library_message(vbar):
    with pytest.raises(ValueError) as ei:
        vbar.fault(vbar.size, 1)
    e = ei.value
    assert e.message == dynvram.last_error()  # dv_last_error(), verbatim
    assert e.message.startswith("DV_ERROR_OUT_OF_RANGE: dv_fault")
    assert str(vbar.size) in e.message
    assert str(e) == e.message


@pytest.mark.parametrize("call", ["fault", "unpin", "stats", "info",
                                  "residency", "prioritize"])
def test_success_after_failure_clears_the_last_error(dev, vbar, call):
    # include/dynvram.h: dv_last_error() is "" when the last call succeeded.
    if call == "unpin":
        assert vbar.fault(0, 1) is not None
    with pytest.raises(ValueError):
        vbar.fault(vbar.size, 1)
    assert dynvram.last_error() != ""
    ok = {"fault": lambda: vbar.fault(0, 1), "unpin": lambda: vbar.unpin(0, 1),
          "stats": dev.stats, "info": vbar.info, "residency": vbar.residency,
          "prioritize": vbar.prioritize}[call]
    ok()
    try:
        assert dynvram.last_error() == "", call
    finally:
        if call == "fault":
            vbar.unpin(0, 1)


def test_next_failure_carries_its_own_reason(vbar):
    with pytest.raises(ValueError):
        vbar.fault(vbar.size, 1)
    first = dynvram.last_error()
    assert "dv_fault" in first
    assert vbar.fault(0, 1) is not None
    vbar.unpin(0, 1)
    with pytest.raises(dynvram.Error) as ei:
        vbar.unpin(0, 1)
    m = ei.value.message
    assert ei.value.name == "DV_ERROR_NOT_PINNED"
    assert m.startswith("DV_ERROR_NOT_PINNED: dv_unpin") and "not pinned" in m
    assert "dv_fault" not in m and first not in m


def test_copy_failure_keeps_the_backend_reason():
    import ctypes
    with dynvram.Device("host", page_size=1 << 30) as d:
        # A reserve the OS refuses leaves a native error on this thread ...
        with pytest.raises(dynvram.Error) as ei:
            dynvram.VBAR(d, 1 << 50)
        assert ei.value.name == "DV_ERROR_ADDRESS_SPACE"
        with dynvram.VBAR(d, 2 << 30) as v:
            buf = ctypes.create_string_buffer(16)
            # ... which a later, unrelated failure must not carry; it says
            # what the backend said (the page is not mapped).
            with pytest.raises(ValueError) as ei:
                d.copy_h2d(v.base, ctypes.addressof(buf), 16)
            m = ei.value.message
            assert m == dynvram.last_error()
            assert "not mapped" in m, m
            assert "mmap" not in m and "native 12" not in m, m
            with pytest.raises(ValueError) as ei:
                d.copy_d2h(ctypes.addressof(buf), v.base, 16)
            assert "not mapped" in ei.value.message, ei.value.message


class _CallsDynvram(logging.Handler):
    """A logging handler that makes a successful dynvram call per record,
    which resets the thread's dv_last_error() to ""."""

    def __init__(self, dev):
        super().__init__(logging.DEBUG)
        self.dev = dev
        self.records = 0

    def emit(self, record):
        self.records += 1
        self.dev.stats()


def test_log_handler_calling_dynvram_does_not_erase_the_reason(dev, vbar):
    # At level debug every failure is logged; the binding emits queued log
    # records to Python before it returns, and a handler may call dynvram.
    # The exception must still carry the failed call's message.
    old = dynvram.get_log_level()
    h = _CallsDynvram(dev)
    log = logging.getLogger("dynvram")
    old_level = log.level
    log.addHandler(h)
    log.setLevel(logging.DEBUG)
    dynvram.set_log_level("debug")
    try:
        with pytest.raises(ValueError) as ei:
            vbar.fault(vbar.size, 1)  # the fast path
        assert "dv_fault" in ei.value.message, ei.value.message
        with pytest.raises(dynvram.Error) as ei:
            vbar.unpin(0, 1)  # the fast path, NOT_PINNED
        assert "dv_unpin" in ei.value.message, ei.value.message
        with pytest.raises(ValueError) as ei:
            dev.framework_release(1)  # a call that releases the GIL
        assert "dv_framework_release" in ei.value.message, ei.value.message
        with pytest.raises(ValueError) as ei:
            vbar.set_watermark(-1)  # refused by the binding: no C message
        assert "negative" in str(ei.value)
        assert h.records >= 3  # the handler really ran in between
    finally:
        dynvram.set_log_level(old)
        log.removeHandler(h)
        log.setLevel(old_level)
