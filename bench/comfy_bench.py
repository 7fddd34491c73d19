#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The comfy_aimdo drop-in against dynvram's native Python API, side by
side in one run (issue 12's speed target).

Parts, each in its own process (started like ComfyUI: control.init() before
torch, then init_devices):

  pair         a resident fault + unpin pair from Python, median over
               batches: the drop-in's vbar_fault / vbar_unpin (signature
               object, current torch stream looked up per unpin), a
               whole-block range through the drop-in, and the native
               VBAR.fault / VBAR.unpin (stream passed as an int, and looked
               up per unpin like the drop-in does). Target: the drop-in's
               pair at most 1000 ns more than the native one
               (--max-extra-ns).
  steps        the spec's driver (tests/python/comfy_driver.py) over the
               drop-in (ComfyModel) and over the native API (NativeModel)
               on the same model: a run that fits (every weight resident)
               and one under a VRAM limit (a resident prefix, the rest
               streamed): median step time, host RSS and peak RSS of the
               process.

    python3 bench/comfy_bench.py --out DIR            # CUDA (default)
    python3 bench/comfy_bench.py --backend host --small --out DIR

Writes DIR/comfy_bench.json and prints a table. Without a CUDA GPU (for
--backend cuda) it prints SKIP, writes {"skipped": reason} and exits 0.
"""
import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))
# The drop-in from this checkout unless one is installed (or built) already.
if importlib.util.find_spec("comfy_aimdo") is None:
    sys.path.insert(0, os.path.join(ROOT, "bindings", "comfy_aimdo"))

MIB = 1 << 20


def sizes(args):
    """(layers, dim, limit bytes, page size): a model and a limit that
    keeps about half of it resident."""
    if args.backend == "host":
        return 12, 512, 7 * MIB, "1M"            # fp32, 1 MiB per layer
    if args.small:
        return 12, 2048, 56 * MIB, ""           # bf16, 8 MiB per layer
    return 24, 8192, 1536 * MIB, ""             # bf16, 128 MiB per layer


def _rss():
    """(VmRSS, VmHWM) of this process in bytes (Linux; 0 elsewhere)."""
    out = {"VmRSS": 0, "VmHWM": 0}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in out:
                    out[k] = int(v.split()[0]) * 1024
    except OSError:
        pass
    return out["VmRSS"], out["VmHWM"]


def _start(args, limit):
    if args.backend == "host":
        os.environ["DYNVRAM_BACKEND"] = "host"
    else:
        os.environ.setdefault("PYTORCH_CUDA_ALLOC_CONF",
                              "backend:cudaMallocAsync")
    os.environ["DYNVRAM_COMFY_VRAM_LIMIT"] = str(limit) if limit else ""
    os.environ["DYNVRAM_COMFY_PAGE_SIZE"] = sizes(args)[3]
    import comfy_aimdo.control as control
    if not control.init(simple_vram_headroom=0):
        raise SystemExit("comfy_aimdo.control.init() failed")
    import torch
    if not control.init_devices([0]):
        raise SystemExit("init_devices failed")
    return control, torch


def _median_ns(fn, iterations, batch):
    samples, done = [], 0
    while done < iterations:
        n = min(batch, iterations - done)
        t0 = time.perf_counter_ns()
        fn(n)
        samples.append((time.perf_counter_ns() - t0) / n)
        done += n
    return statistics.median(samples), min(samples)


def part_pair(args, res):
    control, torch = _start(args, 0)
    import comfy_aimdo.model_vbar as mv
    v = mv.ModelVBAR(1 << 30, 0)
    v.prioritize()
    block = v.alloc(4 * v.page_size)   # a block of four pages
    v.offset = 0
    weight = v.alloc(1 << 20)          # one weight inside it
    for a in (block, weight):
        assert mv.vbar_fault(a) is not None, "not resident"
        mv.vbar_unpin(a)
    vb = v._vbar
    off, size = weight[1] - v.base_addr, weight[2]
    cuda = args.backend != "host"
    raw = getattr(torch._C, "_cuda_getCurrentRawStream", None) \
        if cuda else None
    stream = raw(0) if raw else 0
    fault, unpin = mv.vbar_fault, mv.vbar_unpin

    def dropin(n):
        for _ in range(n):
            fault(weight)
            unpin(weight)

    def dropin_block(n):
        for _ in range(n):
            fault(block)
            unpin(block)

    f, u = vb.fault, vb.unpin

    def native(n):
        for _ in range(n):
            f(off, size)
            u(off, size, stream)

    def native_stream(n):
        for _ in range(n):
            f(off, size)
            u(off, size, raw(0) if raw else 0)

    def noop(n):
        for _ in range(n):
            pass

    for name, fn in (("dropin", dropin), ("dropin_block", dropin_block),
                     ("native", native), ("native_stream", native_stream),
                     ("loop", noop)):
        fn(2000)  # warm up
        med, best = _median_ns(fn, args.iterations, 1000)
        res[name + "_ns"] = med
        res[name + "_best_ns"] = best
    res["extra_ns"] = res["dropin_ns"] - res["native_ns"]
    res["extra_vs_stream_lookup_ns"] = res["dropin_ns"] - \
        res["native_stream_ns"]
    if cuda:
        torch.cuda.synchronize()


def _run_steps(model, x, torch, steps, cuda):
    times = []
    for _ in range(steps):
        model.c.reset()
        if cuda:
            torch.cuda.synchronize()
        t = time.perf_counter()
        model.step(x)
        if cuda:
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t) * 1e3)
    return times


def part_steps(args, res):
    layers, dim, limit, _ = sizes(args)
    fits = args.mode == "fits"
    control, torch = _start(args, 0 if fits else limit)
    import comfy_driver as cd
    cuda = args.backend != "host"
    tdev = "cuda:0" if cuda else "cpu"
    st = cd.SafetensorsFile(args.file)
    names = json.loads(args.names)
    if args.api == "dropin":
        m = cd.ComfyModel(st, names, 0, tdev)
    else:
        m = cd.NativeModel(st, names, control.get_devctx(0).device, tdev)
    dtype = torch.float32 if args.backend == "host" else torch.bfloat16
    g = torch.Generator().manual_seed(5)
    x = torch.randn(8, dim, generator=g).to(dtype).to(tdev)
    rss0, _ = _rss()
    with torch.no_grad():
        m.load()
        first = _run_steps(m, x, torch, 1, cuda)
        times = _run_steps(m, x, torch, args.steps, cuda)
    rss, hwm = _rss()
    res.update(first_ms=first[0], median_ms=statistics.median(times),
               min_ms=min(times), steps=args.steps,
               counters_last_step=m.c.as_dict(), rss_start=rss0,
               rss_end=rss, rss_peak=hwm, model_bytes=m.model_size,
               limit_bytes=0 if fits else limit)


# ---- the parent ---------------------------------------------------------------

def _child(args, part, extra):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", part,
           "--backend", args.backend, "--iterations", str(args.iterations),
           "--steps", str(args.steps)] + (["--small"] if args.small else []) \
        + extra
    out = subprocess.run(cmd, stdout=subprocess.PIPE, universal_newlines=True)
    if out.returncode != 0:
        return {"error": "exit %d" % out.returncode}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _skip_reason(args):
    if os.environ.get("DV_TEST_NO_TORCH"):
        return "torch runs are off in sanitizer builds"
    if importlib.util.find_spec("torch") is None:
        return "torch is not installed"
    try:
        import dynvram
    except ImportError as exc:
        return "dynvram not importable: %s" % exc
    for b in dynvram.backends():
        if b["name"] == args.backend:
            return None if b["available"] else b["reason"]
    return "no backend %r" % args.backend


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    ap.add_argument("--backend", default="cuda", choices=["cuda", "host"])
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--iterations", type=int, default=200000)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--max-extra-ns", type=float, default=1000,
                    help="fail when the drop-in's pair costs more than this "
                    "over the native pair (0: report only)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--api", help=argparse.SUPPRESS)
    ap.add_argument("--mode", help=argparse.SUPPRESS)
    ap.add_argument("--file", help=argparse.SUPPRESS)
    ap.add_argument("--names", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        res = {}
        {"pair": part_pair, "steps": part_steps}[args.child](args, res)
        print(json.dumps(res))
        return 0
    os.makedirs(args.out, exist_ok=True)
    dst = os.path.join(args.out, "comfy_bench.json")
    reason = _skip_reason(args)
    if reason:
        print("SKIP comfy_bench (%s): %s" % (args.backend, reason))
        with open(dst, "w") as f:
            json.dump({"skipped": reason}, f)
        return 0
    layers, dim, limit, _ = sizes(args)
    doc = {"backend": args.backend, "small": args.small,
           "python": platform.python_version(), "date":
           time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "layers": layers, "dim": dim, "limit_mib": limit >> 20}
    doc["pair"] = _child(args, "pair", [])
    with tempfile.TemporaryDirectory(prefix="comfy-bench-") as tmp:
        path = os.path.join(tmp, "model.safetensors")
        dtype = "float32" if args.backend == "host" else "bfloat16"
        code = ("import sys, json, torch\nsys.path.insert(0, %r)\n"
                "import comfy_driver as cd\n"
                "print(json.dumps(cd.make_linear_stack(%r, %d, %d, seed=1, "
                "dtype=torch.%s)))\n") % (
            os.path.join(ROOT, "tests", "python"), path, layers, dim, dtype)
        names = subprocess.check_output([sys.executable, "-c", code],
                                        universal_newlines=True).strip()
        names = names.splitlines()[-1]
        for mode in ("fits", "limit"):
            for api in ("dropin", "native"):
                doc["steps_%s_%s" % (mode, api)] = _child(
                    args, "steps", ["--api", api, "--mode", mode, "--file",
                                    path, "--names", names])
    with open(dst, "w") as f:
        json.dump(doc, f, indent=1)
    p = doc["pair"]
    ok = "error" not in p
    print("comfy_bench on %s (%d layers of %dx%d, limit %d MiB)"
          % (args.backend, layers, dim, dim, limit >> 20))
    if ok:
        print("  fault + unpin pair, median ns: drop-in %.0f, drop-in block "
              "%.0f, native %.0f, native with stream lookup %.0f, loop %.0f"
              % (p["dropin_ns"], p["dropin_block_ns"], p["native_ns"],
                 p["native_stream_ns"], p["loop_ns"]))
        print("  drop-in extra: %.0f ns (target <= %.0f)"
              % (p["extra_ns"], args.max_extra_ns))
    print("  %-14s %10s %10s %10s %10s %10s" % ("steps", "first ms",
                                                 "median ms", "RSS MiB",
                                                 "peak MiB", "streamed"))
    for mode in ("fits", "limit"):
        for api in ("dropin", "native"):
            s = doc["steps_%s_%s" % (mode, api)]
            if "error" in s:
                print("  %-14s %s" % (mode + "/" + api, s["error"]))
                ok = False
                continue
            print("  %-14s %10.2f %10.2f %10d %10d %10d" % (
                mode + "/" + api, s["first_ms"], s["median_ms"],
                s["rss_end"] >> 20, s["rss_peak"] >> 20,
                s["counters_last_step"]["streamed"]))
    if not ok:
        return 1
    if args.max_extra_ns and p["extra_ns"] > args.max_extra_ns:
        print("FAIL: the drop-in's pair costs %.0f ns more than the native "
              "one" % p["extra_ns"])
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
