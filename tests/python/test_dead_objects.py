# SPDX-License-Identifier: Apache-2.0
"""Closed, never-initialised and doubly closed Device and VBAR objects:
every call raises ValueError naming the problem, close() is idempotent,
nothing reaches the library with a dead handle. Each case runs in a child
interpreter (child.py) so that a crash fails the test, not the run."""
import child

# Every Device call, with arguments that would be valid on an open device.
DEVICE_CALLS = [
    "dev.caps()", "dev.stats()", "dev.check()", "dev.trim_pool()",
    "dev.reset_watermark_limits()", "dev.framework_reserve(1)",
    "dev.framework_release(1)", "dev.framework_evict(1)",
    "dev.copy_h2d(base, ctypes.addressof(buf), 16)",
    "dev.copy_d2h(ctypes.addressof(buf), base, 16)",
    "dev.host_register(ctypes.addressof(buf), 16)",
    "dev.host_unregister(ctypes.addressof(buf))",
    "dev.stream_create()", "dev.stream_destroy(s)",
    "dev.stream_synchronize(0)", "dev.backend",
    "dynvram.VBAR(dev, PAGE)",
]

# Every VBAR call (the Python layer's included).
VBAR_CALLS = [
    "vbar.fault(0, 1)", "vbar.unpin(0, 1)", "vbar.prioritize()",
    "vbar.deprioritize()", "vbar.set_watermark(0)",
    "vbar.set_watermark_limit(0)", "vbar.evict(PAGE)", "vbar.info()",
    "vbar.residency()", "vbar.generations()", "vbar.watermark",
    "vbar.watermark_limit", "vbar.resident_bytes", "vbar.priority_rank",
    "vbar._export()", "vbar.pinned(0, 1).__enter__()",
    "vbar.alloc(16)", "vbar.dlpack(0, 16)", "vbar.cuda_array(0, 16)",
    "dynvram._native.dlpack_capsule(vbar, 0, 16, 1, 0)",
]

# Calls whose refusal comes from the Python layer (plain ValueError); the
# others are the native types' (dynvram.InvalidArgumentError).
PYTHON_LAYER = {"vbar.alloc(16)", "vbar.dlpack(0, 16)",
                "vbar.cuda_array(0, 16)"}


def _attempts(calls):
    return "\n".join("report(%r, attempt(lambda: %s))" % (c, c) for c in calls)


def _check_closed(r, calls, what):
    for c in calls:
        t = "ValueError" if c in PYTHON_LAYER else "InvalidArgumentError"
        child.assert_raised(r[c], t, what, "closed")


def test_closed_device_rejects_every_call():
    r = child.run("""
import ctypes
buf = ctypes.create_string_buffer(16)
base = vbar.base
s = dev.stream_create()
vbar.close()
dev.close()
%s
report("close_again", attempt(dev.close))
report("handle", dev.handle)
report("closed", [dev.closed, dev.released])
""" % _attempts(DEVICE_CALLS))
    _check_closed(r, DEVICE_CALLS, "device")
    assert r["close_again"] is None  # idempotent
    assert r["handle"] == 0
    assert r["closed"] == [True, True]


def test_closed_vbar_rejects_every_call():
    r = child.run("""
vbar.close()
%s
report("close_again", attempt(vbar.close))
report("closed", [vbar.closed, vbar.released, vbar.exports])
report("vbar_count", dev.stats().vbar_count)
dev.close()
""" % _attempts(VBAR_CALLS))
    _check_closed(r, VBAR_CALLS, "VBAR")
    assert r["close_again"] is None
    assert r["closed"] == [True, True, 0]
    assert r["vbar_count"] == 0


def test_uninitialised_objects_are_closed_ones():
    # __new__ without __init__: no handle at all.
    r = child.run("""
vbar.close()
dev.close()
N = dynvram._native
dev = N.Device.__new__(N.Device)
vbar = N.VBAR.__new__(N.VBAR)
report("dev", attempt(lambda: dev.stats()))
report("dev_close", attempt(dev.close))
report("vbar", attempt(lambda: vbar.fault(0, 1)))
report("vbar_export", attempt(lambda: vbar._export()))
report("vbar_close", attempt(vbar.close))
report("vbar_device", vbar.device is None)
report("new_vbar", attempt(lambda: N.VBAR(dev, 4096)))
""")
    child.assert_raised(r["dev"], "InvalidArgumentError", "device is closed")
    child.assert_raised(r["vbar"], "InvalidArgumentError", "VBAR is closed")
    child.assert_raised(r["vbar_export"], "InvalidArgumentError", "closed")
    child.assert_raised(r["new_vbar"], "InvalidArgumentError",
                        "device is closed")
    assert r["dev_close"] is None and r["vbar_close"] is None
    assert r["vbar_device"] is True


def test_vbar_of_a_closed_device():
    r = child.run("""
vbar.close()
dev.close()
report("exc", attempt(dynvram.VBAR, dev, PAGE))
report("ctx", attempt(lambda: dynvram.VBAR(dev, PAGE).__enter__()))
""")
    child.assert_invalid(r["exc"], "device is closed")
    child.assert_invalid(r["ctx"], "device is closed")


def test_device_close_with_live_vbar_then_in_order():
    r = child.run("""
report("busy", attempt(dev.close))
report("state", [dev.closed, vbar.fault(0, 1) is not None])
vbar.unpin(0, 1)
vbar.close()
vbar.close()
dev.close()
dev.close()
report("done", [vbar.closed, dev.closed, dev.released])
""")
    child.assert_raised(r["busy"], "Error", "VBAR", name="DV_ERROR_BUSY")
    assert r["state"] == [False, True]
    assert r["done"] == [True, True, True]


def test_init_twice_is_refused():
    r = child.run("""
report("dev", attempt(dev.__init__, "host"))
report("vbar", attempt(vbar.__init__, dev, PAGE))
report("still", [vbar.size, vbar.fault(0, 1) is not None])
vbar.unpin(0, 1)
""")
    child.assert_raised(r["dev"], "RuntimeError", "already open")
    child.assert_raised(r["vbar"], "RuntimeError", "already created")
    assert r["still"] == [8 << 20, True]


def test_vbar_sizes_out_of_range():
    r = child.run("""
for v in ("-1", "0", "2**64", "2**64 - 1", "'8'"):
    report(v, attempt(lambda: dynvram.VBAR(dev, eval(v))))
report("vbar_count", dev.stats().vbar_count)
""")
    child.assert_raised(r["-1"], "ValueError", "negative")
    child.assert_raised(r["2**64"], "ValueError", "64 bits")
    child.assert_invalid(r["0"], "size")
    child.assert_invalid(r["2**64 - 1"], "size")
    child.assert_raised(r["'8'"], "TypeError")
    assert r["vbar_count"] == 1  # only the prelude's VBAR
