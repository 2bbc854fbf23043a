"""Commands on run directories: eval, predict, report, calibrate (serve and export: cli/deploy.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from rnnclf.cli.app import (
    Backend,
    Device,
    Format,
    ReportFormat,
    SplitName,
    app,
    log,
    output_format,
)
from rnnclf.errors import RnnclfError

Threshold = Annotated[
    float | None,
    typer.Option(
        "--threshold",
        help="Multi-label runs: one decision threshold for every label, instead of the run's own (thresholds.json).",
    ),
]


@app.command("eval")
def evaluate(
    run: Annotated[Path, typer.Argument(help="Run directory written by `rnnclf train`.")],
    data: Annotated[
        Path | None, typer.Option("--data", help="Labelled file to evaluate on (same columns as training).")
    ] = None,
    split: Annotated[
        SplitName | None, typer.Option("--split", help="The run's own split (default: test if it has one, else valid).")
    ] = None,
    fmt: Annotated[
        Format | None, typer.Option("--format", help="table or json (default: table on a terminal, json otherwise).")
    ] = None,
    device: Annotated[
        Device, typer.Option("--device", help="auto (CUDA when there is one), cpu or cuda.")
    ] = Device.auto,
    int8: Annotated[
        bool,
        typer.Option("--int8", help="The int8 model on the CPU (allowed by `rnnclf export RUN --quantize int8`)."),
    ] = False,
    threshold: Threshold = None,
    coverage: Annotated[
        float | None,
        typer.Option(
            "--coverage",
            help="Also score the prediction sets at this coverage (e.g. 0.9): the share of texts whose set holds "
            "the true label (multi-label: of their labels), the mean set size, abstentions.",
        ),
    ] = None,
) -> None:
    """Accuracy, macro / weighted F1, per-class scores and the confusion matrix of a run; for a multi-label run,
    micro / macro / weighted / samples F1, subset accuracy, Hamming loss, and per label scores and thresholds.

    With --int8: of the int8 model, with the fp32 model's accuracy beside it.

    Example: rnnclf eval runs/quickstart --split test
    """
    from rnnclf.device.cores import available_cores
    from rnnclf.device.threads import use_cpu_threads
    from rnnclf.inference.evaluate import evaluate_run
    from rnnclf.views.plots import save_evaluation_figures
    from rnnclf.views.tables import describe_prediction_sets, format_multilabel_report, format_report

    if data is not None and split is not None:
        raise RnnclfError("give --data or --split, not both")
    use_cpu_threads(1)  # one thread per worker, a worker per core: the fastest way to predict on a CPU
    chosen = split.value if split else None
    report, written = evaluate_run(run, data, chosen, device.value, log, available_cores(), int8, threshold, coverage)
    save_evaluation_figures(report, written, log)
    if output_format(fmt) is Format.json:
        typer.echo(json.dumps(report, indent=2))
        return
    formatter = format_multilabel_report if report.get("multi_label") else format_report
    typer.echo(formatter(report, title=f"{run}{' (int8)' if int8 else ''} on {report['data']}"))
    if "prediction_sets" in report:
        typer.echo(describe_prediction_sets(report["prediction_sets"]))
    if int8:
        fp32, name = report["fp32"], "subset accuracy" if report.get("multi_label") else "accuracy"
        typer.echo(
            f"fp32 beside it: {name} {fp32['accuracy']:.4f}, macro F1 {fp32['macro_f1']:.4f}; "
            f"int8 and fp32 labels agree on {report['agreement']:.2%} of the texts"
        )


PredictInput = Annotated[
    str | None,
    typer.Option("--input", "-i", help="File of texts (one per line, or CSV / TSV / JSONL), or - for stdin."),
]
PredictTextField = Annotated[
    str | None,
    typer.Option(
        "--text-field", help="Column / key of the text in CSV or JSONL input (default: the run's data.text_field)."
    ),
]
TopK = Annotated[
    int | None,
    typer.Option(
        "--top-k",
        "-k",
        min=1,
        help="How many labels to show per text (default 1); multi-label runs: also list the K most probable.",
    ),
]
PredictFormat = Annotated[
    Format | None,
    typer.Option("--format", help="table or json lines (default: table on a terminal, json otherwise)."),
]
PredictDevice = Annotated[Device, typer.Option("--device", help="auto (CUDA when there is one), cpu or cuda.")]
PredictBackend = Annotated[
    Backend,
    typer.Option("--backend", help="torch, or onnx: RUN/model.onnx in ONNX Runtime on the CPU (see `rnnclf export`)."),
]
Int8 = Annotated[
    bool, typer.Option("--int8", help="The int8 model on the CPU (allowed by `rnnclf export RUN --quantize int8`).")
]
Explain = Annotated[
    bool,
    typer.Option(
        "--explain",
        help="Also score each token for the predicted label (multi-label: each label over its threshold, or the "
        "most probable): integrated gradients over the embeddings, toward the label's log-odds.",
    ),
]
ExplainSteps = Annotated[
    int | None,
    typer.Option("--explain-steps", help="Integration steps per text (1 to 1024, default 32); implies --explain."),
]
Coverage = Annotated[
    float | None,
    typer.Option(
        "--coverage",
        help="Also answer a set of labels that holds the true one this often, e.g. 0.9 (conformal, fitted on "
        "validation; multi-label: this share of a text's labels); an empty or full set reads as abstain.",
    ),
]
ExplainHtml = Annotated[
    Path | None,
    typer.Option("--explain-html", help="Write the explanations as one self-contained page; implies --explain."),
]


@app.command()
def predict(
    run: Annotated[Path, typer.Argument(help="Run directory written by `rnnclf train`.")],
    texts: Annotated[list[str] | None, typer.Argument(help="Texts to classify.")] = None,
    input_path: PredictInput = None,
    text_field: PredictTextField = None,
    top_k: TopK = None,
    fmt: PredictFormat = None,
    device: PredictDevice = Device.auto,
    backend: PredictBackend = Backend.torch,
    int8: Int8 = False,
    threshold: Threshold = None,
    explain: Explain = False,
    explain_steps: ExplainSteps = None,
    explain_html: ExplainHtml = None,
    coverage: Coverage = None,
) -> None:
    """Predict labels with probabilities; for a multi-label run, every label over its threshold (maybe none) and
    every label's probability. A text unlike the training data is flagged "out of domain", with the reason.

    With --coverage, each text's prediction set: the labels that hold the true one that often (ABSTAIN when the set
    is empty or holds every label).

    With --explain, each text's tokens with their scores: JSON "explanation": \\[\\[token, score], ...], or coloured
    on a terminal (green supports the label, red speaks against it).

    Example: rnnclf predict runs/quickstart "oil prices rose sharply" --top-k 3

    Example: rnnclf predict runs/quickstart "not a good film" --explain --explain-html why.html

    Example: rnnclf predict runs/quickstart --input texts.txt --coverage 0.9
    """
    from rnnclf.inference.decisions import read_inputs, top_labels
    from rnnclf.inference.trust import assess, trust_of
    from rnnclf.views.predictions import format_label_sets, format_predictions

    explaining = explain or explain_html is not None or explain_steps is not None
    if explaining:
        _check_explainable(run, backend, int8, explain_html, explain_steps, coverage)
    predictor = _predictor(run, backend, device, int8, numpy_ok=not explaining)
    trust = None if explaining else trust_of(predictor, coverage)
    items = list(texts or [])
    if input_path is not None:
        items += read_inputs(input_path, text_field or predictor.run.config.data.text_field)
    if not items:
        raise RnnclfError("no texts to classify: give them as arguments, or --input FILE (or - for stdin)")
    predictor.set_threshold(threshold)
    shown = output_format(fmt).value
    if explaining:
        _explain(predictor, items, top_k, shown, explain_steps, explain_html)
        return
    probs, judged = assess(predictor, items, trust, coverage)
    if predictor.multi_label:
        typer.echo(format_label_sets(items, predictor.label_sets(probs, top_k or 0), shown, judged))
    else:
        typer.echo(format_predictions(items, top_labels(probs, predictor.labels, top_k or 1), shown, judged))


def _check_explainable(
    run: Path, backend: Backend, int8: bool, html: Path | None, steps: int | None, coverage: float | None
) -> None:
    """--explain's refusals, before any work."""
    from rnnclf.inference.ensemble import is_ensemble
    from rnnclf.inference.explain import check_steps

    if coverage is not None:
        raise RnnclfError("--coverage and --explain: choose one (an explanation is of the predicted label)")

    if is_ensemble(run):
        raise RnnclfError(f"{run}: --explain explains one model, not an ensemble's mean; explain with a member")

    if steps is not None:
        check_steps(steps)
    if backend is Backend.onnx:
        raise RnnclfError("--explain needs the torch model's gradients; drop --backend onnx")
    if int8:
        raise RnnclfError("--explain needs the fp32 model's gradients (int8 layers have none); drop --int8")
    if html is not None:
        from rnnclf.files import check_output_file

        check_output_file(html, "--explain-html", "explain.html")


def _explain(predictor, items: list[str], top_k: int | None, shown: str, steps: int | None, html: Path | None) -> None:
    """Predictions with each text's explanation; the page first, when asked for, so a failed write prints nothing."""
    import os
    import sys

    from rnnclf.inference.explain import DEFAULT_STEPS, explain_texts
    from rnnclf.views.explanations import format_explained, write_html

    predictions, attributions = explain_texts(predictor, items, top_k, steps or DEFAULT_STEPS)
    if html is not None:
        write_html(html, items, predictions, attributions, str(predictor.run.path))
    colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    typer.echo(format_explained(items, predictions, attributions, shown, colour=colour))
    if html is not None:
        log(f"explanations written to {html}")


def _predictor(run: Path, backend: Backend, device: Device, int8: bool, numpy_ok: bool = True):
    """The torch Predictor, the ONNX one, or for the linear model alone the numpy one (no torch loaded, unless
    explanations want its gradients); all answer predict and predict_labels."""
    if backend is Backend.onnx:
        from rnnclf.inference.onnx import OnnxPredictor

        if device is not Device.auto:
            raise RnnclfError("--device is for the torch backend; the onnx backend runs on the CPU")
        if int8:
            raise RnnclfError("--int8 is for the torch backend; the onnx backend runs the fp32 model.onnx")
        return OnnxPredictor.load(run)
    from rnnclf.cli.ensemble import ensemble_predictor, is_ensemble
    from rnnclf.device.cores import available_cores
    from rnnclf.inference.linear import LinearPredictor, is_linear
    from rnnclf.runs.directory import load_run, load_weights

    if is_ensemble(run):
        return ensemble_predictor(run, device.value, int8)
    loaded = load_run(run, weights=False)
    if numpy_ok and is_linear(loaded) and device is not Device.cuda and not int8:
        return LinearPredictor(loaded)
    from rnnclf.device.threads import use_cpu_threads  # imports torch: not before the linear model's way out
    from rnnclf.inference.predictor import Predictor

    use_cpu_threads(1)  # one thread per worker, a worker per core: the fastest way to predict on a CPU
    loaded.weights = load_weights(loaded.path)
    return Predictor(loaded, device.value, workers=available_cores(), int8=int8)


@app.command()
def report(
    runs: Annotated[list[Path], typer.Argument(help="Run directories written by `rnnclf train`.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Also write the table as Markdown to this file.")
    ] = None,
    fmt: Annotated[
        ReportFormat | None,
        typer.Option("--format", help="table, json or markdown (default: table on a terminal, json otherwise)."),
    ] = None,
) -> None:
    """Compare runs: the config keys that differ, best epoch, valid / test scores, train time, parameters.

    Example: rnnclf report runs/lstm runs/gru --out report.md
    """
    from rnnclf.runs.compare import compare_runs, format_json, format_markdown, format_table, write_markdown

    rows = compare_runs(runs)
    chosen = fmt.value if fmt else output_format(None).value
    typer.echo({"table": format_table, "json": format_json, "markdown": format_markdown}[chosen](rows))
    if out is not None:
        write_markdown(rows, out)
        log(f"report written to {out}")


@app.command()
def calibrate(
    run: Annotated[Path, typer.Argument(help="Run directory written by `rnnclf train`.")],
    data: Annotated[
        Path | None,
        typer.Option("--data", help="Labelled texts the run never trained on (default: the run's validation split)."),
    ] = None,
    conformal: Annotated[
        str | None,
        typer.Option("--conformal", help="Prediction sets by lac or aps (default: the run's train.conformal)."),
    ] = None,
) -> None:
    """Fit a run's temperature, multi-label thresholds and prediction sets again, without training: on its
    validation split, or on new held-out data. Runs trained before prediction sets existed get them.

    The replaced files are kept in RUN/replaced/<time>/.

    Example: rnnclf calibrate runs/quickstart --data held_out.csv
    """
    from rnnclf.device.threads import use_cpu_threads
    from rnnclf.recipes.calibrate import describe, recalibrate

    use_cpu_threads(1)
    typer.echo(describe(recalibrate(run, data, conformal, log)))
