"""Every combination of the swept values, one job each (Hydra's basic sweeper), and resumable:

    python -m src.train -m optim=adam,nadam scheduler=none,step          # jobs 0-3 in <sweep dir>/0 ... /3
    python -m src.train -m optim=adam,nadam scheduler=none,step hydra.sweep.dir=<sweep dir> hydra.sweeper.resume=true

Resuming skips the jobs that ended, continues the one that was stopped from its last.ckpt and runs the
rest, each under its first number (src/utils/sweep_dir.py says what is checked).
"""

import logging

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser

from src.utils.sweep_dir import batches, begin, check_job_subdir, describe, job_result, resume_command, sweep_or_exit

log = logging.getLogger(__name__)


class GridSweeper(BasicSweeper):
    def __init__(self, max_batch_size: int | None, params: dict | None, resume: bool = False):
        super().__init__(max_batch_size=max_batch_size, params=params)
        self.resume = resume

    def sweep(self, arguments: list[str]):
        return sweep_or_exit(self._sweep, arguments)

    def _sweep(self, arguments: list[str]):
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        jobs = self.split_arguments(parser.parse_overrides(self._parse_config() + list(arguments)), None)[0]
        check_job_subdir(self.config)
        sweep_dir = begin(self.config, self.resume)
        todo = list(range(len(jobs)))
        if self.resume:
            todo = [n for n in todo if job_result(sweep_dir / str(n)) is None]
            log.info(f"Resuming {sweep_dir}: {len(jobs) - len(todo)} of {len(jobs)} jobs have ended; "
                     f"running {describe(todo, sweep_dir)}")
        else:
            log.info(f"Sweep dir {sweep_dir}; if this sweep stops, continue it with:\n  {resume_command(sweep_dir)}")

        results = []
        for start, batch in batches(todo, self.max_batch_size):
            batch_overrides = [jobs[n] for n in batch]
            self.validate_batch_is_legal(batch_overrides)
            results += self.launcher.launch(batch_overrides, initial_job_idx=start)
        for r in results:
            _ = r.return_value  # a failed job's exception, now that every job has run
        return [results]
