"""The classifier's layer groups, which discriminative learning rates and gradual unfreezing act on (ULMFiT,
Howard & Ruder 2018).
"""

from __future__ import annotations

from torch import nn


def layer_groups(model: nn.Module) -> list[list[nn.Parameter]]:
    """The classifier's parameters from the top: the output layer, each recurrent layer from the last down (both
    directions together), then the embedding."""
    groups = [list(model.head.parameters())]
    encoder = model.encoder
    if encoder is not None:
        for depth in reversed(range(len(encoder.forward_layers))):
            layers = [encoder.forward_layers[depth]]
            if encoder.backward_layers is not None:
                layers.append(encoder.backward_layers[depth])
            groups.append([p for layer in layers for p in layer.parameters()])
    groups.append(list(model.embedding.parameters()))
    return groups


def parameter_groups(model: nn.Module, lr: float, decay: float) -> list[dict]:
    """Optimizer parameter groups: each layer group `decay` times slower than the one above it."""
    groups = []
    for depth, params in enumerate(layer_groups(model)):
        trainable = [p for p in params if p.requires_grad]
        if trainable:
            groups.append({"params": trainable, "lr": lr / decay**depth})
    return groups


def unfreezing_note(model: nn.Module, every: int, epochs: int) -> str | None:
    """A warning when gradual unfreezing would leave layer groups frozen for the whole run."""
    groups = len(layer_groups(model))
    if every == 0 or 1 + (epochs - 1) // every >= groups:
        return None
    return (
        f"warning: train.gradual_unfreezing {every} with {epochs} epochs trains only the top "
        f"{1 + (epochs - 1) // every} of {groups} layer groups; the rest stay as they start (all thaw by epoch "
        f"{(groups - 1) * every + 1})"
    )


def frozen_parameters(model: nn.Module, epoch: int, every: int) -> list[nn.Parameter]:
    """Gradual unfreezing: in epoch `epoch` the top 1 + (epoch - 1) // every layer groups train; the rest wait."""
    if every == 0:
        return []
    groups = layer_groups(model)
    training = 1 + (epoch - 1) // every
    return [p for params in groups[training:] for p in params]
