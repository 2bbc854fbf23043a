"""rnnclf data check: the label findings (too few, unseen, missing, imbalance) and multi-label statistics."""

from __future__ import annotations

import itertools
from collections import Counter

from rnnclf.check.findings import EXAMPLES, IMBALANCE, CheckSplit, finding, split_example


def label_counts(split: CheckSplit, multi_label: bool) -> Counter:
    if not multi_label:
        return Counter(label for label in split.labels if label is not None)
    return Counter(name for labels in split.labels if labels for name in labels)


def rows_with_labels(split: CheckSplit, wanted: set[str], multi_label: bool) -> list[dict]:
    """A few rows of `split` carrying one of the `wanted` labels, as examples: the first of each label, then the
    next rows in file order."""
    carrying = [at for at, label in enumerate(split.labels) if _carries(label, wanted, multi_label)]
    first_of: dict[str, int] = {}
    for at in carrying:
        for name in _names(split.labels[at], multi_label):
            first_of.setdefault(name, at)
    picked = sorted({first_of[name] for name in wanted if name in first_of})[:EXAMPLES]
    picked += [at for at in carrying if at not in picked][: EXAMPLES - len(picked)]
    return [split_example(split, at) for at in sorted(picked)]


def _names(label: object, multi_label: bool) -> tuple:
    return (label or ()) if multi_label else (label,)


def _carries(label: object, wanted: set[str], multi_label: bool) -> bool:
    return any(name in wanted for name in _names(label, multi_label))


def label_findings(splits: list[CheckSplit], multi_label: bool, weighted: bool = False) -> list[dict]:
    """Too few labels in train, labels in valid / test that train lacks (training refuses both), train labels a
    split lacks, imbalance (with the class-weights hint unless `weighted`: the config sets train.class_weights);
    each with example rows."""
    counts = [label_counts(split, multi_label) for split in splits]
    train, findings = counts[0], []
    if len(train) < (1 if multi_label else 2):  # train refuses such data
        message = (
            f"{splits[0].name}: {len(train)} label(s); a classifier needs {'one' if multi_label else 'two'} or more"
        )
        examples = rows_with_labels(splits[0], set(train), multi_label) or [
            split_example(splits[0], at)
            for at in range(min(EXAMPLES, len(splits[0])))  # no label at all
        ]
        findings.append(finding("too_few_labels", message, len(train), examples))
    for split, found in zip(splits[1:], counts[1:], strict=True):
        findings += _split_label_findings(splits[0], train, split, found, multi_label)
    if len(train) >= 2:
        findings += _imbalance_findings(splits[0], train, multi_label, weighted)
    return findings


def _split_label_findings(
    train_split: CheckSplit, train: Counter, split: CheckSplit, found: Counter, multi_label: bool
) -> list[dict]:
    """Labels of `split` that train never has (its rows as examples), and train labels `split` lacks (train rows)."""
    findings = []
    unseen = sorted(set(found) - set(train))
    if unseen:
        message = f"{split.name}: {len(unseen)} label(s) that {train_split.name} never has: {_listed(unseen)}"
        examples = rows_with_labels(split, set(unseen), multi_label)
        findings.append(finding("unseen_labels", message, len(unseen), examples))
    absent = sorted(set(train) - set(found))
    if absent:
        message = f"{split.name}: no text of {len(absent)} label(s): {_listed(absent)}"
        examples = rows_with_labels(train_split, set(absent), multi_label)
        findings.append(finding("labels_missing_from_split", message, len(absent), examples))
    return findings


def _listed(labels: list[str], shown: int = 10) -> str:
    more = f" and {len(labels) - shown} more" if len(labels) > shown else ""
    return ", ".join(labels[:shown]) + more


def _imbalance_findings(train_split: CheckSplit, train: Counter, multi_label: bool, weighted: bool) -> list[dict]:
    """The largest class against the smallest, with rows of the smallest as examples; the count is the labels at
    least IMBALANCE times rarer than the largest."""
    (most, high), (least, low) = train.most_common()[0], train.most_common()[-1]
    if high < IMBALANCE * low:
        return []
    rare = sum(1 for count in train.values() if high >= IMBALANCE * count)
    hint = "" if weighted else "; consider train.class_weights: balanced"
    message = (
        f"{train_split.name}: imbalanced labels: '{most}' {high:,} texts, '{least}' {low:,} ({high / low:.0f}x); "
        f"{rare} label(s) at least {IMBALANCE}x rarer than '{most}'{hint}"
    )
    examples = rows_with_labels(train_split, {least}, multi_label)
    return [finding("imbalance", message, rare, examples)]


def multi_label_stats(splits: list[CheckSplit]) -> dict:
    """Label cardinality, texts with no label and the most frequent label pairs, per split."""
    stats = {}
    for split in splits:
        sets = Counter(labels for labels in split.labels if labels is not None)
        pairs: Counter = Counter()
        for labels, count in sets.items():
            for pair in itertools.combinations(labels, 2):
                pairs[pair] += count
        total = sum(sets.values())
        stats[split.name] = {
            "cardinality": sum(len(labels) * count for labels, count in sets.items()) / max(total, 1),
            "no_label": sets.get((), 0),
            "top_pairs": [[a, b, count] for (a, b), count in pairs.most_common(5)],
        }
    return stats


def no_label_findings(splits: list[CheckSplit], stats: dict) -> list[dict]:
    findings = []
    for split in splits:
        count = stats[split.name]["no_label"]
        if count:
            index = [i for i, labels in enumerate(split.labels) if labels == ()][:EXAMPLES]
            examples = [split_example(split, i) for i in index]
            message = f"{split.name}: {count:,} texts with no label (an empty list)"
            findings.append(finding("no_label", message, count, examples, severity="info"))
    return findings
