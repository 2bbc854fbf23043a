"""Commands that ship a run: serve (HTTP), export (ONNX, int8)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rnnclf.cli.app import Device, ExportFormat, Quantize, app, log
from rnnclf.errors import RnnclfError


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
