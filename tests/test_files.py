"""Writing files atomically: the old file survives a failed write; a place no file can be made is one line."""

import pytest

from rnnclf.errors import RnnclfError
from rnnclf.files import write_atomic


def test_atomic_write_leaves_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    write_atomic(path, b"old")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.replace", broken_replace)
    with pytest.raises(RnnclfError, match="cannot write .* the previous version of the file is kept"):
        write_atomic(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_atomic_write_where_no_file_can_be_made_is_one_clear_error(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(RnnclfError, match="a-file/out.json: cannot write"):
        write_atomic(tmp_path / "a-file" / "out.json", b"{}")
    assert (tmp_path / "a-file").read_text() == "not a folder"
