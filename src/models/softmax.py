import math

from src.models.classifier import Classifier
from src.nets.softmax import softmax_regression


class SoftmaxClassifier(Classifier):
    """Softmax regression; `impl=scratch` holds W, b by hand and uses the hand-written softmax cross-entropy."""

    def __init__(self, input_shape: list[int], num_classes: int, impl: str = "scratch", optim=None, scheduler=None):
        super().__init__(num_classes, optim, scheduler, impl)
        self.save_hyperparameters(logger=False)
        self.net = softmax_regression(math.prod(input_shape), num_classes, impl)
