"""python -m src.report on real sweeps and runs of src.train (tiny data, subprocesses)."""

import csv
import os
import subprocess
import sys

import pytest

from src.report import ReportError, make_report
from src.utils.resolvers import PROJECT_ROOT

QUIET = ["accelerator=cpu", "trainer.enable_progress_bar=false", "callbacks.progress_bar=null",
         "trainer.enable_model_summary=false", "data.batch_size=16", "data.eval_batch_size=20", "data.download=false",
         "model=softmax", "model.impl=torch", "optim=sgd", "callbacks.test_figures=null"]


def run(args, env, timeout=240):
    return subprocess.run([sys.executable, "-m", *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def read_rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def sweep_2x2(tmp_path_factory, data_dir):
    """2 learning rates x 2 loggers (so both metric readers run), 2 epochs each."""
    log_dir = tmp_path_factory.mktemp("logs")
    env = {**os.environ, "DATA_DIR": str(data_dir), "OMP_NUM_THREADS": "1"}
    proc = run(["src.train", "-m", *QUIET, "trainer.max_epochs=2", "optim.lr=0.0001,0.5", "logger=tensorboard,csv",
                f"paths.log_dir={log_dir}"], env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (sweep,) = (log_dir / "train" / "multiruns").iterdir()
    return sweep


@pytest.mark.slow
def test_2x2_sweep_gives_4_job_dirs_and_a_report_with_4_sorted_rows(sweep_2x2):
    assert sorted(p.name for p in sweep_2x2.iterdir() if p.is_dir()) == ["0", "1", "2", "3"]
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "src.report", str(sweep_2x2)], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert not {"torch", "lightning"} & imported  # a report takes a second, not an import of torch

    rows = read_rows(sweep_2x2 / "report.csv")
    assert len(rows) == 4
    # Only what differs between jobs is a column; the rest is shared.
    assert {(r["optim.lr"], r["logger"]) for r in rows} == {(lr, lg) for lr in ("0.0001", "0.5") for lg in ("tensorboard", "csv")}
    assert "trainer.max_epochs" not in rows[0]
    for r in rows:
        assert r["epochs"] == "2" and r["error"] == ""
        assert 0 <= float(r["best val/acc"]) <= 1 and 0 <= float(r["test/acc"]) <= 1
        assert float(r["best val/acc"]) >= float(r["final val/acc"])
        assert float(r["train_s"]) > 0 and float(r["wall_s"]) > 0
    best = [float(r["best val/acc"]) for r in rows]
    assert best == sorted(best, reverse=True)
    # Both loggers logged the same runs: the readers must agree.
    by_logger = {(r["optim.lr"], r["logger"]): r for r in rows}
    for lr in ("0.0001", "0.5"):
        tb, csv_ = by_logger[lr, "tensorboard"], by_logger[lr, "csv"]
        assert float(tb["final val/loss"]) == pytest.approx(float(csv_["final val/loss"]), rel=1e-5)
    # The lr=0.5 jobs learn the toy set, lr=1e-4 ones barely move: the order says so.
    assert {rows[0]["optim.lr"], rows[1]["optim.lr"]} == {"0.5"}

    md = (sweep_2x2 / "report.md").read_text()
    table_rows = [line for line in md.splitlines() if line.startswith("| ") and not line.startswith("| ---")]
    assert len(table_rows) == 1 + 4  # header + 4 jobs
    assert "trainer.max_epochs=2" in md  # shared overrides in the header
    assert (sweep_2x2 / "curves.png").stat().st_size > 10_000


@pytest.mark.slow
def test_crashed_job_appears_with_its_error(subprocess_env, tmp_path):
    # Job 0 holds out (nearly) everything for validation and fails in setup; job 1 runs.
    proc = run(["src.train", "-m", *QUIET, "trainer.max_epochs=1", "logger=csv", "data.val_fraction=0.999,0.2",
                f"paths.log_dir={tmp_path}"], subprocess_env)
    assert proc.returncode != 0
    (sweep,) = (tmp_path / "train" / "multiruns").iterdir()
    make_report(sweep)
    rows = read_rows(sweep / "report.csv")
    assert [r["job"] for r in rows] == ["1", "0"]  # the job with metrics first
    assert rows[0]["error"] == "" and rows[0]["best val/acc"] != ""
    assert "leaves no train or no validation data" in rows[1]["error"]
    assert rows[1]["best val/acc"] == "" and rows[1]["epochs"] == "0"
    assert "1 failed" in (sweep / "report.md").read_text()


@pytest.mark.slow
def test_single_run_report(subprocess_env, tmp_path):
    proc = run(["src.train", *QUIET, "trainer.max_epochs=2", "optim.lr=0.3", f"paths.log_dir={tmp_path}"], subprocess_env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = (tmp_path / "train" / "runs").iterdir()
    written = make_report(run_dir)
    assert [p.name for p in written] == ["report.md", "report.csv", "curves.png"]
    (row,) = read_rows(run_dir / "report.csv")
    assert row["job"] == run_dir.name and row["optim.lr"] == "0.3" and row["epochs"] == "2"
    assert float(row["test/acc"]) > 0.5  # the toy set is easy


def test_wrong_path_gives_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReportError, match="is not a run or sweep dir: it has no .hydra/ folder"):
        make_report(tmp_path / "empty")
    with pytest.raises(ReportError, match="does not exist"):
        make_report(tmp_path / "missing")
    proc = subprocess.run([sys.executable, "-m", "src.report", str(tmp_path / "missing")], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"Error: {tmp_path / 'missing'} does not exist") and "Traceback" not in proc.stderr


def test_drawn_floats_are_short_in_the_table_and_legend_but_whole_in_the_csv(tmp_path):
    from src.report.read import Job
    from src.report.write import label, table, varying_overrides, write_csv, write_markdown

    jobs = [Job(tmp_path / str(i), {"optim.lr": lr, "data.batch_size": "12345678901", "seed": "1"},
                series={"val/acc": [(0, acc)], "train/loss": [(0, 1.0)]})
            for i, (lr, acc) in enumerate([("0.0024555625459022705", 0.9), ("0.01", 0.95)])]
    jobs[1].overrides["data.batch_size"] = "64"
    assert varying_overrides(jobs) == (["optim.lr", "data.batch_size"], {"seed": "1"})
    assert label(jobs[0], ["optim.lr", "data.batch_size"]) == "0: optim.lr=0.002456 data.batch_size=12345678901"
    header, rows = table(jobs)
    assert [r[0] for r in rows] == ["1", "0"]  # the better val/acc first
    write_markdown(tmp_path / "r.md", tmp_path, jobs, header, rows, None)
    write_csv(tmp_path / "r.csv", header, rows)
    assert "| 0 | 0.002456 | 12345678901 |" in (tmp_path / "r.md").read_text()
    assert "0.0024555625459022705" in (tmp_path / "r.csv").read_text()


def test_the_error_column_holds_the_exception_message_not_its_last_detail():
    from src.utils.errors import exception_message

    hydra_error = """Traceback (most recent call last):
  File "/x/hydra/_internal/instantiate/_instantiate2.py", line 92, in _call_target
    return _target_(*args, **kwargs)
hydra.errors.InstantiationException: Error in call to target 'lightning.pytorch.trainer.trainer.Trainer':
MisconfigurationException('Trainer was configured with `enable_progress_bar=False` but found a bar.')
full_key: trainer
"""
    assert exception_message(hydra_error) == (
        "hydra.errors.InstantiationException: Error in call to target 'lightning.pytorch.trainer.trainer.Trainer': "
        "MisconfigurationException('Trainer was configured with `enable_progress_bar=False` but found a bar.')")
    assert exception_message("Traceback (most recent call last):\n  File \"a.py\", line 1\nValueError: bad\n") == \
        "ValueError: bad"
    assert exception_message("") == "failed (empty error.txt)"


def test_small_metrics_keep_their_significant_digits_in_report_md(tmp_path):
    from src.report.read import Job
    from src.report.write import table, write_markdown

    # A linear regression's MSE is ~1e-4: four decimals would print 0.0001 for every job and seed.
    def job(i, lr, seed, mse):
        return Job(tmp_path / str(i), {"optim.lr": lr, "seed": str(seed)}, monitor="val/mse", mode="min",
                   series={"val/mse": [(0, 0.5), (1, mse)], "val/loss": [(1, 0.0512)], "test/mse": [(1, mse * 1.1)]})

    jobs = [job(0, "0.1", 0, 1.0e-4), job(1, "0.1", 1, 1.024e-4), job(2, "0.2", 0, 3.0e-4), job(3, "0.2", 1, 123.456)]
    header, rows = table(jobs)
    write_markdown(tmp_path / "r.md", tmp_path, jobs, header, rows, {"best_params": {}, "best_value": 1.0e-4})
    md = (tmp_path / "r.md").read_text()
    assert "| 1 | 0.1 | 1 | 1.024e-04 | 1.024e-04 | 0.0512 | 1.126e-04 |" in md  # usual values as before: 0.0512
    assert "| 3 | 0.2 | 1 | 0.5000 | 123.5 | 0.0512 | 135.8 |" in md
    assert "| optim.lr=0.1 | 2 | 0.0001012 +/- 1.7e-06 [" in md  # over seeds: mean +/- std
    assert "Optuna search: best value 1.000e-04 with" in md
