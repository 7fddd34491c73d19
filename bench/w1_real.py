#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""W1-real of shared/spec/benchmarks.md: a real architecture.

A transformers LlamaForCausalLM built from a config with random weights (no
download): 16 layers, hidden 4096, intermediate 14336, 32 heads, 8 KV
heads, vocabulary 32000, bf16, about 7 GiB; one forward of 2048 tokens
without cache; dynvram limited to 3 GiB. Untied, then with
tie_word_embeddings=True (one Parameter in embed_tokens and lm_head).

Modes
  resident          the model on the GPU (the compute floor, the reference
                    logits)
  dynvram-stream    dynvram.torch.offload(model, vram_limit=3 GiB): learns
                    on the first forward, then streams with prefetch
  dynvram-fault     the same with stream=False (the fault protocol)
  accelerate        accelerate.cpu_offload (what users would pick instead)
Logits are compared with the resident run's (equal bits, and the largest
difference). Floor: resident capacity = the limit less the activations
(the resident run's peak less the weights) less the ring; transfer floor =
(model bytes - resident capacity) / pinned H2D bandwidth; floor =
max(resident, transfer floor). Target: dynvram-stream <= 1.1 x floor.

transformers and accelerate are imported only when needed: without them
(or without a GPU) the script says what it skips and exits 0.

    python3 bench/w1_real.py --out bench/results
    python3 bench/w1_real.py --dry-run   # a small Llama-like torch model on
                                         # the host backend (no transformers)
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
    ap = argparse.ArgumentParser(description="dynvram W1-real benchmark")
    ap.add_argument("--layers", type=int, default=16)
    ap.add_argument("--tokens", type=int, default=2048)
    ap.add_argument("--limit-gib", type=float, default=3.0)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--modes", default="resident,dynvram-stream,dynvram-fault,"
                                      "accelerate")
    ap.add_argument("--tied", default="0,1", help="variants: 0 untied, 1 tied")
    ap.add_argument("--out", default="bench/results")
    ap.add_argument("--dry-run", action="store_true",
                    help="a small Llama-like model on the host backend")
    return ap.parse_args()


def tiny_llama(torch, tied, layers=4, dim=128, ffn=352, vocab=512, heads=4):
    """A Llama-shaped stand-in for the dry run: embedding, pre-norm blocks
    (attention with RMSNorm, SiLU-gated MLP), final norm, head (tied or
    not), rotary tables as a buffer."""
    nn = torch.nn

    class RMSNorm(nn.Module):
        def __init__(self, d):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(d))

        def forward(self, x):
            v = x.pow(2).mean(-1, keepdim=True)
            return x * torch.rsqrt(v + 1e-6) * self.weight

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.n1, self.n2 = RMSNorm(dim), RMSNorm(dim)
            self.q = nn.Linear(dim, dim, bias=False)
            self.k = nn.Linear(dim, dim, bias=False)
            self.v = nn.Linear(dim, dim, bias=False)
            self.o = nn.Linear(dim, dim, bias=False)
            self.gate = nn.Linear(dim, ffn, bias=False)
            self.up = nn.Linear(dim, ffn, bias=False)
            self.down = nn.Linear(ffn, dim, bias=False)

        def forward(self, x, rot):
            h = self.n1(x)
            b, t, _ = h.shape
            q = (self.q(h) * rot).view(b, t, heads, -1).transpose(1, 2)
            k = (self.k(h) * rot).view(b, t, heads, -1).transpose(1, 2)
            v = self.v(h).view(b, t, heads, -1).transpose(1, 2)
            a = torch.softmax(q @ k.transpose(-1, -2) / (q.shape[-1] ** 0.5)
                              + torch.triu(torch.full((t, t), -1e9), 1), -1)
            x = x + self.o((a @ v).transpose(1, 2).reshape(b, t, -1))
            h = self.n2(x)
            return x + self.down(torch.nn.functional.silu(self.gate(h)) *
                                 self.up(h))

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(vocab, dim)
            self.layers = nn.ModuleList([Block() for _ in range(layers)])
            self.norm = RMSNorm(dim)
            self.lm_head = nn.Linear(dim, vocab, bias=False)
            if tied:
                self.lm_head.weight = self.embed.weight
            self.register_buffer("rot", torch.cos(torch.arange(dim) * 0.01))

        def forward(self, input_ids):
            x = self.embed(input_ids)
            for blk in self.layers:
                x = blk(x, self.rot)
            return self.lm_head(self.norm(x))

    g = torch.Generator().manual_seed(0)
    m = Model()
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    return m.eval()


def build_llama(torch, args, tied):
    from transformers import LlamaConfig, LlamaForCausalLM
    cfg = LlamaConfig(vocab_size=32000, hidden_size=4096,
                      intermediate_size=14336, num_hidden_layers=args.layers,
                      num_attention_heads=32, num_key_value_heads=8,
                      max_position_embeddings=4096,
                      tie_word_embeddings=bool(tied))
    torch.manual_seed(0)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device("cuda"):
            model = LlamaForCausalLM(cfg)
    finally:
        torch.set_default_dtype(old)
    return model.eval()


def bandwidth(torch):
    src = torch.empty(GIB, dtype=torch.uint8).pin_memory()
    dst = torch.empty(GIB, dtype=torch.uint8, device="cuda")
    dst.copy_(src, non_blocking=True)
    torch.cuda.synchronize()
    best = 0
    for _ in range(3):
        t0 = time.perf_counter()
        dst.copy_(src, non_blocking=True)
        torch.cuda.synchronize()
        best = max(best, GIB / (time.perf_counter() - t0))
    del src, dst
    torch.cuda.empty_cache()
    return best


def timed(torch, gpu, fn, iters):
    times, out = [], None
    for _ in range(iters):
        if gpu:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.no_grad():
            out = fn()
        if gpu:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3, [round(t * 1e3, 2) for t in times], out


def compare(torch, out, ref):
    out = out.float().cpu()
    return {"equal_logits": bool(torch.equal(out, ref)),
            "max_abs_diff": float((out - ref).abs().max())}


def run_variant(args, torch, dynvram, dvt, gpu, tied, bw):
    modes = args.modes.split(",")
    if gpu:
        model = build_llama(torch, args, tied)
        ids = torch.randint(0, 32000, (1, args.tokens), device="cuda",
                            generator=torch.Generator("cuda").manual_seed(1))

        def fwd():
            return model(input_ids=ids, use_cache=False).logits
    else:
        model = tiny_llama(torch, tied)
        ids = torch.randint(0, 512, (1, 24),
                            generator=torch.Generator().manual_seed(1))

        def fwd():
            return model(ids)
    model_bytes = sum(p.numel() * p.element_size()
                      for p in {id(p): p for p in model.parameters()}.values())
    res, info = {}, {"tied": bool(tied), "model_bytes": model_bytes}
    # resident: the reference (the dry run's "device" is the CPU)
    if gpu:
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        base_reserved = torch.cuda.memory_reserved()
    ms, steps, out = timed(torch, gpu, fwd, args.iters + 1)
    ref = out.float().cpu()
    res["resident"] = {"median_ms": round(ms, 2), "step_ms": steps}
    act = (torch.cuda.max_memory_allocated() - base) if gpu else 0
    info["activation_bytes"] = act
    # What torch's allocator held from the driver for them (its cache and
    # rounding included): what dynvram's interposer sees and charges to the
    # budget. Reported beside the spec's floor, which uses the allocated
    # peak above (the stricter of the two).
    info["activation_reserved_bytes"] = (
        torch.cuda.max_memory_reserved() - base_reserved) if gpu else 0
    if gpu:
        model.to("cpu")
        del out
        torch.cuda.empty_cache()
    limit = int(args.limit_gib * GIB) if gpu else 3 * model_bytes // 4
    for mode, stream in (("dynvram-stream", True), ("dynvram-fault", False)):
        if mode not in modes:
            continue
        kw = {"vram_limit": limit, "stream": stream}
        if not gpu:
            kw = {"stream": stream, "dv_device": dynvram.Device(
                "host", page_size=16 << 10, vram_limit=limit)}
        off = dvt.offload(model, **kw)
        t0 = time.perf_counter()
        with torch.no_grad():
            fwd()  # learns
        learn_ms = (time.perf_counter() - t0) * 1e3
        # Two warm-up forwards: the first plan learns the activations' peak
        # (the interposer counts torch's memory) and settles.
        timed(torch, gpu, fwd, 2)
        ms, steps, out = timed(torch, gpu, fwd, args.iters)
        r = {"median_ms": round(ms, 2), "step_ms": steps,
             "learn_ms": round(learn_ms, 1)}
        r.update(compare(torch, out, ref))
        st = off.stats()
        sched = st.get("schedule")
        r.update(calls=st["calls"], uses=st["uses"],
                 ring_bytes=st["ring_bytes"],
                 framework_bytes=st["framework_bytes"],
                 offloaded_through_staging=st["streamed"])
        if sched:
            r["schedule"] = {k: sched[k] for k in (
                "slot_size", "planned_bytes", "planned_ranges", "ranges",
                "capacity_bytes", "streamed", "refills", "copied_bytes",
                "host_waits", "offloaded", "replans")}
            info["ring_bytes"] = 2 * sched["slot_stride"]
        del out
        off.remove()
        res[mode] = r
        if gpu:
            torch.cuda.empty_cache()
    if "accelerate" in modes and gpu:
        try:
            from accelerate import cpu_offload
            from accelerate.hooks import remove_hook_from_submodules
        except ImportError:
            res["accelerate"] = {"skipped": "accelerate is not installed"}
        else:
            cpu_offload(model, execution_device=torch.device("cuda:0"))
            timed(torch, gpu, fwd, 1)
            ms, steps, out = timed(torch, gpu, fwd, max(2, args.iters // 2))
            r = {"median_ms": round(ms, 2), "step_ms": steps}
            r.update(compare(torch, out, ref))
            res["accelerate"] = r
            del out
            remove_hook_from_submodules(model)
    ring = info.get("ring_bytes", 0)
    capacity = max(0, limit - act - ring)
    transfer = max(0, model_bytes - capacity) / bw * 1e3
    floor = max(res["resident"]["median_ms"], transfer)
    for r in res.values():
        if "median_ms" in r and floor:
            r["vs_floor"] = round(r["median_ms"] / floor, 3)
    cap_res = max(0, limit - info["activation_reserved_bytes"] - ring)
    transfer_res = max(0, model_bytes - cap_res) / bw * 1e3
    info.update(limit_bytes=limit, resident_capacity_bytes=capacity,
                transfer_floor_ms=round(transfer, 2), floor_ms=round(floor, 2),
                transfer_floor_reserved_ms=round(transfer_res, 2),
                modes=res)
    del model
    if gpu:
        torch.cuda.empty_cache()
    return info


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
    if gpu:
        if not torch.cuda.is_available():
            print("SKIP: no CUDA GPU; --dry-run runs a small model on the "
                  "host backend")
            return 0
        try:
            import transformers  # noqa: F401
        except ImportError:
            print("SKIP: transformers is not installed")
            return 0
    bw = bandwidth(torch) if gpu else 1e9
    name = torch.cuda.get_device_name(0) if gpu else "host (dry run)"
    doc = {"benchmark": "W1-real", "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
           "machine": platform.node(), "gpu": name, "torch": torch.__version__,
           "interposer": interposer, "pinned_h2d_bytes_per_s": round(bw),
           "params": {"layers": args.layers, "tokens": args.tokens,
                      "limit_gib": args.limit_gib}, "variants": []}
    if gpu:
        import transformers
        doc["transformers"] = transformers.__version__
    ok = True
    for tied in (int(t) for t in args.tied.split(",")):
        v = run_variant(args, torch, dynvram, dvt, gpu, tied, bw)
        doc["variants"].append(v)
        print("W1-real %s (%.2f GiB, limit %.1f GiB, %s): floor %.1f ms "
              "(transfer %.1f ms)" % ("tied" if tied else "untied",
                                      v["model_bytes"] / GIB,
                                      v["limit_bytes"] / GIB, name,
                                      v["floor_ms"], v["transfer_floor_ms"]))
        print("  %-15s %10s %9s %7s %12s" % ("mode", "median ms", "x floor",
                                             "equal", "max |diff|"))
        for mode, r in v["modes"].items():
            if "skipped" in r:
                print("  %-15s skipped: %s" % (mode, r["skipped"]))
                continue
            print("  %-15s %10.2f %9s %7s %12s" % (
                mode, r["median_ms"], r.get("vs_floor", "-"),
                r.get("equal_logits", ""), r.get("max_abs_diff", "")))
            ok = ok and r.get("equal_logits", True)
        st = v["modes"].get("dynvram-stream", {}).get("schedule")
        if st:
            print("  dynvram-stream: %d of %d ranges resident, %d streamed "
                  "uses, %.0f MiB copied, %d host waits" % (
                      st["planned_ranges"], st["ranges"], st["streamed"],
                      st["copied_bytes"] / MIB, st["host_waits"]))
            if args.dry_run:
                # Under 3/4 of the model's size something must stream.
                ok = ok and st["streamed"] > 0 and st["offloaded"] == 0
    if args.dry_run:
        print("dry run: %s" % ("ok" if ok else "FAILED"))
        return 0 if ok else 1
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "w1_real.json"), "w") as f:
        json.dump(doc, f, indent=2)
    chart(doc, args)
    return 0


def chart(doc, args):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not available: no PNG chart")
        return
    fig, axes = plt.subplots(1, len(doc["variants"]), figsize=(10, 4),
                             squeeze=False)
    for ax, v in zip(axes[0], doc["variants"]):
        names = [m for m, r in v["modes"].items() if "median_ms" in r]
        ax.bar(names, [v["modes"][m]["median_ms"] for m in names],
               color="#4477aa")
        ax.axhline(v["floor_ms"], color="#cc3311", linestyle="--",
                   label="floor %.0f ms" % v["floor_ms"])
        ax.set_yscale("log")
        ax.set_title("%s" % ("tied" if v["tied"] else "untied"), fontsize=9)
        ax.tick_params(axis="x", labelsize=7, rotation=20)
        ax.legend(fontsize=7)
    fig.suptitle("W1-real: Llama %d layers, %d tokens, %.0f GiB limit, %s" % (
        args.layers, args.tokens, args.limit_gib, doc["gpu"]), fontsize=9)
    fig.tight_layout()
    path = os.path.join(args.out, "w1_real.png")
    fig.savefig(path, dpi=120)
    print("chart: %s" % path)


if __name__ == "__main__":
    sys.exit(main())
