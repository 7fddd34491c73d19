# SPDX-License-Identifier: Apache-2.0
"""Many Python threads on one device: no errors, invariants hold."""
import threading
import time

import dynvram
from conftest import PAGE


def test_concurrent_fault_unpin_evict(dev):
    vbars = [dynvram.VBAR(dev, 8 * PAGE) for _ in range(4)]
    errors = []
    stop = threading.Event()

    def faulter(v, seed):
        try:
            for i in range(400):
                p = (i * 7 + seed) % v.page_count
                off = p * PAGE + 123
                g = v.fault(off, 1000)
                if g is not None:
                    v.unpin(off, 1000)
                if i % 50 == 0:
                    v.prioritize()
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    def evicter():
        try:
            while not stop.is_set():
                for v in vbars:
                    v.evict(PAGE)
                dev.stats()
                dev.framework_reserve(2 * PAGE)
                dev.framework_release(2 * PAGE)
        except Exception as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=faulter, args=(v, i))
               for i, v in enumerate(vbars)]
    ev = threading.Thread(target=evicter)
    ev.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    ev.join()
    assert errors == []
    dev.check()
    s = dev.stats()
    assert s.pinned_bytes == 0
    assert s.framework_bytes == 0
    assert s.faults_hit + s.faults_populated + s.faults_offloaded >= 1600
    for v in vbars:
        v.close()


def test_close_refused_while_another_thread_is_inside(dev):
    """close() from one thread while another is in a GIL-released call must
    not free the VBAR under it (busy check)."""
    v = dynvram.VBAR(dev, 8 * PAGE)
    v.fault(0, 8 * PAGE)
    v.unpin(0, 8 * PAGE)
    go = threading.Event()
    errors = []

    def churn():
        go.wait()
        for _ in range(2000):
            try:
                v.residency()
                v.info()
            except ValueError:
                return  # closed by the other thread: fine
            except Exception as e:  # pragma: no cover
                errors.append(e)
                return

    t = threading.Thread(target=churn)
    t.start()
    go.set()
    closed = False
    for _ in range(2000):
        try:
            v.close()
            closed = True
            break
        except dynvram.Error as e:
            assert e.name == "DV_ERROR_BUSY"
    t.join()
    if not closed:
        v.close()
    assert errors == []
    dev.check()


def test_views_made_and_dropped_by_threads_while_closing(dev):
    """Threads make views and numpy arrays of a VBAR and drop them while
    the main thread closes it: the count never goes wrong, a view is either
    made before close (and then counted) or refused with ValueError, and
    the range is given back exactly once, after the last export."""
    import numpy as np
    v = dynvram.VBAR(dev, 8 * PAGE)
    assert v.fault(0, PAGE) is not None
    v.unpin(0, PAGE)
    go = threading.Event()
    errors = []
    kept = []

    def churn(seed):
        go.wait()
        for i in range(100000):  # until the close refuses a new view
            try:
                a = np.from_dlpack(v.dlpack((seed * 64 + i) % 4096, 64))
                if i % 50 == 0:
                    kept.append(a)  # survives the close
            except ValueError as e:
                if "closed" not in str(e):  # pragma: no cover
                    errors.append(e)
                return
            except Exception as e:  # pragma: no cover
                errors.append(e)
                return

    ts = [threading.Thread(target=churn, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    go.set()
    while len(kept) < 8 and not errors:  # close while the threads churn
        time.sleep(0.001)
    v.close()
    for t in ts:
        t.join()
    assert errors == []
    assert v.closed
    assert v.exports == len(kept) >= 8
    assert not v.released  # kept arrays hold the range
    del kept[:]
    assert v.exports == 0 and v.released
    assert dev.stats().vbar_count == 0
    dev.check()
