#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# CI: a newcomer's first hour (tests/newcomer/newcomer.sh): a fresh clone of
# this repository built and installed to a temporary prefix, the README's C
# example built against it with pkg-config and with CMake, the installed
# tool run without LD_LIBRARY_PATH and fed every bad option, the README's
# Python install commands run in a fresh venv. Needs `tools/run.sh deps`.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== newcomer: tests/newcomer/newcomer.sh"
bash tests/newcomer/newcomer.sh "$(pwd)"
