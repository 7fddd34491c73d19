#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""GPU checks of dynvram.torch (needs a CUDA GPU and PyTorch; run by
tests/gpu/torch_run.sh, which builds the package first).

Each check runs in its own process, because the interposer must be loaded
before torch is imported and a check must not inherit another's CUDA state:

  views      tensor() over a VBAR: dtypes and shapes, writable, right
             device, DLPack and __cuda_array_interface__ routes agree.
  offload    offload() of a stack of nn.Linear layers (~8 GiB bf16) under a
             4 GiB limit, with the interposer: outputs equal the resident
             run, step after step; bytes copied and streamed per step.
  pressure   with the interposer: torch allocations that grow past the
             limit evict weight pages instead of raising out-of-memory; once
             released, the weights come back with a new generation and are
             copied again (content checked).
  pluggable  the CUDAPluggableAllocator route: torch allocations counted in
             the budget and evicting weights.

Usage: torch_test.py [--out DIR] [--small] [check ...]   (default: all)
Writes DIR/torch_<check>.json and prints 'N passed, N failed'.
"""
import argparse
import json
import os
import subprocess
import sys
import time
import traceback

GIB = 1 << 30
MIB = 1 << 20
CHECKS = ["views", "offload", "pressure", "pluggable"]


def _check(cond, msg):
    if not cond:
        raise AssertionError(msg)


# ---- checks (each runs in a child process) -----------------------------------


def check_views(args, res):
    import torch

    import dynvram
    import dynvram.torch as dvt

    dev = dynvram.Device("cuda", page_size=32 * MIB)
    vbar = dynvram.VBAR(dev, 256 * MIB)
    gen = vbar.fault(0, 64 * MIB)
    _check(gen is not None, "fault of 64 MiB offloaded")
    for dtype, shape in ((torch.bfloat16, (1024, 1024)),
                         (torch.float32, (3, 5, 7)),
                         (torch.int8, (4096,)),
                         (torch.float16, (8, 8192))):
        t = dvt.tensor(vbar, 4 * MIB, shape, dtype)
        _check(t.is_cuda and t.device.index == dev.ordinal, "wrong device")
        _check(tuple(t.shape) == shape and t.dtype == dtype, "shape/dtype")
        src = torch.randn(shape, device="cuda").to(dtype) \
            if dtype.is_floating_point else \
            torch.randint(-100, 100, shape, device="cuda", dtype=dtype)
        t.copy_(src)  # writable
        again = dvt.tensor(vbar, 4 * MIB, shape, dtype)
        _check(torch.equal(again, src), "view does not see the write")
        cai = dvt.tensor(vbar, 4 * MIB, shape, dtype, via="cai")
        _check(torch.equal(cai, src), "CAI view differs from DLPack view")
        torch.cuda.synchronize()
        # The bytes are in the VBAR: read them with the library's own copy.
        host = torch.empty_like(src, device="cpu")
        dev.copy_d2h(host.data_ptr(), vbar.base + 4 * MIB,
                     host.numel() * host.element_size(), 0)
        dev.stream_synchronize(0)
        _check(torch.equal(host, src.cpu()), "copy_d2h disagrees")
    vbar.unpin(0, 64 * MIB, torch.cuda.current_stream().cuda_stream)
    torch.cuda.synchronize()
    res["dtypes_checked"] = 4
    vbar.close()
    dev.close()


def _make_stack(torch, layers, d, seed=0):
    g = torch.Generator().manual_seed(seed)
    mods = []
    for _ in range(layers):
        lin = torch.nn.Linear(d, d, bias=False, dtype=torch.bfloat16)
        with torch.no_grad():
            w = torch.randn(d, d, generator=g, dtype=torch.float32)
            lin.weight.copy_((w / d ** 0.5).to(torch.bfloat16))
        mods.append(lin)
    return torch.nn.Sequential(*mods)


def check_offload(args, res):
    import dynvram.torch as dvt
    active = dvt.install_interposer()
    import torch

    layers, d, tokens = (64, 8192, 4096) if not args.small else (16, 4096, 1024)
    limit = 4 * GIB if not args.small else 256 * MIB
    model = _make_stack(torch, layers, d)
    x = torch.randn(tokens, d, generator=torch.Generator().manual_seed(1)) \
        .to(torch.bfloat16).cuda()
    # Resident reference on the GPU.
    with torch.no_grad():
        model.cuda()
        ref = model(x).clone()
        model.cpu()
    torch.cuda.synchronize()
    torch.cuda.empty_cache()

    off = dvt.offload(model, device="cuda:0", vram_limit=limit)
    res["interposer_active"] = active
    res["weights_bytes"] = off.vbar.size
    res["limit_bytes"] = limit
    steps = []
    with torch.inference_mode():
        for step in range(4):
            before = dict(off.stats())
            t0 = time.perf_counter()
            y = model(x)
            torch.cuda.synchronize()
            dt = time.perf_counter() - t0
            after = off.stats()
            equal = bool(torch.equal(y, ref))
            steps.append({
                "step": step, "seconds": round(dt, 4), "equal": equal,
                "copied_bytes": after["copied_bytes"] - before["copied_bytes"],
                "streamed_bytes": after["streamed_bytes"]
                - before["streamed_bytes"],
                "resident_bytes": after["resident_bytes"],
                "framework_bytes": after["framework_bytes"],
                "evictions": after["evictions"],
            })
            _check(equal, "step %d: output differs from the resident run"
                   % step)
    res["steps"] = steps
    res["peak_torch_allocated"] = torch.cuda.max_memory_allocated()
    last = steps[-1]
    _check(last["streamed_bytes"] > 0, "nothing streamed under the limit")
    _check(last["resident_bytes"] > 0, "nothing resident")
    _check(last["copied_bytes"] < off.vbar.size // 4,
           "steady state still copies most weights into the VBAR")
    off.remove()


def check_pressure(args, res):
    import dynvram
    import dynvram.torch as dvt
    active = dvt.install_interposer()
    import torch

    _check(active, "interposer not active (torch bound cudaMalloc elsewhere)")
    limit = 4 * GIB if not args.small else 512 * MIB
    weights = 3 * GIB if not args.small else 384 * MIB
    page = 32 * MIB
    dev = dynvram.Device("cuda", vram_limit=limit, page_size=page)
    _check(dvt.attach_allocator(dev), "attach failed")
    torch.cuda.init()
    vbar = dynvram.VBAR(dev, weights)
    n = vbar.page_count
    pattern = []
    gens = []
    for p in range(n):
        g = vbar.fault(p * page, page)
        _check(g is not None, "page %d offloaded while filling" % p)
        t = dvt.tensor(vbar, p * page, page // 4, torch.float32)
        t.fill_(float(p) + 0.5)
        pattern.append(float(p) + 0.5)
        gens.append(g)
        vbar.unpin(p * page, page, torch.cuda.current_stream().cuda_stream)
    torch.cuda.synchronize()
    s0 = dev.stats()
    res["resident_before"] = s0.resident_bytes

    # Grow torch allocations past what the budget has left.
    grow = limit - weights // 2
    blocks = []
    chunk = 256 * MIB if not args.small else 32 * MIB
    allocated = 0
    try:
        while allocated < grow:
            blocks.append(torch.empty(chunk, dtype=torch.uint8, device="cuda"))
            allocated += chunk
    except torch.cuda.OutOfMemoryError as e:
        raise AssertionError("torch OOM after %d MiB: %s"
                             % (allocated // MIB, e))
    s1 = dev.stats()
    res["torch_allocated"] = allocated
    res["framework_bytes_during"] = s1.framework_bytes
    res["evictions_during"] = s1.evictions - s0.evictions
    res["resident_during"] = s1.resident_bytes
    _check(s1.evictions > s0.evictions, "no weight page was evicted")
    _check(s1.framework_bytes >= allocated, "torch bytes not counted")
    _check(s1.resident_bytes + s1.framework_bytes <= limit, "over budget")
    ip = dynvram.interpose.stats(0)
    res["interposer"] = ip

    del blocks
    torch.cuda.empty_cache()
    s2 = dev.stats()
    res["framework_bytes_after"] = s2.framework_bytes
    _check(s2.framework_bytes < s1.framework_bytes, "release not counted")

    vbar.prioritize()
    recopied = 0
    for p in range(n):
        g = vbar.fault(p * page, page)
        _check(g is not None, "page %d not back after release" % p)
        t = dvt.tensor(vbar, p * page, page // 4, torch.float32)
        if g != gens[p]:
            t.fill_(pattern[p])  # content lost: copy again
            recopied += 1
        else:
            _check(float(t[0].item()) == pattern[p] and
                   float(t[-1].item()) == pattern[p],
                   "page %d kept its generation but lost its content" % p)
        vbar.unpin(p * page, page, torch.cuda.current_stream().cuda_stream)
    torch.cuda.synchronize()
    res["pages_recopied"] = recopied
    _check(recopied > 0,
           "evicted pages came back with an unchanged generation")
    dynvram.interpose.detach_all()
    vbar.close()
    dev.close()


def check_pluggable(args, res):
    import torch

    import dynvram
    import dynvram.torch as dvt

    alloc = dvt.pluggable_allocator()
    torch.cuda.memory.change_current_allocator(alloc)
    limit = 1 * GIB
    page = 32 * MIB
    dev = dynvram.Device("cuda", vram_limit=limit, page_size=page)
    dvt.attach_allocator(dev)
    vbar = dynvram.VBAR(dev, limit)
    for p in range(vbar.page_count):
        if vbar.fault(p * page, page) is None:
            break
        vbar.unpin(p * page, page, 0)
    torch.cuda.synchronize()
    s0 = dev.stats()
    t = torch.empty(512 * MIB, dtype=torch.uint8, device="cuda")
    t.fill_(7)
    torch.cuda.synchronize()
    s1 = dev.stats()
    res["framework_bytes"] = s1.framework_bytes
    res["evictions"] = s1.evictions - s0.evictions
    _check(s1.framework_bytes >= 512 * MIB, "pluggable allocation not counted")
    _check(s1.evictions > s0.evictions, "pluggable allocation did not evict")
    del t
    torch.cuda.synchronize()
    dynvram.interpose.detach_all()
    vbar.close()
    dev.close()


# ---- driver ---------------------------------------------------------------------


def run_child(name, args):
    res = {"check": name, "ok": False}
    t0 = time.time()
    try:
        globals()["check_" + name](args, res)
        res["ok"] = True
    except Exception as e:  # report, never hide
        res["error"] = "%s: %s" % (type(e).__name__, e)
        res["traceback"] = traceback.format_exc()
    res["seconds"] = round(time.time() - t0, 2)
    with open(os.path.join(args.out, "torch_%s.json" % name), "w") as f:
        json.dump(res, f, indent=2, default=str)
    print(json.dumps({k: v for k, v in res.items() if k != "traceback"},
                     default=str))
    if not res["ok"]:
        print(res.get("traceback", ""), file=sys.stderr)
    return 0 if res["ok"] else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    ap.add_argument("--small", action="store_true",
                    help="small sizes (smoke run on any GPU)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("checks", nargs="*", default=CHECKS)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if args.child:
        return run_child(args.child, args)
    passed = failed = 0
    for name in args.checks:
        if name not in CHECKS:
            print("unknown check %r" % name)
            return 2
        cmd = [sys.executable, os.path.abspath(__file__), "--out", args.out,
               "--child", name] + (["--small"] if args.small else [])
        rc = subprocess.call(cmd)
        print("%s %s" % ("PASS" if rc == 0 else "FAIL", name), flush=True)
        passed += rc == 0
        failed += rc != 0
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
