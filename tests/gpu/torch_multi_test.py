#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Two GPUs, one process: torch allocations on one GPU evict only that GPU's
weights (issue 6). Run by tests/gpu/multi_run.sh on a machine with two
GPUs, with the dynvram package on PYTHONPATH.

Setup: the CUDA allocation interposer is loaded before torch; two dynvram
devices (cuda:0 and cuda:1), each under its own vram_limit, each attached
to the interposer for its own ordinal, each with a VBAR of weights filled
with resident pages (a known value per page).

Phase "gpu1": torch tensors on cuda:1 grow past what device 1's budget has
left. Device 1 must evict weight pages and count torch's bytes; device 0's
stats, residency, generations and page contents must be exactly as before,
and the interposer must have seen no allocation for ordinal 0. Then the
tensors are freed (empty_cache) and device 1's framework bytes go back.
Phase "gpu0": the same the other way round.

Prints one JSON line per phase and a last line
  PASS torch_multi: ...   (exit 0)
  FAIL torch_multi: ...   (exit 1)
  SKIP torch_multi: ...   (exit 0: torch missing, or fewer than 2 GPUs)
Usage: torch_multi_test.py [--limit-gib N] [--weights-gib N] [--json PATH]
DYNVRAM_MULTI_BACKEND (default cuda) opens another backend: "host" with a
stand-in torch module is how the script itself was dry-run without a GPU.
"""
import argparse
import importlib.util
import json
import os
import sys
import traceback

MIB = 1 << 20
GIB = 1 << 30


def say(status, msg):
    print("%s torch_multi: %s" % (status, msg), flush=True)


class Failure(AssertionError):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def stats_dict(dev):
    return dict(vars(dev.stats()))


def snapshot(dev, vbar):
    return {"stats": stats_dict(dev), "residency": vbar.residency(),
            "generations": vbar.generations(), "info": vbar.info()}


def diff(before, after):
    """Names of what changed between two snapshots (empty: identical)."""
    out = []
    for key in ("residency", "generations", "info"):
        if before[key] != after[key]:
            out.append(key)
    for k, v in before["stats"].items():
        if after["stats"].get(k) != v:
            out.append("stats.%s %s -> %s" % (k, v, after["stats"].get(k)))
    return out


def page_value(k, p):
    return float(1000 * (k + 1) + p) + 0.5


def fill(torch, dvt, vbar, k):
    """Fault every page of `vbar` (on cuda:k), write its value, unpin."""
    page = vbar.page_size
    stream = torch.cuda.current_stream(k).cuda_stream
    for p in range(vbar.page_count):
        g = vbar.fault(p * page, page)
        check(g is not None, "cuda:%d page %d offloaded while filling" % (k, p))
        t = dvt.tensor(vbar, p * page, page // 4, torch.float32)
        check(t.device.index == k, "view of a cuda:%d VBAR on %s" % (k, t.device))
        t.fill_(page_value(k, p))
        vbar.unpin(p * page, page, stream)
    torch.cuda.synchronize(k)


def check_contents(torch, dvt, vbar, k):
    """Every resident page of `vbar` still holds its value (a resident
    fault is a hit: it changes only the faults_hit counter)."""
    page = vbar.page_size
    stream = torch.cuda.current_stream(k).cuda_stream
    flags = vbar.residency()
    checked = 0
    for p in range(vbar.page_count):
        if not flags[p] & 1:
            continue
        g = vbar.fault(p * page, page)
        check(g is not None, "cuda:%d resident page %d offloaded" % (k, p))
        t = dvt.tensor(vbar, p * page, page // 4, torch.float32)
        first, last = float(t[0].item()), float(t[-1].item())
        vbar.unpin(p * page, page, stream)
        check(first == page_value(k, p) and last == page_value(k, p),
              "cuda:%d page %d holds %s..%s, expected %s"
              % (k, p, first, last, page_value(k, p)))
        checked += 1
    torch.cuda.synchronize(k)
    return checked


def pressure(torch, dvt, interpose, devs, vbars, busy, limit, weights):
    """Grow torch allocations on cuda:`busy` past its budget; the other
    device must not notice. Returns the phase's record."""
    quiet = 1 - busy
    rec = {"phase": "gpu%d" % busy}
    q_before = snapshot(devs[quiet], vbars[quiet])
    b_before = stats_dict(devs[busy])
    ip_before = [interpose.stats(0), interpose.stats(1)]
    grow = limit - weights // 2  # the budget has limit - weights left
    chunk = 256 * MIB
    blocks = []
    try:
        with torch.cuda.device(busy):
            while len(blocks) * chunk < grow:
                blocks.append(torch.empty(chunk, dtype=torch.uint8,
                                          device="cuda:%d" % busy))
                blocks[-1].fill_(busy + 1)
        torch.cuda.synchronize(busy)
    except torch.cuda.OutOfMemoryError as e:
        raise Failure("torch OOM on cuda:%d after %d MiB: %s"
                      % (busy, len(blocks) * chunk // MIB, e))
    allocated = len(blocks) * chunk
    b_during = stats_dict(devs[busy])
    q_during = snapshot(devs[quiet], vbars[quiet])
    ip_during = [interpose.stats(0), interpose.stats(1)]
    rec.update({
        "torch_allocated": allocated,
        "busy_evictions": b_during["evictions"] - b_before["evictions"],
        "busy_resident_before": b_before["resident_bytes"],
        "busy_resident_during": b_during["resident_bytes"],
        "busy_framework_during": b_during["framework_bytes"],
        "quiet_changes": diff(q_before, q_during),
        "interposer_allocs": [ip_during[i]["allocs"] - ip_before[i]["allocs"]
                              for i in (0, 1)],
    })
    check(rec["busy_evictions"] > 0,
          "cuda:%d: no weight page evicted by %d MiB of torch allocations"
          % (busy, allocated // MIB))
    check(b_during["resident_bytes"] < b_before["resident_bytes"],
          "cuda:%d: its VBAR lost no pages" % busy)
    check(b_during["framework_bytes"] >= allocated,
          "cuda:%d: torch bytes not counted (%d < %d)"
          % (busy, b_during["framework_bytes"], allocated))
    check(b_during["resident_bytes"] + b_during["framework_bytes"] <= limit,
          "cuda:%d over its budget" % busy)
    check(not rec["quiet_changes"],
          "cuda:%d changed while torch allocated on cuda:%d: %s"
          % (quiet, busy, "; ".join(rec["quiet_changes"])))
    check(rec["interposer_allocs"][busy] > 0,
          "the interposer saw no allocation for ordinal %d" % busy)
    check(rec["interposer_allocs"][quiet] == 0,
          "the interposer routed %d allocation(s) to ordinal %d"
          % (rec["interposer_allocs"][quiet], quiet))
    rec["quiet_pages_checked"] = check_contents(torch, dvt, vbars[quiet], quiet)
    check(rec["quiet_pages_checked"] == vbars[quiet].page_count,
          "cuda:%d: only %d of %d pages resident"
          % (quiet, rec["quiet_pages_checked"], vbars[quiet].page_count))

    del blocks
    torch.cuda.synchronize(busy)
    torch.cuda.empty_cache()
    b_after = stats_dict(devs[busy])
    rec["busy_framework_after"] = b_after["framework_bytes"]
    check(b_after["framework_bytes"] < b_during["framework_bytes"],
          "cuda:%d: torch's frees not counted" % busy)
    # Back to the starting point for the next phase: weights resident again.
    vbars[busy].prioritize()
    fill(torch, dvt, vbars[busy], busy)
    return rec


def run(args, report):
    if importlib.util.find_spec("torch") is None:
        return "SKIP", "torch is not installed"
    import dynvram
    import dynvram.interpose as interpose
    import dynvram.torch as dvt
    active = dvt.install_interposer()  # before torch is imported
    import torch
    report["torch"] = torch.__version__
    if not torch.cuda.is_available():
        return "SKIP", "torch sees no CUDA device"
    n = torch.cuda.device_count()
    report["gpus"] = [torch.cuda.get_device_name(i) for i in range(n)]
    if n < 2:
        return "SKIP", "%d CUDA device(s); two are needed" % n
    report["interposer_active"] = active
    check(active, "the interposer is not active: torch bound cudaMalloc "
          "elsewhere (%s)" % (interpose.cudart_loaded(),))

    backend = os.environ.get("DYNVRAM_MULTI_BACKEND", "cuda")
    limit = int(args.limit_gib * GIB)
    weights = int(args.weights_gib * GIB)
    page = 32 * MIB
    devs, vbars = [], []
    try:
        for k in (0, 1):
            dev = dynvram.Device(backend, ordinal=k, vram_limit=limit,
                                 page_size=page)
            devs.append(dev)
            check(dev.ordinal == k and dev.caps().ordinal == k,
                  "Device(ordinal=%d) opened ordinal %d" % (k, dev.ordinal))
            check(dvt.attach_allocator(dev), "attach_allocator(cuda:%d)" % k)
        check(set(interpose.attached()) == {0, 1},
              "attached ordinals: %s" % sorted(interpose.attached()))
        torch.cuda.init()
        for k in (0, 1):
            vbars.append(dynvram.VBAR(devs[k], weights))
            fill(torch, dvt, vbars[k], k)
        report["pages_per_device"] = vbars[0].page_count
        report["phases"] = []
        for busy in (1, 0):
            rec = pressure(torch, dvt, interpose, devs, vbars, busy, limit,
                           weights)
            report["phases"].append(rec)
            print(json.dumps(rec), flush=True)
        for k in (0, 1):
            devs[k].check()
    finally:
        # Best effort: after a failure a page may still be pinned, and the
        # error to report is the first one, not the cleanup's.
        for fn in [interpose.detach_all] + [v.close for v in vbars] + \
                [d.close for d in devs]:
            try:
                fn()
            except Exception as e:
                report.setdefault("cleanup_errors", []).append(str(e))
    ph = report["phases"]
    return "PASS", ("torch on cuda:1 evicted %d page(s) of cuda:1 and none of "
                    "cuda:0; torch on cuda:0 evicted %d of cuda:0 and none of "
                    "cuda:1 (limit %d MiB, weights %d MiB per GPU)"
                    % (ph[0]["busy_evictions"], ph[1]["busy_evictions"],
                       limit // MIB, weights // MIB))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit-gib", type=float, default=4.0)
    ap.add_argument("--weights-gib", type=float, default=3.0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    report = {"limit_gib": args.limit_gib, "weights_gib": args.weights_gib}
    try:
        status, msg = run(args, report)
    except Failure as e:
        status, msg = "FAIL", str(e)
    except Exception as e:  # report, never hide
        status, msg = "FAIL", "%s: %s" % (type(e).__name__, e)
        report["traceback"] = traceback.format_exc()
        print(report["traceback"], file=sys.stderr)
    report["status"], report["message"] = status, msg
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2, default=str)
    say(status, msg)
    return 1 if status == "FAIL" else 0


if __name__ == "__main__":
    sys.exit(main())
