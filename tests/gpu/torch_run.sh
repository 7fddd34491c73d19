#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# GPU run of the Python / PyTorch integration (for the lead's GPU machine).
#
#   bash tests/gpu/torch_run.sh            # results under $OUT (default ./out)
#   SMALL=1 bash tests/gpu/torch_run.sh    # small sizes, any GPU
#   PYTHON=/path/to/python3 ...            # the interpreter that has torch
#
# Steps (each logged to $OUT/<step>.log, summary in $OUT/summary.txt):
#   1. build and install the dynvram package for $PYTHON into $OUT/pyinst
#      (pip, offline, --no-build-isolation; needs that Python's headers,
#      setuptools and wheel; falls back to the CMake build of the extension)
#   2. the host-backend pytest suite, with that interpreter (sanity)
#   3. tests/gpu/torch_test.py: views, offload, pressure, pluggable
#   4. bench/pyfault.py on CUDA, target: native median <= 1000 ns
#   5. bench/offload.py (W1) unless SKIP_BENCH=1
set -u
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
OUT=${OUT:-$ROOT/out}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"
SUMMARY=$OUT/summary.txt
: > "$SUMMARY"
pass=0
fail=0
step() { # name command...
    local name=$1
    shift
    echo "== $name: $*" | tee -a "$SUMMARY"
    if "$@" > "$OUT/$name.log" 2>&1; then
        echo "PASS $name" | tee -a "$SUMMARY"
        pass=$((pass + 1))
    else
        echo "FAIL $name (rc $?, see $name.log)" | tee -a "$SUMMARY"
        tail -20 "$OUT/$name.log" | sed 's/^/    /' | tee -a "$SUMMARY"
        fail=$((fail + 1))
    fi
}

{
    echo "date: $(date -u +%FT%TZ)"
    echo "python: $($PYTHON -c 'import sys; print(sys.version)' 2>&1)"
    echo "torch: $($PYTHON -c 'import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0))' 2>&1)"
    nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv 2>&1
} | tee "$OUT/env.txt" | tee -a "$SUMMARY"

build() {
    rm -rf "$OUT/pyinst" bindings/python/build bindings/python/*.egg-info
    if $PYTHON -m pip install --no-build-isolation --no-deps --no-index \
            --target "$OUT/pyinst" ./bindings/python; then
        return 0
    fi
    echo "pip build failed; trying the CMake build of the extension"
    local inc
    inc=$($PYTHON -c "import sysconfig; print(sysconfig.get_paths()['include'])")
    cmake -S . -B "$OUT/cmake-build" -DDV_BUILD_TESTS=OFF -DDV_BUILD_BENCH=OFF \
        -DDV_BUILD_TOOLS=OFF -DDV_PYTHON="$(command -v "$PYTHON" || echo "$PYTHON")" &&
        cmake --build "$OUT/cmake-build" -j8 --target dv_python_native &&
        rm -rf "$OUT/pyinst" && cp -r "$OUT/cmake-build/python" "$OUT/pyinst" &&
        test -f "$inc/Python.h"
}
step build build
export PYTHONPATH=$OUT/pyinst${PYTHONPATH:+:$PYTHONPATH}

if $PYTHON -c 'import pytest' 2>/dev/null; then
    step pytest_host env DYNVRAM_BACKEND=host $PYTHON -m pytest -p no:cacheprovider -q tests/python
fi
SMALLFLAG=${SMALL:+--small}
step torch_test $PYTHON tests/gpu/torch_test.py --out "$OUT" $SMALLFLAG
step pyfault $PYTHON bench/pyfault.py --backend cuda --max-ns 1000 --json "$OUT/pyfault.json"
if [ -z "${SKIP_BENCH:-}" ] && [ -f bench/offload.py ]; then
    step offload_bench $PYTHON bench/offload.py --out "$OUT/offload" $SMALLFLAG
fi
echo "$pass passed, $fail failed" | tee -a "$SUMMARY"
[ "$fail" -eq 0 ]
