"""Stop at the first NaN or infinite training loss instead of training on it."""

import torch
from lightning.pytorch import Callback

from src.utils.errors import TrainingError


class FiniteLoss(Callback):
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is not None and not torch.isfinite(loss):
            lrs = ", ".join(f"{g['lr']:.3g}" for opt in trainer.optimizers for g in opt.param_groups)
            raise TrainingError(
                f"the training loss became {loss.item()} at epoch {trainer.current_epoch}, batch {batch_idx} "
                f"(global step {trainer.global_step}) with learning rate {lrs}. Lower optim.lr, or clip gradients "
                f"(trainer.gradient_clip_val=1). The checkpoints written before this step are intact."
            )
