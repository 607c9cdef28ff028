"""The MNIST CNNs, one function per `model.arch`. Each returns logits (the loss applies the softmax)."""

import torch.nn.functional as F
from torch import nn

from src.utils.errors import ConfigError


def _check_input(input_shape) -> None:
    if tuple(input_shape) != (1, 28, 28):
        raise ConfigError(f"model=cnn expects 1x28x28 images, the data gives {tuple(input_shape)}")


class LeNet(nn.Module):
    """conv 1-10 k5, conv 10-20 k5 + Dropout2d, max-pools, fc 320-50-10 with dropout."""

    def __init__(self, num_classes: int = 10, dropout: float = 0.5):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        self.conv2_drop = nn.Dropout2d(dropout)
        self.fc1 = nn.Linear(320, 50)
        self.fc2 = nn.Linear(50, num_classes)
        self.dropout = dropout

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2_drop(self.conv2(x)), 2))
        x = F.relu(self.fc1(x.flatten(1)))
        x = F.dropout(x, self.dropout, training=self.training)
        return self.fc2(x)


def lenet(input_shape, num_classes: int, dropout: float | None = None) -> nn.Module:
    """`dropout` null: 0.5."""
    _check_input(input_shape)
    return LeNet(num_classes, 0.5 if dropout is None else dropout)


def _classifier_head(in_features: int, num_classes: int, dropout: float | None) -> list[nn.Module]:
    return ([nn.Dropout(dropout)] if dropout else []) + [nn.Linear(in_features, num_classes)]


def convbn(input_shape, num_classes: int, dropout: float | None = None) -> nn.Module:
    """conv 1-64 k3 + BN + pool, conv 64-128 k3 + BN + pool, fc 6272-784-98-10; `dropout` (null: none)
    before the last layer."""
    _check_input(input_shape)
    return nn.Sequential(
        nn.Conv2d(1, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1), nn.BatchNorm2d(128), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(128 * 7 * 7, 16 * 7 * 7), nn.ReLU(),
        nn.Linear(16 * 7 * 7, 2 * 7 * 7), nn.ReLU(),
        *_classifier_head(2 * 7 * 7, num_classes, dropout),
    )


def fast(input_shape=(1, 28, 28), num_classes: int = 10, dropout: float | None = None,
         widths: tuple[int, int, int] = (12, 24, 48)) -> nn.Module:
    """Three conv 3x3 + BN + ReLU + max-pool blocks (28 -> 14 -> 7 -> 3), then one linear layer;
    `dropout` (null: none) before it.

    About 1.1 M multiply-adds per image (LeNet: 0.5 M) and 18 k weights; BatchNorm lets it take
    the large learning rates of a one-cycle schedule.
    """
    _check_input(input_shape)
    layers, channels = [], 1
    for width in widths:
        layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2)]
        channels = width
    return nn.Sequential(*layers, nn.Flatten(), *_classifier_head(channels * 3 * 3, num_classes, dropout))
