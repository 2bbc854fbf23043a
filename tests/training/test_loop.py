"""The training loop does what the settings say: optimizers, schedules, early stopping, determinism, a NaN loss,
the epoch's time, the validation objective."""

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from rnnclf.config.loading import load_config
from rnnclf.errors import RnnclfError
from rnnclf.recipes.classify import train
from rnnclf.runs.directory import load_run
from rnnclf.training.checkpoint import load_state
from rnnclf.training.losses import class_weight_tensor


def tiny_run(tmp_path, order_files, name, *overrides):
    config = tmp_path / "tiny.yaml"
    config.write_text(
        f"data: {{train: {order_files['train']}}}\n"
        "embedding: {dim: 8}\nmodel: {encoder: gru, hidden_size: 8}\ntrain: {epochs: 3, batch_size: 64}\n"
    )
    summary = train(load_config(config, [f"output.run_dir={tmp_path / name}", *overrides]), log=lambda m: None)
    epochs = [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
    return summary, epochs


def expected_rates(scheduler: str, epochs: list[dict], lr: float, warmup_ratio: float = 0.0) -> list[float]:
    """Each epoch's rate by the formulas of rnnclf.training.optim.build_scheduler, written out: the per-step
    schedules at the epoch's last step (steps_per_epoch * epoch of steps_per_epoch * epochs), plateau from the
    validation accuracies (halved when it has not risen for more than train.plateau_patience = 1 epochs)."""
    total = epochs[0]["step"] * len(epochs)
    warmup = int(warmup_ratio * total)
    rates, best, stale = [], None, 0
    for record in epochs:
        progress = min((record["step"] - warmup) / (total - warmup), 1.0)
        if scheduler == "none":
            rates.append(lr)
        elif scheduler == "linear":
            rates.append(lr * max(0.0, 1 - progress))
        elif scheduler == "cosine":
            rates.append(lr * 0.5 * (1 + math.cos(math.pi * progress)))
        elif scheduler == "slanted":  # falls from lr to lr / 32
            rates.append(lr * (1 - progress * (1 - 1 / 32)))
        else:  # plateau: torch's relative threshold 1e-4 on the score it watches
            score = record["valid_accuracy"]
            if best is None or score > best * (1 + 1e-4):
                best, stale = score, 0
            else:
                stale += 1
            if stale > 1:
                lr, stale = lr * 0.5, 0
            rates.append(lr)
    return rates


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
@pytest.mark.parametrize("scheduler", ["none", "linear", "cosine", "slanted", "plateau"])
def test_optimizers_and_schedules(tmp_path, order_files, optimizer, scheduler):
    warmup = ["train.warmup_ratio=0.1"] if scheduler in ("linear", "cosine", "slanted") else []
    summary, epochs = tiny_run(
        tmp_path,
        order_files,
        "run",
        f"train.optimizer={optimizer}",
        f"train.scheduler={scheduler}",
        "train.lr=0.01",
        *warmup,
    )
    lrs = [e["lr"] for e in epochs]
    if scheduler == "none":
        assert lrs == [0.01] * 3
    elif scheduler in ("linear", "cosine"):
        assert lrs[0] < 0.01 and lrs[-1] == pytest.approx(0.0, abs=1e-9)
    elif scheduler == "slanted":
        assert lrs[0] < 0.01 and lrs[-1] == pytest.approx(0.01 / 32)
    else:
        assert all(lr in (0.01, 0.005, 0.0025) for lr in lrs)
    # every epoch's rate is the schedule's formula at that epoch's last step
    steps_per_epoch = math.ceil(summary["sizes"]["train"] / 64)
    assert [e["step"] for e in epochs] == [steps_per_epoch * n for n in (1, 2, 3)]
    assert lrs == pytest.approx(expected_rates(scheduler, epochs, 0.01, 0.1 if warmup else 0.0), rel=1e-9, abs=1e-12)
    # the optimizer that stepped is the one asked for: its state after training says which
    state = load_state(tmp_path / "run" / "state")["optimizer"]
    group, moments = state["param_groups"][0], list(state["state"].values())
    assert group["lr"] == pytest.approx(lrs[-1]) and moments
    if optimizer == "sgd":
        assert group["momentum"] == 0.9 and "betas" not in group
        assert all(set(m) == {"momentum_buffer"} and m["momentum_buffer"] is not None for m in moments)
    else:
        assert "momentum" not in group and group["betas"] == (0.9, 0.999)
        assert all({"exp_avg", "exp_avg_sq"} <= set(m) for m in moments)
        assert all(int(m["step"]) == 3 * steps_per_epoch for m in moments)
        assert group["decoupled_weight_decay"] == (optimizer == "adamw")  # Adam and AdamW share a state otherwise


def test_plateau_halves_a_stalled_rate(tmp_path, order_files):
    # a rate this small cannot move the validation accuracy: the schedule must halve it
    _, epochs = tiny_run(tmp_path, order_files, "run", "train.scheduler=plateau", "train.lr=1e-6", "train.epochs=4")
    assert epochs[-1]["lr"] < 1e-6
    assert [e["lr"] for e in epochs] == pytest.approx(expected_rates("plateau", epochs, 1e-6), rel=1e-9)


def test_early_stopping(tmp_path, order_files):
    summary, epochs = tiny_run(
        tmp_path, order_files, "run", "train.lr=1e-9", "train.epochs=10", "train.early_stopping=2"
    )
    assert len(epochs) == 3 and summary["best_epoch"] == 1


def test_same_seed_same_weights_and_metrics(tmp_path, order_files):
    first, _ = tiny_run(tmp_path, order_files, "one", "embedding.dropout=0.2")
    second, _ = tiny_run(tmp_path, order_files, "two", "embedding.dropout=0.2")
    other, _ = tiny_run(tmp_path, order_files, "three", "embedding.dropout=0.2", "train.seed=5")
    a, b = load_file(tmp_path / "one" / "model.safetensors"), load_file(tmp_path / "two" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert first["valid"] == second["valid"]
    c = load_file(tmp_path / "three" / "model.safetensors")
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_nan_loss_stops_with_the_step_and_keeps_the_last_state(tmp_path, order_files):
    from rnnclf.training.checkpoint import load_state

    overrides = (
        "train.optimizer=sgd",
        "train.momentum=0.0",
        "train.lr=1.0e+37",
        "train.grad_clip=null",
        "train.save_every=1",
    )
    with pytest.raises(
        RnnclfError, match=r"training loss became (nan|inf) at epoch 1, step \d+; lower train.lr"
    ) as error:
        tiny_run(tmp_path, order_files, "run", *overrides)
    assert "last saved state" in str(error.value)
    state = load_state(tmp_path / "run" / "state")
    assert all(torch.isfinite(t).all() for t in state["model"].values())


def test_epoch_time_and_speed_count_the_whole_epoch_with_save_every(tmp_path, order_files):
    summary, epochs = tiny_run(tmp_path, order_files, "saving", "train.save_every=2")
    # the epochs' times add up to the training time: saves every 2 steps do not restart an epoch's clock
    total = sum(epoch["epoch_seconds"] for epoch in epochs)
    assert abs(total - summary["train_seconds"]) < 0.05 * summary["train_seconds"] + 0.05
    tokens = epochs[0]["tokens_per_s"] * epochs[0]["epoch_seconds"]
    assert all(abs(e["tokens_per_s"] * e["epoch_seconds"] - tokens) < 1e-6 * tokens for e in epochs)


def test_valid_objective_is_the_training_loss_on_valid(tmp_path, order_files):
    """train_loss and valid_objective mean the same thing (label smoothing and class weights included);
    valid_loss stays the plain cross-entropy that eval reports."""
    from rnnclf.config.loading import load_config as load
    from rnnclf.data.token_cache import prepare
    from rnnclf.inference.logits import predict_logits
    from rnnclf.inference.predictor import Predictor

    overrides = ("train.label_smoothing=0.3", "train.class_weights=balanced", "train.lr=0.02", "train.epochs=5")
    summary, epochs = tiny_run(tmp_path, order_files, "run", *overrides)
    data = prepare(load(tmp_path / "run" / "config.yaml"))
    predictor = Predictor.load(tmp_path / "run", "cpu")
    logits = torch.from_numpy(predict_logits(predictor.model, data.encoded["valid"], predictor.device))
    targets = torch.from_numpy(data.targets["valid"])
    weights = class_weight_tensor("balanced", data.labels, data.targets["train"])
    smoothed = torch.nn.functional.cross_entropy(logits, targets, weight=weights, label_smoothing=0.3).item()
    plain = torch.nn.functional.cross_entropy(logits, targets).item()
    assert summary["valid"]["objective"] == pytest.approx(smoothed, rel=1e-5)  # of the model's logits
    assert summary["valid"]["calibration"]["loss_before"] == pytest.approx(plain, rel=1e-5)
    temperature = load_run(tmp_path / "run").temperature[0]  # the loss of the probabilities the run answers
    calibrated = torch.nn.functional.cross_entropy(logits / float(temperature), targets).item()
    assert summary["valid"]["loss"] == pytest.approx(calibrated, rel=1e-5)
    assert smoothed > plain + 0.05  # the two differ here, so the test tells them apart
    best = epochs[summary["best_epoch"] - 1]
    assert best["valid_objective"] == pytest.approx(smoothed, rel=1e-5) and best["valid_loss"] == pytest.approx(
        plain, rel=1e-5
    )
