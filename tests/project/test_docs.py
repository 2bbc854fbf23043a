"""The documentation stays true to the code and to itself: docs/config.md is what the code generates, every relative
link (and its #anchor) leads somewhere, every docs page is linked from the README, and the README stays a front
door."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from helpers import ROOT

SCRIPT = ROOT / "scripts" / "config_reference.py"
PAGES = sorted((ROOT / "docs").glob("*.md"))
DOCUMENTS = [ROOT / "README.md", *PAGES]
README_MAX_LINES = 450

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)
INLINE_CODE = re.compile(r"`[^`\n]*`")


def config_reference(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120, cwd=ROOT)


def prose(path: Path) -> str:
    """The text of a Markdown file without its code, where brackets and parentheses are not links."""
    return INLINE_CODE.sub("", FENCE.sub("", path.read_text(encoding="utf-8")))


def anchors(path: Path) -> set[str]:
    """GitHub's anchors for a file's headings: lower case, punctuation dropped, spaces as hyphens, -1 on repeats."""
    seen: Counter[str] = Counter()
    found = set()
    for line in FENCE.sub("", path.read_text(encoding="utf-8")).splitlines():
        if not line.startswith("#"):
            continue
        slug = re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        found.add(slug if not seen[slug] else f"{slug}-{seen[slug]}")
        seen[slug] += 1
    return found


def test_config_page_is_what_the_code_generates():
    result = config_reference("--check")
    assert result.returncode == 0, result.stderr + "run: python scripts/config_reference.py --write"


def test_check_fails_when_the_page_is_out_of_date(tmp_path):
    page = tmp_path / "config.md"
    current = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    page.write_text(current.replace("| `train.epochs` | `10` |", "| `train.epochs` | `11` |"), encoding="utf-8")
    assert page.read_text(encoding="utf-8") != current
    stale = config_reference("--check", "--file", str(page))
    assert stale.returncode == 1 and "out of date" in stale.stderr
    assert config_reference("--check", "--file", str(tmp_path / "missing.md")).returncode == 1
    assert config_reference("--write", "--file", str(page)).returncode == 0
    assert page.read_text(encoding="utf-8") == current


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_lead_to_files_and_headings_that_exist(path):
    broken = []
    for target in LINK.findall(prose(path)):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {linked.relative_to(ROOT)}")
    assert not broken, f"{path.relative_to(ROOT)}: " + "; ".join(broken)


def test_readme_stays_a_front_door():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) < README_MAX_LINES, f"README.md has {len(lines)} lines; move reference text to docs/"


def test_every_docs_page_is_linked_from_the_readme_and_says_what_it_covers():
    assert PAGES
    linked = {(ROOT / target.partition("#")[0]).resolve() for target in LINK.findall(prose(ROOT / "README.md"))}
    for page in PAGES:
        assert page.resolve() in linked, f"README.md does not link docs/{page.name}"
        lines = page.read_text(encoding="utf-8").splitlines()
        assert lines[0].startswith("# ") and not lines[1], f"docs/{page.name}: a title, then a blank line"
        cover = lines[2].strip() and not lines[2].startswith(("#", "|", "`", "-")) and not lines[3].strip()
        assert cover, f"docs/{page.name}: one line after the title says what the page covers"
