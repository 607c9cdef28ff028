"""One linear map from the inputs: softmax regression's class scores (`model.impl` picks
scratch_softmax or torch_softmax) and logistic regression's single logit."""

import math

from torch import nn

from src.nets import scratch


def scratch_softmax(input_shape, num_classes: int) -> nn.Module:
    """The hand-written Linear: W ~ N(0, 0.01), b = 0. Returns logits; the loss applies the softmax."""
    return nn.Sequential(nn.Flatten(), scratch.Linear(math.prod(input_shape), num_classes))


def torch_softmax(input_shape, num_classes: int) -> nn.Module:
    """nn.Linear, initialised as the scratch version."""
    linear = nn.Linear(math.prod(input_shape), num_classes)
    nn.init.normal_(linear.weight, std=0.01)
    nn.init.zeros_(linear.bias)
    return nn.Sequential(nn.Flatten(), linear)


def logistic(input_shape, num_classes: int = 2) -> nn.Module:
    """z = x w + b with the hand-written Linear (w ~ N(0, 0.01), b = 0): the logit of class 1."""
    return scratch.Linear(math.prod(input_shape), 1)
