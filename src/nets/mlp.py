"""Multi-layer perceptron: Linear-ReLU(-Dropout) blocks, then a linear classifier."""

from torch import nn

from src.nets import scratch



class ScratchReLU(nn.Module):
    def forward(self, x):
        return scratch.relu(x)


def mlp(in_features: int, hidden: list[int], num_classes: int, dropout: float, impl: str) -> nn.Module:
    """`impl=scratch`: hand-written Linear (N(0, 0.01) init) and ReLU; `torch`: nn.Linear (default init), nn.ReLU."""
    if impl not in scratch.IMPLS:
        raise ValueError(f"model.impl={impl!r} is unknown; allowed: {', '.join(scratch.IMPLS)}")
    linear = scratch.Linear if impl == "scratch" else nn.Linear
    relu = ScratchReLU if impl == "scratch" else nn.ReLU
    layers: list[nn.Module] = [nn.Flatten()]
    width = in_features
    for h in hidden:
        layers += [linear(width, h), relu()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = h
    layers.append(linear(width, num_classes))
    return nn.Sequential(*layers)
