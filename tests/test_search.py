"""hparams_search=...: Hydra's Optuna sweeper over src.train, with the study stored in the sweep dir."""

import csv
import os
import pickle
import subprocess
import sys

import optuna
import torch
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra_plugins.hydra_optuna_sweeper._impl import create_params_from_overrides
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution, LogUniformDistribution

from src.report import make_report
from src.report.read import read_job
from tests.conftest import CONF_DIR, write_tiny_dataset
from tests.test_report import QUIET

# The searched keys (model, optim, batch size) must not be fixed on the command line: a fixed value
# takes the key out of the search space.
SEARCH_QUIET = [a for a in QUIET if not a.startswith(("model", "optim", "data.batch_size"))]
from src.utils.resolvers import PROJECT_ROOT


def search(args, env, log_dir):
    proc = subprocess.run([sys.executable, "-m", "src.train", *args, *SEARCH_QUIET, "trainer.max_epochs=1", "logger=csv",
                           f"paths.log_dir={log_dir}"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return sorted((log_dir / "train" / "multiruns").iterdir())


def mlp_search_with(tmp_path, param: str, n_trials: int):
    """(sweep dir, study) of hparams_search=mlp_optuna with one more search `param` line, on tiny MNIST alone."""
    (tmp_path / "conf" / "hparams_search").mkdir(parents=True)
    (tmp_path / "conf" / "hparams_search" / "custom.yaml").write_text(
        "# @package _global_\ndefaults:\n  - /hparams_search/mlp_optuna\n"
        f"hydra:\n  sweeper:\n    params:\n      {param}\n")
    write_tiny_dataset(tmp_path / "data", "MNIST")
    env = {**os.environ, "DATA_DIR": str(tmp_path / "data"), "OMP_NUM_THREADS": "1"}
    (sweep,) = search(["hparams_search=custom", f"hydra.searchpath=[file://{tmp_path / 'conf'}]",
                       f"hydra.sweeper.n_trials={n_trials}"], env, tmp_path / "logs")
    return sweep, optuna.load_study(study_name="mlp_optuna", storage=f"sqlite:///{sweep / 'optuna.db'}")


def trials(db):
    study = optuna.load_study(study_name="cnn_optuna", storage=f"sqlite:///{db}")
    return study.trials


@pytest.mark.parametrize("name", ["cnn_optuna", "mlp_optuna"])
def test_search_space_is_one_optuna_distribution_per_param(name):
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=CONF_DIR):
        cfg = compose("train", overrides=[f"hparams_search={name}"], return_hydra_config=True)
    sweeper = cfg.hydra.sweeper
    assert sweeper.direction == "maximize" and sweeper.study_name == name  # val/acc, max
    assert OmegaConf.to_container(sweeper, resolve=False)["storage"] == "sqlite:///${hydra.sweep.dir}/optuna.db"
    space, fixed = create_params_from_overrides([f"{k}={v}" for k, v in sweeper.params.items()])
    assert not fixed and len(space) == len(sweeper.params)
    assert isinstance(space["optim.lr"], LogUniformDistribution)
    if name == "mlp_optuna":  # depth and width: lists of layer sizes
        assert "[512,256]" in space["model.hidden"].choices and isinstance(space["model.hidden"], CategoricalDistribution)


@pytest.mark.slow
def test_two_trial_search_records_best_params_and_can_be_continued(subprocess_env, tmp_path):
    (sweep,) = search(["hparams_search=cnn_optuna", "hydra.sweeper.n_trials=2"], subprocess_env, tmp_path)
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1"]
    results = OmegaConf.load(sweep / "optimization_results.yaml")
    assert set(results.best_params) == {"optim", "optim.lr", "optim.weight_decay", "data.batch_size", "model.dropout"}
    first = trials(sweep / "optuna.db")
    assert [t.state.name for t in first] == ["COMPLETE", "COMPLETE"]
    assert results.best_value == max(t.value for t in first)
    # Each trial's value is the best val/acc its job logged (trial n ran in job dir n).
    for t in first:
        assert t.value == pytest.approx(read_job(sweep / str(t.number)).best("val/acc"))

    # Continue the same study from a new search, same sampler seed: its draws move on by the study's trials.
    sweeps = search(["hparams_search=cnn_optuna", "hydra.sweeper.n_trials=1",
                     f"hydra.sweeper.storage=sqlite:///{sweep / 'optuna.db'}"], subprocess_env, tmp_path)
    assert len(sweeps) == 2 and not (sweeps[1] / "optuna.db").exists()
    after = trials(sweep / "optuna.db")
    assert len(after) == 3 and [t.params for t in after[:2]] == [t.params for t in first]
    assert after[2].params not in [t.params for t in first]
    continued = OmegaConf.load(sweeps[1] / "optimization_results.yaml")
    assert continued.best_value == max(t.value for t in after)


@pytest.mark.slow
def test_a_failing_trial_is_recorded_and_the_search_goes_on(tmp_path):
    # A search whose space includes a data set that is missing (no FashionMNIST): those trials fail in setup.
    sweep, study = mlp_search_with(tmp_path, "data: choice(mnist, fashion_mnist)", n_trials=4)
    states = {t.number: (t.params["data"], t.state.name) for t in study.trials}
    assert len(states) == 4 and {"COMPLETE", "FAIL"} <= {s for _, s in states.values()}
    for number, (data, state) in states.items():  # the sampler's seed fixes which trials drew which data
        assert state == ("COMPLETE" if data == "mnist" else "FAIL")
        assert (sweep / str(number) / "error.txt").exists() == (state == "FAIL")
    assert OmegaConf.load(sweep / "optimization_results.yaml").best_params.data == "mnist"
    make_report(sweep)
    failed = [r for r in csv.DictReader(open(sweep / "report.csv")) if r["error"]]
    assert failed and all("Fashion-MNIST not found" in r["error"] for r in failed)


@pytest.mark.slow
def test_values_the_sweeper_chooses_are_checked_in_each_trial(tmp_path):
    # Optuna draws from intervals inside the job, after the pre-flight check: a negative rate is refused there.
    sweep, study = mlp_search_with(tmp_path, "optim.lr: interval(-0.02, 0.01)", n_trials=4)
    assert {t.state.name for t in study.trials} == {"COMPLETE", "FAIL"}  # the sampler's seed fixes which
    for t in study.trials:
        lr, job = t.params["optim.lr"], sweep / str(t.number)
        assert t.state.name == ("COMPLETE" if lr > 0 else "FAIL")
        if lr <= 0:
            assert "optim.lr=" in (job / "error.txt").read_text() and "is not allowed: must be a number > 0" in (
                job / "error.txt").read_text()
            assert not (job / "checkpoints").exists()


@pytest.mark.slow
def test_pruned_trials_stop_early_keep_their_dirs_and_are_recorded_as_pruned(subprocess_env, tmp_path):
    # A pruner that stops every trial once it may (val/acc is never above 2): after epoch 1 of 3.
    pruner = ["hydra.sweeper.pruner._target_=optuna.pruners.ThresholdPruner", "~hydra.sweeper.pruner.n_startup_trials",
              "+hydra.sweeper.pruner.lower=2.0"]
    proc = subprocess.run([sys.executable, "-m", "src.train", "hparams_search=mlp_optuna", "hydra.sweeper.n_trials=2",
                           *pruner, *SEARCH_QUIET, "trainer.max_epochs=3", "logger=csv", f"paths.log_dir={tmp_path}"],
                          cwd=PROJECT_ROOT, env=subprocess_env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]  # a pruned trial is not a failure
    (sweep,) = (tmp_path / "train" / "multiruns").iterdir()
    study = optuna.load_study(study_name="mlp_optuna", storage=f"sqlite:///{sweep / 'optuna.db'}")
    for t in study.trials:
        assert t.state.name == "PRUNED" and sorted(t.intermediate_values) == [0, 1]
        job = sweep / str(t.number)
        assert t.intermediate_values[1] == pytest.approx(read_job(job).final("val/acc"))
        assert OmegaConf.load(job / "run.yaml").result == {"status": "pruned", "epoch": 1}
        assert not (job / "error.txt").exists() and "test/acc" not in read_job(job).series  # stopped, not tested
        assert torch.load(job / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 1
        # The trial number reaches the job as a Hydra setting: its overrides stay its parameters.
        assert not any(o.startswith("hydra.") for o in OmegaConf.load(job / ".hydra" / "overrides.yaml"))
        assert f"hydra.sweeper.trial={t.number}" in OmegaConf.load(job / ".hydra" / "hydra.yaml").hydra.overrides.hydra
    assert "Trial 0 pruned" in proc.stderr + proc.stdout
    make_report(sweep)
    rows = list(csv.DictReader(open(sweep / "report.csv")))
    assert [r["pruned"] for r in rows] == ["after epoch 1"] * 2 and not any(r["error"] for r in rows)
    assert "2 job(s), 0 failed, 2 pruned by the search" in (sweep / "report.md").read_text()


def test_pruning_needs_a_validation_metric(tmp_path):
    from src.utils.errors import ConfigError
    from src.utils.preflight import check_job

    search = ["hparams_search=mlp_optuna", f"paths.log_dir={tmp_path}"]
    with pytest.raises(ConfigError, match=r"monitor.metric='train/loss' cannot be pruned on: .* by a val/ metric .*"
                                          r"hydra.sweeper.pruner=null"):
        check_job("train", [*search, "monitor.metric=train/loss", "monitor.mode=min"])
    with pytest.raises(ConfigError, match=r"trainer.limit_val_batches=0 leaves the search's pruner nothing"):
        check_job("train", [*search, "trainer.limit_val_batches=0"])
    check_job("train", [*search, "monitor.metric=train/loss", "monitor.mode=min", "hydra.sweeper.pruner=null"])
    check_job("train", ["monitor.metric=train/loss", "monitor.mode=min", f"paths.log_dir={tmp_path}"])  # no search


def test_a_trial_is_pruned_when_behind_but_never_after_its_last_epoch(tmp_path):
    from types import SimpleNamespace

    from src.callbacks.pruning import Pruning

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    for epoch, max_epochs, pruned in ((0, 3, True), (2, 3, False)):
        trial = study.ask()
        callback = Pruning(storage, "s", trial.number, optuna.pruners.ThresholdPruner(lower=2.0), "val/acc")
        trainer = SimpleNamespace(sanity_checking=False, is_global_zero=True, current_epoch=epoch, max_epochs=max_epochs,
                                  callback_metrics={"val/acc": torch.tensor(0.5)}, should_stop=False,
                                  strategy=SimpleNamespace(broadcast=lambda decision, src: decision))
        callback.setup(trainer, None, "fit")
        callback.on_validation_end(trainer, None)
        assert (callback.pruned is not None, trainer.should_stop) == (pruned, pruned), epoch
        if pruned:
            assert str(callback.pruned) == "trial 0 pruned after epoch 0 by ThresholdPruner (val/acc=0.5)"
            assert pickle.loads(pickle.dumps(callback.pruned)).epoch == 0  # as a launcher's worker sends it back
        assert optuna.load_study(study_name="s", storage=storage).trials[-1].intermediate_values == {epoch: 0.5}
    trainer.callback_metrics = {"val/loss": torch.tensor(0.1)}  # a model that does not log the monitored metric
    from src.utils.errors import ConfigError

    with pytest.raises(ConfigError, match=r"monitor.metric=val/acc .* does not log it \(it logs val/loss there\)"):
        callback.on_validation_end(trainer, None)
