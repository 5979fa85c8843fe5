#!/usr/bin/env bash
# Set up from a clean clone, then run the linters and the whole test suite (what CI runs).
# --fast leaves out the tests marked slow (learning, subprocess and multi-process tests), for the edit loop;
# any other argument goes to pytest (e.g. tests/d3qn, -k rainbow).
set -euo pipefail
cd "$(dirname "$0")/.."
pytest_args=()
for arg in "$@"; do
  if [ "$arg" = "--fast" ]; then pytest_args+=(-m "not slow"); else pytest_args+=("$arg"); fi
done
bash scripts/setup.sh
bash scripts/postgres.sh
.venv/bin/ruff check sb3_ext tuning tests benchmarks
.venv/bin/ruff format --check sb3_ext tuning tests benchmarks
.venv/bin/mypy
.venv/bin/python -m pytest -q ${pytest_args[@]+"${pytest_args[@]}"}
