#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Cost of a resident fault + unpin pair from Python.

Every page is made resident first, so each pair takes the fast path (device
lock held for nanoseconds, no driver call). Reports the median over batches
of the per-pair time for:
  native   vbar.fault(off, n) / vbar.unpin(off, n)  (the C extension)
  pinned   the same through ``with vbar.pinned(off, n):``
  ctypes   dv_fault / dv_unpin called through ctypes (what a ctypes binding
           such as the predecessor's costs; for comparison)
  noop     an empty call of a C method (the interpreter's floor)

Target (issue 4): native median <= 1000 ns on the H100 machine. --max-ns N
makes the script exit 1 when the native median exceeds N (0 = report only).

    python3 bench/pyfault.py --backend cuda --max-ns 1000 --json out.json
"""
import argparse
import ctypes
import json
import os
import platform
import statistics
import sys
import time


def _median_per_call(fn, iterations, batch):
    samples = []
    done = 0
    while done < iterations:
        n = min(batch, iterations - done)
        t0 = time.perf_counter_ns()
        fn(n)
        samples.append((time.perf_counter_ns() - t0) / n)
        done += n
    return statistics.median(samples), min(samples)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default=None,
                    help="cuda, hip, levelzero, host (default: automatic)")
    ap.add_argument("--ordinal", type=int, default=0)
    ap.add_argument("--pages", type=int, default=8)
    ap.add_argument("--page-size", type=int, default=0,
                    help="bytes (default: the library's 32 MiB)")
    ap.add_argument("--iterations", type=int, default=200000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--max-ns", type=float, default=0,
                    help="fail when the native median exceeds this")
    ap.add_argument("--json", default=None, help="write results here")
    args = ap.parse_args(argv)

    import dynvram

    dev = dynvram.Device(args.backend, ordinal=args.ordinal,
                         page_size=args.page_size)
    caps = dev.caps()
    vbar = dynvram.VBAR(dev, args.pages * dev.page_size)
    ps = vbar.page_size
    for p in range(vbar.page_count):
        if vbar.fault(p * ps, ps) is None:
            sys.exit("page %d could not be made resident" % p)
        vbar.unpin(p * ps, ps)

    # Distinct weights inside the resident pages, as a model would have.
    offs = [(i * 4096 + (i % vbar.page_count) * ps) % vbar.size
            for i in range(64)]
    size = 4096

    fault, unpin = vbar.fault, vbar.unpin

    def native(n):
        for i in range(n):
            off = offs[i & 63]
            fault(off, size)
            unpin(off, size)

    def pinned(n):
        for i in range(n):
            with vbar.pinned(offs[i & 63], size):
                pass

    lib = ctypes.CDLL(dynvram._native.__file__)
    cfault, cunpin = lib.dv_fault, lib.dv_unpin
    cfault.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64,
                       ctypes.c_uint64, ctypes.POINTER(ctypes.c_uint64)]
    cfault.restype = ctypes.c_int
    cunpin.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64,
                       ctypes.c_uint64, ctypes.c_void_p]
    cunpin.restype = ctypes.c_int
    dh, vh = dev.handle, vbar.handle
    gen = ctypes.c_uint64()
    genp = ctypes.byref(gen)

    def via_ctypes(n):
        for i in range(n):
            off = offs[i & 63]
            if cfault(dh, vh, off, size, genp) != 0:
                raise RuntimeError("ctypes fault failed")
            cunpin(dh, vh, off, size, None)

    noop_target = vbar.info  # a cheap C method, for the interpreter floor
    page_count_get = type(vbar).page_count.__get__

    def noop(n):
        for i in range(n):
            page_count_get(vbar)

    results = {}
    for name, fn in (("native", native), ("pinned", pinned),
                     ("ctypes", via_ctypes), ("noop", noop)):
        fn(min(args.batch, 1000))  # warm up
        med, best = _median_per_call(fn, args.iterations, args.batch)
        results[name] = {"median_ns": round(med, 1), "best_ns": round(best, 1)}
    del noop_target

    st = dev.stats()
    assert st.pinned_bytes == 0
    vbar.close()
    dev.close()

    print("resident fault+unpin from Python, %s (%s), %d iterations"
          % (caps.backend, caps.name, args.iterations))
    print("%-8s %12s %12s" % ("path", "median ns", "best ns"))
    for name, r in results.items():
        print("%-8s %12.1f %12.1f" % (name, r["median_ns"], r["best_ns"]))
    speedup = results["ctypes"]["median_ns"] / max(results["native"]["median_ns"], 1e-9)
    print("native is %.1fx faster than ctypes" % speedup)

    out = {
        "benchmark": "pyfault",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": platform.node(),
        "python": sys.version.split()[0],
        "backend": caps.backend,
        "device": caps.name,
        "iterations": args.iterations,
        "batch": args.batch,
        "results": results,
        "target_ns": args.max_ns or None,
    }
    print(json.dumps(out))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    if args.max_ns and results["native"]["median_ns"] > args.max_ns:
        print("FAIL: native median %.1f ns exceeds %.1f ns"
              % (results["native"]["median_ns"], args.max_ns))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
