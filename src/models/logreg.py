import math

from src.models.classifier import Classifier
from src.nets import scratch
from src.utils.errors import ConfigError


class LogisticRegression(Classifier):
    """Binary logistic regression from scratch: one logit z = x w + b (the seed's N(0, 0.01) init),
    the hand-written stable sigmoid and binary cross-entropy; class 1 when sigmoid(z) > 0.5, i.e. z > 0."""

    def __init__(self, input_shape: list[int], num_classes: int, optim=None, scheduler=None):
        if num_classes != 2:
            raise ConfigError(f"model=logreg is binary: it needs a data set with 2 classes (e.g. data=blobs), "
                              f"and this one has {num_classes}; use model=softmax for more")
        super().__init__(num_classes, optim, scheduler)
        self.save_hyperparameters(logger=False)
        self.net = scratch.Linear(math.prod(input_shape), 1)
        self.loss_fn = lambda z, y: scratch.binary_cross_entropy_with_logits(z.squeeze(1), y.float())

    def predict(self, logits):
        return (logits.squeeze(1) > 0).long()

    def probability(self, x):
        """P(class 1 | x), for the decision-boundary figure."""
        return scratch.sigmoid(self(x).squeeze(1))
