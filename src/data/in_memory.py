"""Splits held as two tensors, and the batches of an epoch cut from them by indexing.

No DataLoader: a batch is `x[idx]` for a slice `idx` of the epoch's order, on
whatever device the tensors sit. With the split on the GPU that is one gather
per batch and no host-to-device copy or host synchronisation; on the CPU it
skips the per-sample fetch and collate of a DataLoader.
"""

import math

import numpy as np
import torch


class TensorSplit:
    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        assert len(x) == len(y)
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device: torch.device) -> "TensorSplit":
        return self if self.x.device == device else TensorSplit(self.x.to(device), self.y.to(device))


class EpochShuffleSampler:
    """A random order that depends only on (seed, epoch), not on the global RNG.

    So the batches of a run do not change when other code draws random
    numbers (dropout, evaluation between epochs), and are the same on the CPU
    and the GPU. Lightning calls `set_epoch` at the start of every epoch.
    """

    def __init__(self, n: int, seed: int, epoch: int = 0, repeat: int = 1):
        self.n, self.seed, self.epoch, self.repeat = n, seed, epoch, repeat

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n * self.repeat

    def order(self) -> torch.Tensor:
        # SeedSequence mixes the pair: seed + epoch would give seed 1 epoch 1 the order of seed 2 epoch 0.
        g = torch.Generator().manual_seed(int(np.random.SeedSequence([self.seed, self.epoch]).generate_state(1)[0]))
        # `repeat` passes, each a fresh permutation: a batch of size n is then always the whole set.
        return torch.cat([torch.randperm(self.n, generator=g) for _ in range(self.repeat)])


class Batches:
    """The batches of one pass over `split`, in the sampler's order (or in order), this rank's share.

    Under DDP (`world_size` > 1) each rank takes every `world_size`-th index of
    the order. `pad=True` first repeats the order's start so that every rank
    gets as many batches as the others, as torch's DistributedSampler does
    (training and validation run through the DDP wrapper, whose collectives
    need equal counts); `pad=False` shows every sample exactly once, the
    ranks' counts differing by at most one (testing). With `count_real`, each
    batch comes with the number of its samples that are not padding (they come
    first), so that metrics count every sample once (validation under DDP).

    The order is drawn on the CPU and copied to the split's device once per
    epoch; every batch is then cut on that device.
    """

    batch_sampler = None  # Lightning looks for one beside `sampler` (whose set_epoch it calls)

    def __init__(self, split: TensorSplit, batch_size: int, sampler: EpochShuffleSampler | None = None,
                 rank: int = 0, world_size: int = 1, pad: bool = True, count_real: bool = False):
        self.split, self.batch_size, self.sampler = split, min(batch_size, max(1, len(split))), sampler
        self.rank, self.world_size, self.pad, self.count_real = rank, world_size, pad, count_real

    def _count(self) -> int:
        n = len(self.sampler) if self.sampler is not None else len(self.split)
        if self.world_size == 1:
            return n
        if self.pad:
            return math.ceil(n / self.world_size)
        return len(range(self.rank, n, self.world_size))

    def __len__(self) -> int:
        return math.ceil(self._count() / self.batch_size)

    def __iter__(self):
        x, y, bs = self.split.x, self.split.y, self.batch_size
        if self.sampler is None and self.world_size == 1:  # in order: views, no gather
            for i in range(0, len(y), bs):
                yield x[i : i + bs], y[i : i + bs]
            return
        order = self.sampler.order() if self.sampler is not None else torch.arange(len(y))
        real = len(range(self.rank, len(order), self.world_size))  # this rank's samples before padding
        if self.world_size > 1:
            if self.pad:
                total = math.ceil(len(order) / self.world_size) * self.world_size
                order = torch.cat([order, order[: total - len(order)]])
            order = order[self.rank :: self.world_size]
        order = order.to(x.device)
        for i in range(0, len(order), bs):
            idx = order[i : i + bs]
            if self.count_real:  # (x, y, how many are real): the padding repeats another rank's samples
                yield x[idx], y[idx], max(0, min(len(idx), real - i))
            else:
                yield x[idx], y[idx]
