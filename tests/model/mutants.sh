#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# tests/model/mutants.sh - show that the model-based tester can fail.
#
# Copies the source tree to a temporary directory, builds only the library
# and the tester (dv_model) there, runs the tester on the unmodified tree
# (it must pass), then applies each deliberate breakage of
# tests/model/mutants/*.mut to the library (core/, base/, hal/host/) in
# turn, rebuilds, and requires the
# tester to FAIL. Prints, per mutant, the check that caught it, the seed and
# the call number. Exit status 0 when the pristine tree passes and every
# mutant is caught, 1 otherwise.
#
# A .mut file: '#' comment lines, then
#   file=<path under the source root>
#   find=<one exact line of that file (must occur exactly once)>
#   replace=<its replacement>
# A mutant whose line no longer exists fails the run with a message saying
# which file to update, so a change in the library cannot silently
# disable one.
#
# Environment: MUTANT_SEEDS (default 1), MUTANT_SEQUENCES (default 1000),
# MUTANT_CALLS (default 1000), MUTANT_DIR (default a fresh mktemp -d,
# removed at the end), JOBS (default 2), CC (compiler).
set -euo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
seeds=${MUTANT_SEEDS:-1}
sequences=${MUTANT_SEQUENCES:-1000}
calls=${MUTANT_CALLS:-1000}
jobs=${JOBS:-2}
work=${MUTANT_DIR:-}
if [ -z "$work" ]; then
    work=$(mktemp -d /tmp/dv-mutants.XXXXXX)
    trap 'rm -rf "$work"' EXIT
fi
tree=$work/src
build=$work/build

echo "== mutants: copying the tree to $tree"
rm -rf "$tree"
mkdir -p "$tree"
if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$src" && git ls-files -z -co --exclude-standard |
        tar --null -T - -cf - 2>/dev/null) | tar -xf - -C "$tree"
else
    tar -C "$src" --exclude='./build*' --exclude=./.git -cf - . | tar -xf - -C "$tree"
fi

cmake -S "$tree" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DDV_WERROR=ON -DDV_BUILD_BINDINGS=OFF -DDV_BUILD_BENCH=OFF \
    -DDV_BUILD_TOOLS=OFF -DDV_WITH_CUDA=OFF -DDV_WITH_HIP=OFF \
    -DDV_WITH_LEVELZERO=OFF >/dev/null

# The tester's verdict on the tree as it is now: "PASS" or the failure line.
run_tester() {
    cmake --build "$build" -j "$jobs" --target dv_model >"$work/build.log" 2>&1 || {
        echo "BUILD-FAILED"
        return
    }
    local out rc=0
    out=$("$build/tests/dv_model" --seed "$seeds" --sequences "$sequences" \
        --calls "$calls" --dead-handles 0 --quiet 2>&1) || rc=$?
    if [ "$rc" -eq 0 ]; then
        echo "PASS"
    else
        local line
        line=$(printf '%s\n' "$out" | grep -m1 -E '^dv_model: FAIL' || true)
        echo "${line:-FAIL (exit $rc, no report: $(printf '%s' "$out" | tail -c 300))}"
    fi
}

# Apply one .mut file to the tree; fails unless its line occurs exactly once.
# Sets $file to the path it changed.
apply_mutant() {
    local mut=$1 find="" replace="" line
    file=""
    while IFS= read -r line || [ -n "$line" ]; do
        case "$line" in
        file=*) file=${line#file=} ;;
        find=*) find=${line#find=} ;;
        replace=*) replace=${line#replace=} ;;
        esac
    done <"$mut"
    if [ -z "$file" ] || [ -z "$find" ] || [ ! -f "$tree/$file" ]; then
        echo "mutant $(basename "$mut"): bad file= / find= lines" >&2
        return 1
    fi
    local n
    n=$(grep -cxF -- "$find" "$tree/$file" || true)
    if [ "$n" != 1 ]; then
        echo "mutant $(basename "$mut"): the line to break occurs $n times in" \
            "$file (expected once); update $mut to the current code" >&2
        return 1
    fi
    local tmp=$tree/$file.mutant
    while IFS= read -r line || [ -n "$line" ]; do
        if [ "$line" = "$find" ]; then
            printf '%s\n' "$replace"
        else
            printf '%s\n' "$line"
        fi
    done <"$tree/$file" >"$tmp"
    mv "$tmp" "$tree/$file"
}

status=0
echo "== mutants: the unmodified tree (seeds $seeds.., $sequences sequences x $calls calls)"
verdict=$(run_tester)
echo "   unmodified: $verdict"
if [ "$verdict" = BUILD-FAILED ]; then
    cat "$work/build.log"
fi
if [ "$verdict" != PASS ]; then
    echo "the tester fails on the unmodified tree: fix that first"
    exit 1
fi

printf '%-36s %-22s %-8s %s\n' mutant "caught by check" seed call
for mut in "$src"/tests/model/mutants/*.mut; do
    name=$(basename "$mut" .mut)
    if ! apply_mutant "$mut"; then
        status=1
        continue
    fi
    verdict=$(run_tester)
    if [ "$verdict" = PASS ]; then
        printf '%-36s %s\n' "$name" "NOT CAUGHT: the tester passed"
        status=1
    elif [ "$verdict" = BUILD-FAILED ]; then
        printf '%-36s %s\n' "$name" "does not build: update $mut"
        grep -E 'error|FAILED' "$work/build.log" | head -5
        status=1
    else
        check=$(sed -n 's/.*check=\([^ ]*\).*/\1/p' <<<"$verdict")
        seed=$(sed -n 's/.*seed=\([0-9]*\).*/\1/p' <<<"$verdict")
        call=$(sed -n 's/.*call=\([0-9]*\).*/\1/p' <<<"$verdict")
        printf '%-36s %-22s %-8s %s\n' "$name" "${check:-?}" "${seed:-?}" "${call:-?}"
        [ -n "$check" ] || echo "   ($verdict)"
    fi
    # Restore the file (a fresh mtime, so the build picks it up again).
    cp "$src/$file" "$tree/$file"
done
exit $status
