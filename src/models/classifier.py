"""Behaviour shared by every classifier: loss, accuracy and the confusion matrix."""

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MaxMetric
from torchmetrics.classification import MulticlassConfusionMatrix

from src.models.base import STAGES, BaseModule, split_batch
from src.nets import scratch


class Classifier(BaseModule):
    """Subclasses build `self.net` (images -> logits) and call `save_hyperparameters()`."""

    def __init__(self, num_classes: int, optim: dict, scheduler: dict | None, impl: str = "torch"):
        super().__init__()
        # The scratch models use the hand-written cross-entropy too.
        self.loss_fn = scratch.cross_entropy if impl == "scratch" else F.cross_entropy
        # Accuracy as the mean of per-batch accuracies weighted by batch size: one comparison per step.
        # (torchmetrics' MulticlassAccuracy counts tp, fp, tn and fn: a dozen kernel launches a step.)
        self.metrics = nn.ModuleDict(self.mean_metrics(STAGES, ["loss", "acc"]))
        self.metrics["val_acc_best"] = MaxMetric()
        self.metrics["val_acc_best"].persistent(True)  # kept in checkpoints: survives a resume
        self.metrics["test_confmat"] = MulticlassConfusionMatrix(num_classes, validate_args=False)
        self.test_confusion: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.argmax(dim=1)

    def _step(self, batch, stage: str):
        x, y, n = split_batch(batch)
        logits = self(x)
        if n < len(y):  # padding (DDP validation): run, not counted
            logits, y = logits[:n], y[:n]
        loss = self.loss_fn(logits, y)
        preds = self.predict(logits)
        self.metrics[f"{stage}_loss"].update(loss.detach(), weight=n)
        self.metrics[f"{stage}_acc"].update((preds == y).float().mean(), weight=n)
        return loss, preds

    def training_step(self, batch, batch_idx):
        loss, _ = self._step(batch, "train")
        return loss

    def on_train_epoch_end(self):
        self._log_epoch("train", ("loss", "acc"))

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def on_validation_epoch_end(self):
        values = self._log_epoch("val", ("loss", "acc"))
        if self.trainer.sanity_checking:
            return
        best = self.metrics["val_acc_best"]
        best.update(values["val/acc"])
        self.log("val/acc_best", best.compute(), prog_bar=True)

    def test_step(self, batch, batch_idx):
        _, preds = self._step(batch, "test")
        self.metrics["test_confmat"].update(preds, batch[1])
        return {"preds": preds}

    def on_test_epoch_end(self):
        self._log_epoch("test", ("loss", "acc"))
        self.test_confusion = self.metrics["test_confmat"].compute().cpu()
        self.metrics["test_confmat"].reset()
