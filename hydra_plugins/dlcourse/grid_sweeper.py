"""Every combination of the swept values, one job each (Hydra's basic sweeper), and resumable:

    python -m src.train -m optim=adam,nadam scheduler=none,step          # jobs 0-3 in <sweep dir>/0 ... /3
    python -m src.train -m optim=adam,nadam scheduler=none,step hydra.sweep.dir=<sweep dir> hydra.sweeper.resume=true

Resuming skips the jobs that ended, continues the one that was stopped from its last.ckpt and runs the
rest, each under its first number (src/utils/sweep_dir.py says what is checked).
"""

import logging
import shlex
from pathlib import Path

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from src.utils.errors import SweepError
from src.utils.run_record import command_line
from src.utils.sweep_dir import begin, job_result, sweep_or_exit

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


def batches(numbers: list[int], size: int | None):
    """(first number, numbers) of runs of consecutive job numbers, at most `size` long: a launcher
    numbers the jobs it is given from its first."""
    run: list[int] = []
    for n in numbers:
        if run and (n != run[-1] + 1 or (size and len(run) == size)):
            yield run[0], run
            run = []
        run.append(n)
    if run:
        yield run[0], run


def check_job_subdir(config) -> None:
    """Resuming finds job n in <sweep dir>/n."""
    subdir = OmegaConf.to_container(config.hydra.sweep, resolve=False)["subdir"]
    if subdir != "${hydra.job.num}":
        raise SweepError(f"hydra.sweep.subdir={subdir!r}: a resumable sweep keeps job n in <sweep dir>/n; "
                         f"leave hydra.sweep.subdir at its default, ${{hydra.job.num}}")


def describe(numbers: list[int], sweep_dir: Path) -> str:
    if not numbers:
        return "none (the sweep had finished)"
    started = [n for n in numbers if (sweep_dir / str(n)).is_dir()]
    text = f"job{'s' if len(numbers) > 1 else ''} {', '.join(map(str, numbers))}"
    return text + (f" (stopped mid-way, continued in its dir: {', '.join(map(str, started))})" if started else "")


def resume_command(sweep_dir: Path) -> str:
    """The command line as typed, pointed at this sweep dir, with the resume switch."""
    program, args = command_line()
    args = [a for a in args if not a.startswith(("hydra.sweep.dir=", "hydra.sweeper.resume="))]
    return shlex.join(program + args + [f"hydra.sweep.dir={sweep_dir}", "hydra.sweeper.resume=true"])
