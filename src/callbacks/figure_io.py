"""Every figure callback's output: a PNG in the run dir and the same figure in TensorBoard."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
from lightning.pytorch.loggers import TensorBoardLogger  # noqa: E402


def save_figure(trainer, output_dir: Path, tag: str, figure) -> None:
    """Write `figure` to output_dir/<name>.png (name: the tag's last part), log it as `tag`, close it."""
    output_dir.mkdir(parents=True, exist_ok=True)
    figure.savefig(output_dir / f"{tag.rsplit('/', 1)[-1]}.png", dpi=100, bbox_inches="tight")
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.experiment.add_figure(tag, figure, global_step=trainer.global_step)
    plt.close(figure)
