#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""W2 of shared/spec/benchmarks.md: two W1 models taking turns.

Two models of --layers bf16 D x D weights each (default 48 x 128 MiB =
6 GiB) under one budget (default 8 GiB): model A runs 4 steps, then B 4
steps, then A again, 3 rounds. Step: x = x @ W_i in order, T x D bf16.

Modes (each switch prioritizes the model that takes over)
  dynvram         the fault protocol (one VBAR per model)
  dynvram-stream  one dynvram Schedule per model (a model that fits holds
                  no ring)
  dynvram-norec, dynvram-stream-norec  the same with watermark recovery off
                  (not in the default list; the side-by-side check that
                  recovery never slows a steady step)
Reports per phase: the first step after the switch (ms, bytes copied) and
the steady steps (median ms, bytes per step); per switch, the bytes MIN
copies (Belady with bypass over the same sequence, with the budget less
the activations as its cache): the target is dynvram's bytes per switch <=
MIN's, and steady steps at the W1 target (<= 1.05 x the floor, here the
resident compute step, since each model fits alone).

    python3 bench/w2.py --out bench/results       # GPU; skips without one
    python3 bench/w2.py --dry-run                 # host backend, CPU, tiny
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time

GIB = 1 << 30
MIB = 1 << 20


def parse_args():
    ap = argparse.ArgumentParser(description="dynvram W2 benchmark")
    ap.add_argument("--layers", type=int, default=48)
    ap.add_argument("--dim", type=int, default=8192)
    ap.add_argument("--tokens", type=int, default=4096)
    ap.add_argument("--budget-gib", type=float, default=8.0)
    ap.add_argument("--steps", type=int, default=4, help="steps per turn")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--page-mib", type=int, default=32)
    ap.add_argument("--modes", default="dynvram,dynvram-stream")
    ap.add_argument("--out", default="bench/results")
    ap.add_argument("--dry-run", action="store_true",
                    help="host backend, CPU tensors, tiny sizes")
    a = ap.parse_args()
    if a.dry_run:
        a.layers, a.dim, a.tokens = 8, 256, 32
        a.budget_gib = (11 * 128 * 1024 + 3 * 32 * 256 * 2) / GIB
        a.page_mib = 0
    return a


def min_bytes(seq, cap):
    """Belady with bypass: copies per access (1 = copied) for a cache of
    `cap` weights; the least any policy that may stream can copy."""
    nxt, last = [0] * len(seq), {}
    for i in range(len(seq) - 1, -1, -1):
        nxt[i] = last.get(seq[i], float("inf"))
        last[seq[i]] = i
    cache, copied = {}, []
    for i, k in enumerate(seq):
        if k in cache:
            cache[k] = nxt[i]
            copied.append(0)
            continue
        copied.append(1)
        if len(cache) < cap:
            cache[k] = nxt[i]
            continue
        victim = max(cache, key=cache.get)
        if cache[victim] > nxt[i]:
            del cache[victim]
            cache[k] = nxt[i]
    return copied


def main():
    args = parse_args()
    import dynvram
    import dynvram.torch as dvt
    interposer = dvt.install_interposer() if not args.dry_run else False
    try:
        import torch
    except ImportError:
        print("SKIP: torch is not installed")
        return 0
    gpu = not args.dry_run
    if gpu and not torch.cuda.is_available():
        print("SKIP: no CUDA GPU; --dry-run runs the script on the host backend")
        return 0
    L, D, T = args.layers, args.dim, args.tokens
    wbytes = D * D * 2
    budget = int(args.budget_gib * GIB)
    tdev = torch.device("cuda" if gpu else "cpu")
    page = args.page_mib * MIB if args.page_mib else 64 << 10
    g = torch.Generator().manual_seed(0)
    host = [[(torch.randn(D, D, generator=g) / D ** 0.5).to(torch.bfloat16)
             for _ in range(L)] for _ in range(2)]
    if gpu:
        host = [[h.pin_memory() for h in m] for m in host]
    x0 = torch.randn(T, D, generator=g).to(torch.bfloat16).to(tdev)
    xa, xb = torch.empty_like(x0), torch.empty_like(x0)
    act_bytes = 3 * T * D * 2
    s_ptr = torch.cuda.current_stream().cuda_stream if gpu else 0

    def sync():
        if gpu:
            torch.cuda.synchronize()

    def out(i):
        return xa if i % 2 == 0 else xb

    def layer(x, w, i):
        torch.matmul(x, w, out=out(i))
        return out(i)

    # The compute floor: one model fully resident.
    dev_w = [h.to(tdev) for h in host[0]]
    times = []
    for _ in range(5):
        sync()
        t0 = time.perf_counter()
        x = x0
        for i in range(L):
            x = layer(x, dev_w[i], i)
        sync()
        times.append(time.perf_counter() - t0)
    resident_ms = statistics.median(times[1:]) * 1e3
    refs = []
    for m in range(2):
        w = dev_w if m == 0 else [h.to(tdev) for h in host[1]]
        x = x0
        for i in range(L):
            x = layer(x, w[i], i)
        refs.append(out(L - 1).clone())
        del w
    del dev_w
    if gpu:
        torch.cuda.empty_cache()

    turns = [m for _ in range(args.rounds) for m in (0, 1)]
    seq = [(m, i) for m in turns for _ in range(args.steps) for i in range(L)]
    cap = max(0, (budget - act_bytes) // wbytes)
    mins = min_bytes(seq, cap)
    per_step = [sum(mins[k * L:(k + 1) * L]) * wbytes
                for k in range(len(seq) // L)]
    results = {}
    for mode in args.modes.split(","):
        results[mode] = run_mode(mode, args, torch, dynvram, dvt, gpu, host,
                                 x0, layer, out, refs, turns, budget,
                                 act_bytes, page, s_ptr, sync)
    phases = []
    for p, m in enumerate(turns):
        k = p * args.steps
        row = {"model": "AB"[m], "min_first_bytes": per_step[k],
               "min_steady_bytes": per_step[k + args.steps - 1]}
        for mode, r in results.items():
            ph = r["phases"][p]
            row[mode] = ph
            if resident_ms:
                ph["steady_vs_floor"] = round(ph["steady_ms"] / resident_ms, 3)
            if per_step[k]:
                ph["first_bytes_vs_min"] = round(ph["first_bytes"] / per_step[k],
                                                 3)
        phases.append(row)
    dev_name = torch.cuda.get_device_name(0) if gpu else "host (dry run)"
    doc = {"benchmark": "W2", "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
           "machine": platform.node(), "gpu": dev_name,
           "torch": torch.__version__, "interposer": interposer,
           "params": {"layers": L, "dim": D, "tokens": T, "budget_bytes": budget,
                      "steps_per_turn": args.steps, "rounds": args.rounds,
                      "page_bytes": page},
           "resident_ms": round(resident_ms, 2), "min_cache_weights": cap,
           "phases": phases,
           "equal_resident": {m: r["equal"] for m, r in results.items()}}
    print("W2: two models of %d x %d MiB, budget %.1f GiB, T=%d, %s; floor "
          "(resident step) %.1f ms" % (L, wbytes >> 20, budget / GIB, T,
                                       dev_name, resident_ms))
    hdr = "  %-6s %12s" % ("phase", "MIN MiB")
    for mode in results:
        hdr += " | %-20s %9s %9s %8s" % (mode, "first ms", "steady", "MiB")
    print(hdr)
    for p, row in enumerate(phases):
        line = "  %-6s %12.2f" % ("%d:%s" % (p, row["model"]),
                                   row["min_first_bytes"] / MIB)
        for mode in results:
            ph = row[mode]
            line += " | %-20s %9.1f %9.1f %8.2f" % (
                "", ph["first_ms"], ph["steady_ms"], ph["first_bytes"] / MIB)
        print(line)
    ok = all(r["equal"] for r in results.values())
    if args.dry_run:
        # The rule, not the timing: after the first turn each switch copies
        # no more than MIN, and both models' outputs are right.
        for mode, r in results.items():
            for p, row in enumerate(phases[2:], start=2):
                ok = ok and row[mode]["first_bytes"] <= row["min_first_bytes"]
        print("dry run: %s" % ("ok" if ok else "FAILED"))
        return 0 if ok else 1
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "w2.json"), "w") as f:
        json.dump(doc, f, indent=2)
    chart(doc, args, results, resident_ms)
    return 0 if ok else 1


def run_mode(mode, args, torch, dynvram, dvt, gpu, host, x0, layer, out, refs,
             turns, budget, act_bytes, page, s_ptr, sync):
    L, D = args.layers, args.dim
    wbytes = D * D * 2
    recovery = not mode.endswith("-norec")
    mode = mode[:-len("-norec")] if not recovery else mode
    dev = dynvram.Device("cuda" if gpu else "host",
                         vram_limit=budget - act_bytes, page_size=page,
                         host_capacity=0 if gpu else 4 * budget,
                         watermark_recovery=recovery)
    if gpu:
        dvt.attach_allocator(dev)
    vbars = [dynvram.VBAR(dev, L * wbytes) for _ in range(2)]
    views = [[dvt.tensor(v, i * wbytes, (D, D), torch.bfloat16)
              for i in range(L)] for v in vbars]
    # The fault protocol's temporary for offloaded weights; streaming needs
    # it only if a weight comes back unstaged (not expected), so it is made
    # then, not up front (it would take a weight's worth from the plan).
    tmp = [torch.empty(D, D, dtype=torch.bfloat16, device=x0.device)
           if mode != "dynvram-stream" else None]
    scheds, rings = [None, None], [None, None]
    if mode == "dynvram-stream":
        for m in range(2):
            ranges = [(i * wbytes, wbytes, host[m][i].data_ptr())
                      for i in range(L)]
            scheds[m] = dynvram.Schedule(vbars[m], ranges, keep=host[m])
            rings[m] = torch.utils.dlpack.from_dlpack(scheds[m].ring_capsule(
                2 if gpu else 1, dev.ordinal if gpu else 0))
    saved = [[None] * L for _ in range(2)]

    def step_fault(m):
        x, copied = x0, 0
        v = vbars[m]
        for i in range(L):
            gen = v.fault(i * wbytes, wbytes)
            if gen is None:
                tmp[0].copy_(host[m][i], non_blocking=True)
                w, copied = tmp[0], copied + wbytes
            else:
                w = views[m][i]
                if gen != saved[m][i]:
                    w.copy_(host[m][i], non_blocking=True)
                    saved[m][i] = gen
                    copied += wbytes
            x = layer(x, w, i)
            if gen is not None:
                v.unpin(i * wbytes, wbytes, s_ptr)
        return copied

    def step_stream(m):
        s, x = scheds[m], x0
        before = s.info().copied_bytes
        base, rbase, stride = vbars[m].base, s.ring_base, s.info().slot_stride
        for i in range(L):
            addr = s.acquire(i, s_ptr)
            if addr is None:
                if tmp[0] is None:
                    tmp[0] = torch.empty(D, D, dtype=torch.bfloat16,
                                         device=x0.device)
                tmp[0].copy_(host[m][i], non_blocking=True)
                w = tmp[0]
            elif rbase <= addr < rbase + s.ring_bytes:
                off = addr - rbase
                w = rings[m][off:off + wbytes].view(torch.bfloat16).view(D, D)
            else:
                w = views[m][(addr - base) // wbytes]
            x = layer(x, w, i)
            if addr is not None:
                s.release(i, s_ptr)
        return s.info().copied_bytes - before

    step = step_stream if scheds[0] is not None else step_fault
    phases, equal = [], True
    for m in turns:
        vbars[m].prioritize()
        times, copied = [], []
        for _ in range(args.steps):
            sync()
            t0 = time.perf_counter()
            copied.append(step(m))
            sync()
            times.append(time.perf_counter() - t0)
        equal = equal and bool(torch.equal(out(L - 1), refs[m]))
        steady = times[1:] if len(times) > 1 else times
        phases.append({"first_ms": round(times[0] * 1e3, 2),
                       "steady_ms": round(statistics.median(steady) * 1e3, 2),
                       "first_bytes": copied[0],
                       "steady_bytes": copied[-1]})
    st = dev.stats()
    del views, rings, tmp
    if gpu:
        dynvram.interpose.detach_all()
    for s in scheds:
        if s is not None:
            s.close()
    for v in vbars:
        v.close()
    dev.close()
    if gpu:
        torch.cuda.empty_cache()
    return {"phases": phases, "equal": equal, "evictions": st.evictions,
            "ring_bytes_at_end": st.ring_bytes}


def chart(doc, args, results, floor_ms):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not available: no PNG chart")
        return
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    xs = range(len(doc["phases"]))
    for mode in results:
        a1.plot(xs, [p[mode]["first_ms"] for p in doc["phases"]], "o-",
                label=mode + " first")
        a1.plot(xs, [p[mode]["steady_ms"] for p in doc["phases"]], "s--",
                label=mode + " steady")
        a2.plot(xs, [p[mode]["first_bytes"] / GIB for p in doc["phases"]],
                "o-", label=mode)
    a1.axhline(floor_ms, color="#cc3311", linestyle=":", label="floor")
    a2.plot(xs, [p["min_first_bytes"] / GIB for p in doc["phases"]], "k:",
            label="MIN")
    a1.set_ylabel("ms per step")
    a2.set_ylabel("GiB copied in the first step after a switch")
    for a in (a1, a2):
        a.set_xlabel("turn")
        a.legend(fontsize=7)
    fig.suptitle("W2: two models of %.1f GiB, budget %.1f GiB, %s" % (
        args.layers * args.dim * args.dim * 2 / GIB, args.budget_gib,
        doc["gpu"]), fontsize=9)
    fig.tight_layout()
    path = os.path.join(args.out, "w2.png")
    fig.savefig(path, dpi=120)
    print("chart: %s" % path)


if __name__ == "__main__":
    sys.exit(main())
