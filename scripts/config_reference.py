"""docs/config.md, the config key reference, generated from the code (rnnclf.config.reference).

python scripts/config_reference.py            print the page
python scripts/config_reference.py --write    write docs/config.md
python scripts/config_reference.py --check    exit 1 when docs/config.md is not what --write would write
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rnnclf.config.reference import reference_rows

PAGE = Path(__file__).resolve().parents[1] / "docs" / "config.md"

HEADER = """\
# Config keys

Every config key, its default and what it does.

Generated from the code by `python scripts/config_reference.py --write`, so do not edit it by hand
(`--check`, and `tests/project/test_docs.py`, fail when this page and the code differ).

Unknown keys are errors with a suggestion (`unknown key 'model.encodr'; did you mean 'model.encoder'?`);
`rnnclf config show FILE` prints the resolved config, every default filled in. Paths under `data` (and
`embedding.pretrained`, when it is a file) are relative to the config file's folder; `output.run_dir` and
`model.init` are relative to the current folder. Which keys are errors, or warnings, where they would do
nothing, and the configs shipped in `configs/`: [writing-configs.md](writing-configs.md).
"""


def render() -> str:
    """The whole page: the header, then one table row per key."""
    lines = [HEADER, "| key | default | meaning |", "|---|---|---|"]
    lines += [f"| `{key}` | `{default}` | {meaning} |" for key, default, meaning in reference_rows()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The config key reference (docs/config.md), from the code.")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", action="store_true", help="write the page")
    action.add_argument("--check", action="store_true", help="exit 1 when the page is out of date")
    parser.add_argument("--file", type=Path, default=PAGE, help="the page (default docs/config.md)")
    args = parser.parse_args(argv)
    page = render()
    if args.write:
        args.file.write_text(page, encoding="utf-8")
        print(f"wrote {args.file}")
    elif args.check:
        current = args.file.read_text(encoding="utf-8") if args.file.is_file() else None
        if current != page:
            print(f"{args.file} is out of date: run python scripts/config_reference.py --write", file=sys.stderr)
            return 1
        print(f"{args.file} is up to date")
    else:
        print(page, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
