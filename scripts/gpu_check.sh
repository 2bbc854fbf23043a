#!/usr/bin/env bash
# The CUDA path in one call on a GPU machine: device choice, AMP, training / prediction speed, tune, pretrain, resume.
#   bash scripts/gpu_check.sh OUT_DIR RUN
# RUN is a trained quickstart run (for the predict figures). Needs RNNCLF_CACHE with r8 and 20ng already
# fetched (such machines may have no internet) and rnnclf importable (pip install -e ., or PYTHONPATH=src).
# Every step runs even if one before it failed; the logs go to OUT_DIR.
set -u
out=${1:?usage: gpu_check.sh OUT_DIR RUN}
run=${2:?usage: gpu_check.sh OUT_DIR RUN}
python=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
mkdir -p "$out"
work=$(mktemp -d)

step() {  # step NAME COMMAND...: run it, log to OUT_DIR/NAME.log, say how it went and how long it took
  local name=$1 start=$SECONDS
  shift
  echo "== $name: $*"
  "$@" >"$out/$name.log" 2>&1
  local code=$?
  tail -n 25 "$out/$name.log"
  echo "== $name: exit $code in $((SECONDS - start)) s"
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$python" -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, 'cuDNN', torch.backends.cudnn.version(), 'bf16', torch.cuda.is_bf16_supported())"

# train.device: auto must pick the GPU and train under bf16 autocast (R8; a learned embedding: no GloVe there)
step train "$python" -m rnnclf train --config configs/r8.yaml --set embedding.pretrained=null \
  --set train.epochs=4 --run-dir "$work/r8"
step eval "$python" -m rnnclf eval "$work/r8" --format json
step predict "$python" -m rnnclf predict "$work/r8" "crude oil prices rose sharply" "the bank raised its interest rate" --top-k 2
# the same run on the CPU for comparison of the figures (4 epochs, all host cores)
step train_cpu "$python" -m rnnclf train --config configs/r8.yaml --set embedding.pretrained=null \
  --set train.epochs=4 --set train.device=cpu --run-dir "$work/r8_cpu"

# the benchmark's GPU sections: training (rnnclf vs the notebook's pipeline), FLOP rates, prediction
step bench "$python" -m scripts.bench --device cuda --skip tokenize prepare memory scale --run "$run" \
  --out "$out/bench_cuda.json"

# rnnclf tune on the GPU (issue 14): every trial on CUDA, then the test split once; and its own tests
printf 'train.lr: {low: 0.001, high: 0.01, log: true}\nmodel.hidden_size: [64, 128]\n' >"$work/space.yaml"
step tune "$python" -m rnnclf tune --config configs/r8.yaml --set embedding.pretrained=null --set train.epochs=3 \
  --space "$work/space.yaml" --trials 4 --device cuda --out "$work/r8-tune" --format json
step tune_tests timeout 300 "$python" -m pytest -x -q tests/e2e/test_tune.py tests/recipes/tune -p no:cacheprovider -k "not nproc"

# rnnclf pretrain on the GPU (issue 15): a language model under autocast, a classifier fine-tuned from it, the tests
step pretrain "$python" -m rnnclf pretrain --config configs/r8-lm.yaml --set embedding.pretrained=null \
  --set train.epochs=2 --run-dir "$work/r8-lm"
step finetune "$python" -m rnnclf train --config configs/r8-pretrained.yaml --set model.init="$work/r8-lm" --set train.epochs=3 \
  --run-dir "$work/r8-finetuned"
step pretrain_tests timeout 300 "$python" -m pytest -x -q tests/e2e/test_pretrain.py tests/recipes/test_pretrain.py tests/models/test_language_model.py tests/models/test_layer_groups.py tests/training/test_optim.py -p no:cacheprovider

# issue 16 on CUDA: explanations (cuDNN off under a lock, float32 gradients), calibration under autocast, the tests
step explain "$python" -m rnnclf predict "$work/r8" "crude oil prices rose sharply" "the bank did not raise its rate" \
  --explain --format json --device cuda
step calibration cat "$work/r8/calibration.json"
step trust_tests timeout 300 "$python" -m pytest -x -q tests/inference/test_explain.py tests/e2e/test_predict_explain.py tests/views/test_explanations.py tests/evaluation/test_calibration.py -p no:cacheprovider

# kill-and-resume exactness, the resume tests, with device auto = CUDA here
step resume_tests timeout 240 "$python" -m pytest -x -q tests/e2e/test_train_resume.py tests/training/test_loop.py -p no:cacheprovider
rm -rf "$work"
