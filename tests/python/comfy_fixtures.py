# SPDX-License-Identifier: Apache-2.0
"""Fixtures of the comfy_aimdo tests (host backend, no GPU).

``comfy(limit_pages=..)`` initialises the drop-in on host device 0 with
1 MiB pages (DYNVRAM_COMFY_PAGE_SIZE), an exact budget
(DYNVRAM_COMFY_VRAM_LIMIT), no headroom, and deinitialises it afterwards,
so every test starts from no device. The package's state is per process;
tests that need a fresh process (init before anything else) use child.py.
"""
import gc

import pytest

MIB = 1 << 20


class Comfy:
    """What a test gets: the modules, and a way to open the device."""

    def __init__(self, monkeypatch):
        import comfy_aimdo.control as control
        import comfy_aimdo.model_vbar as model_vbar
        self.control = control
        self.mv = model_vbar
        self.mp = monkeypatch

    def start(self, limit_mib=16, page="1M", devices=(0,), headroom=0):
        self.mp.setenv("DYNVRAM_COMFY_PAGE_SIZE", page)
        self.mp.setenv("DYNVRAM_COMFY_VRAM_LIMIT", "%dM" % limit_mib)
        assert self.control.init(simple_vram_headroom=headroom) is True
        assert self.control.init_devices(devices) is True
        return self

    @property
    def dev(self):
        return self.control.get_devctx(0).device


@pytest.fixture
def comfy(monkeypatch):
    monkeypatch.setenv("DYNVRAM_BACKEND", "host")
    c = Comfy(monkeypatch)
    c.control.deinit()
    yield c
    gc.collect()
    for ctx in list(c.control.devctxs):
        ctx.device.check()
    c.control.deinit()
    c.control.init(simple_vram_headroom=0, nvml_pressure=False)


_MARK = "@@comfy "
_PRELUDE = '''
import json, sys
def report(key, value):
    print(%r + json.dumps([key, value]), flush=True)
def attempt(fn, *args, **kw):
    try:
        fn(*args, **kw)
    except BaseException as e:
        return [type(e).__name__, str(e)]
    return None
''' % _MARK


def run_fresh(snippet, env=None, unset=(), expect_rc=0, timeout=120):
    """Run `snippet` in a new interpreter (the package's process-wide state
    starts empty there). `env` adds variables, `unset` removes some;
    `report(key, value)` and `attempt(fn, ...)` are defined. Returns
    (reports, completed process); fails the test on an unexpected exit
    status (a crash included)."""
    import os
    import subprocess
    import sys
    import textwrap
    e = dict(os.environ)
    e.update(env or {})
    for k in unset:
        e.pop(k, None)
    e["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    e["PYTHONDONTWRITEBYTECODE"] = "1"
    p = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c",
         _PRELUDE + textwrap.dedent(snippet)],
        env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        universal_newlines=True, timeout=timeout)
    reports = {}
    for line in p.stdout.splitlines():
        if line.startswith(_MARK):
            import json
            k, v = json.loads(line[len(_MARK):])
            reports[k] = v
    if expect_rc is not None and p.returncode != expect_rc:
        pytest.fail("child exit %d (wanted %d)\n--- reported: %r\n--- "
                    "stdout:\n%s\n--- stderr:\n%s"
                    % (p.returncode, expect_rc, reports, p.stdout, p.stderr),
                    pytrace=False)
    return reports, p
