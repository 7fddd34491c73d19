#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# CI reliability stages (issue 9), after .ci/run's test and ASan stages:
#   1. the model-based tester (tests/model) on a fixed seed set under
#      AddressSanitizer + UndefinedBehaviorSanitizer (build-asan, the ASan
#      configuration of .ci/run; configured here if missing), single- and
#      multi-threaded;
#   2. the same model as a libFuzzer target (clang), the committed corpus
#      once and then a bounded run (FUZZ_SECONDS, default 60);
#   3. ThreadSanitizer (build-tsan): the threads and multidev suites through
#      the in-process Criterion stand-in, and the tester's threaded mode;
#   4. valgrind memcheck (build): the core suites through the stand-in and a
#      tester run, failing on any error or leak;
#   5. mutants: each deliberate breakage of tests/model/mutants (policy,
#      I/O, schedules, the host backend's counters) must make the tester
#      fail (and the unmodified tree must pass).
# Every stage prints its duration. Installs clang, libclang-rt-14-dev and
# valgrind when missing (Debian 12). JOBS (default 2) limits the builds.
#
# Run alone: bash .ci/reliability.sh [stage...]   (stages: asan fuzz tsan
# valgrind mutants; default all)
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
jobs=${JOBS:-2}
fuzz_seconds=${FUZZ_SECONDS:-60}
stages=("$@")
# Extra tester arguments (e.g. MODEL_ARGS="--dead-handles 0").
read -r -a model_args <<<"${MODEL_ARGS:-}"
[ ${#stages[@]} -eq 0 ] && stages=(asan fuzz tsan valgrind mutants)

need_packages() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "== installing: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# configure DIR [cmake args...]: a Ninja build of the library and tests only.
configure() {
    local dir=$1
    shift
    if [ ! -f "$dir/build.ninja" ]; then
        cmake -S "$top" -B "$dir" -G Ninja -DDV_WERROR=ON "$@" >/dev/null
    fi
}

stage_start=0
declare -a summary=()
begin() {
    echo
    echo "== reliability: $1"
    stage_start=$(date +%s)
}
end() {
    local t=$(( $(date +%s) - stage_start ))
    echo "== reliability: $1 passed in ${t} s"
    summary+=("$(printf '%-10s %4d s  %s' "$1" "$t" "$2")")
}

asan() {
    begin "tester under ASan + UBSan"
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
    configure build-asan -DCMAKE_BUILD_TYPE=Debug -DDV_SANITIZE=ON
    cmake --build build-asan -j "$jobs" --target dv_model
    build-asan/tests/dv_model --seed 1 --sequences 2000 --calls 1000 "${model_args[@]}"
    build-asan/tests/dv_model --seed 100000 --sequences 40 --calls 25000 \
        "${model_args[@]}"
    build-asan/tests/dv_model --seed 1 --sequences 16 --calls 20000 --threads 4 \
        "${model_args[@]}"
    end asan "2000 x 1000 + 40 x 25000 calls; 16 x 4 threads x 20000 calls"
}

fuzz() {
    begin "libFuzzer (clang, ASan + UBSan), ${fuzz_seconds} s"
    need_packages clang libclang-rt-14-dev
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
    CC=clang configure build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DDV_SANITIZE=ON -DDV_BUILD_BINDINGS=OFF -DDV_BUILD_BENCH=OFF \
        -DDV_BUILD_TOOLS=OFF
    cmake --build build-fuzz -j "$jobs" --target dv_model_fuzz
    # The committed corpus once, then new inputs in a scratch copy (the
    # repository's corpus only changes by hand: see tests/model/README.md).
    build-fuzz/tests/dv_model_fuzz -runs=0 tests/model/corpus
    local work
    work=$(mktemp -d /tmp/dv-fuzz.XXXXXX)
    cp tests/model/corpus/* "$work"/
    local rc=0
    build-fuzz/tests/dv_model_fuzz -max_total_time="$fuzz_seconds" \
        -max_len=4096 -timeout=30 -rss_limit_mb=4096 -print_final_stats=1 \
        -artifact_prefix="$work/" "$work" >"$work.log" 2>&1 || rc=$?
    grep -E '^(#[0-9]+ +DONE|stat::(number_of_executed_units|new_units_added|peak_rss_mb))' \
        "$work.log" || true
    if [ "$rc" -ne 0 ]; then
        tail -80 "$work.log"
        echo "the fuzzer failed (exit $rc); inputs kept in $work:"
        ls -l "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* 2>/dev/null || true
        exit 1
    fi
    rm -rf "$work" "$work.log"
    end fuzz "${fuzz_seconds} s of libFuzzer from the committed corpus"
}

tsan() {
    begin "ThreadSanitizer"
    configure build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DDV_BUILD_BINDINGS=OFF -DDV_BUILD_BENCH=OFF -DDV_BUILD_TOOLS=OFF \
        -DCMAKE_C_FLAGS="-fsanitize=thread -fno-omit-frame-pointer" \
        -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread \
        -DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=thread
    cmake --build build-tsan -j "$jobs" --target dv_crshim_threads \
        dv_crshim_multidev dv_crshim_io_read dv_crshim_io_inject dv_model
    export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:exitcode=66:second_deadlock_stack=1}
    # Without address randomization: TSan's fixed shadow layout then fits
    # on kernels with many mmap random bits.
    local norand=(setarch "$(uname -m)" -R)
    "${norand[@]}" true 2>/dev/null || norand=()
    "${norand[@]}" build-tsan/tests/dv_crshim_threads
    "${norand[@]}" build-tsan/tests/dv_crshim_multidev
    # Host I/O: reads through one reader from four threads, a read held in
    # flight while other threads destroy, close and truncate.
    DYNVRAM_BACKEND=host "${norand[@]}" build-tsan/tests/dv_crshim_io_read
    DYNVRAM_BACKEND=host "${norand[@]}" build-tsan/tests/dv_crshim_io_inject
    "${norand[@]}" build-tsan/tests/dv_model --seed 1 --sequences 12 \
        --calls 10000 --threads 4 "${model_args[@]}"
    end tsan "threads (1) + multidev (7) + io_read (7) + io_inject (6) suites, 12 x 4 threads x 10000 calls"
}

valgrind_stage() {
    begin "valgrind memcheck"
    need_packages valgrind
    configure build -DCMAKE_BUILD_TYPE=RelWithDebInfo
    local bins=()
    for s in conformance policy recovery inject badinput handles host; do
        bins+=("dv_crshim_$s")
    done
    cmake --build build -j "$jobs" --target "${bins[@]}" dv_model
    local vg=(valgrind -q --error-exitcode=9 --leak-check=full
              --errors-for-leak-kinds=definite,indirect
              --child-silent-after-fork=yes)
    local log
    log=$(mktemp /tmp/dv-valgrind.XXXXXX)
    # Under valgrind a reservation larger than the address space fails with
    # EINVAL, not ENOMEM: this test asserts the kernel's ENOMEM text.
    local skip=(--exclude 'host/a_failed_copy_keeps_the_backend_reason*')
    for b in "${bins[@]}"; do
        if ! "${vg[@]}" "build/tests/$b" "${skip[@]}" >"$log" 2>&1; then
            tail -60 "$log"
            echo "valgrind: $b failed"
            exit 1
        fi
        echo "-- $b: $(tail -1 "$log")"
    done
    rm -f "$log"
    "${vg[@]}" build/tests/dv_model --seed 1 --sequences 60 --calls 1000 "${model_args[@]}"
    "${vg[@]}" build/tests/dv_model --seed 1 --sequences 2 --calls 3000 --threads 3 "${model_args[@]}"
    end valgrind "7 core suites (conformance policy recovery inject badinput handles host); 60 + 2x3-thread sequences"
}

mutants() {
    begin "mutants (the tester must catch each policy breakage)"
    JOBS=$jobs bash tests/model/mutants.sh
    end mutants "$(ls tests/model/mutants/*.mut | wc -l) mutants of the library"
}

all_start=$(date +%s)
for s in "${stages[@]}"; do
    case "$s" in
    asan) asan ;;
    fuzz) fuzz ;;
    tsan) tsan ;;
    valgrind) valgrind_stage ;;
    mutants) mutants ;;
    *) echo "unknown stage '$s' (asan fuzz tsan valgrind mutants)"; exit 2 ;;
    esac
done
echo
echo "== reliability stages:"
printf '   %s\n' "${summary[@]}"
echo "== reliability passed in $(( $(date +%s) - all_start )) s"
