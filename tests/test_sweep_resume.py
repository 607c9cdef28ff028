"""A sweep killed in the middle of a job is continued by its own command line plus its dir and
hydra.sweeper.resume=true: ended jobs stay as they were, the killed job ends as if never stopped, the
rest run; a changed sweep or a dir that is not a sweep is refused and nothing is touched."""

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import torch
import yaml
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode
from lightning.pytorch import Callback
from omegaconf import open_dict

from src.utils.sweep_dir import batches, begin, check_same_sweep, job_result
from src.report import make_report
from src.report.read import _read_csv, read_job
from src.utils.errors import SweepError
from src.utils.resolvers import PROJECT_ROOT
from tests.conftest import CONF_DIR, FAST
from tests.test_crash import RECIPE
from tests.test_report import read_rows


class HangOnce(Callback):
    """In sweep job `job`, at epoch `epoch` batch `batch`: writes `marker`, then stands still for the test to
    kill the sweep. Not again once the marker exists, so the resumed sweep (same command line) runs through."""

    def __init__(self, job: int, epoch: int, batch: int, marker: str, seconds: float = 600):
        self.job, self.epoch, self.batch, self.marker, self.seconds = job, epoch, batch, Path(marker), seconds

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.get().mode == RunMode.MULTIRUN and (HydraConfig.get().job.num, trainer.current_epoch, batch_idx) == (self.job, self.epoch, self.batch) \
                and not self.marker.exists():
            for logger in trainer.loggers:  # as a writer's periodic flush would: the killed attempt's logs reach the disk
                logger.save()
            self.marker.write_text("hanging")
            time.sleep(self.seconds)


def hang_args(marker: Path, batch: int = 4, seconds: float = 600) -> list[str]:
    return ["+callbacks.hang._target_=tests.test_sweep_resume.HangOnce", "+callbacks.hang.job=1",
            "+callbacks.hang.epoch=1", f"+callbacks.hang.batch={batch}", f"+callbacks.hang.marker={marker}",
            f"+callbacks.hang.seconds={seconds}"]


def start(args: list[str], env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "src.train", *args], cwd=PROJECT_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def kill_when_hanging(proc: subprocess.Popen, marker: Path) -> None:
    deadline = time.monotonic() + 240
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert marker.exists(), proc.communicate()[0][-3000:]
    os.kill(proc.pid, signal.SIGKILL)  # the sweep's own process, in job 1's epoch 1: after its epoch 0 checkpoints
    proc.communicate()


def finish(args: list[str], env) -> str:
    proc = subprocess.run([sys.executable, "-m", "src.train", *args], cwd=PROJECT_ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    return proc.stdout + proc.stderr


def snapshot(folder: Path) -> dict:
    """Every file under folder: (size, mtime)."""
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_a_killed_sweep_resumes_to_the_uninterrupted_result(subprocess_env, tmp_path):
    log_dir, marker = tmp_path / "logs", tmp_path / "hanging"
    args = ["-m", *FAST, *RECIPE, "logger=[tensorboard,csv]", "seed=0,1,2", f"paths.log_dir={log_dir}",
            *hang_args(marker)]
    kill_when_hanging(start(args, subprocess_env), marker)
    (sweep,) = (log_dir / "train" / "multiruns").iterdir()
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1"]
    assert (sweep / "0" / "run.yaml").is_file() and not (sweep / "1" / "run.yaml").exists()
    assert torch.load(sweep / "1" / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 0
    ended, overrides = snapshot(sweep / "0"), (sweep / "1" / ".hydra" / "overrides.yaml").read_text()

    # A changed sweep is refused with its differences, and touches nothing.
    before = snapshot(sweep)
    proc = subprocess.run([sys.executable, "-m", "src.train", *args[:-6], "seed=0,1", *hang_args(marker),
                           f"hydra.sweep.dir={sweep}", "hydra.sweeper.resume=true"], cwd=PROJECT_ROOT,
                          env=subprocess_env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "was started with another sweep" in proc.stderr and "seed=0,1,2" in proc.stderr and "'seed=0,1'" in proc.stderr
    assert snapshot(sweep) == before

    output = finish([*args, f"hydra.sweep.dir={sweep}", "hydra.sweeper.resume=true"], subprocess_env)
    assert "1 of 3 jobs have ended; running jobs 1, 2 (stopped mid-way, continued in its dir: 1)" in output
    assert "Resuming this job from" in output
    assert snapshot(sweep / "0") == ended  # not run again
    assert (sweep / "1" / ".hydra" / "overrides.yaml").read_text() == overrides
    for job in ("1", "2"):
        assert yaml.safe_load((sweep / job / "run.yaml").read_text())["result"]["status"] == "completed"

    # Job 1 alone, never stopped (its recorded rerun command, with its own log dir).
    rerun = shlex.split(yaml.safe_load((sweep / "1" / "run.yaml").read_text())["rerun"])[3:]
    reference = tmp_path / "reference"
    finish([a if not a.startswith("paths.log_dir=") else f"paths.log_dir={reference}" for a in rerun], subprocess_env)
    (uninterrupted,) = (reference / "train" / "runs").iterdir()
    expected = torch.load(uninterrupted / "checkpoints" / "last.ckpt", weights_only=True)
    got = torch.load(sweep / "1" / "checkpoints" / "last.ckpt", weights_only=True)
    assert got["epoch"] == expected["epoch"] == 2 and got["global_step"] == expected["global_step"]
    for key, value in expected["state_dict"].items():
        assert torch.equal(got["state_dict"][key], value), key

    # The killed attempt's logs past its checkpoint are set aside: each epoch once, as in the uninterrupted run,
    # from the TensorBoard events and from the CSV logs alike.
    resumed, alone = read_job(sweep / "1"), read_job(uninterrupted)
    csv_resumed = _read_csv(sorted((sweep / "1").rglob("metrics.csv")))
    csv_alone = _read_csv(sorted(uninterrupted.rglob("metrics.csv")))
    assert len(list((sweep / "1").rglob("metrics.csv"))) == 2
    for got, expected in ((resumed.series, alone.series), (csv_resumed, csv_alone)):
        assert len(expected["val/acc"]) == 3 and "lr-Adam" in expected and "test/acc" in expected
        assert {t: len(v) for t, v in got.items()} == {t: len(v) for t, v in expected.items()}
        # (time/* are timings; hp/* start as NaN placeholders, which never compare equal)
        assert {t: v for t, v in got.items() if not t.startswith(("time/", "hp/"))} == \
            {t: v for t, v in expected.items() if not t.startswith(("time/", "hp/"))}

    make_report(sweep)
    rows = read_rows(sweep / "report.csv")
    assert sorted(r["job"] for r in rows) == ["0", "1", "2"] and all(r["epochs"] == "3" and not r["error"] for r in rows)

    # Resuming a finished sweep runs nothing.
    before = snapshot(sweep)
    output = finish([*args, f"hydra.sweep.dir={sweep}", "hydra.sweeper.resume=true"], subprocess_env)
    assert "3 of 3 jobs have ended; running none" in output
    assert {p: v for p, v in snapshot(sweep).items() if p.parent != sweep} == \
        {p: v for p, v in before.items() if p.parent != sweep}


@pytest.mark.slow
def test_a_killed_search_resumes_its_trial_and_finishes_its_n_trials(tmp_path):
    from tests.test_search import SEARCH_QUIET, write_tiny_dataset

    write_tiny_dataset(tmp_path / "data", "MNIST")
    env = {**os.environ, "DATA_DIR": str(tmp_path / "data"), "OMP_NUM_THREADS": "1"}
    marker = tmp_path / "hanging"
    args = ["hparams_search=mlp_optuna", "hydra.sweeper.n_trials=3", *SEARCH_QUIET, "trainer.max_epochs=3",
            "logger=csv", f"paths.log_dir={tmp_path / 'logs'}", *hang_args(marker, batch=1)]  # (2 batches an epoch)
    kill_when_hanging(start(args, env), marker)
    (sweep,) = (tmp_path / "logs" / "train" / "multiruns").iterdir()
    storage = f"sqlite:///{sweep / 'optuna.db'}"
    assert [t.state.name for t in optuna.load_study(study_name="mlp_optuna", storage=storage).trials] == \
        ["COMPLETE", "RUNNING"]

    output = finish([*args, f"hydra.sweep.dir={sweep}", "hydra.sweeper.resume=true"], env)
    assert "1 of 3 trials have ended; running job 1 (stopped mid-way, continued in its dir: 1) again, then 1 new" in output
    study = optuna.load_study(study_name="mlp_optuna", storage=storage)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3  # trial 1 run again, not left RUNNING
    for t in study.trials:  # each trial's value is its own job's best
        assert t.value == pytest.approx(read_job(sweep / str(t.number)).best("val/acc"))
        assert yaml.safe_load((sweep / str(t.number) / "run.yaml").read_text())["result"]["value"] == pytest.approx(t.value)
    assert "Resuming this job from" in output and read_job(sweep / "1").epochs == 3
    # The resumed search draws new parameters (its sampler is not simply seeded again: trial 2 would be trial 0).
    assert len({tuple(sorted(t.params.items())) for t in study.trials}) == 3


@pytest.mark.slow
def test_a_sweep_stopped_by_sigterm_runs_the_interrupted_job_again(subprocess_env, tmp_path):
    # SIGTERM (a reboot, `kill`, a cluster's time limit): Lightning ends the epoch, then the job exits.
    log_dir, marker = tmp_path / "logs", tmp_path / "hanging"
    args = ["-m", *FAST, *RECIPE, "logger=csv", "seed=0,1", f"paths.log_dir={log_dir}", *hang_args(marker, seconds=3)]
    proc = start(args, subprocess_env)
    deadline = time.monotonic() + 240
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    (sweep,) = (log_dir / "train" / "multiruns").iterdir()
    assert yaml.safe_load((sweep / "1" / "run.yaml").read_text())["result"] == {"status": "interrupted"}
    output = finish([*args, f"hydra.sweep.dir={sweep}", "hydra.sweeper.resume=true"], subprocess_env)
    assert "1 of 2 jobs have ended; running job 1 (stopped mid-way, continued in its dir: 1)" in output
    # From the last checkpoint written before it stopped (Lightning 2.6 stops before the epoch's own).
    assert "Resuming this job from" in output and any(f"(after epoch {e})" in output for e in (0, 1))
    assert yaml.safe_load((sweep / "1" / "run.yaml").read_text())["result"]["status"] == "completed"
    assert read_job(sweep / "1").epochs == 3 and not (sweep / "1" / "error.txt").exists()


def compose_sweep(tmp_path, *overrides):
    """A sweep's config as Hydra composes it, in tmp_path/sweep (tmp_path None: the default, a new dir)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=CONF_DIR):
        cfg = GlobalHydra.instance().config_loader().load_configuration("train", list(overrides), RunMode.MULTIRUN)
    if tmp_path is not None:
        with open_dict(cfg):
            cfg.hydra.sweep.dir = str(tmp_path / "sweep")
    return cfg


def test_a_resume_needs_the_sweep_dir_and_the_same_sweep(tmp_path):
    with pytest.raises(SweepError, match="add hydra.sweep.dir=<the sweep dir>"):
        check_same_sweep(compose_sweep(None, "hydra.sweeper.resume=true"))  # the default: a new dir
    cfg = compose_sweep(tmp_path, "optim=adam,nadam", "seed=0,1")
    with pytest.raises(SweepError, match="sweep does not exist"):
        check_same_sweep(cfg)
    (tmp_path / "sweep").mkdir()
    with pytest.raises(SweepError, match="has no multirun.yaml, so it is not a sweep's dir"):
        check_same_sweep(cfg)
    begin(cfg, resume=False)
    with pytest.raises(SweepError, match="already holds a sweep; to continue it add hydra.sweeper.resume=true"):
        begin(cfg, resume=False)  # its jobs would be written over
    check_same_sweep(compose_sweep(tmp_path, "optim=adam,nadam", "seed=0,1", "hydra.sweeper.resume=true",
                                  "hydra/launcher=parallel"))  # the same sweep, run otherwise: accepted
    with pytest.raises(SweepError, match=r"optim.lr: 0.001 -> 0.002\n"):
        check_same_sweep(compose_sweep(tmp_path, "optim=adam,nadam", "seed=0,1", "optim.lr=0.002"))
    with pytest.raises(SweepError, match=r"command line overrides: \['optim=adam,nadam', 'seed=0,1'\] -> "
                                         r"\['optim=adam,nadam', 'seed=0,1,2'\]"):
        check_same_sweep(compose_sweep(tmp_path, "optim=adam,nadam", "seed=0,1,2"))
    with pytest.raises(SweepError, match=r"hydra.sweeper.params.seed: \(absent\) -> '0,1'"):
        check_same_sweep(compose_sweep(tmp_path, "optim=adam,nadam", "seed=0,1", "hydra.sweeper.params={seed: '0,1'}"))


def test_a_resume_without_its_dir_stops_before_hydra_makes_any(subprocess_env, tmp_path):
    for search in ([], ["hparams_search=mlp_optuna"]):
        proc = subprocess.run([sys.executable, "-m", "src.train", "-m", "seed=0,1", *search, "hydra.sweeper.resume=true",
                               f"paths.log_dir={tmp_path}"], cwd=PROJECT_ROOT, env=subprocess_env, capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 1 and "Error: hydra.sweeper.resume=true continues a sweep in its own dir: add " \
            "hydra.sweep.dir=<the sweep dir>" in proc.stderr, proc.stderr[-2000:]
        assert not list(tmp_path.iterdir())


def test_a_job_has_ended_when_its_run_yaml_says_so_unless_it_was_interrupted(tmp_path):
    assert job_result(tmp_path) is None  # never started, or killed
    for result, ended in (({"status": "completed", "value": 0.9}, True), ({"status": "failed"}, True),
                          ({"status": "pruned", "epoch": 1}, True), ({"status": "interrupted"}, False)):
        (tmp_path / "run.yaml").write_text(yaml.safe_dump({"command": "python -m src.train", "result": result}))
        assert job_result(tmp_path) == (result if ended else None)
    (tmp_path / "run.yaml").write_text(yaml.safe_dump({"command": "python -m src.train"}))  # from before results
    assert job_result(tmp_path) == {"status": "completed"}


def test_jobs_are_launched_in_runs_of_consecutive_numbers():
    assert list(batches([1, 2, 3, 5, 6, 9], None)) == [(1, [1, 2, 3]), (5, [5, 6]), (9, [9])]
    assert list(batches([0, 1, 2, 3, 4], 2)) == [(0, [0, 1]), (2, [2, 3]), (4, [4])]
    assert list(batches([], 3)) == []
