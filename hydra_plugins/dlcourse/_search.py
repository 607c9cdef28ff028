"""The Optuna search of hydra_plugins/dlcourse/search_sweeper.py: Hydra's Optuna sweeper, with pruning and resuming.

What it adds to hydra-optuna-sweeper 1.3.0, whose sampling, search space syntax and study it keeps:
- Pruning. Each job is told its trial number (hydra.sweeper.trial, a Hydra setting: the job's
  overrides.yaml stays its parameters). The job reports its monitored metric after every validation
  to the study's storage and asks the study's pruner (src/callbacks/pruning.py); a pruned job stops
  and raises optuna.TrialPruned, and the sweeper tells the trial PRUNED (Hydra's tells COMPLETE or FAIL).
- Resuming (hydra.sweeper.resume=true, hydra.sweep.dir=<its dir>). Each trial records its sweep dir
  and job number in the study. A trial left RUNNING by a sweep that died is told what its job recorded
  if the job had ended, and otherwise run again under its number with the same parameters: the job
  continues from its own last.ckpt. Then new trials are asked until the sweep has its n_trials.
  Continuing a finished search in a new sweep dir against the same study (hydra.sweeper.storage=
  <its optuna.db>) is another thing: n_trials more, numbered from 0 in the new dir.
"""

import logging
import math
from pathlib import Path

import numpy as np
import optuna
from omegaconf import OmegaConf
from hydra.core.utils import JobReturn, JobStatus
from hydra_plugins.hydra_optuna_sweeper._impl import OptunaSweeperImpl, create_params_from_overrides
from optuna.trial import TrialState

from src.utils.errors import SweepError
from src.utils.sweep_dir import batches, begin, check_job_subdir, describe, job_result, resume_command

log = logging.getLogger(__name__)

# Trial system attributes: which sweep dir and job ran the trial.
SWEEP_DIR, JOB = "dlcourse.sweep_dir", "dlcourse.job"


class Search(OptunaSweeperImpl):
    def __init__(self, sampler, direction, storage, study_name, n_trials: int, n_jobs: int, max_failure_rate: float,
                 params, pruner=None, resume: bool = False, trial: int | None = None, search_space=None,
                 custom_search_space=None):
        super().__init__(sampler, direction, storage, study_name, n_trials, n_jobs, max_failure_rate, search_space,
                         custom_search_space, params)
        self.pruner, self.resume = pruner, resume

    def sweep(self, arguments: list[str]) -> None:
        self._process_searchspace_config()
        space, fixed = create_params_from_overrides(self._parse_sweeper_params_config() + list(arguments))
        space = {**(self.search_space_distributions or {}), **space}  # (+ the deprecated hydra.sweeper.search_space)
        if getattr(self.sampler, "func", None) is optuna.samplers.GridSampler:
            raise SweepError("hydra/sweeper/sampler=grid is not supported here: for every combination, sweep "
                             "with -m (python -m src.train -m optim=adam,nadam ...)")
        if len(self._get_directions()) > 1:
            raise SweepError(f"hydra.sweeper.direction={self.direction}: a search here optimises one value, the one "
                             f"src.train returns (the best monitor.metric)")
        if (self.resume or self.pruner) and not (self.storage and self.study_name):
            raise SweepError("a search that resumes or prunes keeps its study where its jobs can reach it: set "
                             "hydra.sweeper.storage (e.g. sqlite:///${hydra.sweep.dir}/optuna.db) and "
                             "hydra.sweeper.study_name, as conf/hparams_search/*.yaml do")
        for name in fixed:
            space.pop(name, None)
        check_job_subdir(self.config)
        sweep_dir = begin(self.config, self.resume)
        study = optuna.create_study(study_name=self.study_name, storage=self.storage, sampler=self.sampler,
                                    pruner=self.pruner, directions=self._get_directions(), load_if_exists=True)
        _move_on(self.sampler, OmegaConf.select(self.config, "hydra.sweeper.sampler.seed"), len(study.trials))
        log.info(f"Study {study.study_name} in {self.storage}; sampler {type(self.sampler).__name__}, "
                 f"pruner {type(self.pruner).__name__ if self.pruner else 'none'}")

        key = str(sweep_dir.resolve())
        ours = [t for t in study.get_trials(deepcopy=False) if t.system_attrs.get(SWEEP_DIR) == key]
        for trial in ours:
            if trial.system_attrs.get(JOB) is None and trial.state == TrialState.RUNNING:  # died while being made
                self._tell(study, trial.number, "failed", None, "the sweep stopped before its job was numbered")
        mine = {t.system_attrs[JOB]: t for t in ours if t.system_attrs.get(JOB) is not None}
        stopped = []
        for number, trial in sorted(mine.items()):
            if trial.state == TrialState.RUNNING:
                result = job_result(sweep_dir / str(number))
                if result is None and set(space) <= set(trial.params):
                    stopped.append((number, trial))
                elif result is None:  # stopped between asking for the trial and drawing its parameters
                    self._tell(study, trial.number, "failed", None, "the sweep stopped before its parameters were drawn")
                else:  # the job ended, the sweep died before telling the study
                    self._tell(study, trial.number, result.get("status"), result.get("value"), None)
        if self.resume:
            log.info(f"Resuming {sweep_dir}: {len(mine) - len(stopped)} of {self.n_trials} trials have ended; "
                     f"running {describe([n for n, _ in stopped], sweep_dir)} again, then "
                     f"{max(0, self.n_trials - len(mine))} new")
        else:
            log.info(f"Sweep dir {sweep_dir}; if this search stops, continue it with:\n  {resume_command(sweep_dir)}")

        for start, group in batches([n for n, _ in stopped], self.n_jobs):
            trials = [t for n, t in stopped if n in group]
            overrides = [self._overrides(t.params, fixed, t.number) for t in trials]
            self._run(study, [t.number for t in trials], overrides, start)
        next_job = max(mine, default=-1) + 1
        while next_job < self.n_trials:
            if (sweep_dir / str(next_job)).exists():  # a job of this sweep that the study does not know
                raise SweepError(f"{sweep_dir / str(next_job)} exists, but study {study.study_name} in {self.storage} "
                                 f"has no trial of it: was the sweep dir moved, or the storage or study name changed? "
                                 f"A resumed search needs the study it started with")
            trials = [study.ask() for _ in range(min(self.n_jobs, self.n_trials - next_job))]
            for i, trial in enumerate(trials):
                trial.set_system_attr(SWEEP_DIR, key)
                trial.set_system_attr(JOB, next_job + i)
            overrides = self._configure_trials(trials, space, fixed)  # draws the parameters
            overrides = [(*o, f"hydra.sweeper.trial={t.number}") for o, t in zip(overrides, trials)]
            self._run(study, [t.number for t in trials], overrides, next_job)
            next_job += len(trials)
        self._save_results(study)

    @staticmethod
    def _overrides(params: dict, fixed: dict, number: int) -> tuple[str, ...]:
        """A trial's job overrides, as the sweeper first made them (its parameters, then the fixed ones)."""
        return (*(f"{k}={v}" for k, v in {**params, **fixed}.items()), f"hydra.sweeper.trial={number}")

    def _run(self, study, numbers: list[int], overrides, first_job: int) -> None:
        """Launch the jobs of these trials and tell the study how each ended. More failures in the
        batch than max_failure_rate allows stop the search (as Hydra's sweeper does)."""
        failures = []
        for number, ret in zip(numbers, self.launcher.launch(overrides, initial_job_idx=first_job)):
            status, value, error = _outcome(ret)
            self._tell(study, number, status, value, error)
            if error is not None:
                failures.append(error)
        if failures and len(failures) / len(numbers) > self.max_failure_rate:
            raise failures[0]

    @staticmethod
    def _tell(study, number: int, status: str | None, value, error) -> None:
        if status == "completed" and value is not None and math.isfinite(value):
            study.tell(number, values=[float(value)])
        elif status == "pruned":
            study.tell(number, state=TrialState.PRUNED)
            log.info(f"Trial {number} pruned")
        else:  # (Optuna refuses a NaN value: the trial failed)
            study.tell(number, state=TrialState.FAIL)
            log.warning(f"Trial {number} failed: {error or f'its job returned {value}'}")

    def _save_results(self, study) -> None:
        try:
            best = study.best_trial
        except ValueError:  # no trial completed
            log.warning("No trial completed: no best parameters")
            return
        log.info(f"Best parameters: {best.params}")
        log.info(f"Best value: {best.value}")
        OmegaConf.save(OmegaConf.create({"name": "optuna", "best_params": best.params, "best_value": best.value}),
                       Path(self.config.hydra.sweep.dir) / "optimization_results.yaml")


def _move_on(sampler, seed: int | None, n: int) -> None:
    """Seed the sampler's random draws by (its seed, the trials the study has): a resumed or continued
    search would otherwise draw its first trials' parameters again (TPE draws its first n_startup_trials
    at random). Unseeded samplers draw afresh anyway."""
    if not n or seed is None:
        return
    for rng_owner in (sampler, getattr(sampler, "_random_sampler", None)):
        if isinstance(getattr(rng_owner, "_rng", None), np.random.RandomState):
            rng_owner._rng = np.random.RandomState([seed, n])


def _outcome(ret: JobReturn) -> tuple[str, float | None, Exception | None]:
    """(completed|pruned|failed, value, error) of a job's return."""
    if ret.status == JobStatus.COMPLETED:
        try:
            return "completed", float(ret.return_value), None
        except (TypeError, ValueError):
            return "failed", None, ValueError(f"the job returned {ret.return_value!r}, not a number")
    error = ret._return_value
    if isinstance(error, optuna.TrialPruned):
        return "pruned", None, None
    return "failed", None, error
