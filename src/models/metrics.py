"""A running mean that never waits for the GPU."""

import torch
from torchmetrics import Metric


class Mean(Metric):
    """The weighted mean of per-batch values, as torchmetrics' MeanMetric, minus its per-update work
    that reads a device value on the host (its NaN check) or copies one to the device (the weight):
    on a GPU either stalls every step. A NaN is not dropped: it shows in the mean."""

    full_state_update = False

    def __init__(self):
        super().__init__()
        self.add_state("total", torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0.0), dist_reduce_fx="sum")

    def update(self, value: torch.Tensor, weight: int) -> None:
        self.total += value.detach() * weight
        self.count += weight

    def compute(self) -> torch.Tensor:
        return self.total / self.count
