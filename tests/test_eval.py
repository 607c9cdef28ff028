"""src.eval on a saved checkpoint, and its errors."""

from pathlib import Path

import pytest
import torch

from src.eval import evaluate
from src.train import train
from src.utils.errors import CheckpointError


@pytest.fixture
def trained(cfg_factory):
    cfg = cfg_factory("model=mlp", "trainer.max_epochs=2", "logger=none", name="train")
    metrics, trainer = train(cfg)
    return metrics, Path(trainer.checkpoint_callback.best_model_path)


def test_eval_reproduces_the_test_metrics_and_draws_figures(cfg_factory, trained):
    metrics, best = trained
    cfg = cfg_factory(f"ckpt_path={best}", name="eval", config_name="eval")
    result = evaluate(cfg)
    assert result["test/acc"] == pytest.approx(metrics["test/acc"])
    assert result["test/loss"] == pytest.approx(metrics["test/loss"], rel=1e-5)
    out = Path(cfg.paths.output_dir)
    assert (out / "confusion_matrix.png").stat().st_size > 0
    assert (out / "test_predictions.png").stat().st_size > 0
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))


def test_eval_missing_file(cfg_factory, tmp_path):
    cfg = cfg_factory(f"ckpt_path={tmp_path / 'nope.ckpt'}", name="eval", config_name="eval")
    with pytest.raises(CheckpointError, match="nope.ckpt: no such file"):
        evaluate(cfg)


def test_eval_not_a_checkpoint(cfg_factory, tmp_path):
    bad = tmp_path / "notes.ckpt"
    bad.write_text("not a checkpoint")
    cfg = cfg_factory(f"ckpt_path={bad}", name="eval", config_name="eval")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        evaluate(cfg)


def test_eval_truncated_checkpoint(cfg_factory, trained, tmp_path):
    _, best = trained
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(best.read_bytes()[:2000])
    cfg = cfg_factory(f"ckpt_path={cut}", name="eval", config_name="eval")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        evaluate(cfg)


def test_eval_foreign_checkpoint(cfg_factory, tmp_path):
    foreign = tmp_path / "weights.ckpt"
    torch.save({"state_dict": {}}, foreign)
    cfg = cfg_factory(f"ckpt_path={foreign}", name="eval", config_name="eval")
    with pytest.raises(CheckpointError, match="not a checkpoint written by src.train"):
        evaluate(cfg)


class RunsACommand:
    """What a malicious checkpoint carries: unpickling it would run a shell command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("entry", ["train", "eval", "sample", "predict", "export"])
def test_a_checkpoint_carrying_code_is_refused_by_every_entry_point_and_nothing_runs(cfg_factory, tmp_path, entry):
    from src.export import export
    from src.predict import predict
    from src.sample import sample

    marker, evil = tmp_path / "ran", tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "model_class": "src.models.mlp.MLPClassifier", "payload": RunsACommand(marker)}, evil)
    task = {"train": train, "eval": evaluate, "sample": sample, "predict": predict, "export": export}[entry]
    inputs = [f"inputs={tmp_path}"] if entry == "predict" else []
    cfg = cfg_factory(f"ckpt_path={evil}", *inputs, name=entry, config_name=entry)
    with pytest.raises(CheckpointError, match=r"holds Python objects other than tensors and plain data \(it asks for "
                                              r"posix.system\); they were not loaded, for safety"):
        task(cfg)
    assert not marker.exists()
