# shellcheck shell=bash disable=SC2034
# SPDX-License-Identifier: Apache-2.0
#
# tests/gpu/lib.sh - shared by the GPU run scripts (run.sh, multi_run.sh);
# source it, do not run it. The caller sets $summary (its summary file) and
# $failed (0) before calling these.
#
#   note TEXT...                 print and append to $summary
#   step_result NAME RC SECONDS  PASS/FAIL line; a failure sets failed=1
#   dv_record_machine TOP JOBS   machine, GPUs, driver, tools, to stdout
#   dv_find_criterion TOP DEPS   makes Criterion visible to pkg-config and
#       the linker: the system's, else .gpu-deps/ (copied from a Debian 12
#       machine, see README.md), else .debs/*.deb unpacked into DEPS. Sets
#       have_criterion (0/1) and criterion_from; exports PKG_CONFIG_PATH,
#       LD_LIBRARY_PATH, LIBRARY_PATH and PATH as needed.

note() { echo "$*" | tee -a "$summary"; }
step_result() { # name rc seconds
    if [ "$2" -eq 0 ]; then
        note "PASS  $1 ($3 s)"
    else
        note "FAIL  $1 (exit $2, $3 s)"
        failed=1
    fi
}

dv_record_machine() { # top jobs
    local top=$1 jobs=$2
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "host: $(hostname 2>/dev/null || echo unknown)"
    echo "kernel: $(uname -a)"
    echo "source: $top"
    if git -C "$top" rev-parse HEAD >/dev/null 2>&1; then
        echo "commit: $(git -C "$top" rev-parse HEAD)"
        echo "dirty files: $(git -C "$top" status --porcelain | wc -l)"
    fi
    echo
    echo "== nvidia-smi"
    nvidia-smi 2>&1 || echo "nvidia-smi failed"
    echo
    echo "== nvidia-smi --query-gpu"
    nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,pcie.link.gen.current,pcie.link.width.current,clocks.max.sm \
        --format=csv 2>&1 || true
    echo
    echo "== libcuda"
    ldconfig -p 2>/dev/null | grep -E 'libcuda\.so' || echo "libcuda not in the ldconfig cache"
    echo
    echo "== tools"
    gcc --version 2>&1 | head -1
    cmake --version 2>&1 | head -1
    command -v ninja >/dev/null && echo "ninja $(ninja --version)"
    command -v pkg-config >/dev/null && echo "pkg-config $(pkg-config --version)" \
        || echo "pkg-config: missing"
    echo "cpus: $jobs"
}

dv_find_criterion() { # top deps
    local top=$1 deps=$2 f d pc multiarch libdir
    have_criterion=0
    criterion_from=""
    if command -v pkg-config >/dev/null && pkg-config --exists criterion 2>/dev/null; then
        have_criterion=1
        criterion_from="system"
    elif [ -f "$top/.gpu-deps/lib/pkgconfig/criterion.pc" ]; then
        # Criterion's libraries copied from a Debian 12 machine (see
        # tests/gpu/README.md); system copies of common libraries win, the
        # fallback/ ones fill in only what this machine lacks.
        for f in "$top"/.gpu-deps/fallback/*; do
            [ -e "$f" ] || continue
            ldconfig -p 2>/dev/null | grep -q "$(basename "$f") " ||
                cp -a "$f" "$top/.gpu-deps/lib/"
        done
        export PKG_CONFIG_PATH="$top/.gpu-deps/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
        export LD_LIBRARY_PATH="$top/.gpu-deps/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        export LIBRARY_PATH="$top/.gpu-deps/lib${LIBRARY_PATH:+:$LIBRARY_PATH}"
        command -v pkg-config >/dev/null || export PATH="$top/.gpu-deps/bin:$PATH"
        if pkg-config --exists criterion 2>/dev/null; then
            have_criterion=1
            criterion_from=".gpu-deps"
        fi
    elif [ -d "$top/.debs" ] && ls "$top"/.debs/*.deb >/dev/null 2>&1; then
        if command -v dpkg >/dev/null; then
            rm -rf "$deps" && mkdir -p "$deps"
            for d in "$top"/.debs/*.deb; do
                dpkg -x "$d" "$deps" || note "WARN  dpkg -x failed for $(basename "$d")"
            done
            # The .pc files say prefix=/usr: point them at the unpacked tree.
            # We link shared, so drop Requires.private (criterion.pc lists
            # libffi, libgit2, nanomsg: pkg-config would insist on their .pc
            # files).
            while IFS= read -r pc; do
                sed -i -e "s|^prefix=.*|prefix=$deps/usr|" -e '/^Requires.private:/d' "$pc"
            done < <(find "$deps" -name '*.pc' 2>/dev/null)
            multiarch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
            libdir=$deps/usr/lib/$multiarch
            export PKG_CONFIG_PATH="$libdir/pkgconfig:$deps/usr/lib/pkgconfig:$deps/usr/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
            export LD_LIBRARY_PATH="$libdir:$deps/usr/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
            export LIBRARY_PATH="$libdir${LIBRARY_PATH:+:$LIBRARY_PATH}"
            export PATH="$deps/usr/bin:$PATH"
            if ! command -v pkg-config >/dev/null && [ -x "$deps/usr/bin/pkgconf" ]; then
                ln -sf pkgconf "$deps/usr/bin/pkg-config"
            fi
            if command -v pkg-config >/dev/null && pkg-config --exists criterion 2>/dev/null; then
                have_criterion=1
                criterion_from=".debs ($(ls "$top"/.debs/*.deb | wc -l) packages)"
            fi
        else
            note "WARN  .debs/ present but dpkg is missing"
        fi
    fi
}

# dv_build_python TOP PYTHON DEST LOG: the dynvram package (and the
# comfy_aimdo drop-in) for PYTHON into
# DEST (pip, offline, no build isolation; falls back to the CMake build of
# the extension in DEST.cmake). Returns pip's / CMake's status.
dv_build_python() { # top python dest log
    local top=$1 py dest=$3 log=$4
    py=$(command -v "$2" || echo "$2") # CMake wants a path, not a name
    rm -rf "$dest" "$dest.cmake"
    (
        if (cd "$top" && "$py" -m pip install --no-build-isolation --no-deps \
                --no-index --target "$dest" ./bindings/python \
                ./bindings/comfy_aimdo); then
            exit 0
        fi
        echo "pip build failed; trying the CMake build of the extension"
        cmake -S "$top" -B "$dest.cmake" -DCMAKE_BUILD_TYPE=Release \
            -DDV_BUILD_TESTS=OFF -DDV_BUILD_BENCH=OFF -DDV_BUILD_TOOLS=OFF \
            -DDV_WERROR=OFF -DDV_PYTHON="$py" &&
            cmake --build "$dest.cmake" -j "$(nproc 2>/dev/null || echo 4)" \
                --target dv_python_native &&
            cp -r "$dest.cmake/python" "$dest"
    ) >"$log" 2>&1
}
