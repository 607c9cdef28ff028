"""The two MNIST CNNs of the seeds. Both return logits (no softmax: the loss applies it)."""

import torch.nn.functional as F
from torch import nn


class LeNet(nn.Module):
    """Seed 000: conv 1-10 k5, conv 10-20 k5 + Dropout2d, max-pools, fc 320-50-10 with dropout."""

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


def convbn(num_classes: int = 10) -> nn.Module:
    """Seed 002: conv 1-64 k3 + BN + pool, conv 64-128 k3 + BN + pool, fc 6272-784-98-10.

    The seed ended in a softmax and then fed it to CrossEntropyLoss (softmax
    twice, which flattens the gradients); this returns the logits.
    """
    return nn.Sequential(
        nn.Conv2d(1, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1), nn.BatchNorm2d(128), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(128 * 7 * 7, 16 * 7 * 7), nn.ReLU(),
        nn.Linear(16 * 7 * 7, 2 * 7 * 7), nn.ReLU(),
        nn.Linear(2 * 7 * 7, num_classes),
    )


def fast(num_classes: int = 10, widths: tuple[int, int, int] = (12, 24, 48)) -> nn.Module:
    """experiment=mnist_fast: three conv 3x3 + BN + ReLU + max-pool blocks (28 -> 14 -> 7 -> 3), then one linear layer.

    About 1.1 M multiply-adds per image (LeNet: 0.5 M) and 18 k weights, so an
    epoch of MNIST trains in seconds on 2 CPU cores; BatchNorm lets it take the
    large learning rates of a one-cycle schedule. (Widths 16-32-64 train at
    about 60% of this speed here.)
    """
    layers, channels = [], 1
    for width in widths:
        layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2)]
        channels = width
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(channels * 3 * 3, num_classes))
