"""rnnclf data check: findings about a corpus before training (findings.py), its labels, token lengths and
vocabulary (labels.py, tokens.py), near-duplicates by MinHash (minhash.py), and the report as table, JSON or
Markdown (report.py)."""
