"""A sweep over `seed`: the jobs grouped by configuration (their other overrides), each metric as
mean +/- std over seeds with n and a 95% confidence interval, and each configuration compared with
the best one, in words."""

import math
from dataclasses import dataclass

from src.report.read import Job
from src.report.stats import Comparison, holm, paired, summarise


@dataclass
class Configuration:
    label: str  # its overrides other than the seed, e.g. "optim=nadam scheduler=step"
    jobs: dict[int, Job]  # seed -> job

    def values(self, tag: str, best: bool) -> dict[int, float]:
        """seed -> the metric's best (the monitored one) or final value, for the jobs that logged it."""
        found = {seed: job.best(tag) if best else job.final(tag) for seed, job in self.jobs.items()}
        return {seed: v for seed, v in found.items() if v is not None and not math.isnan(v)}


def seed_of(job: Job) -> int | None:
    """The job's seed: its `seed` override, else its composed config's (a run started without the override)."""
    try:
        return int(job.overrides["seed"]) if "seed" in job.overrides else job.seed
    except ValueError:  # e.g. seed=null
        return None


def configurations(jobs: list[Job], keys: list[str]) -> list[Configuration] | None:
    """The jobs grouped by their varying overrides other than `seed`, when `seed` is swept and every
    configuration ran at least 2 seeds; else None. A job without a known seed, or a second job of a
    configuration's seed, is in none: it cannot be paired by seed (see `left_out`)."""
    if "seed" not in keys:
        return None
    others = [k for k in keys if k != "seed"]
    groups: dict[str, dict[int, Job]] = {}
    for job in jobs:
        label = " ".join(f"{k}={job.overrides[k]}" for k in others if k in job.overrides) or "all jobs"
        seed = seed_of(job)
        if seed is not None and seed not in groups.get(label, {}):
            groups.setdefault(label, {})[seed] = job
    if not groups or min(len(g) for g in groups.values()) < 2:
        return None
    return [Configuration(label, group) for label, group in groups.items()]


def left_out(jobs: list[Job], configs: list[Configuration]) -> list[str]:
    """The names of the jobs in no configuration."""
    kept = {id(job) for config in configs for job in config.jobs.values()}
    return [job.name for job in jobs if id(job) not in kept]


def _scale(tag: str) -> tuple[float, str]:
    """Accuracies in percentage points; other metrics in their own units."""
    return (100.0, " points") if tag.rsplit("/", 1)[-1].startswith("acc") else (1.0, "")


def section(configs: list[Configuration], monitor: str, mode: str, test_tags: list[str],
            unpaired: list[str] = ()) -> list[str]:
    """The markdown of the statistics: a table per configuration and the verdicts against the best.
    `unpaired`: the names of the jobs left out of it (`left_out`)."""
    sign = 1 if mode == "max" else -1
    counterpart = monitor.replace("val/", "test/", 1)
    verdict_tags = [monitor] + ([counterpart] if counterpart in test_tags else [])

    def mean_best(config):
        values = config.values(monitor, best=True)
        return sign * summarise(list(values.values())).mean if values else -math.inf

    configs = sorted(configs, key=mean_best, reverse=True)
    columns = [(monitor, True), *((t, False) for t in test_tags)]
    header = ["configuration", "seeds", *(f"{'best ' if best else ''}{tag}" for tag, best in columns)]
    lines = ["## Over seeds", "",
             "Each cell: mean +/- standard deviation over seeds [95% confidence interval of the mean]. "
             "Accuracies in percent.", "",
             "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for config in configs:
        cells = []
        for tag, best in columns:
            values = list(config.values(tag, best).values())
            scale, _ = _scale(tag)
            if not values:
                cells.append("")
                continue
            s = summarise([v * scale for v in values])
            cells.append(f"{s.mean:.4g} (one seed)" if s.n < 2 else
                         f"{s.mean:.4g} +/- {s.std:.2g} [{s.mean - s.ci95:.4g}, {s.mean + s.ci95:.4g}]")
        lines.append(f"| {config.label} | {_seeds(config, monitor)} | " + " | ".join(cells) + " |")
    if len({len(c.values(monitor, best=True)) for c in configs}) > 1:
        lines += ["", "Not every configuration has a result for every seed (a job failed or logged nothing): each is "
                      "summarised over its own seeds, and a comparison uses the seeds both have."]
    if unpaired:
        lines += ["", f"Left out of this table: {', '.join(unpaired)} (no seed in the overrides or the config, or a "
                      f"second job of the same configuration and seed)."]

    best, others = configs[0], configs[1:]
    if not others:  # one configuration over seeds: nothing to compare it with
        return lines + [""]
    lines += ["", f"**Compared with the best configuration, {best.label}** (the {'highest' if sign > 0 else 'lowest'} "
                  f"mean best {monitor}):", ""]
    for tag in verdict_tags:
        use_best = tag == monitor
        comparisons = [paired(best.values(tag, use_best), other.values(tag, use_best)) for other in others]
        holm(comparisons)
        scale, unit = _scale(tag)
        lines.append(f"- {tag}:")
        for other, c in zip(others, comparisons):
            lines.append(f"  - {best.label} vs {other.label}: {_verdict(c, sign, scale, unit)}")
    lines += ["", _method(len(others)), ""]
    return lines


def _seeds(config: Configuration, monitor: str) -> str:
    """How many seeds gave a result, and how many jobs did not."""
    done = len(config.values(monitor, best=True))
    missing = len(config.jobs) - done
    return f"{done}" + (f" ({missing} without a result)" if missing else "")


def _verdict(c: Comparison, sign: int, scale: float, unit: str) -> str:
    d = c.difference
    if d.n < 2:
        return f"{d.n} seed(s) in common: nothing to tell"
    # The difference as "better by": positive when the best configuration is ahead.
    text = f"{sign * d.mean * scale:+.2g} +/- {d.ci95 * scale:.2g}{unit} (p = {c.p:.2g}), "
    if c.distinguishable:
        return text + f"larger than the noise at n={d.n}"
    return text + f"not distinguishable at n={d.n}"


def _method(comparisons: int) -> str:
    return (f"Method: jobs with the same seed start from the same weights and see the data in the same order, so "
            f"each configuration is compared with the best one seed by seed (the mean of the per-seed differences, "
            f"+/- the half-width of its 95% confidence interval, and the two-sided paired t-test). Over the "
            f"{comparisons} comparison(s), Holm's step-down correction keeps the chance of calling any difference "
            f"'larger than the noise' by accident at 5%. The best configuration is picked on these same runs, so its "
            f"lead is, if anything, overstated.")
