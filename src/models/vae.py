"""VAE trained on the negative ELBO; logs its reconstruction and KL terms apart."""

import math

import torch
from torch import nn

from src.models.base import STAGES, BaseModule, split_batch
from src.nets.vae import VAENet, kl_to_standard_normal, reconstruction_nll
from src.utils.errors import ConfigError

TERMS = ("loss", "recon", "kl", "elbo")


class VAE(BaseModule):
    """Loss per sample: recon + beta * KL. `elbo` is logged as the negative ELBO (recon + KL, in nats;
    lower is better), whatever beta is; `loss` is what is minimised."""

    def __init__(
        self,
        input_shape: list[int],
        num_classes: int | None = None,  # unused: labels only colour the latent plots
        hidden: list[int] = (512, 256),
        z_dim: int = 2,
        beta: float = 1.0,
        optim=None,
        scheduler=None,
    ):
        super().__init__()
        self.save_hyperparameters(logger=False)
        self.net = VAENet(math.prod(input_shape), list(hidden), z_dim)
        self.metrics = nn.ModuleDict(self.mean_metrics(STAGES, TERMS))

    def on_fit_start(self):
        # Binary cross-entropy needs targets in [0, 1]; conf/model/vae.yaml turns data normalisation off.
        data = getattr(self.trainer.datamodule, "data_train", None)
        if data is not None and (data.x.min() < 0 or data.x.max() > 1):
            raise ConfigError("model=vae needs pixels in [0, 1]: set data.normalize=false")

    def _step(self, batch, stage: str) -> torch.Tensor:
        x, _, n = split_batch(batch)
        logits, mu, log_var = self.net(x)
        recon = reconstruction_nll(logits, x)
        kl = kl_to_standard_normal(mu, log_var)
        if n < len(x):  # padding (DDP validation): run, not counted
            recon, kl = recon[:n], kl[:n]
        loss = (recon + self.hparams.beta * kl).mean()
        for name, value in (("loss", loss), ("recon", recon.mean()), ("kl", kl.mean()), ("elbo", (recon + kl).mean())):
            self.metrics[f"{stage}_{name}"].update(value.detach(), weight=n)
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def on_train_epoch_end(self):
        self._log_epoch("train", TERMS)

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def on_validation_epoch_end(self):
        self._log_epoch("val", TERMS)

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def on_test_epoch_end(self):
        self._log_epoch("test", TERMS)
