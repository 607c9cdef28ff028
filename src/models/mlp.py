import math

from src.models.classifier import Classifier
from src.nets.mlp import mlp


class MLPClassifier(Classifier):
    """MLP; `impl=scratch` uses the hand-written Linear (N(0, 0.01) init), ReLU and cross-entropy."""

    def __init__(
        self,
        input_shape: list[int],
        num_classes: int,
        hidden: list[int] = (256,),
        dropout: float = 0.0,
        impl: str = "torch",
        optim=None,
        scheduler=None,
    ):
        super().__init__(num_classes, optim, scheduler, impl)
        self.save_hyperparameters(logger=False)
        self.net = mlp(math.prod(input_shape), list(hidden), num_classes, dropout, impl)
