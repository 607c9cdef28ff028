"""A run that dies loses nothing: a real SIGKILL in the middle of an epoch, then `ckpt_path=last`;
a checkpoint save that fails half-way; the error when there is nothing to resume."""

import csv
import errno
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from lightning.pytorch import Callback

from src.train import train
from src.utils.errors import CheckpointError
from src.utils.resolvers import PROJECT_ROOT
from tests.conftest import FAST

# Deterministic, with dropout and a per-epoch schedule, so the RNG and scheduler state must survive too.
RECIPE = ["model=mlp", "model.dropout=0.3", "optim=adam", "scheduler=step", "scheduler.step_size=1",
          "trainer.deterministic=true", "trainer.max_epochs=3", "logger=csv"]

# Weights of one run with 1 thread and with torch's default threads differ by up to 2e-6 (Intel Xeon)
# or 1e-8 (AMD EPYC) after this recipe's 3 epochs; 5x the larger, for other CPUs.
THREADS_ATOL = 1e-5


class HangMidEpoch(Callback):
    """Says so in a file, then stands still at a batch in the middle of an epoch, for the test to kill the run."""

    def __init__(self, epoch: int, batch: int, marker: str):
        self.epoch, self.batch, self.marker = epoch, batch, marker

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            Path(self.marker).write_text(f"epoch {self.epoch} batch {self.batch}")
            time.sleep(600)


def _train_cli(args, env, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "src.train", *FAST, *RECIPE, *args], cwd=PROJECT_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def _test_metrics(run_dir: Path) -> dict[str, float]:
    rows = list(csv.DictReader((run_dir / "csv" / "metrics.csv").open()))
    return {k: float(v) for row in rows for k, v in row.items() if k.startswith("test/") and v}


@pytest.mark.slow
def test_a_run_killed_mid_epoch_resumes_with_ckpt_path_last_to_the_uninterrupted_result(
        cfg_factory, subprocess_env, tmp_path):
    log_dir, marker = tmp_path / "logs", tmp_path / "hanging"
    killed = _train_cli([f"paths.log_dir={log_dir}", "+callbacks.hang._target_=tests.test_crash.HangMidEpoch",
                         "+callbacks.hang.epoch=1", "+callbacks.hang.batch=4", f"+callbacks.hang.marker={marker}"],
                        subprocess_env)
    deadline = time.monotonic() + 180
    while not marker.exists() and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert marker.exists(), killed.communicate()[0][-3000:]
    os.kill(killed.pid, signal.SIGKILL)  # in epoch 1, batch 4: after epoch 0's checkpoints
    killed.communicate()
    assert killed.returncode == -signal.SIGKILL
    [killed_dir] = (log_dir / "train" / "runs").iterdir()
    last = killed_dir / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["epoch"] == 0
    written_with_one_thread = tmp_path / "epoch_0_last.ckpt"
    written_with_one_thread.write_bytes(last.read_bytes())

    resumed = _train_cli([f"paths.log_dir={log_dir}", "ckpt_path=last"], subprocess_env)
    output = resumed.communicate(timeout=240)[0]
    assert resumed.returncode == 0, output[-3000:]
    assert f"ckpt_path=last: resuming from {last}" in output
    [resumed_dir] = [d for d in (log_dir / "train" / "runs").iterdir() if d != killed_dir]

    # The guarantee is "the same run continued": the reference runs exactly as the killed and
    # resumed runs did (a subprocess, one thread), and the weights must be bit-identical.
    reference_dir = tmp_path / "reference"
    uninterrupted = _train_cli([f"paths.log_dir={reference_dir}"], subprocess_env)
    output = uninterrupted.communicate(timeout=240)[0]
    assert uninterrupted.returncode == 0, output[-3000:]
    [uninterrupted_dir] = (reference_dir / "train" / "runs").iterdir()
    expected = torch.load(uninterrupted_dir / "checkpoints" / "last.ckpt", weights_only=True)
    got = torch.load(last, weights_only=True)  # the resumed run carries on the killed run's checkpoints
    assert got["epoch"] == expected["epoch"] == 2 and got["global_step"] == expected["global_step"]
    for key, value in expected["state_dict"].items():
        assert torch.equal(got["state_dict"][key], value), key
    assert _test_metrics(resumed_dir) == _test_metrics(uninterrupted_dir)
    assert set(_test_metrics(resumed_dir)) >= {"test/acc", "test/loss"}

    # Resumed with another thread count (this process: torch's default), as on another machine, the
    # sums are reordered: the run is close, not identical. Measured: at most 2e-6 apart on weights of
    # ~0.05 (README).
    other = cfg_factory(*RECIPE, f"ckpt_path={written_with_one_thread}", name="other_threads")
    train(other)
    close = torch.load(Path(other.paths.output_dir) / "checkpoints" / "last.ckpt", weights_only=True)
    for key, value in expected["state_dict"].items():
        assert torch.allclose(close["state_dict"][key], value, rtol=0, atol=THREADS_ATOL), key


def test_a_save_that_fails_half_way_leaves_the_previous_checkpoints_whole(cfg_factory, monkeypatch):
    real_save = torch.save

    def save(obj, f, *args, **kwargs):
        if isinstance(obj, dict) and obj.get("epoch") == 1:  # epoch 1's checkpoints: half written, then a full disk
            buffer = io.BytesIO()
            real_save(obj, buffer)
            f.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    cfg = cfg_factory("model=mlp", "trainer.max_epochs=2", "logger=none", "test=false")
    with pytest.raises(CheckpointError, match=r"could not write the checkpoint .*: No space left on device; the prev"):
        train(cfg)
    folder = Path(cfg.paths.output_dir) / "checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == ["epoch_000.ckpt", "last.ckpt"]  # no temporary files left
    for name in ("epoch_000.ckpt", "last.ckpt"):
        ckpt = torch.load(folder / name, weights_only=True)
        assert ckpt["epoch"] == 0 and ckpt["state_dict"]


def test_checkpoints_are_written_through_the_atomic_writer(cfg_factory):
    from hydra.utils import instantiate

    from src.utils.atomic_io import AtomicCheckpointIO

    for trainer_option in ("default", "ddp"):
        cfg = cfg_factory(f"trainer={trainer_option}")
        trainer = instantiate(cfg.trainer, logger=False)
        assert isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO), trainer_option


def test_ckpt_path_last_without_an_earlier_run_says_what_to_do(cfg_factory):
    cfg = cfg_factory("model=mlp", "ckpt_path=last")
    with pytest.raises(CheckpointError, match=r"ckpt_path=last: no run under .*train has a checkpoints/last.ckpt"):
        train(cfg)


def test_ckpt_path_last_picks_the_newest_last_ckpt(tmp_path):
    from src.utils.checkpoint import find_last

    paths = [tmp_path / "train" / "runs" / "a" / "checkpoints" / "last.ckpt",
             tmp_path / "train" / "multiruns" / "s" / "0" / "checkpoints" / "last.ckpt",
             tmp_path / "eval" / "runs" / "b" / "checkpoints" / "last.ckpt"]
    for age, path in zip((20, 10, 0), paths):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"")
        os.utime(path, (time.time() - age, time.time() - age))
    assert find_last(tmp_path, "train") == paths[1]  # another task's runs do not count


def test_the_random_state_is_restored_when_fitting_from_new_and_older_checkpoints():
    from types import SimpleNamespace

    from src.models.classifier import Classifier

    model = Classifier({"_target_": "src.nets.mlp.torch_mlp"}, input_shape=[1, 28, 28], num_classes=10)
    saved = torch.get_rng_state()
    expected = torch.rand(3)
    for checkpoint in ({"rng_state": {"torch": saved}}, {"callbacks": {"RNGState": {"torch": saved}}}):  # older
        model._trainer = SimpleNamespace(state=SimpleNamespace(fn="fit"))
        model.on_load_checkpoint(checkpoint)
        assert torch.equal(torch.rand(3), expected)
    model._trainer = SimpleNamespace(state=SimpleNamespace(fn="test"))  # testing a checkpoint draws afresh
    model.on_load_checkpoint({"rng_state": {"torch": saved}})
    assert not torch.equal(torch.rand(3), expected)


def test_resuming_under_another_number_of_processes_is_refused_with_the_reason(cfg_factory):
    first = cfg_factory("model=mlp", "logger=none", "test=false", name="one_process")
    train(first)
    last = Path(first.paths.output_dir) / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["world_size"] == 1
    resumed = cfg_factory("model=mlp", "logger=none", "trainer=ddp", "trainer.devices=2", "trainer.max_epochs=2",
                          f"ckpt_path={last}", name="two_processes")
    with pytest.raises(CheckpointError, match=r"written by 1 process\(es\) and this run has 2\. The global batch"):
        train(resumed)
    assert not (Path(resumed.paths.output_dir) / "checkpoints").exists()  # nothing was trained or written


def test_ckpt_path_last_in_eval_and_sample_picks_the_newest_checkpoint_of_their_kind(cfg_factory, tmp_path):
    from src.eval import evaluate
    from src.sample import sample

    log_dir = tmp_path / "logs"
    for name, model in (("classifier", ["model=mlp"]), ("vae", ["model=vae", "model.hidden=[32]"])):
        cfg = cfg_factory(*model, "logger=none", "test=false", name=f"logs/train/runs/{name}")
        cfg.paths.log_dir = str(log_dir)
        train(cfg)  # the VAE is the newer of the two
    eval_cfg = cfg_factory("ckpt_path=last", name="eval", config_name="eval")
    sample_cfg = cfg_factory("ckpt_path=last", "n=4", name="sample", config_name="sample")
    eval_cfg.paths.log_dir = sample_cfg.paths.log_dir = str(log_dir)
    assert "test/acc" in evaluate(eval_cfg)
    assert eval_cfg.ckpt_path == str(log_dir / "train" / "runs" / "classifier" / "checkpoints" / "last.ckpt")
    sample(sample_cfg)
    assert sample_cfg.ckpt_path == str(log_dir / "train" / "runs" / "vae" / "checkpoints" / "last.ckpt")
    empty = cfg_factory("ckpt_path=last", name="eval_nothing", config_name="eval")
    empty.paths.log_dir = str(tmp_path / "nothing")
    with pytest.raises(CheckpointError, match=r"no run under .* has a checkpoints/last.ckpt of a Classifier model"):
        evaluate(empty)
