"""Stop at the first NaN or infinite training loss instead of training on it."""

import math

import torch
from lightning.pytorch import Callback

from src.utils.errors import TrainingError


class FiniteLoss(Callback):
    """Checks every `check_every` steps; by default every step on the CPU and at the logging steps
    (every log_every_n_steps) on a GPU, where reading the loss makes the host wait for the device.
    Meanwhile the losses are kept (detached, on the device); they are also checked at the end of
    each epoch, before its checkpoints. The error names the first bad step, however late it is found."""

    def __init__(self, check_every: int | None = None):
        self.check_every = check_every
        self.window: list[tuple[torch.Tensor, int, int, int, list[float]]] = []

    def on_train_start(self, trainer, pl_module):
        self.every = self.check_every or (1 if pl_module.device.type == "cpu" else trainer.log_every_n_steps)
        self.alone = trainer.world_size == 1
        self.groups = [g for opt in trainer.optimizers for g in opt.param_groups]

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        # The rates this step uses: by its end a per-step schedule has already moved on.
        self.lrs = [g["lr"] for g in self.groups]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is None:
            return
        if self.every == 1 and self.alone and math.isfinite(loss.item()):  # the CPU's check, at a step's cost
            return
        self.window.append((loss.detach(), trainer.current_epoch, batch_idx, trainer.global_step, self.lrs))
        # Read at Lightning's logging steps (counted over the run, not the epoch; on the batch that steps the
        # optimizer where gradients accumulate), which wait for the device anyway; and at the epoch's end.
        if batch_idx + 1 >= trainer.num_training_batches:
            self.check(trainer)
        elif (trainer.fit_loop.epoch_loop._batches_that_stepped + 1) % self.every == 0 and not (
                pl_module.automatic_optimization and trainer.fit_loop._should_accumulate()):
            self.check(trainer)

    def on_train_epoch_end(self, trainer, pl_module):
        self.check(trainer)

    def check(self, trainer) -> None:
        if not self.window:
            return
        window, self.window = self.window, []
        losses = torch.stack([entry[0] for entry in window]).float()
        finite = torch.isfinite(losses)
        if trainer.world_size == 1 and bool(finite.all()):  # the one read of device memory per window
            return
        # The index of the first bad loss in this window, or len(window) where there is none.
        first = torch.where(finite, len(window), torch.arange(len(window), device=losses.device)).min()
        rank = 0
        if trainer.world_size > 1:
            # Under DDP every rank takes part and all stop at the same step with the same message:
            # a rank that stopped alone would leave the others waiting in their next all-reduce.
            firsts = trainer.strategy.all_gather(first).reshape(-1)
            rank = int(firsts.argmin())
            first = firsts[rank]
            if int(first) == len(window):
                return
            value = float(trainer.strategy.all_gather(losses[first]).reshape(-1)[rank])
        else:
            value = float(losses[first])
        _, epoch, batch_idx, step, lrs = window[int(first)]
        where = f" on rank {rank}" if trainer.world_size > 1 else ""
        raise TrainingError(
            f"the training loss became {value}{where} at epoch {epoch}, batch {batch_idx} "
            f"(global step {step}) with learning rate {', '.join(f'{lr:.3g}' for lr in lrs)}. {self.advice(trainer)} "
            f"The checkpoints written before this step are intact."
        )

    def advice(self, trainer) -> str:
        # In pure float16 Adam's average of squared gradients, v = (1 - beta2) g**2, underflows to 0 wherever
        # |g| < ~5e-3 (by default), and the update m / (sqrt(v) + eps) is left with eps=1e-8 alone: 0 in
        # float16 (the unfused step divides by 0); the fused step adds it in float32, and m / 1e-8 overflows.
        if trainer.precision == "16-true":
            eps = [e for e in (g.get("eps") for g in self.groups)
                   if isinstance(e, float) and 0 < e and torch.tensor(e, dtype=torch.float16) == 0]
            if eps:
                return (f"In float16 (trainer.precision=16-true) Adam's average of squared gradients underflows to 0 "
                        f"where gradients are small, and its update m / (sqrt(v) + eps) is then divided by "
                        f"eps={eps[0]:g} alone (0 in float16 itself): train in trainer.precision=16-mixed (or "
                        f"bf16-true), or with optim=sgd.")
        return "Lower optim.lr, or clip gradients (trainer.gradient_clip_val=1)."
