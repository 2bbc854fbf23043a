"""The classifier: padding never changes a prediction, each direction's true last step, frozen embeddings, and the
AWD regularisers (weight, word and variational dropout) in training only."""

import numpy as np
import pytest
import torch

from rnnclf.data.batching import collate
from rnnclf.models.classifier import RNNClassifier

from helpers.models import COMBINATIONS, build, texts_to_encoded


@pytest.mark.parametrize(("encoder", "bidirectional", "pooling", "layers"), COMBINATIONS)
def test_padding_never_changes_a_prediction(encoder, bidirectional, pooling, layers):
    model = build(encoder, bidirectional, pooling, layers)
    short = [5, 9, 3]
    rng = np.random.default_rng(0)
    long_texts = [rng.integers(2, 30, size=60).tolist() for _ in range(3)]
    encoded = texts_to_encoded([short, *long_texts])
    with torch.no_grad():
        alone = collate(encoded, np.array([0]))
        batched = collate(encoded, np.array([1, 0, 2, 3]))
        logits_alone = model(alone.ids, alone.lengths)[0]
        logits_batched = model(batched.ids, batched.lengths)[1]
        # extra padding columns beyond the batch's longest text change nothing either
        wide = torch.nn.functional.pad(alone.ids, (0, 25))
        logits_wide = model(wide, alone.lengths)[0]
    assert batched.ids.shape[1] == 60
    torch.testing.assert_close(logits_batched, logits_alone, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(logits_wide, logits_alone, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("encoder", ["rnn", "lstm", "gru"])
def test_last_is_each_directions_true_last_step(encoder):
    model = build(encoder, True, "last", 1)
    captured = {}
    model.head.register_forward_hook(lambda module, inputs, output: captured.setdefault("pooled", inputs[0]))
    text = torch.tensor([[4, 7, 2, 9]])
    padded = torch.tensor([[4, 7, 2, 9, 0, 0, 0], [1, 2, 3, 4, 5, 6, 7]])
    with torch.no_grad():
        model(padded, torch.tensor([4, 7]))
        # reference: each direction run alone over the unpadded text
        forward, _ = model.encoder.forward_layers[0](model.embedding(text))
        backward, _ = model.encoder.backward_layers[0](model.embedding(text.flip(1)))
    expected = torch.cat([forward[0, -1], backward[0, -1]])
    torch.testing.assert_close(captured["pooled"][0], expected, atol=1e-6, rtol=1e-6)


def test_bidirectional_outputs_match_unpadded_reference():
    model = build("lstm", True, "max", 2)
    padded = torch.tensor([[4, 7, 2, 9, 0, 0, 0], [1, 2, 3, 4, 5, 6, 7]])
    lengths = torch.tensor([4, 7])
    with torch.no_grad():
        outputs = model.encoder(model.embedding(padded), lengths)
        alone = model.encoder(model.embedding(padded[:1, :4]), lengths[:1])
    assert len(outputs) == len(alone) == 2  # one tensor per direction, both after two layers
    for direction, reference in zip(outputs, alone, strict=True):
        torch.testing.assert_close(direction[0, :4], reference[0], atol=1e-6, rtol=1e-6)


def test_frozen_embedding_gets_no_gradient():
    model = RNNClassifier(30, 2, embedding_dim=8, trainable_embedding=False, encoder="gru", hidden_size=4)
    assert not model.embedding.weight.requires_grad
    model(torch.tensor([[3, 4]]), torch.tensor([2])).sum().backward()
    assert model.embedding.weight.grad is None
    assert model.head.weight.grad is not None


def test_awd_regularisers_act_in_training_only_and_keep_the_parameter_names():
    """Weight dropout, word dropout and variational dropout change training outputs; evaluation is the plain
    model's, and the weights load into a model built without them (export, predict and serve see no difference)."""
    from rnnclf.models.classifier import RNNClassifier

    torch.manual_seed(0)
    regular = {"word_dropout": 0.3, "weight_dropout": 0.5, "variational": True, "embedding_dropout": 0.3}
    awd = RNNClassifier(30, 3, embedding_dim=8, encoder="lstm", hidden_size=8, num_layers=2, dropout=0.3, **regular)
    plain = RNNClassifier(30, 3, embedding_dim=8, encoder="lstm", hidden_size=8, num_layers=2, dropout=0.3)
    plain.load_state_dict(awd.state_dict())  # same names, same shapes
    ids, lengths = torch.randint(2, 30, (4, 9)), torch.tensor([9, 7, 4, 2])
    awd.train()
    assert not torch.allclose(awd(ids, lengths), awd(ids, lengths))
    awd.eval(), plain.eval()
    assert torch.equal(awd(ids, lengths), plain(ids, lengths))


def test_word_dropout_drops_a_word_everywhere_and_variational_dropout_every_time_step_alike():
    from rnnclf.models.layers import SequenceDropout, WordEmbedding

    torch.manual_seed(1)
    embedding = WordEmbedding(20, 6, word_dropout=0.5).train()
    ids = torch.tensor([[3, 4, 3, 5, 4, 3]])
    vectors = embedding(ids)[0]
    zero = (vectors == 0).all(dim=1)
    assert zero.any() and not zero.all()
    for word in (3, 4, 5):  # a dropped word is dropped at each of its positions
        assert len(set(zero[ids[0] == word].tolist())) == 1
    x = torch.ones(2, 7, 10)
    masked = SequenceDropout(0.5, variational=True).train()(x)
    assert torch.equal(masked, masked[:, :1].expand_as(masked))  # one mask per text for all its steps
    assert not torch.equal(masked[0], masked[1])
