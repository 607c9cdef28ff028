"""On a GPU: every model family trains at 32-true and bf16-mixed with its batches cut on the GPU and no
host synchronisation between logging steps; checkpoints move between GPU and CPU; resume is exact
(deterministic) or close; DDP runs on one GPU. Skipped where CUDA is absent (CI). `TEST_ACCELERATOR=cpu pytest -m gpu` runs the
same flows on the CPU, less the CUDA-only checks, to debug them without a GPU."""

import os
import subprocess
import sys
import traceback
import warnings
from pathlib import Path

import pytest
import torch
import yaml
from lightning.pytorch import Callback

from src.eval import evaluate
from src.sample import sample
from src.train import train
from src.utils.resolvers import PROJECT_ROOT

ACCELERATOR = os.environ.get("TEST_ACCELERATOR", "gpu")
CUDA = ACCELERATOR == "gpu"
pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(CUDA and not torch.cuda.is_available(), reason="needs a CUDA GPU")]

ON_DEVICE = [f"accelerator={ACCELERATOR}"]
# One recipe per model family, small enough for seconds.
FAMILIES = {
    "cnn_fast_shifts": ["model=cnn", "model.arch=fast", "data.random_shift=2", "scheduler=warmup_cosine"],
    "cnn_lenet": ["model=cnn", "optim=sgdm"],
    "mlp_scratch": ["model=mlp", "model.impl=scratch", "optim=sgd_scratch", "optim.lr=0.1"],
    "softmax_scratch": ["model=softmax", "model.impl=scratch", "optim=sgd_scratch", "optim.lr=0.1"],
    "vae": ["model=vae", "model.hidden=[64,32]", "callbacks.vae_figures.manifold_size=4",
            "callbacks.vae_figures.reconstruction_epochs=[1]"],
    "logreg": ["model=logreg", "data=blobs", "optim=sgd_scratch", "optim.lr=0.1"],
    "linreg": ["model=linreg", "data=salary", "data.standardize=true", "optim=sgd_scratch", "optim.lr=0.1",
               "data.repeat=20"],
}
FIGURES = {"cnn_fast_shifts": "confusion_matrix.png", "cnn_lenet": "test_predictions.png",
           "mlp_scratch": "confusion_matrix.png", "softmax_scratch": "confusion_matrix.png",
           "vae": "manifold.png", "logreg": "decision_boundary.png", "linreg": "fitted_line.png"}


class SyncGuard(Callback):
    """Turns on CUDA's sync debug mode ("warn") from batch `start` to batch `stop` of each epoch: a window
    with no logging step (the test sets log_every_n_steps above it) and no epoch boundary. Also
    records where the batches reached the training step."""

    def __init__(self, start: int = 2, stop: int = 9):
        self.start, self.stop, self.steps = start, stop, 0
        self.batch_devices: set[str] = set()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.batch_devices.add(batch[0].device.type)
        if not CUDA:
            return
        if batch_idx == self.start:
            torch.cuda.set_sync_debug_mode("warn")
        elif batch_idx == self.stop:
            torch.cuda.set_sync_debug_mode("default")
        if self.start <= batch_idx < self.stop:
            self.steps += 1

    def on_train_epoch_end(self, trainer, pl_module):
        if CUDA:
            torch.cuda.set_sync_debug_mode("default")


@pytest.fixture
def sync_sites():
    """Collects the stack of each 'synchronizing CUDA operation' warning."""
    sites = []
    original = warnings.showwarning

    def record(message, category, filename, lineno, file=None, line=None):
        stack = traceback.format_stack(limit=14)[:-2]
        # (Turning the mode on can itself report once; that is the switch, not a step's work.)
        if "synchronizing" in str(message) and "set_sync_debug_mode" not in stack[-1]:
            sites.append(f"{message}\n" + "".join(stack))
        else:
            original(message, category, filename, lineno, file, line)

    with warnings.catch_warnings():  # restores showwarning and the filters afterwards
        warnings.simplefilter("always")
        warnings.showwarning = record
        yield sites
    if CUDA:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_each_family_trains_on_the_device_without_host_syncs_between_logging_steps(
        cfg_factory, sync_sites, family, precision):
    # The bar is updated at most every 1 ms: mid-epoch too, where reading the metrics must not sync.
    cfg = cfg_factory(*FAMILIES[family], *ON_DEVICE, f"trainer.precision={precision}", "trainer.max_epochs=2",
                      "trainer.limit_train_batches=12", "trainer.log_every_n_steps=1000", "data.batch_size=8",
                      "+callbacks.bar._target_=src.callbacks.progress_bar.ThrottledRichProgressBar",
                      "+callbacks.bar.refresh_rate=1000", "trainer.enable_progress_bar=true",
                      "+callbacks.sync_guard._target_=tests.test_gpu.SyncGuard")
    metrics, trainer = train(cfg)
    guard = next(c for c in trainer.callbacks if type(c).__name__ == "SyncGuard")
    assert all(v == v for k, v in metrics.items() if k.startswith("test/")), metrics  # no NaN
    assert guard.batch_devices == {"cuda" if CUDA else "cpu"}  # batches were cut on the device
    assert (Path(cfg.paths.output_dir) / FIGURES[family]).stat().st_size > 0
    if CUDA:
        assert guard.steps >= guard.stop - guard.start
        assert not sync_sites, f"{len(sync_sites)} host synchronisations in {guard.steps} steps; first at:\n{sync_sites[0]}"


def test_the_data_of_a_gpu_run_sits_on_the_gpu_once(cfg_factory):
    cfg = cfg_factory("model=mlp", *ON_DEVICE, "trainer.max_epochs=1", "logger=none")
    _, trainer = train(cfg)
    dm = trainer.datamodule
    assert dm.data_train.x.device.type == "cpu"  # the splits figures and reports read
    x, _ = next(iter(dm.train_dataloader()))
    assert x.device.type == ("cuda" if CUDA else "cpu")
    cpu = cfg_factory("model=mlp", *ON_DEVICE, "data.device=cpu", "trainer.max_epochs=1", "logger=none", name="cpu")
    _, trainer = train(cpu)
    assert next(iter(trainer.datamodule.train_dataloader()))[0].device.type == "cpu"  # Lightning copies each batch


def test_a_checkpoint_moves_between_gpu_and_cpu_for_eval_predict_and_sample(cfg_factory, tmp_path):
    from PIL import Image

    from src.predict import predict

    image = tmp_path / "stroke.png"
    Image.fromarray((torch.rand(40, 30) * 255).byte().numpy()).save(image)
    for train_on, eval_on in ((ACCELERATOR, "cpu"), ("cpu", ACCELERATOR)):
        cfg = cfg_factory("model=mlp", f"accelerator={train_on}", "trainer.max_epochs=1", "logger=none",
                          name=f"train_{train_on}")
        metrics, trainer = train(cfg)
        best = trainer.checkpoint_callback.best_model_path
        result = evaluate(cfg_factory(f"ckpt_path={best}", f"accelerator={eval_on}", name=f"eval_{eval_on}",
                                      config_name="eval"))
        assert result["test/acc"] == pytest.approx(metrics["test/acc"])
        # The GPU multiplies matrices in TF32 (10-bit mantissa): the same loss to ~1e-3.
        assert result["test/loss"] == pytest.approx(metrics["test/loss"], rel=5e-3)
        answers = [predict(cfg_factory(f"ckpt_path={best}", f"inputs={image}", f"device={device}",
                                       name=f"predict_{train_on}_{device}", config_name="predict"))[0]
                   for device in ("cpu", "cuda" if eval_on == "gpu" else "cpu")]
        assert answers[0]["label"] == answers[1]["label"]
        assert float(answers[0]["probability"]) == pytest.approx(float(answers[1]["probability"]), abs=1e-3)
    vae = cfg_factory("model=vae", "model.hidden=[32]", *ON_DEVICE, "logger=none", "test=false", name="vae")
    train(vae)
    ckpt = Path(vae.paths.output_dir) / "checkpoints" / "last.ckpt"
    assert sample(cfg_factory(f"ckpt_path={ckpt}", "n=4", name="sample", config_name="sample")).stat().st_size > 0


@pytest.mark.parametrize("deterministic", [True, False])
def test_resume_on_the_device_with_ckpt_path_last_is_exact_when_deterministic_else_close(cfg_factory, tmp_path,
                                                                                          deterministic):
    recipe = ["model=cnn", "model.dropout=0.3", "scheduler=step", "scheduler.step_size=1",
              f"trainer.deterministic={str(deterministic).lower()}", *ON_DEVICE, "logger=none", "test=false",
              "trainer.limit_train_batches=6"]
    full = cfg_factory(*recipe, "trainer.max_epochs=2", name="full")
    train(full)
    first = cfg_factory(*recipe, "trainer.max_epochs=1", name="logs/train/runs/first")
    resumed = cfg_factory(*recipe, "trainer.max_epochs=2", "ckpt_path=last", name="resumed")
    first.paths.log_dir = resumed.paths.log_dir = str(tmp_path / "logs")  # where `last` is looked for
    train(first)
    train(resumed)  # continues first's checkpoints
    expected = torch.load(Path(full.paths.output_dir) / "checkpoints" / "last.ckpt", weights_only=True)
    got = torch.load(Path(first.paths.output_dir) / "checkpoints" / "last.ckpt", weights_only=True)
    assert got["epoch"] == expected["epoch"] == 1
    weights = [k for k, v in expected["state_dict"].items() if v.is_floating_point()]
    if deterministic:
        for key in expected["state_dict"]:
            assert torch.equal(got["state_dict"][key], expected["state_dict"][key]), key
        return
    # cuDNN may pick kernels that add in another order: close, not equal. Held per tensor, as a whole (Adam can
    # move a weight whose gradient is ~0 by lr either way on a sign flip). The GPU check reports the figures.
    gap = max(float((got["state_dict"][k] - expected["state_dict"][k]).abs().max()) for k in weights)
    rel = {k: float((got["state_dict"][k] - expected["state_dict"][k]).norm() / expected["state_dict"][k].norm().clamp_min(1e-12))
           for k in weights}
    print(f"non-deterministic resume: largest weight difference {gap:.3g}, largest relative difference of a tensor "
          f"{max(rel.values()):.3g}, after 12 steps")
    assert max(rel.values()) < 5e-3, rel  # (the resumed epoch's 6 steps move each tensor by 2-6%)


@pytest.mark.parametrize("precision", ["16-mixed", "bf16-mixed"])
def test_half_precision_keeps_the_hand_written_losses_finite(cfg_factory, precision):
    for family in ("softmax_scratch", "vae"):
        cfg = cfg_factory(*FAMILIES[family], *ON_DEVICE, f"trainer.precision={precision}", "logger=none",
                          "optim.lr=1.0" if family == "softmax_scratch" else "optim.lr=0.01", name=family)
        metrics, _ = train(cfg)
        assert all(torch.isfinite(torch.tensor(v)) for k, v in metrics.items() if k.startswith(("train/", "test/")))


def test_ddp_on_one_device_runs_from_the_command_line(data_dir, tmp_path):
    env = {**os.environ, "DATA_DIR": str(data_dir)}
    proc = subprocess.run([sys.executable, "-m", "src.train", "trainer=ddp", "trainer.devices=1", *ON_DEVICE,
                           "model=mlp", "trainer.max_epochs=1", "logger=csv", "data.batch_size=16",
                           "trainer.enable_progress_bar=false", f"paths.log_dir={tmp_path}"],
                          cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [run_dir] = (tmp_path / "train" / "runs").iterdir()
    assert "test/acc" in (run_dir / "csv" / "metrics.csv").read_text()
    device = yaml.safe_load((run_dir / "run.yaml").read_text())["device"]
    assert device["accelerator"] == ACCELERATOR
    if CUDA:
        assert device["gpu"] == torch.cuda.get_device_name(0) and device["cuda"] == torch.version.cuda
