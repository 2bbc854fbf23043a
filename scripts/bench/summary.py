"""The final table: (figure, value, target, value / target) rows from every section's results."""

from __future__ import annotations

from typing import Any

from .common import TARGETS, num, say

Row = tuple[str, str, str, str]


def entry(figure: str, value: str, target: str = "", versus: str = "") -> Row:
    return (figure, value, target, versus)


def summary_rows(results: dict[str, Any]) -> list[Row]:
    """(figure, value, target, value / target) for the final table."""
    measured = {name: value for name, value in results.items() if isinstance(value, dict) and "error" not in value}
    return [
        *training_rows(measured),
        *flops_rows(measured.get("flops", {})),
        *data_rows(measured),
        *process_rows(measured),
    ]


def training_rows(measured: dict[str, Any]) -> list[Row]:
    rows = []
    for section, label in (("training", "reference"), ("training_quickstart", "quickstart")):
        training = measured.get(section, {})
        for name in ("rnnclf", "naive"):
            if name in training:
                rows.append(entry(f"{label}: training tokens/s, {name}", num(training[name]["tokens_per_s"])))
        if "ratio" in training:
            rows.append(
                entry(
                    f"{label}: rnnclf / naive",
                    f"{training['ratio']:.2f}x",
                    f">= {TARGETS['ratio']:.0f}x" if label == "reference" else "",
                    f"{training['ratio'] / TARGETS['ratio']:.2f}" if label == "reference" else "",
                )
            )
    return rows


def flops_rows(flops: dict[str, Any]) -> list[Row]:
    rows = []
    if "matmul_flops_per_s" in flops:
        rows.append(entry(f"fp32 torch.mm {flops['matmul_size']}", f"{flops['matmul_flops_per_s'] / 1e9:,.1f} GFLOP/s"))
    if "amp_matmul_flops_per_s" in flops:
        rows.append(entry(f"{flops['amp_dtype']} torch.mm", f"{flops['amp_matmul_flops_per_s'] / 1e9:,.1f} GFLOP/s"))
    for label, figures in (("reference (LSTM)", flops), ("quickstart (GRU)", flops.get("quickstart", {}))):
        if "rnnclf" in figures:
            rows.append(
                entry(f"{label}: recurrent FLOP/s, rnnclf", f"{figures['rnnclf']['flops_per_s'] / 1e9:,.2f} GFLOP/s")
            )
            rows.append(entry("  as a fraction of torch.mm", f"{figures['rnnclf']['fraction_of_matmul']:.1%}"))
    return rows


def data_rows(measured: dict[str, Any]) -> list[Row]:
    """predict, tokenize, prepare and memory."""
    rows = []
    predict = measured.get("predict", {})
    if predict:
        target = TARGETS["predict_texts_per_s"]
        rows.append(
            entry(
                "predict texts/s (batched)",
                num(predict["texts_per_s"]),
                f">= {target:,}",
                f"{predict['texts_per_s'] / target:.2f}",
            )
        )
        median, p99 = predict["latency_median_ms"], predict["latency_p99_ms"]
        rows.append(entry("predict([text]) median / p99", f"{median:.2f} / {p99:.2f} ms"))
    tokenize = measured.get("tokenize", {})
    if tokenize:
        target = TARGETS["encode_docs_per_s"]
        rows.append(
            entry(
                "encode docs/s",
                num(tokenize["encode_docs_per_s"]),
                f">= {target:,}",
                f"{tokenize['encode_docs_per_s'] / target:.2f}",
            )
        )
        rows.append(entry("encode / naive tokenizer", f"{tokenize['encode_vs_naive']:.2f}x"))
    prep = measured.get("prepare", {})
    if prep:
        seconds = f"{prep['cold_seconds']:.2f}s / {prep['cached_seconds']:.3f}s"
        rows.append(entry(f"prepare() {prep['corpus']} cold / cached", seconds))
    memory = measured.get("memory", {})
    if memory:
        baseline = f"(import alone {memory['import_baseline_mib']:,.0f})"
        rows.append(entry("training peak RSS", f"{memory['peak_mib']:,.0f} MiB", "", baseline))
    return rows


def process_rows(measured: dict[str, Any]) -> list[Row]:
    """distributed and scale."""
    rows = []
    for run in measured.get("distributed", {}).get("runs", []):
        speedup = f" ({run['speedup']:.2f}x)" if "speedup" in run else ""
        rows.append(entry(f"train --nproc {run['processes']}, tokens/s", num(run["tokens_per_s"]) + speedup))
    for size in measured.get("scale", {}).get("sizes", []):
        target = TARGETS["scale_peak_mib"]
        rows.append(
            entry(
                f"scale {size['docs']:,} docs: prepare / train; peaks",
                f"{size['tokenize_seconds']:.1f}s / {size['train_seconds']:.1f}s; "
                f"{size['prepare_peak_mib']:,.0f} / {size['train_peak_mib']:,.0f} MiB",
                f"< {target:,} MiB",
                f"{size['peak_mib'] / target:.2f}",
            )
        )
    return rows


def states_summary_rows(results: dict[str, Any]) -> list[Row]:
    """matrix, busy and int8."""
    rows = []
    matrix = results.get("matrix") or {}
    for cell in matrix.get("cells", []):
        share = f", {cell['share_of_matmul']:.0%} of mm" if cell["share_of_matmul"] is not None else ""
        direction = "bi" if cell["bidirectional"] else "uni"
        rows.append(
            (
                f"matrix {cell['encoder']} {direction} {cell['pooling']}",
                f"{num(cell['tokens_per_s'])} tok/s{share}",
                "",
                "",
            )
        )
    for row in matrix.get("lesson", []):
        rows.append((f"lesson {row['config']}", f"{num(row['tokens_per_s'])} tok/s", "", ""))
        if "ratio" in row:
            rows.append(("  vs the notebook's pipeline", f"{row['ratio']:.1f}x", ">= 10x", f"{row['ratio'] / 10:.2f}"))
    busy = results.get("busy") or {}
    if "worst_ratio" in busy:
        rows.append(
            (
                "two trainings at once / alone",
                f"{busy['worst_ratio']:.2f}x",
                "<= 2.5x",
                f"{busy['worst_ratio'] / 2.5:.2f}",
            )
        )
    int8 = results.get("int8") or {}
    if "int8_texts_per_s" in int8:
        rows.append(("predict --input, fp32, whole process", f"{num(int8['fp32_texts_per_s'])} texts/s", "", ""))
        rows.append(
            (
                "predict --input --int8, whole process",
                f"{num(int8['int8_texts_per_s'])} texts/s",
                ">= 6,000",
                f"{int8['int8_texts_per_s'] / 6000:.2f}",
            )
        )
        rows.append(
            (
                "int8 predict([text]) median / p99",
                f"{int8['latency_median_ms']:.2f} / {int8['latency_p99_ms']:.2f} ms",
                "",
                "",
            )
        )
    return rows


def print_summary(rows: list[Row]) -> None:
    header = ("figure", "value", "target", "value / target")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    say()
    say("summary")
    for row in [header, *rows]:
        say("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
