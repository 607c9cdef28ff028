"""Lightning DDP on 2 CPU processes (gloo) from `python -m src.train`, as a single run and in a multirun:
one output dir per job, each rank on its own shard, the test set seen once in full, metrics reduced."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from lightning.pytorch import Callback

from src.data.idx import write_idx
from src.data.mnist_datamodule import MNISTDataModule
from src.utils.ddp import child_argv
from src.utils.resolvers import PROJECT_ROOT
from tests.conftest import FAST, write_tiny_dataset

N_TEST = 41  # odd: a padding sampler would test one image twice on 2 ranks
DDP = ["trainer=ddp", "trainer.devices=2", "model=mlp", "logger=csv",
       "+callbacks.probe._target_=tests.test_ddp.ShardProbe", "+callbacks.probe.output_dir=${paths.output_dir}"]


def fingerprints(x: torch.Tensor) -> list[str]:
    return [hashlib.sha1(image.numpy().tobytes()).hexdigest()[:16] for image in x]


class ShardProbe(Callback):
    """Writes probe_rank<r>.json: the images this rank trained on in epoch 0 and tested on."""

    def __init__(self, output_dir: str):
        self.output_dir = Path(output_dir)
        self.train, self.test = [], []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.current_epoch == 0:
            self.train += fingerprints(batch[0])

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self.test += fingerprints(batch[0])

    def on_test_end(self, trainer, pl_module):
        (self.output_dir / f"probe_rank{trainer.global_rank}.json").write_text(json.dumps({
            "world_size": trainer.world_size, "val_fraction": trainer.datamodule.hparams.val_fraction, "train": self.train,
            "test": self.test, "test_confusion_total": int(pl_module.test_confusion.sum()),
        }))


@pytest.fixture(scope="module")
def odd_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("odd_data")
    write_tiny_dataset(root, "MNIST")
    g = torch.Generator().manual_seed(7)
    labels = torch.arange(N_TEST) % 10
    write_idx(root / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz", torch.randint(0, 255, (N_TEST, 28, 28), generator=g))
    write_idx(root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz", labels)
    return root


def _train_and_test_images(data_dir: Path, val_fraction: float):
    dm = MNISTDataModule(data_dir=str(data_dir), download=False, val_fraction=val_fraction)
    dm.setup()
    return set(fingerprints(dm.data_train.x)), fingerprints(dm.data_test.x)


def _check_job(job_dir: Path, data_dir: Path, val_fraction: float) -> None:
    train_images, test_images = _train_and_test_images(data_dir, val_fraction)
    probes = [json.loads((job_dir / f"probe_rank{r}.json").read_text()) for r in (0, 1)]
    assert all(p["world_size"] == 2 and p["val_fraction"] == val_fraction for p in probes)  # both ran this job
    # Each rank trained on its own half of the training set.
    a, b = (set(p["train"]) for p in probes)
    assert len(a) == len(b) == len(train_images) // 2 and not a & b and a | b == train_images
    # Every test image exactly once, and the metrics of both ranks reduced over all of them.
    assert sorted(probes[0]["test"] + probes[1]["test"]) == sorted(test_images)
    assert all(p["test_confusion_total"] == N_TEST for p in probes)
    # One set of checkpoints and one run.yaml (rank 0 writes them), one log per process, no dirs of the child's own.
    assert sorted(p.name for p in (job_dir / "checkpoints").iterdir()) == ["epoch_000.ckpt", "last.ckpt"]
    assert {"train.log", "train_ddp_process_1.log", ".hydra", "run.yaml"} <= {p.name for p in job_dir.iterdir()}
    assert yaml.safe_load((job_dir / "run.yaml").read_text())["device"]["threads"] == 1  # OMP_NUM_THREADS=1 here
    assert "test/acc" in (job_dir / "csv" / "metrics.csv").read_text()


def _run(args, data_dir: Path, flags=(), returncode=0):
    env = {**os.environ, "DATA_DIR": str(data_dir), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "src.train", *flags, *FAST, *DDP, *args], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=180)
    assert returncode is None or proc.returncode == returncode, proc.stderr[-4000:]
    return proc


@pytest.mark.slow
def test_ddp_single_run_has_one_dir_shards_the_training_set_and_tests_every_image_once(odd_data, tmp_path):
    _run([f"paths.log_dir={tmp_path}", "data.val_fraction=0.2"], odd_data)
    assert [p.name for p in (tmp_path / "train").iterdir()] == ["runs"]
    [run_dir] = (tmp_path / "train" / "runs").iterdir()
    _check_job(run_dir, odd_data, 0.2)
    # Its checkpoint, written by 2 processes, is evaluated by one.
    from src.eval import evaluate
    from tests.conftest import make_cfg

    ckpt = run_dir / "checkpoints" / "last.ckpt"
    assert torch.load(ckpt, weights_only=True)["world_size"] == 2
    result = evaluate(make_cfg(tmp_path / "eval", odd_data, [f"ckpt_path={ckpt}", "logger=none"], "eval"))
    assert 0 <= result["test/acc"] <= 1


@pytest.mark.slow
def test_ddp_multirun_runs_each_job_once_in_its_own_dir_and_survives_a_failed_job(odd_data, tmp_path):
    # Job 0 fails in setup on both ranks (no training data left); the sweep must go on.
    _run([f"paths.log_dir={tmp_path}", "data.val_fraction=0.999,0.1,0.2"], odd_data, flags=["-m"], returncode=1)
    assert [p.name for p in (tmp_path / "train").iterdir()] == ["multiruns"]  # no stray run dir
    [sweep] = (tmp_path / "train" / "multiruns").iterdir()
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1", "2"]
    for name in ("error.txt", "error_rank1.txt"):  # each process keeps its own traceback
        assert "leaves no train or no validation data" in (sweep / "0" / name).read_text()
    for job, val_fraction in (("1", 0.1), ("2", 0.2)):
        _check_job(sweep / job, odd_data, val_fraction)


def test_a_ddp_child_runs_its_parents_job_not_the_sweep():
    argv = ["src/train.py", "-m", "optim.lr=0.1,0.2", "model=mlp",
            'hydra.run.dir="/logs/m/1"', "hydra.job.name=train_ddp_process_1", "hydra.output_subdir=null"]
    env = {"LOCAL_RANK": "1", "SRC_DDP_JOB_OVERRIDES": json.dumps(["optim.lr=0.2", "model=mlp"])}
    assert child_argv(argv, env) == ["src/train.py", "optim.lr=0.2", "model=mlp", "hydra.mode=RUN", 'hydra.run.dir="/logs/m/1"',
                                     "hydra.job.name=train_ddp_process_1", "hydra.output_subdir=null"]
    assert child_argv(argv, {"LOCAL_RANK": "0", **{k: v for k, v in env.items() if k != "LOCAL_RANK"}}) == argv
    assert child_argv(argv, {"LOCAL_RANK": "1"}) == argv  # started by torchrun/SLURM, not by a Hydra job


def test_the_next_job_of_a_sweep_gets_the_threads_and_environment_it_would_have_alone(monkeypatch, tmp_path):
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from src.utils.ddp import hydra_job_for_ddp_children

    with initialize_config_dir(version_base="1.3", config_dir=str(PROJECT_ROOT / "conf")):
        cfg = compose("train", overrides=[f"paths.log_dir={tmp_path}"], return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(tmp_path / "job")  # (set by Hydra when it runs a job)
    HydraConfig.instance().set_config(cfg)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    try:
        with hydra_job_for_ddp_children():  # as Lightning's DDP launcher sets them in the parent process
            torch.set_num_threads(max(1, before // 2) if before > 1 else 2)
            os.environ.update(OMP_NUM_THREADS="1", LOCAL_RANK="0", WORLD_SIZE="2")
        assert torch.get_num_threads() == before
        assert not {"OMP_NUM_THREADS", "LOCAL_RANK", "WORLD_SIZE"} & set(os.environ)
    finally:
        torch.set_num_threads(before)
        HydraConfig.instance().cfg = None  # as outside a Hydra job, for the tests that follow


class PoisonOnRank1(Callback):
    """A NaN in rank 1's batch 2 of epoch 1: its loss alone is NaN at that step."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_rank == 1 and trainer.current_epoch == 1 and batch_idx == 2:
            batch[0].fill_(float("nan"))


@pytest.mark.slow
def test_a_nan_on_one_rank_stops_every_rank_at_once_naming_the_rank_and_step(odd_data, tmp_path):
    import time

    start = time.monotonic()
    proc = _run([f"paths.log_dir={tmp_path}", "trainer.max_epochs=3", "+callbacks.poison._target_=tests.test_ddp.PoisonOnRank1"],
                odd_data, returncode=1)
    seconds = time.monotonic() - start
    [run_dir] = (tmp_path / "train" / "runs").iterdir()
    cause = "the training loss became nan on rank 1 at epoch 1, batch 2"
    assert cause in (run_dir / "error.txt").read_text()  # rank 0 names rank 1's failure, not a lost connection
    assert cause in proc.stderr
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 0  # epoch 0's, intact
    assert seconds < 120


class FailOnRank1(Callback):
    """Rank 1 alone fails in epoch 1, batch 2 (or in its validation): with an exception, or killed outright."""

    def __init__(self, how: str):
        self.how = how

    def _fail(self, trainer, batch_idx, validating: bool):
        if trainer.global_rank == 1 and trainer.current_epoch == 1 and batch_idx == (0 if validating else 2):
            if self.how == "kill":
                os.kill(os.getpid(), 9)
            raise RuntimeError("boom on rank 1")

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if self.how != "raise_in_validation":
            self._fail(trainer, batch_idx, validating=False)

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        if self.how == "raise_in_validation" and not trainer.sanity_checking:
            self._fail(trainer, batch_idx, validating=True)


@pytest.mark.slow
@pytest.mark.parametrize("how,cause", [
    ("raise", "rank 1 failed: RuntimeError: boom on rank 1"),
    ("raise_in_validation", "rank 1 failed: RuntimeError: boom on rank 1"),  # the others wait in a buffer sync
    ("kill", "rank 1 of this DDP job stopped without an error of its own (killed, or out of memory?)"),
])
def test_a_rank_that_fails_alone_is_named_by_the_job(odd_data, tmp_path, how, cause):
    import time

    start = time.monotonic()
    proc = _run([f"paths.log_dir={tmp_path}", "trainer.max_epochs=3", "+callbacks.fail._target_=tests.test_ddp.FailOnRank1",
                 f"+callbacks.fail.how={how}"], odd_data, returncode=None)
    seconds = time.monotonic() - start
    assert proc.returncode != 0
    [run_dir] = (tmp_path / "train" / "runs").iterdir()
    error = (run_dir / "error.txt").read_text()
    assert (cause if how == "kill" else cause.split(": ", 1)[1]) in error, error[-2000:]
    assert cause in proc.stderr, proc.stderr[-2000:]
    from src.utils.errors import exception_message

    report = exception_message(error)  # what a sweep's report shows
    assert ("rank 1 of this DDP job stopped" if how == "kill" else "(raised on rank 1; rank 0 failed in") in report
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 0  # epoch 0's, intact
    assert seconds < 120
    if how == "kill":  # and the job resumes from there
        _run([f"paths.log_dir={tmp_path}", "trainer.max_epochs=3", "ckpt_path=last"], odd_data)
        assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 2


@pytest.mark.slow
def test_ddp_validation_counts_every_image_once_and_equals_one_process_on_the_same_weights(odd_data, tmp_path):
    """41 validation images on 2 ranks (batches of 20): rank 1's last batch is only padding. BatchNorm: the
    DDP wrapper syncs its buffers on every validation forward, so both ranks must run as many batches."""
    import csv

    import lightning as L

    from src.utils.checkpoint import load_datamodule, load_model, read_checkpoint

    _run([f"paths.log_dir={tmp_path}", "model=cnn", "model.arch=fast", "data.val_fraction=0.25625"], odd_data)
    [run_dir] = (tmp_path / "train" / "runs").iterdir()
    rows = [r for r in csv.DictReader((run_dir / "csv" / "metrics.csv").open()) if r.get("val/acc")]
    ddp = {k: float(rows[-1][k]) for k in ("val/acc", "val/loss")}
    ckpt = read_checkpoint(run_dir / "checkpoints" / "last.ckpt")  # written after that validation
    datamodule = load_datamodule(ckpt, str(odd_data))
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                        enable_model_summary=False)
    [one] = trainer.validate(load_model(ckpt), datamodule=datamodule)
    assert len(datamodule.data_val) == 41
    assert ddp["val/acc"] * 41 == pytest.approx(round(one["val/acc"] * 41)) == pytest.approx(one["val/acc"] * 41)
    assert ddp["val/loss"] == pytest.approx(one["val/loss"], rel=1e-5)


@pytest.mark.slow
def test_a_search_trial_pruned_under_ddp_stops_every_rank_after_the_same_epoch(odd_data, tmp_path):
    # Rank 0 alone asks the study; rank 1 must stop with it, or it would wait for rank 0 in epoch 2 until the timeout.
    search = ["hparams_search=mlp_optuna", "hydra.sweeper.n_trials=1", "trainer.max_epochs=3",
              "hydra.sweeper.pruner._target_=optuna.pruners.ThresholdPruner", "~hydra.sweeper.pruner.n_startup_trials",
              "+hydra.sweeper.pruner.lower=2.0"]
    _run([f"paths.log_dir={tmp_path}", "data.val_fraction=0.2", *search], odd_data)
    [sweep] = (tmp_path / "train" / "multiruns").iterdir()
    import optuna

    [trial] = optuna.load_study(study_name="mlp_optuna", storage=f"sqlite:///{sweep / 'optuna.db'}").trials
    assert trial.state.name == "PRUNED" and sorted(trial.intermediate_values) == [0, 1]
    job = sweep / "0"
    assert yaml.safe_load((job / "run.yaml").read_text())["result"] == {"status": "pruned", "epoch": 1}
    assert torch.load(job / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 1
    assert not list(job.glob("error*.txt"))
