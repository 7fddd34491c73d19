#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# A newcomer's first hour, as a test (run by .ci/newcomer.sh):
#
#   bash tests/newcomer/newcomer.sh [REPOSITORY]    (default: this checkout)
#
#  1. git clone of the repository into a temporary directory: only what a
#     clone has (committed files) takes part; the README's checks run there.
#  2. configure, build and install the library and the tool to a temporary
#     prefix, as the README says.
#  3. build the README's C example (taken from the README itself) against
#     the install with pkg-config and with CMake's find_package(dynvram),
#     and run both without LD_LIBRARY_PATH.
#  4. run the installed tool without LD_LIBRARY_PATH: --version, info, the
#     demo compared with the README's sample output; then move the install
#     tree and use it again (pkg-config file and run path are relocatable).
#  5. every bad option of issue 14, each with its exit status and message;
#     redirected output keeps its order; `bash tools/run.sh` alone prints
#     clean usage; dv_bench_ops writes nothing into the source tree.
#  6. the README's Python install commands in a fresh venv, offline.
#
# Needs what `bash tools/run.sh deps` installs. Environment: JOBS (default
# 2), DV_NEWCOMER_KEEP=1 keeps the temporary directory, DV_NEWCOMER_PYTHON=0
# skips step 6. Exit status: 0 when every check passed, 1 otherwise.
set -euo pipefail

repo=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
jobs=${JOBS:-2}
work=$(mktemp -d "${TMPDIR:-/tmp}/dv-newcomer.XXXXXX")
if [ "${DV_NEWCOMER_KEEP:-0}" = 1 ]; then
    trap 'echo "kept $work"' EXIT
else
    trap 'rm -rf "$work"' EXIT
fi
start=$(date +%s)
failed=0
checks=0

ok() {
    checks=$((checks + 1))
    echo "  ok    $1"
}
bad() {
    checks=$((checks + 1))
    failed=$((failed + 1))
    echo "  FAIL  $1"
    if [ -n "${2:-}" ]; then
        sed 's/^/          /' <<<"$2" | head -40
    fi
}
step() { echo "== newcomer: $*"; }

# expect RC STREAM REGEX -- COMMAND...: COMMAND exits with RC (a number, or
# "any") and its stdout (STREAM out) or stderr (STREAM err) matches the
# extended REGEX.
expect() {
    local want_rc=$1 stream=$2 regex=$3
    shift 4
    local rc=0 text what
    "$@" >"$work/out" 2>"$work/err" || rc=$?
    text=$(cat "$work/$stream")
    what=${*//"$tool"/dynvram}
    if [ "$want_rc" != any ] && [ "$rc" -ne "$want_rc" ]; then
        bad "$what: exit $rc, want $want_rc" "$(cat "$work/out" "$work/err")"
    elif ! grep -Eq -- "$regex" <<<"$text"; then
        bad "$what: $stream does not match /$regex/" "$(cat "$work/out" "$work/err")"
    else
        ok "$what -> $rc: $(grep -Em1 -- "$regex" <<<"$text" | cut -c1-100)"
    fi
}

# readme_block START_REGEX FENCE: the body of the first fenced block that
# opens with the line FENCE after a line matching START_REGEX.
readme_block() {
    awk -v start="$1" -v fence="$2" '
        found == 0 && $0 ~ start { found = 1; next }
        found == 1 && $0 == fence { found = 2; next }
        found == 2 && $0 == "```" { exit }
        found == 2 { print }' "$src/README.md"
}

# ---- 1. clone ----------------------------------------------------------------
step "clone $repo"
src=$work/src
git clone --quiet --no-hardlinks "$repo" "$src"
echo "   commit $(git -C "$src" log --oneline -1)"
if [ -n "$(git -C "$repo" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
    echo "   note: uncommitted changes in $repo are not part of the clone"
fi
if out=$(python3 "$src/tests/newcomer/readme_check.py" "$src" 2>&1); then
    ok "README: $out"
else
    bad "README checks in the clone" "$out"
fi

# ---- 2. build and install ------------------------------------------------------
step "configure, build, install to a temporary prefix"
prefix=$work/prefix
t0=$(date +%s)
if out=$(cmake -S "$src" -B "$src/build" -DDV_BUILD_TESTS=OFF \
    -DDV_BUILD_BINDINGS=OFF -DDV_BUILD_BENCH=ON 2>&1 &&
    cmake --build "$src/build" -j "$jobs" 2>&1 &&
    cmake --install "$src/build" --prefix "$prefix" 2>&1); then
    ok "cmake configure + build + install --prefix ($(($(date +%s) - t0)) s)"
else
    bad "build and install" "$(tail -30 <<<"$out")"
    echo "== newcomer: cannot go on without an install"
    exit 1
fi
version=$(sed -nE 's/^project\(dynvram VERSION ([0-9.]+).*/\1/p' "$src/CMakeLists.txt")
libdir=$prefix/lib
[ -d "$libdir" ] || libdir=$(dirname "$(find "$prefix" -name 'libdynvram.so' | head -1)")
export PKG_CONFIG_PATH=$libdir/pkgconfig
unset LD_LIBRARY_PATH || true

pc_include=$(pkg-config --cflags-only-I dynvram | sed -E 's/^ *-I//; s/ *$//')
if [ -n "$pc_include" ] && [ "$(realpath "$pc_include")" = "$(realpath "$prefix/include")" ]; then
    ok "pkg-config --cflags points into the prefix ($pc_include)"
else
    bad "pkg-config --cflags: '$pc_include', want $prefix/include"
fi

# ---- 3. the README's C example against the install ------------------------------
step "build the README's C example against the install"
app=$work/app
mkdir -p "$app"
# The C example: the ```c block whose first line is "/* quickstart.c".
awk '/^```c$/ { getline first; if (first ~ /^\/\* quickstart\.c/) { print first; grab = 1; next } }
     grab && /^```$/ { exit }
     grab { print }' "$src/README.md" >"$app/quickstart.c"
readme_block 'newcomer: cmake-project' '```cmake' >"$app/CMakeLists.txt"
if [ ! -s "$app/quickstart.c" ] || [ ! -s "$app/CMakeLists.txt" ]; then
    bad "README: C example or CMake project block not found"
fi
run_example() { # NAME PROGRAM
    local out rc=0
    out=$(DYNVRAM_BACKEND=host "$2" 2>&1) || rc=$?
    if [ $rc -eq 0 ] && grep -Eq '^step 2: [1-9][0-9]* resident \(0 copied\)' <<<"$out"; then
        ok "$1 runs without LD_LIBRARY_PATH: $(tr '\n' ';' <<<"$out" | cut -c1-90)"
    else
        bad "$1: exit $rc" "$out"
    fi
}
if out=$(cd "$app" && cc -std=c11 -Wall -Wextra -Werror quickstart.c \
    $(pkg-config --cflags --libs dynvram) \
    -Wl,-rpath,"$(pkg-config --variable=libdir dynvram)" -o quickstart-pc 2>&1); then
    ok "cc quickstart.c \$(pkg-config --cflags --libs dynvram)"
    run_example "pkg-config build" "$app/quickstart-pc"
else
    bad "cc with pkg-config" "$out"
fi
for flavour in dynvram dynvram_static; do
    d=$work/cmake-$flavour
    mkdir -p "$d"
    cp "$app/quickstart.c" "$d/"
    sed "s/PRIVATE dynvram::dynvram)/PRIVATE dynvram::$flavour)/" "$app/CMakeLists.txt" >"$d/CMakeLists.txt"
    if out=$(cmake -S "$d" -B "$d/build" -DCMAKE_PREFIX_PATH="$prefix" 2>&1 &&
        cmake --build "$d/build" 2>&1); then
        ok "find_package(dynvram) + dynvram::$flavour"
        run_example "CMake build (dynvram::$flavour)" "$d/build/quickstart"
    else
        bad "CMake build against the install (dynvram::$flavour)" "$(tail -20 <<<"$out")"
    fi
done

# ---- 4. the installed tool ------------------------------------------------------------
step "the installed tool, from the prefix, without LD_LIBRARY_PATH"
tool=$prefix/bin/dynvram
expect 0 out "^dynvram $version\$" -- "$tool" --version
expect 0 out "host +available +4 device\(s\).*DYNVRAM_HOST_DEVICES" -- "$tool" info
expect 0 out "host +available +2 device\(s\)" -- env DYNVRAM_HOST_DEVICES=2 "$tool" info
expect any out "host +unavailable.*DYNVRAM_HOST_DEVICES='x'" -- env DYNVRAM_HOST_DEVICES=x DYNVRAM_BACKEND=host "$tool" info

if out=$(python3 "$src/tests/newcomer/readme_check.py" --tool "$tool" "$src" 2>&1); then
    ok "installed dynvram demo --backend host prints the README's sample (times masked)"
else
    bad "the installed demo against the README's sample" "$out"
fi

moved=$work/moved
mv "$prefix" "$moved"
tool=$moved/bin/dynvram
export PKG_CONFIG_PATH=${libdir/#$prefix/$moved}/pkgconfig
pc_include=$(pkg-config --cflags-only-I dynvram | sed -E 's/^ *-I//; s/ *$//')
if [ "$(realpath "$pc_include" 2>/dev/null)" = "$(realpath "$moved/include")" ]; then
    ok "moved install tree: pkg-config follows it ($pc_include)"
else
    bad "moved install tree: pkg-config says '$pc_include'"
fi
expect 0 out "^dynvram $version\$" -- "$tool" --version

# ---- 5. bad options and other rough edges ------------------------------------------------
step "the tool's options, each bad one with its message"
expect 2 err "^usage: dynvram COMMAND" -- "$tool"
expect 0 out "^usage: dynvram COMMAND" -- "$tool" --help
expect 0 out "^usage: dynvram COMMAND" -- "$tool" -h
expect 2 err "unknown option '--bogus'" -- "$tool" --bogus
expect 2 err "unknown command 'bogus'" -- "$tool" bogus
for h in --help -h; do
    expect 0 out "^usage: dynvram info" -- "$tool" info $h
    expect 0 out "^usage: dynvram demo" -- "$tool" demo $h
done
expect 2 err "info: unknown option '--bogus'" -- "$tool" info --bogus
expect 2 err "demo: unknown option '--bogus'" -- "$tool" demo --bogus
expect 2 err "demo: unknown option '--bogus'" -- "$tool" demo --bogus 3
expect 2 err "demo: --steps needs a value" -- "$tool" demo --steps
expect 2 err "demo: --quiet takes no value" -- "$tool" demo --quiet=1
expect 2 err "demo: unexpected argument 'extra'" -- "$tool" demo extra
for v in -5 0 abc 18446744073709551611; do
    expect 2 err "demo: --budget-mib '$v': want a whole number 32\.\.16777216" -- "$tool" demo --budget-mib $v
done
for v in 0 -3 x; do
    expect 2 err "demo: --layers '$v': want a whole number 1\.\.1024" -- "$tool" demo --layers $v
done
expect 2 err "demo: --layer-mib '0': want a whole number 1\.\.1024" -- "$tool" demo --layer-mib 0
for v in 2.5 0 1001 -1 18446744073709551617; do
    expect 2 err "demo: --steps '$v': want a whole number 1\.\.1000" -- "$tool" demo --steps $v
done
expect 2 err "demo: --budget-mib 1 is below one page \(32 MiB" -- "$tool" demo --budget-mib 1
expect 2 err "demo: --budget-mib 1 is below one page \(2 MiB" -- "$tool" demo --layer-mib 2 --budget-mib 1
expect 2 err "demo: --backend '': want" -- "$tool" demo --backend ""
expect 1 err "unknown backend 'bogus'" -- "$tool" demo --backend bogus
expect 0 out "model A +67% +[0-9.]+ +- +512 MiB +- +0$" -- "$tool" demo --backend host --steps 1 --quiet
expect 0 out "budget 64 MiB \(page 2 MiB\)" -- "$tool" demo --backend host --steps 2 --layers 8 --layer-mib 2 --budget-mib 64 --quiet

# A device whose budget cannot hold one page, output redirected to one
# file: the header first, then a message that says what is wrong.
rc=0
DYNVRAM_HOST_CAPACITY=16M "$tool" demo --backend host --budget-mib 64 >"$work/both" 2>&1 || rc=$?
if [ $rc -eq 1 ] && head -n1 "$work/both" | grep -q '^dynvram demo on host:0' &&
    tail -n1 "$work/both" | grep -q "scratch buffer: the device's budget (16 MiB) cannot hold one page (32 MiB)"; then
    ok "budget below a page on the device: header, then the reason (stdout and stderr in order)"
else
    bad "budget below a page on the device (exit $rc)" "$(cat "$work/both")"
fi

rc=0
bash "$src/tools/run.sh" >"$work/out" 2>"$work/err" || rc=$?
if [ $rc -eq 2 ] && head -n1 "$work/err" | grep -q '^usage: bash tools/run.sh' &&
    ! grep -q 'set -\|pipefail\|^#' "$work/err"; then
    ok "bash tools/run.sh (no command) -> 2 with clean usage"
else
    bad "bash tools/run.sh (no command): exit $rc" "$(cat "$work/out" "$work/err")"
fi

mkdir -p "$work/bench"
rc=0
(cd "$work/bench" && "$src/build/bench/dv_bench_ops" --backend host --iters 3 --page-mib 2) \
    >"$work/out" 2>&1 || rc=$?
if [ $rc -eq 0 ] && ls "$work"/bench/ops-*.json >/dev/null 2>&1 &&
    [ -z "$(git -C "$src" status --porcelain)" ]; then
    ok "dv_bench_ops without --json writes $(cd "$work/bench" && ls ops-*.json) into the current directory, not the tree"
else
    bad "dv_bench_ops without --json (exit $rc)" "$(cat "$work/out"; git -C "$src" status --porcelain)"
fi

# ---- 6. Python, as the README says ----------------------------------------------------
if [ "${DV_NEWCOMER_PYTHON:-1}" = 1 ]; then
    step "the README's Python install commands (fresh venv, offline)"
    readme_block 'newcomer: python-install' '```sh' >"$work/python.sh"
    mkdir -p "$work/home"
    rc=0
    # A fresh Debian's PATH and HOME: python3 is Debian's, ~ is empty.
    (cd "$src" && env -i HOME="$work/home" PATH=/usr/bin:/bin LANG=C.UTF-8 \
        bash -e "$work/python.sh") >"$work/out" 2>&1 || rc=$?
    if [ -s "$work/python.sh" ] && [ $rc -eq 0 ] && grep -q "dynvram.Device host:0" "$work/out"; then
        ok "venv --system-site-packages + pip install --no-index: $(tail -n1 "$work/out" | cut -c1-80)"
    else
        bad "README's Python install (exit $rc)" "$(cat "$work/python.sh"; tail -20 "$work/out")"
    fi
fi

echo "== newcomer: $checks checks, $failed failed, $(($(date +%s) - start)) s"
[ $failed -eq 0 ]
