"""Test a trained checkpoint: metrics, confusion matrix and a grid of predictions.

    python -m src.eval ckpt_path=logs/train/runs/<time>/checkpoints/last.ckpt
    python -m src.eval ckpt_path=last        # the newest last.ckpt of a classifier under logs/train

The model and data settings come from the checkpoint; the figures and
TensorBoard logs go to logs/eval/runs/<time>/.
"""

from src.utils.program import preflight, program

preflight("eval", __name__)  # a bad command line stops here, before the imports below take seconds

from hydra.utils import instantiate  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from src.callbacks.progress_bar import ThrottledRichProgressBar  # noqa: E402
from src.callbacks.test_figures import TestFigures  # noqa: E402
from src.models.classifier import Classifier  # noqa: E402
from src.utils.checkpoint import find_last, load_datamodule, load_model, read_checkpoint  # noqa: E402
from src.utils.instantiate import instantiate_each  # noqa: E402


def evaluate(cfg: DictConfig) -> dict[str, float]:
    if cfg.ckpt_path == "last":  # the newest last.ckpt of a classifier trained by src.train
        cfg.ckpt_path = str(find_last(cfg.paths.log_dir, "train", Classifier))
        print(f"ckpt_path=last: evaluating {cfg.ckpt_path}")
    ckpt = read_checkpoint(cfg.ckpt_path)
    model = load_model(ckpt, expected_base=Classifier)
    datamodule = load_datamodule(ckpt, cfg.paths.data_dir)

    loggers = instantiate_each(cfg.get("logger"))
    callbacks = [TestFigures(cfg.paths.output_dir, cfg.n_images)]
    if cfg.trainer.enable_progress_bar:  # src.train's bar: Lightning's own redraws 100 times a second
        callbacks.append(ThrottledRichProgressBar(refresh_rate=4))
    trainer = instantiate(cfg.trainer, logger=loggers or False, callbacks=callbacks)
    for logger in loggers:
        logger.log_hyperparams({"ckpt_path": str(cfg.ckpt_path), **ckpt["hyper_parameters"]})
    metrics = trainer.test(model, datamodule=datamodule)[0]
    if trainer.is_global_zero:
        print(f"figures and logs: {cfg.paths.output_dir}")
    return metrics


@program("eval")
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
