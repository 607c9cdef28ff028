"""Plain SGD written by hand: p <- p - lr * grad.

It subclasses torch.optim.Optimizer only to get `param_groups` and
`state_dict`, which Lightning, LR schedulers and checkpoints rely on.
"""

import torch


class ScratchSGD(torch.optim.Optimizer):
    def __init__(self, params, lr: float):  # (optim.lr > 0 is checked with the rest of the config)
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p -= group["lr"] * p.grad
        return loss
