"""The short table printed at the end of a run."""

from pathlib import Path

from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table


def print_summary(cfg: DictConfig, metrics: dict, trainer, best_path: str) -> None:
    table = Table(title="Result", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row(f"best {cfg.monitor.metric} ({cfg.monitor.mode})", f"{metrics['best_score']:.6g}")
    # test metrics; for linear regression also the gap to the least-squares optimum and the parameter errors
    extra = ("train/optimum_mse", "train/gap", "train/gap_rel")
    for key in sorted(k for k in metrics if k.startswith(("test/", "params/")) or k in extra):
        table.add_row(key, f"{metrics[key]:.6g}")
    table.add_row("epochs", str(trainer.current_epoch))
    table.add_row("fit time", f"{metrics['fit_seconds']:.1f} s")
    table.add_row("run dir", str(Path(cfg.paths.output_dir)))
    table.add_row("best checkpoint", best_path or "(none written)")
    if cfg.get("test") and cfg.get("test_ckpt") == "last":
        table.add_row("tested", "the last weights (test_ckpt=last)")
    Console().print(table)
