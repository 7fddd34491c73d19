#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Build the whole tree once with clang, warnings as errors, and run its CTest
# (every suite, the Python extension and its tests included): clang rejects
# things GCC accepts (-Wstring-plus-int, for one), and the default build
# must compile with both.
#
# Installs clang with apt if it is missing (and, through tools/run.sh deps,
# what the build needs unless DV_SKIP_DEPS=1). Exit status non-zero on any
# failure.
#
# Environment: DV_CLANG_BUILD_DIR (default build-clang), CLANG (default
# clang), JOBS (default nproc).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BUILD=${DV_CLANG_BUILD_DIR:-build-clang}
CLANG=${CLANG:-clang}

say() { printf '== clang: %s\n' "$*"; }
die() { printf '== clang: FAIL: %s\n' "$*" >&2; exit 1; }

bash tools/run.sh deps
if ! command -v "$CLANG" >/dev/null; then
    say "installing clang"
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends clang >/dev/null
fi
command -v "$CLANG" >/dev/null || die "$CLANG not found after installing clang"
say "$("$CLANG" --version | head -n 1)"

# CMake keeps the compiler of the first configure: a build folder made with
# another compiler is started afresh.
cache="$BUILD/CMakeCache.txt"
if [ -f "$cache" ] && ! grep -q "^CMAKE_C_COMPILER:[A-Z]*=$(command -v "$CLANG")\$" "$cache"; then
    say "$BUILD was configured with another compiler: removing it"
    rm -rf "$BUILD"
fi

CC=$(command -v "$CLANG") DV_SKIP_DEPS=1 BUILD_DIR="$BUILD" bash tools/run.sh test

# The build above must really have been a clang build.
id_file=$(find "$BUILD/CMakeFiles" -maxdepth 2 -name CMakeCCompiler.cmake -print -quit)
[ -n "$id_file" ] || die "no CMakeCCompiler.cmake in $BUILD"
grep -q 'set(CMAKE_C_COMPILER_ID "Clang")' "$id_file" || die "$BUILD was not built with clang"
grep -q '^DV_WERROR:BOOL=ON$' "$cache" || die "$BUILD was built without DV_WERROR"
say "PASS (clang build with -Werror, CTest)"
