# SPDX-License-Identifier: Apache-2.0
"""Fixtures for the dynvram Python suite (host backend, no GPU needed).

Run through CTest (tests/python/tests.cmake sets PYTHONPATH to the build
tree's python/ folder), or by hand:
    PYTHONPATH=build/python /usr/bin/python3 -m pytest tests/python
"""
import gc
import os

import pytest

try:
    import dynvram
except ImportError as exc:  # pragma: no cover - a setup error, say so
    raise ImportError(
        "dynvram is not importable (%s): build the project and set "
        "PYTHONPATH=<build>/python, or pip install ./bindings/python" % exc)

MIB = 1 << 20
PAGE = MIB
LIMIT_PAGES = 16

# The comfy_aimdo drop-in's fixture (tests/python/comfy_fixtures.py).
from comfy_fixtures import comfy  # noqa: E402,F401


@pytest.fixture
def dev():
    d = dynvram.Device("host", page_size=PAGE, vram_limit=LIMIT_PAGES * PAGE,
                       pool_limit=0)
    yield d
    gc.collect()  # VBARs dropped by the test must go before the device
    if not d.closed:
        d.check()
        d.close()


@pytest.fixture
def vbar(dev):
    v = dynvram.VBAR(dev, 32 * PAGE)
    yield v
    if not v.closed:
        v.close()


@pytest.fixture
def fake_cudart():
    """Path of the libcudart test double built with the project."""
    path = os.environ.get("DV_FAKE_CUDART")
    if not path or not os.path.exists(path):
        pytest.skip("DV_FAKE_CUDART not set (run through ctest)")
    return path
