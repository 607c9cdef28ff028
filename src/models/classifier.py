"""Any network from inputs to class logits, trained on cross-entropy: a new classifier needs only
its network (src/nets/) and its config (conf/model/)."""

import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from torchmetrics import MaxMetric
from torchmetrics.classification import MulticlassConfusionMatrix

from src.models.base import BaseModule
from src.nets import scratch

# `impl`: which cross-entropy. The hand-written networks train on the hand-written loss too.
LOSSES = {"torch": F.cross_entropy, "scratch": scratch.cross_entropy}


class Classifier(BaseModule):
    """`net` is the network's config: its `_target_` is called with the data's `input_shape` and
    `num_classes` and the options beside it, and returns a module that maps inputs to logits.

    `choices` are the model config's own keys that `net` is filled from (e.g. model.arch,
    model.hidden): they are kept with the other hyper-parameters, where a resume compares them.

    Logged: loss and accuracy per stage, the best validation accuracy so far; after testing,
    `test_confusion` holds the confusion matrix (rows: true class, columns: predicted).
    """

    terms = ("loss", "acc")

    def __init__(self, net: dict, input_shape: list[int], num_classes: int, impl: str = "torch",
                 optim: dict | None = None, scheduler: dict | None = None, **choices):
        super().__init__(optim, scheduler)
        self.net = instantiate(net, input_shape=list(input_shape), num_classes=num_classes, _convert_="all")
        self.loss_fn = LOSSES[impl]
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)  # kept in checkpoints: survives a resume
        self.confusion = MulticlassConfusionMatrix(num_classes, validate_args=False)
        self.test_confusion: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        """The predicted class of each row of logits."""
        return logits.argmax(dim=1)

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """(N, classes) class probabilities of the inputs x."""
        return scratch.softmax(self(x))

    def step(self, x, y):
        logits = self(x)
        preds = self.predict(logits)
        # Accuracy as a mean of per-batch accuracies weighted by batch size: one comparison per step.
        # (torchmetrics' MulticlassAccuracy counts tp, fp, tn and fn: a dozen kernel launches a step.)
        return {"loss": self.loss_fn(logits, y), "acc": (preds == y).float().mean(), "preds": preds}

    def on_validation_epoch_end(self):
        values = self.log_epoch("val")
        if self.trainer.sanity_checking:
            return
        self.val_acc_best.update(values["val/acc"])
        self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True)

    def test_step(self, batch, batch_idx):
        values = super().test_step(batch, batch_idx)
        self.confusion.update(values["preds"], batch[1])
        return values

    def on_test_epoch_end(self):
        self.log_epoch("test")
        self.test_confusion = self.confusion.compute().cpu()
        self.confusion.reset()
