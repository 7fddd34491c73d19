#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# tests/gpu/session.sh - one GPU session's checks in one command, packed so
# that what comes back fits the device tool's limits (at most 8 files in
# $OUT): run.sh (build, every CTest suite, cuda.* on the GPU,
# dv_bench_ops), then the Python benchmarks named in $DV_GPU_STEPS.
#
#   OUT=/dir DV_GPU_STEPS="pyfault recovery" bash tests/gpu/session.sh
#
# Steps (each needs the dynvram package, built for `python3` into
# /tmp/dv-pyinst): pyfault, recovery, f1 (bench/dv_bench_io, an 8 GiB file
# under F1_DIR, default /tmp), graph (tests/gpu/graph_test.py), graphbench
# (bench/graph_bench.py), and any of the scripts of
# DV_GPU_EXTRA ("name:command", ';'-separated) that later issues add.
# $OUT gets: summary.txt (everything's verdict), run-summary.txt,
# cuda_tests.log, ctest.log, bench-ops.json, py.log, py-results.json and
# charts.tar (every PNG chart the steps drew).
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
out=${OUT:-$top/gpu-out}
mkdir -p "$out"
work=/tmp/dv-gpu-run
rm -rf "$work"
mkdir -p "$work"
summary=$out/summary.txt
: >"$summary"
failed=0
# shellcheck source=tests/gpu/lib.sh
. "$top/tests/gpu/lib.sh"

t0=$(date +%s)
if [ "${DV_SKIP_RUN:-0}" = 1 ]; then
    # Python steps only (the C suites ran in an earlier session).
    note "INFO  tests/gpu/run.sh skipped (DV_SKIP_RUN=1)"
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >"$out/ctest.log" 2>&1
else
    OUT=$work/run BENCH_ITERS=${BENCH_ITERS:-300} bash tests/gpu/run.sh >"$work/run.out" 2>&1
    step_result "tests/gpu/run.sh" $? $(($(date +%s) - t0))
    cp "$work/run/summary.txt" "$out/run-summary.txt"
    cp "$work/run/cuda_tests.log" "$out/cuda_tests.log" 2>/dev/null
    cat "$work/run/env.txt" "$work/run/ctest.log" >"$out/ctest.log" 2>/dev/null
    cp "$work/run/bench-ops.json" "$out/bench-ops.json" 2>/dev/null
fi

PY=${PYTHON:-python3}
py_log=$out/py.log
: >"$py_log"
if dv_build_python "$top" "$PY" /tmp/dv-pyinst "$work/pybuild.log"; then
    note "PASS  python package built for $($PY -V 2>&1)"
else
    note "FAIL  python package build (tail below)"
    tail -20 "$work/pybuild.log" >>"$summary"
    failed=1
fi
export PYTHONPATH=/tmp/dv-pyinst${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1
mkdir -p "$work/py"
export DV_PY_OUT=$work/py # extra steps write their JSON here
pystep() { # name command...
    local name=$1
    shift
    local s
    s=$(date +%s)
    echo "===== $name: $*" >>"$py_log"
    timeout "${DV_STEP_TIMEOUT:-400}" "$@" >>"$py_log" 2>&1
    step_result "$name" $? $(($(date +%s) - s))
}
for s in ${DV_GPU_STEPS:-pyfault recovery}; do
    case $s in
    pyfault) pystep pyfault "$PY" bench/pyfault.py --backend cuda --max-ns 1000 \
        --json "$work/py/pyfault.json" ;;
    recovery) pystep recovery "$PY" bench/recovery.py --out "$work/py" ;;
    f1) # file to GPU (issue 10): an 8 GiB file under F1_DIR (default /tmp)
        pystep f1 "${BUILD_DIR:-$top/build-gpu}/bench/dv_bench_io" --backend cuda \
            --dir "${F1_DIR:-/tmp}" --json "$work/py/io-f1.json" ;;
    graph) pystep graph "$PY" tests/gpu/graph_test.py --out "$work/py" ;;
    graphbench) pystep graphbench "$PY" bench/graph_bench.py --out "$work/py" ;;
    comfy) pystep comfy "$PY" tests/gpu/comfy_test.py --out "$work/py" ;;
    comfybench) pystep comfybench "$PY" bench/comfy_bench.py --out "$work/py" ;;
    w1) pystep w1 "$PY" bench/offload.py --tokens 4096,16384 --out "$work/py" ;;
    w2) pystep w2 "$PY" bench/w2.py --out "$work/py" ;;
    w1real) pystep w1real "$PY" bench/w1_real.py --out "$work/py" ;;
    esac
done
IFS=';' read -r -a extra <<<"${DV_GPU_EXTRA:-}"
for e in "${extra[@]}"; do
    [ -n "$e" ] || continue
    # shellcheck disable=SC2086
    pystep "${e%%:*}" bash -c "${e#*:}"
done
# Every JSON the steps wrote, in one file.
"$PY" - "$work/py" "$out/py-results.json" <<'EOF'
import json, os, sys
src, dst = sys.argv[1], sys.argv[2]
doc = {}
for root, _, files in os.walk(src):
    for f in sorted(files):
        if f.endswith(".json"):
            p = os.path.join(root, f)
            try:
                doc[os.path.relpath(p, src)] = json.load(open(p))
            except Exception as e:  # keep going: say what broke
                doc[os.path.relpath(p, src)] = {"error": str(e)}
json.dump(doc, open(dst, "w"), indent=1)
EOF
# The benchmarks' PNG charts, in one file (the device tool brings back few).
(cd "$work/py" && find . -name '*.png' | sort | tar -cf "$out/charts.tar" -T - 2>/dev/null) ||
    rm -f "$out/charts.tar"
[ -s "$out/charts.tar" ] || rm -f "$out/charts.tar"
note "total $(($(date +%s) - t0)) s"
exit $failed
