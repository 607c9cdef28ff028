"""Run the jobs of a sweep in parallel on this machine, each with its share of the cores.

    python -m src.train -m hydra/launcher=parallel optim=adam,nadam,sgdm     # conf/hydra/launcher/parallel.yaml

submitit's local executor (the SLURM launcher's sibling: the same pickled-job path, each job in its
own process and dir) with what it lacks for a shared machine: it starts every job it is given at once
and leaves each job all the cores, so N jobs x N threads fight over N cores. Here `jobs` run at a time
and each gets `threads` threads.
"""

import os
from collections.abc import Sequence

from hydra.core.utils import JobReturn
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import LocalLauncher


class ParallelLauncher(LocalLauncher):
    def __init__(self, jobs: int, threads: int, **params):
        super().__init__(**params)
        self.jobs, self.threads = jobs, threads

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        saved = os.environ.get("OMP_NUM_THREADS")
        # The job processes inherit it (the executor copies this environment): torch reads it on import.
        os.environ["OMP_NUM_THREADS"] = str(self.threads)
        try:
            results = []
            # `jobs` at a time: the next group starts when the slowest job of this one ends.
            for start in range(0, len(job_overrides), self.jobs):
                results += super().launch(job_overrides[start : start + self.jobs], initial_job_idx + start)
            return results
        finally:
            if saved is None:
                os.environ.pop("OMP_NUM_THREADS")
            else:
                os.environ["OMP_NUM_THREADS"] = saved
