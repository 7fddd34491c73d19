# SPDX-License-Identifier: Apache-2.0
"""VBAR: placement, fault/unpin, generations, residency, watermarks,
priorities, eviction."""
import ctypes

import pytest

import dynvram
from conftest import LIMIT_PAGES, MIB, PAGE

R = dynvram.PAGE_RESIDENT
P = dynvram.PAGE_PINNED


def fill(vbar, first, count):
    """Fault and unpin pages [first, first+count); return their gens."""
    gens = []
    for i in range(first, first + count):
        g = vbar.fault(i * PAGE, PAGE)
        assert g is not None, "page %d offloaded" % i
        vbar.unpin(i * PAGE, PAGE)
        gens.append(g)
    return gens


def test_geometry(dev):
    v = dynvram.VBAR(dev, 5 * PAGE + 1)
    assert v.size == 6 * PAGE
    assert v.page_size == PAGE and v.page_count == 6
    assert v.base != 0 and v.base % dev.caps().va_alignment == 0
    assert v.info()["base"] == v.base
    assert v.priority_rank == 0
    assert "pages=6" in repr(v)
    v.close()
    assert v.closed and "closed" in repr(v)
    v.close()  # idempotent


def test_alloc_bump_placement(vbar):
    a = vbar.alloc(1000)
    assert a == dynvram.Allocation(0, 1000, vbar.base)
    b = vbar.alloc(10)
    assert b.offset == 1024 and b.address == vbar.base + 1024  # 512 aligned
    c = vbar.alloc(10, align=4096)
    assert c.offset == 4096
    d = vbar.alloc(1, align=1)
    assert d.offset == 4106
    assert vbar.allocated == 4107
    with pytest.raises(ValueError):
        vbar.alloc(0)
    with pytest.raises(ValueError):
        vbar.alloc(10, align=3)
    with pytest.raises(MemoryError):
        vbar.alloc(vbar.size)
    assert vbar.allocated == 4107  # a failed alloc moves nothing
    vbar.reset_allocations()
    assert vbar.alloc(vbar.size).offset == 0


def test_fault_unpin_and_residency(vbar):
    assert vbar.residency() == [0] * 32
    g = vbar.fault(PAGE - 1, 2)  # straddles pages 0 and 1
    assert isinstance(g, int) and g > 0
    flags = vbar.residency()
    assert flags[0] == R | P and flags[1] == R | P and flags[2] == 0
    assert vbar.residency(1, 2) == [R | P, 0]
    assert vbar.residency(as_bytes=True)[:2] == bytes([R | P, R | P])
    vbar.unpin(PAGE - 1, 2)
    assert vbar.residency()[:2] == [R, R]
    assert vbar.resident_bytes == 2 * PAGE


def test_generation_stable_while_resident(vbar):
    g1 = vbar.fault(0, PAGE)
    vbar.unpin(0, PAGE)
    g2 = vbar.fault(0, PAGE)
    vbar.unpin(0, PAGE)
    assert g1 == g2
    assert vbar.generations(0, PAGE) == [g1]
    assert vbar.generations(0, 2 * PAGE) == [g1, 0]
    assert len(vbar.generations()) == vbar.page_count


def test_generation_changes_after_eviction_and_content_survives(vbar):
    buf = (ctypes.c_char * 64).from_address  # host backend: CPU pointers
    g1 = vbar.fault(0, PAGE)
    ctypes.memmove(vbar.base, b"weights!" * 8, 64)
    vbar.unpin(0, PAGE)
    g2 = vbar.fault(0, PAGE)
    assert g2 == g1 and bytes(buf(vbar.base)) == b"weights!" * 8
    vbar.unpin(0, PAGE)
    assert vbar.evict(PAGE) == PAGE
    assert vbar.residency()[0] == 0
    vbar.prioritize()  # the eviction lowered the watermark
    g3 = vbar.fault(0, PAGE)
    assert g3 is not None and g3 != g1
    vbar.unpin(0, PAGE)


def test_pin_counts_nest(vbar):
    vbar.fault(0, PAGE)
    vbar.fault(0, PAGE)
    vbar.unpin(0, PAGE)
    assert vbar.residency()[0] == R | P
    vbar.unpin(0, PAGE)
    assert vbar.residency()[0] == R
    with pytest.raises(dynvram.Error) as ei:
        vbar.unpin(0, PAGE)
    assert ei.value.name == "DV_ERROR_NOT_PINNED"


def test_pinned_context_manager(vbar):
    with vbar.pinned(0, PAGE) as gen:
        assert gen is not None
        assert vbar.residency()[0] == R | P
    assert vbar.residency()[0] == R
    # Offloaded: yields None and does not unpin.
    vbar.set_watermark(0)
    with vbar.pinned(PAGE, PAGE) as gen:
        assert gen is None
    assert vbar.residency()[1] == 0
    # Unpins on an exception too.
    vbar.prioritize()
    with pytest.raises(KeyError):
        with vbar.pinned(2 * PAGE, PAGE):
            raise KeyError("x")
    assert vbar.residency()[2] == R


def test_fault_offloads_past_budget(dev, vbar):
    fill(vbar, 0, LIMIT_PAGES)
    # Lower offsets win inside a VBAR: the next page cannot evict them.
    assert vbar.fault(LIMIT_PAGES * PAGE, PAGE) is None
    assert dev.stats().faults_offloaded >= 1
    assert vbar.resident_bytes == LIMIT_PAGES * PAGE


def test_watermark(vbar):
    assert vbar.watermark == vbar.page_count
    vbar.set_watermark(4 * PAGE)
    assert vbar.watermark == 4
    assert vbar.fault(3 * PAGE, PAGE) is not None
    vbar.unpin(3 * PAGE, PAGE)
    assert vbar.fault(4 * PAGE, PAGE) is None
    vbar.set_watermark(4 * PAGE + 1)  # rounds up to pages
    assert vbar.watermark == 5
    vbar.prioritize()
    assert vbar.watermark == vbar.page_count


def test_evict_lowers_watermark_and_respects_limit(vbar):
    fill(vbar, 0, 8)
    vbar.set_watermark_limit(3 * PAGE)
    freed = vbar.evict(100 * PAGE)
    assert freed == 5 * PAGE
    assert vbar.residency()[:8] == [R, R, R, 0, 0, 0, 0, 0]
    assert vbar.watermark == 3
    assert vbar.fault(3 * PAGE, PAGE) is None  # at the watermark: offloaded
    assert vbar.evict(PAGE) == 0


def test_priorities_decide_who_is_evicted(dev):
    old = dynvram.VBAR(dev, 16 * PAGE)
    new = dynvram.VBAR(dev, 16 * PAGE)
    assert new.priority_rank == 0 and old.priority_rank == 1
    fill(old, 0, LIMIT_PAGES)
    # The newer VBAR is on top: its faults evict the older one's pages,
    # from the top down.
    fill(new, 0, 4)
    assert old.resident_bytes == (LIMIT_PAGES - 4) * PAGE
    assert old.residency()[LIMIT_PAGES - 4:] == [0] * 4
    assert old.watermark == LIMIT_PAGES - 4
    # Now prioritize the old one: the new one becomes the victim.
    old.prioritize()
    assert old.priority_rank == 0 and new.priority_rank == 1
    fill(old, LIMIT_PAGES - 4, 2)
    assert new.resident_bytes == 2 * PAGE
    # deprioritize: moves to the bottom.
    old.deprioritize()
    assert old.priority_rank == 1
    new.close()
    old.close()


def test_pinned_pages_are_never_evicted(dev):
    low = dynvram.VBAR(dev, 16 * PAGE)
    high = dynvram.VBAR(dev, 16 * PAGE)
    assert low.fault(0, LIMIT_PAGES * PAGE) is not None  # all pinned
    assert high.fault(0, PAGE) is None  # nothing evictable
    low.unpin(0, LIMIT_PAGES * PAGE)
    assert high.fault(0, PAGE) is not None
    high.unpin(0, PAGE)
    low.close()
    high.close()


def test_destroy_with_pinned_pages_is_busy(vbar):
    vbar.fault(0, PAGE)
    with pytest.raises(dynvram.Error) as ei:
        vbar.close()
    assert ei.value.name == "DV_ERROR_BUSY"
    vbar.unpin(0, PAGE)
    vbar.close()


def test_closed_vbar_rejects_calls(vbar):
    vbar.close()
    with pytest.raises(ValueError):
        vbar.fault(0, 1)
    with pytest.raises(ValueError):
        vbar.info()


def test_many_small_allocations_share_pages(vbar):
    allocs = [vbar.alloc(100 * 1024) for _ in range(30)]
    gens = set()
    for a in allocs:
        g = vbar.fault(a.offset, a.size)
        assert g is not None
        gens.add(g)
        vbar.unpin(a.offset, a.size)
    # 30 * 100 KiB (512-aligned) spans 3 pages of 1 MiB.
    assert vbar.resident_bytes == 3 * PAGE
    assert len(gens) <= 3


def test_generation_objects_are_cached(vbar):
    # The fast path hands back the same int object for a generation it has
    # seen (no allocation in the steady state).
    g1 = vbar.fault(0, PAGE)
    vbar.unpin(0, PAGE)
    g2 = vbar.fault(0, PAGE)
    vbar.unpin(0, PAGE)
    assert g1 is g2


def test_numpy_ints_accepted(vbar):
    np = pytest.importorskip("numpy")
    g = vbar.fault(np.uint64(0), np.int64(MIB))
    assert g is not None
    vbar.unpin(np.int32(0), np.uint32(MIB))


def test_alloc_bad_input(vbar):
    for bad in (1.5, "16", None):
        with pytest.raises(TypeError):
            vbar.alloc(bad)
        with pytest.raises(TypeError):
            vbar.alloc(16, align=bad)
    for n in (-1, 0):
        with pytest.raises(ValueError):
            vbar.alloc(n)
    with pytest.raises(ValueError):
        vbar.alloc(16, align=0)
    with pytest.raises(MemoryError):
        vbar.alloc(2**70)
    assert vbar.allocated == 0
    vbar.close()
    with pytest.raises(ValueError) as ei:
        vbar.alloc(16)
    assert "closed" in str(ei.value)
