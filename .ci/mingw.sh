#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Cross-compile dynvram for Windows with mingw-w64 and check the result:
#   1. configure and build everything (all backends, the tool) with -Werror;
#   2. dynvram.dll exports only dv_ names, and every DV_API function of the
#      public headers; dynvram.dll and dynvram.exe import only Windows' own
#      DLLs (vendor libraries are loaded at run time, libgcc is static);
#   3. build the smoke programs of tests/windows;
#   4. if Wine is present, run them and the tool (optional: skipped with a
#      message otherwise; set DV_MINGW_REQUIRE_WINE=1 to make it required).
# Installs nothing: needs cmake and gcc-mingw-w64-x86-64 (and wine64 for 4).
# Exit status non-zero on any failure.
#
# Environment: DV_MINGW_BUILD_DIR (default build-mingw), MINGW_PREFIX
# (default x86_64-w64-mingw32), DV_MINGW_REQUIRE_WINE.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PREFIX=${MINGW_PREFIX:-x86_64-w64-mingw32}
BUILD=${DV_MINGW_BUILD_DIR:-build-mingw}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
CC="$PREFIX-gcc"
OBJDUMP="$PREFIX-objdump"
STRINGS="$PREFIX-strings"
JOBS=$(nproc 2>/dev/null || echo 2)
CFLAGS_SMOKE=(-std=c11 -O1 -Wall -Wextra -Wshadow -Wstrict-prototypes
              -Wmissing-prototypes -Werror -D__USE_MINGW_ANSI_STDIO=1
              -static-libgcc)

say() { printf '== mingw: %s\n' "$*"; }
die() { printf '== mingw: FAIL: %s\n' "$*" >&2; exit 1; }

for tool in cmake "$CC" "$OBJDUMP" "$STRINGS"; do
    command -v "$tool" >/dev/null || die "$tool not found (apt-get install cmake gcc-mingw-w64-x86-64)"
done

# ---- 1. build ----------------------------------------------------------------
# DV_PYTHON empty: this machine's CPython headers describe Linux, not the
# target (Windows wheels are built by pip on Windows).
say "configure in $BUILD"
mkdir -p "$BUILD"
cmake -S "$ROOT" -B "$BUILD" \
    -DCMAKE_TOOLCHAIN_FILE="$ROOT/cmake/mingw-w64-x86_64.cmake" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DDV_WITH_CUDA=ON -DDV_WITH_HIP=ON -DDV_WITH_LEVELZERO=ON \
    -DDV_BUILD_TOOLS=ON -DDV_BUILD_TESTS=OFF -DDV_BUILD_BENCH=OFF \
    -DDV_PYTHON= \
    -DDV_WERROR=ON >"$BUILD/configure.log" 2>&1 \
    || { cat "$BUILD/configure.log"; die "configure failed"; }
say "build"
cmake --build "$BUILD" -j "$JOBS" || die "build failed"

DLL="$BUILD/dynvram.dll"
IMPLIB="$BUILD/libdynvram.dll.a"
STATIC="$BUILD/libdynvram_static.a"
EXE=$(find "$BUILD" -name dynvram.exe -print -quit)
[ -f "$DLL" ] || die "no dynvram.dll in $BUILD"
[ -f "$IMPLIB" ] || die "no import library libdynvram.dll.a in $BUILD"
[ -f "$STATIC" ] || die "no libdynvram_static.a in $BUILD"
[ -n "$EXE" ] || die "no dynvram.exe in $BUILD"

# Every backend must really be in (a compiled-out one would say so).
DLL_STRINGS=$("$STRINGS" -a "$DLL")
for b in cuda hip levelzero; do
    if grep -qx "backend '$b' is not compiled into this build" <<<"$DLL_STRINGS"; then
        die "backend $b was compiled out"
    fi
done

# ---- 2. exports and imports ----------------------------------------------------
exports() {
    "$OBJDUMP" -p "$1" | awk '/\[Ordinal\/Name Pointer\] Table/ {t = 1; next}
                             t && /^[[:space:]]*\[/ {print $NF; next}
                             t {t = 0}'
}
imports() {
    "$OBJDUMP" -p "$1" | awk '/DLL Name:/ {print $3}'
}

mapfile -t EXPORTS < <(exports "$DLL")
[ "${#EXPORTS[@]}" -gt 0 ] || die "dynvram.dll exports nothing"
bad=$(printf '%s\n' "${EXPORTS[@]}" | grep -v '^dv_' || true)
[ -z "$bad" ] || die "dynvram.dll exports names without the dv_ prefix: $(echo $bad)"

# The DV_API functions declared by the public headers.
mapfile -t PUBLIC < <(sed -n '/^DV_API/,/(/p' include/dynvram*.h | tr '\n' ' ' |
                      grep -o '[A-Za-z_][A-Za-z0-9_]*[[:space:]]*(' |
                      tr -d ' (' | grep '^dv_' | sort -u)
[ "${#PUBLIC[@]}" -ge 20 ] || die "found only ${#PUBLIC[@]} DV_API functions in include/"
# (A lookup table, not `printf | grep -q`: under pipefail an early grep exit
# makes printf's SIGPIPE fail the pipeline.)
declare -A EXPORTED=()
for f in "${EXPORTS[@]}"; do EXPORTED[$f]=1; done
missing=()
for f in "${PUBLIC[@]}"; do
    [ -n "${EXPORTED[$f]:-}" ] || missing+=("$f")
done
[ "${#missing[@]}" -eq 0 ] || die "dynvram.dll does not export: ${missing[*]}"
for f in dv_hal_cuda dv_hal_hip dv_hal_levelzero dv_hal_host dv_hal_by_name \
         dv_backend_count dv_backend_probe dv_device_open dv_last_error; do
    [ -n "${EXPORTED[$f]:-}" ] || die "core getter $f not exported"
done
say "exports: ${#EXPORTS[@]} names, all dv_, all ${#PUBLIC[@]} public functions present"

# Windows' own DLLs only: nvcuda, amdhip64, ze_loader are loaded at run
# time, and libgcc / winpthread must not be needed next to the DLL.
check_imports() {
    local f=$1 allowed=$2 d
    for d in $(imports "$f"); do
        echo "$d" | grep -qiE "^($allowed)$" || die "$(basename "$f") imports $d"
    done
}
SYSTEM='kernel32\.dll|msvcrt\.dll|ucrtbase\.dll|advapi32\.dll|ntdll\.dll|api-ms-win-[a-z0-9-]+\.dll'
check_imports "$DLL" "$SYSTEM"
check_imports "$EXE" "$SYSTEM|dynvram\.dll"
say "imports: $(imports "$DLL" | tr '\n' ' ')"

# The CUDAPluggableAllocator pair on the driver API (bindings/interpose/
# pluggable.c), the Windows route for torch's allocations: its own names,
# Windows' own DLLs (nvcuda.dll is loaded at run time).
PLUG=$(find "$BUILD" -name libdynvram_pluggable.dll -print -quit)
[ -n "$PLUG" ] || die "no libdynvram_pluggable.dll in $BUILD"
mapfile -t PEXPORTS < <(exports "$PLUG")
bad=$(printf '%s\n' "${PEXPORTS[@]}" | grep -v '^dv_pluggable_' || true)
[ -z "$bad" ] || die "libdynvram_pluggable.dll exports $(echo $bad)"
[ "${#PEXPORTS[@]}" -eq 6 ] || die "libdynvram_pluggable.dll exports ${#PEXPORTS[@]} names, not 6"
check_imports "$PLUG" "$SYSTEM"
say "pluggable allocator: ${PEXPORTS[*]}"

# ---- 3. smoke programs ------------------------------------------------------------
say "build tests/windows smoke programs"
"$CC" "${CFLAGS_SMOKE[@]}" -DDYNVRAM_SHARED -Iinclude tests/windows/smoke_api.c \
    -o "$BUILD/dv_smoke_api.exe" "$IMPLIB" || die "smoke_api build failed"
"$CC" "${CFLAGS_SMOKE[@]}" -Iinclude -Ibase/include -I. tests/windows/smoke_os.c \
    -o "$BUILD/dv_smoke_os.exe" "$STATIC" || die "smoke_os build failed"
"$CC" "${CFLAGS_SMOKE[@]}" -Iinclude -Ibindings/interpose \
    tests/windows/smoke_pluggable.c -o "$BUILD/dv_smoke_pluggable.exe" \
    || die "smoke_pluggable build failed"
"$CC" "${CFLAGS_SMOKE[@]}" -Iinclude -Ibase/include -I. tests/windows/smoke_io.c \
    -o "$BUILD/dv_smoke_io.exe" "$STATIC" || die "smoke_io build failed"
check_imports "$BUILD/dv_smoke_api.exe" "$SYSTEM|dynvram\.dll"
check_imports "$BUILD/dv_smoke_os.exe" "$SYSTEM"
check_imports "$BUILD/dv_smoke_pluggable.exe" "$SYSTEM"
check_imports "$BUILD/dv_smoke_io.exe" "$SYSTEM"

# ---- 4. run under Wine (optional) ------------------------------------------------
WINE=$(command -v wine64 || command -v wine || true)
if [ -z "$WINE" ] && [ -x /usr/lib/wine/wine64 ]; then
    WINE=/usr/lib/wine/wine64 # Debian's wine64 package puts it only here
fi
if [ -z "$WINE" ]; then
    [ "${DV_MINGW_REQUIRE_WINE:-0}" = 1 ] && die "wine not found and DV_MINGW_REQUIRE_WINE=1"
    say "wine not found: skipping the run step (apt-get install wine64 to enable)"
    say "PASS (build and export checks)"
    exit 0
fi

export WINEPREFIX="$BUILD/wineprefix" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
export WINEPATH="$BUILD"
WINESERVER=$(dirname "$WINE")/wineserver
[ -x "$WINESERVER" ] || WINESERVER=$(command -v wineserver || true)
stop_wine() { [ -n "$WINESERVER" ] && "$WINESERVER" -k >/dev/null 2>&1 || true; }
trap stop_wine EXIT

run() { # run <name> <exe> [args...]: output shown, status returned
    local name=$1
    shift
    say "wine: $name"
    timeout 300 "$WINE" "$@" 2>&1 | tr -d '\r' | tee "$BUILD/wine-$name.log"
    return "${PIPESTATUS[0]}"
}

run smoke_os "$BUILD/dv_smoke_os.exe" || die "smoke_os failed under wine"
run smoke_io "$BUILD/dv_smoke_io.exe" || die "smoke_io failed under wine"
run smoke_api "$BUILD/dv_smoke_api.exe" || die "smoke_api failed under wine"
run smoke_pluggable "$BUILD/dv_smoke_pluggable.exe" "$PLUG" ||
    die "smoke_pluggable failed under wine"
info_rc=0
run info "$EXE" info || info_rc=$?
grep -q '^ *host ' "$BUILD/wine-info.log" || die "dynvram.exe info did not list the host backend"
if grep -q '^host backend: available' "$BUILD/wine-smoke_api.log"; then
    [ "$info_rc" -eq 0 ] || die "dynvram.exe info failed under wine ($info_rc)"
    run demo "$EXE" demo --backend host --steps 2 || die "dynvram.exe demo failed under wine"
else
    # Wine 8 has VirtualAlloc2 but no placeholders: the host backend
    # correctly reports itself unavailable; with no GPU either, info says
    # "no backend" by exiting 1, and there is nothing to demo.
    [ "$info_rc" -le 1 ] || die "dynvram.exe info failed under wine ($info_rc)"
    say "host backend unavailable under this wine: demo skipped"
fi
say "PASS (build, export checks, wine runs)"
