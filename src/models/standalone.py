"""A trained model as one network from raw inputs to answers in the data's units, built from its
checkpoint alone: what src.predict runs and src.export writes, so both give the same answers."""

import torch
from torch import nn

from src.models.classifier import Classifier
from src.models.linreg import LinearRegression
from src.models.vae import VAE
from src.utils.errors import CheckpointError


def data_state(ckpt: dict) -> dict:
    """The statistics and names the DataModule stored in the checkpoint (TensorDataModule.state_dict);
    classes named by their index where the data set gives no names."""
    state = ckpt.get(ckpt.get("datamodule_class", "").rsplit(".", 1)[-1])
    if not state:
        raise CheckpointError(
            "the checkpoint does not hold its data's statistics (normalisation, standardisation, class names): "
            "it was written before checkpoints stored them. Train the model again to predict from or export it "
            "(src.eval still tests it)")
    classes = ckpt["hyper_parameters"].get("num_classes")
    if state.get("classes") is None and classes:  # a data set that names none (TensorDataModule's default)
        state = {**state, "classes": [str(c) for c in range(classes)]}
    return state


class Standalone(nn.Module):
    """Raw inputs (pixels in [0, 1] of shape (N, 1, 28, 28), or feature rows in the data's units) ->
    class probabilities (N, classes) for a classifier, or the target in the data's units (N, 1)
    for linear regression. The input normalisation the model was trained with is part of it."""

    def __init__(self, model: Classifier | LinearRegression, state: dict):
        super().__init__()
        self.model = model
        self.register_buffer("input_mean", state["input_mean"].float())
        self.register_buffer("input_std", state["input_std"].float())
        self.register_buffer("target_mean", state["target_mean"].float())
        self.register_buffer("target_std", state["target_std"].float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.input_mean) / self.input_std
        if isinstance(self.model, Classifier):
            return self.model.probabilities(x)
        return self.model(x) * self.target_std + self.target_mean


class Decoder(nn.Module):
    """A VAE's decoder: latent codes z (N, z_dim) -> images in [0, 1] of the data's shape."""

    def __init__(self, model: VAE):
        super().__init__()
        self.model = model
        self.shape = tuple(model.hparams.input_shape)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model.decode(z).reshape(-1, *self.shape)


def standalone(model: nn.Module, ckpt: dict) -> nn.Module:
    """The network of `model` (loaded from `ckpt`) from raw inputs, in eval mode, float32."""
    if isinstance(model, VAE):
        return Decoder(model).eval().float()
    if isinstance(model, (Classifier, LinearRegression)):
        return Standalone(model, data_state(ckpt)).eval().float()
    raise CheckpointError(f"a {type(model).__name__} model cannot be used on its own: "
                          f"src.predict and src.export take classifiers, linear regression and VAEs")
