"""Behaviour shared by every classifier: loss, accuracy, logging, optimizer and schedule."""

import lightning as L
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from torchmetrics import MaxMetric
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from src.nets import scratch


class Classifier(L.LightningModule):
    """Subclasses build `self.net` (images -> logits) and call `save_hyperparameters()`.

    `optim` and `scheduler` are the plain-dict configs of those Hydra groups,
    instantiated in `configure_optimizers`; keeping them as dicts keeps the
    checkpoint loadable with `weights_only=True`.
    """

    def __init__(self, num_classes: int, optim: dict, scheduler: dict | None, impl: str = "torch"):
        super().__init__()
        # The scratch models use the hand-written cross-entropy too.
        self.loss_fn = scratch.cross_entropy if impl == "scratch" else F.cross_entropy
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc_best = MaxMetric()
        self.test_confmat = MulticlassConfusionMatrix(num_classes)
        self.test_confusion: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _step(self, batch, stage: str, acc: MulticlassAccuracy):
        x, y = batch
        logits = self(x)
        loss = self.loss_fn(logits, y)
        preds = logits.argmax(dim=1)
        acc.update(preds, y)
        # on_epoch only: values are averaged (weighted by batch size) and reduced across ranks once per epoch.
        self.log(f"{stage}/loss", loss, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)
        self.log(f"{stage}/acc", acc, on_step=False, on_epoch=True, prog_bar=True)
        return loss, preds

    def training_step(self, batch, batch_idx):
        loss, _ = self._step(batch, "train", self.train_acc)
        return loss

    def on_train_start(self):
        self.val_acc_best.reset()  # forget the sanity-check validation

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val", self.val_acc)

    def on_validation_epoch_end(self):
        self.val_acc_best.update(self.val_acc.compute())
        self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True, sync_dist=True)

    def test_step(self, batch, batch_idx):
        _, preds = self._step(batch, "test", self.test_acc)
        self.test_confmat.update(preds, batch[1])
        return {"preds": preds}

    def on_test_epoch_end(self):
        self.test_confusion = self.test_confmat.compute().cpu()
        self.test_confmat.reset()

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
        # Lets `src.eval` rebuild the right class from the checkpoint alone.
        checkpoint["model_class"] = f"{type(self).__module__}.{type(self).__qualname__}"
