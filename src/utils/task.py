"""What every entry point does around its task: error reporting and sweep behaviour."""

import logging
import os
import sys
import traceback
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from src.utils.errors import UserError, exception_message

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

    Under DDP each process writes its own error_rank<r>.txt beside error.txt. When
    another rank failed first, rank 0's error is only the consequence (a lost
    connection): error.txt and the final message then name that rank's failure,
    and rank 0's own goes to error_rank0.txt.
    """
    try:
        return task(cfg)
    except Exception as e:
        hydra_cfg = HydraConfig.get()
        out, name, own = Path(hydra_cfg.runtime.output_dir), _error_file(), traceback.format_exc()
        message = str(e)
        # (A user error of rank 0's own, such as the NaN check every rank makes together, names itself.)
        first = _earlier_failure(out) if name == "error.txt" and not isinstance(e, UserError) else None
        if first is not None:
            rank, text = first
            (out / "error_rank0.txt").write_text(own)
            message = f"rank {rank} failed: {exception_message(text)}"
            # Last, so that the report's error column (the traceback's final exception) says it too.
            own = f"{text}(raised on rank {rank}; rank 0 failed in consequence: error_rank0.txt)\n"
        elif name == "error.txt" and _lost_peer(own):
            world = int(os.environ.get("WORLD_SIZE", "2"))
            silent = [str(r) for r in range(1, world) if not (out / f"error_rank{r}.txt").exists()] or ["?"]
            message = (f"rank {', '.join(silent)} of this DDP job stopped without an error of its own (killed, or out "
                       f"of memory?), and rank 0 lost its connection to it: {exception_message(own)}")
            own = f"{own}{message}\n"  # last: the report shows the exception's lines, this one with them
        (out / name).write_text(own)
        if hydra_cfg.mode == RunMode.MULTIRUN:
            log.error(f"job {hydra_cfg.job.num} ({' '.join(hydra_cfg.overrides.task)}) failed: {message}; "
                      f"the sweep goes on")
            raise
        if isinstance(e, UserError) or first is not None or _lost_peer(own):
            print(f"Error: {message}", file=sys.stderr)
            sys.exit(1)
        raise


def _error_file() -> str:
    """error.txt, or error_rank<r>.txt for the other processes of a DDP job (they share its run dir)."""
    rank = next((os.environ[k] for k in ("RANK", "SLURM_PROCID", "LOCAL_RANK") if k in os.environ), "0")
    return "error.txt" if rank == "0" else f"error_rank{rank}.txt"


def _earlier_failure(out: Path) -> tuple[int, str] | None:
    """The error another rank of this job wrote before rank 0 failed (the earliest, if several)."""
    files = sorted(out.glob("error_rank[1-9]*.txt"), key=lambda f: f.stat().st_mtime)
    if not files:
        return None
    return int(files[0].stem.removeprefix("error_rank")), files[0].read_text()


def _lost_peer(text: str) -> bool:
    """A collective that failed because a peer process went away (gloo or NCCL)."""
    return any(sign in text for sign in ("Connection closed by peer", "Connection reset by peer", "NCCL communicator was aborted"))
