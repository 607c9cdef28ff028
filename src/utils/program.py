"""What every entry point (src.train, src.eval, src.sample) does around its task:

    preflight("train", __name__)    # first in the module: a DDP child's job, the pre-flight check
    ...                             # then the imports, which take seconds
    @program("train")               # Hydra, values chosen in the job, error reporting, DDP children
    def main(cfg): ...
"""

import functools
import logging
import os
import sys
import traceback
import warnings
from pathlib import Path

import hydra
from hydra._internal.utils import get_args_parser
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from src.utils import resolvers  # noqa: F401  (registers ${project_root:} and ${new_dir:})
from src.utils.ddp import child_argv, hydra_job_for_ddp_children
from src.utils.errors import SweepJobFailed, UserError, exception_message
from src.utils.preflight import CONF_DIR, check_command_line
from src.utils.run_record import write_run_record
from src.utils.validate import validate

log = logging.getLogger(__name__)


def preflight(config_name: str, module_name: str) -> None:
    """Run as a program: a DDP child process takes its parent's job (src/utils/ddp.py), and a bad
    key or value stops here, before Hydra creates any dir and before the entry point imports
    Lightning (seconds). Hydra's own commands (--help, --cfg, --info) run here too, and exit."""
    if module_name != "__main__":
        return
    sys.argv = child_argv(sys.argv)
    args, _ = get_args_parser().parse_known_args(sys.argv[1:])
    if args.help or args.hydra_help or args.cfg or args.info or args.shell_completion:
        hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name=config_name)(lambda cfg: None)()
        sys.exit(0)
    check_command_line(config_name)


def program(config_name: str):
    """Make `main(cfg)` the Hydra program of conf/<config_name>.yaml.

    Each job (a run, each job of a sweep, each DDP process) routes Lightning's logging through
    Hydra's, checks the values a sweeper chose inside the job (the pre-flight check saw the rest),
    reports a failure as `run_task` says, and, on rank 0, writes run.yaml when it ends, failed or not.
    """

    def decorate(main):
        @hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name=config_name)
        @functools.wraps(main)
        def job(cfg):
            quiet_lightning()
            result = {"status": "failed"}
            try:
                with hydra_job_for_ddp_children():
                    value = run_task(main, cfg)
                result = {"status": "completed"} | ({"value": float(value)} if isinstance(value, (int, float)) else {})
                return value
            except Exception as e:
                if _pruned(e):
                    result = {"status": "pruned", "epoch": getattr(e, "epoch", None)}
                raise
            except BaseException:  # Ctrl-C or SIGTERM (Lightning turns both into SystemExit): a resumed sweep
                # runs the job again. (A single run's own error also exits, after writing its error file.)
                if not (Path(HydraConfig.get().runtime.output_dir) / _error_file()).is_file():
                    result = {"status": "interrupted"}
                raise
            finally:
                if _rank() == "0":  # the other processes of a DDP job share its run dir
                    record_run(cfg, result)

        return job

    return decorate


def quiet_lightning() -> None:
    """Under Hydra, Lightning's loggers print each message twice (their own handler and Hydra's):
    route them through Hydra's alone, which also writes <run dir>/<task>.log. Drop its
    advertisement and a deprecation notice that Lightning raises against its own code."""
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


def record_run(cfg, result: dict) -> None:
    """run.yaml (src/utils/run_record.py); a record that cannot be written never fails the job."""
    try:
        write_run_record(cfg, result)
    except Exception as e:
        log.warning(f"run.yaml not written: {type(e).__name__}: {e}")


def _chosen_in_job(hydra_cfg) -> bool:
    """A sweeper other than Hydra's basic one (Optuna) chooses its values inside each job."""
    return hydra_cfg.mode == RunMode.MULTIRUN and not hydra_cfg.sweeper._target_.endswith(("BasicSweeper", "GridSweeper"))


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
        if HydraConfig.initialized() and _chosen_in_job(HydraConfig.get()):
            validate(cfg)
        return task(cfg)
    except Exception as e:
        if _pruned(e):  # not an error: the search's pruner stopped this trial (src/callbacks/pruning.py)
            log.info(str(e))
            raise
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
            failed = f"job {hydra_cfg.job.num} ({' '.join(hydra_cfg.overrides.task)}) failed: {message}"
            log.error(f"{failed} (the sweep goes on)")
            # Hydra raises the first failed job's exception when the sweep ends: its message alone, not a
            # traceback of Lightning's frames (that one is in error.txt).
            raise SweepJobFailed(f"{failed} (its traceback: {out / name})") from e
        if isinstance(e, UserError) or first is not None or _lost_peer(own):
            print(f"Error: {message}", file=sys.stderr)
            sys.exit(1)
        raise


def _pruned(e: Exception) -> bool:
    optuna = sys.modules.get("optuna")  # (not imported: no trial was pruned)
    return optuna is not None and isinstance(e, optuna.TrialPruned)


def _rank() -> str:
    """This process's rank in its DDP job ("0" outside DDP), as torchrun, SLURM or Lightning's launcher set it."""
    return next((os.environ[k] for k in ("RANK", "SLURM_PROCID", "LOCAL_RANK") if k in os.environ), "0")


def _error_file() -> str:
    """error.txt, or error_rank<r>.txt for the other processes of a DDP job (they share its run dir)."""
    rank = _rank()
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
