"""The course's "from scratch" building blocks, written by hand on purpose.

Tests check each of them against PyTorch's own (values and gradients).
"""

import torch
from torch import nn


def full_precision(t: torch.Tensor) -> torch.Tensor:
    """Half-precision values (from layers under autocast) in float32, as torch's own losses do:
    bf16 keeps 3 significant digits, too few for a sum of exponentials or a log."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def softmax(logits: torch.Tensor) -> torch.Tensor:
    """Class probabilities (the course's softmax). The loss does not use it: it goes through
    log_softmax, which is more accurate than log(softmax) for tiny probabilities."""
    # Subtracting the row max leaves softmax unchanged but keeps exp() <= 1:
    # a plain exp() overflows to inf/inf = nan for logits above ~88.
    logits = full_precision(logits)
    z = logits - logits.max(dim=1, keepdim=True).values
    e = z.exp()
    return e / e.sum(dim=1, keepdim=True)


def log_softmax(logits: torch.Tensor) -> torch.Tensor:
    logits = full_precision(logits)
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
    """y = x W + b with N(0, 0.01) weights and zero bias."""

    def __init__(self, in_features: int, out_features: int, std: float = 0.01):
        super().__init__()
        self.W = nn.Parameter(torch.randn(in_features, out_features) * std)
        self.b = nn.Parameter(torch.zeros(out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.W + self.b


def softplus(z: torch.Tensor) -> torch.Tensor:
    """log(1 + exp(z)) = m + log(exp(-m) + exp(z - m)) for any m; m = max(z, 0) keeps both exp() <= 1,
    so it never overflows, and m cancels out of the gradient, which is exact even at z = 0."""
    z = full_precision(z)
    m = z.clamp(min=0)
    return m + torch.log(torch.exp(-m) + torch.exp(z - m))


def sigmoid(z: torch.Tensor) -> torch.Tensor:
    """1 / (1 + exp(-z)), written exp(-softplus(-z)): the direct form overflows, exp(1000) = inf."""
    return torch.exp(-softplus(-z))


def binary_cross_entropy_with_logits(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean of -[y log sigmoid(z) + (1 - y) log(1 - sigmoid(z))], from the logit z.

    That is softplus(z) - y z: no log(0) even where sigmoid(z) rounds to 0 or 1
    (adding 1e-7 inside the log instead, as the course notes do, caps the
    loss of a confident mistake at ~16 and zeroes its gradient).
    """
    z = full_precision(z)
    return (softplus(z) - z * y).mean()
