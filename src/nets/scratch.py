"""The course's "from scratch" building blocks, written by hand on purpose.

Tests check each of them against PyTorch's own (values and gradients).
"""

import torch
from torch import nn

# `impl` choices of the models that have a hand-written version.
IMPLS = ("scratch", "torch")


def softmax(logits: torch.Tensor) -> torch.Tensor:
    """Class probabilities (the course's softmax). The loss does not use it: it goes through
    log_softmax, which is more accurate than log(softmax) for tiny probabilities."""
    # Subtracting the row max leaves softmax unchanged but keeps exp() <= 1:
    # the seed's plain exp() overflows to inf/inf = nan for logits above ~88.
    z = logits - logits.max(dim=1, keepdim=True).values
    e = z.exp()
    return e / e.sum(dim=1, keepdim=True)


def log_softmax(logits: torch.Tensor) -> torch.Tensor:
    z = logits - logits.max(dim=1, keepdim=True).values
    return z - z.exp().sum(dim=1, keepdim=True).log()


def cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean of -log softmax(logits)[y]; taken from log-softmax so that it never computes log(0)."""
    picked = log_softmax(logits).gather(1, y.unsqueeze(1)).squeeze(1)
    return -picked.mean()


def relu(x: torch.Tensor) -> torch.Tensor:
    # where(), not max(x, 0): max splits the gradient at x = 0 (0.5), F.relu gives 0 there.
    return torch.where(x > 0, x, torch.zeros_like(x))


class Linear(nn.Module):
    """y = x W + b with the seed's N(0, 0.01) weights and zero bias."""

    def __init__(self, in_features: int, out_features: int, std: float = 0.01):
        super().__init__()
        self.W = nn.Parameter(torch.randn(in_features, out_features) * std)
        self.b = nn.Parameter(torch.zeros(out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.W + self.b
