#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# One command from a fresh Debian 12 machine (as root, or with sudo):
#   bash tools/run.sh demo    install what is missing, build, run `dynvram demo`
#                             (on a GPU if one is found, else on the host backend)
#   bash tools/run.sh test    install what is missing, build, run every test
#   bash tools/run.sh deps    only install the packages
#
# Environment: BUILD_DIR (default build), DV_SANITIZE=ON for ASan+UBSan,
# DV_SKIP_DEPS=1 to skip the package step, JOBS (default nproc).
set -euo pipefail

cd "$(dirname "$0")/.."
top=$(pwd)
build=${BUILD_DIR:-build}
jobs=${JOBS:-$(nproc)}

# Everything the build and the tests use, from Debian 12's archive.
PACKAGES=(build-essential cmake ninja-build pkg-config git
          libcriterion-dev
          libze-dev libze1
          libamdhip64-dev
          gcc-mingw-w64-x86-64
          python3 python3-dev python3-pytest python3-numpy python3-setuptools)

deps() {
    [ "${DV_SKIP_DEPS:-0}" = 1 ] && return 0
    local missing=()
    for p in "${PACKAGES[@]}"; do
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

configure_and_build() {
    echo "== building in $build (sanitizers: ${DV_SANITIZE:-OFF})"
    cmake -S "$top" -B "$build" -G Ninja \
        -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" \
        -DDV_SANITIZE="${DV_SANITIZE:-OFF}" -DDV_WERROR=ON >/dev/null
    cmake --build "$build" -j "$jobs"
}

case "${1:-}" in
deps)
    deps
    ;;
demo)
    deps
    configure_and_build
    "$build/tools/dynvram" info || true
    echo
    exec "$build/tools/dynvram" demo "${@:2}"
    ;;
test)
    deps
    configure_and_build
    echo "== running the tests"
    cd "$build"
    ctest --output-on-failure -j "$jobs" --timeout 600
    ;;
*)
    sed -n '4,12p' "$0"
    exit 2
    ;;
esac
