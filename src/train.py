"""Train a model, then test its best checkpoint.

    python -m src.train                                    # LeNet on MNIST
    python -m src.train model=mlp data=fashion_mnist optim=sgd optim.lr=0.1
    python -m src.train -m optim=adam,nadam,sgdm scheduler=none,step,warmup_cosine
    python -m src.train experiment=seed000_lenet
"""

import logging
import os
import sys
import time
import warnings
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from src.utils import resolvers  # noqa: F401  (registers ${project_root:} and ${new_dir:})
from src.utils.ddp import child_argv, hydra_job_for_ddp_children
from src.utils.preflight import check_command_line
from src.utils.task import import_lightning, run_task
from src.utils.validate import validate

log = logging.getLogger(__name__)


def train(cfg: DictConfig):
    """Fit `cfg.model` on `cfg.data`, test the best checkpoint; return (metrics, trainer).

    `metrics` holds every logged metric plus `best_score` (the best value of
    `cfg.monitor.metric`) and `fit_seconds`.
    """
    validate(cfg)
    from src.utils.checkpoint import check_resumable, check_world_size, find_last, read_checkpoint

    ckpt = None
    if cfg.ckpt_path:  # a bad checkpoint fails before any data is loaded
        if cfg.ckpt_path == "last":
            cfg.ckpt_path = str(find_last(cfg.paths.log_dir, cfg.task_name))
            log.info(f"ckpt_path=last: resuming from {cfg.ckpt_path}")
        ckpt = read_checkpoint(cfg.ckpt_path)
        check_resumable(ckpt, OmegaConf.to_container(cfg.model, resolve=True), cfg.ckpt_path)
    L = import_lightning()
    from hydra.utils import instantiate
    from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint, ProgressBar
    from lightning.pytorch.loggers import TensorBoardLogger

    from src.utils.instantiate import build_model, instantiate_each
    from src.utils.summary import print_summary

    L.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    model = build_model(cfg, datamodule)
    if cfg.compile:  # in place: the checkpoint's keys stay those of the plain network
        model.net.compile()
    loggers = instantiate_each(cfg.get("logger"))
    # A callback that only works for some models or data says so (`applies`): it costs every step.
    callbacks = [c for c in instantiate_each(cfg.get("callbacks")) if getattr(c, "applies", None) is None
                 or c.applies(datamodule, model)]
    if not loggers:  # it refuses to run without a logger
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    if not cfg.trainer.get("enable_progress_bar", True):  # Lightning refuses a bar it was told not to show
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    if cfg.ckpt_path and Path(cfg.ckpt_path).parent.name == "checkpoints":
        # Continue the checkpoints of the run being resumed: Lightning restores the best-so-far
        # only when the checkpoint folder is the same. Logs and config go to this new run dir.
        for callback in callbacks:
            if isinstance(callback, ModelCheckpoint):
                callback.dirpath = os.path.realpath(Path(cfg.ckpt_path).parent)
        warnings.filterwarnings("ignore", message="Checkpoint directory .* exists and is not empty")
    trainer = instantiate(cfg.trainer, logger=loggers or False, callbacks=callbacks)
    if ckpt is not None:
        check_world_size(ckpt, trainer.world_size, cfg.ckpt_path)
        del ckpt  # Lightning reads the file again, onto the training device
    if trainer.strategy.root_device.type == "cuda":
        import torch

        torch.set_float32_matmul_precision("high")  # TF32 matrix products (convolutions use TF32 already)

    hparams = OmegaConf.to_container(cfg, resolve=True)
    hparams.pop("paths", None)  # machine-specific, not hyper-parameters
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):  # declares the metrics of the HPARAMS tab
            logger.log_hyperparams(hparams, metrics={"hp/best_score": float("nan"), "hp/test_score": float("nan")})
        else:
            logger.log_hyperparams(hparams)

    start = time.perf_counter()
    trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
    fit_seconds = time.perf_counter() - start
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}

    checkpoint = next((c for c in trainer.checkpoint_callbacks if c.monitor == cfg.monitor.metric), None)
    best_path = checkpoint.best_model_path if checkpoint else ""
    best_score = float(checkpoint.best_model_score) if checkpoint and checkpoint.best_model_score is not None else None
    if best_score is None:  # no checkpoint was written (fast_dev_run): use the last value
        best_score = metrics.get(cfg.monitor.metric, float("nan"))
    if cfg.test:
        # With no checkpoint (fast_dev_run) the weights in memory are tested.
        trainer.test(model, datamodule=datamodule, ckpt_path=best_path or None)
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")})
    metrics.update(best_score=best_score, fit_seconds=fit_seconds)

    test_key = cfg.monitor.metric.replace("val/", "test/")
    for logger in loggers:
        logger.log_metrics({"hp/best_score": best_score, "hp/test_score": metrics.get(test_key, float("nan"))},
                           step=trainer.global_step)
        logger.save()
    if trainer.is_global_zero:
        print_summary(cfg, metrics, trainer, best_path)
    return metrics, trainer


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float:
    """Returns the best monitored value, for sweepers that optimise it."""
    with hydra_job_for_ddp_children():
        metrics, _ = run_task(train, cfg)
    return metrics["best_score"]


if __name__ == "__main__":
    sys.argv = child_argv(sys.argv)  # a DDP child process runs its parent's job (see src/utils/ddp.py)
    check_command_line("train")  # a bad key or value stops here, before Hydra creates any dir
    main()
