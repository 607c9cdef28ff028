"""VAE trained on the negative ELBO; logs its reconstruction and KL terms apart."""

import torch
from hydra.utils import instantiate

from src.models.base import BaseModule
from src.nets.vae import kl_to_standard_normal, reconstruction_nll
from src.utils.errors import ConfigError


class VAE(BaseModule):
    """Loss per sample: recon + beta * KL. `elbo` is logged as the negative ELBO (recon + KL, in nats;
    lower is better), whatever beta is; `loss` is what is minimised.

    `net` is the network's config (src.nets.vae.VAENet: `encode`, `decode`, `z_dim`), called with
    the data's `input_shape`; `choices` are the model config's keys it is filled from (see Classifier).
    """

    terms = ("loss", "recon", "kl", "elbo")

    def __init__(self, net: dict, input_shape: list[int], beta: float = 1.0, optim=None, scheduler=None, **choices):
        super().__init__(optim, scheduler)
        self.net = instantiate(net, input_shape=list(input_shape), _convert_="all")

    @property
    def z_dim(self) -> int:
        return self.net.z_dim

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The mean and log-variance of q(z|x)."""
        return self.net.encode(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1], flat (N, pixels)."""
        return self.net.decode(z)

    def on_fit_start(self):
        # Binary cross-entropy needs targets in [0, 1]; conf/model/vae.yaml turns data normalisation off.
        data = getattr(self.trainer.datamodule, "data_train", None)
        if data is not None and (data.x.min() < 0 or data.x.max() > 1):
            raise ConfigError("model=vae needs pixels in [0, 1]: set data.normalize=false")

    def step(self, x, y):
        logits, mu, log_var = self.net(x)
        recon = reconstruction_nll(logits, x)
        kl = kl_to_standard_normal(mu, log_var)
        return {"loss": (recon + self.hparams.beta * kl).mean(), "recon": recon.mean(), "kl": kl.mean(),
                "elbo": (recon + kl).mean()}
