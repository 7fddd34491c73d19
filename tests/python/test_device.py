# SPDX-License-Identifier: Apache-2.0
"""Device: open, caps, stats, close, context manager, framework accounting."""
import pytest

import dynvram
from conftest import LIMIT_PAGES, MIB, PAGE


def test_backends_lists_host_available():
    names = {b["name"]: b for b in dynvram.backends()}
    assert list(names) == ["cuda", "hip", "levelzero", "host"]
    assert names["host"]["available"] is True
    assert names["host"]["device_count"] >= 1


def test_caps(dev):
    c = dev.caps()
    assert c.backend == "host"
    assert c.page_size == PAGE
    assert c.granularity > 0 and PAGE % c.granularity == 0
    assert c.host_accessible is True
    assert c.flags & dynvram._native.CAP_HOST_ACCESSIBLE
    assert dev.page_size == PAGE
    assert dev.ordinal == 0
    assert dev.backend == "host"
    assert "host" in repr(dev)


def test_stats_budget_follows_vram_limit(dev):
    s = dev.stats()
    assert s.budget == LIMIT_PAGES * PAGE
    assert s.used == 0 and s.resident_bytes == 0 and s.vbar_count == 0


def test_page_size_rounds_up_to_granularity():
    with dynvram.Device("host", page_size=PAGE + 1) as d:
        g = d.caps().granularity
        assert d.page_size % g == 0 and d.page_size >= PAGE + 1


def test_context_manager_closes():
    with dynvram.Device("host", page_size=PAGE) as d:
        assert not d.closed
    assert d.closed
    assert "closed" in repr(d)
    d.close()  # idempotent
    with pytest.raises(ValueError):
        d.stats()


def test_close_with_live_vbar_is_busy(dev):
    v = dynvram.VBAR(dev, 4 * PAGE)
    with pytest.raises(dynvram.Error) as ei:
        dev.close()
    assert ei.value.name == "DV_ERROR_BUSY"
    assert not dev.closed
    v.close()
    dev.close()
    assert dev.closed


def test_vbar_keeps_device_alive():
    d = dynvram.Device("host", page_size=PAGE)
    v = dynvram.VBAR(d, 4 * PAGE)
    assert v.device is d
    del d  # the VBAR holds the device
    assert v.fault(0, 10) is not None
    v.unpin(0, 10)
    dev = v.device
    v.close()
    dev.close()


def test_framework_accounting_evicts_weights(dev, vbar):
    for i in range(LIMIT_PAGES):
        assert vbar.fault(i * PAGE, PAGE) is not None
        vbar.unpin(i * PAGE, PAGE)
    assert dev.stats().resident_bytes == LIMIT_PAGES * PAGE
    dev.framework_reserve(4 * MIB)
    s = dev.stats()
    assert s.framework_bytes == 4 * MIB
    assert s.resident_bytes == (LIMIT_PAGES - 4) * PAGE
    assert s.evictions == 4
    dev.framework_release(4 * MIB)
    assert dev.stats().framework_bytes == 0
    with pytest.raises(ValueError):
        dev.framework_release(1)  # more than is counted


def test_framework_reserve_too_big_is_memory_error(dev):
    with pytest.raises(MemoryError) as ei:
        dev.framework_reserve((LIMIT_PAGES + 1) * PAGE)
    assert ei.value.name == "DV_ERROR_OUT_OF_DEVICE_MEMORY"
    assert isinstance(ei.value, dynvram.Error)


def test_framework_evict(dev, vbar):
    assert vbar.fault(0, 4 * PAGE) is not None
    vbar.unpin(0, 4 * PAGE)
    freed = dev.framework_evict(2 * PAGE)
    assert freed >= 2 * PAGE
    assert dev.stats().resident_bytes == 4 * PAGE - freed


def test_copies_and_streams(dev, vbar):
    import ctypes
    src = ctypes.create_string_buffer(b"dynvram!" * 512)
    dst = ctypes.create_string_buffer(len(src.raw))
    dev.host_register(ctypes.addressof(src), len(src.raw))
    stream = dev.stream_create()
    assert vbar.fault(0, PAGE) is not None
    dev.copy_h2d(vbar.base, ctypes.addressof(src), len(src.raw), stream)
    dev.copy_d2h(ctypes.addressof(dst), vbar.base, len(src.raw), stream)
    dev.stream_synchronize(stream)
    assert dst.raw == src.raw
    vbar.unpin(0, PAGE, stream)
    # Unpin fences are batched per stream and recorded lazily: the VBAR must
    # go before the stream it was unpinned on (see the lead's notes).
    vbar.close()
    dev.stream_destroy(stream)
    dev.host_unregister(ctypes.addressof(src))


def test_trim_pool_and_reset_limits():
    with dynvram.Device("host", page_size=PAGE, vram_limit=8 * PAGE) as d:
        v = dynvram.VBAR(d, 8 * PAGE)
        v.fault(0, 8 * PAGE)
        v.unpin(0, 8 * PAGE)
        v.set_watermark_limit(4 * PAGE)
        assert v.watermark_limit == 4
        d.reset_watermark_limits()
        assert v.watermark_limit == 0
        v.evict(8 * PAGE)
        d.trim_pool()
        assert d.stats().pool_bytes == 0
        d.check()
        v.close()


def test_handle_is_an_address(dev):
    assert isinstance(dev.handle, int) and dev.handle != 0


def test_watermark_recovery_option_and_counter():
    import dynvram
    page = 2 << 20
    for on, want_rise in ((True, True), (False, False)):
        with dynvram.Device("host", page_size=page, vram_limit=16 * page,
                            watermark_recovery=on) as dev:
            v = dynvram.VBAR(dev, 10 * page)
            def run():
                for i in range(10):
                    if v.fault(i * page, page) is not None:
                        v.unpin(i * page, page)
            run()
            v.evict(5 * page)
            for _ in range(3):
                run()
            assert (dev.stats().watermark_rises > 0) == want_rise
            assert (v.resident_bytes == 10 * page) == want_rise
            v.close()


def test_headroom_set_get_and_bad_input():
    # No vram_limit: the budget is the backend's free memory less headroom.
    with dynvram.Device("host", page_size=PAGE) as d:
        assert d.get_headroom() == 0
        before = d.stats().budget
        d.set_headroom(4 * PAGE)
        assert d.get_headroom() == 4 * PAGE
        assert d.stats().budget == before - 4 * PAGE
        for bad in (-1, 2 ** 64):
            with pytest.raises((ValueError, OverflowError)):
                d.set_headroom(bad)
        with pytest.raises(ValueError):
            d.set_headroom(2 ** 61)  # above 2^60: refused by the library
        with pytest.raises(TypeError):
            d.set_headroom("big")
        assert d.get_headroom() == 4 * PAGE  # refusals changed nothing
    for call in (lambda: d.set_headroom(0), d.get_headroom):
        with pytest.raises(ValueError, match="closed"):
            call()
