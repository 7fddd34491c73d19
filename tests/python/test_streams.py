# SPDX-License-Identifier: Apache-2.0
"""Junk, dead and foreign stream values never crash the interpreter.

Every case runs in a child interpreter (child.py): before the fix, an
integer that is not a live stream (0x10, a stream destroyed already) was
handed to the library as a pointer and dereferenced (SIGSEGV). Now
stream_destroy refuses any value that stream_create did not return (the
binding remembers its streams), and the library rejects dead or junk
streams in unpin, stream_synchronize and the copies with
DV_ERROR_INVALID_ARGUMENT, changing nothing. Either way the caller gets
dynvram.InvalidArgumentError (a ValueError) whose message names the stream.
"""
import pytest

import child

R = 1  # PAGE_RESIDENT
P = 2  # PAGE_PINNED

# A destroyed stream: the value stream_create returned, after stream_destroy.
DEAD = "s = dev.stream_create(); dev.stream_destroy(s)\n"
JUNK = "s = 0x10\n"
ALL_ONES = "s = 2**64 - 1\n"
STREAMS = {"junk": JUNK, "destroyed": DEAD, "all_ones": ALL_ONES}


@pytest.mark.parametrize("kind", sorted(STREAMS))
def test_unpin_with_bad_stream(kind):
    r = child.run(STREAMS[kind] + """
assert vbar.fault(0, 4096) is not None
report("exc", attempt(vbar.unpin, 0, 4096, s))
report("flags", vbar.residency()[0])    # still pinned: nothing changed
vbar.unpin(0, 4096)                       # the real unpin still works
report("after", vbar.residency()[0])
dev.check()
""")
    child.assert_invalid(r["exc"], "stream")
    assert r["flags"] == R | P
    assert r["after"] == R


@pytest.mark.parametrize("kind", sorted(STREAMS))
def test_synchronize_bad_stream(kind):
    r = child.run(STREAMS[kind] + """
report("exc", attempt(dev.stream_synchronize, s))
dev.stream_synchronize(0)  # the default stream still works
dev.check()
""")
    child.assert_invalid(r["exc"], "stream")


@pytest.mark.parametrize("kind", sorted(STREAMS))
@pytest.mark.parametrize("direction", ["h2d", "d2h"])
def test_copy_with_bad_stream(kind, direction):
    r = child.run(STREAMS[kind] + """
import ctypes
assert vbar.fault(0, PAGE) is not None
ctypes.memset(vbar.base, 0x5a, 64)
buf = ctypes.create_string_buffer(b"\\x11" * 64, 64)
if %(h2d)r:
    report("exc", attempt(dev.copy_h2d, vbar.base, ctypes.addressof(buf), 64, s))
else:
    report("exc", attempt(dev.copy_d2h, ctypes.addressof(buf), vbar.base, 64, s))
report("device", ctypes.string_at(vbar.base, 64).hex())
report("host", buf.raw.hex())
vbar.unpin(0, PAGE)
dev.check()
""" % {"h2d": direction == "h2d"})
    child.assert_invalid(r["exc"], "stream")
    # Nothing was copied either way.
    assert r["device"] == "5a" * 64
    assert r["host"] == "11" * 64


def test_destroy_junk_stream():
    r = child.run("""
report("exc", attempt(dev.stream_destroy, 0x10))
report("all_ones", attempt(dev.stream_destroy, 2**64 - 1))
report("default", attempt(dev.stream_destroy, 0))
s = dev.stream_create()
dev.stream_destroy(s)     # a real one still works
""")
    child.assert_invalid(r["exc"], "stream 0x10", "not a live stream")
    child.assert_invalid(r["all_ones"], "0xffffffffffffffff")
    child.assert_invalid(r["default"], "default stream")


def test_destroy_stream_twice():
    r = child.run("""
s = dev.stream_create()
report("first", attempt(dev.stream_destroy, s))
report("second", attempt(dev.stream_destroy, s))
report("third", attempt(dev.stream_destroy, s))
t = dev.stream_create()   # a new stream after that is fine
assert vbar.fault(0, 4096) is not None
vbar.unpin(0, 4096, t)
dev.stream_synchronize(t)
vbar.close()
dev.stream_destroy(t)
""")
    assert r["first"] is None
    child.assert_invalid(r["second"], "destroyed already")
    child.assert_invalid(r["third"], "destroyed already")


def test_destroy_stream_of_another_device():
    r = child.run("""
other = dynvram.Device("host", page_size=PAGE)
s = other.stream_create()
report("exc", attempt(dev.stream_destroy, s))
report("owner", attempt(other.stream_destroy, s))  # still the owner's
other.close()
""")
    child.assert_invalid(r["exc"], "not a live stream of this device")
    assert r["owner"] is None


def test_streams_are_forgotten_with_their_device():
    r = child.run("""
s = dev.stream_create()
vbar.close()
dev.close()
report("exc", attempt(dev.stream_destroy, s))
""")
    child.assert_invalid(r["exc"], "closed")


BAD_INTS = [
    # (value, exception type, words in the message)
    ("-1", "ValueError", ["negative"]),
    ("-2**70", "ValueError", ["negative"]),
    ("2**64", "ValueError", ["64 bits"]),
    ("2**200", "ValueError", ["64 bits"]),
    ("'0x10'", "TypeError", []),
    ("1.5", "TypeError", []),
    ("None", "TypeError", []),
]

CALLS = {
    "unpin": "vbar.unpin(0, 4096, %s)",
    "stream_synchronize": "dev.stream_synchronize(%s)",
    "stream_destroy": "dev.stream_destroy(%s)",
    "copy_h2d": "dev.copy_h2d(vbar.base, ctypes.addressof(buf), 64, %s)",
    "copy_d2h": "dev.copy_d2h(ctypes.addressof(buf), vbar.base, 64, %s)",
}


@pytest.mark.parametrize("call", sorted(CALLS))
def test_stream_arguments_out_of_range_or_of_the_wrong_type(call):
    # All values in one child: they are refused by the binding's argument
    # conversion before the library is called.
    cases = "\n".join(
        'report(%r, attempt(lambda: %s))' % (v, CALLS[call] % v)
        for v, _, _ in BAD_INTS)
    r = child.run("""
import ctypes
buf = ctypes.create_string_buffer(64)
assert vbar.fault(0, 4096) is not None
%s
report("flags", vbar.residency()[0])
vbar.unpin(0, 4096)
dev.check()
""" % cases)
    for value, type_name, words in BAD_INTS:
        child.assert_raised(r[value], type_name, *words)
    assert r["flags"] == R | P
