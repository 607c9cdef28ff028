"""What a sweep keeps in its dir so that it can be continued after its process died.

    python -m src.train -m optim=adam,nadam seed=0,1                                  # killed
    python -m src.train -m optim=adam,nadam seed=0,1 hydra.sweep.dir=<its dir> hydra.sweeper.resume=true

- `multirun.yaml`: the sweep's config, written when it starts (as Hydra's own sweeper does). A resumed
  sweep must compose to the same config and overrides: anything else is refused, with the differences.
- each job's `run.yaml` (src/utils/run_record.py), written when the job ends, with its result. A job
  dir without one, or whose job was interrupted (Ctrl-C, SIGTERM), was stopped mid-way: it runs again,
  and continues from its own checkpoints/last.ckpt (src/utils/sweep_job.py). Jobs that ended, failed
  ones included, are not run again.

The switch is under `hydra.*`, so each job's .hydra/overrides.yaml stays what it was. (This module is
in src/, not hydra_plugins/: Hydra runs every module of hydra_plugins again when it scans for plugins,
which would make two classes of each exception defined there.)
"""

import shlex
import sys
from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf

from src.utils.errors import SweepError
from src.utils.run_record import command_line

CONFIG = "multirun.yaml"
# Keys of hydra.sweeper that may change on resuming (the switch itself, and what a sweeper sets per job).
SWEEPER_RUNTIME = ("resume", "trial")


def begin(config: DictConfig, resume: bool) -> Path:
    """The sweep dir. A new sweep: multirun.yaml written. A resumed one: checked against multirun.yaml."""
    sweep_dir = Path(config.hydra.sweep.dir)
    if resume:
        check_same_sweep(config)
    elif (sweep_dir / CONFIG).is_file():  # its jobs would be written over
        raise SweepError(f"hydra.sweep.dir={sweep_dir} already holds a sweep; to continue it add "
                         f"hydra.sweeper.resume=true, to start another leave out hydra.sweep.dir (a new dir)")
    else:
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(config, sweep_dir / CONFIG)
    return sweep_dir


def check_same_sweep(config: DictConfig) -> None:
    """Refuse a resume whose sweep dir is not a sweep, or whose sweep was started with another config."""
    check_sweep_dir(config)
    sweep_dir = Path(config.hydra.sweep.dir)
    differences = compare(OmegaConf.load(sweep_dir / CONFIG), config)
    if differences:
        shown = differences[:12] + ([f"... and {len(differences) - 12} more"] if len(differences) > 12 else [])
        raise SweepError(f"hydra.sweep.dir={sweep_dir} was started with another sweep; a resumed sweep must be the "
                         f"same sweep (the same command line and config files). What differs (then -> now):\n  "
                         + "\n  ".join(shown) + f"\nTo run this sweep as it is now, start it in a new dir "
                         f"(leave out hydra.sweep.dir and hydra.sweeper.resume).")


def check_sweep_dir(config: DictConfig) -> None:
    """The part of the check that needs no sweep expanded (also run before Hydra makes any dir): the
    resume names a dir, and it holds a sweep."""
    raw = OmegaConf.to_container(config.hydra.sweep, resolve=False)["dir"]
    if "${new_dir:" in str(raw):  # the default: a new dir, which holds nothing to resume
        raise SweepError("hydra.sweeper.resume=true continues a sweep in its own dir: add hydra.sweep.dir=<the sweep "
                         "dir> (logs/train/multiruns/<time>, printed when the sweep started) to its command line")
    sweep_dir = Path(config.hydra.sweep.dir)
    if not (sweep_dir / CONFIG).is_file():
        what = "does not exist" if not sweep_dir.exists() else f"has no {CONFIG}, so it is not a sweep's dir"
        raise SweepError(f"hydra.sweep.dir={sweep_dir} {what}; resume a sweep with the dir it printed when it "
                         f"started (logs/train/multiruns/<time>)")


def compare(saved: DictConfig, now: DictConfig) -> list[str]:
    """'key: then -> now' for what defines the sweep's jobs: the overrides, the sweeper's settings and
    every job's config before the overrides (so an edited config file counts too)."""
    old, new = _defining(saved), _defining(now)
    return [f"{key}: {_show(old, key)} -> {_show(new, key)}" for key in sorted(old.keys() | new.keys())
            if old.get(key, _ABSENT) != new.get(key, _ABSENT)]


_ABSENT = object()


def _show(values: dict, key: str) -> str:
    return "(absent)" if key not in values else repr(values[key])


def _defining(config: DictConfig) -> dict:
    tree = OmegaConf.to_container(config, resolve=False)
    hydra = tree.pop("hydra", {})
    sweeper = {k: v for k, v in (hydra.get("sweeper") or {}).items() if k not in SWEEPER_RUNTIME}
    flat = _flatten(tree)
    flat.update(_flatten(sweeper, "hydra.sweeper."))
    flat["command line overrides"] = (hydra.get("overrides") or {}).get("task", [])
    return flat


def _flatten(node, prefix: str = "") -> dict:
    if not isinstance(node, dict) or not node:
        return {prefix.rstrip("."): node} if prefix else {}
    flat = {}
    for k, v in node.items():
        flat.update(_flatten(v, f"{prefix}{k}."))
    return flat


def job_result(job_dir: Path) -> dict | None:
    """An ended job's result from its run.yaml ({status: completed|failed|pruned, value}); None for a
    job that never started, was killed, or was interrupted."""
    record = job_dir / "run.yaml"
    if not record.is_file():
        return None
    result = (yaml.safe_load(record.read_text()) or {}).get("result") or {"status": "completed"}  # (before results)
    return None if result.get("status") == "interrupted" else result


def sweep_or_exit(sweep, arguments: list[str]):
    """Run a sweeper's sweep; a sweep that cannot run as asked ends with its message alone."""
    try:
        return sweep(arguments)
    except SweepError as e:
        print(f"Error: {e}", file=sys.stderr)
        sys.exit(1)


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
