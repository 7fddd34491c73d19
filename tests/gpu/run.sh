#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# tests/gpu/run.sh - the whole GPU check in one command, for a machine with
# an NVIDIA GPU, its driver, gcc and cmake (no internet needed):
#
#   OUT=/some/dir bash tests/gpu/run.sh
#
# 1. records the machine (date, nvidia-smi, driver library, compilers);
# 2. makes Criterion available: the system's if pkg-config finds it, else the
#    Debian packages in .debs/ (libcriterion-dev and its dependencies,
#    unpacked with dpkg -x into build-gpu-deps/; pkgconf too if shipped);
# 3. builds everything in Release (build-gpu/, kept between runs);
# 4. runs every CTest test except the GPU ones in parallel, then the CUDA
#    ones (ABI checks, generic suites on the GPU, tests/cuda) one at a time
#    and verbose, so the eviction timing is in the log;
# 5. runs dv_bench_ops on the GPU (table + JSON).
#
# Everything lands in $OUT (default ./gpu-out), 7 files, no subfolders:
#   summary.txt env.txt build.log ctest.log cuda_tests.log bench.log
#   bench-ops.json
# Exit status: 0 when every step passed, 1 otherwise (summary.txt says which).
# Without Criterion the tests are skipped (and reported); the benchmark
# still runs. Environment: OUT, BUILD_DIR, JOBS, BENCH_ITERS (default 300).
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/gpu/lib.sh
. "$top/tests/gpu/lib.sh"
out=${OUT:-$PWD/gpu-out}
build=${BUILD_DIR:-$top/build-gpu}
deps=$top/build-gpu-deps
jobs=${JOBS:-$(nproc 2>/dev/null || echo 4)}
iters=${BENCH_ITERS:-300}
mkdir -p "$out"
summary=$out/summary.txt
: >"$summary"
failed=0
t_start=$(date +%s)


# ---- 1. the machine ----
dv_record_machine "$top" "$jobs" >"$out/env.txt" 2>&1
gpu_name=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
note "dynvram GPU run $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname 2>/dev/null) ${gpu_name:+($gpu_name)}"

# ---- 2. Criterion ----
dv_find_criterion "$top" "$deps"
if [ "$have_criterion" = 1 ]; then
    note "INFO  Criterion $(pkg-config --modversion criterion) from $criterion_from"
else
    note "SKIP  tests: Criterion not found (pkg-config --exists criterion failed;" \
        "ship libcriterion-dev and its dependencies as .deb files in .debs/)"
    failed=1
fi

# ---- 3. build ----
# Warnings are not errors here: CI enforces -Werror; a Release-only warning
# must not cost the GPU run. They are counted in the summary instead.
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
        -DDV_WERROR=OFF -DDV_BUILD_TESTS=$tests_flag -DDV_BUILD_BENCH=ON \
        -DDV_BUILD_TOOLS=ON &&
        cmake --build "$build" -j "$jobs"
} >"$out/build.log" 2>&1
rc=$?
step_result "build (Release, tests $tests_flag)" $rc $(($(date +%s) - t0))
warnings=$(grep -c 'warning:' "$out/build.log")
if [ "$warnings" -gt 0 ]; then
    note "WARN  $warnings compiler warning(s) in the Release build:"
    grep 'warning:' "$out/build.log" | sort -u | head -10 >>"$summary"
fi
if [ $rc -ne 0 ]; then
    tail -40 "$out/build.log" >>"$summary"
    note "total $(($(date +%s) - t_start)) s"
    exit 1
fi

{
    echo
    echo "== dynvram info"
    "$build/tools/dynvram" info 2>&1 || echo "dynvram info failed"
} >>"$out/env.txt"
grep -E '^  cuda ' "$out/env.txt" | sed 's/^ */INFO  /' >>"$summary"

# ---- 4. tests ----
count_line() { grep -E "tests passed|tests failed" "$1" | tail -1; }
# readme.check and tools.test_inventory check the checkout (git's index, the
# system python's pytest), which the copy on a GPU machine does not have as
# CI does: they run in CI, not here.
if [ "$have_criterion" = 1 ]; then
    t0=$(date +%s)
    (cd "$build" && timeout 240 ctest -E '^cuda[.]|^readme[.]check$|^tools[.]test_inventory$' -j "$jobs" --output-on-failure \
        --timeout 200) >"$out/ctest.log" 2>&1
    rc=$?
    step_result "ctest, everything but cuda.* [$(count_line "$out/ctest.log")]" $rc $(($(date +%s) - t0))
    sed -n '/The following tests did not run/,/^$/p;/The following tests FAILED/,/^$/p' \
        "$out/ctest.log" >>"$summary"

    t0=$(date +%s)
    (cd "$build" && timeout 240 ctest -R '^cuda[.]' -j 1 -V --timeout 200) \
        >"$out/cuda_tests.log" 2>&1
    rc=$?
    step_result "ctest cuda.* on the GPU [$(count_line "$out/cuda_tests.log")]" $rc $(($(date +%s) - t0))
    grep -E "SKIP:|evict_no_sync:|\[----\]|\[FAIL\]|Synthesis" "$out/cuda_tests.log" \
        | head -40 >>"$summary"
    skipped=$(grep -cE '\*\*\*Skipped' "$out/cuda_tests.log")
    # cuda.multi needs two GPUs (tests/gpu/multi_run.sh runs it there).
    ngpu=$(nvidia-smi --query-gpu=index --format=csv,noheader 2>/dev/null | grep -c .)
    if [ "$ngpu" -lt 2 ] && grep -qE 'cuda[.]multi [.]+[*]+Skipped' "$out/cuda_tests.log"; then
        note "INFO  cuda.multi skipped: $ngpu GPU(s), it needs two"
        skipped=$((skipped - 1))
    fi
    if [ "$skipped" -gt 0 ]; then
        note "FAIL  $skipped cuda.* test(s) skipped on a GPU machine"
        failed=1
    fi
else
    echo "not run: no Criterion" >"$out/ctest.log"
    echo "not run: no Criterion" >"$out/cuda_tests.log"
fi

# ---- 5. benchmark ----
t0=$(date +%s)
timeout 180 "$build/bench/dv_bench_ops" --backend cuda --iters "$iters" \
    --json "$out/bench-ops.json" \
    --machine "$(hostname 2>/dev/null), ${gpu_name:-unknown GPU}" \
    >"$out/bench.log" 2>&1
rc=$?
step_result "dv_bench_ops --backend cuda --iters $iters" $rc $(($(date +%s) - t0))
cat "$out/bench.log" >>"$summary"

note "total $(($(date +%s) - t_start)) s; files in $out: $(ls "$out" | tr '\n' ' ')"
exit $failed
