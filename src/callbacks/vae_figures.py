"""A VAE's pictures (through its `encode`, `decode` and `z_dim`), as PNG files in the run dir and
images in TensorBoard:

- reconstructions of the same test digits after the configured epochs and at the end,
- at the end: the latent means of the test set coloured by label, 64 samples
  from the prior, and (z_dim = 2) the decoded latent manifold.
"""

from pathlib import Path

import torch
from lightning.pytorch import Callback
from lightning.pytorch.loggers import TensorBoardLogger
from torchvision.utils import make_grid, save_image

from src.callbacks.figure_io import plt, save_figure


def as_images(flat: torch.Tensor) -> torch.Tensor:
    return flat.reshape(-1, 1, 28, 28).clamp(0, 1).float().cpu()  # float: under bf16-true too


def prior_samples(vae, n: int, seed: int) -> torch.Tensor:
    """n images decoded from z ~ N(0, I), drawn from their own seeded generator."""
    z = torch.randn(n, vae.z_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        weight = next(vae.parameters())  # its device and dtype (bf16 under trainer.precision=bf16-true)
        return as_images(vae.decode(z.to(weight.device, weight.dtype)))


class VAEFigures(Callback):
    def __init__(
        self,
        output_dir: str,
        reconstruction_epochs: list[int] = (5, 10, 20),
        n_reconstructions: int = 20,
        n_samples: int = 64,
        manifold_size: int = 20,
        seed: int = 0,
    ):
        self.output_dir = Path(output_dir)
        self.reconstruction_epochs = set(reconstruction_epochs)
        self.n_reconstructions, self.n_samples, self.manifold_size, self.seed = (
            n_reconstructions, n_samples, manifold_size, seed)

    def _emit(self, trainer, name: str, grid: torch.Tensor | None = None, figure=None) -> None:
        if figure is not None:
            save_figure(trainer, self.output_dir, f"vae/{name}", figure)
            return
        self.output_dir.mkdir(parents=True, exist_ok=True)
        save_image(grid, self.output_dir / f"{name}.png")
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image(f"vae/{name}", grid, global_step=trainer.global_step)

    def _reconstructions(self, trainer, pl_module, tag: str) -> None:
        test = trainer.datamodule.data_test
        g = torch.Generator().manual_seed(self.seed)  # the same digits every time
        idx = torch.randperm(len(test), generator=g)[: self.n_reconstructions]
        x = test.x[idx].to(pl_module.device, pl_module.dtype)
        with torch.no_grad():
            mu, _ = pl_module.encode(x)
            recon = pl_module.decode(mu)  # the mean of q(z|x): no sampling noise in the picture
        grid = make_grid(torch.cat([as_images(x.flatten(1)), as_images(recon)]), nrow=self.n_reconstructions, pad_value=1)
        self._emit(trainer, f"reconstructions_{tag}", grid)

    def on_train_epoch_end(self, trainer, pl_module):
        epoch = trainer.current_epoch + 1  # 1-based, as in "after epoch 5"
        if trainer.is_global_zero and epoch in self.reconstruction_epochs:
            self._reconstructions(trainer, pl_module, f"epoch_{epoch:03d}")

    def on_train_end(self, trainer, pl_module):
        if not trainer.is_global_zero:
            return
        self._reconstructions(trainer, pl_module, "final")
        self._emit(trainer, "latent_space", figure=self.latent_figure(trainer, pl_module))
        grid = make_grid(prior_samples(pl_module, self.n_samples, self.seed), nrow=8, pad_value=1)
        self._emit(trainer, "prior_samples", grid)
        if pl_module.z_dim == 2:
            self._emit(trainer, "manifold", self.manifold_grid(pl_module))

    def latent_figure(self, trainer, pl_module):
        test = trainer.datamodule.data_test
        with torch.no_grad():
            mu = torch.cat([pl_module.encode(test.x[i : i + 1000].to(pl_module.device, pl_module.dtype))[0].float().cpu()
                            for i in range(0, len(test), 1000)])
        if mu.shape[1] > 2:
            mu = mu - mu.mean(dim=0)
            _, _, v = torch.pca_lowrank(mu, q=2, center=False)
            points, labels = mu @ v, ("principal component 1", "principal component 2")
        else:
            points, labels = mu, ("z[0]", "z[1]")
        fig, ax = plt.subplots(figsize=(7, 6))
        sc = ax.scatter(points[:, 0], points[:, 1], c=test.y, cmap="tab10", s=2, alpha=0.7)
        fig.colorbar(sc, ax=ax, ticks=range(10), label="true label")
        ax.set_xlabel(labels[0])
        ax.set_ylabel(labels[1])
        ax.set_title(f"Latent means of the {len(test)} test images")
        return fig

    def manifold_grid(self, pl_module) -> torch.Tensor:
        # Evenly spaced quantiles of N(0, 1) so the grid covers the prior's mass evenly.
        n = self.manifold_size
        q = torch.distributions.Normal(0.0, 1.0).icdf(torch.linspace(0.05, 0.95, n))
        zy, zx = torch.meshgrid(q.flip(0), q, indexing="ij")  # z[1] grows upwards
        z = torch.stack([zx.flatten(), zy.flatten()], dim=1).to(pl_module.device, pl_module.dtype)
        with torch.no_grad():
            return make_grid(as_images(pl_module.decode(z)), nrow=n, padding=0)
