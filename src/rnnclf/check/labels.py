"""rnnclf data check: the label findings (unseen, missing, imbalance) and multi-label statistics."""

from __future__ import annotations

import itertools
from collections import Counter

from rnnclf.check.findings import EXAMPLES, IMBALANCE, CheckSplit, finding


def label_counts(split: CheckSplit, multi_label: bool) -> Counter:
    if not multi_label:
        return Counter(label for label in split.labels if label is not None)
    return Counter(name for labels in split.labels if labels for name in labels)


def label_findings(splits: list[CheckSplit], multi_label: bool) -> list[dict]:
    """Labels in valid / test that train lacks (training refuses them), train labels a split lacks, imbalance."""
    counts = [label_counts(split, multi_label) for split in splits]
    train, findings = counts[0], []
    if len(train) < (1 if multi_label else 2):  # train refuses such data
        message = (
            f"{splits[0].name}: {len(train)} label(s); a classifier needs {'one' if multi_label else 'two'} or more"
        )
        findings.append(finding("too_few_labels", message, len(train), []))
    for split, found in zip(splits[1:], counts[1:], strict=True):
        unseen = sorted(set(found) - set(train))
        if unseen:
            message = f"{split.name}: {len(unseen)} label(s) that {splits[0].name} never has: {', '.join(unseen[:10])}"
            findings.append(finding("unseen_labels", message, len(unseen), []))
        absent = sorted(set(train) - set(found))
        if absent:
            message = f"{split.name}: no text of {len(absent)} label(s): {', '.join(absent[:10])}"
            findings.append(finding("labels_missing_from_split", message, len(absent), []))
    if len(train) >= 2:
        (most, high), (least, low) = train.most_common()[0], train.most_common()[-1]
        if high >= IMBALANCE * low:
            message = (
                f"{splits[0].name}: imbalanced labels: '{most}' {high:,} texts, '{least}' {low:,} ({high / low:.0f}x);"
                " consider train.class_weights: balanced"
            )
            findings.append(finding("imbalance", message, high // max(low, 1), []))
    return findings


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
            examples = [{"split": split.name, "file": split.file, "line": int(split.lines[i])} for i in index]
            message = f"{split.name}: {count:,} texts with no label (an empty list)"
            findings.append(finding("no_label", message, count, examples, severity="info"))
    return findings
