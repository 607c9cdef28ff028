"""run.yaml: what each job records beside .hydra/ (command, commit, versions, device), and src.report's
comparison of it across jobs. Real `python -m src.train` runs on the blobs (no data files)."""

import os
import platform
import shlex
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from src.report import make_report
from src.report.read import read_job
from src.utils import run_record
from src.utils.resolvers import PROJECT_ROOT
from tests.test_report import read_rows

FAST = ["data=blobs", "accelerator=cpu", "trainer.max_epochs=1", "trainer.enable_progress_bar=false",
        "callbacks.progress_bar=null", "trainer.enable_model_summary=false", "callbacks.small_data_figures=null",
        "callbacks.test_figures=null", "logger=csv"]
# One thread, where torch's default here is one per core: the record holds the job's count, not a default.
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def train(args, env=ENV):
    proc = subprocess.run([sys.executable, "-m", "src.train", *args], cwd=PROJECT_ROOT, env=env, capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def record(run_dir: Path) -> dict:
    return yaml.safe_load((run_dir / "run.yaml").read_text())


def overrides(run_dir: Path) -> list[str]:
    return OmegaConf.to_container(OmegaConf.load(run_dir / ".hydra" / "overrides.yaml"))


def git(*args) -> str:
    return subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> tuple[Path, list[str]]:
    """(sweep dir, its command line's arguments): logistic regression from scratch at 2 learning rates."""
    log_dir = tmp_path_factory.mktemp("logs")
    args = ["-m", *FAST, "model=logreg", "optim=sgd_scratch", "optim.lr=0.1,0.5", f"paths.log_dir={log_dir}"]
    train(args)
    (sweep_dir,) = (log_dir / "train" / "multiruns").iterdir()
    return sweep_dir, args


@pytest.mark.slow
def test_each_job_records_commit_versions_device_and_a_rerun_line_of_its_own(sweep):
    sweep_dir, args = sweep
    assert set(run_record.PACKAGES) == {"torch", "lightning", "hydra-core", "omegaconf", "torchmetrics"}
    reruns = []
    for job in ("0", "1"):
        got = record(sweep_dir / job)
        assert got["command"] == shlex.join(["python", "-m", "src.train", *args])
        rerun = shlex.split(got["rerun"])
        assert rerun == ["python", "-m", "src.train", *overrides(sweep_dir / job)]
        reruns.append(rerun)
        assert got["git"] == {"commit": git("rev-parse", "HEAD"), "dirty": git("status", "--porcelain") != ""}
        assert got["versions"] == {"python": platform.python_version(),
                                   **{name: metadata.version(name) for name in run_record.PACKAGES}}
        assert got["device"]["threads"] == 1
        assert got["device"]["accelerator"] == "cpu" and not {"gpu", "cuda"} & set(got["device"])
        if Path("/proc/cpuinfo").is_file():
            assert f"model name\t: {got['device']['cpu']}\n" in Path("/proc/cpuinfo").read_text()
    assert "optim.lr=0.1" in reruns[0] and "optim.lr=0.5" in reruns[1]  # each job its own value, not the sweep's


@pytest.mark.slow
def test_the_rerun_line_of_a_search_trial_reruns_it_alone_to_the_same_result(tmp_path):
    # hparams_search sets hydra.mode=MULTIRUN itself: its trial's rerun line must turn that off.
    train(["hparams_search=mlp_optuna", "hydra.sweeper.n_trials=1", *FAST, f"paths.log_dir={tmp_path}"])
    (sweep_dir,) = (tmp_path / "train" / "multiruns").iterdir()
    trial = sweep_dir / "0"
    rerun = shlex.split(record(trial)["rerun"])
    assert rerun[:3] == ["python", "-m", "src.train"] and rerun[-1] == "hydra.mode=RUN"
    assert any(arg.startswith("optim.lr=") for arg in rerun)  # the value Optuna drew
    train(rerun[3:])
    (run_dir,) = (tmp_path / "train" / "runs").iterdir()
    assert [p.name for p in (tmp_path / "train" / "multiruns").iterdir()] == [sweep_dir.name]  # no new search
    assert overrides(run_dir) == overrides(trial)
    # Same machine, versions and threads: the same numbers, bit for bit.
    first, again = read_job(trial), read_job(run_dir)
    for tag in ("val/loss", "val/acc", "test/loss"):
        assert again.series[tag] == first.series[tag]


def test_the_record_holds_no_commit_outside_git_and_without_git(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))  # no repository above tmp_path counts
    monkeypatch.setattr(run_record, "PROJECT_ROOT", tmp_path)
    assert run_record.git_state() == {"commit": None, "dirty": None}
    monkeypatch.setattr(run_record, "PROJECT_ROOT", PROJECT_ROOT)
    monkeypatch.setenv("PATH", str(tmp_path))  # no git program
    assert run_record.git_state() == {"commit": None, "dirty": None}


def test_a_record_that_cannot_be_written_only_warns(monkeypatch, caplog):
    from src.utils import program

    def fail(cfg, result):
        raise IsADirectoryError("run.yaml")

    monkeypatch.setattr(program, "write_run_record", fail)
    program.record_run(None, {"status": "completed"})  # returns: the job's own result stands
    assert "run.yaml not written: IsADirectoryError: run.yaml" in caplog.text


def copy_job(job_dir: Path, to: Path, **changes) -> Path:
    """A copy of a job dir whose run.yaml has `changes` ({section: {key: value}}), or none when changes is None."""
    shutil.copytree(job_dir, to)
    got = record(to)
    for section, values in changes.items():
        got[section].update(values)
    (to / "run.yaml").write_text(yaml.safe_dump(got, sort_keys=False))
    return to


@pytest.mark.slow
def test_report_makes_columns_of_the_recorded_fields_that_differ_and_lists_the_rest_above(sweep, tmp_path):
    job_dir = sweep[0] / "0"
    ran = record(job_dir)
    copy_job(job_dir, tmp_path / "0")
    copy_job(job_dir, tmp_path / "1", versions={"torch": "2.99.0"}, device={"threads": 4})
    (copy_job(job_dir, tmp_path / "2") / "run.yaml").unlink()  # a run from before run.yaml
    make_report(tmp_path)
    rows = {row["job"]: row for row in read_rows(tmp_path / "report.csv")}
    assert {job: (row["torch"], row["threads"]) for job, row in rows.items()} == {
        "0": (ran["versions"]["torch"], "1"), "1": ("2.99.0", "4"), "2": ("", "")}
    assert not {"commit", "python", "lightning", "cpu", "accelerator", "command", "rerun"} & set(rows["0"])
    assert all(row["best val/acc"] != "" for row in rows.values())  # the job without run.yaml still reports
    md = (tmp_path / "report.md").read_text()
    (line,) = [line for line in md.splitlines() if line.startswith("Recorded")]
    commit = f"{ran['git']['commit'][:7]} ({'dirty' if ran['git']['dirty'] else 'clean'})"
    assert line.startswith(f"Recorded alike by every job (run.yaml): commit {commit}, python {ran['versions']['python']}, ")
    assert f"lightning {ran['versions']['lightning']}" in line and f"cpu {ran['device']['cpu']}" in line
    assert "torch " not in line and "threads" not in line
    assert line.endswith("(1 job(s) without run.yaml left out)")


@pytest.mark.slow
def test_report_of_a_single_run_lists_its_record_above_the_table(sweep, tmp_path):
    run_dir = copy_job(sweep[0] / "1", tmp_path / "run")
    make_report(run_dir)
    (row,) = read_rows(run_dir / "report.csv")
    assert "torch" not in row and "threads" not in row
    md = (run_dir / "report.md").read_text()
    assert f"torch {record(run_dir)['versions']['torch']}," in md and "accelerator cpu, " in md and "threads 1" in md
