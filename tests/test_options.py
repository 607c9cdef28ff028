"""Every option of the trainer, data, callbacks, accelerator and logger groups, and every other legal value
of their switches, composes and trains a few steps. The cases are generated from the config files and the
validation table, so a new option file or switch is covered by itself."""

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from src.train import train
from src.utils.resolvers import PROJECT_ROOT
from src.utils.validate import CHOICES

CONF = PROJECT_ROOT / "conf"
GROUPS = ("trainer", "data", "callbacks", "accelerator", "logger")
# What cannot run here, and where it is tested instead.
CANNOT_RUN = {
    "trainer=ddp": "launches processes by re-running the command line: tests/test_ddp.py runs it from the CLI",
    "trainer=slurm": "2 nodes x 4 GPUs under SLURM: only composing it is tested (tests/test_slurm.py)",
    "accelerator=gpu": "needs CUDA: tests/test_gpu.py",
}
# A model that fits each data set (regression targets, two classes, images or features).
MODEL_FOR = {"salary": ["model=linreg"], "linear": ["model=linreg"], "blobs": ["model=logreg"],
             "clusters": ["model=softmax"], "xor_clusters": ["model=mlp"]}
FEW_STEPS = ["trainer.max_epochs=1", "trainer.limit_train_batches=3", "trainer.limit_val_batches=2",
             "trainer.limit_test_batches=2", "logger=none"]


def _group_options():
    for group in GROUPS:
        for path in sorted((CONF / group).glob("*.yaml")):
            yield f"{group}={path.stem}"


def _switches():
    """Each other legal value of the boolean keys of these groups (in their default config) and of the
    keys with a fixed list of values (the validation table's CHOICES, trainer.precision)."""
    for group in ("trainer", "data"):
        node = OmegaConf.load(CONF / group / ("default.yaml" if group == "trainer" else "mnist.yaml"))
        for key, value in OmegaConf.to_container(node, resolve=False).items():
            if isinstance(value, bool):
                yield f"{group}.{key}={str(not value).lower()}"
    for key, allowed in CHOICES.items():
        if key.split(".")[0] in GROUPS:
            yield from (f"{key}={value}" for value in allowed)
    for precision in ("32-true", "bf16-mixed", "16-mixed", "64-true", "16-true", "bf16-true"):
        yield f"trainer.precision={precision}"
        # Linear regression's hand-written gradients too; standardized: salaries squared overflow float16.
        yield f"trainer.precision={precision} data=salary data.standardize=true"


CASES = sorted(set(_group_options()) | set(_switches()))


@pytest.mark.slow
@pytest.mark.parametrize("option", CASES)
def test_option_composes_and_trains_a_few_steps(cfg_factory, option):
    if option in CANNOT_RUN:
        pytest.skip(CANNOT_RUN[option])
    overrides = option.split()
    data = next((o.split("=", 1)[1] for o in overrides if o.startswith("data=")), "mnist")
    model = MODEL_FOR.get(data, ["model=mlp"])
    # Pure float16 Adam diverges at once (its eps, 1e-8, is 0 in float16): the NaN guard says so; SGD trains.
    optim = ["optim=sgd"] if "trainer.precision=16-true" in overrides else []
    cfg = cfg_factory(*model, *optim, *overrides, *FEW_STEPS)
    metrics, trainer = train(cfg)
    assert trainer.state.finished, option
    assert all(torch.isfinite(torch.tensor(v)) for k, v in metrics.items() if k.startswith("test/")), metrics


def test_the_cases_cover_every_option_file_and_switch():
    assert {"trainer=default", "data=xor_clusters", "callbacks=early_stopping", "logger=csv"} <= set(CASES)
    assert {"trainer.deterministic=true", "trainer.enable_progress_bar=false", "data.normalize=false",
            "data.device=cpu"} <= set(CASES)
    assert all(Path(CONF / option.split("=")[0] / f"{option.split('=')[1]}.yaml").is_file()
               for option in CASES if "." not in option.split("=")[0])
