#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# CI: the porting kit (docs/porting.md) from an installed dynvram, the way a
# backend author outside this repository uses it:
#   1. install the build, with its tests (the conformance suites), to a
#      temporary prefix;
#   2. build the template backend (examples/backend) against the install,
#      with CMake (find_package) and with pkg-config: each exports
#      dv_hal_entry() and nothing else, and links nothing of dynvram;
#   3. the installed `dynvram conformance` on the template: every suite
#      passes;
#   4. the same on the host backend packaged as a library
#      (tests/support/hal_entry_host.c built against the install);
#   5. the same on the template with a deliberate defect
#      (DV_EXAMPLE_BREAK=map: map maps nothing; =oom: out of memory reported
#      as a driver error): the runner exits 1 and names the failed cases.
# Uses the build folder of `tools/run.sh test` (built here if needed).
# Exit status non-zero on any failure.
#
# Environment: BUILD_DIR (default build), JOBS (default nproc).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}
start=$(date +%s)

say() { printf '== porting: %s\n' "$*"; }
die() { printf '== porting: FAIL: %s\n' "$*" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/dynvram-porting.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix="$work/prefix"

# ---- 1. install ----------------------------------------------------------------
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
    cmake -S . -B "$BUILD" -G Ninja >/dev/null
fi
grep -q '^DV_BUILD_TESTS:BOOL=ON$' "$BUILD/CMakeCache.txt" ||
    die "$BUILD is configured without tests: the suites would be missing"
cmake --build "$BUILD" -j "$JOBS" >"$work/build.log" 2>&1 ||
    { tail -30 "$work/build.log"; die "build of $BUILD failed"; }
cmake --install "$BUILD" --prefix "$prefix" >"$work/install.log" 2>&1 ||
    { tail -30 "$work/install.log"; die "install failed"; }
runner="$prefix/bin/dynvram"
suites="$prefix/libexec/dynvram/conformance"
[ -x "$runner" ] || die "no $runner"
[ -f "$suites/dynvram-suites.txt" ] || die "no suite list in $suites"
say "installed to a temporary prefix, $(wc -w <"$suites/dynvram-suites.txt") suites in libexec/dynvram/conformance"

# ---- 2. the template against the install ---------------------------------------
exports_only_entry() {
    local lib=$1 syms
    syms=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBR]$/ {print $3}' |
        grep -v -e '^_init$' -e '^_fini$' || true)
    [ "$syms" = "dv_hal_entry" ] || die "$lib exports: $(echo $syms)"
    if ldd "$lib" | grep -q dynvram; then
        die "$lib links dynvram: $(ldd "$lib" | grep dynvram)"
    fi
}
cmake -S examples/backend -B "$work/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" \
    -DEXAMPLE_WERROR=ON >"$work/template.log" 2>&1 &&
    cmake --build "$work/cmake-build" >>"$work/template.log" 2>&1 ||
    { tail -30 "$work/template.log"; die "template backend: CMake build against the install failed"; }
template="$work/cmake-build/libdv_example_backend.so"
exports_only_entry "$template"
say "template built with find_package(dynvram): exports dv_hal_entry only"

export PKG_CONFIG_PATH="$prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
mkdir -p "$work/pc"
# shellcheck disable=SC2046 # pkg-config's flags are words
cc -std=c11 -Wall -Wextra -Werror -shared -fPIC -fvisibility=hidden \
    $(pkg-config --cflags dynvram) examples/backend/*.c -pthread \
    -o "$work/pc/libdv_example_backend.so" ||
    die "template backend: pkg-config build against the install failed"
exports_only_entry "$work/pc/libdv_example_backend.so"
say "template built with pkg-config --cflags dynvram: exports dv_hal_entry only"

# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror -shared -fPIC tests/support/hal_entry_host.c \
    $(pkg-config --cflags --libs dynvram) \
    -Wl,-rpath,"$(pkg-config --variable=libdir dynvram)" \
    -o "$work/pc/libdv_hal_host.so" ||
    die "host backend library: build against the install failed"
say "host backend packaged as a library (pkg-config --cflags --libs dynvram)"

# ---- 3-5. the installed runner ---------------------------------------------------
# run NAME EXPECTED_STATUS LIBRARY [ARGS...]: the report in $work/NAME.txt.
run() {
    local name=$1 want=$2 lib=$3 rc=0 t0
    shift 3
    t0=$(date +%s)
    "$runner" conformance --hal-library "$lib" "$@" >"$work/$name.txt" 2>&1 || rc=$?
    if [ "$rc" != "$want" ]; then
        cat "$work/$name.txt"
        die "$name: exit status $rc, expected $want"
    fi
    say "$name: exit status $rc as expected ($(($(date +%s) - t0)) s): $(grep '^total' "$work/$name.txt" || true)"
}
expect() { # expect NAME REGEX...: every regex is in the report
    local name=$1 re
    shift
    for re in "$@"; do
        grep -Eq -- "$re" "$work/$name.txt" ||
            { cat "$work/$name.txt"; die "$name: the report lacks /$re/"; }
    done
}

all_suites=()
for s in $(cat "$suites/dynvram-suites.txt"); do
    all_suites+=("^$s +[0-9]+ +0 +[0-9]+ ")
done

run template 0 "$template"
expect template "^backend: +example," "^result: PASS" "${all_suites[@]}"
run template-pkg-config 0 "$work/pc/libdv_example_backend.so" --suite conformance
expect template-pkg-config "^result: PASS"
run host 0 "$work/pc/libdv_hal_host.so"
expect host "^backend: +host," "^result: PASS" "${all_suites[@]}"

DV_EXAMPLE_BREAK=map run broken-map 1 "$template" --suite conformance --suite multidev
expect broken-map "^result: FAIL" "^conformance: [1-9][0-9]* failed" \
    "conformance::data_round_trip_and_generation" "is not mapped"
DV_EXAMPLE_BREAK=oom run broken-oom 1 "$template" --suite conformance
expect broken-oom "^result: FAIL" \
    "conformance::creating_past_free_memory_is_out_of_device_memory" \
    "DV_ERROR_BACKEND, expected DV_ERROR_OUT_OF_DEVICE_MEMORY"
run bad-usage 2 "$template" --suite nosuch
expect bad-usage "--suite 'nosuch': not one of"

say "PASS in $(($(date +%s) - start)) s"
