"""Losses: cross-entropy and binary cross-entropy with class weights and smoothing, weights from the label shares,
the output bias at the label frequencies."""

import numpy as np
import pytest
import torch

from rnnclf.errors import RnnclfError
from rnnclf.training.losses import class_weight_tensor, loss_function, objective, pos_weight


def test_class_weights():
    targets = np.array([0, 0, 0, 1])
    balanced = class_weight_tensor("balanced", ["a", "b"], targets)
    torch.testing.assert_close(balanced, torch.tensor([4 / 6, 4 / 2]))
    torch.testing.assert_close(class_weight_tensor({"b": 3.0}, ["a", "b"], targets), torch.tensor([1.0, 3.0]))
    assert class_weight_tensor("none", ["a", "b"], targets) is None
    with pytest.raises(RnnclfError, match="label 'c' is not in the training data"):
        class_weight_tensor({"c": 2.0}, ["a", "b"], targets)


def test_the_loss_is_binary_cross_entropy_with_weighted_positives_and_smoothed_targets():
    logits = torch.tensor([[2.0, -1.0, 0.5], [-0.5, 0.3, -2.0]])
    targets = np.array([[1, 0, 1], [0, 0, 1]], dtype=np.uint8)
    weight = torch.tensor([1.0, 3.0, 0.5])
    smoothed = torch.from_numpy(targets).float() * 0.8 + 0.1
    per_text = torch.where(torch.from_numpy(targets) > 0, weight, torch.ones(3))  # a positive text weighs pos_weight
    by_hand = -(
        per_text
        * (smoothed * torch.nn.functional.logsigmoid(logits) + (1 - smoothed) * torch.nn.functional.logsigmoid(-logits))
    ).mean()
    assert objective(logits.numpy(), targets, weight, 0.2) == pytest.approx(by_hand.item(), rel=1e-6)
    loss = loss_function(True, weight, 0.2)(logits, torch.from_numpy(targets).float())
    assert loss.item() == pytest.approx(by_hand.item(), rel=1e-6)


def test_a_rare_label_weighted_and_smoothed_is_not_predicted_for_its_negatives():
    """With ε = 0.1 and a positive weight of 50, a negative text's best probability stays ε/2, not above 1/2."""
    loss = loss_function(True, torch.tensor([50.0]), 0.1)
    logit = torch.zeros(1, 1, requires_grad=True)
    optimizer = torch.optim.SGD([logit], lr=0.5)
    for _ in range(2000):
        optimizer.zero_grad()
        loss(logit, torch.zeros(1, 1)).backward()
        optimizer.step()
    assert torch.sigmoid(logit).item() == pytest.approx(0.05, abs=1e-3)


def test_balanced_class_weights_are_positive_weights_per_label():
    targets = np.zeros((1000, 3), dtype=np.uint8)
    targets[:500, 0] = 1  # 1:1
    targets[:100, 1] = 1  # 9:1
    targets[:2, 2] = 1  # 499:1, capped
    weights = class_weight_tensor("balanced", ["a", "b", "c"], targets)
    assert weights.tolist() == pytest.approx([1.0, 9.0, 100.0])
    given = class_weight_tensor({"b": 4.0}, ["a", "b", "c"], targets)
    assert given.tolist() == [1.0, 4.0, 1.0]


def test_pos_weight_is_negatives_over_positives_capped():
    targets = np.zeros((300, 5), dtype=np.uint8)
    targets[:100, 0] = 1  # 200 / 100
    targets[:1, 1] = 1  # 299 / 1, capped
    targets[:, 3] = 1  # no negatives
    targets[:240, 4] = 1  # 60 / 240
    # label 2 has no positives
    assert pos_weight(targets, cap=100.0).tolist() == [2.0, 100.0, 1.0, 1.0, 0.25]


def test_the_output_bias_starts_at_each_label_frequency():
    from rnnclf.training.losses import label_prior_logits

    targets = np.zeros((1000, 3), dtype=np.uint8)
    targets[:250, 0], targets[:10, 1] = 1, 1  # shares 0.25, 0.01 and 0 (kept at 1e-4)
    shares = torch.sigmoid(torch.from_numpy(label_prior_logits(targets))).numpy()
    assert shares == pytest.approx([0.25, 0.01, 1e-4], rel=1e-4)
