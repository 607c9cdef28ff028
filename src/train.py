"""Train a model, then test its best checkpoint.

    python -m src.train                                    # LeNet on MNIST
    python -m src.train model=mlp data=fashion_mnist optim=sgd optim.lr=0.1
    python -m src.train -m optim=adam,nadam,sgdm scheduler=none,step,warmup_cosine
    python -m src.train experiment=seed000_lenet
"""

from src.utils.program import preflight, program

preflight("train", __name__)  # a bad command line stops here, before the imports below take seconds

import time  # noqa: E402

import lightning as L  # noqa: E402
import torch  # noqa: E402
from hydra.utils import instantiate  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from src.callbacks.test_figures import TestFigures  # noqa: E402
from src.utils.checkpoint import check_world_size, find_last, read_checkpoint  # noqa: E402
from src.utils.instantiate import (  # noqa: E402
    instantiate_callbacks, instantiate_each, instantiate_model, log_hyperparameters, log_scores)
from src.utils.profiler import NoProfiler  # noqa: E402
from src.utils.summary import print_summary  # noqa: E402
from src.utils.sweep_job import continue_stopped_job, pruning  # noqa: E402


def train(cfg: DictConfig) -> tuple[dict[str, float], L.Trainer]:
    """Fit `cfg.model` on `cfg.data`, test the best checkpoint; return (metrics, trainer).

    `metrics` holds every logged metric plus `best_score` (the best value of
    `cfg.monitor.metric`) and `fit_seconds`. The config is checked before (src/utils/validate.py).
    """
    if cfg.ckpt_path == "last":
        cfg.ckpt_path = str(find_last(cfg.paths.log_dir, cfg.task_name))
        print(f"ckpt_path=last: resuming from {cfg.ckpt_path}")
    continue_stopped_job(cfg)  # a resumed sweep's job that was stopped mid-way

    L.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    model = instantiate_model(cfg, datamodule)
    if cfg.compile:  # in place: the checkpoint's keys stay those of the plain network
        model.net.compile()
    loggers = instantiate_each(cfg.get("logger"))
    callbacks = instantiate_callbacks(cfg, loggers)
    trial = pruning(cfg)  # a search trial, which its study's pruner may stop early
    if trial:
        callbacks.append(trial)
    # Test figures join for the test: Lightning calls every callback's hooks at every training step.
    test_only = [c for c in callbacks if isinstance(c, TestFigures)]
    trainer = instantiate(cfg.trainer, logger=loggers or False, callbacks=[c for c in callbacks if c not in test_only],
                          profiler=cfg.trainer.profiler or NoProfiler())
    if cfg.ckpt_path:  # before Lightning starts the other processes of a DDP job
        check_world_size(read_checkpoint(cfg.ckpt_path), trainer.world_size, cfg.ckpt_path)
    if trainer.strategy.root_device.type == "cuda":
        torch.set_float32_matmul_precision("high")  # TF32 matrix products (convolutions use TF32 already)
    log_hyperparameters(cfg, loggers)

    start = time.perf_counter()
    trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    metrics["fit_seconds"] = time.perf_counter() - start

    best = next((c for c in trainer.checkpoint_callbacks if c.monitor == cfg.monitor.metric), None)
    best_path = best.best_model_path if best else ""
    # No checkpoint written (fast_dev_run): the last value, and the weights in memory are tested.
    metrics["best_score"] = float(best.best_model_score) if best and best.best_model_score is not None \
        else metrics.get(cfg.monitor.metric, float("nan"))
    if trial and trial.pruned:  # stopped early: not tested
        if trainer.is_global_zero:  # (the other processes of a DDP job just end)
            raise trial.pruned  # the sweeper tells the study the trial was pruned
        return metrics, trainer
    if cfg.test:
        trainer.callbacks.extend(test_only)
        # last: the weights as training ended, which a schedule annealed to ~0 (one-cycle) is made for;
        # the best by a validation metric can be an earlier epoch that won on its noise.
        trainer.test(model, datamodule=datamodule, ckpt_path=best_path or None if cfg.test_ckpt == "best" else None)
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")})

    log_scores(cfg, loggers, metrics, trainer.global_step)
    if trainer.is_global_zero:
        print_summary(cfg, metrics, trainer, best_path)
    return metrics, trainer


@program("train")
def main(cfg: DictConfig) -> float:
    """The best monitored value, for sweepers that optimise it."""
    return train(cfg)[0]["best_score"]


if __name__ == "__main__":
    main()
