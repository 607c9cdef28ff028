"""Learning-rate schedules that torch does not ship as one class."""

import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR


def warmup_cosine(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_fraction: float = 0.1, min_lr_ratio: float = 0.0
) -> SequentialLR:
    """Linear warm-up from ~0 to the base rate over `warmup_fraction` of the steps, then cosine decay."""
    warmup = max(1, round(total_steps * warmup_fraction))
    base_lr = optimizer.param_groups[0]["lr"]
    return SequentialLR(
        optimizer,
        [
            LinearLR(optimizer, start_factor=1.0 / warmup, end_factor=1.0, total_iters=warmup),
            CosineAnnealingLR(optimizer, T_max=max(1, total_steps - warmup), eta_min=base_lr * min_lr_ratio),
        ],
        milestones=[warmup],
    )
