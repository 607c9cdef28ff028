"""What a job of a sweep does for its sweeper (hydra_plugins/dlcourse/): continue where an earlier
attempt stopped when the sweep is resumed, and report to the search's study when it prunes."""

import json
import os
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

# A DDP job's other processes run it as a single run (src/utils/ddp.py): they get these from rank 0.
SWEEP_JOB = "SRC_SWEEP_JOB"


def sweep_settings() -> dict | None:
    """What this job's sweeper asks of it ({resume, trial, pruner, storage, study_name}); None outside a sweep."""
    if SWEEP_JOB in os.environ:
        return json.loads(os.environ[SWEEP_JOB])
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    sweeper = HydraConfig.get().sweeper
    pruner = sweeper.get("pruner")
    return {"resume": bool(sweeper.get("resume")), "trial": sweeper.get("trial"),
            "pruner": OmegaConf.to_container(pruner, resolve=True) if pruner else None,
            "storage": sweeper.get("storage"), "study_name": sweeper.get("study_name")}


def continue_stopped_job(cfg: DictConfig) -> None:
    """In a resumed sweep, a job dir is run again only if its job was stopped mid-way: continue from its
    last.ckpt (when it got that far), and set the stopped attempt's later logs aside: TensorBoard drops
    its events from the checkpoint's step on (purge_step), the CSV log goes to csv/resumed_from_step_<n>/
    (Lightning's CSV logger would otherwise delete the earlier metrics.csv; src.report reads both)."""
    settings = sweep_settings()
    if not settings or not settings["resume"]:
        return
    from src.utils.checkpoint import read_checkpoint  # (imports torch)

    folder = OmegaConf.select(cfg, "callbacks.last_checkpoint.dirpath")
    last = Path(folder) / "last.ckpt" if folder else None
    step = 0
    if last is not None and last.is_file():
        ckpt = read_checkpoint(last)
        # The step Lightning logs with (optimizer steps can differ under manual optimization).
        step = ckpt["loops"]["fit_loop"]["epoch_loop.state_dict"].get("_batches_that_stepped", ckpt["global_step"])
        cfg.ckpt_path = str(last)
        print(f"Resuming this job from {last} (after epoch {ckpt['epoch']})")
    for logger in (cfg.get("logger") or {}).values():
        target = str(logger.get("_target_", "")) if logger else ""
        with open_dict(logger):
            if target.endswith("TensorBoardLogger"):
                logger.purge_step = step
            elif target.endswith("CSVLogger") and (Path(logger.save_dir) / logger.name / "metrics.csv").is_file():
                logger.version = f"resumed_from_step_{step}"


def pruning(cfg: DictConfig):
    """The Pruning callback of a search trial whose sweeper has a pruner, else None."""
    settings = sweep_settings()
    if not settings or settings["trial"] is None or not settings["pruner"]:
        return None
    from src.callbacks.pruning import Pruning  # imports optuna: only in a search

    return Pruning(storage=settings["storage"], study_name=settings["study_name"], trial=settings["trial"],
                   pruner=instantiate(settings["pruner"]), monitor=cfg.monitor.metric)
