"""Draw images from a trained VAE.

    python -m src.sample ckpt_path=logs/train/runs/<time>/checkpoints/last.ckpt n=64 seed=0
    python -m src.sample ckpt_path=last      # the newest last.ckpt of a VAE under logs/train

Writes samples.png (a grid) to logs/sample/runs/<time>/; the same seed gives the same images.
"""

from pathlib import Path

import hydra
from omegaconf import DictConfig

from src.utils import resolvers  # noqa: F401  (registers ${project_root:} and ${new_dir:})
from src.utils.preflight import check_command_line
from src.utils.task import import_lightning, run_task
from src.utils.validate import validate


def sample(cfg: DictConfig) -> Path:
    validate(cfg)
    from src.utils.checkpoint import find_last, load_model, read_checkpoint

    # Before importing Lightning: a bad path fails fast. `last` needs the model classes to choose.
    ckpt = None if cfg.ckpt_path == "last" else read_checkpoint(cfg.ckpt_path)
    import_lightning()
    from torchvision.utils import save_image

    from src.callbacks.vae_figures import prior_samples
    from src.models.vae import VAE

    if ckpt is None:  # ckpt_path=last: the newest last.ckpt of a VAE trained by src.train
        cfg.ckpt_path = str(find_last(cfg.paths.log_dir, "train", VAE))
        print(f"ckpt_path=last: sampling from {cfg.ckpt_path}")
        ckpt = read_checkpoint(cfg.ckpt_path)

    model = load_model(ckpt, expected_base=VAE).eval()
    images = prior_samples(model.net, cfg.n, cfg.seed)
    path = Path(cfg.paths.output_dir) / "samples.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(images, path, nrow=cfg.nrow, pad_value=1)
    print(f"{cfg.n} samples (seed {cfg.seed}) from {cfg.ckpt_path} written to {path}")
    return path


@hydra.main(version_base="1.3", config_path="../conf", config_name="sample")
def main(cfg: DictConfig) -> None:
    run_task(sample, cfg)


if __name__ == "__main__":
    check_command_line("sample")  # a bad key or value stops here, before Hydra creates any dir
    main()
