"""A split held as two tensors, batched by one indexing operation.

A `DataLoader` over torchvision's datasets converts every sample through PIL
and `ToTensor`; on 2 CPU cores that is ~90% of an MLP epoch. Here a batch is
`x[indices]`: the DataLoader's fetcher calls `__getitems__` with the whole
batch of indices, so samplers (including Lightning's DistributedSampler for
DDP) keep working unchanged.
"""

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler


class TensorSplit(Dataset):
    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        assert len(x) == len(y)
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], self.y[i]

    def __getitems__(self, indices: list[int]):
        idx = torch.as_tensor(indices)
        return self.x[idx], self.y[idx]


def keep_batch(batch):
    """collate_fn: `__getitems__` already returned a stacked batch."""
    return batch


class EpochShuffleSampler(Sampler[int]):
    """A random order that depends only on (seed, epoch), not on the global RNG.

    So the batches of a run do not change when other code draws random
    numbers (e.g. dropout, or evaluation added between epochs). Lightning calls
    `set_epoch` at the start of every epoch.
    """

    def __init__(self, n: int, seed: int, epoch: int = 0, repeat: int = 1):
        self.n, self.seed, self.epoch, self.repeat = n, seed, epoch, repeat

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n * self.repeat

    def __iter__(self):
        # SeedSequence mixes the pair: seed + epoch would give seed 1 epoch 1 the order of seed 2 epoch 0.
        g = torch.Generator().manual_seed(int(np.random.SeedSequence([self.seed, self.epoch]).generate_state(1)[0]))
        # `repeat` passes, each a fresh permutation: a batch of size n is then always the whole set.
        return iter(torch.cat([torch.randperm(self.n, generator=g) for _ in range(self.repeat)]).tolist())
