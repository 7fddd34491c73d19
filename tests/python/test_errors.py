# SPDX-License-Identifier: Apache-2.0
"""Result codes become exceptions that carry the code, name and message."""
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
    assert seen == 16  # DV_RESULT_LIST in include/dynvram.h
    assert n.OK == 0 and n.OFFLOADED == 1 and n.ERROR_BUSY == -9
