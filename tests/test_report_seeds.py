"""src.report on a sweep over seeds: mean +/- std and a confidence interval per configuration, and the
verdict of each paired comparison with the best one."""

from pathlib import Path

import pytest

from src.report import make_report
from src.report.read import Job
from src.report.seeds import configurations, section
from src.report.write import varying_overrides
from tests.test_report import QUIET, read_rows, run


def job(i: int, lr: str, seed: int, val_acc: float, test_acc: float) -> Job:
    return Job(Path(str(i)), {"optim.lr": lr, "seed": str(seed)},
               series={"val/acc": [(0, val_acc - 0.1), (1, val_acc)], "test/acc": [(1, test_acc)]})


def test_each_configuration_is_summarised_over_its_seeds_and_compared_seed_by_seed():
    # lr 0.1 beats lr 0.3 by exactly 1 point at every seed: a paired test sees it through the seeds' spread
    # (an unpaired one would not: the seeds differ by 10 points). lr 0.2 differs by +1, -1, +0.5
    # (scipy.stats.ttest_rel: p = 0.81).
    best = {0: 0.80, 1: 0.90, 2: 0.70}
    jobs = [job(3 * k + s, lr, s, best[s] - shift[s], 0.5) for k, (lr, shift) in enumerate(
        [("0.1", {0: 0, 1: 0, 2: 0}), ("0.3", {0: 0.01, 1: 0.01, 2: 0.01}), ("0.2", {0: 0.01, 1: -0.01, 2: 0.005})])
        for s in range(3)]
    keys, _ = varying_overrides(jobs)
    configs = configurations(jobs, keys)
    assert [c.label for c in configs] == ["optim.lr=0.1", "optim.lr=0.3", "optim.lr=0.2"]
    text = "\n".join(section(configs, "val/acc", "max", ["test/acc"]))
    # Mean +/- std [95% CI]: 80 +/- 10, t(0.975, 2) = 4.303, 4.303 * 10 / sqrt(3) = 24.84.
    assert "| optim.lr=0.1 | 3 | 80 +/- 10 [55.16, 104.8] | 50 +/- 0 [50, 50] |" in text
    assert "Compared with the best configuration, optim.lr=0.1** (the highest mean best val/acc)" in text
    assert "optim.lr=0.1 vs optim.lr=0.3: +1 +/- 0 points (p = 0), larger than the noise at n=3" in text
    assert "optim.lr=0.1 vs optim.lr=0.2: +0.17 +/- 2.6 points (p = 0.81), not distinguishable at n=3" in text
    assert "Over the 2 comparison(s), Holm's step-down correction" in text


def test_a_configuration_with_a_failed_seed_is_summarised_over_the_seeds_it_has():
    jobs = [job(s, "0.1", s, 0.8 + s / 100, 0.5) for s in range(3)] + [job(3 + s, "0.2", s, 0.7, 0.5) for s in range(3)]
    jobs[5].series = {}  # lr 0.2, seed 2: failed before logging
    keys, _ = varying_overrides(jobs)
    text = "\n".join(section(configurations(jobs, keys), "val/acc", "max", ["test/acc"]))
    assert "| optim.lr=0.1 | 3 | 81 +/- 1 " in text and "| optim.lr=0.2 | 2 (1 without a result) | 70 +/- 0 " in text
    assert "each is summarised over its own seeds, and a comparison uses the seeds both have" in text
    # The seeds both have, 0 and 1: differences of 10 and 11 points (scipy.stats.ttest_rel: p = 0.030).
    assert "optim.lr=0.1 vs optim.lr=0.2: +11 +/- 6.4 points (p = 0.03), larger than the noise at n=2" in text


def test_a_sweep_of_seeds_alone_is_summarised_with_nothing_to_compare():
    jobs = [job(s, "0.1", s, 0.8 + s / 100, 0.5) for s in range(3)]  # one configuration, three seeds
    text = "\n".join(section(configurations(jobs, ["seed"]), "val/acc", "max", ["test/acc"]))
    assert "| all jobs | 3 | 81 +/- 1 " in text and "Compared" not in text and "Method" not in text


def test_one_seed_per_configuration_gives_no_statistics():
    jobs = [job(0, "0.1", 0, 0.9, 0.9), job(1, "0.2", 0, 0.8, 0.8), job(2, "0.2", 1, 0.8, 0.8)]
    assert configurations(jobs, varying_overrides(jobs)[0]) is None  # lr 0.1 ran one seed
    assert configurations(jobs[:1] + jobs[1:2], ["optim.lr"]) is None  # no seed sweep


def fake_run(path: Path, overrides: list[str], seed: int | None, val_acc: float) -> None:
    """A run dir as src.train leaves it with logger=csv: Hydra's overrides and config, and a metrics.csv."""
    (path / ".hydra").mkdir(parents=True)
    (path / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    (path / ".hydra" / "config.yaml").write_text("" if seed is None else f"seed: {seed}\n")
    (path / "csv").mkdir()
    (path / "csv" / "metrics.csv").write_text(f"epoch,step,train/loss,val/acc\n0,9,0.5,\n0,9,,{val_acc}\n")


def test_runs_with_and_without_a_seed_override_are_paired_by_the_seed_they_ran(tmp_path):
    # A folder of single runs: a run started without seed= ran its config's seed (42).
    fake_run(tmp_path / "a", ["optim=adam", "seed=0"], 0, 0.90)
    fake_run(tmp_path / "b", ["optim=adam"], 42, 0.92)
    fake_run(tmp_path / "c", ["optim=sgd", "seed=0"], 0, 0.80)
    fake_run(tmp_path / "d", ["optim=sgd"], 42, 0.81)
    fake_run(tmp_path / "e", ["optim=sgd"], None, 0.99)  # no seed anywhere: cannot be paired
    fake_run(tmp_path / "f", ["optim=adam"], 42, 0.10)  # optim=adam at seed 42 again
    make_report(tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "| optim=adam | 2 | 91 +/- 1.4 " in md and "| optim=sgd | 2 | 80.5 +/- 0.71 " in md
    # Paired at seeds 0 and 42: differences of 10 and 11 points (scipy.stats.ttest_rel: p = 0.030).
    assert "optim=adam vs optim=sgd: +10 +/- 6.4 points (p = 0.03), larger than the noise at n=2" in md
    assert "Left out of this table: e, f (no seed in the overrides or the config, or a second job" in md
    assert len(read_rows(tmp_path / "report.csv")) == 6  # the main table keeps every run


@pytest.mark.slow
def test_a_real_seed_sweep_is_reported_over_seeds(subprocess_env, tmp_path):
    # Monitored: the validation loss (lower is better), so the better learning rate wins every seed.
    proc = run(["src.train", "-m", *QUIET[:4], "data=blobs", "model=logreg", "optim=sgd_scratch", "optim.lr=0.01,0.5",
                "seed=0,1", "trainer.max_epochs=3", "monitor.metric=val/loss", "monitor.mode=min", "logger=csv",
                "callbacks.small_data_figures=null", f"paths.log_dir={tmp_path}"], subprocess_env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (sweep,) = (tmp_path / "train" / "multiruns").iterdir()
    make_report(sweep)
    md = (sweep / "report.md").read_text()
    rows = read_rows(sweep / "report.csv")
    losses = [float(r["best val/loss"]) for r in rows if r["optim.lr"] == "0.5"]
    assert len(losses) == 2 and f"| optim.lr=0.5 | 2 | {sum(losses) / 2:.4g} +/- " in md
    assert "Compared with the best configuration, optim.lr=0.5** (the lowest mean best val/loss)" in md
    assert "optim.lr=0.5 vs optim.lr=0.01: +" in md and "larger than the noise at n=2" in md
    assert (sweep / "curves.png").stat().st_size > 0
