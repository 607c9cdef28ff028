"""Synthetic data sets of the course, each drawn from its own seed (`data_seed`)."""

import math
import random

import numpy as np
import torch

from src.data.tensor_datamodule import TensorDataModule
from src.utils.errors import ConfigError


class LinearDataModule(TensorDataModule):
    """d2l's y = X true_w + true_b + N(0, noise_std) with X ~ N(0, 1); validation and test are fresh draws.

    Here and below, `**loader` are TensorDataModule's batch_size, eval_batch_size, standardize, seed, repeat.
    """

    num_classes = None

    def __init__(
        self,
        true_w: list[float] = (2.0, -3.4),
        true_b: float = 4.2,
        n: int = 1000,
        n_eval: int = 1000,
        noise_std: float = 0.01,
        data_seed: int = 0,
        **loader,
    ):
        super().__init__(**loader)
        true_w = [float(v) for v in true_w]  # a plain list: Hydra passes a ListConfig, which checkpoints can't hold
        self.save_hyperparameters(logger=False)
        self.true_w = torch.tensor(true_w).unsqueeze(1)
        self.true_b = torch.tensor([float(true_b)])
        self.input_shape = (len(self.true_w),)

    def make_splits(self):
        g = torch.Generator().manual_seed(self.hparams.data_seed)

        def draw(n):
            x = torch.randn(n, len(self.true_w), generator=g)
            return x, x @ self.true_w + self.true_b + self.hparams.noise_std * torch.randn(n, 1, generator=g)

        return {"train": draw(self.hparams.n), "val": draw(self.hparams.n_eval), "test": draw(self.hparams.n_eval)}


class BlobsDataModule(TensorDataModule):
    """Two 2-D Gaussian blobs: class 0 around (c, c), class 1 around (-c, -c).
    The test set is a fresh draw; validation uses the training set."""

    input_shape = (2,)
    num_classes = 2
    classes = ["(2, 2) blob", "(-2, -2) blob"]

    def __init__(
        self,
        n_per_class: int = 50,
        center: float = 2.0,
        std: float = 1.0,
        data_seed: int = 0,
        **loader,
    ):
        super().__init__(**loader)
        self.save_hyperparameters(logger=False)

    def make_splits(self):
        g = torch.Generator().manual_seed(self.hparams.data_seed)
        n, c, std = self.hparams.n_per_class, self.hparams.center, self.hparams.std

        def draw():
            x = torch.cat([c + std * torch.randn(n, 2, generator=g), -c + std * torch.randn(n, 2, generator=g)])
            return x, torch.cat([torch.zeros(n, dtype=torch.long), torch.ones(n, dtype=torch.long)])

        return {"train": draw(), "test": draw()}


def cluster_points(rng: random.Random, n_clusters: int, width: float, std: float, min_size: int, max_size: int,
                   radii: np.random.Generator) -> list[list[list[float]]]:
    """A centre uniform in the cube [0, width]^3, between min_size and max_size
    points at distance N(0, std) in the direction given by two angles uniform in [0, 2 pi).

    The draws from `rng` come in the course notes' order, so `random.Random(9603602)` gives their
    centres and cluster sizes. (Their radii came from numpy's unseeded global RNG: `radii` here.)
    """
    clusters = []
    for _ in range(n_clusters):
        mean = [rng.random() * width for _ in range(3)]
        size = round((max_size - min_size) * rng.random()) + min_size
        points = []
        for r in radii.normal(0, std, size):
            a, b = rng.random() * math.pi * 2, rng.random() * math.pi * 2
            points.append([mean[0] + r * math.cos(a) * math.cos(b), mean[1] + r * math.cos(a) * math.sin(b),
                           mean[2] + r * math.sin(a)])
        clusters.append(points)
    return clusters


class ClustersDataModule(TensorDataModule):
    """3-D clusters, one label per cluster; with `merge` > 1, clusters are shuffled and
    merged `merge` at a time into one label (16 clusters, merge 2: the "XOR-like" set of 8 labels
    that no linear model separates). A seeded shuffle, then `train_fraction` for training and the rest
    for test; validation uses the training set."""

    input_shape = (3,)

    def __init__(
        self,
        n_clusters: int = 10,
        merge: int = 1,
        width: float = 30.0,
        std: float = 3.0,
        min_size: int = 600,
        max_size: int = 700,
        train_fraction: float = 0.8,
        data_seed: int = 9603602,
        **loader,
    ):
        super().__init__(**loader)
        if n_clusters % merge:
            raise ConfigError(f"data.n_clusters={n_clusters} is not a multiple of data.merge={merge}: each label merges "
                              f"the same number of clusters")
        if min_size > max_size:
            raise ConfigError(f"data.min_size={min_size} is above data.max_size={max_size}")
        self.save_hyperparameters(logger=False)
        self.num_classes = n_clusters // merge
        self.classes = [str(i) for i in range(self.num_classes)]

    def make_splits(self):
        h = self.hparams
        rng = random.Random(h.data_seed)
        clusters = cluster_points(rng, h.n_clusters, h.width, h.std, h.min_size, h.max_size,
                                  np.random.default_rng(h.data_seed))
        order = list(range(h.n_clusters))
        if h.merge > 1:
            rng.shuffle(order)  # cluster order[i] gets label i // merge
        samples = [(point, i // h.merge) for i, c in enumerate(order) for point in clusters[c]]
        rng.shuffle(samples)
        n_train = math.floor(len(samples) * h.train_fraction)
        x = torch.tensor([s[0] for s in samples], dtype=torch.float32)
        y = torch.tensor([s[1] for s in samples], dtype=torch.long)
        return {"train": (x[:n_train], y[:n_train]), "test": (x[n_train:], y[n_train:])}
