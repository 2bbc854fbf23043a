"""The training state: saved without pickle, atomically, read back in one consistent version."""

from pathlib import Path

import pytest
import torch

from rnnclf.errors import RnnclfError
from rnnclf.runs.tensors import save_tensors
from rnnclf.training.checkpoint import load_state, save_state


def test_state_round_trip_without_pickle(tmp_path):
    model = torch.nn.LSTM(3, 4)
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.randn(2, 1, 3))[0].sum().backward()
    optimizer.step()
    state = {
        "optimizer": optimizer.state_dict(),
        "epoch": 3,
        "best": None,
        "pair": (1, "a"),
        "rng": torch.get_rng_state(),
    }
    save_state(tmp_path / "state", state)
    assert [p.name for p in (tmp_path / "state").iterdir()] == ["state.safetensors"]
    loaded = load_state(tmp_path / "state")
    assert loaded["epoch"] == 3 and loaded["best"] is None and loaded["pair"] == (1, "a")
    assert torch.equal(loaded["rng"], state["rng"])
    fresh = torch.optim.AdamW(model.parameters())
    fresh.load_state_dict(loaded["optimizer"])
    assert torch.equal(fresh.state_dict()["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"])


def test_failed_state_save_keeps_the_previous_state_loadable(tmp_path, monkeypatch):
    save_state(tmp_path / "state", {"step": 1, "w": torch.ones(3)})

    def disk_full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.replace", disk_full)
    with pytest.raises(RnnclfError, match="No space left on device"):
        save_state(tmp_path / "state", {"step": 2, "w": torch.zeros(3)})
    monkeypatch.undo()
    state = load_state(tmp_path / "state")
    assert state["step"] == 1 and torch.equal(state["w"], torch.ones(3))


def test_state_replaced_while_it_is_read_gives_one_consistent_version(tmp_path, monkeypatch):
    """A test process polls the state while training saves it (tests/test_resume.py): the load must not
    mix the tensors of one save with the metadata of the next (CI once failed on exactly this)."""
    folder = tmp_path / "state"
    save_state(folder, {"step": 1, "w": torch.ones(3)})
    read_bytes = Path.read_bytes

    def read_then_replaced(self):
        data = read_bytes(self)
        save_state(folder, {"step": 2, "w": torch.zeros(5), "extra": torch.ones(7)})  # the trainer saves meanwhile
        return data

    monkeypatch.setattr(Path, "read_bytes", read_then_replaced)
    state = load_state(folder)
    monkeypatch.undo()
    assert state["step"] == 1 and torch.equal(state["w"], torch.ones(3)) and "extra" not in state
    assert load_state(folder)["step"] == 2


def test_safetensors_without_state_metadata_is_a_clear_error(tmp_path):
    save_tensors(tmp_path / "state" / "state.safetensors", {"w": torch.ones(2)})
    with pytest.raises(RnnclfError, match="not a training state"):
        load_state(tmp_path / "state")
