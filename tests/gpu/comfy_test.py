#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""GPU checks of the comfy_aimdo drop-in (a CUDA GPU and PyTorch 2.x; the
lead runs it, CI cannot). The driver is the CI one
(tests/python/comfy_driver.py: the spec's "How ComfyUI drives it"), on CUDA.

Each check runs in its own process, started the way ComfyUI starts:
``comfy_aimdo.control.init()`` before ``import torch`` (so torch's
cudaMalloc / cudaMallocAsync are dynvram's interposer), then
``init_devices``; torch's allocator is the cudaMallocAsync backend
(PYTORCH_CUDA_ALLOC_CONF=backend:cudaMallocAsync, as ComfyUI forces on CUDA
13) unless the check says otherwise.

  large        a model larger than a VRAM limit (DYNVRAM_COMFY_VRAM_LIMIT):
               outputs equal to the fully resident run and to plain torch,
               steady steps copy nothing, no out-of-memory; then torch
               allocations grown past the limit evict weight pages instead
               of failing, and the weights come back (copied again)
  large_native the same with torch's native caching allocator
  large_pluggable  the same through dynvram's CUDAPluggableAllocator on the
               driver API (the Windows route, DYNVRAM_COMFY_PRESSURE)
  turns        two models taking turns under a limit smaller than both:
               outputs equal every step, every weight whose signature said
               "still there" checked against its source bytes
  block        a whole-block fault per layer per step: a CUDA graph captured
               per block once it ran fully resident, replayed while the
               block's signature is unchanged; outputs equal; the block
               fault costs what a single weight's does (timed)
  graph        a CUDA graph captured inside a malloc_graph scope and
               replayed (skipped while malloc_graph is not wired)

Usage: comfy_test.py [--out DIR] [--small] [check ...]   (default: all)
Writes DIR/comfy_<check>.json; prints PASS/FAIL/SKIP per check and
'N passed, N failed, N skipped'. Without a CUDA GPU (or torch) every check
is skipped and the exit status is 0.
"""
import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))
# The drop-in from this checkout unless one is installed (or built) already.
if importlib.util.find_spec("comfy_aimdo") is None:
    sys.path.insert(0, os.path.join(ROOT, "bindings", "comfy_aimdo"))

MIB = 1 << 20
GIB = 1 << 30
CHECKS = ["large", "large_native", "large_pluggable", "turns", "block",
          "graph"]
SKIP = 77


class Skip(Exception):
    pass


def _check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def sizes(small):
    """(layers, dim, limit bytes): bf16 dim x dim weights."""
    if small:
        return 12, 2048, 40 * MIB          # 8 MiB per layer, 96 MiB
    return 24, 8192, 1536 * MIB            # 128 MiB per layer, 3 GiB


# ---- the checks (in a child process, after start()) --------------------------

def start(limit, alloc_conf="backend:cudaMallocAsync", headroom=0):
    """ComfyUI's start: init before torch, then torch, then the devices."""
    if alloc_conf:
        os.environ["PYTORCH_CUDA_ALLOC_CONF"] = alloc_conf
    else:
        os.environ.pop("PYTORCH_CUDA_ALLOC_CONF", None)
    os.environ["DYNVRAM_COMFY_VRAM_LIMIT"] = str(limit) if limit else ""
    import comfy_aimdo.control as control
    if not control.init(simple_vram_headroom=headroom):
        raise Skip("comfy_aimdo.control.init() returned False")
    import torch
    if not torch.cuda.is_available():
        raise Skip("torch sees no CUDA device")
    _check(control.init_devices([(0, 0)]), "init_devices returned False")
    control.set_log_warning()
    return control, torch


def _models(path, names, torch, n=1, **kw):
    import comfy_driver as cd
    st = cd.SafetensorsFile(path)
    return st, [cd.ComfyModel(st, names, 0, "cuda:0", **kw) for _ in range(n)]


def _x(torch, dim, seed=5):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(8, dim, generator=g).to(torch.bfloat16).cuda()


def check_large(args, res, alloc_conf="backend:cudaMallocAsync",
                route_wanted="interposer"):
    layers, dim, limit = sizes(args.small)
    control, torch = start(limit, alloc_conf)
    import comfy_driver as cd
    route = control.pressure_status()
    res["pressure_route"] = route[0]
    _check(route[0] == route_wanted, "pressure route %r, not %r: %s"
           % (route[0], route_wanted, route[1]))
    if route_wanted == "interposer":
        from dynvram import interpose
        _check(interpose.is_active(), "cudaMalloc is not the interposer's")
        counters = lambda: interpose.stats(0)  # noqa: E731
    else:
        from dynvram import pluggable
        counters = lambda: pluggable.stats(0)  # noqa: E731
    st, (m,) = _models(args.file_a, args.names_a, torch, content_check=True)
    x = _x(torch, dim)
    with torch.no_grad():
        ref = cd.reference_forward(st, args.names_a, x)
        m.load()
        steps = []
        for i in range(4):
            m.c.reset()
            torch.cuda.synchronize()
            t = time.perf_counter()
            y = m.step(x)
            torch.cuda.synchronize()
            steps.append(dict(m.c.as_dict(), ms=(time.perf_counter() - t) * 1e3,
                              resident_layers=len(m.resident_layers())))
            _check(torch.equal(y, ref), "step %d differs from the reference "
                   "(max diff %g)" % (i, (y - ref).abs().max().item()))
        res["steps"] = steps
        resident = steps[-1]["resident_layers"]
        _check(0 < resident < layers, "expected a resident prefix, got %d of "
               "%d layers" % (resident, layers))
        # Settled by the third step at the latest (torch's own buffers for
        # the streamed weights may still take pages in the second).
        _check(all(s["copies"] == 0 for s in steps[2:]),
               "steady steps copied: %r" % [s["copies"] for s in steps])
        _check(m.c.corrupt == 0, "stale bytes behind an equal signature")
        # torch's own allocations past the limit: weights make room.
        dev = control.get_devctx(0).device
        before = m.vbar.loaded_size()
        big = torch.empty(limit // 2, dtype=torch.uint8, device="cuda")
        big.fill_(1)
        after = m.vbar.loaded_size()
        res["pressure"] = {"loaded_before": before, "loaded_after": after,
                           "framework_bytes": dev.stats().framework_bytes,
                           "allocator": counters()}
        _check(after < before, "a %d MiB torch tensor evicted no weight page"
               % (limit // 2 >> 20))
        m.c.reset()
        y = m.step(x)
        _check(torch.equal(y, ref), "wrong output under torch pressure")
        del big
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        m.vbar.prioritize()
        m.c.reset()
        y = m.step(x)
        _check(torch.equal(y, ref), "wrong output after the pressure")
        res["after_pressure"] = m.c.as_dict()
        _check(m.c.copies > 0, "evicted weights not copied again")
        _check(m.c.corrupt == 0, "stale bytes behind an equal signature")
    # The resident run (no limit) gives the same outputs: same kernels,
    # same bytes. Checked against plain torch above; record the step time.
    res["limit_mib"] = limit >> 20
    res["model_mib"] = m.model_size >> 20


def check_large_native(args, res):
    check_large(args, res, alloc_conf="")


def check_large_pluggable(args, res):
    """The Windows route, on Linux: dynvram's CUDAPluggableAllocator on the
    driver API instead of the interposer (DYNVRAM_COMFY_PRESSURE)."""
    os.environ["DYNVRAM_COMFY_PRESSURE"] = "pluggable"
    check_large(args, res, alloc_conf="", route_wanted="pluggable")
    from dynvram import pluggable
    st = pluggable.stats(0)
    res["pluggable_stats"] = st
    _check(st["allocs"] > 0, "torch did not allocate through it")


def check_turns(args, res):
    layers, dim, limit = sizes(args.small)
    control, torch = start(limit)
    import comfy_driver as cd
    sa, (a,) = _models(args.file_a, args.names_a, torch, content_check=True)
    sb, (b,) = _models(args.file_b, args.names_b, torch, content_check=True)
    x = _x(torch, dim)
    with torch.no_grad():
        ref_a = cd.reference_forward(sa, args.names_a, x)
        ref_b = cd.reference_forward(sb, args.names_b, x)
        a.load()
        b.load()
        rounds = []
        for r in range(3):
            for name, m, ref in (("a", a, ref_a), ("b", b, ref_b)):
                m.vbar.prioritize()
                for s in range(2):
                    m.c.reset()
                    y = m.step(x)
                    _check(torch.equal(y, ref), "model %s round %d step %d "
                           "differs" % (name, r, s))
                    rounds.append(dict(m.c.as_dict(), model=name, round=r,
                                       step=s))
        res["rounds"] = rounds
        st = control.get_devctx(0).device.stats()
        res["evictions"] = st.evictions
        _check(st.evictions > 0, "the models never evicted each other")
        _check(a.c.corrupt == 0 and b.c.corrupt == 0,
               "stale bytes behind an equal signature")


def check_block(args, res):
    layers, dim, limit = sizes(args.small)
    control, torch = start(0)  # fits: every block is replayed
    import comfy_driver as cd
    import comfy_aimdo.model_vbar as mv
    st, (m,) = _models(args.file_a, args.names_a, torch, blocks=True)
    x = _x(torch, dim)
    graphs = {}

    def capture(layer, x_in, x_out):
        if layer.name in graphs:
            return
        w, b = (wt.view for wt in layer.weights)
        xs = x_in.clone()
        ys = torch.empty_like(x_out)
        torch.cuda.synchronize()
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            torch.addmm(b, xs, w.t(), out=ys)
            ys.relu_()
        graphs[layer.name] = (g, xs, ys)

    def replay(layer, x_in):
        rec = graphs.get(layer.name)
        if rec is None:
            return None
        g, xs, ys = rec
        xs.copy_(x_in)
        g.replay()
        return ys

    with torch.no_grad():
        ref = cd.reference_forward(st, args.names_a, x)
        m.load()
        steps = []
        for i in range(4):
            m.c.reset()
            y = m.step(x, replay, capture)
            _check(torch.equal(y, ref), "step %d differs (max diff %g)"
                   % (i, (y - ref).abs().max().item()))
            steps.append(m.c.as_dict())
        res["steps"] = steps
        _check(steps[0]["block_hits"] == 0, "first step hit")
        _check(all(s["block_hits"] == layers for s in steps[1:]),
               "blocks not replayed: %r" % [s["block_hits"] for s in steps])
        # Evict the top half: those blocks' signatures change, the graphs
        # are not replayed over stale bytes, the others still are.
        m.vbar.free_memory(m.vbar.loaded_size() // 2)
        m.vbar.prioritize()
        m.c.reset()
        y = m.step(x, replay, capture)
        _check(torch.equal(y, ref), "wrong output after eviction")
        res["after_eviction"] = m.c.as_dict()
        _check(0 < m.c.block_hits < layers, "expected some blocks replayed")
        _check(m.c.copies > 0, "evicted blocks not copied again")
        # Cost: a whole-block fault + unpin against a single weight's.
        block, weight = m.layers[0].block, m.layers[0].weights[1].alloc

        def cost(a, n=20000):
            best = float("inf")
            for _ in range(5):
                t = time.perf_counter()
                for _ in range(n):
                    mv.vbar_fault(a)
                    mv.vbar_unpin(a)
                best = min(best, time.perf_counter() - t)
            return best / n * 1e9

        cb, cw = cost(block), cost(weight)
        res["block_pair_ns"], res["weight_pair_ns"] = cb, cw
        res["block_bytes"] = block[2]
        _check(cb < 2 * cw + 500, "block fault %.0f ns vs weight %.0f ns"
               % (cb, cw))


def check_graph(args, res):
    control, torch = start(0)
    from comfy_aimdo import malloc_graph
    try:
        g = malloc_graph.record(torch.cuda.current_stream())
    except RuntimeError as exc:
        if "does not have yet" in str(exc):
            raise Skip("malloc_graph not wired: %s" % exc)
        raise
    dim = 1024
    x = torch.randn(64, dim, device="cuda")
    w = torch.randn(dim, dim, device="cuda")
    outs, addrs = [], []
    for step in range(3):
        g.push("block")
        h = torch.relu(x @ w)        # allocations made inside the scope
        y = h @ w
        addrs.append((h.data_ptr(), y.data_ptr()))
        outs.append(y.clone())
        del h, y
        g.pop()
    res["addresses"] = addrs
    _check(addrs[1] == addrs[2], "replayed addresses moved: %r" % addrs)
    # Capture inside a scope and replay.
    cg = torch.cuda.CUDAGraph()
    xs = x.clone()
    g.push("block")
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        with g.use_stream(s):
            with torch.cuda.graph(cg, stream=s):
                hs = torch.relu(xs @ w)
                ys = hs @ w
    torch.cuda.current_stream().wait_stream(s)
    g.pop()
    cg.replay()
    torch.cuda.synchronize()
    _check(torch.equal(ys, outs[0]), "replayed graph output differs")
    res["stats"] = {k: getattr(g, k) for k in ("peak_used", "virtual_bytes",
                                                "physical_bytes",
                                                "rogue_count")}


def run_child(name, args):
    res = {"check": name, "small": args.small}
    rc = 0
    try:
        globals()["check_" + name](args, res)
        res["result"] = "pass"
    except Skip as exc:
        res["result"] = "skip"
        res["reason"] = str(exc)
        rc = SKIP
    except Exception as exc:
        res["result"] = "fail"
        res["error"] = "%s: %s" % (type(exc).__name__, exc)
        res["traceback"] = traceback.format_exc()
        traceback.print_exc()
        rc = 1
    with open(os.path.join(args.out, "comfy_%s.json" % name), "w") as f:
        json.dump(res, f, indent=1, default=str)
    return rc


def _gpu_reason():
    try:
        import dynvram
    except ImportError as exc:
        return "dynvram not importable: %s" % exc
    for b in dynvram.backends():
        if b["name"] == "cuda":
            return None if b["available"] else "no CUDA: " + b["reason"]
    return "no CUDA backend"


def write_models(args, tmp):
    """The model files, written by a child so this process never imports
    torch."""
    layers, dim, _ = sizes(args.small)
    code = (
        "import sys, json, torch\n"
        "sys.path.insert(0, %r)\n"
        "import comfy_driver as cd\n"
        "a = cd.make_linear_stack(%r, %d, %d, seed=1, dtype=torch.bfloat16)\n"
        "b = cd.make_linear_stack(%r, %d, %d, seed=2, dtype=torch.bfloat16)\n"
        "print(json.dumps([a, b]))\n") % (
        os.path.join(ROOT, "tests", "python"), os.path.join(tmp, "a.st"),
        layers, dim, os.path.join(tmp, "b.st"), layers * 2 // 3, dim)
    out = subprocess.check_output([sys.executable, "-c", code],
                                  universal_newlines=True)
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    ap.add_argument("--small", action="store_true",
                    help="small sizes (smoke run on any GPU)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--files", default=None, help=argparse.SUPPRESS)
    ap.add_argument("checks", nargs="*", default=CHECKS)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if args.child:
        spec = json.loads(args.files)
        args.file_a, args.file_b = spec["files"]
        args.names_a, args.names_b = spec["names"]
        return run_child(args.child, args)
    for name in args.checks:
        if name not in CHECKS:
            print("unknown check %r" % name)
            return 2
    reason = _gpu_reason()
    if reason:
        for name in args.checks:
            print("SKIP %s (%s)" % (name, reason))
        with open(os.path.join(args.out, "comfy_test.json"), "w") as f:
            json.dump({"skipped": reason}, f)
        print("0 passed, 0 failed, %d skipped" % len(args.checks))
        return 0
    passed = failed = skipped = 0
    with tempfile.TemporaryDirectory(prefix="comfy-gpu-") as tmp:
        names = write_models(args, tmp)
        spec = json.dumps({"files": [os.path.join(tmp, "a.st"),
                                     os.path.join(tmp, "b.st")],
                           "names": names})
        for name in args.checks:
            cmd = [sys.executable, os.path.abspath(__file__), "--out",
                   args.out, "--child", name, "--files", spec] + \
                (["--small"] if args.small else [])
            t = time.time()
            rc = subprocess.call(cmd)
            verdict = {0: "PASS", SKIP: "SKIP"}.get(rc, "FAIL")
            print("%s %s (%.1f s)" % (verdict, name, time.time() - t),
                  flush=True)
            passed += rc == 0
            skipped += rc == SKIP
            failed += rc not in (0, SKIP)
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
