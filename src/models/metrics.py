"""A running mean that costs a training step no GPU work."""

import torch
from torchmetrics import Metric


class Mean(Metric):
    """The weighted mean of per-batch values, like torchmetrics' MeanMetric, without its per-step cost.

    An update only keeps the value (detached, on its device) and its weight; they are added up
    when the mean is computed or synced across DDP ranks, and every `fold_every` updates. On a GPU
    each kernel of a step costs a launch, and MeanMetric's update launches several and waits for the
    device (its NaN check). A NaN is not dropped here: it shows in the mean.
    """

    full_state_update = False
    fold_every = 1024  # bounds the values kept, e.g. over the 100,000 steps of a full-batch regression

    def __init__(self):
        super().__init__()
        self.add_state("total", torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0.0), dist_reduce_fx="sum")
        self._values: list[torch.Tensor] = []
        self._weights: list[int] = []

    def update(self, value: torch.Tensor, weight: int) -> None:
        if weight == 0:  # an empty batch (all padding under DDP): its mean is NaN and counts for nothing
            return
        self._values.append(value.detach())
        self._weights.append(weight)
        if len(self._values) >= self.fold_every:
            self._fold()

    def _fold(self) -> None:
        if not self._values:
            return
        # In float32 at least, even when the module was cast to half precision (trainer.precision=16-true).
        dtype = torch.promote_types(self.total.dtype, torch.float32)
        values = torch.stack(self._values).to(dtype)
        weights = torch.tensor(self._weights, dtype=dtype).to(values.device, non_blocking=True)
        self.total = self.total.to(dtype) + (values * weights).sum()
        self.count = self.count.to(dtype) + sum(self._weights)
        self._values, self._weights = [], []

    def sync(self, *args, **kwargs) -> None:
        self._fold()  # the states must hold every update before they are reduced across ranks
        super().sync(*args, **kwargs)

    def compute(self) -> torch.Tensor:
        self._fold()
        return self.total / self.count

    def reset(self) -> None:
        super().reset()
        self._values, self._weights = [], []
