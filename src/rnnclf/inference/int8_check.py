"""`rnnclf export RUN --quantize int8`: int8 against fp32 on the run's validation texts, recorded in RUN/int8.json
when int8 is exact enough (what `--int8` then requires)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from rnnclf.errors import RnnclfError
from rnnclf.files import write_json
from rnnclf.inference.evaluate import compare, labelled_split
from rnnclf.inference.int8 import INT8_FILE, MAX_ACCURACY_DROP, MIN_AGREEMENT, judge, quantize_int8, quantized_layers
from rnnclf.inference.predictor import Predictor
from rnnclf.runs.directory import weights_digest


def check_int8(path: Path | str, workers: int = 1, log: Callable[[str], None] = print) -> dict[str, Any]:
    """int8 against fp32 on the run's validation texts: labels agreeing, accuracy of each. Writes RUN/int8.json
    (what `--int8` then requires) only when int8 is exact enough; otherwise one line, nothing written."""
    path = Path(path)
    fp32 = Predictor.load(path, "cpu", workers)
    labelled, _ = labelled_split(fp32.run, None, "valid", "the int8 check needs the run's validation texts")
    log(f"checking int8 against fp32 on {len(labelled):,} validation texts of {fp32.run.path}")
    int8 = Predictor(fp32.run, "cpu", workers=workers)
    int8.model = quantize_int8(int8.model)  # not Predictor(int8=True), which needs the record made here
    quantized, reference, agreement = compare(int8, fp32, labelled)
    record = {
        "texts": len(labelled),
        "data": labelled.source,
        "agreement": agreement,
        "accuracy_fp32": reference["accuracy"],
        "accuracy_int8": quantized["accuracy"],
        "macro_f1_fp32": reference["macro_f1"],
        "macro_f1_int8": quantized["macro_f1"],
        "min_agreement": MIN_AGREEMENT,
        "max_accuracy_drop": MAX_ACCURACY_DROP,
        "quantized": quantized_layers(fp32.model),
        "weights_sha256": weights_digest(path),
    }
    problem = judge(record["agreement"], record["accuracy_fp32"], record["accuracy_int8"])
    if problem:
        raise RnnclfError(f"{path}: int8 is not exact enough for this run: {problem}; {INT8_FILE} not written")
    write_json(path / INT8_FILE, record)
    return record
