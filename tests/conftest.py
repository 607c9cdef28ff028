"""Shared fixtures: tiny IDX datasets on disk (so the real reading code runs) and composed configs."""

import os
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, open_dict

from src.data.idx import write_idx
from src.utils.resolvers import PROJECT_ROOT

CONF_DIR = str(PROJECT_ROOT / "conf")

# pytest -n N (pytest-xdist): each of the N worker processes takes its share of the cores, not all of them.
if "PYTEST_XDIST_WORKER_COUNT" in os.environ:
    torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))
N_TRAIN, N_TEST = 160, 40


def write_tiny_dataset(root: Path, folder: str, seed: int = 0) -> None:
    """A learnable toy set in the MNIST layout: class k lights up row band k."""
    g = torch.Generator().manual_seed(seed)
    raw = root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", N_TRAIN), ("t10k", N_TEST)):
        labels = torch.arange(n) % 10
        images = torch.randint(0, 60, (n, 28, 28), generator=g)
        for i, k in enumerate(labels):
            images[i, 2 * k + 4 : 2 * k + 6, 4:24] = 255
        write_idx(raw / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte.gz", labels)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_tiny_dataset(root, "MNIST")
    write_tiny_dataset(root, "FashionMNIST", seed=1)
    return root


# Small, quiet, CPU-only runs on the tiny data.
FAST = [
    "accelerator=cpu",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "callbacks.progress_bar=null",
    "data.batch_size=16",
    "data.eval_batch_size=20",
]


def make_cfg(output_dir: Path, data_dir: Path, overrides=(), config_name: str = "train", fast=None) -> DictConfig:
    GlobalHydra.instance().clear()
    if fast is None:
        fast = {"train": FAST, "eval": ["accelerator=cpu", "trainer.enable_progress_bar=false"]}.get(config_name, [])
    with initialize_config_dir(version_base="1.3", config_dir=CONF_DIR):
        cfg = compose(config_name, overrides=[*fast, *overrides])
    with open_dict(cfg):
        if "download" in cfg.get("data", {}):  # the image sets: never reach for the internet in tests
            cfg.data.download = False
        cfg.paths.output_dir = str(output_dir)
        cfg.paths.data_dir = str(data_dir)
        cfg.paths.log_dir = str(output_dir.parent / "logs")
    return cfg


@pytest.fixture
def cfg_factory(tmp_path, data_dir):
    """cfg_factory(*overrides, name=...) -> a train config writing into its own tmp dir."""

    def factory(*overrides, name: str = "run", config_name: str = "train") -> DictConfig:
        return make_cfg(tmp_path / name, data_dir, overrides, config_name)

    return factory


@pytest.fixture
def subprocess_env(data_dir):
    """Environment for `python -m src.train` subprocesses: tiny data, no stray threads."""
    return {**os.environ, "DATA_DIR": str(data_dir), "OMP_NUM_THREADS": "1"}
