#!/usr/bin/env bash
# Set up from a clean clone, then run the linters and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/postgres.sh
.venv/bin/ruff check sb3_ext tuning tests benchmarks
.venv/bin/ruff format --check sb3_ext tuning tests benchmarks
.venv/bin/mypy
.venv/bin/python -m pytest -q "$@"
