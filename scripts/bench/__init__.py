"""Speed and scale of rnnclf, measured side by side in one run: figures and ratios, never pass/fail.

    .venv/bin/python -m scripts.bench [--quick] [--threads N] [--steps 60] [--skip SECTION ...] [--out bench.json]

Run it from the repository root: `scripts.bench` is this package, found from the working directory (from elsewhere,
put the repository root on PYTHONPATH). Its child processes (the scale and lesson sections) run the same way.

Sections (each can be skipped with --skip NAME):
  reference  training tokens/s of the reference workload (20ng, word tokens, embedding 100, 1-layer
             bidirectional LSTM 128, batch 64, max_length 400) through rnnclf's own pipeline; then the same
             for the quickstart workload (R8, bidirectional GRU 128, batch 32)
  naive      the lesson notebook's pipeline on the same data and model sizes: DataLoader with random batches,
             Python regex tokenizer + dict vocabulary in the collate function, packed nn.LSTM / GRU; the ratios
  flops      the recurrent layers' achieved FLOP/s as a fraction of this machine's fp32 torch.mm rate
  predict    Predictor throughput (texts/s) and single-text latency on the quickstart run
  tokenize   rnnclf.data.tokenizer.encode on 100,000 short documents, next to the naive Python tokenizer
  prepare    a cold prepare() (temporary token cache) against a cached second prepare() on 20ng
  memory     peak resident memory of `rnnclf train` (one epoch of the reference workload) in a subprocess
  scale      a generated corpus of 100k / 300k / 1M short documents: prepare() and a bounded training run,
             each size in its own subprocesses: wall times and peak resident memory
  distributed  `rnnclf train --nproc 1` vs `--nproc 2` (torchrun, gloo) on the quickstart workload, 1 epoch,
             the same cores shared out: tokens/s of all processes together
  matrix, busy, int8  the states users are in: every encoder x pooling x direction and the lesson's configs; two
             trainings at once against one alone; whole-process `rnnclf predict --input` fp32 vs --int8
  wide, linear  `rnnclf train` with and without model.wide (tokens/s, the fit, whole process); the linear model
             alone: its training on 20NG, `rnnclf predict --input` over 20,000 texts next to a recurrent model

Everything runs on the CPU unless --device cuda: then training (with AMP, as `rnnclf train` does: bf16 where
supported, else fp16 with a gradient scaler), the naive pipeline (fp32, as the notebook), the matmul rates (fp32 and
the AMP dtype) and prediction run on the GPU; tokenize, prepare, memory and scale stay CPU figures (skip them there
if the host's CPU is not the point). These 2-core machines are noisy: run on an idle machine; the load average is
printed at the start and the end. `--quick` shrinks every size so the whole script takes well under a minute
(a smoke test; its figures mean little). Results are printed as they are measured and written as JSON to --out
after every section.

Modules: __main__ (options, running the sections, the JSON, the summary), common (the plan and its sizes, the
workloads' configs, timing, machine info, subprocess helpers), pipelines (rnnclf's training pipeline and the
notebook's), training (reference, naive), flops, predict, tokens (tokenize, prepare), scale (memory, scale),
distributed, states (matrix, busy, int8), wide (wide, linear), summary (the final table).
"""
