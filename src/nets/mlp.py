"""Multi-layer perceptrons: Linear-ReLU(-Dropout) blocks, then a linear layer to the class logits.
`model.impl` picks the function: scratch_mlp or torch_mlp."""

import math

from torch import nn

from src.nets import scratch


class ScratchReLU(nn.Module):
    def forward(self, x):
        return scratch.relu(x)


def _mlp(input_shape, num_classes: int, hidden: list[int], dropout: float, linear, relu) -> nn.Module:
    layers: list[nn.Module] = [nn.Flatten()]
    width = math.prod(input_shape)
    for h in hidden:
        layers += [linear(width, h), relu()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = h
    layers.append(linear(width, num_classes))
    return nn.Sequential(*layers)


def scratch_mlp(input_shape, num_classes: int, hidden: list[int] = (256,), dropout: float = 0.0) -> nn.Module:
    """The hand-written Linear (N(0, 0.01) init) and ReLU."""
    return _mlp(input_shape, num_classes, hidden, dropout, scratch.Linear, ScratchReLU)


def torch_mlp(input_shape, num_classes: int, hidden: list[int] = (256,), dropout: float = 0.0) -> nn.Module:
    """nn.Linear (its default init) and nn.ReLU."""
    return _mlp(input_shape, num_classes, hidden, dropout, nn.Linear, nn.ReLU)
