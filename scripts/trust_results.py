"""Prediction sets and out-of-domain flags measured (issue 25), with the commands users run.

For each finished run (results/runs/<corpus>-seed<S>, trained before prediction sets existed): a copy without its
training state, `rnnclf calibrate COPY` (LAC; a second copy with --conformal aps for single-label runs), then
`rnnclf eval COPY --split test --coverage C` for C in 0.8, 0.9, 0.95: the empirical test coverage (multi-label: one
minus the recall risk) and the mean set size. Out-of-domain: `rnnclf predict COPY --input FILE` on the test split's
texts (false alarms) and on made-up texts unlike any corpus here (random characters, other languages, code).

    python -m scripts.trust_results --runs r52-seed0 r52-seed1 20ng-seed0 reuters21578-seed0

Writes results/trust.json and results/trust.md.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import string
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "results" / "runs"
COVERAGES = (0.8, 0.9, 0.95)

OTHER_LANGUAGES = [
    "der Vorstand hat heute beschlossen, die Dividende für das laufende Geschäftsjahr deutlich zu erhöhen",
    "die Mannschaft gewann das Spiel am Samstag nach einer starken zweiten Halbzeit",
    "le gouvernement a annoncé une nouvelle réforme des retraites malgré les protestations des syndicats",
    "la banque centrale européenne maintient ses taux directeurs inchangés pour le troisième mois",
    "el equipo de fútbol celebró la victoria con sus aficionados en la plaza mayor de la ciudad",
    "las exportaciones de petróleo cayeron un diez por ciento durante el último trimestre del año",
    "il governo italiano ha approvato ieri sera la nuova legge di bilancio con molte polemiche",
    "o banco central do brasil elevou a taxa básica de juros pela quarta vez consecutiva",
    "de regering heeft vandaag nieuwe maatregelen aangekondigd om de inflatie te bestrijden",
    "spółka odnotowała rekordowy zysk w trzecim kwartale dzięki wysokiej sprzedaży za granicą",
    "yhtiön liikevaihto kasvoi viime vuonna selvästi odotettua nopeammin",
    "şirketin hisseleri borsada güne yüzde beş düşüşle başladı",
]
CODE = [
    "def main(argv): return sum(int(x) for x in argv[1:]) if len(argv) > 1 else 0",
    "SELECT id, name FROM users WHERE created_at > NOW() - INTERVAL '7 days' ORDER BY id;",
    "for (int i = 0; i < n; ++i) { total += weights[i] * values[i]; }",
    '<div class="row"><span id="x1">{{ item.title }}</span></div>',
    "git rebase -i HEAD~3 && git push --force-with-lease origin feature/xyz",
    "import numpy as np; a = np.zeros((3, 4)); print(a.shape, a.dtype)",
]


def random_texts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    letters = string.ascii_lowercase + string.digits
    return [
        " ".join("".join(rng.choice(letters) for _ in range(rng.randint(3, 9))) for _ in range(rng.randint(5, 15)))
        for _ in range(count)
    ]


def rnnclf(*args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "rnnclf", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"rnnclf {' '.join(args)} failed: {result.stderr}")
    return result.stdout


def copy_run(name: str, suffix: str) -> Path:
    target = RUNS / "trust" / f"{name}{suffix}"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(RUNS / name, target, ignore=shutil.ignore_patterns("state", "eval", "replaced"))
    return target


def coverage_rows(run: Path, data: Path | None = None) -> list[dict]:
    rows = []
    where = ["--data", str(data)] if data is not None else ["--split", "test"]
    for coverage in COVERAGES:
        report = json.loads(rnnclf("eval", str(run), *where, "--coverage", str(coverage), "--format", "json"))
        sets = report["prediction_sets"]
        rows.append(
            {
                key: sets.get(key)
                for key in (
                    "coverage",
                    "method",
                    "empirical_coverage",
                    "mean_set_size",
                    "abstain",
                    "recall_risk",
                    "texts",
                )
            }
        )
    return rows


def flagged_share(run: Path, texts: list[str], folder: Path, name: str) -> dict:
    path = folder / f"{name}.txt"
    path.write_text("\n".join(text.replace("\n", " ") for text in texts) + "\n", encoding="utf-8")
    answers = [
        json.loads(line) for line in rnnclf("predict", str(run), "--input", str(path), "--format", "json").splitlines()
    ]
    reasons = [answer["out_of_domain"] for answer in answers]
    return {
        "texts": len(answers),
        "flagged": sum(bool(r) for r in reasons) / len(answers),
        "unknown_words": sum(any("unknown" in x for x in r) for r in reasons) / len(answers),
        "no_plausible_label": sum(any("plausible" in x for x in r) for r in reasons) / len(answers),
    }


def test_texts(run: Path) -> list[str]:
    from rnnclf.inference.evaluate import labelled_split
    from rnnclf.runs.directory import load_run

    labelled, _ = labelled_split(load_run(run, weights=False), None, "test")
    return [text for text in labelled.texts if text.strip()]


def test_halves(run: Path, folder: Path) -> tuple[Path, Path]:
    """The run's test split in two halves (alternate texts), as JSONL files with the run's fields: one to
    calibrate on (rnnclf calibrate --data), one to judge on; exchangeable, unlike validation and test here."""
    from rnnclf.data.corpus import data_fields
    from rnnclf.inference.evaluate import labelled_split
    from rnnclf.runs.directory import load_run

    loaded = load_run(run, weights=False)
    labelled, _ = labelled_split(loaded, None, "test")
    _, text_field, label_field = data_fields(loaded.config.data)
    rows = [
        {text_field: text, label_field: list(label) if isinstance(label, tuple) else label}
        for text, label in zip(labelled.texts, labelled.labels, strict=True)
    ]
    paths = folder / "test-half-a.jsonl", folder / "test-half-b.jsonl"
    for start, path in enumerate(paths):
        path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows[start::2]), encoding="utf-8")
    return paths


def measure(name: str) -> dict:
    started = time.perf_counter()
    lac = copy_run(name, "")
    rnnclf("calibrate", str(lac))
    result = {"run": name, "lac": coverage_rows(lac)}
    multi_label = json.loads((lac / "conformal.json").read_text())["method"] == "recall"
    if not multi_label:
        aps = copy_run(name, "-aps")
        rnnclf("calibrate", str(aps), "--conformal", "aps")
        result["aps"] = coverage_rows(aps)
    folder = RUNS / "trust" / f"{name}-texts"
    folder.mkdir(parents=True, exist_ok=True)
    half_a, half_b = test_halves(lac, folder)
    on_test = copy_run(name, "-test-half")
    rnnclf("calibrate", str(on_test), "--data", str(half_a))
    result["lac_on_test_half"] = coverage_rows(on_test, half_b)
    result["out_of_domain"] = {
        "test split": flagged_share(lac, test_texts(lac), folder, "test"),
        "random characters": flagged_share(lac, random_texts(50, 0), folder, "random"),
        "other languages": flagged_share(lac, OTHER_LANGUAGES, folder, "languages"),
        "code": flagged_share(lac, CODE, folder, "code"),
    }
    result["seconds"] = time.perf_counter() - started
    print(json.dumps(result), flush=True)
    return result


def markdown(results: list[dict]) -> str:
    lines = ["# Prediction sets and out-of-domain flags (issue 25)", ""]
    lines += [
        "Made by `python -m scripts.trust_results`; each run calibrated on its validation split by `rnnclf calibrate`, judged on its test split.",
        "",
    ]
    lines += ["| run | method, fitted on | coverage asked | test coverage | mean set size | abstain |"]
    lines.append("|---|---|---|---|---|---|")
    fitted = {"lac": "valid", "aps": "valid", "lac_on_test_half": "test half A (judged on half B)"}
    for result in results:
        for method in ("lac", "aps", "lac_on_test_half"):
            for row in result.get(method, []):
                lines.append(
                    f"| {result['run']} | {row['method']}, {fitted[method]} | {row['coverage']} | "
                    f"{row['empirical_coverage']:.4f} | {row['mean_set_size']:.2f} | {row['abstain']:.3f} |"
                )
    lines += ["", "Out-of-domain flags (share of texts flagged; the test split's share is the false alarms):", ""]
    groups = list(results[0]["out_of_domain"])
    lines += ["| run | " + " | ".join(groups) + " |", "|---|" + "---|" * len(groups)]
    for result in results:
        cells = [
            f"{result['out_of_domain'][g]['flagged']:.3f} of {result['out_of_domain'][g]['texts']}" for g in groups
        ]
        lines.append(f"| {result['run']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", required=True)
    parser.add_argument("--name", default="trust")
    args = parser.parse_args()
    results = [measure(name) for name in args.runs]
    (ROOT / "results" / f"{args.name}.json").write_text(json.dumps(results, indent=2) + "\n")
    (ROOT / "results" / f"{args.name}.md").write_text(markdown(results))


if __name__ == "__main__":
    main()
