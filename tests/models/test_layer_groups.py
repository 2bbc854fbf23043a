"""Layer groups: discriminative learning rates, and gradual unfreezing from the top."""

import pytest


def test_parameter_groups_learn_slower_downwards_and_unfreeze_in_turn():
    from rnnclf.models.classifier import RNNClassifier
    from rnnclf.models.layer_groups import frozen_parameters, parameter_groups

    model = RNNClassifier(50, 3, embedding_dim=8, encoder="lstm", hidden_size=8, num_layers=2, bidirectional=True)
    groups = parameter_groups(model, 0.01, 2.0)
    assert [g["lr"] for g in groups] == pytest.approx([0.01, 0.005, 0.0025, 0.00125])  # head, layer 2, 1, embedding
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    head = set(map(id, model.head.parameters()))
    assert head.isdisjoint(map(id, frozen_parameters(model, 1, 1)))
    assert len(frozen_parameters(model, 1, 1)) == len(list(model.parameters())) - len(head)
    assert frozen_parameters(model, 4, 1) == [] and frozen_parameters(model, 1, 0) == []
    assert id(model.embedding.weight) in set(map(id, frozen_parameters(model, 3, 1)))  # the last to thaw
