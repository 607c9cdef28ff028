"""OmegaConf resolvers used by conf/: registered on import, before Hydra composes."""

import functools
import os
from datetime import datetime
from pathlib import Path

from omegaconf import OmegaConf

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@functools.cache  # Hydra resolves hydra.run.dir more than once: same answer every time
def new_dir(parent: str) -> str:
    """Create and return parent/<timestamp>, adding _1, _2, ... if that folder exists.

    mkdir is atomic, so two runs started in the same second still get two folders.
    """
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    n = 0
    while True:
        path = Path(parent) / (stamp if n == 0 else f"{stamp}_{n}")
        try:
            path.mkdir(parents=True)
            return str(path)
        except FileExistsError:
            n += 1


OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT), replace=True)
# The cores this process may use (a container's or a SLURM allocation's share, not the machine's).
OmegaConf.register_new_resolver("cpu_cores", lambda: len(os.sched_getaffinity(0)), replace=True)
# use_cache: the answer is kept in the config itself, so a pickled config (submitit sends one to
# every SLURM task) names the same dir instead of creating a new one.
OmegaConf.register_new_resolver("new_dir", new_dir, replace=True, use_cache=True)
