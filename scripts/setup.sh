#!/usr/bin/env bash
# Create .venv (if missing) and install sb3-ext with its test extra.
# torch is installed first and pinned by constraints.txt for every later install,
# so no dependency can pull a newer torch (and its CUDA wheels) on a CPU machine.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
export PIP_DISABLE_PIP_VERSION_CHECK=1
.venv/bin/python -m pip install -q -c constraints.txt torch
.venv/bin/python -m pip install -q -c constraints.txt -e ".[test]"
