"""experiment=mnist_fast: the fast CNN, batch-level random shifts, AdamW + one-cycle."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from hydra.utils import instantiate
from lightning.pytorch import Callback
from torch.optim.lr_scheduler import OneCycleLR

from src.data.augment import random_shift
from src.nets.cnn import fast
from src.train import train
from src.utils.errors import ConfigError
from src.utils.validate import validate


def test_random_shift_moves_each_image_by_its_own_offset_within_the_limit():
    x = torch.zeros(64, 1, 9, 9)
    x[:, 0, 4, 4] = 1.0  # one lit pixel in the centre of every image
    out = random_shift(x, 2, 0.0, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    offsets = set()
    for image in out[:, 0]:
        (r, c), = image.nonzero().tolist()
        assert image.sum() == 1 and abs(r - 4) <= 2 and abs(c - 4) <= 2
        offsets.add((r - 4, c - 4))
    assert len(offsets) > 10  # per image, not one offset for the batch (25 possible)


def test_random_shift_fills_with_the_background_not_wrapped_pixels():
    x = torch.full((32, 1, 6, 6), -0.42)  # the normalised 0-pixel of MNIST
    x[:, :, :, -1] = 2.8  # a bright right edge: a wrap-around would bring it to the left side
    out = random_shift(x, 2, -0.42, torch.Generator().manual_seed(1))
    assert ((out == x.min()) | (out == x.max())).all()
    assert (out[:, :, :, 0] == x.min()).all()
    assert torch.equal(random_shift(x, 0, -0.42), x)


def test_fast_net_shapes_and_size():
    net = fast()
    assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert sum(p.numel() for p in net.parameters()) < 50_000  # small on purpose: an MNIST epoch in seconds on 2 cores


def test_datamodule_shifts_training_batches_only(cfg_factory):
    cfg = cfg_factory("data.random_shift=2")
    dm = instantiate(cfg.data)
    dm.setup("fit")
    batch = (dm.data_train.x[:32], dm.data_train.y[:32])
    dm.trainer = SimpleNamespace(training=False)
    assert dm.on_after_batch_transfer(batch, 0)[0] is batch[0]
    dm.trainer = SimpleNamespace(training=True)
    shifted, labels = dm.on_after_batch_transfer(batch, 0)
    assert labels is batch[1] and shifted.shape == batch[0].shape and not torch.equal(shifted, batch[0])


class CountUnshifted(Callback):
    """Writes, per stage, how many batch images are exact copies of a stored image (a file: Hydra's
    instantiate imports this module anew, so class attributes would not reach the test)."""

    def __init__(self, path: str):
        self.path, self.counts = path, {"train": [0, 0], "val": [0, 0]}

    def _count(self, trainer, batch, stage):
        stored = getattr(trainer.datamodule, f"data_{stage}").x.flatten(1)
        x = batch[0].flatten(1)
        self.counts[stage][0] += int((torch.cdist(x, stored).min(dim=1).values == 0).sum())
        self.counts[stage][1] += len(x)
        Path(self.path).write_text(json.dumps(self.counts))

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._count(trainer, batch, "train")

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self._count(trainer, batch, "val")


def test_mnist_fast_composes_and_trains_a_few_batches(cfg_factory, tmp_path):
    # The recipe as shipped, on the tiny data: only the size of the run is cut.
    counts = tmp_path / "counts.json"
    cfg = cfg_factory("experiment=mnist_fast", "trainer.max_epochs=2", "trainer.limit_train_batches=3",
                      "data.batch_size=32", "logger=none", "+callbacks.count._target_=tests.test_fast_recipe.CountUnshifted",
                      f"+callbacks.count.path={counts}")
    assert cfg.model.arch == "fast" and cfg.data.random_shift == 2 and cfg.optim._target_ == "torch.optim.AdamW"
    metrics, trainer = train(cfg)
    scheduler = trainer.lr_scheduler_configs[0]
    assert isinstance(scheduler.scheduler, OneCycleLR) and scheduler.interval == "step"
    assert scheduler.scheduler.total_steps == 2 * 3  # filled in from the trainer
    assert trainer.global_step == 6 and 0 <= metrics["test/acc"] <= 1
    # Lightning calls the DataModule's hook: training images arrive shifted (1 in 25 by (0, 0)), validation ones not.
    (train_same, train_n), (val_same, val_n) = json.loads(counts.read_text()).values()
    assert train_n == 6 * 32 and train_same < train_n / 4
    assert val_n > 0 and val_same == val_n


def test_bad_shift_is_refused(cfg_factory):
    with pytest.raises(ConfigError, match=r"data.random_shift=-1 is not allowed: must be an integer >= 0"):
        validate(cfg_factory("data.random_shift=-1"))
