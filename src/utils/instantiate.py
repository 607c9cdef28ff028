"""Building the run's objects from their config nodes."""

import inspect
import os
import warnings
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint, ProgressBar
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import DictConfig, OmegaConf

from src.utils.errors import ConfigError, UserError


def instantiate_each(group: DictConfig | None) -> list:
    """Every entry of a dict-like group (callbacks, logger); null entries are skipped."""
    return [instantiate(node) for node in (group or {}).values() if node is not None]


def instantiate_model(cfg: DictConfig, datamodule):
    """`cfg.model`, given the data's sizes it asks for (`input_shape`, `num_classes`) and the optim
    and scheduler configs as plain dicts: they are kept in the checkpoint, which then loads with
    `weights_only=True`. The model builds its network from its `net` node itself."""
    model_class = get_class(cfg.model._target_)
    regression = datamodule.num_classes is None  # regression data sets have float targets, no classes
    if getattr(model_class, "regression", False) != regression:
        data = cfg.data.get("name") or cfg.data._target_.rsplit(".", 1)[-1]
        wants = "a regression data set (data=salary or data=linear)" if not regression else "a data set with classes"
        raise ConfigError(f"{model_class.__name__} needs {wants}; data {data!r} is "
                          f"{'a regression' if regression else 'a classification'} set")
    sizes = {"input_shape": list(datamodule.input_shape), "num_classes": datamodule.num_classes}
    wanted = inspect.signature(model_class).parameters
    try:
        return instantiate(cfg.model, **{k: v for k, v in sizes.items() if k in wanted},
                           optim=OmegaConf.to_container(cfg.optim, resolve=True),
                           scheduler=OmegaConf.to_container(cfg.scheduler, resolve=True) or None,
                           _recursive_=False, _convert_="all")
    except InstantiationException as e:  # Hydra wraps what the constructors raise: a user error shows as itself
        cause = e.__cause__
        while isinstance(cause, InstantiationException):
            cause = cause.__cause__
        if isinstance(cause, UserError):
            raise cause from None
        raise


def instantiate_callbacks(cfg: DictConfig, loggers: list) -> list:
    """`cfg.callbacks`, less those this run's other options rule out."""
    callbacks = instantiate_each(cfg.get("callbacks"))
    if not loggers:  # it refuses to run without a logger
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    if not cfg.trainer.get("enable_progress_bar", True):  # Lightning refuses a bar it was told not to show
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    if cfg.get("ckpt_path") and Path(cfg.ckpt_path).parent.name == "checkpoints":
        # Continue the checkpoints of the run being resumed: Lightning restores the best-so-far
        # only when the checkpoint folder is the same. Logs and config go to this new run dir.
        for callback in callbacks:
            if isinstance(callback, ModelCheckpoint):
                callback.dirpath = os.path.realpath(Path(cfg.ckpt_path).parent)
        warnings.filterwarnings("ignore", message="Checkpoint directory .* exists and is not empty")
    return callbacks


# Not hyper-parameters: where things go and how they run, not what the run learns (.hydra/config.yaml has them).
PLUMBING = {"_target_", "net", "data_dir", "csv_path", "download", "device", "eval_batch_size", "seed", "interval",
            "fused"}
TRAINER_KEYS = ("max_epochs", "precision", "gradient_clip_val", "accumulate_grad_batches", "limit_train_batches")


def hyperparameters(cfg: DictConfig) -> dict:
    """What runs are compared by, with short names: the experiment, the model and its options, the
    optimizer and schedule (class and arguments), the data options that change results, the
    trainer options that do, the number of processes and the seed."""
    choices = HydraConfig.get().runtime.choices if HydraConfig.initialized() else {}

    def group(name: str) -> dict:
        node = OmegaConf.to_container(cfg[name], resolve=True) if cfg.get(name) else {}
        target = node.get("_target_", "none").rsplit(".", 1)[-1]
        options = {f"{name}/{k}": v for k, v in node.items() if k not in PLUMBING and v is not None}
        return {name: choices.get(name) or target, **options}

    hparams = {"experiment": choices.get("experiment") or "none"}
    for name in ("model", "optim", "scheduler", "data"):
        hparams.update(group(name))
    net = OmegaConf.select(cfg, "model.net._target_")
    if net is not None:
        hparams["model/net"] = net.rsplit(".", 1)[-1]
    hparams.update({f"trainer/{k}": cfg.trainer[k] for k in TRAINER_KEYS if cfg.trainer.get(k) is not None})
    hparams["trainer/processes"] = cfg.trainer.get("devices", 1) * cfg.trainer.get("num_nodes", 1) \
        if isinstance(cfg.trainer.get("devices", 1), int) else cfg.trainer.devices
    hparams["seed"] = cfg.seed
    return {k: str(v) if isinstance(v, (list, dict)) else v for k, v in hparams.items()}


def log_hyperparameters(cfg: DictConfig, loggers: list) -> None:
    """`hyperparameters(cfg)`; TensorBoard's HPARAMS tab also gets the two scores that `log_scores`
    fills in at the end."""
    hparams = hyperparameters(cfg)
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(hparams, metrics={"hp/best_score": float("nan"), "hp/test_score": float("nan")})
        else:
            logger.log_hyperparams(hparams)


def log_scores(cfg: DictConfig, loggers: list, metrics: dict, step: int) -> None:
    test_key = cfg.monitor.metric.replace("val/", "test/")
    for logger in loggers:
        logger.log_metrics({"hp/best_score": metrics["best_score"], "hp/test_score": metrics.get(test_key, float("nan"))},
                           step=step)
        logger.save()
