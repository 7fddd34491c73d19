#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""GPU checks of allocation graphs (issue 11) with torch's cudaMallocAsync
backend (PYTORCH_CUDA_ALLOC_CONF=backend:cudaMallocAsync) and the CUDA
interposer: a stack of transformer-like blocks (layer norm, attention, MLP
on random weights) run with one graph scope per block.

  replay     N steps: from step 2 on no driver memory call at all (the
             interposer's calls of libcudart and the graph's own backend
             calls are counted), no break, and every block's output at the
             same address as in step 1.
  cudagraph  a torch.cuda.CUDAGraph of each block captured inside its scope
             (the capture replays the scope's recording: no allocator or
             driver call inside the capture; torch's capture_begin makes
             its own set-up allocations, the RNG's graph state, which
             dynvram.torch leaves to the normal path and which are counted
             apart) replays with outputs equal to the eager stack's. When a
             capture does not replay, graph_cudagraph.json gets
             "capture_mismatch": the scope's recording (Graph.recording)
             next to what the capture asked for (Graph.trace_events).
  seqlen     a changed sequence length breaks each block's scope once
             (re-recorded), then replays without driver calls; the old
             length replays too (both variants kept).
  pressure   under a VRAM limit filled with weight pages, the graph's pages
             evict weight pages instead of failing; replays then evict
             nothing more.

Each check runs in its own process (the interposer must be loaded before
torch, and the allocator backend is chosen when torch starts). Without
torch, without a CUDA GPU or without dynvram's CUDA backend it prints
"SKIP: <reason>" and exits 0.

Usage: graph_test.py [--out DIR] [--small] [check ...]   (default: all)
Writes DIR/graph_<check>.json and DIR/graph_summary.json.
"""
import argparse
import json
import os
import subprocess
import sys
import time
import traceback

MIB = 1 << 20
GIB = 1 << 30
CHECKS = ["replay", "cudagraph", "seqlen", "pressure"]


def _check(cond, msg):
    if not cond:
        raise AssertionError(msg)


# ---- the model (bench/graph_bench.py uses it too) -------------------------------


def sizes(small):
    """(blocks, batch, tokens, dim, heads)"""
    return (4, 2, 256, 512, 8) if small else (8, 4, 1024, 2048, 16)


def make_blocks(torch, n, d, dtype=None, seed=0):
    """n blocks of random weights, scaled so activations stay finite."""
    dtype = dtype or torch.float16
    g = torch.Generator(device="cuda").manual_seed(seed)

    def w(*shape):
        return (torch.randn(*shape, device="cuda", generator=g) /
                shape[-1] ** 0.5).to(dtype)

    blocks = []
    for _ in range(n):
        blocks.append({
            "ln1": (torch.ones(d, device="cuda", dtype=dtype),
                    torch.zeros(d, device="cuda", dtype=dtype)),
            "qkv": w(3 * d, d), "proj": w(d, d),
            "ln2": (torch.ones(d, device="cuda", dtype=dtype),
                    torch.zeros(d, device="cuda", dtype=dtype)),
            "fc1": w(4 * d, d), "fc2": w(d, 4 * d),
        })
    return blocks


def block_forward(torch, w, x, heads):
    """Pre-norm transformer block: attention then MLP, both residual."""
    F = torch.nn.functional
    b, t, d = x.shape
    h = F.layer_norm(x, (d,), *w["ln1"])
    q, k, v = F.linear(h, w["qkv"]).view(b, t, 3, heads, d // heads) \
        .permute(2, 0, 3, 1, 4).unbind(0)
    a = F.scaled_dot_product_attention(q, k, v)
    x = x + F.linear(a.transpose(1, 2).reshape(b, t, d), w["proj"])
    h = F.layer_norm(x, (d,), *w["ln2"])
    return x + F.linear(F.gelu(F.linear(h, w["fc1"])), w["fc2"])


def run_step(torch, g, blocks, inp, heads):
    """One step, a scope per block (and one for the checksum). Returns the
    output address of each block, what each scope's pop said, and the
    checksum of the last output."""
    ptrs, changed = [], []
    x = inp
    for i, w in enumerate(blocks):
        with g.scope("block%d" % i) as s:
            x = block_forward(torch, w, x, heads)
        ptrs.append(x.data_ptr())
        changed.append(s.changed)
    with g.scope("final"):
        val = float(x.float().sum().item())
        del x
    return ptrs, changed, val


def counters(g):
    """Driver memory calls so far: libcudart's, through the interposer, and
    the graph's own backend calls (create, map, unmap, ...)."""
    import dynvram.interpose as ip
    s = ip.stats(g.device.ordinal)
    gs = g.stats()
    return {"driver_allocs": s["driver_allocs"],
            "driver_frees": s["driver_frees"],
            "capture_allocs": s.get("capture_allocs", 0),
            "absorbed_frees": s.get("absorbed_frees", 0),
            "graph_backend_calls": gs.backend_calls, "breaks": gs.breaks,
            "replays": gs.replays, "bypassed": gs.bypassed,
            "physical_bytes": gs.physical_bytes, "peak_used": gs.peak_used}


def delta(a, b):
    return {k: b[k] - a[k] for k in a}


def driver_calls(d):
    return d["driver_allocs"] + d["driver_frees"] + d["graph_backend_calls"]


def setup(args, vram_limit=0):
    """Interposer first, then torch with the async backend; a dynvram CUDA
    device attached and a graph on torch's current stream, bound to this
    thread."""
    import dynvram
    import dynvram.torch as dvt
    active = dvt.install_interposer()
    import torch
    _check(active, "interposer not active (torch bound cudaMalloc elsewhere)")
    torch.set_grad_enabled(False)  # inference: no saved activations
    torch.cuda.init()
    backend = torch.cuda.get_allocator_backend()
    _check(backend == "cudaMallocAsync", "allocator backend is %s" % backend)
    dev = dynvram.Device("cuda", vram_limit=vram_limit, page_size=32 * MIB)
    _check(dvt.attach_allocator(dev), "attach failed")
    g = dynvram.Graph(dev, stream=torch.cuda.current_stream())
    return torch, dynvram, dvt, dev, g


def warm(torch, blocks, inp, heads):
    """Lazy initialisation (cuBLAS workspaces, kernels) outside any graph."""
    x = inp
    for w in blocks:
        x = block_forward(torch, w, x, heads)
    torch.cuda.synchronize()


# ---- checks ---------------------------------------------------------------------


def check_replay(args, res):
    torch, dynvram, dvt, dev, g = setup(args)
    n, b, t, d, heads = sizes(args.small)
    blocks = make_blocks(torch, n, d)
    inp = torch.randn(b, t, d, device="cuda", dtype=torch.float16)
    warm(torch, blocks, inp, heads)
    _check(dvt.bind_graph(g), "bind_graph failed")
    steps, first, vals = [], None, []
    for step in range(args.steps):
        c0 = counters(g)
        t0 = time.perf_counter()
        ptrs, changed, val = run_step(torch, g, blocks, inp, heads)
        torch.cuda.synchronize()
        ms = (time.perf_counter() - t0) * 1e3
        dd = delta(c0, counters(g))
        steps.append({"step": step + 1, "ms": ms, "changed": changed,
                      "driver_calls": driver_calls(dd), **dd})
        vals.append(val)
        if step == 0:
            first = ptrs
            _check(all(changed), "the first step did not record every block")
            _check(dd["graph_backend_calls"] > 0, "nothing was mapped")
            continue
        _check(ptrs == first, "step %d: block addresses moved" % (step + 1))
        _check(not any(changed), "step %d: a scope did not replay: %s"
               % (step + 1, changed))
        _check(driver_calls(dd) == 0, "step %d: %d driver memory calls (%s)"
               % (step + 1, driver_calls(dd), dd))
        _check(dd["breaks"] == 0 and dd["bypassed"] == 0,
               "step %d: breaks or bypassed allocations: %s" % (step + 1, dd))
    _check(len(set(vals)) == 1, "the steps computed different outputs")
    res["steps"] = steps
    res["graph"] = vars(g.stats())
    res["device"] = vars(dev.stats())
    dvt.unbind_graph()
    g.close()


def _event(e):
    """A trace or recording event of dynvram.Graph, for the JSON."""
    keep = ("seq", "kind", "outcome", "size", "serial", "stream", "depth",
            "scope", "capturing", "capture_pass", "ends", "variants", "broke")
    return {k: e[k] for k in keep if k in e}


def last_seq(g):
    ev = g.trace_events()
    return ev[-1]["seq"] if ev else -1


def capture_mismatch(g, name, since_seq, capture_stream, prologues):
    """What a capture that did not replay asked for, next to the scope's
    recording: both sequences in order (allocation sizes, which range each
    free frees, streams, whether the stream was being captured; events made
    inside torch's capture_begin, while dynvram.torch pauses the graph,
    marked "prologue"), and the first event of the scope's own sequence the
    graph did not replay."""
    asked = []
    for e in g.trace_events():
        if e["seq"] >= since_seq:
            d = _event(e)
            d["prologue"] = any(a < e["seq"] <= b for a, b in prologues)
            asked.append(d)
    try:
        recorded = [_event(e) for e in g.recording(name)]
    except ValueError as exc:
        recorded = "no recording: %s" % exc
    first = next((e for e in asked if e["kind"] in ("alloc", "free")
                  and not e["prologue"] and e["outcome"] != "replayed"), None)
    return {"scope": name, "capture_stream": capture_stream,
            "graph_stream": g.stream, "first_not_replayed": first,
            "asked": asked, "recorded": recorded, "stats": vars(g.stats())}


def check_cudagraph(args, res):
    torch, dynvram, dvt, dev, g = setup(args)
    res["torch"] = torch.__version__
    n, b, t, d, heads = sizes(args.small)
    blocks = make_blocks(torch, n, d)
    inp = torch.randn(b, t, d, device="cuda", dtype=torch.float16)
    warm(torch, blocks, inp, heads)
    _check(dvt.bind_graph(g), "bind_graph failed")
    for _ in range(2):
        run_step(torch, g, blocks, inp, heads)
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    static_in = inp.clone()

    def chain():
        """Each block from the last one's output, the outputs kept (the
        shape a capture has): run eagerly first, so the scopes record this
        sequence and the capture replays it."""
        outs, x = [], static_in
        for i, w in enumerate(blocks):
            with g.scope("block%d" % i):
                x = block_forward(torch, w, x, heads)
            outs.append(x)
        return outs

    # torch's capture_begin allocates the RNG's graph state the first time,
    # before the capture begins (dynvram.torch pauses the graph for it):
    # counted apart, so that what is left is what the captures asked for.
    prologue, windows = {}, []
    orig_begin = torch.cuda.CUDAGraph.capture_begin

    def counted_begin(self, *a, **kw):
        c, s0 = counters(g), last_seq(g)
        try:
            return orig_begin(self, *a, **kw)
        finally:
            windows.append((s0, last_seq(g)))
            for k, v in delta(c, counters(g)).items():
                prologue[k] = prologue.get(k, 0) + v

    g.trace(1 << 16)
    with g.use_stream(s), torch.cuda.stream(s):
        for _ in range(3):  # lazy init on s, then its variant, then replay
            outs = chain()
            del outs
        torch.cuda.synchronize()
        c0 = counters(g)
        graphs, outs, x = [], [], static_in
        torch.cuda.CUDAGraph.capture_begin = counted_begin
        try:
            for i, w in enumerate(blocks):
                cg = torch.cuda.CUDAGraph()
                seq0 = last_seq(g) + 1
                with g.scope("block%d" % i) as sc:
                    with torch.cuda.graph(cg, stream=s):
                        x = block_forward(torch, w, x, heads)
                if sc.changed:
                    res["capture_mismatch"] = capture_mismatch(
                        g, "block%d" % i, seq0, s.cuda_stream, windows)
                    res["capture_prologue"] = prologue
                _check(not sc.changed,
                       "block %d: the capture did not replay" % i)
                graphs.append(cg)
                outs.append(x)
        finally:
            torch.cuda.CUDAGraph.capture_begin = orig_begin
        dd = delta(c0, counters(g))
    g.trace(0)
    res["capture"] = dd
    res["capture_prologue"] = prologue
    inside = {k: dd[k] - prologue.get(k, 0) for k in dd}
    res["capture_without_prologue"] = inside
    _check(prologue.get("graph_backend_calls", 0) == 0,
           "the graph recorded during capture_begin (not paused): %s"
           % prologue)
    _check(driver_calls(inside) == 0 and inside["bypassed"] == 0 and
           dd["capture_allocs"] == 0,
           "driver or allocator calls during the captures: %s (capture_begin"
           " made %s)" % (inside, prologue))
    torch.cuda.synchronize()
    maxdiff, exact = 0.0, True
    for trial in range(3):
        xnew = torch.randn(b, t, d, device="cuda", dtype=torch.float16)
        static_in.copy_(xnew)
        for cg in graphs:
            cg.replay()
        got = outs[-1].clone()
        ref = xnew
        with g.paused():  # the eager reference: any allocator
            for w in blocks:
                ref = block_forward(torch, w, ref, heads)
        torch.cuda.synchronize()
        diff = float((got.float() - ref.float()).abs().max())
        maxdiff = max(maxdiff, diff)
        exact = exact and torch.equal(got, ref)
        _check(torch.isfinite(got).all(), "non-finite output")
        _check(diff <= 1e-2 * max(1.0, float(ref.float().abs().max())),
               "trial %d: graph replay differs from eager by %g" % (trial, diff))
    res["max_abs_diff"] = maxdiff
    res["bitwise_equal"] = exact
    res["graph"] = vars(g.stats())
    del outs, x, graphs
    torch.cuda.synchronize()
    dvt.unbind_graph()


def check_seqlen(args, res):
    torch, dynvram, dvt, dev, g = setup(args)
    n, b, t, d, heads = sizes(args.small)
    blocks = make_blocks(torch, n, d)
    long_in = torch.randn(b, t, d, device="cuda", dtype=torch.float16)
    short_in = torch.randn(b, 3 * t // 4, d, device="cuda", dtype=torch.float16)
    warm(torch, blocks, long_in, heads)
    warm(torch, blocks, short_in, heads)
    _check(dvt.bind_graph(g), "bind_graph failed")
    log = []

    def step(inp, label):
        c0 = counters(g)
        ptrs, changed, _ = run_step(torch, g, blocks, inp, heads)
        torch.cuda.synchronize()
        dd = delta(c0, counters(g))
        log.append({"label": label, "changed": changed,
                    "driver_calls": driver_calls(dd), **dd})
        return ptrs, changed, dd

    step(long_in, "T record")
    p_long, _, dd = step(long_in, "T replay")
    _check(driver_calls(dd) == 0 and dd["breaks"] == 0, "T replay: %s" % dd)
    _, changed, dd = step(short_in, "3T/4 first")
    _check(all(changed), "3T/4: a block replayed the other length")
    _check(dd["breaks"] == n + 1,  # each block, and the checksum's scope
           "3T/4: %d breaks for %d blocks + 1" % (dd["breaks"], n))
    p_short, changed, dd = step(short_in, "3T/4 again")
    _check(not any(changed) and driver_calls(dd) == 0 and dd["breaks"] == 0,
           "3T/4 again did not replay: %s" % dd)
    p_back, changed, dd = step(long_in, "T back")
    _check(dd["breaks"] == 0 and driver_calls(dd) == 0,
           "back to T: the first variant was not replayed: %s" % dd)
    _check(p_back == p_long, "back to T: addresses moved")
    res["steps"] = log
    res["graph"] = vars(g.stats())
    dvt.unbind_graph()
    g.close()


def check_pressure(args, res):
    limit = 2 * GIB if args.small else 6 * GIB
    torch, dynvram, dvt, dev, g = setup(args, vram_limit=limit)
    n, b, t, d, heads = sizes(args.small)
    blocks = make_blocks(torch, n, d)
    inp = torch.randn(b, t, d, device="cuda", dtype=torch.float16)
    warm(torch, blocks, inp, heads)
    torch.cuda.synchronize()
    # Weight pages fill what the budget has left.
    page = 32 * MIB
    room = dev.stats().budget - dev.stats().used
    vbar = dynvram.VBAR(dev, room)
    filled = 0
    for p in range(vbar.page_count):
        if vbar.fault(p * page, page) is None:
            break
        vbar.unpin(p * page, page, 0)
        filled += 1
    s0 = dev.stats()
    res["weight_pages"] = filled
    _check(filled > 0, "no weight page fitted")
    _check(dvt.bind_graph(g), "bind_graph failed")
    try:
        run_step(torch, g, blocks, inp, heads)
    except torch.cuda.OutOfMemoryError as e:
        raise AssertionError("OOM instead of evicting weights: %s" % e)
    torch.cuda.synchronize()
    s1 = dev.stats()
    gs = g.stats()
    res["evictions"] = s1.evictions - s0.evictions
    res["graph_bytes"] = s1.graph_bytes
    res["used_over_budget"] = s1.used - s1.budget
    _check(gs.physical_bytes > 0 and s1.graph_bytes == gs.physical_bytes,
           "graph pages not in the budget")
    _check(s1.evictions > s0.evictions, "no weight page was evicted")
    _check(s1.used <= s1.budget, "over budget")
    c0 = counters(g)
    ptrs0 = run_step(torch, g, blocks, inp, heads)[0]
    ptrs1 = run_step(torch, g, blocks, inp, heads)[0]
    torch.cuda.synchronize()
    dd = delta(c0, counters(g))
    res["replays"] = dd
    _check(ptrs0 == ptrs1 and dd["breaks"] == 0 and driver_calls(dd) == 0,
           "no clean replay under pressure: %s" % dd)
    _check(dev.stats().evictions == s1.evictions, "replays evicted more")
    dvt.unbind_graph()
    g.close()
    vbar.close()


# ---- driver ---------------------------------------------------------------------


def run_child(name, args):
    res = {"check": name, "small": args.small}
    t0 = time.time()
    try:
        globals()["check_" + name](args, res)
        res["ok"] = True
    except Exception as e:  # report, then fail the child
        res["ok"] = False
        res["error"] = "%s: %s" % (type(e).__name__, e)
        res["traceback"] = traceback.format_exc()
        print(res["traceback"], file=sys.stderr)
    res["seconds"] = time.time() - t0
    with open(os.path.join(args.out, "graph_%s.json" % name), "w") as f:
        json.dump(res, f, indent=1, default=str)
    return 0 if res["ok"] else 1


def skip_reason():
    try:
        import torch
    except Exception as e:
        return "torch is not importable (%s)" % e
    if not torch.cuda.is_available():
        return "no CUDA GPU (torch %s)" % torch.__version__
    try:
        import dynvram
    except Exception as e:
        return "dynvram is not importable (%s)" % e
    cuda = [b for b in dynvram.backends() if b["name"] == "cuda"]
    if not cuda or not cuda[0]["available"]:
        return "dynvram's CUDA backend is unavailable: %s" % (
            cuda[0]["reason"] if cuda else "not built")
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    ap.add_argument("--small", action="store_true", help="small sizes")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("checks", nargs="*", default=CHECKS)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if args.child:
        os.environ["PYTORCH_CUDA_ALLOC_CONF"] = "backend:cudaMallocAsync"
        return run_child(args.child, args)
    bad = [c for c in args.checks if c not in CHECKS]
    if bad:
        print("unknown check(s) %s; known: %s" % (bad, CHECKS))
        return 2
    # The probe runs in a child too: importing torch here would fix the
    # allocator backend before the checks choose theirs.
    probe = subprocess.run(
        [sys.executable, "-c", "import sys; sys.path[:0] = %r\n"
         "from graph_test import skip_reason\n"
         "r = skip_reason(); print(r or '')" % [os.path.dirname(
             os.path.abspath(__file__))]],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        universal_newlines=True)
    reason = probe.stdout.strip() or (
        None if probe.returncode == 0 else "probe failed: %s"
        % probe.stderr.strip().splitlines()[-1:])
    summary = {"checks": {}, "skipped": reason}
    if reason:
        print("SKIP: %s" % reason)
        with open(os.path.join(args.out, "graph_summary.json"), "w") as f:
            json.dump(summary, f, indent=1)
        return 0
    env = dict(os.environ, PYTORCH_CUDA_ALLOC_CONF="backend:cudaMallocAsync")
    passed = failed = 0
    for name in args.checks:
        cmd = [sys.executable, os.path.abspath(__file__), "--out", args.out,
               "--steps", str(args.steps), "--child", name] + \
            (["--small"] if args.small else [])
        rc = subprocess.call(cmd, env=env)
        print("%s %s" % ("PASS" if rc == 0 else "FAIL", name), flush=True)
        summary["checks"][name] = rc == 0
        passed += rc == 0
        failed += rc != 0
    with open(os.path.join(args.out, "graph_summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
