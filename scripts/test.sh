#!/usr/bin/env bash
# The whole test suite on a fresh machine: set up .venv (with the dev tools), lint, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev,all
.venv/bin/ruff check src tests scripts
.venv/bin/python -m pytest "$@"
