"""rnnclf data check: the report put together from the inputs (checker.py), the shared pieces and the row findings
(findings.py), label findings (labels.py), token lengths and vocabulary (tokens.py), near-duplicates by MinHash
(minhash.py), and the report as table, JSON or Markdown (render.py)."""
