"""Run the jobs of a sweep in parallel on this machine, each with its share of the cores.

    python -m src.train -m hydra/launcher=parallel optim=adam,nadam,sgdm     # conf/hydra/launcher/parallel.yaml

submitit's local executor (the SLURM launcher's sibling: the same pickled-job path, each job in its
own process and dir) with what it lacks for a shared machine: it starts every job it is given at once
and leaves each job all the cores, so N jobs x N threads fight over N cores. Here `jobs` run at a time
and each gets `threads` threads.
"""

import json
import os
from collections.abc import Sequence

from hydra.core.utils import JobReturn
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import LocalLauncher

from src.utils.run_record import COMMAND, command_line


class ParallelLauncher(LocalLauncher):
    def __init__(self, jobs: int, threads: int, **params):
        super().__init__(**params)
        self.jobs, self.threads = jobs, threads

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        # The job processes inherit these (the executor copies this environment): torch reads the thread
        # count on import; run.yaml records the command line as typed, not the worker's.
        program, args = command_line()
        env = {"OMP_NUM_THREADS": str(self.threads), COMMAND: json.dumps({"program": program, "args": args})}
        saved = {key: os.environ.get(key) for key in env}
        os.environ.update(env)
        try:
            results = []
            # `jobs` at a time: the next group starts when the slowest job of this one ends.
            for start in range(0, len(job_overrides), self.jobs):
                results += super().launch(job_overrides[start : start + self.jobs], initial_job_idx + start)
            return results
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key)
                else:
                    os.environ[key] = value
