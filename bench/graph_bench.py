#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Allocation graphs against torch's own allocators: the block stack of
tests/gpu/graph_test.py (layer norm, attention, MLP per block) run

  graph     torch's cudaMallocAsync backend, allocations routed into a
            dynvram allocation graph (a scope per block) by the interposer
  async     torch's cudaMallocAsync backend alone
  native    torch's native caching allocator

each eagerly and with CUDA graph replay (a torch.cuda.CUDAGraph per block;
for `graph` captured inside the block's scope). Reported per mode: median
step time, driver memory calls per step (libcudart's cudaMalloc/Free[Async]
counted by the interposer, which is attached in every mode for that, plus
the graph's own create/map/... calls), and the peak physical memory of
activations (graph: its pages; async: the pool's reserved high-water mark;
native: torch's max_memory_reserved), next to the peak of live bytes.

torch picks its allocator backend when it starts, so each mode runs in its
own process; this script runs them in turn and writes the ratios of one run:

    python3 bench/graph_bench.py --out bench/results            # all modes
    python3 bench/graph_bench.py --small --steps 5 --out /tmp   # smoke run

Writes <out>/graph_bench.json and a table on stdout. Without torch or a
CUDA GPU it prints "SKIP: <reason>" and exits 0.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "gpu"))

import graph_test as gt  # noqa: E402  (the model and the skip probe)

MIB = 1 << 20
MODES = ["graph", "async", "native"]
ALLOC_CONF = {"graph": "backend:cudaMallocAsync",
              "async": "backend:cudaMallocAsync", "native": "backend:native"}


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench/results")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--small", action="store_true")
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    return ap.parse_args()


class NoGraph:
    """Stand-in for a dynvram.Graph in the modes without one."""

    class _Null:
        changed = False

        def __enter__(self):
            return self

        def __exit__(self, *e):
            return False

    def scope(self, name=None):
        return self._Null()

    def use_stream(self, s):
        return self._Null()


def driver_calls(ip, g):
    s = ip.stats(0)
    n = s["driver_allocs"] + s["driver_frees"]
    return n + (g.stats().backend_calls if hasattr(g, "stats") else 0)


def timed_steps(torch, fn, steps, ip, g):
    times, calls = [], []
    for _ in range(steps):
        c0 = driver_calls(ip, g)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
        calls.append(driver_calls(ip, g) - c0)
    return {"median_ms": statistics.median(times), "min_ms": min(times),
            "driver_calls_per_step": statistics.mean(calls),
            "driver_calls_last_step": calls[-1]}


def capture(torch, g, blocks, static_in, heads, mode):
    """A CUDA graph per block on a side stream; returns (graphs, outputs)."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    pool = torch.cuda.graph_pool_handle() if mode == "native" else None

    def chain():
        outs, x = [], static_in
        for i, w in enumerate(blocks):
            with g.scope("block%d" % i):
                x = gt.block_forward(torch, w, x, heads)
            outs.append(x)
        return outs

    with g.use_stream(s), torch.cuda.stream(s):
        for _ in range(3):  # warm up on s (and record the chain's variant)
            outs = chain()
            del outs
        torch.cuda.synchronize()
        graphs, outs, x = [], [], static_in
        for i, w in enumerate(blocks):
            cg = torch.cuda.CUDAGraph()
            with g.scope("block%d" % i):
                with torch.cuda.graph(cg, stream=s, pool=pool):
                    x = gt.block_forward(torch, w, x, heads)
            graphs.append(cg)
            outs.append(x)
    torch.cuda.synchronize()
    return graphs, outs


def physical_peak(torch, mode, g):
    if mode == "graph":
        return g.stats().physical_bytes + \
            torch.cuda.memory_stats().get("reserved_bytes.all.peak", 0)
    if mode == "async":
        return torch.cuda.memory_stats().get("reserved_bytes.all.peak", 0)
    return torch.cuda.max_memory_reserved()


def child(args):
    mode = args.child
    import dynvram
    import dynvram.interpose as ip
    import dynvram.torch as dvt
    active = dvt.install_interposer()
    import torch
    torch.set_grad_enabled(False)
    torch.cuda.init()
    res = {"mode": mode, "interposer_active": active,
           "allocator_backend": torch.cuda.get_allocator_backend()}
    dev = dynvram.Device("cuda", page_size=32 * MIB)
    dvt.attach_allocator(dev)  # every mode: it counts libcudart's calls
    n, b, t, d, heads = gt.sizes(args.small)
    blocks = gt.make_blocks(torch, n, d)
    inp = torch.randn(b, t, d, device="cuda", dtype=torch.float16)
    gt.warm(torch, blocks, inp, heads)
    g = NoGraph()
    if mode == "graph":
        g = dynvram.Graph(dev, stream=torch.cuda.current_stream())
        dvt.bind_graph(g)
    torch.cuda.reset_peak_memory_stats()

    def eager():
        if mode == "graph":
            gt.run_step(torch, g, blocks, inp, heads)
            return
        x = inp
        for w in blocks:
            x = gt.block_forward(torch, w, x, heads)
        float(x.float().sum().item())

    eager()  # the graph mode records here
    res["eager"] = timed_steps(torch, eager, args.steps, ip, g)
    res["eager"]["physical_peak"] = physical_peak(torch, mode, g)
    res["live_peak"] = torch.cuda.max_memory_allocated() if mode != "graph" \
        else g.stats().peak_used
    static_in = inp.clone()
    graphs, outs = capture(torch, g, blocks, static_in, heads, mode)

    def replay():
        for cg in graphs:
            cg.replay()

    res["cudagraph"] = timed_steps(torch, replay, args.steps, ip, g)
    res["cudagraph"]["physical_peak"] = physical_peak(torch, mode, g)
    if hasattr(g, "stats"):
        res["graph_stats"] = vars(g.stats())
    res["sizes"] = dict(zip(("blocks", "batch", "tokens", "dim", "heads"),
                            (n, b, t, d, heads)))
    res["gpu"] = torch.cuda.get_device_name(0)
    res["torch"] = torch.__version__
    print(json.dumps(res))
    return 0


def ratio(a, b):
    return a / b if b else None


def main():
    args = parse_args()
    if args.child:
        return child(args)
    reason = gt.skip_reason()
    if reason:
        print("SKIP: %s" % reason)
        return 0
    os.makedirs(args.out, exist_ok=True)
    results = {}
    for mode in args.modes.split(","):
        env = dict(os.environ, PYTORCH_CUDA_ALLOC_CONF=ALLOC_CONF[mode])
        cmd = [sys.executable, os.path.abspath(__file__), "--child", mode,
               "--steps", str(args.steps)] + (["--small"] if args.small else [])
        p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE,
                           universal_newlines=True)
        if p.returncode != 0:
            print("mode %s failed (rc %d)" % (mode, p.returncode))
            results[mode] = {"failed": p.returncode}
            continue
        results[mode] = json.loads(p.stdout.strip().splitlines()[-1])
    out = {"date": time.strftime("%Y-%m-%d %H:%M:%S"),
           "host": platform.node(), "modes": results, "ratios": {}}
    g = results.get("graph", {})
    for other in ("async", "native"):
        o = results.get(other, {})
        if "eager" not in g or "eager" not in o:
            continue
        for kind in ("eager", "cudagraph"):
            out["ratios"]["%s_vs_%s" % (kind, other)] = {
                "step_time": ratio(g[kind]["median_ms"], o[kind]["median_ms"]),
                "physical_peak": ratio(g[kind]["physical_peak"],
                                       o[kind]["physical_peak"]),
            }
    path = os.path.join(args.out, "graph_bench.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1, default=str)
    print("%-7s %-10s %10s %14s %14s" % ("mode", "", "median ms",
                                        "calls/step", "peak MiB"))
    for mode, r in results.items():
        for kind in ("eager", "cudagraph"):
            if kind in r:
                k = r[kind]
                print("%-7s %-10s %10.3f %14.1f %14.1f" % (
                    mode, kind, k["median_ms"], k["driver_calls_per_step"],
                    k["physical_peak"] / MIB))
    for name, rr in out["ratios"].items():
        print("graph %-22s step time x%.3f, physical peak x%.3f" % (
            name, rr["step_time"] or 0, rr["physical_peak"] or 0))
    print("wrote %s" % path)
    return 0 if all("failed" not in r for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
