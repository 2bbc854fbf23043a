"""Commands on run directories: eval, predict, report, serve, export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from rnnclf.cli.app import (
    Backend,
    Device,
    ExportFormat,
    Format,
    Quantize,
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
    from rnnclf.views.tables import format_multilabel_report, format_report

    if data is not None and split is not None:
        raise RnnclfError("give --data or --split, not both")
    use_cpu_threads(1)  # one thread per worker, a worker per core: the fastest way to predict on a CPU
    chosen = split.value if split else None
    report, written = evaluate_run(run, data, chosen, device.value, log, available_cores(), int8, threshold)
    save_evaluation_figures(report, written, log)
    if output_format(fmt) is Format.json:
        typer.echo(json.dumps(report, indent=2))
        return
    formatter = format_multilabel_report if report.get("multi_label") else format_report
    typer.echo(formatter(report, title=f"{run}{' (int8)' if int8 else ''} on {report['data']}"))
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
) -> None:
    """Predict labels with probabilities; for a multi-label run, every label over its threshold (maybe none) and
    every label's probability.

    With --explain, each text's tokens with their scores: JSON "explanation": \\[\\[token, score], ...], or coloured
    on a terminal (green supports the label, red speaks against it).

    Example: rnnclf predict runs/quickstart "oil prices rose sharply" --top-k 3

    Example: rnnclf predict runs/quickstart "not a good film" --explain --explain-html why.html
    """
    from rnnclf.inference.decisions import read_inputs
    from rnnclf.views.predictions import format_label_sets, format_predictions

    explaining = explain or explain_html is not None or explain_steps is not None
    if explaining:
        _check_explainable(run, backend, int8, explain_html, explain_steps)
    predictor = _predictor(run, backend, device, int8, numpy_ok=not explaining)
    items = list(texts or [])
    if input_path is not None:
        items += read_inputs(input_path, text_field or predictor.run.config.data.text_field)
    if not items:
        raise RnnclfError("no texts to classify: give them as arguments, or --input FILE (or - for stdin)")
    predictor.set_threshold(threshold)
    shown = output_format(fmt).value
    if explaining:
        _explain(predictor, items, top_k, shown, explain_steps, explain_html)
    elif predictor.multi_label:
        typer.echo(format_label_sets(items, predictor.predict_labels(items, top_k or 0), shown))
    else:
        typer.echo(format_predictions(items, predictor.predict(items, top_k or 1), shown))


def _check_explainable(run: Path, backend: Backend, int8: bool, html: Path | None, steps: int | None) -> None:
    """--explain's refusals, before any work."""
    from rnnclf.inference.ensemble import is_ensemble
    from rnnclf.inference.explain import check_steps

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
def serve(
    run: Annotated[Path, typer.Argument(help="Run directory written by `rnnclf train`.")],
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on; 0.0.0.0 for every network interface.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", min=0, max=65535, help="Port; 0 picks a free one.")] = 8000,
    device: Annotated[
        Device, typer.Option("--device", help="auto (CUDA when there is one), cpu or cuda.")
    ] = Device.auto,
    max_texts: Annotated[
        int, typer.Option("--max-texts", min=1, help="Most texts in one request (more answer 413).")
    ] = 256,
    max_body_bytes: Annotated[
        int, typer.Option("--max-body-bytes", min=1, help="Largest request body in bytes (larger answer 413).")
    ] = 1_000_000,
    threads: Annotated[
        int, typer.Option("--threads", min=1, help="torch CPU threads per request; requests run in parallel.")
    ] = 1,
    access_log: Annotated[bool, typer.Option("--access-log", help="Log every request (uvicorn's log).")] = False,
    int8: Annotated[
        bool,
        typer.Option("--int8", help="The int8 model on the CPU (allowed by `rnnclf export RUN --quantize int8`)."),
    ] = False,
    max_explain_texts: Annotated[
        int | None,
        typer.Option(
            "--max-explain-texts", min=1, help="Most texts in one POST /explain (default 16; more answer 413)."
        ),
    ] = None,
    max_explain_steps: Annotated[
        int | None,
        typer.Option(
            "--max-explain-steps", min=1, max=1024, help="Most integration steps per text in /explain (default 256)."
        ),
    ] = None,
) -> None:
    """Serve a run's predictions over HTTP: POST /predict, POST /explain (the predictions with a score per
    token, as `rnnclf predict --explain`), GET /info, GET /health; API docs at /docs.

    Needs FastAPI and uvicorn: pip install 'rnnclf\\[serve]'.

    Example: rnnclf serve runs/quickstart --port 8000
    """
    from rnnclf.serve.app import serve as serve_run

    serve_run(
        run,
        host,
        port,
        device.value,
        max_texts,
        max_body_bytes,
        threads,
        access_log,
        log=log,
        int8=int8,
        max_explain_texts=max_explain_texts,
        max_explain_steps=max_explain_steps,
    )


@app.command()
def export(
    run: Annotated[Path, typer.Argument(help="Run directory written by `rnnclf train`.")],
    fmt: Annotated[ExportFormat | None, typer.Option("--format", help="onnx (the default).")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the model here (default RUN/model.onnx).")
    ] = None,
    quantize: Annotated[
        Quantize | None,
        typer.Option(
            "--quantize",
            help="int8: check torch's int8 model against fp32 on the run's validation texts and, if it passes, "
            "allow --int8 in predict, eval and serve (RUN/int8.json).",
        ),
    ] = None,
) -> None:
    """Export a run to ONNX, checked against PyTorch on the run's own texts before it is written; or, with
    --quantize int8, check and allow its int8 model.

    model.onnx takes ids (int64, batch x time, each text's token ids padded with 0) and lengths (int64, batch); it gives probabilities (float32, batch x classes).

    model.onnx.json beside it names the inputs, the labels in output order, the tokenizer (RUN/tokenizer.json), max_length and the pad / unk ids: all a program without rnnclf needs.

    int8 passes when labels agree with fp32 on at least 99% of the validation texts and accuracy drops at most 0.3 points; otherwise nothing is written.

    Needs onnxruntime for ONNX: pip install 'rnnclf\\[onnx]'.

    Example: rnnclf export runs/quickstart --format onnx

    Example: rnnclf export runs/quickstart --quantize int8
    """
    if quantize is not None:
        if fmt is not None or out is not None:
            raise RnnclfError(
                "--quantize int8 checks torch's int8 model and writes RUN/int8.json; it takes no --format or --out "
                "(ONNX Runtime's quantizer leaves the recurrent layers in fp32: no faster here)"
            )
        _check_int8(run)
        return
    from rnnclf.inference.onnx import export_onnx

    target = out or run / "model.onnx"
    sidecar = export_onnx(run, target, log=log)
    check = sidecar["check"]
    typer.echo(
        f"wrote {target} and {target}.json: largest probability difference from PyTorch "
        f"{check['max_difference']:.1e} on {check['count']} texts (allowed {check['tolerance']:g})"
    )


def _check_int8(run: Path) -> None:
    from rnnclf.device.cores import available_cores
    from rnnclf.device.threads import use_cpu_threads
    from rnnclf.inference.int8_check import check_int8

    use_cpu_threads(1)
    record = check_int8(run, available_cores(), log)
    change = 100 * (record["accuracy_int8"] - record["accuracy_fp32"])
    typer.echo(
        f"wrote {run / 'int8.json'}: int8 and fp32 labels agree on {record['agreement']:.2%} of {record['texts']:,} "
        f"validation texts; accuracy {record['accuracy_fp32']:.4f} -> {record['accuracy_int8']:.4f} ({change:+.2f} "
        f"points). Use it: rnnclf predict {run} --int8"
    )
