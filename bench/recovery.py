#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Watermark recovery on a GPU (issue 16): a model that fits in free VRAM is
squeezed to half by a partial unload (VBAR.evict, what ComfyUI's
free_memory does), then runs for --steps steps with the memory free again.

Reports, with recovery on and off, in one run:
  resident   median step with every weight resident (before the squeeze)
  after      per-step times after the squeeze; steady = median of the last
             half of them
  ratio      steady / resident (target <= 1.05 with recovery; the
             predecessor's sticky watermark gives about 2.3)

Model: L bf16 D x D weights in pinned host memory; step: x = x @ W_i, in
order, through the fault protocol (fault; copy when the generation changed;
stream through a temporary when offloaded; unpin on the compute stream).

    python3 bench/recovery.py --out DIR      # JSON + table; skips without a GPU
    python3 bench/recovery.py --dry-run      # host backend, small, CPU torch
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time

GIB = 1 << 30


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--dim", type=int, default=8192)
    ap.add_argument("--tokens", type=int, default=4096)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--limit-gib", type=float, default=8.0,
                    help="dynvram's VRAM limit (fits the model)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--dry-run", action="store_true",
                    help="host backend and CPU tensors, tiny sizes")
    return ap.parse_args()


def run(args, recovery, torch, dynvram, dvt, on_gpu):
    L, D, T = args.layers, args.dim, args.tokens
    wbytes = D * D * 2
    page = (32 << 20) if on_gpu else (64 << 10)
    backend = "cuda" if on_gpu else "host"
    limit = int(args.limit_gib * GIB)
    dev = dynvram.Device(backend, vram_limit=limit, page_size=page,
                         host_capacity=0 if on_gpu else 2 * limit,
                         watermark_recovery=recovery)
    vbar = dynvram.VBAR(dev, L * wbytes)
    g = torch.Generator().manual_seed(0)
    host = [(torch.randn(D, D, generator=g) / D ** 0.5).to(torch.bfloat16)
            for _ in range(L)]
    if on_gpu:
        host = [h.pin_memory() for h in host]
    tdev = torch.device("cuda" if on_gpu else "cpu")
    x0 = torch.randn(T, D, generator=g).to(torch.bfloat16).to(tdev)
    tmp = torch.empty(D, D, dtype=torch.bfloat16, device=tdev)
    saved = [None] * L
    stream = torch.cuda.current_stream().cuda_stream if on_gpu else 0

    def sync():
        if on_gpu:
            torch.cuda.synchronize()

    def step():
        x = x0
        copied = 0
        for i in range(L):
            off = i * wbytes
            gen = vbar.fault(off, wbytes)
            if gen is None:
                tmp.copy_(host[i], non_blocking=True)
                w = tmp
                copied += wbytes
            else:
                w = dvt.tensor(vbar, off, (D, D), torch.bfloat16)
                if gen != saved[i]:
                    w.copy_(host[i], non_blocking=True)
                    saved[i] = gen
                    copied += wbytes
            x = x @ w
            if gen is not None:
                vbar.unpin(off, wbytes, stream)
        return copied

    def timed(n):
        times, copies = [], []
        for _ in range(n):
            sync()
            t0 = time.perf_counter()
            copies.append(step())
            sync()
            times.append(time.perf_counter() - t0)
        return times, copies

    timed(2)  # populate and warm up
    res_times, _ = timed(max(3, args.steps // 2))
    resident = statistics.median(res_times)
    freed = vbar.evict(L * wbytes // 2)  # the partial unload
    after, copies = timed(args.steps)
    steady = statistics.median(after[len(after) // 2:])
    st = dev.stats()
    out = {
        "recovery": recovery,
        "resident_ms": round(resident * 1e3, 3),
        "after_squeeze_ms": [round(t * 1e3, 3) for t in after],
        "copied_bytes_per_step": copies,
        "steady_ms": round(steady * 1e3, 3),
        "ratio": round(steady / resident, 3),
        "freed_bytes": freed,
        "watermark_rises": st.watermark_rises,
        "resident_bytes_end": vbar.resident_bytes,
    }
    vbar.close()
    dev.close()
    return out


def main():
    args = parse_args()
    import dynvram
    import dynvram.torch as dvt
    try:
        import torch
    except ImportError:
        print("SKIP: torch is not installed")
        return 0
    on_gpu = not args.dry_run
    if on_gpu and not torch.cuda.is_available():
        print("SKIP: no CUDA GPU (use --dry-run for the host backend)")
        return 0
    if args.dry_run:
        args.layers, args.dim, args.tokens = 8, 256, 64
        args.limit_gib = 8 * 256 * 256 * 2 * 1.5 / GIB
    results = [run(args, rec, torch, dynvram, dvt, on_gpu)
               for rec in (True, False)]
    print("%-9s %12s %12s %8s %8s" % ("recovery", "resident ms", "steady ms",
                                      "ratio", "rises"))
    for r in results:
        print("%-9s %12.3f %12.3f %8.3f %8d" % (
            "on" if r["recovery"] else "off", r["resident_ms"], r["steady_ms"],
            r["ratio"], r["watermark_rises"]))
    on = results[0]
    verdict = "PASS" if on["ratio"] <= 1.05 else "MISS"
    print("%s: steady / resident with recovery = %.3f (target <= 1.05)"
          % (verdict, on["ratio"]))
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        doc = {"benchmark": "recovery", "date": time.strftime("%Y-%m-%d"),
               "machine": platform.node(),
               "gpu": torch.cuda.get_device_name(0) if on_gpu else "host",
               "params": vars(args), "results": results}
        with open(os.path.join(args.out, "recovery.json"), "w") as f:
            json.dump(doc, f, indent=1)
    if args.dry_run:
        # On the host backend the rule itself is checked: with recovery the
        # model is whole again, without it half stays offloaded.
        ok = (results[0]["resident_bytes_end"] == args.layers * args.dim ** 2 * 2
              and results[1]["resident_bytes_end"] < results[0]["resident_bytes_end"])
        print("dry run:", "ok" if ok else "FAILED")
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
