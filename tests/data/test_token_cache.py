import numpy as np

from rnnclf.config.loading import load_config
from rnnclf.data.token_cache import cache_key, prepare

from helpers.data import order_task, write_csv


def test_second_prepare_comes_from_the_cache(tmp_path, monkeypatch, order_files):
    monkeypatch.setenv("RNNCLF_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "c.yaml"
    path.write_text(f"data: {{train: {order_files['train']}, test: {order_files['test']}}}\n")
    config = load_config(path)
    first = prepare(config)
    second = prepare(config)
    assert not first.cached and second.cached
    assert isinstance(second.encoded["train"].ids, np.memmap)
    for split in ("train", "valid", "test"):
        assert second.encoded[split].ids.tolist() == first.encoded[split].ids.tolist()
        assert second.targets[split].tolist() == first.targets[split].tolist()
    assert second.labels == first.labels
    assert second.tokenizer.to_str() == first.tokenizer.to_str()


def test_key_follows_data_and_settings(tmp_path, monkeypatch, order_files):
    monkeypatch.setenv("RNNCLF_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "c.yaml"
    path.write_text(f"data: {{train: {order_files['train']}}}\n")
    key = cache_key(load_config(path))
    assert key == cache_key(load_config(path))
    assert key != cache_key(load_config(path, ["tokenizer.kind=char"]))
    assert key != cache_key(load_config(path, ["train.seed=1"]))  # the carved validation split changes
    assert cache_key(load_config(path, ["train.lr=0.1"])) == key  # training settings do not
    write_csv(order_files["train"], order_task(1200, seed=99))
    assert cache_key(load_config(path)) != key


def test_damaged_entry_is_recomputed(tmp_path, monkeypatch, order_files):
    monkeypatch.setenv("RNNCLF_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "c.yaml"
    path.write_text(f"data: {{train: {order_files['train']}}}\n")
    config = load_config(path)
    first = prepare(config)
    entry = tmp_path / "cache" / "tokens" / cache_key(config)
    (entry / "train.ids.npy").write_bytes(b"garbage")
    again = prepare(config)
    assert not again.cached
    assert prepare(config).cached  # and written anew
    assert again.encoded["train"].ids.tolist() == first.encoded["train"].ids.tolist()
