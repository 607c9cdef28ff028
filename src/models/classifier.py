"""Behaviour shared by every classifier: loss, accuracy, logging, optimizer and schedule."""

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from hydra.utils import instantiate
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from src.nets import scratch

STAGES = ("train", "val", "test")


class Classifier(L.LightningModule):
    """Subclasses build `self.net` (images -> logits) and call `save_hyperparameters()`.

    `optim` and `scheduler` are the plain-dict configs of those Hydra groups,
    instantiated in `configure_optimizers`; keeping them as dicts keeps the
    checkpoint loadable with `weights_only=True`.

    Metrics are accumulated per step and logged once per epoch: on 2 CPU cores
    each `self.log` call costs ~0.6 ms, as much as a whole MLP step.
    """

    def __init__(self, num_classes: int, optim: dict, scheduler: dict | None, impl: str = "torch"):
        super().__init__()
        # The scratch models use the hand-written cross-entropy too.
        self.loss_fn = scratch.cross_entropy if impl == "scratch" else F.cross_entropy
        self.metrics = nn.ModuleDict()
        for stage in STAGES:
            self.metrics[f"{stage}_loss"] = MeanMetric()
            self.metrics[f"{stage}_acc"] = MulticlassAccuracy(num_classes, average="micro", validate_args=False)
        self.metrics["val_acc_best"] = MaxMetric()
        self.metrics["test_confmat"] = MulticlassConfusionMatrix(num_classes, validate_args=False)
        self.test_confusion: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _step(self, batch, stage: str):
        x, y = batch
        logits = self(x)
        loss = self.loss_fn(logits, y)
        preds = logits.argmax(dim=1)
        self.metrics[f"{stage}_loss"].update(loss.detach(), weight=len(y))
        self.metrics[f"{stage}_acc"].update(preds, y)
        return loss, preds

    def _log_epoch(self, stage: str) -> dict[str, torch.Tensor]:
        # compute() reduces across DDP ranks; reset() readies the next epoch.
        values = {}
        for name in ("loss", "acc"):
            metric = self.metrics[f"{stage}_{name}"]
            values[f"{stage}/{name}"] = metric.compute()
            metric.reset()
        self.log_dict(values, prog_bar=True)
        return values

    def training_step(self, batch, batch_idx):
        loss, _ = self._step(batch, "train")
        return loss

    def on_train_start(self):
        self.metrics["val_acc_best"].reset()  # forget the sanity-check validation

    def on_train_epoch_end(self):
        self._log_epoch("train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def on_validation_epoch_end(self):
        values = self._log_epoch("val")
        best = self.metrics["val_acc_best"]
        best.update(values["val/acc"])
        self.log("val/acc_best", best.compute(), prog_bar=True)

    def test_step(self, batch, batch_idx):
        _, preds = self._step(batch, "test")
        self.metrics["test_confmat"].update(preds, batch[1])
        return {"preds": preds}

    def on_test_epoch_end(self):
        self._log_epoch("test")
        self.test_confusion = self.metrics["test_confmat"].compute().cpu()
        self.metrics["test_confmat"].reset()

    def configure_optimizers(self):
        optimizer = instantiate(self.hparams.optim, params=self.parameters())
        if not self.hparams.scheduler:
            return optimizer
        cfg = dict(self.hparams.scheduler)
        interval = cfg.pop("interval", "epoch")
        if "total_steps" in cfg and cfg["total_steps"] is None:  # e.g. warmup_cosine, OneCycleLR
            cfg["total_steps"] = int(self.trainer.estimated_stepping_batches)
        scheduler = instantiate(cfg, optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": interval}}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # Lets `src.eval` rebuild the model and its data from the checkpoint alone.
        checkpoint["model_class"] = f"{type(self).__module__}.{type(self).__qualname__}"
        datamodule = self.trainer.datamodule
        if datamodule is not None:
            checkpoint["datamodule_class"] = f"{type(datamodule).__module__}.{type(datamodule).__qualname__}"
