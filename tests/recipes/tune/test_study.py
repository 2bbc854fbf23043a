"""rnnclf tune's study: its storage, and the durations of --budget."""

from __future__ import annotations

import importlib.util

import pytest

from rnnclf.errors import RnnclfError
from rnnclf.recipes.tune.study import format_duration, open_storage, parse_duration


def test_a_missing_database_driver_names_its_package(tmp_path):
    if importlib.util.find_spec("psycopg") is not None:
        pytest.skip("psycopg is installed here")
    with pytest.raises(RnnclfError, match=r"its database driver is not installed: pip install 'psycopg\[binary\]'"):
        open_storage("postgresql://user@127.0.0.1:1/study", tmp_path)


def test_durations():
    assert [parse_duration(t) for t in ("90s", "20m", "1h30m", "2.5h")] == [90, 1200, 5400, 9000]
    for bad in ("soon", "5 minutes", "m5", "1h-3m", "", "45"):
        with pytest.raises(RnnclfError):
            parse_duration(bad)
    assert [format_duration(s) for s in (4.24, 42, 59.7, 245, 3723)] == ["4.2s", "42s", "1m00s", "4m05s", "1h02m03s"]
    with pytest.raises(RnnclfError, match="--budget 20: give a unit: 20s, 20m or 20h"):
        parse_duration("20")
