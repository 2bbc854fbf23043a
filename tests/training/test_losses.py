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


def _distill(kind: str, weight: float = 1.0, multi_label: bool = False, temperature: float = 2.0):
    from rnnclf.training.losses import DistillLoss, loss_function

    return DistillLoss(loss_function(multi_label), kind, temperature, weight, multi_label)


def test_the_teacher_term_is_t_squared_kl_or_centred_squared_error():
    torch.manual_seed(0)
    student, teacher = torch.randn(5, 4), torch.randn(5, 4) * 3
    targets, gold = torch.zeros(5, dtype=torch.long), torch.ones(5, dtype=torch.bool)
    t = 2.0
    p = torch.softmax(teacher / t, dim=1)
    kl = (p * (torch.log(p) - torch.log_softmax(student / t, dim=1))).sum(dim=1).mean() * t * t
    assert _distill("kl")(student, targets, teacher, gold).item() == pytest.approx(kl.item(), rel=1e-5)
    assert _distill("kl")(teacher, targets, teacher, gold).item() == pytest.approx(0.0, abs=1e-6)
    # a softmax ignores a shift of a row's logits; so does the centred squared error
    mse = _distill("mse")
    assert mse(student + 5.0, targets, teacher, gold).item() == pytest.approx(
        mse(student, targets, teacher, gold).item()
    )
    centred = (student - student.mean(1, keepdim=True)) - (teacher - teacher.mean(1, keepdim=True))
    assert mse(student, targets, teacher, gold).item() == pytest.approx((centred**2).mean().item(), rel=1e-5)


def test_multi_label_kl_is_each_labels_binary_kl():
    torch.manual_seed(1)
    student, teacher = torch.randn(4, 3), torch.randn(4, 3)
    gold = torch.ones(4, dtype=torch.bool)
    p, q = torch.sigmoid(teacher / 3), torch.sigmoid(student / 3)
    expected = (p * torch.log(p / q) + (1 - p) * torch.log((1 - p) / (1 - q))).mean() * 9
    loss = _distill("kl", multi_label=True, temperature=3.0)(student, torch.zeros(4, 3), teacher, gold)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-4)


def test_gold_texts_mix_both_terms_and_texts_without_gold_learn_from_the_teacher_alone():
    from torch.nn.functional import cross_entropy

    torch.manual_seed(2)
    student, teacher = torch.randn(4, 3), torch.randn(4, 3)
    targets = torch.tensor([0, 1, 2, 0])
    gold = torch.tensor([True, True, False, False])
    term = _distill("kl").teacher_term(student, teacher)
    loss = _distill("kl", weight=0.25)(student, targets, teacher, gold)
    expected = (0.25 * term[:2].sum() + term[2:].sum()) / 4 + 0.75 * cross_entropy(student[:2], targets[:2]) * 2 / 4
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    only_gold = _distill("kl", weight=0.0)(student, targets, teacher, torch.ones(4, dtype=torch.bool))
    assert only_gold.item() == pytest.approx(cross_entropy(student, targets).item(), rel=1e-5)
