"""The VAE: its loss terms, training, figures and the sampler."""

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from src.models.vae import VAE
from src.nets.vae import VAENet, kl_to_standard_normal, reconstruction_nll
from src.sample import sample
from src.train import train
from src.utils.errors import CheckpointError, ConfigError

ADAM = {"_target_": "torch.optim.Adam", "lr": 1e-3}


def test_kl_is_zero_for_the_prior_itself():
    assert torch.equal(kl_to_standard_normal(torch.zeros(3, 2), torch.zeros(3, 2)), torch.zeros(3))


def test_kl_matches_a_monte_carlo_estimate():
    torch.manual_seed(0)
    mu, log_var = torch.randn(4, 3), torch.randn(4, 3) * 0.5
    q = torch.distributions.Normal(mu, torch.exp(0.5 * log_var))
    p = torch.distributions.Normal(torch.zeros(3), torch.ones(3))
    z = q.sample((200_000,))
    estimate = (q.log_prob(z) - p.log_prob(z)).sum(-1).mean(0)
    assert torch.allclose(kl_to_standard_normal(mu, log_var), estimate, atol=0.02, rtol=0.02)


def test_reconstruction_is_the_seeds_bce_summed_per_image():
    torch.manual_seed(0)
    logits, x = torch.randn(5, 784), torch.rand(5, 784)
    expected = torch.stack([F.binary_cross_entropy(torch.sigmoid(l), t, reduction="sum") for l, t in zip(logits, x)])
    assert torch.allclose(reconstruction_nll(logits, x), expected, rtol=1e-5)
    assert torch.isfinite(reconstruction_nll(torch.full((1, 784), 200.0), torch.zeros(1, 784))).all()  # no log(0)


def test_loss_is_per_sample_not_per_batch():
    torch.manual_seed(0)
    model = VAE({"_target_": "src.nets.vae.VAENet"}, [1, 28, 28], optim=ADAM)
    image = torch.rand(1, 1, 28, 28)
    one = model.step(image, torch.zeros(1))["loss"]
    fifty = model.step(image.repeat(50, 1, 1, 1), torch.zeros(50))["loss"]
    assert abs(fifty.item() - one.item()) < 0.01 * one.item()
    assert 400 < one.item() < 700  # ~784 * ln 2 for an untrained decoder: per image, in nats


def test_loss_decreases_over_a_few_steps():
    torch.manual_seed(0)
    model = VAE({"_target_": "src.nets.vae.VAENet"}, [1, 28, 28], optim=ADAM)
    x = (torch.rand(32, 1, 28, 28) > 0.7).float()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(30):
        loss = model.step(x, torch.zeros(32))["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0]


def test_training_writes_reconstructions_at_exactly_the_configured_epochs(cfg_factory):
    cfg = cfg_factory("model=vae", "trainer.max_epochs=4", "callbacks.vae_figures.reconstruction_epochs=[1,3]",
                      "model.hidden=[64,32]", "callbacks.vae_figures.manifold_size=5")
    metrics, _ = train(cfg)
    out = Path(cfg.paths.output_dir)
    written = sorted(p.name for p in out.glob("reconstructions_*.png"))
    assert written == ["reconstructions_epoch_001.png", "reconstructions_epoch_003.png", "reconstructions_final.png"]
    for name in ("latent_space.png", "prior_samples.png", "manifold.png"):
        assert (out / name).stat().st_size > 0
    assert not (out / "confusion_matrix.png").exists()
    assert metrics["test/elbo"] == pytest.approx(metrics["test/recon"] + metrics["test/kl"], rel=1e-5)
    assert metrics["best_score"] == pytest.approx(metrics["val/elbo"]) or metrics["best_score"] < metrics["val/elbo"]


def test_larger_latent_space_is_drawn_through_pca_on_fashion_mnist(cfg_factory):
    cfg = cfg_factory("model=vae", "data=fashion_mnist", "model.z_dim=3", "model.hidden=[32]", "logger=none")
    train(cfg)
    out = Path(cfg.paths.output_dir)
    assert (out / "latent_space.png").is_file() and not (out / "manifold.png").exists()


def test_normalised_pixels_are_refused(cfg_factory):
    cfg = cfg_factory("model=vae", "data.normalize=true", "model.hidden=[32]", "logger=none")
    with pytest.raises(ConfigError, match="data.normalize=false"):
        train(cfg)


@pytest.fixture
def vae_checkpoint(cfg_factory) -> Path:
    cfg = cfg_factory("model=vae", "model.hidden=[32]", "logger=none", "test=false", name="vae")
    train(cfg)
    return Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"


def test_sampling_is_deterministic_for_a_seed(cfg_factory, vae_checkpoint):
    from torchvision.io import decode_png, read_file

    def draw(seed, name):
        cfg = cfg_factory(f"ckpt_path={vae_checkpoint}", "n=16", "nrow=4", f"seed={seed}", name=name, config_name="sample")
        return decode_png(read_file(str(sample(cfg))))

    a, b, c = draw(0, "a"), draw(0, "b"), draw(1, "c")
    assert a.shape[-2:] == (4 * 30 + 2, 4 * 30 + 2)  # 4 x 4 images of 28 px, 2 px padding
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_sampler_refuses_a_classifier_checkpoint(cfg_factory):
    cfg = cfg_factory("model=softmax", "logger=none", "test=false", name="clf")
    train(cfg)
    ckpt = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
    cfg = cfg_factory(f"ckpt_path={ckpt}", name="sample", config_name="sample")
    with pytest.raises(CheckpointError, match="holds a Classifier model; this command needs a VAE"):
        sample(cfg)


def test_eval_refuses_a_vae_checkpoint(cfg_factory, vae_checkpoint):
    from src.eval import evaluate

    cfg = cfg_factory(f"ckpt_path={vae_checkpoint}", name="eval", config_name="eval")
    with pytest.raises(CheckpointError, match="holds a VAE model; this command needs a Classifier"):
        evaluate(cfg)


def test_the_network_matches_the_seed_shapes():
    net = VAENet([1, 28, 28], [512, 256], 2)
    shapes = [tuple(p.shape) for p in net.parameters()]
    assert shapes[:2] == [(512, 784), (512,)] and shapes[-2:] == [(784, 512), (784,)]
    assert sum(p.numel() for p in net.parameters()) == 1_068_820
    assert math.isclose(net.decode(torch.zeros(1, 2)).sum().item() / 784, 0.5, abs_tol=0.1)
