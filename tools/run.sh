#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# One command from a fresh Debian 12 machine (as root, or with sudo): installs
# what is missing, builds, then runs the demo or the tests. See usage() below.
set -euo pipefail

usage() {
    cat <<'END'
usage: bash tools/run.sh COMMAND [ARGS]

  demo [ARGS]   install what is missing, build, run `dynvram info`, then
                `dynvram demo ARGS` (on a GPU if one is found, else on the
                host backend; `bash tools/run.sh demo --help` lists ARGS)
  test          install what is missing, build, run every test (CTest)
  deps          only install the packages

Environment: BUILD_DIR (default build), DV_SANITIZE=ON (ASan + UBSan),
DV_SKIP_DEPS=1 (skip the package step), JOBS (default: number of CPUs),
DV_APT_LOCK_WAIT (seconds to wait for another apt or dpkg; default 600).
END
}

cd "$(dirname "$0")/.."
top=$(pwd)
build=${BUILD_DIR:-build}
jobs=${JOBS:-$(nproc)}
apt_lock_wait=${DV_APT_LOCK_WAIT:-600}
sudo=""

# Everything the build and the tests use, from Debian 12's archive.
# python3-pip/-wheel/-venv: the README's offline install of the Python
# package into a venv; python3-torch: the CPU half of dynvram.torch's tests.
PACKAGES=(build-essential cmake ninja-build pkg-config git
          libcriterion-dev
          libze-dev libze1
          libamdhip64-dev
          gcc-mingw-w64-x86-64
          python3 python3-dev python3-pytest python3-numpy python3-setuptools
          python3-pip python3-wheel python3-venv
          python3-torch)

# apt-get that waits while another apt or dpkg (unattended-upgrades, a second
# shell) holds the package locks, instead of failing at once with exit 100.
# DPkg::Lock::Timeout makes apt itself wait for dpkg's lock; the lock of the
# package lists (`apt-get update`) ignores that option, so a lock failure is
# retried here until the same deadline.
apt_get() {
    local deadline=$(($(date +%s) + apt_lock_wait)) out rc said=0
    while :; do
        rc=0
        out=$($sudo apt-get -o DPkg::Lock::Timeout="$apt_lock_wait" "$@" 2>&1) || rc=$?
        [ $rc -eq 0 ] && return 0
        if grep -q -e "Could not get lock" -e "Unable to lock" <<<"$out" &&
            [ "$(date +%s)" -lt "$deadline" ]; then
            if [ $said = 0 ]; then
                echo "== another apt or dpkg holds the package lock: waiting" \
                    "(up to $apt_lock_wait s in all, DV_APT_LOCK_WAIT)"
                said=1
            fi
            sleep 5
            continue
        fi
        printf '%s\n' "$out" >&2
        return $rc
    done
}

deps() {
    [ "${DV_SKIP_DEPS:-0}" = 1 ] && return 0
    local missing=()
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "== installing: ${missing[*]}"
    echo "   (if another apt or dpkg is running, this waits for it: up to $apt_lock_wait s)"
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    export DEBIAN_FRONTEND=noninteractive
    apt_get update -qq
    apt_get install -y -qq --no-install-recommends "${missing[@]}"
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
-h | --help | help)
    usage
    ;;
*)
    [ -n "${1:-}" ] && echo "tools/run.sh: unknown command '$1'" >&2
    usage >&2
    exit 2
    ;;
esac
