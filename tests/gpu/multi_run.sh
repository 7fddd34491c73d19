#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# tests/gpu/multi_run.sh - the two-GPU check (issue 6) in one command, for a
# machine with two NVIDIA GPUs, their driver, gcc, cmake (ninja if there)
# and, for the last step, a Python with PyTorch. No internet needed;
# Criterion comes from the system, .gpu-deps/ or .debs/ (tests/gpu/lib.sh).
#
#   OUT=/some/dir bash tests/gpu/multi_run.sh
#
# 1. records the machine (date, GPUs, driver, NVLink topology);
# 2. builds everything in Release (build-gpu/, shared with run.sh);
# 3. runs ctest -R 'multidev|cuda.multi': the generic two-device suite on
#    every backend (cuda.multidev on the GPUs, the simulators in CI form)
#    and cuda.multi (context binding across the two GPUs); a skipped
#    cuda.* test counts as a failure here;
# 4. builds the Python package for $PYTHON and runs
#    tests/gpu/torch_multi_test.py (torch allocations on one GPU evict only
#    that GPU's weights).
#
# Everything lands in $OUT (default ./gpu-multi-out), 7 files, no
# subfolders: summary.txt env.txt build.log multi_tests.log pybuild.log
# torch_multi.log torch_multi.json
# Exit status: 0 when every step passed on two GPUs, 1 otherwise.
# Environment: OUT, BUILD_DIR, JOBS, PYTHON (default python3).
set -uo pipefail

# NVLink multicast stays off on the multi-GPU machines (their notes say
# why); nothing here calls cuMulticastCreate.
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1

top=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/gpu/lib.sh
. "$top/tests/gpu/lib.sh"
out=${OUT:-$PWD/gpu-multi-out}
build=${BUILD_DIR:-$top/build-gpu}
deps=$top/build-gpu-deps
jobs=${JOBS:-$(nproc 2>/dev/null || echo 4)}
py=${PYTHON:-python3}
mkdir -p "$out"
summary=$out/summary.txt
: >"$summary"
failed=0
t_start=$(date +%s)


# ---- 1. the machine ----
{
    dv_record_machine "$top" "$jobs"
    echo
    echo "== nvidia-smi topo -m"
    nvidia-smi topo -m 2>&1 || true
    echo
    echo "== multicast off"
    echo "NCCL_NVLS_ENABLE=$NCCL_NVLS_ENABLE TORCH_SYMM_MEM_DISABLE_MULTICAST=$TORCH_SYMM_MEM_DISABLE_MULTICAST NVSHMEM_DISABLE_NVLS=$NVSHMEM_DISABLE_NVLS"
    echo "CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-<unset>}"
} >"$out/env.txt" 2>&1
gpus=$(nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv,noheader 2>/dev/null)
ngpu=$(printf '%s\n' "$gpus" | grep -c .)
note "dynvram two-GPU run $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname 2>/dev/null): $ngpu GPU(s)"
[ "$ngpu" -gt 0 ] && printf '%s\n' "$gpus" | sed 's/^/INFO  GPU /' | tee -a "$summary"
if [ "$ngpu" -lt 2 ]; then
    note "FAIL  this run needs two GPUs ($ngpu found): the two-GPU checks will skip"
    failed=1
fi

# ---- 2. Criterion and the build ----
dv_find_criterion "$top" "$deps"
if [ "$have_criterion" = 1 ]; then
    note "INFO  Criterion $(pkg-config --modversion criterion) from $criterion_from"
else
    note "FAIL  Criterion not found (system, .gpu-deps/ or .debs/): no C tests"
    failed=1
fi
t0=$(date +%s)
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
if [ -f "$build/CMakeCache.txt" ] && ! grep -q "CMAKE_GENERATOR:INTERNAL=${gen[1]:-Unix Makefiles}" "$build/CMakeCache.txt"; then
    rm -rf "$build"
fi
tests_flag=OFF
[ "$have_criterion" = 1 ] && tests_flag=ON
{
    cmake -S "$top" -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
        -DDV_WERROR=OFF -DDV_BUILD_TESTS=$tests_flag -DDV_BUILD_TOOLS=ON &&
        cmake --build "$build" -j "$jobs"
} >"$out/build.log" 2>&1
rc=$?
step_result "build (Release, tests $tests_flag)" $rc $(($(date +%s) - t0))
if [ $rc -ne 0 ]; then
    tail -40 "$out/build.log" >>"$summary"
fi
{
    echo
    echo "== dynvram info"
    "$build/tools/dynvram" info 2>&1 || echo "dynvram info failed"
} >>"$out/env.txt"

# ---- 3. the C tests ----
count_line() { grep -E "tests passed|tests failed" "$1" | tail -1; }
if [ "$have_criterion" = 1 ] && [ $rc -eq 0 ]; then
    t0=$(date +%s)
    (cd "$build" && timeout 400 ctest -R 'multidev|cuda.multi' -j 1 -V \
        --timeout 300) >"$out/multi_tests.log" 2>&1
    rc=$?
    step_result "ctest -R 'multidev|cuda.multi' [$(count_line "$out/multi_tests.log")]" \
        $rc $(($(date +%s) - t0))
    grep -E "SKIP:|\[FAIL\]|Synthesis|Test +#" "$out/multi_tests.log" | head -40 >>"$summary"
    for t in cuda.multidev cuda.multi; do
        if grep -qE "Test +#[0-9]+: $t [.]+[*]+Skipped" "$out/multi_tests.log"; then
            note "FAIL  $t was skipped (a two-GPU machine must run it)"
            failed=1
        elif ! grep -qE "Test +#[0-9]+: $t [.]+ +Passed" "$out/multi_tests.log"; then
            note "FAIL  $t did not pass"
            failed=1
        fi
    done
else
    echo "not run: no Criterion or the build failed" >"$out/multi_tests.log"
fi

# ---- 4. torch on two GPUs ----
if [ -d "$top/bindings/python" ]; then
    t0=$(date +%s)
    dv_build_python "$top" "$py" "$build/pyinst" "$out/pybuild.log"
    rc=$?
    step_result "python package for $py" $rc $(($(date +%s) - t0))
    if [ $rc -eq 0 ]; then
        t0=$(date +%s)
        PYTHONPATH="$build/pyinst${PYTHONPATH:+:$PYTHONPATH}" timeout 400 \
            "$py" "$top/tests/gpu/torch_multi_test.py" --json "$out/torch_multi.json" \
            >"$out/torch_multi.log" 2>&1
        rc=$?
        verdict=$(grep -E '^(PASS|FAIL|SKIP) torch_multi:' "$out/torch_multi.log" | tail -1)
        verdict=${verdict:-no verdict (exit $rc, see torch_multi.log)}
        if [ $rc -eq 0 ] && [ "${verdict%% *}" = PASS ]; then
            note "PASS  $verdict ($(($(date +%s) - t0)) s)"
        else
            # A SKIP (no torch, one GPU) is a failure of a two-GPU run too.
            note "FAIL  $verdict ($(($(date +%s) - t0)) s)"
            tail -30 "$out/torch_multi.log" >>"$summary"
            failed=1
        fi
    else
        tail -30 "$out/pybuild.log" >>"$summary"
    fi
else
    note "SKIP  bindings/python missing: no torch check"
    failed=1
fi

note "total $(($(date +%s) - t_start)) s; files in $out: $(ls "$out" | tr '\n' ' ')"
exit $failed
