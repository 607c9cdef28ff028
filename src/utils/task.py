"""What every entry point does around its task: error reporting and sweep behaviour."""

import logging
import os
import sys
import traceback
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from src.utils.errors import UserError

log = logging.getLogger(__name__)


def import_lightning():
    """Import Lightning (seconds: so entry points do it only once the config is valid) and quiet it.

    Under Hydra, Lightning's loggers print each message twice (their own
    handler and Hydra's); route them through Hydra's alone, which also writes
    <run dir>/<task>.log. Drop its advertisement and a deprecation notice
    that Lightning 2.6 raises against its own code.
    """
    import warnings

    import lightning

    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "torchmetrics"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(
        lambda record: not str(record.msg).startswith("💡 Tip")
    )
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    # Epoch metrics are torchmetrics values, reduced across DDP ranks by compute(): sync_dist is not needed.
    warnings.filterwarnings("ignore", message=r"It is recommended to use `self.log\(.*sync_dist=True\)`")
    return lightning


def run_task(task, cfg):
    """Run `task(cfg)`; if it fails, keep the error in the run dir as error.txt.

    In a single run, a user error (bad config value, missing data, bad
    checkpoint) ends with its message alone. In a multirun the error is
    re-raised: Hydra's launcher records the job as failed, runs the remaining
    jobs, and reports the failure when the sweep ends.
    """
    try:
        return task(cfg)
    except Exception as e:
        hydra_cfg = HydraConfig.get()
        Path(hydra_cfg.runtime.output_dir, _error_file()).write_text(traceback.format_exc())
        if hydra_cfg.mode == RunMode.MULTIRUN:
            log.error(f"job {hydra_cfg.job.num} ({' '.join(hydra_cfg.overrides.task)}) failed: {e}; the sweep goes on")
            raise
        if isinstance(e, UserError):
            print(f"Error: {e}", file=sys.stderr)
            sys.exit(1)
        raise


def _error_file() -> str:
    """error.txt, or error_rank<r>.txt for the other processes of a DDP job (they share its run dir)."""
    rank = next((os.environ[k] for k in ("RANK", "SLURM_PROCID", "LOCAL_RANK") if k in os.environ), "0")
    return "error.txt" if rank == "0" else f"error_rank{rank}.txt"
