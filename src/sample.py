"""Draw images from a trained VAE.

    python -m src.sample ckpt_path=logs/train/runs/<time>/checkpoints/last.ckpt n=64 seed=0
    python -m src.sample ckpt_path=last      # the newest last.ckpt of a VAE under logs/train

Writes samples.png (a grid) to logs/sample/runs/<time>/; the same seed gives the same images.
"""

from src.utils.program import preflight, program

preflight("sample", __name__)  # a bad command line stops here, before the imports below take seconds

from pathlib import Path  # noqa: E402

from omegaconf import DictConfig  # noqa: E402
from torchvision.utils import save_image  # noqa: E402

from src.callbacks.vae_figures import prior_samples  # noqa: E402
from src.models.vae import VAE  # noqa: E402
from src.utils.checkpoint import find_last, load_model, read_checkpoint  # noqa: E402


def sample(cfg: DictConfig) -> Path:
    if cfg.ckpt_path == "last":  # the newest last.ckpt of a VAE trained by src.train
        cfg.ckpt_path = str(find_last(cfg.paths.log_dir, "train", VAE))
        print(f"ckpt_path=last: sampling from {cfg.ckpt_path}")
    model = load_model(read_checkpoint(cfg.ckpt_path), expected_base=VAE).eval()
    images = prior_samples(model, cfg.n, cfg.seed)
    path = Path(cfg.paths.output_dir) / "samples.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(images, path, nrow=cfg.nrow, pad_value=1)
    print(f"{cfg.n} samples (seed {cfg.seed}) from {cfg.ckpt_path} written to {path}")
    return path


@program("sample")
def main(cfg: DictConfig) -> None:
    sample(cfg)


if __name__ == "__main__":
    main()
