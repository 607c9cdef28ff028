import torch

from src.models.classifier import Classifier
from src.nets import scratch
from src.utils.errors import ConfigError


class LogisticRegression(Classifier):
    """Binary logistic regression from scratch: one logit z (src.nets.linear.logistic), the
    hand-written stable sigmoid and binary cross-entropy; class 1 when sigmoid(z) > 0.5, i.e. z > 0."""

    def __init__(self, net: dict, input_shape: list[int], num_classes: int, optim=None, scheduler=None, **choices):
        if num_classes != 2:
            raise ConfigError(f"model=logreg is binary: it needs a data set with 2 classes (e.g. data=blobs), "
                              f"and this one has {num_classes}; use model=softmax for more")
        super().__init__(net, input_shape, num_classes, optim=optim, scheduler=scheduler, **choices)
        self.loss_fn = lambda z, y: scratch.binary_cross_entropy_with_logits(z.squeeze(1), y.float())

    def predict(self, logits):
        return (logits.squeeze(1) > 0).long()

    def probabilities(self, x):
        p = scratch.sigmoid(self(x))
        return torch.cat([1 - p, p], dim=1)
