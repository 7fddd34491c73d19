#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""W1 of shared/spec/benchmarks.md: a stack of layers larger than the VRAM
budget, every mode in one run on one GPU.

Model: L bf16 D x D weights in pinned host memory (random, scaled by
1/sqrt(D) so activations stay finite). Step: x = x @ W_i for i in order,
x of T x D bf16. Budget for weights + activations: --budget-gib.

Modes
  resident  every weight on the GPU, no budget (the compute floor)
  naive     every weight copied to the GPU before its layer, every step,
            under the same budget (a ballast allocation takes the rest)
  prefix    hand-written best schedule without overlap: the first K
            weights resident (K = what dynvram keeps resident), the rest
            copied on the compute stream before their layer
  dynvram   the fault protocol: fault; OK -> the VBAR tensor (copy only
            when the generation changed); OFFLOADED -> stream through a
            temporary; unpin. Torch's allocations go through the
            interposer, so activations count in the budget.

Floors, measured in the same run: pinned host-to-device bandwidth (1 GiB
copy); transfer floor = bytes not resident in dynvram's steady state /
bandwidth; floor = max(resident step, transfer floor).

Writes <out>/offload_w1.json, a table on stdout and <out>/offload_w1.png
(when matplotlib is importable; else says so).

    python3 bench/offload.py --out bench/results            # T=4096
    python3 bench/offload.py --tokens 16384 --out bench/results
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
    ap = argparse.ArgumentParser(description="dynvram W1 benchmark")
    ap.add_argument("--layers", type=int, default=64)
    ap.add_argument("--dim", type=int, default=8192)
    ap.add_argument("--tokens", type=int, default=4096)
    ap.add_argument("--budget-gib", type=float, default=4.0)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--page-mib", type=int, default=32)
    ap.add_argument("--modes", default="resident,naive,prefix,dynvram")
    ap.add_argument("--out", default="bench/results")
    ap.add_argument("--small", action="store_true",
                    help="L=16, D=4096, T=1024, budget 0.25 GiB (smoke run)")
    a = ap.parse_args()
    if a.small:
        a.layers, a.dim, a.tokens, a.budget_gib = 16, 4096, 1024, 0.25
    return a


def main():
    args = parse_args()
    # The interposer must be in place before torch binds cudaMalloc.
    import dynvram
    import dynvram.torch as dvt
    interposer = dvt.install_interposer()
    import torch

    L, D, T = args.layers, args.dim, args.tokens
    budget = int(args.budget_gib * GIB)
    wbytes = D * D * 2
    dev_name = torch.cuda.get_device_name(0)
    stream = torch.cuda.current_stream()

    print("W1: L=%d D=%d T=%d, weights %.2f GiB, budget %.2f GiB, %s"
          % (L, D, T, L * wbytes / GIB, budget / GIB, dev_name), flush=True)
    g = torch.Generator().manual_seed(0)
    host = []
    for _ in range(L):
        w = (torch.randn(D, D, generator=g) / D ** 0.5).to(torch.bfloat16)
        host.append(w.pin_memory())
    x0 = torch.randn(T, D, generator=g).to(torch.bfloat16).cuda()

    # ---- transfer floor: pinned H2D bandwidth --------------------------------
    src = torch.empty(GIB, dtype=torch.uint8).pin_memory()
    dst = torch.empty(GIB, dtype=torch.uint8, device="cuda")
    dst.copy_(src, non_blocking=True)
    torch.cuda.synchronize()
    bw = []
    for _ in range(3):
        t0 = time.perf_counter()
        dst.copy_(src, non_blocking=True)
        torch.cuda.synchronize()
        bw.append(GIB / (time.perf_counter() - t0))
    bandwidth = max(bw)
    del src, dst
    torch.cuda.empty_cache()

    def used_bytes():
        free, total = torch.cuda.mem_get_info()
        return total - free

    def run_steps(step_fn):
        times, peak = [], 0
        for _ in range(args.steps):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            copied = step_fn()
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
            peak = max(peak, used_bytes())
        steady = times[2:] if len(times) > 2 else times
        return {"median_ms": round(statistics.median(steady) * 1e3, 2),
                "step_ms": [round(t * 1e3, 2) for t in times],
                "h2d_bytes_per_step": copied,
                "peak_used_bytes": peak}

    xa = torch.empty_like(x0)
    xb = torch.empty_like(x0)

    def layer(x_in, w, x_out):
        torch.matmul(x_in, w, out=x_out)
        return x_out

    results = {}
    modes = args.modes.split(",")
    act_bytes = 3 * T * D * 2

    if "resident" in modes:
        dev_w = [h.cuda() for h in host]

        def step_resident():
            x = x0
            for i in range(L):
                x = layer(x, dev_w[i], xa if i % 2 == 0 else xb)
            return 0
        results["resident"] = run_steps(step_resident)
        del dev_w
        torch.cuda.empty_cache()

    ballast = None

    def take_budget():
        # The baselines get the same budget: everything above it is ballast.
        nonlocal ballast
        # x0, xa and xb (the activations) are already allocated and count
        # against the budget.
        free, _ = torch.cuda.mem_get_info()
        extra = free - (budget - act_bytes)
        if extra > 0:
            ballast = torch.empty(extra, dtype=torch.uint8, device="cuda")

    def drop_budget():
        nonlocal ballast
        ballast = None
        torch.cuda.empty_cache()

    if "naive" in modes:
        take_budget()
        tmp = torch.empty(D, D, dtype=torch.bfloat16, device="cuda")

        def step_naive():
            x = x0
            for i in range(L):
                tmp.copy_(host[i], non_blocking=True)
                x = layer(x, tmp, xa if i % 2 == 0 else xb)
            return L * wbytes
        results["naive"] = run_steps(step_naive)
        del tmp
        drop_budget()

    dv_resident_layers = None
    if "dynvram" in modes:
        # x0, xa and xb were allocated before the interposer was attached,
        # so dynvram cannot see them: they come off its limit up front,
        # as they come off the baselines' budget (take_budget).
        dev = dynvram.Device("cuda", vram_limit=budget - act_bytes,
                             page_size=args.page_mib * MIB)
        dvt.attach_allocator(dev)
        vbar = dynvram.VBAR(dev, L * wbytes)
        vbar.prioritize()
        allocs = [vbar.alloc(wbytes, align=512) for _ in range(L)]
        views = [dvt.tensor(vbar, a.offset, (D, D), torch.bfloat16)
                 for a in allocs]
        saved = [None] * L
        tmp = torch.empty(D, D, dtype=torch.bfloat16, device="cuda")
        s_ptr = stream.cuda_stream
        fault, unpin = vbar.fault, vbar.unpin

        def step_dynvram():
            x = x0
            copied = 0
            for i in range(L):
                a = allocs[i]
                gen = fault(a.offset, wbytes)
                if gen is None:
                    tmp.copy_(host[i], non_blocking=True)
                    w = tmp
                    copied += wbytes
                else:
                    w = views[i]
                    if gen != saved[i]:
                        w.copy_(host[i], non_blocking=True)
                        saved[i] = gen
                        copied += wbytes
                x = layer(x, w, xa if i % 2 == 0 else xb)
                if gen is not None:
                    unpin(a.offset, wbytes, s_ptr)
            return copied
        r = run_steps(step_dynvram)
        st = dev.stats()
        r["resident_bytes"] = st.resident_bytes
        r["framework_bytes"] = st.framework_bytes
        r["evictions"] = st.evictions
        r["faults_offloaded"] = st.faults_offloaded
        r["interposer"] = interposer
        results["dynvram"] = r
        flags = vbar.residency()
        # Whole layers resident in the steady state (the resident prefix).
        dv_resident_layers = 0
        for a in allocs:
            first, last = a.offset // vbar.page_size, \
                (a.offset + wbytes - 1) // vbar.page_size
            if all(flags[p] & dynvram.PAGE_RESIDENT
                   for p in range(first, last + 1)):
                dv_resident_layers += 1
            else:
                break
        r["resident_layers"] = dv_resident_layers
        del views, tmp
        dynvram.interpose.detach_all()
        vbar.close()
        dev.close()
        torch.cuda.empty_cache()

    if "prefix" in modes:
        # The same resident prefix as dynvram's, capped by what fits next
        # to the activations and one streaming buffer.
        k_fit = max(0, int((budget - act_bytes) // wbytes) - 1)
        k = k_fit if dv_resident_layers is None else min(dv_resident_layers,
                                                         k_fit)
        take_budget()
        dev_w = [host[i].cuda() for i in range(k)]
        tmp = torch.empty(D, D, dtype=torch.bfloat16, device="cuda")

        def step_prefix():
            x = x0
            for i in range(L):
                if i < k:
                    w = dev_w[i]
                else:
                    tmp.copy_(host[i], non_blocking=True)
                    w = tmp
                x = layer(x, w, xa if i % 2 == 0 else xb)
            return (L - k) * wbytes
        results["prefix"] = run_steps(step_prefix)
        results["prefix"]["resident_layers"] = k
        del dev_w, tmp
        drop_budget()

    nonresident = L * wbytes
    if "dynvram" in results:
        nonresident = max(0, L * wbytes - results["dynvram"]["resident_bytes"])
    transfer_floor_ms = nonresident / bandwidth * 1e3
    floor_ms = max(results.get("resident", {}).get("median_ms", 0.0),
                   transfer_floor_ms)

    out = {
        "benchmark": "W1",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": platform.node(),
        "gpu": dev_name,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "params": {"layers": L, "dim": D, "tokens": T, "budget_bytes": budget,
                   "steps": args.steps, "page_bytes": args.page_mib * MIB},
        "pinned_h2d_bytes_per_s": round(bandwidth),
        "transfer_floor_ms": round(transfer_floor_ms, 2),
        "floor_ms": round(floor_ms, 2),
        "modes": results,
    }
    if "dynvram" in results and "naive" in results:
        out["dynvram_vs_naive"] = round(
            results["naive"]["median_ms"] / results["dynvram"]["median_ms"], 3)
    if "dynvram" in results and "prefix" in results:
        out["dynvram_vs_prefix"] = round(
            results["dynvram"]["median_ms"] / results["prefix"]["median_ms"], 3)

    print("pinned H2D %.1f GB/s; transfer floor %.1f ms; floor %.1f ms"
          % (bandwidth / 1e9, transfer_floor_ms, floor_ms))
    print("%-9s %10s %12s %12s" % ("mode", "median ms", "H2D MiB/step",
                                   "peak GiB"))
    for name, r in results.items():
        print("%-9s %10.2f %12.0f %12.2f" % (
            name, r["median_ms"], r["h2d_bytes_per_step"] / MIB,
            r["peak_used_bytes"] / GIB))
    for k in ("dynvram_vs_naive", "dynvram_vs_prefix"):
        if k in out:
            print("%s: %s" % (k, out[k]))

    os.makedirs(args.out, exist_ok=True)
    tag = "offload_w1_T%d" % T
    with open(os.path.join(args.out, tag + ".json"), "w") as f:
        json.dump(out, f, indent=2)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not available: no PNG chart")
        return 0
    names = list(results)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar(names, [results[n]["median_ms"] for n in names], color="#4477aa")
    ax.axhline(floor_ms, color="#cc3311", linestyle="--",
               label="floor %.0f ms" % floor_ms)
    ax.set_ylabel("median step time (ms)")
    ax.set_title("W1: L=%d D=%d T=%d, budget %.1f GiB, %s"
                 % (L, D, T, budget / GIB, dev_name), fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, tag + ".png"), dpi=120)
    print("chart: %s" % os.path.join(args.out, tag + ".png"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
