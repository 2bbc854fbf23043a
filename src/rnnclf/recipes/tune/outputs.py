"""What a tune leaves in its output folder: trials.csv, best.yaml, summary.md, the plots of the study, and the test
split's one evaluation of the best trial."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Protocol

from optuna.trial import FrozenTrial, TrialState

from rnnclf import files
from rnnclf.errors import RnnclfError
from rnnclf.recipes.tune.space import apply_values
from rnnclf.recipes.tune.study import format_duration
from rnnclf.views.plots import plotting_available


class Tuner(Protocol):
    """What the outputs read of a finished search (search.Tuner)."""

    study: Any  # optuna.Study
    out: Path
    space: list[Any]  # space.Dimension
    metric: str
    maximize: bool
    base: Any  # config.schema.Config
    settings: Any  # search.TuneSettings
    storage_shown: str

    def log(self, line: str) -> None: ...

    def spent(self) -> float: ...


BEST_CONFIG, TRIALS_CSV, SUMMARY_MD, SUMMARY_JSON = "best.yaml", "trials.csv", "summary.md", "summary.json"
HISTORY_PNG, IMPORTANCES_PNG = "history.png", "importances.png"
SHOWN_TRIALS = 10
STATE_NAMES = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed"}


def finish(tuner: Tuner) -> dict[str, Any]:
    """Write every output of the search, and evaluate the best trial on the test split (once: a later session reuses
    that evaluation while the best trial stays the same). A search stopped by a signal never comes here."""
    study, out = tuner.study, tuner.out
    trials = study.get_trials(deepcopy=False)
    keys = [d.key for d in tuner.space]
    write_trials_csv(out / TRIALS_CSV, trials, keys, tuner.metric)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    counts = {STATE_NAMES[state]: sum(t.state == state for t in trials) for state in STATE_NAMES}
    if not complete:
        raise RnnclfError(
            f"{out}: no trial has finished yet ({', '.join(f'{n} {s}' for s, n in counts.items() if n) or 'none ran'}); "
            f"{out / TRIALS_CSV} lists them. Run the same command again, with a larger --budget"
        )
    best = study.best_trial
    config = apply_values(tuner.base, best.params | {"output.run_dir": str(out / "best")}, f"trial {best.number}")
    files.write_atomic(out / BEST_CONFIG, _best_yaml(config, best, tuner).encode("utf-8"))
    baseline = next((t for t in complete if t.user_attrs.get("baseline")), None)
    summary = {
        "study": study.study_name,
        "storage": tuner.storage_shown,
        "metric": tuner.metric,
        "direction": "maximize" if tuner.maximize else "minimize",
        "trials": counts,
        "budget_seconds": tuner.settings.budget,
        "spent_seconds": round(tuner.spent(), 1),
        "best": _trial_summary(best) | {"params": best.params},
        "baseline": _trial_summary(baseline) if baseline else None,
        "test": evaluate_best_once(best, tuner.base.train.device, tuner.log),
        "files": {"best_config": str(out / BEST_CONFIG), "trials": str(out / TRIALS_CSV)},
    }
    summary["files"] |= save_plots(study, out, f"valid {tuner.metric}", tuner.log)
    files.write_json(out / SUMMARY_JSON, summary)
    files.write_atomic(out / SUMMARY_MD, summary_markdown(summary, tuner, trials).encode("utf-8"))
    tuner.log(
        f"best: trial {best.number}, valid {tuner.metric} {best.value:.4f}; {format_duration(summary['spent_seconds'])} spent"
    )
    return summary


def trial_row(trial: FrozenTrial, keys: list[str]) -> dict[str, Any]:
    attrs = trial.user_attrs
    note = attrs.get("failure") or attrs.get("stopped") or ("the config as given" if attrs.get("baseline") else "")
    if attrs.get("rerun_of") is not None:
        note = f"{note}; rerun of trial {attrs['rerun_of']}".lstrip("; ")
    return {
        "trial": trial.number,
        "state": STATE_NAMES.get(trial.state, trial.state.name.lower()),
        "value": "" if trial.value is None else round(trial.value, 6),
        "best_epoch": attrs.get("best_epoch", ""),
        "epochs_run": attrs.get("epochs_run", max(trial.intermediate_values, default="")),
        "seconds": "" if trial.duration is None else round(trial.duration.total_seconds(), 1),
        **{key: trial.params.get(key, "") for key in keys},
        "note": note,
        "run_dir": attrs.get("run_dir", ""),
    }


def write_trials_csv(path: Path, trials: list[FrozenTrial], keys: list[str], metric: str) -> None:
    rows = [trial_row(t, keys) for t in trials]
    buffer = io.StringIO()
    columns = ["trial", "state", f"valid_{metric}", *list(rows[0])[3:]] if rows else ["trial"]
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([list(row.values()) for row in rows])
    files.write_atomic(path, buffer.getvalue().encode("utf-8"))


def evaluate_best_once(best: FrozenTrial, device: str, log: Any) -> dict[str, Any] | None:
    """The best trial's weights on the test split, written to its eval/test.json; reused when already there."""
    from rnnclf.inference.evaluate import evaluate_run
    from rnnclf.views.plots import save_evaluation_figures

    run_dir = Path(best.user_attrs.get("run_dir", ""))
    done = run_dir / "eval" / "test.json"
    if done.exists():
        return _test_figures(json.loads(done.read_text(encoding="utf-8")), best, reused=True)
    if not (run_dir / files.WEIGHTS).exists():
        log(f"test: not evaluated here, trial {best.number}'s run directory is on {best.user_attrs.get('host')}")
        return None
    try:
        evaluation, written = evaluate_run(run_dir, split="test", device=device, log=lambda message: None)
    except RnnclfError as exc:
        log(f"test: not evaluated ({exc})")
        return None
    save_evaluation_figures(evaluation, written, lambda message: None)
    figures = _test_figures(evaluation, best, reused=False)
    shown = ", ".join(f"{key} {value:.4f}" for key, value in figures["scores"].items())
    log(f"test, once, on trial {best.number}'s weights (chooses nothing): {shown}")
    return figures


def _test_figures(evaluation: dict[str, Any], best: FrozenTrial, reused: bool) -> dict[str, Any]:
    keys = ("micro_f1", "macro_f1", "accuracy") if "micro_f1" in evaluation else ("accuracy", "macro_f1", "weighted_f1")
    return {"trial": best.number, "scores": {key: evaluation[key] for key in keys}, "evaluated_before": reused}


def save_plots(study: Any, out: Path, target: str, log: Any) -> dict[str, str]:
    """The optimisation history and the parameters' importances (Optuna's fANOVA), as PNGs."""
    if not plotting_available(f"{HISTORY_PNG} and {IMPORTANCES_PNG}", log):
        return {}
    import warnings

    import matplotlib

    matplotlib.use("Agg")  # Optuna draws through pyplot; no screen is needed
    from matplotlib import pyplot
    from optuna.visualization import matplotlib as optuna_plots

    written = {}
    for name, draw in (
        (HISTORY_PNG, optuna_plots.plot_optimization_history),
        (IMPORTANCES_PNG, optuna_plots.plot_param_importances),
    ):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                axes = draw(study, target_name=target)
        except (ValueError, RuntimeError) as exc:  # importances need two finished trials that differ
            log(f"{name}: skipped ({str(exc).splitlines()[0] if str(exc) else 'too few finished trials'})")
            continue
        buffer = io.BytesIO()
        axes.figure.set_size_inches(8, 4.5)
        axes.figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
        pyplot.close(axes.figure)
        files.write_atomic(out / name, buffer.getvalue())
        written[name.removesuffix(".png")] = str(out / name)
    return written


def summary_markdown(summary: dict[str, Any], tuner: Tuner, trials: list[FrozenTrial]) -> str:
    metric, best = summary["metric"], summary["best"]
    budget = summary["budget_seconds"]
    lines = [
        f"# rnnclf tune: {summary['study']}",
        "",
        f"- config: `{tuner.settings.config_path}`; space: {len(tuner.space)} keys "
        + (
            f"(from {tuner.settings.space_path})" if tuner.settings.space_path else "(the default space, in space.yaml)"
        ),
        f"- study: {summary['storage']}; TPE sampler, median pruner (from epoch 2, after 2 finished trials)",
        "- trials: "
        + ", ".join(f"{n} {state}" for state, n in summary["trials"].items() if n)
        + f"; {format_duration(summary['spent_seconds'])} spent"
        + (f" of a {format_duration(budget)} budget" if budget else ""),
        f"- best: trial {best['trial']}, valid {metric} {best['value']:.4f}"
        + (
            f" (the config as given, trial {summary['baseline']['trial']}: {summary['baseline']['value']:.4f})"
            if summary["baseline"]
            else ""
        ),
    ]
    test = summary["test"]
    if test:
        lines.append(
            f"- test, evaluated once after the search on trial {test['trial']}'s weights (never used to choose): "
            + ", ".join(f"{key} {value:.4f}" for key, value in test["scores"].items())
        )
    base_values = {d.key: _config_value(tuner.base, d.key) for d in tuner.space}
    lines += ["", "| key | the config as given | best |", "|---|---|---|"]
    lines += [
        f"| {key} | {show_value(base_values[key])} | {show_value(value)} |" for key, value in best["params"].items()
    ]
    ranked = sorted(
        [t for t in trials if t.value is not None],
        key=lambda t: t.value,
        reverse=summary["direction"] == "maximize",
    )[:SHOWN_TRIALS]
    lines += [
        "",
        f"Top trials by valid {metric}:",
        "",
        "| trial | state | valid | epochs | seconds | note |",
        "|---|---|---|---|---|---|",
    ]
    for trial in ranked:
        row = trial_row(trial, [])
        lines.append(
            f"| {row['trial']} | {row['state']} | {row['value']:.4f} | {row['epochs_run']} | {row['seconds']} | {row['note']} |"
        )
    lines += ["", f"Run the winner: `rnnclf train --config {tuner.out / BEST_CONFIG}`", ""]
    return "\n".join(lines)


def _best_yaml(config: Any, best: FrozenTrial, tuner: Tuner) -> str:
    from rnnclf.config.loading import dump_config

    header = (
        f"# rnnclf tune's best config: trial {best.number} of study {tuner.study.study_name}, valid {tuner.metric} "
        f"{best.value:.4f}\n# found from {tuner.settings.config_path}; run it with: rnnclf train --config "
        f"{tuner.out / BEST_CONFIG}\n"
    )
    return header + dump_config(config)


def _trial_summary(trial: FrozenTrial) -> dict[str, Any]:
    return {"trial": trial.number, "value": trial.value, "run_dir": trial.user_attrs.get("run_dir")}


def _config_value(config: Any, key: str) -> Any:
    section, name = key.split(".", 1)
    return getattr(getattr(config, section), name)


def show_value(value: Any) -> str:
    """A searched value for people: floats to 4 significant digits (trials.csv and best.yaml keep them whole)."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)
