"""What the tests share: generated data (data), the command line in a subprocess (cli), small models (models), the
runs several test folders start from (runs), and the bad-input workspace of the end-to-end tests (mistakes).

Imported as `from helpers.data import order_task` from any test folder (pyproject.toml puts tests/ on the path)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository
