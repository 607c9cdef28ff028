"""<run dir>/run.yaml: what a result depends on beside its config (Hydra's .hydra/ holds that).

The same recipe run with one and with two threads ends 2e-6 apart in its weights on an Intel CPU,
1e-8 apart on an AMD one, and a GPU run differs again: a run is reproduced only with the code,
versions, machine and threads that made it. So each job records them, with the command that made
it and the one that reruns it alone:

    command: python -m src.train -m optim.lr=0.1,0.5     # as typed
    rerun: python -m src.train optim.lr=0.5               # this job alone
    git: {commit: 3f2c..., dirty: false}
    versions: {python: 3.11.9, torch: 2.14.1, lightning: 2.6.6, ...}
    device: {accelerator: cpu, cpu: Intel(R) Xeon(R) Processor, threads: 2}   # + gpu, cuda on a GPU
    result: {status: completed, value: 0.9841}    # or failed, or pruned (a search trial stopped early)

A job dir with a run.yaml is a finished job: a resumed sweep does not run it again (hydra_plugins/dlcourse/resume.py).
"""

import json
import os
import platform
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import yaml
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from src.utils.resolvers import PROJECT_ROOT

PACKAGES = ("torch", "lightning", "hydra-core", "omegaconf", "torchmetrics")
COMMAND = "SRC_COMMAND_LINE"  # the typed command line, for jobs run in a launcher's worker processes


def write_run_record(cfg: DictConfig, result: dict) -> None:
    """Write run.yaml into the job's run dir. Called when the job ends (see program())."""
    record = {**commands(), "git": git_state(), "versions": versions(), "device": device(cfg), "result": result}
    # Plain YAML, not OmegaConf: a `${...}` typed on the command line stays text when read back.
    # Unlimited width: each command stays on one line, to be copied into a shell.
    text = yaml.safe_dump(record, sort_keys=False, allow_unicode=True, width=float("inf"))
    # Whole or not at all (a sweep reads a job with a run.yaml as ended): a new file, then renamed.
    path = Path(HydraConfig.get().runtime.output_dir) / "run.yaml"
    path.with_suffix(".yaml.tmp").write_text(text)
    path.with_suffix(".yaml.tmp").replace(path)


def command_line() -> tuple[list[str], list[str]]:
    """(the program, e.g. python -m src.train; its arguments) as typed. A job that runs in a launcher's
    worker process (hydra/launcher=parallel) has the worker's own: the launcher passes the typed one."""
    if COMMAND in os.environ:
        typed = json.loads(os.environ[COMMAND])
        return typed["program"], typed["args"]
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    return (["python", "-m", spec.name] if spec else ["python", sys.argv[0]]), sys.argv[1:]


def commands() -> dict[str, str]:
    """The command line as typed, and one that reruns this job alone (a sweep's job: its own overrides)."""
    program, args = command_line()
    hydra_cfg = HydraConfig.get()
    job = list(hydra_cfg.overrides.task)  # the job's overrides, without Hydra's own hydra.* arguments
    if hydra_cfg.mode == RunMode.MULTIRUN and not {"-m", "--multirun"} & set(args):
        job.append("hydra.mode=RUN")  # the config made it a sweep (hparams_search=...): run the job alone
    return {"command": shlex.join(program + args), "rerun": shlex.join(program + job)}


def git_state() -> dict[str, str | bool | None]:
    """The project's commit and whether its tree differs from it (untracked files count); null outside git."""
    try:
        commit = _git("rev-parse", "HEAD")
        dirty = _git("status", "--porcelain") != ""
    except (OSError, subprocess.SubprocessError):  # no git, not a checkout, or too slow
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": dirty}


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True,
                          timeout=10).stdout.strip()


def versions() -> dict[str, str | None]:
    """Installed versions, read from package metadata (no import)."""
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def device(cfg: DictConfig) -> dict:
    """The accelerator, CPU model and torch's thread count; on a GPU also its name and CUDA version.

    Read when the job ends: Lightning's DDP launcher sets the thread count (cores / processes) only
    inside fit.
    """
    import torch  # already imported by the entry point: costs nothing

    accelerator = OmegaConf.select(cfg, "trainer.accelerator", default="cpu")  # no trainer (src.sample): the CPU
    if accelerator == "auto":  # as Lightning resolves it here: a CUDA GPU if there is one
        accelerator = "gpu" if torch.cuda.is_available() else "cpu"
    found = {"accelerator": "gpu" if accelerator == "cuda" else accelerator, "cpu": cpu_model(),
             "threads": torch.get_num_threads()}
    if found["accelerator"] == "gpu" and torch.cuda.is_available():
        found.update(gpu=torch.cuda.get_device_name(), cuda=torch.version.cuda)
    return found


def cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:  # not Linux
        pass
    return platform.processor() or None
