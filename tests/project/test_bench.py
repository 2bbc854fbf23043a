"""`python -m scripts.bench` in its smallest mode runs every section and writes its JSON (figures only, no thresholds)."""

import json
import subprocess
import sys

import pytest

from helpers import ROOT


@pytest.mark.slow
def test_bench_quick(tmp_path):
    out = tmp_path / "bench.json"
    command = [sys.executable, "-m", "scripts.bench", "--quick", "--threads", "1", "--out", str(out)]
    # a run directory that does not exist: the predict section trains its own tiny R8 model
    command += ["--run", str(tmp_path / "no-run")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=ROOT)  # scripts.bench from here
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads(out.read_text())
    for section in (
        "machine",
        "training",
        "training_quickstart",
        "flops",
        "predict",
        "tokenize",
        "prepare",
        "memory",
        "scale",
        "distributed",
        "matrix",
        "busy",
        "int8",
        "wide",
        "linear",
    ):
        assert section in results and "error" not in results[section], section
    assert results["training"]["ratio"] > 0 and results["flops"]["rnnclf"]["fraction_of_matmul"] > 0
    assert [row["docs"] for row in results["scale"]["sizes"]] == [2_000, 5_000]
    for row in results["scale"]["sizes"]:  # the second process trains from the first one's token cache
        assert row["second_prepare_from_cache"] and row["prepare_peak_mib"] > 0 and row["train_peak_mib"] > 0
    assert results["memory"]["peak_mib"] > results["memory"]["import_baseline_mib"] > 0
    assert results["summary"] and "summary" in done.stdout
    assert len(results["matrix"]["cells"]) == 20 and all(
        cell["tokens_per_s"] > 0 for cell in results["matrix"]["cells"]
    )
    assert results["matrix"]["lesson"][-1]["ratio"] > 0
    assert len(results["busy"]["together_seconds"]) == 2 and results["busy"]["alone_seconds"] > 0
    assert results["int8"]["int8_texts_per_s"] > 0 and results["int8"]["latency_p99_ms"] > 0
    wide, linear = results["wide"], results["linear"]
    assert wide["throughput_ratio"] > 0 and wide["wide"]["fit_seconds"] > 0 and wide["process_ratio"] > 0
    assert linear["test_accuracy"] > 0.8 and linear["linear_predict_texts_per_s"] > 0
    assert linear["recurrent_predict_texts_per_s"] > 0
