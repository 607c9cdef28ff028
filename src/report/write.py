"""Turn jobs into one table (report.md, report.csv) and one figure of overlaid curves (curves.png)."""

import csv
import math
from pathlib import Path

from src.report.read import Job
from src.report.seeds import configurations, left_out, section


def varying_overrides(jobs: list[Job]) -> tuple[list[str], dict[str, str]]:
    """(keys whose value differs between jobs, the overrides every job shares).

    In a sweep the shared ones (trainer.max_epochs=3, ...) say nothing about
    the comparison, so they go in the header, not in a column. A single run
    has nothing to compare: all its overrides are columns.
    """
    keys = list(dict.fromkeys(k for job in jobs for k in job.overrides))
    if len(jobs) == 1:
        return keys, {}
    varying = [k for k in keys if len({job.overrides.get(k) for job in jobs}) > 1]
    shared = {k: jobs[0].overrides[k] for k in keys if k not in varying}
    return varying, shared


def varying_record(jobs: list[Job]) -> tuple[list[str], dict[str, str]]:
    """(run.yaml fields that differ between jobs, those every job shares), as for the overrides; but a
    single run's record is all shared: its header says what it ran on. Jobs without run.yaml are left out."""
    records = [job.record for job in jobs if job.record is not None]
    keys = list(dict.fromkeys(k for record in records for k in record))
    varying = [k for k in keys if len({record.get(k) for record in records}) > 1]
    return varying, {k: records[0][k] for k in keys if k not in varying}


def label(job: Job, keys: list[str]) -> str:
    """A job's name in legends: its varying overrides, e.g. `optim=adam scheduler=step`."""
    parts = [f"{k}={_short(job.overrides[k])}" for k in keys if k in job.overrides]
    return f"{job.name}: {' '.join(parts)}" if parts else job.name


def sort_jobs(jobs: list[Job]) -> list[Job]:
    """Best monitored value first; jobs without one (crashed, no logger) last, in their own order."""
    def key(job: Job):
        best = job.best(job.monitor)
        if best is None:
            return (1, 0.0)
        return (0, -best if job.mode == "max" else best)

    return sorted(jobs, key=key)


def table(jobs: list[Job]) -> tuple[list[str], list[list]]:
    """Header and rows: job, varying overrides and recorded fields, monitored best/final, other val and test
    metrics, time, error."""
    keys, _ = varying_overrides(jobs)
    fields, _ = varying_record(jobs)
    monitor = jobs[0].monitor
    tags = {t for job in jobs for t in job.series}
    val_tags = sorted(t for t in tags if t.startswith("val/") and t != monitor and not t.endswith("_best"))
    test_tags = sorted(t for t in tags if t.startswith("test/"))
    header = ["job", *keys, *fields, f"best {monitor}", f"final {monitor}", *(f"final {t}" for t in val_tags),
              *test_tags, "epochs", "train_s", "wall_s", "error"]
    pruned = any(job.pruned_after is not None for job in jobs)
    if pruned:
        header.insert(-1, "pruned")
    rows = []
    for job in sort_jobs(jobs):
        rows.append([
            job.name, *(job.overrides.get(k, "") for k in keys), *((job.record or {}).get(k, "") for k in fields),
            job.best(job.monitor), job.final(job.monitor), *(job.final(t) for t in val_tags),
            *(job.final(t) for t in test_tags), job.epochs, job.train_s, job.wall_s,
            *([f"after epoch {job.pruned_after}" if job.pruned_after is not None else ""] if pruned else []),
            job.error or ("" if job.series.get(job.monitor) or job.pruned_after is not None else
                          f"no {job.monitor} logged (logger=none, stopped early, or still running?)"),
        ])
    return header, rows


def _fmt(value, column: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.1f}" if column.endswith("_s") else _metric(value)
    if isinstance(value, str):
        value = _short(value)
    return str(value).replace("|", "\\|")


def _metric(value: float) -> str:
    """0.9843, 12.3; below 0.01 four significant digits (a regression's MSE of 1.012e-04, not 0.0001)."""
    if abs(value) >= 100:
        return f"{value:.1f}"
    return f"{value:.3e}" if 0 < abs(value) < 0.01 else f"{value:.4f}"


def _short(text: str) -> str:
    """An Optuna-drawn override such as optim.lr=0.0024555625459022705 as 0.002456 (the CSV keeps it whole)."""
    if len(text) <= 8 or "." not in text:  # integers and short values stay as typed
        return text
    try:
        return f"{float(text):.4g}"
    except ValueError:
        return text


def write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows([["" if v is None else v for v in row] for row in rows])


def write_markdown(path: Path, source: Path, jobs: list[Job], header: list[str], rows: list[list],
                   search: dict | None) -> None:
    _, shared = varying_overrides(jobs)
    failed = sum(job.error is not None for job in jobs)
    pruned = sum(job.pruned_after is not None for job in jobs)
    lines = [f"# Report: {source}", "",
             f"{len(jobs)} job(s), {failed} failed{f', {pruned} pruned by the search' if pruned else ''}; sorted by the best {jobs[0].monitor} ({jobs[0].mode}). "
             f"Times in seconds: train_s is training alone (validation excluded), wall_s the whole job.", ""]
    if shared:
        lines += ["Shared by every job: `" + " ".join(f"{k}={v}" for k, v in shared.items()) + "`", ""]
    _, recorded = varying_record(jobs)
    if recorded:
        unrecorded = sum(job.record is None for job in jobs)
        lines += [f"Recorded{'' if len(jobs) == 1 else ' alike by every job'} (run.yaml): "
                  + ", ".join(f"{k} {v}" for k, v in recorded.items())
                  + (f" ({unrecorded} job(s) without run.yaml left out)" if unrecorded else ""), ""]
    if search and "best_params" in search:
        params = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in search["best_params"].items())
        lines += [f"Optuna search: best value {_metric(search['best_value'])} with `{params}` "
                  f"(optimization_results.yaml; the whole study, including earlier continued runs).", ""]
    lines += ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(_fmt(v, c) for v, c in zip(row, header)) + " |" for row in rows]
    keys, _ = varying_overrides(jobs)
    configs = configurations(jobs, keys)
    if configs:
        test_tags = sorted({t for job in jobs for t in job.series if t.startswith("test/")})
        lines += ["", *section(configs, jobs[0].monitor, jobs[0].mode, test_tags, left_out(jobs, configs))]
    elif len(jobs) > 1:
        lines += ["", "One run per configuration: differences between jobs cannot be told from run-to-run noise. "
                      "Sweep seeds too (e.g. `seed=0,1,2`) for means, confidence intervals and verdicts."]
    lines += ["", "![curves](curves.png)", ""]
    path.write_text("\n".join(lines))


def plot_curves(path: Path, jobs: list[Job]) -> None:
    """The monitored validation metric, the validation loss and the training loss per epoch, all jobs overlaid."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    keys, _ = varying_overrides(jobs)
    monitor = jobs[0].monitor
    # The training counterpart of the monitored metric where there is no train/loss (the VAE: train/elbo).
    train = "train/loss" if any("train/loss" in j.series for j in jobs) else monitor.replace("val/", "train/", 1)
    panels = [t for t in dict.fromkeys([monitor, "val/loss", train]) if any(t in j.series for j in jobs)]
    if not panels:
        panels = [monitor]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    configs = configurations(jobs, keys)
    for ax, tag in zip(axes[0], panels):
        if configs:  # a seed sweep: each configuration's mean over seeds, with a band of +/- one std
            for i, config in enumerate(configs):
                _mean_curve(ax, [job.series.get(tag, []) for job in config.jobs.values()], i,
                            f"{config.label} ({len(config.jobs)} seeds)")
        for i, job in enumerate([] if configs else jobs):
            points = job.series.get(tag)
            if points:
                ax.plot([e + 1 for e, _ in points], [v for _, v in points], marker="." if len(points) < 30 else None,
                        linestyle=("-", "--", ":")[i // 10 % 3],  # the colour cycle has 10 colours
                        label=label(job, keys))
        ax.set_title(tag)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        # Below the panels (bbox_inches="tight" keeps it in the file), so it never hides a curve.
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(3, len(labels)),
                   fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def _mean_curve(ax, runs: list[list[tuple[int, float]]], i: int, name: str) -> None:
    """The mean over runs at each epoch they all reached, and a band of +/- one standard deviation."""
    by_epoch = [dict(points) for points in runs if points]
    epochs = sorted(set.intersection(*(set(points) for points in by_epoch))) if by_epoch else []
    if not epochs:
        return
    values = [[points[e] for points in by_epoch] for e in epochs]
    mean = [sum(v) / len(v) for v in values]
    std = [math.sqrt(sum((x - m) ** 2 for x in v) / max(len(v) - 1, 1)) for v, m in zip(values, mean)]
    x = [e + 1 for e in epochs]
    (line,) = ax.plot(x, mean, marker="." if len(x) < 30 else None, linestyle=("-", "--", ":")[i // 10 % 3], label=name)
    ax.fill_between(x, [m - s for m, s in zip(mean, std)], [m + s for m, s in zip(mean, std)], color=line.get_color(),
                    alpha=0.2, linewidth=0)
