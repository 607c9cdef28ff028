"""hydra/launcher=parallel: the jobs of a sweep in parallel processes (submitit's local executor, the
SLURM launcher's pickled-job path), with the default launcher's guarantees."""

import os
import shlex

import pytest
import yaml
from hydra import compose, initialize_config_dir

from src.report import make_report
from src.utils.errors import ConfigError
from src.utils.preflight import check_job
from src.utils.resolvers import PROJECT_ROOT
from tests.test_report import QUIET, read_rows, run


@pytest.mark.slow
def test_a_parallel_sweep_runs_each_job_in_its_dir_and_records_a_failure(subprocess_env, tmp_path):
    # Job 1 fails in its own process (the data's split leaves no validation data); job 0 and 2 run.
    jobs = min(2, len(os.sched_getaffinity(0)))  # (no more than the cores: more is refused)
    args = ["-m", "hydra/launcher=parallel", f"hydra.launcher.jobs={jobs}", *QUIET, "trainer.max_epochs=1", "logger=csv",
            "data.val_fraction=0.2,0.999,0.3", f"paths.log_dir={tmp_path}"]
    proc = run(["src.train", *args], {**subprocess_env, "OMP_NUM_THREADS": "2"}, timeout=300)
    assert proc.returncode != 0  # as with the default launcher: the sweep ends, then reports the failure
    assert "leaves no train or no validation data" in proc.stderr
    (sweep,) = (tmp_path / "train" / "multiruns").iterdir()
    assert sorted(p.name for p in sweep.iterdir() if p.name.isdigit()) == ["0", "1", "2"]
    for job in ("0", "1", "2"):
        # 2 jobs at a time, each with 1 thread; the command as typed, not the worker process's own.
        record = yaml.safe_load((sweep / job / "run.yaml").read_text())
        assert record["device"]["threads"] == 1 and record["command"] == shlex.join(["python", "-m", "src.train", *args])
    assert all((sweep / job / "checkpoints" / "last.ckpt").is_file() for job in ("0", "2"))
    assert "leaves no train or no validation data" in (sweep / "1" / "error.txt").read_text()
    make_report(sweep)
    rows = read_rows(sweep / "report.csv")
    assert sorted(r["job"] for r in rows) == ["0", "1", "2"]
    assert [bool(r["error"]) for r in sorted(rows, key=lambda r: r["job"])] == [False, True, False]


def test_the_default_is_one_thread_per_core_and_more_threads_or_ddp_are_refused(tmp_path):
    with initialize_config_dir(version_base="1.3", config_dir=str(PROJECT_ROOT / "conf")):
        cfg = compose("train", overrides=["hydra/launcher=parallel"], return_hydra_config=True)
    assert (cfg.hydra.launcher.jobs, cfg.hydra.launcher.threads) == (len(os.sched_getaffinity(0)), 1)
    cores = len(os.sched_getaffinity(0))
    with pytest.raises(ConfigError, match=f"hydra.launcher.jobs={cores + 1} x hydra.launcher.threads=1 = {cores + 1} "
                                          f"threads at once, more than the {cores} cores"):
        check_job("train", ["hydra/launcher=parallel", f"hydra.launcher.jobs={cores + 1}", f"paths.log_dir={tmp_path}"])
    with pytest.raises(ConfigError, match="hydra.launcher.threads=0 is not allowed: must be an integer >= 1"):
        check_job("train", ["hydra/launcher=parallel", "hydra.launcher.threads=0", f"paths.log_dir={tmp_path}"])
    with pytest.raises(ConfigError, match="trainer.devices=2 cannot run under hydra/launcher=parallel"):
        check_job("train", ["hydra/launcher=parallel", "accelerator=cpu", "trainer.devices=2",
                            f"paths.log_dir={tmp_path}"], in_sweep=True)


@pytest.mark.slow
def test_an_optuna_search_runs_its_trials_in_parallel(data_dir, tmp_path):
    import optuna

    from tests.test_search import search

    env = {**os.environ, "DATA_DIR": str(data_dir)}
    (sweep,) = search(["hparams_search=mlp_optuna", "hydra/launcher=parallel", "hydra.sweeper.n_trials=2",
                       "hydra.sweeper.n_jobs=2"], env, tmp_path)  # 2 trials asked of the study at a time
    study = optuna.load_study(study_name="mlp_optuna", storage=f"sqlite:///{sweep / 'optuna.db'}")
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 2
    assert sorted(p.name for p in sweep.iterdir() if p.name.isdigit()) == ["0", "1"]
