from src.models.classifier import Classifier
from src.nets.cnn import LeNet, convbn, fast


class CNNClassifier(Classifier):
    """`arch=lenet` (seed 000), `arch=convbn` (seed 002) or `arch=fast` (experiment=mnist_fast), for 1x28x28 inputs."""

    def __init__(
        self, input_shape: list[int], num_classes: int, arch: str = "lenet", dropout: float = 0.5, optim=None, scheduler=None
    ):
        super().__init__(num_classes, optim, scheduler)
        self.save_hyperparameters(logger=False)
        if tuple(input_shape) != (1, 28, 28):
            raise ValueError(f"model=cnn expects 1x28x28 images, the data gives {tuple(input_shape)}")
        if arch == "lenet":
            self.net = LeNet(num_classes, dropout)
        elif arch == "convbn":
            self.net = convbn(num_classes)
        elif arch == "fast":
            self.net = fast(num_classes)
        else:
            raise ValueError(f"model.arch={arch!r} is unknown; allowed: lenet, convbn, fast")
