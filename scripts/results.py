"""Reproduce the README's results table: rnnclf on R8, R52 and 20NG over several seeds, next to
fastText trained on the same splits in the same run and the published figures.

    .venv/bin/pip install fasttext-numpy2==0.10.4     # script-only dependency, not one of rnnclf's
    .venv/bin/python scripts/results.py [--corpora r8 r52 20ng] [--seeds 0 1 2] [--out results]
                                        [--recipes scratch pretrained] [--no-fasttext]
    .venv/bin/python scripts/results.py --corpora reuters21578    # multi-label: its own table

Each corpus trains with configs/<corpus>.yaml (chosen on the validation split; the test split is
only read for the final figures). Runs go to <out>/runs/, the single-label table to <out>/results.md
and each multi-label corpus's table to <out>/results_<corpus>.md (with .json beside each).

Where a language model exists (configs/<corpus>-lm.yaml) a single-label corpus has a second recipe,
pretrained: configs/<corpus>-pretrained.yaml, fine-tuned from the language model. (Should the
pretrained recipe become the best, configs/<corpus>.yaml names model.init and the from-scratch one
moves to configs/<corpus>-scratch.yaml; `recipes()` reads either layout.) The language model is
pretrained once, into <out>/runs/<corpus>-lm (reused when finished), and each seed fine-tunes from it;
its time is reported beside the fine-tuning time. `--recipes pretrained` runs only those and keeps the
from-scratch figures already in <out>/results.json; fastText reruns unless --no-fasttext (then its
figures are kept too).

The multi-label fastText baseline (`-loss ova`) trains on a seeded random 90% of the training split,
takes the one global threshold with the best micro-F1 on the other 10%, and is scored on test by that
same 90% model (the 10% tune the threshold only: a model retrained on all of train would score
differently from the one the threshold was tuned for). It runs once per seed, the seed choosing the 10%.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from results_fasttext import run_fasttext, run_fasttext_ova
from results_runs import ROOT, recipes, run_rnnclf
from results_tables import figures, machine_line, multi_label_row, multi_label_table, single_label_table

from rnnclf.data.builtin import CORPORA


def multi_label_results(corpus: str, seeds: list[int], out: Path, fasttext: bool) -> None:
    """Train (or reuse) rnnclf's runs and fastText on one multi-label corpus; write results_<corpus>.md/.json."""
    runs = [run_rnnclf(corpus, seed, out) for seed in seeds]
    fasttext_runs = {}
    if fasttext:
        fasttext_runs["fasttext"] = [run_fasttext_ova(corpus, seed) for seed in seeds]
        fasttext_runs["fasttext_lowercase"] = [run_fasttext_ova(corpus, seed, lowercase=True) for seed in seeds]
    row = multi_label_row(runs, fasttext_runs)
    print(corpus, json.dumps(row), flush=True)
    table = multi_label_table(corpus, row, seeds, machine_line(out, corpus, seeds[0]))
    (out / f"results_{corpus}.md").write_text(table, encoding="utf-8")
    (out / f"results_{corpus}.json").write_text(json.dumps(row, indent=2), encoding="utf-8")
    print(table)


def single_label_results(corpora: list[str], seeds: list[int], out: Path, fasttext: bool, chosen: list[str]) -> None:
    """Train (or reuse) rnnclf's runs and fastText on the single-label corpora; write results.md/.json."""
    known = out / "results.json"
    rows = json.loads(known.read_text()) if known.exists() else {}
    for corpus in corpora:
        row = rows.get(corpus, {})  # the recipes not chosen keep their figures
        if "scratch" in chosen:
            row.update(figures([run_rnnclf(corpus, seed, out) for seed in seeds]))
        if "pretrained" in chosen and "pretrained" in recipes(corpus):
            row["pretrained"] = figures([run_rnnclf(corpus, seed, out, "pretrained") for seed in seeds])
        if fasttext:
            row["fasttext"], row["fasttext_seconds"] = run_fasttext(corpus)
        rows[corpus] = row
        print(corpus, json.dumps(row), flush=True)
    table = single_label_table(rows, corpora, seeds, out)
    (out / "results.md").write_text(table, encoding="utf-8")
    known.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpora", nargs="+", default=["r8", "r52", "20ng"], choices=list(CORPORA))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=ROOT / "results")
    parser.add_argument("--no-fasttext", action="store_true", help="skip the fastText baseline")
    parser.add_argument(
        "--recipes",
        nargs="+",
        default=["scratch", "pretrained"],
        choices=["scratch", "pretrained"],
        help="single-label recipes to run; the others' figures are kept from <out>/results.json",
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    single_label = [corpus for corpus in args.corpora if not CORPORA[corpus].multi_label]
    if single_label:
        single_label_results(single_label, args.seeds, args.out, not args.no_fasttext, args.recipes)
    for corpus in args.corpora:
        if CORPORA[corpus].multi_label:
            multi_label_results(corpus, args.seeds, args.out, not args.no_fasttext)


if __name__ == "__main__":
    main()
