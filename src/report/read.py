"""Read what runs already wrote: each job's Hydra config and overrides, its record (run.yaml), its
metrics and its error.

A run dir holds `.hydra/`; a sweep dir holds job dirs that each hold `.hydra/`.
Metrics come from the TensorBoard event files (via tensorboard's own
EventAccumulator) or, failing that, from Lightning's CSV logs. No torch or
Lightning import here, so a report takes a second, not ten.
"""

import csv
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from omegaconf import OmegaConf

from src.utils.errors import UserError, exception_message
from src.utils.sweep_dir import job_result


class ReportError(UserError):
    """The path given is not something a report can be made of."""


@dataclass
class Job:
    dir: Path
    overrides: dict[str, str]                      # key -> value, as typed on the command line
    record: dict[str, str] | None = None           # run.yaml's fields, flat (None: a run from before run.yaml)
    monitor: str = "val/acc"
    mode: str = "max"
    # tag -> [(epoch, value), ...] in logging order
    series: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    wall_s: float | None = None                    # first to last logged event
    error: str | None = None                       # the exception of error.txt, in one line
    pruned_after: int | None = None                # the epoch after which a search's pruner stopped it
    seed: int | None = None                        # the composed config's seed (None: no config.yaml)

    @property
    def name(self) -> str:
        return self.dir.name

    def final(self, tag: str) -> float | None:
        points = self.series.get(tag)
        return points[-1][1] if points else None

    def best(self, tag: str) -> float | None:
        values = [v for _, v in self.series.get(tag, []) if not math.isnan(v)]
        if not values:
            return None
        return max(values) if self.mode == "max" else min(values)

    @property
    def epochs(self) -> int:
        # Every model logs its train/* metrics once per epoch (train/loss, or the VAE's train/elbo, ...).
        return len({e for tag, points in self.series.items() if tag.startswith("train/") for e, _ in points})

    @property
    def train_s(self) -> float | None:
        # Logged by src/callbacks/epoch_timer.py: training time without validation.
        times = self.series.get("time/train_epoch_s")
        return sum(v for _, v in times) if times else None


def is_job_dir(path: Path) -> bool:
    return (path / ".hydra").is_dir() or (path / "error.txt").is_file()


def find_jobs(path: Path) -> list[Path]:
    """The job dirs of a sweep dir, or [path] for a run dir."""
    if not path.exists():
        raise ReportError(f"{path} does not exist; give a run dir (logs/train/runs/<time>) or a sweep dir "
                          f"(logs/train/multiruns/<time>)")
    if not path.is_dir():
        raise ReportError(f"{path} is a file; give a run dir (logs/train/runs/<time>) or a sweep dir "
                          f"(logs/train/multiruns/<time>)")
    if is_job_dir(path):
        return [path]
    jobs = [p for p in path.iterdir() if p.is_dir() and is_job_dir(p)]
    if not jobs:
        raise ReportError(
            f"{path} is not a run or sweep dir: it has no .hydra/ folder (a run dir, e.g. logs/train/runs/<time>) "
            f"and no job folders holding one (a sweep dir, e.g. logs/train/multiruns/<time>)"
        )
    # Sweep jobs are numbered: sort 2 before 10.
    return sorted(jobs, key=lambda p: (not p.name.isdigit(), int(p.name) if p.name.isdigit() else 0, p.name))


def read_job(path: Path) -> Job:
    hydra_dir = path / ".hydra"
    overrides = {}
    if (hydra_dir / "overrides.yaml").is_file():
        for item in OmegaConf.to_container(OmegaConf.load(hydra_dir / "overrides.yaml")) or []:
            key, _, value = str(item).partition("=")
            overrides[key] = value
    job = Job(path, overrides, _read_record(path / "run.yaml"))
    result = job_result(path) or {}
    if result.get("status") == "pruned":
        job.pruned_after = result.get("epoch")
    if (hydra_dir / "config.yaml").is_file():
        # Only monitor.* and the seed are read: the rest may hold interpolations that need Hydra to resolve.
        config = OmegaConf.load(hydra_dir / "config.yaml")
        monitor = config.get("monitor") or {}
        job.monitor, job.mode = monitor.get("metric", job.monitor), monitor.get("mode", job.mode)
        seed = OmegaConf.select(config, "seed", throw_on_resolution_failure=False)
        job.seed = seed if isinstance(seed, int) else None
    if (path / "error.txt").is_file():
        job.error = exception_message((path / "error.txt").read_text())
    events = sorted(path.rglob("events.out.tfevents.*"))
    if events:
        job.series, job.wall_s = _read_tensorboard(events)
    else:
        csvs = sorted(path.rglob("metrics.csv"))
        if csvs:
            job.series = _read_csv(csvs)
            # The CSV log has no clock: the job started when Hydra wrote its config, ended at the last write.
            start = (hydra_dir / "config.yaml").stat().st_mtime if (hydra_dir / "config.yaml").is_file() else None
            if start is not None:
                job.wall_s = max(p.stat().st_mtime for p in csvs) - start
    return job


def _read_record(path: Path) -> dict[str, str] | None:
    """run.yaml (src/utils/run_record.py) as flat fields: commit, python, torch, ..., accelerator, cpu, threads.

    Its commands are left out: the overrides already say how the jobs differ."""
    if not path.is_file():
        return None
    record = yaml.safe_load(path.read_text()) or {}
    git = record.get("git") or {}
    commit = f"{git['commit'][:7]} ({'dirty' if git.get('dirty') else 'clean'})" if git.get("commit") else None
    fields = {"commit": commit, **(record.get("versions") or {}), **(record.get("device") or {})}
    return {k: str(v) for k, v in fields.items() if v is not None}


def _read_tensorboard(files: list[Path]) -> tuple[dict, float | None]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    # (It says so when it drops a stopped attempt's events: expected here, not news to print.)
    logging.getLogger("tensorboard").setLevel(logging.ERROR)
    raw: dict[str, list] = {}
    # A folder's files together (Lightning writes fit, test and final hparams to separate ones), as
    # TensorBoard reads them: a job continued after a crash starts its file with purge_step, which
    # drops the stopped attempt's events from that step on.
    for folder in sorted({f.parent for f in files}):
        acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})  # 0: keep every point
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            raw.setdefault(tag, []).extend(acc.Scalars(tag))
    times = [e.wall_time for events in raw.values() for e in events]
    # Lightning logs the epoch beside every metric: map each global step to its epoch.
    epoch_of = {e.step: int(e.value) for e in raw.pop("epoch", [])}
    series = {}
    for tag, events in raw.items():
        # One value per step: the latest (a job continued after a crash logs its placeholders again).
        events = list({e.step: e for e in sorted(events, key=lambda e: (e.step, e.wall_time))}.values())
        series[tag] = [(epoch_of.get(e.step, i), float(e.value)) for i, e in enumerate(events)]
    return series, (max(times) - min(times)) if times else None


def _read_csv(files: list[Path]) -> dict:
    """The rows of each metrics.csv, oldest file first. A job continued after a crash logs to
    csv/resumed_from_step_<n>/: an earlier file's rows from that step on are the stopped attempt's."""
    tables = []
    for f in sorted(files, key=_resumed_from):
        with open(f, newline="") as fh:
            tables.append(list(csv.DictReader(fh)))
    series: dict[str, list] = {}
    for k, rows in enumerate(tables):
        later = [_step(row) for table in tables[k + 1:] for row in table[:1]]
        for row in rows:
            if later and _step(row) >= min(later):
                continue
            for tag, value in row.items():
                if tag not in ("epoch", "step") and value not in ("", None):
                    points = series.setdefault(tag, [])
                    # (a row without an epoch, e.g. a learning rate: its place in the series, as for TensorBoard)
                    points.append((int(float(row["epoch"])) if row.get("epoch") else len(points), float(value)))
    return series


def _resumed_from(file: Path) -> int:
    """The step a CSV log starts at: n for csv/resumed_from_step_<n>/, -1 for the first."""
    name = file.parent.name
    return int(name.rsplit("_", 1)[1]) if name.startswith("resumed_from_step_") else -1


def _step(row: dict) -> float:
    return float(row["step"]) if row.get("step") not in ("", None) else float("inf")


def read_jobs(path: str | Path) -> list[Job]:
    return [read_job(p) for p in find_jobs(Path(path))]


def read_search_results(path: Path) -> dict | None:
    """The Optuna sweeper's optimization_results.yaml (best params and value), if this is a search."""
    results = path / "optimization_results.yaml"
    return OmegaConf.to_container(OmegaConf.load(results)) if results.is_file() else None

