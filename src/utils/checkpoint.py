"""Loading checkpoints written by src.train, safely (weights_only) and with clear errors."""

from pathlib import Path

import torch
from hydra.utils import get_class

from src.utils.errors import CheckpointError


def read_checkpoint(path: str | Path) -> dict:
    """The checkpoint dict of a file written by src.train, or a CheckpointError saying what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"ckpt_path={path}: no such file (a run's checkpoints are in logs/train/runs/<time>/checkpoints/)")
    try:
        # weights_only: a checkpoint is data; never execute code from it.
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        reason = (str(e).strip() or type(e).__name__).splitlines()[0].split(". ")[0]
        raise CheckpointError(f"ckpt_path={path} is not a readable checkpoint (truncated, or not a .ckpt file): {reason}") from e
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "model_class" not in ckpt:
        raise CheckpointError(f"ckpt_path={path} is not a checkpoint written by src.train (no state_dict/model_class)")
    return ckpt


def load_model(ckpt: dict, expected_base: type | None = None):
    """Rebuild the LightningModule stored in `ckpt`; optionally require it to subclass `expected_base`."""
    model_class = get_class(ckpt["model_class"])
    if expected_base is not None and not issubclass(model_class, expected_base):
        raise CheckpointError(
            f"the checkpoint holds a {model_class.__name__} model; this command needs a {expected_base.__name__} "
            f"(e.g. src.sample needs one trained with model=vae, src.eval a classifier)"
        )
    model = model_class(**ckpt["hyper_parameters"])
    model.load_state_dict(ckpt["state_dict"])
    return model


def load_datamodule(ckpt: dict, data_dir: str):
    """The DataModule the checkpoint was trained with, reading from this machine's `data_dir`."""
    datamodule_class = get_class(ckpt["datamodule_class"])
    return datamodule_class(data_dir=data_dir, **ckpt["datamodule_hyper_parameters"])
