"""The hand-written regression math against PyTorch's own."""

import pytest
import torch
import torch.nn.functional as F

from src.nets import linreg, scratch


@pytest.mark.parametrize("kind,delta", [("mse", 1.0), ("huber", 1.0), ("huber", 0.3)])
def test_analytic_gradients_equal_autograd(kind, delta):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(50, 3, generator=g, dtype=torch.float64), 3 * torch.randn(50, 1, generator=g, dtype=torch.float64)
    w = torch.randn(3, 1, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(1, generator=g, dtype=torch.float64, requires_grad=True)
    linreg.loss(linreg.predict(x, w, b), y, kind, delta).backward()
    dw, db = linreg.gradients(x, y, w.detach(), b.detach(), kind, delta)
    torch.testing.assert_close(dw, w.grad)
    torch.testing.assert_close(db, b.grad)
    # Huber on both sides of delta: the check covers the quadratic and the linear pieces.
    if kind == "huber":
        r = (linreg.predict(x, w, b) - y).abs()
        assert (r <= delta).any() and (r > delta).any()


def test_analytic_gradients_pass_gradcheck():
    x, y = torch.randn(20, 2, dtype=torch.float64), torch.randn(20, 1, dtype=torch.float64)
    w, b = torch.randn(2, 1, dtype=torch.float64), torch.randn(1, dtype=torch.float64)
    for kind in linreg.LOSSES:
        dw, db = linreg.gradients(x, y, w, b, kind)
        # finite differences of the loss itself
        eps, numeric = 1e-6, []
        for i in range(2):
            e = torch.zeros_like(w)
            e[i] = eps
            numeric.append((linreg.loss(linreg.predict(x, w + e, b), y, kind) - linreg.loss(linreg.predict(x, w - e, b), y, kind)) / (2 * eps))
        torch.testing.assert_close(dw.flatten(), torch.stack(numeric), atol=1e-6, rtol=1e-5)
        assert db.shape == (1,)


def test_losses_equal_torch():
    pred, y = torch.randn(40, 1) * 3, torch.randn(40, 1)
    torch.testing.assert_close(linreg.loss(pred, y, "mse"), F.mse_loss(pred, y))
    for delta in (0.5, 1.0, 2.0):
        torch.testing.assert_close(linreg.loss(pred, y, "huber", delta), F.huber_loss(pred, y, delta=delta))


def test_least_squares_is_the_minimum():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(100, 2, generator=g)
    y = x @ torch.tensor([[1.5], [-2.0]]) + 0.7 + 0.1 * torch.randn(100, 1, generator=g)
    w, b = linreg.least_squares(x, y)
    dw, db = linreg.gradients(x.double(), y.double(), w.double(), b.double())
    assert dw.abs().max() < 1e-6 and db.abs().max() < 1e-6  # the MSE gradient vanishes there
    assert torch.allclose(w.flatten(), torch.tensor([1.5, -2.0]), atol=0.05)


def test_sigmoid_and_softplus_equal_torch_without_overflow():
    z = torch.tensor([-1e4, -100.0, -20.0, -1.0, 0.0, 1.0, 20.0, 100.0, 1e4], dtype=torch.float64, requires_grad=True)
    for ours, theirs in ((scratch.sigmoid, torch.sigmoid), (scratch.softplus, F.softplus)):
        value = ours(z)
        assert torch.isfinite(value).all()
        torch.testing.assert_close(value, theirs(z))
        (grad,) = torch.autograd.grad(value.sum(), z)
        (expected,) = torch.autograd.grad(theirs(z).sum(), z)
        torch.testing.assert_close(grad, expected)  # z = 0 included


def test_bce_equals_torch_including_extreme_logits():
    z = torch.tensor([-1e4, -200.0, -30.0, -2.0, 0.0, 0.5, 30.0, 200.0, 1e4], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0], dtype=torch.float64)
    ours = scratch.binary_cross_entropy_with_logits(z, y)
    (ours_grad,) = torch.autograd.grad(ours, z)
    theirs = F.binary_cross_entropy_with_logits(z, y)
    (theirs_grad,) = torch.autograd.grad(theirs, z)
    assert torch.isfinite(ours) and torch.isfinite(ours_grad).all()
    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(ours_grad, theirs_grad)
    # A confident mistake costs |z| (the seed's log(p + 1e-7) capped it at ~16).
    assert float(scratch.binary_cross_entropy_with_logits(torch.tensor([-1e4]), torch.tensor([1.0]))) == pytest.approx(1e4)
