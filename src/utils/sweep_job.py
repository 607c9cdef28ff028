"""What a job of a sweep does for its sweeper (hydra_plugins/dlcourse/): continue where an earlier
attempt stopped when the sweep is resumed, and report to the search's study when it prunes."""

from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from src.utils.checkpoint import read_checkpoint


def _sweeper() -> DictConfig | None:
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    return HydraConfig.get().sweeper


def continue_stopped_job(cfg: DictConfig) -> None:
    """In a resumed sweep, a job dir is run again only if its job was stopped mid-way: continue from its
    last.ckpt (when it got that far), and set the stopped attempt's later logs aside: TensorBoard drops
    its events from the checkpoint's step on (purge_step), the CSV log goes to csv/resumed_from_step_<n>/
    (Lightning's CSV logger would otherwise delete the earlier metrics.csv; src.report reads both)."""
    sweeper = _sweeper()
    if sweeper is None or not sweeper.get("resume"):
        return
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
            elif target.endswith("CSVLogger"):
                logger.version = f"resumed_from_step_{step}"


def pruning(cfg: DictConfig):
    """The Pruning callback of a search trial whose sweeper has a pruner, else None."""
    sweeper = _sweeper()
    if sweeper is None or sweeper.get("trial") is None or not sweeper.get("pruner"):
        return None
    from src.callbacks.pruning import Pruning  # imports optuna: only in a search

    return Pruning(storage=sweeper.storage, study_name=sweeper.study_name, trial=sweeper.trial,
                   pruner=instantiate(sweeper.pruner), monitor=cfg.monitor.metric)
