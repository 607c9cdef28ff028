"""Checkpoints written before the models took their network from the config (one LightningModule
class per model family) still evaluate, sample and resume.

tests/data/earlier_checkpoints/ holds small ones written by that code on this suite's tiny data
(conftest.write_tiny_dataset), with the test metrics they gave then (expected.json).
"""

import json
import shutil
from pathlib import Path

import pytest
import torch

from src.utils.checkpoint import read_checkpoint
from src.utils.preflight import check_checkpoint

FOLDER = Path(__file__).parent / "data" / "earlier_checkpoints"
EXPECTED = json.loads((FOLDER / "expected.json").read_text())
CLASSIFIERS = [name for name in EXPECTED if name not in ("linreg_salary", "vae")]


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_an_earlier_classifier_checkpoint_evaluates_as_it_did(cfg_factory, name):
    from src.eval import evaluate

    result = evaluate(cfg_factory(f"ckpt_path={FOLDER / name}.ckpt", config_name="eval"))
    for key, value in EXPECTED[name].items():
        assert result[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key


def test_earlier_regression_and_vae_checkpoints_load_with_their_weights():
    from src.utils.checkpoint import load_model

    for name in ("linreg_salary", "vae"):
        ckpt = read_checkpoint(FOLDER / f"{name}.ckpt")
        model = load_model(ckpt)
        stored = torch.load(FOLDER / f"{name}.ckpt", weights_only=True)["state_dict"]
        for key, value in stored.items():
            assert torch.equal(model.state_dict()[key], value), (name, key)


def test_an_earlier_vae_checkpoint_samples(cfg_factory):
    from src.sample import sample

    assert sample(cfg_factory(f"ckpt_path={FOLDER / 'vae'}.ckpt", "n=4", config_name="sample")).is_file()


def test_an_earlier_lenet_checkpoint_resumes_under_the_default_config(cfg_factory, tmp_path):
    from src.train import train

    ckpt = tmp_path / "checkpoints" / "last.ckpt"  # a copy: resuming writes beside it
    ckpt.parent.mkdir()
    shutil.copy(FOLDER / "lenet.ckpt", ckpt)
    cfg = cfg_factory("model=cnn", "optim=sgd", "logger=none", "trainer.max_epochs=3", f"ckpt_path={ckpt}")
    check_checkpoint(cfg, resume=True)  # today's `model=cnn` describes the model it holds
    _, trainer = train(cfg)
    assert trainer.current_epoch == 3 and torch.load(ckpt, weights_only=True)["epoch"] == 2
    # Its optimizer state was saved unfused; the resumed run steps with today's fused SGD (conf/optim/sgd.yaml).
    assert torch.load(FOLDER / "lenet.ckpt", weights_only=True)["optimizer_states"][0]["param_groups"][0]["fused"] is None
    assert trainer.optimizers[0].param_groups[0]["fused"] is True
    with pytest.raises(Exception, match=r"model.dropout: the checkpoint has None, the config 0.3"):
        check_checkpoint(cfg_factory("model=cnn", "model.dropout=0.3", f"ckpt_path={ckpt}"), resume=True)


def test_todays_checkpoint_callbacks_find_their_state_in_an_earlier_checkpoint(cfg_factory):
    # The project's ModelCheckpoint keeps its state key once computed: it must be Lightning's key.
    from lightning.pytorch.callbacks import ModelCheckpoint

    from src.utils.instantiate import instantiate_callbacks

    callbacks = instantiate_callbacks(cfg_factory("model=cnn"), loggers=[])
    keys = [c.state_key for c in callbacks if isinstance(c, ModelCheckpoint)]
    assert len(keys) == 2 and set(keys) == set(torch.load(FOLDER / "lenet.ckpt", weights_only=True)["callbacks"])
