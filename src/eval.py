"""Test a trained checkpoint: metrics, confusion matrix and a grid of predictions.

    python -m src.eval ckpt_path=logs/train/runs/<time>/checkpoints/last.ckpt
    python -m src.eval ckpt_path=last        # the newest last.ckpt of a classifier under logs/train

The model and data settings come from the checkpoint; the figures and
TensorBoard logs go to logs/eval/runs/<time>/.
"""

import sys

import hydra
from omegaconf import DictConfig

from src.utils import resolvers  # noqa: F401  (registers ${project_root:} and ${new_dir:})
from src.utils.ddp import child_argv, hydra_job_for_ddp_children
from src.utils.preflight import check_command_line
from src.utils.task import import_lightning, run_task
from src.utils.validate import validate


def evaluate(cfg: DictConfig) -> dict[str, float]:
    validate(cfg)
    from src.utils.checkpoint import find_last, load_datamodule, load_model, read_checkpoint

    # Before importing Lightning: a bad path fails fast. `last` needs the model classes to choose.
    ckpt = None if cfg.ckpt_path == "last" else read_checkpoint(cfg.ckpt_path)
    import_lightning()
    from hydra.utils import instantiate
    from lightning.pytorch.callbacks import RichProgressBar

    from src.callbacks.test_figures import TestFigures
    from src.models.classifier import Classifier
    from src.utils.instantiate import instantiate_each

    if ckpt is None:  # ckpt_path=last: the newest last.ckpt of a classifier trained by src.train
        cfg.ckpt_path = str(find_last(cfg.paths.log_dir, "train", Classifier))
        print(f"ckpt_path=last: evaluating {cfg.ckpt_path}")
        ckpt = read_checkpoint(cfg.ckpt_path)

    model = load_model(ckpt, expected_base=Classifier)
    datamodule = load_datamodule(ckpt, cfg.paths.data_dir)
    loggers = instantiate_each(cfg.get("logger"))
    callbacks = [TestFigures(cfg.paths.output_dir, cfg.n_images)]
    if cfg.trainer.enable_progress_bar:
        callbacks.append(RichProgressBar())
    trainer = instantiate(cfg.trainer, logger=loggers or False, callbacks=callbacks)
    for logger in loggers:
        logger.log_hyperparams({"ckpt_path": str(cfg.ckpt_path), **ckpt["hyper_parameters"]})
    metrics = trainer.test(model, datamodule=datamodule)[0]
    if trainer.is_global_zero:
        print(f"figures and logs: {cfg.paths.output_dir}")
    return metrics


@hydra.main(version_base="1.3", config_path="../conf", config_name="eval")
def main(cfg: DictConfig) -> None:
    with hydra_job_for_ddp_children():
        run_task(evaluate, cfg)


if __name__ == "__main__":
    sys.argv = child_argv(sys.argv)  # a DDP child process runs its parent's job (see src/utils/ddp.py)
    check_command_line("eval")  # a bad key or value stops here, before Hydra creates any dir
    main()
