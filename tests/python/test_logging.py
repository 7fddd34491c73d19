# SPDX-License-Identifier: Apache-2.0
"""Library messages reach the "dynvram" logger."""
import ctypes
import logging
import threading

import pytest

import dynvram
from conftest import PAGE


@pytest.fixture
def debug_level():
    old = dynvram.get_log_level()
    dynvram.set_log_level("debug")
    yield
    dynvram.set_log_level(old)


def test_levels_round_trip(debug_level):
    assert dynvram.get_log_level() == "debug"
    dynvram.set_log_level(4)
    assert dynvram.get_log_level() == "info"


def test_error_message_logged_in_call(debug_level, caplog, vbar):
    caplog.set_level(logging.DEBUG, logger="dynvram")
    with pytest.raises(ValueError):
        vbar.fault(0, 0)
    # Emitted before the call returned (drained by the binding).
    msgs = [r.getMessage() for r in caplog.records if r.name == "dynvram"]
    assert any("size is 0" in m for m in msgs), msgs
    assert all(r.levelno == logging.DEBUG for r in caplog.records
               if "size is 0" in r.getMessage())


def test_info_on_open(debug_level, caplog):
    caplog.set_level(logging.DEBUG, logger="dynvram")
    with dynvram.Device("host", page_size=PAGE):
        pass
    assert any(r.levelno == logging.INFO and "opened host" in r.getMessage()
               for r in caplog.records), [r.getMessage() for r in caplog.records]


def test_messages_from_threads_without_gil(debug_level, caplog, dev):
    """A thread not holding the GIL (here: ctypes calling the C API
    directly) only queues; the messages arrive at flush_log()."""
    caplog.set_level(logging.DEBUG, logger="dynvram")
    lib = ctypes.CDLL(dynvram._native.__file__)
    lib.dv_fault.argtypes = [ctypes.c_void_p, ctypes.c_void_p,
                             ctypes.c_uint64, ctypes.c_uint64, ctypes.c_void_p]
    lib.dv_fault.restype = ctypes.c_int
    results = []

    def worker():
        # NULL vbar: an invalid-argument error, logged at debug level.
        results.append(lib.dv_fault(dev.handle, None, 0, 1, None))

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert results == [-1]
    dynvram.flush_log()
    assert any("dv_fault" in r.getMessage() for r in caplog.records), \
        [r.getMessage() for r in caplog.records]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_handler_exception_does_not_break_calls(debug_level, vbar):
    class Boom(logging.Handler):
        def emit(self, record):
            raise RuntimeError("handler failure")

    log = logging.getLogger("dynvram")
    h = Boom()
    log.addHandler(h)
    old = log.level
    log.setLevel(logging.DEBUG)
    try:
        with pytest.raises(ValueError):
            vbar.fault(0, 0)  # the ValueError, not the handler's error
        assert vbar.fault(0, PAGE) is not None
        vbar.unpin(0, PAGE)
    finally:
        log.removeHandler(h)
        log.setLevel(old)
