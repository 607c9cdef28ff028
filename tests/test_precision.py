"""Mixed precision: the hand-written losses stay exact and finite under autocast; bf16-mixed runs on the
CPU, and 16-mixed is turned into it there by Lightning."""

import pytest
import torch
import torch.nn.functional as F

from src.nets import scratch
from src.nets.vae import kl_to_standard_normal, reconstruction_nll
from src.train import train


def _bf16(*tensors):
    """The tensors as a layer under CPU autocast hands them on: rounded to bf16."""
    return [t.to(torch.bfloat16) for t in tensors]


def test_scratch_cross_entropy_under_autocast_matches_torch_and_stays_finite():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 10, generator=g) * 3000  # far beyond exp()'s range in any precision
    logits[0, 3] = 1e4
    y = torch.randint(0, 10, (64,), generator=g)
    (half,) = _bf16(logits)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours, torch_own = scratch.cross_entropy(half, y), F.cross_entropy(half, y)
    assert ours.dtype == torch.float32 and torch.isfinite(ours)
    assert ours.item() == pytest.approx(torch_own.item(), rel=1e-6)
    assert torch.allclose(scratch.softmax(half), torch.softmax(half.float(), 1))


def test_scratch_binary_cross_entropy_under_autocast_matches_torch():
    g = torch.Generator().manual_seed(0)
    z, y = torch.randn(128, generator=g) * 50, torch.randint(0, 2, (128,), generator=g).float()
    (half,) = _bf16(z)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ours = scratch.binary_cross_entropy_with_logits(half, y)
        torch_own = F.binary_cross_entropy_with_logits(half, y)
    assert ours.dtype == torch.float32 and ours.item() == pytest.approx(torch_own.item(), rel=1e-6)


def test_vae_loss_terms_under_autocast_are_computed_in_float32():
    g = torch.Generator().manual_seed(0)
    mu, log_var = torch.randn(32, 2, generator=g) * 3, torch.randn(32, 2, generator=g) * 4
    logits, x = torch.randn(32, 784, generator=g) * 20, torch.rand(32, 784, generator=g)
    half = _bf16(mu, log_var, logits)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        kl = kl_to_standard_normal(half[0], half[1])
        recon = reconstruction_nll(half[2], x)
    assert kl.dtype == recon.dtype == torch.float32
    # The inputs' bf16 rounding stays; the arithmetic on them is float32's.
    assert torch.allclose(kl, kl_to_standard_normal(half[0].float(), half[1].float()), rtol=1e-6)
    assert torch.allclose(recon, reconstruction_nll(half[2].float(), x), rtol=1e-6)


@pytest.mark.parametrize("model", [["model=softmax", "model.impl=scratch"], ["model=vae", "model.hidden=[32]"],
                                   ["model=linreg", "data=salary", "data.standardize=true", "optim=sgd_scratch"]])
def test_bf16_mixed_trains_on_the_cpu(cfg_factory, model):
    metrics, trainer = train(cfg_factory(*model, "trainer.precision=bf16-mixed", "logger=none"))
    assert trainer.precision == "bf16-mixed"
    assert all(torch.isfinite(torch.tensor(v)) for k, v in metrics.items() if k.startswith("test/"))


def test_16_mixed_on_the_cpu_becomes_bf16_mixed_with_lightnings_warning(cfg_factory):
    with pytest.warns(UserWarning, match="bf16-mixed"):
        _, trainer = train(cfg_factory("model=mlp", "trainer.precision=16-mixed", "logger=none", "test=false"))
    assert trainer.precision == "bf16-mixed"


def test_an_unknown_precision_is_refused_with_the_allowed_values(cfg_factory):
    from src.utils.errors import ConfigError
    from src.utils.validate import validate

    cfg = cfg_factory("model=mlp", "trainer.precision=8-mixed")
    with pytest.raises(ConfigError, match="trainer.precision='8-mixed' is not allowed: must be one of: 32-true, 16-mixed, bf16-mixed"):
        validate(cfg)


@pytest.mark.parametrize("precision,fused", [("32-true", "true"), ("bf16-mixed", "false")])
def test_gradients_are_clipped_with_the_fused_optimizer_in_float32_and_the_unfused_one_under_autocast(
        cfg_factory, precision, fused):
    # Under mixed precision a fused optimizer unscales inside its step, where Lightning cannot clip:
    # that pair is refused before the run (tests/test_validate.py); these two train.
    metrics, trainer = train(cfg_factory("model=mlp", "optim=adam", f"optim.fused={fused}", "trainer.gradient_clip_val=0.5",
                                         f"trainer.precision={precision}", "logger=none", "test=false"))
    assert trainer.optimizers[0].defaults["fused"] is (fused == "true")
    assert torch.isfinite(torch.tensor(metrics["val/loss"]))


def test_an_optimizer_class_without_a_fused_kernel_can_replace_a_fused_ones_target(cfg_factory):
    # conf/optim/adam.yaml says fused: true; RMSprop takes no such argument, and needs none.
    _, trainer = train(cfg_factory("model=mlp", "optim=adam", "optim._target_=torch.optim.RMSprop", "logger=none",
                                   "test=false"))
    assert type(trainer.optimizers[0]) is torch.optim.RMSprop
