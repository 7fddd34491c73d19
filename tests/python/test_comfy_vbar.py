# SPDX-License-Identifier: Apache-2.0
"""comfy_aimdo.model_vbar on the host backend (1 MiB pages, exact budgets):
attributes and bump allocation, faults and their errors, signatures (every
re-populated page seen, cached objects for unchanged ranges, a whole block
as cheap as one weight), priorities, watermarks and limits, free_memory,
loaded_size, residency, vbars_analyze; junk in a child process."""
import array
import os
import time

import pytest

from comfy_fixtures import MIB, run_fresh


def _run(c, v, allocs):
    """Fault + unpin each alloc; the list of what was resident."""
    out = []
    for a in allocs:
        s = c.mv.vbar_fault(a)
        out.append(s is not None)
        if s is not None:
            c.mv.vbar_unpin(a)
    return out


def test_attributes_and_bump_allocation(comfy):
    c = comfy.start()
    v = c.mv.ModelVBAR(10 * MIB + 5, 0)
    assert v.device == 0 and v.max_size == 10 * MIB + 5 and v.offset == 0
    assert v.base_addr == v._vbar.base and v.base_addr % 512 == 0
    a = v.alloc(1000)
    assert a == (v, v.base_addr, 1000) and v.offset == 1000
    b = v.alloc(24)
    assert b[1] == v.base_addr + 1024 and b[2] == 24  # 512-aligned
    assert v.alloc(0)[1] == v.base_addr + 1536
    assert c.dev.stats().used == 0  # placement costs no VRAM
    v.offset = 0  # writable: place inside an earlier range
    assert v.alloc(512)[1] == v.base_addr
    v.offset = 1536
    rest = v.max_size - 1536
    with pytest.raises(MemoryError, match="VBAR OOM"):
        v.alloc(rest + 1)
    assert v.offset == 1536  # a refused alloc changes nothing
    last = v.alloc(rest)
    assert last[1] + last[2] == v.base_addr + v.max_size
    with pytest.raises(MemoryError, match="VBAR OOM"):
        v.alloc(1)
    with pytest.raises(ValueError):
        v.alloc(-1)
    with pytest.raises(TypeError):
        v.alloc("1")
    assert v.get_nr_pages() == 11  # rounded up to whole pages
    v.ModelVBAR_attribute = 1  # ComfyUI sets attributes of its own


def test_construction_errors(comfy):
    # 1 GiB pages keep the page table of a 192 TiB VBAR small (an absurd
    # size would make the sanitizer build's calloc abort by design).
    c = comfy.start(page="1G")
    with pytest.raises(RuntimeError):
        c.mv.ModelVBAR(MIB, 3)  # not initialised
    with pytest.raises(MemoryError):
        c.mv.ModelVBAR(0, 0)
    try:
        v = c.mv.ModelVBAR(3 << 46, 0)  # past a 47-bit user address space
    except MemoryError as exc:
        assert "cannot reserve" in str(exc)
    else:
        v._release()
        pytest.skip("this machine reserves 192 TiB (a 57-bit address space)")


def test_fault_signature_unpin_and_residency(comfy):
    c = comfy.start(limit_mib=16)
    v = c.mv.ModelVBAR(32 * MIB, 0)
    a = v.alloc(3 * MIB)  # pages 0..2
    s = c.mv.vbar_fault(a)
    assert isinstance(s, array.array) and s.typecode == "I" and len(s) == 3
    assert v.get_residency()[:4] == [3, 3, 3, 0]  # resident | pinned
    assert v.loaded_size() == 3 * MIB
    assert c.mv.vbar_fault(a) is s  # unchanged: the same object
    c.mv.vbar_unpin(a)
    c.mv.vbar_unpin(a)
    assert v.get_residency()[:4] == [1, 1, 1, 0]
    c.mv.vbar_unpin(a)  # not pinned any more: nothing to do
    c.mv.vbar_unpin(None)
    assert v.fault(a[1], a[2]) is s  # the method form
    v.unpin(a[1], a[2])
    # A sub-range has its own signature: the pages under it.
    sub = (v, a[1] + MIB + 100, 10)
    ss = c.mv.vbar_fault(sub)
    assert list(ss) == [s[1]]
    c.mv.vbar_unpin(sub)
    assert len(c.mv.vbar_fault(v.alloc(0))) == 0


def test_signatures_change_exactly_on_repopulation(comfy):
    c = comfy.start(limit_mib=8)
    v = c.mv.ModelVBAR(32 * MIB, 0)
    w = [v.alloc(MIB) for _ in range(6)]
    v.offset = 0
    block = v.alloc(6 * MIB)  # a block over all six
    sigs = []
    for a in w:
        sigs.append(c.mv.vbar_fault(a))
        c.mv.vbar_unpin(a)
    bsig = c.mv.vbar_fault(block)
    c.mv.vbar_unpin(block)
    assert list(bsig) == [s[0] for s in sigs]
    # Evict the top two pages and bring them back.
    assert v.free_memory(2 * MIB) == 2 * MIB
    assert v.get_residency()[:6] == [1, 1, 1, 1, 0, 0]
    v.prioritize()  # watermark back up
    new = []
    for a in w:
        new.append(c.mv.vbar_fault(a))
        c.mv.vbar_unpin(a)
    same = [c.mv.vbar_signature_compare(x, y) for x, y in zip(sigs, new)]
    assert same == [True, True, True, True, False, False]
    assert all(new[i] is sigs[i] for i in range(4))
    b2 = c.mv.vbar_fault(block)
    c.mv.vbar_unpin(block)
    assert not c.mv.vbar_signature_compare(b2, bsig)
    assert [x == y for x, y in zip(b2, bsig)] == same
    assert c.mv.vbar_fault(block) is b2  # cached again
    c.mv.vbar_unpin(block)


def test_signature_compare_rules(comfy):
    cmp = comfy.mv.vbar_signature_compare
    a = array.array("I", [1, 2])
    assert cmp(a, array.array("I", [1, 2])) is True
    assert cmp(a, array.array("I", [1, 3])) is False
    assert cmp(None, a) is False and cmp(a, None) is False
    assert cmp(None, None) is False
    with pytest.raises(ValueError):
        cmp(a, array.array("I", [1]))


def test_fault_errors(comfy):
    c = comfy.start()
    v = c.mv.ModelVBAR(8 * MIB, 0)
    other = c.mv.ModelVBAR(8 * MIB, 0)
    for bad in ((v, v.base_addr + 16 * MIB, 10), (v, v.base_addr - 1, 10),
                (v, v.base_addr, 9 * MIB), (v, other.base_addr, 10),
                (v, v.base_addr, -1)):
        with pytest.raises(RuntimeError):
            c.mv.vbar_fault(bad)
    with pytest.raises(TypeError):
        c.mv.vbar_fault((v, "x", 1))
    with pytest.raises(RuntimeError):
        c.mv.vbar_unpin((v, v.base_addr + 16 * MIB, 10))
    with pytest.raises((TypeError, ValueError)):
        c.mv.vbar_fault((v, 1))
    assert v.get_residency() == [0] * 8  # nothing changed


def test_larger_than_budget_settles_into_a_prefix(comfy):
    c = comfy.start(limit_mib=6)
    v = c.mv.ModelVBAR(100 * MIB, 0)
    v.prioritize()
    w = [v.alloc(MIB) for _ in range(10)]
    steps = [_run(c, v, w) for _ in range(4)]
    assert steps[0] == [True] * 6 + [False] * 4
    assert all(s == steps[0] for s in steps[1:])
    assert v.loaded_size() == 6 * MIB
    assert c.dev.stats().evictions == 0  # no thrash


def test_a_new_model_takes_priority_and_prioritize_takes_it_back(comfy):
    c = comfy.start(limit_mib=8)
    a = c.mv.ModelVBAR(64 * MIB, 0)
    aw = [a.alloc(MIB) for _ in range(6)]
    assert _run(c, a, aw) == [True] * 6
    b = c.mv.ModelVBAR(64 * MIB, 0)  # newest: on top
    b.prioritize()
    bw = [b.alloc(MIB) for _ in range(5)]
    assert _run(c, b, bw) == [True] * 5
    # B took three pages from A's top; A's watermark fell to them.
    assert a.get_residency()[:6] == [1, 1, 1, 0, 0, 0]
    assert a.get_watermark() == 3
    assert _run(c, a, aw) == [True] * 3 + [False] * 3
    a.prioritize()
    assert a.get_watermark() == a.get_nr_pages()
    assert _run(c, a, aw) == [True] * 6
    assert b.loaded_size() == 2 * MIB  # A took its top back from B
    b.deprioritize()
    assert c.mv.vbars_analyze() == a.loaded_size() + b.loaded_size()
    assert c.mv.vbars_analyze(0) == 8 * MIB


def test_free_memory_watermarks_and_limits(comfy):
    c = comfy.start(limit_mib=16)
    v = c.mv.ModelVBAR(32 * MIB, 0)
    w = [v.alloc(MIB) for _ in range(8)]
    assert _run(c, v, w) == [True] * 8
    v.set_watermark_limit(6 * MIB)
    assert v.free_memory(4 * MIB) == 2 * MIB  # never below the limit
    assert v.loaded_size() == 6 * MIB
    c.mv.vbars_reset_watermark_limits()
    assert v.free_memory(4 * MIB) == 4 * MIB
    assert v.loaded_size() == 2 * MIB and v.get_watermark() == 2
    assert _run(c, v, w) == [True] * 2 + [False] * 6
    v.set_watermark(5 * MIB)
    assert v.get_watermark() == 5
    assert _run(c, v, w) == [True] * 5 + [False] * 3
    # Pinned pages are never freed.
    assert c.mv.vbar_fault(w[0]) is not None
    v.free_memory(32 * MIB)
    assert v.get_residency()[0] == 3
    c.mv.vbar_unpin(w[0])
    with pytest.raises(TypeError):
        v.free_memory("1")


def test_whole_block_fault_costs_what_one_weight_costs(comfy):
    c = comfy.start(limit_mib=64)
    v = c.mv.ModelVBAR(64 * MIB, 0)
    block = v.alloc(48 * MIB)  # 48 pages
    v.offset = 0
    weight = v.alloc(4096)
    for a in (block, weight):
        c.mv.vbar_fault(a)
        c.mv.vbar_unpin(a)

    def cost(a, n=20000):
        f, u = c.mv.vbar_fault, c.mv.vbar_unpin
        best = float("inf")
        for _ in range(5):
            t = time.perf_counter()
            for _ in range(n):
                f(a)
                u(a)
            best = min(best, time.perf_counter() - t)
        return best / n

    # The block's signature (48 entries) is never rebuilt: no generations
    # are read and no array is made once it exists.
    rebuilt = []
    real = v._signature
    v._signature = lambda *a: rebuilt.append(a) or real(*a)
    assert c.mv.vbar_fault(block) is c.mv.vbar_fault(block)
    c.mv.vbar_unpin(block)
    c.mv.vbar_unpin(block)
    cb, cw = cost(block), cost(weight)
    assert rebuilt == []
    del v._signature
    if "asan" in os.environ.get("LD_PRELOAD", ""):
        return  # timings of an instrumented build say nothing
    # The native fault walks 48 pages instead of one, nanoseconds each
    # (a loose bound: the CI machine is shared).
    assert cb < 2.0 * cw + 1e-6, (cb, cw)


def test_release_frees_vram_and_address_space(comfy):
    import gc
    c = comfy.start(limit_mib=8)
    v = c.mv.ModelVBAR(16 * MIB, 0)
    allocs = [v.alloc(MIB) for _ in range(4)]
    _run(c, v, allocs)
    assert c.dev.stats().resident_bytes == 4 * MIB
    assert c.dev.stats().vbar_count == 1
    del v, allocs
    gc.collect()
    assert c.dev.stats().vbar_count == 0
    assert c.dev.stats().resident_bytes == 0


def test_junk_allocs_in_a_child_never_crash():
    rep, _ = run_fresh("""
        import comfy_aimdo.control as c, comfy_aimdo.model_vbar as mv
        assert c.init(simple_vram_headroom=0) and c.init_devices([0])
        v = mv.ModelVBAR(8 << 20, 0)
        out = []
        for junk in [(v, 0, 1), (v, 2 ** 64, 1), (v, v.base_addr, 2 ** 64),
                     (v, v.base_addr, 2 ** 70), (v, -2 ** 70, 5),
                     (v, v.base_addr, None), (v, 1.5, 1),
                     (v, v.base_addr + (8 << 20), 1)]:
            out.append(attempt(mv.vbar_fault, junk))
            out.append(attempt(mv.vbar_unpin, junk))
        out.append(attempt(mv.vbar_fault, None))
        out.append(attempt(mv.vbar_fault, (1, 2, 3)))
        out.append(attempt(mv.vbar_fault, ()))
        out.append(attempt(v.free_memory, -1))
        out.append(attempt(v.set_watermark, 2 ** 65))
        out.append(attempt(v.set_watermark_limit, -3))
        report("out", out)
        report("residency", v.get_residency())
        c.get_devctx(0).device.check()
        report("ok", True)
    """, env={"DYNVRAM_BACKEND": "host", "DYNVRAM_COMFY_PAGE_SIZE": "1M"})
    assert rep["ok"] is True
    assert all(e is not None for e in rep["out"]), rep["out"]
    assert rep["residency"] == [0] * 8
