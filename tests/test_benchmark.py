"""scripts/benchmark.py's bare LightningModule and plain loop train the configured recipe (the GPU check
runs them there too)."""

import sys

import pytest
import torch
from hydra.utils import instantiate

from src.utils.resolvers import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "scripts"))
import benchmark  # noqa: E402


@pytest.mark.parametrize("trimmed,precision", [(False, "32-true"), (True, "16-mixed")],
                         ids=["bare", "trimmed bare, 16-mixed (bf16 on the CPU)"])
def test_the_bare_module_and_the_plain_loop_train_every_sample_each_epoch(cfg_factory, trimmed, precision):
    cfg = cfg_factory("model=mlp", "model.hidden=[8]", "scheduler=warmup_cosine", "data.random_shift=1",
                      f"trainer.precision={precision}")
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    n = len(datamodule.data_train.y)
    bare = benchmark.bare_lightning(cfg, datamodule, 2, trimmed)
    loop = benchmark.tight_loop(cfg, datamodule, 2, torch.device("cpu"))
    assert [h["samples"] for h in bare] == [n, n] == [h["samples"] for h in loop]
    assert all(h["train_s"] > 0 for h in bare + loop)
    assert 0 <= loop[-1]["val_acc"] <= 1
