"""Softmax regression: one linear map from pixels to class scores."""

from torch import nn

from src.nets import scratch



def softmax_regression(in_features: int, num_classes: int, impl: str) -> nn.Module:
    """Returns logits; the softmax lives in the loss (scratch.cross_entropy or F.cross_entropy)."""
    if impl not in scratch.IMPLS:
        raise ValueError(f"model.impl={impl!r} is unknown; allowed: {', '.join(scratch.IMPLS)}")
    if impl == "scratch":
        return nn.Sequential(nn.Flatten(), scratch.Linear(in_features, num_classes))
    linear = nn.Linear(in_features, num_classes)
    nn.init.normal_(linear.weight, std=0.01)  # the seed's (d2l) init, as in the scratch version
    nn.init.zeros_(linear.bias)
    return nn.Sequential(nn.Flatten(), linear)
