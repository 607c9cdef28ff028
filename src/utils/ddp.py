"""Lightning's DDP under Hydra: each child process runs exactly its parent's job, in the parent's run dir.

Lightning's DDP launcher starts ranks 1..N-1 by re-running the original
command line with `hydra.run.dir=<HydraConfig.run.dir>` appended
(`_hydra_subprocess_cmd`). That breaks in two ways here:
- in a multirun the command line still holds `-m` and the sweep, so rank 1
  runs the whole sweep, in a sweep dir of its own, out of step with rank 0;
- `hydra.run.dir` is `${new_dir:...}`: resolving it in a sweep job creates a
  stray run dir.
So, around each job, the parent points `hydra.run.dir` at the job's output
dir and puts the job's own overrides in the environment the children inherit;
a child (LOCAL_RANK > 0 with that variable set) replaces its command line by
those overrides plus Lightning's `hydra.*` arguments: a single run of the same
job in the same dir. What the sweeper asks of the job (continue a stopped job,
report to a search's pruner: src/utils/sweep_job.py) reaches the children the
same way. After each job the parent waits for its children and clears
Lightning's environment variables (and the thread count it set), so the next job
of a sweep launches its own children again with the threads it would have alone,
and a failed job does not end the sweep.

No torch import at module level: the entry points import this before checking the config.
"""

import json
import os
import sys
from contextlib import contextmanager

JOB_OVERRIDES = "SRC_DDP_JOB_OVERRIDES"
# Set by Lightning's launcher in the parent; left behind they make the next job of a sweep
# believe its processes were started externally, and wait for ranks that never come.
LAUNCHER_ENV = ("LOCAL_RANK", "NODE_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
LAUNCHER_ARGS = ("hydra.run.dir", "hydra.job.name", "hydra.output_subdir")


def is_child(environ=os.environ) -> bool:
    return environ.get("LOCAL_RANK", "0") != "0" and JOB_OVERRIDES in environ


def child_argv(argv: list[str], environ=os.environ) -> list[str]:
    """The command line a DDP child should run: its parent's job overrides, and Lightning's hydra.* arguments."""
    if not is_child(environ):
        return argv
    overrides = json.loads(environ[JOB_OVERRIDES])
    launcher_args = [a for a in argv[1:] if a.split("=", 1)[0] in LAUNCHER_ARGS]
    # hydra.mode=RUN: a config can make a sweep without -m (hparams_search=...)
    return [argv[0], *overrides, "hydra.mode=RUN", *launcher_args]


@contextmanager
def hydra_job_for_ddp_children():
    """Around one Hydra job in the parent process; does nothing in a child."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import read_write

    if is_child() or not HydraConfig.initialized():
        yield
        return
    from src.utils.sweep_job import SWEEP_JOB, sweep_settings

    saved = {key: os.environ.get(key) for key in (*LAUNCHER_ENV, JOB_OVERRIDES, SWEEP_JOB, "OMP_NUM_THREADS")}
    # Lightning gives each DDP process cores / processes threads, in this process too: the next job
    # of a sweep gets back the count it would have had alone.
    threads = _torch_threads()
    hydra_cfg = HydraConfig.get()
    os.environ[JOB_OVERRIDES] = json.dumps(list(hydra_cfg.overrides.task))
    settings = sweep_settings()  # what the sweeper asks of this job (resume, prune), which the children run alone
    if settings:
        os.environ[SWEEP_JOB] = json.dumps(settings)
    with read_write(hydra_cfg.run):
        hydra_cfg.run.dir = hydra_cfg.runtime.output_dir
    try:
        yield
    finally:
        _settle_children()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if threads is not None:
            sys.modules["torch"].set_num_threads(threads)
        _destroy_process_group()


def _torch_threads() -> int | None:
    torch = sys.modules.get("torch")  # (imported by the entry point before any job; never here)
    return torch.get_num_threads() if torch is not None else None


def _settle_children(timeout: float = 60) -> None:
    """Once a job is over: detach Lightning's watcher from the job's child processes, then wait for them.

    Lightning's `_ChildProcessObserver` thread SIGKILLs the main process as soon as a child exits
    with an error: right for one run (rank 0 would wait for it forever), but in a sweep a job that
    failed on every rank would take the remaining jobs down with it. A child still running after
    `timeout` (e.g. waiting for a rank 0 that failed) is killed.
    """
    import subprocess
    import threading

    for thread in threading.enumerate():
        watched = getattr(thread, "_child_processes", None)
        if thread.name != "child-process-observer" or not isinstance(watched, list):
            continue
        children = list(watched)
        watched.clear()  # the observer sees no children left and stops
        for child in children:
            try:
                child.wait(timeout)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def _destroy_process_group() -> None:
    if "torch" not in sys.modules:  # the job failed before importing it: no process group
        return
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()

