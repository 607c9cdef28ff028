"""src.export: every kind of model written as ONNX and as .pt2, loaded back the way a user would
(onnxruntime, torch.export.load), and compared with the checkpoint's own LightningModule on raw inputs
normalised here from the data config, not by src.models.standalone."""

import json
import os
import subprocess
import sys
from pathlib import Path

import onnxruntime
import pytest
import torch
from hydra.utils import instantiate

import src.export
from src.export import export, load_pt2, write_pt2
from src.train import train
from src.utils.checkpoint import load_model, read_checkpoint
from src.utils.errors import CheckpointError, ConfigError, ExportError
from src.utils.preflight import check_job
from src.utils.resolvers import PROJECT_ROOT
from tests.conftest import make_cfg

# Tiny versions of each kind: a couple of steps are enough, the weights need only be trained ones.
KINDS = {
    "lenet": ["model=cnn", "model.arch=lenet"],
    "mlp_scratch": ["model=mlp", "model.impl=scratch", "model.hidden=[32]"],
    "softmax_scratch": ["model=softmax", "model.impl=scratch"],
    "logreg": ["model=logreg", "data=blobs", "data.standardize=true"],
    "linreg": ["model=linreg", "data=salary", "data.standardize=true"],
    "vae": ["model=vae", "model.hidden=[32,16]", "callbacks.vae_figures=null"],
}
QUICK = ["logger=none", "test=false", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dir):
    """trained(kind) -> (its last.ckpt, the config it was trained with); each kind trains once."""
    done = {}

    def get(kind):
        if kind not in done:
            cfg = make_cfg(tmp_path_factory.mktemp(kind) / "run", data_dir, [*KINDS[kind], *QUICK])
            train(cfg)
            done[kind] = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt", cfg
        return done[kind]

    return get


def export_cfg(tmp_path, data_dir, ckpt, *overrides):
    return make_cfg(tmp_path / "export", data_dir, [f"ckpt_path={ckpt}", *overrides], config_name="export")


def raw_inputs(kind, cfg, n):
    g = torch.Generator().manual_seed(1)
    if kind == "vae":
        return torch.randn(n, cfg.model.z_dim, generator=g)
    if cfg.data._target_.endswith("MNISTDataModule"):
        return torch.rand(n, 1, 28, 28, generator=g)
    return torch.randn(n, len(raw_training_data(cfg)[0][0]), generator=g) * 2


def raw_training_data(cfg):
    datamodule = instantiate(cfg.data, standardize=False)
    datamodule.setup()
    return datamodule.data_train.x, datamodule.data_train.y


def expected_outputs(kind, cfg, ckpt, x):
    """The trained LightningModule on x as its data config prepares inputs, answers in the data's units."""
    model = load_model(read_checkpoint(ckpt)).eval()
    with torch.no_grad():
        if kind == "vae":
            return torch.sigmoid(model.net.decoder(x)).reshape(-1, 1, 28, 28)
        if cfg.data._target_.endswith("MNISTDataModule"):
            return torch.softmax(model((x - cfg.data.mean) / cfg.data.std), dim=1)
        features, targets = raw_training_data(cfg)  # standardised by the training split's statistics
        out = model((x - features.mean(0)) / features.std(0))
        if kind == "logreg":
            p = torch.sigmoid(out)
            return torch.cat([1 - p, p], dim=1)
        return out * targets.std(0) + targets.mean(0)


def run_export(path: Path, x: torch.Tensor) -> torch.Tensor:
    if path.suffix == ".onnx":
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0])
    with torch.no_grad():
        return torch.export.load(path).module()(x)


@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_exports_from_raw_inputs_with_any_batch_size(trained, tmp_path, data_dir, kind, fmt):
    ckpt, cfg = trained(kind)
    info = export(export_cfg(tmp_path, data_dir, ckpt, f"format={fmt}"))
    path = tmp_path / "export" / f"model.{fmt}"
    assert info["largest_difference"] <= 1e-4
    assert json.loads((path.parent / "model.json").read_text()) == info
    x = raw_inputs(kind, cfg, 7)
    expected = expected_outputs(kind, cfg, ckpt, x)
    for n in (1, 7):  # traced with 2 rows
        torch.testing.assert_close(run_export(path, x[:n]), expected[:n], rtol=1e-4, atol=1e-4)
    if kind in ("lenet", "mlp_scratch", "softmax_scratch"):
        assert info["input"]["shape"] == ["N", 1, 28, 28] and len(info["classes"]) == 10
        if fmt == "onnx":
            given = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_inputs()[0]
            assert given.name == "images" and given.type == "tensor(float)"
            assert isinstance(given.shape[0], str) and given.shape[1:] == [1, 28, 28]  # a named, free batch size


def test_without_the_data_it_checks_on_random_inputs(trained, tmp_path):
    ckpt, _ = trained("lenet")
    info = export(export_cfg(tmp_path, tmp_path / "no_data", ckpt, "format=pt2"))
    assert info["compared_on"].startswith("256 random inputs (the test data could not be loaded: MNIST not found")
    assert info["largest_difference"] <= 1e-4


def test_the_shipped_salary_data_is_found_where_its_config_puts_it(trained, tmp_path, data_dir):
    """The checkpoint does not keep Salary's csv_path (a path of the machine that trained it): the check
    reads the file where conf/data/salary.yaml puts it here, and falls back to random rows without it."""
    ckpt, _ = trained("linreg")
    info = export(export_cfg(tmp_path, data_dir, ckpt, "format=pt2"))
    assert info["compared_on"] == f"10 rows of the test split of {PROJECT_ROOT / 'data' / 'Salary_Data.csv'}"
    assert info["largest_difference"] <= 1e-4
    elsewhere = export(export_cfg(tmp_path / "elsewhere", data_dir, ckpt, "format=pt2", f"paths.root_dir={tmp_path}"))
    assert elsewhere["compared_on"] == ("256 random inputs (the test data could not be loaded: the checkpoint's "
                                        "data (SalaryDataModule) cannot be loaded from it: it does not keep "
                                        "csv_path (a path on the machine that trained it))")


def test_an_export_that_differs_from_the_checkpoint_fails_and_is_removed(trained, tmp_path, data_dir, monkeypatch):
    ckpt, _ = trained("mlp_scratch")

    def off_by_a_little(path):
        run = load_pt2(path)
        return lambda x: run(x) + 2e-4

    monkeypatch.setitem(src.export.FORMATS, "pt2", (write_pt2, off_by_a_little))
    with pytest.raises(ExportError, match=r"the pt2 export of .* differs from the checkpoint by up to 0.0002 "
                                          r"\(more than 0.0001\) on 40 rows of the test split; it was removed"):
        export(export_cfg(tmp_path, data_dir, ckpt, "format=pt2"))
    assert not list((tmp_path / "export").glob("model.*"))


def test_a_checkpoint_it_cannot_export_is_refused_clearly(trained, tmp_path, data_dir):
    corrupt = tmp_path / "corrupt.ckpt"
    corrupt.write_bytes(b"\x80\x02not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt.ckpt is not a readable checkpoint"):
        export(export_cfg(tmp_path, data_dir, corrupt))
    # One written before checkpoints held their data's statistics: the normalisation is unknown.
    ckpt, _ = trained("mlp_scratch")
    earlier = torch.load(ckpt, weights_only=True)
    del earlier["MNISTDataModule"]
    torch.save(earlier, tmp_path / "earlier.ckpt")
    with pytest.raises(CheckpointError, match="does not hold its data's statistics"):
        export(export_cfg(tmp_path, data_dir, tmp_path / "earlier.ckpt"))


def test_onnx_without_its_packages_names_the_install_command(monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxscript" else find_spec(name, *a))
    with pytest.raises(ConfigError, match=r'format=onnx needs onnxscript, not installed here: pip install -e "\.\[export\]" '
                                          r"\(or format=pt2, which needs torch alone\)"):
        check_job("export", ["ckpt_path=x.ckpt", "format=onnx"])
    with pytest.raises(ConfigError, match="format='tflite' is not allowed: must be one of: onnx, pt2"):
        check_job("export", ["ckpt_path=x.ckpt", "format=tflite"])


@pytest.mark.slow
def test_the_command_exports_the_newest_checkpoint(trained, tmp_path, subprocess_env):
    ckpt, _ = trained("softmax_scratch")
    last = tmp_path / "logs" / "train" / "runs" / "a" / "checkpoints" / "last.ckpt"
    last.parent.mkdir(parents=True)
    last.write_bytes(ckpt.read_bytes())
    proc = subprocess.run([sys.executable, "-m", "src.export", "ckpt_path=last", "format=pt2",
                           f"paths.log_dir={tmp_path / 'logs'}"], cwd=PROJECT_ROOT, env=subprocess_env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"ckpt_path=last: exporting {last}" in proc.stdout
    assert "compared with the checkpoint on 40 rows of the test split" in proc.stdout
    written = list((tmp_path / "logs" / "export" / "runs").glob("*/model.pt2"))
    assert len(written) == 1 and (written[0].parent / "model.json").is_file()
    assert os.path.getsize(written[0]) > 0
