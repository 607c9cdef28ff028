"""A weighted mean, added to once per epoch."""

import torch
from torchmetrics import Metric


class Mean(Metric):
    """The weighted mean of per-batch values, like torchmetrics' MeanMetric, for many batches at once.

    `BaseModule` keeps each step's values (detached, on the device) in a plain list and hands them
    over here in one update at the end of the epoch: torchmetrics' update wrapper costs tens of
    microseconds per call, and MeanMetric's NaN check makes the host wait for a GPU. A NaN is not
    dropped here: it shows in the mean.
    """

    full_state_update = False

    def __init__(self):
        super().__init__()
        self.add_state("total", torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0.0), dist_reduce_fx="sum")

    def update(self, values: torch.Tensor, weights: torch.Tensor) -> None:
        # In float32 at least, even when the module was cast to half precision (trainer.precision=16-true).
        dtype = torch.promote_types(self.total.dtype, torch.float32)
        weights = weights.to(dtype)
        self.total = self.total.to(dtype) + (values.to(dtype) * weights).sum()
        self.count = self.count.to(dtype) + weights.sum()

    def compute(self) -> torch.Tensor:
        return self.total / self.count
