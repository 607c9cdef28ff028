"""Loading checkpoints written by src.train, safely (weights_only) and with clear errors."""

import inspect
from pathlib import Path

import torch
from hydra.utils import get_class

from src.utils.errors import CheckpointError

MACHINE_OPTIONS = ("device", "num_workers", "pin_memory")


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


def find_last(log_dir: str | Path, task_name: str) -> Path:
    """`ckpt_path=last`: the newest `last.ckpt` of the task's runs and sweep jobs."""
    task_dir = Path(log_dir) / task_name
    candidates = [*task_dir.glob("runs/*/checkpoints/last.ckpt"), *task_dir.glob("multiruns/*/*/checkpoints/last.ckpt")]
    if not candidates:
        raise CheckpointError(f"ckpt_path=last: no run under {task_dir} has a checkpoints/last.ckpt yet; "
                              f"give the file itself: ckpt_path=<run dir>/checkpoints/last.ckpt")
    # A resumed run writes into the checkpoints/ of the run it resumes: the newest file is the latest state.
    return max(candidates, key=lambda p: p.stat().st_mtime)


def check_resumable(ckpt: dict, model_cfg: dict, path) -> None:
    """Resuming rebuilds the model from the config: it must describe the checkpoint's model."""
    stored = ckpt["hyper_parameters"]
    problems = [] if ckpt["model_class"] == model_cfg["_target_"] else [
        f"model: the checkpoint holds {ckpt['model_class'].rsplit('.', 1)[-1]}, the config builds "
        f"{model_cfg['_target_'].rsplit('.', 1)[-1]}"]
    if not problems:
        problems = [f"model.{k}: the checkpoint has {stored[k]!r}, the config {v!r}"
                    for k, v in model_cfg.items() if k in stored and _plain(stored[k]) != _plain(v)]
    if problems:
        raise CheckpointError(
            f"cannot resume from {path}: " + "; ".join(problems)
            + ". Resume with the options of the run that wrote it (its .hydra/overrides.yaml lists them)."
        )


def _plain(value):
    return list(value) if isinstance(value, (list, tuple)) else value


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
    if "datamodule_class" not in ckpt:
        raise CheckpointError("the checkpoint does not say which data it was trained on (no datamodule_class)")
    datamodule_class = get_class(ckpt["datamodule_class"])
    paths = {"data_dir": data_dir} if "data_dir" in inspect.signature(datamodule_class).parameters else {}  # synthetic sets have none
    # Not data: where the writing machine cut its batches, and DataLoader options of older checkpoints.
    hparams = {k: v for k, v in ckpt["datamodule_hyper_parameters"].items() if k not in MACHINE_OPTIONS}
    return datamodule_class(**paths, **hparams)
