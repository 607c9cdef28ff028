"""A variational auto-encoder and the two terms of its loss, per sample."""

import math

import torch
import torch.nn.functional as F
from torch import nn

from src.nets.scratch import full_precision


class VAENet(nn.Module):
    """MLP encoder (e.g. 784-512-256) to mu and log-variance; mirrored decoder back to the input size.

    The decoder returns logits; `decode` applies the sigmoid. The loss takes
    the logits (BCE-with-logits is sigmoid + BCE without the log(0)).
    """

    def __init__(self, input_shape=(1, 28, 28), hidden: list[int] = (512, 256), z_dim: int = 2):
        super().__init__()
        in_features = math.prod(input_shape)
        layers, width = [], in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.encoder = nn.Sequential(*layers)
        self.to_mu = nn.Linear(width, z_dim)
        self.to_log_var = nn.Linear(width, z_dim)
        layers, width = [], z_dim
        for h in reversed(hidden):
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, in_features))
        self.decoder = nn.Sequential(*layers)
        self.z_dim = z_dim

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x.flatten(1))
        return self.to_mu(h), self.to_log_var(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1], flat (N, 784)."""
        return torch.sigmoid(self.decoder(z))

    def forward(self, x: torch.Tensor):
        mu, log_var = self.encode(x)
        return self.decoder(reparameterize(mu, log_var)), mu, log_var


def reparameterize(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """z = mu + eps * sigma with eps ~ N(0, I): a sample of q(z|x) that gradients flow through."""
    return mu + torch.randn_like(mu) * torch.exp(0.5 * log_var)


def kl_to_standard_normal(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(log_var))) || N(0, I)) per sample, in closed form."""
    mu, log_var = full_precision(mu), full_precision(log_var)
    return -0.5 * (1 + log_var - mu.pow(2) - log_var.exp()).sum(dim=1)


def reconstruction_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy summed over pixels, per sample."""
    return F.binary_cross_entropy_with_logits(full_precision(logits), x.flatten(1), reduction="none").sum(dim=1)
